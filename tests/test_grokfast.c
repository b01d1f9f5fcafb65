/* Grokfast-Adam: the filter and Adam step against hand-computed values, convergence on a
 * quadratic, and option errors. */
#include <math.h>

#include "harness.h"

START_TEST(first_steps_match_hand_computation)
{
    hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
    o.lr = 0.1f;
    hc_grokfast *g;
    ck_assert_ok(hc_grokfast_new(&g, 1, &o));
    float p = 1.0f, grad = 0.5f;
    /* step 1: ema = g = 0.5; g_hat = 0.5 + 2 * 0.5 = 1.5; Adam's first step moves by lr * sign */
    ck_assert_ok(hc_grokfast_step(g, &p, &grad));
    ck_assert_float_eq_tol(p, 0.9f, 1e-6f);
    /* step 2 with g = -1: ema = 0.98*0.5 + 0.02*(-1) = 0.47; g_hat = -1 + 0.94 = -0.06 */
    grad = -1.0f;
    ck_assert_ok(hc_grokfast_step(g, &p, &grad));
    double m = 0.9 * (0.1 * 1.5) + 0.1 * (-0.06);
    double v = 0.999 * (0.001 * 2.25) + 0.001 * 0.0036;
    double expect = 0.9 - 0.1 * (m / (1 - 0.81)) / (sqrt(v / (1 - 0.998001)) + 1e-8);
    ck_assert_float_eq_tol(p, (float)expect, 1e-6f);
    ck_assert_uint_eq(hc_grokfast_steps(g), 2);
    hc_grokfast_free(g);
}
END_TEST

START_TEST(filter_off_is_plain_adam)
{
    hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
    o.lr = 0.1f;
    o.filter = 0;
    hc_grokfast *g;
    ck_assert_ok(hc_grokfast_new(&g, 1, &o));
    float p = 1.0f, grad = 0.5f;
    ck_assert_ok(hc_grokfast_step(g, &p, &grad));
    ck_assert_float_eq_tol(p, 0.9f, 1e-6f);
    grad = -1.0f;
    ck_assert_ok(hc_grokfast_step(g, &p, &grad));
    double m = 0.9 * 0.05 + 0.1 * (-1.0), v = 0.999 * 0.00025 + 0.001;
    double expect = 0.9 - 0.1 * (m / 0.19) / (sqrt(v / (1 - 0.998001)) + 1e-8);
    ck_assert_float_eq_tol(p, (float)expect, 1e-6f);
    hc_grokfast_free(g);
}
END_TEST

START_TEST(converges_on_a_quadratic_with_and_without_filter)
{
    for (uint32_t filter = 0; filter <= 1; filter++) {
        hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
        o.lr = 0.05f;
        o.filter = filter;
        hc_grokfast *g;
        ck_assert_ok(hc_grokfast_new(&g, 3, &o));
        float p[3] = { 3, -2, 1 }, target[3] = { 0.5f, 0.25f, -1 }, grad[3];
        for (int it = 0; it < 3000; it++) {
            for (int i = 0; i < 3; i++)
                grad[i] = 2 * (p[i] - target[i]) * (float)(i + 1);
            ck_assert_ok(hc_grokfast_step(g, p, grad));
        }
        for (int i = 0; i < 3; i++)
            ck_assert_float_eq_tol(p[i], target[i], 1e-2f);
        hc_grokfast_free(g);
    }
}
END_TEST

START_TEST(bad_options_and_gradients_are_rejected)
{
    hc_grokfast *g = NULL;
    hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
    o.alpha = 1.0f;
    ck_assert_status(hc_grokfast_new(&g, 4, &o), HC_EINVAL, "alpha 1 must lie in [0, 1)");
    o = (hc_grokfast_options)HC_GROKFAST_OPTIONS_INIT;
    o.lambda = -1;
    ck_assert_status(hc_grokfast_new(&g, 4, &o), HC_EINVAL, "lambda -1");
    o = (hc_grokfast_options)HC_GROKFAST_OPTIONS_INIT;
    o.struct_size = sizeof o + 4;
    ck_assert_status(hc_grokfast_new(&g, 4, &o), HC_EVERSION, NULL);
    ck_assert_status(hc_grokfast_new(&g, 0, NULL), HC_EINVAL, "n_params is 0");
    ck_assert_ok(hc_grokfast_new(&g, 2, NULL));
    float p[2] = { 1, 2 }, grad[2] = { 0, NAN };
    ck_assert_status(hc_grokfast_step(g, p, grad), HC_EINVAL, "grad[1] = nan is not finite");
    ck_assert_float_eq(p[0], 1);
    ck_assert_status(hc_grokfast_step(g, NULL, grad), HC_EINVAL, "params is NULL");
    hc_grokfast_free(g);
    hc_grokfast_free(NULL);
    ck_assert_ok(hc_grokfast_options_init(&o, sizeof o));
    ck_assert_float_eq(o.alpha, 0.98f);
    ck_assert_float_eq(o.lambda, 2.0f);
}
END_TEST

static Suite *grokfast_suite(void)
{
    Suite *s = suite_create("grokfast");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, first_steps_match_hand_computation);
    tcase_add_test(tc, filter_off_is_plain_adam);
    tcase_add_test(tc, converges_on_a_quadratic_with_and_without_filter);
    tcase_add_test(tc, bad_options_and_gradients_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(grokfast_suite());
}
