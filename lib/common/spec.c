#include "common/spec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "hypercomp/common.h"

static int valid_word(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int hci_spec_parse(hci_spec *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    if (!spec)
        return hci_fail(HC_EINVAL, "codec spec is NULL");
    if (strlen(spec) >= sizeof out->text)
        return hci_fail(HC_EINVAL, "codec spec is %zu characters long; the limit is %zu", strlen(spec),
                        sizeof out->text - 1);
    snprintf(out->text, sizeof out->text, "%s", spec);

    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *p = buf;
    char *colon = strchr(p, ':');
    if (colon)
        *colon = '\0';
    if (!valid_word(p))
        return hci_fail(HC_EINVAL, "codec spec '%s': codec name '%s' is empty or has characters outside [A-Za-z0-9_.-]",
                        spec, p);
    if (strlen(p) >= HCI_SPEC_MAX_TEXT)
        return hci_fail(HC_EINVAL, "codec spec '%s': codec name is too long", spec);
    snprintf(out->codec, sizeof out->codec, "%s", p);
    if (!colon)
        return HC_OK;

    char *rest = colon + 1;
    for (;;) {
        size_t len = strcspn(rest, ":,");
        char sep = rest[len];
        rest[len] = '\0';
        if (len == 0)
            return hci_fail(HC_EINVAL, "codec spec '%s' has an empty item (two separators in a row or one at the end)",
                            spec);
        if (out->n == HCI_SPEC_MAX_ITEMS)
            return hci_fail(HC_EINVAL, "codec spec '%s' has more than %d items", spec, HCI_SPEC_MAX_ITEMS);
        hci_spec_item *it = &out->items[out->n];
        char *eq = strchr(rest, '=');
        if (eq) {
            *eq = '\0';
            it->has_value = 1;
            if (!valid_word(rest) || strlen(rest) >= HCI_SPEC_MAX_TEXT)
                return hci_fail(HC_EINVAL, "codec spec '%s': key '%s' is empty, too long or malformed", spec, rest);
            if (!valid_word(eq + 1) || strlen(eq + 1) >= HCI_SPEC_MAX_TEXT)
                return hci_fail(HC_EINVAL, "codec spec '%s': value '%s' of key '%s' is empty, too long or malformed",
                                spec, eq + 1, rest);
            snprintf(it->key, sizeof it->key, "%s", rest);
            snprintf(it->value, sizeof it->value, "%s", eq + 1);
        } else {
            if (!valid_word(rest) || strlen(rest) >= HCI_SPEC_MAX_TEXT)
                return hci_fail(HC_EINVAL, "codec spec '%s': item '%s' is malformed", spec, rest);
            snprintf(it->key, sizeof it->key, "%s", rest);
        }
        for (size_t i = 0; i < out->n; i++)
            if (strcmp(out->items[i].key, it->key) == 0)
                return hci_fail(HC_EINVAL, "codec spec '%s' names '%s' twice", spec, it->key);
        out->n++;
        if (!sep)
            break;
        rest += len + 1;
    }
    return HC_OK;
}

static hci_spec_item *find(hci_spec *s, const char *key, int with_value)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].has_value == with_value && strcmp(s->items[i].key, key) == 0)
            return &s->items[i];
    return NULL;
}

int hci_spec_u32(hci_spec *s, const char *key, uint32_t min, uint32_t max, uint32_t *value)
{
    hci_spec_item *it = find(s, key, 1);
    if (!it)
        return 0;
    it->used = 1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(it->value, &end, 10);
    if (*end || errno || it->value[0] == '-' || v < min || v > max)
        return hci_fail(HC_EINVAL, "codec spec '%s': %s=%s is not a whole number from %u to %u", s->text, key,
                        it->value, min, max);
    *value = (uint32_t)v;
    return 1;
}

int hci_spec_float(hci_spec *s, const char *key, double min, double max, float *value)
{
    hci_spec_item *it = find(s, key, 1);
    if (!it)
        return 0;
    it->used = 1;
    char *end;
    errno = 0;
    double v = strtod(it->value, &end);
    if (*end || errno || !isfinite(v) || v < min || v > max)
        return hci_fail(HC_EINVAL, "codec spec '%s': %s=%s is not a number from %g to %g", s->text, key, it->value,
                        min, max);
    *value = (float)v;
    return 1;
}

int hci_spec_flag(hci_spec *s, const char *word)
{
    hci_spec_item *it = find(s, word, 0);
    if (!it)
        return 0;
    it->used = 1;
    return 1;
}

const char *hci_spec_text(hci_spec *s, const char *key)
{
    hci_spec_item *it = find(s, key, 1);
    if (!it)
        return NULL;
    it->used = 1;
    return it->value;
}

int hci_spec_finish(const hci_spec *s, const char *allowed)
{
    for (size_t i = 0; i < s->n; i++) {
        const hci_spec_item *it = &s->items[i];
        if (it->used)
            continue;
        if (it->has_value)
            return hci_fail(HC_EINVAL, "codec spec '%s': unknown key '%s' for codec '%s' (accepted: %s)", s->text,
                            it->key, s->codec, allowed);
        return hci_fail(HC_EINVAL, "codec spec '%s': unknown preset '%s' for codec '%s' (accepted: %s)", s->text,
                        it->key, s->codec, allowed);
    }
    return HC_OK;
}
