/* Trajectory compressors: bits per weight against relative RMS error on Gaussian data, smooth
 * signals and the ppocr-rec weights, beside the Gaussian bound 2^-bpw and scalar codecs, and the
 * matvec speed against OpenBLAS sgemv on the fp32 matrix (same thread count, same run).
 *
 *   bench_hyper [--data ppocr-rec.safetensors] [--json out.json] [--threads N] [--skip-real]
 *
 * The scalar rows marked "(reference)" are computed here from their definitions (INT8: symmetric
 * per row, absmax scale; NF4: QLoRA levels, blocks of 64, 4.127 bpw as with double-quantised
 * absmax) until those codecs land in the library. */
#include <cblas.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "hypercomp/hypercomp.h"

#ifdef HC_BLAS_OPENBLAS
void openblas_set_num_threads(int);
#endif

#define PI 3.14159265358979323846

typedef struct mat {
    char name[128];
    float *w;
    int64_t rows, cols;
} mat;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static double gauss(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * PI * v);
}

/* ---- scalar references ---- */

static void ref_int8(const mat *m, float *out, double *bits)
{
    for (int64_t r = 0; r < m->rows; r++) {
        const float *w = m->w + r * m->cols;
        float amax = 0;
        for (int64_t i = 0; i < m->cols; i++)
            amax = fmaxf(amax, fabsf(w[i]));
        float s = amax > 0 ? amax / 127 : 1;
        for (int64_t i = 0; i < m->cols; i++)
            out[r * m->cols + i] = s * nearbyintf(w[i] / s);
    }
    *bits = 8.0 * (double)(m->rows * m->cols) + 32.0 * (double)m->rows;
}

static const float nf4_levels[16] = { -1.0f, -0.6961928f, -0.5250731f, -0.3949175f, -0.2844414f, -0.1847734f,
                                      -0.0910500f, 0.0f, 0.0795803f, 0.1609302f, 0.2461123f, 0.3379152f,
                                      0.4407098f, 0.5626170f, 0.7229568f, 1.0f };

static void ref_nf4(const mat *m, float *out, double *bits)
{
    int64_t n = m->rows * m->cols;
    for (int64_t b = 0; b < n; b += 64) {
        int64_t e = b + 64 < n ? b + 64 : n;
        float amax = 0;
        for (int64_t i = b; i < e; i++)
            amax = fmaxf(amax, fabsf(m->w[i]));
        for (int64_t i = b; i < e; i++) {
            float v = amax > 0 ? m->w[i] / amax : 0, best = nf4_levels[0];
            for (int k = 1; k < 16; k++)
                if (fabsf(nf4_levels[k] - v) < fabsf(best - v))
                    best = nf4_levels[k];
            out[i] = best * amax;
        }
    }
    *bits = 4.127 * (double)n;
}

/* ---- one row of results ---- */

typedef struct acc {
    double bits, n, err, ref, seconds;
} acc;

static void add_err(acc *a, const float *w, const float *d, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        a->err += ((double)w[i] - d[i]) * ((double)w[i] - d[i]);
        a->ref += (double)w[i] * w[i];
    }
    a->n += (double)n;
}

/* Compresses every matrix with spec (or a reference scalar) and accumulates bits and error. */
static int measure(const char *spec, const mat *ms, size_t nm, uint32_t threads, acc *out)
{
    memset(out, 0, sizeof *out);
    hc_compressor *c = NULL;
    int ref = strncmp(spec, "ref-", 4) == 0;
    if (!ref) {
        if (hc_compressor_from_spec(&c, spec) != HC_OK || hc_compressor_set_threads(c, threads) != HC_OK) {
            fprintf(stderr, "bench_hyper: %s: %s\n", spec, hc_last_error());
            return 1;
        }
    }
    for (size_t i = 0; i < nm; i++) {
        const mat *m = &ms[i];
        int64_t n = m->rows * m->cols;
        float *dec = malloc(sizeof(float) * (size_t)n);
        if (!dec)
            return 1;
        double t0 = bench_now(), bits;
        if (ref) {
            if (strcmp(spec, "ref-int8") == 0)
                ref_int8(m, dec, &bits);
            else
                ref_nf4(m, dec, &bits);
        } else {
            hc_tensor_view v = { sizeof v, m->name, HC_DTYPE_F32, 2, { m->rows, m->cols, 0, 0 }, m->w, NULL, NULL };
            hc_ctensor *ct;
            if (hc_compress(&ct, c, &v) != HC_OK ||
                hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof(float) * (size_t)n) != HC_OK) {
                fprintf(stderr, "bench_hyper: %s on %s: %s\n", spec, m->name, hc_last_error());
                return 1;
            }
            hc_stats s = HC_STATS_INIT;
            hc_ctensor_stats(&s, ct);
            bits = (double)s.bits;
            hc_ctensor_free(ct);
        }
        out->seconds += bench_now() - t0;
        out->bits += bits;
        add_err(out, m->w, dec, n);
        free(dec);
    }
    hc_compressor_free(c);
    return 0;
}

static int run_table(const char *title, const char *const *specs, size_t ns, const mat *ms, size_t nm, uint32_t threads,
                     json_object *jroot)
{
    printf("\n## %s\n\n| codec | bpw | rel. RMS | Gaussian bound 2^-bpw | compress s |\n|---|---|---|---|---|\n", title);
    json_object *jarr = json_object_new_array();
    for (size_t i = 0; i < ns; i++) {
        acc a;
        if (measure(specs[i], ms, nm, threads, &a))
            return 1;
        double bpw = a.bits / a.n, rel = sqrt(a.err / a.ref);
        printf("| %s | %.3f | %.3g | %.3g | %.2f |\n", specs[i], bpw, rel, pow(2, -bpw), a.seconds);
        fflush(stdout);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "codec", json_object_new_string(specs[i]));
        json_object_object_add(j, "bpw", json_object_new_double(bpw));
        json_object_object_add(j, "rel_rmse", json_object_new_double(rel));
        json_object_object_add(j, "gaussian_bound", json_object_new_double(pow(2, -bpw)));
        json_object_object_add(j, "compress_seconds", json_object_new_double(a.seconds));
        json_object_array_add(jarr, j);
    }
    json_object_object_add(jroot, title, jarr);
    return 0;
}

/* ---- data ---- */

static mat gaussian(int64_t rows, int64_t cols)
{
    mat m = { "gaussian", malloc(sizeof(float) * (size_t)(rows * cols)), rows, cols };
    for (int64_t i = 0; i < rows * cols; i++)
        m.w[i] = (float)gauss();
    return m;
}

/* Sinusoidal position table (positions x dims, as stored by transformers) and its transpose,
 * where each row is one frequency along the positions. */
static mat position_table(int64_t pos, int64_t dims, int transpose)
{
    mat m = { "", malloc(sizeof(float) * (size_t)(pos * dims)), transpose ? dims : pos, transpose ? pos : dims };
    snprintf(m.name, sizeof m.name, "sinusoidal-%s", transpose ? "dims-major" : "pos-major");
    for (int64_t p = 0; p < pos; p++)
        for (int64_t d = 0; d < dims; d++) {
            double f = pow(10000.0, -(double)(d / 2 * 2) / (double)dims);
            double v = d % 2 ? cos(p * f) : sin(p * f);
            int64_t idx = transpose ? d * pos + p : p * dims + d;
            m.w[idx] = (float)v;
        }
    return m;
}

/* State-space decay table: row r holds exp(-t / tau_r), tau_r log-spaced from 4 to 4000. */
static mat decays(int64_t rows, int64_t cols)
{
    mat m = { "decays", malloc(sizeof(float) * (size_t)(rows * cols)), rows, cols };
    for (int64_t r = 0; r < rows; r++) {
        double tau = 4.0 * pow(1000.0, (double)r / (double)(rows - 1));
        for (int64_t t = 0; t < cols; t++)
            m.w[r * cols + t] = (float)exp(-(double)t / tau);
    }
    return m;
}

/* Every F32 tensor of at least 4096 values in a safetensors file, as rows x (the rest). */
static size_t load_safetensors(const char *path, mat **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t h8[8];
    if (fread(h8, 1, 8, f) != 8) {
        fclose(f);
        return 0;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)h8[i] << (8 * i);
    char *hdr = malloc(hl + 1);
    if (!hdr || fread(hdr, 1, hl, f) != hl) {
        free(hdr);
        fclose(f);
        return 0;
    }
    hdr[hl] = 0;
    json_object *root = json_tokener_parse(hdr);
    free(hdr);
    size_t n = 0, cap = 0;
    mat *ms = NULL;
    json_object_object_foreach(root, key, val)
    {
        json_object *dt, *shape, *offs;
        if (strcmp(key, "__metadata__") == 0 || !json_object_object_get_ex(val, "dtype", &dt) ||
            strcmp(json_object_get_string(dt), "F32") != 0 || !json_object_object_get_ex(val, "shape", &shape) ||
            !json_object_object_get_ex(val, "data_offsets", &offs))
            continue;
        int64_t numel = 1, rows = 1;
        size_t nd = json_object_array_length(shape);
        for (size_t d = 0; d < nd; d++) {
            int64_t e = json_object_get_int64(json_object_array_get_idx(shape, d));
            numel *= e;
            if (d == 0)
                rows = e;
        }
        if (numel < 4096)
            continue;
        int64_t b = json_object_get_int64(json_object_array_get_idx(offs, 0));
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            ms = realloc(ms, cap * sizeof *ms);
        }
        mat *m = &ms[n++];
        snprintf(m->name, sizeof m->name, "%s", key);
        m->rows = rows;
        m->cols = numel / rows;
        m->w = malloc(sizeof(float) * (size_t)numel);
        if (fseek(f, (long)(8 + hl + (uint64_t)b), SEEK_SET) != 0 || fread(m->w, 4, (size_t)numel, f) != (size_t)numel)
            n--;
    }
    json_object_put(root);
    fclose(f);
    *out = ms;
    return n;
}

/* ---- matvec speed ---- */

static int matvec_speed(const char *const *specs, size_t ns, uint32_t threads, json_object *jroot)
{
    const int64_t n = 1024;
    mat m = gaussian(n, n);
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)gauss();
#ifdef HC_BLAS_OPENBLAS
    openblas_set_num_threads((int)threads);
#endif
    double t0 = bench_now();
    int reps = 0;
    while (bench_now() - t0 < 0.5 || reps < 5) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0f, m.w, (int)n, x, 1, 0.0f, y, 1);
        reps++;
    }
    double t_blas = (bench_now() - t0) / reps;
    printf("\n## matvec %lldx%lld, %u thread(s): time relative to OpenBLAS sgemv on fp32 (%.1f us)\n\n"
           "| codec | time / sgemv |\n|---|---|\n",
           (long long)n, (long long)n, threads, 1e6 * t_blas);
    json_object *jarr = json_object_new_array();
    for (size_t i = 0; i < ns; i++) {
        hc_compressor *c;
        hc_ctensor *ct;
        hc_tensor_view v = { sizeof v, "g", HC_DTYPE_F32, 2, { n, n, 0, 0 }, m.w, NULL, NULL };
        if (hc_compressor_from_spec(&c, specs[i]) || hc_compress(&ct, c, &v) || hc_ctensor_set_threads(ct, threads)) {
            fprintf(stderr, "bench_hyper: %s: %s\n", specs[i], hc_last_error());
            return 1;
        }
        t0 = bench_now();
        reps = 0;
        while (bench_now() - t0 < 0.5 || reps < 3) {
            hc_ctensor_matvec(ct, x, y);
            reps++;
        }
        double t = (bench_now() - t0) / reps;
        printf("| %s | %.2fx |\n", specs[i], t / t_blas);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "codec", json_object_new_string(specs[i]));
        json_object_object_add(j, "ratio_vs_sgemv", json_object_new_double(t / t_blas));
        json_object_array_add(jarr, j);
        hc_ctensor_free(ct);
        hc_compressor_free(c);
    }
    json_object_object_add(jroot, "matvec", jarr);
    free(m.w);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data/ppocr-rec.safetensors", *json_path = NULL;
    uint32_t threads = 1;
    int skip_real = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--skip-real") == 0)
            skip_real = 1;
        else {
            fprintf(stderr, "usage: bench_hyper [--data FILE] [--json OUT] [--threads N] [--skip-real]\n");
            return 2;
        }
    }
    json_object *jroot = json_object_new_object();
    static const char *const gauss_specs[] = {
        "fp16", "bf16", "ref-int8", "ref-nf4", "hyper:poly", "hyper:poly,L=16,d=3,q=8", "hyper:fourier",
        "hyper:ergodic,n=2,bits=8", "hyper:ergodic,n=2,bits=10", "hyper:ergodic,n=2,bits=13,slope=paper,spacing=uniform",
        "hyper:ergodic,n=2,bits=13", "hyper:ergodic,n=4,bits=16", "hyper:ergodic", "hyper:ergodic,n=4,bits=26,rings=7",
    };
    static const char *const smooth_specs[] = {
        "fp16", "bf16", "ref-int8", "hyper:poly,L=64,d=15,q=32", "hyper:poly,L=64,d=15,q=16", "hyper:poly,L=64,d=7,q=12",
        "hyper:poly", "hyper:fourier,L=64,d=16,q=32", "hyper:fourier,L=64,d=16,q=16", "hyper:fourier", "hyper:ergodic",
    };
    static const char *const real_specs[] = {
        "fp16", "bf16", "ref-int8", "ref-nf4", "hyper:poly", "hyper:fourier", "hyper:poly,L=16,d=7,q=8",
        "hyper:ergodic,n=2,bits=13,slope=paper,spacing=uniform", "hyper:ergodic,n=2,bits=13", "hyper:ergodic,n=3,bits=19",
        "hyper:ergodic", "hyper:ergodic,n=4,bits=26,rings=7",
    };
    static const char *const speed_specs[] = { "fp16", "hyper:poly", "hyper:fourier", "hyper:poly,L=64,d=15,q=32",
                                               "hyper:ergodic,n=2,bits=13", "hyper:ergodic" };
#define N(a) (sizeof a / sizeof a[0])
    mat g = gaussian(512, 512);
    if (run_table("gaussian 512x512", gauss_specs, N(gauss_specs), &g, 1, threads, jroot))
        return 1;
    free(g.w);
    mat sm[3] = { position_table(512, 256, 0), position_table(512, 256, 1), decays(256, 512) };
    for (int i = 0; i < 3; i++) {
        char title[768];
        snprintf(title, sizeof title, "smooth: %s %lldx%lld", sm[i].name, (long long)sm[i].rows, (long long)sm[i].cols);
        if (run_table(title, smooth_specs, N(smooth_specs), &sm[i], 1, threads, jroot))
            return 1;
        free(sm[i].w);
    }
    if (!skip_real) {
        mat *ms = NULL;
        size_t nm = load_safetensors(data, &ms);
        if (nm == 0) {
            fprintf(stderr, "bench_hyper: cannot read F32 tensors from %s (use --data or --skip-real)\n", data);
            return 1;
        }
        double nw = 0;
        for (size_t i = 0; i < nm; i++)
            nw += (double)(ms[i].rows * ms[i].cols);
        char title[160];
        snprintf(title, sizeof title, "ppocr-rec: %zu tensors of >= 4096 values, %.0f weights", nm, nw);
        if (run_table(title, real_specs, N(real_specs), ms, nm, threads, jroot))
            return 1;
        for (size_t i = 0; i < nm; i++)
            free(ms[i].w);
        free(ms);
    }
    if (matvec_speed(speed_specs, N(speed_specs), threads, jroot))
        return 1;
    if (json_path && json_object_to_file_ext(json_path, jroot, JSON_C_TO_STRING_PRETTY) != 0) {
        fprintf(stderr, "bench_hyper: cannot write %s\n", json_path);
        return 1;
    }
    json_object_put(jroot);
    return 0;
}
