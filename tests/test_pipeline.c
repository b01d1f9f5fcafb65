/* The pipeline: refine and escalate modes, every gate kind, retry, fallback, the model gate's
 * rollback, cancellation, metrics against values computed here, rules and keeps, determinism
 * across thread counts, the residual codec (round trip, hostile payloads), gain refinement, OOM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/half.h"
#include "harness.h"
#include "pipeline/pipeline_internal.h"

/* ---- helpers ---- */

#define MAX_ROWS 64

typedef struct record {
    int n;
    hc_stage_metrics m[64];
    char stage[64][64], tensor[64][64], spec[64][64];
    int cancel_at;   /* cancel when the n-th report (1-based) arrives; 0 never */
} record;

static int record_cb(const hc_stage_metrics *m, void *ud)
{
    record *r = ud;
    if (r->n < 64) {
        r->m[r->n] = *m;
        snprintf(r->stage[r->n], 64, "%s", m->stage);
        snprintf(r->tensor[r->n], 64, "%s", m->tensor);
        snprintf(r->spec[r->n], 64, "%s", m->spec);
    }
    r->n++;
    return r->cancel_at && r->n == r->cancel_at;
}

static hc_pipeline *make_pipeline(uint32_t mode, double min_db_per_bit, const char *fallback)
{
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.mode = mode;
    o.min_db_per_bit = min_db_per_bit;
    o.fallback_spec = fallback;
    hc_pipeline *p = NULL;
    ck_assert_ok(hc_pipeline_new(&p, &o));
    return p;
}

static hc_gate gate_of(const char *text)
{
    hc_gate g = HC_GATE_INIT;
    if (text)
        ck_assert_ok(hc_gate_parse(&g, text));
    return g;
}

static void add(hc_pipeline *p, const char *spec, const char *gate)
{
    hc_gate g = gate_of(gate);
    ck_assert_ok(hc_pipeline_add_stage_spec(p, NULL, spec, gate ? &g : NULL));
}

static float bf16(float x) { return hci_bf16_to_f32(hci_f32_to_bf16(x)); }
static float fp16(float x) { return hci_f16_to_f32(hci_f32_to_f16(x)); }

static void stats_of(hc_stats *s, const float *ref, const float *dec, size_t n)
{
    double e = 0, r = 0, d = 0, dot = 0;
    for (size_t i = 0; i < n; i++) {
        double x = ref[i], y = dec[i];
        e += (x - y) * (x - y);
        r += x * x;
        d += y * y;
        dot += x * y;
    }
    s->rel_rmse = sqrt(e / r);
    s->snr_db = 10 * log10(r / e);
    s->cosine = dot / sqrt(r * d);
}

static float *decode_all(const hc_ctensor *ct)
{
    size_t n = (size_t)hc_ctensor_numel(ct);
    float *d = malloc(n * sizeof *d);
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d, n * sizeof *d));
    return d;
}

/* serialised size of a float-codec tensor of a 2-D shape */
static uint64_t float_bits(int64_t n, int bytes) { return 8u * (uint64_t)(24 + 16 + bytes * n + 4); }

/* ---- refine ---- */

START_TEST(refine_sums_stages_and_reports_independent_metrics)
{
    const int64_t rows = 40, cols = 50, n = rows * cols;
    float *w = test_laplace(11, n, 0.05);
    hc_tensor_view v = test_view2("blk.0.w", w, rows, cols);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_REFINE, 0.0, NULL);
    add(p, "bf16", NULL);
    add(p, "bf16", NULL);
    record rec = { 0 };
    ck_assert_ok(hc_pipeline_set_stage_callback(p, record_cb, &rec));
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_RESIDUAL);

    /* the cascade computed here: s1 = bf16(w), s2 = bf16(w - s1), w' = s1 + s2 */
    float *s1 = malloc(n * sizeof *s1), *ref = malloc(n * sizeof *ref);
    for (int64_t i = 0; i < n; i++) {
        s1[i] = bf16(w[i]);
        ref[i] = s1[i] + bf16(w[i] - s1[i]);
    }
    float *dec = decode_all(ct);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(dec[i], ref[i]);

    ck_assert_int_eq(rec.n, 3);   /* two stages and the final report */
    hc_stats e1, e2;
    stats_of(&e1, w, s1, n);
    stats_of(&e2, w, ref, n);
    ck_assert_uint_eq(rec.m[0].struct_size, sizeof(hc_stage_metrics));
    ck_assert_str_eq(rec.tensor[0], "blk.0.w");
    ck_assert_str_eq(rec.stage[1], "bf16");
    ck_assert_uint_eq(rec.m[0].stage_index, 0);
    ck_assert_uint_eq(rec.m[1].stage_index, 1);
    ck_assert_uint_eq(rec.m[0].action, HC_STAGE_KEPT);
    ck_assert_uint_eq(rec.m[1].action, HC_STAGE_KEPT);
    ck_assert_uint_eq(rec.m[2].action, HC_STAGE_CHOSEN);
    ck_assert_double_eq_tol(rec.m[0].rel_rmse, e1.rel_rmse, 1e-12);
    ck_assert_double_eq_tol(rec.m[0].snr_db, e1.snr_db, 1e-9);
    ck_assert_double_eq_tol(rec.m[0].cosine, e1.cosine, 1e-12);
    ck_assert_double_eq_tol(rec.m[1].rel_rmse, e2.rel_rmse, 1e-12);
    ck_assert_double_eq_tol(rec.m[1].snr_db, e2.snr_db, 1e-9);
    ck_assert(rec.m[1].rel_rmse < rec.m[0].rel_rmse / 50);
    /* bits add up: a lone stage is bare; two are framed (header, 8 params, 8 per stage, CRC) */
    uint64_t b0 = float_bits(n, 2);
    ck_assert_uint_eq(rec.m[0].stage_bits, b0);
    ck_assert_uint_eq(rec.m[0].bits, b0);
    ck_assert_uint_eq(rec.m[1].bits, 8u * (24 + 16 + 8 + 8 + b0 / 8 + 8 + b0 / 8 + 4));
    ck_assert_uint_eq(rec.m[1].bits, 8u * hc_ctensor_serialized_size(ct));
    ck_assert_double_eq_tol(rec.m[1].bpw, (double)rec.m[1].bits / n, 1e-12);
    ck_assert_double_eq_tol(rec.m[1].ratio, 32.0 * n / rec.m[1].bits, 1e-12);
    ck_assert_uint_eq(rec.m[2].bits, rec.m[1].bits);
    ck_assert(rec.m[0].seconds >= 0 && rec.m[2].seconds >= rec.m[1].seconds);
    hc_stats s = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&s, ct));
    ck_assert_double_eq_tol(s.rel_rmse, e2.rel_rmse, 1e-12);
    ck_assert(isnan(rec.m[0].model_score));
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(w);
    free(s1);
    free(ref);
    free(dec);
}
END_TEST

START_TEST(refine_stops_once_the_gate_is_met)
{
    const int64_t rows = 30, cols = 40;
    float *w = test_gauss(12, rows * cols, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_REFINE, 1.0, NULL);
    add(p, "bf16", "rel_rmse<=1e-4");
    add(p, "bf16", "rel_rmse<=1e-4");
    add(p, "f32", NULL);
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_int_eq(rec.n, 3);   /* the third stage never ran */
    ck_assert_int_eq(rec.m[0].gate_passed, 0);
    ck_assert_int_eq(rec.m[1].gate_passed, 1);
    ck_assert_uint_eq(rec.m[2].action, HC_STAGE_CHOSEN);
    ck_assert_uint_eq(rec.m[2].stage_index, 1);
    ck_assert(rec.m[1].rel_rmse <= 1e-4 && rec.m[0].rel_rmse > 1e-4);
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(w);
}
END_TEST

START_TEST(refine_drops_stages_that_buy_too_little)
{
    const int64_t rows = 20, cols = 30;
    float *w = test_gauss(13, rows * cols, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    /* after an exact f32 stage nothing is left to buy */
    hc_pipeline *p = make_pipeline(HC_PIPELINE_REFINE, 1.0, NULL);
    add(p, "f32", NULL);
    add(p, "fp16", NULL);
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_F32);
    ck_assert_int_eq(rec.n, 3);
    ck_assert_uint_eq(rec.m[1].action, HC_STAGE_DROPPED);
    hc_ctensor_free(ct);
    hc_pipeline_free(p);

    /* fp16 gives about 4.5 dB per bit: a 10 dB/bit threshold drops everything */
    p = make_pipeline(HC_PIPELINE_REFINE, 10.0, NULL);
    add(p, "fp16", NULL);
    add(p, "bf16", NULL);
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_EQUALITY, "every stage bought less than 10 dB");
    ck_assert_ptr_null(ct);
    hc_pipeline_free(p);

    /* ... and a fallback codes the tensor instead */
    p = make_pipeline(HC_PIPELINE_REFINE, 10.0, "f32");
    add(p, "fp16", NULL);
    rec.n = 0;
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_F32);
    ck_assert_int_eq(rec.n, 3);
    ck_assert_uint_eq(rec.m[0].action, HC_STAGE_DROPPED);
    ck_assert_uint_eq(rec.m[1].action, HC_STAGE_FALLBACK);
    ck_assert_str_eq(rec.stage[1], "fallback");
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(w);
}
END_TEST

START_TEST(refine_fails_when_the_gate_is_never_met)
{
    float *w = test_gauss(14, 600, 1.0);
    hc_tensor_view v = test_view2("w", w, 20, 30);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_REFINE, 0.0, NULL);
    add(p, "bf16", "rel_rmse<=1e-9");
    hc_ctensor *ct;
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_EQUALITY, "still fails the gate");
    ck_assert_ptr_null(ct);
    hc_pipeline_free(p);
    free(w);
}
END_TEST

/* ---- escalate ---- */

static int adjust_to(char *out, size_t size, const hc_stage_metrics *m, void *ud)
{
    ck_assert(m->action == HC_STAGE_FAILED || m->action == HC_STAGE_ROLLED_BACK);
    ck_assert_int_eq(m->gate_passed, 0);
    snprintf(out, size, "%s", (const char *)ud);
    return 0;
}

START_TEST(escalate_keeps_the_smallest_pass_and_falls_back)
{
    const int64_t rows = 30, cols = 40, n = rows * cols;
    float *w = test_gauss(15, n, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
    add(p, "f32", "rel_rmse<=5e-4");
    add(p, "fp16", "rel_rmse<=5e-4");
    add(p, "bf16", "rel_rmse<=5e-4");
    hc_pipeline_set_adjust(p, adjust_to, "bf16");   /* a retry that fails again */
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_FP16);
    ck_assert_int_eq(rec.n, 5);
    ck_assert_uint_eq(rec.m[0].action, HC_STAGE_KEPT);
    ck_assert_uint_eq(rec.m[1].action, HC_STAGE_KEPT);
    ck_assert_uint_eq(rec.m[2].action, HC_STAGE_FAILED);
    ck_assert_uint_eq(rec.m[2].attempt, 0);
    ck_assert_uint_eq(rec.m[3].action, HC_STAGE_FAILED);
    ck_assert_uint_eq(rec.m[3].attempt, 1);
    ck_assert_str_eq(rec.spec[3], "bf16");
    ck_assert_uint_eq(rec.m[4].action, HC_STAGE_CHOSEN);
    ck_assert_str_eq(rec.stage[4], "fp16");
    ck_assert_uint_eq(rec.m[1].bits, float_bits(n, 2));
    ck_assert_uint_eq(rec.m[0].bits, float_bits(n, 4));
    float *f = malloc(n * sizeof *f), *dec = decode_all(ct);
    for (int64_t i = 0; i < n; i++)
        f[i] = fp16(w[i]);
    hc_stats e;
    stats_of(&e, w, f, n);
    ck_assert_double_eq_tol(rec.m[1].rel_rmse, e.rel_rmse, 1e-12);
    ck_assert_double_eq_tol(rec.m[1].ratio, 2.0 * n * 16 / (double)rec.m[1].bits * 1.0, 1e-9);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(dec[i], f[i]);
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(f);
    free(dec);
    free(w);
}
END_TEST

START_TEST(escalate_retry_with_the_builtin_step_and_the_adjust_callback)
{
    const int64_t rows = 30, cols = 40, n = rows * cols;
    float *w = test_gauss(16, n, 1.0);
    hc_tensor_view v = test_view2("w", w, rows, cols);
    /* built-in: bf16 retried as bf16 plus bf16 of what it left */
    hc_pipeline *p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
    add(p, "bf16", "rel_rmse<=5e-4");
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_RESIDUAL);
    ck_assert_int_eq(rec.n, 3);
    ck_assert_uint_eq(rec.m[1].attempt, 1);
    ck_assert_int_eq(rec.m[1].gate_passed, 1);
    float *dec = decode_all(ct);
    for (int64_t i = 0; i < n; i++) {
        float a = bf16(w[i]);
        ck_assert_float_eq(dec[i], a + bf16(w[i] - a));
    }
    ck_assert_uint_eq(rec.m[1].bits, 8u * hc_ctensor_serialized_size(ct));
    hc_ctensor_free(ct);
    free(dec);
    hc_pipeline_free(p);

    /* adjust callback: retry with fp16 */
    p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
    add(p, "bf16", "rel_rmse<=5e-4");
    hc_pipeline_set_adjust(p, adjust_to, "fp16");
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_FP16);
    hc_ctensor_free(ct);
    /* an adjusted spec that does not exist is reported */
    hc_pipeline_set_adjust(p, adjust_to, "nosuchcodec");
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_ENOTFOUND, "unknown codec 'nosuchcodec'");
    hc_pipeline_free(p);
    free(w);
}
END_TEST

START_TEST(escalate_without_any_pass_fails_or_uses_the_fallback)
{
    float *w = test_gauss(17, 600, 1.0);
    hc_tensor_view v = test_view2("w", w, 20, 30);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
    add(p, "bf16", "rel_rmse<=1e-9");
    hc_pipeline_set_adjust(p, adjust_to, "bf16");
    hc_ctensor *ct;
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_EQUALITY, "tensor 'w': stage 'bf16' failed its gate");
    ck_assert_ptr_null(ct);
    hc_pipeline_free(p);
    p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, "fp16");
    add(p, "bf16", "rel_rmse<=1e-9");
    hc_pipeline_set_adjust(p, adjust_to, "bf16");
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_FP16);
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(w);
}
END_TEST

/* ---- gates ---- */

START_TEST(gate_kinds_parse_and_judge)
{
    hc_gate g = HC_GATE_INIT;
    hc_stats s = HC_STATS_INIT;
    s.rel_rmse = 0.01;
    s.snr_db = 40;
    s.cosine = 0.9999;
    ck_assert_int_eq(hc_gate_passes(&g, &s), 1);
    ck_assert_ok(hc_gate_parse(&g, "rel_rmse<=0.01"));
    ck_assert_int_eq(hc_gate_passes(&g, &s), 1);
    s.rel_rmse = 0.0100001;
    ck_assert_int_eq(hc_gate_passes(&g, &s), 0);
    s.rel_rmse = NAN;
    ck_assert_int_eq(hc_gate_passes(&g, &s), 0);
    s.rel_rmse = 0.001;
    ck_assert_ok(hc_gate_parse(&g, "snr>=40,cosine>=0.9999"));
    ck_assert_uint_eq(g.checks, HC_GATE_REL_RMSE | HC_GATE_SNR | HC_GATE_COSINE);
    ck_assert_int_eq(hc_gate_passes(&g, &s), 1);
    s.snr_db = 39.99;
    ck_assert_int_eq(hc_gate_passes(&g, &s), 0);
    s.snr_db = 40;
    s.cosine = 0.99989;
    ck_assert_int_eq(hc_gate_passes(&g, &s), 0);
    hc_gate bad = HC_GATE_INIT;
    ck_assert_status(hc_gate_parse(&bad, "rmse<0.1"), HC_EINVAL, "'rmse<0.1' is not one of");
    ck_assert_status(hc_gate_parse(&bad, "snr>=abc"), HC_EINVAL, "'abc' is not a finite number");
    ck_assert_status(hc_gate_parse(&bad, "cosine>=2"), HC_EINVAL, "cosine bound 2 is outside");
    ck_assert_status(hc_gate_parse(&bad, "rel_rmse<=-1"), HC_EINVAL, "is negative");
    ck_assert_status(hc_gate_parse(&bad, "snr>=1,"), HC_EINVAL, "is empty");
    ck_assert_uint_eq(bad.checks, 0);   /* a failed parse leaves the gate alone */
    ck_assert_status(hc_gate_init(&bad, sizeof bad + 8), HC_EVERSION, "larger");
}
END_TEST

START_TEST(snr_and_cosine_gates_decide_escalation)
{
    float *w = test_gauss(18, 2000, 1.0);
    hc_tensor_view v = test_view2("w", w, 40, 50);
    const char *gates[] = { "snr>=65", "cosine>=0.9999999" };
    for (int k = 0; k < 2; k++) {
        hc_pipeline *p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
        add(p, "fp16", gates[k]);
        add(p, "bf16", gates[k]);
        hc_pipeline_set_adjust(p, adjust_to, "bf16");
        record rec = { 0 };
        hc_pipeline_set_stage_callback(p, record_cb, &rec);
        hc_ctensor *ct;
        ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
        ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_FP16);
        ck_assert_int_eq(rec.m[0].gate_passed, 1);
        ck_assert_int_eq(rec.m[1].gate_passed, 0);
        if (k == 0)
            ck_assert(rec.m[0].snr_db >= 65 && rec.m[1].snr_db < 65);
        else
            ck_assert(rec.m[0].cosine >= 0.9999999 && rec.m[1].cosine < 0.9999999);
        hc_ctensor_free(ct);
        hc_pipeline_free(p);
    }
    free(w);
}
END_TEST

/* ---- models ---- */

typedef struct eval_ctx {
    const float *orig[8];
    size_t n[8];
    double k;
    int lower_is_better;
    int calls;
    int first_saw_original;
} eval_ctx;

/* 1 / (1 + k * sum of squared relative errors): 1 for the original model */
static int eval_cb(double *out, const hc_model *m, void *ud)
{
    eval_ctx *e = ud;
    double err = 0;
    int original = 1;
    for (size_t i = 0; i < hc_model_count(m); i++) {
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        ck_assert_ok(hc_model_tensor(&v, m, i));
        ck_assert_int_eq(v.dtype, HC_DTYPE_F32);
        original &= v.data == e->orig[i];
        const float *d = v.data;
        double r = test_rel_rmse(e->orig[i], d, e->n[i]);
        err += r * r;
    }
    if (e->calls++ == 0)
        e->first_saw_original = original;
    double score = 1.0 / (1.0 + e->k * err);
    *out = e->lower_is_better ? 10.0 / score : score;
    return 0;
}

typedef struct sink_rec {
    int n;
    char name[16][32];
    uint32_t codec[16];
    uint8_t *bytes[16];
    size_t size[16];
    int cancel_at;
} sink_rec;

static int sink_cb(const char *name, const hc_ctensor *ct, void *ud)
{
    sink_rec *s = ud;
    ck_assert_int_lt(s->n, 16);
    snprintf(s->name[s->n], 32, "%s", name);
    s->codec[s->n] = hc_ctensor_codec_id(ct);
    s->size[s->n] = hc_ctensor_serialized_size(ct);
    s->bytes[s->n] = malloc(s->size[s->n]);
    ck_assert_ok(hc_ctensor_serialize(ct, s->bytes[s->n], s->size[s->n]));
    s->n++;
    return s->cancel_at && s->n == s->cancel_at;
}

static void sink_free(sink_rec *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->bytes[i]);
    s->n = 0;
}

START_TEST(model_gate_rolls_back_a_stage_that_costs_too_much)
{
    const int64_t rows = 30, cols = 40, n = rows * cols;
    float *a = test_gauss(21, n, 1.0), *b = test_gauss(22, n, 1.0);
    for (int dir = 0; dir < 2; dir++) {
        hc_model *m;
        ck_assert_ok(hc_model_new(&m));
        hc_tensor_view va = test_view2("a", a, rows, cols), vb = test_view2("b", b, rows, cols);
        ck_assert_ok(hc_model_add(m, &va));
        ck_assert_ok(hc_model_add(m, &vb));
        hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
        o.mode = HC_PIPELINE_ESCALATE;
        o.model_retain = 0.95;
        o.higher_is_better = dir == 0;
        hc_pipeline *p;
        ck_assert_ok(hc_pipeline_new(&p, &o));
        add(p, "fp16", NULL);
        add(p, "bf16", NULL);
        hc_pipeline_set_adjust(p, adjust_to, "bf16");
        /* fp16 costs ~5e-8 of squared error, bf16 ~2e-6: with k = 2e5 only fp16 keeps 95% */
        eval_ctx e = { { a, b }, { (size_t)n, (size_t)n }, 2e5, dir == 1, 0, 0 };
        ck_assert_ok(hc_pipeline_set_evaluator(p, eval_cb, &e));
        record rec = { 0 };
        hc_pipeline_set_stage_callback(p, record_cb, &rec);
        sink_rec s = { 0 };
        ck_assert_ok(hc_pipeline_compress_model(p, m, sink_cb, &s));
        ck_assert_int_eq(e.first_saw_original, 1);
        ck_assert_int_eq(s.n, 2);
        ck_assert_uint_eq(s.codec[0], HC_CODEC_FP16);
        ck_assert_uint_eq(s.codec[1], HC_CODEC_FP16);
        /* per tensor: fp16 kept, bf16 rolled back, its retry rolled back, chosen */
        ck_assert_int_eq(rec.n, 8);
        ck_assert_uint_eq(rec.m[0].action, HC_STAGE_KEPT);
        ck_assert_uint_eq(rec.m[1].action, HC_STAGE_ROLLED_BACK);
        ck_assert_uint_eq(rec.m[2].action, HC_STAGE_ROLLED_BACK);
        ck_assert_int_eq(rec.m[1].gate_passed, 0);
        ck_assert(!isnan(rec.m[1].model_score));
        ck_assert_double_eq_tol(rec.m[0].baseline_score, dir == 0 ? 1.0 : 10.0, 1e-12);
        ck_assert_int_eq(e.calls, 1 + 3 * 2);
        ck_assert_str_eq(rec.tensor[4], "b");
        sink_free(&s);
        hc_pipeline_free(p);
        hc_model_free(m);
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(model_gate_keeps_refining_until_the_model_retains)
{
    const int64_t rows = 30, cols = 40, n = rows * cols;
    float *a = test_gauss(23, n, 1.0);
    hc_model *m;
    ck_assert_ok(hc_model_new(&m));
    hc_tensor_view va = test_view2("a", a, rows, cols);
    ck_assert_ok(hc_model_add(m, &va));
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.min_db_per_bit = 0;
    hc_pipeline *p;
    ck_assert_ok(hc_pipeline_new(&p, &o));
    add(p, "bf16", NULL);
    add(p, "bf16", NULL);
    add(p, "f32", NULL);
    /* one bf16 stage loses more than 5%, two do not: the cascade stops after the second */
    eval_ctx e = { { a }, { (size_t)n }, 2e5, 0, 0, 0 };
    ck_assert_ok(hc_pipeline_set_evaluator(p, eval_cb, &e));
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    sink_rec s = { 0 };
    ck_assert_ok(hc_pipeline_compress_model(p, m, sink_cb, &s));
    ck_assert_int_eq(s.n, 1);
    ck_assert_uint_eq(s.codec[0], HC_CODEC_RESIDUAL);
    ck_assert_int_eq(rec.n, 3);
    ck_assert_int_eq(rec.m[0].gate_passed, 0);
    ck_assert(rec.m[0].model_score < 0.95);
    ck_assert_int_eq(rec.m[1].gate_passed, 1);
    ck_assert(rec.m[1].model_score >= 0.95);
    ck_assert_int_eq(e.calls, 3);
    sink_free(&s);
    hc_pipeline_free(p);
    hc_model_free(m);
    free(a);
}
END_TEST

START_TEST(rules_and_keeps_choose_per_tensor)
{
    float *big = test_gauss(31, 64 * 64, 1.0), *norm = test_gauss(32, 64, 1.0), *small = test_gauss(33, 16, 1.0);
    hc_model *m;
    ck_assert_ok(hc_model_new(&m));
    hc_tensor_view v = test_view2("blk.0.attn.weight", big, 64, 64);
    ck_assert_ok(hc_model_add(m, &v));
    v = test_view2("blk.0.norm.weight", norm, 64, 1);
    v.ndim = 1;
    ck_assert_ok(hc_model_add(m, &v));
    v = test_view2("blk.0.small", small, 4, 4);
    ck_assert_ok(hc_model_add(m, &v));
    v = test_view2("token_embd.weight", big, 64, 64);
    ck_assert_ok(hc_model_add(m, &v));
    v = test_view2("output.weight", big, 64, 64);
    ck_assert_ok(hc_model_add(m, &v));
    v = test_view2("blk.1.norm.weight", norm, 64, 1);
    v.ndim = 1;
    ck_assert_ok(hc_model_add(m, &v));
    ck_assert_status(hc_model_add(m, &v), HC_EINVAL, "already has a tensor named 'blk.1.norm.weight'");
    size_t idx;
    ck_assert_ok(hc_model_find(&idx, m, "output.weight"));
    ck_assert_uint_eq(idx, 4);
    ck_assert_status(hc_model_find(&idx, m, "nope"), HC_ENOTFOUND, "no tensor named 'nope'");

    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.keep_below = 100;
    o.keep_spec = "fp16";
    hc_pipeline *p, *head;
    ck_assert_ok(hc_pipeline_new(&p, &o));
    add(p, "bf16", NULL);
    head = make_pipeline(HC_PIPELINE_REFINE, 0.0, NULL);
    add(head, "f32", NULL);
    ck_assert_ok(hc_pipeline_add_rule(p, "token_embd.*", "fp16", NULL));
    ck_assert_ok(hc_pipeline_add_rule(p, "output.weight", NULL, head));
    ck_assert_ok(hc_pipeline_add_rule(p, "blk.1.*norm*", "f32", NULL));
    ck_assert_status(hc_pipeline_add_rule(p, "x", "fp16", head), HC_EINVAL, "exactly one of keep_spec and use");
    ck_assert_status(hc_pipeline_add_rule(p, "x", "zz", NULL), HC_ENOTFOUND, "unknown codec 'zz'");
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    sink_rec s = { 0 };
    ck_assert_ok(hc_pipeline_compress_model(p, m, sink_cb, &s));
    ck_assert_int_eq(s.n, 6);
    const char *names[] = { "blk.0.attn.weight", "blk.0.norm.weight", "blk.0.small", "token_embd.weight",
                            "output.weight", "blk.1.norm.weight" };
    uint32_t codecs[] = { HC_CODEC_BF16, HC_CODEC_FP16, HC_CODEC_FP16, HC_CODEC_FP16, HC_CODEC_F32, HC_CODEC_F32 };
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(s.name[i], names[i]);
        ck_assert_uint_eq(s.codec[i], codecs[i]);
    }
    int keeps = 0;
    for (int i = 0; i < rec.n; i++)
        keeps += rec.m[i].action == HC_STAGE_RULE_KEEP;
    ck_assert_int_eq(keeps, 4);
    sink_free(&s);
    hc_pipeline_free(p);
    hc_pipeline_free(head);
    hc_model_free(m);
    free(big);
    free(norm);
    free(small);
}
END_TEST

START_TEST(model_results_match_across_thread_counts)
{
    float *data[5];
    hc_model *m;
    ck_assert_ok(hc_model_new(&m));
    for (int i = 0; i < 5; i++) {
        data[i] = test_laplace(40 + i, 24 * (20 + i), 0.1);
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        hc_tensor_view v = test_view2(name, data[i], 24, 20 + i);
        ck_assert_ok(hc_model_add(m, &v));
    }
    sink_rec ref = { 0 };
    for (uint32_t threads = 1; threads <= 3; threads++) {
        hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
        o.threads = threads;
        o.min_db_per_bit = 0;
        o.gain_iters = 20;
        hc_pipeline *p;
        ck_assert_ok(hc_pipeline_new(&p, &o));
        add(p, "bf16", NULL);
        add(p, "bf16", NULL);
        sink_rec s = { 0 };
        ck_assert_ok(hc_pipeline_compress_model(p, m, sink_cb, threads == 1 ? &ref : &s));
        if (threads > 1) {
            ck_assert_int_eq(s.n, 5);
            for (int i = 0; i < 5; i++) {
                ck_assert_str_eq(s.name[i], ref.name[i]);
                ck_assert_uint_eq(s.size[i], ref.size[i]);
                ck_assert_int_eq(memcmp(s.bytes[i], ref.bytes[i], s.size[i]), 0);
            }
            sink_free(&s);
        }
        hc_pipeline_free(p);
    }
    sink_free(&ref);
    hc_model_free(m);
    for (int i = 0; i < 5; i++)
        free(data[i]);
}
END_TEST

/* ---- cancellation ---- */

static int failing_sink(const char *name, const hc_ctensor *ct, void *ud)
{
    (void)ct;
    (void)ud;
    return strcmp(name, "t1") == 0 ? hci_fail(HC_EIO, "disk full at %s", name) : 0;
}

START_TEST(callback_cancels_without_a_half_result)
{
    float *w = test_gauss(50, 1200, 1.0);
    hc_tensor_view v = test_view2("w", w, 30, 40);
    for (int mode = 0; mode < 2; mode++) {
        hc_pipeline *p = make_pipeline((uint32_t)mode, 0.0, NULL);
        add(p, "bf16", "rel_rmse<=1e-9");
        add(p, "bf16", "rel_rmse<=1e-9");
        add(p, "f32", NULL);
        record rec = { 0 };
        rec.cancel_at = 2;
        hc_pipeline_set_stage_callback(p, record_cb, &rec);
        hc_ctensor *ct = (hc_ctensor *)&rec;
        ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_ECANCELLED, "cancelled by the stage callback");
        ck_assert_ptr_null(ct);
        ck_assert_int_eq(rec.n, 2);
        hc_pipeline_free(p);
    }
    /* a model run on several threads stops and the sink sees no later tensor */
    hc_model *m;
    ck_assert_ok(hc_model_new(&m));
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        hc_tensor_view tv = test_view2(name, w, 30, 40);
        ck_assert_ok(hc_model_add(m, &tv));
    }
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.threads = 2;
    hc_pipeline *p;
    ck_assert_ok(hc_pipeline_new(&p, &o));
    add(p, "fp16", NULL);
    record rec = { 0 };
    rec.cancel_at = 5;
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    sink_rec s = { 0 };
    ck_assert_status(hc_pipeline_compress_model(p, m, sink_cb, &s), HC_ECANCELLED, "cancelled");
    ck_assert_int_le(s.n, 2);
    sink_free(&s);
    /* the sink cancels too */
    hc_pipeline_set_stage_callback(p, NULL, NULL);
    s.cancel_at = 3;
    ck_assert_status(hc_pipeline_compress_model(p, m, sink_cb, &s), HC_ECANCELLED, "cancelled by the sink at tensor 't2'");
    ck_assert_int_eq(s.n, 3);
    sink_free(&s);
    /* a sink's own failure status comes back with its message */
    ck_assert_status(hc_pipeline_compress_model(p, m, failing_sink, NULL), HC_EIO, "disk full at t1");

    hc_pipeline_free(p);
    hc_model_free(m);
    free(w);
}
END_TEST

/* ---- the sink seam: a container writer ---- */

START_TEST(model_streams_into_a_container_and_a_cancel_leaves_no_file)
{
    char dir[] = "/tmp/hc-pipeline-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.hcz", dir);
    float *data[4];
    hc_model *m;
    ck_assert_ok(hc_model_new(&m));
    for (int i = 0; i < 4; i++) {
        data[i] = test_laplace(100 + i, 24 * 40, 0.1);
        char name[16];
        snprintf(name, sizeof name, "blk.%d.w", i);
        hc_tensor_view v = test_view2(name, data[i], 24, 40);
        ck_assert_ok(hc_model_add(m, &v));
    }
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.threads = 2;
    o.min_db_per_bit = 0;
    hc_pipeline *p;
    ck_assert_ok(hc_pipeline_new(&p, &o));
    add(p, "bf16", NULL);
    add(p, "bf16", NULL);
    sink_rec ref = { 0 };
    ck_assert_ok(hc_pipeline_compress_model(p, m, sink_cb, &ref));
    hc_archive_writer *w;
    ck_assert_ok(hc_archive_writer_new(&w, path));
    ck_assert_ok(hc_pipeline_compress_model(p, m, hc_archive_writer_sink, w));
    ck_assert_ok(hc_archive_writer_finish(w));
    hc_archive_writer_free(w);
    /* the container holds exactly what the pipeline delivered, residual tensors included */
    hc_archive *a;
    ck_assert_ok(hc_archive_open(&a, path, 0));
    ck_assert_uint_eq(hc_archive_count(a), 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(hc_archive_name(a, i), ref.name[i]);
        hc_ctensor *ct;
        ck_assert_ok(hc_archive_tensor(&ct, a, i));
        ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_RESIDUAL);
        ck_assert_uint_eq(hc_ctensor_serialized_size(ct), ref.size[i]);
        uint8_t *b = malloc(ref.size[i]);
        ck_assert_ok(hc_ctensor_serialize(ct, b, ref.size[i]));
        ck_assert_int_eq(memcmp(b, ref.bytes[i], ref.size[i]), 0);
        free(b);
        hc_ctensor_free(ct);
    }
    hc_archive_close(a);
    ck_assert_int_eq(unlink(path), 0);
    /* cancelled half way: the writer is freed unfinished and no file appears */
    record rec = { 0 };
    rec.cancel_at = 4;
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    ck_assert_ok(hc_archive_writer_new(&w, path));
    ck_assert_status(hc_pipeline_compress_model(p, m, hc_archive_writer_sink, w), HC_ECANCELLED, "cancelled");
    hc_archive_writer_free(w);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    sink_free(&ref);
    hc_pipeline_free(p);
    hc_model_free(m);
    for (int i = 0; i < 4; i++)
        free(data[i]);
}
END_TEST

/* ---- the residual codec ---- */

static hc_ctensor *cascade_of(const float *w, int64_t rows, int64_t cols, int gains)
{
    hc_tensor_view v = test_view2("w", w, rows, cols);
    hc_ctensor *st[2];
    hc_compressor *c;
    ck_assert_ok(hc_compressor_from_spec(&c, "bf16"));
    ck_assert_ok(hc_compress(&st[0], c, &v));
    float *d = decode_all(st[0]);
    for (int64_t i = 0; i < rows * cols; i++)
        d[i] = w[i] - d[i];
    hc_tensor_view rv = test_view2("w", d, rows, cols);
    ck_assert_ok(hc_compress(&st[1], c, &rv));
    uint16_t g[2 * MAX_ROWS];
    for (int64_t i = 0; i < 2 * rows; i++)
        g[i] = hci_f32_to_f16(1.0f + 0.01f * (float)(i % 7) - 0.03f);
    hc_ctensor *res;
    ck_assert_ok(hci_residual_build(&res, st, 2, gains ? g : NULL, HC_DTYPE_F32, 1));
    hc_ctensor_free(st[0]);
    hc_ctensor_free(st[1]);
    hc_compressor_free(c);
    free(d);
    return res;
}

START_TEST(residual_round_trips_decodes_and_multiplies)
{
    const int64_t rows = 33, cols = 47, n = rows * cols;
    float *w = test_laplace(60, n, 0.3), *x = test_gauss(61, cols, 1.0);
    for (int gains = 0; gains < 2; gains++) {
        hc_ctensor *res = cascade_of(w, rows, cols, gains);
        /* independent decode: sum of the gained stages */
        float *ref = malloc(n * sizeof *ref);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                int64_t i = r * cols + c;
                float a = bf16(w[i]), b = bf16(w[i] - a);
                float ga = gains ? hci_f16_to_f32(hci_f32_to_f16(1.0f + 0.01f * (float)(r % 7) - 0.03f)) : 1.0f;
                float gb = gains ? hci_f16_to_f32(hci_f32_to_f16(1.0f + 0.01f * (float)((rows + r) % 7) - 0.03f)) : 1.0f;
                ref[i] = 0.0f + ga * a;
                ref[i] += gb * b;
            }
        size_t size = hc_ctensor_serialized_size(res);
        uint8_t *buf = malloc(size);
        ck_assert_ok(hc_ctensor_serialize(res, buf, size));
        hc_ctensor *back;
        ck_assert_ok(hc_ctensor_deserialize(&back, buf, size));
        ck_assert_uint_eq(hc_ctensor_codec_id(back), HC_CODEC_RESIDUAL);
        ck_assert_str_eq(hc_ctensor_codec_name(back), "residual");
        float *dec = decode_all(back);
        for (int64_t i = 0; i < n; i++)
            ck_assert_float_eq(dec[i], ref[i]);
        /* fp16 output goes through the chunked path */
        uint16_t *h = malloc(n * sizeof *h);
        ck_assert_ok(hc_ctensor_decode(back, HC_DTYPE_F16, h, n * sizeof *h));
        for (int64_t i = 0; i < n; i++)
            ck_assert_uint_eq(h[i], hci_f32_to_f16(ref[i]));
        float y[64];
        for (uint32_t t = 1; t <= 3; t++) {
            ck_assert_ok(hc_ctensor_set_threads(back, t));
            ck_assert_ok(hc_ctensor_matvec(back, x, y));
            for (int64_t r = 0; r < rows; r++) {
                double acc = 0;
                for (int64_t c = 0; c < cols; c++)
                    acc += (double)ref[r * cols + c] * x[c];
                ck_assert_double_eq_tol(y[r], acc, 1e-4);
            }
        }
        hc_stats s = HC_STATS_INIT;
        ck_assert_ok(hc_ctensor_stats(&s, back));
        ck_assert(isnan(s.rel_rmse));
        ck_assert_uint_eq(s.bits, 8 * size);
        hc_ctensor_free(back);
        hc_ctensor_free(res);
        free(buf);
        free(dec);
        free(h);
        free(ref);
    }
    free(w);
    free(x);
}
END_TEST

/* A serialised residual tensor with the given params and payload and a correct checksum. */
static uint8_t *frame(size_t *size, uint32_t n, uint32_t flags, const uint8_t *payload, size_t plen, int64_t rows,
                      int64_t cols)
{
    *size = 24 + 16 + 8 + plen + 4;
    uint8_t *b = calloc(1, *size);
    memcpy(b, "HCT1", 4);
    hci_put_u16(b + 4, 1);
    hci_put_u16(b + 6, HC_CODEC_RESIDUAL);
    b[8] = HC_DTYPE_F32;
    b[9] = 2;
    hci_put_u32(b + 12, 8);
    hci_put_u64(b + 16, plen);
    hci_put_u64(b + 24, (uint64_t)rows);
    hci_put_u64(b + 32, (uint64_t)cols);
    hci_put_u32(b + 40, n);
    hci_put_u32(b + 44, flags);
    if (plen)
        memcpy(b + 48, payload, plen);
    hci_put_u32(b + *size - 4, hci_crc32c(0, b, *size - 4));
    return b;
}

static void expect_bad(uint32_t n, uint32_t flags, const uint8_t *payload, size_t plen, int64_t rows, int64_t cols,
                       const char *needle)
{
    size_t size;
    uint8_t *b = frame(&size, n, flags, payload, plen, rows, cols);
    hc_ctensor *ct = (hc_ctensor *)b;
    ck_assert_status(hc_ctensor_deserialize(&ct, b, size), HC_EFORMAT, needle);
    ck_assert_ptr_null(ct);
    free(b);
}

START_TEST(residual_rejects_hostile_payloads)
{
    const int64_t rows = 6, cols = 5;
    float *w = test_gauss(70, rows * cols, 1.0);
    hc_ctensor *res = cascade_of(w, rows, cols, 1);
    size_t size = hc_ctensor_serialized_size(res);
    uint8_t *good = malloc(size);
    ck_assert_ok(hc_ctensor_serialize(res, good, size));
    /* every truncation and every single bit flip is refused */
    test_expect_hostile_serialised(good, size, 3, "residual tensor");
    /* structurally wrong but correctly checksummed payloads */
    const uint8_t *payload = good + 48;
    size_t plen = size - 48 - 4;
    uint64_t len0 = hci_get_u64(payload);
    expect_bad(0, 0, payload, plen, rows, cols, "declares 0 stages");
    expect_bad(17, 0, payload, plen, rows, cols, "declares 17 stages");
    expect_bad(2, 6, payload, plen, rows, cols, "unknown flags 0x6");
    expect_bad(2, 0, payload, plen, rows, cols, "bytes after its 2 stages; expected 0");
    expect_bad(3, 1, payload, plen, rows, cols, "declares");
    expect_bad(2, 1, payload, plen - 1, rows, cols, "expected 24");
    expect_bad(2, 1, payload, 4, rows, cols, "truncated before stage 0");
    expect_bad(2, 1, payload, plen, rows + 1, cols, "residual stage 0");
    expect_bad(2, 1, payload, plen, 3, 10, "shape different");
    uint8_t *p = malloc(plen);
    memcpy(p, payload, plen);
    hci_put_u64(p, len0 + 1000);
    expect_bad(2, 1, p, plen, rows, cols, "declares");
    memcpy(p, payload, plen);
    hci_put_u16(p + plen - 2, 0x7e00);   /* a NaN gain */
    expect_bad(2, 1, p, plen, rows, cols, "gain 11 is not finite");
    /* a residual nested in a residual */
    size_t inner_size = size;
    uint8_t *nested = malloc(8 + inner_size);
    hci_put_u64(nested, inner_size);
    memcpy(nested + 8, good, inner_size);
    expect_bad(1, 0, nested, 8 + inner_size, rows, cols, "nesting is not allowed");
    /* a stage whose own bytes are corrupt */
    memcpy(p, payload, plen);
    p[8 + 30] ^= 1;
    expect_bad(2, 1, p, plen, rows, cols, "residual stage 0: serialised tensor checksum mismatch");
    free(nested);
    free(p);
    free(good);
    hc_ctensor_free(res);
    free(w);
}
END_TEST

/* ---- gain refinement ---- */

START_TEST(gain_refinement_approaches_the_exact_optimum)
{
    const int64_t rows = 8, cols = 300, n = rows * cols;
    float *w = test_gauss(80, n, 1.0), *noise = test_gauss(81, 2 * n, 0.2);
    float *d0 = malloc(n * sizeof *d0), *d1 = malloc(n * sizeof *d1), *imp = malloc(cols * sizeof *imp);
    for (int64_t i = 0; i < n; i++) {
        d0[i] = 0.8f * w[i] + noise[i];             /* a shrunk first stage */
        d1[i] = 0.5f * (w[i] - d0[i]) + 0.1f * noise[n + i];
    }
    for (int64_t c = 0; c < cols; c++)
        imp[c] = 0.5f + (float)(c % 5);
    const float *dec[2] = { d0, d1 };
    hci_gain_problem gp;
    ck_assert_ok(hci_gain_problem_init(&gp, w, dec, 2, rows, cols, imp));
    float g[2 * 8], opt[2 * 8];
    for (int i = 0; i < 16; i++)
        g[i] = 1.0f;
    /* the expansion equals the loss computed directly */
    double direct = 0, energy = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t i = r * cols + c;
            double e = w[i] - d0[i] - d1[i];
            direct += imp[c] * e * e;
            energy += imp[c] * (double)w[i] * w[i];
        }
    ck_assert_double_eq_tol(hci_gain_loss(&gp, g), direct / energy, 1e-9);
    hci_gain_optimum(&gp, opt);
    double best = hci_gain_loss(&gp, opt);
    /* the optimum is a minimum: nudging any gain raises the loss */
    for (int i = 0; i < 16; i++) {
        float keep = opt[i];
        opt[i] = keep + 1e-3f;
        ck_assert(hci_gain_loss(&gp, opt) > best);
        opt[i] = keep - 1e-3f;
        ck_assert(hci_gain_loss(&gp, opt) > best);
        opt[i] = keep;
    }
    double trace[401];
    for (int filter = 0; filter < 2; filter++) {
        for (int i = 0; i < 16; i++)
            g[i] = 1.0f;
        ck_assert_ok(hci_gain_refine(&gp, g, 400, 0.01f, (uint32_t)filter, trace));
        ck_assert_double_eq_tol(trace[0], direct / energy, 1e-9);
        ck_assert(trace[400] < trace[0]);
        ck_assert_msg(trace[400] - best < 0.05 * (trace[0] - best), "filter %d: %g vs optimum %g from %g", filter,
                      trace[400], best, trace[0]);
    }
    hci_gain_problem_free(&gp);
    free(w);
    free(noise);
    free(d0);
    free(d1);
    free(imp);
}
END_TEST

/* A codec with one scale per tensor leaves room for per-row gains; runs once ternary is built in. */
START_TEST(refine_gains_are_the_row_least_squares_scales)
{
    hc_compressor *probe = NULL;
    if (hc_compressor_from_spec(&probe, "ternary") == HC_ENOTFOUND)
        return;
    hc_compressor_free(probe);
    const int64_t rows = 48, cols = 64, n = rows * cols;
    float *w = test_laplace(95, n, 1.0);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            w[r * cols + c] *= (float)(0.1 + 0.05 * (double)r);   /* rows of very different scale */
    hc_tensor_view v = test_view2("w", w, rows, cols);
    for (uint32_t solver = 0; solver < 2; solver++) {
        hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
        o.min_db_per_bit = 0;
        o.gain_iters = solver ? 1 : 400;
        o.gain_lr = 0.02f;
        o.gain_solver = solver;
        hc_pipeline *p;
        ck_assert_ok(hc_pipeline_new(&p, &o));
        add(p, "ternary", NULL);
        record rec = { 0 };
        hc_pipeline_set_stage_callback(p, record_cb, &rec);
        hc_ctensor *ct;
        ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
        ck_assert_uint_eq(hc_ctensor_codec_id(ct), HC_CODEC_RESIDUAL);
        ck_assert_int_eq(rec.n, 3);
        ck_assert_uint_eq(rec.m[1].action, HC_STAGE_REFINED);
        ck_assert(rec.m[1].rel_rmse < 0.9 * rec.m[0].rel_rmse);
        /* the residual's header, params and CRC, the stage's length, 16 bits per row */
        ck_assert_uint_eq(rec.m[1].bits - rec.m[0].bits, 8u * (24 + 16 + 8 + 4 + 8 + 2 * rows));
        /* independently: the plain ternary coding and each row's least-squares scale */
        hc_compressor *c;
        hc_ctensor *t;
        ck_assert_ok(hc_compressor_from_spec(&c, "ternary"));
        ck_assert_ok(hc_compress(&t, c, &v));
        float *td = decode_all(t), *dec = decode_all(ct);
        for (int64_t r = 0; r < rows; r++) {
            double wt = 0, tt = 0;
            for (int64_t k = 0; k < cols; k++) {
                wt += (double)w[r * cols + k] * td[r * cols + k];
                tt += (double)td[r * cols + k] * td[r * cols + k];
            }
            float g = tt > 0 ? (float)(wt / tt) : 1.0f, got = 0;
            for (int64_t k = 0; k < cols; k++)
                if (td[r * cols + k] != 0) {
                    got = dec[r * cols + k] / td[r * cols + k];
                    break;
                }
            for (int64_t k = 0; k < cols; k++)
                ck_assert_float_eq_tol(dec[r * cols + k], got * td[r * cols + k], 1e-6f * fabsf(td[r * cols + k]) + 1e-12f);
            /* the exact solve stores the optimum to fp16 precision; Adam gets close to it. A row
             * that ternary zeroed entirely has no scale to find. */
            float tol = solver ? 2e-3f * fabsf(g) + 1e-6f : 0.05f * fabsf(g) + 1e-3f;
            if (tt > 0)
                ck_assert_float_eq_tol(got, g, tol);
        }
        hc_stats s;
        stats_of(&s, w, dec, n);
        ck_assert_double_eq_tol(rec.m[1].rel_rmse, s.rel_rmse, 1e-9);
        free(td);
        free(dec);
        hc_ctensor_free(t);
        hc_compressor_free(c);
        hc_ctensor_free(ct);
        hc_pipeline_free(p);
    }
    free(w);
}
END_TEST

/* ---- API errors and OOM ---- */

START_TEST(argument_errors_are_named)
{
    hc_pipeline *p;
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.mode = 7;
    ck_assert_status(hc_pipeline_new(&p, &o), HC_EINVAL, "mode 7");
    o = (hc_pipeline_options)HC_PIPELINE_OPTIONS_INIT;
    o.model_retain = 1.5;
    ck_assert_status(hc_pipeline_new(&p, &o), HC_EINVAL, "model_retain 1.5");
    o = (hc_pipeline_options)HC_PIPELINE_OPTIONS_INIT;
    o.fallback_spec = "nope";
    ck_assert_status(hc_pipeline_new(&p, &o), HC_ENOTFOUND, "unknown codec 'nope'");
    o = (hc_pipeline_options)HC_PIPELINE_OPTIONS_INIT;
    o.struct_size = sizeof o + 4;
    ck_assert_status(hc_pipeline_new(&p, &o), HC_EVERSION, "larger");
    ck_assert_ok(hc_pipeline_options_init(&o, sizeof o));
    ck_assert_ok(hc_pipeline_new(&p, &o));
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    hc_tensor_view v = test_view2("w", w, 2, 3);
    hc_ctensor *ct;
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_EINVAL, "has no stages");
    ck_assert_status(hc_pipeline_add_stage_spec(p, "x", "int3", NULL), HC_ENOTFOUND, "unknown codec 'int3'");
    hc_gate g = HC_GATE_INIT;
    g.checks = 8;
    ck_assert_status(hc_pipeline_add_stage_spec(p, "x", "fp16", &g), HC_EINVAL, "checks 0x8");
    for (uint32_t i = 0; i < hc_pipeline_max_stages(); i++)
        add(p, "fp16", NULL);
    ck_assert_uint_eq(hc_pipeline_stage_count(p), HC_PIPELINE_MAX_STAGES);
    ck_assert_status(hc_pipeline_add_stage_spec(p, NULL, "fp16", NULL), HC_EINVAL, "already has 16 stages");
    hc_compressor *c;
    ck_assert_ok(hc_compressor_from_spec(&c, "bf16"));
    ck_assert_status(hc_pipeline_add_stage(p, "x", NULL, NULL), HC_EINVAL, "compressor is NULL");
    hc_compressor_free(c);
    ck_assert_status(hc_pipeline_compress_model(p, NULL, sink_cb, NULL), HC_EINVAL, "model is NULL");
    w[2] = NAN;
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    ck_assert_status(hc_pipeline_compress_tensor(&ct, p, &v), HC_EINVAL, "NaN");
    ck_assert_int_eq(rec.n, 0);   /* a call that fails before starting never fires the callback */
    hc_pipeline_free(p);
    hc_pipeline_free(NULL);
    hc_model_free(NULL);
}
END_TEST

START_TEST(stage_added_from_a_compressor_is_cloned)
{
    float *w = test_gauss(90, 200, 1.0);
    hc_tensor_view v = test_view2("w", w, 10, 20);
    hc_pipeline *p = make_pipeline(HC_PIPELINE_ESCALATE, 1.0, NULL);
    hc_compressor *c;
    ck_assert_ok(hc_compressor_from_spec(&c, "fp16"));
    ck_assert_ok(hc_pipeline_add_stage(p, "half", c, NULL));
    hc_compressor_free(c);   /* the pipeline keeps the spec, not the compressor */
    record rec = { 0 };
    hc_pipeline_set_stage_callback(p, record_cb, &rec);
    hc_ctensor *ct;
    ck_assert_ok(hc_pipeline_compress_tensor(&ct, p, &v));
    ck_assert_str_eq(rec.stage[0], "half");
    ck_assert_str_eq(rec.spec[0], "fp16");
    hc_ctensor_free(ct);
    hc_pipeline_free(p);
    free(w);
}
END_TEST

static int run_oom(int mode, long k, const float *w)
{
    hc_tensor_view v = test_view2("w", w, 12, 20);
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.mode = (uint32_t)mode;
    o.min_db_per_bit = 0;
    o.gain_iters = mode == 0 ? 5 : 0;
    hc_pipeline *p = NULL;
    hc_ctensor *ct = NULL;
    hc_model *m = NULL;
    hci_alloc_fail_after(k);
    int rc = hc_pipeline_new(&p, &o);
    if (rc == HC_OK)
        rc = hc_pipeline_add_stage_spec(p, NULL, "bf16", mode ? &(hc_gate){ sizeof(hc_gate), HC_GATE_REL_RMSE, 1e-4, 0, 0 } : NULL);
    if (rc == HC_OK)
        rc = hc_pipeline_add_stage_spec(p, NULL, "bf16", NULL);
    if (rc == HC_OK)
        rc = hc_pipeline_add_rule(p, "zz*", "fp16", NULL);
    if (rc == HC_OK)
        rc = hc_pipeline_compress_tensor(&ct, p, &v);
    if (rc == HC_OK)
        rc = hc_model_new(&m);
    if (rc == HC_OK)
        rc = hc_model_add(m, &v);
    sink_rec s = { 0 };
    if (rc == HC_OK)
        rc = hc_pipeline_compress_model(p, m, sink_cb, &s);
    hci_alloc_fail_after(0);
    sink_free(&s);
    hc_ctensor_free(ct);
    hc_model_free(m);
    hc_pipeline_free(p);
    return rc;
}

START_TEST(out_of_memory_is_reported_and_leaks_nothing)
{
    float *w = test_gauss(91, 240, 1.0);
    for (int mode = 0; mode < 2; mode++) {
        long k = 1;
        int rc;
        while ((rc = run_oom(mode, k, w)) != HC_OK) {
            ck_assert_msg(rc == HC_ENOMEM, "mode %d, allocation %ld: %s (%s)", mode, k, hc_status_name(rc),
                          hc_last_error());
            k++;
            ck_assert_int_lt(k, 2000);
        }
        ck_assert_int_gt(k, 10);
    }
    free(w);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, refine_sums_stages_and_reports_independent_metrics);
    tcase_add_test(tc, refine_stops_once_the_gate_is_met);
    tcase_add_test(tc, refine_drops_stages_that_buy_too_little);
    tcase_add_test(tc, refine_fails_when_the_gate_is_never_met);
    tcase_add_test(tc, escalate_keeps_the_smallest_pass_and_falls_back);
    tcase_add_test(tc, escalate_retry_with_the_builtin_step_and_the_adjust_callback);
    tcase_add_test(tc, escalate_without_any_pass_fails_or_uses_the_fallback);
    tcase_add_test(tc, gate_kinds_parse_and_judge);
    tcase_add_test(tc, snr_and_cosine_gates_decide_escalation);
    tcase_add_test(tc, model_gate_rolls_back_a_stage_that_costs_too_much);
    tcase_add_test(tc, model_gate_keeps_refining_until_the_model_retains);
    tcase_add_test(tc, rules_and_keeps_choose_per_tensor);
    tcase_add_test(tc, model_results_match_across_thread_counts);
    tcase_add_test(tc, callback_cancels_without_a_half_result);
    tcase_add_test(tc, model_streams_into_a_container_and_a_cancel_leaves_no_file);
    tcase_add_test(tc, residual_round_trips_decodes_and_multiplies);
    tcase_add_test(tc, residual_rejects_hostile_payloads);
    tcase_add_test(tc, gain_refinement_approaches_the_exact_optimum);
    tcase_add_test(tc, refine_gains_are_the_row_least_squares_scales);
    tcase_add_test(tc, argument_errors_are_named);
    tcase_add_test(tc, stage_added_from_a_compressor_is_cloned);
    tcase_add_test(tc, out_of_memory_is_reported_and_leaks_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(pipeline_suite());
}
