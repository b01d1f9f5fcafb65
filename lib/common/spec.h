/* Codec spec strings: "codec[:item[,item]...]", an item a preset word or key=value. */
#ifndef HCI_SPEC_H
#define HCI_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define HCI_SPEC_MAX_ITEMS 24
#define HCI_SPEC_MAX_TEXT 64

typedef struct hci_spec_item {
    char key[HCI_SPEC_MAX_TEXT];
    char value[HCI_SPEC_MAX_TEXT];
    int has_value;   /* key=value; otherwise a bare word (a preset) */
    int used;        /* set by the getters; leftovers are reported as unknown */
} hci_spec_item;

typedef struct hci_spec {
    char text[256];                 /* the whole spec, for messages */
    char codec[HCI_SPEC_MAX_TEXT];
    hci_spec_item items[HCI_SPEC_MAX_ITEMS];
    size_t n;
} hci_spec;

/* Splits a spec; HC_EINVAL naming the bad part for empty items, missing names or long text. */
int hci_spec_parse(hci_spec *out, const char *spec);

/* Each getter returns 0 when the key is absent (value untouched), 1 when it was set, or a
 * negative status with a message naming the key, the value and the allowed range. */
int hci_spec_u32(hci_spec *s, const char *key, uint32_t min, uint32_t max, uint32_t *value);
int hci_spec_float(hci_spec *s, const char *key, double min, double max, float *value);
/* Bare word: 1 when present (and marks it used), 0 otherwise. */
int hci_spec_flag(hci_spec *s, const char *word);
/* The value of key as text, or NULL. */
const char *hci_spec_text(hci_spec *s, const char *key);

/* HC_EINVAL naming the first item no getter consumed; `allowed` lists the accepted ones. */
int hci_spec_finish(const hci_spec *s, const char *allowed);

#endif
