/* Error accumulation between an original and a reconstruction, in double precision. */
#ifndef HCI_METRICS_H
#define HCI_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/compressor.h"

typedef struct hci_err_acc {
    double ref_sq;   /* sum w^2 */
    double err_sq;   /* sum (w - w')^2 */
    double dec_sq;   /* sum w'^2 */
    double dot;      /* sum w w' */
    double max_abs;  /* max |w - w'| */
    uint64_t zeros;  /* count of w' == 0 */
    uint64_t n;
} hci_err_acc;

void hci_err_acc_add(hci_err_acc *acc, const float *ref, const float *dec, size_t n);
void hci_err_acc_merge(hci_err_acc *into, const hci_err_acc *from);
/* Fills rel_rmse, snr_db, max_abs_err, cosine and sparsity of out. */
void hci_err_acc_finish(const hci_err_acc *acc, hc_stats *out);

#endif
