/* hello.c: compress a random matrix with libhypercomp, report its size and error, and check a
 * matrix-vector product taken straight from the compressed form against a plain loop.
 *
 *   cc hello.c $(pkg-config --cflags --libs hypercomp) -o hello && ./hello nf4
 */
#include <stdio.h>
#include <stdlib.h>

#include <hypercomp/hypercomp.h>

enum { ROWS = 256, COLS = 512 };

/* About N(0, 1): the sum of 12 uniforms minus 6 (no libm needed). */
static float gauss(unsigned long long *state)
{
    float sum = 0.0f;
    for (int i = 0; i < 12; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        sum += (float)(*state >> 40) / 16777216.0f;
    }
    return sum - 6.0f;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "hello: %s: %s (%s)\n", what, hc_last_error(), hc_status_name(rc));
    return 1;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "fp16";
    static float w[ROWS * COLS], decoded[ROWS * COLS], x[COLS], y[ROWS];
    unsigned long long state = 42;
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = gauss(&state);
    for (int j = 0; j < COLS; j++)
        x[j] = gauss(&state);

    printf("libhypercomp %s (headers %s)\n", hc_version_string(), HC_VERSION_STRING);

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
    if (rc != HC_OK)
        return fail("compress", rc);

    hc_stats stats = HC_STATS_INIT;
    if ((rc = hc_ctensor_stats(&stats, ct)) != HC_OK)
        return fail("stats", rc);
    printf("%s: %.4f bits per weight, rel_rmse %.6f\n", hc_compressor_spec(c), stats.bpw, stats.rel_rmse);
    hc_compressor_free(c);

    /* y = W' x from the packed form, compared with a loop over the decoded matrix W'. */
    if ((rc = hc_ctensor_matvec(ct, x, y)) != HC_OK)
        return fail("matvec", rc);
    if ((rc = hc_ctensor_decode(ct, HC_DTYPE_F32, decoded, sizeof decoded)) != HC_OK)
        return fail("decode", rc);
    float worst = 0.0f, scale = 0.0f;
    for (int i = 0; i < ROWS; i++) {
        float ref = 0.0f;
        for (int j = 0; j < COLS; j++)
            ref += decoded[i * COLS + j] * x[j];
        float d = y[i] > ref ? y[i] - ref : ref - y[i];
        float a = ref > 0 ? ref : -ref;
        worst = d > worst ? d : worst;
        scale = a > scale ? a : scale;
    }
    hc_ctensor_free(ct);
    printf("matvec: largest difference from a plain loop %.3g (outputs up to %.3g)\n", worst, scale);
    if (worst > 1e-4f * scale) {
        fprintf(stderr, "hello: the compressed matvec disagrees with the plain loop\n");
        return 1;
    }
    return 0;
}
