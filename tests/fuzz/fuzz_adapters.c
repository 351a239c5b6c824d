/* fuzz_adapters.c - libFuzzer target for the adapter-file reader
 * (core/io/adapters.c over core/io/safetensors.c): arbitrary bytes loaded
 * as the LoRA bank of a fixed tiny GPT-2 (qr_model_new, 2 slots of rank 2).
 *
 * Checked beyond "no crash, no sanitizer report":
 *   a rejection names the file and leaves the bank exactly as it was;
 *   an accepted file leaves the bank's shape (rank, slots) as it was and
 *   every value finite, and a positive alpha.
 * QR_FUZZ_VERBOSE=1 prints each verdict. QR_FUZZ_SEED_OUT=FILE writes a
 * valid adapter file of this model there (the committed seed
 * tests/fuzz/corpus/fuzz_adapters/good was made so:
 *   QR_FUZZ_SEED_OUT=tests/fuzz/corpus/fuzz_adapters/good build/replay_adapters /dev/null). */
#define _GNU_SOURCE
#include "model/model.h"
#include "qr.h"

#include <math.h>
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

static qr_model *model;
static float *bank0;
static int64_t n_bank;

static void setup(void) {
    qr_model_config c = {.arch = QR_ARCH_GPT2, .n_layer = 1, .n_embd = 16, .n_head = 2, .n_kv_head = 2,
                         .head_dim = 8, .n_ff = 32, .n_vocab = 40, .n_ctx = 16, .norm_eps = 1e-5f,
                         .rope_theta = 10000.0f, .tied = 1};
    model = qr_model_new(&c, 1);
    CHECK(model && qr_model_lora_init(model, 2, 2, 4.0f, 2) == QR_OK);
    float *p = qr_model_lora_params(model, &n_bank);
    for (int64_t i = 0; i < n_bank; i++) p[i] = 0.01f * (float)(i % 13) - 0.05f; /* B too, not just A */
    bank0 = malloc((size_t)n_bank * sizeof(float));
    memcpy(bank0, p, (size_t)n_bank * sizeof(float));
    const char *seed = getenv("QR_FUZZ_SEED_OUT");
    if (seed) CHECK(qr_model_lora_save(model, seed) == QR_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model) setup();
    int64_t n;
    float *p = qr_model_lora_params(model, &n);
    memcpy(p, bank0, (size_t)n_bank * sizeof(float));
    int fd = memfd_create("fuzz_adapters", 0);
    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    qr_err_clear();
    int rc = qr_model_lora_load(model, path);
    if (getenv("QR_FUZZ_VERBOSE")) fprintf(stderr, "  %s\n", rc == QR_OK ? "accepted" : qr_err_msg());
    p = qr_model_lora_params(model, &n);
    CHECK(n == n_bank && qr_model_lora_rank(model) == 2 && qr_model_lora_slots(model) == 2);
    if (rc != QR_OK) {
        CHECK(strstr(qr_err_msg(), path) != NULL);
        CHECK(memcmp(p, bank0, (size_t)n_bank * sizeof(float)) == 0);
    } else {
        for (int64_t i = 0; i < n; i++) CHECK(isfinite(p[i]));
        CHECK(qr_model_lora_alpha(model) > 0 && isfinite(qr_model_lora_alpha(model)));
    }
    close(fd);
    return 0;
}
