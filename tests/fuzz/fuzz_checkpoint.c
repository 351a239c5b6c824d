/* fuzz_checkpoint.c - libFuzzer target for the trainer's checkpoint reader
 * (core/train/checkpoint.c) on arbitrary bytes. The run it is checked
 * against is fixed: a tiny GPT-2 (qr_model_new) with a LoRA bank, two
 * configurations, 8 sequences. The checksum would stop nearly every
 * mutation at the first check, so the target writes the input's own FNV-1a
 * into its last 8 bytes before reading it (a second pass also reads the
 * input untouched): the header parser, the run-field comparison, the state
 * ranges and the payload checks all see mutated data.
 *
 * Checked beyond "no crash, no sanitizer report":
 *   a rejection names the file, and leaves the trainer's state untouched;
 *   an accepted checkpoint has finite adapters and moments, second moments
 *   >= 0, step counts <= step <= steps, a data order that is a permutation.
 * QR_FUZZ_VERBOSE=1 prints each read's verdict. QR_FUZZ_SEED_OUT=FILE: write a valid checkpoint of this run there (the
 * committed seed tests/fuzz/corpus/fuzz_checkpoint/good was made so:
 *   QR_FUZZ_SEED_OUT=tests/fuzz/corpus/fuzz_checkpoint/good build/replay_checkpoint /dev/null). */
#define _GNU_SOURCE
#include "model/model.h"
#include "qr.h"
#include "train/checkpoint.h"

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

enum { NDATA = 8 };
static qr_model *model;
static qr_train_opts opts;
static qr_checkpoint ck;
static const char *names[2] = {"fp", "w8a8"};
static float *lora0;
static int32_t slot0[256], perm0[NDATA];

static void setup(void) {
    qr_model_config c = {.arch = QR_ARCH_GPT2, .n_layer = 1, .n_embd = 16, .n_head = 2, .n_kv_head = 2,
                         .head_dim = 8, .n_ff = 32, .n_vocab = 40, .n_ctx = 16, .norm_eps = 1e-5f,
                         .rope_theta = 10000.0f, .tied = 1};
    model = qr_model_new(&c, 1);
    CHECK(model && qr_model_lora_init(model, 2, 2, 4.0f, 2) == QR_OK);
    opts = qr_train_defaults();
    opts.steps = 6;
    int64_t n;
    float *p = qr_model_lora_params(model, &n);
    ck = (qr_checkpoint){.m = model, .weights_fnv = 1, .configs_fnv = 2, .data_fnv = 3, .n_configs = 2,
                         .config_names = names, .schedule = "static", .schedule_opts = "", .loss = "ce",
                         .loss_opts = "", .teacher = "none", .o = &opts, .n_data = NDATA, .n_tokens = 99,
                         .lora = p, .n_lora = n, .n_slots = 2, .n_adapters = 2 * qr_model_n_linears(model),
                         .step = 3, .epoch = 0, .cursor = 5, .rng = 77};
    CHECK(ck.n_adapters <= 256);
    ck.m1 = calloc((size_t)n, sizeof(float));
    ck.v1 = calloc((size_t)n, sizeof(float));
    ck.slot_t = slot0;
    ck.perm = perm0;
    for (int i = 0; i < ck.n_adapters; i++) slot0[i] = i % 4;
    for (int i = 0; i < NDATA; i++) perm0[i] = (i * 3) % NDATA;
    for (int64_t i = 0; i < n; i++) ck.m1[i] = 0.01f * (float)(i % 7), ck.v1[i] = 0.001f * (float)(i % 5);
    lora0 = malloc((size_t)n * sizeof(float));
    memcpy(lora0, p, (size_t)n * sizeof(float));
    const char *seed = getenv("QR_FUZZ_SEED_OUT");
    if (seed) CHECK(qr_checkpoint_write(&ck, seed) == QR_OK);
}

static void read_one(const uint8_t *data, size_t size) {
    /* reset the state, then read */
    memcpy(ck.lora, lora0, (size_t)ck.n_lora * sizeof(float));
    ck.step = 3, ck.epoch = 0, ck.cursor = 5, ck.rng = 77;
    int fd = memfd_create("fuzz_checkpoint", 0);
    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    qr_err_clear();
    int rc = qr_checkpoint_read(&ck, path);
    if (getenv("QR_FUZZ_VERBOSE")) fprintf(stderr, "  %s\n", rc == QR_OK ? "accepted" : qr_err_msg());
    if (rc != QR_OK) {
        CHECK(strstr(qr_err_msg(), path) != NULL);
        CHECK(memcmp(ck.lora, lora0, (size_t)ck.n_lora * sizeof(float)) == 0);
        CHECK(ck.step == 3 && ck.epoch == 0 && ck.cursor == 5 && ck.rng == 77);
    } else {
        CHECK(ck.step >= 0 && ck.step <= opts.steps && ck.cursor >= 0 && ck.cursor <= NDATA);
        for (int64_t i = 0; i < ck.n_lora; i++)
            CHECK(isfinite(ck.lora[i]) && isfinite(ck.m1[i]) && isfinite(ck.v1[i]) && ck.v1[i] >= 0);
        for (int i = 0; i < ck.n_adapters; i++) CHECK(ck.slot_t[i] >= 0 && ck.slot_t[i] <= ck.step);
        int seen[NDATA] = {0};
        for (int i = 0; i < NDATA; i++) {
            CHECK(ck.perm[i] >= 0 && ck.perm[i] < NDATA && !seen[ck.perm[i]]);
            seen[ck.perm[i]] = 1;
        }
    }
    close(fd);
    /* restore what a successful read overwrote */
    for (int i = 0; i < ck.n_adapters; i++) slot0[i] = i % 4;
    for (int i = 0; i < NDATA; i++) perm0[i] = (i * 3) % NDATA;
    for (int64_t i = 0; i < ck.n_lora; i++) ck.m1[i] = 0.01f * (float)(i % 7), ck.v1[i] = 0.001f * (float)(i % 5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model) setup();
    read_one(data, size);
    if (size >= 24) { /* again with the checksum made right */
        uint8_t *b = malloc(size);
        memcpy(b, data, size);
        size_t body = size - 8;
        uint64_t h = qr_fnv_words(QR_FNV_INIT, b, body / 4);
        if (body % 4) h = qr_fnv(h, b + body - body % 4, body % 4);
        memcpy(b + body, &h, 8);
        read_one(b, size);
        free(b);
    }
    return 0;
}
