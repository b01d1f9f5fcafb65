/* Adam (Kingma & Ba, arXiv 1412.6980, Algorithm 1) fed by the Grokfast EMA gradient filter
 * (Lee et al., arXiv 2405.20233, Algorithm 2: ema = a*ema + (1-a)*g; g_hat = g + lambda*ema). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/options.h"
#include "hypercomp/grokfast.h"

struct hc_grokfast {
    hc_grokfast_options o;
    size_t n;
    uint64_t t;
    float *ema, *m, *v;
};

int hc_grokfast_options_init(hc_grokfast_options *opts, uint32_t struct_size)
{
    hc_grokfast_options d = HC_GROKFAST_OPTIONS_INIT;
    return hci_options_init(opts, struct_size, &d, sizeof d, offsetof(hc_grokfast_options, lr), "hc_grokfast_options");
}

int hc_grokfast_new(hc_grokfast **out, size_t n_params, const hc_grokfast_options *user)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_grokfast_new: out is NULL");
    *out = NULL;
    hc_grokfast_options o = HC_GROKFAST_OPTIONS_INIT;
    int merge_rc = hci_options_merge(&o, sizeof o, user, offsetof(hc_grokfast_options, lr), "hc_grokfast_options");
    if (merge_rc != HC_OK)
        return merge_rc;
    if (n_params == 0)
        return hci_fail(HC_EINVAL, "hc_grokfast_new: n_params is 0");
    if (!(o.lr > 0 && isfinite(o.lr)))
        return hci_fail(HC_EINVAL, "hc_grokfast_options: lr %g must be a positive number", (double)o.lr);
    if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
        return hci_fail(HC_EINVAL, "hc_grokfast_options: beta1 %g and beta2 %g must lie in [0, 1)", (double)o.beta1,
                        (double)o.beta2);
    if (!(o.eps > 0 && isfinite(o.eps)))
        return hci_fail(HC_EINVAL, "hc_grokfast_options: eps %g must be a positive number", (double)o.eps);
    if (!(o.alpha >= 0 && o.alpha < 1))
        return hci_fail(HC_EINVAL, "hc_grokfast_options: alpha %g must lie in [0, 1)", (double)o.alpha);
    if (!(o.lambda >= 0 && isfinite(o.lambda)))
        return hci_fail(HC_EINVAL, "hc_grokfast_options: lambda %g must be a non-negative number",
                        (double)o.lambda);
    if (o.filter > 1)
        return hci_fail(HC_EINVAL, "hc_grokfast_options: filter %u must be 0 or 1", o.filter);
    hc_grokfast *g = hci_calloc(1, sizeof *g);
    if (!g)
        return HC_ENOMEM;
    g->o = o;
    g->n = n_params;
    g->ema = hci_calloc(n_params, sizeof(float));
    g->m = g->ema ? hci_calloc(n_params, sizeof(float)) : NULL;
    g->v = g->m ? hci_calloc(n_params, sizeof(float)) : NULL;
    if (!g->v) {
        hc_grokfast_free(g);
        return HC_ENOMEM;
    }
    *out = g;
    return HC_OK;
}

void hc_grokfast_free(hc_grokfast *g)
{
    if (!g)
        return;
    hci_free(g->ema);
    hci_free(g->m);
    hci_free(g->v);
    hci_free(g);
}

uint64_t hc_grokfast_steps(const hc_grokfast *g)
{
    return g ? g->t : 0;
}

int hc_grokfast_step(hc_grokfast *g, float *params, const float *grad)
{
    if (!g || !params || !grad)
        return hci_fail(HC_EINVAL, "hc_grokfast_step: %s is NULL", !g ? "optimiser" : (!params ? "params" : "grad"));
    for (size_t i = 0; i < g->n; i++)
        if (!isfinite(grad[i]))
            return hci_fail(HC_EINVAL, "hc_grokfast_step: grad[%zu] = %g is not finite", i, (double)grad[i]);
    const hc_grokfast_options *o = &g->o;
    g->t++;
    double bc1 = 1.0 - pow(o->beta1, (double)g->t);
    double bc2 = 1.0 - pow(o->beta2, (double)g->t);
    for (size_t i = 0; i < g->n; i++) {
        float gi = grad[i];
        if (o->filter) {
            g->ema[i] = g->t == 1 ? gi : o->alpha * g->ema[i] + (1.0f - o->alpha) * gi;
            gi = gi + o->lambda * g->ema[i];
        }
        g->m[i] = o->beta1 * g->m[i] + (1.0f - o->beta1) * gi;
        g->v[i] = o->beta2 * g->v[i] + (1.0f - o->beta2) * gi * gi;
        double mhat = g->m[i] / bc1, vhat = g->v[i] / bc2;
        params[i] -= (float)(o->lr * mhat / (sqrt(vhat) + o->eps));
    }
    return HC_OK;
}
