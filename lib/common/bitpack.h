/* Packing of b-bit unsigned values (1 <= b <= 32), least significant bit first, into bytes. */
#ifndef HCI_BITPACK_H
#define HCI_BITPACK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed for n values of `bits` bits, or 0 on overflow (with n > 0). */
size_t hci_packed_bytes(size_t n, unsigned bits);

/* Writes n values (each < 2^bits) starting at bit 0 of dst; dst must hold hci_packed_bytes. */
void hci_pack_bits(uint8_t *dst, const uint32_t *values, size_t n, unsigned bits);

/* Reads n values starting at value index `first`. */
void hci_unpack_bits(uint32_t *dst, const uint8_t *src, size_t first, size_t n, unsigned bits);

/* Reads the single value at index i. */
uint32_t hci_get_bits(const uint8_t *src, size_t i, unsigned bits);

#endif
