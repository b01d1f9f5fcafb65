/* SeedLM: spec strings and options, the search against an independent brute force, the exact
 * bytes of a tiny tensor, decode and matvec (SIMD against portable, table against regenerated
 * states), padding, zero blocks, hostile payloads and out-of-memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "harness.h"
#include "seedlm/seedlm_internal.h"

static hc_compressor *make(const char *spec)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    return c;
}

static hc_ctensor *compress2(const char *spec, const float *w, int64_t rows, int64_t cols)
{
    hc_compressor *c = make(spec);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_compress(&ct, c, &v));
    hc_compressor_free(c);
    return ct;
}

static uint8_t *serialise(const hc_ctensor *ct, size_t *n)
{
    *n = hc_ctensor_serialized_size(ct);
    uint8_t *buf = malloc(*n);
    ck_assert_ok(hc_ctensor_serialize(ct, buf, *n));
    return buf;
}

/* ---- an independent brute force: per block, per seed in generator order from 1 ---- */

typedef struct ref_cfg {
    uint32_t C, P, K, M, E, nseeds;
    int32_t ebase;
} ref_cfg;

typedef struct ref_block {
    uint32_t seed, ecode;
    int32_t q[16];
} ref_block;

/* Solves G t = b by Gaussian elimination with partial pivoting; 0 when singular (relative 1e-8). */
static int solve(double *t, double G[16][16], double *b, uint32_t P)
{
    double d0[16];
    for (uint32_t i = 0; i < P; i++)
        d0[i] = G[i][i];
    for (uint32_t col = 0; col < P; col++) {
        uint32_t piv = col;
        for (uint32_t r = col + 1; r < P; r++)
            if (fabs(G[r][col]) > fabs(G[piv][col]))
                piv = r;
        if (!(fabs(G[piv][col]) > 1e-8 * d0[col]))
            return 0;
        for (uint32_t j = 0; j < P; j++) {
            double tmp = G[col][j];
            G[col][j] = G[piv][j];
            G[piv][j] = tmp;
        }
        double tb = b[col];
        b[col] = b[piv];
        b[piv] = tb;
        for (uint32_t r = col + 1; r < P; r++) {
            double f = G[r][col] / G[col][col];
            for (uint32_t j = col; j < P; j++)
                G[r][j] -= f * G[col][j];
            b[r] -= f * b[col];
        }
    }
    for (uint32_t i = P; i-- > 0;) {
        double s = b[i];
        for (uint32_t j = i + 1; j < P; j++)
            s -= G[i][j] * t[j];
        t[i] = s / G[i][i];
    }
    return 1;
}

static void brute_block(ref_block *out, const double *w, const ref_cfg *c)
{
    const uint32_t C = c->C, P = c->P, n = C * P;
    uint32_t *st = malloc(sizeof(uint32_t) * (n + c->nseeds));
    ck_assert_ok(hc_lfsr_states(st, n + c->nseeds, c->K, 1));
    const double half = ldexp(1.0, (int)c->K - 1);
    const int32_t mmax = (1 << (c->M - 1)) - 1, mmin = -(1 << (c->M - 1));
    const int32_t etop = c->ebase + (1 << c->E) - 1;
    double best = INFINITY;
    for (uint32_t s = 0; s < c->nseeds; s++) {
        double u[64 * 16], G[16][16], b[16], t[16];
        for (uint32_t i = 0; i < n; i++)
            u[i] = (float)(((double)st[s + i] - half) / (half - 1.0));
        for (uint32_t p = 0; p < P; p++) {
            b[p] = 0;
            for (uint32_t q = 0; q < P; q++) {
                G[p][q] = 0;
                for (uint32_t i = 0; i < C; i++)
                    G[p][q] += u[i * P + p] * u[i * P + q];
            }
            for (uint32_t i = 0; i < C; i++)
                b[p] += u[i * P + p] * w[i];
        }
        if (!solve(t, G, b, P))
            continue;
        int32_t e = c->ebase;   /* the smallest exponent that holds every coefficient */
        for (;; e++) {
            int fits = 1;
            for (uint32_t p = 0; p < P; p++) {
                double v = t[p] / ldexp(1.0, e);
                if (v > mmax || v < mmin)
                    fits = 0;
            }
            if (fits || e == etop)
                break;
        }
        ref_block cand = { st[s], (uint32_t)(e - c->ebase), { 0 } };
        double err = 0;
        double tq[16];
        for (uint32_t p = 0; p < P; p++) {
            double r = round(t[p] / ldexp(1.0, e));
            r = r > mmax ? mmax : (r < mmin ? mmin : r);
            cand.q[p] = (int32_t)r;
            tq[p] = r * ldexp(1.0, e);
        }
        for (uint32_t i = 0; i < C; i++) {
            double d = w[i];
            for (uint32_t p = 0; p < P; p++)
                d -= u[i * P + p] * tq[p];
            err += d * d;
        }
        if (err < best) {
            best = err;
            *out = cand;
        }
    }
    free(st);
}

/* Reads record b from the payload with its own bit reader (LSB first). */
static uint32_t bits_at(const uint8_t *p, uint64_t bit, uint32_t n)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; i++, bit++)
        v |= (uint32_t)((p[bit >> 3] >> (bit & 7)) & 1u) << i;
    return v;
}

static void record_at(ref_block *out, const uint8_t *payload, const ref_cfg *c, int64_t b)
{
    uint64_t bit = (uint64_t)b * (c->K + c->E + c->P * c->M);
    out->seed = bits_at(payload, bit, c->K);
    out->ecode = bits_at(payload, bit + c->K, c->E);
    for (uint32_t p = 0; p < c->P; p++) {
        uint32_t v = bits_at(payload, bit + c->K + c->E + p * c->M, c->M);
        out->q[p] = v >= (1u << (c->M - 1)) ? (int32_t)v - (1 << c->M) : (int32_t)v;
    }
}

/* The parameter bytes sit after the 24-byte header and 8 bytes per dimension. */
static void params_of(ref_cfg *c, const uint8_t *ser, uint32_t ndim)
{
    const uint8_t *p = ser + 24 + 8 * ndim;
    ck_assert_msg(p[0] == 1 || p[0] == 2, "layout version %u", p[0]);
    c->C = p[1];
    c->P = p[2];
    c->K = p[3];
    c->M = p[4];
    c->E = p[5];
    c->ebase = (int16_t)(p[6] | (p[7] << 8));
    c->nseeds = hci_get_u32(p + 8);
}

static void check_data_against_brute_force(const char *spec, const float *w, int64_t rows, int64_t cols)
{
    hc_ctensor *ct = compress2(spec, w, rows, cols);
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    ref_cfg c;
    params_of(&c, ser, 2);
    const uint8_t *payload = ser + 24 + 16 + 12;
    int64_t numel = rows * cols, nblocks = (numel + c.C - 1) / c.C;
    /* the exponent base: the top exponent holds twice the largest block norm at full mantissa */
    double maxn = 0;
    for (int64_t b = 0; b < nblocks; b++) {
        double s = 0;
        for (uint32_t i = 0; i < c.C && b * c.C + i < numel; i++)
            s += (double)w[b * c.C + i] * w[b * c.C + i];
        maxn = s > maxn ? s : maxn;
    }
    int32_t top = (int32_t)ceil(log2(2 * sqrt(maxn) / ((1 << (c.M - 1)) - 1)));
    ck_assert_int_eq(c.ebase, top - ((1 << c.E) - 1));
    for (int64_t b = 0; b < nblocks; b++) {
        double wb[64] = { 0 };
        for (uint32_t i = 0; i < c.C && b * c.C + i < numel; i++)
            wb[i] = w[b * c.C + i];
        ref_block want, got;
        brute_block(&want, wb, &c);
        record_at(&got, payload, &c, b);
        ck_assert_msg(got.seed == want.seed && got.ecode == want.ecode, "%s block %lld: seed %u exp %u, brute force %u exp %u",
                      spec, (long long)b, got.seed, got.ecode, want.seed, want.ecode);
        for (uint32_t p = 0; p < c.P; p++)
            ck_assert_int_eq(got.q[p], want.q[p]);
    }
    hc_ctensor_free(ct);
    free(ser);
}

static void check_against_brute_force(const char *spec, int64_t rows, int64_t cols, uint64_t seed)
{
    float *w = test_gauss(seed, (size_t)(rows * cols), 0.05);
    check_data_against_brute_force(spec, w, rows, cols);
    free(w);
}

START_TEST(search_agrees_exactly_with_brute_force)
{
    check_against_brute_force("seedlm:K=8", 16, 40, 11);
    check_against_brute_force("seedlm:K=10,C=12,P=4", 6, 50, 12);
    check_against_brute_force("seedlm:K=9,C=5,P=2,mant=3,exp=2", 7, 9, 13);
    check_against_brute_force("seedlm:K=12,seeds=700,C=16,P=6,mant=5,exp=3", 4, 32, 14);
}
END_TEST

START_TEST(blocks_below_the_exponent_range_tie_and_agree_with_brute_force)
{
    /* One loud block sets the exponent range; the quiet ones sit 2^-8 .. 2^-24 below it, where
     * most or all seeds round every mantissa to zero and tie with the zero reconstruction. */
    float *w = test_gauss(15, 8 * 40, 1.0);
    for (int b = 1; b < 40; b++)
        for (int i = 0; i < 8; i++)
            w[b * 8 + i] = ldexpf(w[b * 8 + i], -8 - (b % 17));
    const char *isas[] = { "portable", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("HYPERCOMP_ISA", isas[i], 1);
        check_data_against_brute_force("seedlm:K=10", w, 4, 80);
        check_data_against_brute_force("seedlm:K=9,exp=2", w, 4, 80);
    }
    unsetenv("HYPERCOMP_ISA");
    free(w);
}
END_TEST

START_TEST(search_is_the_same_on_every_isa_and_thread_count)
{
    float *w = test_laplace(21, 64 * 24, 1.0);
    size_t n0, n1;
    hc_ctensor *ref = compress2("seedlm:K=11,threads=1", w, 64, 24);
    uint8_t *a = serialise(ref, &n0);
    const char *isas[] = { "portable", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("HYPERCOMP_ISA", isas[i], 1);
        for (uint32_t t = 1; t <= 3; t++) {
            char spec[64];
            snprintf(spec, sizeof spec, "seedlm:K=11,threads=%u", t);
            hc_ctensor *ct = compress2(spec, w, 64, 24);
            uint8_t *b = serialise(ct, &n1);
            ck_assert_uint_eq(n0, n1);
            ck_assert_msg(memcmp(a, b, n0) == 0, "isa %s threads %u gives other bytes", isas[i], t);
            free(b);
            hc_ctensor_free(ct);
        }
    }
    unsetenv("HYPERCOMP_ISA");
    /* the paper's straightforward loop picks the same records */
    hci_seedlm_cfg c = { 8, 3, 11, 4, 4, 0, 2047, 0 };
    ref_cfg rc;
    params_of(&rc, a, 2);
    c.ebase = rc.ebase;
    for (int64_t b = 0; b < 20; b++) {
        hci_seedlm_block nb;
        ref_block got;
        hci_seedlm_search_naive(&nb, w + b * 8, &c);
        record_at(&got, a + 52, &rc, b);
        ck_assert_uint_eq(nb.seed, got.seed);
        ck_assert_uint_eq(nb.ecode, got.ecode);
        for (int p = 0; p < 3; p++)
            ck_assert_int_eq(nb.q[p], got.q[p]);
    }
    free(a);
    hc_ctensor_free(ref);
    free(w);
}
END_TEST

START_TEST(tiles_and_threads_split_large_tensors_without_seams)
{
    /* 8750 blocks: more than one search tile (8192 blocks) per thread */
    const int64_t rows = 70, cols = 1000;
    float *w = test_gauss(23, rows * cols, 0.3);
    hc_ctensor *a = compress2("seedlm:K=8,threads=1", w, rows, cols), *b = compress2("seedlm:K=8,threads=2", w, rows, cols);
    size_t na, nb;
    uint8_t *sa = serialise(a, &na), *sb = serialise(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(sa, sb, na) == 0);
    ref_cfg c;
    params_of(&c, sa, 2);
    const int64_t check[] = { 0, 4374, 4375, 4376, 8190, 8191, 8192, 8193, 8749 };
    for (size_t k = 0; k < sizeof check / sizeof check[0]; k++) {
        double wb[8];
        for (int i = 0; i < 8; i++)
            wb[i] = w[check[k] * 8 + i];
        ref_block want, got;
        brute_block(&want, wb, &c);
        record_at(&got, sa + 52, &c, check[k]);
        ck_assert_msg(got.seed == want.seed && got.ecode == want.ecode, "block %lld", (long long)check[k]);
        for (int p = 0; p < 3; p++)
            ck_assert_int_eq(got.q[p], want.q[p]);
    }
    free(sa);
    free(sb);
    hc_ctensor_free(a);
    hc_ctensor_free(b);
    free(w);
}
END_TEST

START_TEST(tiny_tensor_bytes)
{
    /* 1 x 6 values, C=4, P=2, K=8, 3-bit mantissas, 2-bit exponent: two records of 8+2+6 = 16
     * bits, the second block padded with two zeros. */
    const float w[6] = { 0.5f, -0.25f, 0.125f, 1.0f, -0.75f, 0.3f };
    hc_ctensor *ct = compress2("seedlm:K=8,C=4,P=2,mant=3,exp=2", w, 1, 6);
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    ck_assert_uint_eq(n, 24 + 16 + 12 + 4 + 4);
    const uint8_t head[24] = { 'H', 'C', 'T', '1', 1, 0, 16, 0, 0, 2, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0 };
    ck_assert_mem_eq(ser, head, 24);
    ck_assert_uint_eq(hci_get_u64(ser + 24), 1);
    ck_assert_uint_eq(hci_get_u64(ser + 32), 6);
    /* max block norm sqrt(0.5^2+0.25^2+0.125^2+1) = 1.1524; 2 * 1.1524 / 3 = 0.768 -> top 0, base -3 */
    const uint8_t params[12] = { 1, 4, 2, 8, 3, 2, 0xFD, 0xFF, 255, 0, 0, 0 };
    ck_assert_mem_eq(ser + 40, params, 12);
    ref_cfg c = { 4, 2, 8, 3, 2, 255, -3 };
    uint8_t expect[4] = { 0 };
    for (int b = 0; b < 2; b++) {
        double wb[4] = { 0 };
        for (int i = 0; i < 4 && b * 4 + i < 6; i++)
            wb[i] = w[b * 4 + i];
        ref_block r;
        brute_block(&r, wb, &c);
        uint32_t rec = r.seed | (r.ecode << 8) | (((uint32_t)r.q[0] & 7u) << 10) | (((uint32_t)r.q[1] & 7u) << 13);
        expect[2 * b] = (uint8_t)rec;
        expect[2 * b + 1] = (uint8_t)(rec >> 8);
    }
    ck_assert_mem_eq(ser + 52, expect, 4);
    ck_assert_uint_eq(hci_get_u32(ser + 56), hci_crc32c(0, ser, 56));
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_uint_eq(s.bits, 8 * 60);
    free(ser);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(layout_2_groups_records_by_16_rows)
{
    /* 20 x 16 with 32-bit records (K = 16): layout 2. Rows 0..15 form group 0, whose 16 records of
     * column block j sit at 16 j + r; rows 16..19 form group 1 (4 rows) from record 32 on, block
     * j's at 32 + 4 j + (r - 16). Each record is the brute-force search's for its block. */
    const int64_t rows = 20, cols = 16;
    float *w = test_gauss(19, rows * cols, 0.5);
    hc_ctensor *ct = compress2("seedlm:4bit,seeds=200,threads=1", w, rows, cols);
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    ck_assert_uint_eq(ser[40], 2);
    ck_assert_uint_eq(hci_get_u64(ser + 16), 40 * 4);
    ref_cfg c;
    params_of(&c, ser, 2);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < 2; j++) {
            const int64_t slot = r < 16 ? 16 * j + r : 32 + 4 * j + (r - 16);
            double wb[8];
            for (int i = 0; i < 8; i++)
                wb[i] = w[r * cols + 8 * j + i];
            ref_block want, got;
            brute_block(&want, wb, &c);
            record_at(&got, ser + 52, &c, slot);
            ck_assert_msg(got.seed == want.seed && got.ecode == want.ecode, "row %lld block %lld (record %lld)",
                          (long long)r, (long long)j, (long long)slot);
            for (int p = 0; p < 3; p++)
                ck_assert_int_eq(got.q[p], want.q[p]);
        }
    /* the same records in layout 1 (block order) decode to the same values */
    uint8_t *flat = malloc(n);
    ck_assert_ptr_nonnull(flat);
    memcpy(flat, ser, n);
    flat[40] = 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < 2; j++) {
            const int64_t slot = r < 16 ? 16 * j + r : 32 + 4 * j + (r - 16);
            memcpy(flat + 52 + 4 * (2 * r + j), ser + 52 + 4 * slot, 4);
        }
    hci_put_u32(flat + n - 4, hci_crc32c(0, flat, n - 4));
    hc_ctensor *back = NULL;
    ck_assert_ok(hc_ctensor_deserialize(&back, flat, n));
    float d1[320], d2[320];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d2, sizeof d2));
    ck_assert_ok(hc_ctensor_decode(back, HC_DTYPE_F32, d1, sizeof d1));
    ck_assert_mem_eq(d1, d2, sizeof d1);
    /* the decoder's cursor steps through the same records as hci_seedlm_slot() from any block on,
     * across full groups and a last one of 5 rows (37 x 24, 3 blocks per row) */
    hci_seedlm_cfg gc = { 8, 3, 16, 4, 4, -12, 65535, 1 };
    for (int64_t b0 = 0; b0 < 37 * 3; b0++) {
        hci_seedlm_cursor k;
        hci_seedlm_cursor_init(&k, &gc, 37, 24, b0);
        for (int64_t b = b0; b < 37 * 3; b++, hci_seedlm_cursor_next(&k))
            ck_assert_msg(k.slot == hci_seedlm_slot(&gc, 37, 24, b), "from block %lld, block %lld: record %lld, want %lld",
                          (long long)b0, (long long)b, (long long)k.slot, (long long)hci_seedlm_slot(&gc, 37, 24, b));
    }
    /* a shape whose rows are not whole blocks keeps layout 1 */
    hc_ctensor *odd = compress2("seedlm:4bit,seeds=200,threads=1", w, 20, 12);
    uint8_t *so = serialise(odd, &n);
    ck_assert_uint_eq(so[40], 1);
    free(so);
    hc_ctensor_free(odd);
    hc_ctensor_free(back);
    free(flat);
    free(ser);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

START_TEST(spec_presets_and_options)
{
    hc_compressor *c = make("seedlm:4bit");
    ck_assert_str_eq(hc_compressor_spec(c), "seedlm:C=8,P=3,K=16,mant=4,exp=4,seeds=0");
    hc_compressor_free(c);
    c = make("seedlm:3bit,threads=2");
    ck_assert_str_eq(hc_compressor_spec(c), "seedlm:C=12,P=4,K=16,mant=4,exp=4,seeds=0");
    hc_compressor_free(c);
    c = make("seedlm:C=16,P=5,K=20,mant=3,exp=5,seeds=1000");
    ck_assert_str_eq(hc_compressor_spec(c), "seedlm:C=16,P=5,K=20,mant=3,exp=5,seeds=1000");
    hc_compressor_free(c);
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:K=7"), HC_EINVAL, "K");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:C=8,P=9"), HC_EINVAL, "P=9");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:mant=1"), HC_EINVAL, "mant");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:exp=7"), HC_EINVAL, "exp");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:K=8,seeds=256"), HC_EINVAL, "seeds=256");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:K=28"), HC_EINVAL, "give seeds=N");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:4bit,3bit"), HC_EINVAL, "both presets");
    ck_assert_status(hc_compressor_from_spec(&c, "seedlm:bogus=1"), HC_EINVAL, "bogus");
    ck_assert_ptr_null(c);

    hc_seedlm_options o;
    ck_assert_ok(hc_seedlm_options_init(&o, sizeof o));
    ck_assert_uint_eq(o.block_size, 8);
    ck_assert_uint_eq(o.latent_dim, 3);
    ck_assert_uint_eq(o.lfsr_bits, 16);
    ck_assert_status(hc_seedlm_options_init(&o, sizeof o + 4), HC_EVERSION, "larger");
    ck_assert_status(hc_seedlm_options_init(&o, 2), HC_EINVAL, "too small");
    ck_assert_status(hc_seedlm_options_init(NULL, sizeof o), HC_EINVAL, "NULL");
    o.lfsr_bits = 28;
    o.seeds = 5000;
    ck_assert_ok(hc_seedlm_new(&c, &o));
    hc_compressor_free(c);
    o.struct_size = sizeof o + 8;
    ck_assert_status(hc_seedlm_new(&c, &o), HC_EVERSION, "larger");
    ck_assert_status(hc_seedlm_new(NULL, NULL), HC_EINVAL, "out is NULL");
    ck_assert_ok(hc_seedlm_new(&c, NULL));
    hc_compressor_free(c);
}
END_TEST

/* y = W x in double from the decoded matrix. */
static void reference_matvec(double *y, const float *dec, const float *x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t j = 0; j < cols; j++)
            s += (double)dec[r * cols + j] * x[j];
        y[r] = s;
    }
}

static void check_matvec(const char *spec, int64_t rows, int64_t cols)
{
    float *w = test_gauss(31, (size_t)(rows * cols), 0.1), *x = test_gauss(32, (size_t)cols, 1.0);
    float *dec = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows), *yp = malloc(sizeof(float) * rows);
    double *ref = malloc(sizeof(double) * rows);
    hc_ctensor *ct = compress2(spec, w, rows, cols);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * rows * cols));
    reference_matvec(ref, dec, x, rows, cols);
    double scale = 0;
    for (int64_t j = 0; j < cols; j++)
        scale += fabs(x[j]) * 0.3;
    setenv("HYPERCOMP_ISA", "portable", 1);
    ck_assert_ok(hc_ctensor_matvec(ct, x, yp));
    const char *isas[] = { "portable", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("HYPERCOMP_ISA", isas[i], 1);
        for (uint32_t t = 1; t <= 3; t += 2) {
            ck_assert_ok(hc_ctensor_set_threads(ct, t));
            ck_assert_ok(hc_ctensor_matvec(ct, x, y));
            for (int64_t r = 0; r < rows; r++) {
                ck_assert_msg(fabs(y[r] - ref[r]) <= 2e-6 * scale, "%s %s row %lld: %g vs %g", spec, isas[i],
                              (long long)r, y[r], ref[r]);
                ck_assert_msg(fabs(y[r] - yp[r]) <= 2e-6 * scale, "%s %s row %lld: %g vs portable %g", spec,
                              isas[i], (long long)r, y[r], yp[r]);
            }
        }
    }
    unsetenv("HYPERCOMP_ISA");
    free(w);
    free(x);
    free(dec);
    free(y);
    free(yp);
    free(ref);
    hc_ctensor_free(ct);
}

START_TEST(matvec_matches_decode_on_every_isa)
{
    check_matvec("seedlm:4bit,seeds=300", 37, 64);      /* the 4-bit preset's own kernel */
    check_matvec("seedlm:K=10", 37, 64);                 /* the 4-bit layout with K = 10 */
    check_matvec("seedlm:K=10,C=12,P=4", 20, 96);        /* the 3-bit layout, 36-bit records */
    check_matvec("seedlm:K=9,C=8,P=8,mant=4", 9, 32);   /* P * M = 32 */
    check_matvec("seedlm:K=9,C=8,P=8,mant=5", 9, 32);   /* P * M > 32: portable path */
    check_matvec("seedlm:K=9,C=5,P=3", 7, 20);          /* C*P = 15: masked tail */
    check_matvec("seedlm:K=9", 13, 21);                  /* blocks straddle rows */
    check_matvec("seedlm:K=24,seeds=40", 8, 32);         /* no table: states regenerated */
}
END_TEST

START_TEST(decode_regenerates_each_block_from_its_seed)
{
    const int64_t rows = 5, cols = 24;
    float *w = test_gauss(41, rows * cols, 2.0), dec[120];
    const char *specs[] = { "seedlm:K=12,C=6,P=2", "seedlm:K=22,seeds=300,C=6,P=2" };
    for (int k = 0; k < 2; k++) {
        hc_ctensor *ct = compress2(specs[k], w, rows, cols);
        ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
        size_t n;
        uint8_t *ser = serialise(ct, &n);
        ref_cfg c;
        params_of(&c, ser, 2);
        for (int64_t b = 0; b < rows * cols / 6; b++) {
            ref_block r;
            record_at(&r, ser + 52, &c, b);
            float u[12];
            ck_assert_ok(hc_lfsr_fill_u(u, c.K, r.seed, 6, 2));
            float sc = ldexpf(1.0f, c.ebase + (int32_t)r.ecode);
            for (int i = 0; i < 6; i++) {
                float v = u[i * 2] * (r.q[0] * sc);
                v += u[i * 2 + 1] * (r.q[1] * sc);
                ck_assert_float_eq(dec[b * 6 + i], v);
            }
        }
        /* a flat range that starts and ends inside blocks decodes the same values */
        float part[7];
        ck_assert_ok(ct->codec->decode(ct, 5, 7, part));
        for (int i = 0; i < 7; i++)
            ck_assert_float_eq(part[i], dec[5 + i]);
        hc_stats s = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s, ct));
        ck_assert(s.rel_rmse < 0.6);
        free(ser);
        hc_ctensor_free(ct);
    }
    free(w);
}
END_TEST

START_TEST(padding_is_counted_and_zero_blocks_decode_to_zero)
{
    float w[15] = { 0 };
    for (int i = 8; i < 15; i++)
        w[i] = (float)(i - 10) * 0.1f;
    hc_ctensor *ct = compress2("seedlm:K=10", w, 3, 5);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    /* 2 blocks of 10 + 4 + 3 * 4 = 26 bits: 7 payload bytes */
    ck_assert_uint_eq(s.bits, 8u * (24 + 16 + 12 + 7 + 4));
    float dec[15];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(dec[i], 0.0f);
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    ref_cfg c;
    params_of(&c, ser, 2);
    ref_block r;
    record_at(&r, ser + 52, &c, 0);
    ck_assert_uint_eq(r.seed, 1);   /* every full-rank seed ties at 0: the first one wins */
    ck_assert_int_eq(r.q[0] | r.q[1] | r.q[2], 0);
    ck_assert(s.rel_rmse < 0.5);
    free(ser);
    hc_ctensor_free(ct);
    /* an all-zero tensor */
    float z[16] = { 0 }, dz[16];
    ct = compress2("seedlm:K=8", z, 2, 8);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dz, sizeof dz));
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(dz[i], 0.0f);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(more_seeds_never_hurt_and_quality_is_in_range)
{
    float *w = test_gauss(51, 4096, 1.0);
    double prev = 1e9;
    const char *specs[] = { "seedlm:K=16,seeds=16", "seedlm:K=16,seeds=256", "seedlm:K=16,seeds=4096" };
    for (int i = 0; i < 3; i++) {
        hc_ctensor *ct = compress2(specs[i], w, 64, 64);
        hc_stats s = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s, ct));
        ck_assert_msg(s.rel_rmse < prev, "%s: %g after %g", specs[i], s.rel_rmse, prev);
        prev = s.rel_rmse;
        hc_ctensor_free(ct);
    }
    /* the exhaustive search reaches 0.124 (slow suite); 4096 of the 65535 seeds get within 0.07 */
    ck_assert_msg(prev < 0.195, "rel_rmse %g", prev);
    free(w);
}
END_TEST

static uint8_t *rebuild(const uint8_t *ser, size_t n)
{
    uint8_t *b = malloc(n);
    memcpy(b, ser, n);
    hci_put_u32(b + n - 4, hci_crc32c(0, b, n - 4));
    return b;
}

START_TEST(hostile_payloads_are_rejected)
{
    float *w = test_gauss(61, 96, 1.0);
    hc_ctensor *ct = compress2("seedlm:K=9", w, 4, 24), *bad = NULL;
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    ck_assert_ok(hc_ctensor_deserialize(&bad, ser, n));
    hc_ctensor_free(bad);
    for (size_t cut = 0; cut < n; cut += 3)
        ck_assert_int_eq(hc_ctensor_deserialize(&bad, ser, cut), HC_EFORMAT);
    for (size_t i = 0; i < n; i++) {
        ser[i] ^= 0x10;
        int rc = hc_ctensor_deserialize(&bad, ser, n);
        ck_assert_msg(rc == HC_EFORMAT || ((i == 4 || i == 5) && rc == HC_EVERSION), "flip in byte %zu: %s", i,
                      hc_status_name(rc));
        ser[i] ^= 0x10;
    }
    /* fields with a valid checksum */
    const struct {
        size_t off;
        uint8_t value;
        const char *needle;
    } cases[] = {
        { 40, 3, "layout version 3" },      { 41, 0, "C=0" },
        { 40, 2, "layout version 2, which needs 32-bit records and C dividing the columns; it has 25-bit" },
        { 42, 9, "P=9" },                   { 43, 7, "K=7" },
        { 43, 40, "K=40" },                 { 44, 9, "9 mantissa bits" },
        { 45, 0, "0 exponent bits" },       { 46, 0x7F, "exponent base" },
        { 48, 0, "searched" },              { 49, 2, "searched" },
        { 52, 0, "block 0 has seed 0" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t *b = rebuild(ser, n);
        b[cases[k].off] = cases[k].value;
        if (cases[k].off == 52)
            b[53] &= 0xFE;   /* the 9-bit seed spans bytes 52 and 53 */
        if (cases[k].off == 48)
            b[49] = 0;       /* 511 seeds = 0x1FF: clear both bytes */
        hci_put_u32(b + n - 4, hci_crc32c(0, b, n - 4));
        ck_assert_status(hc_ctensor_deserialize(&bad, b, n), HC_EFORMAT, cases[k].needle);
        ck_assert_ptr_null(bad);
        free(b);
    }
    /* a payload one byte short, with the lengths made consistent */
    uint8_t *b = rebuild(ser, n);
    hci_put_u64(b + 16, hci_get_u64(b + 16) - 1);
    memmove(b + n - 5, b + n - 4, 4);
    hci_put_u32(b + n - 5, hci_crc32c(0, b, n - 5));
    ck_assert_status(hc_ctensor_deserialize(&bad, b, n - 1), HC_EFORMAT, "expected");
    free(b);
    /* wrong parameter length */
    b = malloc(n + 1);
    memcpy(b, ser, 52);
    b[52] = 0;
    memcpy(b + 53, ser + 52, n - 52);
    hci_put_u32(b + 12, 13);
    hci_put_u32(b + n - 3, hci_crc32c(0, b, n - 3));
    ck_assert_status(hc_ctensor_deserialize(&bad, b, n + 1), HC_EFORMAT, "13 parameter bytes");
    free(b);
    free(ser);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

/* Fails each allocation of compressing v with c in turn: every one gives HC_ENOMEM and no tensor,
 * until the k-th is past the last. Returns how many failed. */
static long compress_failing_each_allocation(hc_compressor *c, const hc_tensor_view *v)
{
    long failures = 0;
    for (long k = 1; k < 60; k++) {
        hc_ctensor *ct = NULL;
        hci_alloc_fail_after(k);
        int rc = hc_compress(&ct, c, v);
        hci_alloc_fail_after(0);
        if (rc == HC_OK) {
            hc_ctensor_free(ct);
            return failures;   /* the k-th allocation was past the last one: every point was hit */
        }
        ck_assert_int_eq(rc, HC_ENOMEM);
        ck_assert_ptr_null(ct);
        failures++;
    }
    ck_abort_msg("compression still failing after 60 allocations");
    return failures;
}

START_TEST(out_of_memory_leaks_nothing)
{
    float *w = test_gauss(71, 200, 1.0);
    hc_compressor *c = make("seedlm:K=8,threads=1");
    hc_tensor_view v = test_view2("w", w, 10, 20);
    ck_assert_int_ge(compress_failing_each_allocation(c, &v), 8);
    /* layout 2: the regrouping's copy, then matvec's scratch for the grouped records */
    hc_compressor *c2 = make("seedlm:4bit,seeds=50,threads=1");
    hc_tensor_view v2 = test_view2("w", w, 25, 8);
    ck_assert_int_ge(compress_failing_each_allocation(c2, &v2), 8);
    hc_ctensor *g = NULL;
    ck_assert_ok(hc_compress(&g, c2, &v2));
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[25];
    setenv("HYPERCOMP_ISA", "portable", 1);
    for (long k = 1; k <= 2; k++) {
        hci_alloc_fail_after(k);
        int rc = hc_ctensor_matvec(g, x, y);
        hci_alloc_fail_after(0);
        ck_assert_int_eq(rc, HC_ENOMEM);
    }
    ck_assert_ok(hc_ctensor_matvec(g, x, y));
    unsetenv("HYPERCOMP_ISA");
    hc_ctensor_free(g);
    hc_compressor_free(c2);
    /* attach's table allocations, through deserialisation */
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_compress(&ct, c, &v));
    size_t n;
    uint8_t *ser = serialise(ct, &n);
    hc_ctensor_free(ct);
    int succeeded = 0;
    for (long k = 1; k < 20 && !succeeded; k++) {
        hc_ctensor *back = NULL;
        hci_alloc_fail_after(k);
        int rc = hc_ctensor_deserialize(&back, ser, n);
        hci_alloc_fail_after(0);
        succeeded = rc == HC_OK;
        if (!succeeded) {
            ck_assert_int_eq(rc, HC_ENOMEM);
            ck_assert_ptr_null(back);
        }
        hc_ctensor_free(back);
    }
    ck_assert(succeeded);
    free(ser);
    hc_compressor_free(c);
    free(w);
}
END_TEST

/* ---- slow: the published configurations, exhaustive K = 16 ---- */

static void published(const char *spec, double max_rel, double payload_bpw)
{
    const int64_t rows = 96, cols = 1536;   /* 147456 values: 18432 blocks of 8, 12288 of 12 */
    float *w = test_gauss(81, rows * cols, 1.0);
    hc_ctensor *ct = compress2(spec, w, rows, cols);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_msg(s.rel_rmse <= max_rel, "%s: rel_rmse %g > %g", spec, s.rel_rmse, max_rel);
    ck_assert_double_eq_tol(s.bpw, payload_bpw + 8.0 * (24 + 16 + 12 + 4) / (rows * cols), 1e-12);
    hc_ctensor_free(ct);
    free(w);
}

START_TEST(published_gaussian_quality)
{
    published("seedlm:4bit,threads=2", 0.125, 4.0);
    published("seedlm:3bit,threads=2", 0.23, 3.0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seedlm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    if (getenv("HC_SEEDLM_SLOW")) {
        tcase_set_timeout(tc, 1200);
        tcase_add_test(tc, published_gaussian_quality);
    } else {
        tcase_add_test(tc, search_agrees_exactly_with_brute_force);
        tcase_add_test(tc, blocks_below_the_exponent_range_tie_and_agree_with_brute_force);
        tcase_add_test(tc, search_is_the_same_on_every_isa_and_thread_count);
        tcase_add_test(tc, tiles_and_threads_split_large_tensors_without_seams);
        tcase_add_test(tc, tiny_tensor_bytes);
        tcase_add_test(tc, layout_2_groups_records_by_16_rows);
        tcase_add_test(tc, spec_presets_and_options);
        tcase_add_test(tc, matvec_matches_decode_on_every_isa);
        tcase_add_test(tc, decode_regenerates_each_block_from_its_seed);
        tcase_add_test(tc, padding_is_counted_and_zero_blocks_decode_to_zero);
        tcase_add_test(tc, more_seeds_never_hurt_and_quality_is_in_range);
        tcase_add_test(tc, hostile_payloads_are_rejected);
        tcase_add_test(tc, out_of_memory_leaks_nothing);
    }
    suite_add_tcase(s, tc);
    return test_run(s);
}
