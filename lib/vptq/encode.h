/* VPTQ encoder pieces shared by the planner, the GPTQ pass and the refinement. */
#ifndef HCI_VPTQ_ENCODE_H
#define HCI_VPTQ_ENCODE_H

#include "vptq/vptq.h"

/* Stored scales, already rounded to what decode will see. */
typedef struct hci_vq_scales {
    float *cs;          /* cols, or NULL */
    float *rs;          /* rows, or NULL */
    uint8_t *rq;        /* rows row-scale codes */
    uint16_t rbase_h;   /* fp16 base of the row scales */
} hci_vq_scales;

int hci_vq_make_scales(hci_vq_scales *sc, const hci_matrix *w, uint32_t flags);
void hci_vq_free_scales(hci_vq_scales *sc);

/* The n_out most important columns (importance x energy, or energy), ascending. */
int hci_vq_pick_outliers(uint32_t *out, uint32_t n_out, const hci_matrix *w);

/* The normalised columns of one part as vectors: vector (s, r) at (s * rows + r) * v, padded
 * with zeros past ncols. */
typedef struct hci_vq_work {
    uint32_t v, segs, ncols;
    int64_t rows;
    const uint32_t *cols;
    float *vec;     /* segs * rows * v; GPTQ's error feedback changes it */
    float *vec0;    /* the unmodified copy (when asked for) */
    float *wt;      /* segs * rows k-means weights: row scale^2 x mean dimension weight */
    float *dimw;    /* segs * v: column scale^2 x importance, 0 in the padding */
    float *rs2;     /* rows: row scale^2 */
    uint32_t gsegs, ngroups;
    float *gs;      /* rows x ngroups group scales (NULL without groups) */
    uint8_t *gq;    /* their 4-bit codes */
} hci_vq_work;

/* The group scale of vector (s, r): 1 without groups. */
static inline float hci_vq_work_gs(const hci_vq_work *wk, uint32_t s, int64_t r)
{
    return wk->gs ? wk->gs[(size_t)r * wk->ngroups + s / wk->gsegs] : 1.0f;
}

/* Builds the vectors of a part; gsegs > 0 adds group scales of gsegs segments. */
int hci_vq_make_work(hci_vq_work *wk, const hci_matrix *w, const hci_vq_scales *sc, const uint32_t *cols, uint32_t ncols,
                 uint32_t v, uint32_t gsegs, int keep_original);
void hci_vq_free_work(hci_vq_work *wk);

/* H'[a][b] = cs_a cs_b H[cols a][cols b], ncols x ncols; NULL on OOM. */
float *hci_vq_part_hessian(const hci_matrix *w, const hci_vq_scales *sc, const uint32_t *cols, uint32_t ncols);

/* Group scales chosen by their error once the codebook is fixed: the RMS code of each group
 * (what make_work stored) and its neighbours within +-3 half-octaves are tried, each group
 * keeping the code whose assignment leaves the smallest weighted error. With a fixed codebook a
 * group's best scale is not its RMS: heavy tails want a larger one (fewer clipped values), flat
 * groups a smaller one (finer steps). For single-stage parts; wk->vec (and vec0), gs, gq and wt
 * change, and idx (segs x rows) receives the new assignment. */
int hci_vq_refit_groups(hci_vq_work *wk, const float *cb, uint32_t *idx, uint32_t k, uint32_t threads);

/* Row scale codes chosen by their error once the codebook is fixed, as group codes are: each
 * row tries its RMS code and the codes within +-8 eighth-octaves. Only for a layout of one part
 * with one stage, row scales, no group scales and no Hessian (the row scales are shared by the
 * parts, and group codes are fitted instead when there are groups). sc->rq/rs and wk->vec (and
 * vec0), rs2 and wt change; idx receives the new assignment. */
int hci_vq_refit_rows(hci_vq_work *wk, hci_vq_scales *sc, const float *cb, uint32_t *idx, uint32_t k,
                      uint32_t threads);

static inline int hci_vq_refits_rows(const hci_vq_config *c, const hci_matrix *w)
{
    return (c->flags & VQ_FLAG_ROW) && !c->n_out && !c->part[0].bits[1] && !c->part[0].gsegs && !w->hessian;
}

/* Chooses the layout for w under the options' budget. */
int hci_vq_plan(hci_vq_config *cfg, const hci_vq_opts *o, const hci_matrix *w, uint32_t ndim, uint32_t threads);

/* Learns codebooks cb[stage] (k x v, fp16-rounded) and fills idx[stage] (segs x rows).
 * With h (the part's normalised Hessian) the assignment runs in GPTQ order. */
int hci_vq_quantise_part(float *cb[2], uint32_t *idx[2], const hci_vq_work *wk, const hci_vq_part_cfg *pc, const float *h,
                     const hci_vq_opts *o, uint32_t threads);

/* GPTQ-order assignment with error feedback (VPTQ sec. 4.1, after Frantar et al. 2022):
 * E = (W - W_q) / [U]_qq with U the upper Cholesky factor of (H + damp I)^-1. wk->vec changes. */
int hci_vq_gptq_assign(uint32_t *idx[2], hci_vq_work *wk, const float *const cb[2], const uint32_t k[2], const float *h,
                   uint32_t threads);

/* Loss sum_r rs_r^2 e_r H e_r^T / sum_r rs_r^2 tr(H) (e = vec0 - reconstruction; diag(dimw) when h
 * is NULL) of codebooks cb with indices idx. */
double hci_vq_part_loss(const float *const cb[2], uint32_t *const idx[2], const hci_vq_work *wk, const float *h);

/* Adam (with or without the Grokfast filter) on the centroids against hci_vq_part_loss; keeps the
 * best centroids seen. loss_out (may be NULL) receives steps + 1 values. */
int hci_vq_refine(float *cb[2], const uint32_t k[2], uint32_t *idx[2], const hci_vq_work *wk, const float *h,
              uint32_t steps, int filter, double *loss_out);

#endif
