/* Validation of caller tensor views and their conversion to the f32 matrices codecs take. */
#ifndef HCI_TENSOR_VIEW_H
#define HCI_TENSOR_VIEW_H

#include "codec.h"

/* Copies the caller's view (honouring its struct_size) into *out and validates dtype, ndim,
 * shape, data and size overflow. Messages name the tensor and the bad value. */
int hci_view_check(hc_tensor_view *out, const hc_tensor_view *in, int64_t *numel);

/* Matrix view (rows, cols) of a shape: rows = shape[0], cols = the rest; 1 x 1 for 0-D. */
void hci_shape_matrix(uint32_t ndim, const int64_t *shape, int64_t *rows, int64_t *cols);

/* Fills m from a checked view, converting to f32 into *owned when needed (caller frees) and
 * rejecting NaN and infinities with the index of the first one. */
int hci_view_matrix(hci_matrix *m, float **owned, const hc_tensor_view *v, int64_t numel);

#endif
