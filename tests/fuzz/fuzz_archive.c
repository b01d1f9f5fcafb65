/* libFuzzer target: the container reader (hc_archive_open_memory) and every tensor it yields.
 *
 * The first input byte selects a mode: bit 0 opens with HC_ARCHIVE_NO_VERIFY, bit 1 recomputes
 * the header and directory checksums first, so that mutations reach the directory parser and
 * the codecs' attach() instead of stopping at a checksum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive_format.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "hypercomp/hypercomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fix_crcs(uint8_t *buf, size_t size)
{
    if (size < HCZ_HEADER_SIZE)
        return;
    uint64_t off = hci_get_u64(buf + HCZ_H_DIR_OFFSET), len = hci_get_u64(buf + HCZ_H_DIR_LENGTH);
    if (off <= size && len <= size - off)
        hci_put_u32(buf + HCZ_H_DIR_CRC, hci_crc32c(0, buf + off, (size_t)len));
    uint32_t hs = hci_get_u32(buf + HCZ_H_HEADER_SIZE);
    if (hs >= 8 && hs <= size)
        hci_put_u32(buf + hs - 4, hci_crc32c(0, buf, hs - 4));
}

/* Uses everything an opened archive offers; decodes only tensors of a sane size so that the
 * fuzzer measures the library, not the caller's buffers. */
static void exercise(const hc_archive *a)
{
    for (size_t i = 0; i < hc_archive_metadata_count(a); i++) {
        const char *k = hc_archive_metadata_key(a, i);
        if (!k || !hc_archive_metadata(a, k))
            abort();
    }
    for (size_t i = 0; i < hc_archive_count(a); i++) {
        hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
        if (hc_archive_entry_get(&e, a, i) != HC_OK)
            abort();
        size_t found;
        if (hc_archive_find(&found, a, e.name) != HC_OK || found != i)
            abort();   /* names are unique, so lookup must give back the same index */
        hc_ctensor *ct = NULL;
        if (hc_archive_tensor(&ct, a, i) != HC_OK)
            continue;
        int64_t n = hc_ctensor_numel(ct), rows = hc_ctensor_rows(ct), cols = hc_ctensor_cols(ct);
        if (n <= (1 << 20)) {
            float *out = malloc((size_t)n * sizeof *out);
            float *x = calloc((size_t)cols, sizeof *x), *y = malloc((size_t)rows * sizeof *y);
            if (out && x && y) {
                hc_ctensor_decode(ct, HC_DTYPE_F32, out, (size_t)n * sizeof *out);
                for (int64_t c = 0; c < cols; c++)
                    x[c] = (float)(c % 3) - 1.0f;
                hc_ctensor_matvec(ct, x, y);
            }
            free(out);
            free(x);
            free(y);
            /* a tensor the reader accepted must survive serialisation */
            size_t ss = hc_ctensor_serialized_size(ct);
            uint8_t *blob = malloc(ss);
            hc_ctensor *back = NULL;
            if (blob && hc_ctensor_serialize(ct, blob, ss) == HC_OK && hc_ctensor_deserialize(&back, blob, ss) != HC_OK)
                abort();
            hc_ctensor_free(back);
            free(blob);
        }
        hc_ctensor_free(ct);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size);
    if (mode & 2)
        fix_crcs(buf, size);
    hc_archive *a = NULL;
    if (hc_archive_open_memory(&a, buf, size, (mode & 1) ? HC_ARCHIVE_NO_VERIFY : 0) == HC_OK) {
        exercise(a);
        hc_archive_close(a);
    } else if (a) {
        abort();   /* a failed open must not hand out an archive */
    }
    free(buf);
    return 0;
}
