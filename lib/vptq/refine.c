/* Centroid refinement after assignment (VPTQ, arXiv 2409.17066, sec. 4.3, which fine-tunes the
 * codebooks against the layer's output error): Adam on the centroids, optionally with the
 * Grokfast slow-gradient filter, against the weighted reconstruction loss
 * sum_r s_r^2 e_r H e_r^T with e = W - W_q in the normalised space (H = diag(importance) or
 * identity without a Hessian). Indices stay fixed; the best centroids seen are kept. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "hypercomp/grokfast.h"
#include "vptq/encode.h"

/* e (rows x ncols) = original - reconstruction. */
static void residuals(float *e, const float *const cb[2], uint32_t *const idx[2], const hci_vq_work *wk)
{
    uint32_t v = wk->v;
    for (uint32_t s = 0; s < wk->segs; s++)
        for (int64_t r = 0; r < wk->rows; r++) {
            size_t i = (size_t)s * (size_t)wk->rows + (size_t)r;
            const float *x = wk->vec0 + i * v;
            const float *c0 = cb[0] + (size_t)idx[0][i] * v;
            const float *c1 = cb[1] ? cb[1] + (size_t)idx[1][i] * v : NULL;
            float g = hci_vq_work_gs(wk, s, r);
            for (uint32_t t = 0; t < v && s * v + t < wk->ncols; t++)
                e[(size_t)r * wk->ncols + s * v + t] = (x[t] - c0[t] - (c1 ? c1[t] : 0.0f)) * g;
        }
}

/* g = e H (or e diag(dimw)); returns sum_r rs2_r e_r . g_r. */
static double weighted(float *g, const float *e, const hci_vq_work *wk, const float *h)
{
    size_t rows = (size_t)wk->rows, n = wk->ncols;
    if (h)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)n, 1.0f, e, (int)n, h, (int)n,
                    0.0f, g, (int)n);
    else
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < n; j++)
                g[r * n + j] = e[r * n + j] * wk->dimw[j];
    double loss = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < n; j++)
            s += (double)e[r * n + j] * g[r * n + j];
        loss += wk->rs2[r] * s;
    }
    return loss;
}

/* The loss of the original itself (e = W), the denominator that makes losses relative. */
static double signal(float *e, float *g, const hci_vq_work *wk, const float *h)
{
    uint32_t v = wk->v;
    for (uint32_t s = 0; s < wk->segs; s++)
        for (int64_t r = 0; r < wk->rows; r++)
            for (uint32_t t = 0; t < v && s * v + t < wk->ncols; t++)
                e[(size_t)r * wk->ncols + s * v + t] =
                    wk->vec0[((size_t)s * (size_t)wk->rows + (size_t)r) * v + t] * hci_vq_work_gs(wk, s, r);
    double d = weighted(g, e, wk, h);
    return d > 0.0 ? d : 1.0;
}

double hci_vq_part_loss(const float *const cb[2], uint32_t *const idx[2], const hci_vq_work *wk, const float *h)
{
    size_t n = (size_t)wk->rows * wk->ncols;
    float *e = hci_malloc_array(n, sizeof(float)), *g = hci_malloc_array(n, sizeof(float));
    double loss = NAN;
    if (e && g) {
        double den = signal(e, g, wk, h);
        residuals(e, cb, idx, wk);
        loss = weighted(g, e, wk, h) / den;
    }
    hci_free(e);
    hci_free(g);
    return loss;
}

int hci_vq_refine(float *cb[2], const uint32_t k[2], uint32_t *idx[2], const hci_vq_work *wk, const float *h,
              uint32_t steps, int filter, double *loss_out)
{
    uint32_t v = wk->v;
    size_t n0 = (size_t)k[0] * v, n1 = (size_t)k[1] * v, np = n0 + n1;
    size_t ne = (size_t)wk->rows * wk->ncols;
    float *e = hci_malloc_array(ne, sizeof(float)), *g = hci_malloc_array(ne, sizeof(float));
    float *p = hci_malloc_array(np, sizeof(float)), *grad = hci_malloc_array(np, sizeof(float));
    float *best = hci_malloc_array(np, sizeof(float));
    hc_grokfast *opt = NULL;
    int rc = (!e || !g || !p || !grad || !best) ? HC_ENOMEM : HC_OK;
    double rms = 0.0;
    if (rc == HC_OK) {
        memcpy(p, cb[0], sizeof(float) * n0);
        if (n1)
            memcpy(p + n0, cb[1], sizeof(float) * n1);
        memcpy(best, p, sizeof(float) * np);
        for (size_t i = 0; i < n0; i++)
            rms += (double)p[i] * p[i];
        rms = sqrt(rms / (double)n0);
        hc_grokfast_options go = HC_GROKFAST_OPTIONS_INIT;
        /* Adam moves each parameter by about lr per step: scale it to the centroids */
        go.lr = (float)(2e-3 * (rms > 0.0 ? rms : 1.0));
        go.filter = filter ? 1u : 0u;
        rc = hc_grokfast_new(&opt, np, &go);
    }
    double den = rc == HC_OK ? signal(e, g, wk, h) : 1.0, best_loss = INFINITY;
    for (uint32_t it = 0; rc == HC_OK; it++) {
        const float *cur[2] = { p, n1 ? p + n0 : NULL };
        residuals(e, cur, idx, wk);
        double loss = weighted(g, e, wk, h) / den;
        if (loss_out)
            loss_out[it] = loss;
        if (loss < best_loss) {
            best_loss = loss;
            memcpy(best, p, sizeof(float) * np);
        }
        if (it == steps)
            break;
        /* d loss / d centroid = -2 / den * sum over its uses of rs2_r (e H)_r */
        memset(grad, 0, sizeof(float) * np);
        for (uint32_t s = 0; s < wk->segs; s++)
            for (int64_t r = 0; r < wk->rows; r++) {
                size_t i = (size_t)s * (size_t)wk->rows + (size_t)r;
                float f = (float)(-2.0 * wk->rs2[r] * hci_vq_work_gs(wk, s, r) / den);
                for (uint32_t t = 0; t < v && s * v + t < wk->ncols; t++) {
                    float gv = f * g[(size_t)r * wk->ncols + s * v + t];
                    grad[(size_t)idx[0][i] * v + t] += gv;
                    if (n1)
                        grad[n0 + (size_t)idx[1][i] * v + t] += gv;
                }
            }
        rc = hc_grokfast_step(opt, p, grad);
    }
    if (rc == HC_OK) {
        memcpy(cb[0], best, sizeof(float) * n0);
        if (n1)
            memcpy(cb[1], best + n0, sizeof(float) * n1);
    }
    hc_grokfast_free(opt);
    hci_free(e);
    hci_free(g);
    hci_free(p);
    hci_free(grad);
    hci_free(best);
    return rc;
}
