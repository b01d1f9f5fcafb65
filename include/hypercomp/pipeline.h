/**
 * @file pipeline.h
 * @brief Pipelines of compression stages with quality gates, per-stage metrics, retry,
 *        fallback and Grokfast refinement; models of named tensors compressed by rules.
 *
 * A pipeline is an ordered list of stages, each a compressor plus a gate, run in one of two
 * modes (#hc_pipeline_mode):
 * - #HC_PIPELINE_REFINE, a residual cascade: each stage codes what the earlier ones left, the
 *   reconstruction is their sum and their bits add up. The cascade stops at the first stage
 *   whose gate the sum meets (rate control); a stage that buys fewer than
 *   hc_pipeline_options::min_db_per_bit decibels of SNR per added bit per weight is dropped
 *   and the next stage codes the same residual. The result is an #HC_CODEC_RESIDUAL tensor
 *   (or the single kept stage's own tensor when only one stage was kept and no gains were
 *   refined).
 * - #HC_PIPELINE_ESCALATE, a fallback hierarchy: stages are ever more aggressive codings of the
 *   original; the smallest result that passes its gate is kept. A failing stage is retried once
 *   (see #hc_adjust_fn for the adjust callback and the built-in step); if the retry fails too the
 *   hierarchy stops there and the smallest result that passed is returned.
 *
 * When no stage passes, hc_pipeline_options::fallback_spec codes the tensor as a last resort
 * (reported as stage "fallback"); without one the call fails with #HC_EQUALITY.
 *
 * Thread safety: a pipeline may be used by one thread at a time once configured; it clones its
 * stages' compressors for every use, so the compressors given to hc_pipeline_add_stage() may be
 * freed right after the call. A model may be read by many threads at once.
 */
#ifndef HYPERCOMP_PIPELINE_H
#define HYPERCOMP_PIPELINE_H

#include "hypercomp/common.h"
#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief How a pipeline combines its stages. */
typedef enum hc_pipeline_mode {
    HC_PIPELINE_REFINE = 0,   /**< Residual cascade: stages add up (rate control). */
    HC_PIPELINE_ESCALATE = 1  /**< Fallback hierarchy: the smallest passing coding wins. */
} hc_pipeline_mode;

/** @brief Most stages a pipeline (and an #HC_CODEC_RESIDUAL tensor) may have. */
#define HC_PIPELINE_MAX_STAGES 16

/**
 * @brief The most stages a pipeline may have, for callers without macros.
 * @return #HC_PIPELINE_MAX_STAGES.
 */
HC_API uint32_t hc_pipeline_max_stages(void);

/** @brief Bits of hc_gate::checks: which thresholds a gate applies. */
typedef enum hc_gate_check {
    HC_GATE_REL_RMSE = 1,  /**< rel_rmse <= hc_gate::max_rel_rmse. */
    HC_GATE_SNR = 2,       /**< snr_db >= hc_gate::min_snr_db. */
    HC_GATE_COSINE = 4     /**< cosine >= hc_gate::min_cosine. */
} hc_gate_check;

/**
 * @brief A per-tensor quality gate, measured against the original tensor. A gate with no
 * checks always passes. Initialise with #HC_GATE_INIT or hc_gate_init().
 */
typedef struct hc_gate {
    uint32_t struct_size;   /**< sizeof(hc_gate) as the caller was compiled. */
    uint32_t checks;        /**< OR of #hc_gate_check bits; 0 passes everything. */
    double max_rel_rmse;    /**< Largest ||W - W'|| / ||W|| allowed. */
    double min_snr_db;      /**< Smallest 20 log10(||W|| / ||W - W'||) allowed. */
    double min_cosine;      /**< Smallest cosine similarity of W and W' allowed. */
} hc_gate;

/** @brief Static initialiser for a gate with no checks. */
#define HC_GATE_INIT { sizeof(hc_gate), 0u, 0.0, 0.0, 0.0 }

/**
 * @brief Initialises a gate with no checks.
 * @param gate The gate.
 * @param struct_size sizeof(hc_gate) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_gate_init(hc_gate *gate, uint32_t struct_size);

/**
 * @brief Adds one condition written as text to a gate: `rel_rmse<=X`, `snr>=X` (dB) or
 * `cosine>=X`. Several conditions may be joined with ','.
 * @param gate The gate to extend (initialised).
 * @param text The condition(s).
 * @return #HC_OK or #HC_EINVAL naming the bad condition.
 */
HC_API int hc_gate_parse(hc_gate *gate, const char *text);

/**
 * @brief Whether statistics pass a gate.
 * @param gate The gate (NULL passes everything).
 * @param stats Statistics with rel_rmse, snr_db and cosine filled.
 * @return 1 when every enabled check passes, 0 otherwise (a NaN never passes).
 */
HC_API int hc_gate_passes(const hc_gate *gate, const hc_stats *stats);

/** @brief What the pipeline did with a stage's result (hc_stage_metrics::action). */
typedef enum hc_stage_action {
    HC_STAGE_KEPT = 0,        /**< Kept: refine added it to the sum; escalate recorded a pass. */
    HC_STAGE_DROPPED = 1,     /**< Refine: it bought too little SNR per bit and was discarded. */
    HC_STAGE_FAILED = 2,      /**< Its gate failed (escalate retries once, then stops). */
    HC_STAGE_ROLLED_BACK = 3, /**< Its tensor gate passed but the model gate did not: discarded. */
    HC_STAGE_FALLBACK = 4,    /**< The fallback coding used because no stage passed. */
    HC_STAGE_RULE_KEEP = 5,   /**< A rule kept the tensor in a plain coding; no stages ran. */
    HC_STAGE_REFINED = 6,     /**< Refine: the stage gains were refined after the cascade. */
    HC_STAGE_CHOSEN = 7       /**< The final result of the tensor (reported once, last). */
} hc_stage_action;

/**
 * @brief What a stage did, as seen by the stage callback. Valid during the call only.
 *
 * Error fields describe the reconstruction after this stage (refine: the sum of the kept
 * stages and this one) against the original tensor.
 */
typedef struct hc_stage_metrics {
    uint32_t struct_size;    /**< sizeof(hc_stage_metrics) as the library was compiled. */
    uint32_t stage_index;    /**< Index of the stage in its pipeline (the fallback and rule rows use the stage count). */
    const char *stage;       /**< Stage name. */
    const char *tensor;      /**< Tensor name ("(unnamed)" when the view had none). */
    const char *spec;        /**< Canonical spec of the compressor that ran. */
    uint32_t mode;           /**< The #hc_pipeline_mode. */
    uint32_t attempt;        /**< 0 for the first try, 1 for the escalate retry. */
    uint32_t action;         /**< The #hc_stage_action. */
    int32_t gate_passed;     /**< 1 when the stage's gate (and the model gate, if any) passed, else 0. */
    uint64_t n_values;       /**< Weights in the tensor. */
    uint64_t stage_bits;     /**< Bits of this stage's own serialised coding. */
    uint64_t bits;           /**< Bits of the whole result if it ended here (refine: with the earlier kept stages and the residual framing). */
    double bpw;              /**< bits / n_values. */
    double ratio;            /**< Cumulative compression ratio: bits of the original dtype over bits. */
    double rel_rmse;         /**< ||W - W'|| / ||W||. */
    double snr_db;           /**< 20 log10(||W|| / ||W - W'||); +inf when exact. */
    double cosine;           /**< <W, W'> / (||W|| ||W'||). */
    double max_abs_err;      /**< max |W - W'|. */
    double seconds;          /**< Wall time of this stage (compression, decode, measurement). */
    double model_score;      /**< The evaluator's score with this result in place; NaN when not evaluated. */
    double baseline_score;   /**< The evaluator's score of the original model; NaN without an evaluator. */
} hc_stage_metrics;

/**
 * @brief Called after every stage. Return 0 to continue; anything else stops the work, which
 * returns #HC_ECANCELLED having freed every partial result (nothing half written). It fires
 * only once work has started (never for a call that fails its argument checks). With
 * hc_pipeline_compress_model() and more than one thread it is called from the worker thread
 * compressing the tensor, never from two threads at once; otherwise from the calling thread.
 * @param metrics The stage's metrics, valid during the call.
 * @param user_data The pointer given to hc_pipeline_set_stage_callback().
 * @return 0 to continue, nonzero to cancel.
 */
typedef int (*hc_stage_cb)(const hc_stage_metrics *metrics, void *user_data);

/**
 * @brief Escalate mode: proposes options for the single retry of a failing stage.
 *
 * Write a codec spec into out (at most out_size bytes with the terminating NUL) and return 0;
 * leave out empty ("") to use the built-in step. The built-in step, which works with any
 * compressor, retries the stage as a two-stage residual cascade of its own compressor: the
 * stage codes the tensor and then codes what it left, about doubling its bits. Called from the
 * thread that runs the stage.
 * @param out Receives the spec; holds "" on entry.
 * @param out_size Its size (256).
 * @param failed The failing stage's metrics (action #HC_STAGE_FAILED, or #HC_STAGE_ROLLED_BACK
 *        when the model gate failed).
 * @param user_data The pointer given to hc_pipeline_set_adjust().
 * @return 0 to continue, nonzero to cancel (the pipeline returns #HC_ECANCELLED).
 */
typedef int (*hc_adjust_fn)(char *out, size_t out_size, const hc_stage_metrics *failed, void *user_data);

/** @brief An opaque model: an ordered set of named tensor views. */
typedef struct hc_model hc_model;

/**
 * @brief Scores a model for the model gate (the caller's perplexity, accuracy, agreement...).
 * Called on the thread that called hc_pipeline_compress_model(), first with the original model
 * (the baseline), then with the current decoded model after each candidate stage result.
 * @param out Receives the score (finite).
 * @param model The model to score: the original views, with every tensor decided so far and
 *        the candidate replaced by f32 views of their decoded values. Valid during the call.
 * @param user_data The pointer given to hc_pipeline_set_evaluator().
 * @return 0 to continue, nonzero to cancel.
 */
typedef int (*hc_eval_fn)(double *out, const hc_model *model, void *user_data);

/**
 * @brief Receives each compressed tensor of hc_pipeline_compress_model(), in model order, on the
 * calling thread: the seam a container writer plugs into. A writer's add function that returns
 * an #hc_status fits directly: a negative return stops the work and hc_pipeline_compress_model()
 * returns that status with the sink's message, so the caller can discard the writer.
 * @param name The tensor name.
 * @param ct The compressed tensor, borrowed: valid during the call (serialise or copy it).
 * @param user_data The pointer given to hc_pipeline_compress_model().
 * @return 0 to continue; a negative #hc_status to fail with it; a positive value to cancel
 *         (#HC_ECANCELLED).
 */
typedef int (*hc_sink_fn)(const char *name, const hc_ctensor *ct, void *user_data);

/** @brief Pipeline options. Initialise with #HC_PIPELINE_OPTIONS_INIT or hc_pipeline_options_init(). */
typedef struct hc_pipeline_options {
    uint32_t struct_size;      /**< sizeof(hc_pipeline_options) as the caller was compiled. */
    uint32_t mode;             /**< #hc_pipeline_mode (default #HC_PIPELINE_REFINE). */
    double min_db_per_bit;     /**< Refine: a stage must add at least this many dB of SNR per added bit per weight, or it is dropped (default 1.0; 0 keeps every stage that does not make things worse). */
    const char *fallback_spec; /**< Codec spec used when no stage passes (copied), or NULL to fail with #HC_EQUALITY (default NULL). */
    uint32_t threads;          /**< hc_pipeline_compress_model(): tensors compressed at once; 0 = all CPUs (default 1). */
    uint32_t gain_iters;       /**< Refine: Grokfast-Adam steps refining a per-row gain of every kept stage after the cascade; 0 = off (default 0). */
    float gain_lr;             /**< Adam step size of the gain refinement (default 2e-3). */
    uint32_t gain_filter;      /**< 1 applies the Grokfast filter to the gain refinement, 0 plain Adam (default 1). */
    double model_retain;       /**< Model gate: fraction of the baseline score a result must retain (default 0.95). */
    uint32_t higher_is_better; /**< Model gate: 1 when a higher score is better (accuracy), 0 when lower is (perplexity) (default 1). */
    const char *keep_spec;     /**< hc_pipeline_compress_model(): coding of kept tensors (copied; default "f32"). */
    uint64_t keep_below;       /**< hc_pipeline_compress_model(): tensors with fewer values are kept (default 0). */
    uint32_t keep_1d;          /**< hc_pipeline_compress_model(): 1 keeps tensors of at most one dimension (norms, biases) (default 1). */
    uint32_t gain_solver;      /**< Refine, when gain_iters > 0: 0 runs gain_iters Grokfast-Adam steps; 1 solves each row's gains exactly (the loss is quadratic in them) (default 0). */
} hc_pipeline_options;

/** @brief Static initialiser with the defaults. */
#define HC_PIPELINE_OPTIONS_INIT                                                                    \
    { sizeof(hc_pipeline_options), 0u, 1.0, NULL, 1u, 0u, 2e-3f, 1u, 0.95, 1u, NULL, 0u, 1u, 0u }

/**
 * @brief Initialises options to their defaults.
 * @param opts The options.
 * @param struct_size sizeof(hc_pipeline_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_pipeline_options_init(hc_pipeline_options *opts, uint32_t struct_size);

/** @brief An opaque pipeline. */
typedef struct hc_pipeline hc_pipeline;

/**
 * @brief Creates a pipeline with no stages.
 * @param out Receives the pipeline; free it with hc_pipeline_free().
 * @param opts Options, or NULL for the defaults.
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_pipeline_new(hc_pipeline **out, const hc_pipeline_options *opts);

/**
 * @brief Frees a pipeline (not the pipelines its rules borrow).
 * @param p The pipeline; NULL is accepted.
 */
HC_API void hc_pipeline_free(hc_pipeline *p);

/**
 * @brief Appends a stage.
 * @param p The pipeline.
 * @param name Stage name for reports (copied; NULL names it "stageN").
 * @param c The compressor; the pipeline keeps its canonical spec and thread count, not c itself.
 * @param gate The stage's gate (copied), or NULL for a gate with no checks.
 * @return #HC_OK; #HC_EINVAL for NULL arguments, a bad gate or more than
 *         #HC_PIPELINE_MAX_STAGES stages; an error from re-creating c from its spec.
 */
HC_API int hc_pipeline_add_stage(hc_pipeline *p, const char *name, const hc_compressor *c, const hc_gate *gate);

/**
 * @brief Appends a stage given as a codec spec string (see hc_compressor_from_spec()).
 * @param p The pipeline.
 * @param name Stage name (copied; NULL uses the spec).
 * @param spec The codec spec.
 * @param gate The gate (copied), or NULL.
 * @return As hc_pipeline_add_stage(), plus the spec's own errors.
 */
HC_API int hc_pipeline_add_stage_spec(hc_pipeline *p, const char *name, const char *spec, const hc_gate *gate);

/**
 * @brief Number of stages.
 * @param p The pipeline.
 * @return The stage count; 0 for NULL.
 */
HC_API uint32_t hc_pipeline_stage_count(const hc_pipeline *p);

/**
 * @brief Sets the stage callback (NULL removes it).
 * @param p The pipeline.
 * @param cb The callback.
 * @param user_data Passed to cb.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_pipeline_set_stage_callback(hc_pipeline *p, hc_stage_cb cb, void *user_data);

/**
 * @brief Sets the escalate retry callback (NULL uses the built-in step).
 * @param p The pipeline.
 * @param fn The callback.
 * @param user_data Passed to fn.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_pipeline_set_adjust(hc_pipeline *p, hc_adjust_fn fn, void *user_data);

/**
 * @brief Sets the model evaluator of the model gate (NULL removes it). With an evaluator,
 * hc_pipeline_compress_model() decides tensors one at a time on the calling thread and keeps
 * a decoded f32 copy of every decided tensor (memory up to one f32 copy of the model).
 * @param p The pipeline.
 * @param fn The evaluator.
 * @param user_data Passed to fn.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_pipeline_set_evaluator(hc_pipeline *p, hc_eval_fn fn, void *user_data);

/**
 * @brief Adds a per-tensor rule for hc_pipeline_compress_model(). Rules are tried in the order
 * they were added and the first whose glob pattern (fnmatch: `*`, `?`, `[...]`; `*` also matches
 * '.') matches the tensor name applies; tensors no rule matches go through p itself, after the
 * keep_1d and keep_below options.
 * @param p The pipeline.
 * @param pattern Glob over tensor names (copied).
 * @param keep_spec A codec spec (e.g. "f32", "fp16") that codes matching tensors directly,
 *        without gates; or NULL.
 * @param use A pipeline whose stages, mode and gates code matching tensors (borrowed: it must
 *        outlive p); or NULL. Exactly one of keep_spec and use must be given.
 * @return #HC_OK, #HC_EINVAL, #HC_ENOMEM, or the spec's error.
 */
HC_API int hc_pipeline_add_rule(hc_pipeline *p, const char *pattern, const char *keep_spec, const hc_pipeline *use);

/**
 * @brief Runs the pipeline on one tensor, with its tensor gates (the model gate and the rules
 * apply to hc_pipeline_compress_model() only).
 * @param out Receives the result; free it with hc_ctensor_free(). NULL on failure.
 * @param p The pipeline (at least one stage).
 * @param t The tensor (F32, F16 or BF16, finite).
 * @return #HC_OK; #HC_EQUALITY when no stage passes and there is no fallback_spec;
 *         #HC_ECANCELLED when a callback returned nonzero; #HC_EINVAL, #HC_ENOMEM, or a codec's error.
 */
HC_API int hc_pipeline_compress_tensor(hc_ctensor **out, hc_pipeline *p, const hc_tensor_view *t);

/**
 * @brief Compresses every tensor of a model and hands each result to sink, in model order.
 *
 * Without an evaluator, tensors are compressed in batches of hc_pipeline_options::threads, one
 * per thread, and each batch is delivered and freed before the next starts, so memory stays
 * bounded by a batch. Results are identical for a given thread count and, for codecs whose
 * own results do not depend on scheduling, for every thread count. With an evaluator the
 * baseline is scored first and tensors are decided one at a time (see hc_pipeline_set_evaluator()).
 * On failure or cancellation some tensors may already have been delivered; the caller discards
 * them (an archive writer is aborted, never finished).
 * @param p The pipeline.
 * @param m The model.
 * @param sink Receives each result.
 * @param user_data Passed to sink.
 * @return #HC_OK or the first failure (#HC_EQUALITY naming the tensor, #HC_ECANCELLED, ...).
 */
HC_API int hc_pipeline_compress_model(hc_pipeline *p, const hc_model *m, hc_sink_fn sink, void *user_data);

/**
 * @brief Creates an empty model.
 * @param out Receives the model; free it with hc_model_free().
 * @return #HC_OK, #HC_EINVAL or #HC_ENOMEM.
 */
HC_API int hc_model_new(hc_model **out);

/**
 * @brief Frees a model (not the data its views borrow).
 * @param m The model; NULL is accepted.
 */
HC_API void hc_model_free(hc_model *m);

/**
 * @brief Appends a tensor view. The view's name is copied; its data, importance and Hessian are
 * borrowed and must outlive the model.
 * @param m The model.
 * @param t The view; its name must be non-empty and unique in the model.
 * @return #HC_OK; #HC_EINVAL for a bad view or a duplicate name; #HC_ENOMEM.
 */
HC_API int hc_model_add(hc_model *m, const hc_tensor_view *t);

/**
 * @brief Number of tensors in the model.
 * @param m The model.
 * @return The tensor count; 0 for NULL.
 */
HC_API size_t hc_model_count(const hc_model *m);

/**
 * @brief The view of tensor number index.
 * @param out Receives the view (out->struct_size must be set); it borrows the model's name.
 * @param m The model.
 * @param index 0 to count - 1.
 * @return #HC_OK, #HC_EINVAL for a bad index, #HC_EVERSION for a too large struct_size.
 */
HC_API int hc_model_tensor(hc_tensor_view *out, const hc_model *m, size_t index);

/**
 * @brief Looks a tensor up by name.
 * @param out Receives its index.
 * @param m The model.
 * @param name The name.
 * @return #HC_OK, #HC_EINVAL or #HC_ENOTFOUND.
 */
HC_API int hc_model_find(size_t *out, const hc_model *m, const char *name);

HC_END_DECLS

#endif
