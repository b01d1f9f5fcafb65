/* The safetensors reader: maps the file read-only and validates the whole header (every
 * dtype, shape and offset, the metadata, the coverage of the data section) before anyone sees
 * a byte of it, so a hostile file gets HC_EFORMAT with a message, never a crash. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/error.h"
#include "hypercomp/io.h"

/* Every dtype of the format with whole-byte elements; only three are readable as views. */
static const hci_st_dtype st_dtypes[] = {
    { "F32", 4, 1, HC_DTYPE_F32 },     { "F16", 2, 1, HC_DTYPE_F16 },     { "BF16", 2, 1, HC_DTYPE_BF16 },
    { "F64", 8, 0, HC_DTYPE_F32 },     { "I64", 8, 0, HC_DTYPE_F32 },     { "U64", 8, 0, HC_DTYPE_F32 },
    { "I32", 4, 0, HC_DTYPE_F32 },     { "U32", 4, 0, HC_DTYPE_F32 },     { "I16", 2, 0, HC_DTYPE_F32 },
    { "U16", 2, 0, HC_DTYPE_F32 },     { "I8", 1, 0, HC_DTYPE_F32 },      { "U8", 1, 0, HC_DTYPE_F32 },
    { "BOOL", 1, 0, HC_DTYPE_F32 },    { "F8_E5M2", 1, 0, HC_DTYPE_F32 }, { "F8_E4M3", 1, 0, HC_DTYPE_F32 },
    { "F8_E8M0", 1, 0, HC_DTYPE_F32 }, { "C64", 8, 0, HC_DTYPE_F32 },
};

const hci_st_dtype *hci_st_dtype_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0)
            return &st_dtypes[i];
    return NULL;
}

typedef struct st_entry {
    char *name;
    const hci_st_dtype *dtype;
    uint32_t ndim;
    int64_t shape[HC_SAFETENSORS_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;   /* within the data section */
    const uint8_t *ptr;    /* the data: in the mapping, or in the aligned copy */
} st_entry;

struct hc_safetensors {
    char *path;
    void *map;             /* the whole file, or NULL for an empty data section */
    size_t map_size;
    const uint8_t *data;   /* the data section, inside map */
    void *aligned_copy;    /* copies of the tensors the file leaves misaligned, or NULL */
    uint64_t data_size;
    st_entry *entries;     /* in order of data offsets */
    size_t n;
    const st_entry **by_name; /* entries sorted by name, for hc_safetensors_find */
    char **meta_keys;      /* in file order */
    char **meta_values;
    size_t n_meta;
};

/* ---- header validation ---- */

typedef struct parse_ctx {
    const char *path;
    const char *tensor;    /* current tensor name for messages */
} parse_ctx;

/* A JSON value as text for a message (json-c keeps the string inside the object). */
static const char *jtext(json_object *v)
{
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return s ? s : "?";
}

static int has_nul(json_object *str)
{
    return strlen(json_object_get_string(str)) != (size_t)json_object_get_string_len(str);
}

/* A non-negative JSON integer no larger than INT64_MAX; 0 when it is anything else. */
static int json_nonneg_int(json_object *v, uint64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return 0;
    int64_t s = json_object_get_int64(v);
    if (s < 0)
        return 0;
    /* json-c clamps integers past INT64_MAX (and past UINT64_MAX) to a uint64 value */
    if (s == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
        return 0;
    *out = (uint64_t)s;
    return 1;
}

static int parse_shape(const parse_ctx *pc, st_entry *e, json_object *shape)
{
    if (!json_object_is_type(shape, json_type_array))
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has shape %.64s, not an array", pc->path,
                        pc->tensor, jtext(shape));
    size_t nd = json_object_array_length(shape);
    if (nd > HC_SAFETENSORS_MAX_DIMS)
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has %zu dimensions; at most %d are allowed",
                        pc->path, pc->tensor, nd, HC_SAFETENSORS_MAX_DIMS);
    e->ndim = (uint32_t)nd;
    /* The byte size of the nonzero extents must fit, so no later product of extents can overflow
     * even when a zero extent makes the tensor empty. */
    uint64_t bytes_nonzero = e->dtype->size, numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_object *d = json_object_array_get_idx(shape, i);
        uint64_t x;
        if (!json_nonneg_int(d, &x))
            return hci_fail(HC_EFORMAT,
                            "safetensors file '%s': tensor '%s' has shape entry %.64s in dimension %zu; "
                            "extents must be integers from 0 to 2^63-1",
                            pc->path, pc->tensor, jtext(d), i);
        if (x != 0 && bytes_nonzero > (uint64_t)INT64_MAX / x)
            return hci_fail(HC_EFORMAT,
                            "safetensors file '%s': tensor '%s' has shape %.64s whose byte size overflows 64 bits",
                            pc->path, pc->tensor, jtext(shape));
        if (x != 0)
            bytes_nonzero *= x;
        numel *= x;
        e->shape[i] = (int64_t)x;
    }
    e->numel = (int64_t)numel;
    return HC_OK;
}

static int parse_offsets(const parse_ctx *pc, st_entry *e, json_object *off, uint64_t data_size)
{
    uint64_t b, en;
    if (!json_object_is_type(off, json_type_array) || json_object_array_length(off) != 2 ||
        !json_nonneg_int(json_object_array_get_idx(off, 0), &b) ||
        !json_nonneg_int(json_object_array_get_idx(off, 1), &en))
        return hci_fail(HC_EFORMAT,
                        "safetensors file '%s': tensor '%s' has data_offsets %.64s; expected [begin, end] with "
                        "non-negative integers",
                        pc->path, pc->tensor, jtext(off));
    if (b > en)
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has data_offsets [%llu, %llu]: begin is after end",
                        pc->path, pc->tensor, (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return hci_fail(HC_EFORMAT,
                        "safetensors file '%s': tensor '%s' has data_offsets [%llu, %llu] past the end of the "
                        "data section (%llu bytes)",
                        pc->path, pc->tensor, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)data_size);
    /* numel * size cannot overflow: parse_shape bounded the byte size of the nonzero extents */
    uint64_t need = (uint64_t)e->numel * e->dtype->size;
    if (en - b != need)
        return hci_fail(HC_EFORMAT,
                        "safetensors file '%s': tensor '%s' has data_offsets [%llu, %llu] (%llu bytes) but dtype %s "
                        "with %lld elements needs %llu bytes",
                        pc->path, pc->tensor, (unsigned long long)b, (unsigned long long)en,
                        (unsigned long long)(en - b), e->dtype->name, (long long)e->numel,
                        (unsigned long long)need);
    e->begin = b;
    e->end = en;
    return HC_OK;
}

static int parse_entry(const parse_ctx *pc, st_entry *e, json_object *obj, uint64_t data_size)
{
    if (!json_object_is_type(obj, json_type_object))
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' is %.64s, not an object", pc->path,
                        pc->tensor, jtext(obj));
    json_object *dtype = NULL, *shape = NULL, *off = NULL;
    json_object_object_foreach(obj, key, val) {
        if (strcmp(key, "dtype") == 0)
            dtype = val;
        else if (strcmp(key, "shape") == 0)
            shape = val;
        else if (strcmp(key, "data_offsets") == 0)
            off = val;
        else
            return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has unknown field '%.64s'", pc->path,
                            pc->tensor, key);
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !off ? "data_offsets" : NULL;
    if (missing)
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has no '%s' field", pc->path, pc->tensor,
                        missing);
    if (!json_object_is_type(dtype, json_type_string))
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has dtype %.64s, not a string", pc->path,
                        pc->tensor, jtext(dtype));
    /* an escaped NUL ("F32\u0000...") would otherwise end the C string early and pass as F32 */
    e->dtype = has_nul(dtype) ? NULL : hci_st_dtype_by_name(json_object_get_string(dtype));
    if (!e->dtype)
        return hci_fail(HC_EFORMAT, "safetensors file '%s': tensor '%s' has unknown dtype %.64s", pc->path, pc->tensor,
                        jtext(dtype));
    int rc = parse_shape(pc, e, shape);
    if (rc != HC_OK)
        return rc;
    return parse_offsets(pc, e, off, data_size);
}

static int parse_metadata(hc_safetensors *st, json_object *meta)
{
    if (!json_object_is_type(meta, json_type_object))
        return hci_fail(HC_EFORMAT, "safetensors file '%s': __metadata__ is %.64s, not an object of strings", st->path,
                        jtext(meta));
    size_t n = (size_t)json_object_object_length(meta);
    json_object_object_foreach(meta, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return hci_fail(HC_EFORMAT, "safetensors file '%s': __metadata__ key '%.64s' has value %.64s, not a string",
                            st->path, key, jtext(val));
        if (has_nul(val))
            return hci_fail(HC_EFORMAT, "safetensors file '%s': __metadata__ key '%.64s' has a value with a NUL character",
                            st->path, key);
    }
    st->meta_keys = hci_calloc(n, sizeof *st->meta_keys);
    st->meta_values = hci_calloc(n, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values)
        return HC_ENOMEM;
    json_object_object_foreach(meta, k, v) {
        st->meta_keys[st->n_meta] = hci_strdup(k);
        st->meta_values[st->n_meta] = hci_strdup(json_object_get_string(v));
        st->n_meta++;
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
            return HC_ENOMEM;
    }
    return HC_OK;
}

static int cmp_offsets(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int cmp_names(const void *pa, const void *pb)
{
    return strcmp((*(const st_entry *const *)pa)->name, (*(const st_entry *const *)pb)->name);
}

/* The format forbids holes and overlaps: the tensors, sorted by offset, tile the data section. */
static int check_coverage(const hc_safetensors *st)
{
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < st->n; i++) {
        const st_entry *e = &st->entries[i];
        if (e->begin < pos)
            return hci_fail(HC_EFORMAT,
                            "safetensors file '%s': tensors '%s' and '%s' overlap (data_offsets [%llu, %llu] start "
                            "before the end of the previous tensor at %llu)",
                            st->path, prev, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                            (unsigned long long)pos);
        if (e->begin > pos)
            return hci_fail(HC_EFORMAT,
                            "safetensors file '%s': the data section has a hole: bytes [%llu, %llu) before tensor '%s' "
                            "belong to no tensor",
                            st->path, (unsigned long long)pos, (unsigned long long)e->begin, e->name);
        pos = e->end;
        prev = e->name;
    }
    if (pos != st->data_size)
        return hci_fail(HC_EFORMAT,
                        "safetensors file '%s': the data section has %llu bytes after the last tensor that belong to "
                        "no tensor",
                        st->path, (unsigned long long)(st->data_size - pos));
    return HC_OK;
}

static int parse_header(hc_safetensors *st, const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(8);
    if (!tok)
        return hci_oom(sizeof(json_tokener *));
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    /* len <= HC_SAFETENSORS_MAX_HEADER, far below INT_MAX */
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!root && jerr == json_tokener_continue) {
        /* a bare literal or number ("null", "12") only ends at the next character: supply one, so
         * it is reported as what it is rather than as truncated JSON */
        root = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
    }
    json_tokener_free(tok);
    int rc = HC_OK;
    if (!root && jerr == json_tokener_success) {
        rc = hci_fail(HC_EFORMAT, "safetensors file '%s': the header is JSON null, not an object", st->path);
        goto out;
    }
    if (!root || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue)
            jerr = json_tokener_error_parse_eof;
        rc = hci_fail(HC_EFORMAT, "safetensors file '%s': the header is not valid JSON (%s at byte %zu of %zu)",
                      st->path, json_tokener_error_desc(jerr), end, len);
        goto out;
    }
    for (size_t i = end; i < len; i++) {
        /* the format pads headers with spaces; anything else after the object is garbage */
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            rc = hci_fail(HC_EFORMAT, "safetensors file '%s': the header has trailing bytes after its JSON object "
                                      "(byte %zu of %zu is 0x%02x)",
                          st->path, i, len, (unsigned)(unsigned char)text[i]);
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        rc = hci_fail(HC_EFORMAT, "safetensors file '%s': the header is a JSON %s, not an object", st->path,
                      json_type_to_name(json_object_get_type(root)));
        goto out;
    }
    size_t n_keys = (size_t)json_object_object_length(root);
    st->entries = hci_calloc(n_keys, sizeof *st->entries);
    if (!st->entries) {
        rc = HC_ENOMEM;
        goto out;
    }
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(st, val);
            if (rc != HC_OK)
                goto out;
            continue;
        }
        st_entry *e = &st->entries[st->n];
        parse_ctx pc = { st->path, key };
        rc = parse_entry(&pc, e, val, st->data_size);
        if (rc != HC_OK)
            goto out;
        e->name = hci_strdup(key);
        if (!e->name) {
            rc = HC_ENOMEM;
            goto out;
        }
        st->n++;
    }
    qsort(st->entries, st->n, sizeof *st->entries, cmp_offsets);
    rc = check_coverage(st);
    if (rc != HC_OK)
        goto out;
    st->by_name = hci_calloc(st->n, sizeof *st->by_name);
    if (!st->by_name) {
        rc = HC_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < st->n; i++)
        st->by_name[i] = &st->entries[i];
    qsort(st->by_name, st->n, sizeof *st->by_name, cmp_names);
out:
    json_object_put(root);
    return rc;
}

/* ---- opening ---- */

/* Views hand out typed pointers: a tensor that a foreign file leaves misaligned for its element
 * size (odd header length, odd offsets) is copied into aligned memory, the others stay mapped. */
static int align_data(hc_safetensors *st)
{
    size_t need = 0;
    for (size_t i = 0; i < st->n; i++) {
        st_entry *e = &st->entries[i];
        e->ptr = st->data + e->begin;
        if ((uintptr_t)e->ptr % e->dtype->size != 0)
            need += (size_t)(e->end - e->begin + 7) / 8 * 8; /* bounded by the file size */
    }
    if (need == 0)
        return HC_OK;
    uint8_t *copy = hci_aligned_array(need, 1);
    if (!copy)
        return HC_ENOMEM;
    st->aligned_copy = copy;
    for (size_t i = 0; i < st->n; i++) {
        st_entry *e = &st->entries[i];
        if ((uintptr_t)e->ptr % e->dtype->size != 0) {
            memcpy(copy, e->ptr, (size_t)(e->end - e->begin));
            e->ptr = copy;
            copy += (size_t)(e->end - e->begin + 7) / 8 * 8;
        }
    }
    return HC_OK;
}

static int open_mapped(hc_safetensors *st)
{
    int fd = open(st->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hci_fail(HC_EIO, "cannot open safetensors file '%s': %s", st->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return hci_fail(HC_EIO, "cannot stat safetensors file '%s': %s", st->path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return hci_fail(HC_EIO, "safetensors file '%s' is not a regular file", st->path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return hci_fail(HC_EIO, "safetensors file '%s' (%lld bytes) does not fit in the address space", st->path,
                        (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return hci_fail(HC_EFORMAT,
                        "safetensors file '%s' is truncated: %zu bytes, less than the 8-byte header length", st->path,
                        size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return hci_fail(HC_EIO, "cannot map safetensors file '%s': %s", st->path, strerror(e));
    st->map = map;
    st->map_size = size;
    return HC_OK;
}

int hc_safetensors_open(hc_safetensors **out, const char *path)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_safetensors_open: out is NULL");
    *out = NULL;
    if (!path)
        return hci_fail(HC_EINVAL, "hc_safetensors_open: path is NULL");
    hc_safetensors *st = hci_calloc(1, sizeof *st);
    if (!st)
        return HC_ENOMEM;
    int rc = HC_ENOMEM;
    st->path = hci_strdup(path);
    if (!st->path)
        goto fail;
    rc = open_mapped(st);
    if (rc != HC_OK)
        goto fail;
    const uint8_t *bytes = st->map;
    uint64_t hlen = hci_get_u64(bytes);
    if (hlen > HC_SAFETENSORS_MAX_HEADER) {
        rc = hci_fail(HC_EFORMAT, "safetensors file '%s': header length %llu exceeds the limit of %d bytes", path,
                      (unsigned long long)hlen, HC_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (hlen > st->map_size - 8) {
        rc = hci_fail(HC_EFORMAT,
                      "safetensors file '%s' is truncated: header length %llu runs past the end of the file "
                      "(%zu bytes)",
                      path, (unsigned long long)hlen, st->map_size);
        goto fail;
    }
    st->data = bytes + 8 + hlen;
    st->data_size = st->map_size - 8 - hlen;
    rc = parse_header(st, (const char *)bytes + 8, (size_t)hlen);
    if (rc == HC_OK)
        rc = align_data(st);
    if (rc != HC_OK)
        goto fail;
    *out = st;
    return HC_OK;
fail:
    hc_safetensors_close(st);
    return rc;
}

void hc_safetensors_close(hc_safetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_size);
    hci_free(st->aligned_copy);
    for (size_t i = 0; i < st->n; i++)
        hci_free(st->entries[i].name);
    hci_free(st->entries);
    hci_free(st->by_name);
    for (size_t i = 0; i < st->n_meta; i++) {
        hci_free(st->meta_keys[i]);
        hci_free(st->meta_values[i]);
    }
    hci_free(st->meta_keys);
    hci_free(st->meta_values);
    hci_free(st->path);
    hci_free(st);
}

/* ---- queries ---- */

size_t hc_safetensors_count(const hc_safetensors *st)
{
    return st ? st->n : 0;
}

static const st_entry *entry_at(const hc_safetensors *st, size_t index)
{
    return st && index < st->n ? &st->entries[index] : NULL;
}

const char *hc_safetensors_name(const hc_safetensors *st, size_t index)
{
    const st_entry *e = entry_at(st, index);
    return e ? e->name : NULL;
}

const char *hc_safetensors_dtype(const hc_safetensors *st, size_t index)
{
    const st_entry *e = entry_at(st, index);
    return e ? e->dtype->name : NULL;
}

uint32_t hc_safetensors_ndim(const hc_safetensors *st, size_t index)
{
    const st_entry *e = entry_at(st, index);
    return e ? e->ndim : 0;
}

int hc_safetensors_shape(int64_t out[HC_SAFETENSORS_MAX_DIMS], const hc_safetensors *st, size_t index)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_safetensors_shape: out is NULL");
    const st_entry *e = entry_at(st, index);
    if (!e)
        return hci_fail(HC_EINVAL, "hc_safetensors_shape: index %zu is out of range (%zu tensors)", index,
                        st ? st->n : 0);
    for (uint32_t i = 0; i < HC_SAFETENSORS_MAX_DIMS; i++)
        out[i] = i < e->ndim ? e->shape[i] : 0;
    return HC_OK;
}

int64_t hc_safetensors_numel(const hc_safetensors *st, size_t index)
{
    const st_entry *e = entry_at(st, index);
    return e ? e->numel : -1;
}

int hc_safetensors_tensor(hc_tensor_view *out, const hc_safetensors *st, size_t index)
{
    if (!out)
        return hci_fail(HC_EINVAL, "hc_safetensors_tensor: out is NULL");
    if (!st)
        return hci_fail(HC_EINVAL, "hc_safetensors_tensor: reader is NULL");
    if (out->struct_size > sizeof(hc_tensor_view))
        return hci_fail(HC_EVERSION, "hc_tensor_view struct_size %u is larger than this library's %zu",
                        out->struct_size, sizeof(hc_tensor_view));
    if (out->struct_size < offsetof(hc_tensor_view, importance))
        return hci_fail(HC_EINVAL, "hc_tensor_view struct_size %u is smaller than the minimum %zu (was it initialised?)",
                        out->struct_size, offsetof(hc_tensor_view, importance));
    const st_entry *e = entry_at(st, index);
    if (!e)
        return hci_fail(HC_EINVAL, "safetensors file '%s': tensor index %zu is out of range (%zu tensors)", st->path,
                        index, st->n);
    if (!e->dtype->readable)
        return hci_fail(HC_EUNSUPPORTED,
                        "safetensors file '%s': tensor '%s' has dtype %s; only F32, F16 and BF16 can be read",
                        st->path, e->name, e->dtype->name);
    if (e->ndim > HC_MAX_DIMS)
        return hci_fail(HC_EUNSUPPORTED, "safetensors file '%s': tensor '%s' has %u dimensions; at most %d are supported",
                        st->path, e->name, e->ndim, HC_MAX_DIMS);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = e->name;
    v.dtype = e->dtype->dtype;
    v.ndim = e->ndim;
    for (uint32_t i = 0; i < e->ndim; i++)
        v.shape[i] = e->shape[i];
    v.data = e->ptr;
    v.struct_size = out->struct_size;
    memcpy(out, &v, out->struct_size);
    return HC_OK;
}

int hc_safetensors_find(size_t *out, const hc_safetensors *st, const char *name)
{
    if (!out || !st || !name)
        return hci_fail(HC_EINVAL, "hc_safetensors_find: %s is NULL", !out ? "out" : !st ? "reader" : "name");
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->by_name[mid]->name, name);
        if (c == 0) {
            *out = (size_t)(st->by_name[mid] - st->entries);
            return HC_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return hci_fail(HC_ENOTFOUND, "safetensors file '%s' has no tensor named '%s'", st->path, name);
}

const char *hc_safetensors_metadata(const hc_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    return NULL;
}

size_t hc_safetensors_metadata_count(const hc_safetensors *st)
{
    return st ? st->n_meta : 0;
}

const char *hc_safetensors_metadata_key(const hc_safetensors *st, size_t index)
{
    return st && index < st->n_meta ? st->meta_keys[index] : NULL;
}
