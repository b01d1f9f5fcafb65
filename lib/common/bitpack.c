#include "common/bitpack.h"

#include <string.h>

size_t hci_packed_bytes(size_t n, unsigned bits)
{
    if (n > (SIZE_MAX - 7) / (bits ? bits : 1))
        return 0;
    return (n * bits + 7) / 8;
}

void hci_pack_bits(uint8_t *dst, const uint32_t *values, size_t n, unsigned bits)
{
    size_t bytes = hci_packed_bytes(n, bits);
    memset(dst, 0, bytes);
    uint64_t acc = 0;
    unsigned fill = 0;
    size_t o = 0;
    uint64_t mask = bits == 32 ? 0xffffffffull : ((1ull << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        acc |= ((uint64_t)values[i] & mask) << fill;
        fill += bits;
        while (fill >= 8) {
            dst[o++] = (uint8_t)acc;
            acc >>= 8;
            fill -= 8;
        }
    }
    if (fill)
        dst[o] = (uint8_t)acc;
}

uint32_t hci_get_bits(const uint8_t *src, size_t i, unsigned bits)
{
    size_t bit = i * bits;
    size_t byte = bit >> 3;
    unsigned shift = (unsigned)(bit & 7);
    uint64_t acc = 0;
    unsigned need = (shift + bits + 7) / 8;
    for (unsigned k = 0; k < need; k++)
        acc |= (uint64_t)src[byte + k] << (8 * k);
    uint64_t mask = bits == 32 ? 0xffffffffull : ((1ull << bits) - 1);
    return (uint32_t)((acc >> shift) & mask);
}

void hci_unpack_bits(uint32_t *dst, const uint8_t *src, size_t first, size_t n, unsigned bits)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = hci_get_bits(src, first + i, bits);
}
