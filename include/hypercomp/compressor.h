/**
 * @file compressor.h
 * @brief Compressors, compressed tensors, codec spec strings and quality statistics.
 *
 * A compressor (#hc_compressor) turns a tensor view into a compressed tensor (#hc_ctensor).
 * A compressed tensor decodes, multiplies a vector (y = W x without materialising W), reports
 * its statistics and serialises to a self-describing byte string.
 *
 * Thread safety: a compressor may be used by one thread at a time; distinct compressors are
 * independent. A compressed tensor may be decoded and multiplied by many threads at once; only
 * hc_ctensor_set_threads() and hc_ctensor_free() need exclusive access.
 */
#ifndef HYPERCOMP_COMPRESSOR_H
#define HYPERCOMP_COMPRESSOR_H

#include "hypercomp/common.h"

HC_BEGIN_DECLS

/** @brief An opaque compressor: one technique with its options. */
typedef struct hc_compressor hc_compressor;

/** @brief An opaque compressed tensor. */
typedef struct hc_ctensor hc_ctensor;

/**
 * @brief Stable numeric identifiers of codecs, stored in serialised tensors and containers.
 * The numbers never change meaning.
 */
typedef enum hc_codec_id {
    HC_CODEC_F32 = 1,             /**< Uncompressed binary32 (kept tensors). */
    HC_CODEC_FP16 = 2,            /**< binary16, round to nearest even. */
    HC_CODEC_BF16 = 3,            /**< bfloat16, round to nearest even. */
    HC_CODEC_INT8 = 4,            /**< Symmetric 8-bit per row with a percentile clip. */
    HC_CODEC_NF4 = 5,             /**< QLoRA NormalFloat-4 with double-quantised absmax. */
    HC_CODEC_TERNARY = 6,         /**< BitNet b1.58 ternary with one absmean scale. */
    HC_CODEC_SEEDLM = 16,         /**< SeedLM: LFSR seeds and 4-bit coefficients. */
    HC_CODEC_VPTQ = 32,           /**< VPTQ: vector quantisation with k-means codebooks. */
    HC_CODEC_HYPER_POLY = 48,     /**< Trajectory fit with a Chebyshev polynomial per segment. */
    HC_CODEC_HYPER_FOURIER = 49,  /**< Trajectory fit with a cosine series per segment. */
    HC_CODEC_HYPER_ERGODIC = 50,  /**< Hyper-Compression's ergodic torus winding. */
    HC_CODEC_RESIDUAL = 64        /**< A sum of stage codings (pipeline refine mode). */
} hc_codec_id;

/**
 * @brief Statistics of a compressed tensor. Initialise struct_size before passing it.
 *
 * Error fields compare with the original tensor; they are NaN when the original is unknown
 * (a deserialised tensor), until hc_ctensor_measure() is called with the original.
 */
typedef struct hc_stats {
    uint32_t struct_size;   /**< sizeof(hc_stats) as the caller was compiled. */
    uint32_t codec_id;      /**< The #hc_codec_id. */
    uint64_t n_values;      /**< Number of weights. */
    uint64_t bits;          /**< Bits of the serialised form: every header, scale and codebook bit. */
    double bpw;             /**< bits / n_values. */
    double ratio;           /**< Bits of the original dtype over #bits. */
    double rel_rmse;        /**< ||W - W'|| / ||W|| (Frobenius). */
    double snr_db;          /**< 20 log10(||W|| / ||W - W'||). */
    double max_abs_err;     /**< max |W - W'|. */
    double cosine;          /**< <W, W'> / (||W|| ||W'||). */
    double sparsity;        /**< Fraction of exact zeros in W'. */
    double seconds;         /**< Wall time of the compression, 0 when unknown. */
} hc_stats;

/** @brief Static initialiser for #hc_stats. */
#define HC_STATS_INIT { sizeof(hc_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief Creates a compressor from a codec spec string.
 *
 * Grammar: `codec[:item[,item]...]`, where an item is a preset word (`4bit`) or `key=value`;
 * items may also be separated by ':'. Examples: `fp16`, `bf16`, `int8`, `int8:clip=99.99`,
 * `nf4`, `ternary`, `f32`. The key `threads=N` is accepted by every codec.
 * @param out Receives the compressor; free it with hc_compressor_free().
 * @param spec The spec string.
 * @return #HC_OK; #HC_EINVAL with a message naming the bad part; #HC_ENOTFOUND for an unknown codec.
 */
HC_API int hc_compressor_from_spec(hc_compressor **out, const char *spec);

/**
 * @brief Frees a compressor; NULL is accepted.
 * @param c The compressor, or NULL.
 */
HC_API void hc_compressor_free(hc_compressor *c);

/**
 * @brief The canonical spec string of a compressor, with every option spelled out.
 * @param c The compressor.
 * @return A string that lives as long as the compressor.
 */
HC_API const char *hc_compressor_spec(const hc_compressor *c);

/**
 * @brief Sets the number of threads used by compressions (and inherited by their results).
 * @param c The compressor.
 * @param threads 1 or more; 0 means the number of online CPUs.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_compressor_set_threads(hc_compressor *c, uint32_t threads);

/**
 * @brief Compresses a tensor.
 *
 * The view may be F32, F16 or BF16 and must hold only finite values; a NaN or an infinity is
 * rejected with #HC_EINVAL naming the tensor and the index. A tensor with no elements is
 * rejected with #HC_EINVAL.
 * @param out Receives the compressed tensor; free it with hc_ctensor_free().
 * @param c The compressor.
 * @param t The tensor.
 * @return #HC_OK or a negative status; on failure *out is set to NULL.
 */
HC_API int hc_compress(hc_ctensor **out, hc_compressor *c, const hc_tensor_view *t);

/**
 * @brief Frees a compressed tensor; NULL is accepted.
 * @param ct The compressed tensor, or NULL.
 */
HC_API void hc_ctensor_free(hc_ctensor *ct);

/**
 * @brief Decodes the whole tensor into a caller buffer.
 * @param ct The compressed tensor.
 * @param dtype The element type to write.
 * @param buf Destination, row-major.
 * @param buf_bytes Size of buf in bytes; at least numel * hc_dtype_size(dtype).
 * @return #HC_OK, #HC_EINVAL for a short buffer or unknown dtype.
 */
HC_API int hc_ctensor_decode(const hc_ctensor *ct, hc_dtype dtype, void *buf, size_t buf_bytes);

/**
 * @brief Computes y = W x straight from the compressed form, without materialising W.
 * @param ct The compressed tensor, viewed as rows x cols (see #hc_tensor_view).
 * @param x cols inputs.
 * @param y rows outputs; must not overlap x.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_ctensor_matvec(const hc_ctensor *ct, const float *x, float *y);

/**
 * @brief Fills statistics; error fields are NaN when the original is unknown.
 * @param out Statistics; out->struct_size must be set.
 * @param ct The compressed tensor.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_ctensor_stats(hc_stats *out, const hc_ctensor *ct);

/**
 * @brief Compares the compressed tensor with an original, fills statistics and remembers them.
 * @param out Statistics (may be NULL to only remember them).
 * @param ct The compressed tensor.
 * @param original A view of the same shape.
 * @return #HC_OK, #HC_EINVAL for a shape mismatch.
 */
HC_API int hc_ctensor_measure(hc_stats *out, hc_ctensor *ct, const hc_tensor_view *original);

/**
 * @brief Number of dimensions of the original tensor.
 * @param ct The compressed tensor.
 * @return The dimension count; 0 for NULL.
 */
HC_API uint32_t hc_ctensor_ndim(const hc_ctensor *ct);

/**
 * @brief Shape of the original tensor.
 * @param ct The compressed tensor.
 * @param shape Receives #HC_MAX_DIMS extents; entries past ndim are 0.
 */
HC_API void hc_ctensor_shape(const hc_ctensor *ct, int64_t shape[HC_MAX_DIMS]);

/**
 * @brief Number of values of the tensor.
 * @param ct The compressed tensor.
 * @return The value count; 0 for NULL.
 */
HC_API int64_t hc_ctensor_numel(const hc_ctensor *ct);

/**
 * @brief Rows of the matrix view (the first dimension; 1 for 0-D and 1-D tensors).
 * @param ct The compressed tensor.
 * @return The row count; 0 for NULL.
 */
HC_API int64_t hc_ctensor_rows(const hc_ctensor *ct);

/**
 * @brief Columns of the matrix view (the product of the other dimensions).
 * @param ct The compressed tensor.
 * @return The column count; 0 for NULL.
 */
HC_API int64_t hc_ctensor_cols(const hc_ctensor *ct);

/**
 * @brief The dtype of the tensor that was compressed.
 * @param ct The compressed tensor.
 * @return The original dtype; #HC_DTYPE_F32 for NULL.
 */
HC_API hc_dtype hc_ctensor_orig_dtype(const hc_ctensor *ct);

/**
 * @brief The #hc_codec_id of the compressed tensor.
 * @param ct The compressed tensor.
 * @return The codec id; 0 for NULL.
 */
HC_API uint32_t hc_ctensor_codec_id(const hc_ctensor *ct);

/**
 * @brief The codec's short name ("nf4", "int8", ...); static storage.
 * @param ct The compressed tensor.
 * @return A static string; "?" for NULL.
 */
HC_API const char *hc_ctensor_codec_name(const hc_ctensor *ct);

/**
 * @brief Sets how many threads decode and matvec use.
 *
 * Work on more than one thread runs on a process-wide pool of worker threads, started when
 * first needed and kept, asleep, between calls, so that a call does not pay for starting
 * threads. The calling thread does one share of the work itself. While one call uses the pool,
 * a concurrent call from another thread (or a call nested in a worker) starts threads for its
 * own use instead. Worker threads block all signals. They are joined when the process exits or
 * the library is unloaded; a child of fork() starts its own.
 * @param ct The compressed tensor.
 * @param threads 1 or more; 0 means the number of online CPUs.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_ctensor_set_threads(hc_ctensor *ct, uint32_t threads);

/**
 * @brief Size in bytes of the serialised form; 0 for NULL.
 * @param ct The compressed tensor.
 * @return The size in bytes; 0 for NULL.
 */
HC_API size_t hc_ctensor_serialized_size(const hc_ctensor *ct);

/**
 * @brief Writes the serialised form (layout in doc/format.md).
 * @param ct The compressed tensor.
 * @param buf Destination.
 * @param buf_size At least hc_ctensor_serialized_size(ct).
 * @return #HC_OK or #HC_EINVAL for a short buffer.
 */
HC_API int hc_ctensor_serialize(const hc_ctensor *ct, void *buf, size_t buf_size);

/**
 * @brief Reads a serialised compressed tensor, checking every length and the checksum.
 * @param out Receives the tensor (it owns a copy of the bytes).
 * @param buf The serialised bytes.
 * @param size Their number.
 * @return #HC_OK; #HC_EFORMAT for malformed, truncated or corrupt input; #HC_EVERSION for a
 *         newer format; #HC_EUNSUPPORTED for an unknown codec.
 */
HC_API int hc_ctensor_deserialize(hc_ctensor **out, const void *buf, size_t size);

HC_END_DECLS

#endif
