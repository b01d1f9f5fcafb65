/* The hot loops of the scalar codecs: one table of kernels per codec and instruction set.
 * A codec picks its table with hci_cpu_isa() once per call; the portable tables are the
 * reference that the tests compare the AVX2 and AVX-512 tables against. Kernels read packed
 * bytes at any alignment and never read past the range they are given. */
#ifndef HCI_SCALAR_KERNELS_H
#define HCI_SCALAR_KERNELS_H

#include <stdint.h>

#include "common/cpu.h"

/* f32 / fp16 / bf16: n little-endian elements at p. */
typedef struct hci_float_kernels {
    float (*dot)(const uint8_t *p, const float *x, int64_t n);   /* sum_i w_i x_i */
    void (*decode)(float *out, const uint8_t *p, int64_t n);
} hci_float_kernels;

/* codec_id is HC_CODEC_F32, HC_CODEC_FP16 or HC_CODEC_BF16. */
const hci_float_kernels *hci_float_kernels_for(uint32_t codec_id, hci_isa isa);

/* int8: n signed codes. */
typedef struct hci_int8_kernels {
    float (*dot)(const int8_t *q, const float *x, int64_t n);   /* sum_i q_i x_i */
    void (*decode)(float *out, const int8_t *q, float scale, int64_t n);   /* out_i = q_i * scale */
} hci_int8_kernels;

const hci_int8_kernels *hci_int8_kernels_for(hci_isa isa);

/* The 16 NF4 levels, ascending (defined in nf4.c). */
extern const float hci_nf4_table[16];

/* nf4: codes holds the nibbles of the whole tensor (flat index i in byte i/2, low nibble for
 * even i); bscale[b] is the decoded absmax of flat block b of `block` values. Both kernels
 * cover flat indices [i0, i0 + n). */
typedef struct hci_nf4_kernels {
    /* sum_k level(i0 + k) * bscale[(i0 + k) / block] * x[k] */
    float (*dot)(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0, int64_t n,
                 const float *x);
    /* out[k] = level(i0 + k) * bscale[(i0 + k) / block], the product rounded once */
    void (*decode)(float *out, const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0,
                   int64_t n);
    /* dot with x given split (hci_nf4_split_x), for i0, n and block multiples of 32; saves
     * the shuffles that put codes in natural order. NULL when the table has none. */
    float (*dot_split)(const uint8_t *codes, const float *bscale, uint32_t block, int64_t i0, int64_t n,
                       const float *xs);
} hci_nf4_kernels;

/* xs = x with each run of 32 values reordered as its 16 even-indexed values, then its 16
 * odd-indexed ones (the order of low and high nibbles in 16 code bytes); n % 32 == 0. */
void hci_nf4_split_x(float *xs, const float *x, int64_t n);

const hci_nf4_kernels *hci_nf4_kernels_for(hci_isa isa);

/* ternary: 2-bit codes, flat index i in bits 2(i%4)..2(i%4)+1 of byte i/4; code 0 is 0,
 * 1 is +1, 2 is -1 (3 never reaches a kernel: attach rejects it). */
typedef struct hci_ternary_kernels {
    float (*dot)(const uint8_t *codes, int64_t i0, int64_t n, const float *x);   /* sum_k t(i0+k) x[k] */
    void (*decode)(float *out, const uint8_t *codes, float scale, int64_t i0, int64_t n);
} hci_ternary_kernels;

const hci_ternary_kernels *hci_ternary_kernels_for(hci_isa isa);

#if defined(__x86_64__) && defined(__GNUC__)
#define HCI_HAVE_X86_KERNELS 1
#define HCI_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HCI_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#else
#define HCI_HAVE_X86_KERNELS 0
#endif

#endif
