/* Scalar codec options, their validation, spec strings and the hc_scalar_new constructor. */
#include "scalar/scalar.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

static const struct {
    hc_scalar_kind kind;
    const char *name;
    const hci_codec *codec;
} kinds[] = {
    { HC_SCALAR_F32, "f32", &hci_codec_f32 },
    { HC_SCALAR_FP16, "fp16", &hci_codec_fp16 },
    { HC_SCALAR_BF16, "bf16", &hci_codec_bf16 },
};

#define NKINDS (sizeof kinds / sizeof kinds[0])

int hc_scalar_options_init(hc_scalar_options *opts, uint32_t struct_size)
{
    if (!opts)
        return hci_fail(HC_EINVAL, "hc_scalar_options_init: opts is NULL");
    if (struct_size > sizeof(hc_scalar_options))
        return hci_fail(HC_EVERSION, "hc_scalar_options struct_size %u is larger than this library's %zu",
                        struct_size, sizeof(hc_scalar_options));
    if (struct_size < offsetof(hc_scalar_options, clip_percentile))
        return hci_fail(HC_EINVAL, "hc_scalar_options struct_size %u is too small", struct_size);
    hc_scalar_options d = HC_SCALAR_OPTIONS_INIT;
    d.struct_size = struct_size;
    memcpy(opts, &d, struct_size);
    return HC_OK;
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

/* Writes the canonical spec: the name plus every option that applies to this kind. */
static void canonical_spec(char *buf, size_t size, const hc_scalar_options *o, const char *name)
{
    (void)o; /* the float kinds have no options; int8 and nf4 spell theirs out */
    snprintf(buf, size, "%s", name);
}

int hc_scalar_new(hc_compressor **out, const hc_scalar_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_scalar_new: out is NULL");
    *out = NULL;
    hc_scalar_options o = HC_SCALAR_OPTIONS_INIT;
    if (user) {
        if (user->struct_size > sizeof o)
            return hci_fail(HC_EVERSION, "hc_scalar_options struct_size %u is larger than this library's %zu",
                            user->struct_size, sizeof o);
        if (user->struct_size < offsetof(hc_scalar_options, clip_percentile))
            return hci_fail(HC_EINVAL, "hc_scalar_options struct_size %u is too small (was it initialised?)",
                            user->struct_size);
        memcpy(&o, user, user->struct_size);
        o.struct_size = sizeof o;
    }
    size_t k;
    if (!kind_index(o.kind, &k))
        return hci_fail(HC_EINVAL, "hc_scalar_options: unknown kind %d", (int)o.kind);
    if (!(o.clip_percentile > 0.0f && o.clip_percentile <= 100.0f))
        return hci_fail(HC_EINVAL, "hc_scalar_options: clip_percentile %g is outside (0, 100]",
                        (double)o.clip_percentile);
    if (o.block_size < 2 || o.block_size > 65536)
        return hci_fail(HC_EINVAL, "hc_scalar_options: block_size %u is outside [2, 65536]", o.block_size);
    if (o.scale_block_size < 1 || o.scale_block_size > 65536)
        return hci_fail(HC_EINVAL, "hc_scalar_options: scale_block_size %u is outside [1, 65536]",
                        o.scale_block_size);
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
    int rc = hci_spec_finish(spec, "threads=N");
    if (rc != HC_OK)
        return rc;
    return hc_scalar_new(out, &o);
}
