/* NF4 kernels: dot product and decoding straight from the nibbles. Per absmax block the 16
 * levels are multiplied by the block's scale once, so a code becomes a weight with a single
 * table lookup held in registers: vpermps over one zmm (AVX-512) or two ymm halves and a
 * blend on bit 3 (AVX2). Sixteen bytes of nibbles are spread into 32 lookup indices in
 * natural order, so x is read as it is. */
#include <stddef.h>

#include "scalar/kernels.h"

#if HCI_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

static inline unsigned nibble(const uint8_t *codes, int64_t i)
{
    return (codes[i >> 1] >> ((unsigned)(i & 1) * 4u)) & 15u;
}

/* Per block the 16 levels are scaled once; then a code byte is two table lookups. */
static float dot_portable(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0, int64_t n,
                          const float *x)
{
    float a0 = 0.0f, a1 = 0.0f, ls[16];
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        for (int k = 0; k < 16; k++)
            ls[k] = hci_nf4_table[k] * bscale[b];
        if (i & 1) {
            a0 += ls[nibble(codes, i)] * x[i - i0];
            i++;
        }
        for (; i + 2 <= stop; i += 2) {
            unsigned byte = codes[i >> 1];
            a0 += ls[byte & 15u] * x[i - i0];
            a1 += ls[byte >> 4] * x[i - i0 + 1];
        }
        if (i < stop) {
            a0 += ls[nibble(codes, i)] * x[i - i0];
            i++;
        }
        b++;
        bend += block;
    }
    return a0 + a1;
}

static void decode_portable(float *out, const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0,
                            int64_t n)
{
    float ls[16];
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        for (int k = 0; k < 16; k++)
            ls[k] = hci_nf4_table[k] * bscale[b];
        for (; i < stop; i++)
            out[i - i0] = ls[nibble(codes, i)];
        b++;
        bend += block;
    }
}

void hci_nf4_split_x(float *xs, const float *x, int64_t n)
{
    for (int64_t c = 0; c < n; c += 32)
        for (int j = 0; j < 16; j++) {
            xs[c + j] = x[c + 2 * j];
            xs[c + 16 + j] = x[c + 2 * j + 1];
        }
}

static const hci_nf4_kernels portable = { dot_portable, decode_portable, NULL };

#if HCI_HAVE_X86_KERNELS

/* 16 bytes (32 codes) to two vectors of lookup indices; only the low 4 bits of each lane
 * matter to vpermps, so the neighbouring nibble left in bits 4-7 needs no masking. */
HCI_TARGET_AVX512 static inline void spread32_avx512(__m128i v, __m512i *c0, __m512i *c1)
{
    __m128i hi = _mm_srli_epi16(v, 4);
    *c0 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(v, hi));
    *c1 = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(v, hi));
}

HCI_TARGET_AVX512 static float dot_avx512(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0,
                                          int64_t n, const float *x)
{
    const __m512 lut = _mm512_loadu_ps(hci_nf4_table);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    float tail = 0.0f;
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        float s = bscale[b];
        __m512 ls = _mm512_mul_ps(lut, _mm512_set1_ps(s));
        if (i & 1) { /* a segment starting mid-byte */
            float w = hci_nf4_table[nibble(codes, i)] * s;
            tail += w * x[i - i0];
            i++;
        }
        for (; i + 64 <= stop; i += 64) {
            __m512i c0, c1, c2, c3;
            spread32_avx512(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))), &c0, &c1);
            spread32_avx512(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1) + 16)), &c2, &c3);
            const float *xp = x + (i - i0);
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c0, ls), _mm512_loadu_ps(xp), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c1, ls), _mm512_loadu_ps(xp + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c2, ls), _mm512_loadu_ps(xp + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c3, ls), _mm512_loadu_ps(xp + 48), a3);
        }
        for (; i + 32 <= stop; i += 32) {
            __m512i c0, c1;
            spread32_avx512(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))), &c0, &c1);
            const float *xp = x + (i - i0);
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c0, ls), _mm512_loadu_ps(xp), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c1, ls), _mm512_loadu_ps(xp + 16), a1);
        }
        if (i < stop) {
            /* fewer than 32 codes; masked loads read no byte and no x past the segment */
            int64_t rem = stop - i;
            __mmask16 mb = (__mmask16)((1u << ((rem + 1) / 2)) - 1u);
            __mmask16 m0 = (__mmask16)(rem >= 16 ? 0xffffu : (1u << rem) - 1u);
            __mmask16 m1 = (__mmask16)(rem > 16 ? (1u << (rem - 16)) - 1u : 0u);
            __m512i c0, c1;
            spread32_avx512(_mm_maskz_loadu_epi8(mb, codes + (i >> 1)), &c0, &c1);
            const float *xp = x + (i - i0);
            a0 = _mm512_mask3_fmadd_ps(_mm512_permutexvar_ps(c0, ls), _mm512_maskz_loadu_ps(m0, xp), a0, m0);
            a1 = _mm512_mask3_fmadd_ps(_mm512_permutexvar_ps(c1, ls), _mm512_maskz_loadu_ps(m1, xp + 16), a1, m1);
            i = stop;
        }
        b++;
        bend += block;
    }
    __m512 a = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    return _mm512_reduce_add_ps(a) + tail;
}

HCI_TARGET_AVX512 static void decode_avx512(float *out, const uint8_t *codes, const float *bscale, uint32_t block,
                                            int64_t i0, int64_t n)
{
    const __m512 lut = _mm512_loadu_ps(hci_nf4_table);
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        float s = bscale[b];
        __m512 ls = _mm512_mul_ps(lut, _mm512_set1_ps(s));
        if (i & 1) {
            out[i - i0] = hci_nf4_table[nibble(codes, i)] * s;
            i++;
        }
        for (; i + 32 <= stop; i += 32) {
            __m512i c0, c1;
            spread32_avx512(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))), &c0, &c1);
            _mm512_storeu_ps(out + (i - i0), _mm512_permutexvar_ps(c0, ls));
            _mm512_storeu_ps(out + (i - i0) + 16, _mm512_permutexvar_ps(c1, ls));
        }
        if (i < stop) {
            /* masked stores are slow on some cores, so only the tail uses them */
            int64_t rem = stop - i;
            __mmask16 mb = (__mmask16)((1u << ((rem + 1) / 2)) - 1u);
            __mmask16 m0 = (__mmask16)(rem >= 16 ? 0xffffu : (1u << rem) - 1u);
            __mmask16 m1 = (__mmask16)(rem > 16 ? (1u << (rem - 16)) - 1u : 0u);
            __m512i c0, c1;
            spread32_avx512(_mm_maskz_loadu_epi8(mb, codes + (i >> 1)), &c0, &c1);
            _mm512_mask_storeu_ps(out + (i - i0), m0, _mm512_permutexvar_ps(c0, ls));
            _mm512_mask_storeu_ps(out + (i - i0) + 16, m1, _mm512_permutexvar_ps(c1, ls));
            i = stop;
        }
        b++;
        bend += block;
    }
}

/* With x split, 16 code bytes widen once to 16 lanes: the low nibbles index the even values
 * and the lanes shifted right by 4 the odd ones. */
HCI_TARGET_AVX512 static float dot_split_avx512(const uint8_t *codes, const float *bscale, uint32_t block,
                                                int64_t i0, int64_t n, const float *xs)
{
    const __m512 lut = _mm512_loadu_ps(hci_nf4_table);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t b = i0 / block;
    for (int64_t i = i0, end = i0 + n; i < end; b++) {
        int64_t stop = (b + 1) * (int64_t)block < end ? (b + 1) * (int64_t)block : end;
        __m512 ls = _mm512_mul_ps(lut, _mm512_set1_ps(bscale[b]));
        for (; i + 64 <= stop; i += 64) {
            const float *xp = xs + (i - i0);
            __m512i c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))));
            __m512i c1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1) + 16)));
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c0, ls), _mm512_loadu_ps(xp), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(c0, 4), ls), _mm512_loadu_ps(xp + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c1, ls), _mm512_loadu_ps(xp + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(c1, 4), ls), _mm512_loadu_ps(xp + 48), a3);
        }
        if (i < stop) { /* block % 64 == 32 or a short final run: one 32-value step */
            const float *xp = xs + (i - i0);
            __m512i c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))));
            a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(c0, ls), _mm512_loadu_ps(xp), a0);
            a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(c0, 4), ls), _mm512_loadu_ps(xp + 16), a1);
            i += 32;
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static const hci_nf4_kernels avx512 = { dot_avx512, decode_avx512, dot_split_avx512 };

/* Eight lookups in a 16-entry table held as two ymm halves: bit 3 of each index, moved to
 * the sign bit, picks the half. */
HCI_TARGET_AVX2 static inline __m256 lookup8_avx2(__m256i idx, __m256 lo, __m256 hi)
{
    __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx), sel);
}

/* 16 bytes (32 codes) to four vectors of indices in natural order. */
HCI_TARGET_AVX2 static inline void spread32_avx2(__m128i v, __m256i c[4])
{
    __m128i hi = _mm_srli_epi16(v, 4);
    __m128i u0 = _mm_unpacklo_epi8(v, hi), u1 = _mm_unpackhi_epi8(v, hi);
    c[0] = _mm256_cvtepu8_epi32(u0);
    c[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(u0, 8));
    c[2] = _mm256_cvtepu8_epi32(u1);
    c[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(u1, 8));
}

HCI_TARGET_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

HCI_TARGET_AVX2 static float dot_avx2(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0,
                                      int64_t n, const float *x)
{
    const __m256 lut_lo = _mm256_loadu_ps(hci_nf4_table), lut_hi = _mm256_loadu_ps(hci_nf4_table + 8);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    float tail = 0.0f;
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        float s = bscale[b];
        __m256 vs = _mm256_set1_ps(s);
        __m256 lo = _mm256_mul_ps(lut_lo, vs), hi = _mm256_mul_ps(lut_hi, vs);
        if (i & 1) {
            float w = hci_nf4_table[nibble(codes, i)] * s;
            tail += w * x[i - i0];
            i++;
        }
        for (; i + 32 <= stop; i += 32) {
            __m256i c[4];
            spread32_avx2(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))), c);
            const float *xp = x + (i - i0);
            a0 = _mm256_fmadd_ps(lookup8_avx2(c[0], lo, hi), _mm256_loadu_ps(xp), a0);
            a1 = _mm256_fmadd_ps(lookup8_avx2(c[1], lo, hi), _mm256_loadu_ps(xp + 8), a1);
            a2 = _mm256_fmadd_ps(lookup8_avx2(c[2], lo, hi), _mm256_loadu_ps(xp + 16), a2);
            a3 = _mm256_fmadd_ps(lookup8_avx2(c[3], lo, hi), _mm256_loadu_ps(xp + 24), a3);
        }
        for (; i < stop; i++) {
            float w = hci_nf4_table[nibble(codes, i)] * s;
            tail += w * x[i - i0];
        }
        b++;
        bend += block;
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + tail;
}

HCI_TARGET_AVX2 static void decode_avx2(float *out, const uint8_t *codes, const float *bscale, uint32_t block,
                                        int64_t i0, int64_t n)
{
    const __m256 lut_lo = _mm256_loadu_ps(hci_nf4_table), lut_hi = _mm256_loadu_ps(hci_nf4_table + 8);
    int64_t i = i0, end = i0 + n, b = i0 / block, bend = (b + 1) * (int64_t)block;
    while (i < end) {
        int64_t stop = bend < end ? bend : end;
        float s = bscale[b];
        __m256 vs = _mm256_set1_ps(s);
        __m256 lo = _mm256_mul_ps(lut_lo, vs), hi = _mm256_mul_ps(lut_hi, vs);
        if (i & 1) {
            out[i - i0] = hci_nf4_table[nibble(codes, i)] * s;
            i++;
        }
        for (; i + 32 <= stop; i += 32) {
            __m256i c[4];
            spread32_avx2(_mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1))), c);
            float *op = out + (i - i0);
            for (int k = 0; k < 4; k++)
                _mm256_storeu_ps(op + 8 * k, lookup8_avx2(c[k], lo, hi));
        }
        for (; i < stop; i++)
            out[i - i0] = hci_nf4_table[nibble(codes, i)] * s;
        b++;
        bend += block;
    }
}

HCI_TARGET_AVX2 static float dot_split_avx2(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0,
                                            int64_t n, const float *xs)
{
    const __m256 lut_lo = _mm256_loadu_ps(hci_nf4_table), lut_hi = _mm256_loadu_ps(hci_nf4_table + 8);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t b = i0 / block;
    for (int64_t i = i0, end = i0 + n; i < end; b++) {
        int64_t stop = (b + 1) * (int64_t)block < end ? (b + 1) * (int64_t)block : end;
        __m256 vs = _mm256_set1_ps(bscale[b]);
        __m256 lo = _mm256_mul_ps(lut_lo, vs), hi = _mm256_mul_ps(lut_hi, vs);
        for (; i < stop; i += 32) {
            const float *xp = xs + (i - i0);
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(codes + (i >> 1)));
            __m256i c0 = _mm256_cvtepu8_epi32(v), c1 = _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8));
            a0 = _mm256_fmadd_ps(lookup8_avx2(c0, lo, hi), _mm256_loadu_ps(xp), a0);
            a1 = _mm256_fmadd_ps(lookup8_avx2(c1, lo, hi), _mm256_loadu_ps(xp + 8), a1);
            a2 = _mm256_fmadd_ps(lookup8_avx2(_mm256_srli_epi32(c0, 4), lo, hi), _mm256_loadu_ps(xp + 16), a2);
            a3 = _mm256_fmadd_ps(lookup8_avx2(_mm256_srli_epi32(c1, 4), lo, hi), _mm256_loadu_ps(xp + 24), a3);
        }
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

static const hci_nf4_kernels avx2 = { dot_avx2, decode_avx2, dot_split_avx2 };

#endif

const hci_nf4_kernels *hci_nf4_kernels_for(hci_isa isa)
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
