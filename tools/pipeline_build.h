/* The pipeline a command line describes (--pipeline MODE, --stage SPEC[@GATE], --gate, ...),
 * shared by `hypercomp eval --pipeline` and `hypercomp compress --pipeline`. */
#ifndef HYPERCOMP_PIPELINE_BUILD_H
#define HYPERCOMP_PIPELINE_BUILD_H

#include <stdint.h>

#include "hypercomp/hypercomp.h"

#define CLI_MAX_STAGES 16

typedef struct cli_pipeline_args {
    const char *mode;        /* "refine" or "escalate" */
    const char *stages[CLI_MAX_STAGES];
    uint32_t n_stages;
    const char *gate;        /* gate of stages without their own @GATE; NULL for none */
    const char *fallback;    /* spec coding a tensor no stage passes; NULL to fail */
    const char *min_db;      /* refine: minimum SNR gain per bit, as typed; NULL for the default */
    const char *gain_lr;     /* as typed; NULL for the default */
    uint32_t gains, threads;
    int stage_threads_set;   /* 1: every stage compresses with stage_threads (0 = every CPU) */
    uint32_t stage_threads;
    int no_grokfast, gain_exact;
    uint64_t keep_below;
} cli_pipeline_args;

/* Checks the arguments and builds the pipeline; on failure prints "hypercomp CMD: ..." naming the
 * bad argument and returns CLI_USAGE (*out stays NULL). */
int cli_pipeline_build(hc_pipeline **out, const char *cmd, const cli_pipeline_args *a);

/* "pipeline refine: seedlm:3bit > vptq:2bit@rel_rmse<=0.1" into buf, for metadata and reports. */
void cli_pipeline_describe(char *buf, size_t size, const cli_pipeline_args *a);

#endif
