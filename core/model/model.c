/* model.c - GPT-2 and Llama: parameters, training forward/backward, and
 * inference with a KV cache. Loading from files lives in model_load.c. */
#include "model.h"
#include "model_internal.h"
#include "ops/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* parameters                                                          */

static int add_param(qr_model *m, int64_t *off, const char *name, int n_dims, int64_t d0, int64_t d1) {
    if (m->n_ptab == m->cap_ptab) {
        m->cap_ptab = m->cap_ptab ? 2 * m->cap_ptab : 64;
        m->ptab = qr_xrealloc(m->ptab, (size_t)m->cap_ptab * sizeof *m->ptab);
        m->poff = qr_xrealloc(m->poff, (size_t)m->cap_ptab * sizeof *m->poff);
    }
    qr_param *p = &m->ptab[m->n_ptab];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = n_dims;
    p->shape[0] = d0;
    p->shape[1] = n_dims > 1 ? d1 : 1;
    p->n = d0 * (n_dims > 1 ? d1 : 1);
    m->poff[m->n_ptab] = *off;
    *off += p->n;
    return m->n_ptab++;
}

/* Linear layer: registers "<name>.weight" (out,in) and optionally
 * "<name>.bias" (out). Returns the weight's parameter index. */
static void add_linear(qr_model *m, int64_t *off, qr_linear *lin, int *wi, int *bi, const char *name, int in,
                       int out, int bias) {
    char buf[128];
    memset(lin, 0, sizeof *lin);
    snprintf(lin->name, sizeof lin->name, "%s", name);
    lin->in = in;
    lin->out = out;
    lin->wbits = lin->abits = 32; /* not quantized until a configuration says so */
    lin->active = -1;
    snprintf(buf, sizeof buf, "%s.weight", name);
    *wi = add_param(m, off, buf, 2, out, in);
    *bi = -1;
    if (bias) {
        snprintf(buf, sizeof buf, "%s.bias", name);
        *bi = add_param(m, off, buf, 1, out, 1);
    }
}

/* The number of parameters a configuration has, in double (a corrupted
 * header can ask for more than int64 holds): the layout qr_model_alloc
 * builds, in closed form. */
static double config_n_params(const qr_model_config *c) {
    double C = c->n_embd, F = c->n_ff, V = c->n_vocab, L = c->n_layer;
    double QD = (double)c->n_head * c->head_dim, KVD = (double)c->n_kv_head * c->head_dim;
    if (c->arch == QR_ARCH_GPT2) /* wte, wpe; per block ln_1, c_attn, c_proj, ln_2, c_fc, c_proj; ln_f */
        return V * C + (double)c->n_ctx * C + L * (2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (C * F + F) +
                                                  (F * C + C)) +
               2 * C;
    /* embed; per block norm, q, k, v, o, norm, gate, up, down; norm; head unless tied */
    return V * C + L * (C + C * QD + 2 * C * KVD + QD * C + C + 3 * C * F) + C + (c->tied ? 0 : V * C);
}

int qr_model_alloc(qr_model *m, int64_t file_elems) {
    const qr_model_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff, QD = c->n_head * c->head_dim, KVD = c->n_kv_head * c->head_dim;
    int64_t off = 0;
    char nm[128];
    if (c->n_layer <= 0 || C <= 0 || c->n_head <= 0 || c->n_kv_head <= 0 || c->head_dim <= 0 || F <= 0 ||
        c->n_vocab <= 0 || c->n_ctx <= 0 || c->n_head % c->n_kv_head != 0 || (c->head_dim & 1) ||
        (c->arch == QR_ARCH_GPT2 && (c->n_kv_head != c->n_head || c->n_head * c->head_dim != C)))
        return qr_err_set("%s: model config: inconsistent sizes (layers %d, embd %d, heads %d/%d, head_dim %d, ff %d, "
                          "vocab %d, ctx %d; GPT-2 needs kv heads = heads and heads x head_dim = embd)",
                          m->path, c->n_layer, C, c->n_head, c->n_kv_head, c->head_dim, F, c->n_vocab, c->n_ctx);
    /* Sizes come from a header a corrupted file controls: before allocating
     * anything, check that they describe a model of about the file's size
     * (a missing tensor is named later, by the loader; a header asking for
     * more than twice the file's weights is refused here) and that the
     * buffer can be had. */
    double need = config_n_params(c);
    if (file_elems >= 0 && need > 2.0 * (double)file_elems)
        return qr_err_set("%s: model config (layers %d, embd %d, heads %d/%d, ff %d, vocab %d, ctx %d) needs %.4g "
                          "weights but the file's tensors hold only %lld",
                          m->path, c->n_layer, C, c->n_head, c->n_kv_head, F, c->n_vocab, c->n_ctx, need,
                          (long long)file_elems);
    if (need * sizeof(float) > (double)PTRDIFF_MAX / 2)
        return qr_err_set("%s: model config (layers %d, embd %d, ff %d, vocab %d) is implausible: %.4g weights", m->path,
                          c->n_layer, C, F, c->n_vocab, need);
    m->layers = qr_xcalloc((size_t)c->n_layer, sizeof *m->layers);
    m->n_lin_per_layer = c->arch == QR_ARCH_GPT2 ? 4 : 7;
    m->lins = qr_xcalloc((size_t)c->n_layer * m->n_lin_per_layer, sizeof *m->lins);
    int *lw = qr_xcalloc((size_t)c->n_layer * m->n_lin_per_layer, sizeof(int));
    int *lb = qr_xcalloc((size_t)c->n_layer * m->n_lin_per_layer, sizeof(int));

    if (c->arch == QR_ARCH_GPT2) {
        m->i_wte = add_param(m, &off, "wte.weight", 2, c->n_vocab, C);
        m->i_wpe = add_param(m, &off, "wpe.weight", 2, c->n_ctx, C);
        for (int l = 0; l < c->n_layer; l++) {
            qr_layer *L = &m->layers[l];
            qr_linear *lin = &m->lins[l * 4];
            int *w = &lw[l * 4], *b = &lb[l * 4];
            snprintf(nm, sizeof nm, "h.%d.ln_1.weight", l);
            L->i_n1w = add_param(m, &off, nm, 1, C, 1);
            snprintf(nm, sizeof nm, "h.%d.ln_1.bias", l);
            L->i_n1b = add_param(m, &off, nm, 1, C, 1);
            snprintf(nm, sizeof nm, "h.%d.attn.c_attn", l);
            add_linear(m, &off, &lin[0], &w[0], &b[0], nm, C, 3 * C, 1);
            snprintf(nm, sizeof nm, "h.%d.attn.c_proj", l);
            add_linear(m, &off, &lin[1], &w[1], &b[1], nm, C, C, 1);
            snprintf(nm, sizeof nm, "h.%d.ln_2.weight", l);
            L->i_n2w = add_param(m, &off, nm, 1, C, 1);
            snprintf(nm, sizeof nm, "h.%d.ln_2.bias", l);
            L->i_n2b = add_param(m, &off, nm, 1, C, 1);
            snprintf(nm, sizeof nm, "h.%d.mlp.c_fc", l);
            add_linear(m, &off, &lin[2], &w[2], &b[2], nm, C, F, 1);
            snprintf(nm, sizeof nm, "h.%d.mlp.c_proj", l);
            add_linear(m, &off, &lin[3], &w[3], &b[3], nm, F, C, 1);
        }
        m->i_nfw = add_param(m, &off, "ln_f.weight", 1, C, 1);
        m->i_nfb = add_param(m, &off, "ln_f.bias", 1, C, 1);
        m->i_head = -1;
    } else {
        static const char *names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                       "mlp.down_proj"};
        m->i_wte = add_param(m, &off, "model.embed_tokens.weight", 2, c->n_vocab, C);
        m->i_wpe = -1;
        for (int l = 0; l < c->n_layer; l++) {
            qr_layer *L = &m->layers[l];
            qr_linear *lin = &m->lins[l * 7];
            int *w = &lw[l * 7], *b = &lb[l * 7];
            int ins[7] = {C, C, C, QD, C, C, F}, outs[7] = {QD, KVD, KVD, C, F, F, C};
            snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
            L->i_n1w = add_param(m, &off, nm, 1, C, 1);
            L->i_n1b = -1;
            for (int j = 0; j < 4; j++) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s", l, names[j]);
                add_linear(m, &off, &lin[j], &w[j], &b[j], nm, ins[j], outs[j], 0);
            }
            snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
            L->i_n2w = add_param(m, &off, nm, 1, C, 1);
            L->i_n2b = -1;
            for (int j = 4; j < 7; j++) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s", l, names[j]);
                add_linear(m, &off, &lin[j], &w[j], &b[j], nm, ins[j], outs[j], 0);
            }
        }
        m->i_nfw = add_param(m, &off, "model.norm.weight", 1, C, 1);
        m->i_nfb = -1;
        m->i_head = c->tied ? -1 : add_param(m, &off, "lm_head.weight", 2, c->n_vocab, C);
    }
    m->n_total = off;
    m->params = calloc((size_t)off, sizeof(float));
    if (!m->params) {
        free(lw);
        free(lb);
        return qr_err_set("%s: out of memory for %lld weights (%.2f GiB)", m->path, (long long)off,
                          (double)off * sizeof(float) / (1 << 30));
    }
    for (int i = 0; i < m->n_ptab; i++) m->ptab[i].data = m->params + m->poff[i];
    int nl = c->n_layer * m->n_lin_per_layer;
    m->lin_w = lw;
    m->lin_b = lb;
    for (int i = 0; i < nl; i++) {
        m->lins[i].w = m->ptab[lw[i]].data;
        m->lins[i].b = lb[i] >= 0 ? m->ptab[lb[i]].data : NULL;
    }
    return QR_OK;
}

static float *P(qr_model *m, int i) { return i >= 0 ? m->ptab[i].data : NULL; }
static float *G(qr_model *m, int i) { return i >= 0 && m->ptab[i].trainable ? m->ptab[i].grad : NULL; }

static void sync_linear_grads(qr_model *m) {
    int nl = m->cfg.n_layer * m->n_lin_per_layer;
    for (int i = 0; i < nl; i++) {
        m->lins[i].dw = G(m, m->lin_w[i]);
        m->lins[i].db = G(m, m->lin_b[i]);
    }
}

void qr_model_set_trainable(qr_model *m, int on) {
    if (on && !m->grads) {
        m->grads = qr_xcalloc((size_t)m->n_total, sizeof(float));
        for (int i = 0; i < m->n_ptab; i++) m->ptab[i].grad = m->grads + m->poff[i];
    }
    for (int i = 0; i < m->n_ptab; i++) m->ptab[i].trainable = on;
    sync_linear_grads(m);
}

void qr_model_zero_grad(qr_model *m) {
    if (m->grads) memset(m->grads, 0, (size_t)m->n_total * sizeof(float));
    if (m->lora_grad_mem) memset(m->lora_grad_mem, 0, (size_t)m->lora_n * sizeof(float));
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

qr_model *qr_model_new(const qr_model_config *cfg, uint64_t seed) {
    qr_model *m = qr_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->path = qr_xstrdup("<random>");
    if (qr_model_alloc(m, -1) != QR_OK) {
        qr_model_free(m);
        return NULL;
    }
    uint64_t s = seed;
    for (int i = 0; i < m->n_ptab; i++) {
        qr_param *p = &m->ptab[i];
        const char *suffix = strrchr(p->name, '.');
        int is_norm = strstr(p->name, "ln_") || strstr(p->name, "norm");
        if (is_norm && strcmp(suffix, ".weight") == 0) {
            for (int64_t j = 0; j < p->n; j++) p->data[j] = 1.0f;
        } else if (strcmp(suffix, ".bias") == 0) {
            for (int64_t j = 0; j < p->n; j++) p->data[j] = 0.0f;
        } else {
            /* uniform with std 0.02 */
            for (int64_t j = 0; j < p->n; j++) {
                double u = (double)(rng_next(&s) >> 11) * (1.0 / 9007199254740992.0);
                p->data[j] = (float)((2.0 * u - 1.0) * 0.02 * 1.7320508075688772);
            }
        }
    }
    return m;
}

static void free_train(qr_model *m) {
    free(m->act_mem);
    m->act_mem = NULL;
    free(m->lacts);
    m->lacts = NULL;
    m->act_B = m->act_T = 0;
}

void qr_model_free(qr_model *m) {
    if (!m) return;
    free_train(m);
    free(m->inf_mem);
    free(m->att_buf);
    free(m->pos);
    free(m->tgt);
    free(m->ids);
    free(m->rows);
    free(m->rows_x);
    free(m->rows_dx);
    free(m->params);
    free(m->grads);
    free(m->ptab);
    free(m->poff);
    free(m->layers);
    for (int i = 0; m->lins && i < m->cfg.n_layer * m->n_lin_per_layer; i++) qr_linear_release(&m->lins[i]);
    free(m->lora_mem);
    free(m->lora_grad_mem);
    free(m->lora_slots);
    free(m->lins);
    free(m->lin_w);
    free(m->lin_b);
    free(m->path);
    qr_tokenizer_free(m->tok);
    free(m);
}

const qr_model_config *qr_model_cfg(const qr_model *m) { return &m->cfg; }
const char *qr_model_path(const qr_model *m) { return m->path; }
const char *qr_model_arch_name(const qr_model *m) { return m->cfg.arch == QR_ARCH_GPT2 ? "gpt2" : "llama"; }
qr_tokenizer *qr_model_tokenizer(const qr_model *m) { return m->tok; }
int qr_model_n_params(const qr_model *m) { return m->n_ptab; }
qr_param *qr_model_param(qr_model *m, int i) { return i >= 0 && i < m->n_ptab ? &m->ptab[i] : NULL; }
qr_param *qr_model_find_param(qr_model *m, const char *name) {
    for (int i = 0; i < m->n_ptab; i++)
        if (strcmp(m->ptab[i].name, name) == 0) return &m->ptab[i];
    return NULL;
}
int64_t qr_model_n_weights(const qr_model *m) { return m->n_total; }
int qr_model_n_linears(const qr_model *m) { return m->cfg.n_layer * m->n_lin_per_layer; }
qr_linear *qr_model_linear(qr_model *m, int i) {
    return i >= 0 && i < qr_model_n_linears(m) ? &m->lins[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* training forward / backward                                         */

/* Carve the activation arena for (B,T). One allocation; a pointer table. */
static void alloc_train(qr_model *m, int B, int T) {
    if (m->act_B == B && m->act_T == T) return;
    free_train(m);
    const qr_model_config *c = &m->cfg;
    int64_t N = (int64_t)B * T, C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim, V = c->n_vocab, L = c->n_layer;
    int gpt2 = c->arch == QR_ARCH_GPT2;
    int64_t att = (int64_t)B * c->n_head * T * T;
    int64_t per_layer = N * C /*ln1*/ + 2 * N /*mean,rstd*/ + N * QD + 2 * N * KVD + att + N * QD /*atty*/ +
                        N * C /*res2*/ + N * C /*ln2*/ + 2 * N + N * F /*fc1*/ + (gpt2 ? 0 : N * F) /*fc2*/ +
                        N * F /*act*/ + N * C /*out*/;
    int64_t global = N * C /*encoded*/ + N * C + 2 * N /*lnf*/ + 2 * N * V /*logits, probs*/ + N /*losses*/ +
                     N * 3 * C /*qkv or scratch*/ + N * C /*proj scratch*/ +
                     /* backward scratch */ 2 * N * C /*dx, dtmp*/ + 3 * N * F /*dF1,dF2,dF3*/ + N * QD + 2 * N * KVD +
                     N * QD /*datty*/ + N * 3 * C /*dqkv*/ +
                     (int64_t)qr_attention_scratch_size(B, T, c->n_head);
    size_t total = (size_t)(per_layer * L + global);
    float *mem = qr_xmalloc(total * sizeof(float));
    float *p = mem;
#define TAKE(n) (p += (n), p - (n))
    m->lacts = qr_xcalloc((size_t)L, sizeof *m->lacts);
    for (int l = 0; l < L; l++) {
        qr_layer_acts *a = &m->lacts[l];
        a->ln1 = TAKE(N * C);
        a->n1_mean = TAKE(N);
        a->n1_rstd = TAKE(N);
        a->q = TAKE(N * QD);
        a->k = TAKE(N * KVD);
        a->v = TAKE(N * KVD);
        a->att = TAKE(att);
        a->atty = TAKE(N * QD);
        a->res2 = TAKE(N * C);
        a->ln2 = TAKE(N * C);
        a->n2_mean = TAKE(N);
        a->n2_rstd = TAKE(N);
        a->fc1 = TAKE(N * F);
        a->fc2 = gpt2 ? NULL : TAKE(N * F);
        a->act = TAKE(N * F);
        a->out = TAKE(N * C);
    }
    m->encoded = TAKE(N * C);
    m->lnf = TAKE(N * C);
    m->lnf_mean = TAKE(N);
    m->lnf_rstd = TAKE(N);
    m->logits = TAKE(N * V);
    m->probs = TAKE(N * V);
    m->losses = TAKE(N);
    m->scr_qkv = TAKE(N * 3 * C);
    m->scr_proj = TAKE(N * C);
    m->dx = TAKE(N * C);
    m->dtmp = TAKE(N * C);
    m->dF1 = TAKE(N * F);
    m->dF2 = TAKE(N * F);
    m->dF3 = TAKE(N * F);
    m->dq = TAKE(N * QD);
    m->dk = TAKE(N * KVD);
    m->dv = TAKE(N * KVD);
    m->datty = TAKE(N * QD);
    m->dqkv = TAKE(N * 3 * C);
    m->att_scratch = TAKE((int64_t)qr_attention_scratch_size(B, T, c->n_head));
#undef TAKE
    m->act_mem = mem;
    m->act_B = B;
    m->act_T = T;
    m->pos = qr_xrealloc(m->pos, (size_t)N * sizeof(int32_t));
    m->tgt = qr_xrealloc(m->tgt, (size_t)N * sizeof(int32_t));
    m->ids = qr_xrealloc(m->ids, (size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) m->pos[i] = (int32_t)(i % T);
}

static void norm_fwd(qr_model *m, float *out, float *mean, float *rstd, const float *inp, int iw, int ib, int N) {
    const qr_model_config *c = &m->cfg;
    if (c->arch == QR_ARCH_GPT2)
        qr_layernorm_forward(out, mean, rstd, inp, P(m, iw), P(m, ib), N, c->n_embd, c->norm_eps);
    else
        qr_rmsnorm_forward(out, rstd, inp, P(m, iw), N, c->n_embd, c->norm_eps);
}

static void norm_bwd(qr_model *m, float *dinp, const float *dout, const float *inp, const float *mean,
                     const float *rstd, int iw, int ib, int N) {
    const qr_model_config *c = &m->cfg;
    if (c->arch == QR_ARCH_GPT2)
        qr_layernorm_backward(dinp, G(m, iw), G(m, ib), dout, inp, P(m, iw), mean, rstd, N, c->n_embd);
    else
        qr_rmsnorm_backward(dinp, G(m, iw), dout, inp, P(m, iw), rstd, N, c->n_embd);
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

static void embed_fwd(qr_model *m, float *out, const int32_t *ids, const int32_t *pos, int N) {
    const qr_model_config *c = &m->cfg;
    qr_embedding_forward(out, ids, P(m, m->i_wte), N, c->n_embd);
    if (c->arch == QR_ARCH_GPT2) {
        const float *wpe = P(m, m->i_wpe);
        int C = c->n_embd;
#pragma omp parallel for
        for (int n = 0; n < N; n++) {
            float *o = out + (int64_t)n * C;
            const float *w = wpe + (int64_t)pos[n] * C;
            for (int i = 0; i < C; i++) o[i] += w[i];
        }
    }
}

#define LIN(l, out, inp, n, save)                                                                                   \
    do {                                                                                                               \
        if (qr_linear_forward((l), (out), (inp), (n), (save)) != QR_OK) return QR_ERR;                                 \
    } while (0)

static const float *head_weight(qr_model *m) { return P(m, m->i_head >= 0 ? m->i_head : m->i_wte); }
static float *head_grad(qr_model *m) { return G(m, m->i_head >= 0 ? m->i_head : m->i_wte); }

/* The blocks of a training forward: embeddings through the last block;
 * returns the last block's output (N, C), or NULL on error. */
static const float *forward_blocks(qr_model *m, const int32_t *ids, int B, int T);

int qr_model_forward(qr_model *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss) {
    const qr_model_config *c = &m->cfg;
    const float *x = forward_blocks(m, ids, B, T);
    if (!x) return QR_ERR;
    int N = B * T, C = c->n_embd;
    m->has_targets = targets != NULL;
    if (targets) memcpy(m->tgt, targets, (size_t)N * sizeof(int32_t));
    m->n_rows = -1;
    norm_fwd(m, m->lnf, m->lnf_mean, m->lnf_rstd, x, m->i_nfw, m->i_nfb, N);
    qr_matmul_forward(m->logits, m->lnf, head_weight(m), NULL, N, C, c->n_vocab);
    m->logits_valid = 1;
    if (targets) {
        int n_valid = 0;
        for (int i = 0; i < N; i++) {
            if (targets[i] >= c->n_vocab)
                return qr_err_set("model forward: target id %d at position %d is outside the vocabulary [0, %d)",
                                  targets[i], i, c->n_vocab);
            n_valid += targets[i] >= 0;
        }
        m->n_valid = n_valid;
        float l = qr_crossentropy_forward(m->losses, m->probs, m->logits, targets, N, c->n_vocab);
        if (loss) *loss = l;
    } else if (loss) {
        *loss = 0.0f;
    }
    return QR_OK;
}

int qr_model_forward_rows(qr_model *m, const int32_t *ids, int B, int T, const int32_t *rows, int n_rows) {
    const qr_model_config *c = &m->cfg;
    if (B > 0 && T > 0 && (n_rows < 0 || n_rows > B * T))
        return qr_err_set("model forward: %d logit rows of a %d x %d batch: expected 0..%d", n_rows, B, T, B * T);
    for (int i = 0; i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= B * T || (i && rows[i] <= rows[i - 1]))
            return qr_err_set("model forward: logit row %d is %d: expected increasing rows in [0, %d)", i, rows[i],
                              B * T);
    const float *x = forward_blocks(m, ids, B, T);
    if (!x) return QR_ERR;
    int C = c->n_embd;
    m->has_targets = 0;
    if (n_rows > m->rows_cap) {
        m->rows = qr_xrealloc(m->rows, (size_t)n_rows * sizeof(int32_t));
        m->rows_x = qr_xrealloc(m->rows_x, (size_t)n_rows * C * sizeof(float));
        m->rows_dx = qr_xrealloc(m->rows_dx, (size_t)n_rows * C * sizeof(float));
        m->rows_cap = n_rows;
    }
    m->n_rows = n_rows;
    if (n_rows) memcpy(m->rows, rows, (size_t)n_rows * sizeof(int32_t));
    for (int i = 0; i < n_rows; i++)
        memcpy(m->rows_x + (size_t)i * C, x + (size_t)rows[i] * C, (size_t)C * sizeof(float));
    norm_fwd(m, m->lnf, m->lnf_mean, m->lnf_rstd, m->rows_x, m->i_nfw, m->i_nfb, n_rows);
    if (n_rows) qr_matmul_forward(m->logits, m->lnf, head_weight(m), NULL, n_rows, C, c->n_vocab);
    m->logits_valid = 1;
    return QR_OK;
}

int qr_model_logit_rows(const qr_model *m) {
    if (!m->logits_valid) return -1;
    return m->n_rows >= 0 ? m->n_rows : m->act_B * m->act_T;
}

/* LIN for forward_blocks, which returns a pointer */
#define LINB(l, out, inp, n, save)                                                                                  \
    do {                                                                                                               \
        if (qr_linear_forward((l), (out), (inp), (n), (save)) != QR_OK) return NULL;                                   \
    } while (0)

static const float *forward_blocks(qr_model *m, const int32_t *ids, int B, int T) {
    const qr_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0) {
        qr_err_set("model forward: batch %d x %d: expected positive sizes", B, T);
        return NULL;
    }
    if (T > c->n_ctx) {
        qr_err_set("model forward: sequence length %d exceeds the model's context of %d", T, c->n_ctx);
        return NULL;
    }
    int N = B * T, C = c->n_embd, F = c->n_ff;
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab) {
            qr_err_set("model forward: token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                       c->n_vocab);
            return NULL;
        }
    alloc_train(m, B, T);
    m->logits_valid = 0;
    m->has_targets = 0;
    memcpy(m->ids, ids, (size_t)N * sizeof(int32_t));
    int gpt2 = c->arch == QR_ARCH_GPT2;

    embed_fwd(m, m->encoded, ids, m->pos, N);
    const float *x = m->encoded;
    for (int l = 0; l < c->n_layer; l++) {
        qr_layer *L = &m->layers[l];
        qr_layer_acts *a = &m->lacts[l];
        qr_linear *lin = &m->lins[l * m->n_lin_per_layer];
        norm_fwd(m, a->ln1, a->n1_mean, a->n1_rstd, x, L->i_n1w, L->i_n1b, N);
        if (gpt2) {
            LINB(&lin[0], m->scr_qkv, a->ln1, N, 1);
            split_qkv(a->q, a->k, a->v, m->scr_qkv, N, C);
        } else {
            LINB(&lin[0], a->q, a->ln1, N, 1);
            LINB(&lin[1], a->k, a->ln1, N, 1);
            LINB(&lin[2], a->v, a->ln1, N, 1);
            qr_rope_forward(a->q, m->pos, N, c->n_head, c->head_dim, c->rope_theta);
            qr_rope_forward(a->k, m->pos, N, c->n_kv_head, c->head_dim, c->rope_theta);
        }
        qr_attention_forward(a->atty, a->att, a->q, a->k, a->v, B, T, c->n_head, c->n_kv_head, c->head_dim);
        LINB(&lin[gpt2 ? 1 : 3], m->scr_proj, a->atty, N, 1);
        qr_residual_forward(a->res2, x, m->scr_proj, (int64_t)N * C);
        norm_fwd(m, a->ln2, a->n2_mean, a->n2_rstd, a->res2, L->i_n2w, L->i_n2b, N);
        if (gpt2) {
            LINB(&lin[2], a->fc1, a->ln2, N, 1);
            qr_gelu_forward(a->act, a->fc1, (int64_t)N * F);
            LINB(&lin[3], m->scr_proj, a->act, N, 1);
        } else {
            LINB(&lin[4], a->fc1, a->ln2, N, 1);
            LINB(&lin[5], a->fc2, a->ln2, N, 1);
            qr_swiglu_forward(a->act, a->fc1, a->fc2, (int64_t)N * F);
            LINB(&lin[6], m->scr_proj, a->act, N, 1);
        }
        qr_residual_forward(a->out, a->res2, m->scr_proj, (int64_t)N * C);
        x = a->out;
    }
    return x;
}

const float *qr_model_logits(const qr_model *m) { return m->logits_valid ? m->logits : NULL; }

const float *qr_model_hidden(const qr_model *m, int layer) {
    if (!m->act_mem || layer < 0 || layer >= m->cfg.n_layer) return NULL;
    return m->lacts[layer].out;
}

/* The backward pass from dlogits (N,V), which may be m->logits itself, and
 * dhidden (n_layer, N, C) or NULL: extra gradient of each block's output. */
static int backward_from(qr_model *m, float *dlogits, const float *dhidden) {
    const qr_model_config *c = &m->cfg;
    int B = m->act_B, T = m->act_T, N = B * T, C = c->n_embd, F = c->n_ff, QD = c->n_head * c->head_dim,
        KVD = c->n_kv_head * c->head_dim;
    int gpt2 = c->arch == QR_ARCH_GPT2;
    const float *xlast = c->n_layer > 0 ? m->lacts[c->n_layer - 1].out : m->encoded;
    if (m->n_rows < 0) {
        memset(m->dtmp, 0, (size_t)N * C * sizeof(float));
        qr_matmul_backward(m->dtmp, head_grad(m), NULL, dlogits, m->lnf, head_weight(m), N, C, c->n_vocab);
        memset(m->dx, 0, (size_t)N * C * sizeof(float));
        norm_bwd(m, m->dx, m->dtmp, xlast, m->lnf_mean, m->lnf_rstd, m->i_nfw, m->i_nfb, N);
    } else {
        /* logits of a subset of rows: the head and the final norm on those
         * rows only, scattered back; every other row's gradient is 0 */
        int R = m->n_rows;
        memset(m->dx, 0, (size_t)N * C * sizeof(float));
        if (R) {
            memset(m->dtmp, 0, (size_t)R * C * sizeof(float));
            qr_matmul_backward(m->dtmp, head_grad(m), NULL, dlogits, m->lnf, head_weight(m), R, C, c->n_vocab);
            memset(m->rows_dx, 0, (size_t)R * C * sizeof(float));
            norm_bwd(m, m->rows_dx, m->dtmp, m->rows_x, m->lnf_mean, m->lnf_rstd, m->i_nfw, m->i_nfb, R);
            for (int i = 0; i < R; i++)
                memcpy(m->dx + (size_t)m->rows[i] * C, m->rows_dx + (size_t)i * C, (size_t)C * sizeof(float));
        }
    }

    for (int l = c->n_layer - 1; l >= 0; l--) {
        qr_layer *L = &m->layers[l];
        qr_layer_acts *a = &m->lacts[l];
        qr_linear *lin = &m->lins[l * m->n_lin_per_layer];
        const float *x = l == 0 ? m->encoded : m->lacts[l - 1].out;
        /* dx is d(out) from above; a loss on this block's output adds its own */
        if (dhidden) qr_residual_forward(m->dx, m->dx, dhidden + (size_t)l * N * C, (int64_t)N * C);
        /* MLP: dx is d(out) = d(res2) through the residual */
        memset(m->dF1, 0, (size_t)N * F * sizeof(float));
        qr_linear_backward(&lin[gpt2 ? 3 : 6], m->dF1, m->dx, a->act, N);
        memset(m->dtmp, 0, (size_t)N * C * sizeof(float));
        if (gpt2) {
            memset(m->dF2, 0, (size_t)N * F * sizeof(float));
            qr_gelu_backward(m->dF2, a->fc1, m->dF1, (int64_t)N * F);
            qr_linear_backward(&lin[2], m->dtmp, m->dF2, a->ln2, N);
        } else {
            memset(m->dF2, 0, (size_t)N * F * sizeof(float));
            memset(m->dF3, 0, (size_t)N * F * sizeof(float));
            qr_swiglu_backward(m->dF2, m->dF3, m->dF1, a->fc1, a->fc2, (int64_t)N * F);
            qr_linear_backward(&lin[4], m->dtmp, m->dF2, a->ln2, N);
            qr_linear_backward(&lin[5], m->dtmp, m->dF3, a->ln2, N);
        }
        norm_bwd(m, m->dx, m->dtmp, a->res2, a->n2_mean, a->n2_rstd, L->i_n2w, L->i_n2b, N);
        /* attention: dx is now d(res2) = d(x) through the residual */
        memset(m->datty, 0, (size_t)N * QD * sizeof(float));
        qr_linear_backward(&lin[gpt2 ? 1 : 3], m->datty, m->dx, a->atty, N);
        memset(m->dq, 0, (size_t)N * QD * sizeof(float));
        memset(m->dk, 0, (size_t)N * KVD * sizeof(float));
        memset(m->dv, 0, (size_t)N * KVD * sizeof(float));
        qr_attention_backward(m->dq, m->dk, m->dv, m->att_scratch, m->datty, a->att, a->q, a->k, a->v, B, T,
                              c->n_head, c->n_kv_head, c->head_dim);
        memset(m->dtmp, 0, (size_t)N * C * sizeof(float));
        if (gpt2) {
            join_qkv(m->dqkv, m->dq, m->dk, m->dv, N, C);
            qr_linear_backward(&lin[0], m->dtmp, m->dqkv, a->ln1, N);
        } else {
            qr_rope_backward(m->dq, m->pos, N, c->n_head, c->head_dim, c->rope_theta);
            qr_rope_backward(m->dk, m->pos, N, c->n_kv_head, c->head_dim, c->rope_theta);
            qr_linear_backward(&lin[0], m->dtmp, m->dq, a->ln1, N);
            qr_linear_backward(&lin[1], m->dtmp, m->dk, a->ln1, N);
            qr_linear_backward(&lin[2], m->dtmp, m->dv, a->ln1, N);
        }
        norm_bwd(m, m->dx, m->dtmp, x, a->n1_mean, a->n1_rstd, L->i_n1w, L->i_n1b, N);
    }
    float *dwte = G(m, m->i_wte);
    if (dwte) qr_embedding_backward(dwte, m->dx, m->ids, N, C);
    if (gpt2) {
        float *dwpe = G(m, m->i_wpe);
        if (dwpe) qr_embedding_backward(dwpe, m->dx, m->pos, N, C);
    }
    m->has_targets = 0;
    return QR_OK;
}

int qr_model_backward(qr_model *m) {
    const qr_model_config *c = &m->cfg;
    if (!m->act_mem || !m->has_targets) return qr_err_set("model backward: no forward with targets to differentiate");
    if (!m->grads) qr_model_set_trainable(m, 0); /* nothing trainable: gradients still reach the adapters */
    int N = m->act_B * m->act_T;
    float *dlogits = m->logits; /* logits are dead after the loss: reuse */
    m->logits_valid = 0;
    memset(dlogits, 0, (size_t)N * c->n_vocab * sizeof(float));
    if (m->n_valid > 0)
        qr_crossentropy_backward(dlogits, m->probs, m->tgt, 1.0f / (float)m->n_valid, N, c->n_vocab);
    return backward_from(m, dlogits, NULL);
}

int qr_model_backward_logits(qr_model *m, const float *dlogits) { return qr_model_backward_hidden(m, dlogits, NULL); }

int qr_model_backward_hidden(qr_model *m, const float *dlogits, const float *dhidden) {
    if (!m->act_mem || !m->logits_valid) return qr_err_set("model backward: no forward to differentiate");
    if (!m->grads) qr_model_set_trainable(m, 0);
    const qr_model_config *c = &m->cfg;
    int N = qr_model_logit_rows(m);
    /* the forward's logits are not needed by the backward: take their room */
    memcpy(m->logits, dlogits, (size_t)N * c->n_vocab * sizeof(float));
    m->logits_valid = 0;
    return backward_from(m, m->logits, dhidden);
}

/* ------------------------------------------------------------------ */
/* inference with a KV cache                                           */

struct qr_kvcache {
    int n_layer, n_seq, max_len, kvd;
    int *len;
    float *k, *v; /* (L, n_seq, max_len, KVD) */
};

qr_kvcache *qr_kvcache_new(const qr_model *m, int n_seq, int max_len) {
    const qr_model_config *c = &m->cfg;
    if (n_seq <= 0 || max_len <= 0) {
        qr_err_set("kv cache: %d sequences x %d tokens: expected positive sizes", n_seq, max_len);
        return NULL;
    }
    if (c->arch == QR_ARCH_GPT2 && max_len > c->n_ctx) max_len = c->n_ctx;
    qr_kvcache *kv = qr_xcalloc(1, sizeof *kv);
    kv->n_layer = c->n_layer;
    kv->n_seq = n_seq;
    kv->max_len = max_len;
    kv->kvd = c->n_kv_head * c->head_dim;
    kv->len = qr_xcalloc((size_t)n_seq, sizeof(int));
    size_t n = (size_t)c->n_layer * n_seq * max_len * kv->kvd;
    kv->k = qr_xmalloc(n * sizeof(float));
    kv->v = qr_xmalloc(n * sizeof(float));
    return kv;
}

void qr_kvcache_free(qr_kvcache *kv) {
    if (!kv) return;
    free(kv->len);
    free(kv->k);
    free(kv->v);
    free(kv);
}

void qr_kvcache_clear(qr_kvcache *kv, int seq) {
    if (seq < 0) {
        memset(kv->len, 0, (size_t)kv->n_seq * sizeof(int));
    } else if (seq < kv->n_seq) {
        kv->len[seq] = 0;
    }
}
int qr_kvcache_len(const qr_kvcache *kv, int seq) { return seq >= 0 && seq < kv->n_seq ? kv->len[seq] : -1; }
int qr_kvcache_max_len(const qr_kvcache *kv) { return kv->max_len; }

static float *kv_at(const qr_kvcache *kv, float *base, int l, int s, int p) {
    return base + (((size_t)l * kv->n_seq + s) * kv->max_len + p) * kv->kvd;
}

int qr_kvcache_copy(qr_kvcache *dst, int dst_seq, const qr_kvcache *src, int src_seq, int len) {
    if (dst->n_layer != src->n_layer || dst->kvd != src->kvd)
        return qr_err_set("kv cache copy: caches of different models");
    if (dst_seq < 0 || dst_seq >= dst->n_seq || src_seq < 0 || src_seq >= src->n_seq || len < 0 ||
        len > src->len[src_seq] || len > dst->max_len)
        return qr_err_set("kv cache copy: sequence %d (%d tokens) -> %d: %d tokens out of range", src_seq,
                          src->len[src_seq], dst_seq, len);
    for (int l = 0; l < src->n_layer; l++) {
        size_t bytes = (size_t)len * src->kvd * sizeof(float);
        memcpy(kv_at(dst, dst->k, l, dst_seq, 0), kv_at(src, src->k, l, src_seq, 0), bytes);
        memcpy(kv_at(dst, dst->v, l, dst_seq, 0), kv_at(src, src->v, l, src_seq, 0), bytes);
    }
    dst->len[dst_seq] = len;
    return QR_OK;
}

/* Scratch for n rows of inference, grown on demand. */
static void alloc_inf(qr_model *m, int n, int n_want) {
    const qr_model_config *c = &m->cfg;
    int64_t C = c->n_embd, F = c->n_ff, QD = (int64_t)c->n_head * c->head_dim,
            KVD = (int64_t)c->n_kv_head * c->head_dim;
    if (n <= m->inf_cap) return;
    free(m->inf_mem);
    int64_t need = n * (C /*x*/ + C /*ln*/ + 2 /*mean,rstd*/ + 3 * C /*qkv*/ + QD + 2 * KVD + QD /*atty*/ + C /*proj*/ +
                        3 * F /*fc1 fc2 act*/ + 2 /*pos, meta*/);
    m->inf_mem = qr_xmalloc((size_t)need * sizeof(float));
    float *p = m->inf_mem;
#define TAKE(k) (p += (k), p - (k))
    m->ix = TAKE(n * C);
    m->iln = TAKE(n * C);
    m->imean = TAKE(n);
    m->irstd = TAKE(n);
    m->iqkv = TAKE(n * 3 * C);
    m->iq = TAKE(n * QD);
    m->ik = TAKE(n * KVD);
    m->iv = TAKE(n * KVD);
    m->iatty = TAKE(n * QD);
    m->iproj = TAKE(n * C);
    m->ifc1 = TAKE(n * F);
    m->ifc2 = TAKE(n * F);
    m->iact = TAKE(n * F);
    m->ipos = (int32_t *)TAKE(n);
    m->iidx = (int32_t *)TAKE(n);
#undef TAKE
    m->inf_cap = n;
    (void)n_want;
}

/* Attention of the rows [r0, r0+len) of one sequence s, at positions
 * p0..p0+len-1, over the cache's positions [0, p0+len). */
static void cached_attention(qr_model *m, const qr_kvcache *kv, int l, int s, int r0, int len, int p0) {
    const qr_model_config *c = &m->cfg;
    int NH = c->n_head, HD = c->head_dim, QD = NH * HD, KVD = kv->kvd, rep = NH / c->n_kv_head;
    int Lk = p0 + len;
    const float *K = kv_at(kv, kv->k, l, s, 0), *Vc = kv_at(kv, kv->v, l, s, 0);
    float scale = 1.0f / sqrtf((float)HD);
    if (len >= 8) {
        /* prefill: sgemm per head */
        size_t need = (size_t)len * Lk;
        if (need > m->att_cap) {
            free(m->att_buf);
            m->att_buf = qr_xmalloc(need * sizeof(float));
            m->att_cap = need;
        }
        float *S = m->att_buf;
        for (int h = 0; h < NH; h++) {
            int g = h / rep;
            const float *Q = m->iq + (size_t)r0 * QD + h * HD;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, Lk, HD, scale, Q, QD, K + g * HD, KVD, 0.0f, S,
                        Lk);
#pragma omp parallel for
            for (int i = 0; i < len; i++) {
                float *row = S + (size_t)i * Lk;
                int lim = p0 + i + 1; /* causal: keys [0, p0+i] */
                float mx = -INFINITY;
                for (int j = 0; j < lim; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
                for (int j = 0; j < lim; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j < lim; j++) row[j] *= inv;
                for (int j = lim; j < Lk; j++) row[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, HD, Lk, 1.0f, S, Lk, Vc + g * HD, KVD, 0.0f,
                        m->iatty + (size_t)r0 * QD + h * HD, QD);
        }
        return;
    }
    /* decode: few rows, plain loops across heads */
#pragma omp parallel for collapse(2)
    for (int i = 0; i < len; i++) {
        for (int h = 0; h < NH; h++) {
            int g = h / rep, lim = p0 + i + 1;
            const float *q = m->iq + (size_t)(r0 + i) * QD + h * HD;
            float *o = m->iatty + (size_t)(r0 + i) * QD + h * HD;
            float sbuf[1024];
            float *sc = lim <= 1024 ? sbuf : malloc((size_t)lim * sizeof(float));
            float mx = -INFINITY;
            for (int j = 0; j < lim; j++) {
                const float *k = K + (size_t)j * KVD + g * HD;
                float d = 0.0f;
                for (int e = 0; e < HD; e++) d += q[e] * k[e];
                sc[j] = d * scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            float sum = 0.0f;
            for (int j = 0; j < lim; j++) {
                sc[j] = expf(sc[j] - mx);
                sum += sc[j];
            }
            float inv = 1.0f / sum;
            for (int e = 0; e < HD; e++) o[e] = 0.0f;
            for (int j = 0; j < lim; j++) {
                const float *v = Vc + (size_t)j * KVD + g * HD;
                float w = sc[j] * inv;
                for (int e = 0; e < HD; e++) o[e] += w * v[e];
            }
            if (sc != sbuf) free(sc);
        }
    }
}

int qr_model_decode(qr_model *m, qr_kvcache *kv, const int32_t *tokens, const int32_t *seq, int n,
                    const uint8_t *want, float *logits) {
    const qr_model_config *c = &m->cfg;
    if (n <= 0) return QR_OK;
    int C = c->n_embd, F = c->n_ff, QD = c->n_head * c->head_dim, KVD = kv->kvd;
    int gpt2 = c->arch == QR_ARCH_GPT2;
    alloc_inf(m, n, n);
    /* positions, validated before anything is written to the cache */
    for (int i = 0; i < n; i++) {
        if (seq[i] < 0 || seq[i] >= kv->n_seq)
            return qr_err_set("model decode: row %d: sequence %d outside the cache's [0, %d)", i, seq[i], kv->n_seq);
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return qr_err_set("model decode: row %d: token id %d outside the vocabulary [0, %d)", i, tokens[i],
                              c->n_vocab);
        if (i > 0 && seq[i] != seq[i - 1])
            for (int j = 0; j < i - 1; j++)
                if (seq[j] == seq[i])
                    return qr_err_set("model decode: the rows of sequence %d are not contiguous", seq[i]);
        m->ipos[i] = (i > 0 && seq[i] == seq[i - 1]) ? m->ipos[i - 1] + 1 : kv->len[seq[i]];
        if (m->ipos[i] >= kv->max_len)
            return qr_err_set("model decode: sequence %d reaches position %d, beyond the cache's %d tokens%s", seq[i],
                              m->ipos[i], kv->max_len, gpt2 ? " (GPT-2's context limit)" : "");
    }
    embed_fwd(m, m->ix, tokens, m->ipos, n);
    for (int l = 0; l < c->n_layer; l++) {
        qr_layer *L = &m->layers[l];
        qr_linear *lin = &m->lins[l * m->n_lin_per_layer];
        norm_fwd(m, m->iln, m->imean, m->irstd, m->ix, L->i_n1w, L->i_n1b, n);
        if (gpt2) {
            LIN(&lin[0], m->iqkv, m->iln, n, 0);
            split_qkv(m->iq, m->ik, m->iv, m->iqkv, n, C);
        } else {
            LIN(&lin[0], m->iq, m->iln, n, 0);
            LIN(&lin[1], m->ik, m->iln, n, 0);
            LIN(&lin[2], m->iv, m->iln, n, 0);
            qr_rope_forward(m->iq, m->ipos, n, c->n_head, c->head_dim, c->rope_theta);
            qr_rope_forward(m->ik, m->ipos, n, c->n_kv_head, c->head_dim, c->rope_theta);
        }
        for (int i = 0; i < n; i++) {
            memcpy(kv_at(kv, kv->k, l, seq[i], m->ipos[i]), m->ik + (size_t)i * KVD, (size_t)KVD * sizeof(float));
            memcpy(kv_at(kv, kv->v, l, seq[i], m->ipos[i]), m->iv + (size_t)i * KVD, (size_t)KVD * sizeof(float));
        }
        /* attention per run of rows of the same sequence */
        for (int r0 = 0; r0 < n;) {
            int r1 = r0 + 1;
            while (r1 < n && seq[r1] == seq[r0]) r1++;
            cached_attention(m, kv, l, seq[r0], r0, r1 - r0, m->ipos[r0]);
            r0 = r1;
        }
        LIN(&lin[gpt2 ? 1 : 3], m->iproj, m->iatty, n, 0);
        qr_residual_forward(m->ix, m->ix, m->iproj, (int64_t)n * C);
        norm_fwd(m, m->iln, m->imean, m->irstd, m->ix, L->i_n2w, L->i_n2b, n);
        if (gpt2) {
            LIN(&lin[2], m->ifc1, m->iln, n, 0);
            qr_gelu_forward(m->iact, m->ifc1, (int64_t)n * F);
            LIN(&lin[3], m->iproj, m->iact, n, 0);
        } else {
            LIN(&lin[4], m->ifc1, m->iln, n, 0);
            LIN(&lin[5], m->ifc2, m->iln, n, 0);
            qr_swiglu_forward(m->iact, m->ifc1, m->ifc2, (int64_t)n * F);
            LIN(&lin[6], m->iproj, m->iact, n, 0);
        }
        qr_residual_forward(m->ix, m->ix, m->iproj, (int64_t)n * C);
    }
    (void)QD;
    for (int i = 0; i < n; i++)
        if (m->ipos[i] + 1 > kv->len[seq[i]]) kv->len[seq[i]] = m->ipos[i] + 1;
    /* final norm and logits only for the rows asked for */
    int nw = 0;
    for (int i = 0; i < n; i++) {
        if (want && !want[i]) continue;
        if (nw != i) memcpy(m->ix + (size_t)nw * C, m->ix + (size_t)i * C, (size_t)C * sizeof(float));
        nw++;
    }
    if (nw == 0) return QR_OK;
    norm_fwd(m, m->iln, m->imean, m->irstd, m->ix, m->i_nfw, m->i_nfb, nw);
    qr_matmul_forward(logits, m->iln, head_weight(m), NULL, nw, C, c->n_vocab);
    return QR_OK;
}
