/* What the safetensors reader and writer share: the format's limits and its dtype table.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON (an object mapping tensor
 * names to {dtype, shape, data_offsets} plus an optional "__metadata__" object of strings,
 * possibly padded with spaces), then the data section that data_offsets index. */
#ifndef HCI_SAFETENSORS_H
#define HCI_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/io.h"

/* The writer pads the header with spaces so that the data section starts 8-byte aligned. */
#define HCI_ST_ALIGN 8u

/* A dtype as a file names it: the byte size of one element, and the library dtype when the
 * library can read it (readable = 0 for the others, which are listed but not viewable). */
typedef struct hci_st_dtype {
    const char *name;
    uint32_t size;
    int readable;
    hc_dtype dtype;
} hci_st_dtype;

/* The entry named `name` (exact, case-sensitive), or NULL for a dtype the format does not have. */
const hci_st_dtype *hci_st_dtype_by_name(const char *name);

#endif
