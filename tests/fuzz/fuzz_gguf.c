/* fuzz_gguf.c - libFuzzer target for the GGUF reader (core/gguf.c) on
 * arbitrary bytes: qr_gguf_open_mem over libFuzzer's exact-size buffer (so
 * ASan sees any read past the end), then every accessor and read_f32 of
 * every tensor. Build and run with scripts/fuzz.sh.
 *
 * Checked beyond "no crash, no sanitizer report":
 *   a rejection leaves a message naming the label;
 *   an accepted file: every tensor's data range lies inside the buffer and
 *   its size matches n_elems and the type's block size; names are unique
 *   (find_tensor/find_key return the same entry); F32 tensors read back
 *   bit-equal to their bytes; string array lengths add up inside the buffer. */
#include "io/gguf.h"
#include "qr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qr_err_clear();
    qr_gguf *g = qr_gguf_open_mem(data, size, "fuzz.gguf");
    if (!g) {
        CHECK(strstr(qr_err_msg(), "fuzz.gguf") != NULL);
        return 0;
    }
    const uint8_t *end = data + size;
    for (int i = 0; i < qr_gguf_n_kv(g); i++) {
        const char *k = qr_gguf_key_at(g, i);
        CHECK(k && qr_gguf_find_key(g, k) == i);
        int type = qr_gguf_key_type(g, i);
        CHECK(type >= 0 && type <= QR_GGUF_TYPE_F64);
        int64_t iv;
        double dv;
        (void)qr_gguf_get_int(g, k, &iv);
        (void)qr_gguf_get_float(g, k, &dv);
        const char *s = qr_gguf_get_str(g, k);
        CHECK((s != NULL) == (type == QR_GGUF_TYPE_STRING));
        int et;
        uint64_t n;
        if (qr_gguf_get_arr_info(g, k, &et, &n) == QR_OK) {
            CHECK(type == QR_GGUF_TYPE_ARRAY && n <= size);
            size_t *lens = NULL;
            uint64_t n2 = 0;
            char **sa = qr_gguf_get_str_array_lens(g, k, &n2, &lens);
            if (sa) {
                size_t total = 0;
                for (uint64_t j = 0; j < n2; j++) total += lens[j] + 8;
                CHECK(n2 == n && total <= size);
            }
            qr_gguf_free_str_array(sa, n2);
            free(lens);
            free(qr_gguf_get_i32_array(g, k, &n2));
            free(qr_gguf_get_f32_array(g, k, &n2));
        } else {
            CHECK(type != QR_GGUF_TYPE_ARRAY);
        }
    }
    for (int i = 0; i < qr_gguf_n_tensors(g); i++) {
        const qr_gguf_tensor *t = qr_gguf_tensor_at(g, i);
        CHECK(t && qr_gguf_find_tensor(g, t->name) == t);
        const uint8_t *p = t->data;
        CHECK(p >= data && p <= end && t->nbytes <= (size_t)(end - p));
        int blck = qr_ggml_block_size(t->type);
        CHECK(blck > 0 && t->n_elems > 0 && t->n_elems % blck == 0);
        CHECK((size_t)(t->n_elems / blck) * qr_ggml_type_size(t->type) == t->nbytes);
        CHECK(t->n_dims >= 0 && t->n_dims <= 4);
        float *dst = malloc(sizeof(float) * (size_t)t->n_elems);
        if (!dst) continue;
        CHECK(qr_gguf_read_f32(g, t, dst, t->n_elems) == QR_OK);
        if (t->type == QR_GGML_F32) CHECK(memcmp(dst, t->data, t->nbytes) == 0);
        CHECK(qr_gguf_read_f32(g, t, dst, t->n_elems + 1) == QR_ERR);
        free(dst);
    }
    CHECK(qr_gguf_tensor_at(g, qr_gguf_n_tensors(g)) == NULL);
    qr_gguf_close(g);
    return 0;
}
