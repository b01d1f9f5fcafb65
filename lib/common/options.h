/* Versioned option structs (STYLE.md): every public options struct starts with uint32_t
 * struct_size, the size the caller was compiled with. Older callers pass less, and the fields
 * they do not know keep their defaults; a newer caller's larger struct is refused. */
#ifndef HCI_OPTIONS_H
#define HCI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

/* hc_x_options_init: writes the first struct_size bytes of defaults (a full struct of
 * full_size bytes) to opts, with struct_size kept. min_size is the smallest size ever shipped;
 * type names the struct in messages ("hc_seedlm_options"). */
int hci_options_init(void *opts, uint32_t struct_size, const void *defaults, size_t full_size, size_t min_size,
                     const char *type);

/* Overlays the caller's struct (NULL: nothing) on merged, which holds the defaults, and sets
 * merged's struct_size to full_size. HC_EVERSION / HC_EINVAL name the type and the size. */
int hci_options_merge(void *merged, size_t full_size, const void *user, size_t min_size, const char *type);

#endif
