/* Writes seed corpora for the fuzz targets from a real safetensors file: small containers, serialised
 * tensors of every codec this build knows, and small safetensors files, all cut from real weights.
 * usage: make_seeds FILE.safetensors OUTDIR   (creates OUTDIR/archive, OUTDIR/ctensor, OUTDIR/safetensors) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hypercomp/hypercomp.h"

static const char *const specs[] = { "f32", "fp16", "bf16", "int8", "nf4", "ternary", "seedlm", "vptq",
                                     "hyper", "poly", "fourier", "ergodic" };

static int write_file(const char *dir, const char *name, uint8_t mode, const void *data, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = (mode == 0xff || fwrite(&mode, 1, 1, f) == 1) && fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds FILE.safetensors OUTDIR\n");
        return 2;
    }
    const char *out = argv[2];
    char dir_a[1024], dir_c[1024], dir_s[1024], tmp[1100];
    snprintf(dir_a, sizeof dir_a, "%s/archive", out);
    snprintf(dir_c, sizeof dir_c, "%s/ctensor", out);
    snprintf(dir_s, sizeof dir_s, "%s/safetensors", out);
    mkdir(out, 0777);
    mkdir(dir_a, 0777);
    mkdir(dir_c, 0777);
    mkdir(dir_s, 0777);
    hc_safetensors *st = NULL;
    if (hc_safetensors_open(&st, argv[1]) != HC_OK) {
        fprintf(stderr, "make_seeds: %s\n", hc_last_error());
        return 1;
    }
    /* the real tensors used: the first few with at most 2048 values (biases, norms, small convs) */
    hc_tensor_view views[4];
    size_t nv = 0;
    for (size_t i = 0; i < hc_safetensors_count(st) && nv < 4; i++) {
        hc_tensor_view v = HC_TENSOR_VIEW_INIT;
        if (hc_safetensors_tensor(&v, st, i) == HC_OK && hc_safetensors_numel(st, i) <= 2048)
            views[nv++] = v;
    }
    size_t seeds = 0;
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        hc_compressor *c = NULL;
        if (hc_compressor_from_spec(&c, specs[s]) != HC_OK)
            continue;   /* not in this build */
        snprintf(tmp, sizeof tmp, "%s/seed-%s.hcz", out, specs[s]);
        hc_archive_writer *w = NULL;
        int rc = hc_archive_writer_new(&w, tmp);
        if (rc == HC_OK)
            rc = hc_archive_writer_set_metadata(w, "hypercomp.codec", specs[s]);
        for (size_t k = 0; k < nv && rc == HC_OK; k++) {
            hc_ctensor *ct = NULL;
            if (hc_compress(&ct, c, &views[k]) != HC_OK)
                continue;   /* a codec may refuse a shape */
            size_t n = hc_ctensor_serialized_size(ct);
            uint8_t *blob = malloc(n);
            if (blob && hc_ctensor_serialize(ct, blob, n) == HC_OK) {
                char name[128];
                snprintf(name, sizeof name, "%s-%zu", specs[s], k);
                seeds += write_file(dir_c, name, 0, blob, n);
                snprintf(name, sizeof name, "%s-%zu-fixcrc", specs[s], k);
                seeds += write_file(dir_c, name, 1, blob, n);
            }
            free(blob);
            rc = k == 0 ? hc_archive_writer_add_uncompressed(w, &views[k]) : hc_archive_writer_add(w, views[k].name, ct);
            hc_ctensor_free(ct);
        }
        if (rc == HC_OK)
            rc = hc_archive_writer_finish(w);
        hc_archive_writer_free(w);
        hc_compressor_free(c);
        size_t n;
        uint8_t *bytes = rc == HC_OK ? read_file(tmp, &n) : NULL;
        if (bytes) {
            for (uint8_t mode = 0; mode < 4; mode++) {
                char name[128];
                snprintf(name, sizeof name, "%s-mode%u", specs[s], mode);
                seeds += write_file(dir_a, name, mode, bytes, n);
            }
            free(bytes);
        }
        remove(tmp);
    }
    /* small safetensors files: the same tensors, with metadata, in each dtype */
    static const hc_dtype dts[] = { HC_DTYPE_F32, HC_DTYPE_F16, HC_DTYPE_BF16 };
    for (size_t d = 0; d < 3; d++) {
        snprintf(tmp, sizeof tmp, "%s/seed.safetensors", out);
        hc_safetensors_writer *w = NULL;
        int rc = hc_safetensors_writer_new(&w, tmp);
        if (rc == HC_OK)
            rc = hc_safetensors_writer_set_metadata(w, "format", "pt");
        for (size_t k = 0; k < nv && rc == HC_OK; k++) {
            hc_tensor_view v = views[k];
            int64_t n = 1;
            for (uint32_t i = 0; i < v.ndim; i++)
                n *= v.shape[i];
            hc_compressor *c = NULL;
            hc_ctensor *ct = NULL;
            void *buf = malloc((size_t)n * 4);
            rc = hc_compressor_from_spec(&c, "f32");
            if (rc == HC_OK)
                rc = hc_compress(&ct, c, &v);
            if (rc == HC_OK && buf)
                rc = hc_ctensor_decode(ct, dts[d], buf, (size_t)n * 4);
            v.dtype = dts[d];
            v.data = buf;
            if (rc == HC_OK)
                rc = hc_safetensors_writer_add(w, &v);
            hc_ctensor_free(ct);
            hc_compressor_free(c);
            free(buf);
        }
        if (rc == HC_OK)
            rc = hc_safetensors_writer_finish(w);
        hc_safetensors_writer_free(w);
        size_t n;
        uint8_t *bytes = rc == HC_OK ? read_file(tmp, &n) : NULL;
        if (bytes) {
            char name[64];
            snprintf(name, sizeof name, "seed-%s", hc_dtype_name(dts[d]));
            seeds += write_file(dir_s, name, 0xff, bytes, n);
            free(bytes);
        }
        remove(tmp);
    }
    hc_safetensors_close(st);
    printf("make_seeds: %zu seed files from %zu real tensors of %s in %s\n", seeds, nv, argv[1], out);
    return seeds ? 0 : 1;
}
