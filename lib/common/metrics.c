#include "common/metrics.h"

#include <math.h>

void hci_err_acc_add(hci_err_acc *acc, const float *ref, const float *dec, size_t n)
{
    double r2 = 0, e2 = 0, d2 = 0, dot = 0, mx = acc->max_abs;
    uint64_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], d = dec[i], e = r - d;
        r2 += r * r;
        e2 += e * e;
        d2 += d * d;
        dot += r * d;
        if (fabs(e) > mx)
            mx = fabs(e);
        zeros += dec[i] == 0.0f;
    }
    acc->ref_sq += r2;
    acc->err_sq += e2;
    acc->dec_sq += d2;
    acc->dot += dot;
    acc->max_abs = mx;
    acc->zeros += zeros;
    acc->n += n;
}

void hci_err_acc_merge(hci_err_acc *into, const hci_err_acc *from)
{
    into->ref_sq += from->ref_sq;
    into->err_sq += from->err_sq;
    into->dec_sq += from->dec_sq;
    into->dot += from->dot;
    if (from->max_abs > into->max_abs)
        into->max_abs = from->max_abs;
    into->zeros += from->zeros;
    into->n += from->n;
}

void hci_err_acc_finish(const hci_err_acc *acc, hc_stats *out)
{
    /* An all-zero original reproduced exactly has no relative error; reproduced badly, infinite. */
    if (acc->ref_sq > 0)
        out->rel_rmse = sqrt(acc->err_sq / acc->ref_sq);
    else
        out->rel_rmse = acc->err_sq > 0 ? INFINITY : 0.0;
    out->snr_db = acc->err_sq > 0 ? 10.0 * log10(acc->ref_sq / acc->err_sq) : INFINITY;
    out->max_abs_err = acc->max_abs;
    if (acc->ref_sq > 0 && acc->dec_sq > 0)
        out->cosine = acc->dot / sqrt(acc->ref_sq * acc->dec_sq);
    else
        out->cosine = acc->ref_sq == acc->dec_sq ? 1.0 : 0.0;
    out->sparsity = acc->n ? (double)acc->zeros / (double)acc->n : 0.0;
}
