/* SeedLM y = W x with rows in vector lanes and the stream's bits looked up in per-x tables
 * (AVX-512 with GFNI; K = 16, 32-bit records, C dividing cols: the 4-bit preset).
 *
 * For a block with stream bits b_i (state j is bits j .. j + 15, seedlm_internal.h),
 *
 *     sum_c x_c (V_(cP+p) - 2^15) = sum_i (b_i - 1/2) H_p[i] - sum_c x_c / 2,
 *     H_p[i] = sum of 2^k x_c over c, k with c P + p + k = i, 0 <= k < 16,
 *
 * because V - 2^15 = sum_k 2^k (b_k - 1/2) - 1/2. The sum is linear in the bits over the reals,
 * so it splits into one 16-entry table per nibble of the stream and per coefficient p, built
 * once per column block from x alone: T[g][p][v] = sum_u (bit u of v - 1/2) H_p[4g + u], the
 * constant folded into g = 0. A block then costs one vpermps per (nibble, p), which looks up 16
 * rows at once since every row's block at that column position shares the tables, plus
 *
 *   - its stream: the seed is bits 0..15; bits 16..39 are a GF(2)-linear function of it, three
 *     bytes of which each is the XOR of an 8x8 bit matrix applied to each seed byte
 *     (vgf2p8affineqb, the matrices read off the stream-word tables);
 *   - its coefficients q_p 2^(ebase + code) from the record, already one per lane.
 *
 * About 102 vector operations per 16 blocks, against about 110 for the kernel that regenerates
 * each weight (seedlm_matvec.c: 13 per 2 blocks plus record unpacking and word lookups), and none
 * of its permutations to spread coefficients over a block's values. Their mix matters more than
 * their number: on Zen 5 float adds, shifts and conversions share two of the four vector pipes
 * with half the permutations, FMAs have the other two (bench/probe_vec_ports), so each lookup
 * goes into an FMA with its coefficient rather than into an add. The float sums round
 * differently from the exact integer column sums of that kernel; both stay within float rounding
 * of the decoded matrix's product (tests/test_seedlm_matvec.c). Records are read 16 column blocks
 * at a time: in layout 2 (records grouped by 16 rows) one vector per block, already rows in
 * lanes; in layout 1 one cache line per row, transposed in registers 16 rows x 8 blocks at a time.
 * Measurements: doc/algorithms.md, "Matvec from seeds, rows-in-lanes kernel". */

#include "common/alloc.h"
#include "common/error.h"
#include "seedlm/seedlm_internal.h"

#define LUT_MAX_P 4
#define LUT_CHUNK 16       /* column blocks per pass over the rows: 64 bytes of each row */
#define LUT_HALF 8         /* column blocks per transpose */

int hci_seedlm_lut_fits(const hci_seedlm_cfg *c, int64_t cols)
{
    /* the stream needs bits up to C P + K - 2 (the last state's top bit), at most bit 39 */
    return c->K == 16 && hci_seedlm_block_bits(c) == 32 && c->P <= LUT_MAX_P && c->C * c->P + c->K - 1 <= 40 &&
           cols % c->C == 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TLUT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,gfni,fma")))
#define INLINE static inline __attribute__((always_inline))

/* 2^k at [32 + k] for 0 <= k < 16, zeros around: H_p is a sum of shifted copies. */
static const float pow2pad[96] = {
    [32] = 1.0f,     [33] = 2.0f,     [34] = 4.0f,     [35] = 8.0f,     [36] = 16.0f,    [37] = 32.0f,
    [38] = 64.0f,    [39] = 128.0f,   [40] = 256.0f,   [41] = 512.0f,   [42] = 1024.0f,  [43] = 2048.0f,
    [44] = 4096.0f,  [45] = 8192.0f,  [46] = 16384.0f, [47] = 32768.0f,
};

typedef struct lut_ctx {
    uint32_t C, P, E, M, ng;
    int64_t nb;             /* blocks per row */
    uint32_t first;         /* blocks in the first chunk when it is shorter, else 0 */
    uint32_t grouped;       /* layout version 2: records grouped by 16 rows */
    const uint8_t *rec;     /* the payload: 32-bit little-endian records */
    const float *x;
    float inv;              /* 1 / (2^15 - 1) */
    __m512i bcast0, bcast1; /* vpshufb: seed byte 0 / 1 into every byte of its dword */
    __m512i mat[3][2];      /* stream byte 2 + o from seed byte i */
    __m512 sign[4];         /* lane v: bit u of v - 1/2 */
    int32_t ebias;          /* (127 + ebase) << 23 */
    float *tab;             /* LUT_CHUNK x ng x P x 16 */
} lut_ctx;

/* The 8x8 bit matrix (vgf2p8affineqb layout: byte 7 - t is output bit t's row) giving stream
 * bits 8 (2 + o) .. 8 (2 + o) + 7 from seed byte i, read off the stream words of single bits. */
static uint64_t stream_matrix(const uint64_t (*word)[256], uint32_t o, uint32_t i)
{
    uint64_t m = 0;
    for (uint32_t t = 0; t < 8; t++) {
        uint64_t row = 0;
        for (uint32_t u = 0; u < 8; u++)
            row |= ((word[i][1u << u] >> (8 * (2 + o) + t)) & 1u) << u;
        m |= row << (8 * (7 - t));
    }
    return m;
}

/* The tables of column block b: H_p in three vectors, then T[g][p] = sum_u H_p[4g + u] sign[u]. */
INLINE TLUT void build_tables(const lut_ctx *L, int64_t b, float *t)
{
    const uint32_t C = L->C, P = L->P;
    const float *xb = L->x + b * C;
    float sx = 0.0f;
    for (uint32_t c = 0; c < C; c++)
        sx += xb[c];
    const __m512 half_sum = _mm512_set1_ps(-0.5f * sx * L->inv);
    for (uint32_t p = 0; p < P; p++) {
        __m512 h0 = _mm512_setzero_ps(), h1 = h0, h2 = h0;
        for (uint32_t c = 0; c < C; c++) {
            const __m512 xv = _mm512_set1_ps(xb[c] * L->inv);
            const float *pw = pow2pad + 32 - (c * P + p);
            h0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(pw), h0);
            h1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(pw + 16), h1);
            h2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(pw + 32), h2);
        }
        float H[48] __attribute__((aligned(64)));
        _mm512_store_ps(H, h0);
        _mm512_store_ps(H + 16, h1);
        _mm512_store_ps(H + 32, h2);
        for (uint32_t g = 0; g < L->ng; g++) {
            __m512 acc = g == 0 ? half_sum : _mm512_setzero_ps();
            for (uint32_t u = 0; u < 4; u++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(H[4 * g + u]), L->sign[u], acc);
            _mm512_store_ps(t + (g * P + p) * 16, acc);
        }
    }
}

/* Stream bits 16..39 of 16 seeds (lane l: bits 16 + 8o .. of row l's stream in byte o). */
INLINE TLUT __m512i stream_high(const lut_ctx *L, __m512i R)
{
    const __m512i s0 = _mm512_shuffle_epi8(R, L->bcast0), s1 = _mm512_shuffle_epi8(R, L->bcast1);
    /* stream byte 2 + o is the XOR of one product per seed byte; the three are independent and
     * merged by bitwise selects (0xca: a ? b : c), which run on any vector pipe, rather than
     * chained through merge masks (three dependent permute-pipe steps). Byte 3 is never read:
     * vpermps looks only at the low nibble of hi >> 4 (g - 4) for g <= 9. */
    const __m512i b0 = _mm512_xor_si512(_mm512_gf2p8affine_epi64_epi8(s0, L->mat[0][0], 0),
                                        _mm512_gf2p8affine_epi64_epi8(s1, L->mat[0][1], 0));
    const __m512i b1 = _mm512_xor_si512(_mm512_gf2p8affine_epi64_epi8(s0, L->mat[1][0], 0),
                                        _mm512_gf2p8affine_epi64_epi8(s1, L->mat[1][1], 0));
    const __m512i b2 = _mm512_xor_si512(_mm512_gf2p8affine_epi64_epi8(s0, L->mat[2][0], 0),
                                        _mm512_gf2p8affine_epi64_epi8(s1, L->mat[2][1], 0));
    const __m512i lo = _mm512_ternarylogic_epi32(_mm512_set1_epi32(0xff), b0, b1, 0xca);
    return _mm512_ternarylogic_epi32(_mm512_set1_epi32(0xffff), lo, b2, 0xca);
}

/* 16 rows' records of one column block (lane l: row l) against its tables, added to acc:
 * acc + 2^code sum_p q_p D_p, times 2^ebase (the bias) and 1 / (2^15 - 1) (in the tables).
 * Each lookup is multiplied by its lane's q_p in an FMA (see the top of the file); two
 * accumulators per p (even and odd nibbles) keep the chains short. */
INLINE TLUT __m512 block16(const lut_ctx *L, __m512i R, const float *t, uint32_t P, uint32_t ng, uint32_t E,
                           uint32_t M, __m512 acc)
{
    const __m512i hi = stream_high(L, R);
    const uint32_t K = 16;
    __m512 q[LUT_MAX_P], d0[LUT_MAX_P], d1[LUT_MAX_P];
#pragma GCC unroll 4
    for (uint32_t p = 0; p < LUT_MAX_P; p++) {
        q[p] = p < P ? _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(R, (int)(32 - K - E - M * (p + 1))), (int)(32 - M)))
                     : _mm512_setzero_ps();
        d0[p] = p < P ? _mm512_mul_ps(q[p], _mm512_permutexvar_ps(R, _mm512_load_ps(t + p * 16))) : _mm512_setzero_ps();
        d1[p] = _mm512_setzero_ps();
    }
#pragma GCC unroll 10
    for (uint32_t g = 1; g < ng; g++) {
        const __m512i idx = g < 4 ? _mm512_srli_epi32(R, 4 * g) : g == 4 ? hi : _mm512_srli_epi32(hi, 4 * (g - 4));
#pragma GCC unroll 4
        for (uint32_t p = 0; p < P; p++) {
            const __m512 v = _mm512_permutexvar_ps(idx, _mm512_load_ps(t + (g * P + p) * 16));
            if (g & 1)
                d1[p] = _mm512_fmadd_ps(q[p], v, d1[p]);
            else
                d0[p] = _mm512_fmadd_ps(q[p], v, d0[p]);
        }
    }
    __m512 f = _mm512_add_ps(d0[0], d1[0]);
#pragma GCC unroll 4
    for (uint32_t p = 1; p < P; p++)
        f = _mm512_add_ps(f, _mm512_add_ps(d0[p], d1[p]));
    const __m512i ebits = _mm512_and_si512(_mm512_slli_epi32(R, 23 - 16), _mm512_set1_epi32((int32_t)(((1u << E) - 1) << 23)));
    return _mm512_fmadd_ps(f, _mm512_castsi512_ps(_mm512_add_epi32(ebits, _mm512_set1_epi32(L->ebias))), acc);
}

/* Rows r0 .. r0 + 15 over column blocks cb .. cb + n - 1 (n <= 8): the records of 16 rows x 8
 * blocks, transposed so that vector j holds block cb + j of every row. Blocks past n read as zero
 * records and are skipped. */
INLINE TLUT __m512 half_tile(const lut_ctx *L, int64_t r0, int64_t cb, uint32_t n, const float *tab, uint32_t P,
                              uint32_t ng, uint32_t E, uint32_t M)
{
    const __mmask8 live = (__mmask8)((1u << n) - 1);
    const uint8_t *base = L->rec + 4 * (r0 * L->nb + cb);
    __m512i z[8];
    for (int i = 0; i < 4; i++) {
        /* z[i] = rows i | i + 4, z[i + 4] = rows i + 8 | i + 12 */
        for (int h = 0; h < 2; h++) {
            const uint8_t *a = base + 4 * (8 * h + i) * L->nb, *b = a + 16 * L->nb;
            /* masked loads only for the last, partial chunk: they are slower */
            const __m256i ra = n == LUT_HALF ? _mm256_loadu_si256((const __m256i *)(const void *)a)
                                              : _mm256_maskz_loadu_epi32(live, a);
            const __m256i rb = n == LUT_HALF ? _mm256_loadu_si256((const __m256i *)(const void *)b)
                                              : _mm256_maskz_loadu_epi32(live, b);
            z[4 * h + i] = _mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1);
        }
    }
    /* 4x4 transposes within 128-bit lanes, then lanes regrouped: block j of rows 0..15 */
    __m512i t[8], u[8];
    for (int h = 0; h < 2; h++) {
        __m512i *zz = z + 4 * h, *tt = t + 4 * h;
        tt[0] = _mm512_unpacklo_epi32(zz[0], zz[1]);
        tt[1] = _mm512_unpackhi_epi32(zz[0], zz[1]);
        tt[2] = _mm512_unpacklo_epi32(zz[2], zz[3]);
        tt[3] = _mm512_unpackhi_epi32(zz[2], zz[3]);
        u[4 * h + 0] = _mm512_unpacklo_epi64(tt[0], tt[2]);
        u[4 * h + 1] = _mm512_unpackhi_epi64(tt[0], tt[2]);
        u[4 * h + 2] = _mm512_unpacklo_epi64(tt[1], tt[3]);
        u[4 * h + 3] = _mm512_unpackhi_epi64(tt[1], tt[3]);
    }
    const size_t per_block = (size_t)ng * P * 16;
    __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        if ((uint32_t)c < n)
            acc = block16(L, _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), tab + c * per_block, P, ng, E, M, acc);
        if ((uint32_t)c + 4 < n)
            acc = block16(L, _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD), tab + (c + 4) * per_block, P, ng, E, M,
                          acc);
    }
    return acc;
}

/* The same in layout version 2 (row0 at a group start): vector j of the group's records is block
 * cb + j of all 16 rows, one aligned-size load each, so nothing needs transposing. */
INLINE TLUT __m512 chunk_grouped(const lut_ctx *L, int64_t r0, int64_t cb, uint32_t n, const float *tab, uint32_t P,
                                 uint32_t ng, uint32_t E, uint32_t M)
{
    const uint8_t *base = L->rec + 4 * (r0 * L->nb + 16 * cb);
    const size_t per_block = (size_t)ng * P * 16;
    __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (uint32_t j = 0; j < n; j++)
        acc = block16(L, _mm512_loadu_si512(base + 64 * j), tab + j * per_block, P, ng, E, M, acc);
    return acc;
}

/* grouped is a constant where speed matters (the preset's loops below). */
INLINE TLUT void rows_lut(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles, uint32_t P, uint32_t ng,
                         uint32_t E, uint32_t M, uint32_t grouped)
{
    /* a first, shorter chunk up to a 64-byte boundary, so that each row's records of a chunk are
     * one cache line (the payload follows a header and need not be aligned) */
    uint32_t step = L->first ? L->first : LUT_CHUNK;
    for (int64_t cb = 0; cb < L->nb; cb += step, step = LUT_CHUNK) {
        const uint32_t n = L->nb - cb >= step ? step : (uint32_t)(L->nb - cb);
        for (uint32_t j = 0; j < n; j++)
            build_tables(L, cb + j, L->tab + (size_t)j * ng * P * 16);
        for (int64_t t = 0; t < ntiles; t++) {
            float *yt = y + row0 + 16 * t;
            if (grouped) {
                const __m512 s = chunk_grouped(L, row0 + 16 * t, cb, n, L->tab, P, ng, E, M);
                _mm512_storeu_ps(yt, cb == 0 ? s : _mm512_add_ps(_mm512_loadu_ps(yt), s));
                continue;
            }
            __m512 s = half_tile(L, row0 + 16 * t, cb, n < LUT_HALF ? n : LUT_HALF, L->tab, P, ng, E, M);
            if (n > LUT_HALF)
                s = _mm512_add_ps(s, half_tile(L, row0 + 16 * t, cb + LUT_HALF, n - LUT_HALF,
                                               L->tab + (size_t)LUT_HALF * ng * P * 16, P, ng, E, M));
            _mm512_storeu_ps(yt, cb == 0 ? s : _mm512_add_ps(_mm512_loadu_ps(yt), s));
        }
    }
}

/* The 4-bit preset's loops, one function each: in one function together the layout 1 loop
 * measured about 20% slower. */
static TLUT __attribute__((noinline)) void preset_flat(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles)
{
    rows_lut(L, y, row0, ntiles, 3, 10, 4, 4, 0);
}

static TLUT __attribute__((noinline)) void preset_grouped(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles)
{
    rows_lut(L, y, row0, ntiles, 3, 10, 4, 4, 1);
}

static TLUT void matvec_lut(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles)
{
    if (L->P == 3 && L->ng == 10 && L->E == 4 && L->M == 4)
        (L->grouped ? preset_grouped : preset_flat)(L, y, row0, ntiles);
    else
        rows_lut(L, y, row0, ntiles, L->P, L->ng, L->E, L->M, L->grouped);
}

/* Called only on a CPU with the target's features (the caller checks). */
TLUT int64_t hci_seedlm_matvec_lut(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y,
                                   int64_t row0, int64_t row1)
{
    const hci_seedlm_cfg *c = &st->cfg;
    const int64_t ntiles = (row1 - row0) / 16;
    if (ntiles == 0)
        return 0;
    lut_ctx L;
    L.C = c->C;
    L.P = c->P;
    L.E = c->E;
    L.M = c->M;
    L.ng = (c->C * c->P + c->K - 1 + 3) / 4;
    L.nb = st->cols / c->C;
    L.rec = payload;
    const uintptr_t mis = (uintptr_t)payload & 63;
    L.grouped = c->grouped;
    L.first = !c->grouped && mis % 4 == 0 && L.nb % LUT_CHUNK == 0 ? (uint32_t)((64 - mis) % 64 / 4) : 0;
    L.x = x;
    L.inv = (float)(1.0 / 32767.0);
    L.ebias = (int32_t)((uint32_t)(127 + c->ebase) << 23);
    uint8_t b0[64], b1[64];
    for (int i = 0; i < 64; i++) {
        b0[i] = (uint8_t)(i % 16 / 4 * 4);
        b1[i] = (uint8_t)(i % 16 / 4 * 4 + 1);
    }
    L.bcast0 = _mm512_loadu_si512(b0);
    L.bcast1 = _mm512_loadu_si512(b1);
    for (uint32_t o = 0; o < 3; o++)
        for (uint32_t i = 0; i < 2; i++)
            L.mat[o][i] = _mm512_set1_epi64((long long)stream_matrix(st->word, o, i));
    for (uint32_t u = 0; u < 4; u++) {
        float s[16];
        for (uint32_t v = 0; v < 16; v++)
            s[v] = (float)((v >> u) & 1u) - 0.5f;
        L.sign[u] = _mm512_loadu_ps(s);
    }
    const size_t ntab = (size_t)LUT_CHUNK * L.ng * L.P * 16;
    /* a partial chunk's unused tables are never read (half_tile skips its blocks past n) */
    L.tab = hci_aligned_array(ntab, sizeof(float));
    if (!L.tab)
        return HC_ENOMEM;
    matvec_lut(&L, y, row0, ntiles);
    hci_free(L.tab);
    return 16 * ntiles;
}
#else
int64_t hci_seedlm_matvec_lut(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y,
                              int64_t row0, int64_t row1)
{
    (void)st, (void)payload, (void)x, (void)y, (void)row0, (void)row1;
    return 0;
}
#endif
