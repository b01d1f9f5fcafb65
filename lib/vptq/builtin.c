/* Lookup of the VPTQ built-in codebooks (the tables are in builtin_tables.c). */
#include "common/half.h"
#include "vptq/builtin.h"

const uint16_t *hci_vq_builtin_table(uint32_t v, uint32_t bits)
{
    for (size_t i = 0; i < hci_vq_nbuiltins; i++)
        if (hci_vq_builtins[i].v == v && hci_vq_builtins[i].bits == bits)
            return hci_vq_builtins[i].cb;
    return NULL;
}

void hci_vq_builtin_load(float *cb, uint32_t v, uint32_t bits)
{
    const uint16_t *t = hci_vq_builtin_table(v, bits);
    for (size_t i = 0; t && i < ((size_t)1 << bits) * v; i++)
        cb[i] = hci_f16_to_f32(t[i]);
}
