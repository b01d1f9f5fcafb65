/* Allocation with overflow checks, 64-byte alignment and an error message on failure. */
#ifndef HCI_ALLOC_H
#define HCI_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Each returns NULL and sets the thread's message (HC_ENOMEM) on failure or overflow. */
void *hci_malloc(size_t bytes);
void *hci_calloc(size_t count, size_t size);
void *hci_malloc_array(size_t count, size_t size);
/* 64-byte aligned (cache line, AVX-512 vector); release with hci_free like the others. */
void *hci_aligned_array(size_t count, size_t size);
void hci_free(void *p);
char *hci_strdup(const char *s);

/* a * b into *out; returns 0 on overflow. */
int hci_mul_size(size_t a, size_t b, size_t *out);
/* a + b into *out; returns 0 on overflow. */
int hci_add_size(size_t a, size_t b, size_t *out);

/* Test hook: make the n-th next allocation on this thread fail (n = 0 disables). */
void hci_alloc_fail_after(long n);

#endif
