/* The public LFSR: polynomials, known states, the maximal period (stepped exhaustively for
 * K <= 20, proved from the polynomial's order for every K), U(s) and every error path. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "hypercomp/seedlm.h"

START_TEST(polynomials_have_degree_k_and_the_paper_polynomial_for_16)
{
    for (uint32_t k = 8; k <= 32; k++) {
        uint64_t poly = hc_lfsr_polynomial(k);
        ck_assert_msg(poly >> k == 1 && (poly & 1), "K=%u polynomial %llx", k, (unsigned long long)poly);
    }
    /* x^16 + x^14 + x^13 + x^11 + 1 */
    ck_assert_uint_eq(hc_lfsr_polynomial(16), (1ull << 16) | (1ull << 14) | (1ull << 13) | (1ull << 11) | 1u);
    ck_assert_uint_eq(hc_lfsr_polynomial(7), 0);
    ck_assert_uint_eq(hc_lfsr_polynomial(33), 0);
    ck_assert_uint_eq(hc_lfsr_min_bits(), 8);
    ck_assert_uint_eq(hc_lfsr_max_bits(), 32);
}
END_TEST

START_TEST(known_first_states)
{
    /* The textbook 16-bit Fibonacci example with taps 16, 14, 13, 11: 0xACE1 -> 0x5670. */
    ck_assert_uint_eq(hc_lfsr_next(16, 0xACE1u), 0x5670u);
    /* From seed 1 the taps (bits 0, 2, 3, 5) see the 1 once, so the 1 enters at the top and walks
     * down until it reaches bit 5, a tap: 1, 8000, 4000, ..., 0020 -> 8010 -> 4008 -> A004 -> D002. */
    uint32_t s[20];
    ck_assert_ok(hc_lfsr_states(s, 20, 16, 1));
    const uint32_t expect[] = { 0x0001, 0x8000, 0x4000, 0x2000, 0x1000, 0x0800, 0x0400, 0x0200, 0x0100, 0x0080,
                                0x0040, 0x0020, 0x8010, 0x4008, 0xA004, 0xD002 };
    for (int i = 0; i < 16; i++)
        ck_assert_msg(s[i] == expect[i], "state %d is %04x, expected %04x", i, s[i], expect[i]);
    for (int i = 1; i < 20; i++)
        ck_assert_uint_eq(s[i], hc_lfsr_next(16, s[i - 1]));
    ck_assert_uint_eq(hc_lfsr_next(16, 0), 0);
    ck_assert_uint_eq(hc_lfsr_next(16, 0x10000u), 0);
    ck_assert_uint_eq(hc_lfsr_next(40, 1), 0);
}
END_TEST

START_TEST(period_is_maximal_by_stepping)
{
    for (uint32_t k = 8; k <= 20; k++) {
        uint64_t period = (1ull << k) - 1;
        uint8_t *seen = calloc((size_t)1 << k, 1);
        uint32_t s = 1;
        uint64_t n = 0;
        do {
            if (s == 0 || s >= (1u << k) || seen[s])
                ck_abort_msg("K=%u: state %u repeats or leaves the range after %llu steps", k, s,
                             (unsigned long long)n);
            seen[s] = 1;
            s = hc_lfsr_next(k, s);
            n++;
        } while (s != 1 && n <= period);
        ck_assert_msg(n == period, "K=%u: period %llu, expected %llu", k, (unsigned long long)n,
                      (unsigned long long)period);
        free(seen);
    }
}
END_TEST

/* GF(2) polynomial arithmetic modulo poly (degree k <= 32). */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t poly, uint32_t k)
{
    uint64_t r = 0;
    while (b) {
        if (b & 1)
            r ^= a;
        b >>= 1;
        a <<= 1;
        if ((a >> k) & 1)
            a ^= poly;
    }
    return r;
}

static uint64_t powx(uint64_t e, uint64_t poly, uint32_t k)
{
    uint64_t r = 1, b = 2;
    while (e) {
        if (e & 1)
            r = mulmod(r, b, poly, k);
        b = mulmod(b, b, poly, k);
        e >>= 1;
    }
    return r;
}

START_TEST(every_polynomial_is_primitive_and_the_register_follows_it)
{
    for (uint32_t k = 8; k <= 32; k++) {
        uint64_t poly = hc_lfsr_polynomial(k), n = (1ull << k) - 1, m = n;
        /* x has order exactly 2^K - 1: x^n = 1 and x^(n/q) != 1 for each prime q dividing n */
        ck_assert_msg(powx(n, poly, k) == 1, "K=%u: x^(2^K-1) != 1", k);
        for (uint64_t q = 2; q * q <= m; q++) {
            if (m % q)
                continue;
            ck_assert_msg(powx(n / q, poly, k) != 1, "K=%u: order divides (2^K-1)/%llu", k, (unsigned long long)q);
            while (m % q == 0)
                m /= q;
        }
        if (m > 1)
            ck_assert_msg(powx(n / m, poly, k) != 1, "K=%u: order divides (2^K-1)/%llu", k, (unsigned long long)m);
        /* The bit entering at the top obeys a_j = XOR over the terms x^t (t >= 1) of a_(j-t): the
         * register realises this (reciprocal, hence also primitive) polynomial. */
        enum { N = 400 };
        uint32_t st[N];
        ck_assert_ok(hc_lfsr_states(st, N, k, 0x5A5A5A5Au & (uint32_t)n));
        int a[N];
        for (int j = 0; j < N; j++)
            a[j] = (int)((st[j] >> (k - 1)) & 1);
        for (int j = 33; j < N; j++) {
            int x = 0;
            for (uint32_t t = 1; t <= k; t++)
                if ((poly >> t) & 1)
                    x ^= a[j - (int)t];
            ck_assert_msg(a[j] == x, "K=%u: recurrence fails at %d", k, j);
        }
    }
}
END_TEST

START_TEST(u_is_filled_row_by_row_with_scaled_states)
{
    const uint32_t k = 16, C = 8, P = 3;
    uint32_t st[24];
    float u[24];
    ck_assert_ok(hc_lfsr_states(st, 24, k, 0xACE1u));
    ck_assert_ok(hc_lfsr_fill_u(u, k, 0xACE1u, C, P));
    for (uint32_t i = 0; i < C; i++)
        for (uint32_t p = 0; p < P; p++) {
            float expect = (float)(((double)st[i * P + p] - 32768.0) / 32767.0);
            ck_assert_float_eq(u[i * P + p], expect);
            ck_assert(u[i * P + p] >= -1.0f && u[i * P + p] <= 1.0f);
        }
    ck_assert_float_eq(u[0], (float)((0xACE1 - 32768.0) / 32767.0));
    ck_assert_float_eq(hc_lfsr_value(16, 0xFFFF), 1.0f);
    ck_assert_float_eq(hc_lfsr_value(16, 1), -1.0f);
    ck_assert_float_eq(hc_lfsr_value(16, 0), 0.0f);
}
END_TEST

START_TEST(range_fill_matches_one_seed_fills_in_generator_order)
{
    const uint32_t k = 10, C = 12, P = 4, count = 70, n = C * P;
    float *all = malloc(sizeof(float) * count * n), one[48];
    ck_assert_ok(hc_lfsr_fill_u_range(all, k, 77, count, C, P));
    uint32_t s = 77;
    for (uint32_t m = 0; m < count; m++) {
        ck_assert_ok(hc_lfsr_fill_u(one, k, s, C, P));
        for (uint32_t i = 0; i < n; i++)
            ck_assert_float_eq(all[m * n + i], one[i]);
        s = hc_lfsr_next(k, s);
    }
    free(all);
}
END_TEST

START_TEST(bad_arguments_are_rejected_with_the_value)
{
    uint32_t st[4];
    float u[4];
    ck_assert_status(hc_lfsr_states(st, 4, 7, 1), HC_EINVAL, "K=7");
    ck_assert_status(hc_lfsr_states(st, 4, 33, 1), HC_EINVAL, "K=33");
    ck_assert_status(hc_lfsr_states(st, 4, 16, 0), HC_EINVAL, "seed 0");
    ck_assert_status(hc_lfsr_states(st, 4, 8, 256), HC_EINVAL, "seed 256");
    ck_assert_status(hc_lfsr_states(NULL, 4, 8, 1), HC_EINVAL, "out is NULL");
    ck_assert_ok(hc_lfsr_states(NULL, 0, 8, 1));
    ck_assert_status(hc_lfsr_fill_u(u, 16, 1, 0, 3), HC_EINVAL, "0 x 3");
    ck_assert_status(hc_lfsr_fill_u(u, 16, 70000, 2, 2), HC_EINVAL, "seed 70000");
    ck_assert_status(hc_lfsr_fill_u_range(u, 8, 1, 256, 1, 1), HC_EINVAL, "256 seeds");
    ck_assert_status(hc_lfsr_fill_u_range(u, 8, 0, 1, 1, 1), HC_EINVAL, "seed 0");
    ck_assert_ok(hc_lfsr_fill_u_range(u, 8, 1, 0, 2, 2));
}
END_TEST

static Suite *lfsr_suite(void)
{
    Suite *s = suite_create("lfsr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, polynomials_have_degree_k_and_the_paper_polynomial_for_16);
    tcase_add_test(tc, known_first_states);
    tcase_add_test(tc, period_is_maximal_by_stepping);
    tcase_add_test(tc, every_polynomial_is_primitive_and_the_register_follows_it);
    tcase_add_test(tc, u_is_filled_row_by_row_with_scaled_states);
    tcase_add_test(tc, range_fill_matches_one_seed_fills_in_generator_order);
    tcase_add_test(tc, bad_arguments_are_rejected_with_the_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(lfsr_suite());
}
