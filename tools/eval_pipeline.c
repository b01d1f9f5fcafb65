/* `hypercomp eval FILE --pipeline refine|escalate --stage SPEC ...`: runs a pipeline over every
 * readable tensor of a safetensors file and prints one row per stage of every tensor, a summary
 * per stage and the file's total (or all of it as JSON, with a `stages` array). Tensors with
 * fewer than --min-size values, and those matched by --keep, are kept in f32 and reported apart. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "cmd_eval.h"
#include "pipeline_build.h"

#define MAX_STAGES CLI_MAX_STAGES
#define MAX_KEEPS 16
#define DEFAULT_MIN_SIZE 4096

static const cli_column columns[] = {
    { "tensor", 28, 1 }, { "#", 2, 0 },         { "stage", 14, 1 },   { "try", 3, 0 },     { "action", 11, 1 },
    { "gate", 4, 1 },    { "bpw", 8, 0 },       { "ratio", 7, 0 },    { "rel_rmse", 9, 0 }, { "snr_db", 7, 0 },
    { "cosine", 9, 0 },  { "seconds", 7, 0 },
};
#define N_COLUMNS ((int)(sizeof columns / sizeof columns[0]))

static const char *action_names[] = { "kept", "dropped", "failed", "rolled_back", "fallback", "keep", "refined", "chosen" };

static const char *action_name(uint32_t a) { return a < 8 ? action_names[a] : "?"; }

typedef struct stage_sum {
    uint64_t tensors, kept, dropped, failed, passed, bits, values;
    double ref_sq, err_sq;
} stage_sum;

typedef struct pl_run {
    const char *cmd, *path;
    int json;
    hc_safetensors *st;
    hc_model *model;
    double *ref_sq;          /* per model tensor */
    const char *stage_names[MAX_STAGES];
    uint32_t n_stages;
    json_object *rows;
    stage_sum per_stage[MAX_STAGES];
    /* totals over compressed tensors, and apart over kept ones */
    uint64_t n_values, bits, kept_values, kept_bits, n_tensors, n_kept, n_fallback;
    double ref_sq_total, err_sq_total;
    int oom;
} pl_run;

static double ref_sq_of(const pl_run *r, const char *name)
{
    size_t i;
    return hc_model_find(&i, r->model, name) == HC_OK ? r->ref_sq[i] : NAN;
}

static void print_metrics_row(const hc_stage_metrics *m)
{
    char c[N_COLUMNS][64];
    snprintf(c[0], sizeof c[0], "%s", m->tensor);
    snprintf(c[1], sizeof c[1], "%u", m->stage_index);
    snprintf(c[2], sizeof c[2], "%s", m->stage);
    snprintf(c[3], sizeof c[3], "%u", m->attempt);
    snprintf(c[4], sizeof c[4], "%s", action_name(m->action));
    snprintf(c[5], sizeof c[5], "%s", m->gate_passed ? "pass" : "FAIL");
    snprintf(c[6], sizeof c[6], "%.4f", m->bpw);
    snprintf(c[7], sizeof c[7], "%.2f", m->ratio);
    snprintf(c[8], sizeof c[8], "%.6f", m->rel_rmse);
    snprintf(c[9], sizeof c[9], "%.2f", m->snr_db);
    snprintf(c[10], sizeof c[10], "%.7f", m->cosine);
    snprintf(c[11], sizeof c[11], "%.3f", m->seconds);
    const char *cells[N_COLUMNS];
    for (int i = 0; i < N_COLUMNS; i++)
        cells[i] = c[i];
    cli_table_row(stdout, columns, N_COLUMNS, cells);
}

static int add_row(json_object *rows, const hc_stage_metrics *m)
{
    json_object *o = json_object_new_object();
    if (!o)
        return -1;
    if (cli_json_add_string(o, "tensor", m->tensor) || cli_json_add_string(o, "stage", m->stage) ||
        cli_json_add_int(o, "stage_index", m->stage_index) || cli_json_add_string(o, "spec", m->spec) ||
        cli_json_add_int(o, "attempt", m->attempt) || cli_json_add_string(o, "action", action_name(m->action)) ||
        cli_json_add(o, "gate_passed", json_object_new_boolean(m->gate_passed)) ||
        cli_json_add_int(o, "n_values", (int64_t)m->n_values) || cli_json_add_int(o, "stage_bits", (int64_t)m->stage_bits) ||
        cli_json_add_int(o, "bits", (int64_t)m->bits) || cli_json_add_number(o, "bpw", m->bpw) ||
        cli_json_add_number(o, "ratio", m->ratio) || cli_json_add_number(o, "rel_rmse", m->rel_rmse) ||
        cli_json_add_number(o, "snr_db", m->snr_db) || cli_json_add_number(o, "cosine", m->cosine) ||
        cli_json_add_number(o, "max_abs_err", m->max_abs_err) || cli_json_add_number(o, "seconds", m->seconds) ||
        json_object_array_add(rows, o) != 0) {
        json_object_put(o);
        return -1;
    }
    return 0;
}

/* Called from the worker threads, never two at once (the pipeline serialises its callbacks). */
static int on_stage(const hc_stage_metrics *m, void *ud)
{
    pl_run *r = ud;
    if (r->json) {
        if (add_row(r->rows, m))
            r->oom = 1;
    } else if (!(m->action == HC_STAGE_CHOSEN && (strcmp(m->stage, "keep") == 0 || strcmp(m->stage, "fallback") == 0))) {
        print_metrics_row(m);   /* a keep or fallback row already is the final one */
    }
    if (m->action == HC_STAGE_CHOSEN) {
        double ref = ref_sq_of(r, m->tensor);
        if (strcmp(m->stage, "keep") == 0) {
            r->n_kept++;
            r->kept_values += m->n_values;
            r->kept_bits += m->bits;
        } else {
            r->n_tensors++;
            r->n_fallback += strcmp(m->stage, "fallback") == 0;
            r->n_values += m->n_values;
            r->bits += m->bits;
            r->ref_sq_total += ref;
            r->err_sq_total += m->rel_rmse * m->rel_rmse * ref;
        }
    }
    if (m->action <= 3 && m->attempt == 0 && m->stage_index < MAX_STAGES) {
        stage_sum *s = &r->per_stage[m->stage_index];
        double ref = ref_sq_of(r, m->tensor);
        s->tensors++;
        s->kept += m->action == HC_STAGE_KEPT;
        s->dropped += m->action == HC_STAGE_DROPPED;
        s->failed += m->action == HC_STAGE_FAILED || m->action == HC_STAGE_ROLLED_BACK;
        s->passed += m->gate_passed == 1;
        s->bits += m->bits;
        s->values += m->n_values;
        s->ref_sq += ref;
        s->err_sq += m->rel_rmse * m->rel_rmse * ref;
    }
    return r->oom;
}

/* The sink: eval writes nothing, the totals come from the CHOSEN rows. A writer plugs in here. */
static int on_tensor(const char *name, const hc_ctensor *ct, void *ud)
{
    (void)name;
    (void)ct;
    (void)ud;
    return 0;
}

static void usage_help(const cli_option *opts)
{
    cli_print_help(stdout,
                   "hypercomp eval FILE.safetensors --pipeline refine|escalate --stage SPEC[@GATE] [--stage ...]\n"
                   "                 [--gate COND] [--min-db-per-bit X] [--gains N] [--no-grokfast] [--fallback SPEC]\n"
                   "                 [--keep GLOB]... [--min-size N] [--threads N] [--json]",
                   "Runs a pipeline of stages over every F32/F16/BF16 tensor and prints one row per stage of every\n"
                   "tensor, a summary per stage and the total over the tensors of at least --min-size values\n"
                   "(smaller ones and --keep matches stay f32 and are reported apart). refine codes what the\n"
                   "earlier stages left and stops at the first gate met; escalate keeps the smallest coding that\n"
                   "passes its gate, retries a failing stage once (built-in: the stage twice, as a residual) and\n"
                   "then falls back to the last pass. A gate is COND[,COND]: rel_rmse<=X, snr>=X, cosine>=X;\n"
                   "--gate applies to stages without their own @GATE. Exit code 3 when a tensor meets no gate.",
                   opts);
}

/* Finds the repeatable options and removes them from argv; returns CLI_OK or CLI_USAGE. */
static int take_repeated(int *argc, char **argv, const char *name, const char **vals, uint32_t max, uint32_t *n)
{
    size_t len = strlen(name);
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, name, len) == 0 && a[2 + len] == '=') {
            val = a + 3 + len;
        } else if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0) {
            if (i + 1 >= *argc)
                return cli_error(CLI_USAGE, "eval", "--%s needs a value", name);
            val = argv[++i];
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (*n >= max)
            return cli_error(CLI_USAGE, "eval", "at most %u --%s options are allowed", max, name);
        vals[(*n)++] = val;
    }
    *argc = out;
    return CLI_OK;
}

int cli_eval_pipeline(int argc, char **argv)
{
    pl_run r;
    memset(&r, 0, sizeof r);
    r.cmd = "eval";
    const char *stages[MAX_STAGES], *keeps[MAX_KEEPS];
    uint32_t n_stages = 0, n_keeps = 0;
    char **args = malloc(sizeof *args * (size_t)(argc + 1));
    if (!args)
        return cli_error(CLI_FAILED, r.cmd, "out of memory");
    memcpy(args, argv, sizeof *args * (size_t)argc);
    int rc = take_repeated(&argc, args, "stage", stages, MAX_STAGES, &n_stages);
    if (rc == CLI_OK)
        rc = take_repeated(&argc, args, "keep", keeps, MAX_KEEPS, &n_keeps);
    const char *mode = NULL, *gate_text = NULL, *fallback = NULL, *min_db = NULL, *lr = NULL;
    uint64_t min_size = DEFAULT_MIN_SIZE;
    uint32_t threads = 1, gains = 0;
    int no_grokfast = 0, gain_exact = 0;
    const cli_option opts[] = {
        { "pipeline", CLI_OPT_STRING, &mode, "MODE", "refine (residual cascade) or escalate (fallback hierarchy)" },
        { "stage", CLI_OPT_STRING, NULL, "SPEC[@GATE]", "a stage (repeat, in order): codec spec, optional own gate" },
        { "gate", CLI_OPT_STRING, &gate_text, "COND", "gate of stages without @GATE: rel_rmse<=X, snr>=X, cosine>=X" },
        { "min-db-per-bit", CLI_OPT_STRING, &min_db, "X", "refine: drop a stage adding less SNR per bit (default 1)" },
        { "gains", CLI_OPT_U32, &gains, "N", "refine: refine per-row stage gains with N Grokfast-Adam steps" },
        { "gain-lr", CLI_OPT_STRING, &lr, "X", "Adam step size of the gain refinement (default 0.002)" },
        { "no-grokfast", CLI_OPT_FLAG, &no_grokfast, NULL, "refine the gains with plain Adam" },
        { "gain-exact", CLI_OPT_FLAG, &gain_exact, NULL, "solve each row's gains exactly instead (with --gains N, N > 0)" },
        { "fallback", CLI_OPT_STRING, &fallback, "SPEC", "code a tensor no stage passes with SPEC (default: fail)" },
        { "keep", CLI_OPT_STRING, NULL, "GLOB", "keep tensors whose name matches in f32 (repeat)" },
        { "min-size", CLI_OPT_U64, &min_size, "N", "keep tensors of fewer values in f32 (default 4096)" },
        { "threads", CLI_OPT_U32, &threads, "N", "tensors compressed at once; 0 means every CPU (default 1)" },
        { "json", CLI_OPT_FLAG, &r.json, NULL, "print one JSON object instead of the table" },
        { NULL, CLI_OPT_FLAG, NULL, NULL, NULL },
    };
    /* --stage and --keep were taken out above; the parser must not see them */
    cli_option parse_opts[sizeof opts / sizeof opts[0]];
    size_t np = 0;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (!opts[i].name || opts[i].target)
            parse_opts[np++] = opts[i];
    cli_args a;
    if (rc == CLI_OK)
        rc = cli_parse(&a, argc, args, parse_opts);
    if (rc != CLI_OK) {
        free(args);
        return rc;
    }
    free(args);
    if (a.help) {
        usage_help(opts);
        return CLI_OK;
    }
    if (a.n_positional != 1)
        return cli_error(CLI_USAGE, r.cmd, "needs exactly one FILE.safetensors, got %d", a.n_positional);
    r.path = a.positional[0];
    cli_pipeline_args pa;
    memset(&pa, 0, sizeof pa);
    pa.mode = mode;
    memcpy(pa.stages, stages, sizeof stages[0] * n_stages);
    pa.n_stages = n_stages;
    pa.gate = gate_text;
    pa.fallback = fallback;
    pa.min_db = min_db;
    pa.gain_lr = lr;
    pa.gains = gains;
    pa.threads = threads;
    pa.no_grokfast = no_grokfast;
    pa.gain_exact = gain_exact;
    pa.keep_below = min_size;
    hc_pipeline *p = NULL;
    if ((rc = cli_pipeline_build(&p, r.cmd, &pa)) != CLI_OK)
        return rc;
    for (uint32_t i = 0; i < n_stages; i++)
        r.stage_names[i] = stages[i];
    r.n_stages = n_stages;
    for (uint32_t i = 0; i < n_keeps; i++)
        if (hc_pipeline_add_rule(p, keeps[i], "f32", NULL) != HC_OK) {
            hc_pipeline_free(p);
            return cli_error(CLI_USAGE, r.cmd, "bad --keep '%s': %s", keeps[i], hc_last_error());
        }

    rc = hc_safetensors_open(&r.st, r.path);
    if (rc != HC_OK) {
        hc_pipeline_free(p);
        return cli_lib_error(r.cmd, rc);
    }
    size_t count = hc_safetensors_count(r.st);
    r.ref_sq = calloc(count ? count : 1, sizeof *r.ref_sq);
    r.rows = json_object_new_array();
    if (!r.ref_sq || !r.rows || hc_model_new(&r.model) != HC_OK) {
        rc = cli_error(CLI_FAILED, r.cmd, "out of memory");
        goto out;
    }
    size_t skipped = 0;
    for (size_t i = 0; i < count; i++) {
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        int64_t n = hc_safetensors_numel(r.st, i);
        if (n == 0 || hc_safetensors_tensor(&v, r.st, i) != HC_OK) {
            skipped++;   /* other dtypes, more than 4 dimensions, empty */
            continue;
        }
        r.ref_sq[hc_model_count(r.model)] = cli_sum_squares(&v, n);
        if ((rc = hc_model_add(r.model, &v)) != HC_OK) {
            rc = cli_lib_error(r.cmd, rc);
            goto out;
        }
    }
    if (!r.json) {
        printf("%s: %zu tensors (%zu not readable), pipeline %s, %u stages\n\n", r.path, count, skipped, mode, n_stages);
        cli_table_header(stdout, columns, N_COLUMNS);
    }
    hc_pipeline_set_stage_callback(p, on_stage, &r);
    rc = hc_pipeline_compress_model(p, r.model, on_tensor, &r);
    if (rc == HC_EQUALITY) {
        rc = cli_error(CLI_QUALITY, r.cmd, "%s", hc_last_error());
        goto out;
    }
    if (rc != HC_OK || r.oom) {
        rc = r.oom ? cli_error(CLI_FAILED, r.cmd, "out of memory building the JSON output") : cli_lib_error(r.cmd, rc);
        goto out;
    }
    json_object *summary = json_object_new_array(), *root = json_object_new_object();
    rc = CLI_OK;
    if (!summary || !root) {
        json_object_put(summary);
        json_object_put(root);
        rc = cli_error(CLI_FAILED, r.cmd, "out of memory");
        goto out;
    }
    if (!r.json) {
        cli_table_rule(stdout, columns, N_COLUMNS);
        printf("\nper stage (over the tensors that ran it; refine: cumulative):\n");
        printf("  %-3s %-20s %8s %6s %8s %7s %7s %10s %9s\n", "#", "stage", "tensors", "kept", "dropped", "failed",
               "passed", "bpw", "rel_rmse");
    }
    for (uint32_t s = 0; s < n_stages; s++) {
        const stage_sum *ss = &r.per_stage[s];
        double bpw = ss->values ? (double)ss->bits / (double)ss->values : NAN;
        double rel = ss->ref_sq > 0 ? sqrt(ss->err_sq / ss->ref_sq) : NAN;
        if (!r.json) {
            printf("  %-3u %-20s %8" PRIu64 " %6" PRIu64 " %8" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10.4f %9.6f\n", s,
                   r.stage_names[s], ss->tensors, ss->kept, ss->dropped, ss->failed, ss->passed, bpw, rel);
        } else {
            json_object *so = json_object_new_object();
            if (!so || cli_json_add_string(so, "stage", r.stage_names[s]) || cli_json_add_int(so, "tensors", (int64_t)ss->tensors) ||
                cli_json_add_int(so, "kept", (int64_t)ss->kept) || cli_json_add_int(so, "dropped", (int64_t)ss->dropped) ||
                cli_json_add_int(so, "failed", (int64_t)ss->failed) || cli_json_add_int(so, "passed", (int64_t)ss->passed) || cli_json_add_number(so, "bpw", bpw) ||
                cli_json_add_number(so, "rel_rmse", rel) || json_object_array_add(summary, so) != 0) {
                json_object_put(so);
                rc = CLI_FAILED;
            }
        }
    }
    /* the file's total, from the CHOSEN rows */
    {
        uint64_t bits = r.bits, values = r.n_values, kbits = r.kept_bits, kvalues = r.kept_values, nt = r.n_tensors,
                 nk = r.n_kept;
        double ref = r.ref_sq_total, err = r.err_sq_total;
        double bpw = values ? (double)bits / (double)values : NAN, rel = ref > 0 ? sqrt(err / ref) : NAN;
        if (!r.json) {
            printf("\ntotal over %" PRIu64 " compressed tensors (%" PRIu64 " values): bpw %.4f, rel_rmse %.6f, snr %.2f dB;"
                   " fallbacks %" PRIu64 "\n",
                   nt, values, bpw, rel, err > 0 ? 10 * log10(ref / err) : INFINITY, r.n_fallback);
            printf("kept in f32: %" PRIu64 " tensors (%" PRIu64 " values, %.4f bpw)\n", nk, kvalues,
                   kvalues ? (double)kbits / (double)kvalues : 0.0);
        } else if (rc == CLI_OK) {
            if (cli_json_add_string(root, "file", r.path) || cli_json_add_string(root, "pipeline", mode) ||
                cli_json_add_int(root, "min_size", (int64_t)min_size) || cli_json_add_int(root, "n_tensors", (int64_t)nt) ||
                cli_json_add_int(root, "n_values", (int64_t)values) || cli_json_add_int(root, "bits", (int64_t)bits) ||
                cli_json_add_number(root, "bpw", bpw) || cli_json_add_number(root, "rel_rmse", rel) ||
                cli_json_add_int(root, "n_fallback", (int64_t)r.n_fallback) ||
                cli_json_add_int(root, "n_kept", (int64_t)nk) || cli_json_add_int(root, "kept_values", (int64_t)kvalues) ||
                cli_json_add(root, "stages", json_object_get(r.rows)) ||
                cli_json_add(root, "stage_summary", json_object_get(summary)))
                rc = CLI_FAILED;
            else
                rc = cli_json_print(stdout, root, r.cmd);
        }
    }
    json_object_put(summary);
    json_object_put(root);
    if (rc == CLI_FAILED)
        cli_error(CLI_FAILED, r.cmd, "out of memory building the JSON output");
out:
    json_object_put(r.rows);
    hc_model_free(r.model);
    free(r.ref_sq);
    hc_safetensors_close(r.st);
    hc_pipeline_free(p);
    return rc;
}
