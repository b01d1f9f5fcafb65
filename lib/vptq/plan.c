/* Choosing a VPTQ layout per tensor under a bits-per-weight budget. Every candidate's exact
 * serialised size (generic header, params, scales, codebooks, index streams, CRC) is computed
 * before it is considered, so the chosen layout always fits. Candidates are compared by
 * measurement: a short k-means on a sample of the tensor's own vectors, error weighted as the
 * final loss is. When every trial would be too costly (large tensors with large codebooks) the
 * highest index rate wins, then the longest vectors, then a single stage. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "kmeans.h"
#include "vptq/builtin.h"
#include "vptq/encode.h"

#define TRIAL_VECTORS 32768u
#define TRIAL_ITERS 8u
/* Multiply-adds a single trial may cost before the planner falls back to its rule. */
#define TRIAL_WORK 3.0e9

typedef struct cand {
    hci_vq_config cfg;
    double err;
} cand;

static int weights_sum_ok(const float *w, size_t n)
{
    double t = 0.0;
    for (size_t i = 0; i < n; i++)
        t += w[i];
    return t > 0.0;
}

static uint32_t log2u(uint32_t k)
{
    uint32_t b = 0;
    while ((1u << b) < k)
        b++;
    return b;
}

static double budget_bytes(const hci_vq_opts *o, const hci_matrix *w)
{
    return o->bpw > 0.0f ? floor((double)o->bpw * (double)w->numel / 8.0) : INFINITY;
}

static int fits(const hci_vq_config *c, const hci_matrix *w, uint32_t ndim, double budget)
{
    uint64_t b = hci_vq_serialized_bytes(c, w->rows, w->cols, ndim);
    return b != UINT64_MAX && (double)b <= budget;
}

/* The outlier part follows the main part's vector length and index bits with codebooks of
 * its own, so the few columns that dominate the error stop distorting the main codebook. */
static void set_outliers(hci_vq_config *c)
{
    if (!c->n_out)
        return;
    c->part[1].v = c->part[0].v;
    c->part[1].bits[0] = c->part[0].bits[0];
    c->part[1].bits[1] = c->part[0].bits[1];
    c->part[1].gsegs = 0;
    c->part[1].builtin = c->part[0].builtin;
}

/* The largest single-stage layout with the built-in codebook of v-vectors that fits (k as the
 * options say when given); 0 when none does. */
static int builtin_fit(hci_vq_config *out, const hci_vq_config *base, uint32_t v, const hci_vq_opts *o,
                       const hci_matrix *w, uint32_t ndim, double budget)
{
    if (o->codebook == HC_VPTQ_CODEBOOK_LEARNED || (o->residual_k != 0 && o->residual_k != HC_VPTQ_AUTO))
        return 0;
    hci_vq_config c = *base;
    /* the table holds unit-RMS centroids: the data must be normalised to match */
    if (!(c.flags & (VQ_FLAG_ROW | VQ_FLAG_COL))) {
        if (o->scale != HC_VPTQ_SCALE_AUTO)
            return 0;
        c.flags |= VQ_FLAG_ROW;
    }
    c.part[0].v = v;
    c.part[0].bits[1] = 0;
    c.part[0].builtin = 1;
    for (uint32_t b = VQ_MAX_BITS; b >= 1; b--) {
        if ((o->k && b != log2u(o->k)) || !hci_vq_builtin_table(v, b))
            continue;
        c.part[0].bits[0] = b;
        set_outliers(&c);
        if (fits(&c, w, ndim, budget)) {
            *out = c;
            return 1;
        }
    }
    return 0;
}

/* The largest layout with vector length v and the requested stage structure that fits;
 * returns 0 when none does. stages: 1 single, 2 two stages, 0 as the options say. */
static int best_fit(hci_vq_config *out, const hci_vq_config *base, uint32_t v, int stages, const hci_vq_opts *o,
                    const hci_matrix *w, uint32_t ndim, double budget)
{
    if (o->codebook == HC_VPTQ_CODEBOOK_BUILTIN)
        return stages == 2 ? 0 : builtin_fit(out, base, v, o, w, ndim, budget);
    hci_vq_config c = *base;
    c.part[0].v = v;
    c.part[0].builtin = 0;
    if (o->k) {
        c.part[0].bits[0] = log2u(o->k);
        uint32_t r = o->residual_k == HC_VPTQ_AUTO ? 0 : o->residual_k;
        if (o->residual_k == HC_VPTQ_AUTO && stages == 2) {
            for (uint32_t b1 = VQ_MAX_BITS; b1 >= 1; b1--) {
                c.part[0].bits[1] = b1;
                set_outliers(&c);
                if (fits(&c, w, ndim, budget)) {
                    *out = c;
                    return 1;
                }
            }
            return 0;
        }
        c.part[0].bits[1] = r ? log2u(r) : 0;
        set_outliers(&c);
        if (!fits(&c, w, ndim, budget))
            return 0;
        *out = c;
        return 1;
    }
    if (stages == 1) {
        for (uint32_t b = VQ_MAX_BITS; b >= 1; b--) {
            c.part[0].bits[0] = b;
            c.part[0].bits[1] = 0;
            set_outliers(&c);
            if (fits(&c, w, ndim, budget)) {
                *out = c;
                return 1;
            }
        }
        return 0;
    }
    if (o->residual_k != HC_VPTQ_AUTO) {
        /* a fixed residual size: the largest main codebook that fits beside it */
        uint32_t b1 = log2u(o->residual_k);
        for (uint32_t b = VQ_MAX_BITS; b >= 1; b--) {
            c.part[0].bits[0] = b;
            c.part[0].bits[1] = b1;
            set_outliers(&c);
            if (fits(&c, w, ndim, budget)) {
                *out = c;
                return 1;
            }
        }
        return 0;
    }
    for (uint32_t t = 2 * VQ_MAX_BITS; t >= 2; t--) {
        c.part[0].bits[0] = (t + 1) / 2;
        c.part[0].bits[1] = t / 2;
        set_outliers(&c);
        if (fits(&c, w, ndim, budget)) {
            *out = c;
            return 1;
        }
    }
    return 0;
}

static double trial_work(const hci_vq_config *c, const hci_matrix *w)
{
    double total = 0.0;
    for (uint32_t p = 0; p < hci_vq_nparts(c); p++) {
        const hci_vq_part_cfg *pc = &c->part[p];
        double n = ceil((double)hci_vq_part_cols(c, w->cols, p) / pc->v) * (double)w->rows;
        double tr = n < TRIAL_VECTORS ? n : TRIAL_VECTORS;
        for (int s = 0; s < 2; s++)
            if (pc->bits[s])
                total += (tr * ((s == 0 && pc->builtin) ? 0 : TRIAL_ITERS + 1) + tr) * (double)(1u << pc->bits[s]) * pc->v;
    }
    return total;
}

/* Weighted squared error in the original space of a short trial of layout c. */
static int trial(double *err, const hci_vq_config *c, const hci_matrix *w, const hci_vq_opts *o, uint32_t threads)
{
    hci_vq_scales sc;
    int rc = hci_vq_make_scales(&sc, w, c->flags);
    if (rc != HC_OK)
        return rc;
    uint32_t *outs = hci_malloc_array(c->n_out ? c->n_out : 1, sizeof(uint32_t));
    uint32_t *cols = hci_malloc_array((size_t)w->cols, sizeof(uint32_t));
    if (!outs || !cols)
        rc = HC_ENOMEM;
    if (rc == HC_OK)
        rc = hci_vq_pick_outliers(outs, c->n_out, w);
    double total = 0.0;
    for (uint32_t p = 0; p < hci_vq_nparts(c) && rc == HC_OK; p++) {
        const hci_vq_part_cfg *pc = &c->part[p];
        uint32_t ncols = hci_vq_part_cols(c, w->cols, p);
        const uint32_t *pcols = outs;
        if (p == 0) {
            uint32_t j = 0, q = 0;
            for (uint32_t cc = 0; cc < (uint32_t)w->cols; cc++) {
                if (q < c->n_out && outs[q] == cc) {
                    q++;
                    continue;
                }
                cols[j++] = cc;
            }
            pcols = cols;
        }
        hci_vq_work wk;
        rc = hci_vq_make_work(&wk, w, &sc, pcols, ncols, pc->v, pc->gsegs, 0);
        if (rc != HC_OK)
            break;
        size_t n = (size_t)wk.segs * (size_t)wk.rows, m = n < TRIAL_VECTORS ? n : TRIAL_VECTORS;
        uint32_t v = pc->v;
        /* evaluation sample: every (n/m)-th vector; with m == n, the tensor itself */
        float *ev = hci_malloc_array(m, (size_t)v * sizeof(float));
        float *ew = hci_malloc_array(m, sizeof(float));
        size_t *src = hci_malloc_array(m, sizeof(size_t));
        uint32_t *idx = hci_malloc_array(m, sizeof(uint32_t));
        float *cb = hci_malloc_array((size_t)1 << (pc->bits[0] > pc->bits[1] ? pc->bits[0] : pc->bits[1]),
                                     (size_t)v * sizeof(float));
        if (!ev || !ew || !src || !idx || !cb)
            rc = HC_ENOMEM;
        double wsum = 0.0;
        for (size_t i = 0; i < m && rc == HC_OK; i++) {
            src[i] = (size_t)((double)i * (double)n / (double)m);
            memcpy(ev + i * v, wk.vec + src[i] * v, sizeof(float) * v);
            ew[i] = wk.wt[src[i]];
            wsum += ew[i];
        }
        for (int s = 0; s < 2 && rc == HC_OK; s++) {
            if (!pc->bits[s])
                continue;
            hc_kmeans_options ko = HC_KMEANS_OPTIONS_INIT;
            ko.k = 1u << pc->bits[s];
            ko.max_iter = o->iters < TRIAL_ITERS ? o->iters : TRIAL_ITERS;
            ko.seed = o->seed + (uint64_t)s;
            ko.threads = threads;
            ko.max_points = TRIAL_VECTORS;
            /* stage 0 learns from all vectors (subsampled); stage 1 from the sample's residuals */
            if (s == 0 && pc->builtin)
                hci_vq_builtin_load(cb, v, pc->bits[0]);
            else if (s == 0)
                rc = hc_kmeans_learn(cb, wk.vec, n, v, weights_sum_ok(wk.wt, n) ? wk.wt : NULL, &ko, NULL);
            else
                rc = hc_kmeans_learn(cb, ev, m, v, wsum > 0.0 ? ew : NULL, &ko, NULL);
            if (rc != HC_OK)
                break;
            hci_vq_round_f16(cb, (size_t)ko.k * v);
            /* the sample is the whole part: fit the group scales to the codebook as the encoder
             * will (only when the part has one stage and no Hessian, as there) */
            if (s == 0 && m == n && wk.ngroups && !pc->bits[1] && !w->hessian) {
                rc = hci_vq_refit_groups(&wk, cb, idx, ko.k, threads);
                for (size_t i = 0; i < m && rc == HC_OK; i++)
                    memcpy(ev + i * v, wk.vec + i * v, sizeof(float) * v);
                for (size_t i = 0; i < m && rc == HC_OK; i++)
                    for (uint32_t t = 0; t < v; t++)
                        ev[i * v + t] -= cb[(size_t)idx[i] * v + t];
                continue;
            }
            if (s == 0 && m == n && hci_vq_refits_rows(c, w)) {
                rc = hci_vq_refit_rows(&wk, &sc, cb, idx, ko.k, threads);
                for (size_t i = 0; i < m && rc == HC_OK; i++)
                    for (uint32_t t = 0; t < v; t++)
                        ev[i * v + t] = wk.vec[i * v + t] - cb[(size_t)idx[i] * v + t];
                continue;
            }
            rc = hci_kmeans_assign(idx, NULL, ev, m, v, cb, ko.k, NULL, threads);
            for (size_t i = 0; i < m && rc == HC_OK; i++)
                for (uint32_t t = 0; t < v; t++)
                    ev[i * v + t] -= cb[(size_t)idx[i] * v + t];
        }
        /* ev now holds the sample's errors: weight them as the loss does */
        double e = 0.0;
        for (size_t i = 0; i < m && rc == HC_OK; i++) {
            size_t sg = src[i] / (size_t)wk.rows, r = src[i] % (size_t)wk.rows;
            double d = 0.0;
            for (uint32_t t = 0; t < v && sg * v + t < ncols; t++)
                d += (double)wk.dimw[sg * v + t] * ev[i * v + t] * ev[i * v + t];
            float g = hci_vq_work_gs(&wk, (uint32_t)sg, (int64_t)r);
            e += wk.rs2[r] * g * g * d;
        }
        total += e * (double)n / (double)m;
        hci_free(ev);
        hci_free(ew);
        hci_free(src);
        hci_free(idx);
        hci_free(cb);
        hci_vq_free_work(&wk);
    }
    hci_free(outs);
    hci_free(cols);
    hci_vq_free_scales(&sc);
    *err = total;
    return rc;
}

static const uint32_t scale_flags[] = { 0u, 0u, VQ_FLAG_ROW, VQ_FLAG_COL, VQ_FLAG_ROW | VQ_FLAG_COL };

int hci_vq_plan(hci_vq_config *cfg, const hci_vq_opts *o, const hci_matrix *w, uint32_t ndim, uint32_t threads)
{
    double budget = budget_bytes(o, w);
    hci_vq_config base;
    memset(&base, 0, sizeof base);
    base.n_out = (uint32_t)floor((double)o->outlier_fraction * (double)w->cols + 0.5);
    if ((int64_t)base.n_out >= w->cols)
        base.n_out = (uint32_t)(w->cols - 1);
    if (o->bpw <= 0.0f && (!o->v || !o->k))
        return hci_fail(HC_EINVAL, "tensor '%s': without a bpw budget VPTQ needs both v and k", w->name);

    /* 1. the scale mode, measured with a cheap probe layout when it is not given */
    uint32_t flags = scale_flags[o->scale];
    if (o->scale == HC_VPTQ_SCALE_AUTO) {
        double best = INFINITY;
        int found = 0;
        for (int m = HC_VPTQ_SCALE_NONE; m <= HC_VPTQ_SCALE_BOTH; m++) {
            hci_vq_config b = base, c;
            b.flags = scale_flags[m];
            hci_vq_opts po = *o;
            uint32_t v = o->v ? o->v : 2;
            if (!o->k)
                po.residual_k = 0;
            if (!best_fit(&c, &b, v, o->k ? 0 : 1, &po, w, ndim, budget))
                continue;
            if (!o->k && c.part[0].bits[0] > 8) {
                c.part[0].bits[0] = 8;
                set_outliers(&c);
            }
            double e;
            int rc = trial(&e, &c, w, o, threads);
            if (rc != HC_OK)
                return rc;
            if (!found || e < best) {
                best = e;
                flags = b.flags;
                found = 1;
            }
        }
    }
    base.flags = flags;

    /* 2. candidates: each vector length, one or two stages */
    cand cands[4 * VQ_MAX_V];
    size_t nc = 0;
    uint32_t v_lo = o->v ? o->v : 2, v_hi = o->v ? o->v : 8;
    for (uint32_t v = v_lo; v <= v_hi; v++) {
        /* the built-in codebook, when it exists for v: no codebook bits, so more index bits */
        if (o->codebook == HC_VPTQ_CODEBOOK_AUTO && builtin_fit(&cands[nc].cfg, &base, v, o, w, ndim, budget))
            nc++;
        /* and with column then row scales, which equalise a matrix for a fixed table best */
        if (o->codebook != HC_VPTQ_CODEBOOK_LEARNED && o->scale == HC_VPTQ_SCALE_AUTO &&
            base.flags != (VQ_FLAG_ROW | VQ_FLAG_COL)) {
            hci_vq_config b = base;
            b.flags = VQ_FLAG_ROW | VQ_FLAG_COL;
            if (builtin_fit(&cands[nc].cfg, &b, v, o, w, ndim, budget))
                nc++;
        }
        if (o->codebook == HC_VPTQ_CODEBOOK_BUILTIN) {
            if (builtin_fit(&cands[nc].cfg, &base, v, o, w, ndim, budget))
                nc++;
            continue;
        }
        if (o->k) {
            if (best_fit(&cands[nc].cfg, &base, v, o->residual_k == HC_VPTQ_AUTO ? 1 : 0, o, w, ndim, budget))
                nc++;
            if (o->residual_k == HC_VPTQ_AUTO && best_fit(&cands[nc].cfg, &base, v, 2, o, w, ndim, budget))
                nc++;
            continue;
        }
        if (o->residual_k == 0 || o->residual_k == HC_VPTQ_AUTO)
            if (best_fit(&cands[nc].cfg, &base, v, 1, o, w, ndim, budget))
                nc++;
        if (o->residual_k != 0 && best_fit(&cands[nc].cfg, &base, v, 2, o, w, ndim, budget))
            nc++;
    }
    if (nc == 0) {
        hci_vq_config c = base;
        c.part[0].v = v_lo;
        c.part[0].bits[0] = o->k ? log2u(o->k) : 1;
        c.part[0].bits[1] = (o->residual_k && o->residual_k != HC_VPTQ_AUTO) ? log2u(o->residual_k) : 0;
        set_outliers(&c);
        uint64_t need = hci_vq_serialized_bytes(&c, w->rows, w->cols, ndim);
        if (o->codebook == HC_VPTQ_CODEBOOK_BUILTIN)
            return hci_fail(HC_EINVAL,
                            "tensor '%s' (%lld x %lld) cannot be coded in %g bpw with a built-in codebook "
                            "(the fewest index bits they offer are 2 a weight)",
                            w->name, (long long)w->rows, (long long)w->cols, (double)o->bpw);
        return hci_fail(HC_EINVAL,
                        "tensor '%s' (%lld x %lld) cannot be coded in %g bpw: the smallest VPTQ layout "
                        "(v=%u, k=%u) needs %.3f bpw",
                        w->name, (long long)w->rows, (long long)w->cols, (double)o->bpw, c.part[0].v,
                        1u << c.part[0].bits[0], 8.0 * (double)need / (double)w->numel);
    }
    /* Candidates too costly to trial are kept only when one of them promises a higher index
     * rate than every affordable candidate; then the rule decides among all of them. Otherwise
     * they are dropped and the affordable ones are measured. */
    double aff_rate = -1.0, unaff_rate = -1.0;
    for (size_t i = 0; i < nc; i++) {
        const hci_vq_part_cfg *a = &cands[i].cfg.part[0];
        double r = (double)(a->bits[0] + a->bits[1]) / a->v;
        if (trial_work(&cands[i].cfg, w) > TRIAL_WORK)
            unaff_rate = r > unaff_rate ? r : unaff_rate;
        else
            aff_rate = r > aff_rate ? r : aff_rate;
    }
    int affordable = unaff_rate < aff_rate - 1e-9;
    if (affordable) {
        size_t j = 0;
        for (size_t i = 0; i < nc; i++)
            if (trial_work(&cands[i].cfg, w) <= TRIAL_WORK)
                cands[j++] = cands[i];
        nc = j;
    }
    size_t pick = 0;
    if (affordable && nc > 1) {
        for (size_t i = 0; i < nc; i++) {
            int rc = trial(&cands[i].err, &cands[i].cfg, w, o, threads);
            if (rc != HC_OK)
                return rc;
            if (cands[i].err < cands[pick].err)
                pick = i;
        }
    } else {
        for (size_t i = 1; i < nc; i++) {
            const hci_vq_part_cfg *a = &cands[i].cfg.part[0], *b = &cands[pick].cfg.part[0];
            double ra = (double)(a->bits[0] + a->bits[1]) / a->v, rb = (double)(b->bits[0] + b->bits[1]) / b->v;
            int sa = a->bits[1] ? 2 : 1, sb = b->bits[1] ? 2 : 1;
            /* ties: one stage, then the longer vector, then a learned codebook (large tensors,
             * where the rule applies, pay little for one) */
            if (ra > rb + 1e-9 ||
                (fabs(ra - rb) <= 1e-9 &&
                 (sa < sb || (sa == sb && (a->v > b->v || (a->v == b->v && !a->builtin && b->builtin))))))
                pick = i;
        }
    }
    *cfg = cands[pick].cfg;

    /* 3. group scales (rows cut into groups of about 8 to 64 values, each with a 4-bit log
     * scale) when the scales are automatic: they buy back the local dynamic range that heavy
     * tails cost a fixed codebook, at 4 bits per group */
    if (affordable && o->scale == HC_VPTQ_SCALE_AUTO) {
        double best = cands[pick].err;
        if (nc == 1) {
            int rc = trial(&best, cfg, w, o, threads);
            if (rc != HC_OK)
                return rc;
        }
        uint32_t v0 = cfg->part[0].v;
        int stages = (o->k && o->residual_k != HC_VPTQ_AUTO) ? 0 : (cfg->part[0].bits[1] ? 2 : 1);
        hci_vq_config chosen = *cfg;
        /* the winner's own kind, then the built-in codebooks (cheap to trial: no learning) with
         * row scales alone or after column scales, whatever won above */
        static const uint32_t bflags[] = { VQ_FLAG_ROW, VQ_FLAG_ROW | VQ_FLAG_COL };
        for (int kind = 0; kind < 1 + 2 * 3; kind++) {
            int builtin = kind == 0 ? (int)cfg->part[0].builtin : 1;
            if (kind > 0 && o->codebook == HC_VPTQ_CODEBOOK_LEARNED)
                break;
            uint32_t v = kind == 0 ? v0 : 2 + (uint32_t)(kind - 1) / 2;
            if (o->v && v != o->v)
                continue;
            uint32_t segs = (hci_vq_part_cols(cfg, w->cols, 0) + v - 1) / v;
            uint32_t prev = 0;
            for (uint32_t gv = 8; gv <= 64; gv *= 2) {
                uint32_t gsegs = (gv + v / 2) / v;
                if (gsegs < 1)
                    gsegs = 1;
                if (gsegs > 255 || gsegs == prev || gsegs >= segs)
                    continue;
                prev = gsegs;
                hci_vq_config b = base, c;
                b.flags = kind == 0 ? (b.flags | VQ_FLAG_ROW) : bflags[(kind - 1) % 2];
                b.part[0].gsegs = gsegs;
                if (!(builtin ? builtin_fit(&c, &b, v, o, w, ndim, budget)
                              : best_fit(&c, &b, v, stages, o, w, ndim, budget)))
                    continue;
                double e;
                int rc = trial(&e, &c, w, o, threads);
                if (rc != HC_OK)
                    return rc;
                if (e < best) {
                    best = e;
                    chosen = c;
                }
            }
        }
        *cfg = chosen;
    }
    return HC_OK;
}
