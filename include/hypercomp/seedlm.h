/**
 * @file seedlm.h
 * @brief SeedLM: weight blocks coded as LFSR seeds plus a few quantised coefficients, and the
 *        LFSR generator that regenerates the pseudo-random bases.
 *
 * SeedLM (Shafipour et al., arXiv 2410.10714, ICLR 2025) cuts a flattened tensor into blocks w
 * of C values and stores, per block, a K-bit seed s and P coefficients t so that w ~ U(s) t,
 * where U(s) is a C x P matrix filled row by row with successive states of a K-bit LFSR started
 * at s and mapped to [-1, 1] by U = (V - 2^(K-1)) / (2^(K-1) - 1). The coefficients are signed
 * mantissas sharing one exponent per block; the seed is the one whose quantised reconstruction
 * has the least error. The method and the bit layout are in doc/algorithms.md, "SeedLM".
 *
 * The LFSR functions are pure and thread-safe. A SeedLM compressor may be used by one thread at
 * a time; distinct compressors are independent.
 */
#ifndef HYPERCOMP_SEEDLM_H
#define HYPERCOMP_SEEDLM_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief Smallest supported LFSR length K. */
#define HC_LFSR_MIN_BITS 8
/** @brief Largest supported LFSR length K. */
#define HC_LFSR_MAX_BITS 32

/** @brief #HC_LFSR_MIN_BITS as a function, for FFI users. @return 8. */
HC_API uint32_t hc_lfsr_min_bits(void);
/** @brief #HC_LFSR_MAX_BITS as a function, for FFI users. @return 32. */
HC_API uint32_t hc_lfsr_max_bits(void);

/**
 * @brief The maximal-length feedback polynomial used for a K-bit LFSR.
 *
 * Bit i of the result is the coefficient of x^i, so bit K and bit 0 are always set. K = 16
 * uses x^16 + x^14 + x^13 + x^11 + 1. Every polynomial is primitive over GF(2), so a nonzero
 * state runs through all 2^K - 1 nonzero states before it repeats (doc/algorithms.md lists them).
 * @param k The register length, #HC_LFSR_MIN_BITS to #HC_LFSR_MAX_BITS.
 * @return The polynomial, or 0 for an unsupported k.
 */
HC_API uint64_t hc_lfsr_polynomial(uint32_t k);

/**
 * @brief One step of the K-bit Fibonacci LFSR.
 *
 * With the polynomial x^K + sum_j a_j x^j + 1, the new bit is the parity of the state bits
 * K - t for every term x^t with t >= 1 (so the term x^K taps bit 0); the state shifts right by
 * one and the new bit enters at bit K - 1. For K = 16, 0xACE1 is followed by 0x5670.
 * @param k The register length, #HC_LFSR_MIN_BITS to #HC_LFSR_MAX_BITS.
 * @param state The current state, 1 to 2^K - 1.
 * @return The next state, or 0 for an unsupported k or a state outside [1, 2^K - 1].
 */
HC_API uint32_t hc_lfsr_next(uint32_t k, uint32_t state);

/**
 * @brief Writes n successive states starting with the seed itself: out[0] = seed,
 *        out[i] = hc_lfsr_next(k, out[i - 1]).
 * @param out Receives n states.
 * @param n Number of states.
 * @param k The register length, #HC_LFSR_MIN_BITS to #HC_LFSR_MAX_BITS.
 * @param seed The start state, 1 to 2^K - 1.
 * @return #HC_OK, or #HC_EINVAL for NULL out (with n > 0), a bad k or a bad seed.
 */
HC_API int hc_lfsr_states(uint32_t *out, size_t n, uint32_t k, uint32_t seed);

/**
 * @brief The value a state contributes to U: (V - 2^(K-1)) / (2^(K-1) - 1), in [-1, 1].
 * @param k The register length.
 * @param state A state, 1 to 2^K - 1.
 * @return The value rounded to float, or 0 for a bad k or state.
 */
HC_API float hc_lfsr_value(uint32_t k, uint32_t state);

/**
 * @brief Fills U(seed), a rows x cols matrix (row-major), row by row with rows * cols successive
 *        states starting at the seed, each mapped by hc_lfsr_value().
 * @param out Receives rows * cols floats.
 * @param k The register length.
 * @param seed The seed, 1 to 2^K - 1.
 * @param rows C, the block length (at least 1).
 * @param cols P, the number of coefficients (at least 1).
 * @return #HC_OK or #HC_EINVAL naming the bad argument.
 */
HC_API int hc_lfsr_fill_u(float *out, uint32_t k, uint32_t seed, uint32_t rows, uint32_t cols);

/**
 * @brief Fills U for `count` seeds met in generator order: first_seed, hc_lfsr_next(first_seed), ...
 *
 * Seed i of the range starts where seed i - 1 did, one state later, so all the matrices are
 * windows of one state sequence; this runs one LFSR step per matrix plus rows * cols to start.
 * Matrix i is written at out + i * rows * cols.
 * @param out Receives count * rows * cols floats.
 * @param k The register length.
 * @param first_seed The first seed, 1 to 2^K - 1.
 * @param count Number of seeds (at most 2^K - 1).
 * @param rows C.
 * @param cols P.
 * @return #HC_OK or #HC_EINVAL naming the bad argument.
 */
HC_API int hc_lfsr_fill_u_range(float *out, uint32_t k, uint32_t first_seed, uint32_t count, uint32_t rows,
                                uint32_t cols);

/** @brief Options of the SeedLM compressor. Initialise with #HC_SEEDLM_OPTIONS_INIT. */
typedef struct hc_seedlm_options {
    uint32_t struct_size;    /**< sizeof(hc_seedlm_options) as the caller was compiled. */
    uint32_t block_size;     /**< C: values per block, 1 to 64 (default 8; spec key C). */
    uint32_t latent_dim;     /**< P: coefficients per block, 1 to min(C, 16) (default 3; spec key P). */
    uint32_t lfsr_bits;      /**< K: LFSR length and seed bits, 8 to 32 (default 16; spec key K). */
    uint32_t mantissa_bits;  /**< Bits per signed coefficient mantissa, 2 to 8 (default 4; spec key mant). */
    uint32_t exponent_bits;  /**< Bits of the shared exponent per block, 1 to 6 (default 4; spec key exp). */
    uint32_t seeds;          /**< Seeds searched: the first N in generator order from seed 1; 0 means all
                                  2^K - 1 (default 0; spec key seeds). K above 24 needs 1 to 2^24. */
    uint32_t threads;        /**< Threads for the search; 0 means all online CPUs (default 1). */
} hc_seedlm_options;

/** @brief Static initialiser: the 4-bit configuration (C, P, K) = (8, 3, 16), 4-bit mantissas and
 *         exponent, exhaustive search, one thread. */
#define HC_SEEDLM_OPTIONS_INIT { sizeof(hc_seedlm_options), 8u, 3u, 16u, 4u, 4u, 0u, 1u }

/**
 * @brief Initialises SeedLM options to their defaults.
 * @param opts The options.
 * @param struct_size sizeof(hc_seedlm_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_seedlm_options_init(hc_seedlm_options *opts, uint32_t struct_size);

/**
 * @brief Creates a SeedLM compressor (spec name `seedlm`, presets `4bit` and `3bit`).
 *
 * Bits per block are K + exponent_bits + P * mantissa_bits, so (8, 3, 16) is 4.0 bits per
 * weight and (12, 4, 16) is 3.0, plus the serialised header.
 * @param out Receives the compressor; free it with hc_compressor_free().
 * @param opts Options; NULL means the defaults.
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_seedlm_new(hc_compressor **out, const hc_seedlm_options *opts);

HC_END_DECLS

#endif
