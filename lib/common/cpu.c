#include "common/cpu.h"

#include <stdlib.h>
#include <string.h>

static hci_isa detected(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return HCI_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
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

int hci_cpu_avx512vbmi_vnni(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

const char *hci_isa_name(hci_isa isa)
{
    switch (isa) {
    case HCI_ISA_AVX2: return "avx2";
    case HCI_ISA_AVX512: return "avx512";
    default: return "portable";
    }
}
