/* The winding line of the ergodic trajectory as a lattice: the N points {k gen / N mod 1} of the
 * unit box are the lattice {k gen + N z} (in units of 1/N) cut to the box. This file reduces its
 * basis (LLL), finds the nearest point of the box exactly (Schnorr-Euchner enumeration) and chooses
 * the winding direction (the generator). ergodic.c codes groups with it. */
#include <math.h>
#include <string.h>

#include "common/error.h"
#include "ergodic.h"
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
            int64_t p = (int64_t)((uint64_t)k * line->gen[j]);
            int64_t r = p - (int64_t)((double)p * line->inv_npts) * (int64_t)npts;
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

