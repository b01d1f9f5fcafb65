/* binary16 and bfloat16 conversions, round to nearest even, and bulk dtype conversion. */
#ifndef HCI_HALF_H
#define HCI_HALF_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/common.h"

uint16_t hci_f32_to_f16(float f);
float hci_f16_to_f32(uint16_t h);
uint16_t hci_f32_to_bf16(float f);
float hci_bf16_to_f32(uint16_t h);

/* Converts n elements of src (dtype) to binary32. */
void hci_to_f32(float *dst, const void *src, hc_dtype dtype, size_t n);
/* Converts n binary32 values to dtype. */
void hci_from_f32(void *dst, hc_dtype dtype, const float *src, size_t n);

#endif
