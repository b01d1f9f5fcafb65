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
#include "seedlm/seedlm_matvec_lut_kernel.h"

int hci_seedlm_lut_fits(const hci_seedlm_cfg *c, int64_t cols)
{
    /* the stream needs bits up to C P + K - 2 (the last state's top bit), at most bit 39 */
    return c->K == 16 && hci_seedlm_block_bits(c) == 32 && c->P <= LUT_MAX_P && c->C * c->P + c->K - 1 <= 40 &&
           cols % c->C == 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
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

/* The 4-bit preset's loops, one function each (the layout-1 one in its own file): in one
 * function together the layout 1 loop measured about 20% slower. */
static TLUT __attribute__((noinline)) void preset_grouped(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles)
{
    rows_lut(L, y, row0, ntiles, 3, 10, 4, 4, 1);
}

static TLUT void matvec_lut(const lut_ctx *L, float *y, int64_t row0, int64_t ntiles)
{
    if (L->P == 3 && L->ng == 10 && L->E == 4 && L->M == 4)
        (L->grouped ? preset_grouped : hci_seedlm_lut_preset_flat)(L, y, row0, ntiles);
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
