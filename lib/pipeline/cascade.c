/* One tensor through a pipeline: the residual cascade (refine) and the fallback hierarchy
 * (escalate), with gates, retry, fallback, the optional gain refinement and the reports. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"
#include "common/metrics.h"
#include "pipeline/pipeline_internal.h"
#include "tensor_view.h"

typedef struct tensor_ctx {
    const hci_run *run;
    const hc_pipeline *p;
    hc_tensor_view view;   /* the caller's view, checked */
    const char *name;
    const float *w;        /* f32 values of the original */
    float *owned;
    int64_t n, rows, cols;
    double orig_bits;
} tensor_ctx;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int ctx_open(tensor_ctx *tc, const hci_run *run, const hc_tensor_view *t)
{
    memset(tc, 0, sizeof *tc);
    tc->run = run;
    tc->p = run->p;
    int rc = hci_view_check(&tc->view, t, &tc->n);
    if (rc != HC_OK)
        return rc;
    hci_matrix m;
    rc = hci_view_matrix(&m, &tc->owned, &tc->view, tc->n);
    if (rc != HC_OK)
        return rc;
    tc->w = m.data;
    tc->name = m.name;
    tc->rows = m.rows;
    tc->cols = m.cols;
    tc->orig_bits = (double)tc->n * 8.0 * (double)hc_dtype_size(tc->view.dtype);
    return HC_OK;
}

static void ctx_close(tensor_ctx *tc) { hci_free(tc->owned); }

/* A view of `data` with the original's name, shape and importance. */
static hc_tensor_view view_of(const tensor_ctx *tc, const float *data)
{
    hc_tensor_view v = tc->view;
    v.struct_size = sizeof v;
    v.name = tc->name;
    v.dtype = HC_DTYPE_F32;
    v.data = data;
    return v;
}

static int code_view(hc_ctensor **out, const char *spec, uint32_t threads, const hc_tensor_view *v)
{
    hc_compressor *c;
    int rc = hc_compressor_from_spec(&c, spec);
    if (rc != HC_OK)
        return rc;
    if (threads)
        c->threads = threads;
    rc = hc_compress(out, c, v);
    hc_compressor_free(c);
    return rc;
}

static float *alloc_values(const tensor_ctx *tc) { return hci_malloc_array((size_t)tc->n, sizeof(float)); }

static void measure(hc_stats *s, const float *ref, const float *dec, int64_t n)
{
    hci_err_acc acc = { 0 };
    hci_err_acc_add(&acc, ref, dec, (size_t)n);
    *s = (hc_stats)HC_STATS_INIT;
    hci_err_acc_finish(&acc, s);
}

static void fill(hc_stage_metrics *m, const tensor_ctx *tc, uint32_t index, const char *stage, const char *spec,
                 uint32_t attempt, uint32_t action, uint64_t stage_bits, uint64_t bits, const hc_stats *s)
{
    memset(m, 0, sizeof *m);
    m->struct_size = sizeof *m;
    m->stage_index = index;
    m->stage = stage;
    m->tensor = tc->name;
    m->spec = spec;
    m->mode = tc->p->o.mode;
    m->attempt = attempt;
    m->action = action;
    m->n_values = (uint64_t)tc->n;
    m->stage_bits = stage_bits;
    m->bits = bits;
    m->bpw = (double)bits / (double)tc->n;
    m->ratio = tc->orig_bits / (double)bits;
    m->rel_rmse = s->rel_rmse;
    m->snr_db = s->snr_db;
    m->cosine = s->cosine;
    m->max_abs_err = s->max_abs_err;
    m->model_score = NAN;
    m->baseline_score = tc->run->mg ? tc->run->mg->baseline : NAN;
}

static uint64_t ct_bits(const hc_ctensor *ct) { return 8u * (uint64_t)hc_ctensor_serialized_size(ct); }

/* Tensor gate, then (only if it passed) the model gate. */
static int judge(const tensor_ctx *tc, const hc_gate *gate, const hc_stats *s, const float *decoded,
                 hc_stage_metrics *m, int *passed)
{
    *passed = hc_gate_passes(gate, s);
    if (*passed && tc->run->mg) {
        int rc = hci_model_gate_check(tc->run, decoded, passed, &m->model_score);
        if (rc != HC_OK)
            return rc;
        if (!*passed)
            m->action = HC_STAGE_ROLLED_BACK;
    }
    m->gate_passed = *passed;
    return HC_OK;
}

static int report_final(const tensor_ctx *tc, hc_ctensor *ct, const char *stage, const char *spec, uint32_t index,
                        double seconds)
{
    hc_stats s = HC_STATS_INIT;
    int rc = hc_ctensor_stats(&s, ct);
    if (rc != HC_OK)
        return rc;
    hc_stage_metrics m;
    fill(&m, tc, index, stage, spec, 0, HC_STAGE_CHOSEN, ct_bits(ct), s.bits, &s);
    m.gate_passed = 1;
    m.seconds = seconds;
    return hci_run_report(tc->run, &m);
}

static int code_plain(hc_ctensor **out, const tensor_ctx *tc, const char *spec, const char *stage_name,
                      uint32_t action, double t_start)
{
    double t0 = now_seconds();
    hc_tensor_view v = view_of(tc, tc->w);
    v.dtype = tc->view.dtype;
    v.data = tc->view.data;   /* the original dtype, so a lossless keep stays lossless */
    hc_ctensor *ct;
    int rc = code_view(&ct, spec, 0, &v);
    if (rc != HC_OK)
        return rc;
    hc_stats s = HC_STATS_INIT;
    hc_ctensor_stats(&s, ct);
    hc_stage_metrics m;
    uint32_t index = tc->p->n_stages;
    fill(&m, tc, index, stage_name, spec, 0, action, s.bits, s.bits, &s);
    m.gate_passed = 1;
    m.seconds = now_seconds() - t0;
    rc = hci_run_report(tc->run, &m);
    if (rc == HC_OK)
        rc = report_final(tc, ct, stage_name, spec, index, now_seconds() - t_start);
    if (rc != HC_OK) {
        hc_ctensor_free(ct);
        return rc;
    }
    *out = ct;
    return HC_OK;
}

int hci_run_plain(hc_ctensor **out, const hci_run *run, const hc_tensor_view *t, const char *spec,
                  const char *stage_name, uint32_t action)
{
    *out = NULL;
    tensor_ctx tc;
    int rc = ctx_open(&tc, run, t);
    if (rc == HC_OK)
        rc = code_plain(out, &tc, spec, stage_name, action, now_seconds());
    ctx_close(&tc);
    return rc;
}

static int no_pass(hc_ctensor **out, const tensor_ctx *tc, const char *why, double t_start)
{
    if (tc->p->o.fallback_spec)
        return code_plain(out, tc, tc->p->o.fallback_spec, "fallback", HC_STAGE_FALLBACK, t_start);
    return hci_fail(HC_EQUALITY, "tensor '%s': %s, and the pipeline has no fallback_spec", tc->name, why);
}

/* ---- refine: the residual cascade ---- */

typedef struct cascade {
    hc_ctensor *ct[HC_PIPELINE_MAX_STAGES];
    float *dec[HC_PIPELINE_MAX_STAGES];
    uint32_t index[HC_PIPELINE_MAX_STAGES];
    uint32_t n;
} cascade;

static void cascade_free(cascade *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        hc_ctensor_free(c->ct[i]);
        hci_free(c->dec[i]);
    }
    c->n = 0;
}

/* Bits of the result if it ended with these stages: a lone stage is returned bare. */
static uint64_t cascade_bits(hc_ctensor *const *ct, uint32_t n, int gains)
{
    if (n == 1 && !gains)
        return ct_bits(ct[0]);
    return hci_residual_bits(ct, n, gains);
}

/* Gains refined after the cascade; returns 1 in *used when they pay for their bits. */
static int refine_gains(const tensor_ctx *tc, cascade *c, uint16_t **gains_out, float *recon, hc_stats *s,
                        uint64_t *bits, int *used)
{
    *used = 0;
    *gains_out = NULL;
    const hc_pipeline_options *o = &tc->p->o;
    hci_gain_problem gp;
    int rc = hci_gain_problem_init(&gp, tc->w, (const float *const *)c->dec, c->n, tc->rows, tc->cols,
                                   tc->view.importance);
    if (rc != HC_OK)
        return rc;
    size_t ng = (size_t)c->n * (size_t)tc->rows;
    float *g = hci_malloc_array(ng, sizeof(float));
    uint16_t *h = g ? hci_malloc_array(ng, sizeof(uint16_t)) : NULL;
    if (!h) {
        hci_free(g);
        hci_gain_problem_free(&gp);
        return HC_ENOMEM;
    }
    for (size_t i = 0; i < ng; i++)
        g[i] = 1.0f;
    double loss0 = hci_gain_loss(&gp, g);
    if (o->gain_solver == 1)
        hci_gain_optimum(&gp, g);
    else
        rc = hci_gain_refine(&gp, g, o->gain_iters, o->gain_lr, o->gain_filter, NULL);
    if (rc == HC_OK) {
        /* the stored gains are fp16: judge what will be stored */
        for (size_t i = 0; i < ng; i++) {
            h[i] = hci_f32_to_f16(g[i]);
            g[i] = hci_f16_to_f32(h[i]);
        }
        double loss1 = hci_gain_loss(&gp, g);
        uint64_t nbits = hci_residual_bits(c->ct, c->n, 1);
        double db = loss1 > 0 ? 10.0 * log10(loss0 / loss1) : INFINITY;
        double dbpw = ((double)nbits - (double)*bits) / (double)tc->n;
        if (loss1 < loss0 && db >= o->min_db_per_bit * dbpw) {
            for (int64_t i = 0; i < tc->n; i++)
                recon[i] = 0.0f;
            for (uint32_t k = 0; k < c->n; k++)
                for (int64_t r = 0; r < tc->rows; r++) {
                    float gk = g[(size_t)k * (size_t)tc->rows + (size_t)r];
                    const float *d = c->dec[k] + r * tc->cols;
                    float *y = recon + r * tc->cols;
                    for (int64_t j = 0; j < tc->cols; j++)
                        y[j] += gk * d[j];
                }
            measure(s, tc->w, recon, tc->n);
            *bits = nbits;
            *used = 1;
        }
    }
    hci_free(g);
    hci_gain_problem_free(&gp);
    if (*used)
        *gains_out = h;
    else
        hci_free(h);
    return rc;
}

static int run_refine(hc_ctensor **out, const tensor_ctx *tc)
{
    const hc_pipeline *p = tc->p;
    double t_start = now_seconds();
    cascade c = { 0 };
    float *recon = hci_calloc((size_t)tc->n, sizeof(float));
    float *resid = alloc_values(tc);
    float *cand = alloc_values(tc);
    uint16_t *gains = NULL;
    int rc = recon && resid && cand ? HC_OK : HC_ENOMEM;
    if (rc == HC_OK)
        memcpy(resid, tc->w, (size_t)tc->n * sizeof(float));
    double prev_snr = 0.0;   /* an empty reconstruction: error = W, 0 dB */
    uint64_t prev_bits = 0;
    int done = 0, last_passed = 0;
    hc_stats cur = HC_STATS_INIT;
    for (uint32_t si = 0; si < p->n_stages && rc == HC_OK && !done; si++) {
        const hci_stage *st = &p->stages[si];
        double t0 = now_seconds();
        hc_tensor_view v = view_of(tc, resid);
        hc_ctensor *ct = NULL;
        float *dec = NULL;
        rc = code_view(&ct, st->spec, st->threads, &v);
        if (rc == HC_OK && !(dec = alloc_values(tc)))
            rc = HC_ENOMEM;
        if (rc == HC_OK)
            rc = hci_ctensor_decode_f32(ct, dec);
        if (rc != HC_OK) {
            hc_ctensor_free(ct);
            hci_free(dec);
            break;
        }
        for (int64_t i = 0; i < tc->n; i++)
            cand[i] = recon[i] + dec[i];
        hc_stats s;
        measure(&s, tc->w, cand, tc->n);
        c.ct[c.n] = ct;
        uint64_t bits = cascade_bits(c.ct, c.n + 1, 0);
        double gain_db = s.snr_db - prev_snr;
        double dbpw = ((double)bits - (double)prev_bits) / (double)tc->n;
        /* after an exact reconstruction nothing is left to buy; an exact stage is always worth it */
        int keep = prev_snr == INFINITY ? 0
                   : s.snr_db == INFINITY ? 1
                   : gain_db > 0 && gain_db >= p->o.min_db_per_bit * dbpw;
        hc_stage_metrics m;
        fill(&m, tc, si, st->name, st->spec, 0, keep ? HC_STAGE_KEPT : HC_STAGE_DROPPED, ct_bits(ct), bits, &s);
        int passed = 0;
        if (keep) {
            /* the decoded stages are only needed again by the gain refinement */
            if (!p->o.gain_iters) {
                hci_free(dec);
                dec = NULL;
            }
            c.dec[c.n] = dec;
            c.index[c.n] = si;
            c.n++;
            float *t = recon;
            recon = cand;
            cand = t;
            for (int64_t i = 0; i < tc->n; i++)
                resid[i] = tc->w[i] - recon[i];
            prev_snr = s.snr_db;
            prev_bits = bits;
            cur = s;
            /* the cascade stops at a gate that has something to check and passes (rate control) */
            rc = judge(tc, &st->gate, &s, recon, &m, &passed);
            if (m.action == HC_STAGE_ROLLED_BACK)
                m.action = HC_STAGE_KEPT;   /* refine keeps the stage and goes on refining */
            last_passed = passed;
            done = passed && (st->gate.checks != 0 || tc->run->mg);
        } else {
            c.ct[c.n] = NULL;
            m.gate_passed = hc_gate_passes(&st->gate, &s);
            hc_ctensor_free(ct);
            hci_free(dec);
        }
        m.seconds = now_seconds() - t0;
        if (rc == HC_OK)
            rc = hci_run_report(tc->run, &m);
    }
    if (rc == HC_OK && (c.n == 0 || !last_passed)) {
        char why[160];
        if (c.n == 0)
            snprintf(why, sizeof why, "every stage bought less than %g dB per bit and was dropped", p->o.min_db_per_bit);
        else
            snprintf(why, sizeof why, "after %u kept stage(s) the reconstruction (rel_rmse %.4g, snr %.2f dB) still fails the gate",
                     c.n, cur.rel_rmse, cur.snr_db);
        cascade_free(&c);
        rc = no_pass(out, tc, why, t_start);
        goto done;
    }
    uint64_t bits = prev_bits;
    int used = 0;
    if (rc == HC_OK && p->o.gain_iters) {
        double t0 = now_seconds();
        hc_stats s = cur;
        /* cand is free scratch here: the refined sum goes there and replaces recon if used */
        rc = refine_gains(tc, &c, &gains, cand, &s, &bits, &used);
        if (rc == HC_OK && used) {
            hc_stage_metrics m;
            const hci_stage *last = &p->stages[c.index[c.n - 1]];
            fill(&m, tc, c.index[c.n - 1], "gains", last->spec, 0, HC_STAGE_REFINED, bits - prev_bits, bits, &s);
            int passed;
            rc = judge(tc, &last->gate, &s, cand, &m, &passed);
            if (rc == HC_OK && !passed) {
                /* the weighted optimum may cost unweighted error: keep the gate, drop the gains */
                used = 0;
                bits = prev_bits;
                hci_free(gains);
                gains = NULL;
                m.action = HC_STAGE_DROPPED;
            }
            m.seconds = now_seconds() - t0;
            if (rc == HC_OK)
                rc = hci_run_report(tc->run, &m);
        }
    }
    if (rc == HC_OK) {
        hc_ctensor *res;
        if (c.n == 1 && !used) {
            res = c.ct[0];
            c.ct[0] = NULL;
        } else {
            rc = hci_residual_build(&res, c.ct, c.n, gains, tc->view.dtype, c.ct[0]->threads);
            if (rc == HC_OK) {
                hc_tensor_view ov = view_of(tc, tc->w);
                rc = hc_ctensor_measure(NULL, res, &ov);
                if (rc != HC_OK)
                    hc_ctensor_free(res);
            }
        }
        if (rc == HC_OK) {
            res->quality.seconds = now_seconds() - t_start;
            rc = report_final(tc, res, used ? "gains" : p->stages[c.index[c.n - 1]].name,
                              p->stages[c.index[c.n - 1]].spec, c.index[c.n - 1], res->quality.seconds);
            if (rc == HC_OK)
                *out = res;
            else
                hc_ctensor_free(res);
        }
    }
    cascade_free(&c);
done:
    hci_free(gains);
    hci_free(recon);
    hci_free(resid);
    hci_free(cand);
    return rc;
}

/* ---- escalate: the fallback hierarchy ---- */

/* The built-in retry: the stage's compressor codes the tensor, then what it left. */
static int code_twice(hc_ctensor **out, const tensor_ctx *tc, const hci_stage *st)
{
    *out = NULL;
    hc_tensor_view v = view_of(tc, tc->w);
    hc_ctensor *pair[2] = { NULL, NULL };
    float *resid = alloc_values(tc);
    if (!resid)
        return HC_ENOMEM;
    int rc = code_view(&pair[0], st->spec, st->threads, &v);
    if (rc == HC_OK)
        rc = hci_ctensor_decode_f32(pair[0], resid);
    if (rc == HC_OK) {
        for (int64_t i = 0; i < tc->n; i++)
            resid[i] = tc->w[i] - resid[i];
        hc_tensor_view rv = view_of(tc, resid);
        rc = code_view(&pair[1], st->spec, st->threads, &rv);
    }
    if (rc == HC_OK)
        rc = hci_residual_build(out, pair, 2, NULL, tc->view.dtype, pair[0]->threads);
    if (rc == HC_OK) {
        rc = hc_ctensor_measure(NULL, *out, &v);
        if (rc != HC_OK) {
            hc_ctensor_free(*out);
            *out = NULL;
        }
    }
    hc_ctensor_free(pair[0]);
    hc_ctensor_free(pair[1]);
    hci_free(resid);
    return rc;
}

/* Codes, measures, judges and reports one attempt; *ct is NULL unless it passed. */
static int attempt(hc_ctensor **ct, int *passed, hc_stage_metrics *mout, const tensor_ctx *tc, uint32_t si,
                   const char *spec, uint32_t attempt_no, int twice, float *dec)
{
    const hci_stage *st = &tc->p->stages[si];
    double t0 = now_seconds();
    *ct = NULL;
    *passed = 0;
    hc_ctensor *r = NULL;
    int rc;
    if (twice) {
        rc = code_twice(&r, tc, st);
    } else {
        hc_tensor_view v = view_of(tc, tc->w);
        rc = code_view(&r, spec, st->threads, &v);
    }
    if (rc == HC_OK)
        rc = hci_ctensor_decode_f32(r, dec);
    if (rc != HC_OK) {
        hc_ctensor_free(r);
        return rc;
    }
    hc_stats s;
    measure(&s, tc->w, dec, tc->n);
    fill(mout, tc, si, st->name, twice ? st->spec : spec, attempt_no, HC_STAGE_KEPT, ct_bits(r), ct_bits(r), &s);
    rc = judge(tc, &st->gate, &s, dec, mout, passed);
    if (rc == HC_OK && !*passed && mout->action == HC_STAGE_KEPT)
        mout->action = HC_STAGE_FAILED;
    mout->seconds = now_seconds() - t0;
    if (rc == HC_OK)
        rc = hci_run_report(tc->run, mout);
    if (rc != HC_OK || !*passed) {
        hc_ctensor_free(r);
        return rc;
    }
    *ct = r;
    return HC_OK;
}

static int run_escalate(hc_ctensor **out, const tensor_ctx *tc)
{
    const hc_pipeline *p = tc->p;
    const hc_pipeline *top = tc->run->top;
    double t_start = now_seconds();
    hc_ctensor *best = NULL;
    uint32_t best_index = 0;
    char best_name[HCI_NAME_MAX] = "", best_spec[HCI_SPEC_MAX] = "";
    float *dec = alloc_values(tc);
    if (!dec)
        return HC_ENOMEM;
    int rc = HC_OK;
    char why[200] = "no stage ran";
    for (uint32_t si = 0; si < p->n_stages && rc == HC_OK; si++) {
        const hci_stage *st = &p->stages[si];
        hc_ctensor *ct;
        int passed;
        hc_stage_metrics m;
        rc = attempt(&ct, &passed, &m, tc, si, st->spec, 0, 0, dec);
        if (rc != HC_OK)
            break;
        const char *spec = st->spec;
        char adjusted[HCI_SPEC_MAX] = "";
        if (!passed) {
            snprintf(why, sizeof why, "stage '%s' failed its gate (rel_rmse %.4g, snr %.2f dB, cosine %.6f)%s", st->name,
                     m.rel_rmse, m.snr_db, m.cosine, m.action == HC_STAGE_ROLLED_BACK ? " or the model gate" : "");
            if (top->adjust && top->adjust(adjusted, sizeof adjusted, &m, top->adjust_data) != 0) {
                rc = hci_fail(HC_ECANCELLED, "pipeline cancelled by the adjust callback at stage '%s' of tensor '%s'",
                              st->name, tc->name);
                break;
            }
            adjusted[sizeof adjusted - 1] = '\0';
            spec = adjusted[0] ? adjusted : st->spec;
            rc = attempt(&ct, &passed, &m, tc, si, spec, 1, adjusted[0] == '\0', dec);
            if (rc != HC_OK)
                break;
            if (!passed)
                break;   /* retried and failed: fall back to the last pass */
        }
        if (!best || ct_bits(ct) < ct_bits(best)) {
            hc_ctensor_free(best);
            best = ct;
            best_index = si;
            snprintf(best_name, sizeof best_name, "%s", st->name);
            snprintf(best_spec, sizeof best_spec, "%s", m.spec);
        } else {
            hc_ctensor_free(ct);
        }
    }
    hci_free(dec);
    if (rc != HC_OK) {
        hc_ctensor_free(best);
        return rc;
    }
    if (!best)
        return no_pass(out, tc, why, t_start);
    best->quality.seconds = now_seconds() - t_start;
    rc = report_final(tc, best, best_name, best_spec, best_index, best->quality.seconds);
    if (rc != HC_OK) {
        hc_ctensor_free(best);
        return rc;
    }
    *out = best;
    return HC_OK;
}

int hci_run_tensor(hc_ctensor **out, const hci_run *run, const hc_tensor_view *t)
{
    *out = NULL;
    tensor_ctx tc;
    int rc = ctx_open(&tc, run, t);
    if (rc == HC_OK)
        rc = run->p->o.mode == HC_PIPELINE_REFINE ? run_refine(out, &tc) : run_escalate(out, &tc);
    ctx_close(&tc);
    return rc;
}
