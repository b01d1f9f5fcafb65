/* Status codes, messages, versions, half conversions, bit packing, CRC-32C, spec parsing,
 * the parallel loop and allocation failure. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bitpack.h"
#include "common/crc32c.h"
#include "common/error.h"
#include "common/half.h"
#include "common/parallel.h"
#include "common/spec.h"
#include "harness.h"

START_TEST(status_names_are_stable)
{
    ck_assert_int_eq(HC_EINVAL, -1);
    ck_assert_int_eq(HC_ENOTFOUND, -9);
    ck_assert_str_eq(hc_status_name(HC_OK), "HC_OK");
    ck_assert_str_eq(hc_status_name(HC_EFORMAT), "HC_EFORMAT");
    ck_assert_str_eq(hc_status_name(HC_EQUALITY), "HC_EQUALITY");
    ck_assert_str_eq(hc_status_name(-100), "HC_UNKNOWN");
}
END_TEST

START_TEST(version_matches_headers)
{
    ck_assert_uint_eq(hc_version(), HC_VERSION_NUMBER);
    ck_assert_str_eq(hc_version_string(), HC_VERSION_STRING);
}
END_TEST

START_TEST(last_error_is_never_null_and_formats_values)
{
    ck_assert_ptr_nonnull(hc_last_error());
    ck_assert_int_eq(hci_fail(HC_EINVAL, "value %d is bad", 42), HC_EINVAL);
    ck_assert_str_eq(hc_last_error(), "value 42 is bad");
    ck_assert_int_eq(hci_oom(123), HC_ENOMEM);
    ck_assert_str_eq(hc_last_error(), "out of memory allocating 123 bytes");
}
END_TEST

START_TEST(f16_known_values)
{
    ck_assert_uint_eq(hci_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(hci_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(hci_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(hci_f32_to_f16(65520.0f), 0x7c00);          /* rounds to infinity */
    ck_assert_uint_eq(hci_f32_to_f16(5.9604644775390625e-8f), 0x0001); /* smallest subnormal */
    ck_assert_uint_eq(hci_f32_to_f16(2.98023223876953125e-8f), 0x0000); /* half of it: ties to even (0) */
    ck_assert_uint_eq(hci_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);   /* tie, even stays */
    ck_assert_uint_eq(hci_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, odd rounds up */
    ck_assert_float_eq(hci_f16_to_f32(0x3555), 0.333251953125f);
    ck_assert(isnan(hci_f16_to_f32(hci_f32_to_f16(NAN))));
    ck_assert(isinf(hci_f16_to_f32(0xfc00)) && hci_f16_to_f32(0xfc00) < 0);
}
END_TEST

START_TEST(f16_round_trip_is_exact_for_all_halves)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN payloads need not survive */
        ck_assert_uint_eq(hci_f32_to_f16(hci_f16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

START_TEST(bf16_rounds_to_nearest_even)
{
    ck_assert_uint_eq(hci_f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is a tie between 0x3f80 and 0x3f81: even wins */
    ck_assert_uint_eq(hci_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    ck_assert_uint_eq(hci_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    ck_assert_uint_eq(hci_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    ck_assert(isnan(hci_bf16_to_f32(hci_f32_to_bf16(NAN))));
}
END_TEST

START_TEST(bitpack_round_trips_every_width)
{
    uint32_t vals[100], back[100];
    uint8_t buf[100 * 4 + 8];
    test_rng r = { 7 };
    for (unsigned bits = 1; bits <= 32; bits++) {
        uint64_t mask = bits == 32 ? 0xffffffffull : (1ull << bits) - 1;
        for (int i = 0; i < 100; i++)
            vals[i] = (uint32_t)(test_rng_next(&r) & mask);
        ck_assert_uint_eq(hci_packed_bytes(100, bits), (100 * bits + 7) / 8);
        hci_pack_bits(buf, vals, 100, bits);
        hci_unpack_bits(back, buf, 0, 100, bits);
        for (int i = 0; i < 100; i++)
            ck_assert_uint_eq(back[i], vals[i]);
        hci_unpack_bits(back, buf, 37, 5, bits);
        for (int i = 0; i < 5; i++)
            ck_assert_uint_eq(back[i], vals[37 + i]);
    }
}
END_TEST

START_TEST(bitpack_layout_is_lsb_first)
{
    uint32_t vals[3] = { 0x5, 0x3, 0x7 }; /* 3-bit: 101, 011, 111 -> bits 0..8 */
    uint8_t buf[2];
    hci_pack_bits(buf, vals, 3, 3);
    ck_assert_uint_eq(buf[0], 0xdd); /* 11 011 101 */
    ck_assert_uint_eq(buf[1], 0x01);
}
END_TEST

START_TEST(crc32c_check_value)
{
    ck_assert_uint_eq(hci_crc32c(0, "123456789", 9), 0xe3069283u);
    /* incremental equals one shot, and the portable path agrees with the hardware one */
    uint32_t a = hci_crc32c(hci_crc32c(0, "1234", 4), "56789", 5);
    ck_assert_uint_eq(a, 0xe3069283u);
    setenv("HYPERCOMP_ISA", "portable", 1);
    ck_assert_uint_eq(hci_crc32c(0, "123456789", 9), 0xe3069283u);
    unsetenv("HYPERCOMP_ISA");
}
END_TEST

START_TEST(spec_parses_presets_and_keys)
{
    hci_spec s;
    ck_assert_ok(hci_spec_parse(&s, "seedlm:4bit,K=12:threads=2"));
    ck_assert_str_eq(s.codec, "seedlm");
    ck_assert_uint_eq(s.n, 3);
    ck_assert_int_eq(hci_spec_flag(&s, "4bit"), 1);
    uint32_t k = 0;
    ck_assert_int_eq(hci_spec_u32(&s, "K", 8, 32, &k), 1);
    ck_assert_uint_eq(k, 12);
    ck_assert_status(hci_spec_finish(&s, "4bit, K"), HC_EINVAL, "unknown key 'threads'");
    float f = 0;
    ck_assert_ok(hci_spec_parse(&s, "int8:clip=99.5"));
    ck_assert_int_eq(hci_spec_float(&s, "clip", 0, 100, &f), 1);
    ck_assert_float_eq(f, 99.5f);
}
END_TEST

START_TEST(spec_errors_name_the_bad_part)
{
    hci_spec s;
    ck_assert_status(hci_spec_parse(&s, ""), HC_EINVAL, "codec name");
    ck_assert_status(hci_spec_parse(&s, "nf4:"), HC_EINVAL, "empty item");
    ck_assert_status(hci_spec_parse(&s, "nf4:a,,b"), HC_EINVAL, "empty item");
    ck_assert_status(hci_spec_parse(&s, "nf4:x=1,x=2"), HC_EINVAL, "names 'x' twice");
    ck_assert_status(hci_spec_parse(&s, "nf4:x="), HC_EINVAL, "value '' of key 'x'");
    ck_assert_status(hci_spec_parse(&s, "nf 4"), HC_EINVAL, "'nf 4'");
    ck_assert_ok(hci_spec_parse(&s, "int8:clip=abc"));
    float f;
    ck_assert_status(hci_spec_float(&s, "clip", 0, 100, &f), HC_EINVAL, "clip=abc");
    uint32_t u;
    ck_assert_ok(hci_spec_parse(&s, "x:K=99"));
    ck_assert_status(hci_spec_u32(&s, "K", 8, 32, &u), HC_EINVAL, "K=99 is not a whole number from 8 to 32");
    ck_assert_ok(hci_spec_parse(&s, "x:K=-1"));
    ck_assert_status(hci_spec_u32(&s, "K", 0, 32, &u), HC_EINVAL, "K=-1");
}
END_TEST

static int sum_range(void *ctx, int64_t b, int64_t e)
{
    int64_t *out = ctx;
    for (int64_t i = b; i < e; i++)
        out[i] = i * i;
    return HC_OK;
}

static int fail_in_range(void *ctx, int64_t b, int64_t e)
{
    (void)ctx;
    if (b <= 500 && 500 < e)
        return hci_fail(HC_EFORMAT, "worker saw item %d", 500);
    return HC_OK;
}

START_TEST(parallel_for_covers_every_item_and_carries_errors)
{
    int64_t out[1000];
    for (uint32_t t = 1; t <= 5; t++) {
        memset(out, 0xff, sizeof out);
        ck_assert_ok(hci_parallel_for(t, 1000, 7, sum_range, out));
        for (int i = 0; i < 1000; i++)
            ck_assert_int_eq(out[i], (int64_t)i * i);
        ck_assert_status(hci_parallel_for(t, 1000, 7, fail_in_range, NULL), HC_EFORMAT, "worker saw item 500");
    }
    ck_assert_ok(hci_parallel_for(2, 0, 1, fail_in_range, NULL));
}
END_TEST

/* Writes i * i at out[b + i] for i in [0, e - b) through a nested parallel loop, so loops run
 * inside pool workers as well as on the calling thread. */
static int nested_range(void *ctx, int64_t b, int64_t e)
{
    int64_t *out = ctx;
    return hci_parallel_for(2, e - b, 3, sum_range, out + b);
}

static int squares_ok(const int64_t *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (out[i] != i * i)
            return 0;
    return 1;
}

typedef struct loop_caller {
    uint32_t threads;
    int calls, ok;
} loop_caller;

/* An application thread running many loops, each checked. */
static void *call_loops(void *arg)
{
    loop_caller *c = arg;
    int64_t out[600];
    c->ok = 1;
    for (int k = 0; k < c->calls && c->ok; k++) {
        memset(out, 0xff, sizeof out);
        int64_t n = 100 + 50 * (k % 11);
        c->ok = hci_parallel_for(c->threads, n, 5, sum_range, out) == HC_OK && squares_ok(out, n);
    }
    return NULL;
}

START_TEST(parallel_for_reuses_its_threads_across_calls_callers_nesting_and_fork)
{
    /* back to back calls with changing thread and range counts */
    loop_caller one = { 0, 3000, 0 };
    for (uint32_t t = 1; t <= 6; t++) {
        one.threads = t;
        call_loops(&one);
        ck_assert_msg(one.ok, "%u threads: a call left items unset or failed", t);
    }
    /* loops nested in the ranges of a loop: the inner loops cannot have the pool */
    int64_t out[1000];
    memset(out, 0xff, sizeof out);
    ck_assert_ok(hci_parallel_for(3, 1000, 10, nested_range, out));
    for (int i = 0; i < 1000; i++) {
        int64_t b = i / 334 * 334, j = i - b; /* nested_range's items count from its range's start */
        ck_assert_int_eq(out[i], j * j);
    }
    /* several application threads at once: one owns the pool, the others start threads */
    pthread_t th[4];
    loop_caller c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (loop_caller){ (uint32_t)(2 + i % 3), 300, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, call_loops, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(c[i].ok, "caller %d: a call left items unset or failed", i);
    }
    /* a child of fork() has no workers: it starts its own */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        loop_caller ch = { 3, 200, 0 };
        call_loops(&ch);
        _exit(ch.ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked child's loops failed (status %d)",
                  status);
    one.threads = 2;
    call_loops(&one);
    ck_assert(one.ok);
}
END_TEST

START_TEST(allocation_failures_and_overflow_are_reported)
{
    hci_alloc_fail_after(1);
    ck_assert_ptr_null(hci_malloc(16));
    ck_assert_str_eq(hc_last_error(), "out of memory allocating 16 bytes");
    void *p = hci_malloc(16);
    ck_assert_ptr_nonnull(p);
    hci_free(p);
    ck_assert_ptr_null(hci_malloc_array(SIZE_MAX / 2, 4));
    ck_assert_ptr_null(hci_aligned_array(SIZE_MAX / 8, 16));
    size_t r;
    ck_assert_int_eq(hci_mul_size(SIZE_MAX, 2, &r), 0);
    ck_assert_int_eq(hci_add_size(SIZE_MAX, 1, &r), 0);
}
END_TEST

static Suite *common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("core");
    /* the parallel-loop test runs some 20,000 loops: about a second here, more on a busy host */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, status_names_are_stable);
    tcase_add_test(tc, version_matches_headers);
    tcase_add_test(tc, last_error_is_never_null_and_formats_values);
    tcase_add_test(tc, f16_known_values);
    tcase_add_test(tc, f16_round_trip_is_exact_for_all_halves);
    tcase_add_test(tc, bf16_rounds_to_nearest_even);
    tcase_add_test(tc, bitpack_round_trips_every_width);
    tcase_add_test(tc, bitpack_layout_is_lsb_first);
    tcase_add_test(tc, crc32c_check_value);
    tcase_add_test(tc, spec_parses_presets_and_keys);
    tcase_add_test(tc, spec_errors_name_the_bad_part);
    tcase_add_test(tc, parallel_for_covers_every_item_and_carries_errors);
    tcase_add_test(tc, parallel_for_reuses_its_threads_across_calls_callers_nesting_and_fork);
    tcase_add_test(tc, allocation_failures_and_overflow_are_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run(common_suite());
}
