/* NF4: 4-bit NormalFloat codes with double-quantised block absmaxes, as in QLoRA (Dettmers et
 * al., arXiv 2305.14314, section 3, "4-bit NormalFloat Quantization" and "Double
 * Quantization"; the 16 levels are the table of its appendix E). Layout in doc/codecs.md.
 *
 * The tensor is cut flat into blocks of `block` values (the last may be short). Each block's
 * absmax a_b is double-quantised: mean = the f32 mean of all a_b; per scale block j of
 * `scale_block` absmaxes, step_j = max_b |a_b - mean| / 127 (f32) and
 * q_b = clamp(round_half_even((a_b - mean) / step_j), -127, 127). The decoder's block scale is
 * s_b = q_b * step_j + mean (two f32 roundings). Every value w of block b gets the code of the
 * level nearest to w / s_b (ties to the lower level; s_b = 0 gives the zero level); coding
 * against s_b rather than a_b spends the codes on the scale the decoder will actually use.
 *
 * params:  u32 block, u32 scale_block (little-endian)
 * payload: f32 mean | nscale x f32 step_j | nblocks x int8 q_b | ceil(numel / 2) code bytes,
 *          value 2i in the low nibble of byte i and value 2i+1 in its high nibble.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "common/parallel.h"
#include "scalar/kernels.h"
#include "scalar/scalar.h"

#define NF4_L0 (-1.0f)
#define NF4_L1 (-0.6961928009986877f)
#define NF4_L2 (-0.5250730514526367f)
#define NF4_L3 (-0.39491748809814453f)
#define NF4_L4 (-0.28444138169288635f)
#define NF4_L5 (-0.18477343022823334f)
#define NF4_L6 (-0.09105003625154495f)
#define NF4_L7 (0.0f)
#define NF4_L8 (0.07958029955625534f)
#define NF4_L9 (0.16093020141124725f)
#define NF4_L10 (0.24611230194568634f)
#define NF4_L11 (0.33791524171829224f)
#define NF4_L12 (0.44070982933044434f)
#define NF4_L13 (0.5626170039176941f)
#define NF4_L14 (0.7229568362236023f)
#define NF4_L15 (1.0f)

const float hci_nf4_table[16] = {
    NF4_L0, NF4_L1, NF4_L2,  NF4_L3,  NF4_L4,  NF4_L5,  NF4_L6,  NF4_L7,
    NF4_L8, NF4_L9, NF4_L10, NF4_L11, NF4_L12, NF4_L13, NF4_L14, NF4_L15,
};

/* Decision thresholds: midpoints between neighbouring levels, each rounded to f32. */
static const float nf4_mid[15] = {
    0.5f * (NF4_L0 + NF4_L1),   0.5f * (NF4_L1 + NF4_L2),   0.5f * (NF4_L2 + NF4_L3),
    0.5f * (NF4_L3 + NF4_L4),   0.5f * (NF4_L4 + NF4_L5),   0.5f * (NF4_L5 + NF4_L6),
    0.5f * (NF4_L6 + NF4_L7),   0.5f * (NF4_L7 + NF4_L8),   0.5f * (NF4_L8 + NF4_L9),
    0.5f * (NF4_L9 + NF4_L10),  0.5f * (NF4_L10 + NF4_L11), 0.5f * (NF4_L11 + NF4_L12),
    0.5f * (NF4_L12 + NF4_L13), 0.5f * (NF4_L13 + NF4_L14), 0.5f * (NF4_L14 + NF4_L15),
};

#define NF4_ZERO_CODE 7u

void hc_nf4_levels(float out[16])
{
    if (out)
        memcpy(out, hci_nf4_table, sizeof hci_nf4_table);
}

void hci_nf4_layout_of(hci_nf4_layout *l, int64_t numel, uint32_t block, uint32_t scale_block)
{
    l->block = block;
    l->scale_block = scale_block;
    l->nblocks = (numel + block - 1) / block;
    l->nscale = (l->nblocks + scale_block - 1) / scale_block;
    l->off_steps = 4;
    l->off_qabs = l->off_steps + 4u * (uint64_t)l->nscale;
    l->off_codes = l->off_qabs + (uint64_t)l->nblocks;
    l->total = l->off_codes + ((uint64_t)numel + 1u) / 2u;
}

float hci_nf4_block_scale(int8_t q, float step, float mean)
{
    float t = (float)q * step;
    return t + mean;
}

unsigned hci_nf4_nearest(float x)
{
    /* binary search for the number of thresholds below x */
    unsigned code = 0;
    code += x > nf4_mid[code + 7] ? 8u : 0u;
    code += x > nf4_mid[code + 3] ? 4u : 0u;
    code += x > nf4_mid[code + 1] ? 2u : 0u;
    code += x > nf4_mid[code] ? 1u : 0u;
    return code;
}

typedef struct code_job {
    const hci_matrix *w;
    const float *s;    /* decoded block scales */
    uint8_t *codes;
    int64_t block, unit;   /* blocks per parallel item */
} code_job;

static int code_blocks(void *ctx, int64_t u0, int64_t u1)
{
    const code_job *job = ctx;
    int64_t numel = job->w->numel;
    for (int64_t b = u0 * job->unit; b < u1 * job->unit && b * job->block < numel; b++) {
        int64_t i0 = b * job->block, i1 = i0 + job->block < numel ? i0 + job->block : numel;
        float sb = job->s[b];
        for (int64_t i = i0; i < i1; i++) {
            unsigned code = sb != 0.0f ? hci_nf4_nearest(job->w->data[i] / sb) : NF4_ZERO_CODE;
            job->codes[i >> 1] |= (uint8_t)(code << (4 * (i & 1)));
        }
    }
    return HC_OK;
}

static int nf4_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    const hc_scalar_options *o = hci_scalar_opts(c);
    hci_nf4_layout l;
    hci_nf4_layout_of(&l, w->numel, o->block_size, o->scale_block_size);
    uint8_t *payload = hci_calloc((size_t)l.total, 1);
    float *s = hci_malloc_array((size_t)l.nblocks, sizeof *s);
    if (!payload || !s) {
        hci_free(payload);
        hci_free(s);
        return HC_ENOMEM;
    }
    /* block absmaxes and their mean */
    double sum = 0.0;
    for (int64_t b = 0; b < l.nblocks; b++) {
        int64_t i0 = b * l.block, i1 = i0 + l.block < w->numel ? i0 + l.block : w->numel;
        float m = 0.0f;
        for (int64_t i = i0; i < i1; i++)
            m = fmaxf(m, fabsf(w->data[i]));
        s[b] = m;
        sum += m;
    }
    float mean = (float)(sum / (double)l.nblocks);
    hci_put_f32(payload, mean);
    /* double quantisation: 8-bit offsets from the mean, one step per scale block */
    for (int64_t j = 0; j < l.nscale; j++) {
        int64_t b0 = j * l.scale_block, b1 = b0 + l.scale_block < l.nblocks ? b0 + l.scale_block : l.nblocks;
        float m = 0.0f;
        for (int64_t b = b0; b < b1; b++)
            m = fmaxf(m, fabsf(s[b] - mean));
        float step = m / 127.0f;
        hci_put_f32(payload + l.off_steps + 4 * j, step);
        for (int64_t b = b0; b < b1; b++) {
            float q = step > 0.0f ? rintf((s[b] - mean) / step) : 0.0f;
            q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
            payload[l.off_qabs + (uint64_t)b] = (uint8_t)(int8_t)q;
            s[b] = hci_nf4_block_scale((int8_t)q, step, mean);
        }
    }
    /* codes against the decoded scales, in parallel over runs of whole blocks that start on a
     * byte boundary, so no two threads share a code byte */
    int64_t unit = l.block % 2 ? 2 : 1;
    code_job job = { w, s, payload + l.off_codes, l.block, unit };
    int64_t min_units = 65536 / ((int64_t)l.block * unit) + 1;
    int rc = hci_parallel_for(c->threads, (l.nblocks + unit - 1) / unit, min_units, code_blocks, &job);
    hci_free(s);
    if (rc != HC_OK) {
        hci_free(payload);
        return rc;
    }
    uint8_t *params = hci_malloc(8);
    if (!params) {
        hci_free(payload);
        return HC_ENOMEM;
    }
    hci_put_u32(params, l.block);
    hci_put_u32(params + 4, l.scale_block);
    ct->params = params;
    ct->params_len = 8;
    ct->payload = payload;
    ct->payload_len = l.total;
    return HC_OK;
}

static int nf4_attach(hc_ctensor *ct)
{
    if (ct->params_len != 8)
        return hci_fail(HC_EFORMAT, "nf4 tensor has %u parameter bytes; expected 8 (block, scale_block)",
                        ct->params_len);
    uint32_t block = hci_get_u32(ct->params), scale_block = hci_get_u32(ct->params + 4);
    if (block < HCI_NF4_MIN_BLOCK || block > HCI_NF4_MAX_BLOCK)
        return hci_fail(HC_EFORMAT, "nf4 tensor has block size %u; expected %u to %u", block, HCI_NF4_MIN_BLOCK,
                        HCI_NF4_MAX_BLOCK);
    if (scale_block < 1 || scale_block > HCI_NF4_MAX_BLOCK)
        return hci_fail(HC_EFORMAT, "nf4 tensor has scale block size %u; expected 1 to %u", scale_block,
                        HCI_NF4_MAX_BLOCK);
    hci_nf4_layout l;
    hci_nf4_layout_of(&l, ct->numel, block, scale_block);
    if (ct->payload_len != l.total)
        return hci_fail(HC_EFORMAT,
                        "nf4 tensor of %lld values (blocks %u/%u) has a payload of %llu bytes; expected %llu",
                        (long long)ct->numel, block, scale_block, (unsigned long long)ct->payload_len,
                        (unsigned long long)l.total);
    const uint8_t *p = ct->payload;
    float mean = hci_get_f32(p);
    if (!isfinite(mean))
        return hci_fail(HC_EFORMAT, "nf4 tensor has a non-finite absmax mean %g", (double)mean);
    if ((ct->numel & 1) && (p[l.total - 1] >> 4) != 0)
        return hci_fail(HC_EFORMAT, "nf4 tensor of %lld values has a nonzero padding nibble", (long long)ct->numel);
    float *s = hci_aligned_array((size_t)l.nblocks, sizeof *s);
    if (!s)
        return HC_ENOMEM;
    for (int64_t b = 0; b < l.nblocks; b++) {
        int64_t j = b / scale_block;
        float step = hci_get_f32(p + l.off_steps + 4 * j);
        int8_t q = (int8_t)p[l.off_qabs + (uint64_t)b];
        if (!(step >= 0.0f) || !isfinite(step) || q == INT8_MIN) {
            hci_free(s);
            return hci_fail(HC_EFORMAT, "nf4 tensor: block %lld has step %g and code %d; expected a finite step >= 0 and a code in [-127, 127]",
                            (long long)b, (double)step, q);
        }
        s[b] = hci_nf4_block_scale(q, step, mean);
        if (!isfinite(s[b])) {
            hci_free(s);
            return hci_fail(HC_EFORMAT, "nf4 tensor: block %lld decodes to a non-finite scale", (long long)b);
        }
    }
    ct->state = s;
    return HC_OK;
}

static void nf4_detach(hc_ctensor *ct)
{
    hci_free(ct->state);
    ct->state = NULL;
}

static const uint8_t *codes_of(const hc_ctensor *ct)
{
    return ct->payload + ct->payload_len - ((uint64_t)ct->numel + 1u) / 2u;
}

static int nf4_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    const hci_nf4_kernels *k = hci_nf4_kernels_for(hci_cpu_isa());
    k->decode(out, codes_of(ct), ct->state, hci_get_u32(ct->params), first, count);
    return HC_OK;
}

static int nf4_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const hci_nf4_kernels *k = hci_nf4_kernels_for(hci_cpu_isa());
    const uint8_t *codes = codes_of(ct);
    uint32_t block = hci_get_u32(ct->params);
    /* rows and blocks in whole runs of 32: reorder x once so the kernel skips a shuffle per
     * code byte; without memory for the copy, the plain kernel does the same work */
    float *xs = k->dot_split && ct->cols % 32 == 0 && block % 32 == 0
                    ? malloc((size_t)ct->cols * sizeof *xs) : NULL;
    if (xs) {
        hci_nf4_split_x(xs, x, ct->cols);
        for (int64_t r = row0; r < row1; r++)
            y[r] = k->dot_split(codes, ct->state, block, r * ct->cols, ct->cols, xs);
        free(xs);
        return HC_OK;
    }
    for (int64_t r = row0; r < row1; r++)
        y[r] = k->dot(codes, ct->state, block, r * ct->cols, ct->cols, x);
    return HC_OK;
}

const hci_codec hci_codec_nf4 = {
    HC_CODEC_NF4, "nf4", nf4_compress, nf4_attach, nf4_detach, nf4_decode, nf4_matvec, NULL,
};
