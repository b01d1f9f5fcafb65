/**
 * @file kmeans.h
 * @brief A k-means++ codebook learner: seeded initialisation, weighted Lloyd iterations with
 *        distances computed as one matrix product, and nearest-centroid assignment.
 *
 * The learner is what VPTQ uses for its codebooks; it is public because a codebook learned once
 * may be shared, inspected or reused by callers.
 *
 * Determinism: the same points, options (seed included) and thread count give the same
 * codebook bit for bit. Thread safety: the functions keep no state; any number of threads may
 * call them at once on distinct outputs.
 */
#ifndef HYPERCOMP_KMEANS_H
#define HYPERCOMP_KMEANS_H

#include "hypercomp/common.h"

HC_BEGIN_DECLS

/** @brief Options of hc_kmeans_learn(). Initialise with #HC_KMEANS_OPTIONS_INIT. */
typedef struct hc_kmeans_options {
    uint32_t struct_size;  /**< sizeof(hc_kmeans_options) as the caller was compiled. */
    uint32_t k;            /**< Number of centroids, 1 to 65536 (default 256). */
    uint32_t max_iter;     /**< Cap on Lloyd iterations after initialisation (default 25; 0 keeps the k-means++ seeds). */
    float tol;             /**< Stop when an iteration lowers the objective by less than this fraction (default 1e-4). */
    uint64_t seed;         /**< Seed of the k-means++ sampling and of the training subsample (default 1). */
    uint32_t threads;      /**< Worker threads; 0 means all online CPUs (default 1). */
    uint32_t max_points;   /**< Train on a seeded subsample of at most this many points when there are
                                more; 0 means use every point (default 0). Assignment always sees all. */
} hc_kmeans_options;

/** @brief Static initialiser with the defaults listed in #hc_kmeans_options. */
#define HC_KMEANS_OPTIONS_INIT { sizeof(hc_kmeans_options), 256u, 25u, 1e-4f, 1u, 1u, 0u }

/**
 * @brief Initialises k-means options to their defaults.
 * @param opts The options to fill.
 * @param struct_size sizeof(hc_kmeans_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_kmeans_options_init(hc_kmeans_options *opts, uint32_t struct_size);

/** @brief What a learning run did. */
typedef struct hc_kmeans_report {
    uint32_t struct_size;   /**< sizeof(hc_kmeans_report) as the caller was compiled. */
    uint32_t iterations;    /**< Lloyd iterations run. */
    uint32_t reseeded;      /**< Empty clusters re-seeded over all iterations. */
    uint64_t trained_on;    /**< Points used for training (after subsampling). */
    double objective;       /**< Final weighted sum of squared distances over the training points. */
} hc_kmeans_report;

/** @brief Static initialiser for #hc_kmeans_report. */
#define HC_KMEANS_REPORT_INIT { sizeof(hc_kmeans_report), 0u, 0u, 0u, 0.0 }

/**
 * @brief Learns k centroids of n points of dimension dim.
 *
 * k-means++ (Arthur & Vassilvitskii 2007) picks the seeds with probability proportional to
 * weight x squared distance; Lloyd iterations follow. A cluster left empty is re-seeded at the
 * training point farthest (weighted) from its centroid. With fewer distinct points than k, the
 * spare centroids duplicate existing ones.
 * @param out Receives k x dim centroids, row-major.
 * @param points n x dim values, row-major, finite.
 * @param n Number of points, at least 1.
 * @param dim Dimension, 1 to 256.
 * @param weights n non-negative per-point weights (not all zero), or NULL for equal weights.
 * @param opts Options, or NULL for the defaults.
 * @param report Optional: receives what the run did (its struct_size must be set); may be NULL.
 * @return #HC_OK, #HC_EINVAL naming a bad argument, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_kmeans_learn(float *out, const float *points, size_t n, uint32_t dim, const float *weights,
                           const hc_kmeans_options *opts, hc_kmeans_report *report);

/**
 * @brief Assigns each point to its nearest centroid (ties go to the lower index).
 * @param out Receives n centroid indices.
 * @param points n x dim values, row-major.
 * @param n Number of points.
 * @param dim Dimension, 1 to 256.
 * @param centroids k x dim values, row-major.
 * @param k Number of centroids, 1 to 65536.
 * @param threads Worker threads; 0 means all online CPUs.
 * @return #HC_OK, #HC_EINVAL naming a bad argument, #HC_ENOMEM.
 */
HC_API int hc_kmeans_assign(uint32_t *out, const float *points, size_t n, uint32_t dim, const float *centroids,
                            uint32_t k, uint32_t threads);

HC_END_DECLS

#endif
