/* Scalar codecs on one thread: matvec straight from the packed form against OpenBLAS (or
 * BLIS) sgemv on the same matrix in f32, measured in the same run as a ratio, plus decode
 * throughput and quality on a synthetic Gaussian matrix.
 *
 *   bench_scalar [--rows R] [--cols C] [--dist gauss|laplace] [--reps N] [--isa portable,avx2,avx512]
 *                [--json] [SPEC...]
 *
 * Each repetition times one sgemv and then one compressed matvec, so both see the same load;
 * the medians are reported and matvec_speedup = sgemv_ms / matvec_ms; on a busy machine the
 * ratio of the fastest repetitions (min_speedup) is the steadier figure. HYPERCOMP_ISA is set per
 * --isa entry (the library caps its kernels at it). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "bench_util.h"
#include "hypercomp/hypercomp.h"

#if defined(HC_BLAS_BLIS)
#include <blis.h>
static void blas_one_thread(void) { bli_thread_set_num_threads(1); }
#else
static void blas_one_thread(void) { openblas_set_num_threads(1); }
#endif

/* Laplace with standard deviation sigma (scale sigma / sqrt 2), by inversion. */
static void fill_laplace(float *v, size_t n, uint64_t seed, double sigma)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)((bench_rng_next(&seed) >> 11) + 1) * 0x1.0p-53 - 0.5;
        double a = 1.0 - 2.0 * fabs(u);
        v[i] = (float)((u < 0 ? 1 : -1) * sigma / sqrt(2.0) * log(a > 1e-300 ? a : 1e-300));
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_scalar [--rows R] [--cols C] [--dist gauss|laplace] [--reps N] [--isa LIST] [--json] "
                    "[SPEC...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long rows = 4096, cols = 4096;
    int reps = 30, json = 0, laplace = 0;
    const char *isa_list = NULL;
    const char *specs[32];
    int nspecs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc)
            cols = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dist") && i + 1 < argc && (!strcmp(argv[i + 1], "gauss") || !strcmp(argv[i + 1], "laplace")))
            laplace = !strcmp(argv[++i], "laplace");
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            isa_list = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' || nspecs == 32)
            return usage();
        else
            specs[nspecs++] = argv[i];
    }
    if (rows < 1 || cols < 1 || reps < 1)
        return usage();
    if (!nspecs) {
        static const char *const defaults[] = { "nf4", "int8", "fp16", "bf16", "ternary", "f32" };
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            specs[nspecs++] = defaults[i];
    }
    char isa_buf[128];
    snprintf(isa_buf, sizeof isa_buf, "%s", isa_list ? isa_list : "");
    const char *isas[8];
    int nisas = 0;
    for (char *tok = strtok(isa_buf, ","); tok && nisas < 8; tok = strtok(NULL, ","))
        isas[nisas++] = tok;
    if (!nisas)
        isas[nisas++] = NULL; /* the best this CPU has */

    blas_one_thread();
    size_t n = (size_t)rows * (size_t)cols;
    float *w = malloc(n * sizeof *w), *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y),
          *yref = malloc((size_t)rows * sizeof *yref), *dec = malloc(n * sizeof *dec);
    double *t_ref = malloc((size_t)reps * sizeof *t_ref), *t_mv = malloc((size_t)reps * sizeof *t_mv);
    if (!w || !x || !y || !yref || !dec || !t_ref || !t_mv) {
        fprintf(stderr, "bench_scalar: out of memory for a %ld x %ld matrix\n", rows, cols);
        return 1;
    }
    if (laplace)
        fill_laplace(w, n, 1, 0.02);
    else
        bench_fill_gauss(w, n, 1, 0.02);
    bench_fill_gauss(x, (size_t)cols, 2, 1.0);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "bench";
    v.ndim = 2;
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.data = w;

    if (!json)
        printf("%ld x %ld %s, one thread, %d repetitions (medians)\n%-30s %-8s %7s %8s %9s %11s %9s %9s %8s %8s\n", rows,
               cols, laplace ? "laplace" : "gauss", reps, "spec", "isa", "bpw", "rel_rmse", "compress_s", "decode_GB/s", "matvec_ms", "sgemv_ms",
               "speedup", "min_sp");
    for (int s = 0; s < nspecs; s++) {
        hc_compressor *c;
        hc_ctensor *ct;
        if (hc_compressor_from_spec(&c, specs[s]) != HC_OK || hc_compressor_set_threads(c, 1) != HC_OK ||
            hc_compress(&ct, c, &v) != HC_OK) {
            fprintf(stderr, "bench_scalar: %s: %s\n", specs[s], hc_last_error());
            return 1;
        }
        hc_ctensor_set_threads(ct, 1);
        hc_stats st = HC_STATS_INIT;
        hc_ctensor_stats(&st, ct);
        for (int k = 0; k < nisas; k++) {
            if (isas[k])
                setenv("HYPERCOMP_ISA", isas[k], 1);
            else
                unsetenv("HYPERCOMP_ISA");
            /* warm up both, then alternate */
            for (int i = 0; i < 3; i++) {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, yref, 1);
                hc_ctensor_matvec(ct, x, y);
            }
            for (int i = 0; i < reps; i++) {
                double t0 = bench_now();
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, yref, 1);
                double t1 = bench_now();
                hc_ctensor_matvec(ct, x, y);
                double t2 = bench_now();
                t_ref[i] = t1 - t0;
                t_mv[i] = t2 - t1;
            }
            double dt = 1e30;
            for (int i = 0; i < 5; i++) {
                double t0 = bench_now();
                hc_ctensor_decode(ct, HC_DTYPE_F32, dec, n * sizeof *dec);
                double t1 = bench_now();
                dt = t1 - t0 < dt ? t1 - t0 : dt;
            }
            double sgemv_ms = 1e3 * bench_median(t_ref, reps), mv_ms = 1e3 * bench_median(t_mv, reps);
            double min_ratio = t_ref[0] / t_mv[0]; /* both sorted by bench_median() */
            double gbps = (double)n * 4 / dt / 1e9;
            const char *isa = isas[k] ? isas[k] : "best";
            if (json)
                printf("{\"spec\":\"%s\",\"isa\":\"%s\",\"dist\":\"%s\",\"rows\":%ld,\"cols\":%ld,\"threads\":1,\"bpw\":%.4f,"
                       "\"rel_rmse\":%.5f,\"compress_s\":%.4f,\"decode_gbps\":%.3f,\"matvec_ms\":%.4f,"
                       "\"sgemv_ms\":%.4f,\"matvec_speedup\":%.3f,\"min_speedup\":%.3f}\n",
                       hc_compressor_spec(c), isa, laplace ? "laplace" : "gauss", rows, cols, st.bpw, st.rel_rmse, st.seconds, gbps, mv_ms,
                       sgemv_ms, sgemv_ms / mv_ms, min_ratio);
            else
                printf("%-30s %-8s %7.4f %8.5f %9.3f %11.2f %9.3f %9.3f %7.2fx %7.2fx\n", hc_compressor_spec(c), isa,
                       st.bpw, st.rel_rmse, st.seconds, gbps, mv_ms, sgemv_ms, sgemv_ms / mv_ms, min_ratio);
            fflush(stdout);
        }
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    free(w);
    free(x);
    free(y);
    free(yref);
    free(dec);
    free(t_ref);
    free(t_mv);
    return 0;
}
