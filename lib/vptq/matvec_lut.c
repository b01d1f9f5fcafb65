/* The lookup-table kernels of the fused VPTQ matvec (chosen by matvec.c when k x v is small
 * beside the rows of a call): per column segment, a table holds the dot product of every
 * centroid with that segment of (column-scaled) x, and each row adds one table entry per index.
 * Indices are read 32 rows (one unit of the stream) at a time. */
#include "vptq/matvec.h"

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

static void groups_portable(float *acc, const float *lut, uint32_t k, const hci_vq_stream *st, uint32_t s0,
                            uint32_t ns, int64_t g0, int64_t g1)
{
    for (int64_t g = g0; g < g1; g += VQ_GROUP, acc += VQ_GROUP)
        for (uint32_t j = 0; j < ns; j++) {
            uint32_t idx[VQ_GROUP];
            const float *t = lut + (size_t)j * k;
            hci_vq_unit_indices(idx, hci_vq_unit(st, g, s0 + j), st->bits);
            for (uint32_t i = 0; i < VQ_GROUP; i++)
                acc[i] += t[idx[i]];
        }
}

static const hci_vq_lut_kernel kernel_portable = { lut_portable, groups_portable };

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

VQ_AVX2 static void groups_avx2(float *acc, const float *lut, uint32_t k, const hci_vq_stream *st, uint32_t s0,
                                uint32_t ns, int64_t g0, int64_t g1)
{
    hci_vq_unpacker256 u;
    hci_vq_unpack256_init(&u, st->bits);
    for (int64_t g = g0; g < g1; g += VQ_GROUP, acc += VQ_GROUP) {
        __m256 sum[4];
        for (int q = 0; q < 4; q++)
            sum[q] = _mm256_loadu_ps(acc + 8 * q);
        for (uint32_t j = 0; j < ns; j++) {
            __m256i iv[4];
            hci_vq_unpack256(&u, hci_vq_unit(st, g, s0 + j), st->end, iv);
            for (int q = 0; q < 4; q++)
                sum[q] = _mm256_add_ps(sum[q], _mm256_i32gather_ps(lut + (size_t)j * k, iv[q], 4));
        }
        for (int q = 0; q < 4; q++)
            _mm256_storeu_ps(acc + 8 * q, sum[q]);
    }
}

static const hci_vq_lut_kernel kernel_avx2 = { lut_avx2, groups_avx2 };

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

VQ_AVX512 static void groups_avx512(float *acc, const float *lut, uint32_t k, const hci_vq_stream *st, uint32_t s0,
                                   uint32_t ns, int64_t g0, int64_t g1)
{
    hci_vq_unpacker512 u;
    hci_vq_unpack512_init(&u, st->bits);
    for (int64_t g = g0; g < g1; g += VQ_GROUP, acc += VQ_GROUP) {
        __m512 lo = _mm512_loadu_ps(acc), hi = _mm512_loadu_ps(acc + 16);
        for (uint32_t j = 0; j < ns; j++) {
            const float *t = lut + (size_t)j * k;
            __m512i iv[2];
            hci_vq_unpack512(&u, hci_vq_unit(st, g, s0 + j), iv);
            /* scalar loads beat vgatherdps here: two loads a cycle against a gather's microcode */
            uint32_t idx[VQ_GROUP];
            float val[VQ_GROUP];
            _mm512_storeu_si512((void *)idx, iv[0]);
            _mm512_storeu_si512((void *)(idx + 16), iv[1]);
            for (uint32_t i = 0; i < VQ_GROUP; i++)
                val[i] = t[idx[i]];
            lo = _mm512_add_ps(lo, _mm512_loadu_ps(val));
            hi = _mm512_add_ps(hi, _mm512_loadu_ps(val + 16));
        }
        _mm512_storeu_ps(acc, lo);
        _mm512_storeu_ps(acc + 16, hi);
    }
}

static const hci_vq_lut_kernel kernel_avx512 = { lut_avx512, groups_avx512 };
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
