/* The VPTQ codec's options, presets, spec strings and constructor. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/options.h"
#include "vptq/vptq.h"
#include "vptq/vptq_codec.h"

const hci_codec hci_codec_vptq = {
    HC_CODEC_VPTQ, "vptq", hci_vq_compress, hci_vq_attach, hci_vq_detach, hci_vq_decode, hci_vq_matvec, NULL,
};

static const char *const scale_names[] = { "auto", "none", "row", "col", "both" };
static const char *const codebook_names[] = { "auto", "learned", "builtin" };

/* Budgets of the presets: the rates of the llama.cpp types they are measured against
 * (IQ2_XXS 2.06, IQ3_XXS 3.06, IQ4_XS 4.25). */
static const struct {
    const char *word;
    float bpw;
} presets[] = { { "2bit", 2.06f }, { "3bit", 3.06f }, { "4bit", 4.25f } };

int hc_vptq_options_init(hc_vptq_options *opts, uint32_t struct_size)
{
    hc_vptq_options d = HC_VPTQ_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_vptq_options, threads) + sizeof(uint32_t), "hc_vptq_options");
}

static int pow2(uint32_t k)
{
    return k >= 2 && k <= 65536 && (k & (k - 1)) == 0;
}

static void put_count(char *buf, size_t size, uint32_t v, uint32_t auto_value)
{
    if (v == auto_value)
        snprintf(buf, size, "auto");
    else
        snprintf(buf, size, "%u", v);
}

static void canonical_spec(char *buf, size_t size, const hc_vptq_options *o)
{
    char v[16], k[16], r[16];
    put_count(v, sizeof v, o->v, 0);
    put_count(k, sizeof k, o->k, 0);
    put_count(r, sizeof r, o->residual_k, HC_VPTQ_AUTO);
    snprintf(buf, size,
             "vptq:bpw=%g,v=%s,k=%s,residual=%s,outlier=%g,scale=%s,iters=%u,refine=%u,grokfast=%u,seed=%llu,"
             "train=%u,threads=%u,codebook=%s",
             (double)o->bpw, v, k, r, (double)o->outlier_fraction, scale_names[o->scale], o->iters, o->refine,
             o->grokfast, (unsigned long long)o->seed, o->train_points, o->threads,
             codebook_names[o->codebook]);
}

int hc_vptq_new(hc_compressor **out, const hc_vptq_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_vptq_new: out is NULL");
    *out = NULL;
    hc_vptq_options o = HC_VPTQ_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user,
                                     offsetof(hc_vptq_options, threads) + sizeof(uint32_t), "hc_vptq_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    if (!(o.bpw >= 0.0f && o.bpw <= 64.0f))
        return hci_fail(HC_EINVAL, "hc_vptq_options: bpw %g is outside [0, 64] (0 means no budget)", (double)o.bpw);
    if (o.v != 0 && (o.v < 2 || o.v > VQ_MAX_V))
        return hci_fail(HC_EINVAL, "hc_vptq_options: vector length v = %u is outside [2, %u] (0 = chosen)", o.v,
                        VQ_MAX_V);
    if (o.k != 0 && !pow2(o.k))
        return hci_fail(HC_EINVAL, "hc_vptq_options: k = %u is not a power of two from 2 to 65536 (0 = chosen)", o.k);
    if (o.residual_k != 0 && o.residual_k != HC_VPTQ_AUTO && !pow2(o.residual_k))
        return hci_fail(HC_EINVAL, "hc_vptq_options: residual_k = %u is not 0, HC_VPTQ_AUTO or a power of two "
                        "from 2 to 65536", o.residual_k);
    if (!(o.outlier_fraction >= 0.0f && o.outlier_fraction <= 0.5f))
        return hci_fail(HC_EINVAL, "hc_vptq_options: outlier_fraction %g is outside [0, 0.5]",
                        (double)o.outlier_fraction);
    if ((unsigned)o.scale > HC_VPTQ_SCALE_BOTH)
        return hci_fail(HC_EINVAL, "hc_vptq_options: unknown scale mode %d", (int)o.scale);
    if ((unsigned)o.codebook > HC_VPTQ_CODEBOOK_BUILTIN)
        return hci_fail(HC_EINVAL, "hc_vptq_options: unknown codebook source %d", (int)o.codebook);
    if (o.iters > 1000)
        return hci_fail(HC_EINVAL, "hc_vptq_options: iters %u is above 1000", o.iters);
    if (o.refine > 100000)
        return hci_fail(HC_EINVAL, "hc_vptq_options: refine %u is above 100000", o.refine);
    if (o.grokfast > 1)
        return hci_fail(HC_EINVAL, "hc_vptq_options: grokfast %u must be 0 or 1", o.grokfast);
    if (o.bpw == 0.0f && (!o.v || !o.k))
        return hci_fail(HC_EINVAL, "hc_vptq_options: without a bpw budget both v and k must be given (v = %u, k = %u)",
                        o.v, o.k);
    hc_vptq_options *copy = hci_malloc(sizeof *copy);
    if (!copy)
        return HC_ENOMEM;
    *copy = o;
    char spec[256];
    canonical_spec(spec, sizeof spec, &o);
    return hci_compressor_create(out, &hci_codec_vptq, copy, o.threads, spec);
}

/* "auto" or a whole number in [min, max]; 1 when set, 0 when absent, negative on error. */
static int count_or_auto(hci_spec *s, const char *key, uint32_t min, uint32_t max, uint32_t auto_value,
                         uint32_t *value)
{
    const char *t = hci_spec_text(s, key);
    if (!t)
        return 0;
    if (strcmp(t, "auto") == 0) {
        *value = auto_value;
        return 1;
    }
    return hci_spec_u32(s, key, min, max, value);
}

#define VPTQ_ACCEPTED                                                                                      \
    "2bit, 3bit, 4bit, bpw=B, v=2..16|auto, k=2..65536|auto, residual=0|2..65536|auto, outlier=0..0.5, " \
    "scale=auto|none|row|col|both, iters=N, refine=N, grokfast=0|1, seed=N, train=N, threads=N, "           \
    "codebook=auto|learned|builtin"

int hci_vptq_from_spec(hc_compressor **out, hci_spec *spec)
{
    hc_vptq_options o = HC_VPTQ_OPTIONS_INIT;
    int npre = 0;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (hci_spec_flag(spec, presets[i].word)) {
            o.bpw = presets[i].bpw;
            npre++;
        }
    if (npre > 1)
        return hci_fail(HC_EINVAL, "codec spec '%s' names more than one preset", spec->text);
    int rc;
    uint32_t seed = 1;
    if ((rc = hci_spec_float(spec, "bpw", 0.0, 64.0, &o.bpw)) < 0 ||
        (rc = count_or_auto(spec, "v", 2, VQ_MAX_V, 0, &o.v)) < 0 ||
        (rc = count_or_auto(spec, "k", 2, 65536, 0, &o.k)) < 0 ||
        (rc = count_or_auto(spec, "residual", 0, 65536, HC_VPTQ_AUTO, &o.residual_k)) < 0 ||
        (rc = hci_spec_float(spec, "outlier", 0.0, 0.5, &o.outlier_fraction)) < 0 ||
        (rc = hci_spec_u32(spec, "iters", 0, 1000, &o.iters)) < 0 ||
        (rc = hci_spec_u32(spec, "refine", 0, 100000, &o.refine)) < 0 ||
        (rc = hci_spec_u32(spec, "grokfast", 0, 1, &o.grokfast)) < 0 ||
        (rc = hci_spec_u32(spec, "seed", 0, UINT32_MAX, &seed)) < 0 ||
        (rc = hci_spec_u32(spec, "train", 0, INT32_MAX, &o.train_points)) < 0 ||
        (rc = hci_spec_u32(spec, "threads", 0, 1024, &o.threads)) < 0)
        return rc;
    o.seed = seed;
    if (o.k && !pow2(o.k))
        return hci_fail(HC_EINVAL, "codec spec '%s': k=%u is not a power of two", spec->text, o.k);
    if (o.residual_k && o.residual_k != HC_VPTQ_AUTO && !pow2(o.residual_k))
        return hci_fail(HC_EINVAL, "codec spec '%s': residual=%u is not 0, auto or a power of two", spec->text,
                        o.residual_k);
    const char *sc = hci_spec_text(spec, "scale");
    if (sc) {
        int found = 0;
        for (int i = 0; i <= HC_VPTQ_SCALE_BOTH; i++)
            if (strcmp(sc, scale_names[i]) == 0) {
                o.scale = (hc_vptq_scale)i;
                found = 1;
            }
        if (!found)
            return hci_fail(HC_EINVAL, "codec spec '%s': scale=%s is not one of auto, none, row, col, both",
                            spec->text, sc);
    }
    const char *cbs = hci_spec_text(spec, "codebook");
    if (cbs) {
        int found = 0;
        for (int i = 0; i <= HC_VPTQ_CODEBOOK_BUILTIN; i++)
            if (strcmp(cbs, codebook_names[i]) == 0) {
                o.codebook = (hc_vptq_codebook)i;
                found = 1;
            }
        if (!found)
            return hci_fail(HC_EINVAL, "codec spec '%s': codebook=%s is not one of auto, learned, builtin",
                            spec->text, cbs);
    }
    rc = hci_spec_finish(spec, VPTQ_ACCEPTED);
    if (rc != HC_OK)
        return rc;
    if (o.bpw == 0.0f && (!o.v || !o.k))
        return hci_fail(HC_EINVAL, "codec spec '%s': bpw=0 (no budget) needs v and k", spec->text);
    return hc_vptq_new(out, &o);
}
