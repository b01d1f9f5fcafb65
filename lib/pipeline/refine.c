/* Refine mode: the residual cascade with rate control, stage dropping and the optional
 * per-row gain refinement. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"
#include "pipeline/pipeline_internal.h"
#include "pipeline/tensor_run.h"

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
        return hci_ct_bits(ct[0]);
    return hci_residual_bits(ct, n, gains);
}

/* Gains refined after the cascade; returns 1 in *used when they pay for their bits. */
static int refine_gains(const hci_tensor_ctx *tc, cascade *c, uint16_t **gains_out, float *recon, hc_stats *s,
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
        /* the stored gains are fp16: hci_judge what will be stored */
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
            hci_measure(s, tc->w, recon, tc->n);
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

int hci_run_refine(hc_ctensor **out, const hci_tensor_ctx *tc)
{
    const hc_pipeline *p = tc->p;
    double t_start = hci_now();
    cascade c = { 0 };
    float *recon = hci_calloc((size_t)tc->n, sizeof(float));
    float *resid = hci_alloc_values(tc);
    float *cand = hci_alloc_values(tc);
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
        double t0 = hci_now();
        hc_tensor_view v = hci_view_of(tc, resid);
        hc_ctensor *ct = NULL;
        float *dec = NULL;
        rc = hci_code_view(&ct, st->spec, st->threads, &v);
        if (rc == HC_OK && !(dec = hci_alloc_values(tc)))
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
        hci_measure(&s, tc->w, cand, tc->n);
        c.ct[c.n] = ct;
        uint64_t bits = cascade_bits(c.ct, c.n + 1, 0);
        double gain_db = s.snr_db - prev_snr;
        double dbpw = ((double)bits - (double)prev_bits) / (double)tc->n;
        /* after an exact reconstruction nothing is left to buy; an exact stage is always worth it */
        int keep = prev_snr == INFINITY ? 0
                   : s.snr_db == INFINITY ? 1
                   : gain_db > 0 && gain_db >= p->o.min_db_per_bit * dbpw;
        hc_stage_metrics m;
        hci_fill(&m, tc, si, st->name, st->spec, 0, keep ? HC_STAGE_KEPT : HC_STAGE_DROPPED, hci_ct_bits(ct), bits, &s);
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
            rc = hci_judge(tc, &st->gate, &s, recon, &m, &passed);
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
        m.seconds = hci_now() - t0;
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
        rc = hci_no_pass(out, tc, why, t_start);
        goto done;
    }
    uint64_t bits = prev_bits;
    int used = 0;
    if (rc == HC_OK && p->o.gain_iters) {
        double t0 = hci_now();
        hc_stats s = cur;
        /* cand is free scratch here: the refined sum goes there and replaces recon if used */
        rc = refine_gains(tc, &c, &gains, cand, &s, &bits, &used);
        if (rc == HC_OK && used) {
            hc_stage_metrics m;
            const hci_stage *last = &p->stages[c.index[c.n - 1]];
            hci_fill(&m, tc, c.index[c.n - 1], "gains", last->spec, 0, HC_STAGE_REFINED, bits - prev_bits, bits, &s);
            int passed;
            rc = hci_judge(tc, &last->gate, &s, cand, &m, &passed);
            if (rc == HC_OK && !passed) {
                /* the weighted optimum may cost unweighted error: keep the gate, drop the gains */
                used = 0;
                bits = prev_bits;
                hci_free(gains);
                gains = NULL;
                m.action = HC_STAGE_DROPPED;
            }
            m.seconds = hci_now() - t0;
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
                hc_tensor_view ov = hci_view_of(tc, tc->w);
                rc = hc_ctensor_measure(NULL, res, &ov);
                if (rc != HC_OK)
                    hc_ctensor_free(res);
            }
        }
        if (rc == HC_OK) {
            res->quality.seconds = hci_now() - t_start;
            rc = hci_report_final(tc, res, used ? "gains" : p->stages[c.index[c.n - 1]].name,
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

