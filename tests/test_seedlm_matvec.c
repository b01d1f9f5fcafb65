/* SeedLM matvec and decode from seeds on tensors of random records (every seed, exponent code
 * and mantissa of the configuration can occur): the fused AVX-512 and AVX2 kernels and the
 * portable loop against the decoded matrix, on shapes whose blocks straddle rows, single rows
 * and columns, row ranges that start inside the tensor, and every table / no-table case. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "harness.h"
#include "seedlm/seedlm_internal.h"

typedef struct shape_case {
    uint32_t C, P, K, M, E;
    int64_t rows, cols;
    const char *what;
} shape_case;

static uint64_t next(uint64_t *z)
{
    *z = *z * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t v = *z;
    v = (v ^ (v >> 31)) * 0xBF58476D1CE4E5B9ull;
    return v ^ (v >> 29);
}

/* A rows x cols SeedLM tensor of configuration c whose block b is fill(b), through the serialised
 * form (so that attach() validates it like any file). */
typedef void (*block_fill)(hci_seedlm_block *blk, int64_t b, void *ctx);

static hc_ctensor *seedlm_tensor(const hci_seedlm_cfg *c, int64_t rows, int64_t cols, block_fill fill, void *ctx)
{
    const int64_t nb = (rows * cols + c->C - 1) / c->C;
    const size_t pl = (size_t)(((uint64_t)nb * hci_seedlm_block_bits(c) + 7) / 8), tot = 52 + pl + 4;
    uint8_t *buf = calloc(tot, 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, "HCT1", 4);
    hci_put_u16(buf + 4, 1);
    hci_put_u16(buf + 6, HC_CODEC_SEEDLM);
    buf[9] = 2;
    hci_put_u32(buf + 12, HCI_SEEDLM_PARAMS_LEN);
    hci_put_u64(buf + 16, pl);
    hci_put_u64(buf + 24, (uint64_t)rows);
    hci_put_u64(buf + 32, (uint64_t)cols);
    hci_seedlm_put_params(buf + 40, c);
    for (int64_t b = 0; b < nb; b++) {
        hci_seedlm_block blk = { 0, 0, { 0 } };
        fill(&blk, b, ctx);
        hci_seedlm_write_block(buf + 52, c, hci_seedlm_slot(c, rows, cols, b), &blk);
    }
    hci_put_u32(buf + 52 + pl, hci_crc32c(0, buf, 52 + pl));
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_ctensor_deserialize(&ct, buf, tot));
    free(buf);
    return ct;
}

typedef struct random_fill {
    const shape_case *s;
    uint64_t z;
} random_fill;

/* Uniformly random seed, exponent code and mantissas. */
static void fill_random(hci_seedlm_block *blk, int64_t b, void *ctx)
{
    (void)b;
    random_fill *f = ctx;
    const shape_case *s = f->s;
    blk->seed = 1 + (uint32_t)(next(&f->z) % ((1ull << s->K) - 1));
    blk->ecode = (uint32_t)(next(&f->z) >> 60) & ((1u << s->E) - 1);
    for (uint32_t p = 0; p < s->P; p++)
        blk->q[p] = (int32_t)(next(&f->z) % (1u << s->M)) - (int32_t)(1u << (s->M - 1));
}

/* A tensor of uniformly random records of shape case s, in layout 2 when grouped. */
static hc_ctensor *random_tensor(const shape_case *s, uint64_t seed, uint32_t grouped)
{
    const hci_seedlm_cfg c = { s->C, s->P, s->K, s->M, s->E, -6, (uint32_t)((1ull << s->K) - 1), grouped };
    random_fill f = { s, seed };
    return seedlm_tensor(&c, s->rows, s->cols, fill_random, &f);
}

/* Float dot products may differ by rounding: the bound is relative to sum_j |W_rj x_j|. */
static void check_row(const shape_case *s, const char *how, int64_t r, float got, const double *ref, const double *mag)
{
    ck_assert_each_msg(fabs(got - ref[r]) <= 2e-6 * mag[r] + 1e-30,
                       "C=%u P=%u K=%u M=%u %lld x %lld (%s), %s, row %lld: %.9g vs %.9g (scale %g)", s->C, s->P, s->K,
                       s->M, (long long)s->rows, (long long)s->cols, s->what, how, (long long)r, got, ref[r], mag[r]);
}

/* ref = W x in double from the decoded matrix, and mag = |W| |x| (the rounding scale), per row. */
static void reference_product(const hc_ctensor *ct, int64_t rows, int64_t cols, const float *x, double *ref,
                              double *mag)
{
    float *W = malloc(sizeof(float) * (size_t)(rows * cols));
    ck_assert_ptr_nonnull(W);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, W, sizeof(float) * (size_t)(rows * cols)));
    for (int64_t r = 0; r < rows; r++) {
        ref[r] = mag[r] = 0;
        for (int64_t j = 0; j < cols; j++) {
            ref[r] += (double)W[r * cols + j] * x[j];
            mag[r] += fabs((double)W[r * cols + j] * x[j]);
        }
    }
    free(W);
}

static void check_case(const shape_case *s, uint32_t grouped)
{
    hc_ctensor *ct = random_tensor(s, 1000 + s->C * 31 + s->K, grouped);
    const int64_t rows = s->rows, cols = s->cols;
    float *x = test_gauss(7, (size_t)cols, 1.0);
    float *y = malloc(sizeof(float) * (size_t)rows), *yp = malloc(sizeof(float) * (size_t)rows);
    double *ref = malloc(sizeof(double) * (size_t)rows), *mag = malloc(sizeof(double) * (size_t)rows);
    reference_product(ct, rows, cols, x, ref, mag);
    setenv("HYPERCOMP_ISA", "portable", 1);
    ck_assert_ok(hc_ctensor_matvec(ct, x, yp));
    const char *isas[] = { "portable", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("HYPERCOMP_ISA", isas[i], 1);
        char how[64];
        for (uint32_t t = 1; t <= 3; t += 2) {
            ck_assert_ok(hc_ctensor_set_threads(ct, t));
            memset(y, 0xFF, sizeof(float) * (size_t)rows);
            ck_assert_ok(hc_ctensor_matvec(ct, x, y));
            for (int64_t r = 0; r < rows; r++) {
                snprintf(how, sizeof how, "%s, %u threads", isas[i], t);
                check_row(s, how, r, y[r], ref, mag);
                snprintf(how, sizeof how, "%s against portable", isas[i]);
                ck_assert_each_msg(fabs(y[r] - yp[r]) <= 4e-6 * mag[r] + 1e-30, "%s: row %lld %g vs portable %g", how,
                                   (long long)r, y[r], yp[r]);
            }
        }
        /* row ranges as the threads get them, starting and ending inside the tensor (and inside
         * blocks when C does not divide cols): pieces of 1, 2, 3, ... rows from row 1 on */
        memset(y, 0xFF, sizeof(float) * (size_t)rows);
        int64_t r0 = rows > 1 ? 1 : 0;
        for (int64_t len = 1; r0 < rows; r0 += len, len++) {
            int64_t r1 = r0 + len < rows ? r0 + len : rows;
            ck_assert_ok(hci_seedlm_matvec_rows(ct->state, ct->payload, x, y, r0, r1));
        }
        for (int64_t r = rows > 1 ? 1 : 0; r < rows; r++) {
            snprintf(how, sizeof how, "%s, row ranges", isas[i]);
            check_row(s, how, r, y[r], ref, mag);
        }
        if (rows > 1)
            ck_assert_msg(isnan(y[0]), "row 0 was outside every range yet written");
    }
    unsetenv("HYPERCOMP_ISA");
    free(x);
    free(y);
    free(yp);
    free(ref);
    free(mag);
    hc_ctensor_free(ct);
}

/* Shapes and configurations of random-record tensors: every vector kernel, its limits, and the
 * cases that fall back to the portable loop. */
static const shape_case shape_cases[] = {
    { 8, 3, 16, 4, 4, 64, 64, "the 4-bit preset, two blocks per vector, aligned records" },
    { 8, 3, 16, 4, 4, 13, 21, "4-bit preset, blocks straddle rows" },
    { 8, 3, 16, 4, 4, 1, 40, "one row" },
    { 8, 3, 16, 4, 4, 1, 5, "one row shorter than a block" },
    { 8, 3, 16, 4, 4, 50, 1, "one column: each block spans 8 rows" },
    { 8, 3, 16, 4, 4, 3, 37, "a row range's first block is its partial last" },
    { 12, 4, 16, 4, 4, 9, 100, "the 3-bit preset, 36-bit records, straddling" },
    { 12, 4, 16, 4, 4, 16, 96, "the 3-bit preset, aligned rows" },
    { 12, 4, 12, 4, 4, 20, 100, "K = 12 with 32-bit records" },
    { 4, 2, 9, 3, 2, 7, 30, "four blocks per vector" },
    { 16, 2, 10, 4, 4, 5, 70, "C = 16" },
    { 5, 3, 9, 4, 4, 7, 20, "odd C" },
    { 8, 8, 9, 4, 4, 9, 32, "P * M = 32" },
    { 8, 8, 9, 5, 4, 9, 32, "P * M > 32: portable on every ISA" },
    { 6, 5, 11, 4, 3, 7, 33, "odd P" },
    { 8, 3, 18, 4, 4, 9, 40, "K = 18: float states, two blocks per vector" },
    { 8, 3, 20, 4, 4, 5, 44, "K = 20, the largest table" },
    { 20, 2, 10, 4, 4, 6, 50, "C > 16: float states" },
    { 16, 4, 16, 4, 4, 5, 40, "C * P + K > 65: one word does not hold a block" },
    { 8, 3, 24, 4, 4, 5, 40, "K = 24: no table, states regenerated" },
    /* the rows-in-lanes kernel (K = 16, 32-bit records, C divides cols): whole tiles of 16
     * rows there, the rest on the kernel above */
    { 8, 3, 16, 4, 4, 37, 88, "lanes: 2 tiles and 5 rows, 11 blocks per row (partial chunks)" },
    { 8, 3, 16, 4, 4, 300, 152, "lanes: row ranges up to 24 rows from odd rows" },
    { 4, 2, 16, 6, 4, 40, 100, "lanes: P = 2, M = 6, six nibbles" },
    { 6, 4, 16, 3, 4, 33, 96, "lanes: P = 4, M = 3, stream bits up to 38" },
    { 8, 2, 16, 6, 4, 18, 264, "lanes: eight nibbles, 33 blocks per row" },
};

/* every case in layout 1, and in layout 2 where it applies (32-bit records, C divides cols) */
static void for_every_case(void (*check)(const shape_case *s, uint32_t grouped))
{
    for (size_t i = 0; i < sizeof shape_cases / sizeof shape_cases[0]; i++) {
        const shape_case *s = &shape_cases[i];
        const hci_seedlm_cfg c = { s->C, s->P, s->K, s->M, s->E, 0, 1, 0 };
        for (uint32_t grouped = 0; grouped <= (uint32_t)hci_seedlm_groupable(&c, s->cols); grouped++)
            check(s, grouped);
    }
}

START_TEST(matvec_matches_decode_on_every_isa_and_shape)
{
    for_every_case(check_case);
}
END_TEST

/* Decode on every ISA equals the reference block decode bit for bit (memcmp: a -0.0f for a 0.0f
 * fails too), over the whole tensor and over ranges that start and end inside blocks. */
static void check_decode_case(const shape_case *s, uint32_t grouped)
{
    hc_ctensor *ct = random_tensor(s, 500 + s->C * 7 + s->P, grouped);
    const hci_seedlm_state *st = ct->state;
    const int64_t n = s->rows * s->cols, C = s->C;
    float *ref = malloc(sizeof(float) * (size_t)(st->nblocks * C)), *got = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(got);
    for (int64_t b = 0; b < st->nblocks; b++)
        hci_seedlm_decode_block(st, ct->payload, hci_seedlm_slot(&st->cfg, s->rows, s->cols, b), ref + b * C);
    /* (first, count): the whole tensor, one value, a range inside one block, ranges entering and
     * leaving blocks part way, and the last value */
    const int64_t ranges[][2] = { { 0, n }, { 0, 1 }, { 1, C - 2 }, { 1, n - 1 }, { C - 1, 2 * C + 3 },
                                  { C, n - C }, { 2 * C + 1, 3 * C }, { n - 1, 1 } };
    const char *isas[] = { "portable", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("HYPERCOMP_ISA", isas[i], 1);
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            const int64_t first = ranges[r][0], count = ranges[r][1];
            if (first < 0 || count < 1 || first + count > n)
                continue;
            memset(got, 0xFF, sizeof(float) * (size_t)n);
            if (r == 0)
                ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, got, sizeof(float) * (size_t)n));
            else
                hci_seedlm_decode_range(st, ct->payload, ct->payload_len, first, count, got);
            for (int64_t v = 0; v < count; v++)
                ck_assert_each_msg(!memcmp(&got[v], &ref[first + v], sizeof(float)),
                                   "C=%u P=%u K=%u M=%u %lld x %lld (%s), layout %u, %s, values [%lld, +%lld): "
                                   "value %lld is %.9g, the reference block decode %.9g",
                                   s->C, s->P, s->K, s->M, (long long)s->rows, (long long)s->cols, s->what, grouped + 1,
                                   isas[i], (long long)first, (long long)count, (long long)(first + v), got[v],
                                   ref[first + v]);
            if (first + count < n)
                ck_assert_msg(isnan(got[count]), "%s: decode of [%lld, +%lld) wrote past its range", isas[i],
                              (long long)first, (long long)count);
        }
    }
    unsetenv("HYPERCOMP_ISA");
    free(ref);
    free(got);
    hc_ctensor_free(ct);
}

START_TEST(decode_is_identical_on_every_isa_and_shape)
{
    for_every_case(check_decode_case);
}
END_TEST

/* The rows-in-lanes kernel reads each row's records of a chunk as whole cache lines once the
 * payload pointer is 4-byte aligned (a shorter first chunk reaches the boundary) in layout 1, and
 * a group's 16 records of a block as one unaligned vector in layout 2; any payload works: the
 * same tensor's payload copied to every offset from a 64-byte boundary, in both layouts. */
static void check_every_payload_offset(uint32_t grouped)
{
    const shape_case s = { 8, 3, 16, 4, 4, 40, 256, "payload at every offset" };
    hc_ctensor *ct = random_tensor(&s, 77, grouped);
    const int64_t rows = s.rows, cols = s.cols;
    float *x = test_gauss(9, (size_t)cols, 1.0), *y = malloc(sizeof(float) * (size_t)rows);
    double *ref = malloc(sizeof(double) * (size_t)rows), *mag = malloc(sizeof(double) * (size_t)rows);
    reference_product(ct, rows, cols, x, ref, mag);
    const size_t pl = (size_t)ct->payload_len;
    uint8_t *buf = hci_aligned_array(pl + 64, 1);
    ck_assert_ptr_nonnull(buf);
    for (uint32_t off = 0; off < 64; off++) {
        memcpy(buf + off, ct->payload, pl);
        memset(y, 0xFF, sizeof(float) * (size_t)rows);
        ck_assert_ok(hci_seedlm_matvec_rows(ct->state, buf + off, x, y, 0, rows));
        char how[48];
        snprintf(how, sizeof how, "layout %u, payload at 64 k + %u", grouped + 1, off);
        for (int64_t r = 0; r < rows; r++)
            check_row(&s, how, r, y[r], ref, mag);
    }
    hci_free(buf);
    free(x);
    free(y);
    free(ref);
    free(mag);
    hc_ctensor_free(ct);
}

START_TEST(lane_kernel_any_payload_alignment)
{
    check_every_payload_offset(0);
    check_every_payload_offset(1);
}
END_TEST

/* Decode against the public LFSR: U(seed) regenerated state by state, for table lengths where one
 * stream word holds a block, where a block needs several words, and without a table. */
START_TEST(decode_matches_regenerated_states)
{
    const shape_case cases[] = {
        { 8, 3, 16, 4, 4, 4, 40, "one word per block" },
        { 16, 4, 16, 4, 4, 4, 40, "three words per block" },
        { 64, 16, 20, 2, 2, 2, 64, "C * P = 1024: many words" },
        { 8, 3, 8, 4, 4, 4, 40, "K = 8: a block wraps the period" },
        { 8, 3, 26, 4, 4, 2, 40, "no table" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const shape_case *s = &cases[k];
        hc_ctensor *ct = random_tensor(s, 77 + k, 0);
        const hci_seedlm_state *st = ct->state;
        const uint32_t C = s->C, P = s->P;
        float out[HCI_SEEDLM_MAX_C], *u = malloc(sizeof(float) * C * P);
        for (int64_t b = 0; b < st->nblocks; b++) {
            hci_seedlm_block blk;
            hci_seedlm_read_block(ct->payload, &st->cfg, b, &blk);
            ck_assert_ok(hc_lfsr_fill_u(u, s->K, blk.seed, C, P));
            hci_seedlm_decode_block(st, ct->payload, b, out);
            float sc = ldexpf(1.0f, st->cfg.ebase + (int32_t)blk.ecode);
            for (uint32_t i = 0; i < C; i++) {
                float v = 0.0f;
                for (uint32_t p = 0; p < P; p++)
                    v += u[i * P + p] * ((float)blk.q[p] * sc);
                ck_assert_each_msg(out[i] == v, "%s: block %lld value %u: %g vs %g", s->what, (long long)b, i, out[i],
                                   v);
            }
        }
        free(u);
        hc_ctensor_free(ct);
    }
}
END_TEST

/* Block b has seed b + 1, exponent code 0 and every coefficient 1. */
static void fill_state(hci_seedlm_block *blk, int64_t b, void *ctx)
{
    (void)ctx;
    blk->seed = (uint32_t)b + 1;
    blk->q[0] = 1;
}

/* Every state's value as decode computes it from the table equals the generator's on every ISA:
 * one block per state (C = P = 1, q = 1, scale 1), for table lengths from 8 to 20. */
START_TEST(table_values_equal_the_generator_for_every_state)
{
    const uint32_t ks[] = { 8, 13, 16, 20 };
    for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
        const uint32_t K = ks[k], n = (uint32_t)((1ull << K) - 1);
        const hci_seedlm_cfg c = { 1, 1, K, 2, 1, 0, n, 0 };
        hc_ctensor *ct = seedlm_tensor(&c, 1, n, fill_state, NULL);
        float *dec = malloc(sizeof(float) * n);
        const char *isas[] = { "portable", "avx2", "avx512" };
        for (int i = 0; i < 3; i++) {
            setenv("HYPERCOMP_ISA", isas[i], 1);
            ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * n));
            for (uint32_t s = 1; s <= n; s++)
                ck_assert_each_msg(dec[s - 1] == hc_lfsr_value(K, s), "K=%u state %u (%s): %.9g vs %.9g", K, s, isas[i],
                                   dec[s - 1], hc_lfsr_value(K, s));
        }
        unsetenv("HYPERCOMP_ISA");
        free(dec);
        hc_ctensor_free(ct);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seedlm_matvec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matvec_matches_decode_on_every_isa_and_shape);
    tcase_add_test(tc, lane_kernel_any_payload_alignment);
    tcase_add_test(tc, decode_matches_regenerated_states);
    tcase_add_test(tc, decode_is_identical_on_every_isa_and_shape);
    tcase_add_test(tc, table_values_equal_the_generator_for_every_state);
    suite_add_tcase(s, tc);
    return test_run(s);
}
