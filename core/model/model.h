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
#include "tensor.h"
#include "text/tokenizer.h"

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

/* qr_param (a named parameter tensor in the model's buffer) is in tensor.h. */

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
/* A training forward that computes the logits of only n_rows rows of the
 * batch (rows: increasing indices into B*T): the last hidden state of those
 * rows goes through the final norm and the head; qr_model_logits is then
 * (n_rows, V), and qr_model_backward_logits / _hidden take dlogits of that
 * shape (every other row's logit gradient is 0). For losses that score a
 * few positions (answer tokens): the head is ~20% of a SmolLM2 step. */
int qr_model_forward_rows(qr_model *m, const int32_t *ids, int B, int T, const int32_t *rows, int n_rows);
/* Rows of the current logits (B*T after qr_model_forward, n_rows after
 * qr_model_forward_rows), or -1 when there are none. */
int qr_model_logit_rows(const qr_model *m);
/* Backward of the last forward's mean cross-entropy; accumulates into the
 * gradients of trainable parameters. */
int qr_model_backward(qr_model *m);
/* Backward from a given gradient of the logits (B*T, V) of the last forward
 * (for losses computed outside: distillation, loss plugins). */
int qr_model_backward_logits(qr_model *m, const float *dlogits);
/* The hidden state after block `layer` (0-based) of the last training
 * forward: the residual stream (B*T, C) that block hands to the next (the
 * last one before the final norm); NULL without a forward or for a layer
 * out of range. Valid until the next forward or backward. */
const float *qr_model_hidden(const qr_model *m, int layer);
/* qr_model_forward_rows starting at block `first` (0..n_layer) from
 * x_first (B*T, C), the input block `first` would get from the blocks
 * before it (first == n_layer: the final norm and the head only): what a
 * configuration that differs from a cached one only from block `first` on
 * needs (proxy.h's qr_proxy_cache). Same ids, rows and results as
 * qr_model_forward_rows when x_first is what it computes there. The
 * activations of blocks before `first` are not computed: a backward after
 * it is refused, qr_model_hidden of those blocks is NULL. first 0:
 * qr_model_forward_rows (x_first unused). */
int qr_model_forward_rows_from(qr_model *m, const int32_t *ids, int B, int T, const int32_t *rows, int n_rows,
                               int first, const float *x_first);
/* The input of block `layer` (0..n_layer) in the last training forward,
 * (B*T, C): the embeddings for 0, qr_model_hidden(m, layer - 1) after;
 * layer n_layer is the final norm's input. NULL without a forward, out of
 * range, or for a block a qr_model_forward_rows_from skipped. */
const float *qr_model_block_input(const qr_model *m, int layer);
/* The weights generation: it changes whenever something changes what a
 * forward computes other than qr_model_set_precision (the base weights,
 * the LoRA bank's values or shape, the quantizers): adapters loaded, a
 * bank made, quantizers or the default weight group set, an optimizer
 * step of the trainer. Unique across the process's models (a model freed
 * and another made at its address differ). Whoever writes weights through
 * qr_model_param()->data or the bank's buffer directly must call
 * qr_model_weights_changed, as for qr_linear_invalidate. */
uint64_t qr_model_weights_gen(const qr_model *m);
void qr_model_weights_changed(qr_model *m);
/* qr_model_backward_logits plus a gradient of the hidden states:
 * dhidden (n_layer, B*T, C), layer l's slice added to the gradient of
 * qr_model_hidden(m, l); NULL = none (feature-matching losses). */
int qr_model_backward_hidden(qr_model *m, const float *dlogits, const float *dhidden);

/* ---- quantization, the LoRA bank, precision configurations (lora.c) ---- */
struct qr_instance;

/* The quantizers of every linear layer's weight and input (borrowed: the
 * caller keeps them alive; NULL = that side is never quantized). Drops the
 * cached quantized weights. */
void qr_model_set_quantizers(qr_model *m, struct qr_instance *wq, struct qr_instance *aq);
/* The weight group of every layer whose configuration gives none (wgroup
 * 0): one scale per `group` consecutive input channels of a weight row
 * (linear.h), 0 = one per row. model:quantize{weight_opts = {group = g}}
 * sets it; qr_model_set_quantizers leaves it. QR_ERR for a group < 0 or 1. */
int qr_model_set_weight_group(qr_model *m, int group);

/* Give every linear layer n_slots LoRA adapters of the given rank:
 * A ~ U(-1/sqrt(in), 1/sqrt(in)) from seed, B = 0, scale alpha/rank.
 * Replaces an existing bank. */
int qr_model_lora_init(qr_model *m, int n_slots, int rank, float alpha, uint64_t seed);
int qr_model_lora_slots(const qr_model *m);
int qr_model_lora_rank(const qr_model *m);
float qr_model_lora_alpha(const qr_model *m);
/* Make the adapters trainable (gradients allocated, zeroed by
 * qr_model_zero_grad) or not. */
void qr_model_lora_trainable(qr_model *m, int on);
/* The whole bank as one buffer (parameters and gradients, same layout),
 * for the optimizer. */
float *qr_model_lora_params(qr_model *m, int64_t *n);
float *qr_model_lora_grads(qr_model *m, int64_t *n);
/* The adapter (A, B) of linear i, slot s (NULL if out of range). */
qr_lora *qr_model_lora(qr_model *m, int i, int s);

typedef struct {
    int wbits, abits; /* 2..16, or 32 = not quantized */
    int adapter;      /* LoRA slot, or -1 for none */
    int wgroup;       /* weight group (>= 2), or 0 for the model's default (qr_model_set_weight_group) */
} qr_layer_prec;
/* Set every linear layer's bit-widths, weight group and active adapter (n must be the
 * number of linear layers, in order). Validated first: nothing changes on
 * error (message names the layer and the value). */
int qr_model_set_precision(qr_model *m, const qr_layer_prec *p, int n);

/* Adapters as safetensors: tensors "<linear>.lora.<slot>.A" (rank, in) and
 * ".B" (out, rank); metadata rank, alpha, slots, arch. Written atomically.
 * Loading checks names, shapes and rank against the model's bank
 * (created by qr_model_lora_init first, or made to match when absent). */
int qr_model_lora_save(qr_model *m, const char *path);
int qr_model_lora_load(qr_model *m, const char *path);

/* ---- inference with a KV cache ---- */
typedef struct qr_kvcache qr_kvcache;
qr_kvcache *qr_kvcache_new(const qr_model *m, int n_seq, int max_len);
void qr_kvcache_free(qr_kvcache *kv);
void qr_kvcache_clear(qr_kvcache *kv, int seq);
int qr_kvcache_len(const qr_kvcache *kv, int seq);
int qr_kvcache_max_len(const qr_kvcache *kv);
/* Copy the first len positions of src's sequence src_seq into dst's
 * dst_seq (same model), which then holds exactly those len tokens: a
 * prompt prefix shared by many sequences is computed once. */
int qr_kvcache_copy(qr_kvcache *dst, int dst_seq, const qr_kvcache *src, int src_seq, int len);

/* Run n tokens through the model with a cache. Token i belongs to sequence
 * seq[i] and is appended at that sequence's current length; the tokens of
 * one sequence must be given together and in order. For every i with
 * want[i] != 0 (want NULL: every row), a row of V logits is written to
 * logits, in order. */
int qr_model_decode(qr_model *m, qr_kvcache *kv, const int32_t *tokens, const int32_t *seq, int n,
                    const uint8_t *want, float *logits);

#endif
