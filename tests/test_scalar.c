/* The scalar codecs: INT8, NF4 and ternary against brute-force reference encoders written from
 * doc/codecs.md, their exact payload bytes, error bounds on Gaussian and Laplacian data, the
 * SIMD kernels against the portable ones, hostile payloads, specs and out-of-memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/cpu.h"
#include "common/crc32c.h"
#include "common/half.h"
#include "harness.h"
#include "scalar/scalar.h"

/* The table printed in appendix E of the QLoRA paper. */
static const double published_nf4[16] = {
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023,
    1.0,
};

/* ---- helpers ---- */

static hc_compressor *make(const char *spec)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    return c;
}

static hc_tensor_view view_nd(const float *w, uint32_t ndim, const int64_t *shape)
{
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "w";
    v.ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++)
        v.shape[i] = shape[i];
    v.data = w;
    return v;
}

static hc_ctensor *compress_2d(const char *spec, const float *w, int64_t rows, int64_t cols)
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
    ck_assert_ptr_nonnull(buf);
    ck_assert_ok(hc_ctensor_serialize(ct, buf, *n));
    return buf;
}

/* The payload of a serialised tensor (a copy) and its length. */
static uint8_t *payload_copy(const hc_ctensor *ct, size_t *len)
{
    size_t n;
    uint8_t *buf = serialise(ct, &n);
    size_t head = 24 + 8u * buf[9] + hci_get_u32(buf + 12);
    *len = (size_t)hci_get_u64(buf + 16);
    ck_assert_uint_eq(head + *len + 4, n);
    uint8_t *p = malloc(*len ? *len : 1);
    memcpy(p, buf + head, *len);
    free(buf);
    return p;
}

/* A serialised tensor with the header of `orig` but other params and payload, and a valid
 * checksum, so that only the codec's own checks can reject it. */
static uint8_t *forge(const uint8_t *orig, const uint8_t *params, uint32_t params_len, const uint8_t *payload,
                      uint64_t payload_len, size_t *n)
{
    size_t dims = 24 + 8u * orig[9];
    *n = dims + params_len + (size_t)payload_len + 4;
    uint8_t *buf = malloc(*n);
    memcpy(buf, orig, dims);
    hci_put_u32(buf + 12, params_len);
    hci_put_u64(buf + 16, payload_len);
    if (params_len)
        memcpy(buf + dims, params, params_len);
    if (payload_len)
        memcpy(buf + dims + params_len, payload, (size_t)payload_len);
    hci_put_u32(buf + *n - 4, hci_crc32c(0, buf, *n - 4));
    return buf;
}

static float *decode_all(const hc_ctensor *ct)
{
    size_t n = (size_t)hc_ctensor_numel(ct);
    float *d = malloc(n * sizeof *d);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d, n * sizeof *d));
    return d;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* ---- reference encoders, written from doc/codecs.md ---- */

static double ref_percentile(const float *row, int64_t n, double p)
{
    float *m = malloc((size_t)n * sizeof *m);
    for (int64_t i = 0; i < n; i++)
        m[i] = fabsf(row[i]);
    qsort(m, (size_t)n, sizeof *m, cmp_float);
    double h = (double)(n - 1) * (p / 100.0);
    int64_t k = (int64_t)floor(h);
    double v = m[k];
    if (k + 1 < n)
        v += (h - (double)k) * ((double)m[k + 1] - m[k]);
    free(m);
    return v;
}

static uint8_t *ref_int8(const float *w, int64_t rows, int64_t cols, double p, size_t *len)
{
    *len = (size_t)(4 * rows + rows * cols);
    uint8_t *out = calloc(*len, 1);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        float clip = (float)ref_percentile(row, cols, p);
        if (clip == 0.0f)
            clip = (float)ref_percentile(row, cols, 100.0);
        float scale = clip / 127.0f;
        hci_put_f32(out + 4 * r, scale);
        for (int64_t c = 0; c < cols; c++) {
            double q = scale > 0 ? rint(row[c] / scale) : 0.0;
            q = q > 127 ? 127 : (q < -127 ? -127 : q);
            out[4 * rows + r * cols + c] = (uint8_t)(int8_t)q;
        }
    }
    return out;
}

/* Level nearest to x by exhaustive search in double; ties (x exactly halfway) go low. */
static unsigned ref_nearest(double x)
{
    unsigned best = 0;
    for (unsigned k = 1; k < 16; k++)
        if (fabs(x - published_nf4[k]) < fabs(x - published_nf4[best]))
            best = k;
    return best;
}

static uint8_t *ref_nf4(const float *w, int64_t n, uint32_t block, uint32_t sblock, size_t *len, float **scales)
{
    int64_t nb = (n + block - 1) / block, ns = (nb + sblock - 1) / sblock;
    *len = (size_t)(4 + 4 * ns + nb + (n + 1) / 2);
    uint8_t *out = calloc(*len, 1);
    float *a = malloc((size_t)nb * sizeof *a);
    double sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        a[b] = 0;
        for (int64_t i = b * block; i < n && i < (b + 1) * block; i++)
            a[b] = fabsf(w[i]) > a[b] ? fabsf(w[i]) : a[b];
        sum += a[b];
    }
    float mean = (float)(sum / (double)nb);
    hci_put_f32(out, mean);
    for (int64_t j = 0; j < ns; j++) {
        float m = 0;
        for (int64_t b = j * sblock; b < nb && b < (j + 1) * sblock; b++)
            m = fabsf(a[b] - mean) > m ? fabsf(a[b] - mean) : m;
        float step = m / 127.0f;
        hci_put_f32(out + 4 + 4 * j, step);
        for (int64_t b = j * sblock; b < nb && b < (j + 1) * sblock; b++) {
            double q = step > 0 ? rint((a[b] - mean) / step) : 0.0;
            q = q > 127 ? 127 : (q < -127 ? -127 : q);
            out[4 + 4 * ns + b] = (uint8_t)(int8_t)q;
            float t = (float)q * step;
            a[b] = t + mean; /* now the decoder's scale */
        }
    }
    uint8_t *codes = out + 4 + 4 * ns + nb;
    for (int64_t i = 0; i < n; i++) {
        float s = a[i / block];
        unsigned code = s != 0.0f ? ref_nearest(w[i] / s) : 7u;
        codes[i / 2] |= (uint8_t)(code << (4 * (i % 2)));
    }
    if (scales)
        *scales = a;
    else
        free(a);
    return out;
}

static uint8_t *ref_ternary(const float *w, int64_t n, size_t *len)
{
    *len = (size_t)(4 + (n + 3) / 4);
    uint8_t *out = calloc(*len, 1);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += fabs(w[i]);
    float scale = (float)(sum / (double)n + 1e-8);
    hci_put_f32(out, scale);
    for (int64_t i = 0; i < n; i++) {
        double q = rint(w[i] / scale);
        unsigned code = q >= 1 ? 1u : (q <= -1 ? 2u : 0u);
        out[4 + i / 4] |= (uint8_t)(code << (2 * (i % 4)));
    }
    return out;
}

static void assert_same_bytes(const uint8_t *a, const uint8_t *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_each_msg(a[i] == b[i], "%s: byte %zu is %02x, reference %02x", what, i, a[i], b[i]);
}

/* ---- NF4 ---- */

/* Inverse standard normal CDF by bisection on erfc, to reconstruct the levels independently. */
static double normal_ppf(double p)
{
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

START_TEST(nf4_levels_are_the_published_ones)
{
    float l[16];
    hc_nf4_levels(l);
    for (int i = 0; i < 16; i++)
        ck_assert_double_eq_tol(l[i], published_nf4[i], 1e-7);
    ck_assert_float_eq(l[7], 0.0f);
    /* QLoRA's construction: quantiles of N(0,1) at 8 points from 0.9677083 down to 0.5 for the
     * positive side and 7 for the negative side, a true zero, normalised to [-1, 1] */
    const double off = 0.9677083;
    double v[16];
    int k = 0;
    for (int i = 0; i < 7; i++) /* ascending: -ppf(0.9677083) first */
        v[k++] = -normal_ppf(off + (0.5 - off) * i / 7.0);
    v[k++] = 0;
    for (int i = 7; i >= 0; i--)
        v[k++] = normal_ppf(off + (0.5 - off) * i / 8.0);
    for (int i = 0; i < 16; i++) {
        ck_assert_double_eq_tol(v[i] / v[15], l[i], 2e-7);
        if (i)
            ck_assert(l[i] > l[i - 1]);
    }
    hc_nf4_levels(NULL); /* accepted, does nothing */
}
END_TEST

START_TEST(nf4_known_block_encodes_to_exact_nibbles)
{
    /* one block of 64: value i sits near level k(i) = 7i mod 16 times 2, off by 30% of the
     * distance to the neighbouring midpoint, and the block's absmax is exactly 2 (levels 0
     * and 15 appear unperturbed), so the mean is 2, the step 0 and the scale exactly 2 */
    float w[64];
    unsigned want[64];
    test_rng r = { 11 };
    for (int i = 0; i < 64; i++) {
        unsigned k = (unsigned)(7 * i) % 16;
        double lv = published_nf4[k];
        double up = k < 15 ? 0.5 * (published_nf4[k + 1] - lv) : 0;
        double dn = k > 0 ? 0.5 * (lv - published_nf4[k - 1]) : 0;
        double u = test_rng_uniform(&r) * 2 - 1; /* in [-1, 1) */
        double x = lv + 0.3 * (u > 0 ? u * up : u * dn);
        w[i] = (float)(2.0 * x);
        want[i] = k;
    }
    hc_ctensor *ct = compress_2d("nf4", w, 4, 16);
    size_t len;
    uint8_t *p = payload_copy(ct, &len);
    ck_assert_uint_eq(len, 4 + 4 + 1 + 32);
    const uint8_t head[9] = { 0x00, 0x00, 0x00, 0x40, /* mean 2.0f */ 0, 0, 0, 0, /* step 0 */ 0 /* q */ };
    ck_assert_mem_eq(p, head, 9);
    for (int i = 0; i < 32; i++)
        ck_assert_uint_eq(p[9 + i], want[2 * i] | (want[2 * i + 1] << 4));
    float *d = decode_all(ct);
    for (int i = 0; i < 64; i++)
        ck_assert_float_eq(d[i], (float)published_nf4[want[i]] * 2.0f);
    /* the params: block and scale_block, little-endian u32 */
    size_t n;
    uint8_t *buf = serialise(ct, &n);
    const uint8_t params[8] = { 64, 0, 0, 0, 0, 1, 0, 0 };
    ck_assert_mem_eq(buf + 24 + 16, params, 8);
    free(buf);
    free(d);
    free(p);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(nf4_tiny_payload_layout)
{
    /* 5 values, blocks of 2, scale blocks of 2: absmaxes 3, 1, 0.5 (mean 1.5), steps
     * max(1.5, 0.5)/127 and 1/127, a short last block and a zero padding nibble */
    float w[5] = { -3.0f, 1.5f, 0.25f, -1.0f, 0.5f };
    hc_ctensor *ct = compress_2d("nf4:block=2,scale_block=2", w, 1, 5);
    size_t len;
    uint8_t *p = payload_copy(ct, &len);
    ck_assert_uint_eq(len, 4 + 2 * 4 + 3 + 3);
    ck_assert_float_eq(hci_get_f32(p), 1.5f);
    float step0 = 1.5f / 127.0f, step1 = 1.0f / 127.0f;
    ck_assert_float_eq(hci_get_f32(p + 4), step0);
    ck_assert_float_eq(hci_get_f32(p + 8), step1);
    ck_assert_int_eq((int8_t)p[12], 127);   /* (3 - 1.5) / step0 */
    ck_assert_int_eq((int8_t)p[13], (int)rintf(-0.5f / step0));
    ck_assert_int_eq((int8_t)p[14], -127);  /* (0.5 - 1.5) / step1 */
    size_t rlen;
    uint8_t *ref = ref_nf4(w, 5, 2, 2, &rlen, NULL);
    ck_assert_uint_eq(rlen, len);
    assert_same_bytes(p, ref, len, "nf4 tiny");
    ck_assert_uint_eq(p[17] >> 4, 0); /* padding */
    ck_assert_uint_eq(p[15] & 15, 0);  /* -3 / 3 is level 0 */
    free(ref);
    free(p);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(nf4_matches_the_reference_encoder)
{
    struct {
        const char *spec;
        uint32_t block, sblock;
        int64_t rows, cols;
    } cases[] = {
        { "nf4", 64, 256, 37, 129 },          /* blocks straddle rows */
        { "nf4", 64, 256, 1, 5 },             /* one short block */
        { "nf4:block=10,scale_block=3", 10, 3, 13, 17 },
        { "nf4:block=33,scale_block=1", 33, 1, 7, 64 },
        { "nf4:block=64,scale_block=4", 64, 4, 64, 256 },
        { "nf4:threads=3", 64, 256, 300, 1000 },                  /* codes written by 3 threads */
        { "nf4:block=65,scale_block=7,threads=3", 65, 7, 300, 999 }, /* odd blocks, paired per thread */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t n = cases[k].rows * cases[k].cols;
        float *w = k % 2 ? test_laplace(20 + k, (size_t)n, 0.05) : test_gauss(20 + k, (size_t)n, 0.05);
        w[n / 3] *= 40; /* an outlier: a scale block with one large absmax */
        hc_ctensor *ct = compress_2d(cases[k].spec, w, cases[k].rows, cases[k].cols);
        size_t len, rlen;
        uint8_t *p = payload_copy(ct, &len);
        float *scales;
        uint8_t *ref = ref_nf4(w, n, cases[k].block, cases[k].sblock, &rlen, &scales);
        ck_assert_uint_eq(len, rlen);
        assert_same_bytes(p, ref, len, cases[k].spec);
        /* every value lands within half the widest level gap (0.1519 of the scale) unless it
         * lies beyond the decoded scale, where it saturates */
        float *d = decode_all(ct);
        for (int64_t i = 0; i < n; i++) {
            double s = fabs(scales[i / cases[k].block]), a = fabs(w[i]);
            double bound = 0.15191 * s + (a > s ? a - s : 0) + 1e-7 * s;
            ck_assert_each_msg(fabs(d[i] - w[i]) <= bound, "%s value %lld: %g decoded %g bound %g", cases[k].spec,
                               (long long)i, (double)w[i], (double)d[i], bound);
        }
        free(d);
        free(scales);
        free(ref);
        free(p);
        hc_ctensor_free(ct);
        free(w);
    }
}
END_TEST

START_TEST(nf4_bits_per_weight)
{
    /* 256 x 1024: 4096 blocks, 16 scale blocks: payload 4 + 64 + 4096 + 131072 bytes plus
     * the 24-byte header, 2 dims, 8 params bytes and the CRC: 4 + 1/8 + 1/512 + ... bpw */
    float *w = test_gauss(3, 256 * 1024, 1.0);
    hc_ctensor *ct = compress_2d("nf4", w, 256, 1024);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    uint64_t bytes = 24 + 16 + 8 + (4 + 64 + 4096 + 131072) + 4;
    ck_assert_uint_eq(s.bits, 8 * bytes);
    ck_assert_double_eq_tol(s.bpw, 8.0 * bytes / (256.0 * 1024), 1e-12);
    ck_assert(s.bpw > 4.127 && s.bpw < 4.13);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

/* ---- INT8 ---- */

START_TEST(int8_percentile_is_linear_interpolation)
{
    test_rng r = { 5 };
    for (int trial = 0; trial < 400; trial++) {
        int64_t n = 1 + (int64_t)(test_rng_uniform(&r) * 300);
        float *v = malloc((size_t)n * sizeof *v), *m = malloc((size_t)n * sizeof *m);
        for (int64_t i = 0; i < n; i++) {
            double g = test_rng_gauss(&r);
            /* duplicates and zeros as real rows have them */
            v[i] = trial % 3 == 0 ? (float)floor(g * 3) : (float)g;
        }
        double p = trial % 5 == 0 ? 100.0 : test_rng_uniform(&r) * 100;
        for (int64_t i = 0; i < n; i++)
            m[i] = fabsf(v[i]);
        float got = hci_int8_row_clip(m, n, p);
        ck_assert_float_eq(got, (float)ref_percentile(v, n, p));
        free(v);
        free(m);
    }
    /* magnitudes 0..100: the P-th percentile is P itself */
    float m[101];
    for (int i = 0; i <= 100; i++)
        m[i] = (float)((i * 37) % 101);
    ck_assert_float_eq(hci_int8_row_clip(m, 101, 99.5), 99.5f);
    ck_assert_float_eq(hci_int8_row_clip(m, 101, 100.0), 100.0f);
    ck_assert_float_eq(hci_int8_row_clip(m, 101, 0.25), 0.25f);
    float one = 3.0f;
    ck_assert_float_eq(hci_int8_row_clip(&one, 1, 50.0), 3.0f);
}
END_TEST

START_TEST(int8_payload_layout_and_clip_semantics)
{
    /* row 0: absmax 1 -> scale 1/127; row 1: zeros -> scale 0, codes 0 */
    float w[6] = { 1.0f, -0.3f, 0.05f, 0.0f, 0.0f, 0.0f };
    hc_ctensor *ct = compress_2d("int8:clip=100", w, 2, 3);
    size_t len;
    uint8_t *p = payload_copy(ct, &len);
    ck_assert_uint_eq(len, 2 * 4 + 6);
    uint8_t want[14];
    hci_put_f32(want, 1.0f / 127.0f);
    hci_put_f32(want + 4, 0.0f);
    const uint8_t codes[6] = { 127, (uint8_t)-38, 6, 0, 0, 0 };
    memcpy(want + 8, codes, 6);
    ck_assert_mem_eq(p, want, 14);
    free(p);
    hc_ctensor_free(ct);

    /* 101 magnitudes 0..100 with alternating signs and clip=99.5: clip 99.5, 100 saturates */
    float row[101];
    for (int i = 0; i <= 100; i++)
        row[i] = (float)i * (i % 2 ? -1.0f : 1.0f);
    ct = compress_2d("int8:clip=99.5", row, 1, 101);
    p = payload_copy(ct, &len);
    float scale = hci_get_f32(p);
    ck_assert_float_eq(scale, 99.5f / 127.0f);
    ck_assert_int_eq((int8_t)p[4 + 100], 127);   /* 100 is clipped */
    ck_assert_int_eq((int8_t)p[4 + 99], -126);   /* -99 / 0.7835 = -126.4 */
    float *d = decode_all(ct);
    ck_assert_float_eq(d[100], 127 * scale);
    free(d);
    free(p);
    hc_ctensor_free(ct);

    /* clip=100 is the absmax: nothing saturates, every value within scale / 2 */
    float *g = test_laplace(8, 50 * 77, 1.0);
    g[1234] = 40.0f; /* an outlier */
    ct = compress_2d("int8:clip=100", g, 50, 77);
    p = payload_copy(ct, &len);
    d = decode_all(ct);
    for (int64_t r = 0; r < 50; r++) {
        float s = hci_get_f32(p + 4 * r), amax = 0;
        for (int c = 0; c < 77; c++)
            amax = fmaxf(amax, fabsf(g[r * 77 + c]));
        ck_assert_float_eq(s, amax / 127.0f);
        for (int c = 0; c < 77; c++)
            ck_assert_each_msg(fabs(d[r * 77 + c] - g[r * 77 + c]) <= 0.5 * s * (1 + 1e-6),
                               "row %lld col %d: %g decoded %g, scale %g", (long long)r, c, (double)g[r * 77 + c],
                               (double)d[r * 77 + c], (double)s);
    }
    ck_assert_float_eq_tol(d[1234], 40.0f, 1e-5f);
    free(d);
    free(p);
    hc_ctensor_free(ct);
    /* the default clip cuts that outlier: its row's scale is far below 40 / 127 */
    ct = compress_2d("int8", g, 50, 77);
    p = payload_copy(ct, &len);
    d = decode_all(ct);
    float s16 = hci_get_f32(p + 4 * 16); /* 1234 = 16 * 77 + 2 */
    ck_assert_float_eq(s16, (float)ref_percentile(g + 16 * 77, 77, 99.99f) / 127.0f);
    ck_assert(s16 < 40.0f / 127.0f);
    ck_assert_float_eq(d[1234], 127 * s16);
    free(d);
    free(p);
    hc_ctensor_free(ct);
    free(g);
}
END_TEST

START_TEST(int8_mostly_zero_row_falls_back_to_absmax)
{
    float w[200] = { 0 };
    w[7] = 0.5f;     /* row 0: one nonzero among 100 */
    w[100] = -2.0f;  /* row 1: one nonzero too */
    w[150] = 1.0f;   /* and another */
    hc_ctensor *ct = compress_2d("int8:clip=50", w, 2, 100);
    float *d = decode_all(ct);
    ck_assert_float_eq_tol(d[7], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(d[100], -2.0f, 1e-7f);
    ck_assert_float_eq_tol(d[150], 1.0f, 0.5f * 2.0f / 127);
    free(d);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(int8_matches_the_reference_encoder_on_any_thread_count)
{
    int64_t rows = 61, cols = 203;
    float *w = test_laplace(9, (size_t)(rows * cols), 0.1);
    const float ps[3] = { 99.99f, 90.0f, 100.0f };
    for (int k = 0; k < 3; k++) {
        char spec[64];
        snprintf(spec, sizeof spec, "int8:clip=%g", (double)ps[k]);
        size_t rlen;
        uint8_t *ref = ref_int8(w, rows, cols, ps[k], &rlen);
        for (uint32_t t = 1; t <= 3; t += 2) {
            hc_compressor *c = make(spec);
            ck_assert_ok(hc_compressor_set_threads(c, t));
            hc_tensor_view v = test_view2("w", w, rows, cols);
            hc_ctensor *ct;
            ck_assert_ok(hc_compress(&ct, c, &v));
            size_t len;
            uint8_t *p = payload_copy(ct, &len);
            ck_assert_uint_eq(len, rlen);
            assert_same_bytes(p, ref, len, spec);
            free(p);
            hc_ctensor_free(ct);
            hc_compressor_free(c);
        }
        free(ref);
    }
    free(w);
}
END_TEST

/* ---- ternary ---- */

START_TEST(ternary_payload_layout_and_sparsity)
{
    float w[6] = { 0.9f, -1.1f, 0.1f, 0.0f, 2.5f, -0.2f };
    hc_ctensor *ct = compress_2d("ternary", w, 2, 3);
    size_t len;
    uint8_t *p = payload_copy(ct, &len);
    ck_assert_uint_eq(len, 4 + 2);
    double sum = 0;
    for (int i = 0; i < 6; i++)
        sum += fabsf(w[i]);
    float scale = (float)(sum / 6 + 1e-8); /* about 0.8 */
    ck_assert_float_eq(hci_get_f32(p), scale);
    /* codes +1 -1 0 0 +1 0: byte 0 = 01 | 10 << 2, byte 1 = 01 */
    ck_assert_uint_eq(p[4], 0x09);
    ck_assert_uint_eq(p[5], 0x01);
    float *d = decode_all(ct);
    const float want[6] = { scale, -scale, 0, 0, scale, 0 };
    ck_assert_mem_eq(d, want, sizeof want);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_double_eq(s.sparsity, 0.5);
    ck_assert_uint_eq(s.bits, 8u * (24 + 16 + 6 + 4));
    free(d);
    free(p);
    hc_ctensor_free(ct);
}
END_TEST

/* Ternary on N(0,1) or Laplace: scale c = E|w|, threshold c/2, and closed forms for the error
 * and the zero fraction. Gauss: rel^2 = 1 - 2c sqrt(2/pi) e^{-t^2/2} + c^2 erfc(t/sqrt2), zero
 * fraction erf(t/sqrt2) with c = sqrt(2/pi), t = c/2. Laplace(b): rel^2 = 1 - e^{-1/2} and the
 * zero fraction is 1 - e^{-1/2}. */
START_TEST(ternary_error_and_sparsity_match_closed_forms)
{
    const size_t n = 200000;
    double c = sqrt(2 / M_PI), t = c / 2;
    double want_rel[2] = { sqrt(1 - 2 * c * sqrt(2 / M_PI) * exp(-t * t / 2) + c * c * erfc(t / sqrt(2))),
                           sqrt(1 - exp(-0.5)) };
    double want_zero[2] = { erf(t / sqrt(2)), 1 - exp(-0.5) };
    for (int k = 0; k < 2; k++) {
        float *w = k == 0 ? test_gauss(31, n, 0.02) : test_laplace(32, n, 0.02);
        hc_ctensor *ct = compress_2d("ternary:threads=3", w, 400, 500);
        hc_stats s = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s, ct));
        ck_assert_double_eq_tol(s.rel_rmse, want_rel[k], 0.005);
        ck_assert_double_eq_tol(s.sparsity, want_zero[k], 0.005);
        /* sparsity counts exact zeros of the decoded tensor: count the zero codes */
        size_t len;
        uint8_t *p = payload_copy(ct, &len);
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++)
            zeros += ((p[4 + i / 4] >> (2 * (i % 4))) & 3) == 0;
        ck_assert_double_eq_tol(s.sparsity, (double)zeros / n, 1e-12);
        size_t rlen;
        uint8_t *ref = ref_ternary(w, (int64_t)n, &rlen);
        ck_assert_uint_eq(rlen, len);
        assert_same_bytes(p, ref, len, "ternary");
        free(ref);
        free(p);
        hc_ctensor_free(ct);
        free(w);
    }
}
END_TEST

/* ---- error bounds on synthetic data ---- */

/* INT8 with clip=100 rounds uniformly within +-scale/2, so the squared error per value is
 * about scale^2 / 12: the measured error must sit within 15% of that prediction.
 * NF4 at 4.127 bits cannot beat the Shannon lower bound sqrt(N/var) 2^-R: 2^-4.127 = 0.0572
 * for Gaussian data and sqrt(e/pi) 2^-4.127 = 0.0532 for Laplacian data (entropy power e/pi of
 * the variance). Its per-block absmax must beat the best fixed 4-bit quantiser of a Gaussian
 * (Lloyd-Max, 0.0975; measured 0.092), and stay under 0.110 on the heavier-tailed Laplacian
 * (measured 0.103). */
START_TEST(round_trip_error_bounds)
{
    const int64_t rows = 128, cols = 1000;
    for (int dist = 0; dist < 2; dist++) {
        float *w = dist ? test_laplace(41, (size_t)(rows * cols), 0.03) : test_gauss(41, (size_t)(rows * cols), 0.03);
        hc_ctensor *ct = compress_2d("int8:clip=100", w, rows, cols);
        size_t len;
        uint8_t *p = payload_copy(ct, &len);
        double pred = 0, ref = 0;
        for (int64_t r = 0; r < rows; r++) {
            double s = hci_get_f32(p + 4 * r);
            pred += (double)cols * s * s / 12;
        }
        for (int64_t i = 0; i < rows * cols; i++)
            ref += (double)w[i] * w[i];
        hc_stats s = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s, ct));
        ck_assert_double_eq_tol(s.rel_rmse / sqrt(pred / ref), 1.0, 0.15);
        ck_assert(s.rel_rmse < (dist ? 0.03 : 0.015));
        free(p);
        hc_ctensor_free(ct);

        ct = compress_2d("nf4", w, rows, cols);
        ck_assert_ok(hc_ctensor_stats(&s, ct));
        double lower = dist ? 0.0532 : 0.0572, upper = dist ? 0.110 : 0.0975;
        ck_assert_msg(s.rel_rmse > lower && s.rel_rmse < upper, "nf4 %s rel_rmse %g outside (%g, %g)",
                      dist ? "laplace" : "gauss", s.rel_rmse, lower, upper);
        hc_ctensor_free(ct);
        free(w);
    }
}
END_TEST

/* ---- SIMD kernels against the portable ones ---- */

static const char *const every_spec[] = {
    "f32", "fp16", "bf16", "int8", "int8:clip=100", "nf4", "nf4:block=10,scale_block=3", "nf4:block=33,scale_block=1",
    "nf4:block=32,scale_block=3", "nf4:block=96,scale_block=2", "ternary",
};

static const struct {
    uint32_t ndim;
    int64_t shape[3];
} odd_shapes[] = {
    { 2, { 1, 1 } },    { 2, { 1, 37 } },   { 2, { 3, 61 } },     { 2, { 7, 100 } }, { 2, { 17, 129 } },
    { 1, { 77 } },      { 1, { 1000 } },    { 2, { 5, 64 } },     { 3, { 4, 3, 45 } }, { 2, { 2, 4109 } },
    { 2, { 33, 256 } }, { 2, { 3, 96 } },   { 2, { 2, 32 } },
    { 2, { 200, 1024 } }, { 2, { 150, 1001 } }, /* big enough to split over threads */
};

typedef struct run_out {
    float *dec, *y, *part;
    size_t part_len;
} run_out;

/* Decodes everything, a set of odd flat ranges through the codec directly, and one matvec. */
static run_out run_kernels(const hc_ctensor *ct, const float *x)
{
    int64_t n = hc_ctensor_numel(ct), rows = hc_ctensor_rows(ct);
    run_out o = { decode_all(ct), malloc((size_t)rows * sizeof(float)), NULL, 0 };
    ck_assert_ok(hc_ctensor_matvec(ct, x, o.y));
    for (int pass = 0; pass < 2; pass++) {
        size_t used = 0;
        for (int64_t first = 0; first < n && first < 70; first += 7) {
            int64_t counts[3] = { n - first, (n - first) / 2, (n - first) < 45 ? n - first : 45 };
            for (int k = 0; k < 3; k++) {
                if (pass)
                    ck_assert_ok(ct->codec->decode(ct, first, counts[k], o.part + used));
                used += (size_t)counts[k];
            }
        }
        if (!pass) {
            o.part_len = used;
            o.part = calloc(used + 1, sizeof(float));
        }
    }
    return o;
}

START_TEST(simd_kernels_agree_with_portable)
{
    static const struct {
        const char *env;
        hci_isa isa;
    } isas[] = { { "avx2", HCI_ISA_AVX2 }, { "avx512", HCI_ISA_AVX512 } };
    int compared = 0;
    for (size_t si = 0; si < sizeof every_spec / sizeof every_spec[0]; si++) {
        for (size_t sh = 0; sh < sizeof odd_shapes / sizeof odd_shapes[0]; sh++) {
            int64_t n = 1;
            for (uint32_t d = 0; d < odd_shapes[sh].ndim; d++)
                n *= odd_shapes[sh].shape[d];
            float *w = test_gauss(100 + sh, (size_t)n, 0.05);
            w[n / 2] = 1.5f; /* an outlier */
            hc_compressor *c = make(every_spec[si]);
            hc_tensor_view v = view_nd(w, odd_shapes[sh].ndim, odd_shapes[sh].shape);
            hc_ctensor *ct;
            ck_assert_ok(hc_compress(&ct, c, &v));
            int64_t rows = hc_ctensor_rows(ct), cols = hc_ctensor_cols(ct);
            float *x = test_gauss(200 + sh, (size_t)cols, 1.0);
            setenv("HYPERCOMP_ISA", "portable", 1);
            ck_assert_int_eq(hci_cpu_isa(), HCI_ISA_PORTABLE);
            run_out ref = run_kernels(ct, x);
            /* the portable matvec against a double-precision product of the decoded matrix */
            double *mag = malloc((size_t)rows * sizeof *mag);
            for (int64_t r = 0; r < rows; r++) {
                double acc = 0;
                mag[r] = 0;
                for (int64_t k = 0; k < cols; k++) {
                    acc += (double)ref.dec[r * cols + k] * x[k];
                    mag[r] += fabs((double)ref.dec[r * cols + k] * x[k]);
                }
                ck_assert_each_msg(fabs(ref.y[r] - acc) <= 1e-5 * mag[r] + 1e-30, "%s row %lld: %g vs %g",
                                   every_spec[si], (long long)r, (double)ref.y[r], acc);
            }
            /* rows split over threads give the same bits: each row is one kernel call */
            float *y3 = malloc((size_t)rows * sizeof *y3);
            ck_assert_ok(hc_ctensor_set_threads(ct, 3));
            ck_assert_ok(hc_ctensor_matvec(ct, x, y3));
            ck_assert_mem_eq(y3, ref.y, (size_t)rows * sizeof *y3);
            ck_assert_ok(hc_ctensor_set_threads(ct, 1));
            free(y3);
            for (size_t k = 0; k < 2; k++) {
                setenv("HYPERCOMP_ISA", isas[k].env, 1);
                if (hci_cpu_isa() != isas[k].isa)
                    continue; /* this CPU lacks it */
                run_out got = run_kernels(ct, x);
                ck_assert_msg(memcmp(got.dec, ref.dec, (size_t)n * sizeof(float)) == 0, "%s %s decode differs",
                              every_spec[si], isas[k].env);
                ck_assert_msg(memcmp(got.part, ref.part, ref.part_len * sizeof(float)) == 0,
                              "%s %s range decode differs", every_spec[si], isas[k].env);
                for (int64_t r = 0; r < rows; r++)
                    ck_assert_each_msg(fabs(got.y[r] - ref.y[r]) <= 1e-5 * mag[r] + 1e-30,
                                       "%s %s shape %zu row %lld: %g vs %g", every_spec[si], isas[k].env, sh,
                                       (long long)r, (double)got.y[r], (double)ref.y[r]);
                free(got.dec);
                free(got.y);
                free(got.part);
                compared++;
            }
            unsetenv("HYPERCOMP_ISA");
            free(ref.dec);
            free(ref.y);
            free(ref.part);
            free(mag);
            free(x);
            hc_ctensor_free(ct);
            hc_compressor_free(c);
            free(w);
        }
    }
    if (!compared)
        fprintf(stderr, "# simd_kernels_agree_with_portable: no SIMD kernels on this CPU, nothing compared\n");
}
END_TEST

/* Every one of the 65536 FP16 and BF16 bit patterns decodes, on every instruction set, to
 * exactly the common conversion's value (NaNs: to a NaN). */
START_TEST(float_decoding_is_exact_for_every_half)
{
    const char *specs[2] = { "fp16", "bf16" };
    const char *isas[3] = { "portable", "avx2", "avx512" };
    float *zeros = calloc(65536, sizeof(float));
    uint8_t *all = malloc(2 * 65536);
    for (uint32_t h = 0; h < 65536; h++)
        hci_put_u16(all + 2 * h, (uint16_t)h);
    int64_t shape[1] = { 65536 };
    hc_tensor_view v = view_nd(zeros, 1, shape);
    for (int k = 0; k < 2; k++) {
        hc_compressor *c = make(specs[k]);
        hc_ctensor *ct, *back;
        ck_assert_ok(hc_compress(&ct, c, &v));
        size_t n, fn;
        uint8_t *buf = serialise(ct, &n);
        uint8_t *f = forge(buf, NULL, 0, all, 2 * 65536, &fn);
        ck_assert_ok(hc_ctensor_deserialize(&back, f, fn));
        for (int i = 0; i < 3; i++) {
            setenv("HYPERCOMP_ISA", isas[i], 1);
            if ((int)hci_cpu_isa() != i)
                continue;
            float *d = decode_all(back);
            for (uint32_t h = 0; h < 65536; h++) {
                float want = k ? hci_bf16_to_f32((uint16_t)h) : hci_f16_to_f32((uint16_t)h);
                if (isnan(want))
                    ck_assert_each_msg(isnan(d[h]), "%s %s: %04x", specs[k], isas[i], h);
                else
                    ck_assert_each_msg(memcmp(&want, &d[h], 4) == 0, "%s %s: %04x decodes to %a, expected %a", specs[k],
                                       isas[i], h, (double)d[h], (double)want);
            }
            free(d);
        }
        unsetenv("HYPERCOMP_ISA");
        hc_ctensor_free(back);
        hc_ctensor_free(ct);
        hc_compressor_free(c);
        free(f);
        free(buf);
    }
    free(all);
    free(zeros);
}
END_TEST

/* ---- serialised form and hostile payloads ---- */

START_TEST(serialised_round_trip_and_corruption)
{
    const char *specs[] = { "int8", "nf4:block=8,scale_block=2", "nf4", "ternary" };
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        float *w = test_gauss(50 + k, 7 * 9, 0.1);
        int64_t shape[3] = { 7, 3, 3 }; /* 63 values: odd, a padding nibble and 3 padding codes */
        hc_tensor_view v = view_nd(w, 3, shape);
        hc_compressor *c = make(specs[k]);
        hc_ctensor *ct, *back;
        ck_assert_ok(hc_compress(&ct, c, &v));
        size_t n;
        uint8_t *buf = serialise(ct, &n);
        ck_assert_ok(hc_ctensor_deserialize(&back, buf, n));
        ck_assert_uint_eq(hc_ctensor_codec_id(back), hc_ctensor_codec_id(ct));
        float *a = decode_all(ct), *b = decode_all(back);
        ck_assert_mem_eq(a, b, 63 * sizeof(float));
        hc_stats s1 = HC_STATS_INIT, s2 = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s1, ct));
        ck_assert_ok(hc_ctensor_measure(&s2, back, &v));
        ck_assert_uint_eq(s1.bits, 8u * n);
        ck_assert_uint_eq(s2.bits, s1.bits);
        ck_assert_double_eq(s2.rel_rmse, s1.rel_rmse);
        hc_ctensor_free(back);
        test_expect_hostile_serialised(buf, n, 1, specs[k]);
        /* payloads one byte short or long, with a valid checksum */
        size_t plen;
        uint8_t *p = payload_copy(ct, &plen), *f;
        size_t fn;
        uint32_t params_len = hci_get_u32(buf + 12);
        const uint8_t *params = buf + 24 + 24;
        uint8_t *longer = calloc(plen + 1, 1);
        memcpy(longer, p, plen);
        f = forge(buf, params, params_len, p, plen - 1, &fn);
        ck_assert_status(hc_ctensor_deserialize(&back, f, fn), HC_EFORMAT, "payload of");
        free(f);
        f = forge(buf, params, params_len, longer, plen + 1, &fn);
        ck_assert_status(hc_ctensor_deserialize(&back, f, fn), HC_EFORMAT, "payload of");
        ck_assert_ptr_null(back);
        free(f);
        f = forge(buf, params, params_len, p, plen, &fn); /* the forgery itself is sound */
        ck_assert_ok(hc_ctensor_deserialize(&back, f, fn));
        hc_ctensor_free(back);
        free(f);
        free(longer);
        free(p);
        free(a);
        free(b);
        free(buf);
        hc_ctensor_free(ct);
        hc_compressor_free(c);
        free(w);
    }
}
END_TEST

/* Serialises ct with params replaced by params_patch (params_len bytes; NULL keeps them) and
 * patch_len payload bytes at poff replaced by patch, checksums it again, and expects the codec
 * to reject it with a message containing needle. */
static void expect_rejected(const hc_ctensor *ct, uint32_t params_len, const uint8_t *params_patch, size_t poff,
                            const void *patch, size_t patch_len, const char *needle)
{
    size_t n, plen, fn;
    uint8_t *buf = serialise(ct, &n);
    uint8_t *p = payload_copy(ct, &plen);
    uint8_t params[16] = { 0 };
    uint32_t orig_params = hci_get_u32(buf + 12);
    memcpy(params, buf + 24 + 8u * buf[9], orig_params);
    if (params_patch)
        memcpy(params, params_patch, params_len);
    if (patch)
        memcpy(p + poff, patch, patch_len);
    uint8_t *f = forge(buf, params, params_len, p, plen, &fn);
    hc_ctensor *back = (hc_ctensor *)1;
    ck_assert_status(hc_ctensor_deserialize(&back, f, fn), HC_EFORMAT, needle);
    ck_assert_ptr_null(back);
    free(f);
    free(p);
    free(buf);
}

START_TEST(hostile_payloads_are_rejected_by_the_codecs)
{
    float w[15];
    for (int i = 0; i < 15; i++)
        w[i] = (float)(i - 7) * 0.1f;
    uint8_t nan_bytes[4], neg[4], inf[4], big[4];
    hci_put_f32(nan_bytes, NAN);
    hci_put_f32(neg, -1.0f);
    hci_put_f32(inf, INFINITY);
    hci_put_f32(big, 3e38f);

    hc_ctensor *ct = compress_2d("int8", w, 3, 5);
    expect_rejected(ct, 0, NULL, 4, nan_bytes, 4, "row 1 has scale nan");
    expect_rejected(ct, 0, NULL, 0, neg, 4, "row 0 has scale -1");
    const uint8_t m128 = 0x80;
    expect_rejected(ct, 0, NULL, 12 + 6, &m128, 1, "value 6 has code -128");
    const uint8_t junk[4] = { 1, 2, 3, 4 };
    expect_rejected(ct, 4, junk, 0, NULL, 0, "int8 tensor has 4 parameter bytes");
    hc_ctensor_free(ct);

    ct = compress_2d("nf4:block=4,scale_block=2", w, 3, 5); /* 4 blocks, 2 scale blocks */
    const uint8_t block1[8] = { 1, 0, 0, 0, 2, 0, 0, 0 }, block_big[8] = { 0x70, 0x11, 1, 0, 2, 0, 0, 0 };
    const uint8_t sb0[8] = { 4, 0, 0, 0, 0, 0, 0, 0 }, block5[8] = { 5, 0, 0, 0, 2, 0, 0, 0 };
    expect_rejected(ct, 8, block1, 0, NULL, 0, "block size 1");
    expect_rejected(ct, 8, block_big, 0, NULL, 0, "block size 70000");
    expect_rejected(ct, 8, sb0, 0, NULL, 0, "scale block size 0");
    expect_rejected(ct, 8, block5, 0, NULL, 0, "expected 23"); /* 3 blocks of 5 in 2 scale blocks: 4 + 8 + 3 + 8 */
    expect_rejected(ct, 4, block1, 0, NULL, 0, "nf4 tensor has 4 parameter bytes");
    expect_rejected(ct, 8, NULL, 0, inf, 4, "non-finite absmax mean inf");
    expect_rejected(ct, 8, NULL, 8, neg, 4, "block 2 has step -1");
    expect_rejected(ct, 8, NULL, 4, nan_bytes, 4, "block 0 has step nan");
    expect_rejected(ct, 8, NULL, 12 + 1, &m128, 1, "code -128");
    const uint8_t q127 = 127;
    {
        /* a huge step times 127 overflows the block scale */
        size_t n, plen, fn;
        uint8_t *buf = serialise(ct, &n);
        uint8_t *p = payload_copy(ct, &plen);
        memcpy(p + 4, big, 4);
        p[12] = q127;
        uint8_t *f = forge(buf, buf + 24 + 16, 8, p, plen, &fn);
        hc_ctensor *back;
        ck_assert_status(hc_ctensor_deserialize(&back, f, fn), HC_EFORMAT, "block 0 decodes to a non-finite scale");
        free(f);
        free(p);
        free(buf);
    }
    const uint8_t pad = 0x90; /* 15 values: the high nibble of the last byte is padding */
    expect_rejected(ct, 8, NULL, 4 + 8 + 4 + 7, &pad, 1, "nonzero padding nibble");
    hc_ctensor_free(ct);

    ct = compress_2d("ternary", w, 3, 5);
    uint8_t zero[4] = { 0, 0, 0, 0 };
    expect_rejected(ct, 0, NULL, 0, zero, 4, "scale 0");
    expect_rejected(ct, 0, NULL, 0, inf, 4, "scale inf");
    const uint8_t three = 0x0c; /* code 3 in position 1 */
    expect_rejected(ct, 0, NULL, 4 + 2, &three, 1, "byte 2 of the codes holds the unused code 3");
    const uint8_t tpad = 0x40; /* 15 values: bits 6-7 of the last byte are padding */
    expect_rejected(ct, 0, NULL, 4 + 3, &tpad, 1, "nonzero padding bits");
    expect_rejected(ct, 4, junk, 0, NULL, 0, "ternary tensor has 4 parameter bytes");
    hc_ctensor_free(ct);
}
END_TEST

/* ---- specs, options, out of memory ---- */

START_TEST(specs_are_canonical_and_bad_ones_are_named)
{
    struct {
        const char *in, *canonical;
    } ok[] = {
        { "int8", "int8:clip=99.99" },
        { "int8:clip=100", "int8:clip=100" },
        { "int8:clip=99.5", "int8:clip=99.5" },
        { "int8:clip=0.001", "int8:clip=0.001" },
        { "nf4", "nf4:block=64,scale_block=256" },
        { "nf4:scale_block=128,block=32", "nf4:block=32,scale_block=128" },
        { "nf4:block=2:scale_block=1", "nf4:block=2,scale_block=1" },
        { "ternary", "ternary" },
        { "ternary:threads=2", "ternary" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        hc_compressor *c = make(ok[i].in);
        ck_assert_str_eq(hc_compressor_spec(c), ok[i].canonical);
        hc_compressor *again = make(hc_compressor_spec(c));
        ck_assert_str_eq(hc_compressor_spec(again), ok[i].canonical);
        hc_compressor_free(again);
        hc_compressor_free(c);
    }
    struct {
        const char *spec, *needle;
        int code;
    } bad[] = {
        { "int8:clip=0", "clip=0 is not a percentile in (0, 100]", HC_EINVAL },
        { "int8:clip=101", "clip=101 is not a number from 0 to 100", HC_EINVAL },
        { "int8:clip=-5", "clip=-5 is not a number", HC_EINVAL },
        { "int8:clip=abc", "clip=abc", HC_EINVAL },
        { "int8:block=64", "unknown key 'block' for codec 'int8' (accepted: clip=P, threads=N)", HC_EINVAL },
        { "int8:absmax", "unknown preset 'absmax' for codec 'int8'", HC_EINVAL },
        { "nf4:block=1", "block=1 is not a whole number from 2 to 65536", HC_EINVAL },
        { "nf4:block=65537", "block=65537", HC_EINVAL },
        { "nf4:scale_block=0", "scale_block=0 is not a whole number from 1 to 65536", HC_EINVAL },
        { "nf4:clip=99", "unknown key 'clip' for codec 'nf4' (accepted: block=N, scale_block=N, threads=N)",
          HC_EINVAL },
        { "ternary:scale=2", "unknown key 'scale' for codec 'ternary'", HC_EINVAL },
        { "int4", "unknown codec 'int4' (known: f32, fp16, bf16", HC_ENOTFOUND },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hc_compressor *c = (hc_compressor *)1;
        ck_assert_status(hc_compressor_from_spec(&c, bad[i].spec), bad[i].code, bad[i].needle);
        ck_assert_ptr_null(c);
    }
    /* the list of known codecs names the new ones (wherever other codecs sit in it) */
    ck_assert(strstr(hc_last_error(), ", int8") && strstr(hc_last_error(), ", nf4") &&
              strstr(hc_last_error(), ", ternary"));
}
END_TEST

START_TEST(options_are_validated)
{
    hc_scalar_options o;
    ck_assert_ok(hc_scalar_options_init(&o, sizeof o));
    o.kind = HC_SCALAR_NF4;
    o.block_size = 128;
    o.scale_block_size = 16;
    hc_compressor *c;
    ck_assert_ok(hc_scalar_new(&c, &o));
    ck_assert_str_eq(hc_compressor_spec(c), "nf4:block=128,scale_block=16");
    hc_compressor_free(c);
    o.kind = HC_SCALAR_INT8;
    o.clip_percentile = 99.9f;
    ck_assert_ok(hc_scalar_new(&c, &o));
    ck_assert_str_eq(hc_compressor_spec(c), "int8:clip=99.9");
    hc_compressor_free(c);
    o.clip_percentile = 0.0f;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "clip_percentile 0 is outside (0, 100]");
    o.clip_percentile = NAN;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "clip_percentile nan");
    o.clip_percentile = 100.5f;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "clip_percentile 100.5");
    o.clip_percentile = 99.99f;
    o.block_size = 1;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "block_size 1 is outside [2, 65536]");
    o.block_size = 64;
    o.scale_block_size = 0;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "scale_block_size 0 is outside [1, 65536]");
    o.scale_block_size = 256;
    o.kind = (hc_scalar_kind)9;
    ck_assert_status(hc_scalar_new(&c, &o), HC_EINVAL, "unknown kind 9");
}
END_TEST

START_TEST(out_of_memory_leaks_nothing)
{
    const char *specs[] = { "int8:threads=2", "nf4:threads=2", "ternary:threads=2" };
    float *w = test_gauss(60, 300 * 301, 1.0);
    hc_tensor_view v = test_view2("w", w, 300, 301);
    for (size_t k = 0; k < 3; k++) {
        hc_compressor *c = make(specs[k]);
        int ok = 0;
        for (long fail = 1; fail < 64 && !ok; fail++) {
            hc_ctensor *ct = (hc_ctensor *)1;
            hci_alloc_fail_after(fail);
            int rc = hc_compress(&ct, c, &v);
            hci_alloc_fail_after(0);
            if (rc == HC_OK) {
                ok = 1;
                /* deserialising (the NF4 state) fails cleanly too */
                size_t n;
                uint8_t *buf = serialise(ct, &n);
                for (long f2 = 1; f2 < 8; f2++) {
                    hc_ctensor *back = (hc_ctensor *)1;
                    hci_alloc_fail_after(f2);
                    int rc2 = hc_ctensor_deserialize(&back, buf, n);
                    hci_alloc_fail_after(0);
                    if (rc2 == HC_OK) {
                        hc_ctensor_free(back);
                        break;
                    }
                    ck_assert_int_eq(rc2, HC_ENOMEM);
                    ck_assert_ptr_null(back);
                }
                free(buf);
                hc_ctensor_free(ct);
                continue;
            }
            ck_assert_int_eq(rc, HC_ENOMEM);
            ck_assert_ptr_null(ct);
            ck_assert(strstr(hc_last_error(), "out of memory") != NULL);
        }
        ck_assert(ok);
        hc_compressor_free(c);
    }
    free(w);
}
END_TEST

static Suite *scalar_suite(void)
{
    Suite *s = suite_create("scalar");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, nf4_levels_are_the_published_ones);
    tcase_add_test(tc, nf4_known_block_encodes_to_exact_nibbles);
    tcase_add_test(tc, nf4_tiny_payload_layout);
    tcase_add_test(tc, nf4_matches_the_reference_encoder);
    tcase_add_test(tc, nf4_bits_per_weight);
    tcase_add_test(tc, int8_percentile_is_linear_interpolation);
    tcase_add_test(tc, int8_payload_layout_and_clip_semantics);
    tcase_add_test(tc, int8_mostly_zero_row_falls_back_to_absmax);
    tcase_add_test(tc, int8_matches_the_reference_encoder_on_any_thread_count);
    tcase_add_test(tc, ternary_payload_layout_and_sparsity);
    tcase_add_test(tc, ternary_error_and_sparsity_match_closed_forms);
    tcase_add_test(tc, round_trip_error_bounds);
    tcase_add_test(tc, simd_kernels_agree_with_portable);
    tcase_add_test(tc, float_decoding_is_exact_for_every_half);
    tcase_add_test(tc, serialised_round_trip_and_corruption);
    tcase_add_test(tc, hostile_payloads_are_rejected_by_the_codecs);
    tcase_add_test(tc, specs_are_canonical_and_bad_ones_are_named);
    tcase_add_test(tc, options_are_validated);
    tcase_add_test(tc, out_of_memory_leaks_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(scalar_suite());
}
