/* arch.h - an architecture is a const descriptor (as ggml describes a
 * quantized type by its traits): its name, the parameters it lays out for a
 * configuration, its named linear slots, and its block's forward, backward
 * and cached decode. model.c holds what every architecture shares (the
 * parameter buffer, embeddings, final norm and head, the loop over blocks,
 * the arenas, the KV cache) and calls the descriptor for the rest. Each
 * architecture lives in its own file (arch_gpt2.c, arch_llama.c) and is
 * found through the one table in arch.c. docs/ADDING_AN_ARCHITECTURE.md
 * says how to add one. */
#ifndef QR_ARCH_H
#define QR_ARCH_H

#include "model.h"
#include "tensor.h"


typedef enum { QR_NORM_LAYER, QR_NORM_RMS } qr_norm_kind;

/* Which heads llama.cpp's converter permuted a GGUF weight's rows over
 * (interleaved RoPE pairs), for the loader to undo. */
typedef enum { QR_GGUF_PLAIN, QR_GGUF_ROPE_HEADS, QR_GGUF_ROPE_KV_HEADS } qr_gguf_rows;

/* A linear slot of a block: its module name after the block prefix
 * ("attn.c_attn" -> "h.3.attn.c_attn"), and its tensor name in a GGUF
 * block ("attn_q" -> "blk.3.attn_q.weight"; NULL: not loaded from GGUF)
 * with the row order found there. */
typedef struct {
    const char *name;
    const char *gguf;
    qr_gguf_rows gguf_rows;
} qr_arch_linear;

typedef struct qr_arch_desc {
    qr_arch id;
    const char *name;         /* "gpt2": qr_model_arch_name, adapter metadata, checkpoint type */
    const char *block_prefix; /* printf format of a block's names, "h.%d." */
    qr_norm_kind norm;        /* of the blocks and the final norm */
    int learned_positions;    /* the context is a hard limit (a position table) */
    const char *ctx_note;     /* said when a sequence passes it, e.g. " (GPT-2's context limit)" */
    int n_linear;             /* linear slots per block (the architecture's enum) */
    const qr_arch_linear *linear; /* [n_linear], indexed by that enum */

    /* Constraints of the configuration beyond the common ones (1 = fine). */
    int (*config_ok)(const qr_model_config *c);
    /* The number of parameters, in closed form, in double (a corrupted
     * header can ask for more than int64 holds). */
    double (*n_params)(const qr_model_config *c);
    /* Register every parameter in checkpoint order through
     * qr_model_add_param / qr_model_add_linear (model_internal.h), setting
     * the model's and the blocks' parameter indices. */
    void (*layout)(qr_model *m);
    /* Add the blocks' saved activations (m->lacts[l]) and the training
     * scratch they share (m->ts) for a (B,T) batch to the arena's table. */
    void (*train_arena)(qr_model *m, qr_arena *a, int64_t B, int64_t T);
    /* Add the decode buffers (m->ds) for n rows. */
    void (*decode_arena)(qr_model *m, qr_arena *a, int64_t n);
    /* Block l of a training forward: x (B*T, C) in, m->lacts[l].out out. */
    int (*block_forward)(qr_model *m, int l, const float *x, int B, int T);
    /* Its backward: dx (B*T, C) holds d(out) and is replaced by d(x);
     * parameter gradients accumulate. */
    void (*block_backward)(qr_model *m, int l, const float *x, float *dx, int B, int T);
    /* Block l of a cached decode of n rows, in place on m->ix (n, C). */
    int (*block_decode)(qr_model *m, qr_kvcache *kv, int l, const int32_t *seq, int n);
} qr_arch_desc;

/* The table (arch.c): lookup by enum or by name; NULL when unknown. */
const qr_arch_desc *qr_arch_get(qr_arch id);
const qr_arch_desc *qr_arch_find(const char *name);

extern const qr_arch_desc qr_arch_gpt2;
extern const qr_arch_desc qr_arch_llama;

#endif
