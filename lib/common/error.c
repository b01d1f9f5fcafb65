#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hypercomp/common.h"

#define HCI_ERROR_CAPACITY 1024

/* The only mutable state of the library besides test hooks: one message per thread. */
static _Thread_local char error_message[HCI_ERROR_CAPACITY] = "no error";

int hci_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return code;
}

int hci_oom(size_t bytes)
{
    snprintf(error_message, sizeof error_message, "out of memory allocating %zu bytes", bytes);
    return HC_ENOMEM;
}

void hci_error_set(const char *msg)
{
    snprintf(error_message, sizeof error_message, "%s", msg ? msg : "unknown error");
}

const char *hc_last_error(void)
{
    return error_message;
}

const char *hc_status_name(int status)
{
    switch (status) {
    case HC_OK: return "HC_OK";
    case HC_EINVAL: return "HC_EINVAL";
    case HC_ENOMEM: return "HC_ENOMEM";
    case HC_EIO: return "HC_EIO";
    case HC_EFORMAT: return "HC_EFORMAT";
    case HC_EVERSION: return "HC_EVERSION";
    case HC_ECANCELLED: return "HC_ECANCELLED";
    case HC_EUNSUPPORTED: return "HC_EUNSUPPORTED";
    case HC_EQUALITY: return "HC_EQUALITY";
    case HC_ENOTFOUND: return "HC_ENOTFOUND";
    default: return "HC_UNKNOWN";
    }
}
