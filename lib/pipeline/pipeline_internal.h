/* Internals shared by the pipeline's files: the pipeline object, the per-tensor run context,
 * the residual codec's builder and the gain refinement. */
#ifndef HCI_PIPELINE_INTERNAL_H
#define HCI_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "codec.h"
#include "hypercomp/pipeline.h"

#define HCI_NAME_MAX 64
#define HCI_SPEC_MAX 256

typedef struct hci_stage {
    char name[HCI_NAME_MAX];
    char spec[HCI_SPEC_MAX];   /* canonical spec: the stage's compressor is re-created from it */
    uint32_t threads;
    hc_gate gate;
} hci_stage;

typedef struct hci_rule {
    char *pattern;
    char *keep_spec;           /* NULL when the rule names a pipeline */
    const hc_pipeline *use;
} hci_rule;

struct hc_pipeline {
    hc_pipeline_options o;     /* fallback_spec / keep_spec point into the arrays below */
    char fallback[HCI_SPEC_MAX];
    char keep[HCI_SPEC_MAX];
    hci_stage stages[HC_PIPELINE_MAX_STAGES];
    uint32_t n_stages;
    hc_stage_cb cb;
    void *cb_data;
    hc_adjust_fn adjust;
    void *adjust_data;
    hc_eval_fn eval;
    void *eval_data;
    hci_rule *rules;
    size_t n_rules;
};

/* The model gate's state while a model is decided tensor by tensor. */
typedef struct hci_model_gate {
    hc_model *current;         /* the model as decided so far (views into `decoded` or the original) */
    float **decoded;           /* per tensor: owned decoded copy, or NULL while it is the original */
    double baseline;
    size_t index;              /* tensor being decided */
} hci_model_gate;

/* One tensor's run: the pipeline whose stages apply, the pipeline that owns the callbacks. */
typedef struct hci_run {
    const hc_pipeline *p;
    const hc_pipeline *top;
    pthread_mutex_t *cb_lock;  /* serialises callbacks across worker threads; NULL when single */
    atomic_int *cancelled;     /* set when any callback cancelled; NULL when single */
    hci_model_gate *mg;        /* NULL without an evaluator */
} hci_run;

/* Runs p's stages on one tensor (pipeline/cascade.c). */
int hci_run_tensor(hc_ctensor **out, const hci_run *run, const hc_tensor_view *t);

/* Codes t with one spec (no gates), reporting it as `action`; used by rules and fallbacks. */
int hci_run_plain(hc_ctensor **out, const hci_run *run, const hc_tensor_view *t, const char *spec,
                  const char *stage_name, uint32_t action);

/* Delivers metrics to the callback (under the lock); returns HC_ECANCELLED with a message
 * when it (or another thread's callback) cancelled. */
int hci_run_report(const hci_run *run, const hc_stage_metrics *m);

/* Model gate: scores the model with tensor mg->index replaced by `decoded` (owned by the caller
 * until accepted). Sets *passed and *score. */
int hci_model_gate_check(const hci_run *run, const float *decoded, int *passed, double *score);

/* Whether a score keeps the configured fraction of the baseline. */
int hci_retains(const hc_pipeline *p, double score, double baseline);

/* ---- the residual codec (pipeline/residual.c) ---- */
extern const hci_codec hci_codec_residual;

/* Builds an HC_CODEC_RESIDUAL tensor from n stage tensors of the same shape (each serialised
 * into the payload; the caller keeps ownership of the stages) and optional per-row fp16 gains
 * (n x rows, stage-major). */
int hci_residual_build(hc_ctensor **out, hc_ctensor *const *stages, uint32_t n, const uint16_t *gains,
                       hc_dtype orig_dtype, uint32_t threads);

/* Serialised bits of such a tensor, without building it. */
uint64_t hci_residual_bits(hc_ctensor *const *stages, uint32_t n, int with_gains);

/* ---- gain refinement (pipeline/gain.c) ---- */

/* Per row r of a rows x cols tensor and stage s, the sufficient statistics of the importance
 * weighted loss L(g) = sum_r sum_c imp_c (w_rc - sum_s g_sr d_src)^2: gram (rows x n x n),
 * cross (rows x n) and the total weighted energy. */
typedef struct hci_gain_problem {
    uint32_t n;
    int64_t rows;
    double *gram;
    double *cross;
    double *wsq;               /* per row sum imp w^2 */
    double energy;             /* sum over rows of wsq */
} hci_gain_problem;

int hci_gain_problem_init(hci_gain_problem *gp, const float *w, const float *const *dec, uint32_t n, int64_t rows,
                          int64_t cols, const float *importance);
void hci_gain_problem_free(hci_gain_problem *gp);
/* L(g) / energy for gains g (n x rows, stage-major). */
double hci_gain_loss(const hci_gain_problem *gp, const float *g);
/* Runs `iters` Grokfast-Adam steps from g (in/out); trace (iters + 1 values, or NULL) receives
 * the normalised loss before each step and after the last. */
int hci_gain_refine(const hci_gain_problem *gp, float *g, uint32_t iters, float lr, uint32_t filter, double *trace);
/* The exact minimiser (per row an n x n solve, with a 1e-9 relative ridge towards gain 1 so
 * rows with a silent stage stay solvable); all-zero rows keep gain 1. */
void hci_gain_optimum(const hci_gain_problem *gp, float *g);

#endif
