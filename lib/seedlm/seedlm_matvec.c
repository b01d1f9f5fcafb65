/* SeedLM y = W x straight from the seeds, never materialising W. A block's C*P states are the
 * K-bit windows of the stream word its seed looks up (seedlm_internal.h), so the vector kernels
 * cut the states out of that word with shifts, convert them, multiply them by x (expanded so
 * that value i*P + p of the block meets x_i) and by the coefficient q_p 2^e of their column, and
 * accumulate. A portable version (decode each block, dot it with x) and AVX2 / AVX-512 versions
 * chosen by hci_cpu_isa(); tests compare them (HYPERCOMP_ISA=portable). Where it applies (the
 * 4-bit preset), whole tiles of 16 rows go to the rows-in-lanes kernel of seedlm_matvec_lut.c,
 * which looks the stream's bits up in tables built from x instead of forming weights.
 *
 * Rows need not hold whole blocks: x sits between zeros and row r processes every block holding
 * some of its values, each against the slice of x at its own place, so a block that straddles
 * two rows adds its first values to one row and the rest to the other (the zeros cancel the
 * values that belong to the neighbour). */
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

/* Blocks unpacked together: one AVX-512 vector of records. */
#define CHUNK 16

typedef struct mv_ctx {
    const hci_seedlm_state *st;
    const uint8_t *payload;
    uint64_t payload_len;
    int64_t cols;
    uint32_t stride;     /* floats of xp per column: 1, or P for the expanded x */
    const float *xp;     /* C * stride zeros, x (each value stride times), 2 * C * stride + 16 zeros */
} mv_ctx;

/* Row r's blocks are [*first, *end); block *first multiplies the padded x from *xb on. */
static inline void row_blocks(const mv_ctx *m, int64_t r, int64_t *first, int64_t *end, const float **xb)
{
    const int64_t C = m->st->cfg.C, f0 = r * m->cols;
    *first = f0 / C;
    *end = (f0 + m->cols + C - 1) / C;
    *xb = m->xp + (C + *first * C - f0) * (int64_t)m->stride;
}

/* The states of block b's U from the stream words (the state after a word's last starts the
 * next word). */
static void block_states(const hci_seedlm_state *st, uint32_t seed, uint32_t *v)
{
    const uint32_t n = st->cfg.C * st->cfg.P, K = st->cfg.K;
    const uint32_t kmask = (uint32_t)((1ull << K) - 1);
    uint32_t s = seed;
    for (uint32_t j = 0; j < n;) {
        uint64_t w = hci_seedlm_word(st->word, s);
        for (uint32_t t = 0; t <= 64 - K && j < n; t++, j++)
            v[j] = s = (uint32_t)(w >> t) & kmask;
        s = hci_lfsr_step(s, K, st->tap_mask);
    }
}

/* With the table the column sums are exact integers, w_i = sum_p q_p (V_ip - 2^(K-1)) (at most
 * 16 * 2^7 * 2^19 in magnitude), scaled once by 2^(ebase + code) / (2^(K-1) - 1); without it each
 * block is decoded. */
static void matvec_portable(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const hci_seedlm_state *st = m->st;
    const uint32_t C = st->cfg.C, P = st->cfg.P;
    const int32_t half = (int32_t)(1u << (st->cfg.K - 1));
    const float inv = (float)(1.0 / (double)(half - 1));
    float w[HCI_SEEDLM_MAX_C];
    uint32_t v[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P];
    for (int64_t r = row0; r < row1; r++) {
        int64_t b, end;
        const float *xb;
        row_blocks(m, r, &b, &end, &xb);
        float acc = 0.0f;
        for (; b < end; b++, xb += C) {
            if (st->word) {
                hci_seedlm_block blk;
                hci_seedlm_read_block(m->payload, &st->cfg, b, &blk);
                block_states(st, blk.seed, v);
                uint32_t bits = (uint32_t)(st->cfg.ebase + (int32_t)blk.ecode + 127) << 23;
                float scale;
                memcpy(&scale, &bits, 4);
                scale *= inv;
                for (uint32_t i = 0; i < C; i++) {
                    int32_t s = 0;
                    for (uint32_t p = 0; p < P; p++)
                        s += blk.q[p] * ((int32_t)v[i * P + p] - half);
                    w[i] = (float)s * scale;
                }
            } else {
                hci_seedlm_decode_block(st, m->payload, b, w);
            }
            float s = 0.0f;
            for (uint32_t i = 0; i < C; i++)
                s += w[i] * xb[i];
            acc += s;
        }
        y[r] = acc;
    }
}

#ifdef HCI_SEEDLM_X86
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni,fma")))
#define T256 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* Records b .. b + n - 1 (n <= CHUNK) split into seeds, exponent codes and the mantissa fields
 * (P * M <= 32 bits); lanes past n are zero (seed 0's word is 0 and its coefficients 0). */
static inline void unpack_fields(const mv_ctx *m, int64_t b, uint32_t n, uint32_t *seeds, int32_t *ex,
                                 uint32_t *mant)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint64_t kmask = (1ull << c->K) - 1, emask = (1u << c->E) - 1;
    const uint32_t B = m->st->bits;
    uint64_t bit = (uint64_t)b * B;
    for (uint32_t k = 0; k < CHUNK; k++, bit += B) {
        if (k < n) {
            uint64_t rec = hci_seedlm_record_word(m->payload, m->payload_len, bit);
            seeds[k] = (uint32_t)(rec & kmask);
            ex[k] = (int32_t)((rec >> c->K) & emask);
            mant[k] = (uint32_t)(rec >> (c->K + c->E));
        } else {
            seeds[k] = 0;
            ex[k] = 0;
            mant[k] = 0;
        }
    }
}

/* ---- AVX-512 (with VBMI and VNNI) ---- */

/* Unpacking 16 records of B bits (B <= 57) in vector registers: they span at most 122 bytes from
 * the byte of the first one's first bit, so two 64-byte loads and a byte permutation (vpermt2b)
 * put record k's 8 bytes into qword k mod 8 of vector k / 8, and a shift by its bit phase aligns
 * it. The byte indices and shifts depend on the first record's bit phase (0..7): a table each. */
typedef struct rec512 {
    uint32_t B;
    __m512i ctl[8][2], sh[8][2];
} rec512;

INLINE T512 void rec512_init(rec512 *rt, uint32_t B)
{
    rt->B = B;
    if (B == 32)
        return;
    for (uint32_t ph = 0; ph < 8; ph++)
        for (uint32_t h = 0; h < 2; h++) {
            uint8_t cb[64];
            int64_t sh[8];
            for (uint32_t q = 0; q < 8; q++) {
                uint32_t bit = ph + (8 * h + q) * B;
                for (uint32_t j = 0; j < 8; j++)
                    cb[8 * q + j] = (uint8_t)((bit >> 3) + j);
                sh[q] = bit & 7;
            }
            rt->ctl[ph][h] = _mm512_loadu_si512(cb);
            rt->sh[ph][h] = _mm512_loadu_si512(sh);
        }
}

/* Records b .. b + n - 1 (n <= CHUNK): seeds stored, exponent codes and mantissa fields (P * M <= 32
 * bits) in vectors; lanes past n are zero (seed 0's word is 0, and zero mantissas give zero
 * coefficients). Loads never reach past the payload. */
INLINE T512 void records512(const mv_ctx *m, const rec512 *rt, int64_t b, uint32_t n, uint32_t *seeds, __m512i *ev,
                            __m512i *mv)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const __mmask16 live = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
    __m512i lo32, mant;
    if (rt->B == 32) {
        lo32 = _mm512_maskz_loadu_epi32(live, m->payload + (size_t)b * 4);
        mant = _mm512_srl_epi32(lo32, _mm_cvtsi32_si128((int)(c->K + c->E)));
    } else {
        const uint64_t bit0 = (uint64_t)b * rt->B, byte0 = bit0 >> 3;
        const uint32_t ph = (uint32_t)(bit0 & 7);
        const uint64_t avail = m->payload_len - byte0;
        const __mmask64 mlo = avail >= 64 ? ~0ull : (1ull << avail) - 1;
        const __mmask64 mhi = avail >= 128 ? ~0ull : avail <= 64 ? 0 : (1ull << (avail - 64)) - 1;
        const __m512i lo = _mm512_maskz_loadu_epi8(mlo, m->payload + byte0);
        const __m512i hi = _mm512_maskz_loadu_epi8(mhi, m->payload + byte0 + (mhi ? 64 : 0));
        __m512i r0 = _mm512_srlv_epi64(_mm512_permutex2var_epi8(lo, rt->ctl[ph][0], hi), rt->sh[ph][0]);
        __m512i r1 = _mm512_srlv_epi64(_mm512_permutex2var_epi8(lo, rt->ctl[ph][1], hi), rt->sh[ph][1]);
        const __m128i km = _mm_cvtsi32_si128((int)(c->K + c->E));
        lo32 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(r0)), _mm512_cvtepi64_epi32(r1), 1);
        mant = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srl_epi64(r0, km))),
                                  _mm512_cvtepi64_epi32(_mm512_srl_epi64(r1, km)), 1);
        lo32 = _mm512_maskz_mov_epi32(live, lo32);
        mant = _mm512_maskz_mov_epi32(live, mant);
    }
    _mm512_storeu_si512(seeds, _mm512_and_si512(lo32, _mm512_set1_epi32((int32_t)((1ull << c->K) - 1))));
    *ev = _mm512_and_si512(_mm512_srl_epi32(lo32, _mm_cvtsi32_si128((int)c->K)), _mm512_set1_epi32((1 << c->E) - 1));
    *mv = mant;
}


/* Vectors per group at most: G * C * P <= 16 * MAXV. */
#define MAXV 8

/* The per-call constants of the AVX-512 kernel. Blocks are taken G at a time (two when C * P is
 * a multiple of 8 but not of 16, so that two blocks fill whole vectors: 48 lanes for the 4-bit
 * preset instead of 2 x 24 with a half-empty vector each). Lane l of vector v is value
 * j = 16 v + l of the group: block j / (C P), state s = j mod (C P), column s mod P. */
typedef struct k512 {
    uint32_t G, nv;
    __m512i ctl[MAXV];   /* vpmultishiftqb controls: dword l gets stream bits [s + K - 32, s + K) */
    __m512i pidx[MAXV];  /* lane -> the coefficient's place in the group's coefficients */
    __mmask16 live[MAXV];
    __mmask8 second[MAXV];   /* qwords of the group's second block */
    __m512i bidx[HCI_SEEDLM_MAX_P], bsh[HCI_SEEDLM_MAX_P];   /* unpacking: block, mantissa shift */
} k512;

INLINE T512 void k512_init(k512 *k, uint32_t C, uint32_t P, uint32_t K, uint32_t M)
{
    const uint32_t CP = C * P;
    k->G = CP % 16 != 0 && CP % 8 == 0 && 2 * P <= 16 ? 2 : 1;
    k->nv = (k->G * CP + 15) / 16;
    for (uint32_t v = 0; v < k->nv; v++) {
        uint8_t cb[64];
        int32_t pi[16];
        uint32_t live = 0, second = 0;
        for (uint32_t l = 0; l < 16; l++) {
            uint32_t j = 16 * v + l, g = j / CP, s = j % CP;
            if (j >= k->G * CP)
                g = s = 0;
            else
                live |= 1u << l;
            pi[l] = (int32_t)(g * P + s % P);
            for (uint32_t b = 0; b < 4; b++)
                cb[4 * l + b] = (uint8_t)((s + K + 8 * b - 32) & 63);
            if (g == 1 && l % 2 == 0)
                second |= 1u << (l / 2);
        }
        k->ctl[v] = _mm512_loadu_si512(cb);
        k->pidx[v] = _mm512_loadu_si512(pi);
        k->live[v] = (__mmask16)live;
        k->second[v] = (__mmask8)second;
    }
    for (uint32_t u = 0; u < P; u++) {
        int32_t bi[16], sh[16];
        for (uint32_t l = 0; l < 16; l++) {
            bi[l] = (int32_t)((16 * u + l) / P);
            sh[l] = (int32_t)(32 - M * ((16 * u + l) % P + 1));
        }
        k->bidx[u] = _mm512_loadu_si512(bi);
        k->bsh[u] = _mm512_loadu_si512(sh);
    }
}

/* The chunk's seeds and its coefficients tq[k * P + p] = q_p 2^(ebase + code) of block k, with
 * the records unpacked in vector registers (records of exactly 32 bits, the 4-bit preset's, are
 * aligned words and load as one vector). */
INLINE T512 void unpack512(const mv_ctx *m, const rec512 *rt, const k512 *k, int64_t b, uint32_t n, uint32_t *seeds,
                           float *tq, uint32_t P)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    __m512i ev, mv;
    records512(m, rt, b, n, seeds, &ev, &mv);
    const __m512 scale = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(ev, _mm512_set1_epi32(127 + c->ebase)), 23));
    const __m128i down = _mm_cvtsi32_si128((int)(32 - c->M));
#pragma GCC unroll 16
    for (uint32_t u = 0; u < P; u++) {
        __m512i q = _mm512_sra_epi32(_mm512_sllv_epi32(_mm512_permutexvar_epi32(k->bidx[u], mv), k->bsh[u]), down);
        _mm512_storeu_ps(tq + 16 * u,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_permutexvar_ps(k->bidx[u], scale)));
    }
}

/* One group of G blocks from their stream words: the states land in the top K bits of each
 * dword (vpmultishiftqb), the ternary logic keeps them and flips the top bit, which makes the
 * dword (V - 2^(K-1)) 2^(32 - K) exactly; x was scaled by 2^(K - 32) / (2^(K-1) - 1). */
INLINE T512 void group512(const k512 *k, __m512i w0, __m512i w1, const float *tq, const float *x, __m512 *acc,
                          uint32_t nv, uint32_t G, __m512i keep)
{
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    const __m512 tv = _mm512_loadu_ps(tq);
#pragma GCC unroll 8
    for (uint32_t v = 0; v < nv; v++) {
        __m512i src = G == 2 ? _mm512_mask_blend_epi64(k->second[v], w0, w1) : w0;
        __m512i st = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(k->ctl[v], src), keep, sign, 0x6A);
        __m512 xv = _mm512_maskz_loadu_ps(k->live[v], x + 16 * v);
        acc[v] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(st), xv), _mm512_permutexvar_ps(k->pidx[v], tv),
                                 acc[v]);
    }
}

INLINE T512 void rows512(const mv_ctx *m, float *y, int64_t row0, int64_t row1, uint32_t C, uint32_t P)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint64_t (*word)[256] = m->st->word;
    k512 k;
    k512_init(&k, C, P, c->K, c->M);
    rec512 rt;
    rec512_init(&rt, m->st->bits);
    const uint32_t G = k.G, nv = k.nv, CP = C * P;
    const __m512i keep = _mm512_set1_epi32((int32_t)(0xFFFFFFFFu << (32 - c->K)));
    uint32_t seeds[CHUNK + 1];
    float tq[CHUNK * HCI_SEEDLM_MAX_P + 16];
    seeds[CHUNK] = 0;
    for (int64_t r = row0; r < row1; r++) {
        int64_t b, end;
        const float *xb;
        row_blocks(m, r, &b, &end, &xb);
        __m512 acc[MAXV];
        for (uint32_t v = 0; v < MAXV; v++)
            acc[v] = _mm512_setzero_ps();
        for (; b < end; b += CHUNK, xb += CHUNK * CP) {
            uint32_t n = end - b >= CHUNK ? CHUNK : (uint32_t)(end - b);
            unpack512(m, &rt, &k, b, n, seeds, tq, P);
            if (n == CHUNK) {
#pragma GCC unroll 16
                for (uint32_t g = 0; g < CHUNK; g += G)
                    group512(&k, _mm512_set1_epi64((long long)hci_seedlm_word(word, seeds[g])),
                             _mm512_set1_epi64((long long)hci_seedlm_word(word, seeds[g + G - 1])), tq + g * P, xb + g * CP, acc,
                             nv, G, keep);
            } else {
                /* a phantom block past n has seed 0 (word 0) and zero coefficients */
                for (uint32_t g = 0; g < n; g += G)
                    group512(&k, _mm512_set1_epi64((long long)hci_seedlm_word(word, seeds[g])),
                             _mm512_set1_epi64((long long)hci_seedlm_word(word, seeds[g + G - 1])), tq + g * P, xb + g * CP, acc,
                             nv, G, keep);
            }
        }
        __m512 sum = acc[0];
        for (uint32_t v = 1; v < nv; v++)
            sum = _mm512_add_ps(sum, acc[v]);
        y[r] = _mm512_reduce_add_ps(sum);
    }
}

/* The float-state kernel, for K > 16 or C > 16. */
static T512 void matvec512(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    rows512(m, y, row0, row1, m->st->cfg.C, m->st->cfg.P);
}

/* ---- AVX-512, K <= 16 and C <= 16: the column sums in integers ----
 *
 * With K <= 16 every state fits a 16-bit word, so w_i = sum_p q_p (V_ip - 2^(K-1)) is an exact
 * integer dot product: vpmultishiftqb cuts states (i, 2u) and (i, 2u + 1) of the block into the
 * two words of dword i (top K bits of each word), a ternary logic op clears the bits below and
 * flips the top one, making each word (V - 2^(K-1)) 2^(16-K), and vpmaddwd / vpdpwssd multiply
 * them by the word pair (q_2u, q_2u+1) and add. One conversion then gives w_i 2^(16-K), which
 * meets x scaled by 2^(K-16) / (2^(K-1) - 1) and the block's 2^(ebase + code). A vector holds
 * G = 16 / C blocks when C divides 16 (two for the 4-bit preset), else one. */
#define MAXU (HCI_SEEDLM_MAX_P / 2)

typedef struct k512i {
    uint32_t G, nu;
    __m512i ctl[MAXU];         /* per coefficient pair u */
    __mmask8 qw[CHUNK];        /* qwords of the vector's block g, g >= 1 */
    __m512i gidx[CHUNK];       /* group j: lane l -> block j G + l / C of the chunk */
    __mmask16 live;
} k512i;

INLINE T512 void k512i_init(k512i *k, uint32_t C, uint32_t P, uint32_t K)
{
    k->G = C % 2 == 0 && 16 % C == 0 ? 16 / C : 1;
    k->nu = (P + 1) / 2;
    const uint32_t lanes = k->G * C;
    k->live = (__mmask16)(lanes >= 16 ? 0xFFFFu : (1u << lanes) - 1);
    for (uint32_t u = 0; u < k->nu; u++) {
        uint8_t cb[64];
        for (uint32_t l = 0; l < 16; l++) {
            uint32_t i = l < lanes ? l % C : 0;
            uint32_t s0 = i * P + 2 * u, s1 = 2 * u + 1 < P ? s0 + 1 : s0;
            cb[4 * l + 0] = (uint8_t)((s0 + K - 16) & 63);
            cb[4 * l + 1] = (uint8_t)((s0 + K - 8) & 63);
            cb[4 * l + 2] = (uint8_t)((s1 + K - 16) & 63);
            cb[4 * l + 3] = (uint8_t)((s1 + K - 8) & 63);
        }
        k->ctl[u] = _mm512_loadu_si512(cb);
    }
    for (uint32_t g = 0; g < k->G; g++) {
        uint32_t m = 0;
        for (uint32_t q = 0; q < 8; q++)
            m |= (uint32_t)(2 * q < lanes && 2 * q / C == g) << q;
        k->qw[g] = (__mmask8)m;
    }
    for (uint32_t j = 0; j * k->G < CHUNK; j++) {
        int32_t gi[16];
        for (uint32_t l = 0; l < 16; l++) {
            uint32_t g = j * k->G + (l < lanes ? l / C : 0);
            gi[l] = (int32_t)(g < CHUNK ? g : CHUNK - 1);
        }
        k->gidx[j] = _mm512_loadu_si512(gi);
    }
}

/* The chunk's seeds, its coefficient word pairs qp[u] (lane k: q_2u | q_2u+1 << 16 of block k)
 * and its scales 2^(ebase + code). */
INLINE T512 void unpack512i(const mv_ctx *m, const rec512 *rt, int64_t b, uint32_t n, uint32_t *seeds, __m512i *qp,
                            __m512 *scale, uint32_t P)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    __m512i ev, mv;
    records512(m, rt, b, n, seeds, &ev, &mv);
    *scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ev, _mm512_set1_epi32(127 + c->ebase)), 23));
    const uint32_t M = c->M;
    const __m128i down = _mm_cvtsi32_si128((int)(32 - M));
#pragma GCC unroll 8
    for (uint32_t u = 0; u < (P + 1) / 2; u++) {
        __m512i lo = _mm512_sra_epi32(_mm512_sll_epi32(mv, _mm_cvtsi32_si128((int)(32 - M * (2 * u + 1)))), down);
        __m512i hi = _mm512_setzero_si512();
        if (2 * u + 1 < P)
            hi = _mm512_sra_epi32(_mm512_sll_epi32(mv, _mm_cvtsi32_si128((int)(32 - M * (2 * u + 2)))), down);
        qp[u] = _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
    }
}

/* Group j of the chunk: blocks j G .. j G + G - 1. */
INLINE T512 __m512 group512i(const k512i *k, const uint64_t (*word)[256], const uint32_t *seeds, uint32_t j,
                             const __m512i *qp, __m512 scale, const float *x, __m512 acc, uint32_t G, uint32_t nu,
                             __m512i keep)
{
    const uint32_t g0 = j * G;
    __m512i src = _mm512_set1_epi64((long long)hci_seedlm_word(word, seeds[g0]));
#pragma GCC unroll 8
    for (uint32_t g = 1; g < G; g++)
        src = _mm512_mask_set1_epi64(src, k->qw[g], (long long)hci_seedlm_word(word, seeds[g0 + g]));
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80008000u);
    __m512i wi = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (uint32_t u = 0; u < nu; u++) {
        __m512i z = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(k->ctl[u], src), keep, sign, 0x6A);
        __m512i q = _mm512_permutexvar_epi32(k->gidx[j], qp[u]);
        wi = u == 0 ? _mm512_madd_epi16(z, q) : _mm512_dpwssd_epi32(wi, z, q);
    }
    __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(wi), _mm512_permutexvar_ps(k->gidx[j], scale));
    return _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(k->live, x), acc);
}

INLINE T512 void rows512i(const mv_ctx *m, float *y, int64_t row0, int64_t row1, uint32_t C, uint32_t P)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint64_t (*word)[256] = m->st->word;
    k512i k;
    k512i_init(&k, C, P, c->K);
    rec512 rt;
    rec512_init(&rt, m->st->bits);
    const uint32_t G = k.G, nu = k.nu;
    const uint32_t keep16 = (0xFFFFu << (16 - c->K)) & 0xFFFFu;
    const __m512i keep = _mm512_set1_epi32((int32_t)(keep16 | keep16 << 16));
    uint32_t seeds[CHUNK + 16];
    memset(seeds + CHUNK, 0, 16 * sizeof(uint32_t));
    for (int64_t r = row0; r < row1; r++) {
        int64_t b, end;
        const float *xb;
        row_blocks(m, r, &b, &end, &xb);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (; b < end; b += CHUNK, xb += CHUNK * C) {
            uint32_t n = end - b >= CHUNK ? CHUNK : (uint32_t)(end - b);
            __m512i qp[MAXU] = { 0 };
            __m512 scale;
            unpack512i(m, &rt, b, n, seeds, qp, &scale, P);
            if (n == CHUNK) {
#pragma GCC unroll 16
                for (uint32_t j = 0; j < CHUNK; j += 2 * G) {
                    acc0 = group512i(&k, word, seeds, j / G, qp, scale, xb + j * C, acc0, G, nu, keep);
                    if (j + G < CHUNK)
                        acc1 = group512i(&k, word, seeds, j / G + 1, qp, scale, xb + (j + G) * C, acc1, G, nu, keep);
                }
            } else {
                /* a phantom block past n has seed 0 (word 0) and zero coefficients */
                for (uint32_t j = 0; j * G < n; j++)
                    acc0 = group512i(&k, word, seeds, j, qp, scale, xb + j * G * C, acc0, G, nu, keep);
            }
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

/* The presets get bodies with C and P constant (loops unrolled). */
static T512 void matvec512i(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const uint32_t C = m->st->cfg.C, P = m->st->cfg.P;
    if (C == 8 && P == 3)
        rows512i(m, y, row0, row1, 8, 3);
    else if (C == 12 && P == 4)
        rows512i(m, y, row0, row1, 12, 4);
    else
        rows512i(m, y, row0, row1, C, P);
}

/* ---- AVX2 ---- */

INLINE T256 float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Same sums 8 lanes at a time, for P <= 8: the states come out of the stream word with 64-bit
 * shifts (two vectors of four, whose low dwords interleave back into state order), the
 * coefficients are unpacked with scalar code. x was scaled by 1 / (2^(K-1) - 1). */
INLINE T256 void rows256(const mv_ctx *m, float *y, int64_t row0, int64_t row1, uint32_t C, uint32_t P)
{
    const hci_seedlm_cfg *c = &m->st->cfg;
    const uint64_t (*word)[256] = m->st->word;
    const uint32_t CP = C * P, nv = (CP + 7) / 8, M = c->M;
    __m256i sha[8], shb[8], pidx[8], live[8];
    for (uint32_t v = 0; v < nv; v++) {
        int64_t a[4], bb[4];
        int32_t pi[8], lv[8];
        const uint32_t j0 = 8 * v;
        const uint32_t oa[4] = { 0, 1, 4, 5 }, ob[4] = { 2, 3, 6, 7 };
        for (int i = 0; i < 4; i++) {
            a[i] = j0 + oa[i] < CP ? (int64_t)(j0 + oa[i]) : 0;
            bb[i] = j0 + ob[i] < CP ? (int64_t)(j0 + ob[i]) : 0;
        }
        for (uint32_t l = 0; l < 8; l++) {
            pi[l] = (int32_t)((j0 + l) % P);
            lv[l] = j0 + l < CP ? -1 : 0;
        }
        sha[v] = _mm256_loadu_si256((const __m256i *)a);
        shb[v] = _mm256_loadu_si256((const __m256i *)bb);
        pidx[v] = _mm256_loadu_si256((const __m256i *)pi);
        live[v] = _mm256_loadu_si256((const __m256i *)lv);
    }
    const __m256i kmask = _mm256_set1_epi32((int32_t)((1u << c->K) - 1)), half = _mm256_set1_epi32(1 << (c->K - 1));
    uint32_t seeds[CHUNK], mant[CHUNK];
    int32_t ex[CHUNK];
    float tq[8];
    for (int64_t r = row0; r < row1; r++) {
        int64_t b, end;
        const float *xb;
        row_blocks(m, r, &b, &end, &xb);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (; b < end; b += CHUNK) {
            uint32_t n = end - b >= CHUNK ? CHUNK : (uint32_t)(end - b);
            unpack_fields(m, b, n, seeds, ex, mant);
            for (uint32_t k = 0; k < n; k++, xb += CP) {
                uint32_t bits = (uint32_t)(ex[k] + 127 + c->ebase) << 23;
                float scale;
                memcpy(&scale, &bits, 4);
                for (uint32_t p = 0; p < 8; p++)
                    tq[p] = p < P ? (float)((int32_t)(mant[k] << (32 - M * (p + 1))) >> (32 - M)) * scale : 0.0f;
                const __m256 tv = _mm256_loadu_ps(tq);
                const __m256i w = _mm256_set1_epi64x((long long)hci_seedlm_word(word, seeds[k]));
                for (uint32_t v = 0; v < nv; v++) {
                    __m256 lo = _mm256_castsi256_ps(_mm256_srlv_epi64(w, sha[v]));
                    __m256 hi = _mm256_castsi256_ps(_mm256_srlv_epi64(w, shb[v]));
                    __m256i s = _mm256_and_si256(_mm256_castps_si256(_mm256_shuffle_ps(lo, hi, 0x88)), kmask);
                    __m256 u = _mm256_cvtepi32_ps(_mm256_sub_epi32(s, half));
                    __m256 prod = _mm256_mul_ps(u, _mm256_maskload_ps(xb + 8 * v, live[v]));
                    __m256 t = _mm256_permutevar8x32_ps(tv, pidx[v]);
                    if (v & 1)
                        acc1 = _mm256_fmadd_ps(prod, t, acc1);
                    else
                        acc0 = _mm256_fmadd_ps(prod, t, acc0);
                }
            }
        }
        y[r] = hsum256(_mm256_add_ps(acc0, acc1));
    }
}

static T256 void matvec256(const mv_ctx *m, float *y, int64_t row0, int64_t row1)
{
    const uint32_t C = m->st->cfg.C, P = m->st->cfg.P;
    if (C == 8 && P == 3)
        rows256(m, y, row0, row1, 8, 3);
    else if (C == 12 && P == 4)
        rows256(m, y, row0, row1, 12, 4);
    else
        rows256(m, y, row0, row1, C, P);
}
#endif

/* The kernel isa picks over rows [row0, row1) of m, whose records are in block order. */
static void run_rows(const mv_ctx *m, hci_isa isa, int ints, float *y, int64_t row0, int64_t row1)
{
    (void)isa, (void)ints;
#ifdef HCI_SEEDLM_X86
    if (ints)
        matvec512i(m, y, row0, row1);
    else if (isa == HCI_ISA_AVX512)
        matvec512(m, y, row0, row1);
    else if (isa == HCI_ISA_AVX2)
        matvec256(m, y, row0, row1);
    else
        matvec_portable(m, y, row0, row1);
#else
    matvec_portable(m, y, row0, row1);
#endif
}

/* Layout 2: each group's rows in [row0, row1) copied back to block order (the 32-bit records of
 * one row together) in scratch, then run_rows on them. */
static int run_grouped(const mv_ctx *m, hci_isa isa, int ints, float *y, int64_t row0, int64_t row1)
{
    const hci_seedlm_state *st = m->st;
    const int64_t nbr = m->cols / st->cfg.C, G = HCI_SEEDLM_GROUP;
    uint32_t *rec = hci_malloc_array((size_t)(G * nbr), sizeof(uint32_t));
    if (!rec)
        return HC_ENOMEM;
    for (int64_t g0 = row0 - row0 % G; g0 < row1; g0 += G) {
        const int64_t n = st->rows - g0 < G ? st->rows - g0 : G;
        const int64_t lo = row0 > g0 ? row0 - g0 : 0, hi = row1 < g0 + n ? row1 - g0 : n;
        const uint8_t *grp = m->payload + 4 * g0 * nbr;
        for (int64_t r = lo; r < hi; r++)
            for (int64_t j = 0; j < nbr; j++)
                memcpy(rec + (r - lo) * nbr + j, grp + 4 * (j * n + r), 4);
        mv_ctx mg = *m;
        mg.payload = (const uint8_t *)rec;
        mg.payload_len = (uint64_t)(4 * (hi - lo) * nbr);
        run_rows(&mg, isa, ints, y + g0 + lo, 0, hi - lo);
    }
    hci_free(rec);
    return HC_OK;
}

/* Rows [row0, row1) with the per-block kernels (not the rows-in-lanes one). */
static int matvec_blocks(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y, int64_t row0,
                         int64_t row1)
{
    const hci_seedlm_cfg *c = &st->cfg;
    const int64_t cols = st->cols;
    const uint32_t C = c->C, P = c->P;
    if (row0 >= row1)
        return HC_OK;
    uint64_t payload_len = ((uint64_t)st->nblocks * st->bits + 7) / 8;
    /* the vector kernels need the table, one stream word per block (C * P + K <= 65), P * M <= 32
     * and records of at most 57 bits; the AVX2 one also P <= 8 */
    int fast = st->word && C * P + c->K <= 65 && P * c->M <= 32 && st->bits <= 57;
    hci_isa isa = HCI_ISA_PORTABLE;
#ifdef HCI_SEEDLM_X86
    if (fast) {
        isa = hci_cpu_isa();
        if (isa == HCI_ISA_AVX512 && !hci_cpu_avx512vbmi_vnni())
            isa = HCI_ISA_AVX2;
        if (isa == HCI_ISA_AVX2 && P > 8)
            isa = HCI_ISA_PORTABLE;
    }
#endif
    /* x between zeros: C columns before, 2 C + 16 floats' worth after, so that every block's
     * vector loads (and a phantom block's past the end) stay inside; the vector kernels take x
     * repeated P times and scaled by the constant that turns their integer states into U */
    /* the integer AVX-512 kernel (K <= 16, C <= 16) takes x as it is, the others repeated P times */
    const int ints = isa == HCI_ISA_AVX512 && c->K <= 16 && C <= 16;
    const uint32_t stride = isa == HCI_ISA_PORTABLE || ints ? 1 : P;
    const size_t n = (size_t)cols * stride, pre = (size_t)C * stride, post = 2 * pre + 16;
    float *xp = hci_aligned_array(pre + n + post, sizeof(float));
    if (!xp)
        return HC_ENOMEM;
    memset(xp, 0, pre * sizeof(float));
    memset(xp + pre + n, 0, post * sizeof(float));
    const double half = (double)(1u << (c->K - 1));
    const uint32_t shift = ints ? 16 - c->K : isa == HCI_ISA_AVX512 ? 32 - c->K : 0;
    const float sc = isa == HCI_ISA_PORTABLE ? 1.0f : (float)(1.0 / (double)(1ull << shift) / (half - 1.0));
    for (int64_t j = 0; j < cols; j++)
        for (uint32_t p = 0; p < stride; p++)
            xp[pre + (size_t)j * stride + p] = x[j] * sc;
    mv_ctx m = { st, payload, payload_len, cols, stride, xp };
    int rc = HC_OK;
    if (c->grouped)
        rc = run_grouped(&m, isa, ints, y, row0, row1);
    else
        run_rows(&m, isa, ints, y, row0, row1);
    hci_free(xp);
    return rc;
}

int hci_seedlm_matvec_rows(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y, int64_t row0,
                           int64_t row1)
{
#ifdef HCI_SEEDLM_X86
    /* whole tiles of 16 rows with the rows-in-lanes kernel where it applies (in layout 2, the
     * whole groups inside the range), the rest with the per-block kernels */
    const hci_seedlm_cfg *c = &st->cfg;
    if (st->word && hci_seedlm_lut_fits(c, st->cols) && hci_cpu_isa() == HCI_ISA_AVX512 && hci_cpu_gfni()) {
        const int64_t G = HCI_SEEDLM_GROUP;
        const int64_t a = c->grouped ? (row0 + G - 1) / G * G : row0;
        if (a < row1) {
            const int64_t done = hci_seedlm_matvec_lut(st, payload, x, y, a, row1);
            if (done < 0)
                return (int)done;
            if (done > 0) {
                int rc = matvec_blocks(st, payload, x, y, row0, a);
                return rc != HC_OK ? rc : matvec_blocks(st, payload, x, y, a + done, row1);
            }
        }
    }
#endif
    return matvec_blocks(st, payload, x, y, row0, row1);
}
