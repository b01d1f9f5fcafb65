/* Quality gates: per-tensor thresholds (relative RMS error, SNR, cosine), their text form, and
 * the model gate's retention rule. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/options.h"
#include "pipeline/pipeline_internal.h"

int hc_gate_init(hc_gate *gate, uint32_t struct_size)
{
    hc_gate d = HC_GATE_INIT;
    return hci_options_init(gate, struct_size, &d, sizeof d, offsetof(hc_gate, max_rel_rmse), "hc_gate");
}

static int parse_one(hc_gate *g, const char *cond, size_t len)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return hci_fail(HC_EINVAL, "gate condition '%.*s' is %s", (int)len, cond, len ? "too long" : "empty");
    memcpy(buf, cond, len);
    buf[len] = '\0';
    static const struct {
        const char *key, *op;
        uint32_t bit;
    } forms[] = {
        { "rel_rmse", "<=", HC_GATE_REL_RMSE },
        { "snr", ">=", HC_GATE_SNR },
        { "cosine", ">=", HC_GATE_COSINE },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t kl = strlen(forms[i].key);
        if (strncmp(buf, forms[i].key, kl) != 0 || strncmp(buf + kl, forms[i].op, 2) != 0)
            continue;
        const char *num = buf + kl + 2;
        char *end;
        double v = strtod(num, &end);
        if (end == num || *end != '\0' || !isfinite(v))
            return hci_fail(HC_EINVAL, "gate condition '%s': '%s' is not a finite number", buf, num);
        if (forms[i].bit == HC_GATE_REL_RMSE) {
            if (v < 0)
                return hci_fail(HC_EINVAL, "gate condition '%s': rel_rmse bound %g is negative", buf, v);
            g->max_rel_rmse = v;
        } else if (forms[i].bit == HC_GATE_SNR) {
            g->min_snr_db = v;
        } else {
            if (v < -1 || v > 1)
                return hci_fail(HC_EINVAL, "gate condition '%s': cosine bound %g is outside [-1, 1]", buf, v);
            g->min_cosine = v;
        }
        g->checks |= forms[i].bit;
        return HC_OK;
    }
    return hci_fail(HC_EINVAL, "gate condition '%s' is not one of rel_rmse<=X, snr>=X, cosine>=X", buf);
}

int hc_gate_parse(hc_gate *gate, const char *text)
{
    if (!gate || !text)
        return hci_fail(HC_EINVAL, "hc_gate_parse: %s is NULL", gate ? "text" : "gate");
    if (gate->struct_size < sizeof(hc_gate))
        return hci_fail(HC_EINVAL, "hc_gate_parse: gate struct_size %u is smaller than %zu (was it initialised?)",
                        gate->struct_size, sizeof(hc_gate));
    hc_gate g = *gate;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = parse_one(&g, p, len);
        if (rc != HC_OK)
            return rc;
        if (!comma)
            break;
        p = comma + 1;
    }
    *gate = g;
    return HC_OK;
}

int hc_gate_passes(const hc_gate *gate, const hc_stats *s)
{
    if (!gate || !s)
        return 1;
    /* comparisons written so that a NaN statistic fails */
    if ((gate->checks & HC_GATE_REL_RMSE) && !(s->rel_rmse <= gate->max_rel_rmse))
        return 0;
    if ((gate->checks & HC_GATE_SNR) && !(s->snr_db >= gate->min_snr_db))
        return 0;
    if ((gate->checks & HC_GATE_COSINE) && !(s->cosine >= gate->min_cosine))
        return 0;
    return 1;
}

int hci_retains(const hc_pipeline *p, double score, double baseline)
{
    if (!isfinite(score))
        return 0;
    double f = p->o.model_retain;
    /* higher is better: score >= f * baseline; lower is better (perplexity): baseline / score >= f */
    if (p->o.higher_is_better)
        return score >= f * baseline;
    return score * f <= baseline;
}
