/* The fused VPTQ matvec's two kernel families, shared by matvec.c (which chooses between them
 * per part and stage), matvec_lut.c and matvec_gather.c. */
#ifndef HCI_VPTQ_MATVEC_H
#define HCI_VPTQ_MATVEC_H

#include <stdint.h>

#include "common/bytes.h"
#include "common/cpu.h"
#include "vptq/vptq.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define VQ_X86 1
#define VQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define VQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#endif

/* Tiles of the gather kernels: VQ_TILE rows (a multiple of the 32-row index groups) by
 * VQ_SEGBLOCK segments, whose unpacked 16-bit offsets take VQ_TILE x VQ_SEGBLOCK x 2 bytes (8 KB,
 * beside a 64 KB fp16 codebook of k = 4096 eight-value entries in the 48 KB L1 and 1 MB L2). */
#define VQ_TILE 128u
#define VQ_SEGBLOCK 32u

/* Where a stage's indices live (see layout.c): nb byte planes of n bytes, then a bit-plane
 * remainder of br bits per index, limit bytes long. */
typedef struct hci_vq_stream {
    const uint8_t *bytes, *rem;
    uint64_t n, limit;
    uint32_t nb, br;
} hci_vq_stream;

void hci_vq_stream_init(hci_vq_stream *str, const uint8_t *idx, int64_t rows, uint32_t segs, uint32_t bits);

/* 32 bits of a remainder plane from bit offset `bit`. */
static inline uint32_t hci_vq_load_plane(const uint8_t *stream, uint64_t limit, uint64_t bit)
{
    uint64_t byte = bit >> 3, w = 0;
    if (byte + 8 <= limit) {
        w = hci_get_u64(stream + byte);
    } else {
        for (uint64_t i = byte; i < limit; i++)
            w |= (uint64_t)stream[i] << (8 * (i - byte));
    }
    return (uint32_t)(w >> (bit & 7));
}

/* Lookup-table kernel: per segment, a table of every centroid's dot with that segment of x;
 * each row adds one table entry. Cost per segment ~ k x v multiply-adds + one load per row. */
typedef struct hci_vq_lut_kernel {
    void (*lut)(float *lut, const float *cbt, uint32_t k, uint32_t v, const float *x);
    /* acc[i] += lut[index i] for the 32 indices of a full group at position pos of a stream */
    void (*group)(float *acc, const float *lut, const hci_vq_stream *st, uint64_t pos);
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
