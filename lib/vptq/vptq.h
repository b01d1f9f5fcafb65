/* VPTQ internals shared by the codec's files: the layout description (config), the decoded
 * state attach() builds, and the entry points of each job. */
#ifndef HCI_VPTQ_H
#define HCI_VPTQ_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "codec.h"
#include "common/cpu.h"
#include "hypercomp/vptq.h"

#define VQ_LAYOUT_VERSION 3u     /* written; versions 1 (no built-in codebooks) and 2 (index
                                    * streams in planes) are still read */
#define VQ_MAX_V 16u
#define VQ_MAX_BITS 16u
#define VQ_GROUP 32u          /* rows per group of the index streams */
#define VQ_FLAG_ROW 1u
#define VQ_FLAG_COL 2u
#define VQ_FLAG_BUILTIN0 4u   /* part 0's main codebook is the built-in table (version 2) */
#define VQ_FLAG_BUILTIN1 8u   /* part 1's main codebook is the built-in table (version 2) */

/* One coded part of the matrix: a set of columns with its own codebook(s). Part 0 is the main
 * part (every column not listed as an outlier), part 1 the outlier columns. */
typedef struct hci_vq_part_cfg {
    uint32_t v;          /* vector length */
    uint32_t bits[2];    /* main and residual index bits; bits[1] = 0 means no residual */
    uint32_t gsegs;      /* segments per group scale (0: no group scales), at most 255 */
    uint32_t builtin;    /* 1: the main codebook is the built-in table for (v, bits[0]), not stored */
} hci_vq_part_cfg;

/* Groups of a part with segs segments. */
static inline uint32_t hci_vq_ngroups(uint32_t segs, uint32_t gsegs)
{
    return gsegs ? (segs + gsegs - 1) / gsegs : 0;
}

typedef struct hci_vq_config {
    uint32_t flags;      /* VQ_FLAG_ROW | VQ_FLAG_COL (the built-in flags live in part[].builtin) */
    uint32_t n_out;      /* outlier columns (0: a single part) */
    hci_vq_part_cfg part[2];
} hci_vq_config;

static inline uint32_t hci_vq_nparts(const hci_vq_config *c) { return c->n_out ? 2u : 1u; }
static inline uint32_t hci_vq_part_cols(const hci_vq_config *c, int64_t cols, uint32_t p)
{
    return p == 0 ? (uint32_t)(cols - c->n_out) : c->n_out;
}

/* Byte offsets of every payload section, computed from (config, rows, cols) alone. */
typedef struct hci_vq_sections {
    uint32_t params_len;
    uint64_t out_cols;           /* outlier column list, ceil(log2 cols) bits each */
    uint64_t col_scales;         /* cols x fp16 */
    uint64_t row_scales;         /* fp16 base + rows x u8 */
    uint64_t grp[2];             /* [part] rows x groups 4-bit group-scale codes */
    uint64_t cb[2][2];           /* [part][stage] fp16 codebook */
    uint64_t idx[2][2];          /* [part][stage] index stream */
    uint64_t payload_len;
    uint32_t col_bits;           /* bits per outlier column number */
} hci_vq_sections;

/* Fills s; returns 0 when the sizes overflow. */
int hci_vq_layout(hci_vq_sections *s, const hci_vq_config *c, int64_t rows, int64_t cols);

/* Serialised bytes of a tensor with this layout: the generic header, dims, params, payload, CRC. */
uint64_t hci_vq_serialized_bytes(const hci_vq_config *c, int64_t rows, int64_t cols, uint32_t ndim);

/* Writes the params bytes of c (s->params_len of them). */
void hci_vq_write_params(uint8_t *out, const hci_vq_config *c);

/* Decoded form of a part, built by attach. */
typedef struct hci_vq_part {
    uint32_t v, ncols, segs;
    uint32_t bits[2], k[2];
    uint32_t *cols;          /* ncols original column numbers, ascending */
    float *cb[2];            /* k x v, entry-major */
    float *cbt[2];           /* v x k, for the matvec lookup tables (64-byte aligned) */
    uint16_t *cbh[2];        /* k x pad fp16, zero-padded, for the gather-dot matvec (64-byte aligned) */
    uint32_t pad;            /* floats per padded entry: 4, 8 or 16, the least >= v */
    const uint8_t *idx[2];   /* index streams: inside the payload, or own_idx */
    uint8_t *own_idx[2];     /* a version 1 or 2 tensor's streams rewritten in version 3 order */
    uint32_t gsegs, ngroups;
    float *gs;               /* rows x ngroups group scales, or NULL */
} hci_vq_part;

typedef struct hci_vq_state {
    hci_vq_config cfg;
    uint32_t nparts;
    hci_vq_part part[2];
    float *row_scale;        /* rows, or NULL */
    float *col_scale;        /* cols, or NULL */
    int64_t rows, cols;
} hci_vq_state;

/* Index of (segment s, row r) in a (version 3, row-grouped) stream of rows x segs indices at
 * `bits` bits. */
uint32_t hci_vq_get_index(const uint8_t *stream, int64_t rows, uint32_t segs, uint32_t bits, uint32_t s, int64_t r);
/* Writes segs x rows indices (idx segment-major) as a version 3 index stream (dst pre-zeroed). */
void hci_vq_put_indices(uint8_t *dst, const uint32_t *idx, int64_t rows, uint32_t segs, uint32_t bits);
/* Bytes of a stream of segs x rows indices. */
uint64_t hci_vq_index_bytes(int64_t rows, uint32_t segs, uint32_t bits);

/* Row scale codes: s = base * 2^(-q/8), q = 255 meaning 0. A constant table and an exact
 * power-of-two step keep decoding identical on every libm. */
static inline float hci_vq_row_scale(float base, uint8_t q)
{
    static const float frac[8] = { 1.0f, 0.917004043f, 0.840896415f, 0.771105413f,
                                   0.707106781f, 0.648419777f, 0.594603558f, 0.545253866f };
    return q == 255 ? 0.0f : ldexpf(base * frac[q & 7], -(int)(q >> 3));
}

/* Group scale codes: g = 2^((q - 12) / 2), relative to the row and column scales. */
static inline float hci_vq_group_scale(uint32_t q)
{
    return (q & 1u) ? ldexpf(1.41421356f, ((int)q - 13) / 2) : ldexpf(1.0f, ((int)q - 12) / 2);
}

/* Compression options after resolution (copied from hc_vptq_options). */
typedef hc_vptq_options hci_vq_opts;

int hci_vq_attach(hc_ctensor *ct);
void hci_vq_detach(hc_ctensor *ct);
int hci_vq_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out);
/* Decode of values [first, first + count) with an explicit instruction set (capped at what the
 * CPU has); every isa writes the same bytes. */
int hci_vq_decode_with(const hci_vq_state *st, int64_t first, int64_t count, float *out, hci_isa isa);
int hci_vq_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1);
/* The portable kernel, for tests and as the fallback. */
int hci_vq_matvec_portable(const hci_vq_state *st, const float *x, float *y, int64_t row0, int64_t row1);

/* How the fused matvec multiplies a part: chosen per part and stage by a cost estimate (AUTO),
 * or forced, so tests run every kernel and the bench times each. */
typedef enum hci_vq_strategy {
    HCI_VQ_AUTO = 0,
    HCI_VQ_LUT = 1,      /* a table of centroid . x-segment per segment, one load per index */
    HCI_VQ_GATHER = 2    /* each index's padded centroid times the x segment, no table */
} hci_vq_strategy;

/* The matvec with an explicit instruction set (capped at what the CPU has) and strategy. */
int hci_vq_matvec_with(const hci_vq_state *st, const float *x, float *y, int64_t row0, int64_t row1, hci_isa isa,
                       hci_vq_strategy strategy);
/* The strategy AUTO picks for stage (0 main, 1 residual) of part p over nr rows with isa. */
hci_vq_strategy hci_vq_choose(const hci_vq_state *st, uint32_t p, int stage, int64_t nr, hci_isa isa);
int hci_vq_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w);

/* Rounds n floats to fp16 and back. */
void hci_vq_round_f16(float *x, size_t n);

#endif
