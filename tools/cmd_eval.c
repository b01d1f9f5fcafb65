/* `hypercomp eval`: compresses every large enough tensor of a safetensors file with one codec
 * and reports its quality per tensor and over the file. The file's relative error is
 * sqrt(sum ||W - W'||^2 / sum ||W||^2), so large tensors weigh in proportion to their energy,
 * and bpw is total serialised bits over total values. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "cmd_eval.h"

#define EVAL_DEFAULT_MIN_SIZE 4096
#define THREADS_UNSET UINT32_MAX

typedef struct eval_totals {
    uint64_t n_values, bits, skipped_values;
    double ref_sq, err_sq, max_abs, seconds;
    size_t n_tensors, n_small, n_unsupported;
} eval_totals;

static const cli_column columns[] = {
    { "tensor", 28, 1 }, { "shape", 14, 1 },   { "values", 9, 0 },      { "bpw", 7, 0 },
    { "rel_rmse", 9, 0 }, { "snr_db", 7, 0 },  { "max_abs_err", 11, 0 }, { "seconds", 8, 0 },
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

static const char *readable_dtypes[] = { "F32", "F16", "BF16" };

static int dtype_readable(const char *name)
{
    for (size_t i = 0; i < sizeof readable_dtypes / sizeof readable_dtypes[0]; i++)
        if (strcmp(name, readable_dtypes[i]) == 0)
            return 1;
    return 0;
}

/* ||W - W'||^2 of one tensor. The stats give it as rel_rmse^2 ||W||^2 unless W is all zeros,
 * where the relative error says nothing and the decoded values are compared directly. */
static int error_energy(double *out, const hc_ctensor *ct, const hc_stats *s, double ref_sq, int64_t n)
{
    if (ref_sq > 0 || s->rel_rmse == 0) {
        *out = s->rel_rmse * s->rel_rmse * ref_sq;
        return HC_OK;
    }
    float *dec = malloc((size_t)n * sizeof *dec);
    if (!dec)
        return HC_ENOMEM;
    int rc = hc_ctensor_decode(ct, HC_DTYPE_F32, dec, (size_t)n * sizeof *dec);
    double e = 0;
    for (int64_t i = 0; rc == HC_OK && i < n; i++)
        e += (double)dec[i] * dec[i];
    free(dec);
    *out = e;
    return rc;
}

static int add_skipped(json_object *skipped, const char *name, const char *dtype, uint32_t ndim, const int64_t *shape,
                       int64_t n, const char *reason)
{
    json_object *o = json_object_new_object();
    if (!o)
        return -1;
    if (cli_json_add_string(o, "name", name) || cli_json_add(o, "shape", cli_json_shape(ndim, shape)) ||
        cli_json_add_string(o, "dtype", dtype) || cli_json_add_int(o, "n_values", n) ||
        cli_json_add_string(o, "reason", reason) || json_object_array_add(skipped, o) != 0) {
        json_object_put(o);
        return -1;
    }
    return 0;
}

static int add_tensor(json_object *tensors, const char *name, const char *dtype, uint32_t ndim, const int64_t *shape,
                      const hc_stats *s)
{
    json_object *o = json_object_new_object();
    if (!o)
        return -1;
    if (cli_json_add_string(o, "name", name) || cli_json_add(o, "shape", cli_json_shape(ndim, shape)) ||
        cli_json_add_string(o, "dtype", dtype) || cli_json_add_int(o, "n_values", (int64_t)s->n_values) ||
        cli_json_add_int(o, "bits", (int64_t)s->bits) || cli_json_add_number(o, "bpw", s->bpw) ||
        cli_json_add_number(o, "rel_rmse", s->rel_rmse) || cli_json_add_number(o, "snr_db", s->snr_db) ||
        cli_json_add_number(o, "max_abs_err", s->max_abs_err) || cli_json_add_number(o, "cosine", s->cosine) ||
        cli_json_add_number(o, "sparsity", s->sparsity) || cli_json_add_number(o, "seconds", s->seconds) ||
        json_object_array_add(tensors, o) != 0) {
        json_object_put(o);
        return -1;
    }
    return 0;
}

static void print_row(const char *name, const char *shape, uint64_t n, double bpw, double rel, double snr, double mx,
                      double sec)
{
    char c[N_COLUMNS][64];
    snprintf(c[0], sizeof c[0], "%s", name);
    snprintf(c[1], sizeof c[1], "%s", shape);
    snprintf(c[2], sizeof c[2], "%" PRIu64, n);
    snprintf(c[3], sizeof c[3], "%.4f", bpw);
    snprintf(c[4], sizeof c[4], "%.6f", rel);
    snprintf(c[5], sizeof c[5], "%.2f", snr);
    snprintf(c[6], sizeof c[6], "%.3e", mx);
    snprintf(c[7], sizeof c[7], "%.4f", sec);
    const char *cells[N_COLUMNS];
    for (int i = 0; i < N_COLUMNS; i++)
        cells[i] = c[i];
    cli_table_row(stdout, columns, N_COLUMNS, cells);
    fflush(stdout);
}

typedef struct eval_run {
    const char *cmd, *path;
    const char *spec;       /* the codec spec, or the one a container records */
    uint64_t min_size;
    int json;
    hc_compressor *c;
    hc_safetensors *st;     /* the file compressed here, or a container's original */
    hc_archive *ar;         /* a container to measure against st, or NULL */
    json_object *tensors, *skipped;
    eval_totals t;
} eval_run;

static int account(eval_run *r, const char *name, const char *dtype, uint32_t ndim, const int64_t *shape, int64_t n,
                   const hc_tensor_view *vp, hc_ctensor *ct, hc_stats *sp, int rc);

/* Evaluates tensor i: skipped (recorded), compressed and measured, or a failure to report. */
static int eval_tensor(eval_run *r, size_t i)
{
    const char *name = hc_safetensors_name(r->st, i), *dtype = hc_safetensors_dtype(r->st, i);
    uint32_t ndim = hc_safetensors_ndim(r->st, i);
    int64_t shape[HC_SAFETENSORS_MAX_DIMS], n = hc_safetensors_numel(r->st, i);
    hc_safetensors_shape(shape, r->st, i);
    char reason[96] = "";
    if (!dtype_readable(dtype)) {
        snprintf(reason, sizeof reason, "unsupported dtype %s", dtype);
        r->t.n_unsupported++;
    } else if (ndim > HC_MAX_DIMS) {
        snprintf(reason, sizeof reason, "unsupported: %u dimensions (at most %d)", ndim, HC_MAX_DIMS);
        r->t.n_unsupported++;
    } else if (n == 0 || (uint64_t)n < r->min_size) {
        snprintf(reason, sizeof reason, n == 0 ? "empty" : "fewer than %" PRIu64 " values", r->min_size);
        r->t.n_small++;
    }
    if (reason[0]) {
        r->t.skipped_values += (uint64_t)n;
        if (r->json && add_skipped(r->skipped, name, dtype, ndim, shape, n, reason))
            return cli_error(CLI_FAILED, r->cmd, "out of memory building the JSON output");
        return CLI_OK;
    }

    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    int rc = hc_safetensors_tensor(&v, r->st, i);
    hc_ctensor *ct = NULL;
    if (rc == HC_OK)
        rc = hc_compress(&ct, r->c, &v);
    hc_stats s = HC_STATS_INIT;
    if (rc == HC_OK)
        rc = hc_ctensor_stats(&s, ct);
    return account(r, name, dtype, ndim, shape, n, &v, ct, &s, rc);
}

/* Adds one measured tensor to the totals and prints or records it; frees ct. */
static int account(eval_run *r, const char *name, const char *dtype, uint32_t ndim, const int64_t *shape, int64_t n,
                   const hc_tensor_view *vp, hc_ctensor *ct, hc_stats *sp, int rc)
{
    hc_tensor_view v = *vp;
    hc_stats s = *sp;
    double ref_sq = rc == HC_OK ? cli_sum_squares(&v, n) : 0, err_sq = 0;
    if (rc == HC_OK)
        rc = error_energy(&err_sq, ct, &s, ref_sq, n);
    hc_ctensor_free(ct);
    if (rc != HC_OK)
        return cli_error(CLI_FAILED, r->cmd, "%s: tensor '%s': %s (%s)", r->path, name, hc_last_error(),
                         hc_status_name(rc));

    r->t.n_tensors++;
    r->t.n_values += s.n_values;
    r->t.bits += s.bits;
    r->t.ref_sq += ref_sq;
    r->t.err_sq += err_sq;
    r->t.seconds += s.seconds;
    if (s.max_abs_err > r->t.max_abs)
        r->t.max_abs = s.max_abs_err;
    if (r->json) {
        if (add_tensor(r->tensors, name, dtype, ndim, shape, &s))
            return cli_error(CLI_FAILED, r->cmd, "out of memory building the JSON output");
    } else {
        char sh[96];
        cli_format_shape(sh, sizeof sh, ndim, shape);
        print_row(name, sh, s.n_values, s.bpw, s.rel_rmse, s.snr_db, s.max_abs_err, s.seconds);
    }
    return CLI_OK;
}

/* Measures tensor i of a container against the same-named tensor of the original file. */
static int eval_archive_tensor(eval_run *r, size_t i)
{
    const char *name = hc_archive_name(r->ar, i);
    hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
    hc_archive_entry_get(&e, r->ar, i);
    const char *dtype = hc_dtype_name(e.orig_dtype);
    if ((uint64_t)e.numel < r->min_size) {
        r->t.n_small++;
        r->t.skipped_values += (uint64_t)e.numel;
        if (r->json && add_skipped(r->skipped, name, dtype, e.ndim, e.shape, e.numel, "fewer values than --min-size"))
            return cli_error(CLI_FAILED, r->cmd, "out of memory building the JSON output");
        return CLI_OK;
    }
    size_t k;
    if (hc_safetensors_find(&k, r->st, name) != HC_OK)
        return cli_error(CLI_FAILED, r->cmd, "%s: tensor '%s' is not in the original file", r->path, name);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    int rc = hc_safetensors_tensor(&v, r->st, k);
    hc_ctensor *ct = NULL;
    if (rc == HC_OK)
        rc = hc_archive_tensor(&ct, r->ar, i);
    if (rc == HC_OK)
        rc = hc_ctensor_set_threads(ct, 0);
    hc_stats s = HC_STATS_INIT;
    if (rc == HC_OK)   /* checks that the shapes agree */
        rc = hc_ctensor_measure(&s, ct, &v);
    return account(r, name, dtype, e.ndim, e.shape, e.numel, &v, ct, &s, rc);
}

/* Reads the first bytes of path to tell a container from a safetensors file. */
static int is_container(const char *path)
{
    unsigned char magic[8] = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return got == sizeof magic && memcmp(magic, "\x89HCZ\r\n\x1a\n", 8) == 0;
}

static int report(eval_run *r)
{
    const eval_totals *t = &r->t;
    double bpw = t->n_values ? (double)t->bits / (double)t->n_values : NAN;
    double rel = t->ref_sq > 0 ? sqrt(t->err_sq / t->ref_sq) : (t->err_sq > 0 ? INFINITY : (t->n_values ? 0 : NAN));
    double snr = t->n_values ? (t->err_sq > 0 ? 10.0 * log10(t->ref_sq / t->err_sq) : INFINITY) : NAN;
    size_t n_skipped = t->n_small + t->n_unsupported;
    if (!r->json) {
        cli_table_rule(stdout, columns, N_COLUMNS);
        char label[64];
        snprintf(label, sizeof label, "total (%zu tensors)", t->n_tensors);
        print_row(label, "", t->n_values, bpw, rel, snr, t->max_abs, t->seconds);
        printf("skipped %zu tensors (%" PRIu64 " values): %zu with fewer than %" PRIu64 " values, %zu unsupported\n",
               n_skipped, t->skipped_values, t->n_small, r->min_size, t->n_unsupported);
        if (t->n_tensors == 0)
            cli_error(CLI_OK, r->cmd, "%s: no tensor has at least %" PRIu64 " values of a readable dtype", r->path,
                      r->min_size);
        return CLI_OK;
    }
    json_object *root = json_object_new_object();
    int bad = !root || cli_json_add_string(root, "codec", r->spec) ||
              cli_json_add_string(root, "file", r->path) || cli_json_add_int(root, "min_size", (int64_t)r->min_size) ||
              cli_json_add_int(root, "n_tensors", (int64_t)t->n_tensors) ||
              cli_json_add_int(root, "n_values", (int64_t)t->n_values) || cli_json_add_int(root, "bits", (int64_t)t->bits) ||
              cli_json_add_number(root, "bpw", bpw) || cli_json_add_number(root, "rel_rmse", rel) ||
              cli_json_add_number(root, "snr_db", snr) || cli_json_add_number(root, "max_abs_err", t->max_abs) ||
              cli_json_add_number(root, "seconds", t->seconds) ||
              cli_json_add_int(root, "n_skipped", (int64_t)n_skipped) ||
              cli_json_add_int(root, "skipped_values", (int64_t)t->skipped_values) ||
              cli_json_add(root, "tensors", json_object_get(r->tensors)) ||
              cli_json_add(root, "skipped", json_object_get(r->skipped));
    int rc = bad ? cli_error(CLI_FAILED, r->cmd, "out of memory building the JSON output")
                 : cli_json_print(stdout, root, r->cmd);
    json_object_put(root);
    return rc;
}

/* `hypercomp eval FILE.hcz --original FILE.safetensors`: every stored tensor against its original. */
static int eval_container(eval_run *r, const char *original, const char *codec)
{
    if (codec)
        return cli_error(CLI_USAGE, r->cmd, "--codec does not apply to a container: '%s' is already compressed", r->path);
    if (!original)
        return cli_error(CLI_USAGE, r->cmd, "'%s' is a container: give the file it was made from with --original FILE",
                         r->path);
    int rc = hc_archive_open(&r->ar, r->path, 0);
    if (rc == HC_OK)
        rc = hc_safetensors_open(&r->st, original);
    if (rc != HC_OK) {
        rc = cli_lib_error(r->cmd, rc);
        goto out;
    }
    r->spec = hc_archive_metadata(r->ar, "hypercomp.codec");
    if (!r->spec)
        r->spec = "(container)";
    r->tensors = json_object_new_array();
    r->skipped = json_object_new_array();
    if (!r->tensors || !r->skipped) {
        rc = cli_error(CLI_FAILED, r->cmd, "out of memory");
        goto out;
    }
    if (!r->json) {
        printf("%s: %zu tensors, codec %s, measured against %s\n\n", r->path, hc_archive_count(r->ar), r->spec,
               original);
        cli_table_header(stdout, columns, N_COLUMNS);
    }
    rc = CLI_OK;
    for (size_t i = 0; rc == CLI_OK && i < hc_archive_count(r->ar); i++)
        rc = eval_archive_tensor(r, i);
    if (rc == CLI_OK)
        rc = report(r);
out:
    json_object_put(r->tensors);
    json_object_put(r->skipped);
    hc_safetensors_close(r->st);
    hc_archive_close(r->ar);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    /* `--pipeline` runs stages instead of one codec (eval_pipeline.c) */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--pipeline") == 0 || strncmp(argv[i], "--pipeline=", 11) == 0)
            return cli_eval_pipeline(argc, argv);
    eval_run r;
    memset(&r, 0, sizeof r);
    r.cmd = "eval";
    r.min_size = EVAL_DEFAULT_MIN_SIZE;
    const char *codec = NULL, *original = NULL;
    uint32_t threads = THREADS_UNSET;
    const cli_option opts[] = {
        { "codec", CLI_OPT_STRING, &codec, "SPEC", "codec spec: fp16, bf16, int8:clip=99.99, nf4, ternary, ..." },
        { "min-size", CLI_OPT_U64, &r.min_size, "N", "compress tensors of at least N values (default 4096)" },
        { "threads", CLI_OPT_U32, &threads, "N", "threads per compression; 0 means every CPU (default: the spec's)" },
        { "json", CLI_OPT_FLAG, &r.json, NULL, "print one JSON object instead of the table" },
        { "original", CLI_OPT_STRING, &original, "FILE", "with a .hcz FILE: the safetensors file it was made from" },
        { NULL, CLI_OPT_FLAG, NULL, NULL, NULL },
    };
    cli_args a;
    int rc = cli_parse(&a, argc, argv, opts);
    if (rc != CLI_OK)
        return rc;
    if (a.help) {
        cli_print_help(stdout, "hypercomp eval FILE.safetensors --codec SPEC [--min-size N] [--threads N] [--json]\n"
                               "       hypercomp eval FILE.hcz --original FILE.safetensors [--min-size N] [--json]",
                       "Compresses every F32/F16/BF16 tensor of at least N values with one codec and reports bits per\n"
                       "weight and the error per tensor and in total (rel_rmse = sqrt(sum ||W-W'||^2 / sum ||W||^2);\n"
                       "bpw counts every bit of the serialised form). Other tensors are counted as skipped.\n"
                       "Given a .hcz container and --original, measures the stored tensors against the original\n"
                       "instead of compressing anything. With --pipeline refine|escalate --stage SPEC ... it runs a\n"
                       "pipeline of stages instead (`hypercomp eval --pipeline refine --help` describes it).",
                       opts);
        return CLI_OK;
    }
    if (a.n_positional != 1)
        return cli_error(CLI_USAGE, r.cmd, "needs exactly one FILE.safetensors, got %d (see `hypercomp eval --help`)",
                         a.n_positional);
    r.path = a.positional[0];
    if (is_container(r.path))
        return eval_container(&r, original, codec);
    if (original)
        return cli_error(CLI_USAGE, r.cmd, "--original applies to a .hcz container; '%s' is not one", r.path);
    if (!codec)
        return cli_error(CLI_USAGE, r.cmd, "--codec SPEC is required (for example fp16, bf16, int8, nf4, ternary)");

    rc = hc_compressor_from_spec(&r.c, codec);
    if (rc != HC_OK)
        return cli_error(CLI_USAGE, r.cmd, "bad --codec '%s': %s", codec, hc_last_error());
    r.spec = hc_compressor_spec(r.c);
    if (threads != THREADS_UNSET && (rc = hc_compressor_set_threads(r.c, threads)) != HC_OK) {
        rc = cli_error(CLI_USAGE, r.cmd, "bad --threads %" PRIu32 ": %s", threads, hc_last_error());
        goto out;
    }
    rc = hc_safetensors_open(&r.st, r.path);
    if (rc != HC_OK) {
        rc = cli_lib_error(r.cmd, rc);
        goto out;
    }
    r.tensors = json_object_new_array();
    r.skipped = json_object_new_array();
    if (!r.tensors || !r.skipped) {
        rc = cli_error(CLI_FAILED, r.cmd, "out of memory");
        goto out;
    }
    if (!r.json) {
        printf("%s: %zu tensors, codec %s\n\n", r.path, hc_safetensors_count(r.st), hc_compressor_spec(r.c));
        cli_table_header(stdout, columns, N_COLUMNS);
    }
    rc = CLI_OK;
    for (size_t i = 0; rc == CLI_OK && i < hc_safetensors_count(r.st); i++)
        rc = eval_tensor(&r, i);
    if (rc == CLI_OK)
        rc = report(&r);
out:
    json_object_put(r.tensors);
    json_object_put(r.skipped);
    hc_safetensors_close(r.st);
    hc_compressor_free(r.c);
    return rc;
}
