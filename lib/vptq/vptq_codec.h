/* What the registry needs of the VPTQ codec. */
#ifndef HCI_VPTQ_CODEC_H
#define HCI_VPTQ_CODEC_H

#include "codec.h"

extern const hci_codec hci_codec_vptq;

/* Spec constructor for "vptq". */
int hci_vptq_from_spec(hc_compressor **out, hci_spec *spec);

#endif
