/* The contract between the generic compressor / compressed-tensor layer and each codec.
 *
 * A codec turns a finite f32 matrix into two byte strings: `params` (a few bytes of codec
 * parameters) and `payload` (the packed data). Those two, with the shape and original dtype,
 * are the whole compressed tensor: serialising is copying them, and a reader that maps a file
 * hands them back to attach() untouched. Codecs therefore read payload bytes with unaligned,
 * little-endian-safe loads (common/bytes.h or memcpy) and never trust them: attach() checks
 * every length against the shape before decode() or matvec() may run.
 */
#ifndef HCI_CODEC_H
#define HCI_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/spec.h"
#include "hypercomp/compressor.h"

/* A tensor ready for a codec: finite f32, row-major, rows x cols (see hc_tensor_view). */
typedef struct hci_matrix {
    const char *name;         /* for messages; never NULL ("(unnamed)" when the view had none) */
    const float *data;
    int64_t rows, cols, numel;
    const float *importance;  /* cols weights or NULL */
    const float *hessian;     /* cols x cols or NULL */
} hci_matrix;

typedef struct hci_codec hci_codec;

struct hc_compressor {
    const hci_codec *codec;
    uint32_t threads;     /* resolved: at least 1 */
    char spec[256];       /* canonical spec, every option spelled out */
    void *opts;           /* codec-specific options, owned (freed with codec->free_opts or free) */
};

struct hc_ctensor {
    const hci_codec *codec;
    hc_dtype orig_dtype;
    uint32_t ndim;
    int64_t shape[HC_MAX_DIMS];
    int64_t numel, rows, cols;
    uint8_t *params;      /* owned unless borrowed */
    uint32_t params_len;
    uint8_t *payload;     /* owned unless borrowed */
    uint64_t payload_len;
    int borrowed;         /* params/payload point into memory someone else owns (a mapped file) */
    void *state;          /* the codec's derived data, built by attach(), freed by detach() */
    uint32_t threads;
    int has_quality;      /* quality holds error statistics against the original */
    hc_stats quality;
};

struct hci_codec {
    uint32_t id;          /* hc_codec_id */
    const char *name;     /* short name used in messages and reports */

    /* Fills ct->params/params_len and ct->payload/payload_len (allocated with hci_malloc*).
     * ct's shape fields are set; c->opts holds the options. */
    int (*compress)(hc_ctensor *ct, const hc_compressor *c, const hci_matrix *w);

    /* Validates params and payload against the shape (every length, every count, every index
     * bound that decode would trust) and builds ct->state if the codec needs one.
     * Returns HC_EFORMAT with a message for anything inconsistent. */
    int (*attach)(hc_ctensor *ct);

    /* Frees ct->state; NULL when the codec keeps none. */
    void (*detach)(hc_ctensor *ct);

    /* Writes the values with flat indices [first, first + count) to out. */
    int (*decode)(const hc_ctensor *ct, int64_t first, int64_t count, float *out);

    /* y[r] = sum_c W[r, c] x[c] for rows [row0, row1); y points at the full output. */
    int (*matvec)(const hc_ctensor *ct, const float *x, float *y, int64_t row0, int64_t row1);

    /* Frees a compressor's options; NULL means free(). */
    void (*free_opts)(void *opts);
};

/* Builds a compressor that owns opts (freed on failure too). threads 0 = all CPUs. */
int hci_compressor_create(hc_compressor **out, const hci_codec *codec, void *opts, uint32_t threads,
                          const char *canonical_spec);

/* A spec constructor: parses what follows the codec name. The registry calls it. */
typedef int (*hci_spec_ctor)(hc_compressor **out, hci_spec *spec);

/* Registry lookups (lib/registry.c). */
const hci_codec *hci_codec_by_id(uint32_t id);
hci_spec_ctor hci_spec_ctor_by_name(const char *name);
/* Writes the comma-separated names accepted in specs into buf, for messages. */
void hci_codec_names(char *buf, size_t size);

/* Runs ct's matvec / decode over its rows on ct->threads threads. */
int hci_ctensor_decode_f32(const hc_ctensor *ct, float *out);

#endif
