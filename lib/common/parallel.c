#include "common/parallel.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "hypercomp/common.h"

#define HCI_MAX_THREADS 256

typedef struct worker {
    pthread_t thread;
    int running;            /* a thread was started and must be joined */
    hci_range_fn fn;
    void *ctx;
    int64_t begin, end;
    int status;
    char message[512];
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    w->status = w->fn(w->ctx, w->begin, w->end);
    if (w->status != HC_OK)
        snprintf(w->message, sizeof w->message, "%s", hc_last_error());
    return NULL;
}

uint32_t hci_resolve_threads(uint32_t threads)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (uint32_t)n : 1u;
    }
    return threads > HCI_MAX_THREADS ? HCI_MAX_THREADS : threads;
}

int hci_parallel_for(uint32_t threads, int64_t n, int64_t min_chunk, hci_range_fn fn, void *ctx)
{
    if (n <= 0)
        return HC_OK;
    threads = hci_resolve_threads(threads);
    if (min_chunk < 1)
        min_chunk = 1;
    int64_t max_parts = (n + min_chunk - 1) / min_chunk;
    uint32_t parts = (int64_t)threads < max_parts ? threads : (uint32_t)max_parts;
    if (parts <= 1)
        return fn(ctx, 0, n);

    worker *ws = hci_calloc(parts, sizeof *ws);
    if (!ws)
        return HC_ENOMEM;
    int64_t chunk = (n + parts - 1) / parts;
    for (uint32_t i = 0; i < parts; i++) {
        ws[i].fn = fn;
        ws[i].ctx = ctx;
        ws[i].begin = (int64_t)i * chunk < n ? (int64_t)i * chunk : n;
        ws[i].end = ws[i].begin + chunk < n ? ws[i].begin + chunk : n;
    }
    /* Ranges 1.. on new threads; a range whose thread cannot start runs here instead. */
    for (uint32_t i = 1; i < parts; i++) {
        if (ws[i].begin >= ws[i].end)
            continue;
        ws[i].running = pthread_create(&ws[i].thread, NULL, run_worker, &ws[i]) == 0;
        if (!ws[i].running)
            run_worker(&ws[i]);
    }
    run_worker(&ws[0]);
    for (uint32_t i = 1; i < parts; i++)
        if (ws[i].running)
            pthread_join(ws[i].thread, NULL);

    int status = HC_OK;
    for (uint32_t i = 0; i < parts; i++) {
        if (ws[i].status != HC_OK) {
            status = ws[i].status;
            hci_error_set(ws[i].message);
            break;
        }
    }
    hci_free(ws);
    return status;
}
