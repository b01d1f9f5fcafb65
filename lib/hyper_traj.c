/* The poly and fourier trajectory codecs: segments of L values as quantised Chebyshev or DCT-II
 * coefficients (doc/algorithms.md, "Trajectory compression").
 *
 * params (8 bytes): u32 L, u8 kind (0 poly, 1 fourier), u8 d, u8 q, u8 0.
 * payload, q <= 16: nseg float32 steps, then nseg * terms codes of q bits (LSB first), each the
 *   signed code plus 2^(q-1) - 1; q = 32: nseg * terms float32 coefficients.
 * The last segment may be shorter than L and is fitted on its own midpoints.
 *
 * matvec: when L divides the row length, the input is projected once onto the basis of each
 * column segment (cols * terms multiply-adds per call), and each row then costs terms multiply-adds
 * per segment, terms / L per weight, instead of evaluating the weights; otherwise each row is
 * decoded (terms multiply-adds per weight) and dotted. */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bitpack.h"
#include "common/bytes.h"
#include "common/error.h"
#include "hyper.h"
#include "traj.h"

#define TRAJ_PARAMS 8u

typedef struct traj_state {
    uint32_t L, terms, q;
    hc_trajectory_kind kind;
    uint64_t nseg;
    const uint8_t *codes;   /* packed codes (q <= 16) or float coefficients (q = 32) */
    hci_traj_basis full, tail;
    int has_full, has_tail;
} traj_state;

static hc_trajectory_kind traj_kind(const hci_codec *codec)
{
    return codec->id == HC_CODEC_HYPER_POLY ? HC_TRAJECTORY_POLY : HC_TRAJECTORY_FOURIER;
}

static uint64_t payload_size(uint64_t nseg, uint32_t terms, uint32_t q)
{
    if (q == 32)
        return nseg * terms * 4u;
    return nseg * 4u + (nseg * terms * q + 7) / 8;
}

static int traj_compress(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w)
{
    const hc_hyper_options *o = hci_hyper_opts(c);
    hc_trajectory_kind kind = traj_kind(ct->codec);
    uint32_t L = o->segment, q = o->coef_bits, terms = hc_trajectory_terms(kind, o->degree);
    uint64_t n = (uint64_t)w->numel, nseg = (n + L - 1) / L;
    /* bounded by the element count and terms <= 65, so the products cannot overflow 64 bits */
    uint64_t bytes = payload_size(nseg, terms, q);
    uint8_t *params = hci_malloc(TRAJ_PARAMS);
    uint8_t *payload = hci_calloc((size_t)bytes, 1);
    float *coefs = hci_malloc_array((size_t)nseg * terms, sizeof *coefs);
    uint32_t *packed = q == 32 ? NULL : hci_malloc_array((size_t)nseg * terms, sizeof *packed);
    int rc = (!params || !payload || !coefs || (q != 32 && !packed)) ? HC_ENOMEM : HC_OK;
    if (rc == HC_OK)
        rc = hc_trajectory_fit_array(coefs, kind, o->degree, L, w->data, (size_t)n);
    if (rc == HC_OK) {
        hci_put_u32(params, L);
        params[4] = (uint8_t)kind;
        params[5] = (uint8_t)o->degree;
        params[6] = (uint8_t)q;
        params[7] = 0;
        if (q == 32) {
            for (uint64_t i = 0; i < nseg * terms; i++)
                hci_put_f32(payload + 4 * i, coefs[i]);
        } else {
            int32_t codes[HC_TRAJECTORY_MAX_DEGREE + 1];
            uint32_t bias = (1u << (q - 1)) - 1;
            for (uint64_t s = 0; s < nseg && rc == HC_OK; s++) {
                float step;
                rc = hc_trajectory_quantize(codes, &step, coefs + s * terms, terms, q);
                hci_put_f32(payload + 4 * s, step);
                for (uint32_t j = 0; j < terms; j++)
                    packed[s * terms + j] = (uint32_t)(codes[j] + (int32_t)bias);
            }
            if (rc == HC_OK)
                hci_pack_bits(payload + 4 * nseg, packed, (size_t)(nseg * terms), q);
        }
    }
    hci_free(coefs);
    hci_free(packed);
    if (rc != HC_OK) {
        hci_free(params);
        hci_free(payload);
        return rc;
    }
    ct->params = params;
    ct->params_len = TRAJ_PARAMS;
    ct->payload = payload;
    ct->payload_len = bytes;
    return HC_OK;
}

static void traj_detach(hc_ctensor *ct)
{
    traj_state *s = ct->state;
    if (!s)
        return;
    hci_traj_basis_free(&s->full);
    hci_traj_basis_free(&s->tail);
    hci_free(s);
    ct->state = NULL;
}

static int traj_attach(hc_ctensor *ct)
{
    const char *name = ct->codec->name;
    if (ct->params_len != TRAJ_PARAMS)
        return hci_fail(HC_EFORMAT, "%s tensor has %u parameter bytes; expected %u", name, ct->params_len, TRAJ_PARAMS);
    const uint8_t *p = ct->params;
    uint32_t L = hci_get_u32(p), d = p[5], q = p[6];
    hc_trajectory_kind kind = traj_kind(ct->codec);
    if (p[4] != (uint8_t)kind || p[7] != 0)
        return hci_fail(HC_EFORMAT, "%s tensor has kind byte %u and reserved byte %u; expected %u and 0", name, p[4],
                        p[7], (unsigned)kind);
    if (L < 1 || L > 65536)
        return hci_fail(HC_EFORMAT, "%s tensor has segment length %u; expected 1 to 65536", name, L);
    uint32_t terms = hc_trajectory_terms(kind, d);
    if (terms == 0)
        return hci_fail(HC_EFORMAT, "%s tensor has degree %u; expected at most 64", name, d);
    if (!((q >= 2 && q <= 16) || q == 32))
        return hci_fail(HC_EFORMAT, "%s tensor has %u coefficient bits; expected 2 to 16 or 32", name, q);
    uint64_t nseg = ((uint64_t)ct->numel + L - 1) / L;
    /* a hostile shape could make the size wrap around to the payload's length */
    if (nseg > UINT64_MAX / (8u * (terms * 32u + 32u)))
        return hci_fail(HC_EFORMAT, "%s tensor of %lld values has too many segments of %u", name,
                        (long long)ct->numel, L);
    uint64_t need = payload_size(nseg, terms, q);
    if (ct->payload_len != need)
        return hci_fail(HC_EFORMAT, "%s tensor of %lld values in segments of %u has a payload of %llu bytes; expected %llu",
                        name, (long long)ct->numel, L, (unsigned long long)ct->payload_len, (unsigned long long)need);
    /* a non-finite step or coefficient would decode to NaN */
    uint64_t nfloat = q == 32 ? nseg * terms : nseg;
    for (uint64_t i = 0; i < nfloat; i++) {
        float v = hci_get_f32(ct->payload + 4 * i);
        if (!isfinite(v) || (q != 32 && v < 0))
            return hci_fail(HC_EFORMAT, "%s tensor has %s %llu = %g; expected a finite%s value", name,
                            q == 32 ? "coefficient" : "step", (unsigned long long)i, (double)v,
                            q == 32 ? "" : " non-negative");
    }
    traj_state *s = hci_calloc(1, sizeof *s);
    if (!s)
        return HC_ENOMEM;
    s->L = L;
    s->terms = terms;
    s->q = q;
    s->kind = kind;
    s->nseg = nseg;
    s->codes = ct->payload + (q == 32 ? 0 : 4 * nseg);
    uint64_t full = (uint64_t)ct->numel / L, tail = (uint64_t)ct->numel % L;
    int rc = HC_OK;
    if (full) {
        rc = hci_traj_basis_init(&s->full, kind, d, L, 0);
        s->has_full = rc == HC_OK;
    }
    if (rc == HC_OK && tail) {
        rc = hci_traj_basis_init(&s->tail, kind, d, (uint32_t)tail, 0);
        s->has_tail = rc == HC_OK;
    }
    ct->state = s;
    if (rc != HC_OK)
        traj_detach(ct);
    return rc;
}

/* Coefficients of segment seg. */
static void segment_coefs(const hc_ctensor *ct, uint64_t seg, float *c)
{
    const traj_state *s = ct->state;
    if (s->q == 32) {
        for (uint32_t j = 0; j < s->terms; j++)
            c[j] = hci_get_f32(s->codes + 4 * (seg * s->terms + j));
        return;
    }
    float step = hci_get_f32(ct->payload + 4 * seg);
    int32_t bias = (int32_t)((1u << (s->q - 1)) - 1);
    for (uint32_t j = 0; j < s->terms; j++)
        c[j] = (float)((int32_t)hci_get_bits(s->codes, (size_t)(seg * s->terms + j), s->q) - bias) * step;
}

static int traj_decode(const hc_ctensor *ct, int64_t first, int64_t count, float *out)
{
    const traj_state *s = ct->state;
    float *buf = hci_malloc_array(s->L, sizeof *buf);
    if (!buf)
        return HC_ENOMEM;
    float c[HC_TRAJECTORY_MAX_DEGREE + 1];
    int64_t end = first + count;
    for (int64_t pos = first; pos < end;) {
        uint64_t seg = (uint64_t)pos / s->L;
        int64_t seg0 = (int64_t)(seg * s->L);
        const hci_traj_basis *b = (seg0 + (int64_t)s->L <= ct->numel) ? &s->full : &s->tail;
        segment_coefs(ct, seg, c);
        hci_traj_eval(b, c, buf);
        int64_t stop = seg0 + b->len < end ? seg0 + b->len : end;
        memcpy(out + (pos - first), buf + (pos - seg0), (size_t)(stop - pos) * sizeof *out);
        pos = stop;
    }
    hci_free(buf);
    return HC_OK;
}

static int traj_matvec(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1)
{
    const traj_state *s = ct->state;
    int64_t cols = ct->cols;
    float c[HC_TRAJECTORY_MAX_DEGREE + 1];
    if (cols % s->L == 0) {
        /* z[k][j] = <basis_j, x over column segment k>; then y[r] = sum_k sum_j c_rkj z[k][j] */
        int64_t per_row = cols / s->L;
        float *z = hci_malloc_array((size_t)per_row * s->terms, sizeof *z);
        if (!z)
            return HC_ENOMEM;
        for (int64_t k = 0; k < per_row; k++)
            for (uint32_t j = 0; j < s->terms; j++) {
                float acc = 0;
                if (j < s->full.used) {
                    const float *bj = s->full.basis + (size_t)j * s->L;
                    const float *xk = x + k * s->L;
                    for (uint32_t i = 0; i < s->L; i++)
                        acc += bj[i] * xk[i];
                }
                z[k * s->terms + j] = acc;
            }
        for (int64_t r = row0; r < row1; r++) {
            float acc = 0;
            for (int64_t k = 0; k < per_row; k++) {
                segment_coefs(ct, (uint64_t)(r * per_row + k), c);
                const float *zk = z + k * s->terms;
                for (uint32_t j = 0; j < s->terms; j++)
                    acc += c[j] * zk[j];
            }
            y[r] = acc;
        }
        hci_free(z);
        return HC_OK;
    }
    float *row = hci_malloc_array((size_t)cols, sizeof *row);
    if (!row)
        return HC_ENOMEM;
    int rc = HC_OK;
    for (int64_t r = row0; r < row1 && rc == HC_OK; r++) {
        rc = traj_decode(ct, r * cols, cols, row);
        float acc = 0;
        for (int64_t i = 0; i < cols; i++)
            acc += row[i] * x[i];
        y[r] = acc;
    }
    hci_free(row);
    return rc;
}

const hci_codec hci_codec_hyper_poly = {
    HC_CODEC_HYPER_POLY, "hyper-poly", traj_compress, traj_attach, traj_detach, traj_decode, traj_matvec, NULL,
};
const hci_codec hci_codec_hyper_fourier = {
    HC_CODEC_HYPER_FOURIER, "hyper-fourier", traj_compress, traj_attach, traj_detach, traj_decode, traj_matvec, NULL,
};
