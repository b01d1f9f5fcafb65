/* Thread-local error messages: every failing path sets one with the value that was wrong. */
#ifndef HCI_ERROR_H
#define HCI_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define HCI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HCI_PRINTF(a, b)
#endif

/* Sets the calling thread's message and returns code, so callers can `return hci_fail(...)`. */
int hci_fail(int code, const char *fmt, ...) HCI_PRINTF(2, 3);

/* Out-of-memory: formats into the thread-local buffer, allocates nothing. Returns HC_ENOMEM. */
int hci_oom(size_t bytes);

/* Copies a message verbatim (used to carry a worker thread's message to the caller). */
void hci_error_set(const char *msg);

#endif
