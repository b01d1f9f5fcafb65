/* Which 512-bit operations compete for the same execution pipes: the throughput of each
 * operation the SeedLM rows-in-lanes matvec uses (lib/seedlm/seedlm_matvec_lut.c), alone and
 * in pairs. Each case runs 24 independent chains (12 of each op in a pair), enough to hide
 * latency, and prints cycles per operation at the clock given (default 3.45 GHz; the VM has no
 * cycle counter). Two ops that reach twice the throughput of one together use separate pipes;
 * ops that stay at the throughput of one share them. Numbers, not assertions: see
 * doc/algorithms.md, "Matvec from seeds, rows-in-lanes kernel".
 *
 *   probe_vec_ports [GHZ]
 *
 * x86-64 with AVX-512 and GFNI only; elsewhere it says so and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T __attribute__((target("avx512f,avx512bw,gfni,fma"), noinline))
#define ITERS 10000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Each op maps a register to a register of the same type (float or integer vectors). */
#define OP_perm(a) _mm512_permutexvar_ps(_mm512_castps_si512(a), k0)
#define OP_fadd(a) _mm512_add_ps(a, k0)
#define OP_fma(a) _mm512_fmadd_ps(a, k0, k1)
#define OP_cvt(a) _mm512_cvtepi32_ps(_mm512_castps_si512(a))
#define OP_srl(a) _mm512_srli_epi32(a, 1)
#define OP_gf(a) _mm512_gf2p8affine_epi64_epi8(a, m, 0)
#define OP_shuf(a) _mm512_shuffle_epi8(a, m)
#define OP_tern(a) _mm512_ternarylogic_epi32(a, m, n, 0xca)
#define TY_perm __m512
#define TY_fadd __m512
#define TY_fma __m512
#define TY_cvt __m512
#define TY_srl __m512i
#define TY_gf __m512i
#define TY_shuf __m512i
#define TY_tern __m512i
#define IV_perm(i) _mm512_set1_ps((float)(i))
#define IV_fadd(i) _mm512_set1_ps((float)(i))
#define IV_fma(i) _mm512_set1_ps((float)(i))
#define IV_cvt(i) _mm512_set1_ps((float)(i))
#define IV_srl(i) _mm512_set1_epi32(i)
#define IV_gf(i) _mm512_set1_epi32(i)
#define IV_shuf(i) _mm512_set1_epi32(i)
#define IV_tern(i) _mm512_set1_epi32(i)

/* cycles per operation of A and B interleaved, 12 chains each (named variables: arrays
 * stay on the stack) */
#define DECL12(P, TY, IV)                                                                                        \
    TY P##0 = IV(1), P##1 = IV(2), P##2 = IV(3), P##3 = IV(4), P##4 = IV(5), P##5 = IV(6), P##6 = IV(7),        \
       P##7 = IV(8), P##8 = IV(9), P##9 = IV(10), P##10 = IV(11), P##11 = IV(12)
#define STEP2(A, B, i)                                                                                           \
    a##i = OP_##A(a##i);                                                                                         \
    b##i = OP_##B(b##i)
#define KEEP12(P)                                                                                                \
    __asm__ volatile("" : "+v"(P##0), "+v"(P##1), "+v"(P##2), "+v"(P##3), "+v"(P##4), "+v"(P##5), "+v"(P##6),   \
                     "+v"(P##7), "+v"(P##8), "+v"(P##9), "+v"(P##10), "+v"(P##11))
#define PAIR(A, B)                                                                                               \
    T static double pair_##A##_##B(double ghz)                                                                   \
    {                                                                                                            \
        const __m512 k0 = _mm512_set1_ps(0.001f), k1 = _mm512_set1_ps(0.5f);                                    \
        const __m512i m = _mm512_set1_epi64(0x0102040810204080ll), n = _mm512_set1_epi32(7);                    \
        (void)k0, (void)k1, (void)m, (void)n;                                                                    \
        DECL12(a, TY_##A, IV_##A);                                                                               \
        DECL12(b, TY_##B, IV_##B);                                                                               \
        double t = now();                                                                                        \
        for (long it = 0; it < ITERS; it++) {                                                                    \
            STEP2(A, B, 0); STEP2(A, B, 1); STEP2(A, B, 2); STEP2(A, B, 3); STEP2(A, B, 4); STEP2(A, B, 5);      \
            STEP2(A, B, 6); STEP2(A, B, 7); STEP2(A, B, 8); STEP2(A, B, 9); STEP2(A, B, 10); STEP2(A, B, 11);    \
            KEEP12(a);                                                                                           \
            KEEP12(b);                                                                                           \
        }                                                                                                        \
        return (now() - t) * ghz * 1e9 / (24.0 * (double)ITERS);                                                 \
    }

PAIR(perm, perm)
PAIR(fadd, fadd)
PAIR(fma, fma)
PAIR(srl, srl)
PAIR(gf, gf)
PAIR(cvt, cvt)
PAIR(tern, tern)
PAIR(perm, fadd)
PAIR(perm, fma)
PAIR(fadd, fma)
PAIR(fadd, srl)
PAIR(fma, srl)
PAIR(fadd, cvt)
PAIR(perm, gf)
PAIR(perm, shuf)
PAIR(fadd, gf)
PAIR(perm, tern)

typedef struct probe {
    const char *name;
    double (*fn)(double);
} probe;

int main(int argc, char **argv)
{
    double ghz = argc > 1 ? atof(argv[1]) : 3.45;
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("gfni")) {
        printf("probe_vec_ports: needs AVX-512 BW and GFNI; this CPU has not both\n");
        return 0;
    }
    const probe p[] = {
        { "vpermps", pair_perm_perm },        { "vaddps", pair_fadd_fadd },
        { "vfmadd", pair_fma_fma },           { "vpsrld", pair_srl_srl },
        { "vgf2p8affineqb", pair_gf_gf },     { "vcvtdq2ps", pair_cvt_cvt },
        { "vpternlogd", pair_tern_tern },     { "vpermps + vaddps", pair_perm_fadd },
        { "vpermps + vfmadd", pair_perm_fma }, { "vaddps + vfmadd", pair_fadd_fma },
        { "vaddps + vpsrld", pair_fadd_srl }, { "vfmadd + vpsrld", pair_fma_srl },
        { "vaddps + vcvtdq2ps", pair_fadd_cvt }, { "vpermps + vgf2p8affineqb", pair_perm_gf },
        { "vpermps + vpshufb", pair_perm_shuf }, { "vaddps + vgf2p8affineqb", pair_fadd_gf },
        { "vpermps + vpternlogd", pair_perm_tern },
    };
    printf("%-26s %s\n", "512-bit ops", "ops per cycle (best of 3)");
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double c = p[i].fn(ghz);
            best = c < best ? c : best;
        }
        printf("%-26s %.2f\n", p[i].name, 1.0 / best);
    }
    return 0;
}
#else
int main(void)
{
    printf("probe_vec_ports: x86-64 with AVX-512 only\n");
    return 0;
}
#endif
