/* F32, FP16 and BF16: one element each, little-endian, no parameters. FP16 and BF16 round to
 * nearest even; values beyond the FP16 range become infinities, which the error statistics show. */
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/half.h"
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

static float element(const hc_ctensor *ct, int64_t i)
{
    const uint8_t *p = ct->payload;
    switch (ct->codec->id) {
    case HC_CODEC_F32: return hci_get_f32(p + 4 * i);
    case HC_CODEC_FP16: return hci_f16_to_f32(hci_get_u16(p + 2 * i));
    default: return hci_bf16_to_f32(hci_get_u16(p + 2 * i));
    }
}

static int float_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    for (int64_t i = 0; i < count; i++)
        out[i] = element(ct, first + i);
    return HC_OK;
}

static int float_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    int64_t cols = ct->cols;
    for (int64_t r = row0; r < row1; r++) {
        float acc = 0.0f;
        for (int64_t c = 0; c < cols; c++)
            acc += element(ct, r * cols + c) * x[c];
        y[r] = acc;
    }
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
