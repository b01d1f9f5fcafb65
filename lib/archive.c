/* What the container writer and reader share: the format version, the HCT1 header that both
 * checksum, and the write-fault test hook. Layout: doc/format.md. */
#include "archive_format.h"

#include <string.h>

#include "common/bytes.h"
#include "hypercomp/archive.h"

uint32_t hc_archive_format_version(void)
{
    return (uint32_t)HC_ARCHIVE_VERSION_MAJOR * 256u + (uint32_t)HC_ARCHIVE_VERSION_MINOR;
}

size_t hci_hct_header(uint8_t *buf, uint16_t codec_id, uint8_t dtype, uint8_t ndim, const uint64_t *shape,
                      uint32_t params_len, uint64_t payload_len)
{
    memcpy(buf, HCT_MAGIC, 4);
    hci_put_u16(buf + 4, HCT_VERSION);
    hci_put_u16(buf + 6, codec_id);
    buf[8] = dtype;
    buf[9] = ndim;
    hci_put_u16(buf + 10, 0);
    hci_put_u32(buf + 12, params_len);
    hci_put_u64(buf + 16, payload_len);
    for (uint32_t i = 0; i < ndim; i++)
        hci_put_u64(buf + HCT_FIXED + 8u * i, shape[i]);
    return HCT_FIXED + 8u * ndim;
}

int hci_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0fu, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07u, min = 0x10000;
        } else {
            return 0;
        }
        if (len > n - i)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}
