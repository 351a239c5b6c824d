/* model.h - GPT-2 and Llama (SmolLM2) language models built from the ops
 * and linear layers: loading from real checkpoint files, a training forward
 * and backward over (B,T) batches, and an inference path with a KV cache.
 *
 * Layout (llm.c's way): all parameters live in one buffer, their gradients
 * in a second one of the same layout (allocated only when something is
 * trainable), training activations in one arena sized per (B,T). A training
 * step allocates nothing once the arena exists. */
#ifndef QR_MODEL_H
#define QR_MODEL_H

#include "linear.h"
#include "qr.h"
#include "tokenizer.h"

typedef enum { QR_ARCH_GPT2 = 1, QR_ARCH_LLAMA = 2 } qr_arch;

typedef struct {
    qr_arch arch;
    int n_layer;
    int n_embd;    /* C */
    int n_head;    /* NH */
    int n_kv_head; /* NKV (GPT-2: = NH) */
    int head_dim;  /* HD */
    int n_ff;      /* MLP width */
    int n_vocab;   /* V */
    int n_ctx;     /* longest sequence (GPT-2: learned positions) */
    float norm_eps;
    float rope_theta; /* Llama only */
    int tied;         /* lm_head shares the token embedding */
} qr_model_config;

/* A named parameter tensor inside the model's buffer. */
typedef struct {
    char name[96];  /* the checkpoint's name, e.g. "h.0.ln_1.weight" */
    float *data;
    float *grad;    /* NULL unless trainable */
    int n_dims;
    int64_t shape[2];
    int64_t n;
    int trainable;
} qr_param;

typedef struct qr_model qr_model;

/* Load a model: a GGUF file (Llama architecture, e.g. SmolLM2) or a Hugging
 * Face directory holding config.json, model.safetensors, vocab.json and
 * merges.txt (GPT-2). NULL + message naming the file and field on error. */
qr_model *qr_model_load(const char *path);
/* A model with random weights (for tests); no tokenizer. */
qr_model *qr_model_new(const qr_model_config *cfg, uint64_t seed);
void qr_model_free(qr_model *m);

const qr_model_config *qr_model_cfg(const qr_model *m);
const char *qr_model_path(const qr_model *m);
const char *qr_model_arch_name(const qr_model *m);
qr_tokenizer *qr_model_tokenizer(const qr_model *m); /* NULL for qr_model_new */

int qr_model_n_params(const qr_model *m);
qr_param *qr_model_param(qr_model *m, int i);
qr_param *qr_model_find_param(qr_model *m, const char *name);
int64_t qr_model_n_weights(const qr_model *m); /* total parameter count */

int qr_model_n_linears(const qr_model *m);
qr_linear *qr_model_linear(qr_model *m, int i); /* in layer order */

/* Make every parameter trainable (on) or frozen (off); gradients are
 * allocated on first need. */
void qr_model_set_trainable(qr_model *m, int on);
void qr_model_zero_grad(qr_model *m);

/* Training forward on ids (B,T). targets (B,T) may be NULL (no loss);
 * a target < 0 is ignored. On success *loss (if non-NULL) is the mean
 * cross-entropy over non-ignored targets. Logits (B*T, V) stay available
 * through qr_model_logits until the next forward or backward. */
int qr_model_forward(qr_model *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss);
const float *qr_model_logits(const qr_model *m);
/* Backward of the last forward's mean cross-entropy; accumulates into the
 * gradients of trainable parameters. */
int qr_model_backward(qr_model *m);

/* ---- inference with a KV cache ---- */
typedef struct qr_kvcache qr_kvcache;
qr_kvcache *qr_kvcache_new(const qr_model *m, int n_seq, int max_len);
void qr_kvcache_free(qr_kvcache *kv);
void qr_kvcache_clear(qr_kvcache *kv, int seq);
int qr_kvcache_len(const qr_kvcache *kv, int seq);
int qr_kvcache_max_len(const qr_kvcache *kv);

/* Run n tokens through the model with a cache. Token i belongs to sequence
 * seq[i] and is appended at that sequence's current length; the tokens of
 * one sequence must be given together and in order. For every i with
 * want[i] != 0 (want NULL: every row), a row of V logits is written to
 * logits, in order. */
int qr_model_decode(qr_model *m, qr_kvcache *kv, const int32_t *tokens, const int32_t *seq, int n,
                    const uint8_t *want, float *logits);

#endif
