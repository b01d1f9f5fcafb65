/**
 * @file common.h
 * @brief Status codes, error messages, versions, element types and tensor views.
 *
 * Every function that can fail returns an `int` status: #HC_OK (0) on success or one of the
 * negative #hc_status codes, whose numbers never change meaning. After a failure,
 * hc_last_error() returns a message for the calling thread that names the problem and the value.
 */
#ifndef HYPERCOMP_COMMON_H
#define HYPERCOMP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/export.h"
#include "hypercomp/version.h"

HC_BEGIN_DECLS

/** @brief Status codes. The numbers are part of the ABI and never change meaning. */
typedef enum hc_status {
    HC_OK = 0,              /**< Success. */
    HC_EINVAL = -1,         /**< An argument is invalid (NULL, out of range, malformed spec, NaN input...). */
    HC_ENOMEM = -2,         /**< Memory could not be allocated. */
    HC_EIO = -3,            /**< A file could not be read or written. */
    HC_EFORMAT = -4,        /**< Serialised data or a file is malformed, truncated or corrupt. */
    HC_EVERSION = -5,       /**< A struct_size or format version is newer than this library knows. */
    HC_ECANCELLED = -6,     /**< A callback returned nonzero and the work stopped. */
    HC_EUNSUPPORTED = -7,   /**< The request is valid but not supported (dtype, codec, CPU...). */
    HC_EQUALITY = -8,       /**< A quality gate was not met. */
    HC_ENOTFOUND = -9       /**< A named item (tensor, codec, key) does not exist. */
} hc_status;

/**
 * @brief The symbolic name of a status code, e.g. "HC_EINVAL".
 * @param status A status code.
 * @return A static string; "HC_UNKNOWN" for a code this library does not know.
 */
HC_API const char *hc_status_name(int status);

/**
 * @brief The message of the last failure on the calling thread.
 *
 * Set by every function that returns a negative status; not cleared by later successes.
 * @return A thread-local string, never NULL, valid until the next library call on this thread.
 */
HC_API const char *hc_last_error(void);

/**
 * @brief The library's version as HC_VERSION_NUMBER was when it was built.
 * @return HC_VERSION_NUMBER of the built library.
 */
HC_API uint32_t hc_version(void);

/**
 * @brief The library's version string, "major.minor.patch".
 * @return A static string.
 */
HC_API const char *hc_version_string(void);

/** @brief Element types of tensors the library reads and writes. */
typedef enum hc_dtype {
    HC_DTYPE_F32 = 0,   /**< IEEE 754 binary32. */
    HC_DTYPE_F16 = 1,   /**< IEEE 754 binary16. */
    HC_DTYPE_BF16 = 2   /**< bfloat16: the upper half of a binary32. */
} hc_dtype;

/**
 * @brief Bytes per element of a dtype.
 * @param dtype An element type.
 * @return 4, 2 or 2; 0 for an unknown dtype.
 */
HC_API size_t hc_dtype_size(hc_dtype dtype);

/**
 * @brief The name of a dtype as safetensors spells it ("F32", "F16", "BF16").
 * @param dtype An element type.
 * @return A static string; "?" for an unknown dtype.
 */
HC_API const char *hc_dtype_name(hc_dtype dtype);

/** @brief The most dimensions a tensor may have. */
#define HC_MAX_DIMS 4

/**
 * @brief A borrowed, row-major, contiguous tensor. The library never frees or keeps it.
 *
 * A tensor of shape (d0, d1, ...) is treated as a matrix of d0 rows and d1*d2*... columns
 * (an output-channel view: a convolution's [out, in, kh, kw] is out rows); a 1-D tensor is one
 * row. Initialise with #HC_TENSOR_VIEW_INIT or hc_tensor_view_init().
 */
typedef struct hc_tensor_view {
    uint32_t struct_size;      /**< sizeof(hc_tensor_view) as the caller was compiled. */
    const char *name;          /**< Name used in messages and files; may be NULL. */
    hc_dtype dtype;            /**< Element type of data. */
    uint32_t ndim;             /**< Number of dimensions, 0 to #HC_MAX_DIMS (0 is a scalar). */
    int64_t shape[HC_MAX_DIMS];/**< Extent of each dimension; entries past ndim are ignored. */
    const void *data;          /**< The elements, row-major and contiguous. */
    const float *importance;   /**< Optional: one non-negative weight per column (diag of X^T X), or NULL. */
    const float *hessian;      /**< Optional: cols x cols input covariance X^T X, row-major, or NULL. */
} hc_tensor_view;

/** @brief Static initialiser for an #hc_tensor_view. */
#define HC_TENSOR_VIEW_INIT { sizeof(hc_tensor_view), NULL, HC_DTYPE_F32, 0, { 0, 0, 0, 0 }, NULL, NULL, NULL }

/**
 * @brief Initialises a tensor view to an empty F32 view.
 * @param view The view to fill.
 * @param struct_size sizeof(hc_tensor_view) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL for NULL or a too small size, #HC_EVERSION for a larger size.
 */
HC_API int hc_tensor_view_init(hc_tensor_view *view, uint32_t struct_size);

HC_END_DECLS

#endif
