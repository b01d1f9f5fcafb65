/* F32, FP16 and BF16: one element each, little-endian, no parameters. FP16 and BF16 round to
 * nearest even; values beyond the FP16 range become infinities, which the error statistics show.
 * Decoding and matvec run the kernels of float_kernels.c. */
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/half.h"
#include "scalar/kernels.h"
#include "scalar/scalar.h"

static size_t element_bytes(const hc_ctensor *ct)
{
    return ct->codec->id == HC_CODEC_F32 ? 4u : 2u;
}

static int float_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    (void)c;
    size_t eb = element_bytes(ct);
    uint8_t *payload = hci_malloc_array((size_t)w->numel, eb);
    if (!payload)
        return HC_ENOMEM;
    hc_dtype dt = ct->codec->id == HC_CODEC_F32 ? HC_DTYPE_F32
                  : ct->codec->id == HC_CODEC_FP16 ? HC_DTYPE_F16 : HC_DTYPE_BF16;
    hci_from_f32(payload, dt, w->data, (size_t)w->numel);
    ct->payload = payload;
    ct->payload_len = (uint64_t)w->numel * eb;
    return HC_OK;
}

static int float_attach(hc_ctensor *ct)
{
    if (ct->params_len != 0)
        return hci_fail(HC_EFORMAT, "%s tensor has %u parameter bytes; expected none", ct->codec->name,
                        ct->params_len);
    uint64_t need = (uint64_t)ct->numel * element_bytes(ct);
    if (ct->payload_len != need)
        return hci_fail(HC_EFORMAT, "%s tensor of %lld values has a payload of %llu bytes; expected %llu",
                        ct->codec->name, (long long)ct->numel, (unsigned long long)ct->payload_len,
                        (unsigned long long)need);
    return HC_OK;
}

static const hci_float_kernels *kernels(const hc_ctensor *ct)
{
    return hci_float_kernels_for(ct->codec->id, hci_cpu_isa());
}

static int float_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    kernels(ct)->decode(out, ct->payload + (size_t)first * element_bytes(ct), count);
    return HC_OK;
}

static int float_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const hci_float_kernels *k = kernels(ct);
    size_t row_bytes = (size_t)ct->cols * element_bytes(ct);
    for (int64_t r = row0; r < row1; r++)
        y[r] = k->dot(ct->payload + (size_t)r * row_bytes, x, ct->cols);
    return HC_OK;
}

const hci_codec hci_codec_f32 = {
    HC_CODEC_F32, "f32", float_compress, float_attach, NULL, float_decode, float_matvec, NULL,
};
const hci_codec hci_codec_fp16 = {
    HC_CODEC_FP16, "fp16", float_compress, float_attach, NULL, float_decode, float_matvec, NULL,
};
const hci_codec hci_codec_bf16 = {
    HC_CODEC_BF16, "bf16", float_compress, float_attach, NULL, float_decode, float_matvec, NULL,
};
