#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t test_rng_next(test_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double test_rng_uniform(test_rng *r)
{
    return (double)(test_rng_next(r) >> 11) * 0x1.0p-53;
}

double test_rng_gauss(test_rng *r)
{
    double u1 = test_rng_uniform(r), u2 = test_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double test_rng_laplace(test_rng *r)
{
    double u = test_rng_uniform(r) - 0.5;
    double b = 1.0 / sqrt(2.0);
    double a = 1.0 - 2.0 * fabs(u);
    if (a < 1e-300)
        a = 1e-300;
    return (u < 0 ? b : -b) * log(a);
}

float *test_gauss(uint64_t seed, size_t n, double sigma)
{
    test_rng r = { seed };
    float *v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(sigma * test_rng_gauss(&r));
    return v;
}

float *test_laplace(uint64_t seed, size_t n, double sigma)
{
    test_rng r = { seed };
    float *v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(sigma * test_rng_laplace(&r));
    return v;
}

hc_tensor_view test_view2(const char *name, const float *data, int64_t rows, int64_t cols)
{
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = name;
    v.dtype = HC_DTYPE_F32;
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.data = data;
    return v;
}

double test_rel_rmse(const float *ref, const float *dec, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)ref[i] - dec[i];
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

const char *test_data_path(const char *file)
{
    static char buf[4096];
    const char *dir = getenv("HC_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", file);
    return buf;
}

int test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void test_expect_message(const char *needle)
{
    if (needle)
        ck_assert_msg(strstr(hc_last_error(), needle) != NULL, "message '%s' lacks '%s'", hc_last_error(), needle);
}

void test_expect_hostile_serialised(uint8_t *buf, size_t n, size_t stride, const char *what)
{
    hc_ctensor *back;
    for (size_t len = 0; len < n; len++) {
        int rc = hc_ctensor_deserialize(&back, buf, len);
        ck_assert_msg(rc == HC_EFORMAT, "%s cut to %zu bytes: %s", what, len, hc_status_name(rc));
        ck_assert_ptr_null(back);
    }
    for (size_t bit = 0; bit < n * 8; bit += stride) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = hc_ctensor_deserialize(&back, buf, n);
        ck_assert_msg(rc == HC_EFORMAT || rc == HC_EVERSION || rc == HC_EUNSUPPORTED, "%s bit %zu: %s", what, bit,
                      hc_status_name(rc));
        ck_assert_ptr_null(back);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}
