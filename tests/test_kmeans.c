/* k-means: assignment against brute force, determinism per seed and thread count, weights,
 * empty-cluster re-seeding, subsampling, convergence on separated clusters, errors and OOM. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "harness.h"

static float *clusters(uint64_t seed, size_t n, uint32_t dim, uint32_t k, double spread)
{
    /* k centres on a grid 10 apart, points around them */
    test_rng r = { seed };
    float *p = malloc(sizeof(float) * n * dim);
    for (size_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < dim; t++)
            p[i * dim + t] = (float)(10.0 * (double)((i % k + t) % k) + spread * test_rng_gauss(&r));
    return p;
}

static double objective(const float *p, size_t n, uint32_t dim, const float *c, uint32_t k, const float *w)
{
    uint32_t *idx = malloc(sizeof(uint32_t) * n);
    ck_assert_ok(hc_kmeans_assign(idx, p, n, dim, c, k, 1));
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = 0;
        for (uint32_t t = 0; t < dim; t++) {
            double e = (double)p[i * dim + t] - c[(size_t)idx[i] * dim + t];
            d += e * e;
        }
        s += (w ? w[i] : 1.0) * d;
    }
    free(idx);
    return s;
}

START_TEST(assignment_matches_brute_force)
{
    const size_t n = 5000;
    const uint32_t dim = 6, k = 300;
    float *p = test_gauss(1, n * dim, 1.0), *c = test_gauss(2, (size_t)k * dim, 1.0);
    uint32_t *idx = malloc(sizeof(uint32_t) * n);
    for (uint32_t threads = 1; threads <= 3; threads++) {
        ck_assert_ok(hc_kmeans_assign(idx, p, n, dim, c, k, threads));
        for (size_t i = 0; i < n; i++) {
            double best = INFINITY, got = 0;
            for (uint32_t j = 0; j < k; j++) {
                double d = 0;
                for (uint32_t t = 0; t < dim; t++) {
                    double e = (double)p[i * dim + t] - c[(size_t)j * dim + t];
                    d += e * e;
                }
                if (d < best)
                    best = d;
                if (j == idx[i])
                    got = d;
            }
            /* the expanded distance may pick a near-tie; never a clearly farther centroid */
            ck_assert_msg(got <= best + 1e-4 * (1 + best), "point %zu: got %g, best %g", i, got, best);
        }
    }
    free(p);
    free(c);
    free(idx);
}
END_TEST

/* Distances come in blocks of 256 centroids, with a running minimum per point kept in 16 lanes
 * (centroid c in lane c mod 16). The second half of each codebook copies the first, so every
 * point has an exact tie: in the same lane (k = 32, 512), in another lane (the other k), and in
 * another block (k >= 512). The lower index must win, and every ISA must pick the same. */
START_TEST(ties_go_to_the_lowest_index_across_lanes_and_blocks)
{
    const size_t n = 700;
    const uint32_t dim = 5;
    const uint32_t ks[] = { 7, 16, 32, 40, 300, 512, 600, 1000 };
    float *p = test_gauss(11, n * dim, 1.0);
    uint32_t *idx = malloc(sizeof(uint32_t) * n), *ref = malloc(sizeof(uint32_t) * n);
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        uint32_t k = ks[q], half = (k + 1) / 2;
        float *c = test_gauss(12 + q, (size_t)k * dim, 1.0);
        for (uint32_t j = half; j < k; j++)
            memcpy(c + (size_t)j * dim, c + (size_t)(j - half) * dim, sizeof(float) * dim);
        setenv("HYPERCOMP_ISA", "portable", 1);
        ck_assert_ok(hc_kmeans_assign(ref, p, n, dim, c, k, 1));
        unsetenv("HYPERCOMP_ISA");
        for (uint32_t threads = 1; threads <= 2; threads++) {
            ck_assert_ok(hc_kmeans_assign(idx, p, n, dim, c, k, threads));
            for (size_t i = 0; i < n; i++) {
                ck_assert_each_msg(idx[i] < half, "k = %u, point %zu: centroid %u, a copy of %u", k, i, idx[i],
                                   idx[i] - half);
                ck_assert_each_msg(idx[i] == ref[i], "k = %u, point %zu: %u here, %u in portable C", k, i, idx[i],
                                   ref[i]);
            }
        }
        free(c);
    }
    free(p);
    free(idx);
    free(ref);
}
END_TEST

START_TEST(finds_separated_clusters)
{
    const size_t n = 4000;
    const uint32_t dim = 3, k = 8;
    float *p = clusters(3, n, dim, k, 0.1);
    float c[8 * 3];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = k;
    hc_kmeans_report rep = HC_KMEANS_REPORT_INIT;
    ck_assert_ok(hc_kmeans_learn(c, p, n, dim, NULL, &o, &rep));
    /* every true centre has a centroid within 0.1 */
    for (uint32_t j = 0; j < k; j++) {
        double best = INFINITY;
        for (uint32_t m = 0; m < k; m++) {
            double d = 0;
            for (uint32_t t = 0; t < dim; t++) {
                double e = c[m * dim + t] - 10.0 * ((j + t) % k);
                d += e * e;
            }
            best = d < best ? d : best;
        }
        ck_assert_msg(sqrt(best) < 0.1, "centre %u missed by %g", j, sqrt(best));
    }
    ck_assert_uint_eq(rep.trained_on, n);
    ck_assert(rep.iterations >= 1 && rep.iterations <= o.max_iter);
    ck_assert_double_eq_tol(rep.objective, objective(p, n, dim, c, k, NULL), 1e-3 * rep.objective + 1e-6);
    free(p);
}
END_TEST

START_TEST(same_seed_and_threads_give_the_same_codebook)
{
    const size_t n = 20000;
    const uint32_t dim = 4, k = 64;
    float *p = test_laplace(4, n * dim, 1.0);
    float *a = malloc(sizeof(float) * k * dim), *b = malloc(sizeof(float) * k * dim);
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = k;
    o.threads = 2;
    ck_assert_ok(hc_kmeans_learn(a, p, n, dim, NULL, &o, NULL));
    ck_assert_ok(hc_kmeans_learn(b, p, n, dim, NULL, &o, NULL));
    ck_assert_mem_eq(a, b, sizeof(float) * k * dim);
    o.seed = 99;
    ck_assert_ok(hc_kmeans_learn(b, p, n, dim, NULL, &o, NULL));
    ck_assert(memcmp(a, b, sizeof(float) * k * dim) != 0);
    /* a different seed lands in a different local optimum of about the same quality */
    double oa = objective(p, n, dim, a, k, NULL), ob = objective(p, n, dim, b, k, NULL);
    ck_assert(fabs(oa - ob) < 0.05 * oa);
    free(p);
    free(a);
    free(b);
}
END_TEST

START_TEST(weights_pull_centroids)
{
    /* two clusters, one centroid: the centroid sits at the weighted mean */
    const size_t n = 200;
    float p[200];
    float w[200];
    for (size_t i = 0; i < n; i++) {
        p[i] = i < 100 ? 0.0f : 1.0f;
        w[i] = i < 100 ? 3.0f : 1.0f;
    }
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = 1;
    float c;
    ck_assert_ok(hc_kmeans_learn(&c, p, n, 1, NULL, &o, NULL));
    ck_assert_float_eq_tol(c, 0.5f, 1e-6f);
    ck_assert_ok(hc_kmeans_learn(&c, p, n, 1, w, &o, NULL));
    ck_assert_float_eq_tol(c, 0.25f, 1e-6f);
    /* weighted learning lowers the weighted objective compared with unweighted learning */
    const size_t m = 8000;
    float *q = test_laplace(5, m * 2, 1.0), *qw = malloc(sizeof(float) * m);
    for (size_t i = 0; i < m; i++)
        qw[i] = q[2 * i] > 0 ? 10.0f : 0.1f;
    float cw[16 * 2], cu[16 * 2];
    o.k = 16;
    ck_assert_ok(hc_kmeans_learn(cw, q, m, 2, qw, &o, NULL));
    ck_assert_ok(hc_kmeans_learn(cu, q, m, 2, NULL, &o, NULL));
    ck_assert(objective(q, m, 2, cw, 16, qw) < 0.8 * objective(q, m, 2, cu, 16, qw));
    free(q);
    free(qw);
}
END_TEST

START_TEST(empty_clusters_are_reseeded)
{
    /* 6 distinct points, 6 centroids: every point must end up a centroid of its own even when
     * k-means++ would duplicate (heavy duplicates: 1000 copies of one point) */
    const size_t n = 1005;
    float p[1005 * 2];
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = i < 1000 ? 0.0f : (float)(i - 999);
        p[2 * i + 1] = i < 1000 ? 0.0f : (float)(i - 999) * 2.0f;
    }
    float c[6 * 2];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = 6;
    hc_kmeans_report rep = HC_KMEANS_REPORT_INIT;
    ck_assert_ok(hc_kmeans_learn(c, p, n, 2, NULL, &o, &rep));
    ck_assert_double_eq_tol(objective(p, n, 2, c, 6, NULL), 0.0, 1e-9);
    /* more centroids than distinct points: the spares duplicate, nothing fails */
    float c8[8 * 2];
    o.k = 8;
    ck_assert_ok(hc_kmeans_learn(c8, p, n, 2, NULL, &o, &rep));
    ck_assert_double_eq_tol(objective(p, n, 2, c8, 8, NULL), 0.0, 1e-9);
}
END_TEST

START_TEST(empty_clusters_from_a_sampled_seeding_are_reseeded)
{
    /* 100000 points: all zero but two far ones. k-means++ seeds from a 16384-point sample that
     * almost surely misses a far point, so it must duplicate a seed; the duplicate's cluster is
     * empty and re-seeding moves it onto the missed point. Without re-seeding the objective
     * would stay at least 100. */
    const size_t n = 100000;
    float *p = calloc(n, sizeof(float));
    p[n / 3] = 10.0f;
    p[2 * n / 3] = 20.0f;
    float c[3];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = 3;
    uint32_t reseeded = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        o.seed = seed;
        hc_kmeans_report rep = HC_KMEANS_REPORT_INIT;
        ck_assert_ok(hc_kmeans_learn(c, p, n, 1, NULL, &o, &rep));
        ck_assert_double_eq_tol(objective(p, n, 1, c, 3, NULL), 0.0, 1e-9);
        reseeded += rep.reseeded;
    }
    ck_assert_uint_gt(reseeded, 0);
    free(p);
}
END_TEST

START_TEST(subsampled_training_stays_close)
{
    const size_t n = 60000;
    const uint32_t dim = 2, k = 16;
    float *p = test_gauss(7, n * dim, 1.0);
    float full[32], sub[32];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = k;
    ck_assert_ok(hc_kmeans_learn(full, p, n, dim, NULL, &o, NULL));
    o.max_points = 4000;
    hc_kmeans_report rep = HC_KMEANS_REPORT_INIT;
    ck_assert_ok(hc_kmeans_learn(sub, p, n, dim, NULL, &o, &rep));
    ck_assert_uint_eq(rep.trained_on, 4000);
    double of = objective(p, n, dim, full, k, NULL), os = objective(p, n, dim, sub, k, NULL);
    ck_assert_msg(os < 1.03 * of, "subsampled objective %g vs full %g", os, of);
    /* 2-D Gaussian, 16 cells (2 bits per dimension): a good vector quantiser beats the best
     * scalar one (Lloyd-Max, MSE 0.1175 per dimension) */
    ck_assert_msg(of / (2.0 * n) < 0.1175, "MSE per dimension %g", of / (2.0 * n));
    free(p);
}
END_TEST

START_TEST(errors_are_reported)
{
    float p[4] = { 0, 1, 2, 3 }, c[4];
    uint32_t idx[4];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = 2;
    ck_assert_status(hc_kmeans_learn(NULL, p, 4, 1, NULL, &o, NULL), HC_EINVAL, "out is NULL");
    ck_assert_status(hc_kmeans_learn(c, p, 0, 1, NULL, &o, NULL), HC_EINVAL, "no points");
    ck_assert_status(hc_kmeans_learn(c, p, 4, 0, NULL, &o, NULL), HC_EINVAL, "dimension 0");
    o.k = 0;
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, NULL, &o, NULL), HC_EINVAL, "k = 0");
    o.k = 70000;
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, NULL, &o, NULL), HC_EINVAL, "k = 70000");
    o.k = 2;
    float w[4] = { 1, -1, 1, 1 };
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, w, &o, NULL), HC_EINVAL, "weight 1 is -1");
    float z[4] = { 0, 0, 0, 0 };
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, z, &o, NULL), HC_EINVAL, "all 4 weights are zero");
    o.tol = NAN;
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, NULL, &o, NULL), HC_EINVAL, "tol");
    o.tol = 1e-4f;
    o.struct_size = sizeof o + 8;
    ck_assert_status(hc_kmeans_learn(c, p, 4, 1, NULL, &o, NULL), HC_EVERSION, "larger");
    ck_assert_status(hc_kmeans_assign(idx, p, 4, 1, NULL, 2, 1), HC_EINVAL, "centroids is NULL");
    ck_assert_status(hc_kmeans_assign(idx, p, 4, 300, c, 2, 1), HC_EINVAL, "dimension 300");
    hc_kmeans_options d;
    ck_assert_ok(hc_kmeans_options_init(&d, sizeof d));
    ck_assert_uint_eq(d.k, 256);
    ck_assert_status(hc_kmeans_options_init(&d, sizeof d + 4), HC_EVERSION, "larger");
}
END_TEST

START_TEST(out_of_memory_is_reported)
{
    const size_t n = 3000;
    float *p = test_gauss(8, n * 2, 1.0);
    float c[32];
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    o.k = 16;
    o.max_points = 1000;
    int failures = 0;
    for (long i = 1; i < 40; i++) {
        hci_alloc_fail_after(i);
        int rc = hc_kmeans_learn(c, p, n, 2, NULL, &o, NULL);
        hci_alloc_fail_after(0);
        if (rc == HC_ENOMEM)
            failures++;
        else
            ck_assert_int_eq(rc, HC_OK);
    }
    ck_assert(failures > 3);
    free(p);
}
END_TEST

static Suite *kmeans_suite(void)
{
    Suite *s = suite_create("kmeans");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, assignment_matches_brute_force);
    tcase_add_test(tc, ties_go_to_the_lowest_index_across_lanes_and_blocks);
    tcase_add_test(tc, finds_separated_clusters);
    tcase_add_test(tc, same_seed_and_threads_give_the_same_codebook);
    tcase_add_test(tc, weights_pull_centroids);
    tcase_add_test(tc, empty_clusters_are_reseeded);
    tcase_add_test(tc, empty_clusters_from_a_sampled_seeding_are_reseeded);
    tcase_add_test(tc, subsampled_training_stays_close);
    tcase_add_test(tc, errors_are_reported);
    tcase_add_test(tc, out_of_memory_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(kmeans_suite());
}
