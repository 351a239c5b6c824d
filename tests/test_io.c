/* test_io.c - GGUF and safetensors readers (core/gguf.c, core/safetensors.c).
 *
 * 1. half/bfloat conversions: all 65536 halves against an ldexp formula,
 *    round-to-nearest-even on the way down (exhaustive round trip + ties).
 * 2. a tiny GGUF writer builds files with every KV type and a tensor of each
 *    type; values read back and dequantized values checked against numbers
 *    worked out by hand (tolerance 0: all are exact in f32).
 * 3. bad GGUF input: named faults with the expected message; every
 *    truncation; byte flips over the whole header (each is rejected with a
 *    message or reads validly; run under ASan to prove no bad reads).
 * 4. safetensors: write -> read bit-exact round trip with metadata, atomic
 *    writes, hand-made files (F16/BF16/I32, scalars), named faults, every
 *    truncation, header byte flips.
 * 5. the real SmolLM2 GGUF against gguf-py's dequantization stored in
 *    tests/fixtures/io_smollm2_ref.json (tolerance 0, max diff printed).
 */
#define _GNU_SOURCE
#include "io/gguf.h"
#include "harness.h"
#include "qr.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static int contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ================================================================ halves */

/* Independent reference: value = (-1)^s * m * 2^-24 (subnormal) or
 * (1024 + m) * 2^(e - 25). */
static float ref_half(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static void test_halves(void) {
    int bad = 0, bad_rt = 0;
    for (int h = 0; h < 65536; h++) {
        float r = ref_half((uint16_t)h), v = qr_fp16_to_f32((uint16_t)h);
        int is_nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (is_nan ? !isnan(v) : f2u(r) != f2u(v)) bad++;
        if (!is_nan && qr_f32_to_fp16(v) != h) bad_rt++;
    }
    test_cond("fp16->f32 equals the ldexp formula for all 65536 halves", bad == 0);
    test_cond("f32->fp16 round-trips every non-NaN half", bad_rt == 0);
    /* midpoints between neighbouring positive halves round to the even one */
    int bad_tie = 0, bad_near = 0;
    for (int h = 0; h < 0x7bff; h++) {
        double a = ref_half((uint16_t)h), b = ref_half((uint16_t)(h + 1));
        float mid = (float)((a + b) / 2); /* exact in f32: halves have 11-bit mantissas */
        uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (qr_f32_to_fp16(mid) != want || qr_f32_to_fp16(-mid) != (want | 0x8000)) bad_tie++;
        float above = nextafterf(mid, INFINITY), below = nextafterf(mid, 0);
        if (qr_f32_to_fp16(above) != h + 1 || qr_f32_to_fp16(below) != h) bad_near++;
    }
    test_cond("f32->fp16 ties go to even", bad_tie == 0);
    test_cond("f32->fp16 just above/below a midpoint goes to the nearer half", bad_near == 0);
    test_cond("f32->fp16 overflow: 65519 -> 65504, 65520 -> inf",
              qr_f32_to_fp16(65519.f) == 0x7bff && qr_f32_to_fp16(65520.f) == 0x7c00 &&
                  qr_f32_to_fp16(-1e30f) == 0xfc00 && qr_f32_to_fp16(INFINITY) == 0x7c00);
    test_cond("f32->fp16 underflow: 2^-25 -> 0 (tie to even), just above -> 2^-24",
              qr_f32_to_fp16(ldexpf(1, -25)) == 0 && qr_f32_to_fp16(nextafterf(ldexpf(1, -25), 1)) == 1 &&
                  qr_f32_to_fp16(1e-30f) == 0 && qr_f32_to_fp16(-1e-30f) == 0x8000);
    test_cond("f32->fp16 NaN stays NaN", (qr_f32_to_fp16(NAN) & 0x7c00) == 0x7c00 && (qr_f32_to_fp16(NAN) & 0x3ff));
#if defined(__FLT16_MAX__) && defined(__x86_64__) && !defined(__clang__)
    /* cross-check with the compiler's own conversion on a spread of floats */
    int bad_hw = 0;
    uint32_t x = 12345;
    for (int i = 0; i < 2000000; i++) {
        x = x * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &x, 4);
        if (isnan(f)) continue;
        _Float16 hf = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &hf, 2);
        if (hb != qr_f32_to_fp16(f)) bad_hw++;
    }
    test_cond("f32->fp16 equals the compiler's _Float16 conversion on 2M random floats", bad_hw == 0);
#endif
    test_cond("bf16->f32 is the high half of the bits",
              qr_bf16_to_f32(0x3f80) == 1.0f && qr_bf16_to_f32(0xc040) == -3.0f && qr_bf16_to_f32(0x3fc0) == 1.5f &&
                  f2u(qr_bf16_to_f32(0x8000)) == 0x80000000u);
}

/* ============================================================ GGUF writer */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wb;

static void wb_put(wb *b, const void *s, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void wb_u8(wb *b, uint8_t v) { wb_put(b, &v, 1); }
static void wb_u16(wb *b, uint16_t v) { wb_put(b, &v, 2); }
static void wb_u32(wb *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_u64(wb *b, uint64_t v) { wb_put(b, &v, 8); }
static void wb_strn(wb *b, const char *s, size_t n) { wb_u64(b, n); wb_put(b, s, n); }
static void wb_str(wb *b, const char *s) { wb_strn(b, s, strlen(s)); }
static void wb_key(wb *b, const char *k, uint32_t type) { wb_str(b, k); wb_u32(b, type); }
static void wb_pad(wb *b, size_t align) { while (b->n % align) wb_u8(b, 0); }

/* Faults the builder can inject; each has the message it must produce. */
enum {
    F_NONE, F_MAGIC, F_VERSION1, F_VERSION_BE, F_NKV_HUGE, F_NT_HUGE, F_KEY_LEN, F_KV_TYPE, F_ARR_TYPE,
    F_ARR_COUNT, F_DUP_KEY, F_ALIGN_NPOT, F_ALIGN_TYPE, F_NDIMS, F_DIM0, F_TTYPE, F_BLOCK, F_DIM_OVF,
    F_OFFSET_RANGE, F_OFFSET_ALIGN, F_DUP_TENSOR, F_EMPTY_KEY, F_NUL_NAME, F_DEEP_ARRAY, N_FAULTS
};
static const char *const fault_msg[N_FAULTS] = {
    [F_MAGIC] = "expected magic \"GGUF\"",
    [F_VERSION1] = "version 1 is not supported",
    [F_VERSION_BE] = "big-endian",
    [F_NKV_HUGE] = "key/value count 1152921504606846976 is impossible",
    [F_NT_HUGE] = "tensor count 4294967296 is impossible",
    [F_KEY_LEN] = "key of key/value #2",
    [F_KV_TYPE] = "key 't.i8': unknown value type 13",
    [F_ARR_TYPE] = "key 't.arr_i32': unknown array element type 99",
    [F_ARR_COUNT] = "key 't.arr_i32': array of 1000000000000 i32 elements",
    [F_DUP_KEY] = "key 't.u8' appears more than once",
    [F_ALIGN_NPOT] = "'general.alignment' is 48: expected a power of two",
    [F_ALIGN_TYPE] = "key 'general.alignment': expected type u32, found u64",
    [F_NDIMS] = "tensor 'f32': n_dims is 5, expected at most 4",
    [F_DIM0] = "tensor 'f32': dims[1] is 0",
    [F_TTYPE] = "tensor 'q4_1': unsupported tensor type 6",
    [F_BLOCK] = "tensor 'q8_0': row length dims[0]=16 is not a multiple of the Q8_0 block size 32",
    [F_DIM_OVF] = "tensor 'f32': element count overflows",
    [F_OFFSET_RANGE] = "tensor 'q8_0': data [",
    [F_OFFSET_ALIGN] = "tensor 'f16': data offset 34 is not a multiple of the alignment 32",
    [F_DUP_TENSOR] = "tensor 'bf16' appears more than once",
    [F_EMPTY_KEY] = "has an empty key",
    [F_NUL_NAME] = "name contains a NUL byte",
    [F_DEEP_ARRAY] = "nested deeper than",
};

/* Test tensor payloads (ggml order, dims[0] fastest). */
static const float t_f32[8] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-3f, 65504.f, -7.0f};
static const uint16_t t_f16[8] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x3555, 0x8000, 0x0400, 0x3e00};
static const float t_f16_want[8] = {1.0f, -2.0f, 5.9604644775390625e-08f, 65504.f, 0.333251953125f, -0.0f,
                                    6.103515625e-05f, 1.5f};
static const uint16_t t_bf16[4] = {0x3f80, 0xc040, 0x3fc0, 0x0000};
static const float t_bf16_want[4] = {1.0f, -3.0f, 1.5f, 0.0f};

static void block_q4_0(wb *b, int which) {
    if (which == 0) { /* d = 0.5; qs[j] = j | (15-j)<<4 */
        wb_u16(b, 0x3800);
        for (int j = 0; j < 16; j++) wb_u8(b, (uint8_t)(j | (15 - j) << 4));
    } else { /* d = -0.25; qs = 0x8f: lo 15, hi 8 */
        wb_u16(b, 0xb400);
        for (int j = 0; j < 16; j++) wb_u8(b, 0x8f);
    }
}
static void block_q4_1(wb *b, int which) {
    if (which == 0) { /* d = 0.25, m = -1 */
        wb_u16(b, 0x3400);
        wb_u16(b, 0xbc00);
        for (int j = 0; j < 16; j++) wb_u8(b, (uint8_t)(j | (15 - j) << 4));
    } else { /* d = 1.5, m = 0.5; qs[j] = 0x21 */
        wb_u16(b, 0x3e00);
        wb_u16(b, 0x3800);
        for (int j = 0; j < 16; j++) wb_u8(b, 0x21);
    }
}
static void block_q8_0(wb *b) { /* d = 0.125; q[j] = 8j - 128 */
    wb_u16(b, 0x3000);
    for (int j = 0; j < 32; j++) wb_u8(b, (uint8_t)(int8_t)(8 * j - 128));
}

#define N_TENSORS 7

/* Build a GGUF file: every KV type, one tensor of each type. */
static void build_gguf(wb *b, int fault, uint32_t align) {
    b->n = 0;
    wb_put(b, fault == F_MAGIC ? "GGUG" : "GGUF", 4);
    wb_u32(b, fault == F_VERSION1 ? 1 : fault == F_VERSION_BE ? 0x03000000 : 3);
    wb_u64(b, fault == F_NT_HUGE ? (1ull << 32) : N_TENSORS);
    int n_kv = 21 + (fault == F_DUP_KEY) + (fault == F_DEEP_ARRAY);
    wb_u64(b, fault == F_NKV_HUGE ? (1ull << 60) : (uint64_t)n_kv);
    wb_key(b, "t.u8", QR_GGUF_TYPE_U8); wb_u8(b, 200);
    wb_key(b, "t.i8", fault == F_KV_TYPE ? 13 : QR_GGUF_TYPE_I8); wb_u8(b, (uint8_t)-100);
    if (fault == F_KEY_LEN) wb_u64(b, 1ull << 40); /* a key length running off the end */
    if (fault == F_EMPTY_KEY) wb_key(b, "", QR_GGUF_TYPE_U16);
    else wb_key(b, "t.u16", QR_GGUF_TYPE_U16);
    wb_u16(b, 60000);
    wb_key(b, "t.i16", QR_GGUF_TYPE_I16); wb_u16(b, (uint16_t)-30000);
    wb_key(b, "t.u32", QR_GGUF_TYPE_U32); wb_u32(b, 4000000000u);
    wb_key(b, "t.i32", QR_GGUF_TYPE_I32); wb_u32(b, (uint32_t)-2000000000);
    wb_key(b, "t.f32", QR_GGUF_TYPE_F32); { float f = 1.5f; wb_put(b, &f, 4); }
    wb_key(b, "t.bool", QR_GGUF_TYPE_BOOL); wb_u8(b, 1);
    wb_key(b, "t.str", QR_GGUF_TYPE_STRING); wb_str(b, "hello");
    wb_key(b, "t.u64", QR_GGUF_TYPE_U64); wb_u64(b, 1ull << 40);
    wb_key(b, "t.u64big", QR_GGUF_TYPE_U64); wb_u64(b, (1ull << 63) + 5);
    wb_key(b, "t.i64", QR_GGUF_TYPE_I64); wb_u64(b, (uint64_t)-(1ll << 40));
    wb_key(b, "t.f64", QR_GGUF_TYPE_F64); { double d = 0.1; wb_put(b, &d, 8); }
    wb_key(b, "t.arr_i32", QR_GGUF_TYPE_ARRAY);
    wb_u32(b, fault == F_ARR_TYPE ? 99 : QR_GGUF_TYPE_I32);
    wb_u64(b, fault == F_ARR_COUNT ? 1000000000000ull : 3);
    wb_u32(b, 1); wb_u32(b, (uint32_t)-2); wb_u32(b, 3);
    wb_key(b, "t.arr_str", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_STRING); wb_u64(b, 3);
    wb_str(b, "a"); wb_str(b, "bc"); wb_strn(b, "d\0e", 3);
    wb_key(b, "t.arr_u8", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_U8); wb_u64(b, 2); wb_u8(b, 0); wb_u8(b, 255);
    wb_key(b, "t.arr_u32big", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_U32); wb_u64(b, 1); wb_u32(b, 4000000000u);
    wb_key(b, "t.arr_f32", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_F32); wb_u64(b, 2);
    { float f[2] = {0.5f, -2.0f}; wb_put(b, f, 8); }
    /* an array of 2 arrays of i16: legal, validated, not readable via the flat getters */
    wb_key(b, "t.arr_arr", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_ARRAY); wb_u64(b, 2);
    wb_u32(b, QR_GGUF_TYPE_I16); wb_u64(b, 1); wb_u16(b, 7);
    wb_u32(b, QR_GGUF_TYPE_I16); wb_u64(b, 2); wb_u16(b, 8); wb_u16(b, 9);
    wb_key(b, "t.arr_empty", QR_GGUF_TYPE_ARRAY); wb_u32(b, QR_GGUF_TYPE_STRING); wb_u64(b, 0);
    if (fault == F_ALIGN_TYPE) { wb_key(b, "general.alignment", QR_GGUF_TYPE_U64); wb_u64(b, align); }
    else { wb_key(b, "general.alignment", QR_GGUF_TYPE_U32); wb_u32(b, fault == F_ALIGN_NPOT ? 48 : align); }
    if (fault == F_DUP_KEY) { wb_key(b, "t.u8", QR_GGUF_TYPE_U8); wb_u8(b, 1); }
    if (fault == F_DEEP_ARRAY) {
        wb_key(b, "t.deep", QR_GGUF_TYPE_ARRAY);
        for (int i = 0; i < 9; i++) { wb_u32(b, QR_GGUF_TYPE_ARRAY); wb_u64(b, 1); }
        wb_u32(b, QR_GGUF_TYPE_U8); wb_u64(b, 0);
    }

    /* tensor infos: sizes in bytes, data laid out in order, each aligned */
    struct { const char *name; int nd; uint64_t dims[4]; uint32_t type; size_t nbytes; } ti[N_TENSORS] = {
        {"f32", 2, {4, 2}, QR_GGML_F32, 32},
        {"f16", 1, {8}, QR_GGML_F16, 16},
        {"bf16", 1, {4}, QR_GGML_BF16, 8},
        {"q4_0", 2, {32, 2}, QR_GGML_Q4_0, 36},
        {"q4_1", 1, {64}, QR_GGML_Q4_1, 40},
        {"q8_0", 3, {32, 1, 1}, QR_GGML_Q8_0, 34},
        {"f32_4d", 4, {1, 2, 1, 2}, QR_GGML_F32, 16},
    };
    if (fault == F_DUP_TENSOR) ti[6].name = "bf16";
    uint64_t off = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        if (fault == F_NUL_NAME && i == 2) wb_strn(b, "bf\0x", 4);
        else wb_str(b, ti[i].name);
        int nd = ti[i].nd;
        wb_u32(b, fault == F_NDIMS && i == 0 ? 5 : (uint32_t)nd);
        for (int d = 0; d < nd; d++) {
            uint64_t v = ti[i].dims[d];
            if (i == 0 && d == 1 && fault == F_DIM0) v = 0;
            if (i == 0 && d == 1 && fault == F_DIM_OVF) v = 1ull << 62;
            if (i == 5 && d == 0 && fault == F_BLOCK) v = 16;
            wb_u64(b, v);
        }
        if (fault == F_NDIMS && i == 0) wb_u64(b, 1);
        wb_u32(b, fault == F_TTYPE && i == 4 ? 6 : ti[i].type);
        uint64_t o = off;
        if (fault == F_OFFSET_ALIGN && i == 1) o += 2;
        if (fault == F_OFFSET_RANGE && i == 5) o += 1024;
        wb_u64(b, o);
        off += (ti[i].nbytes + align - 1) / align * align;
    }
    wb_pad(b, align);
    /* data */
    wb_put(b, t_f32, 32); wb_pad(b, align);
    wb_put(b, t_f16, 16); wb_pad(b, align);
    wb_put(b, t_bf16, 8); wb_pad(b, align);
    block_q4_0(b, 0); block_q4_0(b, 1); wb_pad(b, align);
    block_q4_1(b, 0); block_q4_1(b, 1); wb_pad(b, align);
    block_q8_0(b); wb_pad(b, align);
    { float f[4] = {1, 2, 3, 4}; wb_put(b, f, 16); } /* last tensor ends exactly at EOF */
}

/* Call every accessor; for the fuzz-like loops: must not crash. */
static void exercise_gguf(qr_gguf *g) {
    for (int i = 0; i < qr_gguf_n_kv(g); i++) {
        const char *k = qr_gguf_key_at(g, i);
        int64_t iv;
        double dv;
        int et;
        uint64_t n;
        (void)qr_gguf_key_type(g, i);
        (void)qr_gguf_get_int(g, k, &iv);
        (void)qr_gguf_get_float(g, k, &dv);
        (void)qr_gguf_get_str(g, k);
        if (qr_gguf_get_arr_info(g, k, &et, &n) == QR_OK) {
            size_t *lens = NULL;
            char **s = qr_gguf_get_str_array_lens(g, k, &n, &lens);
            qr_gguf_free_str_array(s, n);
            free(lens);
            free(qr_gguf_get_i32_array(g, k, &n));
            free(qr_gguf_get_f32_array(g, k, &n));
        }
    }
    for (int i = 0; i < qr_gguf_n_tensors(g); i++) {
        const qr_gguf_tensor *t = qr_gguf_tensor_at(g, i);
        if (qr_gguf_find_tensor(g, t->name) != t) abort(); /* names are unique */
        float *dst = malloc(sizeof(float) * (size_t)t->n_elems);
        if (dst) {
            (void)qr_gguf_read_f32(g, t, dst, t->n_elems);
            free(dst);
        }
    }
}

static int close_to_exact(const float *got, const float *want, int n, float *maxdiff) {
    int ok = 1;
    *maxdiff = 0;
    for (int i = 0; i < n; i++) {
        if (f2u(got[i]) != f2u(want[i])) ok = 0;
        float d = fabsf(got[i] - want[i]);
        if (d > *maxdiff || isnan(d)) *maxdiff = isnan(d) ? INFINITY : d;
    }
    return ok;
}

static void check_gguf_contents(qr_gguf *g, const char *label) {
    char d[256];
    int64_t iv = 0;
    double dv = 0;
    snprintf(d, sizeof d, "%s: version 3, 21 kv, %d tensors", label, N_TENSORS);
    test_cond(d, qr_gguf_version(g) == 3 && qr_gguf_n_kv(g) == 21 && qr_gguf_n_tensors(g) == N_TENSORS);
    test_cond("key order kept", strcmp(qr_gguf_key_at(g, 0), "t.u8") == 0 && strcmp(qr_gguf_key_at(g, 20), "general.alignment") == 0 &&
                                    qr_gguf_key_at(g, 21) == NULL && qr_gguf_key_at(g, -1) == NULL);
    test_cond("find_key / key_type", qr_gguf_find_key(g, "t.str") == 8 && qr_gguf_key_type(g, 8) == QR_GGUF_TYPE_STRING &&
                                         qr_gguf_find_key(g, "nope") == -1 && qr_gguf_key_type(g, 99) == -1);
    test_cond("u8", qr_gguf_get_int(g, "t.u8", &iv) == QR_OK && iv == 200);
    test_cond("i8", qr_gguf_get_int(g, "t.i8", &iv) == QR_OK && iv == -100);
    test_cond("u16", qr_gguf_get_int(g, "t.u16", &iv) == QR_OK && iv == 60000);
    test_cond("i16", qr_gguf_get_int(g, "t.i16", &iv) == QR_OK && iv == -30000);
    test_cond("u32", qr_gguf_get_int(g, "t.u32", &iv) == QR_OK && iv == 4000000000ll);
    test_cond("i32", qr_gguf_get_int(g, "t.i32", &iv) == QR_OK && iv == -2000000000ll);
    test_cond("bool", qr_gguf_get_int(g, "t.bool", &iv) == QR_OK && iv == 1);
    test_cond("u64", qr_gguf_get_int(g, "t.u64", &iv) == QR_OK && iv == (1ll << 40));
    test_cond("i64", qr_gguf_get_int(g, "t.i64", &iv) == QR_OK && iv == -(1ll << 40));
    test_cond("u64 beyond int64 is an error", qr_gguf_get_int(g, "t.u64big", &iv) == QR_ERR &&
                                                  contains(qr_err_msg(), "t.u64big") && contains(qr_err_msg(), "int64"));
    test_cond("u64 beyond int64 as float", qr_gguf_get_float(g, "t.u64big", &dv) == QR_OK && dv == 9223372036854775813.0);
    test_cond("f32", qr_gguf_get_float(g, "t.f32", &dv) == QR_OK && dv == 1.5);
    test_cond("f64", qr_gguf_get_float(g, "t.f64", &dv) == QR_OK && dv == 0.1);
    test_cond("int as float", qr_gguf_get_float(g, "t.i16", &dv) == QR_OK && dv == -30000.0);
    test_cond("string", qr_gguf_get_str(g, "t.str") && strcmp(qr_gguf_get_str(g, "t.str"), "hello") == 0);
    test_cond("get_int on a string: message names path, key, expected and found",
              qr_gguf_get_int(g, "t.str", &iv) == QR_ERR && contains(qr_err_msg(), label) &&
                  contains(qr_err_msg(), "'t.str'") && contains(qr_err_msg(), "expected an integer") &&
                  contains(qr_err_msg(), "found string"));
    test_cond("get_float on an array", qr_gguf_get_float(g, "t.arr_i32", &dv) == QR_ERR && contains(qr_err_msg(), "found array"));
    test_cond("get_str on a u32", qr_gguf_get_str(g, "t.u32") == NULL && contains(qr_err_msg(), "expected a string, found u32"));
    test_cond("missing key", qr_gguf_get_int(g, "no.such", &iv) == QR_ERR && contains(qr_err_msg(), "'no.such' not found") &&
                                 contains(qr_err_msg(), label));
    int et = -1;
    uint64_t n = 0;
    test_cond("arr info", qr_gguf_get_arr_info(g, "t.arr_str", &et, &n) == QR_OK && et == QR_GGUF_TYPE_STRING && n == 3);
    test_cond("arr info on a scalar", qr_gguf_get_arr_info(g, "t.u8", &et, &n) == QR_ERR && contains(qr_err_msg(), "expected an array"));
    size_t *lens = NULL;
    char **s = qr_gguf_get_str_array_lens(g, "t.arr_str", &n, &lens);
    test_cond("string array with an embedded NUL", s && n == 3 && strcmp(s[0], "a") == 0 && strcmp(s[1], "bc") == 0 &&
                                                       lens[2] == 3 && memcmp(s[2], "d\0e", 4) == 0 && lens[0] == 1);
    qr_gguf_free_str_array(s, n);
    free(lens);
    s = qr_gguf_get_str_array(g, "t.arr_empty", &n);
    test_cond("empty string array", s && n == 0);
    qr_gguf_free_str_array(s, n);
    test_cond("string array of ints is an error", qr_gguf_get_str_array(g, "t.arr_i32", &n) == NULL &&
                                                      contains(qr_err_msg(), "found an array of i32"));
    int32_t *ia = qr_gguf_get_i32_array(g, "t.arr_i32", &n);
    test_cond("i32 array", ia && n == 3 && ia[0] == 1 && ia[1] == -2 && ia[2] == 3);
    free(ia);
    ia = qr_gguf_get_i32_array(g, "t.arr_u8", &n);
    test_cond("i32 array from u8", ia && n == 2 && ia[0] == 0 && ia[1] == 255);
    free(ia);
    test_cond("u32 beyond int32 is an error", qr_gguf_get_i32_array(g, "t.arr_u32big", &n) == NULL &&
                                                  contains(qr_err_msg(), "does not fit in int32"));
    test_cond("nested array is not a flat int array", qr_gguf_get_i32_array(g, "t.arr_arr", &n) == NULL &&
                                                          qr_gguf_get_arr_info(g, "t.arr_arr", &et, &n) == QR_OK &&
                                                          et == QR_GGUF_TYPE_ARRAY && n == 2);
    float *fa = qr_gguf_get_f32_array(g, "t.arr_f32", &n);
    test_cond("f32 array", fa && n == 2 && fa[0] == 0.5f && fa[1] == -2.0f);
    free(fa);

    /* tensors */
    const qr_gguf_tensor *t = qr_gguf_find_tensor(g, "q4_0");
    test_cond("find q4_0: dims, type, size", t && t->n_dims == 2 && t->dims[0] == 32 && t->dims[1] == 2 &&
                                                 t->dims[2] == 1 && t->type == QR_GGML_Q4_0 && t->nbytes == 36 &&
                                                 t->n_elems == 64);
    test_cond("tensor data aligned to general.alignment within the file",
              qr_gguf_data_offset(g) % qr_gguf_alignment(g) == 0);
    test_cond("find absent tensor", qr_gguf_find_tensor(g, "nope") == NULL && contains(qr_err_msg(), "'nope' not found"));
    float out[64], want[64], md;
    t = qr_gguf_find_tensor(g, "f32");
    test_cond("F32 read", t && qr_gguf_read_f32(g, t, out, 8) == QR_OK && close_to_exact(out, t_f32, 8, &md));
    test_cond("read_f32 with the wrong count names file and tensor",
              qr_gguf_read_f32(g, t, out, 9) == QR_ERR && contains(qr_err_msg(), label) &&
                  contains(qr_err_msg(), "'f32'") && contains(qr_err_msg(), "expected 9 elements, file has 8"));
    t = qr_gguf_find_tensor(g, "f16");
    test_cond("F16 read (1, -2, 2^-24, 65504, 0.333251953125, -0, 2^-14, 1.5)",
              t && qr_gguf_read_f32(g, t, out, 8) == QR_OK && close_to_exact(out, t_f16_want, 8, &md));
    t = qr_gguf_find_tensor(g, "bf16");
    test_cond("BF16 read (1, -3, 1.5, 0)", t && qr_gguf_read_f32(g, t, out, 4) == QR_OK && close_to_exact(out, t_bf16_want, 4, &md));
    /* Q4_0 block 0: d = 0.5, lo nibble j, hi nibble 15-j: y[j] = (j-8)/2, y[j+16] = (7-j)/2;
     * block 1: d = -0.25, lo 15 -> 7*-0.25 = -1.75, hi 8 -> 0 */
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j - 8) * 0.5f;
        want[j + 16] = (float)(7 - j) * 0.5f;
        want[32 + j] = -1.75f;
        want[48 + j] = -0.0f; /* 0 * -0.25 is -0 */
    }
    t = qr_gguf_find_tensor(g, "q4_0");
    test_cond("Q4_0 read", t && qr_gguf_read_f32(g, t, out, 64) == QR_OK && close_to_exact(out, want, 64, &md));
    test_cond("Q4_0 hand values: y0 = -4, y15 = 3.5, y16 = 3.5, y31 = -4, y32 = -1.75",
              out[0] == -4.0f && out[15] == 3.5f && out[16] == 3.5f && out[31] == -4.0f && out[32] == -1.75f);
    /* Q4_1 block 0: d = 0.25, m = -1: y[j] = j/4 - 1, y[j+16] = (15-j)/4 - 1;
     * block 1: d = 1.5, m = 0.5, qs 0x21: lo 1 -> 2.0, hi 2 -> 3.5 */
    for (int j = 0; j < 16; j++) {
        want[j] = (float)j * 0.25f - 1.0f;
        want[j + 16] = (float)(15 - j) * 0.25f - 1.0f;
        want[32 + j] = 2.0f;
        want[48 + j] = 3.5f;
    }
    t = qr_gguf_find_tensor(g, "q4_1");
    test_cond("Q4_1 read", t && qr_gguf_read_f32(g, t, out, 64) == QR_OK && close_to_exact(out, want, 64, &md));
    test_cond("Q4_1 hand values: y0 = -1, y5 = 0.25, y15 = 2.75, y16 = 2.75, y31 = -1, y32 = 2, y63 = 3.5",
              out[0] == -1.0f && out[5] == 0.25f && out[15] == 2.75f && out[16] == 2.75f && out[31] == -1.0f &&
                  out[32] == 2.0f && out[63] == 3.5f);
    /* Q8_0: d = 0.125, q = 8j - 128: y = j - 16 */
    for (int j = 0; j < 32; j++) want[j] = (float)(j - 16);
    t = qr_gguf_find_tensor(g, "q8_0");
    test_cond("Q8_0 read (y[j] = j - 16)", t && t->n_dims == 3 && qr_gguf_read_f32(g, t, out, 32) == QR_OK &&
                                              close_to_exact(out, want, 32, &md) && out[0] == -16.0f && out[31] == 15.0f);
    t = qr_gguf_find_tensor(g, "f32_4d");
    test_cond("4-d F32 read", t && t->n_dims == 4 && t->n_elems == 4 && qr_gguf_read_f32(g, t, out, 4) == QR_OK &&
                                  out[0] == 1 && out[3] == 4);
}

static void test_gguf_good(void) {
    wb b = {0};
    build_gguf(&b, F_NONE, 32);
    qr_gguf *g = qr_gguf_open_mem(b.p, b.n, "mem.gguf");
    test_cond("valid GGUF opens from memory", g != NULL);
    if (!g) fprintf(stderr, "  %s\n", qr_err_msg());
    if (g) check_gguf_contents(g, "mem.gguf");
    qr_gguf_close(g);

    char path[128];
    tmp_path(path, sizeof path, "good.gguf");
    write_bytes(path, b.p, b.n);
    g = qr_gguf_open(path);
    test_cond("valid GGUF opens from a file", g != NULL && strcmp(qr_gguf_path(g), path) == 0);
    if (g) check_gguf_contents(g, path);
    qr_gguf_close(g);

    /* another alignment; 1 is a legal power of two */
    uint32_t aligns[] = {1, 8, 64, 4096};
    for (int i = 0; i < 4; i++) {
        build_gguf(&b, F_NONE, aligns[i]);
        g = qr_gguf_open_mem(b.p, b.n, "align.gguf");
        char d[64];
        snprintf(d, sizeof d, "alignment %u opens and reads", aligns[i]);
        float out[64];
        test_cond(d, g && qr_gguf_alignment(g) == aligns[i] &&
                         qr_gguf_read_f32(g, qr_gguf_find_tensor(g, "q4_1"), out, 64) == QR_OK && out[63] == 3.5f);
        if (!g) fprintf(stderr, "  %s\n", qr_err_msg());
        qr_gguf_close(g);
    }
    qr_gguf_close(NULL);

    /* a file with no tensors and no KVs (just the 24-byte header) is valid */
    wb e = {0};
    wb_put(&e, "GGUF", 4); wb_u32(&e, 2); wb_u64(&e, 0); wb_u64(&e, 0);
    g = qr_gguf_open_mem(e.p, e.n, "empty.gguf");
    test_cond("v2 header with no tensors/KVs opens", g && qr_gguf_version(g) == 2 && qr_gguf_n_tensors(g) == 0 &&
                                                        qr_gguf_find_tensor(g, "x") == NULL);
    qr_gguf_close(g);
    free(e.p);
    free(b.p);
}

static void test_gguf_faults(void) {
    wb b = {0};
    for (int f = 1; f < N_FAULTS; f++) {
        build_gguf(&b, f, 32);
        qr_err_clear();
        qr_gguf *g = qr_gguf_open_mem(b.p, b.n, "fault.gguf");
        char d[200];
        snprintf(d, sizeof d, "fault %d rejected with \"%s\"", f, fault_msg[f]);
        int ok = g == NULL && contains(qr_err_msg(), fault_msg[f]) && contains(qr_err_msg(), "fault.gguf");
        test_cond(d, ok);
        if (!ok) fprintf(stderr, "  got: %s\n", g ? "(opened)" : qr_err_msg());
        qr_gguf_close(g);
    }
    free(b.p);

    /* files that are not there, directories, empty files */
    char path[128];
    tmp_path(path, sizeof path, "missing.gguf");
    test_cond("missing file: message with path and reason",
              qr_gguf_open(path) == NULL && contains(qr_err_msg(), path) && contains(qr_err_msg(), "No such file"));
    test_cond("directory: message", qr_gguf_open(tmpdir) == NULL && contains(qr_err_msg(), "is a directory"));
    tmp_path(path, sizeof path, "empty.gguf");
    write_bytes(path, "", 0);
    test_cond("zero-length file: message", qr_gguf_open(path) == NULL && contains(qr_err_msg(), "empty file (0 bytes)"));
    test_cond("zero-length buffer", qr_gguf_open_mem("", 0, "z") == NULL && contains(qr_err_msg(), "0 bytes"));
    test_cond("NULL path", qr_gguf_open(NULL) == NULL);
}

/* Every truncation of a valid file is rejected (its last tensor ends at EOF);
 * every byte flip in the header is rejected with a message or reads validly.
 * Each variant lives in its own exact-size malloc block so ASan sees any
 * read past the end. */
static void test_gguf_mutations(void) {
    wb b = {0};
    build_gguf(&b, F_NONE, 32);
    int bad_trunc = 0, no_msg = 0;
    for (size_t len = 0; len < b.n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, b.p, len);
        qr_err_clear();
        qr_gguf *g = qr_gguf_open_mem(cp, len, "trunc.gguf");
        if (g) { bad_trunc++; qr_gguf_close(g); }
        else if (!contains(qr_err_msg(), "trunc.gguf")) no_msg++;
        free(cp);
    }
    printf("gguf: %zu truncations of a %zu-byte file tried\n", b.n, b.n);
    test_cond("every truncation of the GGUF is rejected", bad_trunc == 0);
    test_cond("every rejected truncation has a message naming the file", no_msg == 0);

    /* a few truncations through real files */
    char path[128];
    tmp_path(path, sizeof path, "trunc.gguf");
    int file_bad = 0;
    size_t cuts[] = {3, 4, 8, 23, 24, 100, b.n / 2, b.n - 33, b.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(path, b.p, cuts[i]);
        qr_gguf *g = qr_gguf_open(path);
        if (g || !contains(qr_err_msg(), path)) file_bad++;
        qr_gguf_close(g);
    }
    test_cond("truncated GGUF files rejected with path in message", file_bad == 0);

    qr_gguf *g0 = qr_gguf_open_mem(b.p, b.n, "x");
    size_t hdr = qr_gguf_data_offset(g0);
    qr_gguf_close(g0);
    int accepted = 0, rejected = 0, silent = 0;
    const int nvar = 5;
    for (size_t off = 0; off < hdr; off++) {
        for (int v = 0; v < nvar; v++) {
            uint8_t *cp = malloc(b.n);
            memcpy(cp, b.p, b.n);
            uint8_t o = cp[off];
            cp[off] = v == 0 ? o ^ 0x01 : v == 1 ? o ^ 0x80 : v == 2 ? 0x00 : v == 3 ? 0xff : o ^ 0x10;
            qr_err_clear();
            qr_gguf *g = qr_gguf_open_mem(cp, b.n, "flip.gguf");
            if (g) { accepted++; exercise_gguf(g); qr_gguf_close(g); }
            else { rejected++; if (!contains(qr_err_msg(), "flip.gguf")) silent++; }
            free(cp);
        }
    }
    printf("gguf: %zu header bytes x %d flips: %d rejected, %d read validly\n", hdr, nvar, rejected, accepted);
    test_cond("header byte flips: every rejection has a message naming the file", silent == 0);
    test_cond("header byte flips: most are rejected (validation is live)", rejected > accepted);
    free(b.p);
}

/* ============================================================ safetensors */

static void sb_cat(wb *b, const char *s) { wb_put(b, s, strlen(s)); }

/* A hand-made safetensors file: header JSON text + raw data. */
static void make_st(wb *b, const char *json, const void *data, size_t n) {
    b->n = 0;
    wb_u64(b, strlen(json));
    sb_cat(b, json);
    wb_put(b, data, n);
}

static void exercise_st(qr_st_file *f) {
    for (int i = 0; i < qr_st_count(f); i++) {
        const qr_st_tensor *t = qr_st_at(f, i);
        if (qr_st_find(f, t->name) != t) abort();
        float *dst = malloc(sizeof(float) * (size_t)(t->n_elems ? t->n_elems : 1));
        if (dst) {
            (void)qr_st_read_f32(f, t, dst, t->n_elems);
            free(dst);
        }
    }
    for (int i = 0; i < qr_st_metadata_count(f); i++) (void)qr_st_metadata(f, qr_st_metadata_key_at(f, i));
}

static int tmp_files_left(void) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void test_st_roundtrip(void) {
    char path[128];
    tmp_path(path, sizeof path, "rt.safetensors");
    float a[6] = {1.0f, -0.0f, INFINITY, -INFINITY, 1e-40f /* subnormal */, 3.14159274f};
    uint32_t nan_bits = 0x7fc12345u;
    memcpy(&a[3], &nan_bits, 4); /* a NaN with a payload must survive bit-exact */
    float scalar = 42.5f;
    float big[1000];
    for (int i = 0; i < 1000; i++) big[i] = sinf((float)i) * 1e3f;
    qr_st_out outs[4] = {
        {.name = "layer.w", .data = a, .n_dims = 2, .shape = {2, 3}},
        {.name = "scalar", .data = &scalar, .n_dims = 0},
        {.name = "empty", .data = NULL, .n_dims = 2, .shape = {0, 5}},
        {.name = "na\"me\\with\nodd", .data = big, .n_dims = 3, .shape = {10, 10, 10}},
    };
    const char *meta[] = {"format", "pt", "note", "quote \" backslash \\ newline \n tab \t", NULL};
    test_cond("write ok", qr_st_write(path, outs, 4, meta) == QR_OK);
    test_cond("no temporary file left after a good write", tmp_files_left() == 0);
    FILE *fp = fopen(path, "rb");
    uint64_t hl = 0;
    if (fp) { if (fread(&hl, 8, 1, fp) != 1) hl = 1; fclose(fp); }
    test_cond("header length is a multiple of 8", hl > 0 && hl % 8 == 0);
    qr_st_file *f = qr_st_open(path);
    test_cond("written file opens", f != NULL);
    if (!f) { fprintf(stderr, "  %s\n", qr_err_msg()); return; }
    test_cond("4 tensors in the given order", qr_st_count(f) == 4 && strcmp(qr_st_at(f, 0)->name, "layer.w") == 0 &&
                                                  strcmp(qr_st_at(f, 1)->name, "scalar") == 0 &&
                                                  strcmp(qr_st_at(f, 3)->name, outs[3].name) == 0 && qr_st_at(f, 4) == NULL);
    test_cond("metadata kept (with escapes)", qr_st_metadata(f, "format") && strcmp(qr_st_metadata(f, "format"), "pt") == 0 &&
                                                  strcmp(qr_st_metadata(f, "note"), meta[3]) == 0 &&
                                                  qr_st_metadata(f, "absent") == NULL && qr_st_metadata_count(f) == 2);
    const qr_st_tensor *t = qr_st_find(f, "layer.w");
    float got[1000];
    test_cond("2-d tensor bit-exact", t && strcmp(t->dtype, "F32") == 0 && t->n_dims == 2 && t->shape[0] == 2 &&
                                          t->shape[1] == 3 && qr_st_read_f32(f, t, got, 6) == QR_OK && memcmp(got, a, 24) == 0 &&
                                          memcmp(t->data, a, 24) == 0);
    t = qr_st_find(f, "scalar");
    test_cond("scalar (0 dims) round trip", t && t->n_dims == 0 && t->n_elems == 1 && qr_st_read_f32(f, t, got, 1) == QR_OK &&
                                                got[0] == 42.5f);
    t = qr_st_find(f, "empty");
    test_cond("empty tensor round trip", t && t->n_elems == 0 && t->nbytes == 0 && t->shape[1] == 5 &&
                                             qr_st_read_f32(f, t, got, 0) == QR_OK);
    t = qr_st_find(f, outs[3].name);
    test_cond("escaped name, 3-d bit-exact", t && t->n_elems == 1000 && qr_st_read_f32(f, t, got, 1000) == QR_OK &&
                                                 memcmp(got, big, sizeof big) == 0);
    test_cond("read_f32 count mismatch names file and tensor",
              qr_st_read_f32(f, t, got, 999) == QR_ERR && contains(qr_err_msg(), path) &&
                  contains(qr_err_msg(), "expected 999 elements, file has 1000"));
    test_cond("find absent", qr_st_find(f, "nope") == NULL && contains(qr_err_msg(), "'nope' not found"));
    qr_st_close(f);
    qr_st_close(NULL);

    /* atomicity: failing writes leave the existing file intact */
    size_t n0 = 0, n1 = 0;
    char *before = qr_read_file(path, &n0);
    qr_st_out dup[2] = {{.name = "x", .data = a, .n_dims = 1, .shape = {1}}, {.name = "x", .data = a, .n_dims = 1, .shape = {1}}};
    test_cond("duplicate names refused", qr_st_write(path, dup, 2, NULL) == QR_ERR && contains(qr_err_msg(), "given twice"));
    qr_st_out neg = {.name = "x", .data = a, .n_dims = 1, .shape = {-1}};
    test_cond("negative shape refused", qr_st_write(path, &neg, 1, NULL) == QR_ERR && contains(qr_err_msg(), "negative"));
    qr_st_out nodata = {.name = "x", .data = NULL, .n_dims = 1, .shape = {3}};
    test_cond("missing data refused", qr_st_write(path, &nodata, 1, NULL) == QR_ERR && contains(qr_err_msg(), "no data"));
    const char *badmeta[] = {"k", NULL};
    test_cond("odd metadata list refused", qr_st_write(path, outs, 1, badmeta) == QR_ERR);
    char *after = qr_read_file(path, &n1);
    test_cond("existing file intact after refused writes", before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", tmpdir);
    test_cond("write into a missing directory fails with a message",
              qr_st_write(bad, outs, 1, NULL) == QR_ERR && contains(qr_err_msg(), bad) && contains(qr_err_msg(), "No such file"));
    char dirp[128];
    tmp_path(dirp, sizeof dirp, "adir");
    mkdir(dirp, 0755);
    test_cond("write over a directory fails at rename", qr_st_write(dirp, outs, 1, NULL) == QR_ERR && contains(qr_err_msg(), "rename"));
    test_cond("no temporary file left after failed writes", tmp_files_left() == 0);
    test_cond("empty path refused", qr_st_write("", outs, 1, NULL) == QR_ERR);
    /* overwrite with new content works, and the old content is replaced whole */
    test_cond("overwrite ok", qr_st_write(path, outs + 1, 1, NULL) == QR_OK);
    f = qr_st_open(path);
    test_cond("overwritten file has only the new tensor", f && qr_st_count(f) == 1 && qr_st_metadata(f, "format") == NULL);
    qr_st_close(f);
    after = qr_read_file(path, &n1);
    test_cond("overwritten file differs", after && n1 != n0);
    free(after);
    free(before);
    rmdir(dirp);
}

static void test_st_handmade(void) {
    wb b = {0};
    /* F16 + BF16 + I32 + scalar, header padded with spaces */
    uint16_t h[3] = {0x3c00, 0xc000, 0x0001};
    uint16_t bf[2] = {0x3f80, 0xc040};
    int32_t iv[2] = {7, -7};
    float sc = -1.25f;
    uint8_t data[6 + 4 + 8 + 4];
    memcpy(data, h, 6);
    memcpy(data + 6, bf, 4);
    memcpy(data + 10, iv, 8);
    memcpy(data + 18, &sc, 4);
    make_st(&b,
            "{\"__metadata__\":{\"a\":\"b\"},\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
            "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[6,10]},"
            "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[10,18]},"
            "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[18,22]}}      ",
            data, sizeof data);
    qr_st_file *f = qr_st_open_mem(b.p, b.n, "hand.st");
    test_cond("hand-made safetensors opens", f != NULL);
    if (!f) fprintf(stderr, "  %s\n", qr_err_msg());
    if (f) {
        float out[4];
        const qr_st_tensor *t = qr_st_find(f, "h");
        test_cond("F16 -> f32 (1, -2, 2^-24)", t && qr_st_read_f32(f, t, out, 3) == QR_OK && out[0] == 1.0f &&
                                                   out[1] == -2.0f && out[2] == ldexpf(1, -24));
        t = qr_st_find(f, "bf");
        test_cond("BF16 -> f32 (1, -3)", t && t->n_dims == 2 && qr_st_read_f32(f, t, out, 2) == QR_OK && out[0] == 1.0f && out[1] == -3.0f);
        t = qr_st_find(f, "i");
        test_cond("I32 tensor: metadata readable, read_f32 refuses with dtype in message",
                  t && strcmp(t->dtype, "I32") == 0 && memcmp((const char *)t->data + 4, &iv[1], 4) == 0 &&
                      qr_st_read_f32(f, t, out, 2) == QR_ERR && contains(qr_err_msg(), "dtype I32"));
        t = qr_st_find(f, "s");
        test_cond("scalar F32", t && t->n_dims == 0 && t->n_elems == 1 && qr_st_read_f32(f, t, out, 1) == QR_OK && out[0] == -1.25f);
        test_cond("metadata a=b", qr_st_metadata(f, "a") && strcmp(qr_st_metadata(f, "a"), "b") == 0);
    }
    qr_st_close(f);

    /* every truncation and header byte flip of this file */
    int bad_trunc = 0, no_msg = 0;
    for (size_t len = 0; len < b.n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, b.p, len);
        qr_err_clear();
        qr_st_file *g = qr_st_open_mem(cp, len, "trunc.st");
        if (g) { bad_trunc++; qr_st_close(g); }
        else if (!contains(qr_err_msg(), "trunc.st")) no_msg++;
        free(cp);
    }
    printf("safetensors: %zu truncations tried\n", b.n);
    test_cond("every truncation of the safetensors file is rejected", bad_trunc == 0);
    test_cond("every rejected truncation has a message naming the file", no_msg == 0);
    size_t hdr = b.n - sizeof data;
    int accepted = 0, rejected = 0, silent = 0;
    for (size_t off = 0; off < hdr; off++) {
        for (int v = 0; v < 4; v++) {
            uint8_t *cp = malloc(b.n);
            memcpy(cp, b.p, b.n);
            uint8_t o = cp[off];
            cp[off] = v == 0 ? o ^ 0x01 : v == 1 ? o ^ 0x80 : v == 2 ? 0x00 : (uint8_t)'9';
            qr_err_clear();
            qr_st_file *g = qr_st_open_mem(cp, b.n, "flip.st");
            if (g) { accepted++; exercise_st(g); qr_st_close(g); }
            else { rejected++; if (!contains(qr_err_msg(), "flip.st")) silent++; }
            free(cp);
        }
    }
    printf("safetensors: %zu header bytes x 4 flips: %d rejected, %d read validly\n", hdr, rejected, accepted);
    test_cond("safetensors header flips: every rejection has a message naming the file", silent == 0);
    test_cond("safetensors header flips: most are rejected", rejected > accepted);
    free(b.p);
}

static void test_st_faults(void) {
    static const struct {
        const char *json;
        size_t data_len;
        const char *msg;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
         16, "tensor 'b': data_offsets [12, 16) leaves a hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "overlaps another tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "span 8 bytes but shape x F32 needs 12"},
        {"{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': unknown dtype \"F31\""},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': field 'dtype' is not a string"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "field 'dtype' is missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "field 'shape' is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "shape has 9 dims"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'data_offsets' is not an array of 2 integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"x\"}}", 8, "'data_offsets' is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin > end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8, "data_offsets must be non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "end 16 is past the data section of 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "trailing bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "unexpected byte 0x78 after the header JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "header JSON is invalid"},
        {"[1,2]", 0, "does not start with '{'"},
        {"{\"a\":[1]}", 0, "tensor 'a': expected a JSON object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k': expected a string value"},
        {"{\"__metadata__\":[]}", 0, "'__metadata__' is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "tensor 'a' appears more than once"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740993],\"data_offsets\":[0,8]}}", 8, "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflows"},
    };
    wb b = {0};
    uint8_t zeros[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_st(&b, cases[i].json, zeros, cases[i].data_len);
        qr_err_clear();
        qr_st_file *f = qr_st_open_mem(b.p, b.n, "bad.st");
        char d[200];
        snprintf(d, sizeof d, "safetensors fault %zu: \"%s\"", i, cases[i].msg);
        int ok = f == NULL && contains(qr_err_msg(), cases[i].msg) && contains(qr_err_msg(), "bad.st");
        test_cond(d, ok);
        if (!ok) fprintf(stderr, "  got: %s\n", f ? "(opened)" : qr_err_msg());
        qr_st_close(f);
    }
    /* header length beyond the file */
    b.n = 0;
    wb_u64(&b, 1000);
    sb_cat(&b, "{}");
    test_cond("header length beyond the file", qr_st_open_mem(b.p, b.n, "bad.st") == NULL &&
                                                  contains(qr_err_msg(), "header length 1000 exceeds"));
    /* an empty object with no data is a valid (empty) file */
    make_st(&b, "{}", NULL, 0);
    qr_st_file *f = qr_st_open_mem(b.p, b.n, "e.st");
    test_cond("'{}' is a valid empty file", f && qr_st_count(f) == 0);
    qr_st_close(f);
    free(b.p);

    char path[128];
    tmp_path(path, sizeof path, "missing.safetensors");
    test_cond("missing safetensors: message", qr_st_open(path) == NULL && contains(qr_err_msg(), path) &&
                                                  contains(qr_err_msg(), "No such file"));
    test_cond("directory: message", qr_st_open(tmpdir) == NULL && contains(qr_err_msg(), "is a directory"));
    tmp_path(path, sizeof path, "empty.safetensors");
    write_bytes(path, "", 0);
    test_cond("empty safetensors: message", qr_st_open(path) == NULL && contains(qr_err_msg(), "empty file (0 bytes)"));
    test_cond("short buffer", qr_st_open_mem("abc", 3, "s.st") == NULL && contains(qr_err_msg(), "at least the 8-byte"));
}

/* ============================================================ real model */

static const char *model_path(char *buf, size_t n) {
    const char *e = getenv("QRUN_MODEL");
    if (e && *e) return e;
    const char *home = getenv("HOME");
    snprintf(buf, n, "%s/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
    return buf;
}

static void test_real_model(void) {
    char pbuf[512];
    const char *path = model_path(pbuf, sizeof pbuf);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "FAIL: real model not found at %s (set QRUN_MODEL or run scripts/fetch_model.sh)\n", path);
        test_cond("real SmolLM2 GGUF is present", 0);
        return;
    }
    size_t jl;
    char *js = qr_read_file("tests/fixtures/io_smollm2_ref.json", &jl);
    cJSON *ref = js ? cJSON_Parse(js) : NULL;
    free(js);
    test_cond("fixture tests/fixtures/io_smollm2_ref.json loads", ref != NULL);
    if (!ref) return;
    double t0 = qr_now();
    qr_gguf *g = qr_gguf_open(path);
    printf("real model: open + validate in %.3f s\n", qr_now() - t0);
    test_cond("real model opens", g != NULL);
    if (!g) { fprintf(stderr, "  %s\n", qr_err_msg()); cJSON_Delete(ref); return; }
    struct stat st;
    stat(path, &st);
    test_cond("model file size matches the fixture's (same file)",
              (double)st.st_size == cJSON_GetObjectItem(ref, "file_size")->valuedouble);
    test_cond("version, n_kv, n_tensors as gguf-py",
              qr_gguf_version(g) == cJSON_GetObjectItem(ref, "version")->valueint &&
                  qr_gguf_n_kv(g) == cJSON_GetObjectItem(ref, "n_kv")->valueint &&
                  qr_gguf_n_tensors(g) == cJSON_GetObjectItem(ref, "n_tensors")->valueint);
    const char *arch = qr_gguf_get_str(g, "general.architecture");
    test_cond("architecture is llama", arch && strcmp(arch, "llama") == 0);
    cJSON *it;
    int bad = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "ints")) {
        int64_t v;
        if (qr_gguf_get_int(g, it->string, &v) != QR_OK || (double)v != it->valuedouble) {
            fprintf(stderr, "  int key %s mismatch\n", it->string);
            bad++;
        }
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "floats_f32_bits")) {
        double v;
        if (qr_gguf_get_float(g, it->string, &v) != QR_OK || (double)f2u((float)v) != it->valuedouble) bad++;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "strings")) {
        const char *s = qr_gguf_get_str(g, it->string);
        if (!s || strcmp(s, it->valuestring) != 0) bad++;
    }
    test_cond("integer/float/string keys equal gguf-py's", bad == 0);
    uint64_t n = 0;
    char **toks = qr_gguf_get_str_array(g, "tokenizer.ggml.tokens", &n);
    cJSON *tk = cJSON_GetObjectItem(ref, "tokens");
    bad = !toks || (double)n != cJSON_GetObjectItem(tk, "n")->valuedouble;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(tk, "samples")) {
        long id = atol(it->string);
        if (!toks || id < 0 || (uint64_t)id >= n || strcmp(toks[id], it->valuestring) != 0) bad++;
    }
    test_cond("tokens: count and samples equal gguf-py's", bad == 0);
    qr_gguf_free_str_array(toks, n);
    char **merges = qr_gguf_get_str_array(g, "tokenizer.ggml.merges", &n);
    cJSON *mg = cJSON_GetObjectItem(ref, "merges");
    test_cond("merges: count and first", merges && (double)n == cJSON_GetObjectItem(mg, "n")->valuedouble &&
                                             strcmp(merges[0], cJSON_GetObjectItem(mg, "first")->valuestring) == 0);
    qr_gguf_free_str_array(merges, n);
    int32_t *tt = qr_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &n);
    cJSON *ttr = cJSON_GetObjectItem(ref, "token_type");
    bad = !tt || (double)n != cJSON_GetObjectItem(ttr, "n")->valuedouble;
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ttr, "first16")) if (tt && tt[k++] != it->valueint) bad++;
    test_cond("token_type: count and first 16", bad == 0);
    free(tt);

    /* tensors against gguf.quants.dequantize, tolerance 0 */
    int fd = open(path, O_RDONLY);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "tensors")) {
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        const qr_gguf_tensor *t = qr_gguf_find_tensor(g, name);
        char d[256];
        snprintf(d, sizeof d, "%s: present", name);
        test_cond(d, t != NULL);
        if (!t) continue;
        int dims_ok = cJSON_GetArraySize(cJSON_GetObjectItem(it, "dims")) == t->n_dims;
        for (int i = 0; dims_ok && i < t->n_dims; i++)
            dims_ok = (double)t->dims[i] == cJSON_GetArrayItem(cJSON_GetObjectItem(it, "dims"), i)->valuedouble;
        snprintf(d, sizeof d, "%s: type %s, dims and n_elems as gguf-py", name,
                 cJSON_GetObjectItem(it, "type_name")->valuestring);
        test_cond(d, t->type == cJSON_GetObjectItem(it, "type")->valueint && dims_ok &&
                         (double)t->n_elems == cJSON_GetObjectItem(it, "n_elems")->valuedouble);
        /* the data pointer is at gguf-py's absolute offset: compare bytes read independently */
        off_t doff = (off_t)cJSON_GetObjectItem(it, "data_offset")->valuedouble;
        uint8_t raw[64];
        snprintf(d, sizeof d, "%s: data at gguf-py's file offset %lld", name, (long long)doff);
        test_cond(d, fd >= 0 && pread(fd, raw, 64, doff) == 64 && memcmp(raw, t->data, 64) == 0);
        float *buf = malloc(sizeof(float) * (size_t)t->n_elems);
        int rok = qr_gguf_read_f32(g, t, buf, t->n_elems) == QR_OK;
        int mism = 0, cnt = 0;
        float md = 0;
        cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(it, "samples")) {
            int64_t start = (int64_t)cJSON_GetObjectItem(s, "start")->valuedouble;
            cJSON *bits;
            int j = 0;
            cJSON_ArrayForEach(bits, cJSON_GetObjectItem(s, "bits")) {
                uint32_t want = (uint32_t)bits->valuedouble;
                float wf;
                memcpy(&wf, &want, 4);
                float got = rok ? buf[start + j] : NAN;
                if (f2u(got) != want) mism++;
                float diff = fabsf(got - wf);
                if (!(diff <= md)) md = diff;
                j++;
                cnt++;
            }
        }
        printf("real model %-24s %-4s %d values vs gguf.quants.dequantize: max diff %g (tolerance 0)\n", name,
               qr_ggml_type_name(t->type), cnt, md);
        snprintf(d, sizeof d, "%s: dequantized values bit-equal gguf-py's", name);
        test_cond(d, rok && cnt >= 64 && mism == 0);
        free(buf);
    }
    if (fd >= 0) close(fd);

    /* truncations and header byte flips of the real file, in memory */
    {
        size_t fsz = 0;
        char *whole = qr_read_file(path, &fsz);
        qr_gguf *gm = whole ? qr_gguf_open_mem(whole, fsz, "real.gguf") : NULL;
        size_t hdr = gm ? qr_gguf_data_offset(gm) : 0, max_end = 0;
        for (int i = 0; gm && i < qr_gguf_n_tensors(gm); i++) {
            const qr_gguf_tensor *t = qr_gguf_tensor_at(gm, i);
            size_t e = (size_t)((const char *)t->data - whole) + t->nbytes;
            if (e > max_end) max_end = e;
        }
        qr_gguf_close(gm);
        test_cond("real model opens from memory too", gm != NULL && hdr > 0);
        int accepted = 0, tried = 0;
        for (size_t cut = 0; gm && cut < max_end; ) {
            /* header cuts get an exact-size copy so ASan would see an over-read */
            char *cp = NULL;
            const char *src = whole;
            if (cut < hdr) {
                cp = malloc(cut ? cut : 1);
                memcpy(cp, whole, cut);
                src = cp;
            }
            qr_gguf *gt = qr_gguf_open_mem(src, cut, "real-trunc.gguf");
            if (gt) accepted++;
            qr_gguf_close(gt);
            free(cp);
            tried++;
            cut = cut < 512 ? cut + 1 : cut < hdr ? cut + hdr / 199 + 1 : cut + (max_end - hdr) / 41 + 1;
        }
        printf("real model: %d truncations (every byte to 512, then spread), %d accepted; last tensor ends at %zu of %zu\n",
               tried, accepted, max_end, fsz);
        test_cond("every truncation of the real model before its last tensor's end is rejected", accepted == 0 && tried > 700);
        uint32_t x = 2463534242u;
        int flips_ok = 0, flips_rej = 0;
        for (int k2 = 0; whole && gm && k2 < 300; k2++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            size_t off = k2 < 100 ? (size_t)k2 * 8 % 1024 : x % hdr; /* the fixed header, then anywhere before the data */
            char old = whole[off];
            whole[off] = (char)(old ^ (1 << (x >> 29)));
            qr_gguf *gf = qr_gguf_open_mem(whole, fsz, "real-flip.gguf");
            if (gf) {
                flips_ok++;
                const qr_gguf_tensor *t = qr_gguf_find_tensor(gf, "output_norm.weight");
                float tmp[576];
                if (t && t->n_elems == 576) (void)qr_gguf_read_f32(gf, t, tmp, 576);
                (void)qr_gguf_get_str(gf, "general.architecture");
            } else {
                flips_rej++;
            }
            qr_gguf_close(gf);
            whole[off] = old;
        }
        printf("real model: 300 header bit flips: %d rejected, %d read validly\n", flips_rej, flips_ok);
        test_cond("real model header flips ran", flips_ok + flips_rej == 300);
        free(whole);
    }

    /* every tensor dequantizes, to finite values */
    int64_t maxn = 0;
    for (int i = 0; i < qr_gguf_n_tensors(g); i++)
        if (qr_gguf_tensor_at(g, i)->n_elems > maxn) maxn = qr_gguf_tensor_at(g, i)->n_elems;
    float *buf = malloc(sizeof(float) * (size_t)maxn);
    int bad_t = 0;
    int64_t total = 0;
    t0 = qr_now();
    for (int i = 0; i < qr_gguf_n_tensors(g); i++) {
        const qr_gguf_tensor *t = qr_gguf_tensor_at(g, i);
        if (qr_gguf_read_f32(g, t, buf, t->n_elems) != QR_OK) { bad_t++; continue; }
        for (int64_t j = 0; j < t->n_elems; j++)
            if (!isfinite(buf[j])) { bad_t++; break; }
        total += t->n_elems;
    }
    printf("real model: %lld values in %d tensors dequantized in %.2f s\n", (long long)total, qr_gguf_n_tensors(g),
           qr_now() - t0);
    test_cond("all tensors of the real model dequantize to finite values", bad_t == 0);
    free(buf);
    qr_gguf_close(g);
    cJSON_Delete(ref);
}

/* ================================================================== main */

static void rm_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
}

/* test_io --dump-seeds DIR: write the seed corpora for scripts/fuzz.sh
 * (DIR/fuzz_gguf/, DIR/fuzz_safetensors/) from the writers above. */
static int dump_seeds(const char *dir) {
    char p[512];
    wb b = {0};
    snprintf(p, sizeof p, "%s/fuzz_gguf", dir);
    mkdir(p, 0755);
    const struct { const char *name; int fault; uint32_t align; } gs[] = {
        {"good_a32.gguf", F_NONE, 32}, {"good_a1.gguf", F_NONE, 1}, {"good_a8.gguf", F_NONE, 8},
        {"deep_array.gguf", F_DEEP_ARRAY, 32}, {"offset_range.gguf", F_OFFSET_RANGE, 32},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
        build_gguf(&b, gs[i].fault, gs[i].align);
        snprintf(p, sizeof p, "%s/fuzz_gguf/%s", dir, gs[i].name);
        if (write_bytes(p, b.p, b.n)) return 1;
    }
    b.n = 0;
    wb_put(&b, "GGUF", 4); wb_u32(&b, 2); wb_u64(&b, 0); wb_u64(&b, 0);
    snprintf(p, sizeof p, "%s/fuzz_gguf/empty_v2.gguf", dir);
    if (write_bytes(p, b.p, b.n)) return 1;

    snprintf(p, sizeof p, "%s/fuzz_safetensors", dir);
    mkdir(p, 0755);
    uint8_t data[22] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x80, 0x3f, 0x40, 0xc0, 7, 0, 0, 0, 0xf9, 0xff, 0xff, 0xff,
                        0, 0, 0xa0, 0xbf};
    make_st(&b,
            "{\"__metadata__\":{\"a\":\"b\"},\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
            "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[6,10]},"
            "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[10,18]},"
            "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[18,22]}}      ",
            data, sizeof data);
    snprintf(p, sizeof p, "%s/fuzz_safetensors/hand.safetensors", dir);
    if (write_bytes(p, b.p, b.n)) return 1;
    make_st(&b, "{}", NULL, 0);
    snprintf(p, sizeof p, "%s/fuzz_safetensors/empty.safetensors", dir);
    if (write_bytes(p, b.p, b.n)) return 1;
    free(b.p);
    float a[6] = {1, -0.0f, 2.5f, -3, 1e-40f, 7};
    float sc = 42.5f;
    qr_st_out outs[3] = {
        {.name = "layer.w", .data = a, .n_dims = 2, .shape = {2, 3}},
        {.name = "scalar", .data = &sc, .n_dims = 0},
        {.name = "empty", .data = NULL, .n_dims = 2, .shape = {0, 5}},
    };
    const char *meta[] = {"format", "pt", "note", "q\"\\\n", NULL};
    snprintf(p, sizeof p, "%s/fuzz_safetensors/written.safetensors", dir);
    if (qr_st_write(p, outs, 3, meta)) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--dump-seeds") == 0) return dump_seeds(argv[2]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qr_test_io.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_halves();
    test_gguf_good();
    test_gguf_faults();
    test_gguf_mutations();
    test_st_roundtrip();
    test_st_handmade();
    test_st_faults();
    test_real_model();
    rm_tmpdir();
    return test_report();
}
