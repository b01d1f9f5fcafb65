/* The .hcz container layout (doc/format.md), shared by the writer and the reader. */
#ifndef HCI_ARCHIVE_FORMAT_H
#define HCI_ARCHIVE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/common.h"

#define HCZ_MAGIC "\x89HCZ\r\n\x1a\n"
#define HCZ_MAGIC_LEN 8u
#define HCZ_HEADER_SIZE 64u          /* version 1.0 */
#define HCZ_MAX_HEADER_SIZE 4096u
#define HCZ_ALIGN 64u

/* header field offsets */
#define HCZ_H_MAJOR 8
#define HCZ_H_MINOR 10
#define HCZ_H_HEADER_SIZE 12
#define HCZ_H_FILE_SIZE 16
#define HCZ_H_DIR_OFFSET 24
#define HCZ_H_DIR_LENGTH 32
#define HCZ_H_TENSOR_COUNT 40
#define HCZ_H_META_COUNT 44
#define HCZ_H_REQUIRED_FLAGS 48
#define HCZ_H_DIR_CRC 52
#define HCZ_H_OPTIONAL_FLAGS 56

/* metadata entry: len, key_len, value_len, key, value */
#define HCZ_META_FIXED 12u
#define HCZ_MAX_KEY 65535u
#define HCZ_MAX_VALUE (1u << 24)

/* tensor entry fixed part; shape and name follow */
#define HCZ_T_FIXED 96u
#define HCZ_T_CODEC 4
#define HCZ_T_DTYPE 6
#define HCZ_T_NDIM 7
#define HCZ_T_NAME_LEN 8
#define HCZ_T_FLAGS 10
#define HCZ_T_PARAMS_LEN 12
#define HCZ_T_PARAMS_OFFSET 16
#define HCZ_T_PAYLOAD_OFFSET 24
#define HCZ_T_PAYLOAD_LEN 32
#define HCZ_T_CRC 40
#define HCZ_T_RESERVED 44
#define HCZ_T_QUALITY 48             /* six f64: rel_rmse, snr_db, max_abs_err, cosine, sparsity, seconds */
#define HCZ_MAX_NAME 4096u

#define HCZ_TF_QUALITY 0x0001u       /* entry flag: the quality fields are known */
#define HCZ_TF_REQUIRED_MASK 0xff00u /* entry flags a reader must understand */

/* The HCT1 serialised-tensor header (lib/ctensor.c), rebuilt to checksum a container tensor
 * exactly as its serialised form would be. */
#define HCT_MAGIC "HCT1"
#define HCT_VERSION 1u
#define HCT_FIXED 24u
#define HCT_MAX_PARAMS (1u << 20)

/* Writes the HCT1 header of a tensor into buf (HCT_FIXED + 8 * ndim bytes); returns its length. */
size_t hci_hct_header(uint8_t *buf, uint16_t codec_id, uint8_t dtype, uint8_t ndim, const uint64_t *shape,
                      uint32_t params_len, uint64_t payload_len);

/* 1 when s[0, n) is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF) and
 * holds no NUL byte: names, keys and values must be, in files and from callers alike. */
int hci_utf8_valid(const uint8_t *s, size_t n);

/* Test hook: make the n-th next write, flush or rename step of an archive writer on this thread
 * fail with EIO (n = 0 disables). */
void hci_archive_fail_write_after(long n);

#endif
