/* SeedLM's seed-screening kernel of the search (a portable version and AVX2 / AVX-512 versions
 * chosen by hci_cpu_isa(); tests compare them with HYPERCOMP_ISA=portable). Decode is in
 * seedlm_decode.c, the matvec in seedlm_matvec.c. */
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/cpu.h"
#include "common/error.h"
#include "seedlm/seedlm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HCI_SEEDLM_X86 1
#endif

#define L HCI_SEEDLM_LANES
/* Absolute slack, in units of |w|^2, on |Q^T w|^2 in the "some mantissa can be nonzero" test:
 * covers the float rounding of Q^T w even when it is far smaller than w. */
#define NZ_SLACK 3e-5f

/* ---- screening: least-squares residual of 16 seeds against one block ---- */

uint32_t hci_seedlm_screen_portable(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                                    float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    const size_t stride = (size_t)C * P * L;
    const float slack = NZ_SLACK * wn2;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        float zz[L] = { 0 }, res[L];
        for (uint32_t p = 0; p < P; p++) {
            float z[L] = { 0 };
            for (uint32_t c = 0; c < C; c++)
                for (int l = 0; l < L; l++)
                    z[l] += q[(size_t)(c * P + p) * L + (size_t)l] * w[c];
            for (int l = 0; l < L; l++)
                zz[l] += z[l] * z[l];
        }
        uint32_t m = 0;
        for (int l = 0; l < L; l++) {
            res[l] = wn2 - zz[l];
            m |= (uint32_t)(res[l] <= thresh && rho2[g * L + (uint32_t)l] * (zz[l] + slack) >= tau) << l;
        }
        if (m) {
            *mask = m;
            memcpy(bounds, res, sizeof res);
            return g;
        }
    }
    return ngroups;
}

#ifdef HCI_SEEDLM_X86
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define T256 __attribute__((target("avx2,fma")))

/* With C and P compile-time constants (the presets) the broadcasts of w and the P accumulators
 * stay in registers across the group loop. */
static inline __attribute__((always_inline)) T512 uint32_t screen512_body(const float *qsoa, uint32_t g0,
                                                                         uint32_t ngroups, const float *w,
                                                                         float wn2, float thresh,
                                                                         const float *rho2, float tau, uint32_t C,
                                                                         uint32_t P, uint32_t *mask, float *bounds)
{
    __m512 wv[HCI_SEEDLM_MAX_C];
#pragma GCC unroll 16
    for (uint32_t c = 0; c < C; c++)
        wv[c] = _mm512_set1_ps(w[c]);
    const __m512 thr = _mm512_set1_ps(thresh), n2 = _mm512_set1_ps(wn2);
    const __m512 slack = _mm512_set1_ps(NZ_SLACK * wn2), tv = _mm512_set1_ps(tau);
    const size_t stride = (size_t)C * P * L;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        __m512 zz = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (uint32_t p = 0; p < P; p++) {
            __m512 z = _mm512_mul_ps(_mm512_load_ps(q + p * L), wv[0]);
#pragma GCC unroll 16
            for (uint32_t c = 1; c < C; c++)
                z = _mm512_fmadd_ps(_mm512_load_ps(q + (c * P + p) * L), wv[c], z);
            zz = _mm512_fmadd_ps(z, z, zz);
        }
        __m512 res = _mm512_sub_ps(n2, zz);
        __mmask16 m = _mm512_cmp_ps_mask(res, thr, _CMP_LE_OQ) &
                      _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_load_ps(rho2 + g * L), _mm512_add_ps(zz, slack)), tv,
                                         _CMP_GE_OQ);
        if (m) {
            *mask = m;
            _mm512_storeu_ps(bounds, res);
            return g;
        }
    }
    return ngroups;
}

static T512 uint32_t screen512(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                               float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    if (C == 8 && P == 3)
        return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 8, 3, mask, bounds);
    if (C == 12 && P == 4)
        return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 12, 4, mask, bounds);
    return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, C, P, mask, bounds);
}

static inline __attribute__((always_inline)) T256 uint32_t screen256_body(const float *qsoa, uint32_t g0,
                                                                         uint32_t ngroups, const float *w,
                                                                         float wn2, float thresh,
                                                                         const float *rho2, float tau, uint32_t C,
                                                                         uint32_t P, uint32_t *mask, float *bounds)
{
    const __m256 thr = _mm256_set1_ps(thresh), n2 = _mm256_set1_ps(wn2);
    const __m256 slack = _mm256_set1_ps(NZ_SLACK * wn2), tv = _mm256_set1_ps(tau);
    const size_t stride = (size_t)C * P * L;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        __m256 zz0 = _mm256_setzero_ps(), zz1 = _mm256_setzero_ps();
#pragma GCC unroll 16
        for (uint32_t p = 0; p < P; p++) {
            __m256 w0 = _mm256_broadcast_ss(w);
            __m256 z0 = _mm256_mul_ps(_mm256_load_ps(q + p * L), w0);
            __m256 z1 = _mm256_mul_ps(_mm256_load_ps(q + p * L + 8), w0);
            /* partly unrolled: a fully unrolled group is a basic block too large for valgrind's
             * translator (valgrind runs this path, as it hides AVX-512) */
#pragma GCC unroll 4
            for (uint32_t c = 1; c < C; c++) {
                __m256 wc = _mm256_broadcast_ss(w + c);
                z0 = _mm256_fmadd_ps(_mm256_load_ps(q + (c * P + p) * L), wc, z0);
                z1 = _mm256_fmadd_ps(_mm256_load_ps(q + (c * P + p) * L + 8), wc, z1);
            }
            zz0 = _mm256_fmadd_ps(z0, z0, zz0);
            zz1 = _mm256_fmadd_ps(z1, z1, zz1);
        }
        __m256 r0 = _mm256_sub_ps(n2, zz0), r1 = _mm256_sub_ps(n2, zz1);
        __m256 k0 = _mm256_and_ps(_mm256_cmp_ps(r0, thr, _CMP_LE_OQ),
                                  _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(rho2 + g * L), _mm256_add_ps(zz0, slack)), tv, _CMP_GE_OQ));
        __m256 k1 = _mm256_and_ps(_mm256_cmp_ps(r1, thr, _CMP_LE_OQ),
                                  _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(rho2 + g * L + 8), _mm256_add_ps(zz1, slack)), tv, _CMP_GE_OQ));
        uint32_t m = (uint32_t)_mm256_movemask_ps(k0) | ((uint32_t)_mm256_movemask_ps(k1) << 8);
        if (m) {
            *mask = m;
            _mm256_storeu_ps(bounds, r0);
            _mm256_storeu_ps(bounds + 8, r1);
            return g;
        }
    }
    return ngroups;
}

static T256 uint32_t screen256(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                               float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    if (C == 8 && P == 3)
        return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 8, 3, mask, bounds);
    if (C == 12 && P == 4)
        return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 12, 4, mask, bounds);
    return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, C, P, mask, bounds);
}
#endif

hci_seedlm_screen_fn hci_seedlm_screen_kernel(void)
{
#ifdef HCI_SEEDLM_X86
    switch (hci_cpu_isa()) {
    case HCI_ISA_AVX512: return screen512;
    case HCI_ISA_AVX2: return screen256;
    default: break;
    }
#endif
    return hci_seedlm_screen_portable;
}
