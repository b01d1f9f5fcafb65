/* CRC-32C (Castagnoli), as used by the serialised tensors and the container. */
#ifndef HCI_CRC32C_H
#define HCI_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0. crc32c("123456789") = 0xE3069283. */
uint32_t hci_crc32c(uint32_t crc, const void *data, size_t n);

#endif
