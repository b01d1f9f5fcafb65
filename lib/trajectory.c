/* Trajectory fits: Chebyshev polynomial or DCT-II cosine series per segment, by least squares,
 * with per-segment quantised coefficients (the "trajectory" compressors of doc/algorithms.md).
 * The least-squares problem is solved once per segment length by a QR factorisation (modified
 * Gram-Schmidt, run twice for orthogonality) in double precision; the pseudo-inverse it yields is
 * then applied to every segment. */
#include "traj.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

#define PI 3.14159265358979323846

uint32_t hc_trajectory_terms(hc_trajectory_kind kind, uint32_t d)
{
    if (kind == HC_TRAJECTORY_POLY && d <= HC_TRAJECTORY_MAX_DEGREE)
        return d + 1;
    if (kind == HC_TRAJECTORY_FOURIER && d >= 1 && d <= HC_TRAJECTORY_MAX_DEGREE)
        return d;
    return 0;
}

int hci_traj_check(hc_trajectory_kind kind, uint32_t d)
{
    if (kind != HC_TRAJECTORY_POLY && kind != HC_TRAJECTORY_FOURIER)
        return hci_fail(HC_EINVAL, "trajectory kind %d is neither poly (0) nor fourier (1)", (int)kind);
    uint32_t t = hc_trajectory_terms(kind, d);
    if (t == 0)
        return hci_fail(HC_EINVAL, "trajectory %s d=%u is outside [%u, %u]",
                        kind == HC_TRAJECTORY_POLY ? "poly" : "fourier", d, kind == HC_TRAJECTORY_POLY ? 0u : 1u,
                        (unsigned)HC_TRAJECTORY_MAX_DEGREE);
    return (int)t;
}

/* Basis function j at midpoint i of a segment of len values, in double. */
static void fill_basis(double *a, hc_trajectory_kind kind, uint32_t used, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        double t = (2.0 * i + 1.0) / len - 1.0;
        if (kind == HC_TRAJECTORY_POLY) {
            /* three-term recurrence: T_{j+1} = 2 t T_j - T_{j-1}, bounded by 1 on [-1, 1] */
            double tm = 1.0, tj = t;
            for (uint32_t j = 0; j < used; j++) {
                double v = j == 0 ? 1.0 : (j == 1 ? t : 2.0 * t * tj - tm);
                if (j >= 2) {
                    tm = tj;
                    tj = v;
                }
                a[(size_t)j * len + i] = v;
            }
        } else {
            for (uint32_t j = 0; j < used; j++)
                a[(size_t)j * len + i] = cos(PI * j * (i + 0.5) / len);
        }
    }
}

void hci_traj_basis_free(hci_traj_basis *b)
{
    if (!b)
        return;
    hci_free(b->basis);
    hci_free(b->pinv);
    b->basis = NULL;
    b->pinv = NULL;
}

/* pinv = R^-1 Q^T for A = Q R (A is used x len, stored by rows = basis functions). */
static int build_pinv(double *pinv, const double *a, uint32_t used, uint32_t len)
{
    double *q = hci_malloc_array((size_t)used * len, sizeof *q);
    double *r = hci_calloc((size_t)used * used, sizeof *r);
    if (!q || !r) {
        hci_free(q);
        hci_free(r);
        return HC_ENOMEM;
    }
    memcpy(q, a, (size_t)used * len * sizeof *q);
    for (uint32_t j = 0; j < used; j++) {
        double *qj = q + (size_t)j * len;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t k = 0; k < j; k++) {
                const double *qk = q + (size_t)k * len;
                double dot = 0;
                for (uint32_t i = 0; i < len; i++)
                    dot += qk[i] * qj[i];
                for (uint32_t i = 0; i < len; i++)
                    qj[i] -= dot * qk[i];
                r[(size_t)k * used + j] += dot;
            }
        double nrm = 0;
        for (uint32_t i = 0; i < len; i++)
            nrm += qj[i] * qj[i];
        nrm = sqrt(nrm);
        /* cannot happen for distinct midpoints and used <= len; kept so a bug cannot divide by 0 */
        if (!(nrm > 0)) {
            hci_free(q);
            hci_free(r);
            return hci_fail(HC_EINVAL, "trajectory basis of %u terms is singular on %u points", used, len);
        }
        r[(size_t)j * used + j] = nrm;
        for (uint32_t i = 0; i < len; i++)
            qj[i] /= nrm;
    }
    for (uint32_t i = 0; i < len; i++)
        for (uint32_t jj = used; jj-- > 0;) {
            double v = q[(size_t)jj * len + i];
            for (uint32_t k = jj + 1; k < used; k++)
                v -= r[(size_t)jj * used + k] * pinv[(size_t)k * len + i];
            pinv[(size_t)jj * len + i] = v / r[(size_t)jj * used + jj];
        }
    hci_free(q);
    hci_free(r);
    return HC_OK;
}

int hci_traj_basis_init(hci_traj_basis *b, hc_trajectory_kind kind, uint32_t d, uint32_t len, int with_pinv)
{
    memset(b, 0, sizeof *b);
    int terms = hci_traj_check(kind, d);
    if (terms < 0)
        return terms;
    if (len == 0)
        return hci_fail(HC_EINVAL, "trajectory segment length is 0");
    b->kind = kind;
    b->terms = (uint32_t)terms;
    b->used = b->terms < len ? b->terms : len;
    b->len = len;
    double *a = hci_malloc_array((size_t)b->used * len, sizeof *a);
    b->basis = hci_malloc_array((size_t)b->used * len, sizeof *b->basis);
    if (with_pinv)
        b->pinv = hci_malloc_array((size_t)b->used * len, sizeof *b->pinv);
    if (!a || !b->basis || (with_pinv && !b->pinv)) {
        hci_free(a);
        hci_traj_basis_free(b);
        return HC_ENOMEM;
    }
    fill_basis(a, kind, b->used, len);
    for (size_t i = 0; i < (size_t)b->used * len; i++)
        b->basis[i] = (float)a[i];
    int rc = with_pinv ? build_pinv(b->pinv, a, b->used, len) : HC_OK;
    hci_free(a);
    if (rc != HC_OK)
        hci_traj_basis_free(b);
    return rc;
}

void hci_traj_fit(const hci_traj_basis *b, const float *x, float *coefs)
{
    for (uint32_t j = 0; j < b->used; j++) {
        const double *p = b->pinv + (size_t)j * b->len;
        double acc = 0;
        for (uint32_t i = 0; i < b->len; i++)
            acc += p[i] * x[i];
        coefs[j] = (float)acc;
    }
    for (uint32_t j = b->used; j < b->terms; j++)
        coefs[j] = 0.0f;
}

void hci_traj_eval(const hci_traj_basis *b, const float *coefs, float *out)
{
    uint32_t len = b->len;
    for (uint32_t i = 0; i < len; i++)
        out[i] = 0.0f;
    for (uint32_t j = 0; j < b->used; j++) {
        const float *bj = b->basis + (size_t)j * len;
        float c = coefs[j];
        for (uint32_t i = 0; i < len; i++)
            out[i] += c * bj[i];
    }
}

/* ---- public API ---- */

static int check_len(size_t len, const char *what)
{
    if (len == 0 || len > UINT32_MAX)
        return hci_fail(HC_EINVAL, "trajectory %s length %zu is outside [1, %u]", what, len, UINT32_MAX);
    return HC_OK;
}

static int check_finite(const float *x, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return hci_fail(HC_EINVAL, "trajectory %s[%zu] = %g is not finite", what, i, (double)x[i]);
    return HC_OK;
}

int hc_trajectory_fit(float *out, hc_trajectory_kind kind, uint32_t d, const float *x, size_t len)
{
    if (!out || !x)
        return hci_fail(HC_EINVAL, "hc_trajectory_fit: %s is NULL", out ? "x" : "out");
    int rc = check_len(len, "segment");
    if (rc == HC_OK)
        rc = check_finite(x, len, "x");
    if (rc != HC_OK)
        return rc;
    hci_traj_basis b;
    rc = hci_traj_basis_init(&b, kind, d, (uint32_t)len, 1);
    if (rc != HC_OK)
        return rc;
    hci_traj_fit(&b, x, out);
    hci_traj_basis_free(&b);
    return HC_OK;
}

int hc_trajectory_eval(float *out, hc_trajectory_kind kind, uint32_t d, const float *coefs, size_t len)
{
    if (!out || !coefs)
        return hci_fail(HC_EINVAL, "hc_trajectory_eval: %s is NULL", out ? "coefs" : "out");
    int rc = check_len(len, "segment");
    if (rc != HC_OK)
        return rc;
    hci_traj_basis b;
    rc = hci_traj_basis_init(&b, kind, d, (uint32_t)len, 0);
    if (rc != HC_OK)
        return rc;
    hci_traj_eval(&b, coefs, out);
    hci_traj_basis_free(&b);
    return HC_OK;
}

/* Runs fit (or eval) over the full segments with one basis and the short tail with another. */
static int over_array(float *vals, float *coefs, hc_trajectory_kind kind, uint32_t d, uint32_t L, size_t n, int fit)
{
    if (L == 0)
        return hci_fail(HC_EINVAL, "trajectory segment length L is 0");
    int terms = hci_traj_check(kind, d);
    if (terms < 0)
        return terms;
    size_t full = n / L, tail = n % L;
    hci_traj_basis b;
    int rc;
    if (full) {
        rc = hci_traj_basis_init(&b, kind, d, L, fit);
        if (rc != HC_OK)
            return rc;
        for (size_t s = 0; s < full; s++) {
            if (fit)
                hci_traj_fit(&b, vals + s * L, coefs + s * (size_t)terms);
            else
                hci_traj_eval(&b, coefs + s * (size_t)terms, vals + s * L);
        }
        hci_traj_basis_free(&b);
    }
    if (tail) {
        rc = hci_traj_basis_init(&b, kind, d, (uint32_t)tail, fit);
        if (rc != HC_OK)
            return rc;
        if (fit)
            hci_traj_fit(&b, vals + full * L, coefs + full * (size_t)terms);
        else
            hci_traj_eval(&b, coefs + full * (size_t)terms, vals + full * L);
        hci_traj_basis_free(&b);
    }
    return HC_OK;
}

int hc_trajectory_fit_array(float *out, hc_trajectory_kind kind, uint32_t d, uint32_t L, const float *x, size_t n)
{
    if (!out || !x)
        return hci_fail(HC_EINVAL, "hc_trajectory_fit_array: %s is NULL", out ? "x" : "out");
    if (n == 0)
        return hci_fail(HC_EINVAL, "hc_trajectory_fit_array: n is 0");
    int rc = check_finite(x, n, "x");
    if (rc != HC_OK)
        return rc;
    return over_array((float *)x, out, kind, d, L, n, 1);
}

int hc_trajectory_eval_array(float *out, hc_trajectory_kind kind, uint32_t d, uint32_t L, const float *coefs, size_t n)
{
    if (!out || !coefs)
        return hci_fail(HC_EINVAL, "hc_trajectory_eval_array: %s is NULL", out ? "coefs" : "out");
    if (n == 0)
        return hci_fail(HC_EINVAL, "hc_trajectory_eval_array: n is 0");
    return over_array(out, (float *)coefs, kind, d, L, n, 0);
}

int hc_trajectory_quantize(int32_t *out, float *out_step, const float *coefs, uint32_t terms, uint32_t q)
{
    if (!out || !out_step || !coefs)
        return hci_fail(HC_EINVAL, "hc_trajectory_quantize: %s is NULL", !out ? "out" : (!out_step ? "out_step" : "coefs"));
    if (terms == 0)
        return hci_fail(HC_EINVAL, "hc_trajectory_quantize: terms is 0");
    if (q < 2 || q > 16)
        return hci_fail(HC_EINVAL, "hc_trajectory_quantize: q=%u is outside [2, 16]", q);
    int rc = check_finite(coefs, terms, "coefs");
    if (rc != HC_OK)
        return rc;
    float amax = 0;
    for (uint32_t j = 0; j < terms; j++)
        amax = fmaxf(amax, fabsf(coefs[j]));
    int32_t top = (int32_t)((1u << (q - 1)) - 1);
    float step = amax / (float)top;
    /* a step that underflows to 0 (or a zero segment) codes everything as 0 */
    if (!(step > 0) || !isfinite(step)) {
        memset(out, 0, terms * sizeof *out);
        *out_step = 0.0f;
        return HC_OK;
    }
    for (uint32_t j = 0; j < terms; j++) {
        float v = nearbyintf(coefs[j] / step);
        /* c / step can round one past top when c = amax */
        out[j] = v > (float)top ? top : (v < (float)-top ? -top : (int32_t)v);
    }
    *out_step = step;
    return HC_OK;
}

void hc_trajectory_dequantize(float *out, const int32_t *codes, float step, uint32_t terms)
{
    for (uint32_t j = 0; j < terms; j++)
        out[j] = (float)codes[j] * step;
}
