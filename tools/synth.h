/* Deterministic synthetic weight matrices for `hypercomp bench`: the same seed gives the same
 * matrix on every machine, so results from different runs and hosts compare. */
#ifndef HYPERCOMP_SYNTH_H
#define HYPERCOMP_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum synth_dist {
    SYNTH_GAUSS = 0,   /* N(0, 1) */
    SYNTH_LAPLACE = 1  /* Laplace with unit variance: heavier tails, like trained weights */
} synth_dist;

/* Parses "gauss" / "laplace"; returns 0 on success, -1 for anything else. */
int synth_dist_parse(const char *name, synth_dist *out);
const char *synth_dist_name(synth_dist d);

/* Fills n values of the distribution (unit variance) from seed. */
void synth_fill(float *out, size_t n, synth_dist d, uint64_t seed);

#endif
