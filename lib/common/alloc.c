#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* Fault injection for the out-of-memory tests; thread-local so parallel tests stay independent. */
static _Thread_local long fail_countdown;

void hci_alloc_fail_after(long n)
{
    fail_countdown = n;
}

static int injected_failure(void)
{
    if (fail_countdown > 0 && --fail_countdown == 0)
        return 1;
    return 0;
}

int hci_mul_size(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

int hci_add_size(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return 0;
    *out = a + b;
    return 1;
}

void *hci_malloc(size_t bytes)
{
    void *p = injected_failure() ? NULL : malloc(bytes ? bytes : 1);
    if (!p)
        hci_oom(bytes);
    return p;
}

void *hci_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (!hci_mul_size(count, size, &bytes)) {
        hci_oom(SIZE_MAX);
        return NULL;
    }
    void *p = injected_failure() ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p)
        hci_oom(bytes);
    return p;
}

void *hci_malloc_array(size_t count, size_t size)
{
    size_t bytes;
    if (!hci_mul_size(count, size, &bytes)) {
        hci_oom(SIZE_MAX);
        return NULL;
    }
    return hci_malloc(bytes);
}

void *hci_aligned_array(size_t count, size_t size)
{
    size_t bytes;
    if (!hci_mul_size(count, size, &bytes) || bytes > SIZE_MAX - 64) {
        hci_oom(SIZE_MAX);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (!injected_failure() && posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        p = NULL;
    if (!p)
        hci_oom(bytes);
    return p;
}

void hci_free(void *p)
{
    free(p);
}

char *hci_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = hci_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
