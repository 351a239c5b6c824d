/* fuzz_safetensors.c - libFuzzer target for the safetensors reader
 * (core/safetensors.c) on arbitrary bytes: qr_st_open_mem over libFuzzer's
 * exact-size buffer, then every accessor and read_f32 of every tensor.
 * Build and run with scripts/fuzz.sh.
 *
 * Checked beyond "no crash, no sanitizer report":
 *   a rejection leaves a message naming the label;
 *   an accepted file: tensors tile the data section exactly (their sizes add
 *   up to the bytes after the header, every range inside the buffer);
 *   nbytes = n_elems x dtype size; names unique; F32 reads are bit-equal to
 *   the bytes, other float dtypes convert, non-float dtypes are refused. */
#include "qr.h"
#include "io/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qr_err_clear();
    qr_st_file *f = qr_st_open_mem(data, size, "fuzz.st");
    if (!f) {
        CHECK(strstr(qr_err_msg(), "fuzz.st") != NULL);
        return 0;
    }
    uint64_t hlen;
    CHECK(size >= 8);
    memcpy(&hlen, data, 8);
    const uint8_t *dstart = data + 8 + hlen, *end = data + size;
    size_t covered = 0;
    for (int i = 0; i < qr_st_count(f); i++) {
        const qr_st_tensor *t = qr_st_at(f, i);
        CHECK(t && qr_st_find(f, t->name) == t);
        const uint8_t *p = t->data;
        CHECK(p >= dstart && p <= end && t->nbytes <= (size_t)(end - p));
        size_t esz = qr_st_dtype_size(t->dtype);
        CHECK(esz > 0 && (size_t)t->n_elems * esz == t->nbytes);
        CHECK(t->n_dims >= 0 && t->n_dims <= QR_ST_MAX_DIMS);
        covered += t->nbytes;
        float *dst = malloc(sizeof(float) * (size_t)(t->n_elems ? t->n_elems : 1));
        if (!dst) continue;
        int rc = qr_st_read_f32(f, t, dst, t->n_elems);
        int is_float = !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16");
        CHECK((rc == QR_OK) == is_float);
        if (rc == QR_OK && !strcmp(t->dtype, "F32")) CHECK(memcmp(dst, t->data, t->nbytes) == 0);
        CHECK(qr_st_read_f32(f, t, dst, t->n_elems + 1) == QR_ERR);
        free(dst);
    }
    CHECK(covered == (size_t)(end - dstart));
    for (int i = 0; i < qr_st_metadata_count(f); i++) {
        const char *k = qr_st_metadata_key_at(f, i);
        CHECK(k && qr_st_metadata(f, k) != NULL);
    }
    qr_st_close(f);
    return 0;
}
