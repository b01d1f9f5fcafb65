/* The streaming safetensors writer. Tensor data goes straight to an unlinked temporary file, so
 * memory stays bounded by the header; finish() writes header + data to a named temporary file in
 * the same directory and renames it over the target, which is atomic on POSIX file systems. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"

#define COPY_CHUNK (1u << 20)

struct hc_safetensors_writer {
    char *path;            /* the target */
    int data_fd;           /* unlinked temporary file holding the data section */
    uint64_t data_size;
    json_object *tensors;  /* name -> {dtype, shape, data_offsets}, in the order added */
    json_object *meta;     /* key -> value */
    int finished;
};

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0 || (c == 0xc0 || c == 0xc1) || c > 0xf4)
            return 0;
        uint32_t cp = c & (0x3fu >> extra);
        for (int i = 0; i < extra; i++) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*p++ & 0x3fu);
        }
        /* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

/* Creates `<path>.<random>.tmp` exclusively. Mode 0666 lets the umask decide the final
 * permissions, as for any file the caller creates (mkstemp would force 0600). */
static int create_temp(char **out_name, const char *path, int *out_fd)
{
    size_t len = strlen(path) + 32;
    char *name = hci_malloc(len);
    if (!name)
        return HC_ENOMEM;
    for (int attempt = 0; attempt < 32; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r ^= (uint64_t)(uintptr_t)name ^ ((uint64_t)getpid() << 32) ^ (uint64_t)attempt * 0x9e3779b97f4a7c15ull;
        snprintf(name, len, "%s.%016llx.tmp", path, (unsigned long long)r);
        int fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *out_name = name;
            *out_fd = fd;
            return HC_OK;
        }
        if (errno != EEXIST) {
            int rc = hci_fail(HC_EIO, "cannot create a temporary file beside '%s': %s", path, strerror(errno));
            hci_free(name);
            return rc;
        }
    }
    hci_free(name);
    return hci_fail(HC_EIO, "cannot create a temporary file beside '%s': 32 random names were taken", path);
}

static int write_all(int fd, const void *buf, size_t n, uint64_t offset, const char *what)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)offset);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return hci_fail(HC_EIO, "cannot write %s: %s", what, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
        offset += (uint64_t)k;
    }
    return HC_OK;
}

int hc_safetensors_writer_new(hc_safetensors_writer **out, const char *path)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_safetensors_writer_new: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return hci_fail(HC_EINVAL, "hc_safetensors_writer_new: path is %s", path ? "empty" : "NULL");
    hc_safetensors_writer *w = hci_calloc(1, sizeof *w);
    if (!w)
        return HC_ENOMEM;
    w->data_fd = -1;
    int rc = HC_ENOMEM;
    w->path = hci_strdup(path);
    if (!w->path)
        goto fail;
    char *name;
    rc = create_temp(&name, path, &w->data_fd);
    if (rc != HC_OK)
        goto fail;
    /* Nobody needs the data file's name: once unlinked it vanishes with the descriptor, even on a crash. */
    unlink(name);
    hci_free(name);
    w->tensors = json_object_new_object();
    w->meta = json_object_new_object();
    if (!w->tensors || !w->meta) {
        rc = hci_oom(sizeof(json_object *));
        goto fail;
    }
    *out = w;
    return HC_OK;
fail:
    hc_safetensors_writer_free(w);
    return rc;
}

void hc_safetensors_writer_free(hc_safetensors_writer *w)
{
    if (!w)
        return;
    if (w->data_fd >= 0)
        close(w->data_fd);
    json_object_put(w->tensors);
    json_object_put(w->meta);
    hci_free(w->path);
    hci_free(w);
}

static int check_open(const hc_safetensors_writer *w, const char *fn)
{
    if (!w)
        return hci_fail(HC_EINVAL, "%s: writer is NULL", fn);
    if (w->finished)
        return hci_fail(HC_EINVAL, "%s: the writer of '%s' is already finished", fn, w->path);
    return HC_OK;
}

int hc_safetensors_writer_set_metadata(hc_safetensors_writer *w, const char *key, const char *value)
{
    int rc = check_open(w, "hc_safetensors_writer_set_metadata");
    if (rc != HC_OK)
        return rc;
    if (!key || !value)
        return hci_fail(HC_EINVAL, "hc_safetensors_writer_set_metadata: %s is NULL", !key ? "key" : "value");
    if (!valid_utf8(key) || !valid_utf8(value))
        return hci_fail(HC_EINVAL, "metadata for '%s': the %s of key '%.64s' is not valid UTF-8", w->path,
                        valid_utf8(key) ? "value" : "name", key);
    if (json_object_object_get_ex(w->meta, key, NULL))
        return hci_fail(HC_EINVAL, "metadata for '%s': key '%.64s' is already set", w->path, key);
    json_object *v = json_object_new_string(value);
    if (!v || json_object_object_add(w->meta, key, v) != 0) {
        json_object_put(v);
        return hci_oom(strlen(value));
    }
    return HC_OK;
}

/* Checks a caller's view for writing; zero extents are fine here (unlike compression). */
static int check_view(hc_tensor_view *v, uint64_t *bytes, const hc_safetensors_writer *w, const hc_tensor_view *t)
{
    if (!t)
        return hci_fail(HC_EINVAL, "hc_safetensors_writer_add: tensor view is NULL");
    if (t->struct_size > sizeof(hc_tensor_view))
        return hci_fail(HC_EVERSION, "hc_tensor_view struct_size %u is larger than this library's %zu", t->struct_size,
                        sizeof(hc_tensor_view));
    if (t->struct_size < offsetof(hc_tensor_view, importance))
        return hci_fail(HC_EINVAL, "hc_tensor_view struct_size %u is smaller than the minimum %zu (was it initialised?)",
                        t->struct_size, offsetof(hc_tensor_view, importance));
    hc_tensor_view in = HC_TENSOR_VIEW_INIT;
    memcpy(&in, t, t->struct_size);
    if (!in.name || !*in.name)
        return hci_fail(HC_EINVAL, "writing '%s': a tensor needs a name (the view's name is %s)", w->path,
                        in.name ? "empty" : "NULL");
    if (strcmp(in.name, "__metadata__") == 0 || !valid_utf8(in.name))
        return hci_fail(HC_EINVAL, "writing '%s': '%.64s' cannot name a tensor (%s)", w->path, in.name,
                        valid_utf8(in.name) ? "reserved for metadata" : "not valid UTF-8");
    size_t es = hc_dtype_size(in.dtype);
    if (es == 0)
        return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' has unknown dtype %d", w->path, in.name, (int)in.dtype);
    if (in.ndim > HC_MAX_DIMS)
        return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' has %u dimensions; at most %d are supported", w->path,
                        in.name, in.ndim, HC_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t i = 0; i < in.ndim; i++) {
        if (in.shape[i] < 0)
            return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' has negative extent %lld in dimension %u", w->path,
                            in.name, (long long)in.shape[i], i);
        if (in.shape[i] != 0 && n > (uint64_t)INT64_MAX / es / (uint64_t)in.shape[i])
            return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' is too large: its byte size overflows", w->path,
                            in.name);
        n *= (uint64_t)in.shape[i];
    }
    if (n * es > SIZE_MAX)
        return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' is too large for this address space", w->path, in.name);
    if (n > 0 && !in.data)
        return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' has NULL data", w->path, in.name);
    *v = in;
    *bytes = n * es;
    return HC_OK;
}

static json_object *new_entry(const hc_tensor_view *v, uint64_t begin, uint64_t end)
{
    json_object *e = json_object_new_object(), *shape = json_object_new_array(), *off = json_object_new_array();
    int ok = e && shape && off;
    for (uint32_t i = 0; ok && i < v->ndim; i++) {
        json_object *d = json_object_new_int64(v->shape[i]);
        ok = d && json_object_array_add(shape, d) == 0;
        if (!ok)
            json_object_put(d);
    }
    for (int i = 0; ok && i < 2; i++) {
        json_object *d = json_object_new_uint64(i ? end : begin);
        ok = d && json_object_array_add(off, d) == 0;
        if (!ok)
            json_object_put(d);
    }
    json_object *dt = ok ? json_object_new_string(hc_dtype_name(v->dtype)) : NULL;
    ok = ok && dt && json_object_object_add(e, "dtype", dt) == 0;
    if (!ok)
        json_object_put(dt);
    /* once added, shape and off belong to e */
    ok = ok && json_object_object_add(e, "shape", shape) == 0 && (shape = NULL, 1);
    ok = ok && json_object_object_add(e, "data_offsets", off) == 0 && (off = NULL, 1);
    if (!ok) {
        json_object_put(shape);
        json_object_put(off);
        json_object_put(e);
        hci_oom(sizeof(json_object *));
        return NULL;
    }
    return e;
}

int hc_safetensors_writer_add(hc_safetensors_writer *w, const hc_tensor_view *t)
{
    int rc = check_open(w, "hc_safetensors_writer_add");
    if (rc != HC_OK)
        return rc;
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    uint64_t bytes = 0;
    rc = check_view(&v, &bytes, w, t);
    if (rc != HC_OK)
        return rc;
    if (json_object_object_get_ex(w->tensors, v.name, NULL))
        return hci_fail(HC_EINVAL, "writing '%s': a tensor named '%s' was already added", w->path, v.name);
    if (w->data_size > (uint64_t)INT64_MAX - bytes)
        return hci_fail(HC_EINVAL, "writing '%s': tensor '%s' makes the data section overflow 63 bits", w->path, v.name);
    json_object *entry = new_entry(&v, w->data_size, w->data_size + bytes);
    if (!entry)
        return HC_ENOMEM;
    /* pwrite at the current end: a failed add leaves data_size where it was, and the next add
     * overwrites whatever part of this tensor did reach the file */
    char what[320];
    snprintf(what, sizeof what, "tensor '%.64s' to a temporary file beside '%.160s'", v.name, w->path);
    rc = write_all(w->data_fd, v.data, (size_t)bytes, w->data_size, what);
    if (rc == HC_OK && json_object_object_add(w->tensors, v.name, entry) != 0)
        rc = hci_oom(strlen(v.name));
    else if (rc == HC_OK)
        entry = NULL;
    json_object_put(entry);
    if (rc == HC_OK)
        w->data_size += bytes;
    return rc;
}

/* The header: 8-byte length, the JSON, spaces up to the data section's alignment. */
static int build_header(uint8_t **out, size_t *out_len, const hc_safetensors_writer *w)
{
    json_object *root = json_object_new_object();
    int ok = root != NULL;
    if (ok && json_object_object_length(w->meta) > 0) {
        json_object *m = json_object_get(w->meta);
        ok = json_object_object_add(root, "__metadata__", m) == 0;
        if (!ok)
            json_object_put(m);
    }
    if (ok) {
        json_object_object_foreach(w->tensors, key, val) {
            /* a failed add does not take the reference, so drop it again */
            if (json_object_object_add(root, key, json_object_get(val)) != 0) {
                json_object_put(val);
                ok = 0;
                break;
            }
        }
    }
    const char *text = ok ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
    if (!text) {
        json_object_put(root);
        return hci_oom(sizeof(json_object *));
    }
    size_t len = strlen(text);
    size_t padded = (len + HCI_ST_ALIGN - 1) / HCI_ST_ALIGN * HCI_ST_ALIGN;
    int rc = HC_OK;
    if (padded > HC_SAFETENSORS_MAX_HEADER) {
        rc = hci_fail(HC_EINVAL, "writing '%s': the header would take %zu bytes, more than readers accept (%d)",
                      w->path, padded, HC_SAFETENSORS_MAX_HEADER);
    } else {
        uint8_t *buf = hci_malloc(8 + padded);
        if (!buf) {
            rc = HC_ENOMEM;
        } else {
            hci_put_u64(buf, (uint64_t)padded);
            memcpy(buf + 8, text, len);
            memset(buf + 8 + len, ' ', padded - len);
            *out = buf;
            *out_len = 8 + padded;
        }
    }
    json_object_put(root);
    return rc;
}

/* Appends the data section to fd at offset, in the kernel when it can (reflinks on CoW file
 * systems), through a bounded buffer otherwise. */
static int copy_data(int fd, uint64_t offset, const hc_safetensors_writer *w)
{
    uint64_t done = 0;
    while (done < w->data_size) {
        loff_t in_off = (loff_t)done, out_off = (loff_t)(offset + done);
        uint64_t left = w->data_size - done;
        ssize_t k = copy_file_range(w->data_fd, &in_off, fd, &out_off, left > (1u << 30) ? (1u << 30) : left, 0);
        if (k > 0) {
            done += (uint64_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return hci_fail(HC_EIO, "cannot write the data of '%s': %s", w->path, strerror(errno));
        break; /* unsupported here (or no progress): fall back to read/write */
    }
    if (done == w->data_size)
        return HC_OK;
    uint8_t *buf = hci_malloc(COPY_CHUNK);
    if (!buf)
        return HC_ENOMEM;
    int rc = HC_OK;
    while (rc == HC_OK && done < w->data_size) {
        uint64_t left = w->data_size - done;
        size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
        ssize_t k = pread(w->data_fd, buf, want, (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = hci_fail(HC_EIO, "cannot read back the data of '%s' from its temporary file: %s", w->path,
                          k < 0 ? strerror(errno) : "unexpected end of file");
            break;
        }
        rc = write_all(fd, buf, (size_t)k, offset + done, "the data section");
        done += (uint64_t)k;
    }
    hci_free(buf);
    return rc;
}

/* Makes the rename itself durable. It has already happened, so a failure here is not an error. */
static void sync_directory(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fsync(fd) != 0) {
        /* nothing to undo */
    }
    close(fd);
}

int hc_safetensors_writer_finish(hc_safetensors_writer *w)
{
    int rc = check_open(w, "hc_safetensors_writer_finish");
    if (rc != HC_OK)
        return rc;
    w->finished = 1;
    uint8_t *header = NULL;
    size_t header_len = 0;
    rc = build_header(&header, &header_len, w);
    if (rc != HC_OK)
        return rc;
    char *tmp = NULL;
    int fd = -1;
    rc = create_temp(&tmp, w->path, &fd);
    if (rc == HC_OK)
        rc = write_all(fd, header, header_len, 0, "the header");
    if (rc == HC_OK)
        rc = copy_data(fd, header_len, w);
    if (rc == HC_OK && fsync(fd) != 0)
        rc = hci_fail(HC_EIO, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == HC_OK)
        rc = hci_fail(HC_EIO, "cannot close '%s': %s", tmp, strerror(errno));
    if (rc == HC_OK && rename(tmp, w->path) != 0)
        rc = hci_fail(HC_EIO, "cannot rename the finished file to '%s': %s", w->path, strerror(errno));
    if (rc == HC_OK)
        sync_directory(w->path);
    if (rc != HC_OK && tmp)
        unlink(tmp);
    hci_free(tmp);
    hci_free(header);
    return rc;
}
