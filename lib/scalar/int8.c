/* INT8: symmetric 8-bit codes per output row with a percentile clip (doc/codecs.md, "int8").
 *
 * For each row, clip = the P-th percentile of |w| over the row's values, by linear
 * interpolation between order statistics (numpy's default): with a_0 <= ... <= a_{n-1} the
 * sorted magnitudes and h = (n - 1) P / 100, clip = a_floor(h) + (h - floor(h)) (a_floor(h)+1 -
 * a_floor(h)). P = 100 gives the absmax. scale = clip / 127 (f32) and
 * q = clamp(round_half_even(w / scale), -127, 127); values beyond the clip saturate.
 * A row whose clip is 0 while it has nonzero values (a mostly-zero row) uses its absmax instead,
 * so it is not wiped out; a row of zeros gets scale 0 and zero codes.
 *
 * Payload: rows f32 scales (little-endian), then rows x cols int8 codes row-major. No params.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"
#include "scalar/kernels.h"
#include "scalar/scalar.h"

static void swap_f(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Places the k-th smallest of a[0..n) at a[k] with everything after it >= a[k]. Three-way
 * partitions keep runs of equal magnitudes (zeros) linear; median-of-three pivots make the
 * common cases O(n), and a range that keeps failing to shrink is sorted, so no input is
 * quadratic. */
static void select_kth(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    int budget = 8;
    for (int64_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi > lo) {
        if (budget-- == 0) {
            qsort(a + lo, (size_t)(hi - lo + 1), sizeof *a, cmp_float);
            return;
        }
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo])
            swap_f(&a[mid], &a[lo]);
        if (a[hi] < a[lo])
            swap_f(&a[hi], &a[lo]);
        if (a[hi] < a[mid])
            swap_f(&a[hi], &a[mid]);
        float pivot = a[mid];
        /* [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot */
        int64_t lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (a[i] < pivot)
                swap_f(&a[lt++], &a[i++]);
            else if (a[i] > pivot)
                swap_f(&a[i], &a[gt--]);
            else
                i++;
        }
        if (k < lt)
            hi = lt - 1;
        else if (k > gt)
            lo = gt + 1;
        else
            return;
    }
}

float hci_int8_row_clip(float *mag, int64_t n, double percentile)
{
    double h = (double)(n - 1) * (percentile / 100.0);
    int64_t k = (int64_t)floor(h);
    if (k > n - 1)
        k = n - 1;
    double frac = h - (double)k;
    select_kth(mag, n, k);
    double lo = mag[k], clip = lo;
    if (k + 1 < n && frac > 0) {
        float next = mag[k + 1];
        for (int64_t i = k + 2; i < n; i++)
            if (mag[i] < next)
                next = mag[i];
        clip = lo + frac * ((double)next - lo);
    }
    return (float)clip;
}

typedef struct int8_job {
    const hci_matrix *w;
    float percentile;
    uint8_t *payload;
} int8_job;

static int quantise_rows(void *ctx, int64_t r0, int64_t r1)
{
    int8_job *job = ctx;
    int64_t cols = job->w->cols, rows = job->w->rows;
    float *mag = hci_malloc_array((size_t)cols, sizeof *mag);
    if (!mag)
        return HC_ENOMEM;
    for (int64_t r = r0; r < r1; r++) {
        const float *row = job->w->data + r * cols;
        float absmax = 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            mag[c] = fabsf(row[c]);
            if (mag[c] > absmax)
                absmax = mag[c];
        }
        float clip = hci_int8_row_clip(mag, cols, job->percentile);
        if (clip == 0.0f)
            clip = absmax;
        float scale = clip / 127.0f;
        int8_t *q = (int8_t *)(job->payload + 4 * rows + r * cols);
        /* scale 0: a zero row, or a clip so small that clip / 127 underflows */
        for (int64_t c = 0; c < cols; c++) {
            float v = scale > 0.0f ? rintf(row[c] / scale) : 0.0f;
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            q[c] = (int8_t)v;
        }
        hci_put_f32(job->payload + 4 * r, scale);
    }
    hci_free(mag);
    return HC_OK;
}

static int int8_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    size_t bytes;
    if (!hci_mul_size((size_t)w->rows, 4, &bytes) || !hci_add_size(bytes, (size_t)w->numel, &bytes))
        return hci_oom(SIZE_MAX);
    uint8_t *payload = hci_malloc(bytes);
    if (!payload)
        return HC_ENOMEM;
    int8_job job = { w, hci_scalar_opts(c)->clip_percentile, payload };
    int64_t min_rows = 65536 / w->cols + 1;
    int rc = hci_parallel_for(c->threads, w->rows, min_rows, quantise_rows, &job);
    if (rc != HC_OK) {
        hci_free(payload);
        return rc;
    }
    ct->payload = payload;
    ct->payload_len = bytes;
    return HC_OK;
}

static int int8_attach(hc_ctensor *ct)
{
    if (ct->params_len != 0)
        return hci_fail(HC_EFORMAT, "int8 tensor has %u parameter bytes; expected none", ct->params_len);
    uint64_t need = 4u * (uint64_t)ct->rows + (uint64_t)ct->numel;
    if (ct->payload_len != need)
        return hci_fail(HC_EFORMAT,
                        "int8 tensor of %lld x %lld has a payload of %llu bytes; expected %llu (4 per row scale + 1 per value)",
                        (long long)ct->rows, (long long)ct->cols, (unsigned long long)ct->payload_len,
                        (unsigned long long)need);
    for (int64_t r = 0; r < ct->rows; r++) {
        float s = hci_get_f32(ct->payload + 4 * r);
        if (!(s >= 0.0f) || !isfinite(s))
            return hci_fail(HC_EFORMAT, "int8 tensor: row %lld has scale %g; scales are finite and >= 0", (long long)r,
                            (double)s);
    }
    const uint8_t *codes = ct->payload + 4 * ct->rows;
    const uint8_t *bad = memchr(codes, 0x80, (size_t)ct->numel);
    if (bad)
        return hci_fail(HC_EFORMAT, "int8 tensor: value %lld has code -128; codes are in [-127, 127]",
                        (long long)(bad - codes));
    return HC_OK;
}

static int int8_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    const hci_int8_kernels *k = hci_int8_kernels_for(hci_cpu_isa());
    const int8_t *codes = (const int8_t *)(ct->payload + 4 * ct->rows);
    int64_t i = first, end = first + count;
    while (i < end) {
        int64_t r = i / ct->cols, row_end = (r + 1) * ct->cols;
        int64_t n = (row_end < end ? row_end : end) - i;
        k->decode(out + (i - first), codes + i, hci_get_f32(ct->payload + 4 * r), n);
        i += n;
    }
    return HC_OK;
}

static int int8_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const hci_int8_kernels *k = hci_int8_kernels_for(hci_cpu_isa());
    const int8_t *codes = (const int8_t *)(ct->payload + 4 * ct->rows);
    for (int64_t r = row0; r < row1; r++)
        y[r] = hci_get_f32(ct->payload + 4 * r) * k->dot(codes + r * ct->cols, x, ct->cols);
    return HC_OK;
}

const hci_codec hci_codec_int8 = {
    HC_CODEC_INT8, "int8", int8_compress, int8_attach, NULL, int8_decode, int8_matvec, NULL,
};
