/* What `hypercomp compress` measured, per tensor and per stage, and the two ways it is written
 * out: a self-contained HTML page (report_html.c) and JSON (report_json.c). */
#ifndef HYPERCOMP_REPORT_H
#define HYPERCOMP_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/hypercomp.h"

/* One stage of a pipeline applied to one tensor (empty until the pipeline feeds it). */
typedef struct report_stage {
    char name[64];
    double bpw;        /* cumulative bits per weight after this stage */
    double rel_rmse;   /* error after this stage */
    double seconds;
    int passed;        /* the stage's gate was met */
} report_stage;

typedef struct report_tensor {
    char *name;
    char codec[32];    /* codec short name, or "kept" */
    int kept;          /* stored uncompressed */
    hc_dtype dtype;
    uint32_t ndim;
    int64_t shape[HC_MAX_DIMS];
    int64_t numel;
    uint64_t orig_bytes;
    uint64_t bits;     /* serialised size in bits (every side bit) */
    double bpw;
    double rel_rmse;   /* NaN when unknown */
    double snr_db;
    double max_abs_err;
    double ref_sq;     /* ||W||^2, to aggregate errors over tensors */
    double seconds;
    report_stage *stages;
    size_t n_stages;
} report_tensor;

typedef struct report {
    char *source;      /* input file */
    char *output;      /* output file */
    char *spec;        /* the codec spec, canonical */
    uint64_t file_bytes;   /* size of the written container (0 until known) */
    uint64_t source_bytes;
    double seconds;
    int64_t min_aggregate;  /* tensors with at least this many values enter the aggregate error */
    report_tensor *t;
    size_t n, cap;
} report;

void report_init(report *r);
void report_free(report *r);
/* Appends a zeroed tensor record (name copied); NULL on out-of-memory. */
report_tensor *report_add(report *r, const char *name);
/* Appends a stage to a tensor record; returns 0 on out-of-memory. */
int report_add_stage(report_tensor *t, const report_stage *s);

/* Totals over every tensor and the aggregate error over tensors of >= min_aggregate values. */
typedef struct report_totals {
    int64_t weights, weights_compressed;
    uint64_t orig_bytes, bits;
    size_t tensors, kept;
    double bpw;          /* sum of serialised bits over weights */
    double file_bpw;     /* file bits over weights (0 when the file size is unknown) */
    double rel_rmse;     /* sqrt(sum err^2 / sum ref^2) over the aggregate set */
    double snr_db;
    int64_t agg_weights; /* weights in the aggregate set */
} report_totals;
void report_totals_compute(const report *r, report_totals *out);

/* Per codec (including "kept"): how many tensors, weights and bits. */
typedef struct report_codec_total {
    char codec[32];
    size_t tensors;
    int64_t weights;
    uint64_t bits, orig_bytes;
    double err_sq, ref_sq;
} report_codec_total;
/* Fills up to max entries, in order of first appearance; returns the count. */
size_t report_codec_totals(const report *r, report_codec_total *out, size_t max);

/* Both return 0 and print "hypercomp: cannot write 'PATH': reason" on failure. */
int report_write_html(const report *r, const char *path);
int report_write_json(const report *r, const char *path);

/* "1.23 MiB" style sizes into buf. */
const char *report_human_bytes(char *buf, size_t size, double bytes);

#endif
