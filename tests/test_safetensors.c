/* safetensors: round trips through the writer and reader, the real fixture, a table of hostile
 * headers each with its message, writer failures that must leave nothing behind, and OOM. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/half.h"
#include "harness.h"

/* ---- scratch directories ---- */

static char *scratch_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);
    ck_assert_ptr_nonnull(dir);
    snprintf(dir, 4096, "%s/hc-st-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

/* Number of entries in dir other than . and .. (the writer must leave none behind on failure). */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char path[8192];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            ck_assert_int_eq(rmdir(path), 0);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
    free(dir);
}

static const char *join(const char *dir, const char *file)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", dir, file);
    return buf;
}

/* Writes a file of an 8-byte header length, the header text and data_bytes bytes 0x11. */
static void write_raw(const char *path, uint64_t header_len, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t len[8];
    hci_put_u64(len, header_len);
    ck_assert_uint_eq(fwrite(len, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    for (size_t i = 0; i < data_bytes; i++)
        ck_assert_int_ne(fputc(0x11, f), EOF);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_header(const char *path, const char *header, size_t data_bytes)
{
    write_raw(path, strlen(header), header, data_bytes);
}

static hc_tensor_view view_of(const char *name, hc_dtype dtype, uint32_t ndim, const int64_t *shape, const void *data)
{
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    v.name = name;
    v.dtype = dtype;
    v.ndim = ndim;
    for (uint32_t i = 0; i < ndim; i++)
        v.shape[i] = shape[i];
    v.data = data;
    return v;
}

/* ---- round trips ---- */

START_TEST(round_trip_every_dtype_and_rank)
{
    char *dir = scratch_dir();
    const char *path = join(dir, "rt.safetensors");
    char target[8192];
    snprintf(target, sizeof target, "%s", path);

    float *w4 = test_gauss(7, 2 * 3 * 4 * 5, 1.0);
    float m[6] = { 1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -65504.0f };
    uint16_t h[5], b0;
    for (int i = 0; i < 5; i++)
        h[i] = hci_f32_to_f16((float)i * 0.3f - 0.7f);
    b0 = hci_f32_to_bf16(-3.0e38f);
    const int64_t s4[4] = { 2, 3, 4, 5 }, s2[2] = { 2, 3 }, s1[1] = { 5 }, s0[2] = { 0, 3 };

    hc_safetensors_writer *w;
    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    ck_assert_int_eq(dir_entries(dir), 0); /* the data file is unlinked at once */
    ck_assert_ok(hc_safetensors_writer_set_metadata(w, "format", "pt"));
    ck_assert_ok(hc_safetensors_writer_set_metadata(w, "note", "quote \" slash / caf\xc3\xa9"));
    hc_tensor_view v = view_of("z.matrix", HC_DTYPE_F32, 2, s2, m);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    v = view_of("a.half", HC_DTYPE_F16, 1, s1, h);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    v = view_of("scalar", HC_DTYPE_BF16, 0, s0, &b0);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    v = view_of("empty", HC_DTYPE_F32, 2, s0, NULL);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    v = view_of("conv", HC_DTYPE_F32, 4, s4, w4);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    ck_assert_int_eq(dir_entries(dir), 0); /* nothing under the target name before finish */
    ck_assert_ok(hc_safetensors_writer_finish(w));
    ck_assert_status(hc_safetensors_writer_finish(w), HC_EINVAL, "already finished");
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "already finished");
    hc_safetensors_writer_free(w);
    ck_assert_int_eq(dir_entries(dir), 1);

    /* the data section starts 8-byte aligned */
    FILE *f = fopen(target, "rb");
    uint8_t len[8];
    ck_assert_uint_eq(fread(len, 1, 8, f), 8);
    fclose(f);
    ck_assert_uint_eq(hci_get_u64(len) % 8, 0);

    hc_safetensors *st;
    ck_assert_ok(hc_safetensors_open(&st, target));
    ck_assert_uint_eq(hc_safetensors_count(st), 5);
    /* file order is the order of data offsets, which is the order of the adds */
    const char *order[] = { "z.matrix", "a.half", "scalar", "empty", "conv" };
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(hc_safetensors_name(st, i), order[i]);
    ck_assert_ptr_null(hc_safetensors_name(st, 5));
    ck_assert_uint_eq(hc_safetensors_metadata_count(st), 2);
    ck_assert_str_eq(hc_safetensors_metadata_key(st, 0), "format");
    ck_assert_str_eq(hc_safetensors_metadata(st, "format"), "pt");
    ck_assert_str_eq(hc_safetensors_metadata(st, "note"), "quote \" slash / caf\xc3\xa9");
    ck_assert_ptr_null(hc_safetensors_metadata(st, "absent"));
    ck_assert_ptr_null(hc_safetensors_metadata_key(st, 2));

    hc_tensor_view r = HC_TENSOR_VIEW_INIT;
    ck_assert_ok(hc_safetensors_tensor(&r, st, 0));
    ck_assert_str_eq(r.name, "z.matrix");
    ck_assert_int_eq(r.dtype, HC_DTYPE_F32);
    ck_assert_uint_eq(r.ndim, 2);
    ck_assert_int_eq(r.shape[0], 2);
    ck_assert_int_eq(r.shape[1], 3);
    ck_assert_mem_eq(r.data, m, sizeof m);
    ck_assert_ptr_null(r.importance);

    ck_assert_ok(hc_safetensors_tensor(&r, st, 1));
    ck_assert_int_eq(r.dtype, HC_DTYPE_F16);
    ck_assert_mem_eq(r.data, h, sizeof h);
    ck_assert_uint_eq((uintptr_t)r.data % 2, 0);

    ck_assert_ok(hc_safetensors_tensor(&r, st, 2));
    ck_assert_int_eq(r.dtype, HC_DTYPE_BF16);
    ck_assert_uint_eq(r.ndim, 0);
    ck_assert_int_eq(hc_safetensors_numel(st, 2), 1);
    ck_assert_mem_eq(r.data, &b0, 2);

    size_t idx;
    ck_assert_ok(hc_safetensors_find(&idx, st, "empty"));
    ck_assert_uint_eq(idx, 3);
    ck_assert_ok(hc_safetensors_tensor(&r, st, idx));
    ck_assert_int_eq(hc_safetensors_numel(st, idx), 0);
    ck_assert_int_eq(r.shape[0], 0);
    /* an empty view is listed and viewable; compressing it fails with a clear message */
    hc_compressor *c;
    hc_ctensor *ct;
    ck_assert_ok(hc_compressor_from_spec(&c, "fp16"));
    ck_assert_status(hc_compress(&ct, c, &r), HC_EINVAL, "tensor 'empty' is empty");
    hc_compressor_free(c);

    ck_assert_ok(hc_safetensors_find(&idx, st, "conv"));
    ck_assert_ok(hc_safetensors_tensor(&r, st, idx));
    ck_assert_uint_eq(r.ndim, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(r.shape[i], s4[i]);
    ck_assert_mem_eq(r.data, w4, sizeof(float) * 120);
    ck_assert_uint_eq((uintptr_t)r.data % 4, 0);
    int64_t shape8[HC_SAFETENSORS_MAX_DIMS];
    ck_assert_ok(hc_safetensors_shape(shape8, st, idx));
    ck_assert_int_eq(shape8[3], 5);
    ck_assert_int_eq(shape8[4], 0);
    ck_assert_str_eq(hc_safetensors_dtype(st, idx), "F32");
    ck_assert_uint_eq(hc_safetensors_ndim(st, idx), 4);

    ck_assert_status(hc_safetensors_find(&idx, st, "nope"), HC_ENOTFOUND, "has no tensor named 'nope'");
    ck_assert_status(hc_safetensors_tensor(&r, st, 5), HC_EINVAL, "tensor index 5 is out of range (5 tensors)");
    ck_assert_status(hc_safetensors_shape(shape8, st, 9), HC_EINVAL, "index 9 is out of range");
    hc_tensor_view big = HC_TENSOR_VIEW_INIT;
    big.struct_size = sizeof big + 8;
    ck_assert_status(hc_safetensors_tensor(&big, st, 0), HC_EVERSION, "larger than this library's");
    hc_safetensors_close(st);
    free(w4);
    remove_dir(dir);
}
END_TEST

START_TEST(writer_replaces_an_existing_file_only_on_success)
{
    char *dir = scratch_dir();
    char target[8192];
    snprintf(target, sizeof target, "%s", join(dir, "x.safetensors"));
    write_header(target, "{}", 0);
    float one = 1.0f;
    hc_safetensors_writer *w;
    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    hc_tensor_view v = view_of("one", HC_DTYPE_F32, 0, NULL, &one);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    hc_safetensors_writer_free(w); /* abandoned: the old file stays as it was */
    hc_safetensors *st;
    ck_assert_ok(hc_safetensors_open(&st, target));
    ck_assert_uint_eq(hc_safetensors_count(st), 0);
    hc_safetensors_close(st);
    ck_assert_int_eq(dir_entries(dir), 1);

    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    ck_assert_ok(hc_safetensors_writer_finish(w));
    hc_safetensors_writer_free(w);
    ck_assert_ok(hc_safetensors_open(&st, target));
    ck_assert_uint_eq(hc_safetensors_count(st), 1);
    ck_assert_uint_eq(hc_safetensors_metadata_count(st), 0);
    hc_safetensors_close(st);
    ck_assert_int_eq(dir_entries(dir), 1);
    remove_dir(dir);
}
END_TEST

/* ---- the real fixture ---- */

START_TEST(reads_the_ppocr_fixture)
{
    hc_safetensors *st;
    ck_assert_ok(hc_safetensors_open(&st, test_data_path("ppocr-rec-subset.safetensors")));
    ck_assert_uint_eq(hc_safetensors_count(st), 12);
    const char *order[] = { "batch_norm2d_149.b_0", "batch_norm2d_149.w_0", "conv2d_10.w_0", "conv2d_162.w_0",
                            "conv2d_180.b_0", "conv2d_180.w_0", "conv2d_181.w_0", "layer_norm_43.b_0",
                            "layer_norm_43.w_0", "linear_78.w_0", "linear_79.b_0", "linear_79.w_0" };
    int64_t total = 0;
    for (size_t i = 0; i < 12; i++) {
        ck_assert_str_eq(hc_safetensors_name(st, i), order[i]);
        ck_assert_str_eq(hc_safetensors_dtype(st, i), "F32");
        total += hc_safetensors_numel(st, i);
    }
    ck_assert_int_eq(total, 291328);
    const char *src = hc_safetensors_metadata(st, "source");
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(strstr(src, "PaddleOCR, Apache-2.0"));

    size_t i;
    ck_assert_ok(hc_safetensors_find(&i, st, "conv2d_180.w_0"));
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    ck_assert_ok(hc_safetensors_tensor(&v, st, i));
    ck_assert_uint_eq(v.ndim, 4);
    ck_assert_int_eq(v.shape[0], 480);
    ck_assert_int_eq(v.shape[1], 480);
    ck_assert_int_eq(v.shape[2], 1);
    ck_assert_int_eq(v.shape[3], 1);
    const float *w = v.data;
    /* first and last bit patterns and the sum of squares as Python's struct/json read them */
    uint32_t first, last;
    memcpy(&first, &w[0], 4);
    memcpy(&last, &w[230399], 4);
    ck_assert_uint_eq(first, 3186151452u);
    ck_assert_uint_eq(last, 1033816340u);
    double s2 = 0, s4 = 0, mean = 0;
    for (int k = 0; k < 230400; k++)
        mean += w[k];
    mean /= 230400;
    for (int k = 0; k < 230400; k++) {
        double d = w[k] - mean;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    double sq = 0;
    for (int k = 0; k < 230400; k++)
        sq += (double)w[k] * w[k];
    ck_assert_double_eq_tol(sq, 6642.892612562923, 1e-6);
    /* the reason this tensor is in the fixture: heavy outliers */
    ck_assert(s4 * 230400 / (s2 * s2) > 1000);

    ck_assert_ok(hc_safetensors_find(&i, st, "conv2d_181.w_0"));
    ck_assert_ok(hc_safetensors_tensor(&v, st, i));
    ck_assert_int_eq(v.shape[1], 1); /* depthwise */
    memcpy(&first, v.data, 4);
    ck_assert_uint_eq(first, 1019756558u);
    hc_safetensors_close(st);
}
END_TEST

/* ---- hostile headers ---- */

typedef struct hostile {
    const char *header;   /* JSON text, or NULL for the raw cases below */
    size_t data_bytes;
    const char *needle;
} hostile;

static const hostile hostiles[] = {
    { "{not json}", 0, "the header is not valid JSON" },
    { "{\"a\":{\"dtype\":\"F32\",", 0, "not valid JSON (unexpected end of data" },
    { "{\"\xff\":{}}", 0, "the header is not valid JSON" },
    { "[1,2]", 0, "the header is a JSON array, not an object" },
    { "\"text\"", 0, "the header is a JSON string, not an object" },
    { "null", 0, "the header is JSON null, not an object" },
    { "12", 0, "the header is a JSON int, not an object" },
    { "{} x", 0, "trailing bytes after its JSON object (byte 3 of 4 is 0x78)" },
    { "{\"t\":5}", 0, "tensor 't' is 5, not an object" },
    { "{\"t\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 't' has dtype 5, not a string" },
    { "{\"t\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 't' has unknown dtype \"F99\"" },
    { "{\"t\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 't' has unknown dtype \"f32\"" },
    { "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 't' has no 'dtype' field" },
    { "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 't' has no 'shape' field" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 't' has no 'data_offsets' field" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offset\":9}}", 4,
      "tensor 't' has unknown field 'offset'" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, "tensor 't' has shape 4, not an array" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has shape entry -1 in dimension 0" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has shape entry 2.5 in dimension 1" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
      "tensor 't' has shape entry \"2\" in dimension 0" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has shape entry 18446744073709551615 in dimension 0" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has shape [4294967296,4294967296] whose byte size overflows 64 bits" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
      "whose byte size overflows 64 bits" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has 9 dimensions; at most 8 are allowed" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
      "tensor 't' has data_offsets [8, 4]: begin is after end" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
      "tensor 't' has data_offsets [-4,0]; expected [begin, end]" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "tensor 't' has data_offsets [0]; expected" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "has data_offsets [0,4,8]; expected" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
      "tensor 't' has data_offsets [0, 8] past the end of the data section (4 bytes)" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4,
      "tensor 't' has data_offsets [0,18446744073709551615]; expected" },
    { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has data_offsets [0, 4] (4 bytes) but dtype F32 with 2 elements needs 8 bytes" },
    { "{\"t\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,12]}}", 12,
      "but dtype I64 with 3 elements needs 24 bytes" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
      "tensors 'a' and 'b' overlap (data_offsets [4, 12] start before the end of the previous tensor at 8)" },
    { "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensors 'a' and 'b' overlap" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
      "the data section has a hole: bytes [4, 8) before tensor 'b' belong to no tensor" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
      "the data section has 8 bytes after the last tensor" },
    /* a duplicate key keeps the last entry; the first one's bytes then belong to no tensor */
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "has a hole: bytes [0, 4)" },
    { "{\"t\":{\"dtype\":\"F32\\u0000x\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "tensor 't' has unknown dtype \"F32\\u0000x\"" },
    { "{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "__metadata__ key 'k' has a value with a NUL character" },
    { "{\"__metadata__\":[1]}", 0, "__metadata__ is [1], not an object of strings" },
    { "{\"__metadata__\":\"x\"}", 0, "__metadata__ is \"x\", not an object of strings" },
    { "{\"__metadata__\":{\"k\":5}}", 0, "__metadata__ key 'k' has value 5, not a string" },
    { "{\"__metadata__\":{\"ok\":\"v\",\"k\":{\"nested\":\"x\"}}}", 0,
      "__metadata__ key 'k' has value {\"nested\":\"x\"}, not a string" },
    { "{\"__metadata__\":{\"k\":null}}", 0, "__metadata__ key 'k' has value null, not a string" },
};

START_TEST(hostile_headers_are_rejected_with_their_message)
{
    char *dir = scratch_dir();
    const char *path = join(dir, "bad.safetensors");
    for (size_t k = 0; k < sizeof hostiles / sizeof hostiles[0]; k++) {
        write_header(path, hostiles[k].header, hostiles[k].data_bytes);
        hc_safetensors *st = (hc_safetensors *)&k;
        int rc = hc_safetensors_open(&st, path);
        ck_assert_msg(rc == HC_EFORMAT, "case %zu (%s): %s %s", k, hostiles[k].header, hc_status_name(rc),
                      hc_last_error());
        ck_assert_ptr_null(st);
        ck_assert_msg(strstr(hc_last_error(), hostiles[k].needle) != NULL, "case %zu: message '%s' lacks '%s'", k,
                      hc_last_error(), hostiles[k].needle);
        ck_assert_msg(strstr(hc_last_error(), path) != NULL, "case %zu: message '%s' does not name the file", k,
                      hc_last_error());
    }
    remove_dir(dir);
}
END_TEST

START_TEST(bad_header_lengths_and_truncation)
{
    char *dir = scratch_dir();
    char path[8192];
    snprintf(path, sizeof path, "%s", join(dir, "bad.safetensors"));
    hc_safetensors *st;

    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite("\x05\0\0\0\0", 1, 5, f), 5);
    fclose(f);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT, "is truncated: 5 bytes, less than the 8-byte");

    f = fopen(path, "wb");
    fclose(f);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT, "is truncated: 0 bytes");

    write_raw(path, 1000, "{}", 10);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT,
                     "is truncated: header length 1000 runs past the end of the file (20 bytes)");
    write_raw(path, UINT64_MAX, "{}", 0);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT,
                     "header length 18446744073709551615 exceeds the limit of 100000000 bytes");
    write_raw(path, 100000001, "{}", 0);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT, "header length 100000001 exceeds the limit");
    /* a header length that cuts the JSON short */
    write_raw(path, 10, "{\"__metadata__\":{}}", 0);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT, "not valid JSON (unexpected end of data at byte");
    /* a control byte after the JSON, inside the header length */
    write_raw(path, 3, "{}", 1);
    ck_assert_status(hc_safetensors_open(&st, path), HC_EFORMAT, "trailing bytes after its JSON object (byte 2 of 3 is 0x11)");
    /* the smallest valid file, and one padded with spaces */
    write_header(path, "{}", 0);
    ck_assert_ok(hc_safetensors_open(&st, path));
    ck_assert_uint_eq(hc_safetensors_count(st), 0);
    hc_safetensors_close(st);
    write_header(path, "{}      ", 0);
    ck_assert_ok(hc_safetensors_open(&st, path));
    hc_safetensors_close(st);
    remove_dir(dir);
}
END_TEST

START_TEST(missing_file_and_directories_are_io_errors)
{
    hc_safetensors *st;
    ck_assert_status(hc_safetensors_open(&st, "/nonexistent/dir/model.safetensors"), HC_EIO,
                     "cannot open safetensors file '/nonexistent/dir/model.safetensors': No such file or directory");
    ck_assert_status(hc_safetensors_open(&st, "/"), HC_EIO, "'/' is not a regular file");
    ck_assert_status(hc_safetensors_open(&st, NULL), HC_EINVAL, "path is NULL");
    ck_assert_status(hc_safetensors_open(NULL, "x"), HC_EINVAL, "out is NULL");
}
END_TEST

START_TEST(unsupported_dtypes_and_ranks_are_listed_not_viewed)
{
    char *dir = scratch_dir();
    const char *path = join(dir, "mixed.safetensors");
    /* 1 + 4 + 16 + 3 + 8 bytes; a 1-byte BOOL first leaves the F32 behind it misaligned in the
     * file, which the reader must fix by copying */
    char header[1024];
    snprintf(header, sizeof header, "%s",
             "{\"flag\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]},"
             "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[5,21]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[3,1,1,1,1],\"data_offsets\":[21,24]},"
             "\"five\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2,1],\"data_offsets\":[24,32]}}");
    while (strlen(header) % 8) /* data section 8-aligned in the file, so 'w' sits at an odd offset */
        strcat(header, " ");
    write_header(path, header, 32);
    hc_safetensors *st;
    ck_assert_ok(hc_safetensors_open(&st, path));
    ck_assert_uint_eq(hc_safetensors_count(st), 5);
    hc_tensor_view v = HC_TENSOR_VIEW_INIT;
    size_t i;
    ck_assert_ok(hc_safetensors_find(&i, st, "ids"));
    ck_assert_str_eq(hc_safetensors_dtype(st, i), "I64");
    ck_assert_int_eq(hc_safetensors_numel(st, i), 2);
    ck_assert_status(hc_safetensors_tensor(&v, st, i), HC_EUNSUPPORTED,
                     "tensor 'ids' has dtype I64; only F32, F16 and BF16 can be read");
    ck_assert_status(hc_safetensors_tensor(&v, st, 0), HC_EUNSUPPORTED, "tensor 'flag' has dtype BOOL");
    ck_assert_ok(hc_safetensors_find(&i, st, "five"));
    ck_assert_uint_eq(hc_safetensors_ndim(st, i), 5);
    ck_assert_status(hc_safetensors_tensor(&v, st, i), HC_EUNSUPPORTED,
                     "tensor 'five' has 5 dimensions; at most 4 are supported");
    ck_assert_ok(hc_safetensors_find(&i, st, "w"));
    ck_assert_ok(hc_safetensors_tensor(&v, st, i));
    ck_assert_uint_eq((uintptr_t)v.data % 4, 0);
    const uint8_t *b = v.data;
    ck_assert_uint_eq(b[0], 0x11);
    ck_assert_uint_eq(b[3], 0x11);
    hc_safetensors_close(st);
    remove_dir(dir);
}
END_TEST

/* ---- writer failures ---- */

START_TEST(writer_rejects_bad_input_and_leaves_nothing)
{
    char *dir = scratch_dir();
    char target[8192];
    snprintf(target, sizeof target, "%s", join(dir, "w.safetensors"));
    float x[4] = { 1, 2, 3, 4 };
    const int64_t s2[2] = { 2, 2 }, neg[1] = { -3 }, s5[1] = { 4 };
    hc_safetensors_writer *w;
    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    hc_tensor_view v = view_of("a", HC_DTYPE_F32, 2, s2, x);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "a tensor named 'a' was already added");
    v = view_of("b", HC_DTYPE_F32, 2, s2, NULL);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "tensor 'b' has NULL data");
    v = view_of("b", HC_DTYPE_F32, 1, neg, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "tensor 'b' has negative extent -3 in dimension 0");
    v = view_of("b", (hc_dtype)9, 1, s5, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "tensor 'b' has unknown dtype 9");
    v = view_of("b", HC_DTYPE_F32, 1, s5, x);
    v.ndim = 5;
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "tensor 'b' has 5 dimensions; at most 4");
    v = view_of(NULL, HC_DTYPE_F32, 1, s5, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "a tensor needs a name (the view's name is NULL)");
    v = view_of("", HC_DTYPE_F32, 1, s5, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "the view's name is empty");
    v = view_of("__metadata__", HC_DTYPE_F32, 1, s5, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "'__metadata__' cannot name a tensor (reserved");
    v = view_of("bad\xc3(", HC_DTYPE_F32, 1, s5, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "cannot name a tensor (not valid UTF-8)");
    v = view_of("b", HC_DTYPE_F32, 1, s5, x);
    v.struct_size = 4;
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "struct_size 4 is smaller than the minimum");
    v.struct_size = sizeof v + 4;
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EVERSION, "larger than this library's");
    const int64_t huge[3] = { INT64_MAX / 2, 4, 0 };
    v = view_of("h", HC_DTYPE_F32, 2, huge, x);
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "tensor 'h' is too large: its byte size overflows");
    ck_assert_status(hc_safetensors_writer_add(w, NULL), HC_EINVAL, "tensor view is NULL");
    ck_assert_status(hc_safetensors_writer_add(NULL, &v), HC_EINVAL, "writer is NULL");
    ck_assert_ok(hc_safetensors_writer_set_metadata(w, "k", "v"));
    ck_assert_status(hc_safetensors_writer_set_metadata(w, "k", "w"), HC_EINVAL, "key 'k' is already set");
    ck_assert_status(hc_safetensors_writer_set_metadata(w, "k2", NULL), HC_EINVAL, "value is NULL");
    ck_assert_status(hc_safetensors_writer_set_metadata(w, "k2", "\xff"), HC_EINVAL,
                     "the value of key 'k2' is not valid UTF-8");
    ck_assert_int_eq(dir_entries(dir), 0);
    hc_safetensors_writer_free(w);
    ck_assert_int_eq(dir_entries(dir), 0);

    /* failed adds do not disturb the file: the rejected tensors are absent, the good one intact */
    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    v = view_of("a", HC_DTYPE_F32, 2, s2, x);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    ck_assert_status(hc_safetensors_writer_add(w, &v), HC_EINVAL, "already added");
    ck_assert_ok(hc_safetensors_writer_finish(w));
    hc_safetensors_writer_free(w);
    hc_safetensors *st;
    ck_assert_ok(hc_safetensors_open(&st, target));
    ck_assert_uint_eq(hc_safetensors_count(st), 1);
    ck_assert_ok(hc_safetensors_tensor(&v, st, 0));
    ck_assert_mem_eq(v.data, x, sizeof x);
    hc_safetensors_close(st);
    remove_dir(dir);
}
END_TEST

START_TEST(writer_io_failures_leave_nothing_behind)
{
    hc_safetensors_writer *w = (hc_safetensors_writer *)&w;
    ck_assert_status(hc_safetensors_writer_new(&w, "/nonexistent/dir/out.safetensors"), HC_EIO,
                     "cannot create a temporary file beside '/nonexistent/dir/out.safetensors': No such file or "
                     "directory");
    ck_assert_ptr_null(w);
    ck_assert_status(hc_safetensors_writer_new(&w, NULL), HC_EINVAL, "path is NULL");

    char *dir = scratch_dir();
    /* a directory the process may not write to (root may write anywhere, so only checked otherwise) */
    if (geteuid() != 0) {
        char ro[8192];
        snprintf(ro, sizeof ro, "%s", join(dir, "ro"));
        ck_assert_int_eq(mkdir(ro, 0500), 0);
        char target[8300];
        snprintf(target, sizeof target, "%s/x.safetensors", ro);
        ck_assert_status(hc_safetensors_writer_new(&w, target), HC_EIO, "Permission denied");
        ck_assert_int_eq(dir_entries(ro), 0);
        ck_assert_int_eq(rmdir(ro), 0);
    }
    /* the rename fails when the target is a directory: the temporary file must go */
    char target[8192];
    snprintf(target, sizeof target, "%s", join(dir, "taken"));
    ck_assert_int_eq(mkdir(target, 0700), 0);
    float one = 1.0f;
    ck_assert_ok(hc_safetensors_writer_new(&w, target));
    hc_tensor_view v = view_of("one", HC_DTYPE_F32, 0, NULL, &one);
    ck_assert_ok(hc_safetensors_writer_add(w, &v));
    ck_assert_status(hc_safetensors_writer_finish(w), HC_EIO, "cannot rename the finished file to");
    test_expect_message("Is a directory");
    ck_assert_int_eq(dir_entries(dir), 1);
    ck_assert_int_eq(dir_entries(target), 0);
    ck_assert_status(hc_safetensors_writer_finish(w), HC_EINVAL, "already finished");
    hc_safetensors_writer_free(w);
    ck_assert_int_eq(dir_entries(dir), 1);
    remove_dir(dir);
}
END_TEST

/* ---- out of memory ---- */

static int write_small(const char *target)
{
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    const int64_t s[2] = { 2, 3 };
    hc_safetensors_writer *w;
    int rc = hc_safetensors_writer_new(&w, target);
    if (rc != HC_OK)
        return rc;
    rc = hc_safetensors_writer_set_metadata(w, "k", "v");
    hc_tensor_view v = view_of("a", HC_DTYPE_F32, 2, s, x);
    if (rc == HC_OK)
        rc = hc_safetensors_writer_add(w, &v);
    v.name = "b";
    if (rc == HC_OK)
        rc = hc_safetensors_writer_add(w, &v);
    if (rc == HC_OK)
        rc = hc_safetensors_writer_finish(w);
    hc_safetensors_writer_free(w);
    return rc;
}

START_TEST(out_of_memory_fails_cleanly)
{
    char *dir = scratch_dir();
    char target[8192];
    snprintf(target, sizeof target, "%s", join(dir, "oom.safetensors"));
    int failures = 0;
    for (long k = 1; k < 40; k++) {
        hci_alloc_fail_after(k);
        int rc = write_small(target);
        hci_alloc_fail_after(0);
        if (rc == HC_OK) {
            ck_assert_int_eq(dir_entries(dir), 1);
            ck_assert_int_eq(unlink(target), 0);
            continue;
        }
        failures++;
        ck_assert_msg(rc == HC_ENOMEM, "k=%ld: %s %s", k, hc_status_name(rc), hc_last_error());
        ck_assert_ptr_nonnull(strstr(hc_last_error(), "out of memory"));
        ck_assert_int_eq(dir_entries(dir), 0);
    }
    ck_assert_int_ge(failures, 3);
    ck_assert_ok(write_small(target));

    failures = 0;
    for (long k = 1; k < 60; k++) {
        hc_safetensors *st = (hc_safetensors *)&k;
        hci_alloc_fail_after(k);
        int rc = hc_safetensors_open(&st, target);
        hci_alloc_fail_after(0);
        if (rc == HC_OK) {
            ck_assert_uint_eq(hc_safetensors_count(st), 2);
            hc_safetensors_close(st);
            continue;
        }
        failures++;
        ck_assert_int_eq(rc, HC_ENOMEM);
        ck_assert_ptr_null(st);
    }
    ck_assert_int_ge(failures, 5);
    remove_dir(dir);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_every_dtype_and_rank);
    tcase_add_test(tc, writer_replaces_an_existing_file_only_on_success);
    tcase_add_test(tc, reads_the_ppocr_fixture);
    tcase_add_test(tc, hostile_headers_are_rejected_with_their_message);
    tcase_add_test(tc, bad_header_lengths_and_truncation);
    tcase_add_test(tc, missing_file_and_directories_are_io_errors);
    tcase_add_test(tc, unsupported_dtypes_and_ranks_are_listed_not_viewed);
    tcase_add_test(tc, writer_rejects_bad_input_and_leaves_nothing);
    tcase_add_test(tc, writer_io_failures_leave_nothing_behind);
    tcase_add_test(tc, out_of_memory_fails_cleanly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(safetensors_suite());
}
