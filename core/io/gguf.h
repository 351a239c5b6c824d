/* gguf.h - read-only GGUF (v2/v3) model files, memory-mapped.
 *
 * qr_gguf_open() validates the whole file up front: the magic, the version,
 * every length and count against the bytes that are really there, every
 * key/value, every tensor info (dims, type, block divisibility, data range).
 * After a successful open no accessor can read outside the mapping, whatever
 * the file says; a bad file gets NULL and a message naming the path, the
 * field or tensor and what was expected.
 *
 * Layout (ggml docs/gguf.md): u32 "GGUF", u32 version, u64 n_tensors,
 * u64 n_kv, n_kv x {string key, u32 type, value}, n_tensors x {string name,
 * u32 n_dims, u64 dims[n_dims], u32 type, u64 offset}, padding to
 * general.alignment (default 32), the data section. A string is u64 length +
 * bytes (no NUL); an array is u32 element type + u64 count + elements. All
 * little-endian. */
#ifndef QR_GGUF_H
#define QR_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* Key/value types. */
enum {
    QR_GGUF_TYPE_U8 = 0, QR_GGUF_TYPE_I8, QR_GGUF_TYPE_U16, QR_GGUF_TYPE_I16,
    QR_GGUF_TYPE_U32, QR_GGUF_TYPE_I32, QR_GGUF_TYPE_F32, QR_GGUF_TYPE_BOOL,
    QR_GGUF_TYPE_STRING, QR_GGUF_TYPE_ARRAY, QR_GGUF_TYPE_U64, QR_GGUF_TYPE_I64,
    QR_GGUF_TYPE_F64
};

/* Tensor types this reader understands (ggml numbering). */
enum { QR_GGML_F32 = 0, QR_GGML_F16 = 1, QR_GGML_Q4_0 = 2, QR_GGML_Q4_1 = 3, QR_GGML_Q8_0 = 8, QR_GGML_BF16 = 30 };

typedef struct qr_gguf qr_gguf;

typedef struct {
    const char *name;  /* NUL-terminated copy */
    int n_dims;
    int64_t dims[4];   /* ggml order: dims[0] is the fastest-varying (row length) */
    int type;          /* QR_GGML_* */
    const void *data;  /* inside the mapping */
    size_t nbytes;
    int64_t n_elems;
} qr_gguf_tensor;

/* mmap + validate everything; NULL + message on any problem. */
qr_gguf *qr_gguf_open(const char *path);
/* The same over a caller's buffer, which must outlive the handle (nothing is
 * copied); label names it in messages. Used by the fuzz targets. */
qr_gguf *qr_gguf_open_mem(const void *buf, size_t len, const char *label);
void qr_gguf_close(qr_gguf *g); /* NULL ok */

const char *qr_gguf_path(const qr_gguf *g);
int qr_gguf_version(const qr_gguf *g);
size_t qr_gguf_alignment(const qr_gguf *g);
size_t qr_gguf_data_offset(const qr_gguf *g); /* file offset of the data section */

/* Key/values, in file order. */
int qr_gguf_n_kv(const qr_gguf *g);
const char *qr_gguf_key_at(const qr_gguf *g, int i);
int qr_gguf_find_key(const qr_gguf *g, const char *key); /* index or -1 */
int qr_gguf_key_type(const qr_gguf *g, int i);           /* QR_GGUF_TYPE_*, -1 if i out of range */
const char *qr_gguf_type_name(int kv_type);              /* "u32", "string", ... */

/* Typed getters: QR_ERR (or NULL) + message naming path, key, expected and
 * found type when the key is missing or has an incompatible type. */
int qr_gguf_get_int(const qr_gguf *g, const char *key, int64_t *out);  /* any integer type or bool */
int qr_gguf_get_float(const qr_gguf *g, const char *key, double *out); /* f32/f64 or any integer */
const char *qr_gguf_get_str(const qr_gguf *g, const char *key);        /* NUL-terminated copy owned by g */
int qr_gguf_get_arr_info(const qr_gguf *g, const char *key, int *elem_type, uint64_t *n);
/* malloc'd array of n malloc'd NUL-terminated strings (an embedded NUL is
 * kept; the length then tells where the string really ends). */
char **qr_gguf_get_str_array(const qr_gguf *g, const char *key, uint64_t *n);
/* The same, also returning a malloc'd array of the n byte lengths. */
char **qr_gguf_get_str_array_lens(const qr_gguf *g, const char *key, uint64_t *n, size_t **lens);
void qr_gguf_free_str_array(char **a, uint64_t n); /* NULL ok */
/* malloc'd, converted from any integer (or bool) element type; values that
 * do not fit in int32 are an error. */
int32_t *qr_gguf_get_i32_array(const qr_gguf *g, const char *key, uint64_t *n);
/* malloc'd f32 array converted from an f32/f64 or integer element type. */
float *qr_gguf_get_f32_array(const qr_gguf *g, const char *key, uint64_t *n);

/* Tensors, in file order. */
int qr_gguf_n_tensors(const qr_gguf *g);
const qr_gguf_tensor *qr_gguf_tensor_at(const qr_gguf *g, int i); /* NULL if out of range */
const qr_gguf_tensor *qr_gguf_find_tensor(const qr_gguf *g, const char *name); /* NULL (message set) if absent */
/* Dequantize a whole tensor into dst[n_expected]; error naming file and
 * tensor if t->n_elems != n_expected. */
int qr_gguf_read_f32(const qr_gguf *g, const qr_gguf_tensor *t, float *dst, int64_t n_expected);

/* Type traits: weights per block (1 for F32/F16/BF16), bytes per block;
 * 0 for a type this reader does not know. */
int qr_ggml_block_size(int type);
size_t qr_ggml_type_size(int type);
const char *qr_ggml_type_name(int type); /* "Q4_1", ...; "?" if unknown */

/* Dequantize n values (n a multiple of the block size) of the given type.
 * src need not be aligned. Results equal ggml's/gguf-py's reference
 * dequantization bit for bit. */
void qr_dequant_row(int type, const void *src, float *dst, int64_t n);

/* IEEE half <-> single (exact, round-to-nearest-even on the way down),
 * bfloat16 -> single. */
float qr_fp16_to_f32(uint16_t h);
uint16_t qr_f32_to_fp16(float f);
float qr_bf16_to_f32(uint16_t h);

#endif
