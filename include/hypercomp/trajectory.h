/**
 * @file trajectory.h
 * @brief Trajectory fits: each segment of L consecutive values approximated by a short series.
 *
 * Two bases, both evaluated at the L segment midpoints t_i = (2i + 1) / L - 1 in [-1, 1]:
 * - #HC_TRAJECTORY_POLY: Chebyshev polynomials T_0 .. T_d (d + 1 coefficients), a stable basis
 *   (no monomials, no Vandermonde matrix); the fit is least squares through a QR factorisation.
 * - #HC_TRAJECTORY_FOURIER: the first d DCT-II cosines cos(pi j (i + 1/2) / L), j = 0 .. d-1,
 *   which are orthogonal on the midpoints, so the least-squares fit is a projection.
 *
 * A segment shorter than the number of terms is fitted with as many terms as it has values (an
 * exact interpolation); the remaining coefficients are zero. The last segment of an array may be
 * shorter than L: it is fitted on its own midpoints.
 *
 * Coefficients quantise to q-bit signed integers with one step per segment:
 * step = max|c| / (2^(q-1) - 1), code = round(c / step). Every coefficient is then off by at most
 * step / 2, and since every basis function is bounded by 1 on the segment, every reconstructed
 * value is off the unquantised fit by at most terms * step / 2.
 *
 * Thread safety: every function is reentrant.
 */
#ifndef HYPERCOMP_TRAJECTORY_H
#define HYPERCOMP_TRAJECTORY_H

#include "hypercomp/common.h"

HC_BEGIN_DECLS

/** @brief The basis of a trajectory fit. The numbers are stable. */
typedef enum hc_trajectory_kind {
    HC_TRAJECTORY_POLY = 0,     /**< Chebyshev polynomial of degree d (d + 1 terms). */
    HC_TRAJECTORY_FOURIER = 1   /**< d DCT-II cosine terms. */
} hc_trajectory_kind;

/** @brief Largest degree / number of cosine terms accepted (64). */
#define HC_TRAJECTORY_MAX_DEGREE 64

/**
 * @brief Number of coefficients per segment.
 * @param kind The basis.
 * @param d Degree (poly) or number of terms (fourier).
 * @return d + 1 for poly, d for fourier; 0 for an unknown kind or d out of range.
 */
HC_API uint32_t hc_trajectory_terms(hc_trajectory_kind kind, uint32_t d);

/**
 * @brief Least-squares fit of one segment.
 * @param out Receives hc_trajectory_terms(kind, d) coefficients.
 * @param kind The basis.
 * @param d Degree (poly, 0 to 64) or number of terms (fourier, 1 to 64).
 * @param x The segment's values (finite).
 * @param len Number of values, at least 1.
 * @return #HC_OK, #HC_EINVAL naming a bad argument, #HC_ENOMEM.
 */
HC_API int hc_trajectory_fit(float *out, hc_trajectory_kind kind, uint32_t d, const float *x, size_t len);

/**
 * @brief Evaluates one segment's series at its len midpoints.
 * @param out Receives len values.
 * @param kind The basis.
 * @param d Degree or number of terms, as for hc_trajectory_fit().
 * @param coefs hc_trajectory_terms(kind, d) coefficients.
 * @param len Number of values, at least 1.
 * @return #HC_OK, #HC_EINVAL, #HC_ENOMEM.
 */
HC_API int hc_trajectory_eval(float *out, hc_trajectory_kind kind, uint32_t d, const float *coefs, size_t len);

/**
 * @brief Fits every segment of L values of an array (the last may be shorter).
 * @param out Receives ceil(n / L) * hc_trajectory_terms(kind, d) coefficients, segment after segment.
 * @param kind The basis.
 * @param d Degree or number of terms.
 * @param L Segment length, at least 1.
 * @param x n finite values.
 * @param n Number of values, at least 1.
 * @return #HC_OK, #HC_EINVAL, #HC_ENOMEM.
 */
HC_API int hc_trajectory_fit_array(float *out, hc_trajectory_kind kind, uint32_t d, uint32_t L, const float *x,
                                   size_t n);

/**
 * @brief Evaluates every segment of an array from its coefficients.
 * @param out Receives n values.
 * @param kind The basis.
 * @param d Degree or number of terms.
 * @param L Segment length.
 * @param coefs ceil(n / L) * hc_trajectory_terms(kind, d) coefficients.
 * @param n Number of values.
 * @return #HC_OK, #HC_EINVAL, #HC_ENOMEM.
 */
HC_API int hc_trajectory_eval_array(float *out, hc_trajectory_kind kind, uint32_t d, uint32_t L, const float *coefs,
                                    size_t n);

/**
 * @brief Quantises one segment's coefficients to q-bit signed codes with one step.
 * @param out Receives terms codes in [-(2^(q-1) - 1), 2^(q-1) - 1].
 * @param out_step Receives the step (0 when every coefficient is 0).
 * @param coefs terms finite coefficients.
 * @param terms Number of coefficients, at least 1.
 * @param q Bits per code, 2 to 16.
 * @return #HC_OK or #HC_EINVAL.
 */
HC_API int hc_trajectory_quantize(int32_t *out, float *out_step, const float *coefs, uint32_t terms, uint32_t q);

/**
 * @brief Turns codes back into coefficients: out[j] = codes[j] * step.
 * @param out Receives terms coefficients.
 * @param codes terms codes.
 * @param step The segment's step.
 * @param terms Number of coefficients.
 */
HC_API void hc_trajectory_dequantize(float *out, const int32_t *codes, float step, uint32_t terms);

HC_END_DECLS

#endif
