/* Option helpers for compress, decompress and info (see cmd_args.h). */
#include "cmd_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int arg_value(int argc, char **argv, int *i, const char *opt, const char *sopt, const char **value,
              const char *cmd)
{
    const char *a = argv[*i];
    size_t n = strlen(opt);
    if (strncmp(a, opt, n) == 0 && a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (strcmp(a, opt) != 0 && !(sopt && strcmp(a, sopt) == 0))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hypercomp %s: %s needs a value (see `hypercomp %s --help`)\n", cmd, opt, cmd);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int arg_uint(const char *cmd, const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) {
        fprintf(stderr, "hypercomp %s: %s '%s' is not a whole number from 0 to %llu\n", cmd, opt, s,
                (unsigned long long)max);
        return 0;
    }
    *out = v;
    return 1;
}

int arg_dtype(const char *s, hc_dtype *out)
{
    if (strcasecmp(s, "f32") == 0 || strcasecmp(s, "float32") == 0)
        *out = HC_DTYPE_F32;
    else if (strcasecmp(s, "f16") == 0 || strcasecmp(s, "fp16") == 0 || strcasecmp(s, "float16") == 0)
        *out = HC_DTYPE_F16;
    else if (strcasecmp(s, "bf16") == 0 || strcasecmp(s, "bfloat16") == 0)
        *out = HC_DTYPE_BF16;
    else
        return 0;
    return 1;
}

int exit_code_for(int status)
{
    return status == HC_OK ? CLI_OK : status == HC_EQUALITY ? CLI_QUALITY : CLI_FAILED;
}

