/* hypercomp compress: safetensors in, .hcz container out, tensor by tensor, with a summary, an
 * optional HTML report and JSON. */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_util.h"
#include "cmd_args.h"
#include "cmd_archive.h"
#include "hypercomp/hypercomp.h"
#include "pipeline_build.h"
#include "progress.h"
#include "report.h"

static const char compress_help[] =
    "usage: hypercomp compress IN.safetensors -o OUT.hcz [OPTIONS]\n"
    "\n"
    "Compresses every tensor of a safetensors file into a .hcz container (layout: doc/format.md).\n"
    "Small tensors and tensors matching --keep are stored exactly as they are.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     the container to write (required). It is written to a temporary file\n"
    "                        beside FILE and renamed at the end: a failure never leaves half a file.\n"
    "  --codec SPEC          how to compress (default: fp16). A codec name with options, e.g.\n"
    "                        fp16, bf16, int8, int8:clip=99.9, nf4, seedlm:4bit, vptq:2bit.\n"
    "                        Codecs this build knows: %s\n"
    "  --pipeline MODE       compress through a pipeline of --stage codecs instead of one codec:\n"
    "                        refine (each stage codes what the earlier ones left, until a gate\n"
    "                        is met) or escalate (the smallest stage that meets its gate)\n"
    "  --stage SPEC[@GATE]   a pipeline stage, in order (repeat); GATE as for --gate\n"
    "  --gate COND[,COND]    gate of stages without their own: rel_rmse<=X, snr>=X, cosine>=X\n"
    "  --fallback SPEC       code a tensor that meets no gate with SPEC (default: fail, exit 3,\n"
    "                        and no output file)\n"
    "  --keep PATTERN        keep tensors whose name matches the shell pattern PATTERN unchanged\n"
    "                        (e.g. '*.bias' or '*norm*'); may be given several times\n"
    "  --min-size N          keep tensors of fewer than N values unchanged (default 4096; 0 keeps none)\n"
    "  --threads N           threads used per tensor (default 0: every CPU)\n"
    "  --report FILE.html    write a self-contained HTML report with plots\n"
    "  --json FILE.json      write the same figures as JSON\n"
    "  -v, --verbose         list every tensor in the summary\n"
    "  -q, --quiet           print nothing but errors\n"
    "  -h, --help            this text\n"
    "\n"
    "Progress goes to stderr (a bar on a terminal, one line per tensor otherwise); the summary\n"
    "goes to stdout. Quality figures: relative RMS error ||W - W'|| / ||W|| per tensor, and for\n"
    "the model over every tensor of at least 4096 values; bits per weight count every header,\n"
    "scale and checksum.\n"
    "\n"
    "example:\n"
    "  hypercomp compress model.safetensors -o model.hcz --codec nf4 --keep '*norm*' --report report.html\n"
    "then:\n"
    "  hypercomp info model.hcz                                  what is inside, checksums verified\n"
    "  hypercomp eval model.hcz --original model.safetensors     the error of every tensor\n"
    "  hypercomp decompress model.hcz -o decoded.safetensors     the weights back\n"
    "\n"
    "exit codes: 0 success, 1 an error (message on stderr), 2 bad command line,\n"
    "            3 a quality gate was not met (pipeline runs)\n";

typedef struct compress_args {
    const char *in, *out, *codec, *report, *json;
    const char *keep[64];
    size_t n_keep;
    uint64_t min_size, threads;
    int quiet, verbose, codec_given;
    cli_pipeline_args pipe;   /* pipe.mode set: a pipeline run */
} compress_args;

static int parse_args(compress_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->codec = "fp16";
    a->min_size = 4096;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *arg = argv[i];
        int r;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            char names[256];
            cmd_codec_names(names, sizeof names);
            printf(compress_help, names);
            exit(CLI_OK);
        }
        if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            a->quiet = 1;
            continue;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            a->verbose = 1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--output", "-o", &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->out = v;
        } else if ((r = arg_value(argc, argv, &i, "--codec", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->codec = v;
            a->codec_given = 1;
        } else if ((r = arg_value(argc, argv, &i, "--keep", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            if (a->n_keep == sizeof a->keep / sizeof a->keep[0]) {
                fprintf(stderr, "hypercomp compress: at most %zu --keep patterns\n", a->n_keep);
                return 0;
            }
            a->keep[a->n_keep++] = v;
        } else if ((r = arg_value(argc, argv, &i, "--min-size", NULL, &v, "compress")) != 0) {
            if (r < 0 || !arg_uint("compress", "--min-size", v, INT64_MAX, &a->min_size))
                return 0;
        } else if ((r = arg_value(argc, argv, &i, "--threads", NULL, &v, "compress")) != 0) {
            if (r < 0 || !arg_uint("compress", "--threads", v, 4096, &a->threads))
                return 0;
        } else if ((r = arg_value(argc, argv, &i, "--report", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->report = v;
        } else if ((r = arg_value(argc, argv, &i, "--json", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->json = v;
        } else if ((r = arg_value(argc, argv, &i, "--pipeline", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->pipe.mode = v;
        } else if ((r = arg_value(argc, argv, &i, "--stage", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            if (a->pipe.n_stages == CLI_MAX_STAGES) {
                fprintf(stderr, "hypercomp compress: at most %d --stage options\n", CLI_MAX_STAGES);
                return 0;
            }
            a->pipe.stages[a->pipe.n_stages++] = v;
        } else if ((r = arg_value(argc, argv, &i, "--gate", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->pipe.gate = v;
        } else if ((r = arg_value(argc, argv, &i, "--fallback", NULL, &v, "compress")) != 0) {
            if (r < 0)
                return 0;
            a->pipe.fallback = v;
        } else if (arg[0] == '-' && arg[1]) {
            fprintf(stderr, "hypercomp compress: unknown option '%s' (see `hypercomp compress --help`)\n", arg);
            return 0;
        } else if (!a->in) {
            a->in = arg;
        } else {
            fprintf(stderr, "hypercomp compress: unexpected argument '%s'; one input file is expected\n", arg);
            return 0;
        }
    }
    if (!a->pipe.mode && (a->pipe.n_stages || a->pipe.gate || a->pipe.fallback)) {
        fprintf(stderr, "hypercomp compress: --stage, --gate and --fallback need --pipeline refine|escalate\n");
        return 0;
    }
    if (a->pipe.mode && a->codec_given) {
        fprintf(stderr, "hypercomp compress: --codec and --pipeline exclude each other; give the codecs as --stage SPEC\n");
        return 0;
    }
    if (!a->in || !a->out) {
        fprintf(stderr, "hypercomp compress: %s\nusage: hypercomp compress IN.safetensors -o OUT.hcz [OPTIONS] "
                        "(see --help)\n", !a->in ? "no input file given" : "no output file given (-o OUT.hcz)");
        return 0;
    }
    return 1;
}

static int keep_tensor(const compress_args *a, const char *name, int64_t numel)
{
    if ((uint64_t)numel < a->min_size)
        return 1;
    for (size_t i = 0; i < a->n_keep; i++)
        if (fnmatch(a->keep[i], name, 0) == 0)
            return 1;
    return 0;
}

/* A pipeline's stage rows become the tensor's stages in the report (the HTML stage waterfall);
 * the final "chosen" rows repeat a stage already recorded, so only first tries are kept. */
static int on_stage(const hc_stage_metrics *m, void *ud)
{
    report_tensor *t = ud;
    if (m->action > HC_STAGE_ROLLED_BACK || m->attempt != 0)
        return 0;
    report_stage s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", m->stage);
    s.bpw = m->bpw;
    s.rel_rmse = m->rel_rmse;
    s.seconds = m->seconds;
    s.passed = m->gate_passed == 1;
    return report_add_stage(t, &s) ? 0 : 1;   /* out of memory cancels the run */
}

/* Compresses one tensor with the codec, or through the pipeline when there is one. */
static int code_tensor(hc_ctensor **out, hc_compressor *comp, hc_pipeline *p, const hc_tensor_view *v,
                       report_tensor *t)
{
    if (!p)
        return hc_compress(out, comp, v);
    hc_pipeline_set_stage_callback(p, on_stage, t);
    int rc = hc_pipeline_compress_tensor(out, p, v);
    hc_pipeline_set_stage_callback(p, NULL, NULL);
    return rc;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Metadata that lets decompress restore the source's own metadata and tells a reader how the
 * file was made. */
static int write_metadata(hc_archive_writer *w, const compress_args *a, const hc_safetensors *st,
                          const char *spec)
{
    char buf[64];
    const char *base = strrchr(a->in, '/');
    int rc = hc_archive_writer_set_metadata(w, "hypercomp.source", base ? base + 1 : a->in);
    if (rc == HC_OK)
        rc = hc_archive_writer_set_metadata(w, "hypercomp.codec", spec);
    if (rc == HC_OK)
        rc = hc_archive_writer_set_metadata(w, "hypercomp.version", hc_version_string());
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)a->min_size);
    if (rc == HC_OK)
        rc = hc_archive_writer_set_metadata(w, "hypercomp.min_size", buf);
    for (size_t i = 0; i < hc_safetensors_metadata_count(st) && rc == HC_OK; i++) {
        const char *key = hc_safetensors_metadata_key(st, i);
        char k[512];
        snprintf(k, sizeof k, "safetensors.%s", key);
        rc = hc_archive_writer_set_metadata(w, k, hc_safetensors_metadata(st, key));
    }
    return rc;
}

static void print_summary(const report *r, int verbose)
{
    report_totals tot;
    report_totals_compute(r, &tot);
    report_codec_total ct[32];
    size_t nc = report_codec_totals(r, ct, 32);
    char b1[32], b2[32];
    if (verbose) {
        printf("%-4s %-44s %-8s %10s %9s %8s %11s\n", "#", "tensor", "codec", "values", "stored", "bpw", "rel.RMSE");
        for (size_t i = 0; i < r->n; i++) {
            const report_tensor *t = &r->t[i];
            printf("%-4zu %-44.44s %-8s %10lld %9s %8.3f %11.3e\n", i, t->name, t->codec, (long long)t->numel,
                   report_human_bytes(b1, sizeof b1, (double)t->bits / 8), t->bpw, t->rel_rmse);
        }
        printf("\n");
    }
    printf("%-10s %8s %12s %11s %8s %11s\n", "codec", "tensors", "weights", "stored", "bpw", "rel.RMSE");
    for (size_t i = 0; i < nc; i++)
        printf("%-10s %8zu %12lld %11s %8.3f %11.3e\n", ct[i].codec, ct[i].tensors, (long long)ct[i].weights,
               report_human_bytes(b1, sizeof b1, (double)ct[i].bits / 8), (double)ct[i].bits / (double)ct[i].weights,
               ct[i].ref_sq > 0 ? sqrt(ct[i].err_sq / ct[i].ref_sq) : 0.0);
    printf("%-10s %8zu %12lld %11s %8.3f\n", "total", tot.tensors, (long long)tot.weights,
           report_human_bytes(b1, sizeof b1, (double)tot.bits / 8), tot.bpw);
    /* the worst few tensors, the ones a person would look at first */
    const report_tensor *worst[5] = { NULL };
    for (size_t i = 0; i < r->n; i++) {
        const report_tensor *t = &r->t[i];
        if (t->kept || !isfinite(t->rel_rmse))
            continue;
        for (int k = 0; k < 5; k++)
            if (!worst[k] || t->rel_rmse > worst[k]->rel_rmse) {
                memmove(&worst[k + 1], &worst[k], (size_t)(4 - k) * sizeof worst[0]);
                worst[k] = t;
                break;
            }
    }
    if (worst[0]) {
        printf("\nlargest errors:\n");
        for (int k = 0; k < 5 && worst[k]; k++)
            printf("  %-48.48s %-8s %.3e (%.1f dB)\n", worst[k]->name, worst[k]->codec, worst[k]->rel_rmse,
                   worst[k]->snr_db);
    }
    double orig = (double)(r->source_bytes ? r->source_bytes : tot.orig_bytes);
    printf("\n%s -> %s: %s -> %s (%.2fx), %.3f bits per weight in the file\n", r->source, r->output,
           report_human_bytes(b1, sizeof b1, orig), report_human_bytes(b2, sizeof b2, (double)r->file_bytes),
           r->file_bytes ? orig / (double)r->file_bytes : 0.0, tot.file_bpw);
    printf("model error: relative RMS %.4e (SNR %.1f dB) over %lld weights in tensors of >= %lld values; %.1f s\n",
           tot.rel_rmse, tot.snr_db, (long long)tot.agg_weights, (long long)r->min_aggregate, r->seconds);
}

int cmd_compress(int argc, char **argv)
{
    compress_args a;
    if (!parse_args(&a, argc, argv))
        return CLI_USAGE;
    hc_compressor *comp = NULL;
    hc_pipeline *pipe = NULL;
    char spec[512];
    int rc;
    if (a.pipe.mode) {
        a.pipe.threads = 1;   /* one tensor at a time, each stage on --threads threads */
        a.pipe.stage_threads_set = 1;
        a.pipe.stage_threads = (uint32_t)a.threads;
        if ((rc = cli_pipeline_build(&pipe, "compress", &a.pipe)) != CLI_OK)
            return rc;
        cli_pipeline_describe(spec, sizeof spec, &a.pipe);
    } else {
        rc = hc_compressor_from_spec(&comp, a.codec);
        if (rc != HC_OK) {
            fprintf(stderr, "hypercomp compress: --codec '%s': %s\n", a.codec, hc_last_error());
            return rc == HC_EINVAL || rc == HC_ENOTFOUND ? CLI_USAGE : CLI_FAILED;
        }
        hc_compressor_set_threads(comp, (uint32_t)a.threads);
        snprintf(spec, sizeof spec, "%s", hc_compressor_spec(comp));
    }
    hc_safetensors *st = NULL;
    hc_archive_writer *w = NULL;
    report r;
    report_init(&r);
    double t0 = seconds_now();
    if ((rc = hc_safetensors_open(&st, a.in)) != HC_OK) {
        cli_lib_error("compress", rc);
        hc_compressor_free(comp);
        hc_pipeline_free(pipe);
        return exit_code_for(rc);
    }
    r.source = strdup(a.in);
    r.output = strdup(a.out);
    r.spec = strdup(spec);
    if (!r.source || !r.output || !r.spec) {
        fprintf(stderr, "hypercomp compress: out of memory\n");
        report_free(&r);
        hc_safetensors_close(st);
        hc_compressor_free(comp);
        hc_pipeline_free(pipe);
        return CLI_FAILED;
    }
    struct stat sb;
    if (stat(a.in, &sb) == 0)
        r.source_bytes = (uint64_t)sb.st_size;
    rc = hc_archive_writer_new(&w, a.out);
    if (rc == HC_OK)
        rc = write_metadata(w, &a, st, r.spec);
    size_t n = hc_safetensors_count(st);
    size_t n_skipped = 0;
    progress pg;
    progress_init(&pg, "compress", n, a.quiet);
    for (size_t i = 0; i < n && rc == HC_OK; i++) {
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        const char *name = hc_safetensors_name(st, i);
        if ((rc = hc_safetensors_tensor(&v, st, i)) == HC_EUNSUPPORTED) {
            /* integer buffers (position ids, step counters) have no place in a weight container:
             * say so and go on, so a whole checkpoint still compresses */
            progress_end(&pg);
            fprintf(stderr, "hypercomp compress: warning: '%s': tensor '%s' skipped, not stored: %s\n", a.in, name,
                    hc_last_error());
            n_skipped++;
            rc = HC_OK;
            continue;
        }
        if (rc != HC_OK)
            break;
        int64_t numel = 1;
        for (uint32_t d = 0; d < v.ndim; d++)
            numel *= v.shape[d];
        report_tensor *t = report_add(&r, name);
        if (!t) {
            rc = HC_ENOMEM;
            fprintf(stderr, "hypercomp compress: out of memory\n");
            break;
        }
        t->dtype = v.dtype;
        t->ndim = v.ndim;
        memcpy(t->shape, v.shape, sizeof t->shape);
        t->numel = numel;
        t->orig_bytes = (uint64_t)numel * hc_dtype_size(v.dtype);
        t->ref_sq = cli_sum_squares(&v, numel);
        double ts = seconds_now();
        char detail[96];
        if (keep_tensor(&a, name, numel)) {
            rc = hc_archive_writer_add_uncompressed(w, &v);
            t->kept = 1;
            snprintf(t->codec, sizeof t->codec, "kept");
            t->bits = 8u * (24u + 8u * v.ndim + t->orig_bytes + 4u);
            t->rel_rmse = 0;
            t->max_abs_err = 0;
            t->snr_db = INFINITY;
            snprintf(detail, sizeof detail, "kept (%s)", hc_dtype_name(v.dtype));
        } else {
            hc_ctensor *ct = NULL;
            rc = code_tensor(&ct, comp, pipe, &v, t);
            if (rc == HC_OK)
                rc = hc_archive_writer_add(w, name, ct);
            if (rc == HC_OK) {
                hc_stats s = HC_STATS_INIT;
                hc_ctensor_stats(&s, ct);
                snprintf(t->codec, sizeof t->codec, "%s", hc_ctensor_codec_name(ct));
                t->bits = s.bits;
                t->rel_rmse = s.rel_rmse;
                t->snr_db = s.snr_db;
                t->max_abs_err = s.max_abs_err;
                snprintf(detail, sizeof detail, "%s %.3f bpw, error %.3e", t->codec, s.bpw, s.rel_rmse);
            }
            hc_ctensor_free(ct);
        }
        t->seconds = seconds_now() - ts;
        t->bpw = (double)t->bits / (double)numel;
        if (rc == HC_OK)
            progress_step(&pg, i + 1, name, detail);
        else if (rc != HC_EIO)   /* I/O messages already name the file */
            fprintf(stderr, "%shypercomp compress: tensor '%s' of '%s':\n  ", pg.drawn ? "\n" : "", name, a.in);
    }
    progress_end(&pg);
    if (rc == HC_OK)
        rc = hc_archive_writer_finish(w);
    r.seconds = seconds_now() - t0;
    int code = exit_code_for(rc);
    if (rc != HC_OK) {
        cli_lib_error("compress", rc);
    } else {
        if (stat(a.out, &sb) == 0)
            r.file_bytes = (uint64_t)sb.st_size;
        if (!a.quiet)
            print_summary(&r, a.verbose);
        if (n_skipped)
            fprintf(stderr, "hypercomp compress: warning: %zu tensor%s of unsupported dtype or rank not stored (listed above)\n",
                    n_skipped, n_skipped == 1 ? "" : "s");
        if (a.report && !report_write_html(&r, a.report))
            code = CLI_FAILED;
        else if (a.report && !a.quiet)
            printf("report: %s\n", a.report);
        if (a.json && !report_write_json(&r, a.json))
            code = CLI_FAILED;
    }
    hc_archive_writer_free(w);
    hc_safetensors_close(st);
    hc_compressor_free(comp);
    hc_pipeline_free(pipe);
    report_free(&r);
    return code;
}
