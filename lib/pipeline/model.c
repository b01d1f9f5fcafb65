/* Models (ordered named tensor views), per-tensor rules, the model gate, and compressing a
 * model tensor by tensor: in bounded batches across threads, or one at a time under the gate. */
#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/parallel.h"
#include "pipeline/pipeline_internal.h"
#include "tensor_view.h"

typedef struct model_entry {
    char *name;
    hc_tensor_view view;   /* view.name points at name */
    int64_t numel;
} model_entry;

struct hc_model {
    model_entry *t;
    size_t n, cap;
};

int hc_model_new(hc_model **out)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_model_new: out is NULL");
    *out = hci_calloc(1, sizeof **out);
    return *out ? HC_OK : HC_ENOMEM;
}

void hc_model_free(hc_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        hci_free(m->t[i].name);
    hci_free(m->t);
    hci_free(m);
}

size_t hc_model_count(const hc_model *m) { return m ? m->n : 0; }

int hc_model_find(size_t *out, const hc_model *m, const char *name)
{
    if (!out || !m || !name)
        return hci_fail(HC_EINVAL, "hc_model_find: %s is NULL", !out ? "out" : (!m ? "model" : "name"));
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) {
            *out = i;
            return HC_OK;
        }
    return hci_fail(HC_ENOTFOUND, "model has no tensor named '%s'", name);
}

int hc_model_add(hc_model *m, const hc_tensor_view *t)
{
    if (!m || !t)
        return hci_fail(HC_EINVAL, "hc_model_add: %s is NULL", m ? "view" : "model");
    hc_tensor_view v;
    int64_t numel;
    int rc = hci_view_check(&v, t, &numel);
    if (rc != HC_OK)
        return rc;
    if (!v.name || !v.name[0])
        return hci_fail(HC_EINVAL, "hc_model_add: a model's tensors need a non-empty name");
    size_t dummy;
    if (hc_model_find(&dummy, m, v.name) == HC_OK)
        return hci_fail(HC_EINVAL, "hc_model_add: the model already has a tensor named '%s'", v.name);
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        model_entry *grown = hci_malloc_array(cap, sizeof *grown);
        if (!grown)
            return HC_ENOMEM;
        if (m->n)
            memcpy(grown, m->t, m->n * sizeof *grown);
        hci_free(m->t);
        m->t = grown;
        m->cap = cap;
    }
    char *name = hci_strdup(v.name);
    if (!name)
        return HC_ENOMEM;
    v.name = name;
    m->t[m->n++] = (model_entry){ name, v, numel };
    return HC_OK;
}

int hc_model_tensor(hc_tensor_view *out, const hc_model *m, size_t index)
{
    if (!out || !m)
        return hci_fail(HC_EINVAL, "hc_model_tensor: %s is NULL", out ? "model" : "out");
    if (index >= m->n)
        return hci_fail(HC_EINVAL, "hc_model_tensor: index %zu is out of range (the model has %zu tensors)", index,
                        m->n);
    if (out->struct_size > sizeof(hc_tensor_view))
        return hci_fail(HC_EVERSION, "hc_tensor_view struct_size %u is larger than this library's %zu",
                        out->struct_size, sizeof(hc_tensor_view));
    if (out->struct_size < offsetof(hc_tensor_view, importance))
        return hci_fail(HC_EINVAL, "hc_tensor_view struct_size %u is too small (was it initialised?)",
                        out->struct_size);
    uint32_t size = out->struct_size;
    memcpy(out, &m->t[index].view, size);
    out->struct_size = size;
    return HC_OK;
}

/* ---- rules ---- */

/* The pipeline that codes a tensor, or NULL with *keep set to the spec that keeps it. */
static const hc_pipeline *route(const hc_pipeline *p, const model_entry *e, const char **keep)
{
    *keep = NULL;
    for (size_t i = 0; i < p->n_rules; i++)
        if (fnmatch(p->rules[i].pattern, e->name, 0) == 0) {
            *keep = p->rules[i].keep_spec;
            return p->rules[i].use;
        }
    if ((p->o.keep_1d && e->view.ndim <= 1) || (uint64_t)e->numel < p->o.keep_below) {
        *keep = p->keep;
        return NULL;
    }
    return p;
}

static int code_entry(hc_ctensor **out, const hci_run *base, const model_entry *e)
{
    const char *keep;
    const hc_pipeline *use = route(base->top, e, &keep);
    if (!use)
        return hci_run_plain(out, base, &e->view, keep, "keep", HC_STAGE_RULE_KEEP);
    if (use->n_stages == 0)
        return hci_fail(HC_EINVAL, "tensor '%s': the pipeline has no stages and no rule keeps it", e->name);
    hci_run run = *base;
    run.p = use;
    return hci_run_tensor(out, &run, &e->view);
}

/* A negative return is the sink's own status (its message stands); a positive one cancels. */
static int deliver(hc_sink_fn sink, const char *name, const hc_ctensor *ct, void *user_data)
{
    int r = sink(name, ct, user_data);
    if (r < 0)
        return r;
    if (r > 0)
        return hci_fail(HC_ECANCELLED, "pipeline cancelled by the sink at tensor '%s'", name);
    return HC_OK;
}

/* ---- the model gate ---- */

int hci_model_gate_check(const hci_run *run, const float *decoded, int *passed, double *score)
{
    hci_model_gate *mg = run->mg;
    model_entry *e = &mg->current->t[mg->index];
    hc_tensor_view saved = e->view;
    e->view.dtype = HC_DTYPE_F32;
    e->view.data = decoded;
    int rc = run->top->eval(score, mg->current, run->top->eval_data);
    e->view = saved;
    if (rc != 0)
        return hci_fail(HC_ECANCELLED, "pipeline cancelled by the evaluator while judging tensor '%s'", e->name);
    *passed = hci_retains(run->top, *score, mg->baseline);
    return HC_OK;
}

static int compress_gated(hc_pipeline *p, const hc_model *m, hc_sink_fn sink, void *user_data)
{
    hci_model_gate mg = { 0 };
    int rc = hc_model_new(&mg.current);
    if (rc != HC_OK)
        return rc;
    for (size_t i = 0; i < m->n && rc == HC_OK; i++)
        rc = hc_model_add(mg.current, &m->t[i].view);
    if (rc == HC_OK && !(mg.decoded = hci_calloc(m->n ? m->n : 1, sizeof(float *))))
        rc = HC_ENOMEM;
    if (rc == HC_OK && p->eval(&mg.baseline, mg.current, p->eval_data) != 0)
        rc = hci_fail(HC_ECANCELLED, "pipeline cancelled by the evaluator while scoring the baseline");
    if (rc == HC_OK && (!isfinite(mg.baseline) || mg.baseline == 0))
        rc = hci_fail(HC_EINVAL, "the evaluator's baseline score %g must be finite and nonzero", mg.baseline);
    hci_run run = { p, p, NULL, NULL, &mg };
    for (size_t i = 0; i < m->n && rc == HC_OK; i++) {
        mg.index = i;
        hc_ctensor *ct = NULL;
        rc = code_entry(&ct, &run, &m->t[i]);
        float *dec = NULL;
        if (rc == HC_OK && !(dec = hci_malloc_array((size_t)m->t[i].numel, sizeof(float))))
            rc = HC_ENOMEM;
        if (rc == HC_OK)
            rc = hci_ctensor_decode_f32(ct, dec);
        if (rc == HC_OK) {
            /* accepted: later tensors are judged with this one decoded */
            mg.decoded[i] = dec;
            dec = NULL;
            mg.current->t[i].view.dtype = HC_DTYPE_F32;
            mg.current->t[i].view.data = mg.decoded[i];
            rc = deliver(sink, m->t[i].name, ct, user_data);
        }
        hci_free(dec);
        hc_ctensor_free(ct);
    }
    if (mg.decoded)
        for (size_t i = 0; i < m->n; i++)
            hci_free(mg.decoded[i]);
    hci_free(mg.decoded);
    hc_model_free(mg.current);
    return rc;
}

/* ---- batches across threads ---- */

typedef struct batch_job {
    const hc_model *m;
    const hci_run *run;
    size_t first;
    hc_ctensor **results;
} batch_job;

static int batch_worker(void *ctx, int64_t b, int64_t e)
{
    batch_job *job = ctx;
    for (int64_t i = b; i < e; i++) {
        int rc = code_entry(&job->results[i], job->run, &job->m->t[job->first + (size_t)i]);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

int hc_pipeline_compress_model(hc_pipeline *p, const hc_model *m, hc_sink_fn sink, void *user_data)
{
    if (!p || !m || !sink)
        return hci_fail(HC_EINVAL, "hc_pipeline_compress_model: %s is NULL", !p ? "pipeline" : (!m ? "model" : "sink"));
    if (p->eval)
        return compress_gated(p, m, sink, user_data);
    uint32_t threads = hci_resolve_threads(p->o.threads);
    hc_ctensor **results = hci_calloc(threads, sizeof *results);
    if (!results)
        return HC_ENOMEM;
    pthread_mutex_t lock;
    pthread_mutex_init(&lock, NULL);
    atomic_int cancelled;
    atomic_init(&cancelled, 0);
    hci_run run = { p, p, &lock, &cancelled, NULL };
    int rc = HC_OK;
    for (size_t first = 0; first < m->n && rc == HC_OK; first += threads) {
        size_t count = m->n - first < threads ? m->n - first : threads;
        batch_job job = { m, &run, first, results };
        rc = hci_parallel_for(threads, (int64_t)count, 1, batch_worker, &job);
        for (size_t i = 0; i < count; i++) {
            if (rc == HC_OK)
                rc = deliver(sink, m->t[first + i].name, results[i], user_data);
            hc_ctensor_free(results[i]);
            results[i] = NULL;
        }
    }
    pthread_mutex_destroy(&lock);
    hci_free(results);
    return rc;
}
