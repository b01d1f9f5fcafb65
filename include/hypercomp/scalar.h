/**
 * @file scalar.h
 * @brief Scalar codecs: F32, FP16, BF16, INT8 per row, NF4 and BitNet b1.58 ternary.
 *
 * Bit layouts are described in doc/codecs.md.
 */
#ifndef HYPERCOMP_SCALAR_H
#define HYPERCOMP_SCALAR_H

#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief Which scalar codec. The numbers are stable. */
typedef enum hc_scalar_kind {
    HC_SCALAR_F32 = 0,      /**< Stored as binary32 (spec "f32"). */
    HC_SCALAR_FP16 = 1,     /**< binary16, round to nearest even (spec "fp16"). */
    HC_SCALAR_BF16 = 2,     /**< bfloat16, round to nearest even (spec "bf16"). */
    HC_SCALAR_INT8 = 3,     /**< Symmetric int8 per row, percentile clip (spec "int8"). */
    HC_SCALAR_NF4 = 4,      /**< NormalFloat-4, double-quantised absmax (spec "nf4"). */
    HC_SCALAR_TERNARY = 5   /**< BitNet b1.58 {-1, 0, 1} with one scale (spec "ternary"). */
} hc_scalar_kind;

/** @brief Options of the scalar codecs. Initialise with #HC_SCALAR_OPTIONS_INIT. */
typedef struct hc_scalar_options {
    uint32_t struct_size;       /**< sizeof(hc_scalar_options) as the caller was compiled. */
    hc_scalar_kind kind;        /**< The codec. */
    float clip_percentile;      /**< INT8: percentile of |w| per row used as the clip (0 < p <= 100; 100 is absmax),
                                     by linear interpolation between order statistics (doc/codecs.md). */
    uint32_t block_size;        /**< NF4: values per absmax block (default 64). */
    uint32_t scale_block_size;  /**< NF4: absmaxes per double-quantisation block (default 256). */
    uint32_t threads;           /**< Threads for compression; 0 means all online CPUs. */
} hc_scalar_options;

/** @brief Static initialiser: FP16, clip 99.99, NF4 blocks 64/256, one thread. */
#define HC_SCALAR_OPTIONS_INIT { sizeof(hc_scalar_options), HC_SCALAR_FP16, 99.99f, 64, 256, 1 }

/**
 * @brief Initialises scalar options to their defaults.
 * @param opts The options to fill.
 * @param struct_size sizeof(hc_scalar_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_scalar_options_init(hc_scalar_options *opts, uint32_t struct_size);

/**
 * @brief Creates a scalar compressor.
 * @param out Receives the compressor.
 * @param opts Options; NULL means the defaults (FP16).
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_scalar_new(hc_compressor **out, const hc_scalar_options *opts);

/**
 * @brief The 16 NF4 levels of QLoRA, ascending, in [-1, 1].
 * @param out Receives 16 floats.
 */
HC_API void hc_nf4_levels(float out[16]);

HC_END_DECLS

#endif
