/* INT8 kernels: dot product of a row of signed codes with x, and decoding with a row scale.
 * The SIMD versions widen 16 (or 8) codes to f32 per step and keep four accumulators so the
 * FMA latency is hidden. */
#include <stddef.h>

#include "scalar/kernels.h"

#if HCI_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* Four partial sums let the compiler overlap the additions. */
static float dot_portable(const int8_t *q, const float *x, int64_t n)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += (float)q[i] * x[i];
        a1 += (float)q[i + 1] * x[i + 1];
        a2 += (float)q[i + 2] * x[i + 2];
        a3 += (float)q[i + 3] * x[i + 3];
    }
    for (; i < n; i++)
        a0 += (float)q[i] * x[i];
    return (a0 + a1) + (a2 + a3);
}

static void decode_portable(float *out, const int8_t *q, float scale, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)q[i] * scale;
}

static const hci_int8_kernels portable = { dot_portable, decode_portable };

#if HCI_HAVE_X86_KERNELS

HCI_TARGET_AVX512 static inline __m512 widen16(const int8_t *q)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)q)));
}

HCI_TARGET_AVX512 static float dot_avx512(const int8_t *q, const float *x, int64_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(widen16(q + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(widen16(q + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(widen16(q + i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(widen16(q + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(widen16(q + i), _mm512_loadu_ps(x + i), a0);
    if (i < n) {
        /* masked loads never touch the bytes past n */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i)));
        a1 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

HCI_TARGET_AVX512 static void decode_avx512(float *out, const int8_t *q, float scale, int64_t n)
{
    __m512 s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(widen16(q + i), s));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i)));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(w, s));
    }
}

static const hci_int8_kernels avx512 = { dot_avx512, decode_avx512 };

HCI_TARGET_AVX2 static inline __m256 widen8(const int8_t *q)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)q)));
}

HCI_TARGET_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

HCI_TARGET_AVX2 static float dot_avx2(const int8_t *q, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(widen8(q + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(widen8(q + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(widen8(q + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(widen8(q + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(widen8(q + i), _mm256_loadu_ps(x + i), a0);
    float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++)
        acc += (float)q[i] * x[i];
    return acc;
}

HCI_TARGET_AVX2 static void decode_avx2(float *out, const int8_t *q, float scale, int64_t n)
{
    __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(widen8(q + i), s));
    for (; i < n; i++)
        out[i] = (float)q[i] * scale;
}

static const hci_int8_kernels avx2 = { dot_avx2, decode_avx2 };

#endif

const hci_int8_kernels *hci_int8_kernels_for(hci_isa isa)
{
#if HCI_HAVE_X86_KERNELS
    if (isa == HCI_ISA_AVX512)
        return &avx512;
    if (isa == HCI_ISA_AVX2)
        return &avx2;
#else
    (void)isa;
#endif
    return &portable;
}
