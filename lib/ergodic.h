/* The ergodic trajectory of Hyper-Compression: groups of n weights coded as the index of the
 * nearest point of a winding line on the n-torus drawn inside a box, with radial rings for the
 * groups that fall outside the box. See ergodic.c. */
#ifndef HCI_ERGODIC_H
#define HCI_ERGODIC_H

#include <stddef.h>
#include <stdint.h>

#define HCI_ERG_MAX_N 8
#define HCI_ERG_MAX_RINGS 15

/* The N points of the line in the unit box, in integer units of 1/N: point k has coordinates
 * X_j = (k * gen[j]) mod N (gen[0] = 1), i.e. u_j = (X_j + 1/2) / N. They are the lattice
 * {k gen + N z} cut to [0, N)^n; the search runs on an LLL-reduced basis of that lattice. */
typedef struct hci_erg_line {
    uint32_t n, npts;
    uint32_t gen[HCI_ERG_MAX_N];
    double basis[HCI_ERG_MAX_N][HCI_ERG_MAX_N];   /* reduced basis rows (integer valued) */
    double binv[HCI_ERG_MAX_N][HCI_ERG_MAX_N];    /* its inverse */
    double mu[HCI_ERG_MAX_N][HCI_ERG_MAX_N];      /* Gram-Schmidt coefficients */
    double bstar_sq[HCI_ERG_MAX_N];               /* squared Gram-Schmidt norms */
    double inv_npts;                              /* 1 / N, for the modular products */
} hci_erg_line;

/* Builds the line; HC_EINVAL for n outside [2, 8], npts 0 or gen[0] != 1 or gen[j] >= npts. */
int hci_erg_line_init(hci_erg_line *line, uint32_t n, uint32_t npts, const uint32_t *gen);

/* Coordinates of point k in units of 1/N (0 .. N-1). */
void hci_erg_point(const hci_erg_line *line, uint32_t k, uint32_t *coords);

/* Index of the point nearest to t (coordinates in units of 1/N; the point k sits at X(k)),
 * found exactly by Schnorr-Euchner enumeration of the lattice restricted to the box. */
uint32_t hci_erg_nearest(const hci_erg_line *line, const double *t);

/* The same by trying all N points (for tests). Ties go to the lowest index. */
uint32_t hci_erg_nearest_brute(const hci_erg_line *line, const double *t);

/* Squared length of the shortest vector among the reduced basis rows (units of 1/N). */
double hci_erg_shortest_sq(const hci_erg_line *line);

/* Winding direction: HCI_ERG_SLOPE_PAPER is the slope ceil(N^(1/n)) of the reference code (a
 * sheared cubic grid); HCI_ERG_SLOPE_SEARCH picks the generator whose lattice has the longest
 * shortest vector (in 2-D a near-hexagonal, Fibonacci-like lattice). */
typedef enum { HCI_ERG_SLOPE_PAPER = 0, HCI_ERG_SLOPE_SEARCH = 1 } hci_erg_slope;

/* Fills gen[0..n-1] for npts points. */
int hci_erg_choose_gen(uint32_t *gen, uint32_t n, uint32_t npts, hci_erg_slope slope);

/* Everything a decoder needs (the codec's params). Weights w of a group map to unit
 * coordinates u = (w - center) / scale + 1/2; groups inside [0, 1)^n are class 0 and take the
 * nearest of the N0 points of `line`. The others are class c when their distance
 * rho = |u - 1/2| lies in (r_{c-1}, r_c]; they are pulled in by 1/2 / r_c (into the ball the box
 * holds), take the nearest of the N1 points of `ring_line`, and are pushed back out.
 * Index = k for class 0 and N0 + (c - 1) N1 + k for ring c. With N1 = N0 this is the paper's
 * layout (index = k + N c); a smaller N1 leaves more of the index space to the box, where
 * nearly every group falls. */
typedef enum { HCI_ERG_RINGS_UNIFORM = 0, HCI_ERG_RINGS_GEOMETRIC = 1 } hci_erg_spacing;

typedef struct hci_erg_code {
    uint32_t n, rings, bits;
    hci_erg_spacing spacing;   /* uniform radii (the paper) or geometric ones */
    float scale, far;
    float center[HCI_ERG_MAX_N];
    hci_erg_line line;        /* N0 points for the box */
    hci_erg_line ring_line;   /* N1 points for the rings (unused without rings) */
    double radius[HCI_ERG_MAX_RINGS + 1];   /* r_c, filled by hci_erg_code_finish */
} hci_erg_code;

/* Fills the ring radii once far, rings and spacing are set (encode and decode read them). */
void hci_erg_code_finish(hci_erg_code *code);

/* Number of distinct indices: N0 + K N1. */
uint64_t hci_erg_index_count(const hci_erg_code *code);

/* Radius r_c of ring c (c >= 1) in unit coordinates: uniform r_c = 1/2 + c (far - 1/2) / K as
 * the paper, or geometric r_c = 1/2 (2 far)^(c / K), which keeps the error of an outside group
 * proportional to its size. */
double hci_erg_ring_radius(const hci_erg_code *code, uint32_t c);

/* Codes one group of n values; returns the index. */
uint32_t hci_erg_encode_group(const hci_erg_code *code, const float *w);

/* Decodes an index (< hci_erg_index_count) into n values. */
void hci_erg_decode_group(const hci_erg_code *code, uint32_t index, float *w);

/* Fewest bits holding indices below count. */
uint32_t hci_erg_bits_for(uint64_t count);

/* Chooses center, box scale, rings, N0 and N1 for n-groups of x (numel values, padded with the
 * center) under a budget of `bits` bits per group, by measuring the squared error on a sample of
 * groups for every candidate. max_rings caps K. */
int hci_erg_design(hci_erg_code *out, const float *x, size_t numel, uint32_t n, uint32_t bits, uint32_t max_rings,
                   hci_erg_slope slope, hci_erg_spacing spacing);

#endif
