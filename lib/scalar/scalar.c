/* Scalar codec options, their validation, spec strings and the hc_scalar_new constructor. */
#include "scalar/scalar.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/options.h"

static const struct {
    hc_scalar_kind kind;
    const char *name;
    const hci_codec *codec;
    const char *keys;   /* the spec keys it accepts, for messages */
} kinds[] = {
    { HC_SCALAR_F32, "f32", &hci_codec_f32, "threads=N" },
    { HC_SCALAR_FP16, "fp16", &hci_codec_fp16, "threads=N" },
    { HC_SCALAR_BF16, "bf16", &hci_codec_bf16, "threads=N" },
    { HC_SCALAR_INT8, "int8", &hci_codec_int8, "clip=P, threads=N" },
    { HC_SCALAR_NF4, "nf4", &hci_codec_nf4, "block=N, scale_block=N, threads=N" },
    { HC_SCALAR_TERNARY, "ternary", &hci_codec_ternary, "threads=N" },
};

#define NKINDS (sizeof kinds / sizeof kinds[0])

int hc_scalar_options_init(hc_scalar_options *opts, uint32_t struct_size)
{
    hc_scalar_options d = HC_SCALAR_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_scalar_options, clip_percentile), "hc_scalar_options");
}

static int kind_index(hc_scalar_kind kind, size_t *out)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == kind) {
            *out = i;
            return 1;
        }
    return 0;
}

/* The shortest plain decimal text (no exponent) that reads back as the same float, so a
 * canonical spec rebuilds exactly the compressor it came from. */
static void shortest_float(char *buf, size_t size, float v)
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, size, "%.*g", digits, (double)v);
        if (!strchr(buf, 'e') && strtof(buf, NULL) == v)
            return;
    }
    snprintf(buf, size, "%.9g", (double)v);
}

/* Writes the canonical spec: the name plus every option that applies to this kind. */
static void canonical_spec(char *buf, size_t size, const hc_scalar_options *o, const char *name)
{
    char clip[32];
    switch (o->kind) {
    case HC_SCALAR_INT8:
        shortest_float(clip, sizeof clip, o->clip_percentile);
        snprintf(buf, size, "%s:clip=%s", name, clip);
        break;
    case HC_SCALAR_NF4:
        snprintf(buf, size, "%s:block=%u,scale_block=%u", name, o->block_size, o->scale_block_size);
        break;
    default:
        snprintf(buf, size, "%s", name);
        break;
    }
}

int hc_scalar_new(hc_compressor **out, const hc_scalar_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_scalar_new: out is NULL");
    *out = NULL;
    hc_scalar_options o = HC_SCALAR_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user,
                                     offsetof(hc_scalar_options, clip_percentile), "hc_scalar_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    size_t k;
    if (!kind_index(o.kind, &k))
        return hci_fail(HC_EINVAL, "hc_scalar_options: unknown kind %d", (int)o.kind);
    if (!(o.clip_percentile > 0.0f && o.clip_percentile <= 100.0f))
        return hci_fail(HC_EINVAL, "hc_scalar_options: clip_percentile %g is outside (0, 100]",
                        (double)o.clip_percentile);
    if (o.block_size < HCI_NF4_MIN_BLOCK || o.block_size > HCI_NF4_MAX_BLOCK)
        return hci_fail(HC_EINVAL, "hc_scalar_options: block_size %u is outside [%u, %u]", o.block_size,
                        HCI_NF4_MIN_BLOCK, HCI_NF4_MAX_BLOCK);
    if (o.scale_block_size < 1 || o.scale_block_size > HCI_NF4_MAX_BLOCK)
        return hci_fail(HC_EINVAL, "hc_scalar_options: scale_block_size %u is outside [1, %u]",
                        o.scale_block_size, HCI_NF4_MAX_BLOCK);
    hc_scalar_options *copy = hci_malloc(sizeof *copy);
    if (!copy)
        return HC_ENOMEM;
    *copy = o;
    char spec[256];
    canonical_spec(spec, sizeof spec, &o, kinds[k].name);
    return hci_compressor_create(out, kinds[k].codec, copy, o.threads, spec);
}

int hci_scalar_from_spec(hc_compressor **out, hci_spec *spec)
{
    hc_scalar_options o = HC_SCALAR_OPTIONS_INIT;
    size_t k = NKINDS;
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i].name, spec->codec) == 0)
            k = i;
    if (k == NKINDS)
        return hci_fail(HC_ENOTFOUND, "codec spec '%s': '%s' is not a scalar codec", spec->text, spec->codec);
    o.kind = kinds[k].kind;
    int rc = HC_OK;
    if (o.kind == HC_SCALAR_INT8) {
        rc = hci_spec_float(spec, "clip", 0.0, 100.0, &o.clip_percentile);
        if (rc == 1 && !(o.clip_percentile > 0.0f))
            return hci_fail(HC_EINVAL, "codec spec '%s': clip=%s is not a percentile in (0, 100]", spec->text,
                            hci_spec_text(spec, "clip"));
    } else if (o.kind == HC_SCALAR_NF4) {
        rc = hci_spec_u32(spec, "block", HCI_NF4_MIN_BLOCK, HCI_NF4_MAX_BLOCK, &o.block_size);
        if (rc >= 0)
            rc = hci_spec_u32(spec, "scale_block", 1, HCI_NF4_MAX_BLOCK, &o.scale_block_size);
    }
    if (rc < 0)
        return rc;
    rc = hci_spec_finish(spec, kinds[k].keys);
    if (rc != HC_OK)
        return rc;
    return hc_scalar_new(out, &o);
}
