/* VPTQ decode: rows of the tensor from the codebooks, index streams and scales. A 32-row
 * group's indices are unpacked a unit (one segment's 32 indices) at a time, then each row of
 * the group is written front to back, so no index is looked up bit by bit. */
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "vptq/matvec.h"
#include "vptq/vptq.h"

/* Indices of every segment for rows g0 .. g0 + 31 (fewer in a short last group) of one stage:
 * out[s x 32 + r - g0]. */
static void group_indices(uint16_t *out, const hci_vq_stream *str, int64_t g0)
{
    uint32_t unit[VQ_GROUP];
    for (uint32_t s = 0; s < str->segs; s++, out += VQ_GROUP) {
        if (str->rows - g0 >= (int64_t)VQ_GROUP) {
            hci_vq_unit_indices(unit, hci_vq_unit(str, g0, s), str->bits);
            for (uint32_t i = 0; i < VQ_GROUP; i++)
                out[i] = (uint16_t)unit[i];
        } else {
            for (int64_t r = g0; r < str->rows; r++)
                out[r - g0] = (uint16_t)hci_vq_get_index(str->bytes, str->rows, str->segs, str->bits, s, r);
        }
    }
}

/* What the row writers read: the part's sources and one row's indices and scales. */
typedef struct row_job {
    const float *cb[2];       /* main and residual codebooks (cb[1] NULL without a residual) */
    const float *col_scale;   /* or NULL */
    const uint32_t *cols;     /* the part's column map */
    uint32_t v, ncols, segs, gsegs;
    const uint16_t *idx[2];   /* the row's index of segment s at idx[stage][32 s] */
    const float *gs;          /* the row's group scales, or NULL */
    float rs;                 /* the row scale (1 without) */
} row_job;

/* One segment of a row: its centroids (c1 NULL without a residual), scale (row scale x group
 * scale), columns and length. */
typedef struct segment {
    const float *c0, *c1;
    const uint32_t *cols;
    float scale;
    uint32_t nt;
} segment;

static inline segment segment_of(const row_job *j, uint32_t s)
{
    segment g;
    g.c0 = j->cb[0] + (size_t)j->idx[0][(size_t)s * VQ_GROUP] * j->v;
    g.c1 = j->cb[1] ? j->cb[1] + (size_t)j->idx[1][(size_t)s * VQ_GROUP] * j->v : NULL;
    g.scale = j->rs * (j->gs ? j->gs[s / j->gsegs] : 1.0f);
    g.nt = j->ncols - s * j->v < j->v ? j->ncols - s * j->v : j->v;
    g.cols = j->cols + (size_t)s * j->v;
    return g;
}

/* A segment into o value by value, through its column map: (centroid + residual) times the
 * scale, times the column scale cs[c] (cs may be NULL), each step rounded in that order: the
 * format's arithmetic. */
static inline void write_segment(const segment *g, const float *cs, float *o)
{
    for (uint32_t t = 0; t < g->nt; t++) {
        uint32_t c = g->cols[t];
        float val = g->c0[t] + (g->c1 ? g->c1[t] : 0.0f);
        o[c] = val * g->scale * (cs ? cs[c] : 1.0f);
    }
}

/* The writers copy the job first: a float store to o could otherwise alias its fields (rs),
 * and they would be read again for every value. */
typedef void (*row_writer)(const row_job *job, float *o);

static void write_row_portable(const row_job *job, float *o)
{
    const row_job j = *job;
    for (uint32_t s = 0; s < j.segs; s++) {
        segment g = segment_of(&j, s);
        write_segment(&g, j.col_scale, o);
    }
}

#ifdef VQ_X86
/* The same with AVX-512: a segment whose columns are consecutive (all of them in a part without
 * outlier columns) is one masked vector of up to 16 values, with the same operations in the same
 * order, so the bytes equal the portable writer's; other segments go value by value. */
VQ_AVX512 static void write_row_avx512(const row_job *job, float *o)
{
    const row_job j = *job;
    for (uint32_t s = 0; s < j.segs; s++) {
        segment g = segment_of(&j, s);
        if (g.cols[g.nt - 1] - g.cols[0] != g.nt - 1) {
            write_segment(&g, j.col_scale, o);
            continue;
        }
        __mmask16 m = (__mmask16)((1u << g.nt) - 1u);
        __m512 val = _mm512_maskz_loadu_ps(m, g.c0);
        __m512 res = g.c1 ? _mm512_maskz_loadu_ps(m, g.c1) : _mm512_setzero_ps();
        __m512 w = _mm512_mul_ps(_mm512_add_ps(val, res), _mm512_set1_ps(g.scale));
        if (j.col_scale)
            w = _mm512_mul_ps(w, _mm512_maskz_loadu_ps(m, j.col_scale + g.cols[0]));
        _mm512_mask_storeu_ps(o + g.cols[0], m, w);
    }
}
#endif

static row_writer row_writer_for(hci_isa isa)
{
#ifdef VQ_X86
    if (isa == HCI_ISA_AVX512)
        return write_row_avx512;
#else
    (void)isa;
#endif
    return write_row_portable;
}

/* Rows [r0, r1), all within the 32-row group starting at g0, of part pt into out (row r0 at
 * out, rows st->cols floats apart), one row at a time so that the writes run front to back.
 * idx has room for 2 x segs x 32 indices. */
static void decode_part(const hci_vq_state *st, const hci_vq_part *pt, int64_t g0, int64_t r0, int64_t r1,
                        float *out, uint16_t *idx, row_writer write_row)
{
    hci_vq_stream str;
    uint16_t *idx1 = idx + (size_t)pt->segs * VQ_GROUP;
    hci_vq_stream_init(&str, pt->idx[0], st->rows, pt->segs, pt->bits[0]);
    group_indices(idx, &str, g0);
    if (pt->bits[1]) {
        hci_vq_stream_init(&str, pt->idx[1], st->rows, pt->segs, pt->bits[1]);
        group_indices(idx1, &str, g0);
    }
    row_job j = { { pt->cb[0], pt->bits[1] ? pt->cb[1] : NULL }, st->col_scale, pt->cols, pt->v, pt->ncols,
                  pt->segs, pt->gsegs, { NULL, NULL }, NULL, 1.0f };
    for (int64_t r = r0; r < r1; r++) {
        j.idx[0] = idx + (r - g0);
        j.idx[1] = idx1 + (r - g0);
        j.gs = pt->gs ? pt->gs + (size_t)r * pt->ngroups : NULL;
        j.rs = st->row_scale ? st->row_scale[r] : 1.0f;
        write_row(&j, out + (size_t)(r - r0) * (size_t)st->cols);
    }
}

/* Whole rows [r0, r1) into out (row r0 at out). */
static int decode_rows(const hci_vq_state *st, int64_t r0, int64_t r1, float *out, row_writer write_row)
{
    uint32_t segs = 0;
    for (uint32_t p = 0; p < st->nparts; p++)
        segs = st->part[p].segs > segs ? st->part[p].segs : segs;
    uint16_t *idx = hci_malloc_array((size_t)segs * 2 * VQ_GROUP, sizeof(uint16_t));
    if (!idx)
        return HC_ENOMEM;
    for (int64_t g0 = r0 / VQ_GROUP * VQ_GROUP; g0 < r1; g0 += VQ_GROUP) {
        int64_t a = g0 > r0 ? g0 : r0, b = g0 + VQ_GROUP < r1 ? g0 + VQ_GROUP : r1;
        for (uint32_t p = 0; p < st->nparts; p++)
            decode_part(st, &st->part[p], g0, a, b, out + (size_t)(a - r0) * (size_t)st->cols, idx, write_row);
    }
    hci_free(idx);
    return HC_OK;
}

/* Values [a, b) of row r, through a scratch row. */
static int decode_partial_row(const hci_vq_state *st, int64_t r, int64_t a, int64_t b, float *out,
                              row_writer write_row)
{
    float *row = hci_malloc_array((size_t)st->cols, sizeof(float));
    if (!row)
        return HC_ENOMEM;
    int rc = decode_rows(st, r, r + 1, row, write_row);
    if (rc == HC_OK)
        memcpy(out, row + (a - r * st->cols), sizeof(float) * (size_t)(b - a));
    hci_free(row);
    return rc;
}

int hci_vq_decode_with(const hci_vq_state *st, int64_t first, int64_t count, float *out, hci_isa isa)
{
    const int64_t cols = st->cols, end = first + count;
    const hci_isa cpu = hci_cpu_isa();
    const row_writer w = row_writer_for(isa < cpu ? isa : cpu);
    if (count <= 0)
        return HC_OK;
    /* rows [ra, rb) lie wholly inside the range */
    int64_t ra = (first + cols - 1) / cols, rb = end / cols;
    if (ra > rb) /* inside one row */
        return decode_partial_row(st, first / cols, first, end, out, w);
    int rc = HC_OK;
    if (first < ra * cols)
        rc = decode_partial_row(st, ra - 1, first, ra * cols, out, w);
    if (rc == HC_OK && ra < rb)
        rc = decode_rows(st, ra, rb, out + (ra * cols - first), w);
    if (rc == HC_OK && end > rb * cols)
        rc = decode_partial_row(st, rb, rb * cols, end, out + (rb * cols - first), w);
    return rc;
}

int hci_vq_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    return hci_vq_decode_with(ct->state, first, count, out, hci_cpu_isa());
}
