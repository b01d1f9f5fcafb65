/* The SeedLM seed search (Shafipour et al., arXiv 2410.10714, section 3): for every block w, the
 * seed s and quantised coefficients t_q minimising |w - U(s) t_q|^2 over all searched seeds.
 *
 * The paper's loop (per block, per seed: regenerate U, solve least squares, quantise, measure)
 * costs O(C P^2) scalar work per pair. Here each seed's U = Q R is factored once per chunk of
 * seeds (Q orthonormal, so U^+ = R^-1 Q^T and U^T U = R^T R), and the error splits as
 *     |w - U t_q|^2 = |w|^2 - 2 t_q.(U^T w) + t_q^T (U^T U) t_q = (|w|^2 - |Q^T w|^2) + |R (t_q - t)|^2,
 * the least-squares residual plus a nonnegative quantisation term. The residual is a lower bound
 * of every seed's quantised error, computed for 16 seeds at a time by a vector kernel (P dot
 * products of length C); only seeds whose bound is within a tolerance of the best quantised error
 * so far are quantised and measured exactly, in double. The result is therefore the exact argmin
 * (ties to the seed met first in generator order), the same as the paper's loop. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/parallel.h"
#include "lfsr.h"
#include "seedlm/seedlm_internal.h"

/* Relative slack between the float screening bound and the double errors it is compared with;
 * the bound's own rounding error is around 1e-6 |w|^2. */
#define SCREEN_TOL 1e-4
/* A column of U whose part orthogonal to the previous ones keeps less than this fraction of its
 * squared norm makes the seed rank-deficient (it is never chosen). */
#define RANK_TOL 1e-8

static int ceil_log2(double x)
{
    int ex;
    double f = frexp(x, &ex);
    return f == 0.5 ? ex - 1 : ex;
}

int32_t hci_seedlm_choose_ebase(const float *w, int64_t numel, const hci_seedlm_cfg *c)
{
    double maxn2 = 0.0;
    for (int64_t b = 0; b < numel; b += c->C) {
        int64_t n = numel - b < (int64_t)c->C ? numel - b : (int64_t)c->C;
        double n2 = 0.0;
        for (int64_t i = 0; i < n; i++)
            n2 += (double)w[b + i] * w[b + i];
        if (n2 > maxn2)
            maxn2 = n2;
    }
    int32_t span = (1 << c->E) - 1;
    int32_t lo = -126, hi = 128 - (int32_t)c->M - span;
    if (maxn2 == 0.0)
        return lo;
    /* A good seed's coefficients rarely exceed the block norm; one more binade of headroom. */
    int32_t top = ceil_log2(2.0 * sqrt(maxn2) / ((1 << (c->M - 1)) - 1));
    int32_t base = top - span;
    return base < lo ? lo : (base > hi ? hi : base);
}

/* Cholesky of the P x P Gram matrix; 0 when a pivot keeps less than RANK_TOL of its diagonal. */
static int cholesky(double *L, const double *G, uint32_t P)
{
    for (uint32_t j = 0; j < P; j++) {
        double d = G[j * P + j];
        for (uint32_t k = 0; k < j; k++)
            d -= L[j * P + k] * L[j * P + k];
        if (!(d > RANK_TOL * G[j * P + j]))
            return 0;
        L[j * P + j] = sqrt(d);
        for (uint32_t i = j + 1; i < P; i++) {
            double s = G[i * P + j];
            for (uint32_t k = 0; k < j; k++)
                s -= L[i * P + k] * L[j * P + k];
            L[i * P + j] = s / L[j * P + j];
        }
    }
    return 1;
}

double hci_seedlm_eval_seed(const float *u, const double *w, const hci_seedlm_cfg *c, hci_seedlm_block *out)
{
    const uint32_t C = c->C, P = c->P;
    double G[HCI_SEEDLM_MAX_P * HCI_SEEDLM_MAX_P], L[HCI_SEEDLM_MAX_P * HCI_SEEDLM_MAX_P];
    double t[HCI_SEEDLM_MAX_P], tq[HCI_SEEDLM_MAX_P];
    for (uint32_t p = 0; p < P; p++) {
        for (uint32_t q = 0; q <= p; q++) {
            double s = 0.0;
            for (uint32_t i = 0; i < C; i++)
                s += (double)u[i * P + p] * u[i * P + q];
            G[p * P + q] = G[q * P + p] = s;
        }
        double s = 0.0;
        for (uint32_t i = 0; i < C; i++)
            s += (double)u[i * P + p] * w[i];
        t[p] = s;
    }
    if (!cholesky(L, G, P))
        return INFINITY;
    for (uint32_t p = 0; p < P; p++) {   /* L y = U^T w */
        double s = t[p];
        for (uint32_t k = 0; k < p; k++)
            s -= L[p * P + k] * t[k];
        t[p] = s / L[p * P + p];
    }
    for (uint32_t p = P; p-- > 0;) {     /* L^T t = y */
        double s = t[p];
        for (uint32_t k = p + 1; k < P; k++)
            s -= L[k * P + p] * t[k];
        t[p] = s / L[p * P + p];
    }
    /* Range-based shared exponent: the smallest e with every coefficient inside the mantissa range. */
    const int32_t mmax = (1 << (c->M - 1)) - 1, mmin = -(1 << (c->M - 1));
    double need = 0.0;
    for (uint32_t p = 0; p < P; p++) {
        double r = t[p] > 0 ? t[p] / mmax : t[p] / mmin;
        if (r > need)
            need = r;
    }
    int32_t e = need > 0.0 ? ceil_log2(need) : c->ebase;
    int32_t etop = c->ebase + (1 << c->E) - 1;
    e = e < c->ebase ? c->ebase : (e > etop ? etop : e);
    /* powers of two in the normal range: these products are exact, like ldexp */
    const double scale = ldexp(1.0, e), inv = ldexp(1.0, -e);
    for (uint32_t p = 0; p < P; p++) {
        double r = round(t[p] * inv);
        r = r < mmin ? mmin : (r > mmax ? mmax : r);
        out->q[p] = (int32_t)r;
        tq[p] = r * scale;
    }
    out->ecode = (uint32_t)(e - c->ebase);
    double err = 0.0;
    for (uint32_t i = 0; i < C; i++) {
        double s = w[i];
        for (uint32_t p = 0; p < P; p++)
            s -= (double)u[i * P + p] * tq[p];
        err += s * s;
    }
    return err;
}

void hci_seedlm_search_naive(hci_seedlm_block *out, const float *w, const hci_seedlm_cfg *c)
{
    const uint32_t C = c->C, P = c->P, mask = hci_lfsr_tap_mask(c->K);
    float u[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P];
    double wd[HCI_SEEDLM_MAX_C];
    for (uint32_t i = 0; i < C; i++)
        wd[i] = w[i];
    double best = INFINITY;
    uint32_t s = 1;
    memset(out, 0, sizeof *out);
    for (uint32_t n = 0; n < c->nseeds; n++) {
        uint32_t v = s;
        for (uint32_t i = 0; i < C * P; i++) {
            u[i] = hci_lfsr_value(c->K, v);
            v = hci_lfsr_step(v, c->K, mask);
        }
        hci_seedlm_block blk;
        double err = hci_seedlm_eval_seed(u, wd, c, &blk);
        if (err < best) {
            best = err;
            *out = blk;
            out->seed = s;
        }
        s = hci_lfsr_step(s, c->K, mask);
    }
}

/* ---- the blocked search ---- */

typedef struct search_job {
    const float *w;
    int64_t numel;
    const hci_seedlm_cfg *c;
    uint8_t *payload;
    uint32_t chunk;                 /* seeds per chunk, a multiple of HCI_SEEDLM_LANES */
    hci_seedlm_screen_fn screen;
} search_job;

typedef struct block_state {
    double best;          /* exact squared error of the best seed so far */
    double inv_scale2;    /* 2^-2k: maps errors into the screening's scaled units */
    float wn2;            /* |w|^2 in scaled units */
    float tol;            /* SCREEN_TOL |w|^2 in scaled units */
    float tau0;           /* (2^(ebase-1))^2 in scaled units: a smaller |t|^2 rounds every mantissa to 0 */
    double wn2d;          /* |w|^2, unscaled: the error of the all-zero reconstruction */
    hci_seedlm_block rec;
} block_state;

/* Orthonormalises the seed's window, U = Q R (modified Gram-Schmidt in double), into its
 * screening lane and returns in *rho2 an upper bound of |R^-1|^2 (its Frobenius norm, rounded up),
 * so that |t|^2 <= rho2 |Q^T w|^2. Returns 0 for a rank-deficient window, whose lane stays zero. */
static int factor_seed(float *lane0, float *rho2, const float *u, uint32_t C, uint32_t P)
{
    double Q[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P], R[HCI_SEEDLM_MAX_P][HCI_SEEDLM_MAX_P] = { { 0 } };
    *rho2 = 0.0f;
    for (uint32_t p = 0; p < P; p++) {
        double nu = 0.0, nv = 0.0;
        for (uint32_t i = 0; i < C; i++) {
            Q[i * P + p] = u[i * P + p];
            nu += Q[i * P + p] * Q[i * P + p];
        }
        for (uint32_t q = 0; q < p; q++) {
            double r = 0.0;
            for (uint32_t i = 0; i < C; i++)
                r += Q[i * P + q] * Q[i * P + p];
            for (uint32_t i = 0; i < C; i++)
                Q[i * P + p] -= r * Q[i * P + q];
            R[q][p] = r;
        }
        for (uint32_t i = 0; i < C; i++)
            nv += Q[i * P + p] * Q[i * P + p];
        if (!(nv > RANK_TOL * nu)) {
            for (uint32_t i = 0; i < C * P; i++)
                lane0[(size_t)i * HCI_SEEDLM_LANES] = 0.0f;
            return 0;
        }
        R[p][p] = sqrt(nv);
        double inv = 1.0 / R[p][p];
        for (uint32_t i = 0; i < C; i++)
            Q[i * P + p] *= inv;
    }
    for (uint32_t i = 0; i < C * P; i++)
        lane0[(size_t)i * HCI_SEEDLM_LANES] = (float)Q[i];
    /* X = R^-1, upper triangular, column by column */
    double X[HCI_SEEDLM_MAX_P][HCI_SEEDLM_MAX_P], f2 = 0.0;
    for (uint32_t j = 0; j < P; j++) {
        X[j][j] = 1.0 / R[j][j];
        f2 += X[j][j] * X[j][j];
        for (uint32_t i = j; i-- > 0;) {
            double sum = 0.0;
            for (uint32_t k = i + 1; k <= j; k++)
                sum += R[i][k] * X[k][j];
            X[i][j] = -sum / R[i][i];
            f2 += X[i][j] * X[i][j];
        }
    }
    *rho2 = (float)(f2 * (1.0 + 1e-4));
    return 1;
}

static void load_block(const search_job *job, int64_t b, float *dst)
{
    const uint32_t C = job->c->C;
    int64_t first = b * C, n = job->numel - first < (int64_t)C ? job->numel - first : (int64_t)C;
    for (int64_t i = 0; i < (int64_t)C; i++)
        dst[i] = i < n ? job->w[first + i] : 0.0f;
}

/* Searches blocks [b0, b1): every chunk of seeds is factored once and screened against every
 * block of the tile before the next chunk, so the factored chunk stays in the L1 cache. */
static int search_tile(search_job *job, int64_t b0, int64_t b1)
{
    const hci_seedlm_cfg *c = job->c;
    const uint32_t C = c->C, P = c->P, CP = C * P, K = c->K, mask = hci_lfsr_tap_mask(K);
    const uint32_t chunk = job->chunk;
    const int64_t n = b1 - b0;
    int rc = HC_ENOMEM;

    float *wsc = hci_aligned_array((size_t)n * C, sizeof(float));
    block_state *bs = hci_malloc_array((size_t)n, sizeof *bs);
    float *ubuf = hci_malloc_array((size_t)chunk + CP, sizeof(float));
    float *qsoa = hci_aligned_array((size_t)chunk * CP, sizeof(float));
    float *rho2 = hci_aligned_array(chunk, sizeof(float));
    uint32_t *seeds = hci_malloc_array(chunk, sizeof(uint32_t));
    uint8_t *full = hci_malloc(chunk);
    if (!wsc || !bs || !ubuf || !qsoa || !rho2 || !seeds || !full)
        goto done;

    for (int64_t i = 0; i < n; i++) {
        float *wi = wsc + (size_t)i * C;
        load_block(job, b0 + i, wi);
        float amax = 0.0f;
        double n2d = 0.0;   /* from the original values, as the exact evaluation sees them */
        for (uint32_t k = 0; k < C; k++) {
            amax = fabsf(wi[k]) > amax ? fabsf(wi[k]) : amax;
            n2d += (double)wi[k] * wi[k];
        }
        int ex = 0;
        if (amax > 0.0f)
            frexpf(amax, &ex);
        /* scale by a power of two (exact) so the screening never underflows or overflows */
        double n2 = 0.0;
        for (uint32_t k = 0; k < C; k++) {
            wi[k] = ldexpf(wi[k], -ex);
            n2 += (double)wi[k] * wi[k];
        }
        bs[i].best = INFINITY;
        bs[i].inv_scale2 = ldexp(1.0, -2 * ex);
        bs[i].wn2 = (float)n2;
        bs[i].tol = (float)(SCREEN_TOL * n2);
        double tau0 = ldexp(1.0, 2 * (c->ebase - 1 - ex)) * (1.0 - 1e-3);
        bs[i].tau0 = tau0 > FLT_MAX ? INFINITY : (float)tau0;   /* beyond float: nothing reaches it */
        bs[i].wn2d = n2d;
        memset(&bs[i].rec, 0, sizeof bs[i].rec);
    }

    uint32_t s_at = 1;          /* state at the chunk's first position */
    int have_first = 0;
    uint32_t first_full = 0;    /* first full-rank seed: the choice for all-zero blocks (all tie at 0) */
    for (uint32_t a = 0; a < c->nseeds; a += chunk) {
        uint32_t cnt = c->nseeds - a < chunk ? c->nseeds - a : chunk;
        uint32_t ngroups = (cnt + HCI_SEEDLM_LANES - 1) / HCI_SEEDLM_LANES;
        uint32_t s = s_at;
        for (uint32_t i = 0; i < cnt + CP - 1; i++) {
            if (i == cnt)
                s_at = s;
            if (i < cnt)
                seeds[i] = s;
            ubuf[i] = hci_lfsr_value(K, s);
            s = hci_lfsr_step(s, K, mask);
        }
        if (cnt + CP - 1 <= cnt)   /* CP == 1: the loop above never reached i == cnt */
            s_at = s;
        for (uint32_t j = 0; j < ngroups * HCI_SEEDLM_LANES; j++) {
            float *lane0 = qsoa + (size_t)(j / HCI_SEEDLM_LANES) * CP * HCI_SEEDLM_LANES + j % HCI_SEEDLM_LANES;
            if (j < cnt) {
                full[j] = (uint8_t)factor_seed(lane0, rho2 + j, ubuf + j, C, P);
                if (full[j] && !have_first) {
                    have_first = 1;
                    first_full = seeds[j];
                }
            } else {
                for (uint32_t i = 0; i < CP; i++)
                    lane0[(size_t)i * HCI_SEEDLM_LANES] = 0.0f;
                rho2[j] = 0.0f;
            }
        }
        double wd[HCI_SEEDLM_MAX_C];
        for (int64_t i = 0; i < n; i++) {
            block_state *st = &bs[i];
            if (st->wn2 == 0.0f)
                continue;
            const float *wi = wsc + (size_t)i * C;
            int wd_ready = 0;
            float thresh = isinf(st->best) ? INFINITY : (float)(st->best * st->inv_scale2) + st->tol;
            for (uint32_t g = 0;; g++) {
                uint32_t lanes;
                float bounds[HCI_SEEDLM_LANES];
                /* Once some seed does at least as well as coding zeros, a later seed whose
                 * mantissas all round to zero only ties (and loses, coming later): screen those
                 * out, which keeps blocks below the tensor's exponent range from testing every seed. */
                float tau = st->best <= st->wn2d ? st->tau0 : 0.0f;
                g = job->screen(qsoa, g, ngroups, wi, st->wn2, thresh, rho2, tau, C, P, &lanes, bounds);
                if (g >= ngroups)
                    break;
                if (!wd_ready) {
                    float tmp[HCI_SEEDLM_MAX_C];
                    load_block(job, b0 + i, tmp);
                    for (uint32_t k = 0; k < C; k++)
                        wd[k] = tmp[k];
                    wd_ready = 1;
                }
                for (; lanes; lanes &= lanes - 1) {
                    uint32_t l = (uint32_t)__builtin_ctz(lanes), j = g * HCI_SEEDLM_LANES + l;
                    /* an earlier lane of this group may have lowered the threshold */
                    if (j >= cnt || !full[j] || bounds[l] > thresh)
                        continue;
                    hci_seedlm_block blk;
                    double err = hci_seedlm_eval_seed(ubuf + j, wd, c, &blk);
                    if (err < st->best) {
                        st->best = err;
                        st->rec = blk;
                        st->rec.seed = seeds[j];
                        thresh = (float)(err * st->inv_scale2) + st->tol;
                    }
                }
            }
        }
    }
    if (!have_first) {
        rc = hci_fail(HC_EINVAL, "seedlm: none of the %u searched seeds gives a U(s) of rank P=%u (C=%u, K=%u)",
                      c->nseeds, P, C, K);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (bs[i].wn2 == 0.0f) {
            memset(&bs[i].rec, 0, sizeof bs[i].rec);
            bs[i].rec.seed = first_full;
        }
        hci_seedlm_write_block(job->payload, c, b0 + i, &bs[i].rec);
    }
    rc = HC_OK;
done:
    hci_free(wsc);
    hci_free(bs);
    hci_free(ubuf);
    hci_free(qsoa);
    hci_free(rho2);
    hci_free(seeds);
    hci_free(full);
    return rc;
}

/* Works on units of 8 blocks: 8 records always end on a byte boundary, so threads never write
 * the same payload byte. Tiles bound the per-block state to about 1 MiB per thread; refactoring
 * the seeds once per tile costs about 10 ms against seconds of screening. */
static int search_range(void *ctx, int64_t u0, int64_t u1)
{
    search_job *job = ctx;
    const int64_t nblocks = (job->numel + job->c->C - 1) / job->c->C, tile = 8192;
    const int64_t b0 = u0 * 8, b1 = u1 * 8 < nblocks ? u1 * 8 : nblocks;
    for (int64_t t = b0; t < b1; t += tile) {
        int rc = search_tile(job, t, b1 - t < tile ? b1 : t + tile);
        if (rc != HC_OK)
            return rc;
    }
    return HC_OK;
}

int hci_seedlm_search(uint8_t *payload, const float *w, int64_t numel, const hci_seedlm_cfg *c, uint32_t threads)
{
    uint32_t CP = c->C * c->P;
    /* one chunk of screening bases fills about 32 KiB, an L1 data cache */
    uint32_t groups = 32768u / (CP * HCI_SEEDLM_LANES * (uint32_t)sizeof(float));
    if (groups < 1)
        groups = 1;
    search_job job = { w, numel, c, payload, groups * HCI_SEEDLM_LANES, hci_seedlm_screen_kernel() };
    int64_t nblocks = (numel + c->C - 1) / c->C;
    return hci_parallel_for(threads, (nblocks + 7) / 8, 8, search_range, &job);
}
