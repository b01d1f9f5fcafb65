/* What a parallel call costs: the library's loop keeps its worker threads between calls (a
 * process-wide pool; lib/common/parallel.c) instead of starting and joining threads per call.
 * Both are timed in the same run:
 *   - loop_us: one hci_parallel_for on 2 threads whose ranges do nothing, on the pool, and with
 *     threads started for the call (the path a call takes when the pool is owned; forced here by
 *     calling from inside a range of a loop that owns it);
 *   - matvec_ms: hc_ctensor_matvec of small compressed tensors (Gaussian, int8 and seedlm:4bit)
 *     at 1 and 2 threads, where the per-call cost is a visible part of the call.
 * Medians of REPS calls (default 2001 for the loop, 201 for the matvecs). Numbers, not assertions.
 *
 *   bench_parallel [--rows R] [--cols C] [--reps N] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "hypercomp/hypercomp.h"
#include "common/parallel.h"

static int nothing(void *ctx, int64_t b, int64_t e)
{
    (void)ctx, (void)b, (void)e;
    return HC_OK;
}

typedef struct loop_timing {
    int reps;
    double *t;
    double median_us;
} loop_timing;

/* reps loops of 2 ranges on 2 threads, each timed */
static int time_loops(void *ctx, int64_t b, int64_t e)
{
    loop_timing *lt = ctx;
    if (b != 0)
        return HC_OK; /* only the caller's range times: the other range of the outer loop idles */
    (void)e;
    for (int i = 0; i < lt->reps; i++) {
        double t0 = bench_now();
        if (hci_parallel_for(2, 2, 1, nothing, NULL) != HC_OK)
            return HC_EINVAL;
        lt->t[i] = bench_now() - t0;
    }
    lt->median_us = 1e6 * bench_median(lt->t, lt->reps);
    return HC_OK;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_parallel: %s failed: %s\n", what, hc_last_error());
    exit(1);
}

static double time_matvec(hc_ctensor *ct, uint32_t threads, const float *x, float *y, int reps, double *t)
{
    if (hc_ctensor_set_threads(ct, threads) != HC_OK)
        die("set_threads");
    for (int i = 0; i < reps; i++) {
        double t0 = bench_now();
        if (hc_ctensor_matvec(ct, x, y) != HC_OK)
            die("matvec");
        t[i] = bench_now() - t0;
    }
    return 1e3 * bench_median(t, reps);
}

int main(int argc, char **argv)
{
    int64_t rows = 1024, cols = 1024;
    int reps = 201;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc)
            cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--rows R] [--cols C] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (rows < 1 || cols < 1 || reps < 1) {
        fprintf(stderr, "bench_parallel: rows, cols and reps must be at least 1\n");
        return 2;
    }
    /* the loop alone: on the pool (called from here), then with its own threads (called from
     * inside a range of a loop that holds the pool) */
    loop_timing pooled = { 2001, malloc(sizeof(double) * 2001), 0 }, spawned = pooled;
    spawned.t = malloc(sizeof(double) * 2001);
    if (!pooled.t || !spawned.t)
        die("malloc");
    if (time_loops(&pooled, 0, 1) != HC_OK || hci_parallel_for(2, 2, 1, time_loops, &spawned) != HC_OK)
        die("loop");
    printf("{\n  \"loop_us\": { \"pool\": %.2f, \"threads_per_call\": %.2f, \"ratio\": %.2f },\n", pooled.median_us,
           spawned.median_us, spawned.median_us / pooled.median_us);
    free(pooled.t);
    free(spawned.t);

    float *w = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)cols);
    float *y = malloc(sizeof(float) * (size_t)rows);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!w || !x || !y || !t)
        die("malloc");
    bench_fill_gauss(w, (size_t)(rows * cols), 7, 1.0);
    bench_fill_gauss(x, (size_t)cols, 8, 1.0);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "gaussian";
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.data = w;
    const char *specs[] = { "int8", "seedlm:4bit" };
    printf("  \"matvec_ms\": {\n");
    for (int k = 0; k < 2; k++) {
        hc_compressor *c;
        hc_ctensor *ct;
        char spec[64];
        snprintf(spec, sizeof spec, "%s,threads=2", specs[k]);
        if (hc_compressor_from_spec(&c, strchr(specs[k], ':') ? spec : specs[k]) != HC_OK || hc_compress(&ct, c, &v) != HC_OK)
            die(specs[k]);
        time_matvec(ct, 2, x, y, 5, t); /* warm-up: starts the pool's workers */
        double t1 = time_matvec(ct, 1, x, y, reps, t), t2 = time_matvec(ct, 2, x, y, reps, t);
        printf("    \"%s\": { \"rows\": %lld, \"cols\": %lld, \"threads1\": %.4f, \"threads2\": %.4f, "
               "\"speedup_2_threads\": %.2f }%s\n",
               specs[k], (long long)rows, (long long)cols, t1, t2, t1 / t2, k ? "" : ",");
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    printf("  }\n}\n");
    free(w), free(x), free(y), free(t);
    return 0;
}
