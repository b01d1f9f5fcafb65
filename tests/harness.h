/* Shared test helpers: synthetic tensors, fixtures and status assertions. */
#ifndef HC_TEST_HARNESS_H
#define HC_TEST_HARNESS_H

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "hypercomp/hypercomp.h"

/* Asserts a status and, for failures, that the thread's message contains `needle`. */
#define ck_assert_status(expr, code, needle)                                                        \
    do {                                                                                            \
        int ck_rc_ = (expr);                                                                        \
        ck_assert_msg(ck_rc_ == (code), "%s returned %s (%s), expected %s", #expr,                  \
                      hc_status_name(ck_rc_), hc_last_error(), hc_status_name(code));               \
        if ((code) != HC_OK)                                                                        \
            test_expect_message(needle);                                                            \
    } while (0)

/* Asserts that the thread's last message contains needle (NULL: anything). */
void test_expect_message(const char *needle);

#define ck_assert_ok(expr) ck_assert_status(expr, HC_OK, NULL)

/* ck_assert_msg for loops over many values. libcheck records a checkpoint (a write to the pipe
 * or file it reads back) for every assertion that passes; in loops over every decoded value that
 * cost more than the code under test (over half of the vptq suite's time). This one reaches
 * libcheck only when the condition fails, with the same message. */
#define ck_assert_each_msg(expr, ...)                                                               \
    do {                                                                                            \
        if (!(expr))                                                                                \
            ck_abort_msg(__VA_ARGS__);                                                              \
    } while (0)

/* Deterministic generator (splitmix64) so every run sees the same data. */
typedef struct test_rng {
    uint64_t s;
} test_rng;
uint64_t test_rng_next(test_rng *r);
double test_rng_uniform(test_rng *r);   /* [0, 1) */
double test_rng_gauss(test_rng *r);     /* N(0, 1) */
double test_rng_laplace(test_rng *r);   /* Laplace(0, 1/sqrt(2)): unit variance */

/* n values of N(0, sigma^2) / Laplace; caller frees. */
float *test_gauss(uint64_t seed, size_t n, double sigma);
float *test_laplace(uint64_t seed, size_t n, double sigma);

/* A 2-D F32 view over data. */
hc_tensor_view test_view2(const char *name, const float *data, int64_t rows, int64_t cols);

/* Relative RMS error between two arrays, in double. */
double test_rel_rmse(const float *ref, const float *dec, size_t n);

/* Path of a file in tests/data (HC_TEST_DATA), in a static buffer. */
const char *test_data_path(const char *file);

/* Feeds hc_ctensor_deserialize every truncation of a serialised tensor (each must give
 * HC_EFORMAT) and every stride-th single-bit flip (each must give an error: the checksum,
 * version or codec check catches it), asserting that no tensor comes back. buf is restored.
 * `what` names the case in failure messages. */
void test_expect_hostile_serialised(uint8_t *buf, size_t n, size_t stride, const char *what);

/* Runs a suite with TAP output; returns the process exit status. */
int test_run(Suite *s);

#endif
