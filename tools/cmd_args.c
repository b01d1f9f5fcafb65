/* Small command-line helpers shared by compress, decompress and info. */
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

void report_failure(const char *cmd, int status)
{
    fprintf(stderr, "hypercomp %s: %s (%s)\n", cmd, hc_last_error(), hc_status_name(status));
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {   /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void to_f32(float *out, const void *data, hc_dtype dtype, size_t n)
{
    const uint16_t *h = data;
    if (dtype == HC_DTYPE_F32) {
        memcpy(out, data, n * sizeof(float));
    } else if (dtype == HC_DTYPE_F16) {
        for (size_t i = 0; i < n; i++)
            out[i] = f16_to_f32(h[i]);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)h[i] << 16;
            memcpy(&out[i], &bits, 4);
        }
    }
}

double view_sum_sq(const hc_tensor_view *v, int64_t numel)
{
    double acc = 0;
    enum { CHUNK = 4096 };
    float buf[CHUNK];
    size_t es = hc_dtype_size(v->dtype);
    for (int64_t i = 0; i < numel; i += CHUNK) {
        size_t n = (size_t)(numel - i < CHUNK ? numel - i : CHUNK);
        to_f32(buf, (const char *)v->data + (size_t)i * es, v->dtype, n);
        for (size_t k = 0; k < n; k++)
            acc += (double)buf[k] * buf[k];
    }
    return acc;
}
