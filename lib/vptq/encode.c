/* VPTQ compression (Liu et al., arXiv 2409.17066, sec. 3-4): scales, outlier columns, codebook
 * learning per part, optional GPTQ-order assignment and centroid refinement, then the bytes
 * in the layout of layout.c. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/half.h"
#include "kmeans.h"
#include "vptq/builtin.h"
#include "vptq/encode.h"

void hci_vq_round_f16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = hci_f16_to_f32(hci_f32_to_f16(x[i]));
}

/* ---- scales ---- */

void hci_vq_free_scales(hci_vq_scales *sc)
{
    hci_free(sc->cs);
    hci_free(sc->rs);
    hci_free(sc->rq);
    memset(sc, 0, sizeof *sc);
}

int hci_vq_make_scales(hci_vq_scales *sc, const hci_matrix *w, uint32_t flags)
{
    memset(sc, 0, sizeof *sc);
    int64_t rows = w->rows, cols = w->cols;
    if (flags & VQ_FLAG_COL) {
        sc->cs = hci_malloc_array((size_t)cols, sizeof(float));
        if (!sc->cs)
            return HC_ENOMEM;
        for (int64_t c = 0; c < cols; c++) {
            double s = 0.0;
            for (int64_t r = 0; r < rows; r++)
                s += (double)w->data[r * cols + c] * w->data[r * cols + c];
            sc->cs[c] = hci_f16_to_f32(hci_f32_to_f16((float)sqrt(s / (double)rows)));
        }
    }
    if (flags & VQ_FLAG_ROW) {
        sc->rs = hci_malloc_array((size_t)rows, sizeof(float));
        sc->rq = hci_malloc_array((size_t)rows, 1);
        if (!sc->rs || !sc->rq) {
            hci_vq_free_scales(sc);
            return HC_ENOMEM;
        }
        float maxr = 0.0f;
        for (int64_t r = 0; r < rows; r++) {
            double s = 0.0;
            for (int64_t c = 0; c < cols; c++) {
                float cs = sc->cs ? sc->cs[c] : 1.0f;
                double x = cs > 0.0f ? w->data[r * cols + c] / cs : 0.0;
                s += x * x;
            }
            sc->rs[r] = (float)sqrt(s / (double)cols);
            if (sc->rs[r] > maxr)
                maxr = sc->rs[r];
        }
        sc->rbase_h = hci_f32_to_f16(maxr);
        float base = hci_f16_to_f32(sc->rbase_h);
        for (int64_t r = 0; r < rows; r++) {
            int q = 255;
            if (sc->rs[r] > 0.0f && base > 0.0f) {
                q = (int)lrintf(-8.0f * log2f(sc->rs[r] / base));
                q = q < 0 ? 0 : (q > 254 ? 254 : q);
            }
            sc->rq[r] = (uint8_t)q;
            sc->rs[r] = hci_vq_row_scale(base, (uint8_t)q);
        }
    }
    return HC_OK;
}

/* ---- outliers ---- */

/* The n_out columns with the largest importance (when given) or norm, ascending. */
int hci_vq_pick_outliers(uint32_t *out, uint32_t n_out, const hci_matrix *w)
{
    if (!n_out)
        return HC_OK;
    int64_t cols = w->cols;
    double *score = hci_malloc_array((size_t)cols, sizeof(double));
    uint8_t *taken = hci_calloc((size_t)cols, 1);
    if (!score || !taken) {
        hci_free(score);
        hci_free(taken);
        return HC_ENOMEM;
    }
    for (int64_t c = 0; c < cols; c++) {
        double s = 0.0;
        for (int64_t r = 0; r < w->rows; r++)
            s += (double)w->data[r * cols + c] * w->data[r * cols + c];
        /* importance x column energy: the output error a column's quantisation error can cause */
        if (w->importance)
            s *= w->importance[c];
        else if (w->hessian)
            s *= w->hessian[c * cols + c];
        score[c] = s;
    }
    for (uint32_t i = 0; i < n_out; i++) {
        int64_t best = -1;
        for (int64_t c = 0; c < cols; c++)
            if (!taken[c] && (best < 0 || score[c] > score[best]))
                best = c;
        taken[best] = 1;
    }
    uint32_t j = 0;
    for (int64_t c = 0; c < cols; c++)
        if (taken[c])
            out[j++] = (uint32_t)c;
    hci_free(score);
    hci_free(taken);
    return HC_OK;
}

/* ---- work arrays of a part ---- */

void hci_vq_free_work(hci_vq_work *wk)
{
    hci_free(wk->vec);
    hci_free(wk->vec0);
    hci_free(wk->wt);
    hci_free(wk->dimw);
    hci_free(wk->rs2);
    hci_free(wk->gs);
    hci_free(wk->gq);
    memset(wk, 0, sizeof *wk);
}

int hci_vq_make_work(hci_vq_work *wk, const hci_matrix *w, const hci_vq_scales *sc, const uint32_t *cols, uint32_t ncols,
                 uint32_t v, uint32_t gsegs, int keep_original)
{
    memset(wk, 0, sizeof *wk);
    wk->v = v;
    wk->ncols = ncols;
    wk->segs = (ncols + v - 1) / v;
    wk->rows = w->rows;
    wk->cols = cols;
    size_t nvec = (size_t)wk->segs * (size_t)w->rows;
    wk->vec = hci_malloc_array(nvec, (size_t)v * sizeof(float));
    wk->wt = hci_malloc_array(nvec, sizeof(float));
    wk->dimw = hci_calloc((size_t)wk->segs * v, sizeof(float));
    wk->rs2 = hci_malloc_array((size_t)w->rows, sizeof(float));
    if (keep_original)
        wk->vec0 = hci_malloc_array(nvec, (size_t)v * sizeof(float));
    if (!wk->vec || !wk->wt || !wk->dimw || !wk->rs2 || (keep_original && !wk->vec0)) {
        hci_vq_free_work(wk);
        return HC_ENOMEM;
    }
    for (uint32_t j = 0; j < ncols; j++) {
        uint32_t c = cols[j];
        float cs = sc->cs ? sc->cs[c] : 1.0f;
        float imp = w->importance ? w->importance[c] : (w->hessian ? w->hessian[(size_t)c * w->cols + c] : 1.0f);
        wk->dimw[j] = cs * cs * imp;
    }
    for (int64_t r = 0; r < w->rows; r++) {
        float rs = sc->rs ? sc->rs[r] : 1.0f;
        wk->rs2[r] = rs * rs;
    }
    for (uint32_t s = 0; s < wk->segs; s++) {
        double dw = 0.0;
        for (uint32_t t = 0; t < v && s * v + t < ncols; t++)
            dw += wk->dimw[s * v + t];
        for (int64_t r = 0; r < w->rows; r++) {
            float rs = sc->rs ? sc->rs[r] : 1.0f;
            float *x = wk->vec + ((size_t)s * (size_t)w->rows + (size_t)r) * v;
            for (uint32_t t = 0; t < v; t++) {
                uint32_t j = s * v + t;
                x[t] = 0.0f;
                if (j < ncols) {
                    uint32_t c = cols[j];
                    float d = rs * (sc->cs ? sc->cs[c] : 1.0f);
                    x[t] = d > 0.0f ? w->data[r * w->cols + c] / d : 0.0f;
                }
            }
            wk->wt[(size_t)s * (size_t)w->rows + (size_t)r] = (float)(wk->rs2[r] * dw);
        }
    }
    wk->gsegs = gsegs;
    wk->ngroups = hci_vq_ngroups(wk->segs, gsegs);
    if (wk->ngroups) {
        /* group scales: 4-bit log codes of each group's RMS, applied on top of row/column scales */
        wk->gs = hci_malloc_array((size_t)w->rows, (size_t)wk->ngroups * sizeof(float));
        wk->gq = hci_malloc_array((size_t)w->rows, wk->ngroups);
        if (!wk->gs || !wk->gq) {
            hci_vq_free_work(wk);
            return HC_ENOMEM;
        }
        for (int64_t r = 0; r < w->rows; r++)
            for (uint32_t g = 0; g < wk->ngroups; g++) {
                double e = 0.0;
                uint32_t cnt = 0;
                for (uint32_t s = g * gsegs; s < (g + 1) * gsegs && s < wk->segs; s++) {
                    const float *x = wk->vec + ((size_t)s * (size_t)w->rows + (size_t)r) * v;
                    for (uint32_t t = 0; t < v && s * v + t < ncols; t++, cnt++)
                        e += (double)x[t] * x[t];
                }
                int q = 0;
                if (e > 0.0) {
                    q = (int)lrint(log2(e / cnt) + 12.0); /* 2 log2(rms) + 12 */
                    q = q < 0 ? 0 : (q > 15 ? 15 : q);
                }
                float gsv = hci_vq_group_scale((uint32_t)q);
                wk->gq[(size_t)r * wk->ngroups + g] = (uint8_t)q;
                wk->gs[(size_t)r * wk->ngroups + g] = gsv;
                for (uint32_t s = g * gsegs; s < (g + 1) * gsegs && s < wk->segs; s++) {
                    float *x = wk->vec + ((size_t)s * (size_t)w->rows + (size_t)r) * v;
                    for (uint32_t t = 0; t < v; t++)
                        x[t] /= gsv;
                    wk->wt[(size_t)s * (size_t)w->rows + (size_t)r] *= gsv * gsv;
                }
            }
    }
    if (keep_original)
        memcpy(wk->vec0, wk->vec, nvec * v * sizeof(float));
    return HC_OK;
}

/* The part's Hessian in its column order, scaled by the column scales: H'[a][b] = cs_a cs_b H. */
float *hci_vq_part_hessian(const hci_matrix *w, const hci_vq_scales *sc, const uint32_t *cols, uint32_t ncols)
{
    float *h = hci_malloc_array((size_t)ncols * ncols, sizeof(float));
    if (!h)
        return NULL;
    for (uint32_t a = 0; a < ncols; a++)
        for (uint32_t b = 0; b < ncols; b++) {
            uint32_t ca = cols[a], cb = cols[b];
            float s = (sc->cs ? sc->cs[ca] * sc->cs[cb] : 1.0f);
            h[(size_t)a * ncols + b] = w->hessian[(size_t)ca * w->cols + cb] * s;
        }
    return h;
}

/* ---- quantising a part ---- */

static const float *weights_or_null(const hci_vq_work *wk)
{
    size_t n = (size_t)wk->segs * (size_t)wk->rows;
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += wk->wt[i];
    return total > 0.0 ? wk->wt : NULL;
}

/* Lloyd iterations on every vector after the codebook was trained on a subsample: each centroid
 * becomes the weighted mean of the vectors assigned to it (rounded to fp16, as stored), then all
 * are reassigned. The subsample's centroids fit the subsample; these fit the tensor, which lowers
 * the out-of-sample error the subsample leaves. Stops early when the error stops falling. */
#define FULL_LLOYD_ITERS 10u

static int full_lloyd(float *cb, uint32_t *idx, const float *vec, const float *wt, size_t n, uint32_t v, uint32_t k,
                      uint32_t threads)
{
    double *sum = hci_calloc((size_t)k * v, sizeof(double)), *cnt = hci_calloc(k, sizeof(double));
    float *dist = hci_malloc_array(n, sizeof(float));
    float *prev = hci_malloc_array(k, (size_t)v * sizeof(float));
    uint32_t *pidx = hci_malloc_array(n, sizeof(uint32_t));
    int rc = (!sum || !cnt || !dist || !prev || !pidx) ? HC_ENOMEM : HC_OK;
    double last = INFINITY;
    if (rc == HC_OK)
        rc = hci_kmeans_assign(idx, dist, vec, n, v, cb, k, NULL, threads);
    for (uint32_t it = 0; rc == HC_OK; it++) {
        double obj = 0.0;
        for (size_t i = 0; i < n; i++)
            obj += (wt ? wt[i] : 1.0) * dist[i];
        if (obj > last * (1.0 - 1e-4)) {
            if (obj > last) { /* worse: go back to the previous codebook and assignment */
                memcpy(cb, prev, sizeof(float) * (size_t)k * v);
                memcpy(idx, pidx, sizeof(uint32_t) * n);
            }
            break;
        }
        last = obj;
        if (it == FULL_LLOYD_ITERS)
            break;
        memcpy(prev, cb, sizeof(float) * (size_t)k * v);
        memcpy(pidx, idx, sizeof(uint32_t) * n);
        memset(sum, 0, sizeof(double) * (size_t)k * v);
        memset(cnt, 0, sizeof(double) * k);
        for (size_t i = 0; i < n; i++) {
            double w = wt ? wt[i] : 1.0;
            cnt[idx[i]] += w;
            for (uint32_t t = 0; t < v; t++)
                sum[(size_t)idx[i] * v + t] += w * vec[i * v + t];
        }
        for (uint32_t c = 0; c < k; c++)
            if (cnt[c] > 0.0)
                for (uint32_t t = 0; t < v; t++)
                    cb[(size_t)c * v + t] = (float)(sum[(size_t)c * v + t] / cnt[c]);
        hci_vq_round_f16(cb, (size_t)k * v);
        rc = hci_kmeans_assign(idx, dist, vec, n, v, cb, k, NULL, threads);
    }
    hci_free(sum);
    hci_free(cnt);
    hci_free(dist);
    hci_free(prev);
    hci_free(pidx);
    return rc;
}

/* ---- scale codes fitted to the codebook ----
 *
 * Rows and groups are refitted the same way: every vector belongs to one scale unit (a row, or a
 * row's group), and each unit's code is moved by 0, +1, -1, ... +width, -width; for each offset
 * every vector is reassigned with the fixed codebook and each unit keeps the offset whose
 * weighted error was lowest. What differs per kind is only the unit of a vector and the scale a
 * code gives, which the two callbacks below say. */
typedef struct scale_units {
    size_t n;                                              /* units */
    int width;                                             /* largest code offset tried */
    size_t (*unit)(const hci_vq_work *wk, size_t i);       /* vector i's unit */
    /* unit u's scale at code offset off (0 for a unit with no scale); *ok = 0 when the code
     * is out of range, so that offset cannot be picked */
    float (*scale)(const hci_vq_work *wk, const hci_vq_scales *sc, size_t u, int off, int *ok);
    const hci_vq_scales *sc;
} scale_units;

/* pick[u]: the best offset of unit u; y: the vectors before their unit's scale. */
static int search_codes(int *pick, const scale_units *su, const hci_vq_work *wk, const float *y, const float *cb,
                        uint32_t k, uint32_t threads)
{
    size_t n = (size_t)wk->segs * (size_t)wk->rows;
    uint32_t v = wk->v;
    float *t = hci_malloc_array(n, (size_t)v * sizeof(float)), *f = hci_malloc_array(n, sizeof(float));
    uint32_t *ti = hci_malloc_array(n, sizeof(uint32_t));
    double *err = hci_malloc_array(su->n, sizeof(double)), *best = hci_malloc_array(su->n, sizeof(double));
    int rc = (!t || !f || !ti || !err || !best) ? HC_ENOMEM : HC_OK;
    for (int d = 0; rc == HC_OK && d <= 2 * su->width; d++) {
        int off = d == 0 ? 0 : (d % 2 ? (d + 1) / 2 : -(d / 2)); /* 0, +1, -1, +2, -2 */
        int ok;
        for (size_t i = 0; i < n; i++) {
            f[i] = su->scale(wk, su->sc, su->unit(wk, i), off, &ok);
            for (uint32_t u = 0; u < v; u++)
                t[i * v + u] = f[i] > 0.0f ? y[i * v + u] / f[i] : 0.0f;
        }
        rc = hci_kmeans_assign(ti, NULL, t, n, v, cb, k, NULL, threads);
        if (rc != HC_OK)
            break;
        memset(err, 0, sizeof(double) * su->n);
        for (size_t i = 0; i < n; i++) {
            size_t s = i / (size_t)wk->rows, un = su->unit(wk, i);
            const float *c = cb + (size_t)ti[i] * v;
            for (uint32_t u = 0; u < v && s * v + u < wk->ncols; u++) {
                double e = (double)y[i * v + u] - (double)f[i] * c[u];
                err[un] += wk->dimw[s * v + u] * e * e;
            }
        }
        for (size_t un = 0; un < su->n; un++) {
            su->scale(wk, su->sc, un, off, &ok);
            if (d == 0 || (ok && err[un] < best[un])) {
                best[un] = err[un];
                pick[un] = off;
            }
        }
    }
    hci_free(t);
    hci_free(f);
    hci_free(ti);
    hci_free(err);
    hci_free(best);
    return rc;
}

/* The vectors rebuilt from y with their unit's new scale (ns), their weights times the unit's
 * ratio, and reassigned. */
static int apply_scales(hci_vq_work *wk, const scale_units *su, const float *y, const float *ns, const double *ratio,
                        const float *cb, uint32_t *idx, uint32_t k, uint32_t threads)
{
    size_t n = (size_t)wk->segs * (size_t)wk->rows;
    uint32_t v = wk->v;
    for (size_t i = 0; i < n; i++) {
        size_t un = su->unit(wk, i);
        for (uint32_t u = 0; u < v; u++) {
            wk->vec[i * v + u] = ns[un] > 0.0f ? y[i * v + u] / ns[un] : 0.0f;
            if (wk->vec0)
                wk->vec0[i * v + u] = wk->vec[i * v + u];
        }
        wk->wt[i] = (float)(wk->wt[i] * ratio[un]);
    }
    return hci_kmeans_assign(idx, NULL, wk->vec, n, v, cb, k, NULL, threads);
}

static size_t group_of(const hci_vq_work *wk, size_t i)
{
    size_t r = i % (size_t)wk->rows, s = i / (size_t)wk->rows;
    return r * wk->ngroups + s / wk->gsegs;
}

static float group_scale_at(const hci_vq_work *wk, const hci_vq_scales *sc, size_t u, int off, int *ok)
{
    (void)sc;
    int q = (int)wk->gq[u] + off;
    *ok = q >= 0 && q <= 15;
    return hci_vq_group_scale((uint32_t)(q < 0 ? 0 : (q > 15 ? 15 : q)));
}

static size_t row_of(const hci_vq_work *wk, size_t i)
{
    return i % (size_t)wk->rows;
}

/* A zero row (code 255) has no scale and keeps its code. */
static float row_scale_at(const hci_vq_work *wk, const hci_vq_scales *sc, size_t u, int off, int *ok)
{
    (void)wk;
    int q = (int)sc->rq[u] + off;
    *ok = sc->rq[u] != 255 && q >= 0 && q <= 254;
    return sc->rq[u] == 255 ? 0.0f
                            : hci_vq_row_scale(hci_f16_to_f32(sc->rbase_h), (uint8_t)(q < 0 ? 0 : (q > 254 ? 254 : q)));
}

/* What refitting rows and groups share: y, the vectors before their unit's current scale (cur,
 * one per unit); each unit's best code offset; then adopt() moves the codes and scales (cur
 * among them) and gives each unit's error-weight ratio, and the vectors are rebuilt from y and
 * reassigned. */
typedef void (*adopt_fn)(hci_vq_work *wk, hci_vq_scales *sc, const int *pick, double *ratio);

static int refit_units(hci_vq_work *wk, hci_vq_scales *sc, const scale_units *su, const float *cur, adopt_fn adopt,
                       const float *cb, uint32_t *idx, uint32_t k, uint32_t threads)
{
    size_t n = (size_t)wk->segs * (size_t)wk->rows;
    uint32_t v = wk->v;
    float *y = hci_malloc_array(n, (size_t)v * sizeof(float));
    double *ratio = hci_malloc_array(su->n, sizeof(double));
    int *pick = hci_calloc(su->n, sizeof(int));
    int rc = (!y || !ratio || !pick) ? HC_ENOMEM : HC_OK;
    for (size_t i = 0; rc == HC_OK && i < n; i++) {
        float f = cur[su->unit(wk, i)];
        for (uint32_t u = 0; u < v; u++)
            y[i * v + u] = wk->vec[i * v + u] * f;
    }
    if (rc == HC_OK)
        rc = search_codes(pick, su, wk, y, cb, k, threads);
    if (rc == HC_OK) {
        adopt(wk, sc, pick, ratio);
        rc = apply_scales(wk, su, y, cur, ratio, cb, idx, k, threads);
    }
    hci_free(y);
    hci_free(ratio);
    hci_free(pick);
    return rc;
}

#define GROUP_SEARCH 3

static void adopt_group_codes(hci_vq_work *wk, hci_vq_scales *sc, const int *pick, double *ratio)
{
    (void)sc;
    for (size_t gi = 0; gi < (size_t)wk->rows * wk->ngroups; gi++) {
        uint32_t q = (uint32_t)((int)wk->gq[gi] + pick[gi]);
        float g0 = wk->gs[gi];
        wk->gq[gi] = (uint8_t)q;
        wk->gs[gi] = hci_vq_group_scale(q);
        ratio[gi] = ((double)wk->gs[gi] * wk->gs[gi]) / ((double)g0 * g0);
    }
}

int hci_vq_refit_groups(hci_vq_work *wk, const float *cb, uint32_t *idx, uint32_t k, uint32_t threads)
{
    const scale_units su = { (size_t)wk->rows * wk->ngroups, GROUP_SEARCH, group_of, group_scale_at, NULL };
    return refit_units(wk, NULL, &su, wk->gs, adopt_group_codes, cb, idx, k, threads);
}

#define ROW_SEARCH 8

/* A zero row (code 255) and a row whose best offset is 0 keep their code. */
static void adopt_row_codes(hci_vq_work *wk, hci_vq_scales *sc, const int *pick, double *ratio)
{
    float base = hci_f16_to_f32(sc->rbase_h);
    for (size_t r = 0; r < (size_t)wk->rows; r++) {
        if (sc->rq[r] == 255 || !pick[r]) {
            ratio[r] = 1.0;
            continue;
        }
        float old = sc->rs[r];
        sc->rq[r] = (uint8_t)((int)sc->rq[r] + pick[r]);
        sc->rs[r] = hci_vq_row_scale(base, sc->rq[r]);
        wk->rs2[r] = sc->rs[r] * sc->rs[r];
        ratio[r] = ((double)sc->rs[r] * sc->rs[r]) / ((double)old * old);
    }
}

int hci_vq_refit_rows(hci_vq_work *wk, hci_vq_scales *sc, const float *cb, uint32_t *idx, uint32_t k,
                      uint32_t threads)
{
    const scale_units su = { (size_t)wk->rows, ROW_SEARCH, row_of, row_scale_at, sc };
    return refit_units(wk, sc, &su, sc->rs, adopt_row_codes, cb, idx, k, threads);
}

int hci_vq_quantise_part(float *cb[2], uint32_t *idx[2], const hci_vq_work *wk, const hci_vq_part_cfg *pc, const float *h,
                     const hci_vq_opts *o, uint32_t threads)
{
    size_t n = (size_t)wk->segs * (size_t)wk->rows;
    uint32_t v = wk->v;
    const float *wt = weights_or_null(wk);
    hc_kmeans_options ko = HC_KMEANS_OPTIONS_INIT;
    ko.max_iter = o->iters;
    ko.seed = o->seed;
    ko.threads = threads;
    ko.max_points = o->train_points;
    ko.k = 1u << pc->bits[0];
    int rc = HC_OK;
    if (pc->builtin)
        hci_vq_builtin_load(cb[0], pc->v, pc->bits[0]);
    else
        rc = hc_kmeans_learn(cb[0], wk->vec, n, v, wt, &ko, NULL);
    if (rc != HC_OK)
        return rc;
    hci_vq_round_f16(cb[0], (size_t)ko.k * v);
    if (!pc->builtin && o->train_points && n > o->train_points)
        rc = full_lloyd(cb[0], idx[0], wk->vec, wt, n, v, ko.k, threads);
    else
        rc = hci_kmeans_assign(idx[0], NULL, wk->vec, n, v, cb[0], ko.k, NULL, threads);
    if (rc == HC_OK && !pc->bits[1] && !h && wk->ngroups)
        rc = hci_vq_refit_groups((hci_vq_work *)wk, cb[0], idx[0], ko.k, threads);
    if (rc != HC_OK || !pc->bits[1])
        goto hessian;
    float *res = hci_malloc_array(n, (size_t)v * sizeof(float));
    if (!res)
        return HC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < v; t++)
            res[i * v + t] = wk->vec[i * v + t] - cb[0][(size_t)idx[0][i] * v + t];
    ko.k = 1u << pc->bits[1];
    ko.seed = o->seed + 1;
    rc = hc_kmeans_learn(cb[1], res, n, v, wt, &ko, NULL);
    if (rc == HC_OK) {
        hci_vq_round_f16(cb[1], (size_t)ko.k * v);
        rc = hci_kmeans_assign(idx[1], NULL, res, n, v, cb[1], ko.k, NULL, threads);
    }
    hci_free(res);
hessian:
    if (rc == HC_OK && h) {
        uint32_t k[2] = { 1u << pc->bits[0], pc->bits[1] ? 1u << pc->bits[1] : 0u };
        rc = hci_vq_gptq_assign(idx, (hci_vq_work *)wk, (const float *const *)cb, k, h, threads);
    }
    return rc;
}

/* ---- the codec's compress ---- */

int hci_vq_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    const hci_vq_opts *o = c->opts;
    /* codebooks and column scales are fp16: refuse what they cannot hold rather than store inf */
    for (int64_t i = 0; i < w->numel; i++)
        if (fabsf(w->data[i]) > 60000.0f)
            return hci_fail(HC_EINVAL, "tensor '%s' holds %g at index %lld; VPTQ stores codebooks and scales in "
                            "fp16, so values must stay within +-60000", w->name, (double)w->data[i], (long long)i);
    hci_vq_config cfg;
    int rc = hci_vq_plan(&cfg, o, w, ct->ndim, c->threads);
    if (rc != HC_OK)
        return rc;
    hci_vq_sections sec;
    if (!hci_vq_layout(&sec, &cfg, w->rows, w->cols) || sec.payload_len > SIZE_MAX / 2)
        return hci_fail(HC_EINVAL, "tensor '%s' (%lld x %lld) is too large for VPTQ", w->name, (long long)w->rows,
                        (long long)w->cols);
    uint8_t *params = hci_calloc(sec.params_len, 1);
    uint8_t *payload = hci_calloc((size_t)sec.payload_len ? (size_t)sec.payload_len : 1, 1);
    uint32_t *outs = hci_malloc_array(cfg.n_out ? cfg.n_out : 1, sizeof(uint32_t));
    uint32_t *cols = hci_malloc_array((size_t)w->cols, sizeof(uint32_t));
    hci_vq_scales sc;
    memset(&sc, 0, sizeof sc);
    if (!params || !payload || !outs || !cols) {
        rc = HC_ENOMEM;
        goto fail;
    }
    hci_vq_write_params(params, &cfg);
    rc = hci_vq_make_scales(&sc, w, cfg.flags);
    if (rc == HC_OK)
        rc = hci_vq_pick_outliers(outs, cfg.n_out, w);
    if (rc != HC_OK)
        goto fail;
    for (uint32_t i = 0; i < cfg.n_out; i++)
        for (uint32_t b = 0; b < sec.col_bits; b++)
            if ((outs[i] >> b) & 1u) {
                uint64_t bit = (uint64_t)i * sec.col_bits + b;
                payload[sec.out_cols + (bit >> 3)] |= (uint8_t)(1u << (bit & 7));
            }
    if (sc.cs)
        for (int64_t j = 0; j < w->cols; j++)
            hci_put_u16(payload + sec.col_scales + 2 * j, hci_f32_to_f16(sc.cs[j]));
    for (uint32_t p = 0; p < hci_vq_nparts(&cfg) && rc == HC_OK; p++) {
        const hci_vq_part_cfg *pc = &cfg.part[p];
        uint32_t ncols = hci_vq_part_cols(&cfg, w->cols, p);
        const uint32_t *pcols = outs;
        if (p == 0) {
            uint32_t j = 0, q = 0;
            for (uint32_t cc = 0; cc < (uint32_t)w->cols; cc++) {
                if (q < cfg.n_out && outs[q] == cc) {
                    q++;
                    continue;
                }
                cols[j++] = cc;
            }
            pcols = cols;
        }
        hci_vq_work wk;
        int need_orig = w->hessian != NULL || o->refine > 0;
        rc = hci_vq_make_work(&wk, w, &sc, pcols, ncols, pc->v, pc->gsegs, need_orig);
        if (rc != HC_OK)
            break;
        float *h = NULL;
        if (w->hessian && !(h = hci_vq_part_hessian(w, &sc, pcols, ncols))) {
            hci_vq_free_work(&wk);
            rc = HC_ENOMEM;
            break;
        }
        size_t nvec = (size_t)wk.segs * (size_t)wk.rows;
        float *cb[2] = { NULL, NULL };
        uint32_t *idx[2] = { NULL, NULL };
        for (int s = 0; s < 2 && rc == HC_OK; s++) {
            if (!pc->bits[s])
                continue;
            cb[s] = hci_malloc_array((size_t)1 << pc->bits[s], (size_t)pc->v * sizeof(float));
            idx[s] = hci_malloc_array(nvec, sizeof(uint32_t));
            if (!cb[s] || !idx[s])
                rc = HC_ENOMEM;
        }
        if (rc == HC_OK)
            rc = hci_vq_quantise_part(cb, idx, &wk, pc, h, o, c->threads);
        if (rc == HC_OK && hci_vq_refits_rows(&cfg, w))
            rc = hci_vq_refit_rows(&wk, &sc, cb[0], idx[0], 1u << pc->bits[0], c->threads);
        /* a built-in codebook is not stored, so refinement would have nothing to change */
        if (rc == HC_OK && o->refine && !pc->builtin) {
            uint32_t k[2] = { 1u << pc->bits[0], pc->bits[1] ? 1u << pc->bits[1] : 0u };
            rc = hci_vq_refine(cb, k, idx, &wk, h, o->refine, (int)o->grokfast, NULL);
        }
        for (size_t i = 0; rc == HC_OK && i < (size_t)w->rows * wk.ngroups; i++)
            payload[sec.grp[p] + i / 2] |= (uint8_t)(wk.gq[i] << (4 * (i & 1)));
        for (int s = 0; s < 2 && rc == HC_OK; s++) {
            if (!pc->bits[s])
                continue;
            size_t kk = (size_t)1 << pc->bits[s];
            for (size_t e = 0; e < kk * pc->v && !(s == 0 && pc->builtin); e++)
                hci_put_u16(payload + sec.cb[p][s] + 2 * e, hci_f32_to_f16(cb[s][e]));
            hci_vq_put_indices(payload + sec.idx[p][s], idx[s], w->rows, wk.segs, pc->bits[s]);
        }
        for (int s = 0; s < 2; s++) {
            hci_free(cb[s]);
            hci_free(idx[s]);
        }
        hci_free(h);
        hci_vq_free_work(&wk);
    }
    if (rc != HC_OK)
        goto fail;
    /* written last: the row codes may have been fitted to the codebook */
    if (sc.rs) {
        hci_put_u16(payload + sec.row_scales, sc.rbase_h);
        memcpy(payload + sec.row_scales + 2, sc.rq, (size_t)w->rows);
    }
    hci_vq_free_scales(&sc);
    hci_free(outs);
    hci_free(cols);
    ct->params = params;
    ct->params_len = sec.params_len;
    ct->payload = payload;
    ct->payload_len = sec.payload_len;
    return HC_OK;
fail:
    hci_vq_free_scales(&sc);
    hci_free(outs);
    hci_free(cols);
    hci_free(params);
    hci_free(payload);
    return rc;
}
