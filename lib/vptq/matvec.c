/* The fused VPTQ matvec: y = W x straight from indices and codebooks, W never materialised.
 * Per column segment, a lookup table holds the dot product of every centroid with that
 * segment of (column-scaled) x; each row then adds one table entry per index. Indices are
 * read 32 rows at a time from their bit planes. AVX-512 and AVX2 kernels beside a portable one. */
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/cpu.h"
#include "common/error.h"
#include "vptq/vptq.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VQ_X86 1
#endif

/* Where a stage's indices live (see layout.c): nb byte planes of n bytes, then a bit-plane
 * remainder of br bits per index, limit bytes long. */
typedef struct hci_vq_stream {
    const uint8_t *bytes, *rem;
    uint64_t n, limit;
    uint32_t nb, br;
} hci_vq_stream;

/* 32 bits of a remainder plane from bit offset `bit`. */
static inline uint32_t load_plane(const uint8_t *stream, uint64_t limit, uint64_t bit)
{
    uint64_t byte = bit >> 3, w = 0;
    if (byte + 8 <= limit) {
        w = hci_get_u64(stream + byte);
    } else {
        for (uint64_t i = byte; i < limit; i++)
            w |= (uint64_t)stream[i] << (8 * (i - byte));
    }
    return (uint32_t)(w >> (bit & 7));
}

typedef struct hci_vq_kernel {
    void (*lut)(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x);
    /* acc[i] += lut[index i] for the 32 indices of a full group at position pos of a stream */
    void (*group)(float *acc, const float *lut, const hci_vq_stream *st, uint64_t pos);
} hci_vq_kernel;

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
        uint32_t plane = load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
        for (uint32_t i = 0; i < VQ_GROUP; i++)
            idx[i] |= ((plane >> i) & 1u) << (8 * st->nb + j);
    }
    for (uint32_t i = 0; i < VQ_GROUP; i++)
        acc[i] += lut[idx[i]];
}

static const hci_vq_kernel kernel_portable = { lut_portable, group_portable };

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

__attribute__((target("avx2,fma"))) static void group_avx2(float *acc, const float *lut, const hci_vq_stream *st,
                                                          uint64_t pos)
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
        uint32_t plane = load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
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

static const hci_vq_kernel kernel_avx2 = { lut_avx2, group_avx2 };

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
        uint32_t plane = load_plane(st->rem, st->limit, pos * st->br + 32ull * j);
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

static const hci_vq_kernel kernel_avx512 = { lut_avx512, group_avx512 };
#endif

static const hci_vq_kernel *pick_kernel(hci_isa isa)
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

static int matvec_with(const hci_vq_kernel *kn, const hci_vq_state *st, const float *x, float *y, int64_t row0,
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
        const hci_vq_part *pt = &st->part[p];
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
                uint64_t n = (uint64_t)st->rows * pt->segs;
                hci_vq_stream str = { pt->idx[stg], pt->idx[stg] + (bits / 8) * n, n, 0, bits / 8, bits % 8 };
                str.limit = (n * str.br + 7) / 8;
                for (uint32_t s = s0; s < s1; s++) {
                    kn->lut(lut, pt->cbt[stg], pt->k[stg], pt->v, xs + (size_t)s * pt->v);
                    for (int64_t r = row0; r < row1; r++) {
                        if (r >= gfirst && r < glast) {
                            kn->group(tgt + (r - row0), lut, &str, (uint64_t)s * (uint64_t)st->rows + (uint64_t)r);
                            r += VQ_GROUP - 1;
                            continue;
                        }
                        tgt[r - row0] += lut[hci_vq_get_index(pt->idx[stg], st->rows, pt->segs, bits, s, r)];
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

int hci_vq_matvec_portable(const hci_vq_state *st, const float *x, float *y, int64_t row0, int64_t row1)
{
    return matvec_with(&kernel_portable, st, x, y, row0, row1);
}

int hci_vq_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    return matvec_with(pick_kernel(hci_cpu_isa()), ct->state, x, y, row0, row1);
}
