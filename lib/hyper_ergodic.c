/* The ergodic trajectory codec (Hyper-Compression; the geometry is in ergodic.c).
 *
 * params (20 + 12 n bytes, little-endian): u8 n, u8 rings K, u8 index bits, u8 ring spacing
 *   (0 uniform, 1 geometric), u32 box points N0, u32 ring points N1 (0 without rings), f32 box side,
 *   f32 outer ring radius (in box sides), n x f32 centroid, n x u32 box-line generator, n x u32
 *   ring-line generator (each starts with 1; all zero without rings).
 * payload: ceil(numel / n) indices of `bits` bits (LSB first): k < N0 for a group in the box,
 *   N0 + (c - 1) N1 + k for ring c; bits = ceil(log2(N0 + K N1)). The last group is padded with
 *   the centroid.
 *
 * Decoding: when the lines hold at most 2^16 indices in all, attach tabulates the n values of
 * every index (at most 2^16 n floats), so a group decodes as one unpack and one table read;
 * otherwise each group costs n modular products. matvec multiplies straight from the indices
 * when groups do not straddle rows (n divides the row length), else decodes each row into
 * scratch: either way it costs what decoding costs plus the multiply-adds. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bitpack.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"
#include "ergodic.h"
#include "hyper.h"

static size_t params_size(uint32_t n)
{
    return 20u + 12u * n;
}

typedef struct erg_job {
    const hci_erg_code *code;
    const float *x;
    size_t numel;
    uint32_t *idx;
} erg_job;

static int encode_groups(void *ctx, int64_t g0, int64_t g1)
{
    erg_job *job = ctx;
    uint32_t n = job->code->n;
    float g[HCI_ERG_MAX_N];
    for (int64_t i = g0; i < g1; i++) {
        for (uint32_t j = 0; j < n; j++) {
            size_t p = (size_t)i * n + j;
            g[j] = p < job->numel ? job->x[p] : job->code->center[j];
        }
        job->idx[i] = hci_erg_encode_group(job->code, g);
    }
    return HC_OK;
}

static int erg_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    const hc_hyper_options *o = hci_hyper_opts(c);
    hci_erg_code code;
    int rc = hci_erg_design(&code, w->data, (size_t)w->numel, o->group, o->index_bits, o->max_rings,
                            o->slope == HC_HYPER_SLOPE_PAPER ? HCI_ERG_SLOPE_PAPER : HCI_ERG_SLOPE_SEARCH,
                            o->spacing == HC_HYPER_RINGS_UNIFORM ? HCI_ERG_RINGS_UNIFORM : HCI_ERG_RINGS_GEOMETRIC);
    if (rc != HC_OK)
        return rc;
    size_t n = code.n, groups = ((size_t)w->numel + n - 1) / n;
    size_t bytes = hci_packed_bytes(groups, code.bits);
    uint32_t *idx = hci_malloc_array(groups, sizeof *idx);
    uint8_t *payload = hci_malloc(bytes);
    uint8_t *params = hci_malloc(params_size(code.n));
    if (!idx || !payload || !params) {
        hci_free(idx);
        hci_free(payload);
        hci_free(params);
        return HC_ENOMEM;
    }
    erg_job job = { &code, w->data, (size_t)w->numel, idx };
    rc = hci_parallel_for(c->threads, (int64_t)groups, 4096, encode_groups, &job);
    if (rc == HC_OK) {
        hci_pack_bits(payload, idx, groups, code.bits);
        params[0] = (uint8_t)code.n;
        params[1] = (uint8_t)code.rings;
        params[2] = (uint8_t)code.bits;
        params[3] = (uint8_t)code.spacing;
        hci_put_u32(params + 4, code.line.npts);
        hci_put_u32(params + 8, code.rings ? code.ring_line.npts : 0);
        hci_put_f32(params + 12, code.scale);
        hci_put_f32(params + 16, code.far);
        for (uint32_t j = 0; j < code.n; j++) {
            hci_put_f32(params + 20 + 4 * j, code.center[j]);
            hci_put_u32(params + 20 + 4 * code.n + 4 * j, code.line.gen[j]);
            hci_put_u32(params + 20 + 8 * code.n + 4 * j, code.rings ? code.ring_line.gen[j] : 0);
        }
    }
    hci_free(idx);
    if (rc != HC_OK) {
        hci_free(payload);
        hci_free(params);
        return rc;
    }
    ct->params = params;
    ct->params_len = (uint32_t)params_size(code.n);
    ct->payload = payload;
    ct->payload_len = bytes;
    return HC_OK;
}

#define TABLE_MAX_INDICES 65536u

typedef struct erg_state {
    hci_erg_code code;
    float *table;   /* n values per index, or NULL when there are too many indices */
} erg_state;

static void erg_detach(hc_ctensor *ct)
{
    erg_state *s = ct->state;
    if (s)
        hci_free(s->table);
    hci_free(s);
    ct->state = NULL;
}

static int erg_attach(hc_ctensor *ct)
{
    const char *name = ct->codec->name;
    const uint8_t *p = ct->params;
    if (ct->params_len < 20)
        return hci_fail(HC_EFORMAT, "%s tensor has %u parameter bytes; at least 44 are expected", name, ct->params_len);
    uint32_t n = p[0], rings = p[1], bits = p[2];
    if (n < 2 || n > HCI_ERG_MAX_N)
        return hci_fail(HC_EFORMAT, "%s tensor has group size %u; expected 2 to %d", name, n, HCI_ERG_MAX_N);
    if (ct->params_len != params_size(n))
        return hci_fail(HC_EFORMAT, "%s tensor with groups of %u has %u parameter bytes; expected %zu", name, n,
                        ct->params_len, params_size(n));
    if (p[3] > 1)
        return hci_fail(HC_EFORMAT, "%s tensor has ring spacing %u; expected 0 (uniform) or 1 (geometric)", name, p[3]);
    if (rings > HCI_ERG_MAX_RINGS)
        return hci_fail(HC_EFORMAT, "%s tensor has %u rings; at most %d are allowed", name, rings, HCI_ERG_MAX_RINGS);
    uint32_t n0 = hci_get_u32(p + 4), n1 = hci_get_u32(p + 8);
    uint64_t count = (uint64_t)n0 + (uint64_t)rings * n1;
    if (n0 == 0 || (rings > 0) != (n1 > 0) || count > (1ull << 32) || bits != hci_erg_bits_for(count))
        return hci_fail(HC_EFORMAT, "%s tensor has %u box points, %u rings of %u points and %u index bits; they do not agree",
                        name, n0, rings, n1, bits);
    erg_state *st = hci_calloc(1, sizeof *st);
    if (!st)
        return HC_ENOMEM;
    hci_erg_code *code = &st->code;
    code->n = n;
    code->rings = rings;
    code->bits = bits;
    code->spacing = p[3] ? HCI_ERG_RINGS_GEOMETRIC : HCI_ERG_RINGS_UNIFORM;
    code->scale = hci_get_f32(p + 12);
    code->far = hci_get_f32(p + 16);
    uint32_t gen0[HCI_ERG_MAX_N], gen1[HCI_ERG_MAX_N];
    int bad = !(isfinite(code->scale) && code->scale > 0) || !isfinite(code->far) ||
              (rings > 0 && !(code->far >= 0.5f));
    for (uint32_t j = 0; j < n; j++) {
        code->center[j] = hci_get_f32(p + 20 + 4 * j);
        gen0[j] = hci_get_u32(p + 20 + 4 * n + 4 * j);
        gen1[j] = hci_get_u32(p + 20 + 8 * n + 4 * j);
        bad |= !isfinite(code->center[j]) || (rings == 0 && gen1[j] != 0);
    }
    if (bad) {
        hci_free(st);
        return hci_fail(HC_EFORMAT,
                        "%s tensor has a box side, ring radius, centroid or ring generator that is not finite or out of range",
                        name);
    }
    hci_erg_code_finish(code);
    if (hci_erg_line_init(&code->line, n, n0, gen0) != HC_OK ||
        (rings > 0 && hci_erg_line_init(&code->ring_line, n, n1, gen1) != HC_OK)) {
        hci_free(st);
        return hci_fail(HC_EFORMAT, "%s tensor has an invalid line generator (%u, %u, ...) or (%u, %u, ...)", name,
                        gen0[0], gen0[1], gen1[0], gen1[1]);
    }
    uint64_t groups = ((uint64_t)ct->numel + n - 1) / n;
    uint64_t need = hci_packed_bytes((size_t)groups, bits);
    if (need == 0 || groups > SIZE_MAX || ct->payload_len != need) {
        hci_free(st);
        return hci_fail(HC_EFORMAT, "%s tensor of %lld values has a payload of %llu bytes; expected %llu", name,
                        (long long)ct->numel, (unsigned long long)ct->payload_len, (unsigned long long)need);
    }
    for (uint64_t g = 0; g < groups; g++) {
        uint32_t v = hci_get_bits(ct->payload, (size_t)g, bits);
        if (v >= count) {
            hci_free(st);
            return hci_fail(HC_EFORMAT, "%s tensor has index %u at group %llu; the lines hold %llu", name, v,
                            (unsigned long long)g, (unsigned long long)count);
        }
    }
    if (count <= TABLE_MAX_INDICES) {
        st->table = hci_malloc_array((size_t)count * n, sizeof *st->table);
        if (!st->table) {
            hci_free(st);
            return HC_ENOMEM;
        }
        for (uint32_t i = 0; i < (uint32_t)count; i++)
            hci_erg_decode_group(code, i, st->table + (size_t)i * n);
    }
    ct->state = st;
    return HC_OK;
}

/* Index of group g: one unaligned 64-bit load where the payload allows it (bits <= 32, so the
 * shift and the value fit), the byte-wise reader at the end. */
static inline uint32_t group_index(const hc_ctensor *ct, uint64_t g, uint32_t bits)
{
    uint64_t bit = g * bits, byte = bit >> 3;
    if (byte + 8 <= ct->payload_len)
        return (uint32_t)((hci_get_u64(ct->payload + byte) >> (bit & 7)) & ((1ull << bits) - 1));
    return hci_get_bits(ct->payload, (size_t)g, bits);
}

static inline const float *group_values(const erg_state *st, uint32_t idx, float *scratch)
{
    if (st->table)
        return st->table + (size_t)idx * st->code.n;
    hci_erg_decode_group(&st->code, idx, scratch);
    return scratch;
}

static int erg_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    const erg_state *st = ct->state;
    const uint32_t n = st->code.n, bits = st->code.bits;
    float g[HCI_ERG_MAX_N];
    int64_t end = first + count;
    uint64_t grp = (uint64_t)first / n;
    int64_t g0 = (int64_t)grp * n;
    /* the whole groups run without a division per value; the first and last may be partial */
    for (int64_t pos = first; pos < end; grp++, g0 += n) {
        const float *v = group_values(st, group_index(ct, grp, bits), g);
        if (pos == g0 && g0 + n <= end) {
            for (uint32_t j = 0; j < n; j++)
                out[pos - first + j] = v[j];
            pos += n;
            continue;
        }
        int64_t stop = g0 + n < end ? g0 + n : end;
        for (int64_t i = pos; i < stop; i++)
            out[i - first] = v[i - g0];
        pos = stop;
    }
    return HC_OK;
}

static int erg_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const erg_state *st = ct->state;
    int64_t cols = ct->cols, n = st->code.n;
    if (cols % n == 0) {
        /* groups never straddle rows: multiply straight from the indices */
        float g[HCI_ERG_MAX_N];
        for (int64_t r = row0; r < row1; r++) {
            float acc = 0;
            uint64_t grp = (uint64_t)(r * cols / n);
            for (int64_t c = 0; c < cols; c += n, grp++) {
                const float *v = group_values(st, group_index(ct, grp, st->code.bits), g);
                for (int64_t j = 0; j < n; j++)
                    acc += v[j] * x[c + j];
            }
            y[r] = acc;
        }
        return HC_OK;
    }
    float *row = hci_malloc_array((size_t)cols, sizeof *row);
    if (!row)
        return HC_ENOMEM;
    for (int64_t r = row0; r < row1; r++) {
        erg_decode(ct, r * cols, cols, row);
        float acc = 0;
        for (int64_t i = 0; i < cols; i++)
            acc += row[i] * x[i];
        y[r] = acc;
    }
    hci_free(row);
    return HC_OK;
}

const hci_codec hci_codec_hyper_ergodic = {
    HC_CODEC_HYPER_ERGODIC, "hyper-ergodic", erg_compress, erg_attach, erg_detach, erg_decode, erg_matvec, NULL,
};
