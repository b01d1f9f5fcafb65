#include "common/cpu.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* F16C (CPUID leaf 1, ECX bit 29): the AVX2 kernels convert fp16 codebooks with it. Every AVX2
 * CPU made has it, but the AVX2 level promises it, so it is checked rather than assumed. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static hci_isa detected(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return HCI_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return HCI_ISA_AVX2;
#endif
    return HCI_ISA_PORTABLE;
}

hci_isa hci_cpu_isa(void)
{
    hci_isa best = detected();
    const char *cap = getenv("HYPERCOMP_ISA");
    if (cap) {
        hci_isa want = best;
        if (strcmp(cap, "portable") == 0)
            want = HCI_ISA_PORTABLE;
        else if (strcmp(cap, "avx2") == 0)
            want = HCI_ISA_AVX2;
        else if (strcmp(cap, "avx512") == 0)
            want = HCI_ISA_AVX512;
        if (want < best)
            best = want;
    }
    return best;
}

/* A CPU feature by its __builtin_cpu_supports name; none off x86-64. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAS(feature) (__builtin_cpu_init(), __builtin_cpu_supports(feature))
#else
#define CPU_HAS(feature) 0
#endif

int hci_cpu_avx512vbmi_vnni(void) { return CPU_HAS("avx512vbmi") && CPU_HAS("avx512vnni"); }

int hci_cpu_avx512vbmi(void) { return CPU_HAS("avx512vbmi"); }

int hci_cpu_gfni(void) { return CPU_HAS("gfni"); }

const char *hci_isa_name(hci_isa isa)
{
    switch (isa) {
    case HCI_ISA_AVX2: return "avx2";
    case HCI_ISA_AVX512: return "avx512";
    default: return "portable";
    }
}
