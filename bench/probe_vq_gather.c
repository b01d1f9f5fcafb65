/* What bounds the VPTQ gather-dot matvec: the inner loop of lib/vptq/matvec_gather.c (the
 * AVX-512 machine's 8-float path, v = 6 padded to 8, k = 4096) rebuilt standalone with
 * variations, each timed on a 4096 x 4096 tensor's worth of vectors (4096 rows x 683 segments)
 * with its offsets already unpacked into one tile, so that only the dot is measured. Prints the
 * best of REPS calls of each variant in ms and ns per vector, and one lookup-table kernel with
 * hardware gathers for comparison. Numbers, not assertions: see doc/algorithms.md, "VPTQ".
 *
 *   probe_vq_gather [K] [REPS]     (K codebook entries, default 4096; REPS default 15)
 *
 * x86-64 with AVX-512 only; elsewhere it says so and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define ROWS 4096
#define SEGS 683
#define TILE 128
#define SEGBLOCK 32
#define T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The variants' centroid loads. As in the library, 16-bit offsets count 8-byte units (the
 * largest addressing scale), so an entry's address is one scaled-index operand; 32-bit offsets
 * count bytes. */
enum { SHIPPED, WIDE_OFFSETS, FP32_TABLE, NO_CONVERT };

T static inline __attribute__((always_inline)) __m256 centroid(const int how, const char *p)
{
    switch (how) {
    case FP32_TABLE: return _mm256_loadu_ps((const float *)(const void *)p);
    /* the fp16 bits taken as floats: wrong values, the conversion's cost removed */
    case NO_CONVERT: return _mm256_castps128_ps256(_mm_loadu_ps((const float *)(const void *)p));
    default: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
    }
}

/* Eight rows by all segments, two accumulators per row, as the library's row kernel; inlined
 * into one function per variant (dot_as), so that no variant pays for the others' branches. */
T static inline __attribute__((always_inline)) void dot(const int how, float *y, const char *cb, const uint16_t *o16,
                                            const uint32_t *o32, const float *xe)
{
    for (int t0 = 0; t0 < ROWS; t0 += TILE)
        for (int sa = 0; sa < SEGS; sa += SEGBLOCK) {
            int ns = SEGS - sa < SEGBLOCK ? SEGS - sa : SEGBLOCK;
            for (int r0 = 0; r0 < TILE; r0 += 8) {
                __m256 a0[8], a1[8];
                for (int r = 0; r < 8; r++)
                    a0[r] = a1[r] = _mm256_setzero_ps();
                const float *xp = xe + (size_t)sa * 8;
                for (int s = 0; s + 1 < ns; s += 2, xp += 16) {
                    __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
                    const uint16_t *p0 = o16 + (size_t)s * TILE + r0, *p1 = p0 + TILE;
                    uint64_t w0[2], w1[2];
                    memcpy(w0, p0, 16);
                    memcpy(w1, p1, 16);
#pragma GCC unroll 8
                    for (int r = 0; r < 8; r++) {
                        const char *c0, *c1;
                        if (how == WIDE_OFFSETS) {
                            c0 = cb + o32[(size_t)s * TILE + r0 + r];
                            c1 = cb + o32[(size_t)(s + 1) * TILE + r0 + r];
                        } else {
                            c0 = cb + 8 * ((w0[r / 4] >> (16 * (r % 4))) & 0xffff);
                            c1 = cb + 8 * ((w1[r / 4] >> (16 * (r % 4))) & 0xffff);
                        }
                        a0[r] = _mm256_fmadd_ps(x0, centroid(how, c0), a0[r]);
                        a1[r] = _mm256_fmadd_ps(x1, centroid(how, c1), a1[r]);
                    }
                }
                for (int r = 0; r < 8; r++) {
                    __m256 t = _mm256_add_ps(a0[r], a1[r]);
                    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
                    h = _mm_hadd_ps(h, h);
                    h = _mm_hadd_ps(h, h);
                    y[t0 + r0 + r] += _mm_cvtss_f32(h);
                }
            }
        }
}

T static __attribute__((noinline)) void dot_as(int how, float *y, const char *cb, const uint16_t *o16,
                                               const uint32_t *o32, const float *xe)
{
    switch (how) {
    case WIDE_OFFSETS: dot(WIDE_OFFSETS, y, cb, o16, o32, xe); break;
    case FP32_TABLE: dot(FP32_TABLE, y, cb, o16, o32, xe); break;
    case NO_CONVERT: dot(NO_CONVERT, y, cb, o16, o32, xe); break;
    default: dot(SHIPPED, y, cb, o16, o32, xe); break;
    }
}

/* Lookup tables: per segment, the dot of every centroid with x (build), then one hardware gather
 * per 16 rows (read); either half alone with build_only / read_only. */
T static __attribute__((noinline)) void lut(float *y, const float *cbt, int k, const uint16_t *idx, const float *xs,
                                            float *table, int build, int read)
{
    for (int s = 0; s < SEGS; s++) {
        if (build)
            for (int e = 0; e < k; e += 16) {
                __m512 a = _mm512_mul_ps(_mm512_loadu_ps(cbt + e), _mm512_set1_ps(xs[6 * s]));
                for (int t = 1; t < 6; t++)
                    a = _mm512_fmadd_ps(_mm512_loadu_ps(cbt + (size_t)t * k + e), _mm512_set1_ps(xs[6 * s + t]), a);
                _mm512_storeu_ps(table + e, a);
            }
        if (read)
            for (int r = 0; r < ROWS; r += 16) {
                __m512i i = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(idx + r)));
                _mm512_storeu_ps(y + r, _mm512_add_ps(_mm512_loadu_ps(y + r), _mm512_i32gather_ps(i, table, 4)));
            }
    }
}

/* 64-byte aligned, the size rounded up as aligned_alloc requires */
static void *alloc64(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

/* fp16 of v (here, after the CPU check) */
T static uint16_t half_of(float v) { return (uint16_t)_cvtss_sh(v, 0); }

int main(int argc, char **argv)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl")) {
        puts("probe_vq_gather: this CPU has no AVX-512; nothing to measure");
        return 0;
    }
    int k = argc > 1 ? atoi(argv[1]) : 4096, reps = argc > 2 ? atoi(argv[2]) : 15;
    if (k < 16 || k > 4096 || k % 16 || reps < 1) {
        fprintf(stderr, "usage: probe_vq_gather [K: 16..4096, a multiple of 16] [REPS >= 1]\n");
        return 2;
    }
    uint16_t *cb = alloc64((size_t)16 * k), *o16 = alloc64(2 * SEGBLOCK * TILE);
    uint16_t *o16f = alloc64(2 * SEGBLOCK * TILE);
    uint16_t *same = alloc64(2 * SEGBLOCK * TILE), *idx = alloc64(2 * ROWS);
    uint32_t *o32 = alloc64(4 * SEGBLOCK * TILE);
    float *cbf = alloc64((size_t)32 * k), *cbt = alloc64((size_t)24 * k);
    float *xe = alloc64(4 * 8 * (SEGS + 1)), *xs = alloc64(4 * 6 * SEGS);
    float *y = alloc64(4 * ROWS), *table = alloc64((size_t)4 * k);
    if (!cb || !o16 || !o16f || !same || !idx || !o32 || !cbf || !cbt || !xe || !xs || !y || !table) {
        fputs("probe_vq_gather: out of memory\n", stderr);
        return 1;
    }
    srand(1);
    for (int i = 0; i < 8 * k; i++) {
        float v = (i % 8 < 6) ? (float)rand() / (float)RAND_MAX - 0.5f : 0.0f;
        cb[i] = half_of(v);
        cbf[i] = v;
        if (i % 8 < 6)
            cbt[(size_t)(i % 8) * k + i / 8] = v;
    }
    for (int i = 0; i < 8 * (SEGS + 1); i++)
        xe[i] = (i % 8 < 6) ? (float)rand() / (float)RAND_MAX - 0.5f : 0.0f;
    for (int i = 0; i < 6 * SEGS; i++)
        xs[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < SEGBLOCK * TILE; i++) {
        int e = rand() % k;
        o16[i] = (uint16_t)(2 * e);
        o16f[i] = (uint16_t)(4 * e);
        o32[i] = (uint32_t)(16 * e);
        same[i] = (uint16_t)(2 * (i % 4));
    }
    for (int i = 0; i < ROWS; i++)
        idx[i] = (uint16_t)(rand() % k);
    const struct {
        const char *name;
        int how;
        const char *table;
        const uint16_t *off;
    } var[] = {
        { "shipped: fp16 table, 16-bit offsets four to a load", SHIPPED, (const char *)cb, o16 },
        { "32-bit offsets, one load each", WIDE_OFFSETS, (const char *)cb, o16 },
        { "fp32 table (no conversion; 32 bytes an entry)", FP32_TABLE, (const char *)cbf, o16f },
        { "fp16 bits used as floats (timing only)", NO_CONVERT, (const char *)cb, o16 },
        { "shipped, every offset in one cache line", SHIPPED, (const char *)cb, same },
    };
    const double vectors = (double)ROWS * SEGS;
    printf("k = %d, %d rows x %d segments, best of %d\n", k, ROWS, SEGS, reps);
    for (size_t v = 0; v < sizeof var / sizeof var[0]; v++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            memset(y, 0, 4 * ROWS);
            double t0 = now();
            dot_as(var[v].how, y, var[v].table, var[v].off, o32, xe);
            double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("  %-52s %.3f ms  %.3f ns/vector\n", var[v].name, 1e3 * best, 1e9 * best / vectors);
    }
    const char *lname[] = { "lookup tables: build and vgatherdps reads", "lookup tables: build only",
                            "lookup tables: reads only" };
    for (int m = 0; m < 3; m++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            memset(y, 0, 4 * ROWS);
            double t0 = now();
            lut(y, cbt, k, idx, xs, table, m != 2, m != 1);
            double t = now() - t0;
            best = t < best ? t : best;
        }
        printf("  %-52s %.3f ms  %.3f ns/vector\n", lname[m], 1e3 * best, 1e9 * best / vectors);
    }
    free(cb), free(o16), free(o16f), free(same), free(idx), free(o32), free(cbf), free(cbt);
    free(xe), free(xs), free(y), free(table);
    return 0;
}
#else
int main(void)
{
    puts("probe_vq_gather: x86-64 only; nothing to measure");
    return 0;
}
#endif
