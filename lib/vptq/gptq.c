/* GPTQ-order vector assignment with error feedback, as VPTQ (Liu et al., arXiv 2409.17066,
 * sec. 4.1, Algorithm 1) applies GPTQ (Frantar et al., arXiv 2210.17323) to vectors: segments of
 * v columns are assigned in order; the error of each column, divided by the diagonal of the
 * upper Cholesky factor U of H^-1, is pushed onto the columns not yet quantised. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/parallel.h"
#include "kmeans.h"
#include "vptq/encode.h"

/* In-place lower Cholesky of a (n x n, double); returns 0 when a is not positive definite. */
static int cholesky(double *a, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++) {
        double d = a[(size_t)j * n + j];
        for (uint32_t p = 0; p < j; p++)
            d -= a[(size_t)j * n + p] * a[(size_t)j * n + p];
        if (!(d > 0.0))
            return 0;
        d = sqrt(d);
        a[(size_t)j * n + j] = d;
        for (uint32_t i = j + 1; i < n; i++) {
            double s = a[(size_t)i * n + j];
            for (uint32_t p = 0; p < j; p++)
                s -= a[(size_t)i * n + p] * a[(size_t)j * n + p];
            a[(size_t)i * n + j] = s / d;
        }
        for (uint32_t i = 0; i < j; i++)
            a[(size_t)i * n + j] = 0.0;
    }
    return 1;
}

/* U (upper, n x n, row-major) with U^T U = (H + damp)^-1. */
static int inverse_cholesky_upper(double *u, const float *h, uint32_t n, const char *name)
{
    double *a = hci_malloc_array((size_t)n * n, sizeof(double));
    double *li = hci_calloc((size_t)n * n, sizeof(double));
    if (!a || !li) {
        hci_free(a);
        hci_free(li);
        return HC_ENOMEM;
    }
    double mean = 0.0;
    for (uint32_t i = 0; i < n; i++)
        mean += h[(size_t)i * n + i];
    mean = mean > 0.0 ? mean / n : 1.0;
    int ok = 0;
    for (double damp = 0.01; damp <= 10.0 && !ok; damp *= 10.0) {
        for (size_t i = 0; i < (size_t)n * n; i++)
            a[i] = h[i];
        for (uint32_t i = 0; i < n; i++)
            a[(size_t)i * n + i] = (a[(size_t)i * n + i] > 0.0 ? a[(size_t)i * n + i] : mean) + damp * mean;
        ok = cholesky(a, n);
    }
    if (!ok) {
        hci_free(a);
        hci_free(li);
        return hci_fail(HC_EINVAL, "tensor '%s': its Hessian is not positive definite even with damping", name);
    }
    /* li = L^-1 (lower), then H^-1 = li^T li */
    for (uint32_t j = 0; j < n; j++) {
        li[(size_t)j * n + j] = 1.0 / a[(size_t)j * n + j];
        for (uint32_t i = j + 1; i < n; i++) {
            double s = 0.0;
            for (uint32_t p = j; p < i; p++)
                s -= a[(size_t)i * n + p] * li[(size_t)p * n + j];
            li[(size_t)i * n + j] = s / a[(size_t)i * n + i];
        }
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j <= i; j++) {
            double s = 0.0;
            for (uint32_t p = i; p < n; p++)
                s += li[(size_t)p * n + i] * li[(size_t)p * n + j];
            a[(size_t)i * n + j] = s;
            a[(size_t)j * n + i] = s;
        }
    ok = cholesky(a, n);
    for (uint32_t i = 0; i < n && ok; i++)
        for (uint32_t j = 0; j < n; j++)
            u[(size_t)i * n + j] = j >= i ? a[(size_t)j * n + i] : 0.0;
    hci_free(a);
    hci_free(li);
    if (!ok)
        return hci_fail(HC_EINVAL, "tensor '%s': the inverse of its Hessian lost definiteness", name);
    return HC_OK;
}

typedef struct feedback_job {
    hci_vq_work *wk;
    const double *u;
    const float *q;     /* rows x v: the segment's reconstruction */
    uint32_t s;
} feedback_job;

static int feedback_rows(void *ctx, int64_t r0, int64_t r1)
{
    feedback_job *j = ctx;
    hci_vq_work *wk = j->wk;
    uint32_t v = wk->v, n = wk->ncols;
    for (uint32_t t = 0; t < v; t++) {
        uint32_t c = j->s * v + t;
        if (c >= n)
            break;
        const double *urow = j->u + (size_t)c * n;
        for (int64_t r = r0; r < r1; r++) {
            float *x = wk->vec + ((size_t)j->s * (size_t)wk->rows + (size_t)r) * v;
            /* the update lives in row-normalised units: undo and redo the group scales */
            double e = (x[t] - j->q[(size_t)r * v + t]) * hci_vq_work_gs(wk, j->s, r) / urow[c];
            for (uint32_t c2 = c + 1; c2 < n; c2++) {
                uint32_t s2 = c2 / v, t2 = c2 % v;
                wk->vec[((size_t)s2 * (size_t)wk->rows + (size_t)r) * v + t2] -=
                    (float)(e * urow[c2] / hci_vq_work_gs(wk, s2, r));
            }
        }
    }
    return HC_OK;
}

int hci_vq_gptq_assign(uint32_t *idx[2], hci_vq_work *wk, const float *const cb[2], const uint32_t k[2], const float *h,
                   uint32_t threads)
{
    uint32_t n = wk->ncols, v = wk->v;
    size_t rows = (size_t)wk->rows;
    double *u = hci_malloc_array((size_t)n * n, sizeof(double));
    float *q = hci_malloc_array(rows, (size_t)v * sizeof(float));
    float *res = k[1] ? hci_malloc_array(rows, (size_t)v * sizeof(float)) : NULL;
    int rc = (!u || !q || (k[1] && !res)) ? HC_ENOMEM : HC_OK;
    if (rc == HC_OK)
        rc = inverse_cholesky_upper(u, h, n, "(part)");
    for (uint32_t s = 0; s < wk->segs && rc == HC_OK; s++) {
        const float *x = wk->vec + (size_t)s * rows * v;
        uint32_t *i0 = idx[0] + (size_t)s * rows;
        rc = hci_kmeans_assign(i0, NULL, x, rows, v, cb[0], k[0], NULL, threads);
        if (rc != HC_OK)
            break;
        for (size_t r = 0; r < rows; r++)
            memcpy(q + r * v, cb[0] + (size_t)i0[r] * v, sizeof(float) * v);
        if (k[1]) {
            uint32_t *i1 = idx[1] + (size_t)s * rows;
            for (size_t r = 0; r < rows * v; r++)
                res[r] = x[r] - q[r];
            rc = hci_kmeans_assign(i1, NULL, res, rows, v, cb[1], k[1], NULL, threads);
            for (size_t r = 0; r < rows && rc == HC_OK; r++)
                for (uint32_t t = 0; t < v; t++)
                    q[r * v + t] += cb[1][(size_t)i1[r] * v + t];
        }
        if (rc != HC_OK)
            break;
        feedback_job fj = { wk, u, q, s };
        rc = hci_parallel_for(threads, (int64_t)rows, 64, feedback_rows, &fj);
    }
    hci_free(u);
    hci_free(q);
    hci_free(res);
    return rc;
}
