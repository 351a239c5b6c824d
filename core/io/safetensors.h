/* safetensors.h - read (mmap) and write safetensors files.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * optional "__metadata__": {string: string}}, possibly padded with spaces,
 * then the data; offsets are relative to the data start. The data must be
 * covered exactly: no holes, no overlaps.
 *
 * qr_st_open() validates all of this up front; afterwards no accessor reads
 * outside the mapping. A bad file gets NULL and a message naming the path,
 * the tensor and the field. */
#ifndef QR_SAFETENSORS_H
#define QR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define QR_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    char dtype[8];      /* "F32", "F16", "BF16", "I32", "I64", ... as in the file */
    int n_dims;         /* 0 for a scalar (n_elems 1) */
    int64_t shape[QR_ST_MAX_DIMS];
    const void *data;   /* inside the mapping; 4-byte aligned only if the header length
                         * is a multiple of 4 (qr_st_write makes it 8) - else use read_f32 */
    size_t nbytes;
    int64_t n_elems;
} qr_st_tensor;

typedef struct qr_st_file qr_st_file;

qr_st_file *qr_st_open(const char *path);
/* The same over a caller's buffer, which must outlive the handle (nothing is
 * copied); label names it in messages. */
qr_st_file *qr_st_open_mem(const void *buf, size_t len, const char *label);
void qr_st_close(qr_st_file *f); /* NULL ok */

const char *qr_st_path(const qr_st_file *f);
int qr_st_count(const qr_st_file *f);
const qr_st_tensor *qr_st_at(const qr_st_file *f, int i);              /* header order; NULL if out of range */
const qr_st_tensor *qr_st_find(const qr_st_file *f, const char *name); /* NULL (message set) if absent */
const char *qr_st_metadata(const qr_st_file *f, const char *key);      /* __metadata__ value or NULL */
int qr_st_metadata_count(const qr_st_file *f);
const char *qr_st_metadata_key_at(const qr_st_file *f, int i);
/* Bytes per element of a safetensors dtype name, 0 if unknown. */
size_t qr_st_dtype_size(const char *dtype);

/* F32/F16/BF16 -> f32 into dst[n_expected]; error naming file and tensor if
 * the count differs or the dtype is another one. */
int qr_st_read_f32(const qr_st_file *f, const qr_st_tensor *t, float *dst, int64_t n_expected);

typedef struct {
    const char *name;
    const float *data;
    int n_dims;
    int64_t shape[QR_ST_MAX_DIMS];
} qr_st_out;

/* Write n F32 tensors in the given order, with optional metadata
 * meta_kv = {"k", "v", ..., NULL}. Atomic: writes <path>.tmp.<pid>, fflush +
 * fsync, then renames over path, so a failure leaves an existing file as it
 * was. The header is padded with spaces to a multiple of 8 bytes. */
int qr_st_write(const char *path, const qr_st_out *t, int n, const char *const *meta_kv);

#endif
