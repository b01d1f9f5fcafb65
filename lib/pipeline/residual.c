/* HC_CODEC_RESIDUAL: a sum of stage codings, the result of the pipeline's refine mode.
 *
 * params (8 bytes): u32 number of stages n (1..HC_PIPELINE_MAX_STAGES), u32 flags (bit 0: gains).
 * payload: n times { u64 length, a serialised tensor of that length (its own header and CRC) },
 * then, with gains, n x rows binary16 per-row gains, stage-major. Value (r, c) decodes to
 * sum_s g[s][r] * stage_s(r, c) (g = 1 without gains). Stages may not themselves be residual,
 * so nesting is one level deep however hostile the input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/half.h"
#include "pipeline/pipeline_internal.h"

#define RES_PARAMS 8u
#define RES_FLAG_GAINS 1u

typedef struct res_state {
    uint32_t n;
    hc_ctensor *stage[HC_PIPELINE_MAX_STAGES];
    float *gains;   /* n x rows, or NULL */
} res_state;

static void res_detach(hc_ctensor *ct)
{
    res_state *s = ct->state;
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n; i++)
        hc_ctensor_free(s->stage[i]);
    hci_free(s->gains);
    hci_free(s);
    ct->state = NULL;
}

static int res_attach(hc_ctensor *ct)
{
    if (ct->params_len != RES_PARAMS)
        return hci_fail(HC_EFORMAT, "residual tensor has %u parameter bytes; expected %u", ct->params_len, RES_PARAMS);
    uint32_t n = hci_get_u32(ct->params), flags = hci_get_u32(ct->params + 4);
    if (n < 1 || n > HC_PIPELINE_MAX_STAGES)
        return hci_fail(HC_EFORMAT, "residual tensor declares %u stages; 1 to %d are allowed", n,
                        HC_PIPELINE_MAX_STAGES);
    if (flags & ~RES_FLAG_GAINS)
        return hci_fail(HC_EFORMAT, "residual tensor has unknown flags 0x%x", flags);
    res_state *s = hci_calloc(1, sizeof *s);
    if (!s)
        return HC_ENOMEM;
    ct->state = s;
    const uint8_t *p = ct->payload;
    uint64_t left = ct->payload_len, off = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (left < 8) {
            res_detach(ct);
            return hci_fail(HC_EFORMAT, "residual tensor is truncated before stage %u of %u", i, n);
        }
        uint64_t len = hci_get_u64(p + off);
        off += 8;
        left -= 8;
        if (len > left) {
            res_detach(ct);
            return hci_fail(HC_EFORMAT, "residual stage %u declares %llu bytes but only %llu remain", i,
                            (unsigned long long)len, (unsigned long long)left);
        }
        /* refuse a nested residual before parsing it, so hostile input cannot recurse */
        if (len >= 8 && hci_get_u16(p + off + 6) == HC_CODEC_RESIDUAL) {
            res_detach(ct);
            return hci_fail(HC_EFORMAT, "residual stage %u is itself residual; nesting is not allowed", i);
        }
        hc_ctensor *child;
        int rc = hc_ctensor_deserialize(&child, p + off, (size_t)len);
        if (rc != HC_OK) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", hc_last_error());
            res_detach(ct);
            return hci_fail(rc == HC_ENOMEM ? HC_ENOMEM : HC_EFORMAT, "residual stage %u: %s", i, msg);
        }
        s->stage[s->n++] = child;
        int same = child->ndim == ct->ndim;
        for (uint32_t d = 0; same && d < ct->ndim; d++)
            same = child->shape[d] == ct->shape[d];
        if (!same) {
            res_detach(ct);
            return hci_fail(HC_EFORMAT, "residual stage %u has a shape different from the residual tensor's", i);
        }
        off += len;
        left -= len;
    }
    uint64_t want = 0;
    if (flags & RES_FLAG_GAINS)
        want = (uint64_t)n * (uint64_t)ct->rows * 2u;
    if (left != want) {
        res_detach(ct);
        return hci_fail(HC_EFORMAT, "residual tensor has %llu bytes after its %u stages; expected %llu",
                        (unsigned long long)left, n, (unsigned long long)want);
    }
    if (want) {
        size_t ng = (size_t)n * (size_t)ct->rows;
        s->gains = hci_malloc_array(ng, sizeof(float));
        if (!s->gains) {
            res_detach(ct);
            return HC_ENOMEM;
        }
        for (size_t i = 0; i < ng; i++) {
            float g = hci_f16_to_f32(hci_get_u16(p + off + 2 * i));
            if (!isfinite(g)) {
                res_detach(ct);
                return hci_fail(HC_EFORMAT, "residual gain %zu is not finite", i);
            }
            s->gains[i] = g;
        }
    }
    return HC_OK;
}

static int res_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    const res_state *s = ct->state;
    enum { CHUNK = 4096 };
    float *tmp = hci_malloc_array(CHUNK, sizeof(float));
    if (!tmp)
        return HC_ENOMEM;
    int rc = HC_OK;
    for (int64_t i = 0; i < count; i++)
        out[i] = 0.0f;
    for (uint32_t k = 0; k < s->n && rc == HC_OK; k++) {
        const hc_ctensor *c = s->stage[k];
        for (int64_t i = 0; i < count && rc == HC_OK; i += CHUNK) {
            int64_t m = count - i < CHUNK ? count - i : CHUNK;
            rc = c->codec->decode(c, first + i, m, tmp);
            if (rc != HC_OK)
                break;
            if (!s->gains) {
                for (int64_t j = 0; j < m; j++)
                    out[i + j] += tmp[j];
            } else {
                const float *g = s->gains + (size_t)k * (size_t)ct->rows;
                for (int64_t j = 0; j < m; j++)
                    out[i + j] += g[(first + i + j) / ct->cols] * tmp[j];
            }
        }
    }
    hci_free(tmp);
    return rc;
}

static int res_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const res_state *s = ct->state;
    /* stage kernels write y[row0..row1) of a full-length vector */
    float *tmp = hci_malloc_array((size_t)ct->rows, sizeof(float));
    if (!tmp)
        return HC_ENOMEM;
    for (int64_t r = row0; r < row1; r++)
        y[r] = 0.0f;
    int rc = HC_OK;
    for (uint32_t k = 0; k < s->n && rc == HC_OK; k++) {
        const hc_ctensor *c = s->stage[k];
        rc = c->codec->matvec(c, x, tmp, row0, row1);
        const float *g = s->gains ? s->gains + (size_t)k * (size_t)ct->rows : NULL;
        for (int64_t r = row0; r < row1 && rc == HC_OK; r++)
            y[r] += g ? g[r] * tmp[r] : tmp[r];
    }
    hci_free(tmp);
    return rc;
}

static int res_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    (void)ct;
    (void)c;
    return hci_fail(HC_EUNSUPPORTED, "tensor '%s': residual tensors are made by a refine pipeline, not a compressor",
                    w->name);
}

const hci_codec hci_codec_residual = {
    HC_CODEC_RESIDUAL, "residual", res_compress, res_attach, res_detach, res_decode, res_matvec, NULL,
};

static uint64_t payload_bytes(hc_ctensor *const *stages, uint32_t n, int with_gains)
{
    uint64_t b = 0;
    for (uint32_t i = 0; i < n; i++)
        b += 8u + (uint64_t)hc_ctensor_serialized_size(stages[i]);
    if (with_gains)
        b += (uint64_t)n * (uint64_t)stages[0]->rows * 2u;
    return b;
}

uint64_t hci_residual_bits(hc_ctensor *const *stages, uint32_t n, int with_gains)
{
    /* the generic header (24 + 8 per dimension), params, payload, CRC */
    uint64_t bytes = 24u + 8u * stages[0]->ndim + RES_PARAMS + payload_bytes(stages, n, with_gains) + 4u;
    return 8u * bytes;
}

int hci_residual_build(hc_ctensor **out, hc_ctensor *const *stages, uint32_t n, const uint16_t *gains,
                       hc_dtype orig_dtype, uint32_t threads)
{
    *out = NULL;
    if (n < 1 || n > HC_PIPELINE_MAX_STAGES)
        return hci_fail(HC_EINVAL, "a residual tensor needs 1 to %d stages, not %u", HC_PIPELINE_MAX_STAGES, n);
    uint64_t plen = payload_bytes(stages, n, gains != NULL);
    if (plen > (uint64_t)SIZE_MAX / 2)
        return hci_fail(HC_EINVAL, "residual payload of %llu bytes is too large", (unsigned long long)plen);
    hc_ctensor *ct = hci_calloc(1, sizeof *ct);
    if (!ct)
        return HC_ENOMEM;
    const hc_ctensor *s0 = stages[0];
    ct->codec = &hci_codec_residual;
    ct->orig_dtype = orig_dtype;
    ct->ndim = s0->ndim;
    memcpy(ct->shape, s0->shape, sizeof ct->shape);
    ct->numel = s0->numel;
    ct->rows = s0->rows;
    ct->cols = s0->cols;
    ct->threads = threads ? threads : 1;
    ct->params = hci_malloc(RES_PARAMS);
    ct->payload = ct->params ? hci_malloc((size_t)plen) : NULL;
    if (!ct->payload) {
        hc_ctensor_free(ct);
        return HC_ENOMEM;
    }
    ct->params_len = RES_PARAMS;
    ct->payload_len = plen;
    hci_put_u32(ct->params, n);
    hci_put_u32(ct->params + 4, gains ? RES_FLAG_GAINS : 0u);
    uint8_t *p = ct->payload;
    int rc = HC_OK;
    for (uint32_t i = 0; i < n && rc == HC_OK; i++) {
        size_t len = hc_ctensor_serialized_size(stages[i]);
        hci_put_u64(p, len);
        rc = hc_ctensor_serialize(stages[i], p + 8, len);
        p += 8 + len;
    }
    if (rc == HC_OK && gains)
        for (size_t i = 0; i < (size_t)n * (size_t)s0->rows; i++, p += 2)
            hci_put_u16(p, gains[i]);
    if (rc == HC_OK)
        rc = res_attach(ct);
    if (rc != HC_OK) {
        hc_ctensor_free(ct);
        return rc;
    }
    *out = ct;
    return HC_OK;
}
