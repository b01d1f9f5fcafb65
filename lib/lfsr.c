/* K-bit Fibonacci LFSRs with maximal-length feedback polynomials, K = 8..32, and the U(s)
 * matrices of SeedLM (Shafipour et al., arXiv 2410.10714, section 3.1) built from their states.
 *
 * Every polynomial below is primitive over GF(2) (tests/test_lfsr.c checks the period by
 * stepping for K <= 20 and by the order of x modulo the polynomial for every K). */
#include "lfsr.h"

#include <stddef.h>

#include "common/error.h"
#include "hypercomp/seedlm.h"

/* Exponents of the nonzero terms other than x^0, highest first; 0 ends a list. */
static const uint8_t terms[HC_LFSR_MAX_BITS - HC_LFSR_MIN_BITS + 1][5] = {
    { 8, 6, 5, 4, 0 },    { 9, 5, 0 },          { 10, 7, 0 },         { 11, 9, 0 },
    { 12, 11, 10, 4, 0 }, { 13, 12, 11, 8, 0 }, { 14, 13, 12, 2, 0 }, { 15, 14, 0 },
    { 16, 14, 13, 11, 0 }, { 17, 14, 0 },       { 18, 11, 0 },        { 19, 18, 17, 14, 0 },
    { 20, 17, 0 },        { 21, 19, 0 },        { 22, 21, 0 },        { 23, 18, 0 },
    { 24, 23, 22, 17, 0 }, { 25, 22, 0 },       { 26, 6, 2, 1, 0 },   { 27, 5, 2, 1, 0 },
    { 28, 25, 0 },        { 29, 27, 0 },        { 30, 6, 4, 1, 0 },   { 31, 28, 0 },
    { 32, 22, 2, 1, 0 },
};

static int k_ok(uint32_t k)
{
    return k >= HC_LFSR_MIN_BITS && k <= HC_LFSR_MAX_BITS;
}

uint32_t hc_lfsr_min_bits(void) { return HC_LFSR_MIN_BITS; }
uint32_t hc_lfsr_max_bits(void) { return HC_LFSR_MAX_BITS; }

uint64_t hc_lfsr_polynomial(uint32_t k)
{
    if (!k_ok(k))
        return 0;
    uint64_t poly = 1;
    for (const uint8_t *t = terms[k - HC_LFSR_MIN_BITS]; *t; t++)
        poly |= 1ull << *t;
    return poly;
}

uint32_t hci_lfsr_tap_mask(uint32_t k)
{
    uint32_t mask = 0;
    for (const uint8_t *t = terms[k - HC_LFSR_MIN_BITS]; *t; t++)
        mask |= 1u << (k - *t);
    return mask;
}

int hci_lfsr_valid(uint32_t k, uint32_t state)
{
    return k_ok(k) && state != 0 && (k == 32 || state < (1u << k));
}

uint32_t hc_lfsr_next(uint32_t k, uint32_t state)
{
    if (!hci_lfsr_valid(k, state))
        return 0;
    return hci_lfsr_step(state, k, hci_lfsr_tap_mask(k));
}

float hc_lfsr_value(uint32_t k, uint32_t state)
{
    return hci_lfsr_valid(k, state) ? hci_lfsr_value(k, state) : 0.0f;
}

static int check_args(const void *out, uint32_t k, uint32_t seed, const char *fn)
{
    if (!out)
        return hci_fail(HC_EINVAL, "%s: out is NULL", fn);
    if (!k_ok(k))
        return hci_fail(HC_EINVAL, "%s: LFSR length K=%u is outside [%d, %d]", fn, k, HC_LFSR_MIN_BITS,
                        HC_LFSR_MAX_BITS);
    if (!hci_lfsr_valid(k, seed))
        return hci_fail(HC_EINVAL, "%s: seed %u is not a nonzero %u-bit state", fn, seed, k);
    return HC_OK;
}

int hc_lfsr_states(uint32_t *out, size_t n, uint32_t k, uint32_t seed)
{
    if (n == 0)
        return HC_OK;
    int rc = check_args(out, k, seed, "hc_lfsr_states");
    if (rc != HC_OK)
        return rc;
    uint32_t mask = hci_lfsr_tap_mask(k), s = seed;
    for (size_t i = 0; i < n; i++) {
        out[i] = s;
        s = hci_lfsr_step(s, k, mask);
    }
    return HC_OK;
}

static int check_shape(uint32_t rows, uint32_t cols, const char *fn)
{
    if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
        return hci_fail(HC_EINVAL, "%s: U of %u x %u is empty or larger than 65536 x 65536", fn, rows, cols);
    return HC_OK;
}

int hc_lfsr_fill_u(float *out, uint32_t k, uint32_t seed, uint32_t rows, uint32_t cols)
{
    int rc = check_args(out, k, seed, "hc_lfsr_fill_u");
    if (rc == HC_OK)
        rc = check_shape(rows, cols, "hc_lfsr_fill_u");
    if (rc != HC_OK)
        return rc;
    uint32_t mask = hci_lfsr_tap_mask(k), s = seed;
    size_t n = (size_t)rows * cols;
    for (size_t i = 0; i < n; i++) {
        out[i] = hci_lfsr_value(k, s);
        s = hci_lfsr_step(s, k, mask);
    }
    return HC_OK;
}

int hc_lfsr_fill_u_range(float *out, uint32_t k, uint32_t first_seed, uint32_t count, uint32_t rows,
                         uint32_t cols)
{
    if (count == 0)
        return HC_OK;
    int rc = check_args(out, k, first_seed, "hc_lfsr_fill_u_range");
    if (rc == HC_OK)
        rc = check_shape(rows, cols, "hc_lfsr_fill_u_range");
    if (rc != HC_OK)
        return rc;
    uint64_t period = (1ull << k) - 1;
    if (count > period)
        return hci_fail(HC_EINVAL, "hc_lfsr_fill_u_range: %u seeds requested; a %u-bit LFSR has %llu", count, k,
                        (unsigned long long)period);
    size_t n = (size_t)rows * cols;
    /* Seed i's matrix is the window [i, i + n) of one state sequence: fill the first matrix, then
     * each next one is the previous shifted by one value with one new state at the end. */
    rc = hc_lfsr_fill_u(out, k, first_seed, rows, cols);
    if (rc != HC_OK)
        return rc;
    uint32_t mask = hci_lfsr_tap_mask(k), s = first_seed;
    for (size_t i = 0; i < n; i++)
        s = hci_lfsr_step(s, k, mask);   /* the state after the first window */
    for (uint32_t m = 1; m < count; m++) {
        float *dst = out + (size_t)m * n;
        const float *src = dst - n;
        for (size_t i = 0; i + 1 < n; i++)
            dst[i] = src[i + 1];
        dst[n - 1] = hci_lfsr_value(k, s);
        s = hci_lfsr_step(s, k, mask);
    }
    return HC_OK;
}
