/* The fused VPTQ matvec's two kernel families, shared by matvec.c (which chooses between them
 * per part and stage), matvec_lut.c and matvec_gather.c. */
#ifndef HCI_VPTQ_MATVEC_H
#define HCI_VPTQ_MATVEC_H

#include <stdint.h>
#include <string.h>

#include "common/bytes.h"
#include "common/cpu.h"
#include "vptq/vptq.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define VQ_X86 1
#include <immintrin.h>
#define VQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define VQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#endif

/* Tiles of the gather kernels: VQ_TILE rows (a multiple of the 32-row index groups) by
 * VQ_SEGBLOCK segments, whose unpacked 16-bit offsets take VQ_TILE x VQ_SEGBLOCK x 2 bytes (8 KB,
 * beside a 64 KB fp16 codebook of k = 4096 eight-value entries in the 48 KB L1 and 1 MB L2). */
#define VQ_TILE 128u
#define VQ_SEGBLOCK 32u

/* A stage's index stream (version 3, row-grouped; see layout.c) and its geometry. */
typedef struct hci_vq_stream {
    const uint8_t *bytes, *end;
    int64_t rows;
    uint32_t segs, bits;
} hci_vq_stream;

static inline void hci_vq_stream_init(hci_vq_stream *str, const uint8_t *idx, int64_t rows, uint32_t segs,
                                      uint32_t bits)
{
    str->bytes = idx;
    str->end = idx + hci_vq_index_bytes(rows, segs, bits);
    str->rows = rows;
    str->segs = segs;
    str->bits = bits;
}

/* The 4 x bits bytes of the unit holding segment s of the full 32-row group starting at row
 * g0 (g0 a multiple of 32 with at least 32 rows from g0 on). */
static inline const uint8_t *hci_vq_unit(const hci_vq_stream *st, int64_t g0, uint32_t s)
{
    return st->bytes + ((uint64_t)g0 * st->segs + 32ull * s) * st->bits / 8;
}

/* The 32 indices of a unit, in portable C: the unit is copied beside zero bytes so that every
 * index is one 64-bit read, a shift and a mask. */
static inline void hci_vq_unit_indices(uint32_t *out, const uint8_t *unit, uint32_t bits)
{
    uint8_t buf[4 * VQ_MAX_BITS + 8] = { 0 };
    memcpy(buf, unit, 4u * bits);
    for (uint32_t i = 0; i < VQ_GROUP; i++) {
        uint32_t bit = i * bits;
        out[i] = (uint32_t)(hci_get_u64(buf + (bit >> 3)) >> (bit & 7)) & ((1u << bits) - 1u);
    }
}

#ifdef VQ_X86
/* The same with AVX-512 (BW): the unit in one masked load (nothing past its 4 x bits bytes is
 * touched), then for each half of 16 indices one word permute puts the two 16-bit words holding
 * index i (bits i x bits .. i x bits + bits - 1) in dword lane i, and a variable shift and a
 * mask cut it out. The permutes and shifts depend on bits alone: make them once per stream. */
typedef struct hci_vq_unpacker512 {
    __m512i perm[2], shift[2], mask;
    __mmask64 bytes;
} hci_vq_unpacker512;

VQ_AVX512 static inline void hci_vq_unpack512_init(hci_vq_unpacker512 *u, uint32_t bits)
{
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int h = 0; h < 2; h++) {
        __m512i bit = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(16 * h)),
                                         _mm512_set1_epi32((int)bits));
        __m512i w = _mm512_srli_epi32(bit, 4);
        /* word w + 1 may be 32 (bits = 16, i = 31): the permute takes it modulo 32, and the
         * mask drops what it brings */
        u->perm[h] = _mm512_or_si512(w, _mm512_slli_epi32(_mm512_add_epi32(w, _mm512_set1_epi32(1)), 16));
        u->shift[h] = _mm512_and_si512(bit, _mm512_set1_epi32(15));
    }
    u->mask = _mm512_set1_epi32((int)((1u << bits) - 1u));
    u->bytes = bits >= 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * bits)) - 1);
}

VQ_AVX512 static inline void hci_vq_unpack512(const hci_vq_unpacker512 *u, const uint8_t *unit, __m512i out[2])
{
    __m512i src = _mm512_maskz_loadu_epi8(u->bytes, unit);
    for (int h = 0; h < 2; h++)
        out[h] = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi16(u->perm[h], src), u->shift[h]), u->mask);
}

/* With AVX2: indices 8q .. 8q + 7 lie in the `bits` bytes from byte q x bits; those 16 bytes in
 * both halves of a register let one in-lane byte shuffle put the four bytes from index i's
 * first one in dword lane i, and a variable shift and a mask cut it out. A unit closer than 16
 * bytes to the end of its stream is copied out first, so no load reads past the stream. */
typedef struct hci_vq_unpacker256 {
    __m256i shuf, shift, mask;
    uint32_t bits;
} hci_vq_unpacker256;

VQ_AVX2 static inline void hci_vq_unpack256_init(hci_vq_unpacker256 *u, uint32_t bits)
{
    uint8_t shuf[32];
    uint32_t shift[8];
    for (uint32_t i = 0; i < 8; i++) {
        for (uint32_t b = 0; b < 4; b++) {
            uint32_t at = (i * bits >> 3) + b;
            shuf[4 * i + b] = (uint8_t)(at < 16 ? at : 0x80);
        }
        shift[i] = i * bits & 7;
    }
    u->shuf = _mm256_loadu_si256((const __m256i *)(const void *)shuf);
    u->shift = _mm256_loadu_si256((const __m256i *)(const void *)shift);
    u->mask = _mm256_set1_epi32((int)((1u << bits) - 1u));
    u->bits = bits;
}

VQ_AVX2 static inline void hci_vq_unpack256(const hci_vq_unpacker256 *u, const uint8_t *unit, const uint8_t *end,
                                            __m256i out[4])
{
    uint8_t copy[4 * VQ_MAX_BITS + 16];
    if ((uint64_t)(end - unit) < 4u * u->bits + 16u) {
        memset(copy, 0, sizeof copy);
        memcpy(copy, unit, 4u * u->bits);
        unit = copy;
    }
    for (uint32_t q = 0; q < 4; q++) {
        __m256i w = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(unit + q * u->bits)));
        out[q] = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(w, u->shuf), u->shift), u->mask);
    }
}
#endif

/* Lookup-table kernel: per segment, a table of every centroid's dot with that segment of x;
 * each row adds one table entry. Cost per segment ~ k x v multiply-adds + one load per row. */
typedef struct hci_vq_lut_kernel {
    void (*lut)(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x);
    /* acc[r - g0] += sum over j < ns of lut[j x k + index (s0 + j, r)] for the rows r of the full
     * 32-row groups in [g0, g1) */
    void (*groups)(float *acc, const float *lut, uint32_t k, const hci_vq_stream *st, uint32_t s0, uint32_t ns,
                   int64_t g0, int64_t g1);
} hci_vq_lut_kernel;

const hci_vq_lut_kernel *hci_vq_lut_kernel_for(hci_isa isa);

/* Gather-dot kernel: each index selects its centroid from a padded fp16 codebook (pad values
 * per entry; the fp32 one, unpadded, in the portable kernel), which is multiplied by the
 * matching segment of a padded x; no table is built. Cost per segment ~ one index load and one
 * converting load and FMA per row. */
typedef struct hci_vq_gather_job {
    const uint16_t *cbh;     /* k x pad fp16 codebook, zero-padded, 64-byte aligned */
    const float *cb;         /* k x v fp32 codebook */
    uint32_t pad, v;         /* pad: 4, 8 or 16 */
    hci_vq_stream str;
    int64_t rows;            /* of the matrix: the stream's geometry */
    uint32_t segs, bits;
    const float *xe;         /* segs x pad: each segment of the (column-scaled) x, zero-padded */
    const float *gs;         /* rows x ngroups group scales, or NULL */
    uint32_t gsegs, ngroups;
    uint16_t *off;           /* scratch of VQ_SEGBLOCK x VQ_TILE offsets, 64-byte aligned */
} hci_vq_gather_job;

/* acc[r - row0] += row r's dot (group-scaled) for r in [row0, row1). */
typedef void (*hci_vq_gather_fn)(float *acc, const hci_vq_gather_job *job, int64_t row0, int64_t row1);

hci_vq_gather_fn hci_vq_gather_kernel_for(hci_isa isa);

/* Whether the gather kernel of isa can run a stage of `bits`-bit indices over entries of pad
 * values: its unpacked offsets (index x pad / 4, in 8-byte units) must fit 16 bits. */
static inline int hci_vq_gather_ok(hci_isa isa, uint32_t bits, uint32_t pad)
{
    uint32_t extra = pad == 4 ? 0u : pad == 8 ? 1u : 2u;
    return isa == HCI_ISA_PORTABLE || bits + extra <= 16;
}

#endif
