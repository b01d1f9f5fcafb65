/* The fused VPTQ matvec: y = W x straight from indices and codebooks, W never materialised.
 * This file gathers x into each part's column order (times the column scales), chooses per part
 * and stage between the lookup-table kernels (matvec_lut.c) and the gather-dot kernels
 * (matvec_gather.c) by a cost estimate, and applies group and row scales. */
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "vptq/matvec.h"

/* Cost model per segment, in ns, measured with bench_vptq --clock cpu on 4096 x 4096 Gaussian
 * tensors (v = 2..8, k = 16..4096; AMD Zen 5): a table costs LUT_BUILD per centroid component,
 * then LUT_READ per row; gather-dot GATHER_READ per row. With SIMD the gather-dot kernel
 * measured faster at every k (0.3-0.37 ns a vector against 0.55-1.0 for the tables, whose reads
 * are scalar), so it is chosen wherever its offsets fit; the portable tables win unless the
 * codebook is large beside the rows of the call (one thread's few rows of a large-k tensor). */
static const struct {
    double lut_build, lut_read, gather_read;
} cost[] = {
    [HCI_ISA_PORTABLE] = { 0.5, 2.0, 5.0 },
    [HCI_ISA_AVX2] = { 0.06, 0.6, 0.4 },
    [HCI_ISA_AVX512] = { 0.06, 0.6, 0.35 },
};

hci_vq_strategy hci_vq_choose(const hci_vq_state *st, uint32_t p, int stage, int64_t nr, hci_isa isa)
{
    const hci_vq_part *pt = &st->part[p];
    if (!hci_vq_gather_ok(isa, pt->bits[stage], pt->pad))
        return HCI_VQ_LUT;
    double lut = cost[isa].lut_build * (double)pt->k[stage] * pt->v + cost[isa].lut_read * (double)nr;
    double gather = cost[isa].gather_read * (double)nr;
    return gather < lut ? HCI_VQ_GATHER : HCI_VQ_LUT;
}

/* Segments whose tables are built together: as many as fit VQ_LUT_FLOATS floats (32 KB), up
 * to 32. The stream holds a group's units of consecutive segments side by side, so the tables
 * of a block of segments let each group's indices be read front to back. */
#define VQ_LUT_FLOATS 8192u

static uint32_t lut_block(uint32_t k)
{
    uint32_t n = VQ_LUT_FLOATS / k;
    return n < 1 ? 1u : n > 32 ? 32u : n;
}

/* One stage of a part by lookup tables; group by group when the part has group scales. */
static void lut_stage(const hci_vq_lut_kernel *kn, const hci_vq_state *st, const hci_vq_part *pt, int stg,
                      const float *xs, float *lut, float *acc, float *gacc, int64_t row0, int64_t row1)
{
    int64_t nr = row1 - row0;
    /* rows [gfirst, glast) are whole groups handled by the kernel; the rest one by one */
    int64_t gfirst = (row0 + VQ_GROUP - 1) / VQ_GROUP * VQ_GROUP;
    int64_t glast = row1 / VQ_GROUP * VQ_GROUP;
    if (glast < gfirst)
        glast = gfirst;
    uint32_t bits = pt->bits[stg], k = pt->k[stg], blk = lut_block(k);
    hci_vq_stream str;
    hci_vq_stream_init(&str, pt->idx[stg], st->rows, pt->segs, bits);
    /* with group scales, each group's sum is scaled before it joins the row's total */
    uint32_t gsegs = pt->ngroups ? pt->gsegs : pt->segs, ngroups = pt->ngroups ? pt->ngroups : 1;
    float *tgt = pt->ngroups ? gacc : acc;
    for (uint32_t g = 0; g < ngroups; g++) {
        uint32_t s0 = g * gsegs, s1 = s0 + gsegs < pt->segs ? s0 + gsegs : pt->segs;
        if (pt->ngroups)
            memset(gacc, 0, sizeof(float) * (size_t)nr);
        for (uint32_t sb = s0; sb < s1; sb += blk) {
            uint32_t ns = s1 - sb < blk ? s1 - sb : blk;
            for (uint32_t j = 0; j < ns; j++)
                kn->lut(lut + (size_t)j * k, pt->cbt[stg], k, pt->v, xs + (size_t)(sb + j) * pt->v);
            if (gfirst < glast)
                kn->groups(tgt + (gfirst - row0), lut, k, &str, sb, ns, gfirst, glast);
            for (int64_t r = row0; r < row1; r++) {
                if (r == gfirst && gfirst < glast)
                    r = glast;
                if (r >= row1)
                    break;
                for (uint32_t j = 0; j < ns; j++)
                    tgt[r - row0] += lut[(size_t)j * k + hci_vq_get_index(pt->idx[stg], st->rows, pt->segs, bits, sb + j, r)];
            }
        }
        if (pt->ngroups)
            for (int64_t r = row0; r < row1; r++)
                acc[r - row0] += pt->gs[(size_t)r * pt->ngroups + g] * gacc[r - row0];
    }
}

int hci_vq_matvec_with(const hci_vq_state *st, const float *x, float *y, int64_t row0, int64_t row1, hci_isa isa,
                       hci_vq_strategy strategy)
{
    if (isa > hci_cpu_isa())
        isa = hci_cpu_isa();
    const hci_vq_lut_kernel *lk = hci_vq_lut_kernel_for(isa);
    hci_vq_gather_fn gk = hci_vq_gather_kernel_for(isa);
    int64_t nr = row1 - row0;
    uint32_t maxk = 1, maxseg = 1, maxpad = 1;
    for (uint32_t p = 0; p < st->nparts; p++) {
        for (int s = 0; s < 2; s++)
            if (st->part[p].k[s] > maxk)
                maxk = st->part[p].k[s];
        if (st->part[p].segs * st->part[p].v > maxseg)
            maxseg = st->part[p].segs * st->part[p].v;
        if (st->part[p].segs * st->part[p].pad > maxpad)
            maxpad = st->part[p].segs * st->part[p].pad;
    }
    float *acc = hci_aligned_array((size_t)nr, sizeof(float));
    float *gacc = hci_aligned_array((size_t)nr, sizeof(float));
    float *lut = hci_aligned_array((size_t)maxk * lut_block(maxk), sizeof(float));
    float *xs = hci_aligned_array(maxseg, sizeof(float));
    float *xe = hci_aligned_array(maxpad, sizeof(float));
    uint16_t *off = hci_aligned_array(VQ_SEGBLOCK * VQ_TILE, sizeof(uint16_t));
    int rc = HC_OK;
    if (!acc || !lut || !xs || !gacc || !xe || !off) {
        rc = HC_ENOMEM;
        goto done;
    }
    memset(acc, 0, sizeof(float) * (size_t)nr);
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
        int xe_ready = 0;
        for (int stg = 0; stg < 2; stg++) {
            if (!pt->bits[stg])
                continue;
            hci_vq_strategy how = strategy != HCI_VQ_AUTO ? strategy : hci_vq_choose(st, p, stg, nr, isa);
            if (how == HCI_VQ_LUT || !hci_vq_gather_ok(isa, pt->bits[stg], pt->pad)) {
                lut_stage(lk, st, pt, stg, xs, lut, acc, gacc, row0, row1);
                continue;
            }
            if (!xe_ready) {
                /* each segment of x padded to the codebook's entry width; padding lanes are zero
                 * in both, so a full-width product adds nothing for them */
                memset(xe, 0, sizeof(float) * (size_t)pt->segs * pt->pad);
                for (uint32_t s = 0; s < pt->segs; s++)
                    memcpy(xe + (size_t)s * pt->pad, xs + (size_t)s * pt->v, sizeof(float) * pt->v);
                xe_ready = 1;
            }
            hci_vq_gather_job job = { pt->cbh[stg], pt->cb[stg], pt->pad, pt->v, { 0 }, st->rows, pt->segs,
                                      pt->bits[stg], xe, pt->gs, pt->gsegs, pt->ngroups, off };
            hci_vq_stream_init(&job.str, pt->idx[stg], st->rows, pt->segs, pt->bits[stg]);
            gk(acc, &job, row0, row1);
        }
    }
    for (int64_t r = row0; r < row1; r++)
        y[r] = acc[r - row0] * (st->row_scale ? st->row_scale[r] : 1.0f);
done:
    hci_free(acc);
    hci_free(gacc);
    hci_free(lut);
    hci_free(xs);
    hci_free(xe);
    hci_free(off);
    return rc;
}

int hci_vq_matvec_portable(const hci_vq_state *st, const float *x, float *y, int64_t row0, int64_t row1)
{
    return hci_vq_matvec_with(st, x, y, row0, row1, HCI_ISA_PORTABLE, HCI_VQ_AUTO);
}

int hci_vq_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    return hci_vq_matvec_with(ct->state, x, y, row0, row1, hci_cpu_isa(), HCI_VQ_AUTO);
}
