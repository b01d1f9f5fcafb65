/* compress_tensor.c: compress a fixed 64 x 256 tensor, w[i][j] = sin(0.37 i) cos(0.11 j), and write
 * its serialised form. examples/compress.py and bindings/rust/examples/compress_tensor.rs do the
 * same job; their outputs are byte-identical (tests/test_examples_same_bytes.sh checks it).
 *
 *   cc compress_tensor.c $(pkg-config --cflags --libs hypercomp) -lm -o compress_tensor
 *   ./compress_tensor out.hct [spec]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <hypercomp/hypercomp.h>

enum { ROWS = 64, COLS = 256 };

static int fail(const char *what, int rc)
{
    fprintf(stderr, "compress_tensor: %s: %s (%s)\n", what, hc_last_error(), hc_status_name(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: compress_tensor OUT [SPEC]\n");
        return 2;
    }
    const char *spec = argc > 2 ? argv[2] : "nf4";
    static float w[ROWS * COLS];
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            w[i * COLS + j] = (float)(sin(i * 0.37) * cos(j * 0.11));

    hc_compressor *c = NULL;
    int rc = hc_compressor_from_spec(&c, spec);
    if (rc != HC_OK)
        return fail("spec", rc);
    hc_tensor_view view = HC_TENSOR_VIEW_INIT;
    view.name = "w";
    view.ndim = 2;
    view.shape[0] = ROWS;
    view.shape[1] = COLS;
    view.data = w;
    hc_ctensor *ct = NULL;
    rc = hc_compress(&ct, c, &view);
    hc_compressor_free(c);
    if (rc != HC_OK)
        return fail("compress", rc);

    size_t size = hc_ctensor_serialized_size(ct);
    void *buf = malloc(size);
    if (!buf) {
        hc_ctensor_free(ct);
        fprintf(stderr, "compress_tensor: out of memory\n");
        return 1;
    }
    rc = hc_ctensor_serialize(ct, buf, size);
    hc_stats stats = HC_STATS_INIT;
    if (rc == HC_OK)
        rc = hc_ctensor_stats(&stats, ct);
    hc_ctensor_free(ct);
    if (rc != HC_OK) {
        free(buf);
        return fail("serialize", rc);
    }
    FILE *f = fopen(argv[1], "wb");
    int ok = f && fwrite(buf, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = 0;
    free(buf);
    if (!ok) {
        fprintf(stderr, "compress_tensor: cannot write '%s'\n", argv[1]);
        return 1;
    }
    printf("%s: %zu bytes, %.4f bits per weight, rel_rmse %.6f\n", spec, size, stats.bpw, stats.rel_rmse);
    return 0;
}
