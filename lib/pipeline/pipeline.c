/* The pipeline object: options, stages, callbacks, rules, and the single-tensor entry point.
 * The stage logic itself (refine and escalate) is in cascade.c. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/options.h"
#include "pipeline/pipeline_internal.h"

uint32_t hc_pipeline_max_stages(void) { return HC_PIPELINE_MAX_STAGES; }

int hc_pipeline_options_init(hc_pipeline_options *opts, uint32_t struct_size)
{
    hc_pipeline_options d = HC_PIPELINE_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_pipeline_options, mode), "hc_pipeline_options");
}

/* Checks that a spec names a codec this library can create, so errors surface at set-up. */
static int check_spec(const char *what, const char *spec, char *dst)
{
    if (strlen(spec) >= HCI_SPEC_MAX)
        return hci_fail(HC_EINVAL, "pipeline %s '%.40s...' is longer than %d bytes", what, spec, HCI_SPEC_MAX - 1);
    hc_compressor *c;
    int rc = hc_compressor_from_spec(&c, spec);
    if (rc != HC_OK)
        return rc;
    hc_compressor_free(c);
    snprintf(dst, HCI_SPEC_MAX, "%s", spec);
    return HC_OK;
}

int hc_pipeline_new(hc_pipeline **out, const hc_pipeline_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_pipeline_new: out is NULL");
    *out = NULL;
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user, offsetof(hc_pipeline_options, mode), "hc_pipeline_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    if (o.mode != HC_PIPELINE_REFINE && o.mode != HC_PIPELINE_ESCALATE)
        return hci_fail(HC_EINVAL, "hc_pipeline_options: mode %u is neither refine (0) nor escalate (1)", o.mode);
    if (!(o.min_db_per_bit >= 0 && isfinite(o.min_db_per_bit)))
        return hci_fail(HC_EINVAL, "hc_pipeline_options: min_db_per_bit %g must be a non-negative number",
                        o.min_db_per_bit);
    if (!(o.model_retain > 0 && o.model_retain <= 1))
        return hci_fail(HC_EINVAL, "hc_pipeline_options: model_retain %g is outside (0, 1]", o.model_retain);
    if (o.higher_is_better > 1 || o.gain_filter > 1 || o.keep_1d > 1 || o.gain_solver > 1)
        return hci_fail(HC_EINVAL,
                        "hc_pipeline_options: higher_is_better %u, gain_filter %u, keep_1d %u and gain_solver %u must be 0 or 1",
                        o.higher_is_better, o.gain_filter, o.keep_1d, o.gain_solver);
    if (o.gain_iters > 100000)
        return hci_fail(HC_EINVAL, "hc_pipeline_options: gain_iters %u is larger than 100000", o.gain_iters);
    if (o.gain_iters && !(o.gain_lr > 0 && isfinite(o.gain_lr)))
        return hci_fail(HC_EINVAL, "hc_pipeline_options: gain_lr %g must be a positive number", (double)o.gain_lr);
    if (o.threads > 1024)
        return hci_fail(HC_EINVAL, "hc_pipeline_options: threads %u is larger than 1024", o.threads);
    hc_pipeline *p = hci_calloc(1, sizeof *p);
    if (!p)
        return HC_ENOMEM;
    int rc = HC_OK;
    if (o.fallback_spec)
        rc = check_spec("fallback_spec", o.fallback_spec, p->fallback);
    if (rc == HC_OK)
        rc = check_spec("keep_spec", o.keep_spec ? o.keep_spec : "f32", p->keep);
    if (rc != HC_OK) {
        hci_free(p);
        return rc;
    }
    o.fallback_spec = o.fallback_spec ? p->fallback : NULL;
    o.keep_spec = p->keep;
    p->o = o;
    *out = p;
    return HC_OK;
}

void hc_pipeline_free(hc_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_rules; i++) {
        hci_free(p->rules[i].pattern);
        hci_free(p->rules[i].keep_spec);
    }
    hci_free(p->rules);
    hci_free(p);
}

uint32_t hc_pipeline_stage_count(const hc_pipeline *p) { return p ? p->n_stages : 0; }

static int add_stage(hc_pipeline *p, const char *name, const char *spec, uint32_t threads, const hc_gate *gate)
{
    if (p->n_stages >= HC_PIPELINE_MAX_STAGES)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_stage: the pipeline already has %u stages, the most allowed",
                        p->n_stages);
    hc_gate g = HC_GATE_INIT;
    if (gate) {
        int merge_rc = hci_options_merge(&g, sizeof g, gate, offsetof(hc_gate, max_rel_rmse), "hc_gate");
        if (merge_rc != HC_OK)
            return merge_rc;
        if (g.checks & ~(uint32_t)(HC_GATE_REL_RMSE | HC_GATE_SNR | HC_GATE_COSINE))
            return hci_fail(HC_EINVAL, "hc_gate: checks 0x%x has unknown bits", g.checks);
        if (((g.checks & HC_GATE_REL_RMSE) && !(g.max_rel_rmse >= 0 && isfinite(g.max_rel_rmse))) ||
            ((g.checks & HC_GATE_SNR) && !isfinite(g.min_snr_db)) ||
            ((g.checks & HC_GATE_COSINE) && !(g.min_cosine >= -1 && g.min_cosine <= 1)))
            return hci_fail(HC_EINVAL, "hc_gate: thresholds rel_rmse %g, snr %g, cosine %g are out of range",
                            g.max_rel_rmse, g.min_snr_db, g.min_cosine);
    }
    hci_stage *s = &p->stages[p->n_stages];
    int rc = check_spec("stage spec", spec, s->spec);
    if (rc != HC_OK)
        return rc;
    if (name)
        snprintf(s->name, sizeof s->name, "%s", name);
    else
        snprintf(s->name, sizeof s->name, "stage%u", p->n_stages);
    s->threads = threads;
    s->gate = g;
    p->n_stages++;
    return HC_OK;
}

int hc_pipeline_add_stage(hc_pipeline *p, const char *name, const hc_compressor *c, const hc_gate *gate)
{
    if (!p || !c)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_stage: %s is NULL", p ? "compressor" : "pipeline");
    return add_stage(p, name, c->spec, c->threads, gate);
}

int hc_pipeline_add_stage_spec(hc_pipeline *p, const char *name, const char *spec, const hc_gate *gate)
{
    if (!p || !spec)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_stage_spec: %s is NULL", p ? "spec" : "pipeline");
    hc_compressor *c;
    int rc = hc_compressor_from_spec(&c, spec);
    if (rc != HC_OK)
        return rc;
    rc = add_stage(p, name ? name : spec, c->spec, c->threads, gate);
    hc_compressor_free(c);
    return rc;
}

int hc_pipeline_set_stage_callback(hc_pipeline *p, hc_stage_cb cb, void *user_data)
{
    if (!p)
        return hci_fail(HC_EINVAL, "hc_pipeline_set_stage_callback: pipeline is NULL");
    p->cb = cb;
    p->cb_data = user_data;
    return HC_OK;
}

int hc_pipeline_set_adjust(hc_pipeline *p, hc_adjust_fn fn, void *user_data)
{
    if (!p)
        return hci_fail(HC_EINVAL, "hc_pipeline_set_adjust: pipeline is NULL");
    p->adjust = fn;
    p->adjust_data = user_data;
    return HC_OK;
}

int hc_pipeline_set_evaluator(hc_pipeline *p, hc_eval_fn fn, void *user_data)
{
    if (!p)
        return hci_fail(HC_EINVAL, "hc_pipeline_set_evaluator: pipeline is NULL");
    p->eval = fn;
    p->eval_data = user_data;
    return HC_OK;
}

int hc_pipeline_add_rule(hc_pipeline *p, const char *pattern, const char *keep_spec, const hc_pipeline *use)
{
    if (!p || !pattern)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_rule: %s is NULL", p ? "pattern" : "pipeline");
    if (!keep_spec == !use)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_rule: rule '%s' needs exactly one of keep_spec and use", pattern);
    if (use == p)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_rule: rule '%s' names the pipeline itself", pattern);
    if (use && use->n_stages == 0)
        return hci_fail(HC_EINVAL, "hc_pipeline_add_rule: rule '%s' names a pipeline without stages", pattern);
    char spec[HCI_SPEC_MAX];
    if (keep_spec) {
        int rc = check_spec("rule keep_spec", keep_spec, spec);
        if (rc != HC_OK)
            return rc;
    }
    hci_rule *grown = hci_malloc_array(p->n_rules + 1, sizeof *grown);
    if (!grown)
        return HC_ENOMEM;
    hci_rule r = { hci_strdup(pattern), keep_spec ? hci_strdup(spec) : NULL, use };
    if (!r.pattern || (keep_spec && !r.keep_spec)) {
        hci_free(r.pattern);
        hci_free(r.keep_spec);
        hci_free(grown);
        return HC_ENOMEM;
    }
    if (p->n_rules)
        memcpy(grown, p->rules, p->n_rules * sizeof *grown);
    hci_free(p->rules);
    p->rules = grown;
    p->rules[p->n_rules++] = r;
    return HC_OK;
}

int hci_run_report(const hci_run *run, const hc_stage_metrics *m)
{
    const hc_pipeline *top = run->top;
    int stop = 0;
    if (run->cb_lock)
        pthread_mutex_lock(run->cb_lock);
    if (run->cancelled && atomic_load(run->cancelled))
        stop = 2;
    else if (top->cb && top->cb(m, top->cb_data) != 0)
        stop = 1;
    if (stop == 1 && run->cancelled)
        atomic_store(run->cancelled, 1);
    if (run->cb_lock)
        pthread_mutex_unlock(run->cb_lock);
    if (stop == 1)
        return hci_fail(HC_ECANCELLED, "pipeline cancelled by the stage callback after stage '%s' of tensor '%s'",
                        m->stage, m->tensor);
    if (stop == 2)
        return hci_fail(HC_ECANCELLED, "pipeline cancelled by the stage callback (on another thread) before tensor '%s' finished",
                        m->tensor);
    return HC_OK;
}

int hc_pipeline_compress_tensor(hc_ctensor **out, hc_pipeline *p, const hc_tensor_view *t)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_pipeline_compress_tensor: out is NULL");
    *out = NULL;
    if (!p || !t)
        return hci_fail(HC_EINVAL, "hc_pipeline_compress_tensor: %s is NULL", p ? "tensor" : "pipeline");
    if (p->n_stages == 0)
        return hci_fail(HC_EINVAL, "hc_pipeline_compress_tensor: the pipeline has no stages");
    hci_run run = { p, p, NULL, NULL, NULL };
    return hci_run_tensor(out, &run, t);
}
