/* The gather-dot kernels of the fused VPTQ matvec (chosen by matvec.c wherever a per-segment
 * table would cost more, which with SIMD is everywhere their offsets fit): each index selects its
 * centroid from a zero-padded fp16 codebook built at attach (the fp32 one in portable C), which
 * is converted and multiplied lane-wise by the matching zero-padded segment of x and
 * accumulated per row.
 *
 * Rows go in tiles of VQ_TILE (whole 32-row index groups) by VQ_SEGBLOCK segments: a tile's
 * indices are first unpacked to 16-bit offsets into the codebook, then eight rows at a time
 * walk its segments, sharing each x segment; the row sums are reduced once per tile. The
 * fp16 codebook halves what the random centroid loads pull through L1 (64 KB for k = 4096 and
 * v <= 8), which measured faster than fp32 despite the conversion. */
#include <string.h>

#include "vptq/matvec.h"

/* Offsets of `rows` consecutive rows, four to a 64-bit word: one load per four rows, the
 * rest shifts on the integer units, which have room where the load ports have none. */
static inline __attribute__((always_inline)) void vq_offsets(uint64_t *w, const uint16_t *o, const int rows)
{
    if (rows >= 4) {
        memcpy(w, o, 2 * (size_t)rows);
    } else {
        w[0] = 0;
        for (int r = 0; r < rows; r++)
            w[0] |= (uint64_t)o[r] << (16 * r);
    }
}

static inline __attribute__((always_inline)) size_t vq_offset(const uint64_t *w, int r)
{
    return (size_t)((w[r / 4] >> (16 * (r % 4))) & 0xffffu);
}

/* The row kernels: ROWS rows of a tile at once, each with two accumulators (even and odd
 * segments) so that FMA latency hides behind the other rows; each segment of x is loaded once
 * for all of them, and each centroid is one load folded into its FMA. out[r] (lane-wise, not
 * reduced) = sum over n segments of centroid(o[s * 32 + r]) * x segment s. W floats per
 * vector register, xs floats per x segment, cb already offset to the lanes wanted. */
#define VQ_ROWS_KERNEL(NAME, ATTR, VT, LOAD, CLOAD, FMA, ZERO, ADD)                                             \
    ATTR static inline __attribute__((always_inline)) void NAME(const char *cb, const uint16_t *o,         \
                                                               const float *xp, uint32_t xs, uint32_t n, \
                                                               const int rows, VT *out)                   \
    {                                                                                                    \
        VT a0[VQ_TILE_ROWS], a1[VQ_TILE_ROWS];                                                           \
        _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) a0[r] = a1[r] = ZERO();                   \
        for (; n >= 2; n -= 2, o += 2 * VQ_TILE, xp += 2 * xs) {                                        \
            VT x0 = LOAD(xp), x1 = LOAD(xp + xs);                                                        \
            uint64_t w0[VQ_TILE_ROWS / 4 + 1], w1[VQ_TILE_ROWS / 4 + 1];                                \
            vq_offsets(w0, o, rows);                                                                     \
            vq_offsets(w1, o + VQ_TILE, rows);                                                           \
            _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++)                                       \
            {                                                                                            \
                a0[r] = FMA(x0, CLOAD(cb + 8 * vq_offset(w0, r)), a0[r]);                                \
                a1[r] = FMA(x1, CLOAD(cb + 8 * vq_offset(w1, r)), a1[r]);                                \
            }                                                                                            \
        }                                                                                                \
        if (n) {                                                                                         \
            VT x0 = LOAD(xp);                                                                            \
            _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) a0[r] =                               \
                FMA(x0, CLOAD(cb + 8 * (size_t)o[r]), a0[r]);                                                      \
        }                                                                                                \
        _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) out[r] = ADD(a0[r], a1[r]);               \
    }

/* Rows per row kernel call: 8 x 2 accumulators fit the 32 AVX-512 registers (AVX2 uses 4). */
#define VQ_TILE_ROWS 8

/* The dot kernel of one ISA and register width W: tiles of RT rows (then single rows) over a
 * block, group-scaled per group when the part has group scales, reduced once per block. Entries
 * wider than W (16 floats on AVX2) are summed slice by slice. */
#define VQ_DOT_KERNEL(NAME, ATTR, VT, ROWS, FMA, ADD, ZERO, SET1, HSUM, W, RT)                                 \
    ATTR static inline __attribute__((always_inline)) void NAME##_rows(const hci_vq_gather_job *j,              \
                                                                      const uint16_t *o, const float *xe,       \
                                                                      uint32_t n, const int rows, VT *out)      \
    {                                                                                                          \
        ROWS((const char *)j->cbh, o, xe, j->pad, n, rows, out);                                               \
        for (uint32_t h = W; h < j->pad; h += W) {                                                             \
            VT t[VQ_TILE_ROWS];                                                                                \
            ROWS((const char *)j->cbh + 2 * h, o, xe + h, j->pad, n, rows, t);                                 \
            _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) out[r] = ADD(out[r], t[r]);                 \
        }                                                                                                      \
    }                                                                                                          \
    ATTR static inline __attribute__((always_inline)) void NAME##_tile(const hci_vq_gather_job *j, uint32_t sa, \
                                                                      uint32_t nseg, const uint16_t *o,          \
                                                                      float *dst, const float *g, const int rows) \
    {                                                                                                          \
        const float *xe = j->xe + (size_t)sa * j->pad;                                                         \
        VT tot[VQ_TILE_ROWS];                                                                                  \
        if (!g) {                                                                                              \
            NAME##_rows(j, o, xe, nseg, rows, tot);                                                            \
        } else {                                                                                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) tot[r] = ZERO();                            \
            for (uint32_t s = 0; s < nseg;) {                                                                  \
                uint32_t grp = (sa + s) / j->gsegs, e = (grp + 1) * j->gsegs - sa;                             \
                e = e < nseg ? e : nseg;                                                                       \
                VT part[VQ_TILE_ROWS];                                                                         \
                NAME##_rows(j, o + (size_t)s * VQ_TILE, xe + (size_t)s * j->pad, e - s, rows, part);          \
                _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) tot[r] =                                \
                    FMA(part[r], SET1(g[(size_t)r * j->ngroups + grp]), tot[r]);                               \
                s = e;                                                                                         \
            }                                                                                                  \
        }                                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < rows; r++) dst[r] += HSUM(tot[r]);                         \
    }                                                                                                          \
    ATTR static void NAME(float *acc, const hci_vq_gather_job *j, uint32_t sa, uint32_t nseg, int64_t r0,         \
                          int64_t row0, uint32_t i0, uint32_t i1)                                              \
    {                                                                                                          \
        uint32_t i = i0;                                                                                       \
        for (; i + RT <= i1; i += RT)                                                                          \
            NAME##_tile(j, sa, nseg, j->off + i, acc + (r0 + i - row0),                                        \
                        j->gs ? j->gs + (size_t)(r0 + i) * j->ngroups : NULL, RT);                             \
        for (; i < i1; i++)                                                                                    \
            NAME##_tile(j, sa, nseg, j->off + i, acc + (r0 + i - row0),                                        \
                        j->gs ? j->gs + (size_t)(r0 + i) * j->ngroups : NULL, 1);                              \
    }

typedef struct gather_isa {
    int f16;   /* offsets into the fp16 padded codebook (else plain indices into the fp32 one) */
    /* off[s * VQ_TILE + i] = index (segment sa + s, row g0 + i) << shift, for the full 32-row
     * group from row g0 */
    void (*unpack)(uint16_t *off, const hci_vq_stream *st, int64_t g0, uint32_t sa, uint32_t nseg, uint32_t shift);
    /* acc[r0 + i - row0] += row (r0 + i)'s dot over segments [sa, sa + nseg), i in [i0, i1) */
    void (*dot)(float *acc, const hci_vq_gather_job *j, uint32_t sa, uint32_t nseg, int64_t r0, int64_t row0,
                uint32_t i0, uint32_t i1);
} gather_isa;

/* The end (relative to the block) of the group-scale group holding block segment s, and its
 * scale for the row whose group scales start at g. */
static inline uint32_t group_end(const hci_vq_gather_job *j, uint32_t sa, uint32_t s, uint32_t nseg,
                                 const float *g, float *scale)
{
    if (!g) {
        *scale = 1.0f;
        return nseg;
    }
    uint32_t grp = (sa + s) / j->gsegs, e = (grp + 1) * j->gsegs - sa;
    *scale = g[grp];
    return e < nseg ? e : nseg;
}

static void run(const gather_isa *k, float *acc, const hci_vq_gather_job *j, int64_t row0, int64_t row1)
{
    /* SIMD offsets are in units of 8 bytes (the addressing scale), fp16 entries 2 x pad bytes */
    uint32_t shift = !k->f16 ? 0u : j->pad == 4 ? 0u : j->pad == 8 ? 1u : 2u;
    for (int64_t t0 = row0 / VQ_GROUP * VQ_GROUP; t0 < row1; t0 += VQ_TILE) {
        int64_t tend = t0 + VQ_TILE < row1 ? t0 + VQ_TILE : row1;
        uint32_t i0 = row0 > t0 ? (uint32_t)(row0 - t0) : 0u, i1 = (uint32_t)(tend - t0);
        for (uint32_t sa = 0; sa < j->segs; sa += VQ_SEGBLOCK) {
            uint32_t nseg = j->segs - sa < VQ_SEGBLOCK ? j->segs - sa : VQ_SEGBLOCK;
            for (int64_t g0 = t0; g0 < tend; g0 += VQ_GROUP) {
                uint16_t *o = j->off + (g0 - t0);
                if (j->rows - g0 >= VQ_GROUP) {
                    k->unpack(o, &j->str, g0, sa, nseg, shift);
                    continue;
                }
                /* the matrix's last, shorter group packs its m rows per segment: index by index */
                for (uint32_t s = 0; s < nseg; s++)
                    for (int64_t r = g0 > row0 ? g0 : row0; r < tend; r++)
                        o[s * VQ_TILE + (uint32_t)(r - g0)] =
                            (uint16_t)(hci_vq_get_index(j->str.bytes, j->rows, j->segs, j->bits, sa + s, r) << shift);
            }
            k->dot(acc, j, sa, nseg, t0, row0, i0, i1);
        }
    }
}

/* ---- portable ---- */

static void unpack_portable(uint16_t *off, const hci_vq_stream *st, int64_t g0, uint32_t sa, uint32_t nseg,
                            uint32_t shift)
{
    for (uint32_t s = 0; s < nseg; s++) {
        uint32_t idx[VQ_GROUP];
        hci_vq_unit_indices(idx, hci_vq_unit(st, g0, sa + s), st->bits);
        for (uint32_t i = 0; i < VQ_GROUP; i++)
            off[s * VQ_TILE + i] = (uint16_t)(idx[i] << shift);
    }
}

static void dot_portable(float *acc, const hci_vq_gather_job *j, uint32_t sa, uint32_t nseg, int64_t r0,
                         int64_t row0, uint32_t i0, uint32_t i1)
{
    for (uint32_t i = i0; i < i1; i++) {
        const float *g = j->gs ? j->gs + (size_t)(r0 + i) * j->ngroups : NULL;
        float total = 0.0f;
        for (uint32_t s = 0; s < nseg;) {
            float scale, part = 0.0f;
            uint32_t e = group_end(j, sa, s, nseg, g, &scale);
            for (; s < e; s++) {
                const float *c = j->cb + (size_t)j->off[s * VQ_TILE + i] * j->v;
                const float *x = j->xe + (size_t)(sa + s) * j->pad;
                for (uint32_t t = 0; t < j->v; t++)
                    part += c[t] * x[t];
            }
            total += scale * part;
        }
        acc[r0 + i - row0] += total;
    }
}

static const gather_isa isa_portable = { 0, unpack_portable, dot_portable };

#ifdef VQ_X86
/* ---- AVX2 ---- */

VQ_AVX2 static void unpack_avx2(uint16_t *off, const hci_vq_stream *st, int64_t g0, uint32_t sa, uint32_t nseg,
                                uint32_t shift)
{
    hci_vq_unpacker256 u;
    hci_vq_unpack256_init(&u, st->bits);
    const __m128i sh = _mm_cvtsi32_si128((int)shift);
    const uint8_t *unit = hci_vq_unit(st, g0, sa);
    for (uint32_t s = 0; s < nseg; s++, unit += 4u * st->bits) {
        __m256i iv[4];
        hci_vq_unpack256(&u, unit, st->end, iv);
        /* offsets fit 16 bits (hci_vq_gather_ok); packing interleaves 128-bit lanes, the permute
         * restores the order */
        for (int q = 0; q < 4; q += 2)
            _mm256_store_si256((__m256i *)(void *)(off + s * VQ_TILE + 8 * q),
                               _mm256_sll_epi16(_mm256_permute4x64_epi64(_mm256_packus_epi32(iv[q], iv[q + 1]), 0xd8), sh));
    }
}

VQ_AVX2 static inline float hsum128_avx2(__m128 h)
{
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

VQ_AVX2 static inline float hsum256_avx2(__m256 t)
{
    return hsum128_avx2(_mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
}

VQ_AVX2 static inline __m128 fma128_avx2(__m128 a, __m128 b, __m128 c) { return _mm_fmadd_ps(a, b, c); }
VQ_AVX2 static inline __m256 fma256_avx2(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }

VQ_AVX2 static inline __m128 cload4_avx2(const char *p)
{
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

VQ_AVX2 static inline __m256 cload8_avx2(const char *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

VQ_ROWS_KERNEL(rows4_avx2, VQ_AVX2, __m128, _mm_loadu_ps, cload4_avx2, fma128_avx2, _mm_setzero_ps, _mm_add_ps)
VQ_ROWS_KERNEL(rows8_avx2, VQ_AVX2, __m256, _mm256_loadu_ps, cload8_avx2, fma256_avx2, _mm256_setzero_ps, _mm256_add_ps)
VQ_DOT_KERNEL(dot4_avx2, VQ_AVX2, __m128, rows4_avx2, fma128_avx2, _mm_add_ps, _mm_setzero_ps, _mm_set1_ps,
              hsum128_avx2, 4, 4)
VQ_DOT_KERNEL(dot8_avx2, VQ_AVX2, __m256, rows8_avx2, fma256_avx2, _mm256_add_ps, _mm256_setzero_ps, _mm256_set1_ps,
              hsum256_avx2, 8, 4)

VQ_AVX2 static void dot_avx2(float *acc, const hci_vq_gather_job *j, uint32_t sa, uint32_t nseg, int64_t r0,
                             int64_t row0, uint32_t i0, uint32_t i1)
{
    if (j->pad == 4)
        dot4_avx2(acc, j, sa, nseg, r0, row0, i0, i1);
    else
        dot8_avx2(acc, j, sa, nseg, r0, row0, i0, i1);
}
static const gather_isa isa_avx2 = { 1, unpack_avx2, dot_avx2 };

/* ---- AVX-512 ---- */

/* A unit's 32 indices in 16-bit lanes: two halves of dwords (hci_vq_unpack512), joined by one
 * two-source word permute that keeps the low word of each. */
VQ_AVX512 static void unpack_avx512_bw(uint16_t *off, const hci_vq_stream *st, int64_t g0, uint32_t sa, uint32_t nseg,
                                       uint32_t shift)
{
    hci_vq_unpacker512 u;
    hci_vq_unpack512_init(&u, st->bits);
    const __m512i even = _mm512_setr_epi32(0x00020000, 0x00060004, 0x000a0008, 0x000e000c, 0x00120010, 0x00160014,
                                           0x001a0018, 0x001e001c, 0x00220020, 0x00260024, 0x002a0028, 0x002e002c,
                                           0x00320030, 0x00360034, 0x003a0038, 0x003e003c);
    const __m128i sh = _mm_cvtsi32_si128((int)shift);
    const uint8_t *unit = hci_vq_unit(st, g0, sa);
    for (uint32_t s = 0; s < nseg; s++, unit += 4u * st->bits) {
        __m512i iv[2];
        hci_vq_unpack512(&u, unit, iv);
        __m512i w = _mm512_permutex2var_epi16(iv[0], even, iv[1]);
        _mm512_store_si512((void *)(off + s * VQ_TILE), _mm512_sll_epi16(w, sh));
    }
}

/* With VBMI, when every index lies within the 16 bits from the byte holding its first bit
 * ((i x bits) mod 8 + bits <= 16 for all i: bits 1 to 10, 12 and 16), one byte permute puts
 * those two bytes in word lane i, and a variable word shift and a mask cut it out: half the
 * operations of the dword path. */
#define VQ_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi")))

static int vbmi_words_fit(uint32_t bits) { return bits <= 10 || bits == 12 || bits == 16; }

VQ_VBMI static void unpack_avx512_vbmi(uint16_t *off, const hci_vq_stream *st, int64_t g0, uint32_t sa,
                                       uint32_t nseg, uint32_t shift)
{
    const __m512i lane = _mm512_setr_epi32(0x00010000, 0x00030002, 0x00050004, 0x00070006, 0x00090008, 0x000b000a,
                                           0x000d000c, 0x000f000e, 0x00110010, 0x00130012, 0x00150014, 0x00170016,
                                           0x00190018, 0x001b001a, 0x001d001c, 0x001f001e);
    __m512i bit = _mm512_mullo_epi16(lane, _mm512_set1_epi16((short)st->bits));
    __m512i byte = _mm512_srli_epi16(bit, 3);
    /* word lane i takes bytes b and b + 1 (b = first byte of index i) */
    const __m512i perm = _mm512_or_si512(byte, _mm512_slli_epi16(_mm512_add_epi16(byte, _mm512_set1_epi16(1)), 8));
    const __m512i rsh = _mm512_and_si512(bit, _mm512_set1_epi16(7));
    const __m512i mask = _mm512_set1_epi16((short)((1u << st->bits) - 1u));
    const __m128i sh = _mm_cvtsi32_si128((int)shift);
    const __mmask64 bytes = st->bits >= 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * st->bits)) - 1);
    const uint8_t *unit = hci_vq_unit(st, g0, sa), *end = st->end;
    const uint64_t ahead = (uint64_t)nseg * 4u * st->bits;
    for (uint32_t s = 0; s < nseg; s++, unit += 4u * st->bits) {
        /* the group's next block of segments follows this one: fetch it while the dot runs */
        if ((uint64_t)(end - unit) > ahead)
            _mm_prefetch((const char *)(unit + ahead), _MM_HINT_T0);
        __m512i w = _mm512_permutexvar_epi8(perm, _mm512_maskz_loadu_epi8(bytes, unit));
        w = _mm512_and_si512(_mm512_srlv_epi16(w, rsh), mask);
        _mm512_store_si512((void *)(off + s * VQ_TILE), _mm512_sll_epi16(w, sh));
    }
}

/* The 128- and 256-bit helpers are the AVX2 ones (AVX-512 implies their ISA, so they inline). */
VQ_AVX512 static inline float hsum512_avx512(__m512 t) { return _mm512_reduce_add_ps(t); }

VQ_AVX512 static inline __m512 fma512_avx512(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }

VQ_ROWS_KERNEL(rows4_avx512, VQ_AVX512, __m128, _mm_loadu_ps, cload4_avx2, fma128_avx2, _mm_setzero_ps, _mm_add_ps)
VQ_ROWS_KERNEL(rows8_avx512, VQ_AVX512, __m256, _mm256_loadu_ps, cload8_avx2, fma256_avx2, _mm256_setzero_ps, _mm256_add_ps)
VQ_AVX512 static inline __m512 cload16_avx512(const char *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

VQ_ROWS_KERNEL(rows16_avx512, VQ_AVX512, __m512, _mm512_loadu_ps, cload16_avx512, fma512_avx512, _mm512_setzero_ps, _mm512_add_ps)
VQ_DOT_KERNEL(dot4_avx512, VQ_AVX512, __m128, rows4_avx512, fma128_avx2, _mm_add_ps, _mm_setzero_ps, _mm_set1_ps,
              hsum128_avx2, 4, VQ_TILE_ROWS)
VQ_DOT_KERNEL(dot8_avx512, VQ_AVX512, __m256, rows8_avx512, fma256_avx2, _mm256_add_ps, _mm256_setzero_ps,
              _mm256_set1_ps, hsum256_avx2, 8, VQ_TILE_ROWS)
VQ_DOT_KERNEL(dot16_avx512, VQ_AVX512, __m512, rows16_avx512, fma512_avx512, _mm512_add_ps, _mm512_setzero_ps,
              _mm512_set1_ps, hsum512_avx512, 16, VQ_TILE_ROWS)

VQ_AVX512 static void dot_avx512(float *acc, const hci_vq_gather_job *j, uint32_t sa, uint32_t nseg, int64_t r0,
                                 int64_t row0, uint32_t i0, uint32_t i1)
{
    if (j->pad == 4)
        dot4_avx512(acc, j, sa, nseg, r0, row0, i0, i1);
    else if (j->pad == 8)
        dot8_avx512(acc, j, sa, nseg, r0, row0, i0, i1);
    else
        dot16_avx512(acc, j, sa, nseg, r0, row0, i0, i1);
}
static const gather_isa isa_avx512 = { 1, unpack_avx512_bw, dot_avx512 };
static const gather_isa isa_avx512_vbmi = { 1, unpack_avx512_vbmi, dot_avx512 };
#endif

static void gather_portable(float *acc, const hci_vq_gather_job *j, int64_t row0, int64_t row1)
{
    run(&isa_portable, acc, j, row0, row1);
}

#ifdef VQ_X86
static void gather_avx2(float *acc, const hci_vq_gather_job *j, int64_t row0, int64_t row1)
{
    run(&isa_avx2, acc, j, row0, row1);
}

static void gather_avx512(float *acc, const hci_vq_gather_job *j, int64_t row0, int64_t row1)
{
    /* the unpacking is chosen once per call: it runs for every 32 rows of every segment block */
    run(vbmi_words_fit(j->bits) && hci_cpu_avx512vbmi() ? &isa_avx512_vbmi : &isa_avx512, acc, j, row0, row1);
}
#endif

hci_vq_gather_fn hci_vq_gather_kernel_for(hci_isa isa)
{
#ifdef VQ_X86
    if (isa == HCI_ISA_AVX512)
        return gather_avx512;
    if (isa == HCI_ISA_AVX2)
        return gather_avx2;
#else
    (void)isa;
#endif
    return gather_portable;
}
