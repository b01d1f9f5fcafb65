/* splitmix64 for the stream, Box-Muller for Gaussians, the inverse CDF for Laplace. */
#include "synth.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, offset by half a step so log() never sees 0. */
static double uniform_open(uint64_t *s)
{
    return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

int synth_dist_parse(const char *name, synth_dist *out)
{
    if (strcmp(name, "gauss") == 0 || strcmp(name, "gaussian") == 0) {
        *out = SYNTH_GAUSS;
        return 0;
    }
    if (strcmp(name, "laplace") == 0) {
        *out = SYNTH_LAPLACE;
        return 0;
    }
    return -1;
}

const char *synth_dist_name(synth_dist d)
{
    return d == SYNTH_LAPLACE ? "laplace" : "gauss";
}

void synth_fill(float *out, size_t n, synth_dist d, uint64_t seed)
{
    uint64_t s = seed;
    const double two_pi = 6.283185307179586476925286766559;
    if (d == SYNTH_GAUSS) {
        for (size_t i = 0; i < n; i += 2) {
            double r = sqrt(-2.0 * log(uniform_open(&s)));
            double t = two_pi * uniform_open(&s);
            out[i] = (float)(r * cos(t));
            if (i + 1 < n)
                out[i + 1] = (float)(r * sin(t));
        }
        return;
    }
    /* Laplace(0, b) has variance 2 b^2; b = 1/sqrt(2) gives unit variance. */
    const double b = 0.70710678118654752440;
    for (size_t i = 0; i < n; i++) {
        double u = uniform_open(&s) - 0.5;
        double a = fabs(u);
        out[i] = (float)(-b * (u < 0 ? -1.0 : 1.0) * log(1.0 - 2.0 * a));
    }
}
