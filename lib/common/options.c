#include "common/options.h"

#include <string.h>

#include "common/error.h"
#include "hypercomp/common.h"

static int check_size(uint32_t size, size_t full_size, size_t min_size, const char *type, const char *hint)
{
    if (size > full_size)
        return hci_fail(HC_EVERSION, "%s struct_size %u is larger than this library's %zu", type, size, full_size);
    if (size < min_size)
        return hci_fail(HC_EINVAL, "%s struct_size %u is too small%s", type, size, hint);
    return HC_OK;
}

int hci_options_init(void *opts, uint32_t struct_size, const void *defaults, size_t full_size, size_t min_size,
                     const char *type)
{
    if (!opts)
        return hci_fail(HC_EINVAL, "%s_init: opts is NULL", type);
    int rc = check_size(struct_size, full_size, min_size, type, "");
    if (rc != HC_OK)
        return rc;
    memcpy(opts, defaults, struct_size);
    memcpy(opts, &struct_size, sizeof struct_size);
    return HC_OK;
}

int hci_options_merge(void *merged, size_t full_size, const void *user, size_t min_size, const char *type)
{
    if (user) {
        uint32_t size;
        memcpy(&size, user, sizeof size);
        int rc = check_size(size, full_size, min_size, type, " (was it initialised?)");
        if (rc != HC_OK)
            return rc;
        memcpy(merged, user, size);
    }
    uint32_t full = (uint32_t)full_size;
    memcpy(merged, &full, sizeof full);
    return HC_OK;
}
