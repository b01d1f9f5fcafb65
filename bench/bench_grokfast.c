/* Loss against iterations when the residual cascade's per-row stage gains are refined with
 * Adam, with and without the Grokfast filter (pipeline/gain.c), beside the exact optimum.
 *
 *   bench_grokfast [--raw FILE.f32 --rows R --cols C] [--stage SPEC]... [--iters N]
 *                  [--lr X]... [--importance] [--json FILE] [--csv FILE]
 *
 * Without --raw the tensor is synthetic: 512 x 512 Laplace values whose rows have scales spread
 * over a decade (so a per-tensor codec scale leaves room for per-row gains). --importance weights
 * columns with a synthetic diag(X^T X) in [0.1, 2]. Stages default to bf16, bf16. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "hypercomp/hypercomp.h"
#include "pipeline/pipeline_internal.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static int die(const char *what)
{
    fprintf(stderr, "bench_grokfast: %s: %s\n", what, hc_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *raw = NULL, *json = NULL, *csv = NULL, *stages[HC_PIPELINE_MAX_STAGES];
    uint32_t n_stages = 0, iters = 300, n_lr = 0;
    float lrs[8];
    int64_t rows = 512, cols = 512;
    int use_imp = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--raw") && v) raw = argv[++i];
        else if (!strcmp(a, "--rows") && v) rows = atoll(argv[++i]);
        else if (!strcmp(a, "--cols") && v) cols = atoll(argv[++i]);
        else if (!strcmp(a, "--stage") && v && n_stages < HC_PIPELINE_MAX_STAGES) stages[n_stages++] = argv[++i];
        else if (!strcmp(a, "--iters") && v) iters = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--lr") && v && n_lr < 8) lrs[n_lr++] = (float)atof(argv[++i]);
        else if (!strcmp(a, "--importance")) use_imp = 1;
        else if (!strcmp(a, "--json") && v) json = argv[++i];
        else if (!strcmp(a, "--csv") && v) csv = argv[++i];
        else {
            fprintf(stderr, "usage: bench_grokfast [--raw FILE --rows R --cols C] [--stage SPEC]... [--iters N] "
                            "[--lr X]... [--importance] [--json FILE] [--csv FILE]\n");
            return 2;
        }
    }
    if (n_stages == 0) {
        stages[0] = stages[1] = "bf16";
        n_stages = 2;
    }
    if (n_lr == 0) {
        lrs[0] = 1e-3f;
        lrs[1] = 1e-2f;
        n_lr = 2;
    }
    if (rows < 1 || cols < 1 || iters < 1 || iters > 100000)
        return fprintf(stderr, "bench_grokfast: bad --rows/--cols/--iters\n"), 2;
    size_t n = (size_t)rows * (size_t)cols;
    float *w = malloc(n * sizeof *w), *imp = malloc((size_t)cols * sizeof *imp);
    if (!w || !imp)
        return fprintf(stderr, "bench_grokfast: out of memory\n"), 1;
    uint64_t seed = 42;
    if (raw) {
        FILE *f = fopen(raw, "rb");
        if (!f || fread(w, sizeof *w, n, f) != n)
            return fprintf(stderr, "bench_grokfast: cannot read %zu floats from %s\n", n, raw), 1;
        fclose(f);
    } else {
        for (int64_t r = 0; r < rows; r++) {
            double scale = pow(10.0, uniform(&seed) - 0.5) * 0.02;
            for (int64_t c = 0; c < cols; c++) {
                double u = uniform(&seed) - 0.5, a = 1.0 - 2.0 * fabs(u);
                w[r * cols + c] = (float)(scale * (u < 0 ? 1 : -1) * log(a > 1e-300 ? a : 1e-300));
            }
        }
    }
    for (int64_t c = 0; c < cols; c++)
        imp[c] = use_imp ? (float)(0.1 + 1.9 * uniform(&seed)) : 1.0f;

    /* the cascade: each stage codes what the earlier ones left */
    float *dec[HC_PIPELINE_MAX_STAGES], *resid = malloc(n * sizeof *resid);
    memcpy(resid, w, n * sizeof *w);
    uint64_t bits = 0;
    for (uint32_t s = 0; s < n_stages; s++) {
        hc_compressor *c;
        hc_ctensor *ct;
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        v.name = "bench";
        v.ndim = 2;
        v.shape[0] = rows;
        v.shape[1] = cols;
        v.data = resid;
        if (hc_compressor_from_spec(&c, stages[s]) != HC_OK)
            return die(stages[s]);
        if (hc_compress(&ct, c, &v) != HC_OK)
            return die("compress");
        dec[s] = malloc(n * sizeof(float));
        if (hc_ctensor_decode(ct, HC_DTYPE_F32, dec[s], n * sizeof(float)) != HC_OK)
            return die("decode");
        bits += 8u * hc_ctensor_serialized_size(ct);
        for (size_t i = 0; i < n; i++)
            resid[i] -= dec[s][i];
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    hci_gain_problem gp;
    if (hci_gain_problem_init(&gp, w, (const float *const *)dec, n_stages, rows, cols, imp) != HC_OK)
        return die("gain problem");
    size_t ng = (size_t)n_stages * (size_t)rows;
    float *g = malloc(ng * sizeof *g);
    hci_gain_optimum(&gp, g);
    double optimum = hci_gain_loss(&gp, g);
    double *trace = malloc((size_t)(iters + 1) * n_lr * 2 * sizeof *trace);
    double secs[16];
    for (uint32_t k = 0; k < n_lr; k++)
        for (uint32_t filter = 0; filter < 2; filter++) {
            for (size_t i = 0; i < ng; i++)
                g[i] = 1.0f;
            double t0 = bench_now();
            if (hci_gain_refine(&gp, g, iters, lrs[k], filter, trace + (size_t)(2 * k + filter) * (iters + 1)) != HC_OK)
                return die("refine");
            secs[2 * k + filter] = bench_now() - t0;
        }

    char stage_list[512] = "";
    for (uint32_t s = 0; s < n_stages; s++)
        snprintf(stage_list + strlen(stage_list), sizeof stage_list - strlen(stage_list), "%s\"%s\"", s ? ", " : "",
                 stages[s]);
    FILE *out = json ? fopen(json, "w") : stdout;
    if (!out)
        return fprintf(stderr, "bench_grokfast: cannot write %s\n", json), 1;
    fprintf(out, "{\n  \"bench\": \"grokfast_gain_refinement\",\n  \"data\": \"%s\",\n  \"rows\": %lld,\n  \"cols\": %lld,\n",
            raw ? raw : "synthetic-laplace-row-scaled", (long long)rows, (long long)cols);
    fprintf(out, "  \"stages\": [%s],\n  \"cascade_bpw\": %.4f,\n  \"importance\": %s,\n  \"iters\": %u,\n", stage_list,
            (double)bits / (double)n, use_imp ? "true" : "false", iters);
    fprintf(out, "  \"loss_note\": \"importance-weighted squared error / weighted energy; gains start at 1\",\n");
    fprintf(out, "  \"optimum_loss\": %.9g,\n  \"runs\": [\n", optimum);
    for (uint32_t k = 0; k < n_lr; k++)
        for (uint32_t filter = 0; filter < 2; filter++) {
            const double *t = trace + (size_t)(2 * k + filter) * (iters + 1);
            fprintf(out, "    {\"lr\": %g, \"grokfast\": %s, \"alpha\": 0.98, \"lambda\": 2.0, \"seconds\": %.4f, \"loss\": [",
                    (double)lrs[k], filter ? "true" : "false", secs[2 * k + filter]);
            for (uint32_t it = 0; it <= iters; it++)
                fprintf(out, "%s%.9g", it ? ", " : "", t[it]);
            fprintf(out, "]}%s\n", k + 1 == n_lr && filter == 1 ? "" : ",");
        }
    fprintf(out, "  ]\n}\n");
    if (json)
        fclose(out);
    if (csv) {
        FILE *c = fopen(csv, "w");
        if (!c)
            return fprintf(stderr, "bench_grokfast: cannot write %s\n", csv), 1;
        fprintf(c, "iter");
        for (uint32_t k = 0; k < n_lr; k++)
            fprintf(c, ",adam_lr%g,grokfast_lr%g", (double)lrs[k], (double)lrs[k]);
        fprintf(c, ",optimum\n");
        for (uint32_t it = 0; it <= iters; it++) {
            fprintf(c, "%u", it);
            for (uint32_t r = 0; r < 2 * n_lr; r++)
                fprintf(c, ",%.9g", trace[(size_t)r * (iters + 1) + it]);
            fprintf(c, ",%.9g\n", optimum);
        }
        fclose(c);
    }
    /* a one-line summary on stderr for people reading the terminal */
    for (uint32_t k = 0; k < n_lr; k++)
        for (uint32_t filter = 0; filter < 2; filter++) {
            const double *t = trace + (size_t)(2 * k + filter) * (iters + 1);
            fprintf(stderr, "lr %-6g %-8s loss %.6g -> %.6g after %u (at 10%%: %.6g; optimum %.6g)\n", (double)lrs[k],
                    filter ? "grokfast" : "adam", t[0], t[iters], iters, t[iters / 10], optimum);
        }
    hci_gain_problem_free(&gp);
    for (uint32_t s = 0; s < n_stages; s++)
        free(dec[s]);
    free(trace);
    free(g);
    free(resid);
    free(w);
    free(imp);
    return 0;
}
