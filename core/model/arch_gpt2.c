/* arch_gpt2.c - GPT-2: learned positions, LayerNorm, a fused q|k|v
 * projection (c_attn), a GELU MLP, biases everywhere, the head tied to the
 * token embedding. Checkpoint names are Hugging Face's ("h.3.attn.c_attn"). */
#include "arch.h"
#include "model_internal.h"
#include "ops/ops.h"

#include <string.h>

/* The linear slots of a block, in the order they are laid out. */
enum { QR_GPT2_C_ATTN, QR_GPT2_ATTN_PROJ, QR_GPT2_C_FC, QR_GPT2_MLP_PROJ, QR_GPT2_N_LINEAR };

static const qr_arch_linear gpt2_linear[] = {
    [QR_GPT2_C_ATTN] = {.name = "attn.c_attn"},
    [QR_GPT2_ATTN_PROJ] = {.name = "attn.c_proj"},
    [QR_GPT2_C_FC] = {.name = "mlp.c_fc"},
    [QR_GPT2_MLP_PROJ] = {.name = "mlp.c_proj"},
};
_Static_assert(sizeof gpt2_linear / sizeof *gpt2_linear == QR_GPT2_N_LINEAR, "one name per GPT-2 linear slot");

static int gpt2_config_ok(const qr_model_config *c) {
    return c->n_kv_head == c->n_head && c->n_head * c->head_dim == c->n_embd;
}

static double gpt2_n_params(const qr_model_config *c) {
    double C = c->n_embd, F = c->n_ff, V = c->n_vocab, L = c->n_layer;
    /* wte, wpe; per block ln_1, c_attn, c_proj, ln_2, c_fc, c_proj; ln_f */
    return V * C + (double)c->n_ctx * C +
           L * (2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (C * F + F) + (F * C + C)) + 2 * C;
}

static void gpt2_layout(qr_model *m) {
    const qr_model_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff;
    m->i_wte = qr_model_add_param(m, 2, c->n_vocab, C, "wte.weight");
    m->i_wpe = qr_model_add_param(m, 2, c->n_ctx, C, "wpe.weight");
    for (int l = 0; l < c->n_layer; l++) {
        qr_layer *L = &m->layers[l];
        L->i_n1w = qr_model_add_param(m, 1, C, 1, "h.%d.ln_1.weight", l);
        L->i_n1b = qr_model_add_param(m, 1, C, 1, "h.%d.ln_1.bias", l);
        qr_model_add_linear(m, l, QR_GPT2_C_ATTN, C, 3 * C, 1);
        qr_model_add_linear(m, l, QR_GPT2_ATTN_PROJ, C, C, 1);
        L->i_n2w = qr_model_add_param(m, 1, C, 1, "h.%d.ln_2.weight", l);
        L->i_n2b = qr_model_add_param(m, 1, C, 1, "h.%d.ln_2.bias", l);
        qr_model_add_linear(m, l, QR_GPT2_C_FC, C, F, 1);
        qr_model_add_linear(m, l, QR_GPT2_MLP_PROJ, F, C, 1);
    }
    m->i_nfw = qr_model_add_param(m, 1, C, 1, "ln_f.weight");
    m->i_nfb = qr_model_add_param(m, 1, C, 1, "ln_f.bias");
    m->i_head = -1;
}

static void gpt2_train_arena(qr_model *m, qr_arena *a, int64_t B, int64_t T) {
    const qr_model_config *c = &m->cfg;
    int64_t N = B * T, C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim, att = B * c->n_head * T * T;
    size_t f = sizeof(float);
    for (int l = 0; l < c->n_layer; l++) {
        qr_layer_acts *s = &m->lacts[l];
        qr_arena_add(a, &s->ln1, N * C, f);
        qr_arena_add(a, &s->n1_mean, N, f);
        qr_arena_add(a, &s->n1_rstd, N, f);
        qr_arena_add(a, &s->q, N * QD, f);
        qr_arena_add(a, &s->k, N * KVD, f);
        qr_arena_add(a, &s->v, N * KVD, f);
        qr_arena_add(a, &s->att, att, f);
        qr_arena_add(a, &s->atty, N * QD, f);
        qr_arena_add(a, &s->res2, N * C, f);
        qr_arena_add(a, &s->ln2, N * C, f);
        qr_arena_add(a, &s->n2_mean, N, f);
        qr_arena_add(a, &s->n2_rstd, N, f);
        qr_arena_add(a, &s->fc1, N * F, f);
        qr_arena_add(a, &s->act, N * F, f);
        qr_arena_add(a, &s->out, N * C, f);
    }
    qr_block_scratch *t = &m->ts;
    qr_arena_add(a, &t->qkv, N * 3 * C, f);
    qr_arena_add(a, &t->proj, N * C, f);
    qr_arena_add(a, &t->dF1, N * F, f);
    qr_arena_add(a, &t->dF2, N * F, f);
    qr_arena_add(a, &t->dq, N * QD, f);
    qr_arena_add(a, &t->dk, N * KVD, f);
    qr_arena_add(a, &t->dv, N * KVD, f);
    qr_arena_add(a, &t->datty, N * QD, f);
    qr_arena_add(a, &t->dqkv, N * 3 * C, f);
    qr_arena_add(a, &t->att, (int64_t)qr_attention_scratch_size((int)B, (int)T, c->n_head), f);
}

static void gpt2_decode_arena(qr_model *m, qr_arena *a, int64_t n) {
    const qr_model_config *c = &m->cfg;
    int64_t C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim;
    size_t f = sizeof(float);
    qr_decode_bufs *d = &m->ds;
    qr_arena_add(a, &d->qkv, n * 3 * C, f);
    qr_arena_add(a, &d->q, n * QD, f);
    qr_arena_add(a, &d->k, n * KVD, f);
    qr_arena_add(a, &d->v, n * KVD, f);
    qr_arena_add(a, &d->atty, n * QD, f);
    qr_arena_add(a, &d->proj, n * C, f);
    qr_arena_add(a, &d->fc1, n * F, f);
    qr_arena_add(a, &d->act, n * F, f);
}

/* qkv (N, 3C) -> q, k, v (N, C) each, and back. */
static void split_qkv(float *q, float *k, float *v, const float *qkv, int64_t N, int C) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        memcpy(q + n * C, qkv + n * 3 * C, (size_t)C * sizeof(float));
        memcpy(k + n * C, qkv + n * 3 * C + C, (size_t)C * sizeof(float));
        memcpy(v + n * C, qkv + n * 3 * C + 2 * C, (size_t)C * sizeof(float));
    }
}

static void join_qkv(float *qkv, const float *q, const float *k, const float *v, int64_t N, int C) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        memcpy(qkv + n * 3 * C, q + n * C, (size_t)C * sizeof(float));
        memcpy(qkv + n * 3 * C + C, k + n * C, (size_t)C * sizeof(float));
        memcpy(qkv + n * 3 * C + 2 * C, v + n * C, (size_t)C * sizeof(float));
    }
}

#define LIN(slot, out, inp, n, save)                                                                                \
    do {                                                                                                               \
        if (qr_linear_forward(qr_model_lin(m, l, (slot)), (out), (inp), (n), (save)) != QR_OK) return QR_ERR;          \
    } while (0)

/* x (N,C) -> ln_1 -> c_attn -> attention -> c_proj -> + x = res2
 *   -> ln_2 -> c_fc -> gelu -> c_proj -> + res2 = out */
static int gpt2_block_forward(qr_model *m, int l, const float *x, int B, int T) {
    const qr_model_config *c = &m->cfg;
    int N = B * T, C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_layer_acts *a = &m->lacts[l];
    qr_block_scratch *t = &m->ts;
    qr_model_norm_forward(m, a->ln1, a->n1_mean, a->n1_rstd, x, L->i_n1w, L->i_n1b, N);
    LIN(QR_GPT2_C_ATTN, t->qkv, a->ln1, N, 1);
    split_qkv(a->q, a->k, a->v, t->qkv, N, C);
    qr_attention_forward(a->atty, a->att, a->q, a->k, a->v, B, T, c->n_head, c->n_kv_head, c->head_dim);
    LIN(QR_GPT2_ATTN_PROJ, t->proj, a->atty, N, 1);
    qr_residual_forward(a->res2, x, t->proj, (int64_t)N * C);
    qr_model_norm_forward(m, a->ln2, a->n2_mean, a->n2_rstd, a->res2, L->i_n2w, L->i_n2b, N);
    LIN(QR_GPT2_C_FC, a->fc1, a->ln2, N, 1);
    qr_gelu_forward(a->act, a->fc1, (int64_t)N * F);
    LIN(QR_GPT2_MLP_PROJ, t->proj, a->act, N, 1);
    qr_residual_forward(a->out, a->res2, t->proj, (int64_t)N * C);
    return QR_OK;
}

static void gpt2_block_backward(qr_model *m, int l, const float *x, float *dx, int B, int T) {
    const qr_model_config *c = &m->cfg;
    int N = B * T, C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_layer_acts *a = &m->lacts[l];
    qr_block_scratch *t = &m->ts;
    float *dtmp = m->dtmp;
    /* MLP: dx is d(out) = d(res2) through the residual */
    memset(t->dF1, 0, (size_t)N * F * sizeof(float));
    qr_linear_backward(qr_model_lin(m, l, QR_GPT2_MLP_PROJ), t->dF1, dx, a->act, N);
    memset(dtmp, 0, (size_t)N * C * sizeof(float));
    memset(t->dF2, 0, (size_t)N * F * sizeof(float));
    qr_gelu_backward(t->dF2, a->fc1, t->dF1, (int64_t)N * F);
    qr_linear_backward(qr_model_lin(m, l, QR_GPT2_C_FC), dtmp, t->dF2, a->ln2, N);
    qr_model_norm_backward(m, dx, dtmp, a->res2, a->n2_mean, a->n2_rstd, L->i_n2w, L->i_n2b, N);
    /* attention: dx is now d(res2) = d(x) through the residual */
    qr_model_attention_backward(m, l, qr_model_lin(m, l, QR_GPT2_ATTN_PROJ), dx, B, T);
    join_qkv(t->dqkv, t->dq, t->dk, t->dv, N, C);
    qr_linear_backward(qr_model_lin(m, l, QR_GPT2_C_ATTN), dtmp, t->dqkv, a->ln1, N);
    qr_model_norm_backward(m, dx, dtmp, x, a->n1_mean, a->n1_rstd, L->i_n1w, L->i_n1b, N);
}

static int gpt2_block_decode(qr_model *m, qr_kvcache *kv, int l, const int32_t *seq, int n) {
    const qr_model_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff;
    qr_layer *L = &m->layers[l];
    qr_decode_bufs *d = &m->ds;
    qr_model_norm_forward(m, m->iln, m->imean, m->irstd, m->ix, L->i_n1w, L->i_n1b, n);
    LIN(QR_GPT2_C_ATTN, d->qkv, m->iln, n, 0);
    split_qkv(d->q, d->k, d->v, d->qkv, n, C);
    qr_model_cached_attention(m, kv, l, seq, n, d->q, d->k, d->v, d->atty);
    LIN(QR_GPT2_ATTN_PROJ, d->proj, d->atty, n, 0);
    qr_residual_forward(m->ix, m->ix, d->proj, (int64_t)n * C);
    qr_model_norm_forward(m, m->iln, m->imean, m->irstd, m->ix, L->i_n2w, L->i_n2b, n);
    LIN(QR_GPT2_C_FC, d->fc1, m->iln, n, 0);
    qr_gelu_forward(d->act, d->fc1, (int64_t)n * F);
    LIN(QR_GPT2_MLP_PROJ, d->proj, d->act, n, 0);
    qr_residual_forward(m->ix, m->ix, d->proj, (int64_t)n * C);
    return QR_OK;
}

const qr_arch_desc qr_arch_gpt2 = {
    .id = QR_ARCH_GPT2,
    .name = "gpt2",
    .block_prefix = "h.%d.",
    .norm = QR_NORM_LAYER,
    .learned_positions = 1,
    .ctx_note = " (GPT-2's context limit)",
    .n_linear = QR_GPT2_N_LINEAR,
    .linear = gpt2_linear,
    .config_ok = gpt2_config_ok,
    .n_params = gpt2_n_params,
    .layout = gpt2_layout,
    .train_arena = gpt2_train_arena,
    .decode_arena = gpt2_decode_arena,
    .block_forward = gpt2_block_forward,
    .block_backward = gpt2_block_backward,
    .block_decode = gpt2_block_decode,
};
