/* The SeedLM rows-in-lanes kernel for the 4-bit preset in layout 1 (records row by row),
 * apart from seedlm_matvec_lut.c only so that the two compile side by side
 * (seedlm_matvec_lut_kernel.h says why). */
#include "seedlm/seedlm_matvec_lut_kernel.h"

#if defined(__x86_64__) && defined(__GNUC__)
TLUT __attribute__((noinline)) void hci_seedlm_lut_preset_flat(const lut_ctx *L, float *y, int64_t row0,
                                                              int64_t ntiles)
{
    rows_lut(L, y, row0, ntiles, 3, 10, 4, 4, 0);
}
#endif
