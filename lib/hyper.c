/* Trajectory compressor options, their validation, spec strings and hc_hyper_new. */
#include "hyper.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/options.h"
#include "traj.h"

int hc_hyper_options_init(hc_hyper_options *opts, uint32_t struct_size)
{
    hc_hyper_options d = HC_HYPER_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d,
                            offsetof(hc_hyper_options, threads) + sizeof(uint32_t), "hc_hyper_options");
}

static const char *kind_name(hc_hyper_kind k)
{
    return k == HC_HYPER_POLY ? "poly" : (k == HC_HYPER_FOURIER ? "fourier" : "ergodic");
}

static int validate(hc_hyper_options *o)
{
    if (o->kind == HC_HYPER_POLY || o->kind == HC_HYPER_FOURIER) {
        if (o->segment < 1 || o->segment > 65536)
            return hci_fail(HC_EINVAL, "hc_hyper_options: segment length L=%u is outside [1, 65536]", o->segment);
        hc_trajectory_kind tk = o->kind == HC_HYPER_POLY ? HC_TRAJECTORY_POLY : HC_TRAJECTORY_FOURIER;
        if (hc_trajectory_terms(tk, o->degree) == 0)
            return hci_fail(HC_EINVAL, "hc_hyper_options: %s d=%u is outside [%u, 64]", kind_name(o->kind), o->degree,
                            o->kind == HC_HYPER_POLY ? 0u : 1u);
        if (!((o->coef_bits >= 2 && o->coef_bits <= 16) || o->coef_bits == 32))
            return hci_fail(HC_EINVAL, "hc_hyper_options: q=%u is neither in [2, 16] nor 32 (float coefficients)",
                            o->coef_bits);
    } else if (o->kind == HC_HYPER_ERGODIC) {
        if (o->group < 2 || o->group > 8)
            return hci_fail(HC_EINVAL, "hc_hyper_options: ergodic group size n=%u is outside [2, 8]", o->group);
        if (o->index_bits == 0)
            o->index_bits = o->group * 13 / 2;
        if (o->index_bits < 2 || o->index_bits > 32)
            return hci_fail(HC_EINVAL, "hc_hyper_options: ergodic index bits %u is outside [2, 32]", o->index_bits);
        if (o->max_rings > 15)
            return hci_fail(HC_EINVAL, "hc_hyper_options: ergodic rings %u is outside [0, 15]", o->max_rings);
        if (o->slope != HC_HYPER_SLOPE_PAPER && o->slope != HC_HYPER_SLOPE_SEARCH)
            return hci_fail(HC_EINVAL, "hc_hyper_options: unknown slope %d", (int)o->slope);
        if (o->spacing != HC_HYPER_RINGS_UNIFORM && o->spacing != HC_HYPER_RINGS_GEOMETRIC)
            return hci_fail(HC_EINVAL, "hc_hyper_options: unknown ring spacing %d", (int)o->spacing);
    } else {
        return hci_fail(HC_EINVAL, "hc_hyper_options: unknown kind %d", (int)o->kind);
    }
    return HC_OK;
}

static void canonical_spec(char *buf, size_t size, const hc_hyper_options *o)
{
    if (o->kind == HC_HYPER_ERGODIC)
        snprintf(buf, size, "hyper:ergodic,n=%u,bits=%u,rings=%u,slope=%s,spacing=%s", o->group, o->index_bits,
                 o->max_rings, o->slope == HC_HYPER_SLOPE_PAPER ? "paper" : "search",
                 o->spacing == HC_HYPER_RINGS_UNIFORM ? "uniform" : "geometric");
    else
        snprintf(buf, size, "hyper:%s,L=%u,d=%u,q=%u", kind_name(o->kind), o->segment, o->degree, o->coef_bits);
}

int hc_hyper_new(hc_compressor **out, const hc_hyper_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_hyper_new: out is NULL");
    *out = NULL;
    hc_hyper_options o = HC_HYPER_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user,
                                     offsetof(hc_hyper_options, threads) + sizeof(uint32_t), "hc_hyper_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    int rc = validate(&o);
    if (rc != HC_OK)
        return rc;
    hc_hyper_options *copy = hci_malloc(sizeof *copy);
    if (!copy)
        return HC_ENOMEM;
    *copy = o;
    char spec[256];
    canonical_spec(spec, sizeof spec, &o);
    const hci_codec *codec = o.kind == HC_HYPER_POLY      ? &hci_codec_hyper_poly
                             : o.kind == HC_HYPER_FOURIER ? &hci_codec_hyper_fourier
                                                          : &hci_codec_hyper_ergodic;
    return hci_compressor_create(out, codec, copy, o.threads, spec);
}

int hci_hyper_from_spec(hc_compressor **out, hci_spec *spec)
{
    hc_hyper_options o = HC_HYPER_OPTIONS_INIT;
    int presets = 0;
    if (hci_spec_flag(spec, "poly")) {
        o.kind = HC_HYPER_POLY;
        presets++;
    }
    if (hci_spec_flag(spec, "fourier")) {
        o.kind = HC_HYPER_FOURIER;
        o.degree = 8;   /* the same 8 coefficients per segment as the poly preset */
        presets++;
    }
    if (hci_spec_flag(spec, "ergodic")) {
        o.kind = HC_HYPER_ERGODIC;
        presets++;
    }
    if (presets > 1)
        return hci_fail(HC_EINVAL, "codec spec '%s' names more than one of poly, fourier, ergodic", spec->text);
    int traj = o.kind != HC_HYPER_ERGODIC;
    int rc;
    if ((rc = hci_spec_u32(spec, "L", 1, 65536, &o.segment)) < 0 ||
        (rc = hci_spec_u32(spec, "d", 0, 64, &o.degree)) < 0 || (rc = hci_spec_u32(spec, "q", 2, 32, &o.coef_bits)) < 0 ||
        (rc = hci_spec_u32(spec, "n", 2, 8, &o.group)) < 0 ||
        (rc = hci_spec_u32(spec, "bits", 2, 32, &o.index_bits)) < 0 ||
        (rc = hci_spec_u32(spec, "rings", 0, 15, &o.max_rings)) < 0 ||
        (rc = hci_spec_u32(spec, "threads", 0, 1024, &o.threads)) < 0)
        return rc;
    const char *slope = hci_spec_text(spec, "slope");
    if (slope) {
        if (strcmp(slope, "paper") == 0)
            o.slope = HC_HYPER_SLOPE_PAPER;
        else if (strcmp(slope, "search") == 0)
            o.slope = HC_HYPER_SLOPE_SEARCH;
        else
            return hci_fail(HC_EINVAL, "codec spec '%s': slope=%s is neither 'search' nor 'paper'", spec->text, slope);
    }
    const char *spacing = hci_spec_text(spec, "spacing");
    if (spacing) {
        if (strcmp(spacing, "uniform") == 0)
            o.spacing = HC_HYPER_RINGS_UNIFORM;
        else if (strcmp(spacing, "geometric") == 0)
            o.spacing = HC_HYPER_RINGS_GEOMETRIC;
        else
            return hci_fail(HC_EINVAL, "codec spec '%s': spacing=%s is neither 'geometric' nor 'uniform'", spec->text,
                            spacing);
    }
    /* keys of the other family would be silently ignored: name them instead */
    const char *foreign[] = { "L", "d", "q", "n", "bits", "rings", "slope", "spacing" };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        int is_traj_key = i < 3;
        if (is_traj_key == traj)
            continue;
        for (size_t k = 0; k < spec->n; k++)
            if (spec->items[k].has_value && strcmp(spec->items[k].key, foreign[i]) == 0)
                return hci_fail(HC_EINVAL, "codec spec '%s': key '%s' does not apply to hyper:%s", spec->text,
                                foreign[i], kind_name(o.kind));
    }
    rc = hci_spec_finish(spec, "poly, fourier, ergodic, L=, d=, q=, n=, bits=, rings=, slope=search|paper, spacing=geometric|uniform, threads=N");
    if (rc != HC_OK)
        return rc;
    return hc_hyper_new(out, &o);
}
