/* Weighted k-means with k-means++ seeding (Arthur & Vassilvitskii, "k-means++: the advantages
 * of careful seeding", SODA 2007) and Lloyd iterations. Distances come from one sgemm per block
 * of points and block of centroids: |x - c|^2 = |x|^2 - 2 x.c + |c|^2. */
#include "kmeans.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cpu.h"
#include "common/error.h"
#include "common/options.h"
#include "common/parallel.h"

#define KM_MAX_K 65536u
#define KM_MAX_DIM 256u
/* Floats of distance scratch per task: 256 KiB, so a block's distances stay in L2. */
#define KM_SCRATCH (1u << 16)
#define KM_MIN_CHUNK 2048

int hc_kmeans_options_init(hc_kmeans_options *opts, uint32_t struct_size)
{
    hc_kmeans_options d = HC_KMEANS_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_kmeans_options, max_points) + sizeof(uint32_t), "hc_kmeans_options");
}

/* ---- assignment ---- */

/* A point's running minimum of cnorm[c] + g[c] over the centroid blocks seen so far, in 16
 * lanes: lane l holds the first minimum among centroids c = l mod 16 (blocks start at multiples
 * of 16). The lowest index among the lanes that hold the overall minimum is then the first
 * minimum over all centroids, what one scan of them in order would pick. */
typedef struct argmin_lanes {
    float v[16];
    uint32_t i[16];
} argmin_lanes;

/* Folds centroids [c0, c0 + nc) into s; g and cnorm point at the block's first centroid. */
typedef void (*argmin_scan_fn)(argmin_lanes *s, const float *g, const float *cnorm, uint32_t c0, uint32_t nc);

static void argmin_start(argmin_lanes *s)
{
    for (uint32_t l = 0; l < 16; l++) {
        s->v[l] = INFINITY;
        s->i[l] = l;
    }
}

static uint32_t argmin_result(const argmin_lanes *s)
{
    float m = s->v[0];
    uint32_t mi = s->i[0];
    for (int l = 1; l < 16; l++)
        if (s->v[l] < m || (s->v[l] == m && s->i[l] < mi)) {
            m = s->v[l];
            mi = s->i[l];
        }
    return mi;
}

static void argmin_scan_portable(argmin_lanes *s, const float *g, const float *cnorm, uint32_t c0, uint32_t nc)
{
    for (uint32_t c = 0; c < nc; c++) {
        float d = cnorm[c] + g[c];
        uint32_t l = (c0 + c) % 16;
        if (d < s->v[l]) {
            s->v[l] = d;
            s->i[l] = c0 + c;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) static void
argmin_scan_avx512(argmin_lanes *s, const float *g, const float *cnorm, uint32_t c0, uint32_t nc)
{
    __m512 best = _mm512_loadu_ps(s->v);
    __m512i bi = _mm512_loadu_si512((const void *)s->i);
    __m512i cur = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                   _mm512_set1_epi32((int)c0));
    const __m512i step = _mm512_set1_epi32(16);
    uint32_t c = 0;
    for (; c + 16 <= nc; c += 16, cur = _mm512_add_epi32(cur, step)) {
        __m512 d = _mm512_add_ps(_mm512_loadu_ps(cnorm + c), _mm512_loadu_ps(g + c));
        __mmask16 lt = _mm512_cmp_ps_mask(d, best, _CMP_LT_OQ);
        best = _mm512_mask_mov_ps(best, lt, d);
        bi = _mm512_mask_mov_epi32(bi, lt, cur);
    }
    if (c < nc) {
        __mmask16 tail = (__mmask16)((1u << (nc - c)) - 1u);
        __m512 d = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, cnorm + c), _mm512_maskz_loadu_ps(tail, g + c));
        __mmask16 lt = _mm512_mask_cmp_ps_mask(tail, d, best, _CMP_LT_OQ);
        best = _mm512_mask_mov_ps(best, lt, d);
        bi = _mm512_mask_mov_epi32(bi, lt, cur);
    }
    _mm512_storeu_ps(s->v, best);
    _mm512_storeu_si512((void *)s->i, bi);
}
#endif

static argmin_scan_fn pick_argmin(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (hci_cpu_isa() == HCI_ISA_AVX512)
        return argmin_scan_avx512;
#endif
    return argmin_scan_portable;
}

typedef struct assign_job {
    const float *points, *centroids, *cnorm;
    size_t n;
    uint32_t dim, k;
    uint32_t *idx;
    float *dist;
    argmin_scan_fn scan;
} assign_job;

/* Each sgemm block multiplies a block of points by a block of centroids. m x n x k stays at or
 * below 2^18, under which OpenBLAS runs a product on the calling thread. Above it, every small
 * product of every worker would wake the BLAS's own threads: with the library's workers already
 * on every core, that oversubscription cost the VPTQ encoder more than half its time. Under that
 * cap, square-ish blocks pack the least per multiply-add: the BLAS copies both operands of every
 * call, (points + centroids) x dim floats for points x centroids x dim multiply-adds. Blocks of
 * all 4096 centroids by 10 points spent about a fifth of the VPTQ encoder's time in that copy. */
#define KM_BLAS_SINGLE (1u << 18)
/* Centroids per block: a multiple of 16 (the AVX-512 argmin's width). */
#define KM_CENTROID_BLOCK 256u

typedef struct assign_blocks {
    int64_t points;
    uint32_t centroids;
} assign_blocks;

static assign_blocks block_shape(uint32_t k, uint32_t dim)
{
    assign_blocks b;
    b.centroids = k < KM_CENTROID_BLOCK ? k : KM_CENTROID_BLOCK;
    b.points = KM_SCRATCH / b.centroids;
    if (b.points > 1024)
        b.points = 1024;
    int64_t single = (int64_t)KM_BLAS_SINGLE / ((int64_t)b.centroids * dim);
    if (b.points > single)
        b.points = single;
    if (b.points < 1)
        b.points = 1;
    return b;
}

static int assign_range(void *ctx, int64_t begin, int64_t end)
{
    assign_job *j = ctx;
    assign_blocks b = block_shape(j->k, j->dim);
    float *g = hci_aligned_array((size_t)b.points * b.centroids, sizeof(float));
    argmin_lanes *lanes = hci_aligned_array((size_t)b.points, sizeof(argmin_lanes));
    if (!g || !lanes) {
        hci_free(g);
        hci_free(lanes);
        return HC_ENOMEM;
    }
    for (int64_t p0 = begin; p0 < end; p0 += b.points) {
        int64_t np = end - p0 < b.points ? end - p0 : b.points;
        for (int64_t i = 0; i < np; i++)
            argmin_start(&lanes[i]);
        for (uint32_t c0 = 0; c0 < j->k; c0 += b.centroids) {
            uint32_t nc = j->k - c0 < b.centroids ? j->k - c0 : b.centroids;
            /* g = -2 X C^T; the argmin adds |c|^2 (the point's own |x|^2 does not change it).
             * Each entry is the same sum over dim whatever the blocking. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)np, (int)nc, (int)j->dim, -2.0f,
                        j->points + (size_t)p0 * j->dim, (int)j->dim, j->centroids + (size_t)c0 * j->dim,
                        (int)j->dim, 0.0f, g, (int)nc);
            for (int64_t i = 0; i < np; i++)
                j->scan(&lanes[i], g + (size_t)i * nc, j->cnorm + c0, c0, nc);
        }
        for (int64_t i = 0; i < np; i++) {
            uint32_t bi = argmin_result(&lanes[i]);
            j->idx[p0 + i] = bi;
            if (j->dist) {
                const float *x = j->points + (size_t)(p0 + i) * j->dim;
                /* exact distance to the winner: the expanded form loses digits to cancellation */
                const float *cc = j->centroids + (size_t)bi * j->dim;
                float d = 0.0f;
                for (uint32_t t = 0; t < j->dim; t++)
                    d += (x[t] - cc[t]) * (x[t] - cc[t]);
                j->dist[p0 + i] = d;
            }
        }
    }
    hci_free(g);
    hci_free(lanes);
    return HC_OK;
}

static void centroid_norms(float *cnorm, const float *c, uint32_t k, uint32_t dim)
{
    for (uint32_t i = 0; i < k; i++) {
        float s = 0.0f;
        for (uint32_t t = 0; t < dim; t++)
            s += c[(size_t)i * dim + t] * c[(size_t)i * dim + t];
        cnorm[i] = s;
    }
}

int hci_kmeans_assign(uint32_t *idx, float *dist, const float *points, size_t n, uint32_t dim,
                      const float *centroids, uint32_t k, const float *cnorm, uint32_t threads)
{
    float *own = NULL;
    if (!cnorm) {
        own = hci_malloc_array(k, sizeof(float));
        if (!own)
            return HC_ENOMEM;
        centroid_norms(own, centroids, k, dim);
        cnorm = own;
    }
    assign_job j = { points, centroids, cnorm, n, dim, k, idx, dist, pick_argmin() };
    int rc = hci_parallel_for(threads, (int64_t)n, KM_MIN_CHUNK, assign_range, &j);
    hci_free(own);
    return rc;
}

static int check_shape(const char *fn, size_t n, uint32_t dim, uint32_t k)
{
    if (n == 0)
        return hci_fail(HC_EINVAL, "%s: no points (n is 0)", fn);
    if (dim < 1 || dim > KM_MAX_DIM)
        return hci_fail(HC_EINVAL, "%s: dimension %u is outside [1, %u]", fn, dim, KM_MAX_DIM);
    if (k < 1 || k > KM_MAX_K)
        return hci_fail(HC_EINVAL, "%s: k = %u is outside [1, %u]", fn, k, KM_MAX_K);
    size_t bytes;
    if (!hci_mul_size(n, dim, &bytes) || !hci_mul_size(bytes, sizeof(float), &bytes) || n > INT32_MAX)
        return hci_fail(HC_EINVAL, "%s: %zu points of dimension %u are too many", fn, n, dim);
    return HC_OK;
}

int hc_kmeans_assign(uint32_t *out, const float *points, size_t n, uint32_t dim, const float *centroids,
                     uint32_t k, uint32_t threads)
{
    if (!out || !points || !centroids)
        return hci_fail(HC_EINVAL, "hc_kmeans_assign: %s is NULL", !out ? "out" : (!points ? "points" : "centroids"));
    int rc = check_shape("hc_kmeans_assign", n, dim, k);
    if (rc != HC_OK)
        return rc;
    return hci_kmeans_assign(out, NULL, points, n, dim, centroids, k, NULL, threads);
}

/* ---- k-means++ seeding ---- */

typedef struct seed_job {
    const float *points;
    uint32_t dim;
    const float *c;     /* the newest centroid */
    float *d2;          /* squared distance to the nearest chosen centroid so far */
} seed_job;

static int seed_update(void *ctx, int64_t begin, int64_t end)
{
    seed_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        const float *x = j->points + (size_t)i * j->dim;
        float d = 0.0f;
        for (uint32_t t = 0; t < j->dim; t++)
            d += (x[t] - j->c[t]) * (x[t] - j->c[t]);
        if (d < j->d2[i])
            j->d2[i] = d;
    }
    return HC_OK;
}

/* Draws an index with probability proportional to w[i] * d2[i] (d2 NULL: to w[i]).
 * Returns n when every mass is zero. */
static size_t draw(hci_rng *rng, const float *w, const float *d2, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += (double)(w ? w[i] : 1.0f) * (d2 ? d2[i] : 1.0f);
    if (!(total > 0.0))
        return n;
    double u = hci_rng_uniform(rng) * total, acc = 0.0;
    size_t last = n;
    for (size_t i = 0; i < n; i++) {
        double m = (double)(w ? w[i] : 1.0f) * (d2 ? d2[i] : 1.0f);
        if (m > 0.0) {
            last = i;
            acc += m;
            if (acc > u)
                return i;
        }
    }
    return last;
}

static int seed_plus_plus(float *cent, const float *points, const float *w, size_t n, uint32_t dim, uint32_t k,
                          hci_rng *rng, uint32_t threads)
{
    float *d2 = hci_malloc_array(n, sizeof(float));
    if (!d2)
        return HC_ENOMEM;
    for (size_t i = 0; i < n; i++)
        d2[i] = FLT_MAX;
    size_t first = draw(rng, w, NULL, n);
    memcpy(cent, points + first * dim, sizeof(float) * dim);
    int rc = HC_OK;
    for (uint32_t c = 1; c <= k && rc == HC_OK; c++) {
        seed_job j = { points, dim, cent + (size_t)(c - 1) * dim, d2 };
        rc = hci_parallel_for(threads, (int64_t)n, 8192, seed_update, &j);
        if (rc != HC_OK || c == k)
            break;
        size_t pick = draw(rng, w, d2, n);
        /* every point already coincides with a centroid: duplicate one (k > distinct points) */
        if (pick == n)
            pick = (size_t)(hci_rng_next(rng) % n);
        memcpy(cent + (size_t)c * dim, points + pick * dim, sizeof(float) * dim);
    }
    hci_free(d2);
    return rc;
}

/* ---- Lloyd iterations ---- */

typedef struct accum_job {
    const float *points, *w;
    const uint32_t *idx;
    const float *dist;
    uint32_t dim, k;
    int64_t chunk;          /* the partition hci_parallel_for uses, so task = begin / chunk */
    double *sums;           /* per task: k * dim */
    double *mass;           /* per task: k */
    double *obj;            /* per task */
} accum_job;

static int accum_range(void *ctx, int64_t begin, int64_t end)
{
    accum_job *j = ctx;
    int64_t task = begin / j->chunk;
    double *sums = j->sums + (size_t)task * j->k * j->dim, *mass = j->mass + (size_t)task * j->k;
    memset(sums, 0, sizeof(double) * j->k * j->dim);
    memset(mass, 0, sizeof(double) * j->k);
    double obj = 0.0;
    for (int64_t i = begin; i < end; i++) {
        double wi = j->w ? j->w[i] : 1.0;
        uint32_t c = j->idx[i];
        const float *x = j->points + (size_t)i * j->dim;
        for (uint32_t t = 0; t < j->dim; t++)
            sums[(size_t)c * j->dim + t] += wi * x[t];
        mass[c] += wi;
        obj += wi * j->dist[i];
    }
    j->obj[task] = obj;
    return HC_OK;
}

static uint32_t task_count(uint32_t threads, int64_t n, int64_t min_chunk, int64_t *chunk)
{
    threads = hci_resolve_threads(threads);
    int64_t parts = (n + min_chunk - 1) / min_chunk;
    if (parts > threads)
        parts = threads;
    if (parts < 1)
        parts = 1;
    *chunk = (n + parts - 1) / parts;
    return (uint32_t)parts;
}

static int validate_weights(const float *w, size_t n)
{
    if (!w)
        return HC_OK;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(w[i] >= 0.0f) || !isfinite(w[i]))
            return hci_fail(HC_EINVAL, "hc_kmeans_learn: weight %zu is %g; weights must be finite and >= 0", i,
                            (double)w[i]);
        total += w[i];
    }
    if (!(total > 0.0))
        return hci_fail(HC_EINVAL, "hc_kmeans_learn: all %zu weights are zero", n);
    return HC_OK;
}

/* Copies a seeded subsample of m of the n points (and weights) into new arrays. */
static int subsample(float **out_pts, float **out_w, const float *points, const float *w, size_t n, size_t m,
                     uint32_t dim, hci_rng *rng)
{
    uint32_t *perm = hci_malloc_array(n, sizeof(uint32_t));
    float *p = hci_malloc_array(m, (size_t)dim * sizeof(float));
    float *pw = w ? hci_malloc_array(m, sizeof(float)) : NULL;
    if (!perm || !p || (w && !pw)) {
        hci_free(perm);
        hci_free(p);
        hci_free(pw);
        return HC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = 0; i < m; i++) {
        size_t r = i + (size_t)(hci_rng_next(rng) % (n - i));
        uint32_t t = perm[i];
        perm[i] = perm[r];
        perm[r] = t;
        memcpy(p + i * dim, points + (size_t)perm[i] * dim, sizeof(float) * dim);
        if (pw)
            pw[i] = w[perm[i]];
    }
    hci_free(perm);
    *out_pts = p;
    *out_w = pw;
    return HC_OK;
}

/* Re-seeds each empty cluster at the training point with the largest weighted distance; that
 * point's distance is then zeroed so the next empty cluster takes a different one. */
static uint32_t reseed_empty(float *cent, const double *mass, float *dist, const float *points, const float *w,
                             size_t n, uint32_t dim, uint32_t k)
{
    uint32_t count = 0;
    for (uint32_t c = 0; c < k; c++) {
        if (mass[c] > 0.0)
            continue;
        double best = 0.0;
        size_t bi = n;
        for (size_t i = 0; i < n; i++) {
            double m = (double)(w ? w[i] : 1.0f) * dist[i];
            if (m > best) {
                best = m;
                bi = i;
            }
        }
        if (bi == n)
            break; /* every point sits on a centroid: nothing better to seed with */
        memcpy(cent + (size_t)c * dim, points + bi * dim, sizeof(float) * dim);
        dist[bi] = 0.0f;
        count++;
    }
    return count;
}

int hc_kmeans_learn(float *out, const float *points, size_t n, uint32_t dim, const float *weights,
                    const hc_kmeans_options *user, hc_kmeans_report *report)
{
    if (!out || !points)
        return hci_fail(HC_EINVAL, "hc_kmeans_learn: %s is NULL", !out ? "out" : "points");
    hc_kmeans_options o = HC_KMEANS_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user,
                                     offsetof(hc_kmeans_options, max_points) + sizeof(uint32_t), "hc_kmeans_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    if (report && (report->struct_size > sizeof *report || report->struct_size < sizeof(uint32_t) * 2))
        return hci_fail(HC_EINVAL, "hc_kmeans_report struct_size %u is not one this library knows",
                        report->struct_size);
    int rc = check_shape("hc_kmeans_learn", n, dim, o.k);
    if (rc != HC_OK)
        return rc;
    if (!(o.tol >= 0.0f) || !isfinite(o.tol))
        return hci_fail(HC_EINVAL, "hc_kmeans_options: tol %g must be a finite number >= 0", (double)o.tol);
    rc = validate_weights(weights, n);
    if (rc != HC_OK)
        return rc;
    uint32_t threads = hci_resolve_threads(o.threads);
    hci_rng rng = { o.seed };

    /* training set: all points or a seeded subsample */
    const float *tp = points, *tw = weights;
    float *own_p = NULL, *own_w = NULL;
    size_t m = n;
    if (o.max_points && n > o.max_points) {
        m = o.max_points < o.k ? o.k : o.max_points;
        if (m < n) {
            rc = subsample(&own_p, &own_w, points, weights, n, m, dim, &rng);
            if (rc != HC_OK)
                return rc;
            tp = own_p;
            tw = own_w;
            if (tw) {
                double t = 0.0;
                for (size_t i = 0; i < m; i++)
                    t += tw[i];
                if (!(t > 0.0)) { /* the sample drew only zero weights: fall back to equal ones */
                    hci_free(own_w);
                    own_w = NULL;
                    tw = NULL;
                }
            }
        } else {
            m = n;
        }
    }

    int64_t chunk;
    uint32_t tasks = task_count(threads, (int64_t)m, KM_MIN_CHUNK, &chunk);
    uint32_t *idx = hci_malloc_array(m, sizeof(uint32_t));
    float *dist = hci_malloc_array(m, sizeof(float));
    float *cnorm = hci_malloc_array(o.k, sizeof(float));
    double *sums = hci_calloc((size_t)tasks * o.k, (size_t)dim * sizeof(double));
    double *mass = hci_calloc((size_t)tasks * o.k, sizeof(double));
    double *obj = hci_calloc(tasks, sizeof(double));
    if (!idx || !dist || !cnorm || !sums || !mass || !obj) {
        rc = HC_ENOMEM;
        goto done;
    }

    /* k-means++ costs m * k distance evaluations: seed from a seeded sample when m is large */
    size_t cap = (size_t)o.k * 4 > 16384 ? (size_t)o.k * 4 : 16384;
    if (m > cap) {
        float *sp, *sw;
        rc = subsample(&sp, &sw, tp, tw, m, cap, dim, &rng);
        if (rc == HC_OK) {
            int any = 1;
            if (sw) {
                double t = 0.0;
                for (size_t i = 0; i < cap; i++)
                    t += sw[i];
                any = t > 0.0;
            }
            rc = seed_plus_plus(out, sp, any ? sw : NULL, cap, dim, o.k, &rng, threads);
            hci_free(sp);
            hci_free(sw);
        }
    } else {
        rc = seed_plus_plus(out, tp, tw, m, dim, o.k, &rng, threads);
    }
    double prev = INFINITY, cur = INFINITY;
    uint32_t it = 0, reseeded = 0;
    for (; rc == HC_OK; it++) {
        centroid_norms(cnorm, out, o.k, dim);
        rc = hci_kmeans_assign(idx, dist, tp, m, dim, out, o.k, cnorm, threads);
        if (rc != HC_OK)
            break;
        accum_job aj = { tp, tw, idx, dist, dim, o.k, chunk, sums, mass, obj };
        rc = hci_parallel_for(threads, (int64_t)m, KM_MIN_CHUNK, accum_range, &aj);
        if (rc != HC_OK)
            break;
        /* merge task partials in a fixed order: deterministic for a given thread count */
        cur = 0.0;
        for (uint32_t t = 0; t < tasks; t++)
            cur += obj[t];
        for (uint32_t t = 1; t < tasks; t++) {
            for (size_t i = 0; i < (size_t)o.k * dim; i++)
                sums[i] += sums[(size_t)t * o.k * dim + i];
            for (size_t i = 0; i < o.k; i++)
                mass[i] += mass[(size_t)t * o.k + i];
        }
        if (it >= o.max_iter || (prev < INFINITY && prev - cur <= (double)o.tol * prev))
            break;
        prev = cur;
        for (uint32_t c = 0; c < o.k; c++)
            if (mass[c] > 0.0)
                for (uint32_t t = 0; t < dim; t++)
                    out[(size_t)c * dim + t] = (float)(sums[(size_t)c * dim + t] / mass[c]);
        reseeded += reseed_empty(out, mass, dist, tp, tw, m, dim, o.k);
    }
    if (rc == HC_OK && report) {
        hc_kmeans_report r = HC_KMEANS_REPORT_INIT;
        r.iterations = it;
        r.reseeded = reseeded;
        r.trained_on = m;
        r.objective = cur;
        uint32_t size = report->struct_size;
        memcpy(report, &r, size);
        report->struct_size = size;
    }
done:
    hci_free(idx);
    hci_free(dist);
    hci_free(cnorm);
    hci_free(sums);
    hci_free(mass);
    hci_free(obj);
    hci_free(own_p);
    hci_free(own_w);
    return rc;
}
