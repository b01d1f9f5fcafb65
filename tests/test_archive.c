/* The .hcz container: round trips, borrowed tensors over the mapping, every validation path
 * on truncated, bit-flipped and hostile files, forward compatibility, and write failures that
 * must leave no partial file and the previous file intact. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_format.h"
#include "codec.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/half.h"
#include "harness.h"

/* ---- helpers ---- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/hcz-test-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
    closedir(d);
    rmdir(tmpdir);
}

static const char *tmp_file(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* Number of entries in the temporary directory (temporary files included). */
static int dir_entries(void)
{
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void write_all_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static hc_ctensor *compress_with(const char *spec, const hc_tensor_view *v)
{
    hc_compressor *c = NULL;
    ck_assert_ok(hc_compressor_from_spec(&c, spec));
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_compress(&ct, c, v));
    hc_compressor_free(c);
    return ct;
}

/* The sample model: three compressed tensors, two kept ones (f32 and f16) and metadata. */
typedef struct sample {
    float *w0, *w1, *w2, *k0;
    uint16_t k1[7];
} sample;

static void sample_make(sample *s)
{
    s->w0 = test_gauss(11, 40 * 33, 0.05);
    s->w1 = test_gauss(12, 5 * 3 * 2 * 2, 1.0);
    s->w2 = test_gauss(13, 17, 0.3);
    s->k0 = test_gauss(14, 9, 1.0);
    for (int i = 0; i < 7; i++)
        s->k1[i] = hci_f32_to_f16((float)i - 3.25f);
}

static void sample_free(sample *s)
{
    free(s->w0);
    free(s->w1);
    free(s->w2);
    free(s->k0);
}

/* Writes the sample model with the writer; returns the status of the first failing call. */
static int sample_write(const sample *s, const char *path)
{
    hc_archive_writer *w = NULL;
    int rc = hc_archive_writer_new(&w, path);
    if (rc != HC_OK)
        return rc;
    hc_tensor_view v0 = test_view2("blk.0.weight", s->w0, 40, 33);
    hc_tensor_view v1 = HC_TENSOR_VIEW_INIT;
    v1.name = "conv.weight";
    v1.ndim = 4;
    v1.shape[0] = 5, v1.shape[1] = 3, v1.shape[2] = 2, v1.shape[3] = 2;
    v1.data = s->w1;
    hc_tensor_view v2 = HC_TENSOR_VIEW_INIT;
    v2.name = "norm.bias";
    v2.ndim = 1;
    v2.shape[0] = 17;
    v2.data = s->w2;
    hc_tensor_view k0 = test_view2("kept.f32", s->k0, 3, 3);
    hc_tensor_view k1 = HC_TENSOR_VIEW_INIT;
    k1.name = "kept.f16";
    k1.dtype = HC_DTYPE_F16;
    k1.ndim = 1;
    k1.shape[0] = 7;
    k1.data = s->k1;
    hc_ctensor *c0 = compress_with("fp16", &v0), *c1 = compress_with("bf16", &v1), *c2 = compress_with("f32", &v2);
    if ((rc = hc_archive_writer_set_metadata(w, "source", "sample.safetensors")) == HC_OK &&
        (rc = hc_archive_writer_add(w, "blk.0.weight", c0)) == HC_OK &&
        (rc = hc_archive_writer_add(w, "conv.weight", c1)) == HC_OK &&
        (rc = hc_archive_writer_add_uncompressed(w, &k0)) == HC_OK &&
        (rc = hc_archive_writer_sink("norm.bias", c2, w)) == HC_OK &&
        (rc = hc_archive_writer_add_uncompressed(w, &k1)) == HC_OK &&
        (rc = hc_archive_writer_set_metadata(w, "hypercomp.codec", "fp16")) == HC_OK)
        rc = hc_archive_writer_finish(w);
    hc_ctensor_free(c0);
    hc_ctensor_free(c1);
    hc_ctensor_free(c2);
    hc_archive_writer_free(w);
    return rc;
}

/* The sample model as bytes. */
static uint8_t *sample_bytes(size_t *size)
{
    sample s;
    sample_make(&s);
    ck_assert_ok(sample_write(&s, tmp_file("sample.hcz")));
    sample_free(&s);
    return read_all(tmp_file("sample.hcz"), size);
}

/* Opens, lists and opens every tensor; returns the first failure (or HC_OK). Must never crash. */
static int open_everything(const uint8_t *buf, size_t size, uint32_t flags)
{
    hc_archive *a = NULL;
    int rc = hc_archive_open_memory(&a, buf, size, flags);
    if (rc != HC_OK)
        return rc;
    for (size_t i = 0; i < hc_archive_count(a) && rc == HC_OK; i++) {
        hc_ctensor *ct = NULL;
        rc = hc_archive_tensor(&ct, a, i);
        if (rc == HC_OK) {
            size_t n = (size_t)hc_ctensor_numel(ct);
            float *out = malloc(n * sizeof(float));
            rc = hc_ctensor_decode(ct, HC_DTYPE_F32, out, n * sizeof(float));
            free(out);
        }
        hc_ctensor_free(ct);
    }
    hc_archive_close(a);
    return rc;
}

/* Recomputes the directory and header checksums after a test edits a field, so that the check
 * under test is the one that fires. */
static void fix_crcs(uint8_t *buf, size_t size)
{
    uint64_t dir_off = hci_get_u64(buf + HCZ_H_DIR_OFFSET), dir_len = hci_get_u64(buf + HCZ_H_DIR_LENGTH);
    if (dir_off <= size && dir_len <= size - dir_off)
        hci_put_u32(buf + HCZ_H_DIR_CRC, hci_crc32c(0, buf + dir_off, (size_t)dir_len));
    uint32_t hs = hci_get_u32(buf + HCZ_H_HEADER_SIZE);
    if (hs >= 8 && hs <= size)
        hci_put_u32(buf + hs - 4, hci_crc32c(0, buf, hs - 4));
}

/* Offset of tensor entry i in the sample file (metadata entries come first). */
static size_t tensor_entry(const uint8_t *buf, size_t i)
{
    size_t o = (size_t)hci_get_u64(buf + HCZ_H_DIR_OFFSET);
    uint32_t nm = hci_get_u32(buf + HCZ_H_META_COUNT);
    for (uint32_t k = 0; k < nm; k++)
        o += hci_get_u32(buf + o);
    for (size_t k = 0; k < i; k++)
        o += hci_get_u32(buf + o);
    return o;
}

/* ---- round trip ---- */

START_TEST(round_trip_lists_decodes_and_multiplies_every_tensor)
{
    sample s;
    sample_make(&s);
    ck_assert_ok(sample_write(&s, tmp_file("m.hcz")));
    hc_archive *a = NULL;
    ck_assert_ok(hc_archive_open(&a, tmp_file("m.hcz"), 0));
    ck_assert_uint_eq(hc_archive_count(a), 5);
    ck_assert_uint_eq(hc_archive_version(a), 256u);
    ck_assert_uint_eq(hc_archive_format_version(), 256u);
    const char *names[] = { "blk.0.weight", "conv.weight", "kept.f32", "norm.bias", "kept.f16" };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(hc_archive_name(a, i), names[i]);
        size_t idx = 99;
        ck_assert_ok(hc_archive_find(&idx, a, names[i]));
        ck_assert_uint_eq(idx, i);
    }
    ck_assert_ptr_null(hc_archive_name(a, 5));
    size_t idx;
    ck_assert_status(hc_archive_find(&idx, a, "missing"), HC_ENOTFOUND, "no tensor named 'missing'");
    ck_assert_uint_eq(hc_archive_metadata_count(a), 2);
    ck_assert_str_eq(hc_archive_metadata_key(a, 0), "source");
    ck_assert_str_eq(hc_archive_metadata(a, "source"), "sample.safetensors");
    ck_assert_str_eq(hc_archive_metadata(a, "hypercomp.codec"), "fp16");
    ck_assert_ptr_null(hc_archive_metadata(a, "absent"));

    /* blk.0.weight: fp16 codec, exact per element, quality recorded, payload aligned and borrowed */
    hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
    ck_assert_ok(hc_archive_entry_get(&e, a, 0));
    ck_assert_uint_eq(e.codec_id, HC_CODEC_FP16);
    ck_assert_str_eq(e.codec_name, "fp16");
    ck_assert_uint_eq(e.ndim, 2);
    ck_assert_int_eq(e.shape[0], 40);
    ck_assert_int_eq(e.shape[1], 33);
    ck_assert_int_eq(e.numel, 40 * 33);
    ck_assert_uint_eq(e.payload_len, 2 * 40 * 33);
    ck_assert_uint_eq(e.payload_offset % 64, 0);
    ck_assert_uint_eq(e.serialized_bytes, 24 + 16 + 2 * 40 * 33 + 4);
    ck_assert(e.has_quality);
    ck_assert(e.rel_rmse > 0 && e.rel_rmse < 3e-4);
    hc_ctensor *ct = NULL;
    ck_assert_ok(hc_archive_tensor(&ct, a, 0));
    ck_assert(ct->borrowed);
    ck_assert_uint_eq(hc_ctensor_serialized_size(ct), e.serialized_bytes);
    float dec[40 * 33], x[33], y[40];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, dec, sizeof dec));
    for (int i = 0; i < 40 * 33; i++)
        ck_assert_float_eq(dec[i], hci_f16_to_f32(hci_f32_to_f16(s.w0[i])));
    hc_stats st = HC_STATS_INIT;
    ck_assert_ok(hc_ctensor_stats(&st, ct));
    ck_assert_double_eq(st.rel_rmse, e.rel_rmse);
    ck_assert_double_eq_tol(st.rel_rmse, test_rel_rmse(s.w0, dec, 40 * 33), 1e-12);
    for (int i = 0; i < 33; i++)
        x[i] = (float)(i % 5) - 2.0f;
    ck_assert_ok(hc_ctensor_matvec(ct, x, y));
    for (int r = 0; r < 40; r++) {
        double acc = 0;
        for (int c = 0; c < 33; c++)
            acc += (double)dec[r * 33 + c] * x[c];
        ck_assert_float_eq_tol(y[r], (float)acc, 1e-4f);
    }
    /* the exported HCT1 form of a container tensor is accepted by hc_ctensor_deserialize */
    size_t ser = hc_ctensor_serialized_size(ct);
    uint8_t *blob = malloc(ser);
    ck_assert_ok(hc_ctensor_serialize(ct, blob, ser));
    hc_ctensor *copy = NULL;
    ck_assert_ok(hc_ctensor_deserialize(&copy, blob, ser));
    hc_ctensor_free(copy);
    free(blob);
    hc_ctensor_free(ct);

    /* conv.weight: 4-D, bf16 */
    ck_assert_ok(hc_archive_tensor(&ct, a, 1));
    int64_t shape[HC_MAX_DIMS];
    hc_ctensor_shape(ct, shape);
    ck_assert_int_eq(shape[3], 2);
    ck_assert_int_eq(hc_ctensor_rows(ct), 5);
    ck_assert_int_eq(hc_ctensor_cols(ct), 12);
    float d1[60];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d1, sizeof d1));
    for (int i = 0; i < 60; i++)
        ck_assert_float_eq(d1[i], hci_bf16_to_f32(hci_f32_to_bf16(s.w1[i])));
    hc_ctensor_free(ct);

    /* kept tensors come back bit for bit, in their own dtype, with zero error recorded */
    ck_assert_ok(hc_archive_entry_get(&e, a, 2));
    ck_assert_uint_eq(e.codec_id, HC_CODEC_F32);
    ck_assert_double_eq(e.rel_rmse, 0.0);
    ck_assert_ok(hc_archive_tensor(&ct, a, 2));
    float d2[9];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F32, d2, sizeof d2));
    ck_assert_mem_eq(d2, s.k0, sizeof d2);
    hc_ctensor_free(ct);
    ck_assert_ok(hc_archive_entry_get(&e, a, 4));
    ck_assert_uint_eq(e.codec_id, HC_CODEC_FP16);
    ck_assert_uint_eq(e.orig_dtype, HC_DTYPE_F16);
    ck_assert_ok(hc_archive_tensor(&ct, a, 4));
    uint16_t d4[7];
    ck_assert_ok(hc_ctensor_decode(ct, HC_DTYPE_F16, d4, sizeof d4));
    ck_assert_mem_eq(d4, s.k1, sizeof d4);
    hc_ctensor_free(ct);

    /* the file is exactly what the header says, and every block is 64-aligned */
    struct stat sb;
    ck_assert_int_eq(stat(tmp_file("m.hcz"), &sb), 0);
    ck_assert_uint_eq(hc_archive_file_size(a), (uint64_t)sb.st_size);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_ok(hc_archive_entry_get(&e, a, i));
        ck_assert_uint_eq(e.payload_offset % 64, 0);
    }
    ck_assert_status(hc_archive_tensor(&ct, a, 5), HC_EINVAL, "index 5 is out of range");
    ck_assert_ptr_null(ct);
    hc_archive_close(a);
    ck_assert_int_eq(dir_entries(), 1);   /* no temporary file left behind */
    sample_free(&s);
}
END_TEST

/* Opening and decoding one tensor touches no byte of the others: their pages are made
 * inaccessible, so any read of them would crash the test. */
START_TEST(one_tensor_is_read_without_touching_the_others)
{
    enum { ROWS = 64, COLS = 256 };   /* 32 KiB of fp16 per tensor: several whole pages */
    float *w = test_gauss(21, ROWS * COLS, 0.1);
    hc_tensor_view v = test_view2("t", w, ROWS, COLS);
    hc_ctensor *ct = compress_with("fp16", &v);
    hc_archive_writer *wr = NULL;
    ck_assert_ok(hc_archive_writer_new(&wr, tmp_file("pages.hcz")));
    const char *names[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++)
        ck_assert_ok(hc_archive_writer_add(wr, names[i], ct));
    ck_assert_ok(hc_archive_writer_finish(wr));
    hc_archive_writer_free(wr);
    size_t size;
    uint8_t *bytes = read_all(tmp_file("pages.hcz"), &size);
    long page = sysconf(_SC_PAGESIZE);
    size_t mapped = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
    uint8_t *mem = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    memcpy(mem, bytes, size);
    hc_archive *a = NULL;
    ck_assert_ok(hc_archive_open_memory(&a, mem, size, 0));
    for (int keep = 0; keep < 3; keep++) {
        /* fence off every whole page of the other two payloads */
        for (int other = 0; other < 3; other++) {
            if (other == keep)
                continue;
            hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
            ck_assert_ok(hc_archive_entry_get(&e, a, (size_t)other));
            size_t lo = (e.payload_offset + (size_t)page - 1) / (size_t)page * (size_t)page;
            size_t hi = (e.payload_offset + e.payload_len) / (size_t)page * (size_t)page;
            ck_assert_uint_gt(hi, lo);
            ck_assert_int_eq(mprotect(mem + lo, hi - lo, PROT_NONE), 0);
        }
        hc_ctensor *t = NULL;
        ck_assert_ok(hc_archive_tensor(&t, a, (size_t)keep));
        float dec[ROWS * COLS], x[COLS], y[ROWS];
        ck_assert_ok(hc_ctensor_decode(t, HC_DTYPE_F32, dec, sizeof dec));
        for (int i = 0; i < COLS; i++)
            x[i] = 1.0f;
        ck_assert_ok(hc_ctensor_matvec(t, x, y));
        ck_assert_float_eq(dec[ROWS * COLS - 1], hci_f16_to_f32(hci_f32_to_f16(w[ROWS * COLS - 1])));
        hc_ctensor_free(t);
        ck_assert_int_eq(mprotect(mem, mapped, PROT_READ | PROT_WRITE), 0);
    }
    hc_archive_close(a);
    munmap(mem, mapped);
    free(bytes);
    hc_ctensor_free(ct);
    free(w);
}
END_TEST

START_TEST(entry_struct_size_is_honoured)
{
    size_t size;
    uint8_t *buf = sample_bytes(&size);
    hc_archive *a = NULL;
    ck_assert_ok(hc_archive_open_memory(&a, buf, size, 0));
    hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
    e.struct_size = sizeof e + 8;
    ck_assert_status(hc_archive_entry_get(&e, a, 0), HC_EVERSION, "larger than this library's");
    e.struct_size = 4;
    ck_assert_status(hc_archive_entry_get(&e, a, 0), HC_EINVAL, "too small");
    /* an older caller's struct stops before the offsets: nothing beyond it is written */
    struct { hc_archive_entry e; uint64_t guard; } small;
    memset(&small, 0xab, sizeof small);
    small.e.struct_size = (uint32_t)offsetof(hc_archive_entry, params_offset);
    ck_assert_ok(hc_archive_entry_get(&small.e, a, 0));
    ck_assert_str_eq(small.e.name, "blk.0.weight");
    ck_assert_uint_eq(small.e.params_offset, 0xababababababababull);
    hc_archive_close(a);
    free(buf);
}
END_TEST

/* ---- hostile input ---- */

START_TEST(every_truncation_and_extension_is_refused)
{
    size_t size;
    uint8_t *buf = sample_bytes(&size);
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1);   /* exact-size copies, so ASan sees any overread */
        memcpy(copy, buf, n);
        hc_archive *a = NULL;
        int rc = hc_archive_open_memory(&a, copy, n, 0);
        ck_assert_msg(rc == HC_EFORMAT, "truncation to %zu bytes gave %s", n, hc_status_name(rc));
        ck_assert_ptr_null(a);
        free(copy);
    }
    /* and through the file reader, which names the file and says it is truncated */
    write_all_file(tmp_file("cut.hcz"), buf, size - 100);
    hc_archive *a = NULL;
    ck_assert_status(hc_archive_open(&a, tmp_file("cut.hcz"), 0), HC_EFORMAT, "cut.hcz' is");
    test_expect_message("truncated");
    /* an oversized file (bytes appended after the directory) is refused as well */
    uint8_t *big = calloc(1, size + 4096);
    memcpy(big, buf, size);
    ck_assert_status(hc_archive_open_memory(&a, big, size + 4096, 0), HC_EFORMAT, "trailing bytes");
    write_all_file(tmp_file("big.hcz"), big, size + 1);
    ck_assert_status(hc_archive_open(&a, tmp_file("big.hcz"), 0), HC_EFORMAT, "big.hcz' is");
    free(big);
    write_all_file(tmp_file("cut.hcz"), buf, 10);
    ck_assert_status(hc_archive_open(&a, tmp_file("cut.hcz"), 0), HC_EFORMAT, "is 10 bytes long");
    write_all_file(tmp_file("cut.hcz"), buf, 0);
    ck_assert_status(hc_archive_open(&a, tmp_file("cut.hcz"), 0), HC_EFORMAT, "is 0 bytes long");
    free(buf);
}
END_TEST

START_TEST(every_bit_flip_is_caught)
{
    size_t size;
    uint8_t *buf = sample_bytes(&size);
    ck_assert_ok(open_everything(buf, size, 0));
    size_t caught_at_open = 0, caught_at_tensor = 0;
    for (size_t bit = 0; bit < 8 * size; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        hc_archive *a = NULL;
        int rc = hc_archive_open_memory(&a, buf, size, 0);
        if (rc == HC_OK) {
            hc_archive_close(a);
            rc = open_everything(buf, size, 0);
            ck_assert_msg(rc == HC_EFORMAT, "bit %zu: opening every tensor gave %s", bit, hc_status_name(rc));
            caught_at_tensor++;
        } else {
            ck_assert_msg(rc == HC_EFORMAT || rc == HC_EVERSION, "bit %zu gave %s", bit, hc_status_name(rc));
            caught_at_open++;
        }
        /* without checksums a flip may go unnoticed, but must never crash */
        (void)open_everything(buf, size, HC_ARCHIVE_NO_VERIFY);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* every bit is protected: header, directory, tensor checksums, and zero padding */
    ck_assert_uint_eq(caught_at_open + caught_at_tensor, 8 * size);
    free(buf);
}
END_TEST

START_TEST(hostile_directories_are_refused_with_a_reason)
{
    size_t size;
    uint8_t *orig = sample_bytes(&size);
    uint8_t *buf = malloc(size);
    hc_archive *a = NULL;
    size_t e0, e1;
#define RESET() (memcpy(buf, orig, size), e0 = tensor_entry(buf, 0), e1 = tensor_entry(buf, 1))
#define EXPECT(code, needle)                                                                        \
    do {                                                                                            \
        fix_crcs(buf, size);                                                                              \
        ck_assert_status(hc_archive_open_memory(&a, buf, size, 0), code, needle);                   \
        ck_assert_ptr_null(a);                                                                      \
    } while (0)

    RESET();
    hci_put_u32(buf + HCZ_H_TENSOR_COUNT, 0xffffffffu);
    EXPECT(HC_EFORMAT, "cannot hold them");
    RESET();
    hci_put_u32(buf + HCZ_H_META_COUNT, 0x40000000u);
    EXPECT(HC_EFORMAT, "cannot hold them");
    RESET();
    hci_put_u16(buf + HCZ_H_MAJOR, 2);
    EXPECT(HC_EVERSION, "version 2.0");
    RESET();
    hci_put_u16(buf + HCZ_H_MAJOR, 0);
    EXPECT(HC_EFORMAT, "version 0.0");
    RESET();
    hci_put_u32(buf + HCZ_H_REQUIRED_FLAGS, 4);
    EXPECT(HC_EVERSION, "required flags 00000004");
    RESET();
    hci_put_u32(buf + HCZ_H_HEADER_SIZE, 0xfffffff8u);
    EXPECT(HC_EFORMAT, "declares a header of 4294967288 bytes");
    RESET();
    hci_put_u64(buf + HCZ_H_FILE_SIZE, (uint64_t)size + 64);
    EXPECT(HC_EFORMAT, "truncated");
    RESET();
    hci_put_u64(buf + HCZ_H_DIR_OFFSET, 0xffffffffffffffc0ull);
    EXPECT(HC_EFORMAT, "does not end the file");
    RESET();
    hci_put_u64(buf + HCZ_H_DIR_LENGTH, 0xffffffffffffffffull);
    EXPECT(HC_EFORMAT, "does not end the file");
    RESET();   /* a payload reaching past the data area into the directory */
    hci_put_u64(buf + e0 + HCZ_T_PAYLOAD_LEN, hci_get_u64(buf + e0 + HCZ_T_PAYLOAD_LEN) + 4096);
    EXPECT(HC_EFORMAT, "payload [");
    RESET();   /* an offset that would wrap around */
    hci_put_u64(buf + e0 + HCZ_T_PAYLOAD_OFFSET, 0xffffffffffffffc0ull);
    EXPECT(HC_EFORMAT, "outside the data area");
    RESET();
    hci_put_u64(buf + e0 + HCZ_T_PAYLOAD_OFFSET, hci_get_u64(buf + e0 + HCZ_T_PAYLOAD_OFFSET) + 1);
    EXPECT(HC_EFORMAT, "64-byte boundary");
    RESET();   /* two tensors sharing bytes */
    hci_put_u64(buf + e1 + HCZ_T_PAYLOAD_OFFSET, hci_get_u64(buf + e0 + HCZ_T_PAYLOAD_OFFSET));
    EXPECT(HC_EFORMAT, "overlap");
    RESET();
    hci_put_u32(buf + e0 + HCZ_T_PARAMS_LEN, 0x7fffffffu);
    EXPECT(HC_EFORMAT, "parameter bytes");
    RESET();
    hci_put_u64(buf + e0 + HCZ_T_FIXED, 0x4000000000000000ull);   /* numel overflows */
    EXPECT(HC_EFORMAT, "invalid extent 4611686018427387904 in dimension 0");
    RESET();
    hci_put_u64(buf + e0 + HCZ_T_FIXED + 8, 0);
    EXPECT(HC_EFORMAT, "invalid extent 0 in dimension 1");
    RESET();
    buf[e0 + HCZ_T_NDIM] = 9;
    EXPECT(HC_EFORMAT, "9 dimensions");
    RESET();
    buf[e0 + HCZ_T_DTYPE] = 7;
    EXPECT(HC_EFORMAT, "unknown original dtype 7");
    RESET();
    hci_put_u16(buf + e0 + HCZ_T_FLAGS, 0x0100);
    EXPECT(HC_EVERSION, "entry flags 0100");
    RESET();
    hci_put_u32(buf + e0, 0xfffffff0u);   /* entry length past the directory */
    EXPECT(HC_EFORMAT, "invalid lengths");
    RESET();
    hci_put_u16(buf + e0 + HCZ_T_NAME_LEN, 0);
    EXPECT(HC_EFORMAT, "invalid lengths");
    RESET();   /* "conv.weight" renamed to "blk.0.weight"'s length-12 twin: same name twice */
    {
        size_t n0 = e0 + HCZ_T_FIXED + 8u * buf[e0 + HCZ_T_NDIM], n1 = e1 + HCZ_T_FIXED + 8u * buf[e1 + HCZ_T_NDIM];
        memcpy(buf + n1, buf + n0, 11);   /* "blk.0.weigh" over "conv.weight" */
        hci_put_u16(buf + e1 + HCZ_T_NAME_LEN, 11);
        hci_put_u16(buf + e0 + HCZ_T_NAME_LEN, 11);
        /* entry lengths stay as they were: the extra byte of entry 0 is skipped as a future field */
    }
    EXPECT(HC_EFORMAT, "two tensors named 'blk.0.weigh'");
    RESET();
    buf[e0 + HCZ_T_FIXED + 16 + 3] = '\0';
    EXPECT(HC_EFORMAT, "not valid UTF-8");
    RESET();   /* an overlong encoding of '/' in a name */
    buf[e0 + HCZ_T_FIXED + 16 + 3] = 0xc0;
    buf[e0 + HCZ_T_FIXED + 16 + 4] = 0xaf;
    EXPECT(HC_EFORMAT, "not valid UTF-8");
    RESET();   /* a metadata key longer than its entry */
    hci_put_u32(buf + hci_get_u64(buf + HCZ_H_DIR_OFFSET) + 4, 1000);
    EXPECT(HC_EFORMAT, "metadata entry 0 has invalid lengths");
    RESET();   /* a codec this library does not know: listed, refused only when opened */
    hci_put_u16(buf + e0 + HCZ_T_CODEC, 999);
    fix_crcs(buf, size);
    ck_assert_ok(hc_archive_open_memory(&a, buf, size, HC_ARCHIVE_NO_VERIFY));
    hc_archive_entry e = HC_ARCHIVE_ENTRY_INIT;
    ck_assert_ok(hc_archive_entry_get(&e, a, 0));
    ck_assert_str_eq(e.codec_name, "unknown");
    hc_ctensor *ct = NULL;
    ck_assert_status(hc_archive_tensor(&ct, a, 0), HC_EUNSUPPORTED, "codec id 999");
    ck_assert_ok(hc_archive_tensor(&ct, a, 1));
    hc_ctensor_free(ct);
    hc_archive_close(a);
    RESET();   /* a payload that its codec rejects (fp16 with the wrong length), checksum fixed */
    hci_put_u64(buf + e0 + HCZ_T_PAYLOAD_LEN, hci_get_u64(buf + e0 + HCZ_T_PAYLOAD_LEN) - 2);
    fix_crcs(buf, size);
    ck_assert_ok(hc_archive_open_memory(&a, buf, size, HC_ARCHIVE_NO_VERIFY));
    ck_assert_status(hc_archive_tensor(&ct, a, 0), HC_EFORMAT, "tensor 'blk.0.weight': fp16 tensor of 1320 values");
    hc_archive_close(a);
    ck_assert_ok(hc_archive_open_memory(&a, buf, size, 0));
    ck_assert_status(hc_archive_tensor(&ct, a, 0), HC_EFORMAT, "checksum mismatch");
    hc_archive_close(a);
#undef RESET
#undef EXPECT
    free(buf);
    free(orig);
}
END_TEST

/* A newer minor version may grow the header and entries; this reader must still read it. */
START_TEST(newer_minor_version_with_longer_entries_is_read)
{
    size_t size;
    uint8_t *old = sample_bytes(&size);
    /* rebuild the file: a 128-byte header, every entry 16 bytes longer, a trailing section */
    uint64_t dir_off = hci_get_u64(old + HCZ_H_DIR_OFFSET);
    uint32_t nm = hci_get_u32(old + HCZ_H_META_COUNT), nt = hci_get_u32(old + HCZ_H_TENSOR_COUNT);
    size_t cap = size + 64 + 16 * (nm + nt) + 64 + 64;
    uint8_t *buf = calloc(1, cap);
    memcpy(buf, old, HCZ_HEADER_SIZE - 4);
    memcpy(buf + 128, old + 64, (size_t)dir_off - 64);   /* data moves by 64: offsets shift */
    size_t o = (size_t)dir_off + 64, src = (size_t)dir_off;
    for (uint32_t i = 0; i < nm + nt; i++) {
        uint32_t len = hci_get_u32(old + src);
        memcpy(buf + o, old + src, len);
        hci_put_u32(buf + o, len + 16);
        memset(buf + o + len, 0x5a, 16);   /* a field this reader does not know */
        if (i >= nm) {
            hci_put_u64(buf + o + HCZ_T_PARAMS_OFFSET, hci_get_u64(old + src + HCZ_T_PARAMS_OFFSET) + 64);
            hci_put_u64(buf + o + HCZ_T_PAYLOAD_OFFSET, hci_get_u64(old + src + HCZ_T_PAYLOAD_OFFSET) + 64);
        }
        o += len + 16;
        src += len;
    }
    memset(buf + o, 0x77, 40);   /* a new section after the last entry */
    o += 40;
    hci_put_u16(buf + HCZ_H_MINOR, 7);
    hci_put_u32(buf + HCZ_H_HEADER_SIZE, 128);
    hci_put_u32(buf + HCZ_H_OPTIONAL_FLAGS, 0xffffffffu);
    hci_put_u64(buf + HCZ_H_FILE_SIZE, o);
    hci_put_u64(buf + HCZ_H_DIR_OFFSET, dir_off + 64);
    hci_put_u64(buf + HCZ_H_DIR_LENGTH, o - dir_off - 64);
    fix_crcs(buf, o);
    hc_archive *a = NULL;
    ck_assert_ok(hc_archive_open_memory(&a, buf, o, 0));
    ck_assert_uint_eq(hc_archive_version(a), 256u + 7);
    ck_assert_uint_eq(hc_archive_count(a), 5);
    ck_assert_str_eq(hc_archive_metadata(a, "hypercomp.codec"), "fp16");
    hc_archive_close(a);
    ck_assert_ok(open_everything(buf, o, 0));
    free(buf);
    free(old);
}
END_TEST

/* ---- writer ---- */

START_TEST(writer_rejects_bad_names_keys_and_late_calls)
{
    float w[4] = { 1, 2, 3, 4 };
    hc_tensor_view v = test_view2("t", w, 2, 2);
    hc_ctensor *ct = compress_with("f32", &v);
    hc_archive_writer *wr = NULL;
    ck_assert_status(hc_archive_writer_new(NULL, "x"), HC_EINVAL, "out is NULL");
    ck_assert_status(hc_archive_writer_new(&wr, ""), HC_EINVAL, "path is empty");
    ck_assert_status(hc_archive_writer_new(&wr, "/nonexistent-dir/x.hcz"), HC_EIO, "'/nonexistent-dir/");
    ck_assert_ptr_null(wr);
    ck_assert_ok(hc_archive_writer_new(&wr, tmp_file("w.hcz")));
    ck_assert_int_eq(dir_entries(), 1);   /* only the temporary file exists */
    ck_assert_ok(hc_archive_writer_add(wr, "t", ct));
    ck_assert_status(hc_archive_writer_add(wr, "t", ct), HC_EINVAL, "already holds a tensor named 't'");
    ck_assert_status(hc_archive_writer_add_uncompressed(wr, &v), HC_EINVAL, "named 't'");
    ck_assert_status(hc_archive_writer_add(wr, "", ct), HC_EINVAL, "names have 1 to 4096 bytes");
    ck_assert_status(hc_archive_writer_add(wr, NULL, ct), HC_EINVAL, "name is NULL");
    ck_assert_status(hc_archive_writer_add(wr, "u", NULL), HC_EINVAL, "'u' is NULL");
    v.name = NULL;
    ck_assert_status(hc_archive_writer_add_uncompressed(wr, &v), HC_EINVAL, "name is NULL");
    ck_assert_ok(hc_archive_writer_set_metadata(wr, "k", "v"));
    ck_assert_status(hc_archive_writer_set_metadata(wr, "k", "w"), HC_EINVAL, "'k' is already set");
    ck_assert_status(hc_archive_writer_set_metadata(wr, "", "w"), HC_EINVAL, "keys have 1 to 65535 bytes");
    ck_assert_status(hc_archive_writer_set_metadata(wr, "bad", "\xff"), HC_EINVAL, "value of key 'bad' is not valid UTF-8");
    ck_assert_status(hc_archive_writer_add(wr, "caf\xc3", ct), HC_EINVAL, "is not valid UTF-8");
    ck_assert_ok(hc_archive_writer_add(wr, "caf\xc3\xa9.\xe2\x82\xac.\xf0\x9f\x98\x80", ct));   /* é, €, an emoji */
    ck_assert_ok(hc_archive_writer_finish(wr));
    ck_assert_status(hc_archive_writer_add(wr, "z", ct), HC_EINVAL, "already finished");
    ck_assert_status(hc_archive_writer_finish(wr), HC_EINVAL, "already finished");
    hc_archive_writer_free(wr);
    ck_assert_int_eq(dir_entries(), 1);
    /* a writer freed without finish leaves nothing */
    ck_assert_ok(hc_archive_writer_new(&wr, tmp_file("abandoned.hcz")));
    ck_assert_ok(hc_archive_writer_add(wr, "t", ct));
    hc_archive_writer_free(wr);
    ck_assert_int_eq(dir_entries(), 1);
    /* an empty container is valid */
    ck_assert_ok(hc_archive_writer_new(&wr, tmp_file("empty.hcz")));
    ck_assert_ok(hc_archive_writer_finish(wr));
    hc_archive_writer_free(wr);
    hc_archive *a = NULL;
    ck_assert_ok(hc_archive_open(&a, tmp_file("empty.hcz"), 0));
    ck_assert_uint_eq(hc_archive_count(a), 0);
    hc_archive_close(a);
    hc_ctensor_free(ct);
}
END_TEST

START_TEST(failed_write_at_any_step_leaves_previous_file_intact)
{
    sample s;
    sample_make(&s);
    /* a previous, different file under the target name */
    const char *target = tmp_file("model.hcz");
    write_all_file(target, "previous contents", 17);
    int steps = 0;
    for (long n = 1; n < 1000; n++) {
        hci_archive_fail_write_after(n);
        int rc = sample_write(&s, target);
        hci_archive_fail_write_after(0);
        if (rc == HC_OK) {
            steps = (int)n - 1;
            break;
        }
        ck_assert_msg(rc == HC_EIO, "step %ld gave %s", n, hc_status_name(rc));
        test_expect_message("model.hcz");
        size_t size;
        uint8_t *now = read_all(target, &size);
        ck_assert_uint_eq(size, 17);
        ck_assert_mem_eq(now, "previous contents", 17);
        free(now);
        ck_assert_int_eq(dir_entries(), 1);   /* the temporary file was removed */
    }
    /* header placeholder, 5 tensors with padding, directory, header, flush, rename */
    ck_assert_int_ge(steps, 10);
    size_t size;
    uint8_t *now = read_all(target, &size);
    ck_assert_ok(open_everything(now, size, 0));
    free(now);
    /* a failed rename (the target is a directory) also leaves nothing behind */
    unlink(target);
    ck_assert_int_eq(mkdir(target, 0700), 0);
    ck_assert_status(sample_write(&s, target), HC_EIO, "cannot rename the finished file onto");
    ck_assert_int_eq(dir_entries(), 1);
    rmdir(target);
    sample_free(&s);
}
END_TEST

START_TEST(out_of_memory_anywhere_leaks_nothing)
{
    sample s;
    sample_make(&s);
    /* reader */
    size_t size;
    uint8_t *buf = sample_bytes(&size);
    int ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
        hc_archive *a = NULL;
        hci_alloc_fail_after(n);
        int rc = hc_archive_open_memory(&a, buf, size, 0);
        hci_alloc_fail_after(0);
        if (rc == HC_OK) {
            ok = 1;
            hc_archive_close(a);
        } else {
            ck_assert_int_eq(rc, HC_ENOMEM);
        }
    }
    ck_assert(ok);
    free(buf);
    /* writer: every allocation failure is HC_ENOMEM and leaves no file at all */
    hc_tensor_view v = test_view2("w0", s.w0, 40, 33);
    hc_ctensor *ct = compress_with("fp16", &v);
    ok = 0;
    int before = dir_entries();
    for (long n = 1; n < 500 && !ok; n++) {
        hc_archive_writer *w = NULL;
        hci_alloc_fail_after(n);
        int rc = hc_archive_writer_new(&w, tmp_file("oom.hcz"));
        if (rc == HC_OK)
            rc = hc_archive_writer_set_metadata(w, "k", "v");
        if (rc == HC_OK)
            rc = hc_archive_writer_add(w, "a", ct);
        if (rc == HC_OK)
            rc = hc_archive_writer_add_uncompressed(w, &v);
        if (rc == HC_OK)
            rc = hc_archive_writer_finish(w);
        hci_alloc_fail_after(0);
        hc_archive_writer_free(w);
        if (rc == HC_OK) {
            ok = 1;
            ck_assert_int_eq(dir_entries(), before + 1);
        } else {
            ck_assert_int_eq(rc, HC_ENOMEM);
            ck_assert_int_eq(dir_entries(), before);
        }
    }
    ck_assert(ok);
    hc_ctensor_free(ct);
    sample_free(&s);
}
END_TEST

START_TEST(utf8_check_accepts_exactly_well_formed_text)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        { "plain.ascii_0", 1 },    { "\xc3\xa9", 1 },          { "\xe2\x82\xac", 1 },
        { "\xf4\x8f\xbf\xbf", 1 }, /* U+10FFFF */             { "\xed\x9f\xbf", 1 },  /* U+D7FF */
        { "\xc0\xaf", 0 },         /* overlong '/' */         { "\xe0\x80\xaf", 0 },  /* overlong */
        { "\xed\xa0\x80", 0 },     /* surrogate U+D800 */     { "\xf4\x90\x80\x80", 0 }, /* > U+10FFFF */
        { "\xc3", 0 },             /* truncated */            { "\x80", 0 },           /* stray continuation */
        { "\xf8\x88\x80\x80\x80", 0 },                        { "\xe2\x28\xa1", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(hci_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)) == cases[i].ok, "case %zu", i);
    ck_assert(!hci_utf8_valid((const uint8_t *)"a\0b", 3));   /* NUL inside */
    ck_assert(hci_utf8_valid((const uint8_t *)"", 0));
}
END_TEST

START_TEST(open_errors_name_the_file)
{
    hc_archive *a = NULL;
    ck_assert_status(hc_archive_open(&a, tmp_file("nope.hcz"), 0), HC_EIO, "nope.hcz': No such file");
    ck_assert_status(hc_archive_open(&a, tmpdir, 0), HC_EIO, "it is a directory");
    write_all_file(tmp_file("text.hcz"), "hello, this is not a container at all; it is text........"
                                         "..................", 75);
    ck_assert_status(hc_archive_open(&a, tmp_file("text.hcz"), 0), HC_EFORMAT, "is not a hypercomp container");
    ck_assert_status(hc_archive_open(NULL, "x", 0), HC_EINVAL, "out is NULL");
    ck_assert_status(hc_archive_open_memory(&a, NULL, 5, 0), HC_EINVAL, "data is NULL");
    ck_assert_status(hc_archive_open_memory(&a, NULL, 0, 0), HC_EFORMAT, "is 0 bytes long");
    ck_assert_ptr_null(a);
    hc_archive_close(NULL);
    hc_archive_writer_free(NULL);
    ck_assert_uint_eq(hc_archive_count(NULL), 0);
}
END_TEST

static Suite *archive_suite(void)
{
    Suite *s = suite_create("archive");
    TCase *tc = tcase_create("archive");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_lists_decodes_and_multiplies_every_tensor);
    tcase_add_test(tc, one_tensor_is_read_without_touching_the_others);
    tcase_add_test(tc, entry_struct_size_is_honoured);
    tcase_add_test(tc, every_truncation_and_extension_is_refused);
    tcase_add_test(tc, every_bit_flip_is_caught);
    tcase_add_test(tc, hostile_directories_are_refused_with_a_reason);
    tcase_add_test(tc, newer_minor_version_with_longer_entries_is_read);
    tcase_add_test(tc, writer_rejects_bad_names_keys_and_late_calls);
    tcase_add_test(tc, failed_write_at_any_step_leaves_previous_file_intact);
    tcase_add_test(tc, out_of_memory_anywhere_leaks_nothing);
    tcase_add_test(tc, utf8_check_accepts_exactly_well_formed_text);
    tcase_add_test(tc, open_errors_name_the_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(archive_suite());
}
