/* The VPTQ byte layout (doc/algorithms.md, ## VPTQ): section sizes, the row-grouped index
 * streams, and attach(), which trusts nothing in the bytes it is handed (decode.c decodes). */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/half.h"
#include "vptq/builtin.h"
#include "vptq/vptq.h"

/* Generic serialised tensor: 24-byte header, 8 bytes per dimension, params, payload, CRC32C. */
#define CT_OVERHEAD 28u

static uint32_t bits_for(uint64_t n)
{
    uint32_t b = 1;
    while (b < 32 && (1ull << b) < n)
        b++;
    return b;
}

uint64_t hci_vq_index_bytes(int64_t rows, uint32_t segs, uint32_t bits)
{
    uint64_t n = (uint64_t)rows * segs;
    return (bits / 8) * n + (n * (bits % 8) + 7) / 8;
}

int hci_vq_layout(hci_vq_sections *s, const hci_vq_config *c, int64_t rows, int64_t cols)
{
    memset(s, 0, sizeof *s);
    uint32_t np = hci_vq_nparts(c);
    s->params_len = 8u + 4u * np;
    s->col_bits = bits_for((uint64_t)cols);
    uint64_t o = 0;
    s->out_cols = o;
    o += ((uint64_t)c->n_out * s->col_bits + 7) / 8;
    s->col_scales = o;
    if (c->flags & VQ_FLAG_COL)
        o += 2u * (uint64_t)cols;
    s->row_scales = o;
    if (c->flags & VQ_FLAG_ROW)
        o += 2u + (uint64_t)rows;
    for (uint32_t p = 0; p < np; p++) {
        const hci_vq_part_cfg *pc = &c->part[p];
        uint64_t ncols = hci_vq_part_cols(c, cols, p);
        uint64_t segs = (ncols + pc->v - 1) / pc->v;
        if (segs > UINT32_MAX || (uint64_t)rows > (UINT64_MAX >> 8) / (segs ? segs : 1) / 32)
            return 0;
        s->grp[p] = o;
        o += ((uint64_t)rows * hci_vq_ngroups((uint32_t)segs, pc->gsegs) + 1) / 2;
        for (int st = 0; st < 2; st++) {
            s->cb[p][st] = o;
            if (pc->bits[st] && !(st == 0 && pc->builtin))
                o += 2ull * ((uint64_t)1 << pc->bits[st]) * pc->v;
        }
        for (int st = 0; st < 2; st++) {
            s->idx[p][st] = o;
            if (pc->bits[st])
                o += hci_vq_index_bytes(rows, (uint32_t)segs, pc->bits[st]);
        }
    }
    s->payload_len = o;
    return 1;
}

uint64_t hci_vq_serialized_bytes(const hci_vq_config *c, int64_t rows, int64_t cols, uint32_t ndim)
{
    hci_vq_sections s;
    if (!hci_vq_layout(&s, c, rows, cols))
        return UINT64_MAX;
    return CT_OVERHEAD + 8ull * ndim + s.params_len + s.payload_len;
}

void hci_vq_write_params(uint8_t *out, const hci_vq_config *c)
{
    uint32_t np = hci_vq_nparts(c);
    out[0] = VQ_LAYOUT_VERSION;
    out[1] = (uint8_t)(c->flags | (c->part[0].builtin ? VQ_FLAG_BUILTIN0 : 0u) |
                       (np > 1 && c->part[1].builtin ? VQ_FLAG_BUILTIN1 : 0u));
    out[2] = (uint8_t)np;
    out[3] = 0;
    hci_put_u32(out + 4, c->n_out);
    for (uint32_t p = 0; p < np; p++) {
        out[8 + 4 * p] = (uint8_t)c->part[p].v;
        out[9 + 4 * p] = (uint8_t)c->part[p].bits[0];
        out[10 + 4 * p] = (uint8_t)c->part[p].bits[1];
        out[11 + 4 * p] = (uint8_t)c->part[p].gsegs;
    }
}

/* ---- index streams ----
 * rows x segs indices of b bits, packed LSB first with no gaps, row-grouped: rows go in groups
 * of 32 (the last may hold m < 32), and a group holds, for each segment in turn, the indices of
 * its rows in row order. Index (s, r) of group g = r / 32 (first row r0 = 32 g, m rows) sits at
 * bit 32 g x segs x b + (s x m + r - r0) x b. A full group's 32 indices of one segment (a unit)
 * take exactly 4b bytes and start on a byte, so the matvec unpacks them with one or two wide
 * loads, and a tile of rows reads its indices front to back. Every index costs exactly b bits. */

static inline uint64_t index_bit(int64_t rows, uint32_t segs, uint32_t bits, uint32_t s, int64_t r)
{
    int64_t r0 = r / VQ_GROUP * VQ_GROUP;
    uint64_t m = rows - r0 < VQ_GROUP ? (uint64_t)(rows - r0) : VQ_GROUP;
    return ((uint64_t)r0 * segs + (uint64_t)s * m + (uint64_t)(r - r0)) * bits;
}

uint32_t hci_vq_get_index(const uint8_t *stream, int64_t rows, uint32_t segs, uint32_t bits, uint32_t s, int64_t r)
{
    uint64_t bit = index_bit(rows, segs, bits, s, r), byte = bit >> 3;
    uint32_t need = ((uint32_t)(bit & 7) + bits + 7) / 8, v = 0;
    for (uint32_t i = 0; i < need; i++)
        v |= (uint32_t)stream[byte + i] << (8 * i);
    return (v >> (bit & 7)) & ((1u << bits) - 1u);
}

/* ORs the `bits` low bits of v into dst from bit `bit` on. */
static void put_bits(uint8_t *dst, uint64_t bit, uint32_t v, uint32_t bits)
{
    for (uint32_t j = 0; j < bits; j++, bit++)
        dst[bit >> 3] |= (uint8_t)(((v >> j) & 1u) << (bit & 7));
}

void hci_vq_put_indices(uint8_t *dst, const uint32_t *idx, int64_t rows, uint32_t segs, uint32_t bits)
{
    for (uint32_t s = 0; s < segs; s++)
        for (int64_t r = 0; r < rows; r++)
            put_bits(dst, index_bit(rows, segs, bits, s, r), idx[(size_t)s * (size_t)rows + (size_t)r], bits);
}

/* Layout versions 1 and 2 stored the same indices segment-major in planes: floor(b/8) byte
 * planes (plane j, rows x segs bytes in (segment, row) order, holds bits 8j..8j+7), then the
 * b mod 8 remaining bits as bit planes per 32-row group, group (s, g) from bit
 * (s x rows + 32 g) x (b mod 8), bit j of its m rows in m consecutive bits. attach() rewrites
 * such a stream in the current order once, so decode and matvec know one order. */
static uint32_t legacy_index(const uint8_t *stream, int64_t rows, uint32_t segs, uint32_t bits, uint32_t s, int64_t r)
{
    uint64_t n = (uint64_t)rows * segs, pos = (uint64_t)s * (uint64_t)rows + (uint64_t)r;
    uint32_t nb = bits / 8, br = bits % 8, v = 0;
    for (uint32_t j = 0; j < nb; j++)
        v |= (uint32_t)stream[j * n + pos] << (8 * j);
    const uint8_t *rem = stream + nb * n;
    int64_t r0 = r / VQ_GROUP * VQ_GROUP;
    uint64_t m = rows - r0 < VQ_GROUP ? (uint64_t)(rows - r0) : VQ_GROUP;
    uint64_t base = ((uint64_t)s * (uint64_t)rows + (uint64_t)r0) * br + (uint64_t)(r - r0);
    for (uint32_t j = 0; j < br; j++) {
        uint64_t bit = base + j * m;
        v |= (uint32_t)((rem[bit >> 3] >> (bit & 7)) & 1u) << (8 * nb + j);
    }
    return v;
}

/* A stream of the current order holding the indices of a legacy one; NULL without memory. */
static uint8_t *transcode_legacy(const uint8_t *old, int64_t rows, uint32_t segs, uint32_t bits)
{
    uint8_t *out = hci_calloc(1, hci_vq_index_bytes(rows, segs, bits) + 1);
    if (!out)
        return NULL;
    for (uint32_t s = 0; s < segs; s++)
        for (int64_t r = 0; r < rows; r++)
            put_bits(out, index_bit(rows, segs, bits, s, r), legacy_index(old, rows, segs, bits, s, r), bits);
    return out;
}

/* ---- attach ---- */

/* Up to 32 bits from any bit offset; reads only the bytes the field touches. */
static uint32_t read_bits32(const uint8_t *src, uint64_t bit, uint32_t n)
{
    uint64_t byte = bit >> 3;
    uint32_t shift = (uint32_t)(bit & 7);
    uint32_t need = (shift + n + 7) / 8;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < need; i++)
        acc |= (uint64_t)src[byte + i] << (8 * i);
    acc >>= shift;
    return n == 32 ? (uint32_t)acc : (uint32_t)(acc & ((1ull << n) - 1));
}

static void free_state(hci_vq_state *st)
{
    if (!st)
        return;
    for (int p = 0; p < 2; p++) {
        hci_free(st->part[p].cols);
        for (int s = 0; s < 2; s++) {
            hci_free(st->part[p].cb[s]);
            hci_free(st->part[p].cbt[s]);
            hci_free(st->part[p].cbh[s]);
            hci_free(st->part[p].own_idx[s]);
        }
    }
    for (int p = 0; p < 2; p++)
        hci_free(st->part[p].gs);
    hci_free(st->row_scale);
    hci_free(st->col_scale);
    hci_free(st);
}

void hci_vq_detach(hc_ctensor *ct)
{
    free_state(ct->state);
    ct->state = NULL;
}

static int parse_params(hci_vq_config *c, const hc_ctensor *ct)
{
    const uint8_t *p = ct->params;
    memset(c, 0, sizeof *c);
    if (ct->params_len < 8)
        return hci_fail(HC_EFORMAT, "vptq tensor has %u parameter bytes; at least 8 are needed", ct->params_len);
    if (p[0] < 1 || p[0] > VQ_LAYOUT_VERSION)
        return hci_fail(HC_EFORMAT, "vptq tensor has layout version %u; this library reads versions 1 to %u", p[0],
                        VQ_LAYOUT_VERSION);
    uint32_t known = p[0] == 1 ? (VQ_FLAG_ROW | VQ_FLAG_COL)
                               : (VQ_FLAG_ROW | VQ_FLAG_COL | VQ_FLAG_BUILTIN0 | VQ_FLAG_BUILTIN1);
    if (p[1] & ~known)
        return hci_fail(HC_EFORMAT, "vptq tensor (layout version %u) has unknown flags 0x%02x", p[0], p[1]);
    if (p[3] != 0)
        return hci_fail(HC_EFORMAT, "vptq tensor has nonzero reserved byte %u", p[3]);
    c->flags = p[1] & (VQ_FLAG_ROW | VQ_FLAG_COL);
    c->n_out = hci_get_u32(p + 4);
    uint32_t np = p[2];
    if (np != (c->n_out ? 2u : 1u))
        return hci_fail(HC_EFORMAT, "vptq tensor declares %u parts with %u outlier columns", np, c->n_out);
    if ((p[1] & VQ_FLAG_BUILTIN1) && np < 2)
        return hci_fail(HC_EFORMAT, "vptq tensor flags a built-in codebook for part 1 but has %u part", np);
    if ((int64_t)c->n_out >= ct->cols && c->n_out)
        return hci_fail(HC_EFORMAT, "vptq tensor declares %u outlier columns of %lld", c->n_out,
                        (long long)ct->cols);
    if (ct->params_len != 8u + 4u * np)
        return hci_fail(HC_EFORMAT, "vptq tensor has %u parameter bytes; %u parts need %u", ct->params_len, np,
                        8u + 4u * np);
    for (uint32_t i = 0; i < np; i++) {
        const uint8_t *q = p + 8 + 4 * i;
        hci_vq_part_cfg *pc = &c->part[i];
        pc->v = q[0];
        pc->bits[0] = q[1];
        pc->bits[1] = q[2];
        if (pc->v < 2 || pc->v > VQ_MAX_V)
            return hci_fail(HC_EFORMAT, "vptq part %u has vector length %u; 2 to %u are valid", i, pc->v, VQ_MAX_V);
        if (pc->bits[0] < 1 || pc->bits[0] > VQ_MAX_BITS || pc->bits[1] > VQ_MAX_BITS)
            return hci_fail(HC_EFORMAT, "vptq part %u has index bits %u + %u; 1 to %u (0 to %u for the residual) are valid",
                            i, pc->bits[0], pc->bits[1], VQ_MAX_BITS, VQ_MAX_BITS);
        pc->gsegs = q[3];
        pc->builtin = (p[1] & (i == 0 ? VQ_FLAG_BUILTIN0 : VQ_FLAG_BUILTIN1)) ? 1u : 0u;
        if (pc->builtin && !hci_vq_builtin_table(pc->v, pc->bits[0]))
            return hci_fail(HC_EFORMAT, "vptq part %u asks for a built-in codebook of %u-vectors at %u bits; "
                            "there is none", i, pc->v, pc->bits[0]);
    }
    return HC_OK;
}

static int build_part(hci_vq_state *st, const hc_ctensor *ct, const hci_vq_sections *sec, uint32_t p,
                      const uint32_t *outs)
{
    hci_vq_part *pt = &st->part[p];
    const hci_vq_part_cfg *pc = &st->cfg.part[p];
    pt->v = pc->v;
    pt->ncols = hci_vq_part_cols(&st->cfg, ct->cols, p);
    pt->segs = (pt->ncols + pt->v - 1) / pt->v;
    pt->cols = hci_malloc_array(pt->ncols ? pt->ncols : 1, sizeof(uint32_t));
    if (!pt->cols)
        return HC_ENOMEM;
    if (p == 1) {
        memcpy(pt->cols, outs, sizeof(uint32_t) * pt->ncols);
    } else {
        uint32_t j = 0, o = 0;
        for (uint32_t c = 0; c < (uint32_t)ct->cols; c++) {
            if (o < st->cfg.n_out && outs[o] == c) {
                o++;
                continue;
            }
            pt->cols[j++] = c;
        }
    }
    pt->gsegs = pc->gsegs;
    pt->ngroups = hci_vq_ngroups(pt->segs, pc->gsegs);
    if (pt->ngroups) {
        pt->gs = hci_malloc_array((size_t)st->rows, (size_t)pt->ngroups * sizeof(float));
        if (!pt->gs)
            return HC_ENOMEM;
        const uint8_t *g = ct->payload + sec->grp[p];
        for (size_t i = 0; i < (size_t)st->rows * pt->ngroups; i++)
            pt->gs[i] = hci_vq_group_scale((g[i / 2] >> (4 * (i & 1))) & 15u);
    }
    for (int s = 0; s < 2; s++) {
        pt->bits[s] = pc->bits[s];
        if (!pc->bits[s])
            continue;
        uint32_t k = 1u << pc->bits[s];
        pt->k[s] = k;
        pt->cb[s] = hci_malloc_array(k, (size_t)pt->v * sizeof(float));
        pt->cbt[s] = hci_aligned_array(k, (size_t)pt->v * sizeof(float));
        pt->pad = pt->v <= 4 ? 4u : pt->v <= 8 ? 8u : 16u;
        pt->cbh[s] = hci_aligned_array(k, (size_t)pt->pad * sizeof(uint16_t));
        if (!pt->cb[s] || !pt->cbt[s] || !pt->cbh[s])
            return HC_ENOMEM;
        memset(pt->cbh[s], 0, (size_t)k * pt->pad * sizeof(uint16_t));
        /* a built-in codebook becomes an ordinary one here: the kernels cannot tell them apart */
        const uint16_t *table = (s == 0 && pc->builtin) ? hci_vq_builtin_table(pc->v, pc->bits[0]) : NULL;
        const uint8_t *src = ct->payload + sec->cb[p][s];
        for (uint32_t e = 0; e < k; e++)
            for (uint32_t t = 0; t < pt->v; t++) {
                size_t at = (size_t)e * pt->v + t;
                uint16_t h = table ? table[at] : hci_get_u16(src + 2 * at);
                float f = hci_f16_to_f32(h);
                if (!isfinite(f))
                    return hci_fail(HC_EFORMAT, "vptq part %u codebook %d entry %u holds a non-finite value", p, s, e);
                pt->cb[s][(size_t)e * pt->v + t] = f;
                pt->cbt[s][(size_t)t * k + e] = f;
                pt->cbh[s][(size_t)e * pt->pad + t] = h;
            }
        pt->idx[s] = ct->payload + sec->idx[p][s];
        if (ct->params[0] < 3) {
            pt->own_idx[s] = transcode_legacy(pt->idx[s], st->rows, pt->segs, pt->bits[s]);
            if (!pt->own_idx[s])
                return HC_ENOMEM;
            pt->idx[s] = pt->own_idx[s];
        }
    }
    return HC_OK;
}

int hci_vq_attach(hc_ctensor *ct)
{
    hci_vq_config cfg;
    int rc = parse_params(&cfg, ct);
    if (rc != HC_OK)
        return rc;
    hci_vq_sections sec;
    if (!hci_vq_layout(&sec, &cfg, ct->rows, ct->cols))
        return hci_fail(HC_EFORMAT, "vptq tensor of %lld x %lld: its layout sizes overflow", (long long)ct->rows,
                        (long long)ct->cols);
    if (ct->payload_len != sec.payload_len)
        return hci_fail(HC_EFORMAT, "vptq tensor of %lld x %lld has a payload of %llu bytes; its layout needs %llu",
                        (long long)ct->rows, (long long)ct->cols, (unsigned long long)ct->payload_len,
                        (unsigned long long)sec.payload_len);
    hci_vq_state *st = hci_calloc(1, sizeof *st);
    if (!st)
        return HC_ENOMEM;
    st->cfg = cfg;
    st->nparts = hci_vq_nparts(&cfg);
    st->rows = ct->rows;
    st->cols = ct->cols;
    uint32_t *outs = hci_malloc_array(cfg.n_out ? cfg.n_out : 1, sizeof(uint32_t));
    if (!outs) {
        free_state(st);
        return HC_ENOMEM;
    }
    for (uint32_t i = 0; i < cfg.n_out && rc == HC_OK; i++) {
        outs[i] = read_bits32(ct->payload + sec.out_cols, (uint64_t)i * sec.col_bits, sec.col_bits);
        if (outs[i] >= (uint64_t)ct->cols || (i && outs[i] <= outs[i - 1]))
            rc = hci_fail(HC_EFORMAT, "vptq outlier column %u is %u: columns must ascend and be below %lld", i,
                          outs[i], (long long)ct->cols);
    }
    if (rc == HC_OK && (cfg.flags & VQ_FLAG_COL)) {
        st->col_scale = hci_malloc_array((size_t)ct->cols, sizeof(float));
        if (!st->col_scale)
            rc = HC_ENOMEM;
        for (int64_t c = 0; rc == HC_OK && c < ct->cols; c++) {
            float f = hci_f16_to_f32(hci_get_u16(ct->payload + sec.col_scales + 2 * c));
            if (!isfinite(f) || f < 0.0f)
                rc = hci_fail(HC_EFORMAT, "vptq column scale %lld is %g; scales must be finite and >= 0",
                              (long long)c, (double)f);
            else
                st->col_scale[c] = f;
        }
    }
    if (rc == HC_OK && (cfg.flags & VQ_FLAG_ROW)) {
        st->row_scale = hci_malloc_array((size_t)ct->rows, sizeof(float));
        const uint8_t *rs = ct->payload + sec.row_scales;
        float base = hci_f16_to_f32(hci_get_u16(rs));
        if (!st->row_scale)
            rc = HC_ENOMEM;
        else if (!isfinite(base) || base < 0.0f)
            rc = hci_fail(HC_EFORMAT, "vptq row scale base is %g; it must be finite and >= 0", (double)base);
        for (int64_t r = 0; rc == HC_OK && r < ct->rows; r++)
            st->row_scale[r] = hci_vq_row_scale(base, rs[2 + r]);
    }
    for (uint32_t p = 0; p < st->nparts && rc == HC_OK; p++)
        rc = build_part(st, ct, &sec, p, outs);
    hci_free(outs);
    if (rc != HC_OK) {
        free_state(st);
        return rc;
    }
    ct->state = st;
    return HC_OK;
}
