/* Trajectory fits: exact recovery of series of degree <= d, the quantisation bound, short
 * segments, array fits and every argument check. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "hypercomp/trajectory.h"

#define PI 3.14159265358979323846

/* Reference evaluation in double, written independently of the library: the polynomial through
 * cos(j acos t) and the cosine terms straight from their definition. */
static double ref_basis(hc_trajectory_kind kind, uint32_t j, size_t i, size_t len)
{
    double t = (2.0 * (double)i + 1.0) / (double)len - 1.0;
    if (kind == HC_TRAJECTORY_POLY)
        return cos(j * acos(t));
    return cos(PI * j * ((double)i + 0.5) / (double)len);
}

static void ref_series(float *out, hc_trajectory_kind kind, const double *c, uint32_t terms, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        double v = 0;
        for (uint32_t j = 0; j < terms; j++)
            v += c[j] * ref_basis(kind, j, i, len);
        out[i] = (float)v;
    }
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

START_TEST(series_of_degree_at_most_d_are_recovered_to_float_precision)
{
    const hc_trajectory_kind kinds[2] = { HC_TRAJECTORY_POLY, HC_TRAJECTORY_FOURIER };
    const uint32_t ds[3] = { 3, 7, 12 };
    const size_t lens[3] = { 16, 64, 100 };
    test_rng rng = { 11 };
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                uint32_t d = ds[a], terms = hc_trajectory_terms(kinds[k], d);
                size_t len = lens[b];
                double c[16];
                /* every degree up to d, and also a lower degree than d */
                uint32_t used = (b == 1) ? terms - 1 : terms;
                for (uint32_t j = 0; j < 16; j++)
                    c[j] = j < used ? test_rng_gauss(&rng) : 0.0;
                float x[100], fit[16], back[100];
                ref_series(x, kinds[k], c, used, len);
                ck_assert_ok(hc_trajectory_fit(fit, kinds[k], d, x, len));
                for (uint32_t j = 0; j < terms; j++)
                    ck_assert_msg(fabs(fit[j] - c[j]) < 2e-5, "kind %d d %u len %zu c[%u] %g vs %g", k, d, len, j,
                                  (double)fit[j], c[j]);
                ck_assert_ok(hc_trajectory_eval(back, kinds[k], d, fit, len));
                double scale = max_abs(x, len);
                for (size_t i = 0; i < len; i++)
                    ck_assert_msg(fabs(back[i] - x[i]) <= 4e-6 * scale, "kind %d d %u len %zu x[%zu] %g vs %g", k, d,
                                  len, i, (double)back[i], (double)x[i]);
            }
}
END_TEST

START_TEST(fit_is_the_least_squares_solution)
{
    /* the residual of a least-squares fit is orthogonal to every basis function */
    float *x = test_gauss(5, 50, 1.0);
    for (int k = 0; k < 2; k++) {
        hc_trajectory_kind kind = k ? HC_TRAJECTORY_FOURIER : HC_TRAJECTORY_POLY;
        float c[6], y[50];
        ck_assert_ok(hc_trajectory_fit(c, kind, 5, x, 50));
        uint32_t terms = hc_trajectory_terms(kind, 5);
        ck_assert_ok(hc_trajectory_eval(y, kind, 5, c, 50));
        for (uint32_t j = 0; j < terms; j++) {
            double dot = 0;
            for (size_t i = 0; i < 50; i++)
                dot += ((double)x[i] - y[i]) * ref_basis(kind, j, i, 50);
            ck_assert_msg(fabs(dot) < 1e-4, "kind %d residual . basis %u = %g", k, j, dot);
        }
    }
    free(x);
}
END_TEST

START_TEST(short_segments_interpolate_exactly)
{
    float x[3] = { 1.5f, -2.0f, 0.25f }, c[9], y[3];
    for (int k = 0; k < 2; k++) {
        hc_trajectory_kind kind = k ? HC_TRAJECTORY_FOURIER : HC_TRAJECTORY_POLY;
        ck_assert_ok(hc_trajectory_fit(c, kind, 8, x, 3));
        for (uint32_t j = 3; j < hc_trajectory_terms(kind, 8); j++)
            ck_assert_float_eq(c[j], 0.0f);
        ck_assert_ok(hc_trajectory_eval(y, kind, 8, c, 3));
        for (int i = 0; i < 3; i++)
            ck_assert_float_eq_tol(y[i], x[i], 1e-6f);
    }
}
END_TEST

START_TEST(arrays_with_a_short_last_segment)
{
    /* 3 full segments of 32 and a tail of 11, each a different cubic on its own midpoints */
    const size_t n = 3 * 32 + 11;
    float x[107], c[4 * 4], y[107];
    test_rng rng = { 3 };
    double coef[4][4];
    for (int s = 0; s < 4; s++) {
        for (int j = 0; j < 4; j++)
            coef[s][j] = test_rng_gauss(&rng);
        size_t len = s < 3 ? 32 : 11;
        ref_series(x + 32 * s, HC_TRAJECTORY_POLY, coef[s], 4, len);
    }
    ck_assert_ok(hc_trajectory_fit_array(c, HC_TRAJECTORY_POLY, 3, 32, x, n));
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < 4; j++)
            ck_assert_double_eq_tol(c[4 * s + j], coef[s][j], 2e-5);
    ck_assert_ok(hc_trajectory_eval_array(y, HC_TRAJECTORY_POLY, 3, 32, c, n));
    for (size_t i = 0; i < n; i++)
        ck_assert_float_eq_tol(y[i], x[i], 2e-5f);
    /* L larger than n: one short segment */
    ck_assert_ok(hc_trajectory_fit_array(c, HC_TRAJECTORY_POLY, 3, 500, x, 11));
    ck_assert_ok(hc_trajectory_eval_array(y, HC_TRAJECTORY_POLY, 3, 500, c, 11));
    float ref[11];
    ck_assert_ok(hc_trajectory_fit(c + 4, HC_TRAJECTORY_POLY, 3, x, 11));
    ck_assert_ok(hc_trajectory_eval(ref, HC_TRAJECTORY_POLY, 3, c + 4, 11));
    for (int i = 0; i < 11; i++)
        ck_assert_float_eq(y[i], ref[i]);
}
END_TEST

START_TEST(quantised_error_is_within_the_bound)
{
    float *x = test_laplace(9, 64 * 40, 0.05);
    for (int k = 0; k < 2; k++)
        for (uint32_t q = 2; q <= 16; q += 2) {
            hc_trajectory_kind kind = k ? HC_TRAJECTORY_FOURIER : HC_TRAJECTORY_POLY;
            uint32_t d = 9, terms = hc_trajectory_terms(kind, d);
            int32_t top = (1 << (q - 1)) - 1;
            for (int s = 0; s < 40; s++) {
                float c[10], cq[10], y[64], yq[64], step;
                int32_t codes[10];
                ck_assert_ok(hc_trajectory_fit(c, kind, d, x + 64 * s, 64));
                ck_assert_ok(hc_trajectory_quantize(codes, &step, c, terms, q));
                float amax = 0;
                for (uint32_t j = 0; j < terms; j++) {
                    ck_assert(codes[j] >= -top && codes[j] <= top);
                    amax = fmaxf(amax, fabsf(c[j]));
                }
                ck_assert_float_eq_tol(step, amax / top, 1e-6f * amax);
                hc_trajectory_dequantize(cq, codes, step, terms);
                for (uint32_t j = 0; j < terms; j++)
                    ck_assert(fabsf(cq[j] - c[j]) <= 0.5f * step + 2e-7f * amax); /* + float rounding of code * step */
                ck_assert_ok(hc_trajectory_eval(y, kind, d, c, 64));
                ck_assert_ok(hc_trajectory_eval(yq, kind, d, cq, 64));
                for (int i = 0; i < 64; i++)
                    ck_assert(fabsf(yq[i] - y[i]) <= (0.5f * step + 4e-7f * amax) * terms);
            }
        }
    float zero[4] = { 0 }, step = 1;
    int32_t codes[4] = { 1, 1, 1, 1 };
    ck_assert_ok(hc_trajectory_quantize(codes, &step, zero, 4, 8));
    ck_assert_float_eq(step, 0);
    ck_assert_int_eq(codes[0] | codes[1] | codes[2] | codes[3], 0);
    free(x);
}
END_TEST

START_TEST(bad_arguments_are_rejected)
{
    float x[4] = { 1, 2, 3, 4 }, c[70];
    int32_t codes[4];
    float step;
    ck_assert_uint_eq(hc_trajectory_terms(HC_TRAJECTORY_POLY, 7), 8);
    ck_assert_uint_eq(hc_trajectory_terms(HC_TRAJECTORY_FOURIER, 7), 7);
    ck_assert_uint_eq(hc_trajectory_terms(HC_TRAJECTORY_FOURIER, 0), 0);
    ck_assert_uint_eq(hc_trajectory_terms(HC_TRAJECTORY_POLY, 65), 0);
    ck_assert_uint_eq(hc_trajectory_terms((hc_trajectory_kind)7, 3), 0);
    ck_assert_status(hc_trajectory_fit(c, HC_TRAJECTORY_POLY, 65, x, 4), HC_EINVAL, "poly d=65 is outside [0, 64]");
    ck_assert_status(hc_trajectory_fit(c, HC_TRAJECTORY_FOURIER, 0, x, 4), HC_EINVAL, "fourier d=0 is outside [1, 64]");
    ck_assert_status(hc_trajectory_fit(c, (hc_trajectory_kind)5, 2, x, 4), HC_EINVAL, "kind 5 is neither");
    ck_assert_status(hc_trajectory_fit(c, HC_TRAJECTORY_POLY, 2, x, 0), HC_EINVAL, "segment length 0");
    ck_assert_status(hc_trajectory_fit(NULL, HC_TRAJECTORY_POLY, 2, x, 4), HC_EINVAL, "out is NULL");
    ck_assert_status(hc_trajectory_fit(c, HC_TRAJECTORY_POLY, 2, NULL, 4), HC_EINVAL, "x is NULL");
    x[2] = NAN;
    ck_assert_status(hc_trajectory_fit(c, HC_TRAJECTORY_POLY, 2, x, 4), HC_EINVAL, "x[2] = nan is not finite");
    ck_assert_status(hc_trajectory_fit_array(c, HC_TRAJECTORY_POLY, 2, 2, x, 4), HC_EINVAL, "x[2] = nan");
    x[2] = 3;
    ck_assert_status(hc_trajectory_fit_array(c, HC_TRAJECTORY_POLY, 2, 0, x, 4), HC_EINVAL, "segment length L is 0");
    ck_assert_status(hc_trajectory_fit_array(c, HC_TRAJECTORY_POLY, 2, 2, x, 0), HC_EINVAL, "n is 0");
    ck_assert_status(hc_trajectory_eval_array(c, HC_TRAJECTORY_FOURIER, 99, 2, x, 4), HC_EINVAL, "d=99");
    ck_assert_status(hc_trajectory_eval(c, HC_TRAJECTORY_POLY, 2, NULL, 4), HC_EINVAL, "coefs is NULL");
    ck_assert_status(hc_trajectory_quantize(codes, &step, x, 4, 1), HC_EINVAL, "q=1 is outside [2, 16]");
    ck_assert_status(hc_trajectory_quantize(codes, &step, x, 4, 17), HC_EINVAL, "q=17");
    ck_assert_status(hc_trajectory_quantize(codes, &step, x, 0, 8), HC_EINVAL, "terms is 0");
    ck_assert_status(hc_trajectory_quantize(codes, NULL, x, 4, 8), HC_EINVAL, "out_step is NULL");
}
END_TEST

static Suite *trajectory_suite(void)
{
    Suite *s = suite_create("trajectory");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, series_of_degree_at_most_d_are_recovered_to_float_precision);
    tcase_add_test(tc, fit_is_the_least_squares_solution);
    tcase_add_test(tc, short_segments_interpolate_exactly);
    tcase_add_test(tc, arrays_with_a_short_last_segment);
    tcase_add_test(tc, quantised_error_is_within_the_bound);
    tcase_add_test(tc, bad_arguments_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(trajectory_suite());
}
