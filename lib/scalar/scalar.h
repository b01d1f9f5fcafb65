/* The scalar codecs and the option handling they share. */
#ifndef HCI_SCALAR_H
#define HCI_SCALAR_H

#include "codec.h"
#include "hypercomp/scalar.h"

extern const hci_codec hci_codec_f32;
extern const hci_codec hci_codec_fp16;
extern const hci_codec hci_codec_bf16;
extern const hci_codec hci_codec_int8;
extern const hci_codec hci_codec_nf4;
extern const hci_codec hci_codec_ternary;

/* Spec constructor for "f32", "fp16", "bf16", "int8", "nf4" and "ternary". */
int hci_scalar_from_spec(hc_compressor **out, hci_spec *spec);

/* The options a scalar compressor was created with. */
static inline const hc_scalar_options *hci_scalar_opts(const hc_compressor *c)
{
    return (const hc_scalar_options *)c->opts;
}

/* INT8: the clip of one row, the `percentile`-th percentile of the n magnitudes in mag by
 * linear interpolation between order statistics (mag is reordered). */
float hci_int8_row_clip(float *mag, int64_t n, double percentile);

/* NF4 limits on the block sizes (options, specs and stored params). */
#define HCI_NF4_MIN_BLOCK 2u
#define HCI_NF4_MAX_BLOCK 65536u

/* Where each part of an NF4 payload starts (doc/codecs.md). */
typedef struct hci_nf4_layout {
    uint32_t block, scale_block;
    int64_t nblocks, nscale;
    uint64_t off_steps, off_qabs, off_codes, total;
} hci_nf4_layout;

void hci_nf4_layout_of(hci_nf4_layout *l, int64_t numel, uint32_t block, uint32_t scale_block);
/* The decoder's scale of a block: q * step + mean, each operation rounded to f32. */
float hci_nf4_block_scale(int8_t q, float step, float mean);
/* The code of the level nearest to x (ties to the lower level). */
unsigned hci_nf4_nearest(float x);

/* Ternary: the eps added to mean|W|. */
#define HCI_TERNARY_EPS 1e-8

#endif
