/* The report's data: records, totals and per-codec sums shared by the HTML and JSON writers. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_init(report *r)
{
    memset(r, 0, sizeof *r);
    r->min_aggregate = 4096;
}

void report_free(report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->t[i].name);
        free(r->t[i].stages);
    }
    free(r->t);
    free(r->source);
    free(r->output);
    free(r->spec);
    memset(r, 0, sizeof *r);
}

report_tensor *report_add(report *r, const char *name)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        report_tensor *t = realloc(r->t, cap * sizeof *t);
        if (!t)
            return NULL;
        r->t = t;
        r->cap = cap;
    }
    report_tensor *t = &r->t[r->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return NULL;
    t->rel_rmse = t->snr_db = t->max_abs_err = NAN;
    r->n++;
    return t;
}

int report_add_stage(report_tensor *t, const report_stage *s)
{
    report_stage *st = realloc(t->stages, (t->n_stages + 1) * sizeof *st);
    if (!st)
        return 0;
    st[t->n_stages++] = *s;
    t->stages = st;
    return 1;
}

void report_totals_compute(const report *r, report_totals *out)
{
    memset(out, 0, sizeof *out);
    double err = 0, ref = 0;
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        out->tensors++;
        out->kept += t->kept != 0;
        out->weights += t->numel;
        if (!t->kept)
            out->weights_compressed += t->numel;
        out->orig_bytes += t->orig_bytes;
        out->bits += t->bits;
        if (t->numel >= r->min_aggregate && isfinite(t->rel_rmse)) {
            err += t->rel_rmse * t->rel_rmse * t->ref_sq;
            ref += t->ref_sq;
            out->agg_weights += t->numel;
        }
    }
    out->bpw = out->weights ? (double)out->bits / (double)out->weights : 0;
    out->file_bpw = out->weights && r->file_bytes ? 8.0 * (double)r->file_bytes / (double)out->weights : 0;
    out->rel_rmse = ref > 0 ? sqrt(err / ref) : NAN;
    out->snr_db = out->rel_rmse > 0 ? -20.0 * log10(out->rel_rmse) : INFINITY;
}

size_t report_codec_totals(const report *r, report_codec_total *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        size_t k = 0;
        while (k < n && strcmp(out[k].codec, t->codec) != 0)
            k++;
        if (k == n) {
            if (n == max)
                continue;
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n].codec, sizeof out[n].codec, "%s", t->codec);
            n++;
        }
        out[k].tensors++;
        out[k].weights += t->numel;
        out[k].bits += t->bits;
        out[k].orig_bytes += t->orig_bytes;
        if (isfinite(t->rel_rmse)) {
            out[k].err_sq += t->rel_rmse * t->rel_rmse * t->ref_sq;
            out[k].ref_sq += t->ref_sq;
        }
    }
    return n;
}

const char *report_human_bytes(char *buf, size_t size, double bytes)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}
