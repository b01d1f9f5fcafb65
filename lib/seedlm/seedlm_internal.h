/* SeedLM internals shared by the codec (seedlm.c), the seed search (seedlm_search.c), the
 * screening kernels (seedlm_kernels.c), decode (seedlm_decode.c) and the matvec
 * (seedlm_matvec.c). Layout: doc/algorithms.md, "SeedLM". */
#ifndef HCI_SEEDLM_INTERNAL_H
#define HCI_SEEDLM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "common/bytes.h"
#include "hypercomp/seedlm.h"

#define HCI_SEEDLM_MAX_C 64
#define HCI_SEEDLM_MAX_P 16
#define HCI_SEEDLM_PARAMS_LEN 12
/* Layout versions (doc/algorithms.md, "SeedLM", "Layout"): 1 stores the records in block order,
 * 2 in groups of HCI_SEEDLM_GROUP rows with the group's records of one column block together. */
#define HCI_SEEDLM_FORMAT_FLAT 1
#define HCI_SEEDLM_FORMAT_GROUPED 2
#define HCI_SEEDLM_GROUP 16
/* The stream-word tables (hci_seedlm_state) are built for K up to this; longer registers
 * regenerate each block's states with the LFSR (the decode's exact reciprocal multiply is proven
 * for K <= 20 only, see seedlm_kernels.c). */
#define HCI_SEEDLM_TABLE_MAX_K 20
/* Seeds screened together: one AVX-512 vector, two AVX2 vectors. */
#define HCI_SEEDLM_LANES 16

extern const hci_codec hci_codec_seedlm;

int hci_seedlm_from_spec(hc_compressor **out, hci_spec *spec);

/* Everything that fixes the meaning of the payload (the params bytes, decoded). */
typedef struct hci_seedlm_cfg {
    uint32_t C, P, K, M, E;
    int32_t ebase;        /* block exponent = ebase + stored code */
    uint32_t nseeds;      /* seeds searched: the first nseeds states in generator order from 1 */
    uint32_t grouped;     /* 1 for layout version 2, 0 for version 1 */
} hci_seedlm_cfg;

/* One block's record. */
typedef struct hci_seedlm_block {
    uint32_t seed;
    uint32_t ecode;
    int32_t q[HCI_SEEDLM_MAX_P];
} hci_seedlm_block;

static inline uint32_t hci_seedlm_block_bits(const hci_seedlm_cfg *c)
{
    return c->K + c->E + c->P * c->M;
}

/* Whether a rows x cols tensor may use layout version 2: 32-bit records (whole bytes, so that a
 * group's records of one column block form one aligned-size vector) and whole blocks per row. */
static inline int hci_seedlm_groupable(const hci_seedlm_cfg *c, int64_t cols)
{
    return hci_seedlm_block_bits(c) == 32 && cols % c->C == 0;
}

/* The record index of block b (row-major order over the tensor, as the search numbers them). In
 * layout 2 row r's block j sits in group g = r / 16, which holds n = min(16, rows - 16 g) rows:
 * at 16 g nbr + j n + (r - 16 g), nbr = cols / C blocks per row. */
static inline int64_t hci_seedlm_slot(const hci_seedlm_cfg *c, int64_t rows, int64_t cols, int64_t b)
{
    if (!c->grouped)
        return b;
    const int64_t nbr = cols / c->C, r = b / nbr, j = b % nbr, g0 = r - r % HCI_SEEDLM_GROUP;
    const int64_t n = rows - g0 < HCI_SEEDLM_GROUP ? rows - g0 : HCI_SEEDLM_GROUP;
    return g0 * nbr + j * n + (r - g0);
}

/* The records of blocks b, b + 1, ... in turn, the row and column block stepped along instead of
 * divided out per block as hci_seedlm_slot() does (decode of 4096 x 4096 in layout 2: 101 ms with
 * the divisions, 81 with the cursor). */
typedef struct hci_seedlm_cursor {
    int64_t slot;
    int64_t b, r, j, g0, n, nbr, rows; /* layout 2 only: block b is row r's block j, group g0 of n rows */
    int grouped;
} hci_seedlm_cursor;

/* The cursor's record: row r's block j in the group of n rows from row g0. */
static inline int64_t hci_seedlm_cursor_slot(const hci_seedlm_cursor *k)
{
    return k->g0 * k->nbr + k->j * k->n + (k->r - k->g0);
}

static inline void hci_seedlm_cursor_init(hci_seedlm_cursor *k, const hci_seedlm_cfg *c, int64_t rows, int64_t cols,
                                          int64_t b)
{
    *k = (hci_seedlm_cursor){ .slot = b, .b = b };
    /* (an empty tensor has no blocks to step through) */
    k->grouped = c->grouped && cols >= (int64_t)c->C;
    if (!k->grouped)
        return;
    k->rows = rows;
    k->nbr = cols / c->C;
    k->r = b / k->nbr;
    k->j = b % k->nbr;
    k->g0 = k->r - k->r % HCI_SEEDLM_GROUP;
    k->n = rows - k->g0 < HCI_SEEDLM_GROUP ? rows - k->g0 : HCI_SEEDLM_GROUP;
    k->slot = hci_seedlm_cursor_slot(k);
}

static inline void hci_seedlm_cursor_next(hci_seedlm_cursor *k)
{
    k->b++;
    if (!k->grouped) {
        k->slot = k->b;
        return;
    }
    if (++k->j == k->nbr) {
        k->j = 0;
        if (++k->r - k->g0 == HCI_SEEDLM_GROUP) {
            k->g0 = k->r;
            k->n = k->rows - k->g0 < HCI_SEEDLM_GROUP ? k->rows - k->g0 : HCI_SEEDLM_GROUP;
        }
    }
    k->slot = hci_seedlm_cursor_slot(k);
}

/* The record starting at payload bit `bit` as a 64-bit word (seed in the low bits); valid when a
 * record has at most 57 bits. Reads bytes one by one near the end of the payload. */
static inline uint64_t hci_seedlm_record_word(const uint8_t *payload, uint64_t payload_len, uint64_t bit)
{
    uint64_t byte = bit >> 3, v;
    if (byte + 8 <= payload_len) {
        memcpy(&v, payload + byte, 8);
        v = hci_get_u64((const uint8_t *)&v);
    } else {
        v = 0;
        for (uint64_t i = 0; byte + i < payload_len; i++)
            v |= (uint64_t)payload[byte + i] << (8 * i);
    }
    return v >> (bit & 7);
}

void hci_seedlm_put_params(uint8_t out[HCI_SEEDLM_PARAMS_LEN], const hci_seedlm_cfg *c);
void hci_seedlm_write_block(uint8_t *payload, const hci_seedlm_cfg *c, int64_t b, const hci_seedlm_block *blk);
void hci_seedlm_read_block(const uint8_t *payload, const hci_seedlm_cfg *c, int64_t b, hci_seedlm_block *out);

/* The per-tensor regeneration table (attach builds it when K <= HCI_SEEDLM_TABLE_MAX_K). The
 * register shifts right by one each step and its new top bit is the feedback, so the states from
 * a seed on are the K-bit windows of one bit stream: state j after seed s is bits j .. j + K - 1
 * of the stream that starts with s. The stream word of s, the first 64 bits of that stream, holds
 * the 65 - K states from s on; one word gives a block's whole U when C * P + K <= 65.
 *
 * The step is linear over GF(2), so the word is a linear function of the seed: the XOR of the
 * words of the seed's set bits. word[j][b] holds the XOR for the bits of byte value b at byte j
 * of the seed, so three lookups in 6 KiB (L1-resident, and the same for every K up to 24) give
 * any word, where a table of every state's word would take 2^K x 8 bytes (512 KiB at K = 16). */
typedef struct hci_seedlm_state {
    hci_seedlm_cfg cfg;
    int64_t rows, cols;  /* the tensor's 2-D view */
    int64_t nblocks;
    uint32_t bits;       /* per block */
    uint32_t tap_mask;
    const uint64_t (*word)[256]; /* HCI_SEEDLM_WORD_BYTES byte tables (see above); NULL without a table */
} hci_seedlm_state;

#define HCI_SEEDLM_WORD_BYTES 3

/* The stream word of state s (s < 2^24). */
static inline uint64_t hci_seedlm_word(const uint64_t (*word)[256], uint32_t s)
{
    return word[0][s & 255u] ^ word[1][(s >> 8) & 255u] ^ word[2][(s >> 16) & 255u];
}

/* The exponent base of a tensor: the top exponent leaves headroom over the largest block norm. */
int32_t hci_seedlm_choose_ebase(const float *w, int64_t numel, const hci_seedlm_cfg *c);

/* Least squares in double against U (C x P, float values), quantisation with the range-based
 * shared exponent, and the exact squared error of the quantised reconstruction. Returns
 * INFINITY when U has (numerically) rank below P: such seeds are never chosen. */
double hci_seedlm_eval_seed(const float *u, const double *w, const hci_seedlm_cfg *c, hci_seedlm_block *out);

/* Searches every block of w (numel values, the last block zero-padded) and writes the payload
 * (zeroed by the caller) on `threads` threads. */
int hci_seedlm_search(uint8_t *payload, const float *w, int64_t numel, const hci_seedlm_cfg *c, uint32_t threads);

/* The straightforward per-block loop (per seed: regenerate U with the LFSR, solve, quantise,
 * measure), for the benchmark's baseline; same result as the search. */
void hci_seedlm_search_naive(hci_seedlm_block *out, const float *w, const hci_seedlm_cfg *c);

/* Screening kernel: for groups [g0, ngroups) of HCI_SEEDLM_LANES seeds whose orthonormal bases
 * are qsoa[g][c * P + p][lane], the least-squares residual |w|^2 - |Q^T w|^2 of each seed. A lane
 * passes when its residual is <= thresh and rho2[lane] * (|Q^T w|^2 + slack) >= tau, where rho2
 * bounds |t|^2 / |Q^T w|^2 (tau = 0 disables that test). Returns the first group with a passing
 * lane, with the lane mask in *mask and the group's 16 residuals in bounds; or ngroups. */
typedef uint32_t (*hci_seedlm_screen_fn)(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w,
                                         float wn2, float thresh, const float *rho2, float tau, uint32_t C,
                                         uint32_t P, uint32_t *mask, float *bounds);
hci_seedlm_screen_fn hci_seedlm_screen_kernel(void);
uint32_t hci_seedlm_screen_portable(const float *qsoa, uint32_t g0, uint32_t ngroups, const float *w, float wn2,
                                    float thresh, const float *rho2, float tau, uint32_t C, uint32_t P,
                                    uint32_t *mask, float *bounds);

/* Decodes the block of record b into C floats: w_c = sum_p u_cp * tq_p, p ascending, each product
 * and sum rounded to float, u_cp = float((V - 2^(K-1)) / (2^(K-1) - 1)) and tq_p = q_p * 2^e.
 * The reference every decode kernel must equal bit for bit (seedlm_decode.c). */
void hci_seedlm_decode_block(const hci_seedlm_state *st, const uint8_t *payload, int64_t b, float *out);

/* Values [first, first + count) of the tensor in row-major order (either layout), with the
 * fastest kernel hci_cpu_isa() allows; identical on every ISA. */
void hci_seedlm_decode_range(const hci_seedlm_state *st, const uint8_t *payload, uint64_t payload_len, int64_t first,
                             int64_t count, float *out);

/* y[r] for rows [row0, row1) of the st->rows x st->cols tensor; blocks may straddle rows (cols
 * need not be a multiple of C). */
int hci_seedlm_matvec_rows(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y, int64_t row0,
                           int64_t row1);

/* The rows-in-lanes kernel (seedlm_matvec_lut.c): 1 when configuration c on cols columns fits it
 * (K = 16, 32-bit records, P <= 4, stream bits C P + K - 1 <= 40, C divides cols). */
int hci_seedlm_lut_fits(const hci_seedlm_cfg *c, int64_t cols);

/* y[r] for the first 16 * floor((row1 - row0) / 16) rows from row0, which it returns (or
 * HC_ENOMEM, negative); needs the stream-word tables, hci_seedlm_lut_fits() and an AVX-512 CPU
 * with GFNI, and in layout 2 row0 at the start of a group. */
int64_t hci_seedlm_matvec_lut(const hci_seedlm_state *st, const uint8_t *payload, const float *x, float *y,
                              int64_t row0, int64_t row1);

#endif
