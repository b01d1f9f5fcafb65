/* Turns the pipeline options of a command line into an hc_pipeline (see pipeline_build.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "pipeline_build.h"

static int fail(hc_pipeline *p, int code)
{
    hc_pipeline_free(p);
    return code;
}

int cli_pipeline_build(hc_pipeline **out, const char *cmd, const cli_pipeline_args *a)
{
    *out = NULL;
    if (!a->mode || (strcmp(a->mode, "refine") != 0 && strcmp(a->mode, "escalate") != 0))
        return cli_error(CLI_USAGE, cmd, "--pipeline must be refine or escalate, not '%s'", a->mode ? a->mode : "");
    if (a->n_stages == 0)
        return cli_error(CLI_USAGE, cmd, "--pipeline needs at least one --stage SPEC");
    hc_pipeline_options o = HC_PIPELINE_OPTIONS_INIT;
    o.mode = strcmp(a->mode, "refine") == 0 ? HC_PIPELINE_REFINE : HC_PIPELINE_ESCALATE;
    o.fallback_spec = a->fallback;
    o.threads = a->threads;
    o.gain_iters = a->gains;
    o.gain_filter = a->no_grokfast ? 0 : 1;
    o.gain_solver = a->gain_exact ? 1 : 0;
    o.keep_below = a->keep_below;
    o.keep_1d = 0;
    char *end;
    if (a->min_db && ((o.min_db_per_bit = strtod(a->min_db, &end)), *end || end == a->min_db))
        return cli_error(CLI_USAGE, cmd, "--min-db-per-bit needs a number, not '%s'", a->min_db);
    if (a->gain_lr && ((o.gain_lr = strtof(a->gain_lr, &end)), *end || end == a->gain_lr))
        return cli_error(CLI_USAGE, cmd, "--gain-lr needs a number, not '%s'", a->gain_lr);
    hc_pipeline *p = NULL;
    if (hc_pipeline_new(&p, &o) != HC_OK)
        return cli_error(CLI_USAGE, cmd, "bad pipeline options: %s", hc_last_error());
    hc_gate common = HC_GATE_INIT;
    if (a->gate && hc_gate_parse(&common, a->gate) != HC_OK)
        return fail(p, cli_error(CLI_USAGE, cmd, "bad --gate: %s", hc_last_error()));
    for (uint32_t i = 0; i < a->n_stages; i++) {
        char spec[256];
        if ((size_t)snprintf(spec, sizeof spec, "%s", a->stages[i]) >= sizeof spec)
            return fail(p, cli_error(CLI_USAGE, cmd, "--stage '%.40s...' is longer than %zu characters", a->stages[i],
                                     sizeof spec - 1));
        char *at = strchr(spec, '@');
        hc_gate g = common;
        if (at) {
            *at = '\0';
            g = (hc_gate)HC_GATE_INIT;
            if (hc_gate_parse(&g, at + 1) != HC_OK)
                return fail(p, cli_error(CLI_USAGE, cmd, "bad gate in --stage '%s': %s", a->stages[i], hc_last_error()));
        }
        hc_compressor *c = NULL;
        int rc = hc_compressor_from_spec(&c, spec);
        if (rc == HC_OK && a->stage_threads_set)
            rc = hc_compressor_set_threads(c, a->stage_threads);
        if (rc == HC_OK)
            rc = hc_pipeline_add_stage(p, spec, c, &g);
        hc_compressor_free(c);
        if (rc != HC_OK)
            return fail(p, cli_error(CLI_USAGE, cmd, "bad --stage '%s': %s", a->stages[i], hc_last_error()));
    }
    *out = p;
    return CLI_OK;
}

void cli_pipeline_describe(char *buf, size_t size, const cli_pipeline_args *a)
{
    size_t n = (size_t)snprintf(buf, size, "pipeline %s:", a->mode ? a->mode : "?");
    for (uint32_t i = 0; i < a->n_stages && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " > " : " ", a->stages[i]);
    if (a->gate && n < size)
        n += (size_t)snprintf(buf + n, size - n, " gate %s", a->gate);
    if (a->fallback && n < size)
        snprintf(buf + n, size - n, " fallback %s", a->fallback);
}
