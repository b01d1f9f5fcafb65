/* Escalate mode: the fallback hierarchy, the single retry (adjust callback or the built-in
 * two-pass residual step) and the fall back to the last pass. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"
#include "pipeline/pipeline_internal.h"
#include "pipeline/tensor_run.h"

/* ---- escalate: the fallback hierarchy ---- */

/* The built-in retry: the stage's compressor codes the tensor, then what it left. */
static int code_twice(hc_ctensor **out, const hci_tensor_ctx *tc, const hci_stage *st)
{
    *out = NULL;
    hc_tensor_view v = hci_view_of(tc, tc->w);
    hc_ctensor *pair[2] = { NULL, NULL };
    float *resid = hci_alloc_values(tc);
    if (!resid)
        return HC_ENOMEM;
    int rc = hci_code_view(&pair[0], st->spec, st->threads, &v);
    if (rc == HC_OK)
        rc = hci_ctensor_decode_f32(pair[0], resid);
    if (rc == HC_OK) {
        for (int64_t i = 0; i < tc->n; i++)
            resid[i] = tc->w[i] - resid[i];
        hc_tensor_view rv = hci_view_of(tc, resid);
        rc = hci_code_view(&pair[1], st->spec, st->threads, &rv);
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
static int attempt(hc_ctensor **ct, int *passed, hc_stage_metrics *mout, const hci_tensor_ctx *tc, uint32_t si,
                   const char *spec, uint32_t attempt_no, int twice, float *dec)
{
    const hci_stage *st = &tc->p->stages[si];
    double t0 = hci_now();
    *ct = NULL;
    *passed = 0;
    hc_ctensor *r = NULL;
    int rc;
    if (twice) {
        rc = code_twice(&r, tc, st);
    } else {
        hc_tensor_view v = hci_view_of(tc, tc->w);
        rc = hci_code_view(&r, spec, st->threads, &v);
    }
    if (rc == HC_OK)
        rc = hci_ctensor_decode_f32(r, dec);
    if (rc != HC_OK) {
        hc_ctensor_free(r);
        return rc;
    }
    hc_stats s;
    hci_measure(&s, tc->w, dec, tc->n);
    hci_fill(mout, tc, si, st->name, twice ? st->spec : spec, attempt_no, HC_STAGE_KEPT, hci_ct_bits(r), hci_ct_bits(r), &s);
    rc = hci_judge(tc, &st->gate, &s, dec, mout, passed);
    if (rc == HC_OK && !*passed && mout->action == HC_STAGE_KEPT)
        mout->action = HC_STAGE_FAILED;
    mout->seconds = hci_now() - t0;
    if (rc == HC_OK)
        rc = hci_run_report(tc->run, mout);
    if (rc != HC_OK || !*passed) {
        hc_ctensor_free(r);
        return rc;
    }
    *ct = r;
    return HC_OK;
}

int hci_run_escalate(hc_ctensor **out, const hci_tensor_ctx *tc)
{
    const hc_pipeline *p = tc->p;
    const hc_pipeline *top = tc->run->top;
    double t_start = hci_now();
    hc_ctensor *best = NULL;
    uint32_t best_index = 0;
    char best_name[HCI_NAME_MAX] = "", best_spec[HCI_SPEC_MAX] = "";
    float *dec = hci_alloc_values(tc);
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
        if (!best || hci_ct_bits(ct) < hci_ct_bits(best)) {
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
        return hci_no_pass(out, tc, why, t_start);
    best->quality.seconds = hci_now() - t_start;
    rc = hci_report_final(tc, best, best_name, best_spec, best_index, best->quality.seconds);
    if (rc != HC_OK) {
        hc_ctensor_free(best);
        return rc;
    }
    *out = best;
    return HC_OK;
}

