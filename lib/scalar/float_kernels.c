/* F32 / FP16 / BF16 kernels: dot product with x and decoding to f32. The SIMD versions
 * convert with vcvtph2ps (FP16) or a 16-bit shift (BF16), both exact, so decoding gives the
 * same bits as the portable conversion for every finite value and infinity. */
#include <string.h>

#include "common/bytes.h"
#include "hypercomp/compressor.h"
#include "scalar/kernels.h"

#if HCI_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* Conversions inlined here so the portable loops need no call per element. FP16: the 15 bits
 * below the sign, moved to a binary32 exponent/mantissa position and scaled by 2^112, give the
 * exact value of every normal and subnormal half; infinities and NaNs keep their payload. The
 * result is bit-identical to hci_f16_to_f32. */
static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float f16_value(const uint8_t *p)
{
    uint32_t h = hci_get_u16(p), em = h & 0x7fffu, sign = (h & 0x8000u) << 16;
    float mag = em >= 0x7c00u ? bits_f32(0x7f800000u | ((em & 0x3ffu) << 13)) : bits_f32(em << 13) * 0x1p112f;
    uint32_t u;
    memcpy(&u, &mag, sizeof u);
    return bits_f32(u | sign);
}

static inline float bf16_value(const uint8_t *p)
{
    return bits_f32((uint32_t)hci_get_u16(p) << 16);
}

static inline float f32_value(const uint8_t *p)
{
    return hci_get_f32(p);
}

/* Portable loops with four partial sums, which lets the compiler overlap the additions. */
#define DEFINE_PORTABLE(name, esize, VALUE)                                                              \
    static float dot_##name##_portable(const uint8_t *p, const float *x, int64_t n)                     \
    {                                                                                                   \
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;                                               \
        int64_t i = 0;                                                                                  \
        for (; i + 4 <= n; i += 4) {                                                                    \
            a0 += VALUE(p + (esize) * i) * x[i];                                                        \
            a1 += VALUE(p + (esize) * (i + 1)) * x[i + 1];                                              \
            a2 += VALUE(p + (esize) * (i + 2)) * x[i + 2];                                              \
            a3 += VALUE(p + (esize) * (i + 3)) * x[i + 3];                                              \
        }                                                                                               \
        for (; i < n; i++)                                                                              \
            a0 += VALUE(p + (esize) * i) * x[i];                                                        \
        return (a0 + a1) + (a2 + a3);                                                                   \
    }                                                                                                   \
    static void decode_##name##_portable(float *out, const uint8_t *p, int64_t n)                       \
    {                                                                                                   \
        for (int64_t i = 0; i < n; i++)                                                                 \
            out[i] = VALUE(p + (esize) * i);                                                            \
    }

DEFINE_PORTABLE(f32, 4, f32_value)
DEFINE_PORTABLE(f16, 2, f16_value)
DEFINE_PORTABLE(bf16, 2, bf16_value)

static const hci_float_kernels portable[3] = {
    { dot_f32_portable, decode_f32_portable },
    { dot_f16_portable, decode_f16_portable },
    { dot_bf16_portable, decode_bf16_portable },
};

#if HCI_HAVE_X86_KERNELS

/* One AVX-512 dot/decode pair per element type; LOAD16 turns 16 elements at p into f32 and
 * MLOAD16 does it for the first m of them without reading past them. */
#define DEFINE_AVX512(name, esize, LOAD16, MLOAD16)                                                      \
    HCI_TARGET_AVX512 static float dot_##name##_avx512(const uint8_t *p, const float *x, int64_t n)     \
    {                                                                                                   \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                     \
        int64_t i = 0;                                                                                  \
        for (; i + 64 <= n; i += 64) {                                                                  \
            a0 = _mm512_fmadd_ps(LOAD16(p + (esize) * i), _mm512_loadu_ps(x + i), a0);                 \
            a1 = _mm512_fmadd_ps(LOAD16(p + (esize) * (i + 16)), _mm512_loadu_ps(x + i + 16), a1);      \
            a2 = _mm512_fmadd_ps(LOAD16(p + (esize) * (i + 32)), _mm512_loadu_ps(x + i + 32), a2);      \
            a3 = _mm512_fmadd_ps(LOAD16(p + (esize) * (i + 48)), _mm512_loadu_ps(x + i + 48), a3);      \
        }                                                                                               \
        for (; i + 16 <= n; i += 16)                                                                    \
            a0 = _mm512_fmadd_ps(LOAD16(p + (esize) * i), _mm512_loadu_ps(x + i), a0);                  \
        if (i < n) {                                                                                    \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                            \
            a1 = _mm512_fmadd_ps(MLOAD16(m, p + (esize) * i), _mm512_maskz_loadu_ps(m, x + i), a1);     \
        }                                                                                               \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));       \
    }                                                                                                   \
    HCI_TARGET_AVX512 static void decode_##name##_avx512(float *out, const uint8_t *p, int64_t n)       \
    {                                                                                                   \
        int64_t i = 0;                                                                                  \
        for (; i + 16 <= n; i += 16)                                                                    \
            _mm512_storeu_ps(out + i, LOAD16(p + (esize) * i));                                         \
        if (i < n) { /* masked stores are slow on some cores: only the tail */                          \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                            \
            _mm512_mask_storeu_ps(out + i, m, MLOAD16(m, p + (esize) * i));                             \
        }                                                                                               \
    }

HCI_TARGET_AVX512 static inline __m512 load_f32_16(const uint8_t *p)
{
    return _mm512_loadu_ps((const float *)(const void *)p);
}
HCI_TARGET_AVX512 static inline __m512 mload_f32_16(__mmask16 m, const uint8_t *p)
{
    return _mm512_maskz_loadu_ps(m, p);
}
HCI_TARGET_AVX512 static inline __m512 load_f16_16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
HCI_TARGET_AVX512 static inline __m512 mload_f16_16(__mmask16 m, const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
HCI_TARGET_AVX512 static inline __m512 load_bf16_16(const uint8_t *p)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
HCI_TARGET_AVX512 static inline __m512 mload_bf16_16(__mmask16 m, const uint8_t *p)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

DEFINE_AVX512(f32, 4, load_f32_16, mload_f32_16)
DEFINE_AVX512(f16, 2, load_f16_16, mload_f16_16)
DEFINE_AVX512(bf16, 2, load_bf16_16, mload_bf16_16)

static const hci_float_kernels avx512[3] = {
    { dot_f32_avx512, decode_f32_avx512 },
    { dot_f16_avx512, decode_f16_avx512 },
    { dot_bf16_avx512, decode_bf16_avx512 },
};

HCI_TARGET_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* AVX2: eight elements per step, a scalar tail with the portable conversion. */
#define DEFINE_AVX2(name, esize, LOAD8, SCALAR)                                                          \
    HCI_TARGET_AVX2 static float dot_##name##_avx2(const uint8_t *p, const float *x, int64_t n)         \
    {                                                                                                   \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                     \
        int64_t i = 0;                                                                                  \
        for (; i + 32 <= n; i += 32) {                                                                  \
            a0 = _mm256_fmadd_ps(LOAD8(p + (esize) * i), _mm256_loadu_ps(x + i), a0);                  \
            a1 = _mm256_fmadd_ps(LOAD8(p + (esize) * (i + 8)), _mm256_loadu_ps(x + i + 8), a1);         \
            a2 = _mm256_fmadd_ps(LOAD8(p + (esize) * (i + 16)), _mm256_loadu_ps(x + i + 16), a2);       \
            a3 = _mm256_fmadd_ps(LOAD8(p + (esize) * (i + 24)), _mm256_loadu_ps(x + i + 24), a3);       \
        }                                                                                               \
        for (; i + 8 <= n; i += 8)                                                                      \
            a0 = _mm256_fmadd_ps(LOAD8(p + (esize) * i), _mm256_loadu_ps(x + i), a0);                   \
        float acc = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));              \
        for (; i < n; i++)                                                                              \
            acc += SCALAR(p + (esize) * i) * x[i];                                                      \
        return acc;                                                                                     \
    }                                                                                                   \
    HCI_TARGET_AVX2 static void decode_##name##_avx2(float *out, const uint8_t *p, int64_t n)           \
    {                                                                                                   \
        int64_t i = 0;                                                                                  \
        for (; i + 8 <= n; i += 8)                                                                      \
            _mm256_storeu_ps(out + i, LOAD8(p + (esize) * i));                                          \
        for (; i < n; i++)                                                                              \
            out[i] = SCALAR(p + (esize) * i);                                                           \
    }

HCI_TARGET_AVX2 static inline __m256 load_f32_8(const uint8_t *p)
{
    return _mm256_loadu_ps((const float *)(const void *)p);
}
HCI_TARGET_AVX2 static inline __m256 load_f16_8(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
HCI_TARGET_AVX2 static inline __m256 load_bf16_8(const uint8_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
DEFINE_AVX2(f32, 4, load_f32_8, f32_value)
DEFINE_AVX2(f16, 2, load_f16_8, f16_value)
DEFINE_AVX2(bf16, 2, load_bf16_8, bf16_value)

static const hci_float_kernels avx2[3] = {
    { dot_f32_avx2, decode_f32_avx2 },
    { dot_f16_avx2, decode_f16_avx2 },
    { dot_bf16_avx2, decode_bf16_avx2 },
};

#endif

const hci_float_kernels *hci_float_kernels_for(uint32_t codec_id, hci_isa isa)
{
    int k = codec_id == HC_CODEC_F32 ? 0 : codec_id == HC_CODEC_FP16 ? 1 : 2;
#if HCI_HAVE_X86_KERNELS
    if (isa == HCI_ISA_AVX512)
        return &avx512[k];
    if (isa == HCI_ISA_AVX2)
        return &avx2[k];
#else
    (void)isa;
#endif
    return &portable[k];
}
