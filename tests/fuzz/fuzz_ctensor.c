/* libFuzzer target: hc_ctensor_deserialize, and through it every registered codec's attach(),
 * decode() and matvec() on hostile parameters and payloads.
 *
 * The first input byte selects a mode: bit 0 rewrites the trailing checksum so that mutations
 * reach the codecs instead of stopping at the CRC. A tensor that is accepted must serialise
 * back to exactly the bytes it was read from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "hypercomp/hypercomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    if ((mode & 1) && size >= 4)
        hci_put_u32(buf + size - 4, hci_crc32c(0, buf, size - 4));
    hc_ctensor *ct = NULL;
    if (hc_ctensor_deserialize(&ct, buf, size) == HC_OK) {
        int64_t n = hc_ctensor_numel(ct), rows = hc_ctensor_rows(ct), cols = hc_ctensor_cols(ct);
        if (hc_ctensor_serialized_size(ct) != size)
            abort();
        uint8_t *again = malloc(size);
        if (again && (hc_ctensor_serialize(ct, again, size) != HC_OK || memcmp(again, buf, size) != 0))
            abort();
        free(again);
        if (n <= (1 << 20)) {
            float *out = malloc((size_t)n * sizeof *out);
            uint16_t *half = malloc((size_t)n * sizeof *half);
            float *x = calloc((size_t)cols, sizeof *x), *y = malloc((size_t)rows * sizeof *y);
            if (out && half && x && y) {
                hc_ctensor_decode(ct, HC_DTYPE_F32, out, (size_t)n * sizeof *out);
                hc_ctensor_decode(ct, HC_DTYPE_BF16, half, (size_t)n * sizeof *half);
                for (int64_t c = 0; c < cols; c++)
                    x[c] = 1.0f / (float)(c + 1);
                hc_ctensor_matvec(ct, x, y);
                hc_ctensor_set_threads(ct, 2);
                hc_ctensor_matvec(ct, x, y);
            }
            free(out);
            free(half);
            free(x);
            free(y);
        }
        hc_stats s = HC_STATS_INIT;
        hc_ctensor_stats(&s, ct);
        hc_ctensor_free(ct);
    } else if (ct) {
        abort();
    }
    free(buf);
    return 0;
}
