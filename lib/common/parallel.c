/* The parallel loop. Its ranges run on a process-wide pool of worker threads that start on first
 * use and sleep between calls, because starting and joining a thread costs tens of microseconds
 * (37 us here), as much as a whole matvec of a small tensor. The caller runs the first range and
 * then polls briefly for the workers before it sleeps (doc/benchmarks.md, bench_parallel, has
 * the numbers behind both choices). One caller at a time owns the pool; a call that finds it
 * owned (another application thread, or a loop nested in a range) starts threads of its own for
 * that call instead, as every call did before the pool. */
#include "common/parallel.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "hypercomp/common.h"

#define HCI_MAX_THREADS 256

typedef struct range {
    hci_range_fn fn;
    void *ctx;
    int64_t begin, end;
    int status;
    char message[512];
} range;

static void run_range(range *r)
{
    r->status = r->begin < r->end ? r->fn(r->ctx, r->begin, r->end) : HC_OK;
    if (r->status != HC_OK)
        snprintf(r->message, sizeof r->message, "%s", hc_last_error());
}

/* ---- the pool ---- */

/* How many times (about 19 ns each here) a caller polls for its workers to finish before it
 * sleeps: about 100 us. */
#define CALLER_POLLS 5000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static struct {
    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t wake;    /* a new job, or stop */
    pthread_cond_t done;    /* pending reached 0 */
    pthread_t thread[HCI_MAX_THREADS];
    uint32_t workers;       /* started; worker i runs range i + 1 of a job */
    int owned;              /* a caller's job is in flight */
    int stop;
    uint64_t generation;    /* bumped per job */
    uint64_t born_at;       /* the generation before the job that starts new workers */
    range *ranges;          /* the job: ranges[1 .. parts - 1] are the workers' */
    uint32_t parts;
    _Atomic uint32_t pending; /* workers' ranges not finished (written under the lock) */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

static void *worker_main(void *arg)
{
    const uint32_t me = (uint32_t)(uintptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    /* A new worker was started for the job now in flight (which cannot end without it), so the
     * generation it has seen is the one before that job. */
    uint64_t seen = pool.born_at;
    for (;;) {
        /* Workers sleep between jobs rather than poll: polling for as little as 19 us slowed
         * the application's own threads (OpenBLAS's sgemv on the same 2 cores took 0.045
         * instead of 0.032 ms) and bought nothing here. */
        while (!pool.stop && pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stop)
            break;
        seen = pool.generation;
        if (me + 1 >= pool.parts)
            continue; /* no range for this worker in this job */
        range *r = &pool.ranges[me + 1];
        pthread_mutex_unlock(&pool.lock);
        run_range(r);
        pthread_mutex_lock(&pool.lock);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Workers take no signals: the application's threads handle them. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* fork() copies the pool but not its workers: the child forgets them and starts its own when it
 * needs them. The lock is held across fork() so that the copy is consistent. */
static void at_fork_prepare(void) { pthread_mutex_lock(&pool.lock); }
static void at_fork_parent(void) { pthread_mutex_unlock(&pool.lock); }
static void at_fork_child(void)
{
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.workers = 0;
    pool.owned = 0;
    pool.pending = 0;
    pthread_mutex_unlock(&pool.lock);
}

static pthread_once_t at_fork_once = PTHREAD_ONCE_INIT;
static void register_at_fork(void) { pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child); }

/* Stops and joins the workers when the library is unloaded or the process exits, so no worker
 * runs unmapped code after dlclose() and leak checkers see every thread joined. */
__attribute__((destructor)) static void pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    uint32_t n = pool.workers;
    pool.stop = 1;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(pool.thread[i], NULL);
    pool.workers = 0;
}

/* Runs ranges[1 .. parts - 1] on the pool while the caller runs ranges[0]. Returns 0 when the
 * pool is owned or stopping (nothing has run then). Workers that cannot be started leave their
 * ranges to the caller. */
static int run_on_pool(range *ranges, uint32_t parts)
{
    pthread_once(&at_fork_once, register_at_fork);
    pthread_mutex_lock(&pool.lock);
    if (pool.owned || pool.stop) {
        pthread_mutex_unlock(&pool.lock);
        return 0;
    }
    pool.born_at = pool.generation;
    while (pool.workers < parts - 1 &&
           start_thread(&pool.thread[pool.workers], worker_main, (void *)(uintptr_t)pool.workers) == 0)
        pool.workers++;
    uint32_t pooled = pool.workers < parts - 1 ? pool.workers + 1 : parts;
    pool.owned = 1;
    pool.ranges = ranges;
    pool.parts = pooled;
    pool.pending = pooled - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    run_range(&ranges[0]);
    for (uint32_t i = pooled; i < parts; i++)
        run_range(&ranges[i]);

    /* The caller polls a while before it sleeps: its thread has nothing else to do, and a
     * sleeping thread's wake-up costs tens of microseconds on a VM. */
    for (int i = 0; i < CALLER_POLLS && atomic_load_explicit(&pool.pending, memory_order_acquire); i++)
        cpu_relax();
    pthread_mutex_lock(&pool.lock);
    while (pool.pending)
        pthread_cond_wait(&pool.done, &pool.lock);
    pool.owned = 0;
    pool.ranges = NULL;
    pool.parts = 0;
    pthread_mutex_unlock(&pool.lock);
    return 1;
}

/* ---- the loop ---- */

typedef struct spawned {
    pthread_t thread;
    int running;
} spawned;

static void *spawned_main(void *arg)
{
    run_range(arg);
    return NULL;
}

/* Threads of this call's own, for when the pool is owned. */
static int run_on_new_threads(range *ranges, uint32_t parts)
{
    spawned *t = hci_calloc(parts, sizeof *t);
    if (!t)
        return HC_ENOMEM;
    /* a range whose thread cannot start runs here instead */
    for (uint32_t i = 1; i < parts; i++) {
        if (ranges[i].begin >= ranges[i].end)
            continue; /* (n = 5 on 4 threads: ranges of 2, 2, 1 and 0) */
        t[i].running = start_thread(&t[i].thread, spawned_main, &ranges[i]) == 0;
        if (!t[i].running)
            run_range(&ranges[i]);
    }
    run_range(&ranges[0]);
    for (uint32_t i = 1; i < parts; i++)
        if (t[i].running)
            pthread_join(t[i].thread, NULL);
    hci_free(t);
    return HC_OK;
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

    range *rs = hci_calloc(parts, sizeof *rs);
    if (!rs)
        return HC_ENOMEM;
    int64_t chunk = (n + parts - 1) / parts;
    for (uint32_t i = 0; i < parts; i++) {
        rs[i].fn = fn;
        rs[i].ctx = ctx;
        rs[i].begin = (int64_t)i * chunk < n ? (int64_t)i * chunk : n;
        rs[i].end = rs[i].begin + chunk < n ? rs[i].begin + chunk : n;
    }
    int status = run_on_pool(rs, parts) ? HC_OK : run_on_new_threads(rs, parts);
    for (uint32_t i = 0; status == HC_OK && i < parts; i++) {
        if (rs[i].status != HC_OK) {
            status = rs[i].status;
            hci_error_set(rs[i].message);
        }
    }
    hci_free(rs);
    return status;
}
