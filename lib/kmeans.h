/* Internal entry points of the k-means learner, shared with the VPTQ codec. */
#ifndef HCI_KMEANS_H
#define HCI_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "hypercomp/kmeans.h"

/* Nearest centroid of each point; dist (may be NULL) receives the squared distances, clamped
 * at 0. cnorm (may be NULL) holds the k squared centroid norms when the caller has them. */
int hci_kmeans_assign(uint32_t *idx, float *dist, const float *points, size_t n, uint32_t dim,
                      const float *centroids, uint32_t k, const float *cnorm, uint32_t threads);

/* A splitmix64 stream: the learner's only source of randomness. */
typedef struct hci_rng {
    uint64_t s;
} hci_rng;

static inline uint64_t hci_rng_next(hci_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double hci_rng_uniform(hci_rng *r)
{
    return (double)(hci_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
