/**
 * @file grokfast.h
 * @brief Adam with the Grokfast slow-gradient filter, for refining continuous compression
 *        parameters (codebook centroids, trajectory coefficients, scales).
 *
 * Grokfast (Lee et al., arXiv 2405.20233, "EMA" variant) amplifies the slow component of the
 * gradient: ema = alpha * ema + (1 - alpha) * g, then g_hat = g + lambda * ema, and g_hat is
 * handed to Adam. The first step starts the average at the first gradient.
 *
 * Thread safety: an optimiser may be used by one thread at a time.
 */
#ifndef HYPERCOMP_GROKFAST_H
#define HYPERCOMP_GROKFAST_H

#include "hypercomp/common.h"

HC_BEGIN_DECLS

/** @brief Options of the Grokfast-Adam optimiser. Initialise with #HC_GROKFAST_OPTIONS_INIT. */
typedef struct hc_grokfast_options {
    uint32_t struct_size;  /**< sizeof(hc_grokfast_options) as the caller was compiled. */
    float lr;              /**< Adam step size (default 1e-3). */
    float beta1;           /**< Adam first-moment decay (default 0.9). */
    float beta2;           /**< Adam second-moment decay (default 0.999). */
    float eps;             /**< Adam denominator guard (default 1e-8). */
    float alpha;           /**< Grokfast EMA momentum, 0 <= alpha < 1 (default 0.98). */
    float lambda;          /**< Grokfast amplification, >= 0 (default 2.0). */
    uint32_t filter;       /**< 1 applies the Grokfast filter, 0 is plain Adam (default 1). */
} hc_grokfast_options;

/** @brief Static initialiser with the paper's defaults (alpha 0.98, lambda 2.0) and Adam's. */
#define HC_GROKFAST_OPTIONS_INIT { sizeof(hc_grokfast_options), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.98f, 2.0f, 1u }

/**
 * @brief Initialises options to their defaults.
 * @param opts The options to fill.
 * @param struct_size sizeof(hc_grokfast_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_grokfast_options_init(hc_grokfast_options *opts, uint32_t struct_size);

/** @brief An optimiser over a fixed number of float parameters. */
typedef struct hc_grokfast hc_grokfast;

/**
 * @brief Creates an optimiser.
 * @param out Receives the optimiser; free with hc_grokfast_free().
 * @param n_params Number of parameters, at least 1.
 * @param opts Options, or NULL for the defaults.
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_grokfast_new(hc_grokfast **out, size_t n_params, const hc_grokfast_options *opts);

/**
 * @brief Frees an optimiser; NULL is accepted.
 * @param opt The optimiser, or NULL.
 */
HC_API void hc_grokfast_free(hc_grokfast *opt);

/**
 * @brief One step: filters grad, updates the Adam moments and moves params.
 * @param opt The optimiser.
 * @param params n_params values, updated in place.
 * @param grad n_params gradient values of the loss at params (must be finite).
 * @return #HC_OK, or #HC_EINVAL for NULL arguments or a non-finite gradient (params untouched).
 */
HC_API int hc_grokfast_step(hc_grokfast *opt, float *params, const float *grad);

/**
 * @brief Number of steps taken so far.
 * @param opt The optimiser.
 * @return The step count; 0 for NULL.
 */
HC_API uint64_t hc_grokfast_steps(const hc_grokfast *opt);

HC_END_DECLS

#endif
