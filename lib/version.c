/* Run-time version and dtype facts. */
#include "hypercomp/common.h"

uint32_t hc_version(void)
{
    return HC_VERSION_NUMBER;
}

const char *hc_version_string(void)
{
    return HC_VERSION_STRING;
}

size_t hc_dtype_size(hc_dtype dtype)
{
    switch (dtype) {
    case HC_DTYPE_F32: return 4;
    case HC_DTYPE_F16: return 2;
    case HC_DTYPE_BF16: return 2;
    default: return 0;
    }
}

const char *hc_dtype_name(hc_dtype dtype)
{
    switch (dtype) {
    case HC_DTYPE_F32: return "F32";
    case HC_DTYPE_F16: return "F16";
    case HC_DTYPE_BF16: return "BF16";
    default: return "?";
    }
}
