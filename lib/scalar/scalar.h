/* The scalar codecs and the option handling they share. */
#ifndef HCI_SCALAR_H
#define HCI_SCALAR_H

#include "codec.h"
#include "hypercomp/scalar.h"

extern const hci_codec hci_codec_f32;
extern const hci_codec hci_codec_fp16;
extern const hci_codec hci_codec_bf16;

/* Spec constructor for "f32", "fp16", "bf16" (and the other scalar names as they are added). */
int hci_scalar_from_spec(hc_compressor **out, hci_spec *spec);

/* The options a scalar compressor was created with. */
static inline const hc_scalar_options *hci_scalar_opts(const hc_compressor *c)
{
    return (const hc_scalar_options *)c->opts;
}

#endif
