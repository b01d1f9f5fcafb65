#include "common/half.h"

#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t hci_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;

    if (exp == 0xffu) /* Inf stays Inf; NaN keeps a quiet payload bit */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) /* overflow rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        /* subnormal half: shift the full significand, round to nearest even */
        if (e < -10)
            return (uint16_t)sign;
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t mid = 1u << (shift - 1u);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is the correct rounding, up to infinity */
    return (uint16_t)(sign | h);
}

float hci_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0)
            return bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t hci_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)((x >> 16) | 0x40u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

float hci_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

void hci_to_f32(float *dst, const void *src, hc_dtype dtype, size_t n)
{
    const uint16_t *s16 = src;
    switch (dtype) {
    case HC_DTYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case HC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s16 + i, sizeof h);
            dst[i] = hci_f16_to_f32(h);
        }
        break;
    case HC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s16 + i, sizeof h);
            dst[i] = hci_bf16_to_f32(h);
        }
        break;
    }
}

void hci_from_f32(void *dst, hc_dtype dtype, const float *src, size_t n)
{
    uint16_t *d16 = dst;
    switch (dtype) {
    case HC_DTYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case HC_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            d16[i] = hci_f32_to_f16(src[i]);
        break;
    case HC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            d16[i] = hci_f32_to_bf16(src[i]);
        break;
    }
}
