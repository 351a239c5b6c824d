/* fuzz_model.c - libFuzzer target for loading a model from a GGUF file
 * (core/model_load.c on top of core/gguf.c): the input is written to an
 * in-memory file (memfd) and opened by path with qr_model_load, the way
 * qrun opens a user's file. fuzz_gguf covers the container; this covers what
 * is built from it - sizes from the metadata (they once sized an allocation
 * before the tensors were checked: a flipped feed_forward_length aborted),
 * tensor shapes and types against the configuration, and the tokenizer from
 * tokenizer.ggml.*. Seed: tests/fuzz/corpus/fuzz_model/tiny_llama.gguf
 * (tests/fuzz/make_model_seed.py). Build and run with scripts/fuzz.sh model.
 *
 * Checked beyond "no crash, no sanitizer report, no abort":
 *   a rejection leaves a message naming the file;
 *   a model that loads has a tokenizer no larger than its vocabulary that
 *   encodes a string to ids inside it and decodes them back; a small one
 *   runs a forward pass over them. */
#define _GNU_SOURCE
#include "model/model.h"
#include "qr.h"
#include "text/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.gguf", 0);
        CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
    qr_err_clear();
    qr_model *m = qr_model_load(path);
    if (!m) {
        CHECK(strstr(qr_err_msg(), path) != NULL);
        return 0;
    }
    const qr_model_config *c = qr_model_cfg(m);
    qr_tokenizer *tok = qr_model_tokenizer(m);
    CHECK(tok != NULL && qr_tokenizer_n_vocab(tok) <= c->n_vocab);
    static const char text[] = "hello there";
    int32_t *ids = NULL;
    int n = 0;
    CHECK(qr_tokenizer_encode(tok, text, sizeof text - 1, &ids, &n) == QR_OK);
    for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < c->n_vocab);
    char *back = qr_tokenizer_decode(tok, ids, n, NULL);
    CHECK(back != NULL);
    free(back);
    if (n > 0 && n <= c->n_ctx && c->n_layer <= 4) { /* one forward: every logit finite or not, no crash */
        float loss;
        CHECK(qr_model_forward(m, ids, NULL, 1, n, &loss) == QR_OK);
        CHECK(qr_model_logits(m) != NULL);
    }
    free(ids);
    qr_model_free(m);
    return 0;
}
