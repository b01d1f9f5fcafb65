/* `hypercomp bench`: compress a synthetic matrix, then time decode and matvec against the BLAS
 * sgemv on the fp32 matrix with the same thread count in the same run. Speed is reported as a
 * ratio because absolute times mean little on a shared machine. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#if defined(HC_BLAS_BLIS)
#include <blis.h>
#endif
#include <cblas.h>

#include "cli.h"
#include "cmd_bench.h"
#include "hypercomp/hypercomp.h"
#include "synth.h"

/* The compressed matvec must agree with sgemv on the decoded matrix to within float rounding
 * of a length-cols dot product; a kernel that misses this is wrong, however fast it is. */
#define BENCH_KERNEL_TOLERANCE 1e-4

typedef struct bench_args {
    const char *spec;
    int64_t rows, cols;
    synth_dist dist;
    uint64_t seed;
    uint32_t threads;
    uint32_t repeat;
    int json;
} bench_args;

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: hypercomp bench --codec SPEC [--rows R --cols C] [--dist gauss|laplace]\n"
            "                       [--seed S] [--threads N] [--repeat K] [--json]\n\n"
            "Compresses a synthetic rows x cols matrix (default 4096 x 4096, Gaussian, seed 1) and\n"
            "reports bpw, rel_rmse, compress_s, decode_gbps (GB/s of f32 output), matvec_ms,\n"
            "sgemv_ms (BLAS cblas_sgemv on the fp32 matrix, same threads) and matvec_speedup\n"
            "(sgemv_ms / matvec_ms). Times are medians of K runs (default 5) after one warm-up;\n"
            "matvec and sgemv runs alternate.\n"
            "--threads N (default 1) is used by the codec and the BLAS alike.\n"
            "The compressed matvec is checked against sgemv on the decoded matrix; a relative\n"
            "error above %g fails the command (exit 1).\n",
            BENCH_KERNEL_TOLERANCE);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, uint32_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Parses a decimal integer in [lo, hi]; -1 when it is not one. */
static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(bench_args *a, int argc, char **argv)
{
    static const struct {
        const char *name;
        int64_t lo, hi;
    } ints[] = {
        { "--rows", 1, INT32_MAX }, { "--cols", 1, INT32_MAX }, { "--seed", 0, INT64_MAX },
        { "--threads", 1, 1024 },   { "--repeat", 1, 1000 },
    };
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            bench_usage(stdout);
            return 1;
        }
        if (strcmp(opt, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hypercomp bench: '%s' is not an option or lacks its value\n", opt);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--codec") == 0) {
            a->spec = val;
            continue;
        }
        if (strcmp(opt, "--dist") == 0) {
            if (synth_dist_parse(val, &a->dist) != 0) {
                fprintf(stderr, "hypercomp bench: --dist '%s': expected gauss or laplace\n", val);
                return -1;
            }
            continue;
        }
        size_t k = 0;
        while (k < sizeof ints / sizeof ints[0] && strcmp(opt, ints[k].name) != 0)
            k++;
        if (k == sizeof ints / sizeof ints[0]) {
            fprintf(stderr, "hypercomp bench: unknown option '%s'\n", opt);
            return -1;
        }
        int64_t v;
        if (parse_i64(val, ints[k].lo, ints[k].hi, &v) != 0) {
            fprintf(stderr, "hypercomp bench: %s '%s': expected an integer in [%lld, %lld]\n", opt, val,
                    (long long)ints[k].lo, (long long)ints[k].hi);
            return -1;
        }
        switch (k) {
        case 0: a->rows = v; break;
        case 1: a->cols = v; break;
        case 2: a->seed = (uint64_t)v; break;
        case 3: a->threads = (uint32_t)v; break;
        default: a->repeat = (uint32_t)v; break;
        }
    }
    if (!a->spec) {
        fprintf(stderr, "hypercomp bench: --codec SPEC is required\n");
        return -1;
    }
    if ((uint64_t)a->rows * (uint64_t)a->cols > ((uint64_t)1 << 31)) {
        fprintf(stderr, "hypercomp bench: %lld x %lld values is more than the 2^31 this command allows\n",
                (long long)a->rows, (long long)a->cols);
        return -1;
    }
    return 0;
}

static void blas_set_threads(uint32_t threads)
{
#if defined(HC_BLAS_BLIS)
    bli_thread_set_num_threads((dim_t)threads);
#else
    openblas_set_num_threads((int)threads);
#endif
}

static void sgemv(const float *w, int64_t rows, int64_t cols, const float *x, float *y)
{
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, y, 1);
}

/* ||a - b|| / ||b|| in double. */
static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

typedef struct bench_result {
    char *spec;  /* canonical */
    hc_stats stats;
    double decode_s, matvec_s, sgemv_s;
    double kernel_err;   /* compressed matvec vs sgemv on the decoded matrix */
    double vs_fp32_err;  /* compressed matvec vs sgemv on the original matrix */
} bench_result;

static int fail_lib(const char *what, int rc)
{
    fprintf(stderr, "hypercomp bench: %s: %s (%s)\n", what, hc_last_error(), hc_status_name(rc));
    return CLI_FAILED;
}

static int run_bench(const bench_args *a, bench_result *r)
{
    size_t n = (size_t)a->rows * (size_t)a->cols;
    size_t rows = (size_t)a->rows, cols = (size_t)a->cols;
    int status = CLI_FAILED;
    hc_compressor *c = NULL;
    hc_ctensor *ct = NULL;
    float *w = malloc(n * sizeof *w);
    float *dec = malloc(n * sizeof *dec);
    float *x = malloc(cols * sizeof *x);
    float *y = malloc(rows * sizeof *y);
    float *y_ref = malloc(rows * sizeof *y_ref);
    float *y_fp32 = malloc(rows * sizeof *y_fp32);
    double *t = malloc(a->repeat * sizeof *t);
    double *t2s = malloc(a->repeat * sizeof *t2s);
    if (!w || !dec || !x || !y || !y_ref || !y_fp32 || !t || !t2s) {
        fprintf(stderr, "hypercomp bench: out of memory for a %lld x %lld matrix\n", (long long)a->rows,
                (long long)a->cols);
        goto done;
    }
    synth_fill(w, n, a->dist, a->seed);
    synth_fill(x, cols, SYNTH_GAUSS, a->seed ^ 0x5851f42d4c957f2dULL);

    int rc = hc_compressor_from_spec(&c, a->spec);
    if (rc != HC_OK) {
        status = rc == HC_EINVAL || rc == HC_ENOTFOUND ? CLI_USAGE : CLI_FAILED;
        fprintf(stderr, "hypercomp bench: %s (%s)\n", hc_last_error(), hc_status_name(rc));
        goto done;
    }
    if ((rc = hc_compressor_set_threads(c, a->threads)) != HC_OK) {
        status = fail_lib("setting threads", rc);
        goto done;
    }
    r->spec = strdup(hc_compressor_spec(c));
    if (!r->spec)
        goto done;

    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "bench";
    v.ndim = 2;
    v.shape[0] = a->rows;
    v.shape[1] = a->cols;
    v.data = w;
    if ((rc = hc_compress(&ct, c, &v)) != HC_OK) {
        status = fail_lib("compressing", rc);
        goto done;
    }
    r->stats.struct_size = sizeof r->stats;
    if ((rc = hc_ctensor_stats(&r->stats, ct)) != HC_OK ||
        (rc = hc_ctensor_set_threads(ct, a->threads)) != HC_OK) {
        status = fail_lib("reading stats", rc);
        goto done;
    }
    blas_set_threads(a->threads);

    /* Each timed loop starts with one untimed warm-up run (page faults, thread start-up). */
    for (uint32_t k = 0; k <= a->repeat; k++) {
        double t0 = now_s();
        rc = hc_ctensor_decode(ct, HC_DTYPE_F32, dec, n * sizeof *dec);
        if (rc != HC_OK) {
            status = fail_lib("decoding", rc);
            goto done;
        }
        if (k)
            t[k - 1] = now_s() - t0;
    }
    r->decode_s = median(t, a->repeat);

    /* matvec and sgemv alternate, so both see the same machine load and neither finds its
     * matrix still in cache from its own previous run. */
    for (uint32_t k = 0; k <= a->repeat; k++) {
        double t0 = now_s();
        rc = hc_ctensor_matvec(ct, x, y);
        double t1 = now_s();
        if (rc != HC_OK) {
            status = fail_lib("matvec", rc);
            goto done;
        }
        sgemv(w, a->rows, a->cols, x, y_fp32);
        double t2 = now_s();
        if (k) {
            t[k - 1] = t1 - t0;
            t2s[k - 1] = t2 - t1;
        }
    }
    r->matvec_s = median(t, a->repeat);
    r->sgemv_s = median(t2s, a->repeat);

    sgemv(dec, a->rows, a->cols, x, y_ref);
    r->kernel_err = rel_err(y, y_ref, rows);
    r->vs_fp32_err = rel_err(y, y_fp32, rows);
    status = CLI_OK;
done:
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    free(w);
    free(dec);
    free(x);
    free(y);
    free(y_ref);
    free(y_fp32);
    free(t);
    free(t2s);
    return status;
}

static void print_json(const bench_args *a, const bench_result *r, double gbps)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "codec", json_object_new_string(r->spec));
    json_object_object_add(o, "rows", json_object_new_int64(a->rows));
    json_object_object_add(o, "cols", json_object_new_int64(a->cols));
    json_object_object_add(o, "dist", json_object_new_string(synth_dist_name(a->dist)));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)a->seed));
    json_object_object_add(o, "threads", json_object_new_int64(a->threads));
    json_object_object_add(o, "repeat", json_object_new_int64(a->repeat));
    json_object_object_add(o, "bits", json_object_new_int64((int64_t)r->stats.bits));
    json_object_object_add(o, "bpw", json_object_new_double(r->stats.bpw));
    json_object_object_add(o, "rel_rmse", json_object_new_double(r->stats.rel_rmse));
    /* A lossless codec has infinite SNR, which JSON cannot spell: null instead. */
    json_object_object_add(o, "snr_db",
                           isfinite(r->stats.snr_db) ? json_object_new_double(r->stats.snr_db) : NULL);
    json_object_object_add(o, "compress_s", json_object_new_double(r->stats.seconds));
    json_object_object_add(o, "decode_gbps", json_object_new_double(gbps));
    json_object_object_add(o, "matvec_ms", json_object_new_double(1e3 * r->matvec_s));
    json_object_object_add(o, "sgemv_ms", json_object_new_double(1e3 * r->sgemv_s));
    json_object_object_add(o, "matvec_speedup", json_object_new_double(r->sgemv_s / r->matvec_s));
    json_object_object_add(o, "matvec_rel_err", json_object_new_double(r->kernel_err));
    json_object_object_add(o, "matvec_rel_err_fp32", json_object_new_double(r->vs_fp32_err));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void print_text(const bench_args *a, const bench_result *r, double gbps)
{
    printf("codec            %s\n", r->spec);
    printf("matrix           %lld x %lld %s, seed %llu\n", (long long)a->rows, (long long)a->cols,
           synth_dist_name(a->dist), (unsigned long long)a->seed);
    printf("threads          %u (codec and BLAS), medians of %u runs\n", a->threads, a->repeat);
    printf("bpw              %.4f (%llu bits, every header and scale counted)\n", r->stats.bpw,
           (unsigned long long)r->stats.bits);
    printf("rel_rmse         %.6g\n", r->stats.rel_rmse);
    printf("snr_db           %.2f\n", r->stats.snr_db);
    printf("compress_s       %.4f\n", r->stats.seconds);
    printf("decode_gbps      %.3f (GB/s of f32 output)\n", gbps);
    printf("matvec_ms        %.4f\n", 1e3 * r->matvec_s);
    printf("sgemv_ms         %.4f (cblas_sgemv on the fp32 matrix)\n", 1e3 * r->sgemv_s);
    printf("matvec_speedup   %.3f (sgemv_ms / matvec_ms)\n", r->sgemv_s / r->matvec_s);
    printf("matvec_rel_err   %.3g vs sgemv on the decoded matrix (kernel check, limit %g)\n", r->kernel_err,
           BENCH_KERNEL_TOLERANCE);
    printf("                 %.3g vs sgemv on the fp32 matrix (coding error seen by y = W x)\n",
           r->vs_fp32_err);
}

int cmd_bench(int argc, char **argv)
{
    bench_args a = { NULL, 4096, 4096, SYNTH_GAUSS, 1, 1, 5, 0 };
    int rc = parse_args(&a, argc, argv);
    if (rc > 0)
        return CLI_OK;
    if (rc < 0) {
        bench_usage(stderr);
        return CLI_USAGE;
    }
    bench_result r;
    memset(&r, 0, sizeof r);
    int status = run_bench(&a, &r);
    if (status == CLI_OK) {
        double gbps = (double)a.rows * (double)a.cols * sizeof(float) / r.decode_s * 1e-9;
        if (a.json)
            print_json(&a, &r, gbps);
        else
            print_text(&a, &r, gbps);
        if (!(r.kernel_err <= BENCH_KERNEL_TOLERANCE)) {
            fprintf(stderr,
                    "hypercomp bench: compressed matvec differs from sgemv on the decoded matrix by %.3g "
                    "(limit %g): the kernel is wrong\n",
                    r.kernel_err, BENCH_KERNEL_TOLERANCE);
            status = CLI_FAILED;
        }
    }
    free(r.spec);
    return status;
}
