/* The generic compressed tensor: compression driver, threaded decode and matvec, statistics,
 * and the serialised form (doc/format.md, "Serialised tensor"). */
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "common/half.h"
#include "common/metrics.h"
#include "common/parallel.h"
#include "tensor_view.h"

#define CT_MAGIC "HCT1"
#define CT_VERSION 1u
#define CT_FIXED_HEADER 24u
#define CT_MAX_PARAMS (1u << 20)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hc_ctensor_free(hc_ctensor *ct)
{
    if (!ct)
        return;
    if (ct->codec && ct->codec->detach)
        ct->codec->detach(ct);
    if (!ct->borrowed) {
        hci_free(ct->params);
        hci_free(ct->payload);
    }
    hci_free(ct);
}

static void set_shape(hc_ctensor *ct, uint32_t ndim, const int64_t *shape, int64_t numel)
{
    ct->ndim = ndim;
    memset(ct->shape, 0, sizeof ct->shape);
    for (uint32_t i = 0; i < ndim; i++)
        ct->shape[i] = shape[i];
    ct->numel = numel;
    hci_shape_matrix(ndim, shape, &ct->rows, &ct->cols);
}

/* ---- decode and matvec, split over rows ---- */

typedef struct decode_job {
    const hc_ctensor *ct;
    hc_dtype dtype;
    void *buf;
} decode_job;

static int decode_rows(void *ctx, int64_t r0, int64_t r1)
{
    decode_job *job = ctx;
    const hc_ctensor *ct = job->ct;
    int64_t first = r0 * ct->cols, count = (r1 - r0) * ct->cols;
    if (job->dtype == HC_DTYPE_F32)
        return ct->codec->decode(ct, first, count, (float *)job->buf + first);
    /* Other dtypes: decode a bounded chunk at a time into scratch, then convert. */
    enum { CHUNK = 16384 };
    float *tmp = hci_malloc_array(CHUNK, sizeof(float));
    if (!tmp)
        return HC_ENOMEM;
    int rc = HC_OK;
    for (int64_t i = 0; i < count && rc == HC_OK; i += CHUNK) {
        int64_t n = count - i < CHUNK ? count - i : CHUNK;
        rc = ct->codec->decode(ct, first + i, n, tmp);
        if (rc == HC_OK)
            hci_from_f32((uint16_t *)job->buf + first + i, job->dtype, tmp, (size_t)n);
    }
    hci_free(tmp);
    return rc;
}

static int64_t rows_per_task(const hc_ctensor *ct)
{
    /* at least ~64k values per thread, so small tensors stay on one thread */
    int64_t r = 65536 / (ct->cols > 0 ? ct->cols : 1);
    return r < 1 ? 1 : r;
}

static int decode_as(const hc_ctensor *ct, hc_dtype dtype, void *buf)
{
    decode_job job = { ct, dtype, buf };
    return hci_parallel_for(ct->threads, ct->rows, rows_per_task(ct), decode_rows, &job);
}

int hci_ctensor_decode_f32(const hc_ctensor *ct, float *out)
{
    return decode_as(ct, HC_DTYPE_F32, out);
}

int hc_ctensor_decode(const hc_ctensor *ct, hc_dtype dtype, void *buf, size_t buf_bytes)
{
    if (!ct || !buf)
        return hci_fail(HC_EINVAL, "hc_ctensor_decode: %s is NULL", ct ? "buf" : "ct");
    size_t es = hc_dtype_size(dtype);
    if (es == 0)
        return hci_fail(HC_EINVAL, "hc_ctensor_decode: unknown dtype %d", (int)dtype);
    size_t need = (size_t)ct->numel * es;
    if (buf_bytes < need)
        return hci_fail(HC_EINVAL, "hc_ctensor_decode: buffer of %zu bytes is too small; %lld values of %s need %zu",
                        buf_bytes, (long long)ct->numel, hc_dtype_name(dtype), need);
    return decode_as(ct, dtype, buf);
}

typedef struct matvec_job {
    const hc_ctensor *ct;
    const float *x;
    float *y;
} matvec_job;

static int matvec_rows(void *ctx, int64_t r0, int64_t r1)
{
    matvec_job *job = ctx;
    return job->ct->codec->matvec(job->ct, job->x, job->y, r0, r1);
}

int hc_ctensor_matvec(const hc_ctensor *ct, const float *x, float *y)
{
    if (!ct || !x || !y)
        return hci_fail(HC_EINVAL, "hc_ctensor_matvec: %s is NULL", !ct ? "ct" : (!x ? "x" : "y"));
    /* compare addresses as integers: relational operators on unrelated pointers are undefined */
    uintptr_t xb = (uintptr_t)x, xe = (uintptr_t)(x + ct->cols), yb = (uintptr_t)y, ye = (uintptr_t)(y + ct->rows);
    if (xb < ye && yb < xe)
        return hci_fail(HC_EINVAL, "hc_ctensor_matvec: x and y overlap");
    matvec_job job = { ct, x, y };
    return hci_parallel_for(ct->threads, ct->rows, rows_per_task(ct), matvec_rows, &job);
}

/* ---- statistics ---- */

size_t hc_ctensor_serialized_size(const hc_ctensor *ct)
{
    if (!ct)
        return 0;
    return CT_FIXED_HEADER + 8u * ct->ndim + ct->params_len + (size_t)ct->payload_len + 4u;
}

static void fill_sizes(hc_stats *s, const hc_ctensor *ct)
{
    s->codec_id = ct->codec->id;
    s->n_values = (uint64_t)ct->numel;
    s->bits = 8u * (uint64_t)hc_ctensor_serialized_size(ct);
    s->bpw = (double)s->bits / (double)ct->numel;
    s->ratio = (double)ct->numel * 8.0 * (double)hc_dtype_size(ct->orig_dtype) / (double)s->bits;
}

static int copy_stats_out(hc_stats *out, const hc_stats *full)
{
    if (out->struct_size > sizeof(hc_stats))
        return hci_fail(HC_EVERSION, "hc_stats struct_size %u is larger than this library's %zu", out->struct_size,
                        sizeof(hc_stats));
    if (out->struct_size < offsetof(hc_stats, bpw))
        return hci_fail(HC_EINVAL, "hc_stats struct_size %u is too small (was it initialised?)", out->struct_size);
    uint32_t size = out->struct_size;
    memcpy(out, full, size);
    out->struct_size = size;
    return HC_OK;
}

int hc_ctensor_stats(hc_stats *out, const hc_ctensor *ct)
{
    if (!out || !ct)
        return hci_fail(HC_EINVAL, "hc_ctensor_stats: %s is NULL", out ? "ct" : "out");
    hc_stats s = HC_STATS_INIT;
    if (ct->has_quality) {
        s = ct->quality;
    } else {
        s.rel_rmse = s.snr_db = s.max_abs_err = s.cosine = s.sparsity = NAN;
    }
    fill_sizes(&s, ct);
    return copy_stats_out(out, &s);
}

typedef struct measure_job {
    const hc_ctensor *ct;
    const float *ref;
    hci_err_acc *accs;   /* one per task */
    int64_t task_rows;
} measure_job;

static int measure_rows(void *ctx, int64_t r0, int64_t r1)
{
    measure_job *job = ctx;
    const hc_ctensor *ct = job->ct;
    enum { CHUNK = 16384 };
    float *tmp = hci_malloc_array(CHUNK, sizeof(float));
    if (!tmp)
        return HC_ENOMEM;
    hci_err_acc *acc = &job->accs[r0 / job->task_rows];
    int64_t first = r0 * ct->cols, count = (r1 - r0) * ct->cols;
    int rc = HC_OK;
    for (int64_t i = 0; i < count && rc == HC_OK; i += CHUNK) {
        int64_t n = count - i < CHUNK ? count - i : CHUNK;
        rc = ct->codec->decode(ct, first + i, n, tmp);
        if (rc == HC_OK)
            hci_err_acc_add(acc, job->ref + first + i, tmp, (size_t)n);
    }
    hci_free(tmp);
    return rc;
}

/* Decodes ct against the f32 reference and stores the error statistics in ct->quality. */
static int measure_against(hc_ctensor *ct, const float *ref)
{
    uint32_t threads = hci_resolve_threads(ct->threads);
    int64_t min_rows = rows_per_task(ct);
    /* the same partition hci_parallel_for will use, so each task owns one accumulator */
    int64_t parts = (ct->rows + min_rows - 1) / min_rows;
    if (parts > threads)
        parts = threads;
    if (parts < 1)
        parts = 1;
    int64_t task_rows = (ct->rows + parts - 1) / parts;
    hci_err_acc *accs = hci_calloc((size_t)parts, sizeof *accs);
    if (!accs)
        return HC_ENOMEM;
    measure_job job = { ct, ref, accs, task_rows };
    int rc = hci_parallel_for(threads, ct->rows, min_rows, measure_rows, &job);
    if (rc == HC_OK) {
        for (int64_t i = 1; i < parts; i++)
            hci_err_acc_merge(&accs[0], &accs[i]);
        hc_stats s = HC_STATS_INIT;
        s.seconds = ct->has_quality ? ct->quality.seconds : 0.0;
        hci_err_acc_finish(&accs[0], &s);
        ct->quality = s;
        ct->has_quality = 1;
    }
    hci_free(accs);
    return rc;
}

int hc_ctensor_measure(hc_stats *out, hc_ctensor *ct, const hc_tensor_view *original)
{
    if (!ct)
        return hci_fail(HC_EINVAL, "hc_ctensor_measure: ct is NULL");
    hc_tensor_view v;
    int64_t numel;
    int rc = hci_view_check(&v, original, &numel);
    if (rc != HC_OK)
        return rc;
    int64_t rows, cols;
    hci_shape_matrix(v.ndim, v.shape, &rows, &cols);
    if (numel != ct->numel || rows != ct->rows || cols != ct->cols)
        return hci_fail(HC_EINVAL, "hc_ctensor_measure: tensor '%s' is %lld x %lld but the compressed tensor is %lld x %lld",
                        v.name ? v.name : "(unnamed)", (long long)rows, (long long)cols, (long long)ct->rows,
                        (long long)ct->cols);
    hci_matrix m;
    float *owned;
    rc = hci_view_matrix(&m, &owned, &v, numel);
    if (rc != HC_OK)
        return rc;
    rc = measure_against(ct, m.data);
    hci_free(owned);
    if (rc == HC_OK && out)
        rc = hc_ctensor_stats(out, ct);
    return rc;
}

/* ---- compression ---- */

int hc_compress(hc_ctensor **out, hc_compressor *c, const hc_tensor_view *t)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_compress: out is NULL");
    *out = NULL;
    if (!c)
        return hci_fail(HC_EINVAL, "hc_compress: compressor is NULL");
    hc_tensor_view v;
    int64_t numel;
    int rc = hci_view_check(&v, t, &numel);
    if (rc != HC_OK)
        return rc;
    double t0 = now_seconds();
    hci_matrix m;
    float *owned;
    rc = hci_view_matrix(&m, &owned, &v, numel);
    if (rc != HC_OK)
        return rc;
    hc_ctensor *ct = hci_calloc(1, sizeof *ct);
    if (!ct) {
        hci_free(owned);
        return HC_ENOMEM;
    }
    ct->codec = c->codec;
    ct->orig_dtype = v.dtype;
    ct->threads = c->threads;
    set_shape(ct, v.ndim, v.shape, numel);
    rc = c->codec->compress(ct, c, &m);
    if (rc == HC_OK)
        rc = c->codec->attach(ct);
    double t1 = now_seconds();
    if (rc == HC_OK)
        rc = measure_against(ct, m.data);
    hci_free(owned);
    if (rc != HC_OK) {
        hc_ctensor_free(ct);
        return rc;
    }
    ct->quality.seconds = t1 - t0;
    *out = ct;
    return HC_OK;
}

/* ---- getters ---- */

uint32_t hc_ctensor_ndim(const hc_ctensor *ct) { return ct ? ct->ndim : 0; }
int64_t hc_ctensor_numel(const hc_ctensor *ct) { return ct ? ct->numel : 0; }
int64_t hc_ctensor_rows(const hc_ctensor *ct) { return ct ? ct->rows : 0; }
int64_t hc_ctensor_cols(const hc_ctensor *ct) { return ct ? ct->cols : 0; }
hc_dtype hc_ctensor_orig_dtype(const hc_ctensor *ct) { return ct ? ct->orig_dtype : HC_DTYPE_F32; }
uint32_t hc_ctensor_codec_id(const hc_ctensor *ct) { return ct ? ct->codec->id : 0; }
const char *hc_ctensor_codec_name(const hc_ctensor *ct) { return ct ? ct->codec->name : "?"; }

void hc_ctensor_shape(const hc_ctensor *ct, int64_t shape[HC_MAX_DIMS])
{
    for (int i = 0; i < HC_MAX_DIMS; i++)
        shape[i] = ct ? ct->shape[i] : 0;
}

int hc_ctensor_set_threads(hc_ctensor *ct, uint32_t threads)
{
    if (!ct)
        return hci_fail(HC_EINVAL, "hc_ctensor_set_threads: ct is NULL");
    ct->threads = hci_resolve_threads(threads);
    return HC_OK;
}

/* ---- serialised form ---- */

int hc_ctensor_serialize(const hc_ctensor *ct, void *buf, size_t buf_size)
{
    if (!ct || !buf)
        return hci_fail(HC_EINVAL, "hc_ctensor_serialize: %s is NULL", ct ? "buf" : "ct");
    size_t need = hc_ctensor_serialized_size(ct);
    if (buf_size < need)
        return hci_fail(HC_EINVAL, "hc_ctensor_serialize: buffer of %zu bytes is too small; %zu are needed",
                        buf_size, need);
    uint8_t *p = buf;
    memcpy(p, CT_MAGIC, 4);
    hci_put_u16(p + 4, CT_VERSION);
    hci_put_u16(p + 6, (uint16_t)ct->codec->id);
    p[8] = (uint8_t)ct->orig_dtype;
    p[9] = (uint8_t)ct->ndim;
    hci_put_u16(p + 10, 0);
    hci_put_u32(p + 12, ct->params_len);
    hci_put_u64(p + 16, ct->payload_len);
    size_t o = CT_FIXED_HEADER;
    for (uint32_t i = 0; i < ct->ndim; i++, o += 8)
        hci_put_u64(p + o, (uint64_t)ct->shape[i]);
    if (ct->params_len)
        memcpy(p + o, ct->params, ct->params_len);
    o += ct->params_len;
    if (ct->payload_len)
        memcpy(p + o, ct->payload, (size_t)ct->payload_len);
    o += (size_t)ct->payload_len;
    hci_put_u32(p + o, hci_crc32c(0, p, o));
    return HC_OK;
}

int hc_ctensor_deserialize(hc_ctensor **out, const void *buf, size_t size)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_ctensor_deserialize: out is NULL");
    *out = NULL;
    if (!buf)
        return hci_fail(HC_EINVAL, "hc_ctensor_deserialize: buf is NULL");
    const uint8_t *p = buf;
    if (size < CT_FIXED_HEADER + 4)
        return hci_fail(HC_EFORMAT, "serialised tensor is truncated: %zu bytes, the header alone needs %u", size,
                        CT_FIXED_HEADER + 4);
    if (memcmp(p, CT_MAGIC, 4) != 0)
        return hci_fail(HC_EFORMAT, "serialised tensor has bad magic %02x %02x %02x %02x (expected 'HCT1')", p[0],
                        p[1], p[2], p[3]);
    uint16_t version = hci_get_u16(p + 4);
    if (version != CT_VERSION)
        return hci_fail(version > CT_VERSION ? HC_EVERSION : HC_EFORMAT,
                        "serialised tensor has format version %u; this library reads version %u", version, CT_VERSION);
    uint16_t codec_id = hci_get_u16(p + 6);
    uint8_t dtype = p[8], ndim = p[9];
    uint32_t params_len = hci_get_u32(p + 12);
    uint64_t payload_len = hci_get_u64(p + 16);
    if (hc_dtype_size((hc_dtype)dtype) == 0)
        return hci_fail(HC_EFORMAT, "serialised tensor has unknown original dtype %u", dtype);
    if (ndim > HC_MAX_DIMS)
        return hci_fail(HC_EFORMAT, "serialised tensor has %u dimensions; at most %d are allowed", ndim, HC_MAX_DIMS);
    if (hci_get_u16(p + 10) != 0)
        return hci_fail(HC_EFORMAT, "serialised tensor has nonzero reserved field %u", hci_get_u16(p + 10));
    if (params_len > CT_MAX_PARAMS)
        return hci_fail(HC_EFORMAT, "serialised tensor declares %u parameter bytes; at most %u are allowed",
                        params_len, CT_MAX_PARAMS);
    size_t head = CT_FIXED_HEADER + 8u * ndim;
    if (payload_len > size || size - 4 < head || size - 4 - head < params_len ||
        size - 4 - head - params_len != payload_len)
        return hci_fail(HC_EFORMAT, "serialised tensor is %zu bytes but its header declares %zu + %u + %llu + 4",
                        size, head, params_len, (unsigned long long)payload_len);
    uint32_t stored_crc = hci_get_u32(p + size - 4);
    uint32_t crc = hci_crc32c(0, p, size - 4);
    if (crc != stored_crc)
        return hci_fail(HC_EFORMAT, "serialised tensor checksum mismatch: stored %08x, computed %08x", stored_crc,
                        crc);
    int64_t shape[HC_MAX_DIMS] = { 0 };
    int64_t numel = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        uint64_t d = hci_get_u64(p + CT_FIXED_HEADER + 8u * i);
        if (d == 0 || d > (uint64_t)INT64_MAX || (uint64_t)numel > (uint64_t)(INT64_MAX / 4) / d)
            return hci_fail(HC_EFORMAT, "serialised tensor has invalid extent %llu in dimension %u",
                            (unsigned long long)d, i);
        shape[i] = (int64_t)d;
        numel *= (int64_t)d;
    }
    const hci_codec *codec = hci_codec_by_id(codec_id);
    if (!codec)
        return hci_fail(HC_EUNSUPPORTED, "serialised tensor uses codec id %u, which this library does not know",
                        codec_id);

    hc_ctensor *ct = hci_calloc(1, sizeof *ct);
    if (!ct)
        return HC_ENOMEM;
    ct->codec = codec;
    ct->orig_dtype = (hc_dtype)dtype;
    ct->threads = 1;
    set_shape(ct, ndim, shape, numel);
    ct->params_len = params_len;
    ct->payload_len = payload_len;
    /* 64-byte aligned copies, so kernels may use aligned loads on owned data if they wish */
    ct->params = hci_aligned_array(params_len ? params_len : 1, 1);
    ct->payload = ct->params ? hci_aligned_array(payload_len ? (size_t)payload_len : 1, 1) : NULL;
    if (!ct->params || !ct->payload) {
        hc_ctensor_free(ct);
        return HC_ENOMEM;
    }
    if (params_len)
        memcpy(ct->params, p + head, params_len);
    if (payload_len)
        memcpy(ct->payload, p + head + params_len, (size_t)payload_len);
    int rc = codec->attach(ct);
    if (rc != HC_OK) {
        hc_ctensor_free(ct);
        return rc;
    }
    *out = ct;
    return HC_OK;
}
