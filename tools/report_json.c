/* The report as JSON, for scripts: totals, per-codec sums, and every tensor with its stages. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

/* JSON has no NaN or infinity: unknown values become null. */
static json_object *num(double v)
{
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

static json_object *tensor_json(const report_tensor *t)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(t->name));
    json_object_object_add(o, "codec", json_object_new_string(t->codec));
    json_object_object_add(o, "kept", json_object_new_boolean(t->kept));
    json_object_object_add(o, "dtype", json_object_new_string(hc_dtype_name(t->dtype)));
    json_object *shape = json_object_new_array();
    for (uint32_t d = 0; d < t->ndim; d++)
        json_object_array_add(shape, json_object_new_int64(t->shape[d]));
    json_object_object_add(o, "shape", shape);
    json_object_object_add(o, "values", json_object_new_int64(t->numel));
    json_object_object_add(o, "original_bytes", json_object_new_int64((int64_t)t->orig_bytes));
    json_object_object_add(o, "bits", json_object_new_int64((int64_t)t->bits));
    json_object_object_add(o, "bpw", num(t->bpw));
    json_object_object_add(o, "rel_rmse", num(t->rel_rmse));
    json_object_object_add(o, "snr_db", num(t->snr_db));
    json_object_object_add(o, "max_abs_err", num(t->max_abs_err));
    json_object_object_add(o, "seconds", num(t->seconds));
    if (t->n_stages) {
        json_object *st = json_object_new_array();
        for (size_t i = 0; i < t->n_stages; i++) {
            json_object *s = json_object_new_object();
            json_object_object_add(s, "name", json_object_new_string(t->stages[i].name));
            json_object_object_add(s, "bpw", num(t->stages[i].bpw));
            json_object_object_add(s, "rel_rmse", num(t->stages[i].rel_rmse));
            json_object_object_add(s, "seconds", num(t->stages[i].seconds));
            json_object_object_add(s, "passed", json_object_new_boolean(t->stages[i].passed));
            json_object_array_add(st, s);
        }
        json_object_object_add(o, "stages", st);
    }
    return o;
}

int report_write_json(const report *r, const char *path)
{
    report_totals tot;
    report_totals_compute(r, &tot);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "hypercomp_version", json_object_new_string(hc_version_string()));
    json_object_object_add(root, "source", json_object_new_string(r->source ? r->source : ""));
    json_object_object_add(root, "output", json_object_new_string(r->output ? r->output : ""));
    json_object_object_add(root, "codec", json_object_new_string(r->spec ? r->spec : ""));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "tensors", json_object_new_int64((int64_t)tot.tensors));
    json_object_object_add(t, "kept", json_object_new_int64((int64_t)tot.kept));
    json_object_object_add(t, "values", json_object_new_int64(tot.weights));
    json_object_object_add(t, "original_bytes", json_object_new_int64((int64_t)tot.orig_bytes));
    json_object_object_add(t, "source_file_bytes", json_object_new_int64((int64_t)r->source_bytes));
    json_object_object_add(t, "file_bytes", json_object_new_int64((int64_t)r->file_bytes));
    json_object_object_add(t, "bits", json_object_new_int64((int64_t)tot.bits));
    json_object_object_add(t, "bpw", num(tot.bpw));
    json_object_object_add(t, "file_bpw", num(tot.file_bpw));
    json_object_object_add(t, "aggregate_min_values", json_object_new_int64(r->min_aggregate));
    json_object_object_add(t, "aggregate_values", json_object_new_int64(tot.agg_weights));
    json_object_object_add(t, "rel_rmse", num(tot.rel_rmse));
    json_object_object_add(t, "snr_db", num(tot.snr_db));
    json_object_object_add(t, "seconds", num(r->seconds));
    json_object_object_add(root, "totals", t);
    report_codec_total ct[32];
    size_t nc = report_codec_totals(r, ct, 32);
    json_object *codecs = json_object_new_array();
    for (size_t i = 0; i < nc; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "codec", json_object_new_string(ct[i].codec));
        json_object_object_add(c, "tensors", json_object_new_int64((int64_t)ct[i].tensors));
        json_object_object_add(c, "values", json_object_new_int64(ct[i].weights));
        json_object_object_add(c, "bits", json_object_new_int64((int64_t)ct[i].bits));
        json_object_object_add(c, "bpw", num((double)ct[i].bits / (double)ct[i].weights));
        json_object_object_add(c, "rel_rmse", num(ct[i].ref_sq > 0 ? sqrt(ct[i].err_sq / ct[i].ref_sq) : NAN));
        json_object_array_add(codecs, c);
    }
    json_object_object_add(root, "codecs", codecs);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < r->n; i++)
        json_object_array_add(arr, tensor_json(&r->t[i]));
    json_object_object_add(root, "tensors", arr);
    int ok = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) == 0;
    if (!ok)
        fprintf(stderr, "hypercomp: cannot write '%s': %s\n", path, strerror(errno));
    json_object_put(root);
    return ok;
}
