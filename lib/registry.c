/* Every codec the library knows: by stable id (for reading) and by spec name (for creating).
 * A new codec adds one line to each table. */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "scalar/scalar.h"
#include "hyper.h"
#include "seedlm/seedlm_internal.h"
#include "pipeline/pipeline_internal.h"
#include "vptq/vptq_codec.h"

static const hci_codec *const codecs[] = {
    &hci_codec_f32, &hci_codec_fp16, &hci_codec_bf16,
    &hci_codec_int8,
    &hci_codec_nf4,
    &hci_codec_ternary,
    &hci_codec_seedlm,
    &hci_codec_vptq,
    &hci_codec_hyper_poly,
    &hci_codec_hyper_fourier,
    &hci_codec_hyper_ergodic,
    &hci_codec_residual,
};

static const struct {
    const char *name;
    hci_spec_ctor ctor;
} spec_names[] = {
    { "f32", hci_scalar_from_spec },  { "fp16", hci_scalar_from_spec }, { "bf16", hci_scalar_from_spec },
    { "int8", hci_scalar_from_spec },
    { "nf4", hci_scalar_from_spec },
    { "ternary", hci_scalar_from_spec },
    { "seedlm", hci_seedlm_from_spec },
    { "vptq", hci_vptq_from_spec },
    { "hyper", hci_hyper_from_spec },
};

const hci_codec *hci_codec_by_id(uint32_t id)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i]->id == id)
            return codecs[i];
    return NULL;
}

hci_spec_ctor hci_spec_ctor_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof spec_names / sizeof spec_names[0]; i++)
        if (strcmp(spec_names[i].name, name) == 0)
            return spec_names[i].ctor;
    return NULL;
}

void hci_codec_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof spec_names / sizeof spec_names[0] && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", spec_names[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
