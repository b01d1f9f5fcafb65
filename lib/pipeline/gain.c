/* Refinement of the residual cascade's per-row stage gains with Grokfast-Adam (Lee et al.,
 * arXiv 2405.20233) against the importance-weighted reconstruction loss
 *   L(g) = sum_r sum_c imp_c (w_rc - sum_s g_sr d_src)^2 / sum_r sum_c imp_c w_rc^2.
 * Per row the loss is a quadratic in that row's n gains, so its Gram matrix, cross terms and
 * energy are gathered once and every step costs O(rows n^2) instead of a pass over the tensor. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "hypercomp/grokfast.h"
#include "pipeline/pipeline_internal.h"

int hci_gain_problem_init(hci_gain_problem *gp, const float *w, const float *const *dec, uint32_t n, int64_t rows,
                          int64_t cols, const float *importance)
{
    memset(gp, 0, sizeof *gp);
    gp->n = n;
    gp->rows = rows;
    gp->gram = hci_calloc((size_t)rows * n * n, sizeof(double));
    gp->cross = gp->gram ? hci_calloc((size_t)rows * n, sizeof(double)) : NULL;
    gp->wsq = gp->cross ? hci_calloc((size_t)rows, sizeof(double)) : NULL;
    if (!gp->wsq) {
        hci_gain_problem_free(gp);
        return HC_ENOMEM;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        double *G = gp->gram + (size_t)r * n * n, *b = gp->cross + (size_t)r * n;
        double e = 0;
        for (int64_t c = 0; c < cols; c++) {
            double imp = importance ? importance[c] : 1.0;
            e += imp * wr[c] * wr[c];
        }
        gp->wsq[r] = e;
        gp->energy += e;
        for (uint32_t s = 0; s < n; s++) {
            const float *ds = dec[s] + r * cols;
            double acc = 0;
            for (int64_t c = 0; c < cols; c++)
                acc += (importance ? importance[c] : 1.0) * wr[c] * ds[c];
            b[s] = acc;
            for (uint32_t t = s; t < n; t++) {
                const float *dt = dec[t] + r * cols;
                double g = 0;
                for (int64_t c = 0; c < cols; c++)
                    g += (importance ? importance[c] : 1.0) * ds[c] * dt[c];
                G[s * n + t] = G[t * n + s] = g;
            }
        }
    }
    if (!(gp->energy > 0))
        gp->energy = 1.0;   /* an all-zero tensor: any scale will do, nothing to refine */
    return HC_OK;
}

void hci_gain_problem_free(hci_gain_problem *gp)
{
    hci_free(gp->gram);
    hci_free(gp->cross);
    hci_free(gp->wsq);
    memset(gp, 0, sizeof *gp);
}

static double row_loss(const hci_gain_problem *gp, const float *g, int64_t r)
{
    uint32_t n = gp->n;
    const double *G = gp->gram + (size_t)r * n * n, *b = gp->cross + (size_t)r * n;
    double l = gp->wsq[r];
    for (uint32_t s = 0; s < n; s++) {
        double gs = g[(size_t)s * gp->rows + r];
        l -= 2 * gs * b[s];
        for (uint32_t t = 0; t < n; t++)
            l += gs * G[s * n + t] * g[(size_t)t * gp->rows + r];
    }
    return l;
}

double hci_gain_loss(const hci_gain_problem *gp, const float *g)
{
    double l = 0;
    for (int64_t r = 0; r < gp->rows; r++)
        l += row_loss(gp, g, r);
    return l / gp->energy;
}

int hci_gain_refine(const hci_gain_problem *gp, float *g, uint32_t iters, float lr, uint32_t filter, double *trace)
{
    uint32_t n = gp->n;
    size_t ng = (size_t)n * (size_t)gp->rows;
    hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
    o.lr = lr;
    o.filter = filter;
    hc_grokfast *opt;
    int rc = hc_grokfast_new(&opt, ng, &o);
    if (rc != HC_OK)
        return rc;
    float *grad = hci_malloc_array(ng, sizeof(float));
    if (!grad) {
        hc_grokfast_free(opt);
        return HC_ENOMEM;
    }
    for (uint32_t it = 0; it <= iters && rc == HC_OK; it++) {
        if (trace)
            trace[it] = hci_gain_loss(gp, g);
        if (it == iters)
            break;
        for (int64_t r = 0; r < gp->rows; r++) {
            const double *G = gp->gram + (size_t)r * n * n, *b = gp->cross + (size_t)r * n;
            for (uint32_t s = 0; s < n; s++) {
                double acc = -b[s];
                for (uint32_t t = 0; t < n; t++)
                    acc += G[s * n + t] * g[(size_t)t * gp->rows + r];
                grad[(size_t)s * gp->rows + r] = (float)(2.0 * acc / gp->energy);
            }
        }
        rc = hc_grokfast_step(opt, g, grad);
    }
    hci_free(grad);
    hc_grokfast_free(opt);
    return rc;
}

void hci_gain_optimum(const hci_gain_problem *gp, float *g)
{
    uint32_t n = gp->n;
    double A[HC_PIPELINE_MAX_STAGES][HC_PIPELINE_MAX_STAGES + 1];
    for (int64_t r = 0; r < gp->rows; r++) {
        const double *G = gp->gram + (size_t)r * n * n, *b = gp->cross + (size_t)r * n;
        double scale = 0;
        for (uint32_t s = 0; s < n; s++)
            scale = fmax(scale, fabs(G[s * n + s]));
        /* a tiny ridge towards gain 1 keeps rows with a silent (all-zero) stage solvable */
        double ridge = 1e-9 * scale;
        for (uint32_t s = 0; s < n; s++) {
            for (uint32_t t = 0; t < n; t++)
                A[s][t] = G[s * n + t] + (s == t ? ridge : 0.0);
            A[s][n] = b[s] + ridge;
        }
        int ok = scale > 0;
        /* Gaussian elimination with partial pivoting */
        for (uint32_t k = 0; k < n && ok; k++) {
            uint32_t piv = k;
            for (uint32_t i = k + 1; i < n; i++)
                if (fabs(A[i][k]) > fabs(A[piv][k]))
                    piv = i;
            if (fabs(A[piv][k]) <= 1e-12 * scale) {
                ok = 0;
                break;
            }
            for (uint32_t j = 0; j <= n; j++) {
                double t = A[k][j];
                A[k][j] = A[piv][j];
                A[piv][j] = t;
            }
            for (uint32_t i = k + 1; i < n; i++) {
                double f = A[i][k] / A[k][k];
                for (uint32_t j = k; j <= n; j++)
                    A[i][j] -= f * A[k][j];
            }
        }
        for (int k = (int)n - 1; k >= 0 && ok; k--) {
            double acc = A[k][n];
            for (uint32_t j = (uint32_t)k + 1; j < n; j++)
                acc -= A[k][j] * g[(size_t)j * gp->rows + r];
            g[(size_t)k * gp->rows + r] = (float)(acc / A[k][k]);
        }
        if (!ok)
            for (uint32_t s = 0; s < n; s++)
                g[(size_t)s * gp->rows + r] = 1.0f;
    }
}
