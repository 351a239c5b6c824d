/* tiny_train.h - the tiny model and copy-task data the trainer tests share
 * (test_trainer.c, test_schedules.c): a 2-layer, 32-wide GPT-2 with random
 * weights and a LoRA bank, and n sequences of 10..40 tokens, a random
 * "prompt" then an "answer" copying its first tokens (only the answer is
 * scored). Header-only: each test includes it once. */
#ifndef QR_TINY_TRAIN_H
#define QR_TINY_TRAIN_H

#include "model/model.h"
#include "plugin.h"
#include "train/trainer.h"

#include <stdio.h>

static qr_model *tiny_gpt2(qr_quantizer *q, int slots, int rank) {
    qr_model_config c = {.arch = QR_ARCH_GPT2, .n_layer = 2, .n_embd = 32, .n_head = 4, .n_kv_head = 4,
                         .head_dim = 8, .n_ff = 64, .n_vocab = 97, .n_ctx = 64, .norm_eps = 1e-5f,
                         .rope_theta = 10000.0f, .tied = 1};
    qr_model *m = qr_model_new(&c, 7);
    qr_model_set_quantizers(m, q, q);
    if (qr_model_lora_init(m, slots, rank, 2.0f * rank, 3)) fprintf(stderr, "%s\n", qr_err_msg());
    return m;
}

/* ids and tgts hold n * 40 tokens, offs n + 1 offsets. */
static qr_train_data tiny_copy_data(int32_t *ids, int32_t *tgts, int64_t *offs, int n) {
    uint64_t s = 12345;
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        offs[i] = k;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int len = 10 + (int)((s >> 33) % 31), plen = len / 2;
        for (int j = 0; j < len; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            ids[k + j] = j < plen ? 1 + (int32_t)((s >> 33) % 96) : ids[k + j - plen];
        }
        for (int j = 0; j < len; j++) tgts[k + j] = (j + 1 >= plen && j + 1 < len) ? ids[k + j + 1] : -1;
        k += len;
    }
    offs[n] = k;
    return (qr_train_data){ids, tgts, offs, n};
}

#endif
