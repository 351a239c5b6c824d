/* arch_llama.c - Llama (SmolLM2): RoPE (Hugging Face's rotate-half layout),
 * RMSNorm, grouped KV heads, a SwiGLU MLP, no biases, the head tied or not.
 * Names are Hugging Face's ("model.layers.3.self_attn.q_proj"); the GGUF
 * names of the linear slots are in the table for io/model_load.c. */
#include "arch.h"
#include "model_internal.h"
#include "ops/ops.h"

#include <string.h>

/* The linear slots of a block, in the order they are laid out. */
enum { QR_LLAMA_Q, QR_LLAMA_K, QR_LLAMA_V, QR_LLAMA_O, QR_LLAMA_GATE, QR_LLAMA_UP, QR_LLAMA_DOWN, QR_LLAMA_N_LINEAR };

static const qr_arch_linear llama_linear[] = {
    [QR_LLAMA_Q] = {.name = "self_attn.q_proj", .gguf = "attn_q", .gguf_rows = QR_GGUF_ROPE_HEADS},
    [QR_LLAMA_K] = {.name = "self_attn.k_proj", .gguf = "attn_k", .gguf_rows = QR_GGUF_ROPE_KV_HEADS},
    [QR_LLAMA_V] = {.name = "self_attn.v_proj", .gguf = "attn_v"},
    [QR_LLAMA_O] = {.name = "self_attn.o_proj", .gguf = "attn_output"},
    [QR_LLAMA_GATE] = {.name = "mlp.gate_proj", .gguf = "ffn_gate"},
    [QR_LLAMA_UP] = {.name = "mlp.up_proj", .gguf = "ffn_up"},
    [QR_LLAMA_DOWN] = {.name = "mlp.down_proj", .gguf = "ffn_down"},
};
_Static_assert(sizeof llama_linear / sizeof *llama_linear == QR_LLAMA_N_LINEAR, "one name per Llama linear slot");

static double llama_n_params(const qr_model_config *c) {
    double C = c->n_embd, F = c->n_ff, V = c->n_vocab, L = c->n_layer;
    double QD = (double)c->n_head * c->head_dim, KVD = (double)c->n_kv_head * c->head_dim;
    /* embed; per block norm, q, k, v, o, norm, gate, up, down; norm; head unless tied */
    return V * C + L * (C + C * QD + 2 * C * KVD + QD * C + C + 3 * C * F) + C + (c->tied ? 0 : V * C);
}

static void llama_layout(qr_model *m) {
    const qr_model_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff, QD = c->n_head * c->head_dim, KVD = c->n_kv_head * c->head_dim;
    m->i_wte = qr_model_add_param(m, 2, c->n_vocab, C, "model.embed_tokens.weight");
    m->i_wpe = -1;
    for (int l = 0; l < c->n_layer; l++) {
        qr_layer *L = &m->layers[l];
        L->i_n1w = qr_model_add_param(m, 1, C, 1, "model.layers.%d.input_layernorm.weight", l);
        L->i_n1b = -1;
        qr_model_add_linear(m, l, QR_LLAMA_Q, C, QD, 0);
        qr_model_add_linear(m, l, QR_LLAMA_K, C, KVD, 0);
        qr_model_add_linear(m, l, QR_LLAMA_V, C, KVD, 0);
        qr_model_add_linear(m, l, QR_LLAMA_O, QD, C, 0);
        L->i_n2w = qr_model_add_param(m, 1, C, 1, "model.layers.%d.post_attention_layernorm.weight", l);
        L->i_n2b = -1;
        qr_model_add_linear(m, l, QR_LLAMA_GATE, C, F, 0);
        qr_model_add_linear(m, l, QR_LLAMA_UP, C, F, 0);
        qr_model_add_linear(m, l, QR_LLAMA_DOWN, F, C, 0);
    }
    m->i_nfw = qr_model_add_param(m, 1, C, 1, "model.norm.weight");
    m->i_nfb = -1;
    m->i_head = c->tied ? -1 : qr_model_add_param(m, 2, c->n_vocab, C, "lm_head.weight");
}

static void llama_train_arena(qr_model *m, qr_arena *a, int64_t B, int64_t T) {
    const qr_model_config *c = &m->cfg;
    int64_t N = B * T, C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim, att = B * c->n_head * T * T;
    size_t f = sizeof(float);
    for (int l = 0; l < c->n_layer; l++) { /* RMSNorm keeps no mean: n1_mean, n2_mean stay NULL */
        qr_layer_acts *s = &m->lacts[l];
        qr_arena_add(a, &s->ln1, N * C, f);
        qr_arena_add(a, &s->n1_rstd, N, f);
        qr_arena_add(a, &s->q, N * QD, f);
        qr_arena_add(a, &s->k, N * KVD, f);
        qr_arena_add(a, &s->v, N * KVD, f);
        qr_arena_add(a, &s->att, att, f);
        qr_arena_add(a, &s->atty, N * QD, f);
        qr_arena_add(a, &s->res2, N * C, f);
        qr_arena_add(a, &s->ln2, N * C, f);
        qr_arena_add(a, &s->n2_rstd, N, f);
        qr_arena_add(a, &s->fc1, N * F, f);
        qr_arena_add(a, &s->fc2, N * F, f);
        qr_arena_add(a, &s->act, N * F, f);
        qr_arena_add(a, &s->out, N * C, f);
    }
    qr_block_scratch *t = &m->ts;
    qr_arena_add(a, &t->proj, N * C, f);
    qr_arena_add(a, &t->dF1, N * F, f);
    qr_arena_add(a, &t->dF2, N * F, f);
    qr_arena_add(a, &t->dF3, N * F, f);
    qr_arena_add(a, &t->dq, N * QD, f);
    qr_arena_add(a, &t->dk, N * KVD, f);
    qr_arena_add(a, &t->dv, N * KVD, f);
    qr_arena_add(a, &t->datty, N * QD, f);
    qr_arena_add(a, &t->att, (int64_t)qr_attention_scratch_size((int)B, (int)T, c->n_head), f);
}

static void llama_decode_arena(qr_model *m, qr_arena *a, int64_t n) {
    const qr_model_config *c = &m->cfg;
    int64_t C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim;
    size_t f = sizeof(float);
    qr_decode_bufs *d = &m->ds;
    qr_arena_add(a, &d->q, n * QD, f);
    qr_arena_add(a, &d->k, n * KVD, f);
    qr_arena_add(a, &d->v, n * KVD, f);
    qr_arena_add(a, &d->atty, n * QD, f);
    qr_arena_add(a, &d->proj, n * C, f);
    qr_arena_add(a, &d->fc1, n * F, f);
    qr_arena_add(a, &d->fc2, n * F, f);
    qr_arena_add(a, &d->act, n * F, f);
}

#define LIN(slot, out, inp, n, save)                                                                                \
    do {                                                                                                               \
        if (qr_linear_forward(qr_model_lin(m, l, (slot)), (out), (inp), (n), (save)) != QR_OK) return QR_ERR;          \
    } while (0)

/* x (N,C) -> rmsnorm -> q, k, v -> RoPE(q, k) -> attention -> o + x = res2
 *   -> rmsnorm -> swiglu(gate, up) -> down + res2 = out */
static int llama_block_forward(qr_model *m, int l, const float *x, int B, int T) {
    const qr_model_config *c = &m->cfg;
    int N = B * T, C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_layer_acts *a = &m->lacts[l];
    qr_block_scratch *t = &m->ts;
    qr_model_norm_forward(m, a->ln1, a->n1_mean, a->n1_rstd, x, L->i_n1w, L->i_n1b, N);
    LIN(QR_LLAMA_Q, a->q, a->ln1, N, 1);
    LIN(QR_LLAMA_K, a->k, a->ln1, N, 1);
    LIN(QR_LLAMA_V, a->v, a->ln1, N, 1);
    qr_rope_forward(a->q, m->pos, N, c->n_head, c->head_dim, c->rope_theta);
    qr_rope_forward(a->k, m->pos, N, c->n_kv_head, c->head_dim, c->rope_theta);
    qr_attention_forward(a->atty, a->att, a->q, a->k, a->v, B, T, c->n_head, c->n_kv_head, c->head_dim);
    LIN(QR_LLAMA_O, t->proj, a->atty, N, 1);
    qr_residual_forward(a->res2, x, t->proj, (int64_t)N * C);
    qr_model_norm_forward(m, a->ln2, a->n2_mean, a->n2_rstd, a->res2, L->i_n2w, L->i_n2b, N);
    LIN(QR_LLAMA_GATE, a->fc1, a->ln2, N, 1);
    LIN(QR_LLAMA_UP, a->fc2, a->ln2, N, 1);
    qr_swiglu_forward(a->act, a->fc1, a->fc2, (int64_t)N * F);
    LIN(QR_LLAMA_DOWN, t->proj, a->act, N, 1);
    qr_residual_forward(a->out, a->res2, t->proj, (int64_t)N * C);
    return QR_OK;
}

static void llama_block_backward(qr_model *m, int l, const float *x, float *dx, int B, int T) {
    const qr_model_config *c = &m->cfg;
    int N = B * T, C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_layer_acts *a = &m->lacts[l];
    qr_block_scratch *t = &m->ts;
    float *dtmp = m->dtmp;
    /* MLP: dx is d(out) = d(res2) through the residual */
    memset(t->dF1, 0, (size_t)N * F * sizeof(float));
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_DOWN), t->dF1, dx, a->act, N);
    memset(dtmp, 0, (size_t)N * C * sizeof(float));
    memset(t->dF2, 0, (size_t)N * F * sizeof(float));
    memset(t->dF3, 0, (size_t)N * F * sizeof(float));
    qr_swiglu_backward(t->dF2, t->dF3, t->dF1, a->fc1, a->fc2, (int64_t)N * F);
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_GATE), dtmp, t->dF2, a->ln2, N);
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_UP), dtmp, t->dF3, a->ln2, N);
    qr_model_norm_backward(m, dx, dtmp, a->res2, a->n2_mean, a->n2_rstd, L->i_n2w, L->i_n2b, N);
    /* attention: dx is now d(res2) = d(x) through the residual */
    qr_model_attention_backward(m, l, qr_model_lin(m, l, QR_LLAMA_O), dx, B, T);
    qr_rope_backward(t->dq, m->pos, N, c->n_head, c->head_dim, c->rope_theta);
    qr_rope_backward(t->dk, m->pos, N, c->n_kv_head, c->head_dim, c->rope_theta);
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_Q), dtmp, t->dq, a->ln1, N);
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_K), dtmp, t->dk, a->ln1, N);
    qr_linear_backward(qr_model_lin(m, l, QR_LLAMA_V), dtmp, t->dv, a->ln1, N);
    qr_model_norm_backward(m, dx, dtmp, x, a->n1_mean, a->n1_rstd, L->i_n1w, L->i_n1b, N);
}

static int llama_block_decode(qr_model *m, qr_kvcache *kv, int l, const int32_t *seq, int n) {
    const qr_model_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_decode_bufs *d = &m->ds;
    qr_model_norm_forward(m, m->iln, m->imean, m->irstd, m->ix, L->i_n1w, L->i_n1b, n);
    LIN(QR_LLAMA_Q, d->q, m->iln, n, 0);
    LIN(QR_LLAMA_K, d->k, m->iln, n, 0);
    LIN(QR_LLAMA_V, d->v, m->iln, n, 0);
    qr_rope_forward(d->q, m->ipos, n, c->n_head, c->head_dim, c->rope_theta);
    qr_rope_forward(d->k, m->ipos, n, c->n_kv_head, c->head_dim, c->rope_theta);
    qr_model_cached_attention(m, kv, l, seq, n, d->q, d->k, d->v, d->atty);
    LIN(QR_LLAMA_O, d->proj, d->atty, n, 0);
    qr_residual_forward(m->ix, m->ix, d->proj, (int64_t)n * C);
    qr_model_norm_forward(m, m->iln, m->imean, m->irstd, m->ix, L->i_n2w, L->i_n2b, n);
    LIN(QR_LLAMA_GATE, d->fc1, m->iln, n, 0);
    LIN(QR_LLAMA_UP, d->fc2, m->iln, n, 0);
    qr_swiglu_forward(d->act, d->fc1, d->fc2, (int64_t)n * F);
    LIN(QR_LLAMA_DOWN, d->proj, d->act, n, 0);
    qr_residual_forward(m->ix, m->ix, d->proj, (int64_t)n * C);
    return QR_OK;
}

const qr_arch_desc qr_arch_llama = {
    .id = QR_ARCH_LLAMA,
    .name = "llama",
    .block_prefix = "model.layers.%d.",
    .norm = QR_NORM_RMS,
    .learned_positions = 0,
    .ctx_note = NULL,
    .n_linear = QR_LLAMA_N_LINEAR,
    .linear = llama_linear,
    .config_ok = NULL,
    .n_params = llama_n_params,
    .layout = llama_layout,
    .train_arena = llama_train_arena,
    .decode_arena = llama_decode_arena,
    .block_forward = llama_block_forward,
    .block_backward = llama_block_backward,
    .block_decode = llama_block_decode,
};
