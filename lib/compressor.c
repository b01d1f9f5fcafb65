/* The opaque compressor: creation from options or a spec string, threads, freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "common/alloc.h"
#include "common/error.h"
#include "common/parallel.h"

static void free_opts(const hci_codec *codec, void *opts)
{
    if (!opts)
        return;
    if (codec && codec->free_opts)
        codec->free_opts(opts);
    else
        free(opts);
}

int hci_compressor_create(hc_compressor **out, const hci_codec *codec, void *opts, uint32_t threads,
                          const char *canonical_spec)
{
    *out = NULL;
    hc_compressor *c = hci_calloc(1, sizeof *c);
    if (!c) {
        free_opts(codec, opts);
        return HC_ENOMEM;
    }
    c->codec = codec;
    c->opts = opts;
    c->threads = hci_resolve_threads(threads);
    snprintf(c->spec, sizeof c->spec, "%s", canonical_spec);
    *out = c;
    return HC_OK;
}

void hc_compressor_free(hc_compressor *c)
{
    if (!c)
        return;
    free_opts(c->codec, c->opts);
    hci_free(c);
}

const char *hc_compressor_spec(const hc_compressor *c)
{
    return c ? c->spec : "";
}

int hc_compressor_set_threads(hc_compressor *c, uint32_t threads)
{
    if (!c)
        return hci_fail(HC_EINVAL, "hc_compressor_set_threads: compressor is NULL");
    c->threads = hci_resolve_threads(threads);
    return HC_OK;
}

int hc_compressor_from_spec(hc_compressor **out, const char *spec)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_compressor_from_spec: out is NULL");
    *out = NULL;
    hci_spec s;
    int rc = hci_spec_parse(&s, spec);
    if (rc != HC_OK)
        return rc;
    hci_spec_ctor ctor = hci_spec_ctor_by_name(s.codec);
    if (!ctor) {
        char names[512];
        hci_codec_names(names, sizeof names);
        return hci_fail(HC_ENOTFOUND, "codec spec '%s': unknown codec '%s' (known: %s)", s.text, s.codec, names);
    }
    uint32_t threads = 1;
    int have_threads = hci_spec_u32(&s, "threads", 0, 1024, &threads);
    if (have_threads < 0)
        return have_threads;
    rc = ctor(out, &s);
    if (rc == HC_OK && have_threads)
        (*out)->threads = hci_resolve_threads(threads);
    return rc;
}
