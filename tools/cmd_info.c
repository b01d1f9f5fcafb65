/* hypercomp info: what a container holds, from its directory, with every checksum verified. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_archive.h"
#include "cli_util.h"
#include "cmd_args.h"
#include "hypercomp/hypercomp.h"
#include "report.h"

static const char info_help[] =
    "usage: hypercomp info IN.hcz [OPTIONS]\n"
    "\n"
    "Lists the tensors of a container: shape, original dtype, codec, stored size, bits per weight\n"
    "and the error recorded when it was compressed; then totals per codec and the metadata.\n"
    "Every tensor's checksum is verified and its payload validated by its codec (a codec this\n"
    "build lacks is reported once, as a warning: the checksum is still verified).\n"
    "\n"
    "options:\n"
    "  --no-verify           read only the header and directory (fast on very large files)\n"
    "  -h, --help            this text\n"
    "\n"
    "exit codes: 0 success, 1 the file is unreadable or corrupt (message on stderr), 2 bad command line\n";

void cmd_codec_names(char *buf, size_t size)
{
    /* ask the library which of the documented codec names this build has */
    static const char *const names[] = { "f32", "fp16", "bf16", "int8", "nf4", "ternary", "seedlm", "vptq",
                                         "hyper", "poly", "fourier", "ergodic" };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hc_compressor *c = NULL;
        if (hc_compressor_from_spec(&c, names[i]) == HC_OK) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", names[i]);
            if (n > 0 && (size_t)n < size - used)
                used += (size_t)n;
        }
        hc_compressor_free(c);
    }
}

static void shape_text(char *buf, size_t size, const hc_archive_entry *e)
{
    size_t used = 0;
    snprintf(buf, size, "scalar");
    for (uint32_t d = 0; d < e->ndim; d++) {
        int n = snprintf(buf + used, size - used, "%s%lld", d ? "x" : "", (long long)e->shape[d]);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

int cmd_info(int argc, char **argv)
{
    const char *in = NULL;
    int verify = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(info_help, stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--no-verify") == 0) {
            verify = 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hypercomp info: unknown option '%s' (see `hypercomp info --help`)\n", argv[i]);
            return CLI_USAGE;
        } else if (!in) {
            in = argv[i];
        } else {
            fprintf(stderr, "hypercomp info: unexpected argument '%s'; one file is expected\n", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!in) {
        fprintf(stderr, "hypercomp info: no file given\nusage: hypercomp info IN.hcz (see --help)\n");
        return CLI_USAGE;
    }
    hc_archive *a = NULL;
    int rc = hc_archive_open(&a, in, 0);
    if (rc != HC_OK) {
        cli_lib_error("info", rc);
        return exit_code_for(rc);
    }
    size_t n = hc_archive_count(a);
    char b1[32], b2[32], shape[64];
    uint32_t ver = hc_archive_version(a);
    printf("file      %s\nformat    hypercomp container %u.%u, %s (%llu bytes)\ntensors   %zu\n", in, ver >> 8,
           ver & 255, report_human_bytes(b1, sizeof b1, (double)hc_archive_file_size(a)),
           (unsigned long long)hc_archive_file_size(a), n);
    for (size_t i = 0; i < hc_archive_metadata_count(a); i++) {
        const char *k = hc_archive_metadata_key(a, i);
        printf("%-9s %s = %.200s\n", i ? "" : "metadata", k, hc_archive_metadata(a, k));
    }
    printf("\n%-4s %-44s %-14s %-5s %-8s %10s %9s %8s %11s\n", "#", "tensor", "shape", "dtype", "codec", "values",
           "stored", "bpw", "rel.RMSE");
    report r;   /* reuse the report's per-codec sums */
    report_init(&r);
    size_t verified = 0, failed = 0, unknown = 0;
    uint32_t last_unknown = 0;
    for (size_t i = 0; i < n; i++) {
        hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
        hc_archive_entry_get(&e, a, i);
        shape_text(shape, sizeof shape, &e);
        char err[32];
        if (!e.has_quality || !isfinite(e.rel_rmse))
            snprintf(err, sizeof err, "-");
        else if (e.rel_rmse == 0)
            snprintf(err, sizeof err, "exact");
        else
            snprintf(err, sizeof err, "%.3e", e.rel_rmse);
        double bpw = 8.0 * (double)e.serialized_bytes / (double)e.numel;
        char codec[32];
        if (strcmp(e.codec_name, "unknown") == 0)
            snprintf(codec, sizeof codec, "codec#%u", e.codec_id);
        else
            snprintf(codec, sizeof codec, "%s", e.codec_name);
        printf("%-4zu %-44.44s %-14s %-5s %-8s %10lld %9s %8.3f %11s\n", i, e.name, shape, hc_dtype_name(e.orig_dtype),
               codec, (long long)e.numel, report_human_bytes(b2, sizeof b2, (double)e.serialized_bytes), bpw,
               err);
        report_tensor *t = report_add(&r, e.name);
        if (t) {
            snprintf(t->codec, sizeof t->codec, "%s", codec);
            t->numel = e.numel;
            t->bits = 8u * e.serialized_bytes;
            t->rel_rmse = e.has_quality ? e.rel_rmse : NAN;
            t->ref_sq = 1.0;   /* the directory has no norms: per-codec errors are plain means here */
        }
        if (verify) {
            hc_ctensor *ct = NULL;
            int vr = hc_archive_tensor(&ct, a, i);
            if (vr == HC_OK) {
                verified++;
            } else if (vr == HC_EUNSUPPORTED) {
                /* a codec newer than this build: its checksum passed (it is checked first), only
                 * the payload cannot be validated here; say so once, not once per tensor */
                unknown++;
                if (!e.codec_id || e.codec_id != last_unknown)
                    fprintf(stderr, "hypercomp info: warning: %s; this build cannot decode such tensors\n",
                            hc_last_error());
                last_unknown = e.codec_id;
            } else {
                failed++;
                fprintf(stderr, "hypercomp info: %s (%s)\n", hc_last_error(), hc_status_name(vr));
                if (rc == HC_OK)
                    rc = vr;
            }
            hc_ctensor_free(ct);
        }
    }
    report_codec_total ct[32];
    size_t nc = report_codec_totals(&r, ct, 32);
    uint64_t bits = 0;
    int64_t weights = 0;
    printf("\n%-10s %8s %12s %11s %8s\n", "codec", "tensors", "weights", "stored", "bpw");
    for (size_t i = 0; i < nc; i++) {
        printf("%-10s %8zu %12lld %11s %8.3f\n", ct[i].codec, ct[i].tensors, (long long)ct[i].weights,
               report_human_bytes(b1, sizeof b1, (double)ct[i].bits / 8), (double)ct[i].bits / (double)ct[i].weights);
        bits += ct[i].bits;
        weights += ct[i].weights;
    }
    printf("%-10s %8zu %12lld %11s %8.3f   (file: %.3f bits per weight with header, directory and padding)\n",
           "total", n, (long long)weights, report_human_bytes(b1, sizeof b1, (double)bits / 8),
           weights ? (double)bits / (double)weights : 0.0,
           weights ? 8.0 * (double)hc_archive_file_size(a) / (double)weights : 0.0);
    if (verify)
        printf("checksums %zu of %zu tensors verified%s", verified + unknown, n, failed ? ", SOME FAILED (see above)" : "");
    if (verify && unknown)
        printf("; %zu use a codec this build lacks (payloads not validated)", unknown);
    if (verify)
        printf("\n");
    else
        printf("checksums not verified (--no-verify)\n");
    report_free(&r);
    hc_archive_close(a);
    return exit_code_for(rc);
}
