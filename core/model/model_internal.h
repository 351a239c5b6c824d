/* model_internal.h - the model's layout, shared by model.c (what every
 * architecture shares), the architectures (arch_*.c) and io/ (files). Not
 * part of the public API. */
#ifndef QR_MODEL_INTERNAL_H
#define QR_MODEL_INTERNAL_H

#include "arch.h"
#include "model.h"
#include "tensor.h"

typedef struct {
    int i_n1w, i_n1b, i_n2w, i_n2b; /* parameter indices; -1 when absent */
} qr_layer;

/* Saved activations of one block for the backward pass; N = B*T rows. An
 * architecture sizes (arch->train_arena) the ones it uses; the others stay
 * NULL. */
typedef struct {
    float *ln1, *n1_mean, *n1_rstd; /* (N,C), (N), (N) */
    float *q, *k, *v;               /* (N,QD), (N,KVD), (N,KVD); after RoPE */
    float *att;                     /* (B,NH,T,T) softmax probabilities */
    float *atty;                    /* (N,QD) */
    float *res2;                    /* (N,C) residual after attention */
    float *ln2, *n2_mean, *n2_rstd;
    float *fc1, *fc2, *act; /* (N,F): GPT-2 c_fc out / gelu; Llama gate, up, swiglu */
    float *out;             /* (N,C) the block's output */
} qr_layer_acts;

/* Scratch the blocks of a training step share (one block runs at a time). */
typedef struct {
    float *qkv, *proj;                /* fused q|k|v (N,3C), a projection's output (N,C) */
    float *dF1, *dF2, *dF3;           /* (N,F) */
    float *dq, *dk, *dv, *datty;      /* (N,QD), (N,KVD), (N,KVD), (N,QD) */
    float *dqkv;                      /* (N,3C) */
    float *att;                       /* qr_attention_scratch_size */
} qr_block_scratch;

/* A block's buffers for n rows of a cached decode. */
typedef struct {
    float *qkv, *q, *k, *v, *atty, *proj; /* (n,3C), (n,QD), (n,KVD) x2, (n,QD), (n,C) */
    float *fc1, *fc2, *act;               /* (n,F) */
} qr_decode_bufs;

struct qr_model {
    qr_model_config cfg;
    const qr_arch_desc *arch;
    char *path;
    qr_tokenizer *tok;

    /* parameters: one buffer, one table (tensor.h) */
    qr_params par;
    int i_wte, i_wpe, i_nfw, i_nfb, i_head; /* -1 when absent (no wpe: no learned positions) */
    qr_layer *layers;
    qr_linear *lins; /* n_layer * n_lin_per_layer, in layer order, slot order within */
    int *lin_w, *lin_b;
    int n_lin_per_layer; /* arch->n_linear */
    qr_linear_scratch lscr; /* every linear's scratch */
    int max_lin_in;         /* the widest linear input, for lscr */

    /* the LoRA bank: every linear has lora_n_slots adapters in lora_mem */
    float *lora_mem, *lora_grad_mem;
    int64_t lora_n;
    int lora_n_slots, lora_rank;
    float lora_alpha;
    qr_lora *lora_slots; /* n_linears * n_slots */
    struct qr_instance *wq, *aq;
    /* the weights generation: a process-wide counter's value, taken anew by
     * whatever changes what a forward computes other than the configuration
     * (qr_model_weights_changed): caches of activations compare it */
    uint64_t weights_gen;

    /* training arena for (act_B, act_T) */
    qr_arena act;
    int act_B, act_T;
    qr_layer_acts *lacts; /* n_layer, for the model's life; their buffers in act */
    qr_block_scratch ts;
    float *encoded, *lnf, *lnf_mean, *lnf_rstd, *logits, *probs, *losses;
    float *dx, *dtmp; /* (N,C): the gradient flowing down, a temporary */
    int32_t *pos, *tgt, *ids;
    int has_targets, n_valid, logits_valid;
    /* the block the last training forward started at (0: the embeddings;
     * > 0: qr_model_forward_rows_from, the earlier blocks' activations are
     * stale and a backward is refused) */
    int first_block;
    /* logits for a subset of rows (qr_model_forward_rows): n_rows >= 0 and
     * the rows' indices, their last hidden state and its gradient (n_rows, C) */
    int n_rows, rows_cap;
    int32_t *rows;
    float *rows_x, *rows_dx;

    /* inference arena for up to inf_cap rows */
    qr_arena inf;
    int inf_cap;
    float *ix, *iln, *imean, *irstd;
    int32_t *ipos, *iidx;
    qr_decode_bufs ds;
    float *att_buf;
    size_t att_cap;
};

/* Lay out and allocate the parameters of m->cfg (m->path set: messages
 * name it). file_elems: how many weights the file being loaded holds (its
 * tensors' element count), or -1 for none; a configuration needing more is
 * refused before anything is allocated. */
int qr_model_alloc(qr_model *m, int64_t file_elems);

/* Point every linear layer's adapters at their slices of lora_mem and
 * lora_grad_mem, with scale lora_alpha / lora_rank (lora.c). */
void qr_model_lora_wire(qr_model *m);

/* ---- for the architectures (model.c) ---- */

/* Register a parameter named by fmt (printf); returns its index. */
int qr_model_add_param(qr_model *m, int n_dims, int64_t d0, int64_t d1, const char *fmt, ...) QR_PRINTF(5, 6);
/* Register linear slot `slot` of block l: "<prefix><slot name>.weight"
 * (out,in) and, with bias, ".bias" (out). */
void qr_model_add_linear(qr_model *m, int l, int slot, int in, int out, int bias);

static inline float *qr_model_p(qr_model *m, int i) { return i >= 0 ? m->par.p[i].data : NULL; }
static inline float *qr_model_g(qr_model *m, int i) {
    return i >= 0 && m->par.p[i].trainable ? m->par.p[i].grad : NULL;
}
static inline qr_linear *qr_model_lin(qr_model *m, int l, int slot) {
    return &m->lins[l * m->n_lin_per_layer + slot];
}

/* The architecture's norm (layer or RMS) over N rows of C; iw/ib parameter
 * indices (ib -1: none). */
void qr_model_norm_forward(qr_model *m, float *out, float *mean, float *rstd, const float *inp, int iw, int ib,
                           int N);
void qr_model_norm_backward(qr_model *m, float *dinp, const float *dout, const float *inp, const float *mean,
                            const float *rstd, int iw, int ib, int N);

/* Decode attention of block l: write the n rows' k, v (n, KVD) into the
 * cache at their positions (m->ipos), then atty (n, QD) = attention of q
 * (n, QD) over each row's sequence up to its position. */
/* The attention half of a block's backward, the same in every
 * architecture: dx (N,C), the gradient of the attention output projection
 * o's output, goes back through o into ts.datty (N,QD), then through the
 * softmax attention into ts.dq, ts.dk, ts.dv (zeroed first; RoPE'd q and k
 * as saved by the forward); m->dtmp (N,C) is zeroed for the input
 * projections' backward that follows. */
void qr_model_attention_backward(qr_model *m, int l, qr_linear *o, const float *dx, int B, int T);
void qr_model_cached_attention(qr_model *m, qr_kvcache *kv, int l, const int32_t *seq, int n, const float *q,
                               const float *k, const float *v, float *atty);

#endif
