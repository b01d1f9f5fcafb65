/* A parallel loop over [0, n) with pthreads; a worker's error message reaches the caller. */
#ifndef HCI_PARALLEL_H
#define HCI_PARALLEL_H

#include <stdint.h>

/* Work on [begin, end); return HC_OK or a negative status (with hci_fail). */
typedef int (*hci_range_fn)(void *ctx, int64_t begin, int64_t end);

/* 0 means the number of online CPUs; the result is at least 1. */
uint32_t hci_resolve_threads(uint32_t threads);

/* Splits [0, n) into at most `threads` contiguous ranges of at least min_chunk items (the last
 * may be shorter) and runs fn on each, the first on the calling thread. Returns the first
 * failure's status with its message, or HC_OK. Ranges are fixed by (n, threads, min_chunk), so
 * results that depend only on the range are deterministic for a given thread count. */
int hci_parallel_for(uint32_t threads, int64_t n, int64_t min_chunk, hci_range_fn fn, void *ctx);

#endif
