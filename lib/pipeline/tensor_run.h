/* What one tensor's run shares between tensor_run.c, refine.c and escalate.c. */
#ifndef HCI_PIPELINE_TENSOR_RUN_H
#define HCI_PIPELINE_TENSOR_RUN_H

#include "pipeline/pipeline_internal.h"

typedef struct hci_tensor_ctx {
    const hci_run *run;
    const hc_pipeline *p;
    hc_tensor_view view;   /* the caller's view, checked */
    const char *name;
    const float *w;        /* f32 values of the original */
    float *owned;
    int64_t n, rows, cols;
    double orig_bits;
} hci_tensor_ctx;

double hci_now(void);
/* A view of `data` with the original's name, shape and importance. */
hc_tensor_view hci_view_of(const hci_tensor_ctx *tc, const float *data);
/* Codes a view with a fresh compressor made from spec (threads 0 keeps the spec's). */
int hci_code_view(hc_ctensor **out, const char *spec, uint32_t threads, const hc_tensor_view *v);
float *hci_alloc_values(const hci_tensor_ctx *tc);
void hci_measure(hc_stats *s, const float *ref, const float *dec, int64_t n);
void hci_fill(hc_stage_metrics *m, const hci_tensor_ctx *tc, uint32_t index, const char *stage, const char *spec,
              uint32_t attempt, uint32_t action, uint64_t stage_bits, uint64_t bits, const hc_stats *s);
uint64_t hci_ct_bits(const hc_ctensor *ct);
/* Tensor gate, then (only if it passed) the model gate; sets m->gate_passed and *passed. */
int hci_judge(const hci_tensor_ctx *tc, const hc_gate *gate, const hc_stats *s, const float *decoded,
              hc_stage_metrics *m, int *passed);
/* Reports the tensor's final result (HC_STAGE_CHOSEN). */
int hci_report_final(const hci_tensor_ctx *tc, hc_ctensor *ct, const char *stage, const char *spec, uint32_t index,
                     double seconds);
/* No stage passed: the fallback coding, or HC_EQUALITY naming the tensor and why. */
int hci_no_pass(hc_ctensor **out, const hci_tensor_ctx *tc, const char *why, double t_start);

int hci_run_refine(hc_ctensor **out, const hci_tensor_ctx *tc);
int hci_run_escalate(hc_ctensor **out, const hci_tensor_ctx *tc);

#endif
