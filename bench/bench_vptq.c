/* VPTQ benchmark: compression time of a Gaussian 4096 x 4096 matrix per preset, fused matvec
 * against OpenBLAS sgemv on the fp32 matrix (one thread each), bpw and rel_rmse on Gaussian data
 * and on a safetensors model beside the Gaussian bound 2^-bpw, and centroid refinement loss
 * against iterations with and without the Grokfast filter. Writes JSON to stdout.
 *
 *   bench_vptq [--model PATH] [--size N] [--threads T] [--presets 2bit,3bit,4bit] [--skip-gaussian]
 *              [--spec SPEC] [--matvec-only] [--reps N] [--cache FILE] [--clock wall|cpu]
 *
 * --spec replaces the presets by one explicit codec spec (e.g. "vptq:bpw=0,v=6,k=4096,residual=0,
 * scale=none,train=32768" compresses in seconds); --matvec-only skips the model and refinement
 * cases; --cache FILE stores the compressed tensor on the first run and reads it back on later
 * ones (delete it when the spec or the codec changes), so a kernel change is measured in seconds.
 */
#include <cblas.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "hypercomp/hypercomp.h"
#include "codec.h"
#include "vptq/encode.h"
#include "vptq/vptq.h"

#ifdef HC_BLAS_OPENBLAS
void openblas_set_num_threads(int n);
#endif

/* --clock cpu: matvec times in the calling thread's CPU time, which leaves out the time the
 * thread waits while other jobs hold the core (one-thread runs only: both kernels run in it). */
static int cpu_clock;

static double matvec_now(void)
{
    if (!cpu_clock)
        return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 12345;
static double gauss(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u1 = ((double)(z >> 11) + 0.5) * 0x1.0p-53;
    z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u2 = (double)(z >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_vptq: %s: %s\n", what, hc_last_error());
    exit(1);
}

/* Median seconds of `reps` calls of a matvec: the tensor's (forced to one strategy unless
 * HCI_VQ_AUTO), or sgemv on w when ct is NULL. */
static double time_matvec_as(const hc_ctensor *ct, hci_vq_strategy how, const float *w, int64_t rows, int64_t cols,
                             const float *x, float *y, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int i = 0; i < reps; i++) {
        double t0 = matvec_now();
        if (ct && how != HCI_VQ_AUTO) {
            if (hci_vq_matvec_with(ct->state, x, y, 0, rows, hci_cpu_isa(), how) != HC_OK)
                die("matvec");
        } else if (ct) {
            if (hc_ctensor_matvec(ct, x, y) != HC_OK)
                die("matvec");
        } else {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, w, (int)cols, x, 1, 0.0f, y, 1);
        }
        t[i] = matvec_now() - t0;
    }
    double m = bench_median(t, reps);
    free(t);
    return m;
}

static double time_matvec(const hc_ctensor *ct, const float *w, int64_t rows, int64_t cols, const float *x, float *y,
                          int reps)
{
    return time_matvec_as(ct, HCI_VQ_AUTO, w, rows, cols, x, y, reps);
}

static int matvec_reps = 21;

/* Median wall time of 5 decodes of the whole tensor (numel values) to fp32, at the tensor's
 * thread count, after one warm-up that also faults the buffer in. */
static double time_decode(const hc_ctensor *ct, int64_t numel)
{
    float *out = malloc(sizeof(float) * (size_t)numel);
    double t[5];
    if (!out || hc_ctensor_decode(ct, HC_DTYPE_F32, out, sizeof(float) * (size_t)numel) != HC_OK)
        die("decode");
    for (int i = 0; i < 5; i++) {
        double t0 = bench_now();
        if (hc_ctensor_decode(ct, HC_DTYPE_F32, out, sizeof(float) * (size_t)numel) != HC_OK)
            die("decode");
        t[i] = bench_now() - t0;
    }
    free(out);
    return bench_median(t, 5);
}

static const char *cache_path; /* --cache: a serialised tensor reused across runs of the same case */

/* The cached tensor of an earlier run, or NULL. */
static hc_ctensor *cache_load(void)
{
    FILE *f = cache_path ? fopen(cache_path, "rb") : NULL;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)size);
    hc_ctensor *ct = NULL;
    if (fread(buf, 1, (size_t)size, f) == (size_t)size && hc_ctensor_deserialize(&ct, buf, (size_t)size) != HC_OK)
        ct = NULL;
    fclose(f);
    free(buf);
    return ct;
}

static void cache_store(const hc_ctensor *ct)
{
    FILE *f = cache_path ? fopen(cache_path, "wb") : NULL;
    if (!f)
        return;
    size_t size = hc_ctensor_serialized_size(ct);
    void *buf = malloc(size);
    if (hc_ctensor_serialize(ct, buf, size) == HC_OK)
        fwrite(buf, 1, size, f);
    fclose(f);
    free(buf);
}

static json_object *gaussian_case(const char *preset, int64_t n, uint32_t threads)
{
    float *w = malloc(sizeof(float) * (size_t)(n * n));
    rng_state = 12345;
    for (int64_t i = 0; i < n * n; i++)
        w[i] = (float)gauss();
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = "gaussian";
    v.ndim = 2;
    v.shape[0] = v.shape[1] = n;
    v.data = w;
    char spec[512];
    int len = strncmp(preset, "vptq:", 5) == 0 ? snprintf(spec, sizeof spec, "%s,threads=%u", preset, threads)
                                                : snprintf(spec, sizeof spec, "vptq:%s,threads=%u", preset, threads);
    if (len < 0 || (size_t)len >= sizeof spec) {
        fprintf(stderr, "bench_vptq: spec '%s' is too long (at most %zu characters)\n", preset, sizeof spec - 20);
        exit(2);
    }
    hc_compressor *c;
    if (hc_compressor_from_spec(&c, spec) != HC_OK)
        die(spec);
    double t0 = bench_now(), secs = 0;
    hc_ctensor *ct = cache_load();
    hc_stats s = HC_STATS_INIT;
    if (ct) {
        if (hc_ctensor_measure(&s, ct, &v) != HC_OK)
            die("measure");
        fprintf(stderr, "(tensor read from %s; compress time not measured)\n", cache_path);
    } else {
        if (hc_compress(&ct, c, &v) != HC_OK)
            die("compress");
        secs = bench_now() - t0;
        cache_store(ct);
        hc_ctensor_stats(&s, ct);
    }

    /* one thread each: the fused kernel against sgemv on the fp32 matrix */
    hc_ctensor_set_threads(ct, 1);
#ifdef HC_BLAS_OPENBLAS
    openblas_set_num_threads(1);
#endif
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)gauss();
    time_matvec(NULL, w, n, n, x, y, 3);
    double t_sgemv = time_matvec(NULL, w, n, n, x, y, matvec_reps);
    double t_vq = time_matvec(ct, w, n, n, x, y, matvec_reps);
    /* each kernel strategy forced, and what the chooser picks for the main stage of part 0
     * over all rows (one thread) */
    double t_lut = time_matvec_as(ct, HCI_VQ_LUT, w, n, n, x, y, matvec_reps);
    double t_gather = time_matvec_as(ct, HCI_VQ_GATHER, w, n, n, x, y, matvec_reps);
    const char *chosen = hci_vq_choose(ct->state, 0, 0, n, hci_cpu_isa()) == HCI_VQ_GATHER ? "gather" : "lut";
    double t_decode = time_decode(ct, n * n);

    json_object *o = json_object_new_object();
    json_object_object_add(o, "preset", json_object_new_string(preset));
    json_object_object_add(o, "spec", json_object_new_string(hc_compressor_spec(c)));
    json_object_object_add(o, "rows", json_object_new_int64(n));
    json_object_object_add(o, "cols", json_object_new_int64(n));
    json_object_object_add(o, "threads", json_object_new_int((int)threads));
    json_object_object_add(o, "compress_seconds", json_object_new_double(secs));
    json_object_object_add(o, "bpw", json_object_new_double(s.bpw));
    json_object_object_add(o, "rel_rmse", json_object_new_double(s.rel_rmse));
    json_object_object_add(o, "gaussian_bound", json_object_new_double(pow(2.0, -s.bpw)));
    json_object_object_add(o, "matvec_ms", json_object_new_double(1e3 * t_vq));
    json_object_object_add(o, "sgemv_ms", json_object_new_double(1e3 * t_sgemv));
    json_object_object_add(o, "speedup_vs_sgemv", json_object_new_double(t_sgemv / t_vq));
    json_object_object_add(o, "matvec_kernel", json_object_new_string(chosen));
    json_object_object_add(o, "matvec_lut_ms", json_object_new_double(1e3 * t_lut));
    json_object_object_add(o, "matvec_gather_ms", json_object_new_double(1e3 * t_gather));
    json_object_object_add(o, "decode_threads1_ms", json_object_new_double(1e3 * t_decode));
    fprintf(stderr, "gaussian %s: %.1f s, %.4f bpw, rel_rmse %.4f, matvec %.3f ms vs sgemv %.3f ms (%.2fx); "
            "kernel %s (lut %.3f ms, gather %.3f ms); decode %.1f ms\n", preset, secs, s.bpw, s.rel_rmse, 1e3 * t_vq,
            1e3 * t_sgemv, t_sgemv / t_vq, chosen, 1e3 * t_lut, 1e3 * t_gather, 1e3 * t_decode);
    hc_ctensor_free(ct);
    hc_compressor_free(c);
    free(w);
    free(x);
    free(y);
    return o;
}

/* ---- a minimal safetensors reader (F32 only), enough for the bench ---- */

typedef struct model {
    char *blob;
    size_t size;
    json_object *header;
    size_t data_off;
} model;

static int model_open(model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    m->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    m->blob = malloc(m->size);
    if (fread(m->blob, 1, m->size, f) != m->size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    uint64_t hl = 0;
    memcpy(&hl, m->blob, 8);
    char *h = malloc(hl + 1);
    memcpy(h, m->blob + 8, hl);
    h[hl] = 0;
    m->header = json_tokener_parse(h);
    free(h);
    m->data_off = 8 + hl;
    return m->header ? 0 : -1;
}

static json_object *model_case(const char *preset, const char *path, uint32_t threads)
{
    model m;
    if (model_open(&m, path) != 0) {
        fprintf(stderr, "bench_vptq: cannot read %s\n", path);
        exit(1);
    }
    char spec[512];
    int len = snprintf(spec, sizeof spec, "vptq:%s,threads=%u", preset, threads);
    if (len < 0 || (size_t)len >= sizeof spec) {
        fprintf(stderr, "bench_vptq: spec '%s' is too long (at most %zu characters)\n", preset, sizeof spec - 20);
        exit(2);
    }
    hc_compressor *c;
    if (hc_compressor_from_spec(&c, spec) != HC_OK)
        die(spec);
    double err = 0, ref = 0, bits = 0, n = 0, t0 = bench_now();
    int count = 0;
    json_object_object_foreach(m.header, name, desc)
    {
        json_object *dt, *shape, *offs;
        if (!json_object_object_get_ex(desc, "dtype", &dt) || strcmp(json_object_get_string(dt), "F32") != 0)
            continue;
        json_object_object_get_ex(desc, "shape", &shape);
        json_object_object_get_ex(desc, "data_offsets", &offs);
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        v.name = name;
        v.ndim = (uint32_t)json_object_array_length(shape);
        int64_t numel = 1;
        for (uint32_t i = 0; i < v.ndim; i++) {
            v.shape[i] = json_object_get_int64(json_object_array_get_idx(shape, i));
            numel *= v.shape[i];
        }
        if (numel < 4096)
            continue;
        size_t off = (size_t)json_object_get_int64(json_object_array_get_idx(offs, 0));
        float *d = malloc(sizeof(float) * (size_t)numel);
        memcpy(d, m.blob + m.data_off + off, sizeof(float) * (size_t)numel);
        v.data = d;
        hc_ctensor *ct;
        if (hc_compress(&ct, c, &v) != HC_OK)
            die(name);
        hc_stats s = HC_STATS_INIT;
        hc_ctensor_stats(&s, ct);
        double n2 = 0;
        for (int64_t i = 0; i < numel; i++)
            n2 += (double)d[i] * d[i];
        err += s.rel_rmse * s.rel_rmse * n2;
        ref += n2;
        bits += (double)s.bits;
        n += (double)numel;
        count++;
        hc_ctensor_free(ct);
        free(d);
    }
    double secs = bench_now() - t0;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "preset", json_object_new_string(preset));
    json_object_object_add(o, "spec", json_object_new_string(hc_compressor_spec(c)));
    json_object_object_add(o, "model", json_object_new_string(path));
    json_object_object_add(o, "tensors", json_object_new_int(count));
    json_object_object_add(o, "weights", json_object_new_int64((int64_t)n));
    json_object_object_add(o, "bpw", json_object_new_double(bits / n));
    json_object_object_add(o, "rel_rmse", json_object_new_double(sqrt(err / ref)));
    json_object_object_add(o, "gaussian_bound", json_object_new_double(pow(2.0, -bits / n)));
    json_object_object_add(o, "compress_seconds", json_object_new_double(secs));
    fprintf(stderr, "model %s: %d tensors, %.4f bpw, rel_rmse %.4f (bound %.4f), %.1f s\n", preset, count, bits / n,
            sqrt(err / ref), pow(2.0, -bits / n), secs);
    hc_compressor_free(c);
    json_object_put(m.header);
    free(m.blob);
    return o;
}

/* ---- refinement: loss against Adam steps, with and without the Grokfast filter ---- */

static json_object *refine_case(uint32_t steps)
{
    const int64_t rows = 256, cols = 128, nx = 1024;
    float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * nx * cols);
    float *h = calloc((size_t)(cols * cols), sizeof(float));
    rng_state = 777;
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)gauss();
    for (int64_t i = 0; i < nx; i++)
        for (int64_t c = 0; c < cols; c++)
            x[i * cols + c] = (float)(gauss() * (1.0 + (double)(c % 7)) + (c ? 0.8 * x[i * cols + c - 1] : 0.0));
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)nx, 1.0f / (float)nx, x, (int)cols, 0.0f, h,
                (int)cols);
    for (int64_t a = 0; a < cols; a++)
        for (int64_t b = 0; b < a; b++)
            h[a * cols + b] = h[b * cols + a];
    hci_matrix m = { "refine", w, rows, cols, rows * cols, NULL, h };
    hci_vq_scales sc;
    memset(&sc, 0, sizeof sc);
    uint32_t *colmap = malloc(sizeof(uint32_t) * cols);
    for (int64_t c = 0; c < cols; c++)
        colmap[c] = (uint32_t)c;
    hci_vq_part_cfg pc = { 4, { 8, 0 }, 0, 0 };
    hc_vptq_options o = HC_VPTQ_OPTIONS_INIT;
    json_object *res = json_object_new_object();
    json_object_object_add(res, "rows", json_object_new_int64(rows));
    json_object_object_add(res, "cols", json_object_new_int64(cols));
    json_object_object_add(res, "v", json_object_new_int(4));
    json_object_object_add(res, "k", json_object_new_int(256));
    for (int filter = 0; filter <= 1; filter++) {
        hci_vq_work wk;
        if (hci_vq_make_work(&wk, &m, &sc, colmap, (uint32_t)cols, 4, 0, 1) != HC_OK)
            die("work");
        size_t nvec = (size_t)wk.segs * (size_t)rows;
        float *cb[2] = { malloc(sizeof(float) * 256 * 4), NULL };
        uint32_t *idx[2] = { malloc(sizeof(uint32_t) * nvec), NULL };
        if (hci_vq_quantise_part(cb, idx, &wk, &pc, h, &o, 1) != HC_OK)
            die("quantise");
        double *loss = malloc(sizeof(double) * (steps + 1));
        uint32_t k[2] = { 256, 0 };
        if (hci_vq_refine(cb, k, idx, &wk, h, steps, filter, loss) != HC_OK)
            die("refine");
        json_object *arr = json_object_new_array();
        for (uint32_t i = 0; i <= steps; i++)
            json_object_array_add(arr, json_object_new_double(loss[i]));
        json_object_object_add(res, filter ? "loss_grokfast" : "loss_adam", arr);
        fprintf(stderr, "refine %s: loss %.5f -> %.5f after %u steps (min %.5f)\n", filter ? "grokfast" : "adam",
                loss[0], loss[steps], steps, loss[0]);
        double best = loss[0];
        for (uint32_t i = 0; i <= steps; i++)
            best = loss[i] < best ? loss[i] : best;
        fprintf(stderr, "   best %.5f\n", best);
        free(loss);
        free(cb[0]);
        free(idx[0]);
        hci_vq_free_work(&wk);
    }
    free(colmap);
    free(w);
    free(x);
    free(h);
    return res;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *presets = "2bit,3bit,4bit", *spec = NULL;
    int64_t size = 4096;
    uint32_t threads = 2, steps = 200;
    int skip_gaussian = 0, matvec_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--presets") && i + 1 < argc)
            presets = argv[++i];
        else if (!strcmp(argv[i], "--refine-steps") && i + 1 < argc)
            steps = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--skip-gaussian"))
            skip_gaussian = 1;
        else if (!strcmp(argv[i], "--spec") && i + 1 < argc)
            spec = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            matvec_reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc)
            cpu_clock = !strcmp(argv[++i], "cpu");
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
            cache_path = argv[++i];
        else if (!strcmp(argv[i], "--matvec-only"))
            matvec_only = 1;
        else {
            fprintf(stderr, "usage: %s [--model PATH] [--size N] [--threads T] [--presets LIST] "
                            "[--refine-steps N] [--skip-gaussian] [--spec SPEC] [--matvec-only] [--reps N]\n"
                            "       [--cache FILE] [--clock wall|cpu]\n",
                    argv[0]);
            return 2;
        }
    }
    if (matvec_only) {
        model_path = NULL;
        steps = 0;
    }
    json_object *root = json_object_new_object(), *g = json_object_new_array(), *mm = json_object_new_array();
    if (spec) {
        json_object_array_add(g, gaussian_case(spec, size, threads));
        skip_gaussian = 1;
    }
    char list[128];
    snprintf(list, sizeof list, "%s", presets);
    for (char *p = strtok(list, ","); p; p = strtok(NULL, ",")) {
        if (spec && !model_path)
            break;
        if (!skip_gaussian)
            json_object_array_add(g, gaussian_case(p, size, threads));
        if (model_path)
            json_object_array_add(mm, model_case(p, model_path, threads));
    }
    json_object_object_add(root, "gaussian", g);
    json_object_object_add(root, "model", mm);
    if (steps)
        json_object_object_add(root, "refine", refine_case(steps));
    printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
    json_object_put(root);
    return 0;
}
