/* SeedLM's hot loops: the seed-screening kernel of the search and the decode / matvec that
 * regenerate each block from its seed. Each has a portable version and AVX2 / AVX-512 versions
 * chosen by hci_cpu_isa(); tests compare them (HYPERCOMP_ISA=portable). */
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/cpu.h"
#include "common/error.h"
#include "lfsr.h"
#include "seedlm/seedlm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HCI_SEEDLM_X86 1
#endif

#define L HCI_SEEDLM_LANES
/* Absolute slack, in units of |w|^2, on |Q^T w|^2 in the "some mantissa can be nonzero" test:
 * covers the float rounding of Q^T w even when it is far smaller than w. */
#define NZ_SLACK 3e-5f

/* ---- screening: least-squares residual of 16 seeds against one block ---- */

uint32_t hci_seedlm_screen_portable(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                                    float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    const size_t stride = (size_t)C * P * L;
    const float slack = NZ_SLACK * wn2;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        float zz[L] = { 0 }, res[L];
        for (uint32_t p = 0; p < P; p++) {
            float z[L] = { 0 };
            for (uint32_t c = 0; c < C; c++)
                for (int l = 0; l < L; l++)
                    z[l] += q[(size_t)(c * P + p) * L + (size_t)l] * w[c];
            for (int l = 0; l < L; l++)
                zz[l] += z[l] * z[l];
        }
        uint32_t m = 0;
        for (int l = 0; l < L; l++) {
            res[l] = wn2 - zz[l];
            m |= (uint32_t)(res[l] <= thresh && rho2[g * L + (uint32_t)l] * (zz[l] + slack) >= tau) << l;
        }
        if (m) {
            *mask = m;
            memcpy(bounds, res, sizeof res);
            return g;
        }
    }
    return ngroups;
}

#ifdef HCI_SEEDLM_X86
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define T256 __attribute__((target("avx2,fma")))

/* With C and P compile-time constants (the presets) the broadcasts of w and the P accumulators
 * stay in registers across the group loop. */
static inline __attribute__((always_inline)) T512 uint32_t screen512_body(const float *qsoa, uint32_t g0,
                                                                         uint32_t ngroups, const float *w,
                                                                         float wn2, float thresh,
                                                                         const float *rho2, float tau, uint32_t C,
                                                                         uint32_t P, uint32_t *mask, float *bounds)
{
    __m512 wv[HCI_SEEDLM_MAX_C];
#pragma GCC unroll 16
    for (uint32_t c = 0; c < C; c++)
        wv[c] = _mm512_set1_ps(w[c]);
    const __m512 thr = _mm512_set1_ps(thresh), n2 = _mm512_set1_ps(wn2);
    const __m512 slack = _mm512_set1_ps(NZ_SLACK * wn2), tv = _mm512_set1_ps(tau);
    const size_t stride = (size_t)C * P * L;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        __m512 zz = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (uint32_t p = 0; p < P; p++) {
            __m512 z = _mm512_mul_ps(_mm512_load_ps(q + p * L), wv[0]);
#pragma GCC unroll 16
            for (uint32_t c = 1; c < C; c++)
                z = _mm512_fmadd_ps(_mm512_load_ps(q + (c * P + p) * L), wv[c], z);
            zz = _mm512_fmadd_ps(z, z, zz);
        }
        __m512 res = _mm512_sub_ps(n2, zz);
        __mmask16 m = _mm512_cmp_ps_mask(res, thr, _CMP_LE_OQ) &
                      _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_load_ps(rho2 + g * L), _mm512_add_ps(zz, slack)), tv,
                                         _CMP_GE_OQ);
        if (m) {
            *mask = m;
            _mm512_storeu_ps(bounds, res);
            return g;
        }
    }
    return ngroups;
}

static T512 uint32_t screen512(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                               float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    if (C == 8 && P == 3)
        return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 8, 3, mask, bounds);
    if (C == 12 && P == 4)
        return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 12, 4, mask, bounds);
    return screen512_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, C, P, mask, bounds);
}

static inline __attribute__((always_inline)) T256 uint32_t screen256_body(const float *qsoa, uint32_t g0,
                                                                         uint32_t ngroups, const float *w,
                                                                         float wn2, float thresh,
                                                                         const float *rho2, float tau, uint32_t C,
                                                                         uint32_t P, uint32_t *mask, float *bounds)
{
    const __m256 thr = _mm256_set1_ps(thresh), n2 = _mm256_set1_ps(wn2);
    const __m256 slack = _mm256_set1_ps(NZ_SLACK * wn2), tv = _mm256_set1_ps(tau);
    const size_t stride = (size_t)C * P * L;
    for (uint32_t g = g0; g < ngroups; g++) {
        const float *q = qsoa + g * stride;
        __m256 zz0 = _mm256_setzero_ps(), zz1 = _mm256_setzero_ps();
#pragma GCC unroll 16
        for (uint32_t p = 0; p < P; p++) {
            __m256 w0 = _mm256_broadcast_ss(w);
            __m256 z0 = _mm256_mul_ps(_mm256_load_ps(q + p * L), w0);
            __m256 z1 = _mm256_mul_ps(_mm256_load_ps(q + p * L + 8), w0);
            /* partly unrolled: a fully unrolled group is a basic block too large for valgrind's
             * translator (valgrind runs this path, as it hides AVX-512) */
#pragma GCC unroll 4
            for (uint32_t c = 1; c < C; c++) {
                __m256 wc = _mm256_broadcast_ss(w + c);
                z0 = _mm256_fmadd_ps(_mm256_load_ps(q + (c * P + p) * L), wc, z0);
                z1 = _mm256_fmadd_ps(_mm256_load_ps(q + (c * P + p) * L + 8), wc, z1);
            }
            zz0 = _mm256_fmadd_ps(z0, z0, zz0);
            zz1 = _mm256_fmadd_ps(z1, z1, zz1);
        }
        __m256 r0 = _mm256_sub_ps(n2, zz0), r1 = _mm256_sub_ps(n2, zz1);
        __m256 k0 = _mm256_and_ps(_mm256_cmp_ps(r0, thr, _CMP_LE_OQ),
                                  _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(rho2 + g * L), _mm256_add_ps(zz0, slack)), tv, _CMP_GE_OQ));
        __m256 k1 = _mm256_and_ps(_mm256_cmp_ps(r1, thr, _CMP_LE_OQ),
                                  _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(rho2 + g * L + 8), _mm256_add_ps(zz1, slack)), tv, _CMP_GE_OQ));
        uint32_t m = (uint32_t)_mm256_movemask_ps(k0) | ((uint32_t)_mm256_movemask_ps(k1) << 8);
        if (m) {
            *mask = m;
            _mm256_storeu_ps(bounds, r0);
            _mm256_storeu_ps(bounds + 8, r1);
            return g;
        }
    }
    return ngroups;
}

static T256 uint32_t screen256(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                               float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds)
{
    if (C == 8 && P == 3)
        return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 8, 3, mask, bounds);
    if (C == 12 && P == 4)
        return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, 12, 4, mask, bounds);
    return screen256_body(qsoa, g0, ngroups, w, wn2, thresh, rho2, tau, C, P, mask, bounds);
}
#endif

hci_seedlm_screen_fn hci_seedlm_screen_kernel(void)
{
#ifdef HCI_SEEDLM_X86
    switch (hci_cpu_isa()) {
    case HCI_ISA_AVX512: return screen512;
    case HCI_ISA_AVX2: return screen256;
    default: break;
    }
#endif
    return hci_seedlm_screen_portable;
}

/* ---- records ---- */

/* The record of block b as a 64-bit word (seed in the low bits); valid when the record has at most
 * 57 bits, which every configuration with P * M <= 32 has. Reads bytes one by one near the end. */
static inline uint64_t record_word(const uint8_t *payload, uint64_t payload_len, uint64_t bit)
{
    uint64_t byte = bit >> 3, v;
    if (byte + 8 <= payload_len) {
        memcpy(&v, payload + byte, 8);
        v = hci_get_u64((const uint8_t *)&v);
    } else {
        v = 0;
        for (uint64_t i = 0; byte + i < payload_len; i++)
            v |= (uint64_t)payload[byte + i] << (8 * i);
    }
    return v >> (bit & 7);
}

/* The block's U window (C x P values): a slice of the table, or regenerated into buf. */
static inline const float *block_window(const hci_seedlm_state *st, uint32_t seed, float *buf)
{
    if (st->cyc)
        return st->cyc + st->pos[seed];
    const uint32_t n = st->cfg.C * st->cfg.P, K = st->cfg.K;
    uint32_t s = seed;
    for (uint32_t i = 0; i < n; i++) {
        buf[i] = hci_lfsr_value(K, s);
        s = hci_lfsr_step(s, K, st->tap_mask);
    }
    return buf;
}

static inline float pow2f(int32_t e)
{
    uint32_t bits = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void hci_seedlm_decode_block(const hci_seedlm_state *st, const uint8_t *payload, int64_t b, float *out)
{
    const uint32_t C = st->cfg.C, P = st->cfg.P;
    hci_seedlm_block blk;
    hci_seedlm_read_block(payload, &st->cfg, b, &blk);
    float buf[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P], tq[HCI_SEEDLM_MAX_P];
    const float *u = block_window(st, blk.seed, buf);
    float scale = pow2f(st->cfg.ebase + (int32_t)blk.ecode);
    for (uint32_t p = 0; p < P; p++)
        tq[p] = (float)blk.q[p] * scale;
    for (uint32_t c = 0; c < C; c++) {
        float s = 0.0f;
        for (uint32_t p = 0; p < P; p++)
            s += u[c * P + p] * tq[p];
        out[c] = s;
    }
}

/* ---- matvec: y[r] = sum over the row's blocks of sum_i U_i * x_(col + i / P) * tq_(i mod P) ---- */

typedef struct mv_ctx {
    const hci_seedlm_state *st;
    const uint8_t *payload;
    uint64_t payload_len;
    int64_t cols;
    const float *xe;      /* x with each value repeated P times (matches the window's layout), padded */
} mv_ctx;

static void matvec_portable(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint32_t C = c->C, P = c->P;
    const int64_t per_row = m->cols / C;
    float buf[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P];
    for (int64_t r = row0; r < row1; r++) {
        float acc = 0.0f;
        for (int64_t j = 0; j < per_row; j++) {
            hci_seedlm_block blk;
            hci_seedlm_read_block(m->payload, c, r * per_row + j, &blk);
            const float *u = block_window(m->st, blk.seed, buf);
            const float *xe = m->xe + j * C * P;
            float part = 0.0f;
            for (uint32_t p = 0; p < P; p++) {
                float s = 0.0f;
                for (uint32_t i = 0; i < C; i++)
                    s += u[i * P + p] * xe[i * P + p];
                part += s * (float)blk.q[p];
            }
            acc += part * pow2f(c->ebase + (int32_t)blk.ecode);
        }
        y[r] = acc;
    }
}

#ifdef HCI_SEEDLM_X86
/* One row range; with nv (vectors per window) a compile-time constant the window loop unrolls and
 * the permutation indices stay in registers. Two blocks per step on separate accumulators so
 * consecutive blocks do not wait on one FMA chain. */
static inline __attribute__((always_inline)) T512 void matvec512_body(const mv_ctx *m, float *y, int64_t row0,
                                                                     int64_t row1, uint32_t nv)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint32_t C = c->C, P = c->P, M = c->M, CP = C * P, B = m->st->bits;
    const __mmask16 last = (__mmask16)(CP % 16 ? (1u << (CP % 16)) - 1 : 0xFFFFu);
    const uint64_t kmask = (1ull << c->K) - 1, emask = (1u << c->E) - 1;
    const int64_t per_row = m->cols / C;
    __m512i idx[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P / 16];
#pragma GCC unroll 8
    for (uint32_t v = 0; v < nv; v++) {
        int32_t t[16];
        for (int i = 0; i < 16; i++)
            t[i] = (int32_t)((16 * v + (uint32_t)i) % P);
        idx[v] = _mm512_loadu_si512(t);
    }
    int32_t sh[16];
    for (int i = 0; i < 16; i++)
        sh[i] = (int32_t)((uint32_t)i < P ? (uint32_t)i * M : 0);
    const __m512i shifts = _mm512_loadu_si512(sh);
    const __m512i up = _mm512_set1_epi32((int32_t)(32 - M));
    const float *cyc = m->st->cyc;
    const uint32_t *pos = m->st->pos;
#define SEEDLM_PART512(part)                                                                                  \
    do {                                                                                                      \
        uint64_t rec = record_word(m->payload, m->payload_len, bit);                                          \
        const float *u = cyc + pos[rec & kmask];                                                              \
        int32_t e = c->ebase + (int32_t)((rec >> c->K) & emask);                                              \
        __m512i f = _mm512_set1_epi32((int32_t)(uint32_t)(rec >> (c->K + c->E)));                             \
        f = _mm512_srav_epi32(_mm512_sllv_epi32(_mm512_srlv_epi32(f, shifts), up), up);                        \
        __m512 tq = _mm512_mul_ps(_mm512_cvtepi32_ps(f), _mm512_set1_ps(pow2f(e)));                           \
        _Pragma("GCC unroll 8") for (uint32_t v = 0; v < nv; v++)                                             \
        {                                                                                                     \
            __mmask16 k = v + 1 < nv ? (__mmask16)0xFFFFu : last;                                             \
            __m512 prod = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, u + 16 * v),                                 \
                                        _mm512_maskz_loadu_ps(k, xe + 16 * v));                               \
            part = _mm512_fmadd_ps(prod, _mm512_permutexvar_ps(idx[v], tq), part);                            \
        }                                                                                                     \
        bit += B;                                                                                             \
        xe += CP;                                                                                             \
    } while (0)
    for (int64_t r = row0; r < row1; r++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        uint64_t bit = (uint64_t)(r * per_row) * B;
        const float *xe = m->xe;
        int64_t j = 0;
        for (; j + 1 < per_row; j += 2) {
            SEEDLM_PART512(acc0);
            SEEDLM_PART512(acc1);
        }
        if (j < per_row)
            SEEDLM_PART512(acc0);
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
#undef SEEDLM_PART512
}

/* The 4-bit preset's layout, (C, P, K, E, M) = (8, 3, 16, 4, 4): each record is one aligned
 * little-endian u32 (seed | code << 16 | q0 << 20 | q1 << 24 | q2 << 28), so the record is
 * unpacked entirely in vector registers and the loop keeps everything in registers. */
static T512 void matvec512_4bit(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const int64_t per_row = m->cols / 8;
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0);
    const __m512i idx1 = _mm512_setr_epi32(1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1);
    /* lane p moves mantissa p (bits 20 + 4p) to the top, then an arithmetic shift sign-extends */
    const __m512i lift = _mm512_setr_epi32(8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i bias = _mm512_set1_epi32(127 + m->st->cfg.ebase), fifteen = _mm512_set1_epi32(15);
    const __mmask16 last = 0xFF;
    const float *cyc = m->st->cyc;
    const uint32_t *pos = m->st->pos;
    for (int64_t r = row0; r < row1; r++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const uint8_t *rp = m->payload + (size_t)(r * per_row) * 4;
        const float *xe = m->xe;
        for (int64_t j = 0; j < per_row; j++, xe += 24) {
            uint32_t rec;
            memcpy(&rec, rp + 4 * j, 4);
            const float *u = cyc + pos[rec & 0xFFFFu];
            __m512i v = _mm512_set1_epi32((int32_t)rec);
            __m512 q = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_sllv_epi32(v, lift), 28));
            __m512i ebits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(v, 16), fifteen), bias), 23);
            __m512 tq = _mm512_mul_ps(q, _mm512_castsi512_ps(ebits));
            __m512 p0 = _mm512_mul_ps(_mm512_loadu_ps(u), _mm512_loadu_ps(xe));
            __m512 p1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(last, u + 16), _mm512_maskz_loadu_ps(last, xe + 16));
            acc0 = _mm512_fmadd_ps(p0, _mm512_permutexvar_ps(idx0, tq), acc0);
            acc1 = _mm512_fmadd_ps(p1, _mm512_permutexvar_ps(idx1, tq), acc1);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

/* Needs the table, P * M <= 32 and records of at most 57 bits. */
static T512 void matvec512(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const uint32_t nv = (m->st->cfg.C * m->st->cfg.P + 15) / 16;
    switch (nv) {
    case 1: matvec512_body(m, y, row0, row1, 1); break;
    case 2: matvec512_body(m, y, row0, row1, 2); break;
    case 3: matvec512_body(m, y, row0, row1, 3); break;
    case 4: matvec512_body(m, y, row0, row1, 4); break;
    default: matvec512_body(m, y, row0, row1, nv); break;
    }
}

/* Needs the table, P <= 8, P * M <= 32 and records of at most 57 bits. */
static T256 void matvec256(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint32_t C = c->C, P = c->P, M = c->M, CP = C * P, B = m->st->bits;
    const uint32_t nv = (CP + 7) / 8;
    int32_t lm[8];
    for (int i = 0; i < 8; i++)
        lm[i] = (uint32_t)i < (CP % 8 ? CP % 8 : 8) ? -1 : 0;
    const __m256i last = _mm256_loadu_si256((const __m256i *)lm);
    const uint64_t kmask = (1ull << c->K) - 1, emask = (1u << c->E) - 1;
    const int64_t per_row = m->cols / C;
    __m256i idx[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P / 8 + 1];
    for (uint32_t v = 0; v < nv && v < 8; v++) {
        int32_t t[8];
        for (int i = 0; i < 8; i++)
            t[i] = (int32_t)((8 * v + (uint32_t)i) % P);
        idx[v] = _mm256_loadu_si256((const __m256i *)t);
    }
    /* the lane pattern repeats every P vectors at most (8 v mod P) */
    const uint32_t npat = nv < P ? nv : P;
    int32_t sh[8];
    for (int i = 0; i < 8; i++)
        sh[i] = (int32_t)((uint32_t)i < P ? (uint32_t)i * M : 0);
    const __m256i shifts = _mm256_loadu_si256((const __m256i *)sh);
    const __m256i up = _mm256_set1_epi32((int32_t)(32 - M));
    const float *cyc = m->st->cyc;
    const uint32_t *pos = m->st->pos;
    for (int64_t r = row0; r < row1; r++) {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        uint64_t bit = (uint64_t)(r * per_row) * B;
        const float *xe = m->xe;
        for (int64_t j = 0; j < per_row; j++, bit += B, xe += CP) {
            uint64_t rec = record_word(m->payload, m->payload_len, bit);
            const float *u = cyc + pos[rec & kmask];
            int32_t e = c->ebase + (int32_t)((rec >> c->K) & emask);
            __m256i f = _mm256_set1_epi32((int32_t)(uint32_t)(rec >> (c->K + c->E)));
            f = _mm256_srav_epi32(_mm256_sllv_epi32(_mm256_srlv_epi32(f, shifts), up), up);
            __m256 tq = _mm256_mul_ps(_mm256_cvtepi32_ps(f), _mm256_set1_ps(pow2f(e)));
            uint32_t v = 0;
            for (; v + 1 < nv; v++) {
                __m256 prod = _mm256_mul_ps(_mm256_loadu_ps(u + 8 * v), _mm256_loadu_ps(xe + 8 * v));
                __m256 t = _mm256_permutevar8x32_ps(tq, idx[v % npat]);
                if (v & 1)
                    acc1 = _mm256_fmadd_ps(prod, t, acc1);
                else
                    acc0 = _mm256_fmadd_ps(prod, t, acc0);
            }
            __m256 prod = _mm256_mul_ps(_mm256_maskload_ps(u + 8 * v, last), _mm256_maskload_ps(xe + 8 * v, last));
            acc0 = _mm256_fmadd_ps(prod, _mm256_permutevar8x32_ps(tq, idx[v % npat]), acc0);
        }
        __m256 acc = _mm256_add_ps(acc0, acc1);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        y[r] = _mm_cvtss_f32(s);
    }
}
#endif

int hci_seedlm_matvec_rows(const hci_seedlm_state *st, const uint8_t *payload, int64_t cols, const float *x,
                           float *y, int64_t row0, int64_t row1)
{
    const uint32_t P = st->cfg.P;
    size_t n = (size_t)cols * P;
    float *xe = hci_aligned_array(n + 16, sizeof(float));
    if (!xe)
        return HC_ENOMEM;
    for (int64_t j = 0; j < cols; j++)
        for (uint32_t p = 0; p < P; p++)
            xe[(size_t)j * P + p] = x[j];
    memset(xe + n, 0, 16 * sizeof(float));
    uint64_t payload_len = ((uint64_t)st->nblocks * st->bits + 7) / 8;
    mv_ctx m = { st, payload, payload_len, cols, xe };
    int fast = st->cyc && P * st->cfg.M <= 32 && st->bits <= 57;
#ifdef HCI_SEEDLM_X86
    hci_isa isa = fast ? hci_cpu_isa() : HCI_ISA_PORTABLE;
    const hci_seedlm_cfg *c = &st->cfg;
    if (isa == HCI_ISA_AVX512 && c->C == 8 && P == 3 && c->K == 16 && c->E == 4 && c->M == 4)
        matvec512_4bit(&m, y, row0, row1);
    else if (isa == HCI_ISA_AVX512)
        matvec512(&m, y, row0, row1);
    else if (isa == HCI_ISA_AVX2 && P <= 8)
        matvec256(&m, y, row0, row1);
    else
        matvec_portable(&m, y, row0, row1);
#else
    (void)fast;
    matvec_portable(&m, y, row0, row1);
#endif
    hci_free(xe);
    return HC_OK;
}
