/**
 * @file vptq.h
 * @brief VPTQ: vector post-training quantisation with k-means codebooks (Liu et al., arXiv 2409.17066).
 *
 * Each row is cut into vectors of v consecutive values; each vector is stored as the index of
 * its nearest centroid in a learned codebook of k entries (plus, optionally, the index of a
 * residual centroid). Codebooks are fp16, indices take exactly log2(k) bits, rows and columns
 * may be normalised by stored scales, and the most important columns may get their own
 * codebook. With a byte budget (bits per weight) the compressor picks v, k and the scales per
 * tensor by measurement so that the serialised size, every header included, fits the budget.
 * The layout is described in doc/algorithms.md (## VPTQ).
 *
 * Spec strings: `vptq:2bit`, `vptq:3bit`, `vptq:4bit` (budgets 2.06, 3.06 and 4.25 bpw), and
 * the keys `bpw`, `v`, `k`, `residual`, `outlier`, `scale` (none|row|col|both|auto), `iters`,
 * `refine`, `grokfast`, `seed`, `train`, `threads`, `codebook` (auto|learned|builtin).
 */
#ifndef HYPERCOMP_VPTQ_H
#define HYPERCOMP_VPTQ_H

#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief How rows and columns are normalised before quantisation. The numbers are stable. */
typedef enum hc_vptq_scale {
    HC_VPTQ_SCALE_AUTO = 0,   /**< Chosen per tensor by measurement. */
    HC_VPTQ_SCALE_NONE = 1,   /**< No scales. */
    HC_VPTQ_SCALE_ROW = 2,    /**< One 8-bit log-scale per row (plus one fp16 base). */
    HC_VPTQ_SCALE_COL = 3,    /**< One fp16 scale per column. */
    HC_VPTQ_SCALE_BOTH = 4    /**< Column scales, then row scales. */
} hc_vptq_scale;

/** @brief Where the main codebook comes from. The numbers are stable. */
typedef enum hc_vptq_codebook {
    HC_VPTQ_CODEBOOK_AUTO = 0,     /**< Chosen per tensor by measurement. */
    HC_VPTQ_CODEBOOK_LEARNED = 1,  /**< k-means on the tensor, stored in fp16. */
    HC_VPTQ_CODEBOOK_BUILTIN = 2   /**< A constant table shipped in the library (k-means centroids of
                                        unit-variance Laplace vectors), not stored: it costs no bits.
                                        Exists for v = 2 (k = 16..1024), 3 (k = 64..4096) and 4
                                        (k = 256..4096); needs row or column scales. */
} hc_vptq_codebook;

/** @brief Options of the VPTQ compressor. Initialise with #HC_VPTQ_OPTIONS_INIT. */
typedef struct hc_vptq_options {
    uint32_t struct_size;      /**< sizeof(hc_vptq_options) as the caller was compiled. */
    float bpw;                 /**< Budget in bits per weight, every serialised bit counted; 0 = no budget
                                    (then v and k must be given). Default 2.06. */
    uint32_t v;                /**< Vector length 2..16; 0 = chosen under the budget (default 0). */
    uint32_t k;                /**< Main codebook entries, a power of two 2..65536; 0 = chosen (default 0). */
    uint32_t residual_k;       /**< Residual codebook entries (power of two 2..65536), 0 = none, or
                                    #HC_VPTQ_AUTO = chosen under the budget (default #HC_VPTQ_AUTO). */
    float outlier_fraction;    /**< Fraction of columns (by norm, or by importance when given) with their
                                    own codebook, 0 to 0.5 (default 0). */
    hc_vptq_scale scale;       /**< Normalisation (default #HC_VPTQ_SCALE_AUTO). */
    uint32_t iters;            /**< Lloyd iterations per codebook (default 20). */
    uint32_t refine;           /**< Centroid refinement steps against the (importance/Hessian) weighted
                                    reconstruction loss, 0 = none (default 0). */
    uint32_t grokfast;         /**< 1 filters refinement gradients with Grokfast, 0 is plain Adam (default 1). */
    uint64_t seed;             /**< Seed of the k-means sampling (default 1). */
    uint32_t train_points;     /**< Codebooks train on at most this many vectors (seeded subsample);
                                    0 = all (default 262144). */
    uint32_t threads;          /**< Threads for compression; 0 = all online CPUs (default 1). */
    hc_vptq_codebook codebook; /**< Main codebook source (default #HC_VPTQ_CODEBOOK_AUTO). */
} hc_vptq_options;

/** @brief #hc_vptq_options.residual_k value meaning "let the planner decide". */
#define HC_VPTQ_AUTO 0xffffffffu

/** @brief Static initialiser: the `vptq:2bit` preset (2.06 bpw, everything chosen per tensor). */
#define HC_VPTQ_OPTIONS_INIT                                                                          \
    { sizeof(hc_vptq_options), 2.06f, 0u, 0u, HC_VPTQ_AUTO, 0.0f, HC_VPTQ_SCALE_AUTO, 20u, 0u, 1u, 1u, \
      262144u, 1u, HC_VPTQ_CODEBOOK_AUTO }

/**
 * @brief Initialises VPTQ options to their defaults.
 * @param opts The options to fill.
 * @param struct_size sizeof(hc_vptq_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_vptq_options_init(hc_vptq_options *opts, uint32_t struct_size);

/**
 * @brief Creates a VPTQ compressor.
 * @param out Receives the compressor; free it with hc_compressor_free().
 * @param opts Options, or NULL for the defaults.
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_vptq_new(hc_compressor **out, const hc_vptq_options *opts);

HC_END_DECLS

#endif
