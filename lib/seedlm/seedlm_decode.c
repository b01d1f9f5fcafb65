/* SeedLM decode: the reference decode of one block (hci_seedlm_decode_block), and the decode of
 * a range of values, which hands whole blocks to vector kernels where they apply.
 *
 * Every kernel computes exactly the reference's float operations in the reference's order, so
 * the values are identical bit for bit on every ISA (tests/test_seedlm_matvec.c). The reference
 * rounds each state's value from a double, (V - h) times the double reciprocal of h - 1
 * (h = 2^(K-1)); the vector kernels do the same in double lanes: the state cut from its stream
 * word by a 64-bit shift, V - h converted exactly, the same double multiply, the same rounding to
 * float. Then, per column, the products u_cp * tq_p are rounded and added in order p = 0, 1, ...
 * starting from 0.0f (mul and add, never an FMA, which would round once instead of twice). A
 * lane holds one column of one block, so a block of C values takes ceil(C / 8) vectors of 8
 * doubles (AVX-512) or ceil(C / 4) of 4 (AVX2) per coefficient. */
#include <string.h>

#include "common/cpu.h"
#include "lfsr.h"
#include "seedlm/seedlm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HCI_SEEDLM_X86 1
#endif

/* The block's U (C x P values, row by row) into buf: from the table's stream words (each gives
 * the next 65 - K states; the state after the last starts the next word), or regenerated with
 * the LFSR. */
static void block_window(const hci_seedlm_state *st, uint32_t seed, float *buf)
{
    const uint32_t n = st->cfg.C * st->cfg.P, K = st->cfg.K;
    const uint32_t kmask = (uint32_t)((1ull << K) - 1);
    uint32_t s = seed;
    if (st->word) {
        /* (V - h) times the double reciprocal of h - 1, rounded to float, equals
         * hci_lfsr_value() (the quotient rounded once) for K <= 20: the product is within 2^-52
         * of the quotient, relatively, while a quotient that is not itself a float lies at least
         * 2^-44 from every float rounding boundary (with |V - h|, h - 1 < 2^19 and boundaries of
         * 25 significant bits, the gap times (h - 1) 2^s is a nonzero integer). The tests check
         * every state. */
        const double half = (double)(1u << (K - 1)), inv = 1.0 / (half - 1.0);
        for (uint32_t j = 0; j < n;) {
            uint64_t w = hci_seedlm_word(st->word, s);
            for (uint32_t t = 0; t <= 64 - K && j < n; t++, j++) {
                s = (uint32_t)(w >> t) & kmask;
                buf[j] = (float)(((double)s - half) * inv);
            }
            s = hci_lfsr_step(s, K, st->tap_mask);
        }
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        buf[i] = hci_lfsr_value(K, s);
        s = hci_lfsr_step(s, K, st->tap_mask);
    }
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
    float u[HCI_SEEDLM_MAX_C * HCI_SEEDLM_MAX_P], tq[HCI_SEEDLM_MAX_P];
    block_window(st, blk.seed, u);
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

/* Whole blocks by cursor: n of them from the cursor's, C values each into out; advances k. */
typedef void (*decode_fn)(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len,
                          hci_seedlm_cursor *k, int64_t n, float *out);

static void decode_blocks(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len,
                          hci_seedlm_cursor *k, int64_t n, float *out)
{
    (void)payload_len;
    for (int64_t i = 0; i < n; i++, hci_seedlm_cursor_next(k), out += st->cfg.C)
        hci_seedlm_decode_block(st, payload, k->slot, out);
}

/* A record's P coefficients from its word: tq_p = q_p * 2^(ebase + code), the reference's float
 * multiply. */
static inline __attribute__((always_inline)) void split_record(const hci_seedlm_cfg *c, const uint32_t P, uint64_t rec,
                                                               float *tq)
{
    const uint32_t mmask = (1u << c->M) - 1, sign = 1u << (c->M - 1);
    const float scale = pow2f(c->ebase + (int32_t)((rec >> c->K) & ((1u << c->E) - 1)));
    rec >>= c->K + c->E;
    for (uint32_t p = 0; p < P; p++, rec >>= c->M) {
        /* two's complement of M bits */
        const int32_t q = (int32_t)((uint32_t)rec & mmask) - (int32_t)(((uint32_t)rec & sign) << 1);
        tq[p] = (float)q * scale;
    }
}

/* The vector kernels' loop in plain C (for machines without them): the record read in one word,
 * the states cut from the block's stream word, each value's sum formed as the reference forms it. */
static void decode_words(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len,
                         hci_seedlm_cursor *k, int64_t n, float *out)
{
    const hci_seedlm_cfg *c = &st->cfg;
    const uint32_t C = c->C, P = c->P, B = st->bits;
    const uint64_t kmask = (1ull << c->K) - 1;
    const double half = (double)(1u << (c->K - 1)), inv = 1.0 / (half - 1.0);
    for (int64_t i = 0; i < n; i++, hci_seedlm_cursor_next(k), out += C) {
        float tq[HCI_SEEDLM_MAX_P];
        const uint64_t rec = hci_seedlm_record_word(payload, payload_len, (uint64_t)k->slot * B);
        split_record(c, P, rec, tq);
        const uint64_t w = hci_seedlm_word(st->word, (uint32_t)(rec & kmask));
        for (uint32_t col = 0; col < C; col++) {
            float s = 0.0f;
            for (uint32_t p = 0; p < P; p++) {
                const float u = (float)(((double)((w >> (col * P + p)) & kmask) - half) * inv);
                s += u * tq[p];
            }
            out[col] = s;
        }
    }
}

#ifdef HCI_SEEDLM_X86
#define INLINE static inline __attribute__((always_inline))
#define T512 __attribute__((target("avx512f,avx512vl,avx512dq")))
#define T256 __attribute__((target("avx2")))

/* The kernel body for given C and P (constants where a preset instantiates it), W 64-bit lanes
 * per vector: lane l of chunk j holds column W j + l; per coefficient p, SRLV by the lane's state
 * offset (W j + l) P + p and AND cut its states from the broadcast stream word, CONV makes
 * V - h doubles, MUL_PD and CVT_PS the reference's u, then its float mul and add. */
#define DECODE_BODY(W, VI, VD, VF, SET1Q, SRLV, AND, CONV, MUL_PD, CVT_PS, SET1_PS, MUL_PS, ADD_PS, ZERO_PS, STORE, \
                    STORE_TAIL)                                                                                     \
    const hci_seedlm_cfg *c = &st->cfg;                                                                             \
    const uint32_t B = st->bits, nch = (C + W - 1) / W;                                                             \
    const uint64_t kmask = (1ull << c->K) - 1;                                                                      \
    VI sh[65 / W + HCI_SEEDLM_MAX_P]; /* nch P <= C P / W + P, C P <= 65 */                                         \
    for (uint32_t j = 0; j < nch; j++)                                                                              \
        for (uint32_t p = 0; p < P; p++) {                                                                          \
            int64_t t[W];                                                                                           \
            for (uint32_t l = 0; l < W; l++)                                                                        \
                t[l] = W * j + l < C ? (int64_t)((W * j + l) * P + p) : 0;                                          \
            memcpy(&sh[j * P + p], t, sizeof t);                                                                    \
        }                                                                                                           \
    const VI km = SET1Q((int64_t)kmask);                                                                            \
    for (int64_t i = 0; i < n; i++, hci_seedlm_cursor_next(k), out += C) {                                          \
        float tq[HCI_SEEDLM_MAX_P];                                                                                 \
        const uint64_t rec = hci_seedlm_record_word(payload, payload_len, (uint64_t)k->slot * B);                   \
        split_record(c, P, rec, tq);                                                                                \
        const VI wv = SET1Q((int64_t)hci_seedlm_word(st->word, (uint32_t)(rec & kmask)));                           \
        for (uint32_t j = 0; j < nch; j++) {                                                                        \
            VF acc = ZERO_PS();                                                                                     \
            for (uint32_t p = 0; p < P; p++) {                                                                      \
                VD d = MUL_PD(CONV(AND(SRLV(wv, sh[j * P + p]), km)), inv);                                         \
                acc = ADD_PS(acc, MUL_PS(CVT_PS(d), SET1_PS(tq[p])));                                               \
            }                                                                                                       \
            if (W * j + W <= C)                                                                                     \
                STORE(out + W * j, acc);                                                                            \
            else                                                                                                    \
                STORE_TAIL(out + W * j, acc, C - W * j);                                                            \
        }                                                                                                           \
    }

/* A kernel: BODY with the presets' C and P as constants (the loops unroll), else as given. */
#define DECODE_KERNEL(NAME, BODY, ATTR)                                                             \
    static ATTR void NAME(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len, \
                          hci_seedlm_cursor *k, int64_t n, float *out)                              \
    {                                                                                               \
        const uint32_t C = st->cfg.C, P = st->cfg.P;                                                \
        if (C == 8 && P == 3)                                                                       \
            BODY(st, payload, payload_len, k, n, out, 8, 3);                                        \
        else if (C == 12 && P == 4)                                                                 \
            BODY(st, payload, payload_len, k, n, out, 12, 4);                                       \
        else                                                                                        \
            BODY(st, payload, payload_len, k, n, out, C, P);                                        \
    }

/* V - h in double, exactly: the state is below 2^24, so converting the 64-bit lane and then
 * subtracting h is exact either way. */
INLINE T512 __m512d conv512(__m512i v, __m512d half) { return _mm512_sub_pd(_mm512_cvtepi64_pd(v), half); }

INLINE T512 void store512_tail(float *p, __m256 v, uint32_t n)
{
    _mm256_mask_storeu_ps(p, (__mmask8)((1u << n) - 1), v);
}

INLINE T512 void decode512_body(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len,
                                hci_seedlm_cursor *k, int64_t n, float *out, const uint32_t C, const uint32_t P)
{
    const double h = (double)(1u << (st->cfg.K - 1));
    const __m512d half = _mm512_set1_pd(h), inv = _mm512_set1_pd(1.0 / (h - 1.0));
#define CONV512(v) conv512(v, half)
    DECODE_BODY(8, __m512i, __m512d, __m256, _mm512_set1_epi64, _mm512_srlv_epi64, _mm512_and_si512, CONV512,
                _mm512_mul_pd, _mm512_cvtpd_ps, _mm256_set1_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_setzero_ps,
                _mm256_storeu_ps, store512_tail)
#undef CONV512
}

DECODE_KERNEL(decode512, decode512_body, T512)

/* AVX2 has no 64-bit integer conversion: the state (below 2^24) goes into the low bits of the
 * double 2^52, and subtracting 2^52 + h leaves V - h exactly. */
INLINE T256 __m256d conv256(__m256i v, __m256d bias)
{
    const __m256i e52 = _mm256_set1_epi64x(0x4330000000000000ll);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, e52)), bias);
}

INLINE T256 void store256_tail(float *p, __m128 v, uint32_t n)
{
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
    _mm_maskstore_ps(p, _mm_cmpgt_epi32(_mm_set1_epi32((int)n), lane), v);
}

INLINE T256 void decode256_body(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len,
                                hci_seedlm_cursor *k, int64_t n, float *out, const uint32_t C, const uint32_t P)
{
    const double h = (double)(1u << (st->cfg.K - 1));
    const __m256d bias = _mm256_set1_pd(4503599627370496.0 + h), inv = _mm256_set1_pd(1.0 / (h - 1.0));
#define CONV256(v) conv256(v, bias)
    DECODE_BODY(4, __m256i, __m256d, __m128, _mm256_set1_epi64x, _mm256_srlv_epi64, _mm256_and_si256, CONV256,
                _mm256_mul_pd, _mm256_cvtpd_ps, _mm_set1_ps, _mm_mul_ps, _mm_add_ps, _mm_setzero_ps, _mm_storeu_ps,
                store256_tail)
#undef CONV256
}

DECODE_KERNEL(decode256, decode256_body, T256)
#endif

/* The word kernels need the stream-word tables with a block's states in one word
 * (C * P + K <= 65, both presets) and records of at most 57 bits (one 64-bit read); other
 * configurations decode block by block. */
static decode_fn choose(const hci_seedlm_state *st)
{
    const hci_seedlm_cfg *c = &st->cfg;
    if (!st->word || c->C * c->P + c->K > 65 || st->bits > 57)
        return decode_blocks;
#ifdef HCI_SEEDLM_X86
    switch (hci_cpu_isa()) {
    case HCI_ISA_AVX512: return decode512;
    case HCI_ISA_AVX2: return decode256;
    default: break;
    }
#endif
    return decode_words;
}

void hci_seedlm_decode_range(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len, int64_t first,
                             int64_t count, float *out)
{
    const int64_t C = st->cfg.C;
    const decode_fn fn = choose(st);
    float tmp[HCI_SEEDLM_MAX_C];
    hci_seedlm_cursor k;
    hci_seedlm_cursor_init(&k, &st->cfg, st->rows, st->cols, first / C);
    int64_t off = first % C;
    /* a first block entered part way, or a range inside one block */
    if (count > 0 && (off || count < C)) {
        const int64_t m = C - off < count ? C - off : count;
        hci_seedlm_decode_block(st, payload, k.slot, tmp);
        memcpy(out, tmp + off, (size_t)m * sizeof(float));
        hci_seedlm_cursor_next(&k);
        out += m;
        count -= m;
    }
    const int64_t whole = count / C;
    fn(st, payload, payload_len, &k, whole, out);
    out += whole * C;
    count -= whole * C;
    if (count > 0) {
        hci_seedlm_decode_block(st, payload, k.slot, tmp);
        memcpy(out, tmp, (size_t)count * sizeof(float));
    }
}
