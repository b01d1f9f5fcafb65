/* VPTQ: exact layout of a tiny tensor, round trips within stated bounds, budgets on odd shapes,
 * fused matvec against decode + dot and SIMD against portable (every ISA x kernel strategy on
 * synthetic tensors of every layout, and the strategy chooser), the Hessian and importance
 * paths, refinement, determinism, hostile payloads, bad specs and OOM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/half.h"
#include "harness.h"
#include "kmeans.h"
#include "vptq/builtin.h"
#include "vptq/encode.h"
#include "vptq/vptq.h"

static hc_compressor *make(const char *spec)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    return c;
}

static hc_ctensor *compress(const char *spec, const hc_tensor_view *v)
{
    hc_compressor *c = make(spec);
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_compress(&ct, c, v));
    hc_compressor_free(c);
    return ct;
}

static float *decode(const hc_ctensor *ct)
{
    size_t n = (size_t)hc_ctensor_numel(ct);
    float *d = malloc(sizeof(float) * n);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d, sizeof(float) * n));
    return d;
}

static uint8_t *serialize(const hc_ctensor *ct, size_t *size)
{
    *size = hc_ctensor_serialized_size(ct);
    uint8_t *b = malloc(*size);
    ck_assert_ok(hc_ctensor_serialize(ct, b, *size));
    return b;
}

START_TEST(tiny_tensor_has_the_documented_layout)
{
    /* 4 x 4, v = 2, k = 2: two distinct vectors, so the codebook is exact */
    float w[16] = { 1, 2, -1, -2, -1, -2, -1, -2, 1, 2, 1, 2, -1, -2, 1, 2 };
    hc_tensor_view v = test_view2("tiny", w, 4, 4);
    hc_ctensor *ct = compress("vptq:bpw=0,v=2,k=2,residual=0,scale=none", &v);
    float *d = decode(ct);
    ck_assert_mem_eq(d, w, sizeof w);
    size_t size;
    uint8_t *b = serialize(ct, &size);
    /* header 24, 2 dims, params 8 + 4, codebook 2 x 2 fp16, 8 one-bit indices, CRC */
    ck_assert_uint_eq(size, 24 + 16 + 12 + 8 + 1 + 4);
    const uint8_t *params = b + 40, *payload = b + 52;
    const uint8_t expect_params[12] = { 3, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0, 0 };
    ck_assert_mem_eq(params, expect_params, 12);
    float c0 = hci_f16_to_f32(hci_get_u16(payload)), c1 = hci_f16_to_f32(hci_get_u16(payload + 2));
    float e1 = hci_f16_to_f32(hci_get_u16(payload + 4));
    ck_assert((c0 == 1 && c1 == 2 && e1 == -1) || (c0 == -1 && c1 == -2 && e1 == 1));
    /* one group of 4 rows per segment: bit s * 4 + r holds the index of vector (s, r) */
    uint8_t bits = 0;
    for (int s = 0; s < 2; s++)
        for (int r = 0; r < 4; r++)
            bits |= (uint8_t)((w[r * 4 + 2 * s] != c0) << (s * 4 + r));
    ck_assert_uint_eq(payload[8], bits);
    hc_stats st = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&st, ct));
    ck_assert_uint_eq(st.bits, 8 * size);
    ck_assert_uint_eq(st.codec_id, HC_CODEC_VPTQ);
    free(b);
    free(d);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(row_grouped_streams_round_trip)
{
    /* 35 rows: a full group of 32 and a group of 3; 3 segments; 5 bits */
    const int64_t rows = 35;
    const uint32_t segs = 3, bits = 5;
    uint32_t idx[105], back[105];
    test_rng r = { 9 };
    for (int i = 0; i < 105; i++)
        idx[i] = (uint32_t)(test_rng_next(&r) % 32);
    uint64_t n = hci_vq_index_bytes(rows, segs, bits);
    ck_assert_uint_eq(n, (105 * 5 + 7) / 8);
    uint8_t *buf = calloc(n, 1);
    hci_vq_put_indices(buf, idx, rows, segs, bits);
    for (uint32_t s = 0; s < segs; s++)
        for (int64_t q = 0; q < rows; q++)
            back[s * rows + q] = hci_vq_get_index(buf, rows, segs, bits, s, q);
    ck_assert_mem_eq(idx, back, sizeof idx);
    /* bit j of row 5 (first group) of segment 2 sits at (2 x 32 + 5) x 5 + j; of row 33 (second
     * group, 3 rows, after the first group's 32 x 3 indices) of segment 1 at (96 + 1 x 3 + 1) x 5 + j */
    for (uint32_t j = 0; j < bits; j++) {
        uint64_t bit = (2 * 32 + 5) * 5 + j;
        ck_assert_uint_eq((buf[bit / 8] >> (bit % 8)) & 1, (idx[2 * 35 + 5] >> j) & 1);
        bit = (96 + 3 + 1) * 5 + j;
        ck_assert_uint_eq((buf[bit / 8] >> (bit % 8)) & 1, (idx[35 + 33] >> j) & 1);
    }
    free(buf);
    /* a full group's unit of one segment is 4 x bits bytes on a byte boundary: 12-bit index
     * (segment 1, row 7) is bits 84..95 of the unit starting at byte 48 */
    for (uint32_t b = 12; b <= 16; b += 4) {
        uint32_t big[105], got[105];
        for (int i = 0; i < 105; i++)
            big[i] = (uint32_t)(test_rng_next(&r) % (1u << b));
        uint64_t nb = hci_vq_index_bytes(rows, segs, b);
        ck_assert_uint_eq(nb, (105 * b + 7) / 8);
        uint8_t *p = calloc(nb, 1);
        hci_vq_put_indices(p, big, rows, segs, b);
        for (uint32_t s = 0; s < segs; s++)
            for (int64_t q = 0; q < rows; q++)
                got[s * rows + q] = hci_vq_get_index(p, rows, segs, b, s, q);
        ck_assert_mem_eq(big, got, sizeof big);
        uint32_t at = 4 * b * 1 * 8 + 7 * b, v = 0;
        for (uint32_t j = 0; j < b; j++)
            v |= (uint32_t)((p[(at + j) / 8] >> ((at + j) % 8)) & 1) << j;
        ck_assert_uint_eq(v, big[35 + 7]);
        free(p);
    }
}
END_TEST

/* Layout versions 1 and 2 (doc/algorithms.md): the same indices segment-major, in floor(b/8)
 * byte planes and then b mod 8 bit planes per 32-row group of each segment. Written here
 * from the description, apart from the library's reader. */
static void legacy_put_indices(uint8_t *dst, const uint32_t *idx, int64_t rows, uint32_t segs, uint32_t bits)
{
    uint64_t n = (uint64_t)rows * segs;
    uint32_t nb = bits / 8, br = bits % 8;
    memset(dst, 0, hci_vq_index_bytes(rows, segs, bits));
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < nb; j++)
            dst[j * n + i] = (uint8_t)(idx[i] >> (8 * j));
    uint64_t bit = 0;
    for (uint32_t s = 0; s < segs; s++)
        for (int64_t g0 = 0; g0 < rows; g0 += 32)
            for (uint32_t j = 0; j < br; j++)
                for (int64_t r = g0; r < rows && r < g0 + 32; r++, bit++)
                    dst[nb * n + bit / 8] |= (uint8_t)(((idx[(uint64_t)s * rows + r] >> (8 * nb + j)) & 1u) << (bit % 8));
}

/* Rewrites every index stream of the serialised-layout payload pl (config cfg, rows x cols)
 * from version 3 order to the planes of versions 1 and 2. */
static void payload_to_legacy(uint8_t *pl, const hci_vq_config *cfg, int64_t rows, int64_t cols)
{
    hci_vq_sections sec;
    ck_assert(hci_vq_layout(&sec, cfg, rows, cols));
    for (uint32_t p = 0; p < hci_vq_nparts(cfg); p++) {
        uint32_t segs = (hci_vq_part_cols(cfg, cols, p) + cfg->part[p].v - 1) / cfg->part[p].v;
        for (int st = 0; st < 2; st++) {
            uint32_t bits = cfg->part[p].bits[st];
            if (!bits)
                continue;
            uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)rows * segs);
            for (uint32_t s = 0; s < segs; s++)
                for (int64_t r = 0; r < rows; r++)
                    idx[(size_t)s * rows + r] = hci_vq_get_index(pl + sec.idx[p][st], rows, segs, bits, s, r);
            legacy_put_indices(pl + sec.idx[p][st], idx, rows, segs, bits);
            free(idx);
        }
    }
}

static void check_round_trip(const char *spec, int64_t rows, int64_t cols, double budget, double max_rel,
                             int laplace)
{
    float *w = laplace ? test_laplace(11, (size_t)(rows * cols), 0.05) : test_gauss(11, (size_t)(rows * cols), 0.05);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_ctensor *ct = compress(spec, &v);
    float *d = decode(ct);
    double rel = test_rel_rmse(w, d, (size_t)(rows * cols));
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_double_eq_tol(s.rel_rmse, rel, 1e-9);
    ck_assert_msg(s.bpw <= budget, "%s: %g bpw over %g", spec, s.bpw, budget);
    ck_assert_msg(rel <= max_rel, "%s: rel_rmse %g above %g", spec, rel, max_rel);
    free(w);
    free(d);
    hc_ctensor_free(ct);
}

START_TEST(presets_round_trip_within_bounds)
{
    /* 256 x 512 Gaussian: bounds sit between the Gaussian rate-distortion limit (2^-R) and
     * the best scalar quantiser (0.343, 0.186, 0.0975) or just above it */
    check_round_trip("vptq:2bit", 256, 512, 2.06, 0.33, 0);
    check_round_trip("vptq:3bit", 256, 512, 3.06, 0.19, 0);
    check_round_trip("vptq:4bit", 256, 512, 4.25, 0.105, 0);
    /* heavy-tailed rows with row scales, explicit residual and outliers */
    check_round_trip("vptq:bpw=3.06,v=4,k=64,residual=16,outlier=0.02,scale=both", 128, 300, 3.06, 0.30, 1);
}
END_TEST

START_TEST(budget_holds_on_odd_shapes)
{
    static const int64_t shapes[][2] = { { 1, 4097 }, { 17, 999 }, { 300, 3 }, { 61, 127 }, { 5000, 1 } };
    static const char *specs[] = { "vptq:2bit", "vptq:3bit", "vptq:4bit" };
    static const double budgets[] = { 2.06, 3.06, 4.25 };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int p = 0; p < 3; p++) {
            size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
            float *w = test_gauss(12 + i, n, 1.0);
            hc_tensor_view v = test_view2("odd", w, shapes[i][0], shapes[i][1]);
            hc_compressor *c = make(specs[p]);
            hc_ctensor *ct = NULL;
            ck_assert_ok(hc_compress(&ct, c, &v));
            hc_stats s = HC_STATS_INIT;
            ck_assert_ok(hc_ctensor_stats(&s, ct));
            ck_assert_msg(s.bpw <= budgets[p], "%s on %lld x %lld: %g bpw", specs[p], (long long)shapes[i][0],
                          (long long)shapes[i][1], s.bpw);
            ck_assert(s.rel_rmse < 0.9);
            hc_ctensor_free(ct);
            hc_compressor_free(c);
            free(w);
        }
    /* all zeros, a constant, and a value fp16 cannot hold */
    {
        float *z = calloc(64 * 64, sizeof(float));
        hc_tensor_view vz = test_view2("zeros", z, 64, 64);
        hc_ctensor *cz = compress("vptq:2bit", &vz);
        float *dz = decode(cz);
        for (int i = 0; i < 64 * 64; i++)
            ck_assert_float_eq(dz[i], 0.0f);
        free(dz);
        hc_ctensor_free(cz);
        for (int i = 0; i < 64 * 64; i++)
            z[i] = 0.75f;
        cz = compress("vptq:3bit", &vz);
        dz = decode(cz);
        ck_assert(test_rel_rmse(z, dz, 64 * 64) < 1e-3);
        free(dz);
        hc_ctensor_free(cz);
        z[77] = 1e6f;
        hc_compressor *cc = make("vptq:4bit");
        ck_assert_status(hc_compress(&cz, cc, &vz), HC_EINVAL, "holds 1e+06 at index 77");
        hc_compressor_free(cc);
        free(z);
    }
    /* a tensor too small for any layout: a clear error with the numbers */
    float w[91];
    for (int i = 0; i < 91; i++)
        w[i] = (float)i;
    hc_tensor_view v = test_view2("small", w, 7, 13);
    hc_compressor *c = make("vptq:2bit");
    hc_ctensor *ct = NULL;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "tensor 'small' (7 x 13) cannot be coded in 2.06 bpw");
    ck_assert_ptr_null(ct);
    hc_compressor_free(c);
}
END_TEST

/* y = W' x with W' decoded, in double */
static void reference_matvec(const float *d, const float *x, double *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        double a = 0;
        for (int64_t c = 0; c < cols; c++)
            a += (double)d[r * cols + c] * x[c];
        y[r] = a;
    }
}

START_TEST(fused_matvec_matches_decode_and_portable)
{
    static const char *specs[] = {
        "vptq:bpw=0,v=6,k=4096,residual=0,scale=none",
        "vptq:bpw=0,v=4,k=256,residual=16,scale=both",
        "vptq:bpw=0,v=2,k=64,residual=0,outlier=0.05,scale=row",
        "vptq:4bit",
        "vptq:3bit,scale=auto",
    };
    const int64_t rows = 101, cols = 130;
    float *w = test_laplace(13, rows * cols, 1.0), *x = test_gauss(14, cols, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    float y[101], yp[101];
    double ref[101];
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        hc_ctensor *ct = compress(specs[i], &v);
        float *d = decode(ct);
        reference_matvec(d, x, ref, rows, cols);
        double scale = 0;
        for (int64_t r = 0; r < rows; r++)
            scale = fmax(scale, fabs(ref[r]));
        for (uint32_t t = 1; t <= 3; t++) {
            ck_assert_ok(hc_ctensor_set_threads(ct, t));
            ck_assert_ok(hc_ctensor_matvec(ct, x, y));
            ck_assert_ok(hci_vq_matvec_portable(ct->state, x, yp, 0, rows));
            for (int64_t r = 0; r < rows; r++) {
                ck_assert_msg(fabs(y[r] - ref[r]) <= 1e-4 * (scale + 1), "%s row %lld: %g vs %g", specs[i],
                              (long long)r, (double)y[r], ref[r]);
                ck_assert_msg(fabs(yp[r] - ref[r]) <= 1e-4 * (scale + 1), "%s portable row %lld", specs[i],
                              (long long)r);
            }
        }
        /* the same through the ISA cap, as users see it */
        setenv("HYPERCOMP_ISA", "portable", 1);
        ck_assert_ok(hc_ctensor_matvec(ct, x, y));
        unsetenv("HYPERCOMP_ISA");
        for (int64_t r = 0; r < rows; r++)
            ck_assert_float_eq(y[r], yp[r]);
        setenv("HYPERCOMP_ISA", "avx2", 1);
        ck_assert_ok(hc_ctensor_matvec(ct, x, y));
        unsetenv("HYPERCOMP_ISA");
        for (int64_t r = 0; r < rows; r++)
            ck_assert(fabs(y[r] - ref[r]) <= 1e-4 * (scale + 1));
        free(d);
        hc_ctensor_free(ct);
    }
    /* rows spanning many 32-row groups, split on unaligned thread ranges */
    const int64_t r2 = 1000, c2 = 64;
    float *w2 = test_gauss(15, r2 * c2, 1.0), *y2 = malloc(sizeof(float) * r2);
    double *ref2 = malloc(sizeof(double) * r2);
    hc_tensor_view v2 = test_view2("w2", w2, r2, c2);
    hc_ctensor *ct = compress("vptq:bpw=0,v=8,k=1024,residual=0,scale=none", &v2);
    float *d = decode(ct);
    reference_matvec(d, x, ref2, r2, c2);
    for (uint32_t t = 1; t <= 3; t++) {
        ck_assert_ok(hc_ctensor_set_threads(ct, t));
        ck_assert_ok(hc_ctensor_matvec(ct, x, y2));
        for (int64_t r = 0; r < r2; r++)
            ck_assert(fabs(y2[r] - ref2[r]) <= 1e-4 * (1 + fabs(ref2[r])));
    }
    ck_assert_ok(hci_vq_matvec_portable(ct->state, x, y2, 7, 999));
    for (int64_t r = 7; r < 999; r++)
        ck_assert(fabs(y2[r] - ref2[r]) <= 1e-4 * (1 + fabs(ref2[r])));
    free(d);
    hc_ctensor_free(ct);
    free(w2);
    free(y2);
    free(ref2);
    free(w);
    free(x);
}
END_TEST

/* ---- the matvec kernels on synthetic tensors of every layout ---- */

/* A tensor of layout cfg with random fp16 codebooks, indices and scales, attached by hand
 * (the planner would not pick most of these layouts); free with free_synthetic. */
static hc_ctensor *synthetic(uint64_t seed, int64_t rows, int64_t cols, const hci_vq_config *cfg)
{
    hci_vq_sections sec;
    ck_assert(hci_vq_layout(&sec, cfg, rows, cols));
    test_rng rng = { seed };
    hc_ctensor *ct = calloc(1, sizeof *ct);
    ct->ndim = 2;
    ct->shape[0] = ct->rows = rows;
    ct->shape[1] = ct->cols = cols;
    ct->numel = rows * cols;
    ct->params_len = sec.params_len;
    ct->params = malloc(sec.params_len);
    hci_vq_write_params(ct->params, cfg);
    ct->payload_len = sec.payload_len;
    ct->payload = calloc(1, sec.payload_len);
    uint8_t *pl = ct->payload;
    /* outlier columns: every (cols / n_out)-th, ascending */
    for (uint32_t i = 0; i < cfg->n_out; i++) {
        uint32_t c = (uint32_t)((int64_t)i * cols / cfg->n_out);
        for (uint32_t b = 0; b < sec.col_bits; b++) {
            uint64_t bit = (uint64_t)i * sec.col_bits + b;
            pl[sec.out_cols + bit / 8] |= (uint8_t)(((c >> b) & 1u) << (bit % 8));
        }
    }
    if (cfg->flags & VQ_FLAG_COL)
        for (int64_t c = 0; c < cols; c++)
            hci_put_u16(pl + sec.col_scales + 2 * c, hci_f32_to_f16((float)(0.25 + 2 * test_rng_uniform(&rng))));
    if (cfg->flags & VQ_FLAG_ROW) {
        hci_put_u16(pl + sec.row_scales, hci_f32_to_f16(1.5f));
        for (int64_t r = 0; r < rows; r++)
            pl[sec.row_scales + 2 + r] = (uint8_t)(r == 1 ? 255 : test_rng_next(&rng) % 40);
    }
    for (uint32_t p = 0; p < hci_vq_nparts(cfg); p++) {
        const hci_vq_part_cfg *pc = &cfg->part[p];
        uint32_t segs = (hci_vq_part_cols(cfg, cols, p) + pc->v - 1) / pc->v;
        uint64_t ng = (uint64_t)rows * hci_vq_ngroups(segs, pc->gsegs);
        for (uint64_t i = 0; i < (ng + 1) / 2; i++)
            pl[sec.grp[p] + i] = (uint8_t)test_rng_next(&rng);
        for (int st = 0; st < 2; st++) {
            if (!pc->bits[st])
                continue;
            uint32_t k = 1u << pc->bits[st];
            for (uint64_t e = 0; e < (uint64_t)k * pc->v; e++)
                hci_put_u16(pl + sec.cb[p][st] + 2 * e, hci_f32_to_f16((float)test_rng_gauss(&rng)));
            size_t n = (size_t)rows * segs;
            uint32_t *idx = malloc(sizeof(uint32_t) * n);
            for (size_t i = 0; i < n; i++)
                idx[i] = (uint32_t)(test_rng_next(&rng) % k);
            hci_vq_put_indices(pl + sec.idx[p][st], idx, rows, segs, pc->bits[st]);
            free(idx);
        }
    }
    ck_assert_ok(hci_vq_attach(ct));
    return ct;
}

static void free_synthetic(hc_ctensor *ct)
{
    hci_vq_detach(ct);
    free(ct->params);
    free(ct->payload);
    free(ct);
}

/* Decode with isa of value ranges (whole rows, rows entered or left part way, one value) equals
 * the same values of the whole tensor's decode d, and writes nothing past its range. */
static void check_decode_ranges(const hc_ctensor *ct, const char *what, const float *d, hci_isa isa)
{
    const int64_t n = ct->rows * ct->cols, cols = ct->cols;
    const int64_t ranges[][2] = { { 0, cols }, { 1, n - 2 }, { cols - 1, cols + 2 }, { cols, n - cols },
                                  { n / 2, 1 }, { n - 1, 1 } };
    float *got = malloc(sizeof(float) * (size_t)(n + 1));
    ck_assert_ptr_nonnull(got);
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        const int64_t first = ranges[k][0], count = ranges[k][1];
        if (first < 0 || count < 1 || first + count > n)
            continue;
        for (int64_t i = 0; i <= count; i++)
            got[i] = NAN;
        ck_assert_ok(hci_vq_decode_with(ct->state, first, count, got, isa));
        for (int64_t i = 0; i < count; i++)
            ck_assert_each_msg(!memcmp(&got[i], &d[first + i], sizeof(float)),
                               "%s isa %d: decode of [%lld, +%lld): value %lld is %g, the whole decode's %g", what,
                               (int)isa, (long long)first, (long long)count, (long long)(first + i), got[i],
                               d[first + i]);
        ck_assert_each_msg(isnan(got[count]), "%s isa %d: decode of [%lld, +%lld) wrote past its range", what,
                           (int)isa, (long long)first, (long long)count);
    }
    free(got);
}

/* Every kernel (portable, AVX2, AVX-512 as far as the CPU goes; tables, gather-dot, the
 * chooser) on rows [row0, row1) against decode + dot in double, within fp32 rounding of the
 * sum of |w x| terms; decode with every isa, byte for byte the portable decode, also of ranges. */
static void check_kernels(const hc_ctensor *ct, const char *what, const float *x, int64_t row0, int64_t row1)
{
    int64_t rows = ct->rows, cols = ct->cols;
    float *d = malloc(sizeof(float) * (size_t)(rows * cols)), *y = malloc(sizeof(float) * (size_t)rows);
    float *yp = malloc(sizeof(float) * (size_t)rows), *di = malloc(sizeof(float) * (size_t)(rows * cols));
    ck_assert_ok(hci_vq_decode_with(ct->state, 0, rows * cols, d, HCI_ISA_PORTABLE));
    for (int isa = HCI_ISA_PORTABLE; isa <= HCI_ISA_AVX512; isa++) {
        ck_assert_ok(hci_vq_decode_with(ct->state, 0, rows * cols, di, (hci_isa)isa));
        for (int64_t i = 0; i < rows * cols; i++)
            ck_assert_each_msg(!memcmp(&di[i], &d[i], sizeof(float)), "%s isa %d: value %lld is %g, portable %g",
                               what, isa, (long long)i, di[i], d[i]);
        check_decode_ranges(ct, what, d, (hci_isa)isa);
    }
    free(di);
    static const hci_vq_strategy how[] = { HCI_VQ_LUT, HCI_VQ_GATHER, HCI_VQ_AUTO };
    ck_assert_ok(hci_vq_matvec_with(ct->state, x, yp, row0, row1, HCI_ISA_PORTABLE, HCI_VQ_GATHER));
    for (int isa = HCI_ISA_PORTABLE; isa <= HCI_ISA_AVX512; isa++)
        for (int h = 0; h < 3; h++) {
            for (int64_t r = 0; r < rows; r++)
                y[r] = 1e30f;   /* rows outside the range must stay untouched */
            ck_assert_ok(hci_vq_matvec_with(ct->state, x, y, row0, row1, (hci_isa)isa, how[h]));
            for (int64_t r = 0; r < rows; r++) {
                if (r < row0 || r >= row1) {
                    ck_assert_each_msg(y[r] == 1e30f, "%s: row %lld outside [%lld, %lld) written", what, (long long)r,
                                       (long long)row0, (long long)row1);
                    continue;
                }
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; c++) {
                    ref += (double)d[r * cols + c] * x[c];
                    mag += fabs((double)d[r * cols + c] * x[c]);
                }
                double tol = 1e-5 * mag + 1e-30;
                ck_assert_each_msg(fabs(y[r] - ref) <= tol, "%s isa %d strategy %d row %lld: %.9g vs %.9g (tol %g)",
                                   what, isa, (int)how[h], (long long)r, (double)y[r], ref, tol);
                ck_assert_each_msg(fabs(y[r] - yp[r]) <= 2 * tol,
                                   "%s isa %d strategy %d row %lld: %.9g vs portable %.9g", what, isa, (int)how[h],
                                   (long long)r, (double)y[r], (double)yp[r]);
            }
        }
    free(d);
    free(y);
    free(yp);
}

START_TEST(matvec_kernels_match_decode_on_every_layout)
{
    const int64_t rows = 77, cols = 93;   /* neither a multiple of 32 nor of any v */
    float *x = test_gauss(21, 256, 1.0);
    int cases = 0;
    for (uint32_t v = 2; v <= VQ_MAX_V; v++)
        for (int variant = 0; variant < 4; variant++) {
            hci_vq_config cfg;
            memset(&cfg, 0, sizeof cfg);
            /* 0: small k, nothing else; 1: k = 4096 with a residual and row + column scales;
             * 2: outliers (own codebook) and group scales; 3: all of it with odd groups */
            cfg.part[0].v = v;
            cfg.part[0].bits[0] = variant == 0 ? 3 : variant == 2 ? 9 : 12;
            cfg.part[0].bits[1] = variant == 1 || variant == 3 ? 5 : 0;
            cfg.part[0].gsegs = variant == 2 ? 2 : variant == 3 ? 3 : 0;
            cfg.flags = variant == 1 ? (VQ_FLAG_ROW | VQ_FLAG_COL) : variant == 3 ? (VQ_FLAG_ROW | VQ_FLAG_COL) : 0;
            if (variant >= 2) {
                cfg.n_out = 5;
                cfg.part[1].v = 2 + v % 3;
                cfg.part[1].bits[0] = variant == 2 ? 12 : 4;
                cfg.part[1].bits[1] = variant == 3 ? 3 : 0;
            }
            hc_ctensor *ct = synthetic(100 + v * 4 + (uint64_t)variant, rows, cols, &cfg);
            char what[64];
            snprintf(what, sizeof what, "v=%u variant %d", v, variant);
            check_kernels(ct, what, x, 0, rows);
            check_kernels(ct, what, x, 33, 70);   /* a thread's range, starting mid-group */
            check_kernels(ct, what, x, 76, 77);   /* the last row alone, in the short group */
            free_synthetic(ct);
            cases++;
        }
    ck_assert_int_eq(cases, 60);
    /* shapes at the edges: one row, one column, tall (many tiles, a short last group), 16-bit
     * indices (too wide for the SIMD gather offsets: the table kernel steps in) */
    static const struct {
        int64_t rows, cols;
        uint32_t v, bits, res;
    } edge[] = { { 1, 40, 4, 12, 0 }, { 50, 1, 2, 6, 0 }, { 300, 20, 8, 12, 4 }, { 40, 24, 8, 16, 0 },
                 { 33, 48, 16, 14, 0 }, { 33, 48, 16, 15, 0 } };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        hci_vq_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.part[0].v = edge[i].v;
        cfg.part[0].bits[0] = edge[i].bits;
        cfg.part[0].bits[1] = edge[i].res;
        hc_ctensor *ct = synthetic(500 + i, edge[i].rows, edge[i].cols, &cfg);
        char what[64];
        snprintf(what, sizeof what, "edge %zu", i);
        check_kernels(ct, what, x, 0, edge[i].rows);
        if (edge[i].rows > 2)
            check_kernels(ct, what, x, 1, edge[i].rows - 1);
        free_synthetic(ct);
    }
    free(x);
}
END_TEST

START_TEST(matvec_chooser_follows_the_cost_estimate)
{
    /* portable: a large codebook beside one row is cheaper gathered, a small one beside many
     * rows through tables; SIMD gathers unless the 16-bit offsets would overflow */
    hci_vq_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.part[0].v = 6;
    cfg.part[0].bits[0] = 12;
    hc_ctensor *ct = synthetic(7, 64, 60, &cfg);
    ck_assert_int_eq(hci_vq_choose(ct->state, 0, 0, 1, HCI_ISA_PORTABLE), HCI_VQ_GATHER);
    ck_assert_int_eq(hci_vq_choose(ct->state, 0, 0, 64, HCI_ISA_AVX512), HCI_VQ_GATHER);
    free_synthetic(ct);
    cfg.part[0].bits[0] = 2;
    ct = synthetic(8, 64, 60, &cfg);
    ck_assert_int_eq(hci_vq_choose(ct->state, 0, 0, 64, HCI_ISA_PORTABLE), HCI_VQ_LUT);
    free_synthetic(ct);
    cfg.part[0].v = 8;
    cfg.part[0].bits[0] = 16;
    ct = synthetic(9, 4, 16, &cfg);
    ck_assert_int_eq(hci_vq_choose(ct->state, 0, 0, 4, HCI_ISA_AVX512), HCI_VQ_LUT);
    ck_assert_int_eq(hci_vq_choose(ct->state, 0, 0, 4, HCI_ISA_PORTABLE), HCI_VQ_GATHER);
    free_synthetic(ct);
}
END_TEST

/* tr(dW H dW^T) */
static double h_error(const float *w, const float *d, const float *h, int64_t rows, int64_t cols)
{
    double s = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t a = 0; a < cols; a++) {
            double ea = (double)w[r * cols + a] - d[r * cols + a];
            for (int64_t b = 0; b < cols; b++)
                s += ea * h[a * cols + b] * ((double)w[r * cols + b] - d[r * cols + b]);
        }
    return s;
}

START_TEST(hessian_path_lowers_the_weighted_error)
{
    /* inputs with strongly correlated, unequal columns: H = X^T X */
    const int64_t rows = 64, cols = 48, nx = 400;
    float *w = test_gauss(16, rows * cols, 1.0), *z = test_gauss(17, nx * cols, 1.0);
    float *x = malloc(sizeof(float) * nx * cols), *h = calloc(cols * cols, sizeof(float));
    for (int64_t i = 0; i < nx; i++)
        for (int64_t c = 0; c < cols; c++) {
            double a = z[i * cols + c] * (1.0 + c % 5);
            if (c)
                a += 0.9 * x[i * cols + c - 1];
            x[i * cols + c] = (float)a;
        }
    for (int64_t a = 0; a < cols; a++)
        for (int64_t b = 0; b < cols; b++) {
            double s = 0;
            for (int64_t i = 0; i < nx; i++)
                s += (double)x[i * cols + a] * x[i * cols + b];
            h[a * cols + b] = (float)(s / nx);
        }
    hc_tensor_view v = test_view2("h", w, rows, cols);
    const char *spec = "vptq:bpw=0,v=4,k=64,residual=0,scale=none";
    hc_ctensor *plain = compress(spec, &v);
    v.hessian = h;
    hc_ctensor *gptq = compress(spec, &v);
    float *dp = decode(plain), *dg = decode(gptq);
    double ep = h_error(w, dp, h, rows, cols), eg = h_error(w, dg, h, rows, cols);
    ck_assert_msg(eg < 0.8 * ep, "H-weighted error with Hessian %g, without %g", eg, ep);
    /* refinement against the same loss never makes it worse, and here makes it better */
    hc_ctensor *ref = compress("vptq:bpw=0,v=4,k=64,residual=0,scale=none,refine=30,grokfast=1", &v);
    float *dr = decode(ref);
    double er = h_error(w, dr, h, rows, cols);
    ck_assert_msg(er < eg, "refined %g vs GPTQ %g", er, eg);
    free(dr);
    hc_ctensor_free(ref);
    free(dp);
    free(dg);
    hc_ctensor_free(plain);
    hc_ctensor_free(gptq);
    free(w);
    free(z);
    free(x);
    free(h);
}
END_TEST

START_TEST(importance_protects_important_columns)
{
    const int64_t rows = 128, cols = 64;
    float *w = test_gauss(18, rows * cols, 1.0), imp[64];
    for (int c = 0; c < cols; c++)
        imp[c] = c < 8 ? 100.0f : 1.0f;
    hc_tensor_view v = test_view2("imp", w, rows, cols);
    const char *spec = "vptq:bpw=0,v=4,k=16,residual=0,scale=none";
    hc_ctensor *plain = compress(spec, &v);
    v.importance = imp;
    hc_ctensor *weighted = compress(spec, &v);
    float *dp = decode(plain), *dw = decode(weighted);
    double ep = 0, ew = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double a = (double)w[r * cols + c] - dp[r * cols + c], b = (double)w[r * cols + c] - dw[r * cols + c];
            ep += imp[c] * a * a;
            ew += imp[c] * b * b;
        }
    ck_assert_msg(ew < 0.9 * ep, "importance-weighted error %g vs plain %g", ew, ep);
    free(dp);
    free(dw);
    hc_ctensor_free(plain);
    hc_ctensor_free(weighted);
    free(w);
}
END_TEST

START_TEST(compression_is_deterministic)
{
    float *w = test_laplace(19, 96 * 80, 1.0);
    hc_tensor_view v = test_view2("det", w, 96, 80);
    /* the planner's default, the built-in codebook, and Lloyd on all vectors after a subsample */
    static const char *specs[] = { "vptq:3bit,threads=2", "vptq:4bit,codebook=builtin,threads=2",
                                   "vptq:bpw=0,v=2,k=16,residual=0,scale=row,train=500,threads=2" };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        hc_ctensor *a = compress(specs[i], &v), *b = compress(specs[i], &v);
        size_t na, nb;
        uint8_t *sa = serialize(a, &na), *sb = serialize(b, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(sa, sb, na);
        free(sa);
        free(sb);
        hc_ctensor_free(a);
        hc_ctensor_free(b);
    }
    free(w);
}
END_TEST

START_TEST(version_2_streams_are_rewritten_at_attach)
{
    /* one part at 12 + 5 bits over 70 rows (two full groups and 6 rows); two parts at 16 and
     * 9 bits over 33 rows: decoded and matvec'd alike from either order */
    hci_vq_config cfg[2] = { { VQ_FLAG_ROW, 0, { { 3, { 12, 5 }, 0, 0 } } },
                             { VQ_FLAG_COL, 5, { { 2, { 16, 0 }, 3, 0 }, { 4, { 9, 0 }, 0, 0 } } } };
    const int64_t shape[2][2] = { { 70, 45 }, { 33, 40 } };
    for (int c = 0; c < 2; c++) {
        int64_t rows = shape[c][0], cols = shape[c][1];
        hc_ctensor *cur = synthetic(900 + (uint64_t)c, rows, cols, &cfg[c]);
        hc_ctensor *old = calloc(1, sizeof *old);
        *old = *cur;
        old->state = NULL;
        old->params = malloc(cur->params_len);
        memcpy(old->params, cur->params, cur->params_len);
        old->params[0] = 2;
        old->payload = malloc(cur->payload_len);
        memcpy(old->payload, cur->payload, cur->payload_len);
        payload_to_legacy(old->payload, &cfg[c], rows, cols);
        ck_assert(memcmp(old->payload, cur->payload, cur->payload_len) != 0);
        ck_assert_ok(hci_vq_attach(old));
        const hci_vq_state *a = cur->state, *b = old->state;
        for (uint32_t p = 0; p < a->nparts; p++)
            for (int st = 0; st < 2; st++)
                if (a->part[p].bits[st])
                    ck_assert_mem_eq(a->part[p].idx[st], b->part[p].idx[st],
                                     hci_vq_index_bytes(rows, a->part[p].segs, a->part[p].bits[st]));
        float *d0 = malloc(sizeof(float) * (size_t)(rows * cols)), *d1 = malloc(sizeof(float) * (size_t)(rows * cols));
        ck_assert_ok(hci_vq_decode(cur, 0, rows * cols, d0));
        ck_assert_ok(hci_vq_decode(old, 0, rows * cols, d1));
        ck_assert_mem_eq(d0, d1, sizeof(float) * (size_t)(rows * cols));
        free(d0);
        free(d1);
        free_synthetic(old);
        free_synthetic(cur);
    }
}
END_TEST

/* Rewrites the CRC after an edit so the codec's own checks are what rejects the bytes. */
static void fix_crc(uint8_t *b, size_t size)
{
    hci_put_u32(b + size - 4, hci_crc32c(0, b, size - 4));
}

START_TEST(hostile_payloads_are_rejected)
{
    float *w = test_gauss(20, 40 * 30, 1.0);
    hc_tensor_view v = test_view2("hostile", w, 40, 30);
    hc_ctensor *ct = compress("vptq:bpw=0,v=4,k=16,residual=4,outlier=0.1,scale=both", &v);
    size_t size;
    uint8_t *b = serialize(ct, &size);
    hc_ctensor *back = NULL;
    ck_assert_ok(hc_ctensor_deserialize(&back, b, size));
    float *d0 = decode(ct), *d1 = decode(back);
    ck_assert_mem_eq(d0, d1, sizeof(float) * 1200);
    hc_ctensor_free(back);
    /* every truncation and every single bit flip: an error, never a crash */
    test_expect_hostile_serialised(b, size, 3, "vptq tensor");
    /* edits with a valid CRC reach the codec's attach */
    const size_t P = 40; /* params start after the 24-byte header and two dims */
    struct {
        size_t off;
        uint8_t val;
        const char *msg;
    } edits[] = {
        { P + 0, 0, "layout version 0" },
        { P + 0, 4, "layout version 4; this library reads versions 1 to 3" },
        { P + 1, 16 | 3, "(layout version 3) has unknown flags 0x13" },
        { P + 1, 4 | 3, "built-in codebook of 4-vectors at 4 bits; there is none" },
        { P + 2, 1, "declares 1 parts with 3 outlier columns" },
        { P + 3, 1, "nonzero reserved byte" },
        { P + 4, 30, "declares 30 outlier columns of 30" },
        { P + 8, 1, "vector length 1" },
        { P + 8, 17, "vector length 17" },
        { P + 9, 0, "index bits 0" },
        { P + 9, 17, "index bits 17" },
        { P + 10, 3, "payload of" },
        { P + 9, 5, "payload of" },
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        uint8_t *c = malloc(size);
        memcpy(c, b, size);
        c[edits[e].off] = edits[e].val;
        fix_crc(c, size);
        ck_assert_status(hc_ctensor_deserialize(&back, c, size), HC_EFORMAT, edits[e].msg);
        free(c);
    }
    /* outlier columns out of order, and a non-finite codebook entry */
    {
        uint8_t *c = malloc(size);
        memcpy(c, b, size);
        c[56] = 0xff; /* payload after 16 params bytes: outlier column 31 > 29 */
        fix_crc(c, size);
        ck_assert_status(hc_ctensor_deserialize(&back, c, size), HC_EFORMAT, "outlier column");
        memcpy(c, b, size);
        hci_vq_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.flags = VQ_FLAG_ROW | VQ_FLAG_COL;
        cfg.n_out = 3;
        cfg.part[0].v = 4;
        cfg.part[0].bits[0] = 4;
        cfg.part[0].bits[1] = 2;
        cfg.part[1] = cfg.part[0];
        hci_vq_sections sec;
        ck_assert(hci_vq_layout(&sec, &cfg, 40, 30));
        ck_assert_uint_eq(sec.payload_len + 56 + 4, size);
        hci_put_u16(c + 56 + sec.cb[0][0], 0x7c00); /* +inf */
        fix_crc(c, size);
        ck_assert_status(hc_ctensor_deserialize(&back, c, size), HC_EFORMAT, "non-finite");
        memcpy(c, b, size);
        hci_put_u16(c + 56 + sec.col_scales, 0xbc00); /* -1 */
        fix_crc(c, size);
        ck_assert_status(hc_ctensor_deserialize(&back, c, size), HC_EFORMAT, "column scale 0 is -1");
        free(c);
    }
    free(d0);
    free(d1);
    free(b);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

START_TEST(bad_specs_and_options_are_rejected)
{
    hc_compressor *c = NULL;
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:v=1"), HC_EINVAL, "v=1 is not a whole number from 2 to 16");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:k=3"), HC_EINVAL, "k=3 is not a power of two");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:k=131072"), HC_EINVAL, "k=131072");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:5bit"), HC_EINVAL, "unknown preset '5bit'");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:2bit,3bit"), HC_EINVAL, "more than one preset");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:scale=diag"), HC_EINVAL, "scale=diag");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:bpw=0"), HC_EINVAL, "bpw=0 (no budget) needs v and k");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:outlier=0.9"), HC_EINVAL, "outlier=0.9");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:residual=6"), HC_EINVAL, "residual=6");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:grokfast=2"), HC_EINVAL, "grokfast=2");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:color=red"), HC_EINVAL, "unknown key 'color'");
    ck_assert_status(hc_compressor_from_spec(&c, "vptq:codebook=shared"), HC_EINVAL,
                     "codebook=shared is not one of auto, learned, builtin");
    ck_assert_ptr_null(c);
    c = make("vptq:3bit,v=4,residual=auto,seed=7,threads=2");
    ck_assert_str_eq(hc_compressor_spec(c),
                     "vptq:bpw=3.06,v=4,k=auto,residual=auto,outlier=0,scale=auto,iters=20,refine=0,grokfast=1,"
                     "seed=7,train=262144,threads=2,codebook=auto");
    hc_compressor *again = make(hc_compressor_spec(c));
    ck_assert_str_eq(hc_compressor_spec(again), hc_compressor_spec(c));
    hc_compressor_free(again);
    hc_compressor_free(c);
    hc_vptq_options o;
    ck_assert_ok(hc_vptq_options_init(&o, sizeof o));
    ck_assert_float_eq(o.bpw, 2.06f);
    o.v = 17;
    ck_assert_status(hc_vptq_new(&c, &o), HC_EINVAL, "vector length v = 17");
    o.v = 0;
    o.k = 100;
    ck_assert_status(hc_vptq_new(&c, &o), HC_EINVAL, "k = 100");
    o.k = 0;
    o.codebook = (hc_vptq_codebook)3;
    ck_assert_status(hc_vptq_new(&c, &o), HC_EINVAL, "unknown codebook source 3");
    o.codebook = HC_VPTQ_CODEBOOK_AUTO;
    o.struct_size = sizeof o + 4;
    ck_assert_status(hc_vptq_new(&c, &o), HC_EVERSION, "larger");
    ck_assert_status(hc_vptq_new(NULL, NULL), HC_EINVAL, "out is NULL");
    ck_assert_status(hc_vptq_options_init(&o, sizeof o + 4), HC_EVERSION, "larger");
}
END_TEST

START_TEST(out_of_memory_is_reported)
{
    float *w = test_gauss(21, 64 * 48, 1.0);
    hc_tensor_view v = test_view2("oom", w, 64, 48);
    hc_compressor *c = make("vptq:bpw=3,v=4,residual=auto,outlier=0.05");
    int failures = 0;
    for (long i = 1; i < 400; i += 13) {
        hc_ctensor *ct = NULL;
        hci_alloc_fail_after(i);
        int rc = hc_compress(&ct, c, &v);
        hci_alloc_fail_after(0);
        if (rc == HC_ENOMEM) {
            failures++;
            ck_assert_ptr_null(ct);
        } else {
            ck_assert_int_eq(rc, HC_OK);
        }
        hc_ctensor_free(ct);
    }
    ck_assert(failures > 5);
    /* decode and matvec of a good tensor: each of their allocations failed in turn gives
     * HC_ENOMEM with its message, and the first call that allocates enough succeeds */
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_compress(&ct, c, &v));
    float *d = malloc(sizeof(float) * 64 * 48), *x = test_gauss(22, 48, 1.0), y[64];
    for (int op = 0; op < 2; op++) {
        int fails = 0, rc = HC_ENOMEM;
        for (long i = 1; rc == HC_ENOMEM; i++) {
            hci_alloc_fail_after(i);
            rc = op ? hc_ctensor_matvec(ct, x, y) : hc_ctensor_decode(ct, HC_DTYPE_F32, d, sizeof(float) * 64 * 48);
            hci_alloc_fail_after(0);
            if (rc == HC_ENOMEM) {
                ck_assert_msg(strstr(hc_last_error(), "out of memory") != NULL, "%s", hc_last_error());
                fails++;
            }
        }
        ck_assert_int_eq(rc, HC_OK);
        ck_assert_msg(fails >= 1, "%s allocates nothing", op ? "matvec" : "decode");
    }
    hc_ctensor_free(ct);
    free(d);
    free(x);
    hc_compressor_free(c);
    free(w);
}
END_TEST

START_TEST(builtin_codebooks_round_trip_and_cost_nothing)
{
    /* the tables: every documented (v, bits) exists, finite and centred; centroids of unit-variance
     * data, so of the order of 1 (the rare outer ones, counted once each, make the mean square
     * exceed 1) */
    static const uint32_t have[][3] = { { 2, 4, 10 }, { 3, 6, 12 }, { 4, 8, 12 } };
    for (int i = 0; i < 3; i++)
        for (uint32_t b = have[i][1]; b <= have[i][2]; b++) {
            const uint16_t *t = hci_vq_builtin_table(have[i][0], b);
            ck_assert_ptr_nonnull(t);
            double sum = 0, sq = 0;
            size_t n = ((size_t)1 << b) * have[i][0];
            for (size_t j = 0; j < n; j++) {
                float f = hci_f16_to_f32(t[j]);
                ck_assert(isfinite(f));
                sum += f;
                sq += (double)f * f;
            }
            ck_assert_msg(fabs(sum / n) < 0.1 && sq / n > 0.5 && sq / n < 4.0, "v=%u bits=%u: mean %g, ms %g",
                          have[i][0], b, sum / n, sq / n);
        }
    ck_assert_ptr_null(hci_vq_builtin_table(2, 11));
    ck_assert_ptr_null(hci_vq_builtin_table(5, 8));

    /* a heavy-tailed 192 x 320 matrix at the 3- and 4-bit budgets with the built-in codebook:
     * within the budget, the flag set, no codebook bytes, matvec equal to decode + dot */
    const int64_t rows = 192, cols = 320;
    float *w = test_laplace(40, (size_t)(rows * cols), 1.0);
    hc_tensor_view v = test_view2("builtin", w, rows, cols);
    static const struct {
        const char *spec;
        double bpw, bound;
    } cases[] = { { "vptq:3bit,codebook=builtin", 3.06, 0.20 }, { "vptq:4bit,codebook=builtin", 4.25, 0.11 } };
    for (int i = 0; i < 2; i++) {
        hc_ctensor *ct = compress(cases[i].spec, &v);
        hc_stats st = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&st, ct));
        float *d = decode(ct);
        double e = test_rel_rmse(w, d, (size_t)(rows * cols));
        ck_assert_msg(st.bpw <= cases[i].bpw && e < cases[i].bound, "%s: %g bpw, rel_rmse %g", cases[i].spec,
                      st.bpw, e);
        size_t size;
        uint8_t *b = serialize(ct, &size);
        const uint8_t *params = b + 40;
        ck_assert_uint_eq(params[0], 3);
        ck_assert(params[1] & VQ_FLAG_BUILTIN0);
        hci_vq_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.flags = params[1] & 3u;
        cfg.part[0].v = params[8];
        cfg.part[0].bits[0] = params[9];
        cfg.part[0].gsegs = params[11];
        cfg.part[0].builtin = 1;
        ck_assert_uint_eq(params[10], 0);
        hci_vq_sections sec;
        ck_assert(hci_vq_layout(&sec, &cfg, rows, cols));
        ck_assert_uint_eq(sec.cb[0][1], sec.cb[0][0]); /* the main codebook takes no bytes */
        ck_assert_uint_eq(hci_vq_serialized_bytes(&cfg, rows, cols, 2), size);
        float *x = test_gauss(41, (size_t)cols, 1.0), *y = malloc(sizeof(float) * rows);
        double *yr = malloc(sizeof(double) * rows);
        ck_assert_ok(hc_ctensor_matvec(ct, x, y));
        reference_matvec(d, x, yr, rows, cols);
        for (int64_t r = 0; r < rows; r++)
            ck_assert_msg(fabs(y[r] - yr[r]) <= 1e-4 * (1.0 + fabs(yr[r])), "row %lld: %g vs %g", (long long)r,
                          (double)y[r], yr[r]);
        /* a round trip through bytes decodes the same */
        hc_ctensor *back = NULL;
        ck_assert_ok(hc_ctensor_deserialize(&back, b, size));
        float *d2 = decode(back);
        ck_assert_mem_eq(d, d2, sizeof(float) * (size_t)(rows * cols));
        free(d2);
        hc_ctensor_free(back);
        free(x);
        free(y);
        free(yr);
        free(b);
        free(d);
        hc_ctensor_free(ct);
    }
    /* the planner's choice under a budget never exceeds it, built-in or learned */
    hc_ctensor *ct = compress("vptq:3bit", &v);
    hc_stats st = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&st, ct));
    ck_assert(st.bpw <= 3.06);
    hc_ctensor_free(ct);
    /* a budget no built-in layout fits names the tensor */
    hc_compressor *c = make("vptq:bpw=1,codebook=builtin");
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "tensor 'builtin' (192 x 320) cannot be coded in 1 bpw");
    hc_compressor_free(c);
    free(w);
}
END_TEST

START_TEST(version_1_files_still_read_and_builtin_flags_are_checked)
{
    float *w = test_gauss(42, 48 * 40, 1.0);
    hc_tensor_view v = test_view2("v1", w, 48, 40);
    hc_ctensor *ct = compress("vptq:bpw=0,v=4,k=16,residual=0,scale=row", &v);
    size_t size;
    uint8_t *b = serialize(ct, &size);
    float *d = decode(ct);
    /* a learned layout is the same in version 1 but for its index stream's order */
    ck_assert_uint_eq(b[40], 3);
    b[40] = 1;
    payload_to_legacy(b + 52, &((const hci_vq_state *)ct->state)->cfg, 48, 40);
    fix_crc(b, size);
    hc_ctensor *back = NULL;
    ck_assert_ok(hc_ctensor_deserialize(&back, b, size));
    float *d1 = decode(back);
    ck_assert_mem_eq(d, d1, sizeof(float) * 48 * 40);
    free(d1);
    hc_ctensor_free(back);
    /* version 1 knows no built-in codebooks */
    b[41] |= VQ_FLAG_BUILTIN0;
    fix_crc(b, size);
    ck_assert_status(hc_ctensor_deserialize(&back, b, size), HC_EFORMAT, "(layout version 1) has unknown flags 0x05");
    /* version 2: part 1's flag without a part 1, and a payload that still holds the codebook */
    b[40] = 2;
    b[41] = VQ_FLAG_ROW | VQ_FLAG_BUILTIN1;
    fix_crc(b, size);
    ck_assert_status(hc_ctensor_deserialize(&back, b, size), HC_EFORMAT, "built-in codebook for part 1 but has 1 part");
    b[41] = VQ_FLAG_ROW | VQ_FLAG_BUILTIN0;
    fix_crc(b, size);
    ck_assert_status(hc_ctensor_deserialize(&back, b, size), HC_EFORMAT, "built-in codebook of 4-vectors at 4 bits");
    b[49] = 8; /* v = 4, 8 bits: a table exists, but 16 x 4 fp16 of codebook are still in the payload */
    fix_crc(b, size);
    ck_assert_status(hc_ctensor_deserialize(&back, b, size), HC_EFORMAT, "payload of");
    free(d);
    free(b);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

START_TEST(lloyd_on_all_vectors_after_a_subsample)
{
    /* 256 x 256 Gaussian, v = 2, k = 16 (2 bits a weight): trained on 500 of 32768 vectors,
     * then Lloyd on all of them; the optimal 16-point 2-D quantiser of N(0, I) is near 0.33 */
    float *w = test_gauss(43, 256 * 256, 1.0);
    hc_tensor_view v = test_view2("sub", w, 256, 256);
    hc_ctensor *ct = compress("vptq:bpw=0,v=2,k=16,residual=0,scale=none,train=500", &v);
    float *d = decode(ct);
    double e = test_rel_rmse(w, d, 256 * 256);
    ck_assert_msg(e < 0.345, "rel_rmse %g", e);
    free(d);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

/* sum of rs2 x gs^2 x dimw x (vec - centroid)^2 over a part: its error in the original space */
static double work_error(const hci_vq_work *wk, const float *cb, const uint32_t *idx)
{
    double e = 0;
    for (uint32_t s = 0; s < wk->segs; s++)
        for (int64_t r = 0; r < wk->rows; r++) {
            size_t i = (size_t)s * (size_t)wk->rows + (size_t)r;
            double g = hci_vq_work_gs(wk, s, r);
            for (uint32_t t = 0; t < wk->v && s * wk->v + t < wk->ncols; t++) {
                double d = (double)wk->vec[i * wk->v + t] - cb[(size_t)idx[i] * wk->v + t];
                e += wk->rs2[r] * g * g * wk->dimw[s * wk->v + t] * d * d;
            }
        }
    return e;
}

START_TEST(group_scales_fitted_to_a_fixed_codebook_lower_the_error)
{
    /* heavy-tailed rows, row scales, groups of 8 values, the built-in 64 x 2 table */
    const int64_t rows = 64, cols = 96;
    float *w = test_laplace(44, (size_t)(rows * cols), 1.0);
    for (int64_t i = 0; i < rows * cols; i += 37)
        w[i] *= 6.0f; /* a few large values, as trained weights have */
    hci_matrix m = { "groups", w, rows, cols, rows * cols, NULL, NULL };
    hci_vq_scales sc;
    ck_assert_ok(hci_vq_make_scales(&sc, &m, VQ_FLAG_ROW));
    uint32_t colsel[96];
    for (uint32_t c = 0; c < 96; c++)
        colsel[c] = c;
    hci_vq_work wk;
    ck_assert_ok(hci_vq_make_work(&wk, &m, &sc, colsel, 96, 2, 4, 0));
    size_t n = (size_t)wk.segs * (size_t)rows, ng = (size_t)rows * wk.ngroups;
    float cb[64 * 2];
    hci_vq_builtin_load(cb, 2, 6);
    uint32_t *idx = malloc(sizeof(uint32_t) * n);
    uint8_t *q0 = malloc(ng);
    memcpy(q0, wk.gq, ng);
    ck_assert_ok(hci_kmeans_assign(idx, NULL, wk.vec, n, 2, cb, 64, NULL, 1));
    double before = work_error(&wk, cb, idx);
    ck_assert_ok(hci_vq_refit_groups(&wk, cb, idx, 64, 2));
    double after = work_error(&wk, cb, idx);
    ck_assert_msg(after < 0.97 * before, "error %g after the refit, %g before", after, before);
    int moved = 0;
    for (size_t g = 0; g < ng; g++) {
        ck_assert(wk.gq[g] <= 15 && abs((int)wk.gq[g] - (int)q0[g]) <= 3);
        ck_assert_float_eq(wk.gs[g], hci_vq_group_scale(wk.gq[g]));
        moved += wk.gq[g] != q0[g];
    }
    ck_assert(moved > 0);
    /* the vectors are the original values over the new scales, and idx their nearest centroids */
    uint32_t *again = malloc(sizeof(uint32_t) * n);
    ck_assert_ok(hci_kmeans_assign(again, NULL, wk.vec, n, 2, cb, 64, NULL, 1));
    ck_assert_mem_eq(again, idx, sizeof(uint32_t) * n);
    for (uint32_t s = 0; s < wk.segs; s++)
        for (int64_t r = 0; r < rows; r++)
            for (uint32_t t = 0; t < 2; t++) {
                double orig = w[r * cols + s * 2 + t];
                double back = (double)wk.vec[((size_t)s * rows + (size_t)r) * 2 + t] * hci_vq_work_gs(&wk, s, r) *
                              sc.rs[r];
                ck_assert_msg(fabs(orig - back) <= 1e-5 * (1 + fabs(orig)), "(%lld, %u): %g vs %g", (long long)r,
                              s * 2 + t, orig, back);
            }
    free(again);
    free(q0);
    free(idx);
    hci_vq_free_work(&wk);
    hci_vq_free_scales(&sc);
    free(w);
}
END_TEST

START_TEST(row_scales_fitted_to_a_fixed_codebook_lower_the_error)
{
    /* rows of different tails (some Laplace, some uniform), row scales, the built-in 256 x 3 table */
    const int64_t rows = 48, cols = 60;
    float *w = test_laplace(45, (size_t)(rows * cols), 1.0);
    for (int64_t r = 0; r < rows; r += 3)
        for (int64_t c = 0; c < cols; c++)
            w[r * cols + c] = (float)((double)((r * 7919 + c * 104729) % 1000) / 500.0 - 1.0);
    hci_matrix m = { "rows", w, rows, cols, rows * cols, NULL, NULL };
    hci_vq_scales sc;
    ck_assert_ok(hci_vq_make_scales(&sc, &m, VQ_FLAG_ROW));
    uint32_t colsel[60];
    for (uint32_t c = 0; c < 60; c++)
        colsel[c] = c;
    hci_vq_work wk;
    ck_assert_ok(hci_vq_make_work(&wk, &m, &sc, colsel, 60, 3, 0, 1));
    size_t n = (size_t)wk.segs * (size_t)rows;
    float cb[256 * 3];
    hci_vq_builtin_load(cb, 3, 8);
    uint32_t *idx = malloc(sizeof(uint32_t) * n);
    uint8_t q0[48];
    memcpy(q0, sc.rq, sizeof q0);
    ck_assert_ok(hci_kmeans_assign(idx, NULL, wk.vec, n, 3, cb, 256, NULL, 1));
    double before = work_error(&wk, cb, idx);
    ck_assert_ok(hci_vq_refit_rows(&wk, &sc, cb, idx, 256, 2));
    double after = work_error(&wk, cb, idx);
    ck_assert_msg(after < 0.97 * before, "error %g after the refit, %g before", after, before);
    int moved = 0;
    float base = hci_f16_to_f32(sc.rbase_h);
    for (int64_t r = 0; r < rows; r++) {
        ck_assert(sc.rq[r] <= 254 && abs((int)sc.rq[r] - (int)q0[r]) <= 8);
        ck_assert_float_eq(sc.rs[r], hci_vq_row_scale(base, sc.rq[r]));
        ck_assert_float_eq(wk.rs2[r], sc.rs[r] * sc.rs[r]);
        moved += sc.rq[r] != q0[r];
    }
    ck_assert(moved > 0);
    uint32_t *again = malloc(sizeof(uint32_t) * n);
    ck_assert_ok(hci_kmeans_assign(again, NULL, wk.vec, n, 3, cb, 256, NULL, 1));
    ck_assert_mem_eq(again, idx, sizeof(uint32_t) * n);
    ck_assert_mem_eq(wk.vec0, wk.vec, sizeof(float) * n * 3);
    for (uint32_t s = 0; s < wk.segs; s++)
        for (int64_t r = 0; r < rows; r++)
            for (uint32_t t = 0; t < 3; t++) {
                double orig = w[r * cols + s * 3 + t];
                double back = (double)wk.vec[((size_t)s * rows + (size_t)r) * 3 + t] * sc.rs[r];
                ck_assert_msg(fabs(orig - back) <= 1e-5 * (1 + fabs(orig)), "(%lld, %u): %g vs %g", (long long)r,
                              s * 3 + t, orig, back);
            }
    free(again);
    free(idx);
    hci_vq_free_work(&wk);
    hci_vq_free_scales(&sc);
    free(w);
}
END_TEST

START_TEST(slow_gaussian_2bit_on_a_large_matrix)
{
    /* Gaussian 4096 x 4096 at the 2-bit preset: v = 6, k = 4096, trained on the default sample
     * then Lloyd on all vectors, measures 0.2999 on the bench's matrix (the preset's target is 0.30;
     * doc/algorithms.md has the numbers); the bound here guards against regressions */
    check_round_trip("vptq:2bit,threads=2", 4096, 4096, 2.06, 0.301, 0);
}
END_TEST

/* Three processes, so that meson runs them side by side: "slow" (the large matrix, suite slow),
 * "layout" (streams, versions, built-in tables, kernels, hostile payloads) and, with no argument,
 * the encoder (presets, budgets, planner, weighting, determinism, errors). */
static Suite *vptq_suite(const char *part)
{
    Suite *s = suite_create("vptq");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    if (!strcmp(part, "slow")) {
        tcase_add_test(tc, slow_gaussian_2bit_on_a_large_matrix);
    } else if (!strcmp(part, "layout")) {
        tcase_add_test(tc, tiny_tensor_has_the_documented_layout);
        tcase_add_test(tc, row_grouped_streams_round_trip);
        tcase_add_test(tc, version_2_streams_are_rewritten_at_attach);
        tcase_add_test(tc, fused_matvec_matches_decode_and_portable);
        tcase_add_test(tc, matvec_kernels_match_decode_on_every_layout);
        tcase_add_test(tc, matvec_chooser_follows_the_cost_estimate);
        tcase_add_test(tc, hostile_payloads_are_rejected);
        tcase_add_test(tc, builtin_codebooks_round_trip_and_cost_nothing);
        tcase_add_test(tc, version_1_files_still_read_and_builtin_flags_are_checked);
    } else {
        tcase_add_test(tc, presets_round_trip_within_bounds);
        tcase_add_test(tc, budget_holds_on_odd_shapes);
        tcase_add_test(tc, hessian_path_lowers_the_weighted_error);
        tcase_add_test(tc, importance_protects_important_columns);
        tcase_add_test(tc, compression_is_deterministic);
        tcase_add_test(tc, bad_specs_and_options_are_rejected);
        tcase_add_test(tc, out_of_memory_is_reported);
        tcase_add_test(tc, lloyd_on_all_vectors_after_a_subsample);
        tcase_add_test(tc, group_scales_fitted_to_a_fixed_codebook_lower_the_error);
        tcase_add_test(tc, row_scales_fitted_to_a_fixed_codebook_lower_the_error);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    return test_run(vptq_suite(argc > 1 ? argv[1] : ""));
}
