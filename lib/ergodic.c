/* The ergodic trajectory of Hyper-Compression (Fan et al., "Hyper-Compression: Model Compression
 * via Hyperfunction", arXiv 2409.00592, sections 3-4 and its reference code): a group of n
 * weights is replaced by the index of the nearest point of an irrational-like winding line of the
 * n-torus, drawn as N points inside a box around the weights' centroid; groups outside the box
 * are sorted into radial rings, pulled into the box by their ring's factor, coded, and pushed back
 * out. The N points {k gen / N mod 1} form a rank-1 lattice cut to the box, so the nearest point
 * is found exactly by lattice enumeration on an LLL-reduced basis instead of a k-d tree. */
#include "ergodic.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "hypercomp/common.h"

/* ---- the lattice {k gen + N z} and its reduced basis ---- */

static double dot(const double *a, const double *b, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Gram-Schmidt of the basis rows: mu[i][j] for j < i and |b*_i|^2. */
static void gso(hci_erg_line *l)
{
    uint32_t n = l->n;
    double bstar[HCI_ERG_MAX_N][HCI_ERG_MAX_N];
    for (uint32_t i = 0; i < n; i++) {
        memcpy(bstar[i], l->basis[i], sizeof bstar[i]);
        for (uint32_t j = 0; j < i; j++) {
            l->mu[i][j] = dot(l->basis[i], bstar[j], n) / l->bstar_sq[j];
            for (uint32_t c = 0; c < n; c++)
                bstar[i][c] -= l->mu[i][j] * bstar[j][c];
        }
        l->bstar_sq[i] = dot(bstar[i], bstar[i], n);
    }
}

/* LLL reduction (delta 0.99); the rows stay integer valued. */
static void lll(hci_erg_line *l)
{
    uint32_t n = l->n, k = 1;
    gso(l);
    for (int guard = 0; k < n && guard < 10000; guard++) {
        for (uint32_t j = k; j-- > 0;) {
            double q = nearbyint(l->mu[k][j]);
            if (q != 0) {
                for (uint32_t c = 0; c < n; c++)
                    l->basis[k][c] -= q * l->basis[j][c];
                gso(l);
            }
        }
        if (l->bstar_sq[k] >= (0.99 - l->mu[k][k - 1] * l->mu[k][k - 1]) * l->bstar_sq[k - 1]) {
            k++;
        } else {
            double tmp[HCI_ERG_MAX_N];
            memcpy(tmp, l->basis[k], sizeof tmp);
            memcpy(l->basis[k], l->basis[k - 1], sizeof tmp);
            memcpy(l->basis[k - 1], tmp, sizeof tmp);
            gso(l);
            k = k > 1 ? k - 1 : 1;
        }
    }
}

/* Inverse of the basis by Gauss-Jordan elimination with partial pivoting. */
static void invert(hci_erg_line *l)
{
    uint32_t n = l->n;
    double a[HCI_ERG_MAX_N][2 * HCI_ERG_MAX_N];
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < 2 * n; j++)
            a[i][j] = j < n ? l->basis[i][j] : (j - n == i ? 1.0 : 0.0);
    for (uint32_t c = 0; c < n; c++) {
        uint32_t p = c;
        for (uint32_t r = c + 1; r < n; r++)
            if (fabs(a[r][c]) > fabs(a[p][c]))
                p = r;
        for (uint32_t j = 0; j < 2 * n; j++) {
            double t = a[c][j];
            a[c][j] = a[p][j];
            a[p][j] = t;
        }
        double piv = a[c][c];
        for (uint32_t j = 0; j < 2 * n; j++)
            a[c][j] /= piv;
        for (uint32_t r = 0; r < n; r++)
            if (r != c && a[r][c] != 0) {
                double f = a[r][c];
                for (uint32_t j = 0; j < 2 * n; j++)
                    a[r][j] -= f * a[c][j];
            }
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            l->binv[i][j] = a[i][n + j];
}

int hci_erg_line_init(hci_erg_line *line, uint32_t n, uint32_t npts, const uint32_t *gen)
{
    memset(line, 0, sizeof *line);
    if (n < 2 || n > HCI_ERG_MAX_N)
        return hci_fail(HC_EINVAL, "ergodic group size n=%u is outside [2, %d]", n, HCI_ERG_MAX_N);
    if (npts == 0)
        return hci_fail(HC_EINVAL, "ergodic line has 0 points");
    if (gen[0] != 1)
        return hci_fail(HC_EINVAL, "ergodic generator starts with %u; it must start with 1", gen[0]);
    for (uint32_t j = 1; j < n; j++)
        if (gen[j] >= npts)
            return hci_fail(HC_EINVAL, "ergodic generator %u = %u is not below the %u points", j, gen[j], npts);
    line->n = n;
    line->npts = npts;
    line->inv_npts = 1.0 / npts;
    memcpy(line->gen, gen, n * sizeof *gen);
    /* rows: gen, N e_1, ..., N e_{n-1} generate {k gen + N z} since gen[0] = 1 */
    for (uint32_t j = 0; j < n; j++)
        line->basis[0][j] = (double)gen[j];
    for (uint32_t i = 1; i < n; i++)
        line->basis[i][i] = (double)npts;
    lll(line);
    invert(line);
    return HC_OK;
}

void hci_erg_point(const hci_erg_line *line, uint32_t k, uint32_t *coords)
{
    uint64_t npts = line->npts;
    if (npts <= (1u << 26)) {
        /* k g < 2^52 is exact in a double, so the quotient is off by at most one: cheaper than a
         * 64-bit division on the decode path */
        for (uint32_t j = 0; j < line->n; j++) {
            uint64_t p = (uint64_t)k * line->gen[j];
            int64_t r = (int64_t)(p - (uint64_t)((double)p * line->inv_npts) * npts);
            r += r < 0 ? (int64_t)npts : 0;
            r -= r >= (int64_t)npts ? (int64_t)npts : 0;
            coords[j] = (uint32_t)r;
        }
        return;
    }
    for (uint32_t j = 0; j < line->n; j++)
        coords[j] = (uint32_t)(((uint64_t)k * line->gen[j]) % npts);
}

double hci_erg_shortest_sq(const hci_erg_line *line)
{
    double m = INFINITY;
    for (uint32_t i = 0; i < line->n; i++)
        m = fmin(m, dot(line->basis[i], line->basis[i], line->n));
    return m;
}

/* ---- exact nearest point in the box: Schnorr-Euchner enumeration with a radius ---- */

typedef struct enum_state {
    const hci_erg_line *l;
    const double *t;
    double y[HCI_ERG_MAX_N];   /* t in basis coordinates */
    double a[HCI_ERG_MAX_N];   /* current integer coefficients */
    double radius_sq;          /* prune bound: best distance so far */
    int found;
    uint32_t best;
} enum_state;

static void leaf(enum_state *s)
{
    const hci_erg_line *l = s->l;
    uint32_t n = l->n;
    double d = 0, lim = (double)l->npts - 1;
    double x0 = 0;
    for (uint32_t c = 0; c < n; c++) {
        double x = 0;
        for (uint32_t i = 0; i < n; i++)
            x += s->a[i] * l->basis[i][c];
        if (x < 0 || x > lim)
            return;   /* a lattice point outside the box is not on the line */
        if (c == 0)
            x0 = x;
        d += (x - s->t[c]) * (x - s->t[c]);
    }
    uint32_t k = (uint32_t)x0;
    if (!s->found || d < s->radius_sq || (d == s->radius_sq && k < s->best)) {
        s->found = 1;
        s->best = k;
        s->radius_sq = d;
    }
}

static void level(enum_state *s, int i, double above)
{
    const hci_erg_line *l = s->l;
    double c = s->y[i];
    for (uint32_t j = (uint32_t)i + 1; j < l->n; j++)
        c -= (s->a[j] - s->y[j]) * l->mu[j][i];
    double a0 = nearbyint(c);
    /* a slack of a few ulps so a point exactly on the bound is still visited */
    for (int dir = 0; dir < 2; dir++)
        for (double a = dir ? a0 - 1 : a0;; a += dir ? -1 : 1) {
            double d = above + (a - c) * (a - c) * l->bstar_sq[i];
            if (d > s->radius_sq * (1 + 1e-12) + 1e-9)
                break;
            s->a[i] = a;
            if (i == 0)
                leaf(s);
            else
                level(s, i - 1, d);
        }
}

uint32_t hci_erg_nearest(const hci_erg_line *l, const double *t)
{
    enum_state s;
    memset(&s, 0, sizeof s);
    s.l = l;
    s.t = t;
    uint32_t n = l->n;
    for (uint32_t i = 0; i < n; i++) {
        double v = 0;
        for (uint32_t c = 0; c < n; c++)
            v += t[c] * l->binv[c][i];
        s.y[i] = v;
    }
    /* Babai's bound: the nearest lattice point is within sum |b*_i|^2 / 4; the nearest one on
     * the box may be a little farther when t is near a face, so widen until one is found. */
    double r = 0;
    for (uint32_t i = 0; i < n; i++)
        r += l->bstar_sq[i];
    r = 0.25 * r * 1.0001 + 1e-9;
    for (int tries = 0; tries < 80; tries++) {
        s.radius_sq = r;
        level(&s, (int)n - 1, 0.0);
        if (s.found)
            return s.best;
        r *= 4;
    }
    return 0;   /* unreachable for t within the box: every point is within n N^2 */
}

uint32_t hci_erg_nearest_brute(const hci_erg_line *l, const double *t)
{
    double best = INFINITY;
    uint32_t bk = 0, x[HCI_ERG_MAX_N];
    for (uint32_t k = 0; k < l->npts; k++) {
        hci_erg_point(l, k, x);
        double d = 0;
        for (uint32_t c = 0; c < l->n; c++)
            d += ((double)x[c] - t[c]) * ((double)x[c] - t[c]);
        if (d < best) {
            best = d;
            bk = k;
        }
    }
    return bk;
}

/* ---- choosing the winding direction ---- */

/* Shortest vector of the 2-D lattice {(k, k g) + N z} by Lagrange-Gauss reduction. */
static double shortest_2d(uint32_t npts, uint32_t g)
{
    double u0 = 1, u1 = g, v0 = 0, v1 = npts;
    for (int it = 0; it < 200; it++) {
        double uu = u0 * u0 + u1 * u1, vv = v0 * v0 + v1 * v1;
        if (uu > vv) {
            double t0 = u0, t1 = u1;
            u0 = v0, u1 = v1, v0 = t0, v1 = t1;
            uu = vv;
        }
        double q = nearbyint((u0 * v0 + u1 * v1) / uu);
        if (q == 0)
            break;
        v0 -= q * u0;
        v1 -= q * u1;
    }
    return fmin(u0 * u0 + u1 * u1, v0 * v0 + v1 * v1);
}

static void korobov(uint32_t *gen, uint32_t n, uint32_t npts, uint64_t g)
{
    uint64_t p = 1;
    for (uint32_t j = 0; j < n; j++) {
        gen[j] = (uint32_t)p;
        p = (p * g) % npts;
    }
}

int hci_erg_choose_gen(uint32_t *gen, uint32_t n, uint32_t npts, hci_erg_slope slope)
{
    if (n < 2 || n > HCI_ERG_MAX_N || npts == 0)
        return hci_fail(HC_EINVAL, "ergodic line: n=%u or %u points is out of range", n, npts);
    if (npts == 1) {
        memset(gen, 0, n * sizeof *gen);
        gen[0] = 1;
        return HC_OK;
    }
    if (slope == HCI_ERG_SLOPE_PAPER) {
        /* the reference code winds with slope ceil(sqrt(N)) in 2-D: m = ceil(N^(1/n)) per axis */
        uint64_t m = (uint64_t)floor(pow((double)npts, 1.0 / n));
        for (;;) {
            uint64_t p = 1;
            for (uint32_t j = 0; j < n && p < npts; j++)
                p *= m;
            if (p >= npts)
                break;
            m++;
        }
        korobov(gen, n, npts, m % npts);
        return HC_OK;
    }
    /* the generator whose lattice has the longest shortest vector: the points spread as evenly as
     * a rank-1 lattice allows. 2-D is exact over every g; higher n scans a bounded set. */
    uint64_t best_g = 1;
    double best = -1;
    if (n == 2) {
        uint64_t stride = npts / 2 > 65536 ? npts / 2 / 65536 : 1;
        for (uint64_t g = 1; g <= npts / 2; g += stride) {
            double s = shortest_2d(npts, (uint32_t)g);
            if (s > best) {
                best = s;
                best_g = g;
            }
        }
    } else {
        uint64_t top = npts - 1 < 512 ? npts - 1 : 512;
        uint64_t stride = (npts - 1) / top > 1 ? (npts - 1) / top : 1;
        for (uint64_t g = 1; g <= npts - 1; g += stride) {
            uint32_t cand[HCI_ERG_MAX_N];
            korobov(cand, n, npts, g);
            hci_erg_line l;
            if (hci_erg_line_init(&l, n, npts, cand) != HC_OK)
                return HC_EINVAL;
            double s = hci_erg_shortest_sq(&l);
            if (s > best) {
                best = s;
                best_g = g;
            }
        }
    }
    korobov(gen, n, npts, best_g);
    return HC_OK;
}

/* ---- coding groups ---- */

double hci_erg_ring_radius(const hci_erg_code *code, uint32_t c)
{
    if (code->spacing == HCI_ERG_RINGS_GEOMETRIC)
        return 0.5 * pow(2.0 * (double)code->far, (double)c / (double)code->rings);
    return 0.5 + (double)c * ((double)code->far - 0.5) / (double)code->rings;
}

void hci_erg_code_finish(hci_erg_code *code)
{
    code->radius[0] = 0.5;
    for (uint32_t c = 1; c <= code->rings && c <= HCI_ERG_MAX_RINGS; c++)
        code->radius[c] = hci_erg_ring_radius(code, c);
}

uint32_t hci_erg_bits_for(uint64_t count)
{
    uint32_t b = 1;
    while (b < 64 && (1ull << b) < count)
        b++;
    return b;
}

uint64_t hci_erg_index_count(const hci_erg_code *code)
{
    return (uint64_t)code->line.npts + (uint64_t)code->rings * code->ring_line.npts;
}

uint32_t hci_erg_encode_group(const hci_erg_code *code, const float *w)
{
    uint32_t n = code->n;
    double u[HCI_ERG_MAX_N], t[HCI_ERG_MAX_N] = { 0 }, rho2 = 0;
    int inside = 1;
    for (uint32_t j = 0; j < n; j++) {
        u[j] = ((double)w[j] - code->center[j]) / code->scale + 0.5;
        inside &= u[j] >= 0 && u[j] < 1;
        rho2 += (u[j] - 0.5) * (u[j] - 0.5);
    }
    uint32_t cls = 0;
    const hci_erg_line *line = &code->line;
    if (!inside && code->rings > 0) {
        double rho = sqrt(rho2);
        cls = code->rings;
        for (uint32_t c = 1; c < code->rings; c++)
            if (rho <= code->radius[c]) {
                cls = c;
                break;
            }
        double f = 0.5 / code->radius[cls];
        for (uint32_t j = 0; j < n; j++)
            u[j] = 0.5 + (u[j] - 0.5) * f;
        line = &code->ring_line;
    }
    double npts = line->npts;
    for (uint32_t j = 0; j < n; j++) {
        /* without rings an outside group is clamped onto the box */
        double v = u[j] * npts - 0.5;
        t[j] = v < -0.5 ? -0.5 : (v > npts - 0.5 ? npts - 0.5 : v);
    }
    uint32_t k = hci_erg_nearest(line, t);
    return cls == 0 ? k : code->line.npts + (cls - 1) * code->ring_line.npts + k;
}

void hci_erg_decode_group(const hci_erg_code *code, uint32_t index, float *w)
{
    uint32_t n = code->n, k = index, cls = 0;
    const hci_erg_line *line = &code->line;
    if (index >= code->line.npts) {
        uint32_t r = index - code->line.npts;
        line = &code->ring_line;
        cls = 1 + r / line->npts;
        k = r % line->npts;
    }
    uint32_t x[HCI_ERG_MAX_N];
    hci_erg_point(line, k, x);
    double size = code->scale * code->radius[cls] * 2.0;
    for (uint32_t j = 0; j < n; j++) {
        double u = ((double)x[j] + 0.5) * line->inv_npts;
        w[j] = (float)(code->center[j] + size * (u - 0.5));
    }
}

/* ---- per-tensor design ---- */

static void group_at(float *g, const float *x, size_t numel, size_t i, uint32_t n, const float *center)
{
    for (uint32_t j = 0; j < n; j++) {
        size_t p = i * n + j;
        g[j] = p < numel ? x[p] : center[j];
    }
}

/* Squared error of coding the sample groups with code. */
static double sample_error(const hci_erg_code *code, const float *x, size_t numel, const size_t *sample, size_t ns)
{
    double err = 0;
    float g[HCI_ERG_MAX_N], r[HCI_ERG_MAX_N];
    for (size_t s = 0; s < ns; s++) {
        group_at(g, x, numel, sample[s], code->n, code->center);
        hci_erg_decode_group(code, hci_erg_encode_group(code, g), r);
        for (uint32_t j = 0; j < code->n; j++)
            err += ((double)g[j] - r[j]) * ((double)g[j] - r[j]);
    }
    return err;
}

/* Sets scale and the ring radius covering every group (maxdist: farthest group from center). */
static void set_scale(hci_erg_code *code, double scale, double maxdist)
{
    code->scale = (float)scale;
    double far = maxdist / code->scale;
    float f = (float)far;
    if ((double)f < far)
        f = nextafterf(f, INFINITY);
    code->far = f < 0.5f ? 0.5f : f;
    hci_erg_code_finish(code);
}

int hci_erg_design(hci_erg_code *out, const float *x, size_t numel, uint32_t n, uint32_t bits, uint32_t max_rings,
                   hci_erg_slope slope, hci_erg_spacing spacing)
{
    memset(out, 0, sizeof *out);
    if (n < 2 || n > HCI_ERG_MAX_N)
        return hci_fail(HC_EINVAL, "ergodic group size n=%u is outside [2, %d]", n, HCI_ERG_MAX_N);
    if (bits < 2 || bits > 32)
        return hci_fail(HC_EINVAL, "ergodic index bits %u is outside [2, 32]", bits);
    if (max_rings > HCI_ERG_MAX_RINGS)
        return hci_fail(HC_EINVAL, "ergodic rings %u is above %d", max_rings, HCI_ERG_MAX_RINGS);
    size_t groups = (numel + n - 1) / n;
    /* centroid of the groups, as in the reference code */
    double sum[HCI_ERG_MAX_N] = { 0 };
    size_t cnt[HCI_ERG_MAX_N] = { 0 };
    for (size_t i = 0; i < numel; i++) {
        sum[i % n] += x[i];
        cnt[i % n]++;
    }
    float center[HCI_ERG_MAX_N];
    for (uint32_t j = 0; j < n; j++)
        center[j] = cnt[j] ? (float)(sum[j] / (double)cnt[j]) : 0.0f;
    double sq = 0, maxdist = 0;
    float g[HCI_ERG_MAX_N];
    for (size_t i = 0; i < groups; i++) {
        group_at(g, x, numel, i, n, center);
        double d = 0;
        for (uint32_t j = 0; j < n; j++)
            d += ((double)g[j] - center[j]) * ((double)g[j] - center[j]);
        sq += d;
        maxdist = fmax(maxdist, sqrt(d));
    }
    double sigma = sqrt(sq / (double)(groups * n));
    if (!(maxdist > 0)) {
        /* every group is the centroid: one point, one bit per group, decoded exactly */
        out->n = n;
        out->scale = 1.0f;
        out->far = 0.5f;
        memcpy(out->center, center, sizeof center);
        uint32_t gen[HCI_ERG_MAX_N] = { 1 };
        int rc = hci_erg_line_init(&out->line, n, 1, gen);
        out->bits = hci_erg_bits_for(1);
        hci_erg_code_finish(out);
        return rc;
    }

    /* a deterministic, evenly spread sample of groups for the search */
    enum { SAMPLE = 6144 };
    size_t ns = groups < SAMPLE ? groups : SAMPLE;
    size_t *sample = hci_malloc_array(ns, sizeof *sample);
    if (!sample)
        return HC_ENOMEM;
    for (size_t s = 0; s < ns; s++)
        sample[s] = (size_t)((double)s * (double)groups / (double)ns);

    double best_err = INFINITY;
    hci_erg_code cand;
    int rc = HC_OK;
    uint64_t space = 1ull << bits;
    for (uint32_t rings = 0; rings <= max_rings && rc == HC_OK; rings++) {
        /* ring-line sizes: the paper's equal split, then ever more of the space for the box */
        uint64_t sizes[2] = { 0, 0 };
        int nsizes = 1;
        if (rings > 0) {
            sizes[0] = space / (rings + 1);
            uint64_t s1 = space / ((uint64_t)rings * 8);
            if (s1 >= 1 && s1 < sizes[0])
                sizes[nsizes++] = s1;
            if (sizes[0] < 1)
                break;
        }
        for (int si = 0; si < nsizes && rc == HC_OK; si++) {
            uint64_t n1 = sizes[si], n0 = space - rings * n1;
            if (n0 > UINT32_MAX)
                n0 = UINT32_MAX;
            memset(&cand, 0, sizeof cand);
            cand.n = n;
            cand.rings = rings;
            cand.spacing = spacing;
            memcpy(cand.center, center, sizeof center);
            uint32_t gen[HCI_ERG_MAX_N];
            rc = hci_erg_choose_gen(gen, n, (uint32_t)n0, slope);
            if (rc == HC_OK)
                rc = hci_erg_line_init(&cand.line, n, (uint32_t)n0, gen);
            if (rc == HC_OK && rings > 0) {
                rc = hci_erg_choose_gen(gen, n, (uint32_t)n1, slope);
                if (rc == HC_OK)
                    rc = hci_erg_line_init(&cand.ring_line, n, (uint32_t)n1, gen);
            }
            if (rc != HC_OK)
                break;
            cand.bits = hci_erg_bits_for(hci_erg_index_count(&cand));
            /* log-spaced box sides from sigma / 2 to one that holds every group, then a finer
             * look around the best of them */
            /* capped so the side and the scaled groups stay finite in float */
            double lo = log(0.5 * sigma), hi = log(fmin(2.0 * maxdist * 1.001, FLT_MAX / 8));
            if (hi <= lo)
                hi = lo + 1;
            enum { COARSE = 20, FINE = 8 };
            double best_ls = lo, best_e = INFINITY, step = (hi - lo) / (COARSE - 1);
            for (int i = 0; i < COARSE; i++) {
                double ls = lo + step * i;
                set_scale(&cand, exp(ls), maxdist);
                double e = sample_error(&cand, x, numel, sample, ns);
                if (e < best_e) {
                    best_e = e;
                    best_ls = ls;
                }
            }
            double center_ls = best_ls;
            for (int i = 0; i < FINE; i++) {
                double ls = center_ls + step * ((i + 1.0) / (FINE + 1.0) * 2.0 - 1.0);
                set_scale(&cand, exp(ls), maxdist);
                double e = sample_error(&cand, x, numel, sample, ns);
                if (e < best_e) {
                    best_e = e;
                    best_ls = ls;
                }
            }
            if (best_e < best_err) {
                best_err = best_e;
                set_scale(&cand, exp(best_ls), maxdist);
                *out = cand;
            }
        }
    }
    hci_free(sample);
    return rc;
}
