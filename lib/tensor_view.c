#include "tensor_view.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"

#define VIEW_MIN_SIZE offsetof(hc_tensor_view, importance)

static const char *view_name(const hc_tensor_view *v)
{
    return v->name ? v->name : "(unnamed)";
}

int hc_tensor_view_init(hc_tensor_view *view, uint32_t struct_size)
{
    if (!view)
        return hci_fail(HC_EINVAL, "hc_tensor_view_init: view is NULL");
    if (struct_size > sizeof(hc_tensor_view))
        return hci_fail(HC_EVERSION, "hc_tensor_view struct_size %u is larger than this library's %zu",
                        struct_size, sizeof(hc_tensor_view));
    if (struct_size < VIEW_MIN_SIZE)
        return hci_fail(HC_EINVAL, "hc_tensor_view struct_size %u is smaller than the minimum %zu", struct_size,
                        (size_t)VIEW_MIN_SIZE);
    hc_tensor_view init = HC_TENSOR_VIEW_INIT;
    init.struct_size = struct_size;
    memcpy(view, &init, struct_size);
    return HC_OK;
}

void hci_shape_matrix(uint32_t ndim, const int64_t *shape, int64_t *rows, int64_t *cols)
{
    if (ndim == 0) {
        *rows = 1;
        *cols = 1;
        return;
    }
    int64_t c = 1;
    for (uint32_t i = 1; i < ndim; i++)
        c *= shape[i];
    *rows = ndim == 1 ? 1 : shape[0];
    *cols = ndim == 1 ? shape[0] : c;
}

int hci_view_check(hc_tensor_view *out, const hc_tensor_view *in, int64_t *numel)
{
    if (!in)
        return hci_fail(HC_EINVAL, "tensor view is NULL");
    if (in->struct_size > sizeof(hc_tensor_view))
        return hci_fail(HC_EVERSION, "hc_tensor_view struct_size %u is larger than this library's %zu",
                        in->struct_size, sizeof(hc_tensor_view));
    if (in->struct_size < VIEW_MIN_SIZE)
        return hci_fail(HC_EINVAL, "hc_tensor_view struct_size %u is smaller than the minimum %zu (was it initialised?)",
                        in->struct_size, (size_t)VIEW_MIN_SIZE);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    memcpy(&v, in, in->struct_size);
    const char *name = view_name(&v);
    if (hc_dtype_size(v.dtype) == 0)
        return hci_fail(HC_EINVAL, "tensor '%s' has unknown dtype %d", name, (int)v.dtype);
    if (v.ndim > HC_MAX_DIMS)
        return hci_fail(HC_EINVAL, "tensor '%s' has %u dimensions; at most %d are supported", name, v.ndim,
                        HC_MAX_DIMS);
    int64_t n = 1;
    for (uint32_t i = 0; i < v.ndim; i++) {
        if (v.shape[i] < 0)
            return hci_fail(HC_EINVAL, "tensor '%s' has negative extent %lld in dimension %u", name,
                            (long long)v.shape[i], i);
        if (v.shape[i] == 0)
            return hci_fail(HC_EINVAL, "tensor '%s' is empty (extent 0 in dimension %u)", name, i);
        if (n > INT64_MAX / 4 / v.shape[i])
            return hci_fail(HC_EINVAL, "tensor '%s' is too large: its element count overflows", name);
        n *= v.shape[i];
    }
    if ((uint64_t)n > SIZE_MAX / 4)
        return hci_fail(HC_EINVAL, "tensor '%s' is too large for this machine's address space", name);
    if (!v.data)
        return hci_fail(HC_EINVAL, "tensor '%s' has NULL data", name);
    *out = v;
    *numel = n;
    return HC_OK;
}

int hci_view_matrix(hci_matrix *m, float **owned, const hc_tensor_view *v, int64_t numel)
{
    *owned = NULL;
    const float *data = v->data;
    if (v->dtype != HC_DTYPE_F32) {
        float *buf = hci_malloc_array((size_t)numel, sizeof(float));
        if (!buf)
            return HC_ENOMEM;
        hci_to_f32(buf, v->data, v->dtype, (size_t)numel);
        data = buf;
        *owned = buf;
    }
    for (int64_t i = 0; i < numel; i++) {
        if (!isfinite(data[i])) {
            int rc = hci_fail(HC_EINVAL, "tensor '%s' has a non-finite value (%s) at flat index %lld; "
                                         "NaN and infinity cannot be compressed",
                              view_name(v), isnan(data[i]) ? "nan" : (data[i] > 0 ? "+inf" : "-inf"),
                              (long long)i);
            hci_free(*owned);
            *owned = NULL;
            return rc;
        }
    }
    int64_t rows, cols;
    hci_shape_matrix(v->ndim, v->shape, &rows, &cols);
    m->name = view_name(v);
    m->data = data;
    m->rows = rows;
    m->cols = cols;
    m->numel = numel;
    m->importance = v->importance;
    m->hessian = v->hessian;
    if (m->importance) {
        for (int64_t c = 0; c < cols; c++) {
            if (!isfinite(m->importance[c]) || m->importance[c] < 0) {
                hci_free(*owned);
                *owned = NULL;
                return hci_fail(HC_EINVAL, "tensor '%s': importance[%lld] = %g is not a finite non-negative number",
                                m->name, (long long)c, (double)m->importance[c]);
            }
        }
    }
    return HC_OK;
}
