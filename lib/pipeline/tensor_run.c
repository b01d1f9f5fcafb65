/* One tensor through a pipeline: its f32 values, the helpers both modes share (coding a stage,
 * measuring, gates, reports), the fallback, and the dispatch to refine.c or escalate.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"
#include "common/metrics.h"
#include "pipeline/pipeline_internal.h"
#include "pipeline/tensor_run.h"
#include "tensor_view.h"

double hci_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int tensor_open(hci_tensor_ctx *tc, const hci_run *run, const hc_tensor_view *t)
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

static void tensor_close(hci_tensor_ctx *tc) { hci_free(tc->owned); }

/* A view of `data` with the original's name, shape and importance. */
hc_tensor_view hci_view_of(const hci_tensor_ctx *tc, const float *data)
{
    hc_tensor_view v = tc->view;
    v.struct_size = sizeof v;
    v.name = tc->name;
    v.dtype = HC_DTYPE_F32;
    v.data = data;
    return v;
}

int hci_code_view(hc_ctensor **out, const char *spec, uint32_t threads, const hc_tensor_view *v)
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

float *hci_alloc_values(const hci_tensor_ctx *tc) { return hci_malloc_array((size_t)tc->n, sizeof(float)); }

void hci_measure(hc_stats *s, const float *ref, const float *dec, int64_t n)
{
    hci_err_acc acc = { 0 };
    hci_err_acc_add(&acc, ref, dec, (size_t)n);
    *s = (hc_stats)HC_STATS_INIT;
    hci_err_acc_finish(&acc, s);
}

void hci_fill(hc_stage_metrics *m, const hci_tensor_ctx *tc, uint32_t index, const char *stage, const char *spec,
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

uint64_t hci_ct_bits(const hc_ctensor *ct) { return 8u * (uint64_t)hc_ctensor_serialized_size(ct); }

/* Tensor gate, then (only if it passed) the model gate. */
int hci_judge(const hci_tensor_ctx *tc, const hc_gate *gate, const hc_stats *s, const float *decoded,
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

int hci_report_final(const hci_tensor_ctx *tc, hc_ctensor *ct, const char *stage, const char *spec, uint32_t index,
                        double seconds)
{
    hc_stats s = HC_STATS_INIT;
    int rc = hc_ctensor_stats(&s, ct);
    if (rc != HC_OK)
        return rc;
    hc_stage_metrics m;
    hci_fill(&m, tc, index, stage, spec, 0, HC_STAGE_CHOSEN, hci_ct_bits(ct), s.bits, &s);
    m.gate_passed = 1;
    m.seconds = seconds;
    return hci_run_report(tc->run, &m);
}

static int code_plain(hc_ctensor **out, const hci_tensor_ctx *tc, const char *spec, const char *stage_name,
                      uint32_t action, double t_start)
{
    double t0 = hci_now();
    hc_tensor_view v = hci_view_of(tc, tc->w);
    v.dtype = tc->view.dtype;
    v.data = tc->view.data;   /* the original dtype, so a lossless keep stays lossless */
    hc_ctensor *ct;
    int rc = hci_code_view(&ct, spec, 0, &v);
    if (rc != HC_OK)
        return rc;
    hc_stats s = HC_STATS_INIT;
    hc_ctensor_stats(&s, ct);
    hc_stage_metrics m;
    uint32_t index = tc->p->n_stages;
    hci_fill(&m, tc, index, stage_name, spec, 0, action, s.bits, s.bits, &s);
    m.gate_passed = 1;
    m.seconds = hci_now() - t0;
    rc = hci_run_report(tc->run, &m);
    if (rc == HC_OK)
        rc = hci_report_final(tc, ct, stage_name, spec, index, hci_now() - t_start);
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
    hci_tensor_ctx tc;
    int rc = tensor_open(&tc, run, t);
    if (rc == HC_OK)
        rc = code_plain(out, &tc, spec, stage_name, action, hci_now());
    tensor_close(&tc);
    return rc;
}

int hci_no_pass(hc_ctensor **out, const hci_tensor_ctx *tc, const char *why, double t_start)
{
    if (tc->p->o.fallback_spec)
        return code_plain(out, tc, tc->p->o.fallback_spec, "fallback", HC_STAGE_FALLBACK, t_start);
    return hci_fail(HC_EQUALITY, "tensor '%s': %s, and the pipeline has no fallback_spec", tc->name, why);
}

int hci_run_tensor(hc_ctensor **out, const hci_run *run, const hc_tensor_view *t)
{
    *out = NULL;
    hci_tensor_ctx tc;
    int rc = tensor_open(&tc, run, t);
    if (rc == HC_OK)
        rc = run->p->o.mode == HC_PIPELINE_REFINE ? hci_run_refine(out, &tc) : hci_run_escalate(out, &tc);
    tensor_close(&tc);
    return rc;
}
