/* Runtime CPU feature dispatch. HYPERCOMP_ISA=portable|avx2|avx512 caps the choice, so tests
 * and users can compare every kernel against the portable one. */
#ifndef HCI_CPU_H
#define HCI_CPU_H

typedef enum hci_isa {
    HCI_ISA_PORTABLE = 0,
    HCI_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C */
    HCI_ISA_AVX512 = 2   /* AVX-512 F, BW, VL, DQ */
} hci_isa;

/* The best instruction set this CPU has, capped by HYPERCOMP_ISA when set. */
hci_isa hci_cpu_isa(void);

/* 1 when the CPU has AVX-512 VBMI (vpmultishiftqb) and VNNI (vpdpwssd) on top of the AVX-512
 * level; callers check hci_cpu_isa() == HCI_ISA_AVX512 first, so HYPERCOMP_ISA caps it too. */
int hci_cpu_avx512vbmi_vnni(void);

/* 1 when the CPU has AVX-512 VBMI (vpermb); same convention as hci_cpu_avx512vbmi_vnni(). */
int hci_cpu_avx512vbmi(void);

/* 1 when the CPU has GFNI (vgf2p8affineqb); same convention as hci_cpu_avx512vbmi_vnni(). */
int hci_cpu_gfni(void);

/* The name of an ISA ("portable", "avx2", "avx512"). */
const char *hci_isa_name(hci_isa isa);

#endif
