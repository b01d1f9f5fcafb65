/* The fused VPTQ matvec: y = W x straight from indices and codebooks, W never materialised.
 * Per column segment, a lookup table holds the dot product of every centroid with that
 * segment of (column-scaled) x; each row then adds one table entry per index. Indices are
 * read 32 rows at a time from their bit planes. AVX-512 and AVX2 kernels beside a portable one. */
#include <string.h>

#include "common/alloc.h"
#include "common/cpu.h"
#include "common/error.h"
#include "vptq/vptq.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VQ_X86 1
#endif

/* The 32 indices of a full group from bit offset `base`; planes are 32 bits apart. */
static inline uint32_t load_plane(const uint8_t *stream, uint64_t limit, uint64_t bit)
{
    uint64_t byte = bit >> 3;
    uint64_t w = 0;
    if (byte + 8 <= limit)
        memcpy(&w, stream + byte, 8);
    else
        memcpy(&w, stream + byte, (size_t)(limit - byte));
    return (uint32_t)(w >> (bit & 7));
}

typedef struct vq_kernel {
    void (*lut)(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x);
    /* acc[i] += lut[index of row g0 + i] for the 32 rows of a full group */
    void (*group)(float *acc, const float *lut, const uint8_t *stream, uint64_t limit, uint64_t base, uint32_t bits);
} vq_kernel;

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

static void group_portable(float *acc, const float *lut, const uint8_t *stream, uint64_t limit, uint64_t base,
                           uint32_t bits)
{
    uint32_t idx[VQ_GROUP] = { 0 };
    for (uint32_t j = 0; j < bits; j++) {
        uint32_t plane = load_plane(stream, limit, base + 32ull * j);
        for (uint32_t i = 0; i < VQ_GROUP; i++)
            idx[i] |= ((plane >> i) & 1u) << j;
    }
    for (uint32_t i = 0; i < VQ_GROUP; i++)
        acc[i] += lut[idx[i]];
}

static const vq_kernel kernel_portable = { lut_portable, group_portable };

#ifdef VQ_X86
/* ---- AVX2 ---- */

__attribute__((target("avx2,fma"))) static void lut_avx2(float *lut, const float *cbt, uint32_t k, uint32_t v,
                                                        const float *x)
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

__attribute__((target("avx2,fma"))) static void group_avx2(float *acc, const float *lut, const uint8_t *stream,
                                                          uint64_t limit, uint64_t base, uint32_t bits)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), one = _mm256_set1_epi32(1);
    __m256i i0 = _mm256_setzero_si256(), i1 = i0, i2 = i0, i3 = i0;
    for (uint32_t j = 0; j < bits; j++) {
        uint32_t plane = load_plane(stream, limit, base + 32ull * j);
        __m128i sh = _mm_cvtsi32_si128((int)j);
        __m256i p = _mm256_set1_epi32((int)plane);
        i0 = _mm256_or_si256(i0, _mm256_sll_epi32(_mm256_and_si256(_mm256_srlv_epi32(p, lane), one), sh));
        p = _mm256_srli_epi32(p, 8);
        i1 = _mm256_or_si256(i1, _mm256_sll_epi32(_mm256_and_si256(_mm256_srlv_epi32(p, lane), one), sh));
        p = _mm256_srli_epi32(p, 8);
        i2 = _mm256_or_si256(i2, _mm256_sll_epi32(_mm256_and_si256(_mm256_srlv_epi32(p, lane), one), sh));
        p = _mm256_srli_epi32(p, 8);
        i3 = _mm256_or_si256(i3, _mm256_sll_epi32(_mm256_and_si256(_mm256_srlv_epi32(p, lane), one), sh));
    }
    _mm256_storeu_ps(acc, _mm256_add_ps(_mm256_loadu_ps(acc), _mm256_i32gather_ps(lut, i0, 4)));
    _mm256_storeu_ps(acc + 8, _mm256_add_ps(_mm256_loadu_ps(acc + 8), _mm256_i32gather_ps(lut, i1, 4)));
    _mm256_storeu_ps(acc + 16, _mm256_add_ps(_mm256_loadu_ps(acc + 16), _mm256_i32gather_ps(lut, i2, 4)));
    _mm256_storeu_ps(acc + 24, _mm256_add_ps(_mm256_loadu_ps(acc + 24), _mm256_i32gather_ps(lut, i3, 4)));
}

static const vq_kernel kernel_avx2 = { lut_avx2, group_avx2 };

/* ---- AVX-512 ---- */

#define VQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

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

VQ_AVX512 static void group_avx512(float *acc, const float *lut, const uint8_t *stream, uint64_t limit,
                                   uint64_t base, uint32_t bits)
{
    __m512i lo = _mm512_setzero_si512(), hi = lo;
    for (uint32_t j = 0; j < bits; j++) {
        uint32_t plane = load_plane(stream, limit, base + 32ull * j);
        __m512i bit = _mm512_set1_epi32((int)(1u << j));
        lo = _mm512_mask_or_epi32(lo, (__mmask16)(plane & 0xffffu), lo, bit);
        hi = _mm512_mask_or_epi32(hi, (__mmask16)(plane >> 16), hi, bit);
    }
    _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), _mm512_i32gather_ps(lo, lut, 4)));
    _mm512_storeu_ps(acc + 16, _mm512_add_ps(_mm512_loadu_ps(acc + 16), _mm512_i32gather_ps(hi, lut, 4)));
}

static const vq_kernel kernel_avx512 = { lut_avx512, group_avx512 };
#endif

static const vq_kernel *pick_kernel(hci_isa isa)
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

static int matvec_with(const vq_kernel *kn, const vq_state *st, const float *x, float *y, int64_t row0,
                       int64_t row1)
{
    int64_t nr = row1 - row0;
    uint32_t maxk = 1, maxseg = 1;
    for (uint32_t p = 0; p < st->nparts; p++) {
        for (int s = 0; s < 2; s++)
            if (st->part[p].k[s] > maxk)
                maxk = st->part[p].k[s];
        if (st->part[p].segs * st->part[p].v > maxseg)
            maxseg = st->part[p].segs * st->part[p].v;
    }
    float *acc = hci_aligned_array((size_t)nr, sizeof(float));
    float *lut = hci_aligned_array(maxk, sizeof(float));
    float *xs = hci_aligned_array(maxseg, sizeof(float));
    float *gacc = hci_aligned_array((size_t)nr, sizeof(float));
    if (!acc || !lut || !xs || !gacc) {
        hci_free(gacc);
        hci_free(acc);
        hci_free(lut);
        hci_free(xs);
        return HC_ENOMEM;
    }
    memset(acc, 0, sizeof(float) * (size_t)nr);
    /* rows [gfirst, glast) are whole groups handled by the kernel; the rest one by one */
    int64_t gfirst = (row0 + VQ_GROUP - 1) / VQ_GROUP * VQ_GROUP;
    int64_t glast = row1 / VQ_GROUP * VQ_GROUP;
    if (glast < gfirst)
        glast = gfirst;
    for (uint32_t p = 0; p < st->nparts; p++) {
        const vq_part *pt = &st->part[p];
        for (uint32_t j = 0; j < pt->segs * pt->v; j++) {
            if (j < pt->ncols) {
                uint32_t c = pt->cols[j];
                xs[j] = x[c] * (st->col_scale ? st->col_scale[c] : 1.0f);
            } else {
                xs[j] = 0.0f;
            }
        }
        /* with group scales, each group's sum is scaled before it joins the row's total */
        uint32_t gsegs = pt->ngroups ? pt->gsegs : pt->segs, ngroups = pt->ngroups ? pt->ngroups : 1;
        float *tgt = pt->ngroups ? gacc : acc;
        for (uint32_t g = 0; g < ngroups; g++) {
            uint32_t s0 = g * gsegs, s1 = s0 + gsegs < pt->segs ? s0 + gsegs : pt->segs;
            if (pt->ngroups)
                memset(gacc, 0, sizeof(float) * (size_t)nr);
            for (int stg = 0; stg < 2; stg++) {
                if (!pt->bits[stg])
                    continue;
                uint32_t bits = pt->bits[stg];
                uint64_t limit = vq_index_bytes(st->rows, pt->segs, bits);
                for (uint32_t s = s0; s < s1; s++) {
                    kn->lut(lut, pt->cbt[stg], pt->k[stg], pt->v, xs + (size_t)s * pt->v);
                    for (int64_t r = row0; r < row1; r++) {
                        if (r >= gfirst && r < glast) {
                            uint64_t base = ((uint64_t)s * (uint64_t)st->rows + (uint64_t)r) * bits;
                            kn->group(tgt + (r - row0), lut, pt->idx[stg], limit, base, bits);
                            r += VQ_GROUP - 1;
                            continue;
                        }
                        tgt[r - row0] += lut[vq_get_index(pt->idx[stg], st->rows, bits, s, r)];
                    }
                }
            }
            if (pt->ngroups)
                for (int64_t r = row0; r < row1; r++)
                    acc[r - row0] += pt->gs[(size_t)r * pt->ngroups + g] * gacc[r - row0];
        }
    }
    for (int64_t r = row0; r < row1; r++)
        y[r] = acc[r - row0] * (st->row_scale ? st->row_scale[r] : 1.0f);
    hci_free(acc);
    hci_free(gacc);
    hci_free(lut);
    hci_free(xs);
    return HC_OK;
}

int vq_matvec_portable(const vq_state *st, const float *x, float *y, int64_t row0, int64_t row1)
{
    return matvec_with(&kernel_portable, st, x, y, row0, row1);
}

int vq_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    return matvec_with(pick_kernel(hci_cpu_isa()), ct->state, x, y, row0, row1);
}
