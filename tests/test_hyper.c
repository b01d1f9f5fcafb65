/* The trajectory compressors: the ergodic nearest-point search against brute force, the chosen
 * winding lattices against known bounds, exact payload layouts, round trips with their true
 * error, matvec, hostile payloads, out of memory and bad specs. */
#include <math.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/bitpack.h"
#include "common/bytes.h"
#include "codec.h"
#include "common/crc32c.h"
#include "ergodic.h"
#include "harness.h"
#include "hypercomp/hyper.h"
#include "hypercomp/trajectory.h"

#define PI 3.14159265358979323846

static hc_compressor *make(const char *spec)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    return c;
}

static double dist_sq(const hci_erg_line *l, uint32_t k, const double *t)
{
    uint32_t x[HCI_ERG_MAX_N];
    hci_erg_point(l, k, x);
    double d = 0;
    for (uint32_t j = 0; j < l->n; j++)
        d += (x[j] - t[j]) * (x[j] - t[j]);
    return d;
}

START_TEST(nearest_point_matches_brute_force)
{
    const struct {
        uint32_t n, npts;
    } cases[] = { { 2, 97 }, { 2, 1000 }, { 2, 2048 }, { 3, 500 }, { 3, 4096 }, { 4, 3000 }, { 5, 1024 } };
    test_rng rng = { 77 };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int slope = 0; slope < 2; slope++) {
            uint32_t n = cases[ci].n, npts = cases[ci].npts, gen[HCI_ERG_MAX_N];
            ck_assert_ok(hci_erg_choose_gen(gen, n, npts, (hci_erg_slope)slope));
            hci_erg_line l;
            ck_assert_ok(hci_erg_line_init(&l, n, npts, gen));
            for (int trial = 0; trial < 300; trial++) {
                double t[HCI_ERG_MAX_N];
                for (uint32_t j = 0; j < n; j++) {
                    double u = test_rng_uniform(&rng);
                    /* a third of the coordinates sit on or near a face of the box */
                    int face = trial % 3 == 0 && j == (uint32_t)trial % n;
                    if (face)
                        u = u < 0.5 ? 0.002 * u : 1 - 0.002 * (1 - u);
                    t[j] = u * npts - 0.5;
                }
                uint32_t fast = hci_erg_nearest(&l, t), slow = hci_erg_nearest_brute(&l, t);
                ck_assert_uint_lt(fast, npts);
                double df = dist_sq(&l, fast, t), ds = dist_sq(&l, slow, t);
                ck_assert_msg(df <= ds * (1 + 1e-12) + 1e-12, "n %u N %u slope %d: fast %u (%g) brute %u (%g)", n,
                              npts, slope, fast, df, slow, ds);
                /* ties aside, the very same point */
                if (df < ds * (1 - 1e-9) || df > ds * (1 + 1e-9) || fast == slow)
                    continue;
                ck_assert_double_eq_tol(df, ds, 1e-9 * (ds + 1));
            }
        }
}
END_TEST

START_TEST(line_points_are_the_distinct_lattice_points_of_the_box)
{
    uint32_t gen[3] = { 1, 0, 0 };
    ck_assert_ok(hci_erg_choose_gen(gen, 3, 343, HCI_ERG_SLOPE_PAPER));
    /* the paper's slope: m = ceil(343^(1/3)) = 7, generator (1, 7, 49) */
    ck_assert_uint_eq(gen[1], 7);
    ck_assert_uint_eq(gen[2], 49);
    hci_erg_line l;
    ck_assert_ok(hci_erg_line_init(&l, 3, 343, gen));
    for (uint32_t k = 0; k < 343; k++) {
        uint32_t x[3];
        hci_erg_point(&l, k, x);
        ck_assert_uint_eq(x[0], k);
        ck_assert_uint_eq(x[1], (k * 7) % 343);
        ck_assert_uint_eq(x[2], (k * 49) % 343);
        /* every point is its own nearest point */
        double t[3] = { x[0], x[1], x[2] };
        ck_assert_uint_eq(hci_erg_nearest(&l, t), k);
    }
    /* the reduced basis spans a lattice of determinant N^(n-1) */
    double det = l.bstar_sq[0] * l.bstar_sq[1] * l.bstar_sq[2];
    ck_assert_double_eq_tol(sqrt(det), 343.0 * 343.0, 1e-6 * 343 * 343);
    /* the modular products of the decoder agree with 64-bit division near and past 2^26 points */
    const uint32_t big[3] = { (1u << 26) - 3, (1u << 26), (1u << 26) + 7 };
    test_rng rng = { 5 };
    for (int i = 0; i < 3; i++) {
        uint32_t g2[2] = { 1, big[i] - 12345 };
        hci_erg_line bl;
        ck_assert_ok(hci_erg_line_init(&bl, 2, big[i], g2));
        for (int t = 0; t < 2000; t++) {
            uint32_t k = t < 2 ? (t ? big[i] - 1 : 0) : (uint32_t)(test_rng_uniform(&rng) * big[i]), x[2];
            hci_erg_point(&bl, k, x);
            ck_assert_uint_eq(x[0], k);
            ck_assert_uint_eq(x[1], (uint32_t)(((uint64_t)k * g2[1]) % big[i]));
        }
    }
    uint32_t bad[2] = { 2, 1 };
    ck_assert_status(hci_erg_line_init(&l, 2, 10, bad), HC_EINVAL, "must start with 1");
    bad[0] = 1;
    bad[1] = 10;
    ck_assert_status(hci_erg_line_init(&l, 2, 10, bad), HC_EINVAL, "generator 1 = 10 is not below the 10 points");
    ck_assert_status(hci_erg_line_init(&l, 9, 10, bad), HC_EINVAL, "n=9 is outside [2, 8]");
}
END_TEST

START_TEST(searched_slope_is_near_hexagonal)
{
    /* A lattice with N points per unit area (determinant N) has a shortest vector of at most
     * sqrt(2 N / sqrt 3), reached only by the hexagonal lattice. The paper's slope gives a sheared
     * square grid, whose shortest vector is about sqrt(N); the searched generator comes within a
     * few percent of the hexagonal bound (for N = 987: g = 318, 1098 against 1139.7). */
    const uint32_t sizes[3] = { 987, 2048, 8192 };
    for (int i = 0; i < 3; i++) {
        uint32_t npts = sizes[i], gen[2], gp[2];
        ck_assert_ok(hci_erg_choose_gen(gen, 2, npts, HCI_ERG_SLOPE_SEARCH));
        ck_assert_ok(hci_erg_choose_gen(gp, 2, npts, HCI_ERG_SLOPE_PAPER));
        ck_assert_uint_eq(gp[1], (uint32_t)ceil(sqrt((double)npts)));
        hci_erg_line best, paper;
        ck_assert_ok(hci_erg_line_init(&best, 2, npts, gen));
        ck_assert_ok(hci_erg_line_init(&paper, 2, npts, gp));
        double hex = 2.0 * npts / sqrt(3.0);
        ck_assert(hci_erg_shortest_sq(&best) <= hex * (1 + 1e-9));
        ck_assert_msg(hci_erg_shortest_sq(&best) > 0.95 * hex, "N %u: %g", npts, hci_erg_shortest_sq(&best));
        ck_assert(hci_erg_shortest_sq(&paper) < 0.9 * hex);   /* 0.87, 0.90, 0.86 of it */
        /* a brute-force check that the reduced basis really holds the shortest vector */
        double shortest = INFINITY;
        for (uint32_t k = 1; k < npts; k++) {
            uint32_t x[2];
            hci_erg_point(&best, k, x);
            for (int dx = -1; dx <= 0; dx++)
                for (int dy = -1; dy <= 0; dy++) {
                    double a = x[0] + dx * (double)npts, b = x[1] + dy * (double)npts;
                    shortest = fmin(shortest, a * a + b * b);
                }
        }
        ck_assert_double_eq_tol(hci_erg_shortest_sq(&best), shortest, 1e-9);
    }
}
END_TEST

/* ---- payload layouts ---- */

static uint8_t *serialize(const hc_ctensor *ct, size_t *n)
{
    *n = hc_ctensor_serialized_size(ct);
    uint8_t *buf = malloc(*n);
    ck_assert_ok(hc_ctensor_serialize(ct, buf, *n));
    return buf;
}

static void refresh_crc(uint8_t *buf, size_t n)
{
    hci_put_u32(buf + n - 4, hci_crc32c(0, buf, n - 4));
}

START_TEST(poly_payload_layout_of_a_tiny_tensor)
{
    /* 10 values, L = 4, d = 1, q = 4: segments of 4, 4 and 2 values, 2 codes each */
    float w[10] = { 0.5f, 1.0f, 1.5f, 2.5f, -1, -1, -1, 3, 0.25f, -0.75f };
    hc_tensor_view v = test_view2("w", w, 2, 5);
    hc_compressor *c = make("hyper:poly,L=4,d=1,q=4");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:poly,L=4,d=1,q=4");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    size_t n;
    uint8_t *buf = serialize(ct, &n);
    /* header 24 + 2 dims + params 8 + 3 steps + ceil(6 codes * 4 bits / 8) + CRC */
    ck_assert_uint_eq(n, 24 + 16 + 8 + 12 + 3 + 4);
    const uint8_t *p = buf + 40;
    ck_assert_uint_eq(hci_get_u32(p), 4);
    ck_assert_uint_eq(p[4], 0);
    ck_assert_uint_eq(p[5], 1);
    ck_assert_uint_eq(p[6], 4);
    ck_assert_uint_eq(p[7], 0);
    const uint8_t *pay = p + 8;
    uint32_t expect_codes[6];
    for (int s = 0; s < 3; s++) {
        float coef[2], step;
        int32_t codes[2];
        ck_assert_ok(hc_trajectory_fit(coef, HC_TRAJECTORY_POLY, 1, w + 4 * s, s < 2 ? 4 : 2));
        ck_assert_ok(hc_trajectory_quantize(codes, &step, coef, 2, 4));
        ck_assert_float_eq(hci_get_f32(pay + 4 * s), step);
        expect_codes[2 * s] = (uint32_t)(codes[0] + 7);
        expect_codes[2 * s + 1] = (uint32_t)(codes[1] + 7);
    }
    /* codes are 4-bit, LSB first: byte 0 = code0 | code1 << 4 */
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(pay[12 + i], expect_codes[2 * i] | (expect_codes[2 * i + 1] << 4));
    /* segment 0 (0.5 1 1.5 2.5 at t = -3/4 -1/4 1/4 3/4) fits c0 = 1.375, c1 = 1.3; the step is
     * 1.375 / 7, so the codes are 7 and round(6.62) = 7, stored with the bias 7 */
    ck_assert_uint_eq(expect_codes[0], 7 + 7);
    ck_assert_uint_eq(expect_codes[1], 7 + 7);
    ck_assert_float_eq_tol(hci_get_f32(pay), 1.375f / 7, 1e-7f);
    float dec[10];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
    float step0 = 1.375f / 7;
    ck_assert_float_eq_tol(dec[0], 7 * step0 - 0.75f * 7 * step0, 1e-6f);
    ck_assert_float_eq_tol(dec[3], 7 * step0 + 0.75f * 7 * step0, 1e-6f);
    free(buf);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
}
END_TEST

START_TEST(ergodic_payload_layout_of_a_tiny_tensor)
{
    float w[7] = { 0.1f, -0.2f, 0.05f, 0.3f, -0.1f, 0.0f, 4.0f };
    hc_tensor_view v = test_view2("w", w, 1, 7);
    hc_compressor *c = make("hyper:ergodic,n=2,bits=6,rings=1,slope=paper,spacing=uniform");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    size_t n;
    uint8_t *buf = serialize(ct, &n);
    const uint8_t *p = buf + 24 + 16;
    /* params: n, rings, bits, spacing, N0, N1, side, far, centroid x2, generators x2 x2 */
    ck_assert_uint_eq(n, 24 + 16 + (20 + 24) + 3 + 4);   /* 4 groups of 6 bits = 3 bytes */
    ck_assert_uint_eq(p[0], 2);
    ck_assert_uint_le(p[1], 1);
    ck_assert_uint_eq(p[2], 6);
    ck_assert_uint_eq(p[3], 0);
    uint32_t n0 = hci_get_u32(p + 4), n1 = hci_get_u32(p + 8);
    ck_assert_uint_eq(n0 + p[1] * n1, p[1] ? 64 - (64 % 2) : 64);
    /* the centroid of the groups (0.1, 0.3, -0.1, 4.0) and (-0.2, 0.05, 0.0, pad = centroid) */
    ck_assert_float_eq_tol(hci_get_f32(p + 20), (0.1f + 0.05f - 0.1f + 4.0f) / 4, 1e-6f);
    ck_assert_float_eq_tol(hci_get_f32(p + 24), (-0.2f + 0.3f + 0.0f) / 3, 1e-6f);
    ck_assert_uint_eq(hci_get_u32(p + 28), 1);
    hci_erg_code code;
    memset(&code, 0, sizeof code);
    code.n = 2;
    code.rings = p[1];
    code.bits = p[2];
    code.spacing = HCI_ERG_RINGS_UNIFORM;
    code.scale = hci_get_f32(p + 12);
    code.far = hci_get_f32(p + 16);
    code.center[0] = hci_get_f32(p + 20);
    code.center[1] = hci_get_f32(p + 24);
    hci_erg_code_finish(&code);
    uint32_t g0[2] = { hci_get_u32(p + 28), hci_get_u32(p + 32) }, g1[2] = { hci_get_u32(p + 36), hci_get_u32(p + 40) };
    ck_assert_ok(hci_erg_line_init(&code.line, 2, n0, g0));
    if (code.rings)
        ck_assert_ok(hci_erg_line_init(&code.ring_line, 2, n1, g1));
    /* each 6-bit index, LSB first, is the code of its group */
    const uint8_t *pay = p + 44;
    float dec[7];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
    for (int g = 0; g < 4; g++) {
        float grp[2] = { w[2 * g], 2 * g + 1 < 7 ? w[2 * g + 1] : code.center[1] };
        uint32_t idx = hci_get_bits(pay, (size_t)g, 6);
        ck_assert_uint_eq(idx, hci_erg_encode_group(&code, grp));
        float r[2];
        hci_erg_decode_group(&code, idx, r);
        ck_assert_float_eq(dec[2 * g], r[0]);
        if (2 * g + 1 < 7)
            ck_assert_float_eq(dec[2 * g + 1], r[1]);
    }
    free(buf);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
}
END_TEST

/* ---- round trips ---- */

static double round_trip(const char *spec, const float *w, int64_t rows, int64_t cols, double *bpw)
{
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_compressor *c = make(spec);
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    float *dec = malloc(sizeof(float) * (size_t)(rows * cols));
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * (size_t)(rows * cols)));
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    double rel = test_rel_rmse(w, dec, (size_t)(rows * cols));
    ck_assert_double_eq_tol(s.rel_rmse, rel, 1e-9 + 1e-6 * rel);   /* the reported error is the true one */
    if (bpw)
        *bpw = s.bpw;
    free(dec);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    return rel;
}

/* A smooth tensor: rows of decays, slow sinusoids and ramps, as state-space decay tables and
 * low-frequency position tables. */
static float *smooth_tensor(int64_t rows, int64_t cols)
{
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++) {
            double t = (double)i;
            double v = r % 3 == 0 ? exp(-t / (40.0 + r)) : (r % 3 == 1 ? sin(t * 0.01 * (1 + r % 5) + r) : 1e-3 * t - 0.2);
            w[r * cols + i] = (float)v;
        }
    return w;
}

START_TEST(smooth_signals_are_recovered_to_float_precision)
{
    const int64_t rows = 12, cols = 256;
    float *w = smooth_tensor(rows, cols);
    double bpw;
    double rel = round_trip("hyper:poly,L=64,d=15,q=32", w, rows, cols, &bpw);
    ck_assert_msg(rel < 3e-7, "poly on smooth rows: %g", rel);
    ck_assert(bpw < 8.6);   /* 16 float coefficients per 64 values + headers */
    /* quantised to 16 bits the same fit loses about 2^-15 of each segment's largest coefficient */
    rel = round_trip("hyper:poly,L=64,d=15,q=16", w, rows, cols, &bpw);
    ck_assert_msg(rel < 3e-5, "poly q16 on smooth rows: %g", rel);
    /* cosine sums on the DCT-II grid are in the Fourier span: exact to float precision */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++) {
            int64_t k = i % 64;
            w[r * cols + i] = (float)(0.3 * cos(PI * (1 + r % 4) * (k + 0.5) / 64) + 0.1 * cos(PI * 7 * (k + 0.5) / 64) - 0.05);
        }
    rel = round_trip("hyper:fourier,L=64,d=8,q=32", w, rows, cols, NULL);
    ck_assert_msg(rel < 3e-7, "fourier on cosine sums: %g", rel);
    /* a generic smooth decay is not periodic: the cosine series converges only like 1/k^2 */
    float *dec = smooth_tensor(rows, cols);
    rel = round_trip("hyper:fourier,L=64,d=16,q=32", dec, rows, cols, NULL);
    ck_assert_msg(rel > 1e-5 && rel < 1e-2, "fourier on smooth non-periodic rows: %g", rel);
    free(dec);
    free(w);
}
END_TEST

/* Heavy-tailed weights like a trained network's: Laplace body, 0.5% outliers 8-30x larger. */
static float *heavy_tailed(uint64_t seed, size_t n)
{
    float *w = test_laplace(seed, n, 0.02);
    test_rng rng = { seed * 31 + 1 };
    for (size_t i = 0; i < n; i++)
        if (test_rng_uniform(&rng) < 0.005)
            w[i] *= (float)(8 + 22 * test_rng_uniform(&rng));
    return w;
}

START_TEST(round_trips_report_their_true_error)
{
    const int64_t rows = 96, cols = 160;
    float *g = test_gauss(21, (size_t)(rows * cols), 0.05);
    float *h = heavy_tailed(22, (size_t)(rows * cols));
    double bpw, rel;
    /* ergodic at 13 bits per pair: about 6.5 bpw; a 6.5-bit uniform scalar quantiser reaches
     * about 0.02 on Gaussian data, and rings keep heavy tails close to that */
    rel = round_trip("hyper:ergodic,n=2,bits=13", g, rows, cols, &bpw);
    ck_assert_msg(rel < 0.022 && bpw < 6.6, "ergodic n2 gauss: %g at %g bpw", rel, bpw);
    rel = round_trip("hyper:ergodic,n=2,bits=13", h, rows, cols, &bpw);
    ck_assert_msg(rel < 0.035, "ergodic n2 heavy: %g", rel);
    double rel_paper = round_trip("hyper:ergodic,n=2,bits=13,slope=paper,spacing=uniform", h, rows, cols, NULL);
    ck_assert_msg(rel < rel_paper, "geometric rings and searched slope %g vs the paper's %g", rel, rel_paper);
    /* the preset codes quadruples at 26 bits: the same 6.5 bpw with less error */
    double rel4 = round_trip("hyper:ergodic", h, rows, cols, &bpw);
    ck_assert_msg(rel4 < rel && bpw < 6.6, "ergodic preset heavy: %g at %g bpw", rel4, bpw);
    /* fewer bits, more error, in order */
    double r10 = round_trip("hyper:ergodic,n=2,bits=10", g, rows, cols, NULL);
    double r7 = round_trip("hyper:ergodic,n=2,bits=7", g, rows, cols, NULL);
    ck_assert(r7 > r10 && r10 > 0.022);
    /* poly and fourier on random weights: the fit keeps only the slow part and loses badly */
    rel = round_trip("hyper:poly", g, rows, cols, &bpw);
    ck_assert_msg(rel > 0.8 && rel < 1.0, "poly on gaussian: %g", rel);
    /* 240 segments of a float step + 8 codes of 8 bits, 8 parameter bytes, 40 header, 4 CRC */
    ck_assert_double_eq_tol(bpw, 8.0 * (240 * (4 + 8) + 8 + 40 + 4) / (rows * cols), 1e-12);
    rel = round_trip("hyper:fourier", g, rows, cols, NULL);
    ck_assert_msg(rel > 0.8 && rel < 1.0, "fourier on gaussian: %g", rel);
    free(g);
    free(h);
}
END_TEST

START_TEST(matvec_matches_the_decoded_matrix)
{
    const char *specs[] = { "hyper:poly,L=32,d=5,q=8", "hyper:poly,L=48,d=5,q=8", "hyper:fourier,L=40,d=6,q=32",
                            "hyper:ergodic,n=2,bits=11", "hyper:ergodic,n=3,bits=14", "hyper:ergodic,n=4,bits=20" };
    const int64_t rows = 37, cols = 160;
    float *w = heavy_tailed(5, (size_t)(rows * cols));
    float *x = test_gauss(6, (size_t)cols, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        hc_compressor *c = make(specs[k]);
        hc_ctensor *ct;
        ck_assert_ok(hc_compress(&ct, c, &v));
        float *dec = malloc(sizeof(float) * rows * cols), y[37];
        ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * rows * cols));
        for (uint32_t t = 1; t <= 3; t++) {
            ck_assert_ok(hc_ctensor_set_threads(ct, t));
            ck_assert_ok(hc_ctensor_matvec(ct, x, y));
            for (int64_t r = 0; r < rows; r++) {
                double acc = 0, mag = 0;
                for (int64_t i = 0; i < cols; i++) {
                    acc += (double)dec[r * cols + i] * x[i];
                    mag += fabs((double)dec[r * cols + i] * x[i]);
                }
                ck_assert_msg(fabs(y[r] - acc) <= 1e-5 * mag + 1e-6, "%s row %lld: %g vs %g", specs[k], (long long)r,
                              (double)y[r], acc);
            }
        }
        /* decoding any flat sub-range (across segment, group and row boundaries) gives the same values */
        test_rng rng = { 40 + k };
        float part[300];
        for (int trial = 0; trial < 50; trial++) {
            int64_t first = (int64_t)(test_rng_uniform(&rng) * (rows * cols - 1));
            int64_t count = 1 + (int64_t)(test_rng_uniform(&rng) * 299);
            if (first + count > rows * cols)
                count = rows * cols - first;
            ck_assert_ok(ct->codec->decode(ct, first, count, part));
            ck_assert_mem_eq(part, dec + first, sizeof(float) * (size_t)count);
        }
        free(dec);
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    free(w);
    free(x);
}
END_TEST

START_TEST(degenerate_tensors)
{
    static float zeros[999], consts[999], huge[1000], one[1] = { -3.25f };
    for (int i = 0; i < 1000; i++) {
        if (i < 999)
            consts[i] = 0.5f;
        huge[i] = (float)(i % 7 - 3) * 1e38f;
    }
    const char *specs[] = { "hyper:ergodic", "hyper:ergodic,n=2,bits=13", "hyper:poly", "hyper:fourier,q=32" };
    for (int k = 0; k < 4; k++) {
        hc_compressor *c = make(specs[k]);
        const float *data[4] = { zeros, consts, one, huge };
        const int64_t len[4] = { 999, 999, 1, 1000 };
        for (int d = 0; d < 4; d++) {
            hc_tensor_view v = test_view2("w", data[d], 1, len[d]);
            hc_ctensor *ct;
            ck_assert_ok(hc_compress(&ct, c, &v));
            static float dec[1000];
            ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
            hc_stats s = HC_STATS_INIT;
            ck_assert_ok(hc_ctensor_stats(&s, ct));
            if (d < 3) {
                /* constant tensors come back exactly, the ergodic ones at one bit per group */
                ck_assert_mem_eq(dec, data[d], sizeof(float) * (size_t)len[d]);
                if (k == 0 && d < 2)
                    ck_assert_uint_eq(s.bits, 8u * (24 + 16 + 68 + (250 + 7) / 8 + 4));
            } else {
                ck_assert_msg(isfinite(s.rel_rmse) && s.rel_rmse < (k < 2 ? 0.03 : 1.0), "%s huge: %g", specs[k],
                              s.rel_rmse);
            }
            hc_ctensor_free(ct);
        }
        hc_compressor_free(c);
    }
}
END_TEST

/* ---- hostile payloads ---- */

static void expect_attach_failure(const uint8_t *orig, size_t n, size_t off, const uint8_t *bytes, size_t len,
                                  const char *needle)
{
    uint8_t *buf = malloc(n);
    memcpy(buf, orig, n);
    memcpy(buf + off, bytes, len);
    refresh_crc(buf, n);
    hc_ctensor *back = (hc_ctensor *)1;
    ck_assert_status(hc_ctensor_deserialize(&back, buf, n), HC_EFORMAT, needle);
    ck_assert_ptr_null(back);
    free(buf);
}

START_TEST(hostile_payloads_are_rejected)
{
    const char *specs[] = { "hyper:poly,L=16,d=3,q=6", "hyper:fourier,L=16,d=3,q=32", "hyper:ergodic,n=2,bits=9" };
    float *w = heavy_tailed(8, 100);
    hc_tensor_view v = test_view2("w", w, 4, 25);
    for (int k = 0; k < 3; k++) {
        hc_compressor *c = make(specs[k]);
        hc_ctensor *ct, *back;
        ck_assert_ok(hc_compress(&ct, c, &v));
        size_t n;
        uint8_t *buf = serialize(ct, &n);
        ck_assert_ok(hc_ctensor_deserialize(&back, buf, n));
        float a[100], b[100];
        ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, a, sizeof a));
        ck_assert_ok(hc_ctensor_decode(back, HC_DTYPE_F32, b, sizeof b));
        ck_assert_mem_eq(a, b, sizeof a);
        hc_ctensor_free(back);
        test_expect_hostile_serialised(buf, n, 1, "hyper tensor");
        /* consistent CRC but inconsistent contents: attach must catch each */
        size_t po = 24 + 16;
        uint8_t bytes[8];
        /* a shape of 2^60 values, whose sizes would overflow */
        hci_put_u64(bytes, 1ull << 58);
        expect_attach_failure(buf, n, 24 + 8, bytes, 8, k < 2 ? "has too many segments" : "has a payload of");
        if (k < 2) {
            bytes[0] = 17;
            expect_attach_failure(buf, n, po + 6, bytes, 1, "17 coefficient bits");
            bytes[0] = 65;
            expect_attach_failure(buf, n, po + 5, bytes, 1, "degree 65");
            hci_put_u32(bytes, 0);
            expect_attach_failure(buf, n, po, bytes, 4, "segment length 0");
            hci_put_u32(bytes, 40);
            expect_attach_failure(buf, n, po, bytes, 4, "in segments of 40 has a payload of");
            hci_put_f32(bytes, NAN);
            expect_attach_failure(buf, n, po + 8, bytes, 4, k == 0 ? "step 0 = nan" : "coefficient 0 = nan");
            bytes[0] = (uint8_t)(k ? 0 : 1);
            expect_attach_failure(buf, n, po + 4, bytes, 1, "kind byte");
        } else {
            bytes[0] = 1;
            expect_attach_failure(buf, n, po, bytes, 1, "group size 1");
            bytes[0] = 10;
            expect_attach_failure(buf, n, po + 2, bytes, 1, "and 10 index bits; they do not agree");
            bytes[0] = 2;
            expect_attach_failure(buf, n, po + 3, bytes, 1, "ring spacing 2");
            hci_put_u32(bytes, 0);
            expect_attach_failure(buf, n, po + 4, bytes, 4, "has 0 box points");
            hci_put_f32(bytes, -1.0f);
            expect_attach_failure(buf, n, po + 12, bytes, 4, "box side, ring radius");
            hci_put_u32(bytes, 2);
            expect_attach_failure(buf, n, po + 28, bytes, 4, "invalid line generator (2,");
            /* an index past the lines: set every bit of the first index */
            uint32_t nb = buf[po + 2];
            uint32_t count = hci_get_u32(buf + po + 4) + buf[po + 1] * hci_get_u32(buf + po + 8);
            if (count < (1u << nb)) {
                uint8_t *pay = buf + po + 44;
                uint8_t save[4];
                memcpy(save, pay, 4);
                for (uint32_t i = 0; i < nb; i++)
                    pay[i / 8] |= (uint8_t)(1u << (i % 8));
                uint8_t copy[4];
                memcpy(copy, pay, 4);
                memcpy(pay, save, 4);
                expect_attach_failure(buf, n, po + 44, copy, 4, "at group 0; the lines hold");
            }
        }
        free(buf);
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    free(w);
}
END_TEST

START_TEST(out_of_memory_leaks_nothing)
{
    float *w = heavy_tailed(9, 64 * 40);
    hc_tensor_view v = test_view2("w", w, 64, 40);
    const char *specs[] = { "hyper:poly,L=16,d=3,q=6", "hyper:ergodic,n=2,bits=8,rings=1" };
    for (int s = 0; s < 2; s++) {
        hc_compressor *c = make(specs[s]);
        int succeeded = 0;
        for (long k = 1; k < 40 && !succeeded; k++) {
            hc_ctensor *ct = NULL;
            hci_alloc_fail_after(k);
            int rc = hc_compress(&ct, c, &v);
            hci_alloc_fail_after(0);
            if (rc == HC_OK) {
                succeeded = 1;
                float y[64], x[40] = { 1 };
                ck_assert_ok(hc_ctensor_matvec(ct, x, y));
                hc_ctensor_free(ct);
                continue;
            }
            ck_assert_int_eq(rc, HC_ENOMEM);
            ck_assert_ptr_null(ct);
            ck_assert(strstr(hc_last_error(), "out of memory") != NULL);
        }
        ck_assert(succeeded);
        hc_compressor_free(c);
    }
    free(w);
}
END_TEST

/* ---- specs and options ---- */

START_TEST(specs_and_options)
{
    hc_compressor *c = NULL;
    c = make("hyper:ergodic");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:ergodic,n=4,bits=26,rings=3,slope=search,spacing=geometric");
    hc_compressor_free(c);
    c = make("hyper:ergodic,n=3");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:ergodic,n=3,bits=19,rings=3,slope=search,spacing=geometric");
    hc_compressor_free(c);
    c = make("hyper:fourier");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:fourier,L=64,d=8,q=8");
    hc_compressor_free(c);
    c = make("hyper");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:poly,L=64,d=7,q=8");
    hc_compressor_free(c);
    c = make("hyper:poly,L=100,d=3,q=32,threads=2");
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:poly,L=100,d=3,q=32");
    hc_compressor_free(c);

    ck_assert_status(hc_compressor_from_spec(&c, "hyper:poly,d=99"), HC_EINVAL, "d=99 is not a whole number from 0 to 64");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:poly,q=20"), HC_EINVAL, "q=20 is neither in [2, 16] nor 32");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:fourier,d=0"), HC_EINVAL, "fourier d=0 is outside [1, 64]");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:poly,L=0"), HC_EINVAL, "L=0 is not a whole number");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,L=4"), HC_EINVAL, "key 'L' does not apply to hyper:ergodic");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:poly,n=4"), HC_EINVAL, "key 'n' does not apply to hyper:poly");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:poly,ergodic"), HC_EINVAL, "more than one of poly, fourier");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:wavelet"), HC_EINVAL, "unknown preset 'wavelet'");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,slope=steep"), HC_EINVAL, "slope=steep is neither");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,spacing=log"), HC_EINVAL, "spacing=log is neither");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,n=9"), HC_EINVAL, "n=9 is not a whole number from 2 to 8");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,bits=33"), HC_EINVAL, "bits=33");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,rings=16"), HC_EINVAL, "rings=16");
    ck_assert_status(hc_compressor_from_spec(&c, "hyper:ergodic,n=8"), HC_EINVAL, "index bits 52 is outside [2, 32]");

    hc_hyper_options o = HC_HYPER_OPTIONS_INIT;
    ck_assert_ok(hc_hyper_options_init(&o, sizeof o));
    ck_assert_uint_eq(o.segment, 64);
    ck_assert_int_eq(o.spacing, HC_HYPER_RINGS_GEOMETRIC);
    ck_assert_status(hc_hyper_options_init(&o, sizeof o + 4), HC_EVERSION, "larger than this library's");
    ck_assert_status(hc_hyper_options_init(&o, 8), HC_EINVAL, "too small");
    ck_assert_status(hc_hyper_new(NULL, &o), HC_EINVAL, "out is NULL");
    o.kind = (hc_hyper_kind)9;
    ck_assert_status(hc_hyper_new(&c, &o), HC_EINVAL, "unknown kind 9");
    ck_assert_ptr_null(c);
    o.kind = HC_HYPER_ERGODIC;
    o.group = 3;
    o.slope = (hc_hyper_slope)4;
    ck_assert_status(hc_hyper_new(&c, &o), HC_EINVAL, "unknown slope 4");
    o.slope = HC_HYPER_SLOPE_PAPER;
    ck_assert_ok(hc_hyper_new(&c, &o));
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:ergodic,n=3,bits=19,rings=3,slope=paper,spacing=geometric");
    hc_compressor_free(c);
    o.struct_size = sizeof o + 8;
    ck_assert_status(hc_hyper_new(&c, &o), HC_EVERSION, "larger");
    ck_assert_ok(hc_hyper_new(&c, NULL));
    ck_assert_str_eq(hc_compressor_spec(c), "hyper:poly,L=64,d=7,q=8");
    hc_compressor_free(c);
}
END_TEST

static Suite *hyper_suite(void)
{
    Suite *s = suite_create("hyper");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, nearest_point_matches_brute_force);
    tcase_add_test(tc, line_points_are_the_distinct_lattice_points_of_the_box);
    tcase_add_test(tc, searched_slope_is_near_hexagonal);
    tcase_add_test(tc, poly_payload_layout_of_a_tiny_tensor);
    tcase_add_test(tc, ergodic_payload_layout_of_a_tiny_tensor);
    tcase_add_test(tc, smooth_signals_are_recovered_to_float_precision);
    tcase_add_test(tc, round_trips_report_their_true_error);
    tcase_add_test(tc, matvec_matches_the_decoded_matrix);
    tcase_add_test(tc, degenerate_tensors);
    tcase_add_test(tc, hostile_payloads_are_rejected);
    tcase_add_test(tc, out_of_memory_leaks_nothing);
    tcase_add_test(tc, specs_and_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(hyper_suite());
}
