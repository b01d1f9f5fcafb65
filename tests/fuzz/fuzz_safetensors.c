/* libFuzzer target: the safetensors reader (hc_safetensors_open) on arbitrary files. The input
 * becomes an in-memory file (memfd), so the reader maps it exactly as it maps a file on disk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hypercomp/hypercomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)k;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    hc_safetensors *st = NULL;
    if (hc_safetensors_open(&st, path) == HC_OK) {
        for (size_t i = 0; i < hc_safetensors_metadata_count(st); i++) {
            const char *k = hc_safetensors_metadata_key(st, i);
            if (!k || !hc_safetensors_metadata(st, k))
                abort();
        }
        for (size_t i = 0; i < hc_safetensors_count(st); i++) {
            const char *name = hc_safetensors_name(st, i);
            size_t found;
            if (!name || hc_safetensors_find(&found, st, name) != HC_OK || found != i)
                abort();
            int64_t shape[HC_SAFETENSORS_MAX_DIMS];
            hc_safetensors_shape(shape, st, i);
            (void)hc_safetensors_dtype(st, i);
            (void)hc_safetensors_ndim(st, i);
            hc_tensor_view v = HC_TENSOR_VIEW_INIT;
            if (hc_safetensors_tensor(&v, st, i) != HC_OK)
                continue;
            /* touch every byte the view claims, so an out-of-bounds view is caught */
            int64_t n = 1;
            for (uint32_t d = 0; d < v.ndim; d++)
                n *= v.shape[d];
            size_t bytes = (size_t)n * hc_dtype_size(v.dtype);
            const volatile uint8_t *p = v.data;
            uint8_t acc = 0;
            for (size_t b = 0; b < bytes; b++)
                acc ^= p[b];
            (void)acc;
        }
        hc_safetensors_close(st);
    } else if (st) {
        abort();
    }
    close(fd);
    return 0;
}
