/* Internal trajectory bases: the basis matrix and its least-squares pseudo-inverse for one
 * segment length, built once and applied to every segment of a tensor. */
#ifndef HCI_TRAJ_H
#define HCI_TRAJ_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/trajectory.h"

typedef struct hci_traj_basis {
    hc_trajectory_kind kind;
    uint32_t terms;   /* coefficients per segment (hc_trajectory_terms) */
    uint32_t used;    /* min(terms, len): the coefficients this length can determine */
    uint32_t len;     /* segment length */
    float *basis;     /* used x len: row j is basis function j at the len midpoints */
    double *pinv;     /* used x len: least-squares coefficients = pinv * x; NULL when not asked for */
} hci_traj_basis;

/* Builds the basis (and the pseudo-inverse when with_pinv) for kind/d at segment length len. */
int hci_traj_basis_init(hci_traj_basis *b, hc_trajectory_kind kind, uint32_t d, uint32_t len, int with_pinv);
void hci_traj_basis_free(hci_traj_basis *b);

/* coefs (terms values; those past `used` are set to 0) = least-squares fit of x (len values). */
void hci_traj_fit(const hci_traj_basis *b, const float *x, float *coefs);

/* out (len values) = sum_j coefs[j] basis_j. */
void hci_traj_eval(const hci_traj_basis *b, const float *coefs, float *out);

/* Validates kind and d, with a message naming the bad one; returns terms or a negative status. */
int hci_traj_check(hc_trajectory_kind kind, uint32_t d);

#endif
