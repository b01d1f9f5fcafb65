/* Ternary: the BitNet b1.58 weight quantiser (Ma et al., arXiv 2402.17764, section 2,
 * equations 1-3), applied after training. Layout in doc/codecs.md.
 *
 * scale = mean|W| + eps with eps = 1e-8 (the mean taken in double, then rounded to f32; eps
 * only keeps an all-zero tensor from dividing by zero and is far below the mean of any real
 * weight matrix), q = clamp(round_half_even(W / scale), -1, 1), decoded W' = q * scale.
 *
 * payload: f32 scale | ceil(numel / 4) code bytes, value i in bits 2(i % 4) and 2(i % 4) + 1
 *          of byte i / 4; code 0 is 0, 1 is +1, 2 is -1; code 3 and nonzero padding bits are
 *          rejected. No params.
 */
#include <math.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"
#include "scalar/kernels.h"
#include "scalar/scalar.h"

static uint64_t payload_bytes(int64_t numel)
{
    return 4u + ((uint64_t)numel + 3u) / 4u;
}

typedef struct code_job {
    const hci_matrix *w;
    float scale;
    uint8_t *codes;
} code_job;

/* Codes bytes [b0, b1) (four values each), so threads never share a byte. */
static int code_bytes(void *ctx, int64_t b0, int64_t b1)
{
    const code_job *job = ctx;
    int64_t end = 4 * b1 < job->w->numel ? 4 * b1 : job->w->numel;
    for (int64_t i = 4 * b0; i < end; i++) {
        float q = rintf(job->w->data[i] / job->scale);
        unsigned code = q >= 1.0f ? 1u : (q <= -1.0f ? 2u : 0u);
        job->codes[i >> 2] |= (uint8_t)(code << (2 * (i & 3)));
    }
    return HC_OK;
}

static int ternary_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    uint8_t *payload = hci_calloc((size_t)payload_bytes(w->numel), 1);
    if (!payload)
        return HC_ENOMEM;
    double sum = 0.0;
    for (int64_t i = 0; i < w->numel; i++)
        sum += fabsf(w->data[i]);
    float scale = (float)(sum / (double)w->numel + HCI_TERNARY_EPS);
    hci_put_f32(payload, scale);
    code_job job = { w, scale, payload + 4 };
    int rc = hci_parallel_for(c->threads, (w->numel + 3) / 4, 16384, code_bytes, &job);
    if (rc != HC_OK) {
        hci_free(payload);
        return rc;
    }
    ct->payload = payload;
    ct->payload_len = payload_bytes(w->numel);
    return HC_OK;
}

static int ternary_attach(hc_ctensor *ct)
{
    if (ct->params_len != 0)
        return hci_fail(HC_EFORMAT, "ternary tensor has %u parameter bytes; expected none", ct->params_len);
    uint64_t need = payload_bytes(ct->numel);
    if (ct->payload_len != need)
        return hci_fail(HC_EFORMAT, "ternary tensor of %lld values has a payload of %llu bytes; expected %llu",
                        (long long)ct->numel, (unsigned long long)ct->payload_len, (unsigned long long)need);
    float scale = hci_get_f32(ct->payload);
    if (!(scale > 0.0f) || !isfinite(scale))
        return hci_fail(HC_EFORMAT, "ternary tensor has scale %g; expected a finite scale > 0", (double)scale);
    const uint8_t *codes = ct->payload + 4;
    uint64_t nbytes = need - 4;
    for (uint64_t i = 0; i < nbytes; i++)
        if (codes[i] & (codes[i] >> 1) & 0x55u) /* both bits of some code set: code 3 */
            return hci_fail(HC_EFORMAT, "ternary tensor: byte %llu of the codes holds the unused code 3",
                            (unsigned long long)i);
    unsigned used = (unsigned)(ct->numel & 3);
    if (used && (codes[nbytes - 1] >> (2 * used)) != 0)
        return hci_fail(HC_EFORMAT, "ternary tensor of %lld values has nonzero padding bits", (long long)ct->numel);
    return HC_OK;
}

static int ternary_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    hci_ternary_kernels_for(hci_cpu_isa())->decode(out, ct->payload + 4, hci_get_f32(ct->payload), first, count);
    return HC_OK;
}

static int ternary_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const hci_ternary_kernels *k = hci_ternary_kernels_for(hci_cpu_isa());
    float scale = hci_get_f32(ct->payload);
    for (int64_t r = row0; r < row1; r++)
        y[r] = scale * k->dot(ct->payload + 4, r * ct->cols, ct->cols, x);
    return HC_OK;
}

const hci_codec hci_codec_ternary = {
    HC_CODEC_TERNARY, "ternary", ternary_compress, ternary_attach, NULL, ternary_decode, ternary_matvec, NULL,
};
