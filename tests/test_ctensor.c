/* The generic compressed tensor: compress/decode/matvec/stats through the float codecs, the
 * serialised form and every error path of the common layer. */
#include <math.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/half.h"
#include "harness.h"

static hc_compressor *make(const char *spec)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    return c;
}

START_TEST(fp16_round_trip_is_exact_per_element)
{
    const int64_t rows = 33, cols = 70;
    float *w = test_gauss(1, rows * cols, 0.02);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_compressor *c = make("fp16");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    float *dec = malloc(sizeof(float) * rows * cols);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * rows * cols));
    for (int64_t i = 0; i < rows * cols; i++)
        ck_assert_float_eq(dec[i], hci_f16_to_f32(hci_f32_to_f16(w[i])));
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_uint_eq(s.codec_id, HC_CODEC_FP16);
    ck_assert_uint_eq(s.n_values, rows * cols);
    /* 24-byte header, 2 dims, payload, CRC */
    ck_assert_uint_eq(s.bits, 8u * (24 + 16 + 2 * rows * cols + 4));
    ck_assert_double_eq_tol(s.rel_rmse, test_rel_rmse(w, dec, rows * cols), 1e-12);
    ck_assert(s.rel_rmse < 0.0003 && s.rel_rmse > 0);
    ck_assert_double_eq_tol(s.snr_db, -20 * log10(s.rel_rmse), 1e-9);
    ck_assert(s.cosine > 0.9999999);
    ck_assert_double_eq_tol(s.ratio, 32.0 / s.bpw, 1e-12);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    free(dec);
    free(w);
}
END_TEST

START_TEST(matvec_matches_decoded_matrix_on_any_thread_count)
{
    const int64_t rows = 301, cols = 257;
    float *w = test_gauss(2, rows * cols, 1.0);
    float *x = test_gauss(3, cols, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    const char *specs[] = { "f32", "fp16", "bf16" };
    for (int k = 0; k < 3; k++) {
        hc_compressor *c = make(specs[k]);
        hc_ctensor *ct;
        ck_assert_ok(hc_compress(&ct, c, &v));
        float *dec = malloc(sizeof(float) * rows * cols), y[301], ref[301];
        ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * rows * cols));
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            for (int64_t i = 0; i < cols; i++)
                acc += (double)dec[r * cols + i] * x[i];
            ref[r] = (float)acc;
        }
        for (uint32_t t = 1; t <= 3; t++) {
            ck_assert_ok(hc_ctensor_set_threads(ct, t));
            ck_assert_ok(hc_ctensor_matvec(ct, x, y));
            for (int64_t r = 0; r < rows; r++)
                ck_assert_float_eq_tol(y[r], ref[r], 1e-3f);
        }
        hc_ctensor_free(ct);
        hc_compressor_free(c);
        free(dec);
    }
    free(w);
    free(x);
}
END_TEST

START_TEST(decode_to_every_dtype)
{
    float w[6] = { 1.0f, -2.5f, 3.14159f, 0.0f, 1e-3f, 65504.0f };
    hc_tensor_view v = test_view2("w", w, 2, 3);
    hc_compressor *c = make("f32");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    uint16_t h[6];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F16, h, sizeof h));
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_BF16, h, sizeof h));
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(h[i], hci_f32_to_bf16(w[i]));
    ck_assert_status(hc_ctensor_decode(ct, HC_DTYPE_F32, h, sizeof h), HC_EINVAL, "buffer of 12 bytes is too small");
    ck_assert_status(hc_ctensor_decode(ct, (hc_dtype)7, h, sizeof h), HC_EINVAL, "unknown dtype 7");
    hc_ctensor_free(ct);
    hc_compressor_free(c);
}
END_TEST

START_TEST(f16_and_bf16_inputs_are_accepted)
{
    uint16_t h[4] = { 0x3c00, 0xc000, 0x3555, 0x0000 };
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "half";
    v.dtype = HC_DTYPE_F16;
    v.ndim = 1;
    v.shape[0] = 4;
    v.data = h;
    hc_compressor *c = make("fp16");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    uint16_t back[4];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F16, back, sizeof back));
    ck_assert_mem_eq(back, h, sizeof h);
    ck_assert_int_eq(hc_ctensor_orig_dtype(ct), HC_DTYPE_F16);
    ck_assert_int_eq(hc_ctensor_rows(ct), 1);
    ck_assert_int_eq(hc_ctensor_cols(ct), 4);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_double_eq(s.rel_rmse, 0.0);
    ck_assert_double_eq_tol(s.sparsity, 0.25, 1e-12);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
}
END_TEST

START_TEST(serialised_form_round_trips_and_rejects_corruption)
{
    float *w = test_gauss(4, 4 * 5 * 3 * 2, 1.0);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "conv";
    v.ndim = 4;
    v.shape[0] = 4;
    v.shape[1] = 5;
    v.shape[2] = 3;
    v.shape[3] = 2;
    v.data = w;
    hc_compressor *c = make("bf16");
    hc_ctensor *ct, *back;
    ck_assert_ok(hc_compress(&ct, c, &v));
    size_t n = hc_ctensor_serialized_size(ct);
    ck_assert_uint_eq(n, 24 + 32 + 2 * 120 + 4);
    uint8_t *buf = malloc(n);
    ck_assert_status(hc_ctensor_serialize(ct, buf, n - 1), HC_EINVAL, "too small");
    ck_assert_ok(hc_ctensor_serialize(ct, buf, n));
    ck_assert_mem_eq(buf, "HCT1", 4);
    ck_assert_uint_eq(buf[6], HC_CODEC_BF16);
    ck_assert_ok(hc_ctensor_deserialize(&back, buf, n));
    int64_t shape[4];
    hc_ctensor_shape(back, shape);
    ck_assert_int_eq(shape[3], 2);
    ck_assert_int_eq(hc_ctensor_rows(back), 4);
    ck_assert_int_eq(hc_ctensor_cols(back), 30);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, back));
    ck_assert(isnan(s.rel_rmse));
    ck_assert_ok(hc_ctensor_measure(&s, back, &v));
    ck_assert(s.rel_rmse > 0 && s.rel_rmse < 0.005);
    float a[120], b[120];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, a, sizeof a));
    ck_assert_ok(hc_ctensor_decode(back, HC_DTYPE_F32, b, sizeof b));
    ck_assert_mem_eq(a, b, sizeof a);
    hc_ctensor_free(back);

    /* every truncation fails cleanly, every single bit flip is caught */
    test_expect_hostile_serialised(buf, n, 1, "bf16 tensor");
    buf[0] = 'X';
    ck_assert_status(hc_ctensor_deserialize(&back, buf, n), HC_EFORMAT, "bad magic");
    buf[0] = 'H';
    buf[4] = 9;
    ck_assert_status(hc_ctensor_deserialize(&back, buf, n), HC_EVERSION, "format version 9");
    free(buf);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    free(w);
}
END_TEST

START_TEST(non_finite_and_malformed_views_are_rejected)
{
    float w[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    hc_compressor *c = make("fp16");
    hc_ctensor *ct = (hc_ctensor *)1;
    hc_tensor_view v = test_view2("blk.0.w", w, 2, 4);
    w[5] = NAN;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "tensor 'blk.0.w' has a non-finite value (nan) at flat index 5");
    ck_assert_ptr_null(ct);
    w[5] = -INFINITY;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "(-inf) at flat index 5");
    w[5] = 5;
    v.shape[1] = 0;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "tensor 'blk.0.w' is empty (extent 0 in dimension 1)");
    v.shape[1] = -3;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "negative extent -3");
    v.shape[1] = INT64_MAX / 2;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "overflows");
    v.shape[1] = 4;
    v.ndim = 5;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "5 dimensions");
    v.ndim = 2;
    v.dtype = (hc_dtype)9;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "unknown dtype 9");
    v.dtype = HC_DTYPE_F32;
    v.data = NULL;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "NULL data");
    v.data = w;
    v.struct_size = sizeof v + 8;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EVERSION, "larger than this library's");
    v.struct_size = 4;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "smaller than the minimum");
    ck_assert_status(hc_compress(&ct, c, NULL), HC_EINVAL, "tensor view is NULL");
    ck_assert_status(hc_compress(&ct, NULL, &v), HC_EINVAL, "compressor is NULL");
    ck_assert_status(hc_compress(NULL, c, &v), HC_EINVAL, "out is NULL");
    float neg_importance[4] = { 1, -1, 1, 1 };
    v = test_view2("imp", w, 2, 4);
    v.importance = neg_importance;
    ck_assert_status(hc_compress(&ct, c, &v), HC_EINVAL, "importance[1] = -1");
    hc_compressor_free(c);
}
END_TEST

START_TEST(older_view_struct_size_is_accepted)
{
    /* a caller compiled before importance/hessian existed */
    float w[4] = { 1, 2, 3, 4 };
    hc_tensor_view v = test_view2("old", w, 2, 2);
    v.struct_size = (uint32_t)offsetof(hc_tensor_view, importance);
    v.importance = (const float *)0x1; /* beyond struct_size: must be ignored */
    hc_compressor *c = make("f32");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    hc_tensor_view init;
    ck_assert_ok(hc_tensor_view_init(&init, sizeof init));
    ck_assert_uint_eq(init.struct_size, sizeof init);
    ck_assert_status(hc_tensor_view_init(&init, sizeof init + 1), HC_EVERSION, NULL);
}
END_TEST

START_TEST(stats_struct_size_is_honoured)
{
    float w[4] = { 1, 2, 3, 4 };
    hc_tensor_view v = test_view2("w", w, 2, 2);
    hc_compressor *c = make("f32");
    hc_ctensor *ct;
    ck_assert_ok(hc_compress(&ct, c, &v));
    hc_stats s;
    memset(&s, 0x5a, sizeof s);
    s.struct_size = (uint32_t)offsetof(hc_stats, ratio);
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_double_eq_tol(s.bpw, 8.0 * (24 + 16 + 16 + 4) / 4, 1e-12);
    uint8_t tail[sizeof s - offsetof(hc_stats, ratio)];
    memset(tail, 0x5a, sizeof tail);
    ck_assert_mem_eq((uint8_t *)&s + offsetof(hc_stats, ratio), tail, sizeof tail);
    s.struct_size = sizeof s + 4;
    ck_assert_status(hc_ctensor_stats(&s, ct), HC_EVERSION, NULL);
    ck_assert_status(hc_ctensor_stats(NULL, ct), HC_EINVAL, "out is NULL");
    hc_ctensor_free(ct);
    hc_compressor_free(c);
}
END_TEST

START_TEST(spec_errors_reach_the_caller)
{
    hc_compressor *c = (hc_compressor *)1;
    ck_assert_status(hc_compressor_from_spec(&c, "zstd"), HC_ENOTFOUND, "unknown codec 'zstd' (known: f32, fp16");
    ck_assert_ptr_null(c);
    ck_assert_status(hc_compressor_from_spec(&c, "fp16:fast"), HC_EINVAL, "unknown preset 'fast'");
    ck_assert_status(hc_compressor_from_spec(&c, "fp16:threads=x"), HC_EINVAL, "threads=x");
    ck_assert_ok(hc_compressor_from_spec(&c, "bf16:threads=2"));
    ck_assert_str_eq(hc_compressor_spec(c), "bf16");
    hc_compressor_free(c);
    hc_compressor_free(NULL);
    hc_ctensor_free(NULL);
}
END_TEST

START_TEST(out_of_memory_during_compress_leaks_nothing)
{
    float *w = test_gauss(5, 64 * 64, 1.0);
    hc_tensor_view v = test_view2("w", w, 64, 64);
    hc_compressor *c = make("fp16");
    for (long k = 1; k < 12; k++) {
        hc_ctensor *ct = NULL;
        hci_alloc_fail_after(k);
        int rc = hc_compress(&ct, c, &v);
        hci_alloc_fail_after(0);
        if (rc == HC_OK) {
            hc_ctensor_free(ct);
            continue;
        }
        ck_assert_int_eq(rc, HC_ENOMEM);
        ck_assert_ptr_null(ct);
        ck_assert(strstr(hc_last_error(), "out of memory") != NULL);
    }
    hc_compressor_free(c);
    free(w);
}
END_TEST

static Suite *ctensor_suite(void)
{
    Suite *s = suite_create("ctensor");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fp16_round_trip_is_exact_per_element);
    tcase_add_test(tc, matvec_matches_decoded_matrix_on_any_thread_count);
    tcase_add_test(tc, decode_to_every_dtype);
    tcase_add_test(tc, f16_and_bf16_inputs_are_accepted);
    tcase_add_test(tc, serialised_form_round_trips_and_rejects_corruption);
    tcase_add_test(tc, non_finite_and_malformed_views_are_rejected);
    tcase_add_test(tc, older_view_struct_size_is_accepted);
    tcase_add_test(tc, stats_struct_size_is_honoured);
    tcase_add_test(tc, spec_errors_reach_the_caller);
    tcase_add_test(tc, out_of_memory_during_compress_leaks_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(ctensor_suite());
}
