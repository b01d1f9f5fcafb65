/* The streaming container writer: each tensor's bytes go to a temporary file as soon as it is
 * added; the directory and header are written last and the file is renamed into place, so a
 * failure never leaves a partial file under the target name (doc/format.md). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_format.h"
#include "codec.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "hypercomp/archive.h"
#include "tensor_view.h"

/* Fault injection for the write-failure tests; thread-local so parallel tests stay independent. */
static _Thread_local long write_fail_countdown;

void hci_archive_fail_write_after(long n)
{
    write_fail_countdown = n;
}

static int injected_write_failure(void)
{
    if (write_fail_countdown > 0 && --write_fail_countdown == 0) {
        errno = EIO;
        return 1;
    }
    return 0;
}

/* A set of strings for duplicate detection: open addressing, grown at half load. */
typedef struct name_set {
    char **slots;
    size_t cap, used;
} name_set;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int set_contains(const name_set *s, const char *name)
{
    if (!s->cap)
        return 0;
    for (size_t i = (size_t)hash_str(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slots[i])
            return 0;
        if (strcmp(s->slots[i], name) == 0)
            return 1;
    }
}

static void set_place(char **slots, size_t cap, char *name)
{
    size_t i = (size_t)hash_str(name) & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = name;
}

static int set_add(name_set *s, const char *name)
{
    if (2 * (s->used + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **slots = hci_calloc(cap, sizeof *slots);
        if (!slots)
            return HC_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                set_place(slots, cap, s->slots[i]);
        hci_free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    char *copy = hci_strdup(name);
    if (!copy)
        return HC_ENOMEM;
    set_place(s->slots, s->cap, copy);
    s->used++;
    return HC_OK;
}

static void set_free(name_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        hci_free(s->slots[i]);
    hci_free(s->slots);
}

/* A growable byte buffer for the directory. */
typedef struct bytebuf {
    uint8_t *p;
    size_t len, cap;
} bytebuf;

static uint8_t *buf_grow(bytebuf *b, size_t n)
{
    size_t need;
    if (!hci_add_size(b->len, n, &need)) {
        hci_oom(SIZE_MAX);
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
        uint8_t *p = hci_malloc(cap);
        if (!p)
            return NULL;
        if (b->len)
            memcpy(p, b->p, b->len);
        hci_free(b->p);
        b->p = p;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->len;
    b->len = need;
    return at;
}

enum { W_OPEN = 0, W_FAILED = 1, W_DONE = 2 };

struct hc_archive_writer {
    char *path;        /* target */
    char *tmp_path;    /* the temporary file beside it */
    int fd;
    int state;
    uint64_t pos;      /* bytes written so far */
    bytebuf meta, tensors;
    uint32_t meta_count, tensor_count;
    name_set names, keys;
};

static const uint8_t zeros[HCZ_ALIGN];

/* Marks the writer failed and discards the temporary file; returns the status. */
static int writer_abort(hc_archive_writer *w, int rc)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_path && w->state != W_DONE)
        unlink(w->tmp_path);
    w->state = W_FAILED;
    return rc;
}

static int io_error(hc_archive_writer *w, const char *what)
{
    int e = errno;
    int rc = hci_fail(HC_EIO, "cannot %s '%s' (temporary file '%s'): %s", what, w->path, w->tmp_path, strerror(e));
    return writer_abort(w, rc);
}

static int write_all(hc_archive_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (injected_write_failure())
        return io_error(w, "write");
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return io_error(w, "write");
        }
        p += k;
        n -= (size_t)k;
        w->pos += (uint64_t)k;
    }
    return HC_OK;
}

static int pad_to_alignment(hc_archive_writer *w)
{
    size_t pad = (size_t)((HCZ_ALIGN - w->pos % HCZ_ALIGN) % HCZ_ALIGN);
    return pad ? write_all(w, zeros, pad) : HC_OK;
}

static int usable(const hc_archive_writer *w, const char *fn)
{
    if (!w)
        return hci_fail(HC_EINVAL, "%s: writer is NULL", fn);
    if (w->state == W_FAILED)
        return hci_fail(HC_EINVAL, "%s: the writer for '%s' already failed; its file was discarded", fn, w->path);
    if (w->state == W_DONE)
        return hci_fail(HC_EINVAL, "%s: the writer for '%s' is already finished", fn, w->path);
    return HC_OK;
}

/* Directory and base name of path, so the temporary file lands on the same file system. */
static int make_tmp_path(hc_archive_writer *w)
{
    const char *slash = strrchr(w->path, '/');
    size_t dir_len = slash ? (size_t)(slash - w->path) + 1 : 0;
    const char *base = slash ? slash + 1 : w->path;
    size_t n = dir_len + strlen(base) + 32;
    w->tmp_path = hci_malloc(n);
    if (!w->tmp_path)
        return HC_ENOMEM;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                 (uint64_t)(uintptr_t)w;
    for (int attempt = 0; attempt < 64; attempt++) {
        x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15ull + (uint64_t)attempt;
        snprintf(w->tmp_path, n, "%.*s.%s.tmp-%08x", (int)dir_len, w->path, base, (unsigned)(x >> 32));
        /* 0666 so the finished file gets the permissions the user's umask asks for */
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0)
            return HC_OK;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    return hci_fail(HC_EIO, "cannot create a temporary file for '%s' in '%.*s': %s", w->path,
                    dir_len ? (int)dir_len : 1, dir_len ? w->path : ".", strerror(e));
}

int hc_archive_writer_new(hc_archive_writer **out, const char *path)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_archive_writer_new: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return hci_fail(HC_EINVAL, "hc_archive_writer_new: path is %s", path ? "empty" : "NULL");
    hc_archive_writer *w = hci_calloc(1, sizeof *w);
    if (!w)
        return HC_ENOMEM;
    w->fd = -1;
    w->path = hci_strdup(path);
    int rc = w->path ? make_tmp_path(w) : HC_ENOMEM;
    if (rc == HC_OK)
        rc = write_all(w, zeros, HCZ_HEADER_SIZE);   /* the header is written for real at finish */
    if (rc != HC_OK) {
        hc_archive_writer_free(w);
        return rc;
    }
    *out = w;
    return HC_OK;
}

void hc_archive_writer_free(hc_archive_writer *w)
{
    if (!w)
        return;
    if (w->state == W_OPEN)
        writer_abort(w, HC_OK);
    if (w->fd >= 0)
        close(w->fd);
    hci_free(w->path);
    hci_free(w->tmp_path);
    hci_free(w->meta.p);
    hci_free(w->tensors.p);
    set_free(&w->names);
    set_free(&w->keys);
    hci_free(w);
}

int hc_archive_writer_set_metadata(hc_archive_writer *w, const char *key, const char *value)
{
    int rc = usable(w, "hc_archive_writer_set_metadata");
    if (rc != HC_OK)
        return rc;
    if (!key || !value)
        return hci_fail(HC_EINVAL, "hc_archive_writer_set_metadata: %s is NULL", key ? "value" : "key");
    size_t kl = strlen(key), vl = strlen(value);
    if (kl == 0 || kl > HCZ_MAX_KEY)
        return hci_fail(HC_EINVAL, "metadata key of %zu bytes; keys have 1 to %u bytes", kl, HCZ_MAX_KEY);
    if (vl > HCZ_MAX_VALUE)
        return hci_fail(HC_EINVAL, "metadata value of key '%s' has %zu bytes; at most %u are allowed", key, vl,
                        HCZ_MAX_VALUE);
    if (!hci_utf8_valid((const uint8_t *)key, kl) || !hci_utf8_valid((const uint8_t *)value, vl))
        return hci_fail(HC_EINVAL, "metadata %s of key '%s' is not valid UTF-8",
                        hci_utf8_valid((const uint8_t *)key, kl) ? "value" : "key", key);
    if (set_contains(&w->keys, key))
        return hci_fail(HC_EINVAL, "metadata key '%s' is already set", key);
    size_t before = w->meta.len;
    uint8_t *e = buf_grow(&w->meta, HCZ_META_FIXED + kl + vl);
    if (!e)
        return HC_ENOMEM;
    if ((rc = set_add(&w->keys, key)) != HC_OK) {
        w->meta.len = before;
        return rc;
    }
    hci_put_u32(e, (uint32_t)(HCZ_META_FIXED + kl + vl));
    hci_put_u32(e + 4, (uint32_t)kl);
    hci_put_u32(e + 8, (uint32_t)vl);
    memcpy(e + HCZ_META_FIXED, key, kl);
    memcpy(e + HCZ_META_FIXED + kl, value, vl);
    w->meta_count++;
    return HC_OK;
}

static int check_name(hc_archive_writer *w, const char *fn, const char *name)
{
    if (!name)
        return hci_fail(HC_EINVAL, "%s: tensor name is NULL", fn);
    size_t n = strlen(name);
    if (n == 0 || n > HCZ_MAX_NAME)
        return hci_fail(HC_EINVAL, "%s: tensor name of %zu bytes; names have 1 to %u bytes", fn, n, HCZ_MAX_NAME);
    if (!hci_utf8_valid((const uint8_t *)name, n))
        return hci_fail(HC_EINVAL, "%s: tensor name '%s' is not valid UTF-8", fn, name);
    if (set_contains(&w->names, name))
        return hci_fail(HC_EINVAL, "%s: '%s' already holds a tensor named '%s'", fn, w->path, name);
    if (w->tensor_count == UINT32_MAX)
        return hci_fail(HC_EINVAL, "%s: '%s' already holds %u tensors", fn, w->path, w->tensor_count);
    return HC_OK;
}

typedef struct entry_fields {
    uint16_t codec;
    uint8_t dtype, ndim;
    uint64_t shape[HC_MAX_DIMS];
    uint32_t params_len;
    uint64_t params_offset, payload_offset, payload_len;
    uint32_t crc;
    int has_quality;
    double q[6];
} entry_fields;

static int append_entry(hc_archive_writer *w, const char *name, const entry_fields *f)
{
    size_t nl = strlen(name);
    size_t len = HCZ_T_FIXED + 8u * f->ndim + nl;
    size_t before = w->tensors.len;
    uint8_t *e = buf_grow(&w->tensors, len);
    if (!e)
        return HC_ENOMEM;
    int rc = set_add(&w->names, name);
    if (rc != HC_OK) {
        w->tensors.len = before;
        return rc;
    }
    memset(e, 0, HCZ_T_FIXED);
    hci_put_u32(e, (uint32_t)len);
    hci_put_u16(e + HCZ_T_CODEC, f->codec);
    e[HCZ_T_DTYPE] = f->dtype;
    e[HCZ_T_NDIM] = f->ndim;
    hci_put_u16(e + HCZ_T_NAME_LEN, (uint16_t)nl);
    hci_put_u16(e + HCZ_T_FLAGS, f->has_quality ? HCZ_TF_QUALITY : 0);
    hci_put_u32(e + HCZ_T_PARAMS_LEN, f->params_len);
    hci_put_u64(e + HCZ_T_PARAMS_OFFSET, f->params_offset);
    hci_put_u64(e + HCZ_T_PAYLOAD_OFFSET, f->payload_offset);
    hci_put_u64(e + HCZ_T_PAYLOAD_LEN, f->payload_len);
    hci_put_u32(e + HCZ_T_CRC, f->crc);
    for (int i = 0; i < 6; i++) {
        double d = f->has_quality || i == 5 ? f->q[i] : NAN;
        uint64_t u;
        memcpy(&u, &d, 8);
        hci_put_u64(e + HCZ_T_QUALITY + 8 * i, u);
    }
    for (uint32_t i = 0; i < f->ndim; i++)
        hci_put_u64(e + HCZ_T_FIXED + 8u * i, f->shape[i]);
    memcpy(e + HCZ_T_FIXED + 8u * f->ndim, name, nl);
    w->tensor_count++;
    return HC_OK;
}

int hc_archive_writer_add(hc_archive_writer *w, const char *name, const hc_ctensor *ct)
{
    static const char fn[] = "hc_archive_writer_add";
    int rc = usable(w, fn);
    if (rc == HC_OK)
        rc = check_name(w, fn, name);
    if (rc != HC_OK)
        return rc;
    if (!ct)
        return hci_fail(HC_EINVAL, "%s: tensor '%s' is NULL", fn, name);
    if (ct->params_len > HCT_MAX_PARAMS)
        return hci_fail(HC_EINVAL, "%s: tensor '%s' has %u parameter bytes; at most %u are allowed", fn, name,
                        ct->params_len, HCT_MAX_PARAMS);
    entry_fields f = { 0 };
    f.codec = (uint16_t)ct->codec->id;
    f.dtype = (uint8_t)ct->orig_dtype;
    f.ndim = (uint8_t)ct->ndim;
    for (uint32_t i = 0; i < ct->ndim; i++)
        f.shape[i] = (uint64_t)ct->shape[i];
    f.params_len = ct->params_len;
    f.payload_len = ct->payload_len;
    uint8_t head[HCT_FIXED + 8 * HC_MAX_DIMS];
    size_t hl = hci_hct_header(head, f.codec, f.dtype, f.ndim, f.shape, f.params_len, f.payload_len);
    f.crc = hci_crc32c(0, head, hl);
    f.crc = hci_crc32c(f.crc, ct->params, ct->params_len);
    f.crc = hci_crc32c(f.crc, ct->payload, (size_t)ct->payload_len);
    if ((rc = pad_to_alignment(w)) != HC_OK)
        return rc;
    if (f.params_len) {
        f.params_offset = w->pos;
        if ((rc = write_all(w, ct->params, f.params_len)) != HC_OK || (rc = pad_to_alignment(w)) != HC_OK)
            return rc;
    }
    f.payload_offset = w->pos;
    if (!f.params_len)
        f.params_offset = f.payload_offset;
    if ((rc = write_all(w, ct->payload, (size_t)f.payload_len)) != HC_OK)
        return rc;
    f.has_quality = ct->has_quality;
    f.q[0] = ct->quality.rel_rmse;
    f.q[1] = ct->quality.snr_db;
    f.q[2] = ct->quality.max_abs_err;
    f.q[3] = ct->quality.cosine;
    f.q[4] = ct->quality.sparsity;
    f.q[5] = ct->has_quality ? ct->quality.seconds : 0.0;
    /* the bytes are in the file: a tensor that cannot be listed would be a hole, so give up */
    rc = append_entry(w, name, &f);
    return rc == HC_OK ? rc : writer_abort(w, rc);
}

int hc_archive_writer_sink(const char *name, const hc_ctensor *ct, void *writer)
{
    return hc_archive_writer_add(writer, name, ct);
}

int hc_archive_writer_add_uncompressed(hc_archive_writer *w, const hc_tensor_view *t)
{
    static const char fn[] = "hc_archive_writer_add_uncompressed";
    int rc = usable(w, fn);
    if (rc != HC_OK)
        return rc;
    hc_tensor_view v;
    int64_t numel;
    if ((rc = hci_view_check(&v, t, &numel)) != HC_OK || (rc = check_name(w, fn, v.name)) != HC_OK)
        return rc;
    size_t es = hc_dtype_size(v.dtype);
    entry_fields f = { 0 };
    f.codec = v.dtype == HC_DTYPE_F32 ? HC_CODEC_F32 : v.dtype == HC_DTYPE_F16 ? HC_CODEC_FP16 : HC_CODEC_BF16;
    f.dtype = (uint8_t)v.dtype;
    f.ndim = (uint8_t)v.ndim;
    for (uint32_t i = 0; i < v.ndim; i++)
        f.shape[i] = (uint64_t)v.shape[i];
    f.payload_len = (uint64_t)numel * es;
    uint8_t head[HCT_FIXED + 8 * HC_MAX_DIMS];
    size_t hl = hci_hct_header(head, f.codec, f.dtype, f.ndim, f.shape, 0, f.payload_len);
    f.crc = hci_crc32c(0, head, hl);
    if ((rc = pad_to_alignment(w)) != HC_OK)
        return rc;
    f.params_offset = f.payload_offset = w->pos;
    /* Stream through a small buffer in little-endian order, whatever the host's order. */
    enum { CHUNK = 8192 };
    uint8_t buf[CHUNK * 4];
    for (int64_t i = 0; i < numel; i += CHUNK) {
        size_t n = (size_t)(numel - i < CHUNK ? numel - i : CHUNK);
        if (es == 4) {
            const float *src = (const float *)v.data + i;
            for (size_t k = 0; k < n; k++)
                hci_put_f32(buf + 4 * k, src[k]);
        } else {
            const uint16_t *src = (const uint16_t *)v.data + i;
            for (size_t k = 0; k < n; k++)
                hci_put_u16(buf + 2 * k, src[k]);
        }
        f.crc = hci_crc32c(f.crc, buf, n * es);
        if ((rc = write_all(w, buf, n * es)) != HC_OK)
            return rc;
    }
    f.has_quality = 1;   /* stored exactly: no error */
    f.q[0] = 0.0;
    f.q[1] = INFINITY;
    f.q[2] = 0.0;
    f.q[3] = 1.0;
    f.q[4] = NAN;
    f.q[5] = 0.0;
    rc = append_entry(w, v.name, &f);
    return rc == HC_OK ? rc : writer_abort(w, rc);
}

int hc_archive_writer_finish(hc_archive_writer *w)
{
    int rc = usable(w, "hc_archive_writer_finish");
    if (rc != HC_OK)
        return rc;
    if ((rc = pad_to_alignment(w)) != HC_OK)
        return rc;
    uint64_t dir_offset = w->pos;
    uint64_t dir_len = (uint64_t)w->meta.len + w->tensors.len;
    uint32_t dir_crc = hci_crc32c(0, w->meta.p, w->meta.len);
    dir_crc = hci_crc32c(dir_crc, w->tensors.p, w->tensors.len);
    if ((rc = write_all(w, w->meta.p, w->meta.len)) != HC_OK ||
        (rc = write_all(w, w->tensors.p, w->tensors.len)) != HC_OK)
        return rc;
    uint8_t h[HCZ_HEADER_SIZE] = { 0 };
    memcpy(h, HCZ_MAGIC, HCZ_MAGIC_LEN);
    hci_put_u16(h + HCZ_H_MAJOR, HC_ARCHIVE_VERSION_MAJOR);
    hci_put_u16(h + HCZ_H_MINOR, HC_ARCHIVE_VERSION_MINOR);
    hci_put_u32(h + HCZ_H_HEADER_SIZE, HCZ_HEADER_SIZE);
    hci_put_u64(h + HCZ_H_FILE_SIZE, w->pos);
    hci_put_u64(h + HCZ_H_DIR_OFFSET, dir_offset);
    hci_put_u64(h + HCZ_H_DIR_LENGTH, dir_len);
    hci_put_u32(h + HCZ_H_TENSOR_COUNT, w->tensor_count);
    hci_put_u32(h + HCZ_H_META_COUNT, w->meta_count);
    hci_put_u32(h + HCZ_H_DIR_CRC, dir_crc);
    hci_put_u32(h + HCZ_HEADER_SIZE - 4, hci_crc32c(0, h, HCZ_HEADER_SIZE - 4));
    if (lseek(w->fd, 0, SEEK_SET) != 0)
        return io_error(w, "seek in");
    uint64_t end = w->pos;
    if ((rc = write_all(w, h, sizeof h)) != HC_OK)
        return rc;
    w->pos = end;
    /* Flush before the rename: after a crash the name holds the old file or the whole new one. */
    if (injected_write_failure() || fsync(w->fd) != 0)
        return io_error(w, "flush");
    if (close(w->fd) != 0) {
        w->fd = -1;
        return io_error(w, "close");
    }
    w->fd = -1;
    if (injected_write_failure() || rename(w->tmp_path, w->path) != 0)
        return io_error(w, "rename the finished file onto");
    w->state = W_DONE;
    /* Make the rename itself durable; a failure here loses nothing already visible. */
    const char *slash = strrchr(w->path, '/');
    char *dir = slash ? hci_strdup(w->path) : NULL;
    if (dir)
        dir[slash - w->path + 1] = '\0';
    int dfd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    hci_free(dir);
    return HC_OK;
}
