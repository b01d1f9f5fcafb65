/* Internal fast path of the K-bit Fibonacci LFSR (public API in hypercomp/seedlm.h). */
#ifndef HCI_LFSR_H
#define HCI_LFSR_H

#include <stdint.h>

/* The state bits whose parity is the feedback bit: bit K - t for each term x^t, t >= 1. */
uint32_t hci_lfsr_tap_mask(uint32_t k);

/* 1 when k is a supported length and state a valid nonzero K-bit state. */
int hci_lfsr_valid(uint32_t k, uint32_t state);

static inline uint32_t hci_lfsr_step(uint32_t state, uint32_t k, uint32_t tap_mask)
{
    uint32_t fb = (uint32_t)__builtin_parity(state & tap_mask);
    return (state >> 1) | (fb << (k - 1));
}

/* (V - 2^(K-1)) / (2^(K-1) - 1), computed in double and rounded once. */
static inline float hci_lfsr_value(uint32_t k, uint32_t state)
{
    double half = (double)(1ull << (k - 1));
    return (float)(((double)state - half) / (half - 1.0));
}

#endif
