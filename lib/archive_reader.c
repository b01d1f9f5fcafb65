/* The container reader: maps the file, validates the header and the whole directory before
 * anything is trusted, and opens single tensors as borrowed views of the mapping
 * (doc/format.md). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_format.h"
#include "codec.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "hypercomp/archive.h"
#include "tensor_view.h"

typedef struct arch_tensor {
    const char *name;
    uint16_t codec;
    uint8_t dtype, ndim;
    uint16_t flags;
    int64_t shape[HC_MAX_DIMS];
    int64_t numel;
    uint32_t params_len;
    uint64_t params_offset, payload_offset, payload_len;
    uint32_t crc;
    double q[6];
} arch_tensor;

struct hc_archive {
    const uint8_t *base;
    size_t size;
    int mapped;              /* munmap on close */
    uint32_t flags;
    char *label;             /* the path, or "(memory)", for messages */
    uint16_t major, minor;
    size_t n_tensors, n_meta;
    arch_tensor *t;
    const char **meta_key, **meta_value;
    char *strings;           /* NUL-terminated copies of every name, key and value */
    size_t *by_name;         /* tensor indices sorted by name */
};

typedef struct block {
    uint64_t off, len;
    size_t tensor;
} block;

static int cmp_block(const void *a, const void *b)
{
    const block *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* qsort has no context argument; names are compared through a pointer table. */
static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = hci_get_u64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Copies a length-delimited string into the pool after checking it is UTF-8 without NUL. */
static const char *pool_string(char **pool, const uint8_t *s, size_t n)
{
    if (!hci_utf8_valid(s, n))
        return NULL;
    char *out = *pool;
    memcpy(out, s, n);
    out[n] = '\0';
    *pool += n + 1;
    return out;
}

#define BAD(...) hci_fail(HC_EFORMAT, __VA_ARGS__)

static int parse_header(hc_archive *a, uint64_t *dir_off, uint64_t *dir_len, uint32_t *n_tensors, uint32_t *n_meta)
{
    const uint8_t *p = a->base;
    const char *f = a->label;
    if (a->size < HCZ_HEADER_SIZE)
        return BAD("'%s' is %zu bytes long; a container has at least a %u-byte header (truncated?)", f, a->size,
                   HCZ_HEADER_SIZE);
    if (memcmp(p, HCZ_MAGIC, HCZ_MAGIC_LEN) != 0)
        return BAD("'%s' is not a hypercomp container: bad magic %02x %02x %02x %02x %02x %02x %02x %02x", f, p[0],
                   p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
    a->major = hci_get_u16(p + HCZ_H_MAJOR);
    a->minor = hci_get_u16(p + HCZ_H_MINOR);
    if (a->major != HC_ARCHIVE_VERSION_MAJOR)
        return hci_fail(a->major > HC_ARCHIVE_VERSION_MAJOR ? HC_EVERSION : HC_EFORMAT,
                        "'%s' has container format version %u.%u; this library reads version %u.x", f, a->major,
                        a->minor, HC_ARCHIVE_VERSION_MAJOR);
    uint32_t hs = hci_get_u32(p + HCZ_H_HEADER_SIZE);
    if (hs < HCZ_HEADER_SIZE || hs > HCZ_MAX_HEADER_SIZE || hs % 8 != 0 || hs > a->size)
        return BAD("'%s' declares a header of %u bytes; expected a multiple of 8 in [%u, %u] within the file of %zu",
                   f, hs, HCZ_HEADER_SIZE, HCZ_MAX_HEADER_SIZE, a->size);
    uint32_t stored = hci_get_u32(p + hs - 4), crc = hci_crc32c(0, p, hs - 4);
    if (stored != crc)
        return BAD("'%s' header checksum mismatch: stored %08x, computed %08x (corrupt file)", f, stored, crc);
    uint64_t fsize = hci_get_u64(p + HCZ_H_FILE_SIZE);
    if (fsize != a->size)
        return BAD("'%s' is %zu bytes but its header says %llu (%s)", f, a->size, (unsigned long long)fsize,
                   fsize > a->size ? "truncated" : "trailing bytes");
    uint32_t req = hci_get_u32(p + HCZ_H_REQUIRED_FLAGS);
    if (req != 0)
        return hci_fail(HC_EVERSION, "'%s' needs container features this library does not know (required flags %08x)",
                        f, req);
    *dir_off = hci_get_u64(p + HCZ_H_DIR_OFFSET);
    *dir_len = hci_get_u64(p + HCZ_H_DIR_LENGTH);
    if (*dir_off < hs || *dir_off % HCZ_ALIGN != 0 || *dir_off > a->size || *dir_len != a->size - *dir_off)
        return BAD("'%s' directory at offset %llu, %llu bytes, does not end the file of %zu bytes after the "
                   "%u-byte header on a %u-byte boundary", f, (unsigned long long)*dir_off,
                   (unsigned long long)*dir_len, a->size, hs, HCZ_ALIGN);
    stored = hci_get_u32(p + HCZ_H_DIR_CRC);
    crc = hci_crc32c(0, p + *dir_off, (size_t)*dir_len);
    if (stored != crc)
        return BAD("'%s' directory checksum mismatch: stored %08x, computed %08x (corrupt file)", f, stored, crc);
    *n_tensors = hci_get_u32(p + HCZ_H_TENSOR_COUNT);
    *n_meta = hci_get_u32(p + HCZ_H_META_COUNT);
    /* Counts are bounded by what the directory can hold, so allocations stay below the file size. */
    if ((uint64_t)*n_tensors * HCZ_T_FIXED + (uint64_t)*n_meta * HCZ_META_FIXED > *dir_len)
        return BAD("'%s' declares %u tensors and %u metadata entries; its %llu-byte directory cannot hold them", f,
                   *n_tensors, *n_meta, (unsigned long long)*dir_len);
    return HC_OK;
}

static int parse_meta(hc_archive *a, const uint8_t **cur, const uint8_t *end, char **pool)
{
    for (size_t i = 0; i < a->n_meta; i++) {
        const uint8_t *e = *cur;
        size_t avail = (size_t)(end - e);
        if (avail < HCZ_META_FIXED)
            return BAD("'%s' metadata entry %zu is cut off by the end of the directory", a->label, i);
        uint32_t len = hci_get_u32(e), kl = hci_get_u32(e + 4), vl = hci_get_u32(e + 8);
        if (kl == 0 || kl > HCZ_MAX_KEY || vl > HCZ_MAX_VALUE || len > avail ||
            (uint64_t)HCZ_META_FIXED + kl + vl > len)
            return BAD("'%s' metadata entry %zu has invalid lengths (entry %u, key %u, value %u; %zu bytes left)",
                       a->label, i, len, kl, vl, avail);
        a->meta_key[i] = pool_string(pool, e + HCZ_META_FIXED, kl);
        a->meta_value[i] = a->meta_key[i] ? pool_string(pool, e + HCZ_META_FIXED + kl, vl) : NULL;
        if (!a->meta_value[i])
            return BAD("'%s' metadata entry %zu is not valid UTF-8 (or holds a NUL byte)", a->label, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->meta_key[j], a->meta_key[i]) == 0)
                return BAD("'%s' has metadata key '%s' twice", a->label, a->meta_key[i]);
        *cur = e + len;
    }
    return HC_OK;
}

static int parse_tensor(hc_archive *a, size_t i, const uint8_t **cur, const uint8_t *end, char **pool,
                        uint64_t data_end)
{
    const uint8_t *e = *cur;
    size_t avail = (size_t)(end - e);
    const char *f = a->label;
    if (avail < HCZ_T_FIXED)
        return BAD("'%s' tensor entry %zu is cut off by the end of the directory", f, i);
    arch_tensor *t = &a->t[i];
    uint32_t len = hci_get_u32(e);
    t->codec = hci_get_u16(e + HCZ_T_CODEC);
    t->dtype = e[HCZ_T_DTYPE];
    t->ndim = e[HCZ_T_NDIM];
    uint16_t nl = hci_get_u16(e + HCZ_T_NAME_LEN);
    t->flags = hci_get_u16(e + HCZ_T_FLAGS);
    if (t->ndim > HC_MAX_DIMS)
        return BAD("'%s' tensor entry %zu has %u dimensions; at most %d are allowed", f, i, t->ndim, HC_MAX_DIMS);
    if (nl == 0 || nl > HCZ_MAX_NAME || len > avail || (uint64_t)HCZ_T_FIXED + 8u * t->ndim + nl > len)
        return BAD("'%s' tensor entry %zu has invalid lengths (entry %u, name %u, %u dims; %zu bytes left)", f, i,
                   len, nl, t->ndim, avail);
    t->name = pool_string(pool, e + HCZ_T_FIXED + 8u * t->ndim, nl);
    if (!t->name)
        return BAD("'%s' tensor entry %zu has a name that is not valid UTF-8 (or holds a NUL byte)", f, i);
    const char *n = t->name;
    if (t->flags & HCZ_TF_REQUIRED_MASK)
        return hci_fail(HC_EVERSION, "'%s' tensor '%s' needs features this library does not know (entry flags %04x)",
                        f, n, t->flags);
    if (hc_dtype_size((hc_dtype)t->dtype) == 0)
        return BAD("'%s' tensor '%s' has unknown original dtype %u", f, n, t->dtype);
    if (hci_get_u32(e + HCZ_T_RESERVED) != 0)
        return BAD("'%s' tensor '%s' has a nonzero reserved field", f, n);
    t->numel = 1;
    for (uint32_t d = 0; d < t->ndim; d++) {
        uint64_t x = hci_get_u64(e + HCZ_T_FIXED + 8u * d);
        if (x == 0 || x > (uint64_t)INT64_MAX || (uint64_t)t->numel > (uint64_t)(INT64_MAX / 4) / x ||
            (uint64_t)t->numel * x > SIZE_MAX / 4)
            return BAD("'%s' tensor '%s' has invalid extent %llu in dimension %u", f, n, (unsigned long long)x, d);
        t->shape[d] = (int64_t)x;
        t->numel *= (int64_t)x;
    }
    t->params_len = hci_get_u32(e + HCZ_T_PARAMS_LEN);
    t->params_offset = hci_get_u64(e + HCZ_T_PARAMS_OFFSET);
    t->payload_offset = hci_get_u64(e + HCZ_T_PAYLOAD_OFFSET);
    t->payload_len = hci_get_u64(e + HCZ_T_PAYLOAD_LEN);
    t->crc = hci_get_u32(e + HCZ_T_CRC);
    for (int k = 0; k < 6; k++)
        t->q[k] = get_f64(e + HCZ_T_QUALITY + 8 * k);
    uint64_t data_begin = hci_get_u32(a->base + HCZ_H_HEADER_SIZE);   /* validated by parse_header */
    if (t->params_len > HCT_MAX_PARAMS)
        return BAD("'%s' tensor '%s' declares %u parameter bytes; at most %u are allowed", f, n, t->params_len,
                   HCT_MAX_PARAMS);
    if (t->params_len &&
        (t->params_offset % HCZ_ALIGN || t->params_offset < data_begin || t->params_offset > data_end ||
         t->params_len > data_end - t->params_offset))
        return BAD("'%s' tensor '%s' parameters [%llu, +%u) lie outside the data area [%llu, %llu) or off a %u-byte "
                   "boundary", f, n, (unsigned long long)t->params_offset, t->params_len,
                   (unsigned long long)data_begin, (unsigned long long)data_end, HCZ_ALIGN);
    if (t->payload_offset % HCZ_ALIGN || t->payload_offset < data_begin || t->payload_offset > data_end ||
        t->payload_len > data_end - t->payload_offset)
        return BAD("'%s' tensor '%s' payload [%llu, +%llu) lies outside the data area [%llu, %llu) or off a %u-byte "
                   "boundary", f, n, (unsigned long long)t->payload_offset, (unsigned long long)t->payload_len,
                   (unsigned long long)data_begin, (unsigned long long)data_end, HCZ_ALIGN);
    *cur = e + len;
    return HC_OK;
}

/* No two tensors may share bytes: a hostile file could otherwise alias payloads. */
static int check_overlaps(hc_archive *a)
{
    block *b = hci_malloc_array(a->n_tensors ? 2 * a->n_tensors : 1, sizeof *b);
    if (!b)
        return HC_ENOMEM;
    size_t nb = 0;
    for (size_t i = 0; i < a->n_tensors; i++) {
        if (a->t[i].params_len)
            b[nb++] = (block){ a->t[i].params_offset, a->t[i].params_len, i };
        if (a->t[i].payload_len)
            b[nb++] = (block){ a->t[i].payload_offset, a->t[i].payload_len, i };
    }
    qsort(b, nb, sizeof *b, cmp_block);
    int rc = HC_OK;
    for (size_t i = 1; i < nb && rc == HC_OK; i++)
        if (b[i].off < b[i - 1].off + b[i - 1].len)
            rc = BAD("'%s' tensors '%s' and '%s' overlap at offset %llu", a->label, a->t[b[i - 1].tensor].name,
                     a->t[b[i].tensor].name, (unsigned long long)b[i].off);
    hci_free(b);
    return rc;
}

static int check_names(hc_archive *a)
{
    a->by_name = hci_malloc_array(a->n_tensors ? a->n_tensors : 1, sizeof *a->by_name);
    const char ***ptrs = hci_malloc_array(a->n_tensors ? a->n_tensors : 1, sizeof *ptrs);
    if (!a->by_name || !ptrs) {
        hci_free(ptrs);
        return HC_ENOMEM;
    }
    for (size_t i = 0; i < a->n_tensors; i++)
        ptrs[i] = &a->t[i].name;
    qsort(ptrs, a->n_tensors, sizeof *ptrs, cmp_name_ptr);
    int rc = HC_OK;
    for (size_t i = 0; i < a->n_tensors; i++) {
        a->by_name[i] = (size_t)((const char *)ptrs[i] - (const char *)&a->t[0].name) / sizeof(arch_tensor);
        if (i && rc == HC_OK && strcmp(*ptrs[i], *ptrs[i - 1]) == 0)
            rc = BAD("'%s' has two tensors named '%s'", a->label, *ptrs[i]);
    }
    hci_free(ptrs);
    return rc;
}

static int parse(hc_archive *a)
{
    uint64_t dir_off = 0, dir_len = 0;
    uint32_t nt = 0, nm = 0;
    int rc = parse_header(a, &dir_off, &dir_len, &nt, &nm);
    if (rc != HC_OK)
        return rc;
    a->n_tensors = nt;
    a->n_meta = nm;
    a->t = hci_calloc(nt ? nt : 1, sizeof *a->t);
    a->meta_key = hci_calloc(nm ? nm : 1, sizeof *a->meta_key);
    a->meta_value = hci_calloc(nm ? nm : 1, sizeof *a->meta_value);
    /* every string is a slice of the directory plus its NUL: bounded by the directory size */
    a->strings = hci_malloc((size_t)dir_len + 2u * nm + nt + 1);
    if (!a->t || !a->meta_key || !a->meta_value || !a->strings)
        return HC_ENOMEM;
    const uint8_t *cur = a->base + dir_off, *end = a->base + a->size;
    char *pool = a->strings;
    if ((rc = parse_meta(a, &cur, end, &pool)) != HC_OK)
        return rc;
    for (size_t i = 0; i < nt; i++)
        if ((rc = parse_tensor(a, i, &cur, end, &pool, dir_off)) != HC_OK)
            return rc;
    if ((rc = check_names(a)) != HC_OK)
        return rc;
    return check_overlaps(a);
}

static int open_common(hc_archive **out, hc_archive *a)
{
    int rc = parse(a);
    if (rc != HC_OK) {
        hc_archive_close(a);
        return rc;
    }
    *out = a;
    return HC_OK;
}

int hc_archive_open_memory(hc_archive **out, const void *data, size_t size, uint32_t flags)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_archive_open_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return hci_fail(HC_EINVAL, "hc_archive_open_memory: data is NULL");
    hc_archive *a = hci_calloc(1, sizeof *a);
    if (!a)
        return HC_ENOMEM;
    a->base = data;
    a->size = size;
    a->flags = flags;
    a->label = hci_strdup("(memory)");
    if (!a->label) {
        hc_archive_close(a);
        return HC_ENOMEM;
    }
    return open_common(out, a);
}

int hc_archive_open(hc_archive **out, const char *path, uint32_t flags)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_archive_open: out is NULL");
    *out = NULL;
    if (!path)
        return hci_fail(HC_EINVAL, "hc_archive_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return hci_fail(HC_EIO, "cannot open '%s': %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hci_fail(HC_EIO, "cannot read '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hci_fail(HC_EIO, "cannot read '%s': %s", path,
                        S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return hci_fail(HC_EIO, "'%s' is too large to map on this machine", path);
    }
    hc_archive *a = hci_calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return HC_ENOMEM;
    }
    a->size = (size_t)st.st_size;
    a->flags = flags;
    a->label = hci_strdup(path);
    if (!a->label) {
        close(fd);
        hc_archive_close(a);
        return HC_ENOMEM;
    }
    if (a->size >= HCZ_HEADER_SIZE) {   /* smaller files are refused by the parser with a message */
        void *m = mmap(NULL, a->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            hc_archive_close(a);
            return hci_fail(HC_EIO, "cannot map '%s': %s", path, strerror(e));
        }
        a->base = m;
        a->mapped = 1;
    } else {
        static const uint8_t empty[1];
        a->base = empty;
    }
    close(fd);
    return open_common(out, a);
}

void hc_archive_close(hc_archive *a)
{
    if (!a)
        return;
    if (a->mapped)
        munmap((void *)(uintptr_t)a->base, a->size);
    hci_free(a->t);
    hci_free(a->meta_key);
    hci_free(a->meta_value);
    hci_free(a->strings);
    hci_free(a->by_name);
    hci_free(a->label);
    hci_free(a);
}

size_t hc_archive_count(const hc_archive *a) { return a ? a->n_tensors : 0; }
uint64_t hc_archive_file_size(const hc_archive *a) { return a ? a->size : 0; }
uint32_t hc_archive_version(const hc_archive *a) { return a ? (uint32_t)a->major * 256u + a->minor : 0; }
size_t hc_archive_metadata_count(const hc_archive *a) { return a ? a->n_meta : 0; }

const char *hc_archive_name(const hc_archive *a, size_t index)
{
    return a && index < a->n_tensors ? a->t[index].name : NULL;
}

const char *hc_archive_metadata_key(const hc_archive *a, size_t index)
{
    return a && index < a->n_meta ? a->meta_key[index] : NULL;
}

const char *hc_archive_metadata(const hc_archive *a, const char *key)
{
    if (!a || !key)
        return NULL;
    for (size_t i = 0; i < a->n_meta; i++)
        if (strcmp(a->meta_key[i], key) == 0)
            return a->meta_value[i];
    return NULL;
}

int hc_archive_find(size_t *out, const hc_archive *a, const char *name)
{
    if (!out || !a || !name)
        return hci_fail(HC_EINVAL, "hc_archive_find: %s is NULL", !out ? "out" : !a ? "archive" : "name");
    size_t lo = 0, hi = a->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->t[a->by_name[mid]].name, name);
        if (c == 0) {
            *out = a->by_name[mid];
            return HC_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return hci_fail(HC_ENOTFOUND, "'%s' has no tensor named '%s'", a->label, name);
}

static int check_index(const hc_archive *a, size_t index, const char *fn)
{
    if (!a)
        return hci_fail(HC_EINVAL, "%s: archive is NULL", fn);
    if (index >= a->n_tensors)
        return hci_fail(HC_EINVAL, "%s: index %zu is out of range; '%s' has %zu tensors", fn, index, a->label,
                        a->n_tensors);
    return HC_OK;
}

int hc_archive_entry_get(hc_archive_entry *out, const hc_archive *a, size_t index)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_archive_entry_get: out is NULL");
    if (out->struct_size > sizeof(hc_archive_entry))
        return hci_fail(HC_EVERSION, "hc_archive_entry struct_size %u is larger than this library's %zu",
                        out->struct_size, sizeof(hc_archive_entry));
    if (out->struct_size < offsetof(hc_archive_entry, params_offset))
        return hci_fail(HC_EINVAL, "hc_archive_entry struct_size %u is too small (was it initialised?)",
                        out->struct_size);
    int rc = check_index(a, index, "hc_archive_entry_get");
    if (rc != HC_OK)
        return rc;
    const arch_tensor *t = &a->t[index];
    const hci_codec *codec = hci_codec_by_id(t->codec);
    hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
    e.name = t->name;
    e.codec_id = t->codec;
    e.codec_name = codec ? codec->name : "unknown";
    e.orig_dtype = (hc_dtype)t->dtype;
    e.ndim = t->ndim;
    for (uint32_t d = 0; d < t->ndim; d++)
        e.shape[d] = t->shape[d];
    e.numel = t->numel;
    e.params_offset = t->params_offset;
    e.params_len = t->params_len;
    e.payload_offset = t->payload_offset;
    e.payload_len = t->payload_len;
    e.serialized_bytes = HCT_FIXED + 8u * t->ndim + t->params_len + t->payload_len + 4u;
    e.has_quality = (t->flags & HCZ_TF_QUALITY) != 0;
    e.rel_rmse = e.has_quality ? t->q[0] : NAN;
    e.snr_db = e.has_quality ? t->q[1] : NAN;
    e.max_abs_err = e.has_quality ? t->q[2] : NAN;
    e.cosine = e.has_quality ? t->q[3] : NAN;
    e.sparsity = e.has_quality ? t->q[4] : NAN;
    e.seconds = isfinite(t->q[5]) && t->q[5] >= 0 ? t->q[5] : 0.0;
    uint32_t size = out->struct_size;
    memcpy(out, &e, size);
    out->struct_size = size;
    return HC_OK;
}

/* The writer pads each block with zeros up to the next 64-byte boundary; checking them means no
 * byte of a file escapes every check (header, directory and tensor checksums cover the rest). */
static int zero_tail(const hc_archive *a, const arch_tensor *t, uint64_t end, const char *what)
{
    uint64_t data_end = hci_get_u64(a->base + HCZ_H_DIR_OFFSET);
    for (uint64_t o = end; o % HCZ_ALIGN != 0 && o < data_end; o++)
        if (a->base[o] != 0)
            return BAD("'%s' tensor '%s' has nonzero padding byte %02x at offset %llu after its %s (corrupt file)",
                       a->label, t->name, a->base[o], (unsigned long long)o, what);
    return HC_OK;
}

static int check_padding(const hc_archive *a, const arch_tensor *t)
{
    int rc = HC_OK;
    if (t->params_len)
        rc = zero_tail(a, t, t->params_offset + t->params_len, "parameters");
    if (rc == HC_OK)
        rc = zero_tail(a, t, t->payload_offset + t->payload_len, "payload");
    return rc;
}

int hc_archive_tensor(hc_ctensor **out, const hc_archive *a, size_t index)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_archive_tensor: out is NULL");
    *out = NULL;
    int rc = check_index(a, index, "hc_archive_tensor");
    if (rc != HC_OK)
        return rc;
    const arch_tensor *t = &a->t[index];
    /* params_offset means nothing (and was not checked) when there are no parameters */
    const uint8_t *payload = a->base + t->payload_offset;
    const uint8_t *params = t->params_len ? a->base + t->params_offset : payload;
    if (!(a->flags & HC_ARCHIVE_NO_VERIFY)) {
        uint64_t shape[HC_MAX_DIMS];
        for (uint32_t d = 0; d < t->ndim; d++)
            shape[d] = (uint64_t)t->shape[d];
        uint8_t head[HCT_FIXED + 8 * HC_MAX_DIMS];
        size_t hl = hci_hct_header(head, t->codec, t->dtype, t->ndim, shape, t->params_len, t->payload_len);
        uint32_t crc = hci_crc32c(0, head, hl);
        crc = hci_crc32c(crc, params, t->params_len);
        crc = hci_crc32c(crc, payload, (size_t)t->payload_len);
        if (crc != t->crc)
            return BAD("'%s' tensor '%s' checksum mismatch: stored %08x, computed %08x (corrupt file)", a->label,
                       t->name, t->crc, crc);
    }
    if (!(a->flags & HC_ARCHIVE_NO_VERIFY) && (rc = check_padding(a, t)) != HC_OK)
        return rc;
    const hci_codec *codec = hci_codec_by_id(t->codec);
    if (!codec)
        return hci_fail(HC_EUNSUPPORTED, "'%s' tensor '%s' uses codec id %u, which this library does not know",
                        a->label, t->name, t->codec);
    hc_ctensor *ct = hci_calloc(1, sizeof *ct);
    if (!ct)
        return HC_ENOMEM;
    ct->codec = codec;
    ct->orig_dtype = (hc_dtype)t->dtype;
    ct->ndim = t->ndim;
    for (uint32_t d = 0; d < t->ndim; d++)
        ct->shape[d] = t->shape[d];
    ct->numel = t->numel;
    hci_shape_matrix(ct->ndim, ct->shape, &ct->rows, &ct->cols);
    ct->borrowed = 1;   /* the mapping owns the bytes; the codecs only read them */
    ct->params = (uint8_t *)(uintptr_t)params;
    ct->params_len = t->params_len;
    ct->payload = (uint8_t *)(uintptr_t)payload;
    ct->payload_len = t->payload_len;
    ct->threads = 1;
    if (t->flags & HCZ_TF_QUALITY) {
        hc_stats s = HC_STATS_INIT;
        s.rel_rmse = t->q[0];
        s.snr_db = t->q[1];
        s.max_abs_err = t->q[2];
        s.cosine = t->q[3];
        s.sparsity = t->q[4];
        s.seconds = isfinite(t->q[5]) ? t->q[5] : 0.0;
        ct->quality = s;
        ct->has_quality = 1;
    }
    rc = codec->attach(ct);
    if (rc != HC_OK) {
        hc_ctensor_free(ct);
        if (rc == HC_EFORMAT) {
            /* name the file and tensor in front of the codec's own message */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hc_last_error());
            return BAD("'%s' tensor '%s': %s", a->label, t->name, msg);
        }
        return rc;
    }
    *out = ct;
    return HC_OK;
}
