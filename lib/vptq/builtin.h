/* VPTQ built-in codebooks: constant tables shipped in the library (lib/vptq/builtin_tables.c,
 * generated once by tools/gen_vptq_codebooks.c), so a tensor that uses one stores no codebook. */
#ifndef HCI_VPTQ_BUILTIN_H
#define HCI_VPTQ_BUILTIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct hci_vq_builtin {
    uint32_t v, bits;
    const uint16_t *cb;  /* 2^bits x v fp16 values, entry-major */
} hci_vq_builtin;

extern const hci_vq_builtin hci_vq_builtins[];
extern const size_t hci_vq_nbuiltins;

/* The built-in codebook of 2^bits vectors of length v, or NULL when there is none. */
const uint16_t *hci_vq_builtin_table(uint32_t v, uint32_t bits);

/* Writes that codebook as floats (2^bits x v); the table must exist. */
void hci_vq_builtin_load(float *cb, uint32_t v, uint32_t bits);

#endif
