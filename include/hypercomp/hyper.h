/**
 * @file hyper.h
 * @brief Trajectory ("hyper") compressors: polynomial, Fourier and ergodic trajectories.
 *
 * - #HC_HYPER_POLY / #HC_HYPER_FOURIER: the flattened tensor is cut into segments of L values;
 *   each is fitted by a degree-d Chebyshev polynomial or d DCT-II cosines (see trajectory.h),
 *   whose coefficients are quantised to q bits with one float32 step per segment
 *   (bpw = (terms q + 32) / L), or kept as float32 when q = 32 (bpw = 32 terms / L).
 * - #HC_HYPER_ERGODIC: Hyper-Compression (Fan et al., arXiv 2409.00592): groups of n
 *   consecutive values become the index of the nearest point of a winding line of the n-torus in
 *   a box around their centroid, with up to `max_rings` radial rings for groups outside the box;
 *   each index takes `index_bits` bits (bpw = index_bits / n). The box side, the number of rings
 *   and of points on the line are chosen per tensor by measuring the error.
 *
 * Spec strings: `hyper:poly`, `hyper:fourier`, `hyper:ergodic`, with keys L, d, q (poly,
 * fourier), n, bits, rings, slope=search|paper, spacing=geometric|uniform (ergodic) and threads, e.g.
 * `hyper:poly,L=128,d=15,q=10` or `hyper:ergodic,n=3,bits=19`.
 */
#ifndef HYPERCOMP_HYPER_H
#define HYPERCOMP_HYPER_H

#include "hypercomp/compressor.h"

HC_BEGIN_DECLS

/** @brief The trajectory type. The numbers are stable. */
typedef enum hc_hyper_kind {
    HC_HYPER_POLY = 0,      /**< Chebyshev polynomial per segment (codec #HC_CODEC_HYPER_POLY). */
    HC_HYPER_FOURIER = 1,   /**< DCT-II cosine series per segment (codec #HC_CODEC_HYPER_FOURIER). */
    HC_HYPER_ERGODIC = 2    /**< Ergodic torus winding (codec #HC_CODEC_HYPER_ERGODIC). */
} hc_hyper_kind;

/** @brief Winding directions of the ergodic line. The numbers are stable. */
typedef enum hc_hyper_slope {
    HC_HYPER_SLOPE_PAPER = 0,   /**< Slope ceil(N^(1/n)) per axis, as the reference code (a sheared grid). */
    HC_HYPER_SLOPE_SEARCH = 1   /**< The generator whose points are farthest apart (near-hexagonal in 2-D). */
} hc_hyper_slope;

/** @brief How the ergodic rings' radii are spaced. The numbers are stable. */
typedef enum hc_hyper_spacing {
    HC_HYPER_RINGS_UNIFORM = 0,     /**< Equal widths from the box to the farthest group, as the paper. */
    HC_HYPER_RINGS_GEOMETRIC = 1    /**< Radii in geometric progression: error proportional to size. */
} hc_hyper_spacing;

/** @brief Options of the trajectory compressors. Initialise with #HC_HYPER_OPTIONS_INIT. */
typedef struct hc_hyper_options {
    uint32_t struct_size;   /**< sizeof(hc_hyper_options) as the caller was compiled. */
    hc_hyper_kind kind;     /**< The trajectory type (default poly). */
    uint32_t segment;       /**< Poly/Fourier: segment length L, 1 to 65536 (default 64). */
    uint32_t degree;        /**< Poly: degree d, 0 to 64; Fourier: cosine terms, 1 to 64 (default 7). */
    uint32_t coef_bits;     /**< Poly/Fourier: q, 2 to 16, or 32 for float32 coefficients (default 8). */
    uint32_t group;         /**< Ergodic: values per group n, 2 to 8 (default 4; the paper's pairs are n = 2). */
    uint32_t index_bits;    /**< Ergodic: bits per group index, 2 to 32; 0 means floor(6.5 n) (default 0). */
    uint32_t max_rings;     /**< Ergodic: most radial rings, 0 to 15 (default 3, as the paper). */
    hc_hyper_slope slope;   /**< Ergodic: winding direction (default search). */
    hc_hyper_spacing spacing; /**< Ergodic: ring radii (default geometric). */
    uint32_t threads;       /**< Threads for compression; 0 means all online CPUs (default 1). */
} hc_hyper_options;

/** @brief Static initialiser: poly, L 64, d 7, q 8; ergodic n 4, 26 bits, 3 geometric rings, searched slope. */
#define HC_HYPER_OPTIONS_INIT { sizeof(hc_hyper_options), HC_HYPER_POLY, 64, 7, 8, 4, 0, 3, HC_HYPER_SLOPE_SEARCH, HC_HYPER_RINGS_GEOMETRIC, 1 }

/**
 * @brief Initialises trajectory options to their defaults.
 * @param opts The options.
 * @param struct_size sizeof(hc_hyper_options) as the caller was compiled.
 * @return #HC_OK, #HC_EINVAL, or #HC_EVERSION for a struct_size larger than this library's.
 */
HC_API int hc_hyper_options_init(hc_hyper_options *opts, uint32_t struct_size);

/**
 * @brief Creates a trajectory compressor.
 * @param out Receives the compressor; free it with hc_compressor_free().
 * @param opts Options; NULL means the defaults (poly).
 * @return #HC_OK, #HC_EINVAL naming a bad option, #HC_EVERSION, #HC_ENOMEM.
 */
HC_API int hc_hyper_new(hc_compressor **out, const hc_hyper_options *opts);

HC_END_DECLS

#endif
