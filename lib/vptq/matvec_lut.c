/* The lookup-table kernels of the fused VPTQ matvec (chosen by matvec.c when k x v is small
 * beside the rows of a call): per column segment, a table holds the dot product of every
 * centroid with that segment of (column-scaled) x, and each row adds one table entry per index.
 * Indices are read 32 rows at a time from their bit planes. */
#include "vptq/matvec.h"

#ifdef VQ_X86
#include <immintrin.h>
#endif

/* ---- portable ---- */

static void lut_portable(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x)
{
    for (uint32_t e = 0; e < k; e++)
        lut[e] = cbt[e] * x[0];
    for (uint32_t t = 1; t < v; t++) {
        const float *c = cbt + (size_t)t * k;
        float xt = x[t];
        for (uint32_t e = 0; e < k; e++)
            lut[e] += c[e] * xt;
    }
}

static void group_portable(float *acc, const float *lut, const hci_vq_stream *st, uint64_t pos)
{
    uint32_t idx[VQ_GROUP] = { 0 };
    for (uint32_t j = 0; j < st->nb; j++) {
        const uint8_t *b = st->bytes + j * st->n + pos;
        for (uint32_t i = 0; i < VQ_GROUP; i++)
            idx[i] |= (uint32_t)b[i] << (8 * j);
    }
    for (uint32_t j = 0; j < st->br; j++) {
        uint32_t plane = hci_vq_load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
        for (uint32_t i = 0; i < VQ_GROUP; i++)
            idx[i] |= ((plane >> i) & 1u) << (8 * st->nb + j);
    }
    for (uint32_t i = 0; i < VQ_GROUP; i++)
        acc[i] += lut[idx[i]];
}

static const hci_vq_lut_kernel kernel_portable = { lut_portable, group_portable };

#ifdef VQ_X86
/* ---- AVX2 ---- */

VQ_AVX2 static void lut_avx2(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x)
{
    if (k < 8) {
        lut_portable(lut, cbt, k, v, x);
        return;
    }
    for (uint32_t e = 0; e < k; e += 8) {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(cbt + e), _mm256_set1_ps(x[0]));
        for (uint32_t t = 1; t < v; t++)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(cbt + (size_t)t * k + e), _mm256_set1_ps(x[t]), a);
        _mm256_storeu_ps(lut + e, a);
    }
}

VQ_AVX2 static void group_avx2(float *acc, const float *lut, const hci_vq_stream *st, uint64_t pos)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
    __m256i iv[4];
    for (int q = 0; q < 4; q++)
        iv[q] = _mm256_setzero_si256();
    for (uint32_t j = 0; j < st->nb; j++) {
        const uint8_t *b = st->bytes + j * st->n + pos;
        __m128i sh = _mm_cvtsi32_si128((int)(8 * j));
        for (int q = 0; q < 4; q++) {
            __m128i by = _mm_loadl_epi64((const __m128i *)(const void *)(b + 8 * q));
            iv[q] = _mm256_or_si256(iv[q], _mm256_sll_epi32(_mm256_cvtepu8_epi32(by), sh));
        }
    }
    for (uint32_t j = 0; j < st->br; j++) {
        uint32_t plane = hci_vq_load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
        __m128i sh = _mm_cvtsi32_si128((int)(8 * st->nb + j));
        __m256i p = _mm256_set1_epi32((int)plane);
        for (int q = 0; q < 4; q++) {
            iv[q] = _mm256_or_si256(iv[q], _mm256_sll_epi32(_mm256_and_si256(_mm256_srlv_epi32(p, lane), one), sh));
            p = _mm256_srli_epi32(p, 8);
        }
    }
    for (int q = 0; q < 4; q++)
        _mm256_storeu_ps(acc + 8 * q,
                         _mm256_add_ps(_mm256_loadu_ps(acc + 8 * q), _mm256_i32gather_ps(lut, iv[q], 4)));
}

static const hci_vq_lut_kernel kernel_avx2 = { lut_avx2, group_avx2 };

/* ---- AVX-512 ---- */

VQ_AVX512 static void lut_avx512(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x)
{
    if (k < 16) {
        lut_portable(lut, cbt, k, v, x);
        return;
    }
    for (uint32_t e = 0; e < k; e += 16) {
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(cbt + e), _mm512_set1_ps(x[0]));
        for (uint32_t t = 1; t < v; t++)
            a = _mm512_fmadd_ps(_mm512_loadu_ps(cbt + (size_t)t * k + e), _mm512_set1_ps(x[t]), a);
        _mm512_storeu_ps(lut + e, a);
    }
}

VQ_AVX512 static void group_avx512(float *acc, const float *lut, const hci_vq_stream *st, uint64_t pos)
{
    __m512i lo = _mm512_setzero_si512(), hi = lo;
    for (uint32_t j = 0; j < st->nb; j++) {
        const uint8_t *b = st->bytes + j * st->n + pos;
        __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)b));
        __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 16)));
        lo = _mm512_or_si512(lo, _mm512_slli_epi32(l, 8 * j));
        hi = _mm512_or_si512(hi, _mm512_slli_epi32(h, 8 * j));
    }
    for (uint32_t j = 0; j < st->br; j++) {
        uint32_t plane = hci_vq_load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
        __m512i bit = _mm512_set1_epi32((int)(1u << (8 * st->nb + j)));
        lo = _mm512_mask_or_epi32(lo, (__mmask16)(plane & 0xffffu), lo, bit);
        hi = _mm512_mask_or_epi32(hi, (__mmask16)(plane >> 16), hi, bit);
    }
    /* scalar loads beat vgatherdps here: two loads a cycle against a gather's microcode */
    uint32_t idx[VQ_GROUP];
    float val[VQ_GROUP];
    _mm512_storeu_si512((void *)idx, lo);
    _mm512_storeu_si512((void *)(idx + 16), hi);
    for (uint32_t i = 0; i < VQ_GROUP; i++)
        val[i] = lut[idx[i]];
    _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), _mm512_loadu_ps(val)));
    _mm512_storeu_ps(acc + 16, _mm512_add_ps(_mm512_loadu_ps(acc + 16), _mm512_loadu_ps(val + 16)));
}

static const hci_vq_lut_kernel kernel_avx512 = { lut_avx512, group_avx512 };
#endif

const hci_vq_lut_kernel *hci_vq_lut_kernel_for(hci_isa isa)
{
#ifdef VQ_X86
    if (isa == HCI_ISA_AVX512)
        return &kernel_avx512;
    if (isa == HCI_ISA_AVX2)
        return &kernel_avx2;
#else
    (void)isa;
#endif
    return &kernel_portable;
}
