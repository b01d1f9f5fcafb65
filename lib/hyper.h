/* The trajectory codecs (poly, fourier, ergodic) and the options they share. */
#ifndef HCI_HYPER_H
#define HCI_HYPER_H

#include "codec.h"
#include "hypercomp/hyper.h"

extern const hci_codec hci_codec_hyper_poly;
extern const hci_codec hci_codec_hyper_fourier;
extern const hci_codec hci_codec_hyper_ergodic;

/* Spec constructor for "hyper". */
int hci_hyper_from_spec(hc_compressor **out, hci_spec *spec);

/* The options a trajectory compressor was created with (index_bits resolved). */
static inline const hc_hyper_options *hci_hyper_opts(const hc_compressor *c)
{
    return (const hc_hyper_options *)c->opts;
}

#endif
