/* Ternary kernels: dot product and decoding straight from the 2-bit codes. A 32-bit word of
 * 16 codes is broadcast and shifted per lane (vpsrlvd), and a table whose entry j is the value
 * of code j & 3 turns the low bits of each lane into -1, 0 or +1 without masking. */
#include <string.h>

#include "scalar/kernels.h"

#if HCI_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

static const float tvalue[4] = { 0.0f, 1.0f, -1.0f, 0.0f };

static inline unsigned tcode(const uint8_t *codes, int64_t i)
{
    return (codes[i >> 2] >> (2u * (unsigned)(i & 3))) & 3u;
}

static float dot_portable(const uint8_t *codes, int64_t i0, int64_t n, const float *x)
{
    float a[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    int64_t k = 0;
    for (; k < n && ((i0 + k) & 3); k++)
        a[0] += tvalue[tcode(codes, i0 + k)] * x[k];
    for (; k + 4 <= n; k += 4) { /* one byte, four partial sums */
        unsigned b = codes[(i0 + k) >> 2];
        for (int j = 0; j < 4; j++)
            a[j] += tvalue[(b >> (2 * j)) & 3u] * x[k + j];
    }
    for (; k < n; k++)
        a[0] += tvalue[tcode(codes, i0 + k)] * x[k];
    return (a[0] + a[1]) + (a[2] + a[3]);
}

static void decode_portable(float *out, const uint8_t *codes, float scale, int64_t i0, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        out[k] = tvalue[tcode(codes, i0 + k)] * scale;
}

static const hci_ternary_kernels portable = { dot_portable, decode_portable };

#if HCI_HAVE_X86_KERNELS
/* x86 is little-endian, so whole words of codes are loaded with memcpy. */

/* The codes of flat indices [i, i + 4 nbytes), i a multiple of 4, as one little-endian word. */
static inline uint32_t code_word(const uint8_t *codes, int64_t i, int nbytes)
{
    uint8_t b[4] = { 0, 0, 0, 0 };
    memcpy(b, codes + (i >> 2), (size_t)nbytes);
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

HCI_TARGET_AVX512 static inline __m512 spread16_avx512(__m512i words, __m512 table)
{
    const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutexvar_ps(_mm512_srlv_epi32(words, shifts), table);
}

HCI_TARGET_AVX512 static inline __m512 values16_avx512(uint32_t word, __m512 table)
{
    return spread16_avx512(_mm512_set1_epi32((int)word), table);
}

/* The 16 codes at p, broadcast straight from memory (no trip through a general register). */
HCI_TARGET_AVX512 static inline __m512 load16_avx512(const uint8_t *p, __m512 table)
{
    return spread16_avx512(_mm512_broadcastd_epi32(_mm_loadu_si32(p)), table);
}

HCI_TARGET_AVX512 static inline __m512 table16_avx512(float scale)
{
    return _mm512_setr_ps(0, scale, -scale, 0, 0, scale, -scale, 0, 0, scale, -scale, 0, 0, scale, -scale, 0);
}

HCI_TARGET_AVX512 static float dot_avx512(const uint8_t *codes, int64_t i0, int64_t n, const float *x)
{
    const __m512 table = table16_avx512(1.0f);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    float acc = 0.0f;
    int64_t k = 0;
    for (; k < n && ((i0 + k) & 3); k++) /* up to the next byte boundary */
        acc += tvalue[tcode(codes, i0 + k)] * x[k];
    for (; k + 64 <= n; k += 64) {
        const uint8_t *p = codes + ((i0 + k) >> 2);
        a0 = _mm512_fmadd_ps(load16_avx512(p, table), _mm512_loadu_ps(x + k), a0);
        a1 = _mm512_fmadd_ps(load16_avx512(p + 4, table), _mm512_loadu_ps(x + k + 16), a1);
        a2 = _mm512_fmadd_ps(load16_avx512(p + 8, table), _mm512_loadu_ps(x + k + 32), a2);
        a3 = _mm512_fmadd_ps(load16_avx512(p + 12, table), _mm512_loadu_ps(x + k + 48), a3);
    }
    for (; k + 16 <= n; k += 16)
        a0 = _mm512_fmadd_ps(load16_avx512(codes + ((i0 + k) >> 2), table), _mm512_loadu_ps(x + k), a0);
    if (k < n) {
        int64_t rem = n - k;
        __mmask16 m = (__mmask16)((1u << rem) - 1u);
        uint32_t w = code_word(codes, i0 + k, (int)((rem + 3) / 4));
        a1 = _mm512_fmadd_ps(values16_avx512(w, table), _mm512_maskz_loadu_ps(m, x + k), a1);
    }
    __m512 a = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    return _mm512_reduce_add_ps(a) + acc;
}

HCI_TARGET_AVX512 static void decode_avx512(float *out, const uint8_t *codes, float scale, int64_t i0, int64_t n)
{
    const __m512 table = table16_avx512(scale);
    int64_t k = 0;
    for (; k < n && ((i0 + k) & 3); k++)
        out[k] = tvalue[tcode(codes, i0 + k)] * scale;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(out + k, load16_avx512(codes + ((i0 + k) >> 2), table));
    if (k < n) { /* masked stores are slow on some cores: only the tail */
        int64_t rem = n - k;
        __mmask16 m = (__mmask16)((1u << rem) - 1u);
        uint32_t w = code_word(codes, i0 + k, (int)((rem + 3) / 4));
        _mm512_mask_storeu_ps(out + k, m, values16_avx512(w, table));
    }
}

static const hci_ternary_kernels avx512 = { dot_avx512, decode_avx512 };

/* Eight codes (16 bits of word) to values; entry j of the 8-entry table is the value of j & 3. */
HCI_TARGET_AVX2 static inline __m256 values8_avx2(uint32_t word, __m256 table)
{
    const __m256i shifts = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256i idx = _mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts);
    return _mm256_permutevar8x32_ps(table, idx);
}

/* The 16 codes at p, broadcast straight from memory, as two vectors of eight values. */
HCI_TARGET_AVX2 static inline void load16_avx2(const uint8_t *p, __m256 table, __m256 *v0, __m256 *v1)
{
    const __m256i lo = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i hi = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
    __m256i w = _mm256_broadcastd_epi32(_mm_loadu_si32(p));
    *v0 = _mm256_permutevar8x32_ps(table, _mm256_srlv_epi32(w, lo));
    *v1 = _mm256_permutevar8x32_ps(table, _mm256_srlv_epi32(w, hi));
}

HCI_TARGET_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

HCI_TARGET_AVX2 static float dot_avx2(const uint8_t *codes, int64_t i0, int64_t n, const float *x)
{
    const __m256 table = _mm256_setr_ps(0, 1, -1, 0, 0, 1, -1, 0);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    float acc = 0.0f;
    int64_t k = 0;
    for (; k < n && ((i0 + k) & 3); k++)
        acc += tvalue[tcode(codes, i0 + k)] * x[k];
    for (; k + 32 <= n; k += 32) {
        const uint8_t *p = codes + ((i0 + k) >> 2);
        __m256 v0, v1, v2, v3;
        load16_avx2(p, table, &v0, &v1);
        load16_avx2(p + 4, table, &v2, &v3);
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x + k + 8), a1);
        a2 = _mm256_fmadd_ps(v2, _mm256_loadu_ps(x + k + 16), a2);
        a3 = _mm256_fmadd_ps(v3, _mm256_loadu_ps(x + k + 24), a3);
    }
    for (; k + 8 <= n; k += 8) {
        uint16_t w;
        memcpy(&w, codes + ((i0 + k) >> 2), sizeof w);
        a0 = _mm256_fmadd_ps(values8_avx2(w, table), _mm256_loadu_ps(x + k), a0);
    }
    for (; k < n; k++)
        acc += tvalue[tcode(codes, i0 + k)] * x[k];
    return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + acc;
}

HCI_TARGET_AVX2 static void decode_avx2(float *out, const uint8_t *codes, float scale, int64_t i0, int64_t n)
{
    const __m256 table = _mm256_setr_ps(0, scale, -scale, 0, 0, scale, -scale, 0);
    int64_t k = 0;
    for (; k < n && ((i0 + k) & 3); k++)
        out[k] = tvalue[tcode(codes, i0 + k)] * scale;
    for (; k + 16 <= n; k += 16) {
        __m256 v0, v1;
        load16_avx2(codes + ((i0 + k) >> 2), table, &v0, &v1);
        _mm256_storeu_ps(out + k, v0);
        _mm256_storeu_ps(out + k + 8, v1);
    }
    for (; k + 8 <= n; k += 8) {
        uint16_t w;
        memcpy(&w, codes + ((i0 + k) >> 2), sizeof w);
        _mm256_storeu_ps(out + k, values8_avx2(w, table));
    }
    for (; k < n; k++)
        out[k] = tvalue[tcode(codes, i0 + k)] * scale;
}

static const hci_ternary_kernels avx2 = { dot_avx2, decode_avx2 };

#endif

const hci_ternary_kernels *hci_ternary_kernels_for(hci_isa isa)
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
