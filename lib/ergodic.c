/* The ergodic trajectory of Hyper-Compression (Fan et al., "Hyper-Compression: Model Compression
 * via Hyperfunction", arXiv 2409.00592, and its reference code): a group of n
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
