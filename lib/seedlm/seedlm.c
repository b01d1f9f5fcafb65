/* The SeedLM codec (Shafipour et al., arXiv 2410.10714): options, spec strings, the packed
 * layout (params and per-block records) and attach / decode / matvec glue. The search lives in
 * seedlm_search.c, the hot loops in seedlm_kernels.c; the layout is in doc/algorithms.md. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/options.h"
#include "lfsr.h"
#include "seedlm/seedlm_internal.h"

#define MAX_SEEDS_BEYOND_24 (1u << 24)

int hc_seedlm_options_init(hc_seedlm_options *opts, uint32_t struct_size)
{
    hc_seedlm_options d = HC_SEEDLM_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_seedlm_options, latent_dim), "hc_seedlm_options");
}

static uint64_t period(uint32_t k)
{
    return (1ull << k) - 1;
}

static int check_options(const hc_seedlm_options *o)
{
    if (o->block_size < 1 || o->block_size > HCI_SEEDLM_MAX_C)
        return hci_fail(HC_EINVAL, "seedlm: block size C=%u is outside [1, %d]", o->block_size, HCI_SEEDLM_MAX_C);
    uint32_t pmax = o->block_size < HCI_SEEDLM_MAX_P ? o->block_size : HCI_SEEDLM_MAX_P;
    if (o->latent_dim < 1 || o->latent_dim > pmax)
        return hci_fail(HC_EINVAL, "seedlm: P=%u coefficients per block is outside [1, %u] (at most C=%u and %d)",
                        o->latent_dim, pmax, o->block_size, HCI_SEEDLM_MAX_P);
    if (o->lfsr_bits < HC_LFSR_MIN_BITS || o->lfsr_bits > HC_LFSR_MAX_BITS)
        return hci_fail(HC_EINVAL, "seedlm: LFSR length K=%u is outside [%d, %d]", o->lfsr_bits, HC_LFSR_MIN_BITS,
                        HC_LFSR_MAX_BITS);
    if (o->mantissa_bits < 2 || o->mantissa_bits > 8)
        return hci_fail(HC_EINVAL, "seedlm: mantissa bits %u are outside [2, 8]", o->mantissa_bits);
    if (o->exponent_bits < 1 || o->exponent_bits > 6)
        return hci_fail(HC_EINVAL, "seedlm: exponent bits %u are outside [1, 6]", o->exponent_bits);
    if (o->seeds > period(o->lfsr_bits))
        return hci_fail(HC_EINVAL, "seedlm: seeds=%u is more than the %llu nonzero states of a %u-bit LFSR", o->seeds,
                        (unsigned long long)period(o->lfsr_bits), o->lfsr_bits);
    if (o->lfsr_bits > 24 && (o->seeds == 0 || o->seeds > MAX_SEEDS_BEYOND_24))
        return hci_fail(HC_EINVAL, "seedlm: K=%u would search all %llu seeds; give seeds=N with N at most %u",
                        o->lfsr_bits, (unsigned long long)period(o->lfsr_bits), MAX_SEEDS_BEYOND_24);
    return HC_OK;
}

static void canonical_spec(char *buf, size_t size, const hc_seedlm_options *o)
{
    snprintf(buf, size, "seedlm:C=%u,P=%u,K=%u,mant=%u,exp=%u,seeds=%u", o->block_size, o->latent_dim, o->lfsr_bits,
             o->mantissa_bits, o->exponent_bits, o->seeds);
}

int hc_seedlm_new(hc_compressor **out, const hc_seedlm_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_seedlm_new: out is NULL");
    *out = NULL;
    hc_seedlm_options o = HC_SEEDLM_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user, offsetof(hc_seedlm_options, latent_dim), "hc_seedlm_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    int rc = check_options(&o);
    if (rc != HC_OK)
        return rc;
    hc_seedlm_options *copy = hci_malloc(sizeof *copy);
    if (!copy)
        return HC_ENOMEM;
    *copy = o;
    char spec[256];
    canonical_spec(spec, sizeof spec, &o);
    return hci_compressor_create(out, &hci_codec_seedlm, copy, o.threads, spec);
}

int hci_seedlm_from_spec(hc_compressor **out, hci_spec *spec)
{
    hc_seedlm_options o = HC_SEEDLM_OPTIONS_INIT;
    int p4 = hci_spec_flag(spec, "4bit"), p3 = hci_spec_flag(spec, "3bit");
    if (p4 && p3)
        return hci_fail(HC_EINVAL, "codec spec '%s' names both presets '4bit' and '3bit'", spec->text);
    if (p3) {
        o.block_size = 12;
        o.latent_dim = 4;
    }
    const struct {
        const char *key;
        uint32_t lo, hi;
        uint32_t *dst;
    } keys[] = {
        { "C", 1, HCI_SEEDLM_MAX_C, &o.block_size }, { "P", 1, HCI_SEEDLM_MAX_P, &o.latent_dim },
        { "K", HC_LFSR_MIN_BITS, HC_LFSR_MAX_BITS, &o.lfsr_bits }, { "mant", 2, 8, &o.mantissa_bits },
        { "exp", 1, 6, &o.exponent_bits }, { "seeds", 0, UINT32_MAX, &o.seeds },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int rc = hci_spec_u32(spec, keys[i].key, keys[i].lo, keys[i].hi, keys[i].dst);
        if (rc < 0)
            return rc;
    }
    int rc = hci_spec_finish(spec, "4bit, 3bit, C=N, P=N, K=N, mant=N, exp=N, seeds=N, threads=N");
    if (rc != HC_OK)
        return rc;
    return hc_seedlm_new(out, &o);
}

/* ---- the layout ---- */

void hci_seedlm_put_params(uint8_t out[HCI_SEEDLM_PARAMS_LEN], const hci_seedlm_cfg *c)
{
    out[0] = c->grouped ? HCI_SEEDLM_FORMAT_GROUPED : HCI_SEEDLM_FORMAT_FLAT;
    out[1] = (uint8_t)c->C;
    out[2] = (uint8_t)c->P;
    out[3] = (uint8_t)c->K;
    out[4] = (uint8_t)c->M;
    out[5] = (uint8_t)c->E;
    hci_put_u16(out + 6, (uint16_t)(int16_t)c->ebase);
    hci_put_u32(out + 8, c->nseeds);
}

static void put_field(uint8_t *p, uint64_t bit, uint32_t n, uint32_t v)
{
    for (uint32_t i = 0; i < n; i++, bit++)
        if ((v >> i) & 1u)
            p[bit >> 3] |= (uint8_t)(1u << (bit & 7));
}

static uint32_t get_field(const uint8_t *p, uint64_t bit, uint32_t n)
{
    uint64_t v = 0;
    uint64_t first = bit >> 3, last = (bit + n - 1) >> 3;
    for (uint64_t i = first; i <= last; i++)
        v |= (uint64_t)p[i] << (8 * (i - first));
    v >>= bit & 7;
    return (uint32_t)(n == 32 ? v : v & ((1ull << n) - 1));
}

void hci_seedlm_write_block(uint8_t *payload, const hci_seedlm_cfg *c, int64_t b, const hci_seedlm_block *blk)
{
    uint64_t bit = (uint64_t)b * hci_seedlm_block_bits(c);
    put_field(payload, bit, c->K, blk->seed);
    bit += c->K;
    put_field(payload, bit, c->E, blk->ecode);
    bit += c->E;
    for (uint32_t p = 0; p < c->P; p++, bit += c->M)
        put_field(payload, bit, c->M, (uint32_t)blk->q[p] & ((1u << c->M) - 1));
}

void hci_seedlm_read_block(const uint8_t *payload, const hci_seedlm_cfg *c, int64_t b, hci_seedlm_block *out)
{
    uint64_t bit = (uint64_t)b * hci_seedlm_block_bits(c);
    out->seed = get_field(payload, bit, c->K);
    bit += c->K;
    out->ecode = get_field(payload, bit, c->E);
    bit += c->E;
    for (uint32_t p = 0; p < c->P; p++, bit += c->M) {
        uint32_t v = get_field(payload, bit, c->M);
        /* two's complement of M bits */
        out->q[p] = (int32_t)v - (int32_t)((v >> (c->M - 1)) << c->M);
    }
}

/* ---- codec ---- */

static const hc_seedlm_options *opts_of(const hc_compressor *c)
{
    return (const hc_seedlm_options *)c->opts;
}

static int payload_bytes(uint64_t *out, int64_t nblocks, const hci_seedlm_cfg *c)
{
    uint64_t bits = hci_seedlm_block_bits(c);
    if ((uint64_t)nblocks > UINT64_MAX / bits)
        return 0;
    *out = ((uint64_t)nblocks * bits + 7) / 8;
    return *out <= SIZE_MAX;
}

/* Reorders the search's block-order records into layout 2 (32-bit records, see
 * hci_seedlm_slot, walked with the decoder's cursor); sets c->grouped. */
static int group_records(uint8_t **payload, hci_seedlm_cfg *c, int64_t rows, int64_t cols, int64_t nblocks)
{
    uint8_t *out = hci_malloc((size_t)nblocks * 4);
    if (!out)
        return HC_ENOMEM;
    c->grouped = 1;
    hci_seedlm_cursor k;
    hci_seedlm_cursor_init(&k, c, rows, cols, 0);
    for (int64_t b = 0; b < nblocks; b++, hci_seedlm_cursor_next(&k))
        memcpy(out + 4 * k.slot, *payload + 4 * b, 4);
    hci_free(*payload);
    *payload = out;
    return HC_OK;
}

static int seedlm_compress(hc_ctensor *ct, const hc_compressor *comp, const hci_matrix *w)
{
    const hc_seedlm_options *o = opts_of(comp);
    hci_seedlm_cfg c = { o->block_size, o->latent_dim, o->lfsr_bits, o->mantissa_bits, o->exponent_bits, 0,
                         o->seeds ? o->seeds : (uint32_t)period(o->lfsr_bits), 0 };
    c.ebase = hci_seedlm_choose_ebase(w->data, w->numel, &c);
    int64_t nblocks = (w->numel + c.C - 1) / c.C;
    uint64_t bytes;
    if (!payload_bytes(&bytes, nblocks, &c))
        return hci_fail(HC_EINVAL, "tensor '%s': %lld blocks overflow the payload size", w->name, (long long)nblocks);
    uint8_t *params = hci_malloc(HCI_SEEDLM_PARAMS_LEN);
    uint8_t *payload = hci_calloc((size_t)bytes ? (size_t)bytes : 1, 1);
    if (!params || !payload) {
        hci_free(params);
        hci_free(payload);
        return HC_ENOMEM;
    }
    int rc = hci_seedlm_search(payload, w->data, w->numel, &c, comp->threads);
    if (rc == HC_OK && hci_seedlm_groupable(&c, w->cols))
        rc = group_records(&payload, &c, w->rows, w->cols, nblocks);
    if (rc != HC_OK) {
        hci_free(params);
        hci_free(payload);
        return rc;
    }
    hci_seedlm_put_params(params, &c);
    ct->params = params;
    ct->params_len = HCI_SEEDLM_PARAMS_LEN;
    ct->payload = payload;
    ct->payload_len = bytes;
    return HC_OK;
}

static int parse_params(hci_seedlm_cfg *c, const hc_ctensor *ct)
{
    const uint8_t *p = ct->params;
    if (ct->params_len != HCI_SEEDLM_PARAMS_LEN)
        return hci_fail(HC_EFORMAT, "seedlm tensor has %u parameter bytes; expected %d", ct->params_len,
                        HCI_SEEDLM_PARAMS_LEN);
    if (p[0] != HCI_SEEDLM_FORMAT_FLAT && p[0] != HCI_SEEDLM_FORMAT_GROUPED)
        return hci_fail(HC_EFORMAT, "seedlm tensor has layout version %u; this library reads %d and %d", p[0],
                        HCI_SEEDLM_FORMAT_FLAT, HCI_SEEDLM_FORMAT_GROUPED);
    c->grouped = p[0] == HCI_SEEDLM_FORMAT_GROUPED;
    c->C = p[1];
    c->P = p[2];
    c->K = p[3];
    c->M = p[4];
    c->E = p[5];
    c->ebase = (int16_t)hci_get_u16(p + 6);
    c->nseeds = hci_get_u32(p + 8);
    if (c->C < 1 || c->C > HCI_SEEDLM_MAX_C)
        return hci_fail(HC_EFORMAT, "seedlm tensor has block size C=%u outside [1, %d]", c->C, HCI_SEEDLM_MAX_C);
    if (c->P < 1 || c->P > c->C || c->P > HCI_SEEDLM_MAX_P)
        return hci_fail(HC_EFORMAT, "seedlm tensor has P=%u coefficients outside [1, min(C=%u, %d)]", c->P, c->C,
                        HCI_SEEDLM_MAX_P);
    if (c->K < HC_LFSR_MIN_BITS || c->K > HC_LFSR_MAX_BITS)
        return hci_fail(HC_EFORMAT, "seedlm tensor has LFSR length K=%u outside [%d, %d]", c->K, HC_LFSR_MIN_BITS,
                        HC_LFSR_MAX_BITS);
    if (c->M < 2 || c->M > 8)
        return hci_fail(HC_EFORMAT, "seedlm tensor has %u mantissa bits, outside [2, 8]", c->M);
    if (c->E < 1 || c->E > 6)
        return hci_fail(HC_EFORMAT, "seedlm tensor has %u exponent bits, outside [1, 6]", c->E);
    int32_t hi = 128 - (int32_t)c->M - ((1 << c->E) - 1);
    if (c->ebase < -126 || c->ebase > hi)
        return hci_fail(HC_EFORMAT, "seedlm tensor has exponent base %d outside [-126, %d]", c->ebase, hi);
    if (c->nseeds < 1 || c->nseeds > period(c->K))
        return hci_fail(HC_EFORMAT, "seedlm tensor says %u seeds were searched; a %u-bit LFSR has 1 to %llu",
                        c->nseeds, c->K, (unsigned long long)period(c->K));
    if (c->grouped && !hci_seedlm_groupable(c, ct->cols))
        return hci_fail(HC_EFORMAT,
                        "seedlm tensor has layout version 2, which needs 32-bit records and C dividing the columns; "
                        "it has %u-bit records, C=%u and %lld columns",
                        hci_seedlm_block_bits(c), c->C, (long long)ct->cols);
    return HC_OK;
}

static void seedlm_detach(hc_ctensor *ct)
{
    hci_seedlm_state *st = ct->state;
    if (!st)
        return;
    hci_free((void *)st->word);
    hci_free(st);
    ct->state = NULL;
}

/* The byte tables (layout in seedlm_internal.h): the word of each single-bit seed 1 << i is its
 * stream's first 64 bits (stream bit u is the low bit of the state u steps on), and the entry
 * for byte value b at byte j is the XOR of the words of b's bits there. */
static int build_table(hci_seedlm_state *st)
{
    const uint32_t K = st->cfg.K;
    uint64_t (*t)[256] = hci_calloc(HCI_SEEDLM_WORD_BYTES, sizeof *t);
    if (!t)
        return HC_ENOMEM;
    uint64_t basis[8 * HCI_SEEDLM_WORD_BYTES] = { 0 };
    for (uint32_t i = 0; i < K; i++) {
        uint32_t s = 1u << i;
        for (uint32_t u = 0; u < 64; u++) {
            basis[i] |= (uint64_t)(s & 1u) << u;
            s = hci_lfsr_step(s, K, st->tap_mask);
        }
    }
    for (uint32_t j = 0; j < HCI_SEEDLM_WORD_BYTES; j++)
        for (uint32_t v = 1; v < 256; v++) {
            uint32_t low = v & (0u - v), bit = (uint32_t)__builtin_ctz(v);
            t[j][v] = t[j][v ^ low] ^ basis[8 * j + bit];
        }
    st->word = (const uint64_t (*)[256])t;
    return HC_OK;
}

static int seedlm_attach(hc_ctensor *ct)
{
    hci_seedlm_cfg c;
    int rc = parse_params(&c, ct);
    if (rc != HC_OK)
        return rc;
    int64_t nblocks = (ct->numel + c.C - 1) / c.C;
    uint64_t need = 0;
    if (!payload_bytes(&need, nblocks, &c) || ct->payload_len != need)
        return hci_fail(HC_EFORMAT, "seedlm tensor of %lld values in %lld blocks of %u bits has a payload of %llu bytes; expected %llu",
                        (long long)ct->numel, (long long)nblocks, hci_seedlm_block_bits(&c),
                        (unsigned long long)ct->payload_len, (unsigned long long)need);
    /* Every seed must be a nonzero K-bit state: seed 0 would regenerate an all -1 matrix that no
     * encoder writes. Exponent codes and mantissas take every value of their fields. */
    for (int64_t b = 0; b < nblocks; b++) {
        uint32_t seed = get_field(ct->payload, (uint64_t)b * hci_seedlm_block_bits(&c), c.K);
        if (seed == 0)
            return hci_fail(HC_EFORMAT, "seedlm tensor: block %lld has seed 0, which is not an LFSR state",
                            (long long)b);
    }
    hci_seedlm_state *st = hci_calloc(1, sizeof *st);
    if (!st)
        return HC_ENOMEM;
    st->cfg = c;
    st->rows = ct->rows;
    st->cols = ct->cols;
    st->nblocks = nblocks;
    st->bits = hci_seedlm_block_bits(&c);
    st->tap_mask = hci_lfsr_tap_mask(c.K);
    ct->state = st;
    if (c.K <= HCI_SEEDLM_TABLE_MAX_K) {
        rc = build_table(st);
        if (rc != HC_OK) {
            seedlm_detach(ct);
            return rc;
        }
    }
    return HC_OK;
}

static int seedlm_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    hci_seedlm_decode_range(ct->state, ct->payload, ct->payload_len, first, count, out);
    return HC_OK;
}

static int seedlm_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    return hci_seedlm_matvec_rows(ct->state, ct->payload, x, y, row0, row1);
}

const hci_codec hci_codec_seedlm = {
    HC_CODEC_SEEDLM, "seedlm", seedlm_compress, seedlm_attach, seedlm_detach, seedlm_decode, seedlm_matvec, NULL,
};
