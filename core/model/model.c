/* model.c - what every architecture shares: the parameter buffer, the
 * embeddings, the final norm and the head, the loop over blocks (whose
 * forward, backward and decode the architecture's descriptor gives, arch.h),
 * the training and inference arenas, and the KV cache. Loading from files
 * lives in io/model_load.c. */
#include "model.h"
#include "model_internal.h"
#include "ops/ops.h"

#include "ops/gemm.h"
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* parameters                                                          */

int qr_model_add_param(qr_model *m, int n_dims, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return qr_params_add(&m->par, name, n_dims, d0, d1);
}

void qr_model_add_linear(qr_model *m, int l, int slot, int in, int out, int bias) {
    char prefix[64];
    int i = l * m->n_lin_per_layer + slot;
    qr_linear *lin = &m->lins[i];
    memset(lin, 0, sizeof *lin);
    snprintf(prefix, sizeof prefix, m->arch->block_prefix, l);
    snprintf(lin->name, sizeof lin->name, "%s%s", prefix, m->arch->linear[slot].name);
    lin->in = in;
    lin->out = out;
    lin->wbits = lin->abits = 32; /* not quantized until a configuration says so */
    lin->active = -1;
    lin->scr = &m->lscr;
    m->lin_w[i] = qr_model_add_param(m, 2, out, in, "%s.weight", lin->name);
    m->lin_b[i] = bias ? qr_model_add_param(m, 1, out, 1, "%s.bias", lin->name) : -1;
}

/* Generations come from one process-wide counter, so that no two models
 * (nor one model before and after a change) share one. */
static _Atomic uint64_t weights_gen_counter;

void qr_model_weights_changed(qr_model *m) { m->weights_gen = ++weights_gen_counter; }
uint64_t qr_model_weights_gen(const qr_model *m) { return m->weights_gen; }

int qr_model_alloc(qr_model *m, int64_t file_elems) {
    const qr_model_config *c = &m->cfg;
    const qr_arch_desc *A = qr_arch_get(c->arch);
    int C = c->n_embd, F = c->n_ff;
    if (!A)
        return qr_err_set("%s: model config: architecture %d is not one of the known ones", m->path, (int)c->arch);
    if (c->n_layer <= 0 || C <= 0 || c->n_head <= 0 || c->n_kv_head <= 0 || c->head_dim <= 0 || F <= 0 ||
        c->n_vocab <= 0 || c->n_ctx <= 0 || c->n_head % c->n_kv_head != 0 || (c->head_dim & 1) ||
        (A->config_ok && !A->config_ok(c)))
        return qr_err_set("%s: model config: inconsistent sizes (layers %d, embd %d, heads %d/%d, head_dim %d, ff %d, "
                          "vocab %d, ctx %d; GPT-2 needs kv heads = heads and heads x head_dim = embd)",
                          m->path, c->n_layer, C, c->n_head, c->n_kv_head, c->head_dim, F, c->n_vocab, c->n_ctx);
    /* Sizes come from a header a corrupted file controls: before allocating
     * anything, check that they describe a model of about the file's size
     * (a missing tensor is named later, by the loader; a header asking for
     * more than twice the file's weights is refused here) and that the
     * buffer can be had. */
    double need = A->n_params(c);
    if (file_elems >= 0 && need > 2.0 * (double)file_elems)
        return qr_err_set("%s: model config (layers %d, embd %d, heads %d/%d, ff %d, vocab %d, ctx %d) needs %.4g "
                          "weights but the file's tensors hold only %lld",
                          m->path, c->n_layer, C, c->n_head, c->n_kv_head, F, c->n_vocab, c->n_ctx, need,
                          (long long)file_elems);
    if (need * sizeof(float) > (double)PTRDIFF_MAX / 2)
        return qr_err_set("%s: model config (layers %d, embd %d, ff %d, vocab %d) is implausible: %.4g weights", m->path,
                          c->n_layer, C, F, c->n_vocab, need);
    m->arch = A;
    qr_model_weights_changed(m);
    m->n_lin_per_layer = A->n_linear;
    int nl = c->n_layer * m->n_lin_per_layer;
    m->layers = qr_xcalloc((size_t)c->n_layer, sizeof *m->layers);
    m->lacts = qr_xcalloc((size_t)c->n_layer, sizeof *m->lacts);
    m->lins = qr_xcalloc((size_t)nl, sizeof *m->lins);
    m->lin_w = qr_xcalloc((size_t)nl, sizeof(int));
    m->lin_b = qr_xcalloc((size_t)nl, sizeof(int));
    m->i_wte = m->i_wpe = m->i_nfw = m->i_nfb = m->i_head = -1;
    for (int l = 0; l < c->n_layer; l++) m->layers[l] = (qr_layer){-1, -1, -1, -1};
    A->layout(m);
    if (qr_params_alloc(&m->par) != QR_OK)
        return qr_err_set("%s: out of memory for %lld weights (%.2f GiB)", m->path, (long long)m->par.n_total,
                          (double)m->par.n_total * sizeof(float) / (1 << 30));
    for (int i = 0; i < nl; i++) {
        if (m->lins[i].in > m->max_lin_in) m->max_lin_in = m->lins[i].in;
        m->lins[i].w = m->par.p[m->lin_w[i]].data;
        m->lins[i].b = m->lin_b[i] >= 0 ? m->par.p[m->lin_b[i]].data : NULL;
    }
    return QR_OK;
}

#define P qr_model_p
#define G qr_model_g

static void sync_linear_grads(qr_model *m) {
    int nl = m->cfg.n_layer * m->n_lin_per_layer;
    for (int i = 0; i < nl; i++) {
        m->lins[i].dw = G(m, m->lin_w[i]);
        m->lins[i].db = G(m, m->lin_b[i]);
    }
}

void qr_model_set_trainable(qr_model *m, int on) {
    if (on) qr_params_alloc_grads(&m->par);
    for (int i = 0; i < m->par.n; i++) m->par.p[i].trainable = on;
    sync_linear_grads(m);
}

void qr_model_zero_grad(qr_model *m) {
    if (m->par.grad) memset(m->par.grad, 0, (size_t)m->par.n_total * sizeof(float));
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
    for (int i = 0; i < m->par.n; i++) {
        qr_param *p = &m->par.p[i];
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
    qr_arena_free(&m->act);
    m->act_B = m->act_T = 0;
}

void qr_model_free(qr_model *m) {
    if (!m) return;
    free_train(m);
    qr_arena_free(&m->inf);
    qr_linear_scratch_free(&m->lscr);
    free(m->att_buf);
    free(m->rows);
    free(m->rows_x);
    free(m->rows_dx);
    qr_params_free(&m->par);
    free(m->layers);
    free(m->lacts);
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
const char *qr_model_arch_name(const qr_model *m) { return m->arch->name; }
qr_tokenizer *qr_model_tokenizer(const qr_model *m) { return m->tok; }
int qr_model_n_params(const qr_model *m) { return m->par.n; }
qr_param *qr_model_param(qr_model *m, int i) { return i >= 0 && i < m->par.n ? &m->par.p[i] : NULL; }
qr_param *qr_model_find_param(qr_model *m, const char *name) { return qr_params_find(&m->par, name); }
int64_t qr_model_n_weights(const qr_model *m) { return m->par.n_total; }
int qr_model_n_linears(const qr_model *m) { return m->cfg.n_layer * m->n_lin_per_layer; }
qr_linear *qr_model_linear(qr_model *m, int i) {
    return i >= 0 && i < qr_model_n_linears(m) ? &m->lins[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* training forward / backward                                         */

/* The linears' scratch for N rows at the bank's rank: reserved before a
 * forward, a backward or a decode, so that their layers allocate nothing. */
static void reserve_linear_scratch(qr_model *m, int64_t N) {
    qr_linear_scratch_reserve(&m->lscr, N * m->max_lin_in, m->lora_n_slots ? N * m->lora_rank : 0);
}

/* The training arena for (B,T): the size table (what the model keeps, then
 * what the architecture's blocks keep), one allocation. */
static void alloc_train(qr_model *m, int B, int T) {
    if (m->act_B == B && m->act_T == T) return;
    free_train(m);
    const qr_model_config *c = &m->cfg;
    int64_t N = (int64_t)B * T, C = c->n_embd, V = c->n_vocab;
    qr_arena *a = &m->act;
    m->arch->train_arena(m, a, B, T);
    qr_arena_add(a, &m->encoded, N * C, sizeof(float));
    qr_arena_add(a, &m->lnf, N * C, sizeof(float));
    qr_arena_add(a, &m->lnf_mean, N, sizeof(float));
    qr_arena_add(a, &m->lnf_rstd, N, sizeof(float));
    qr_arena_add(a, &m->logits, N * V, sizeof(float));
    qr_arena_add(a, &m->probs, N * V, sizeof(float));
    qr_arena_add(a, &m->losses, N, sizeof(float));
    qr_arena_add(a, &m->dx, N * C, sizeof(float));
    qr_arena_add(a, &m->dtmp, N * C, sizeof(float));
    qr_arena_add(a, &m->pos, N, sizeof(int32_t));
    qr_arena_add(a, &m->tgt, N, sizeof(int32_t));
    qr_arena_add(a, &m->ids, N, sizeof(int32_t));
    qr_arena_alloc(a);
    m->act_B = B;
    m->act_T = T;
    for (int64_t i = 0; i < N; i++) m->pos[i] = (int32_t)(i % T);
}

void qr_model_norm_forward(qr_model *m, float *out, float *mean, float *rstd, const float *inp, int iw, int ib,
                           int N) {
    const qr_model_config *c = &m->cfg;
    if (m->arch->norm == QR_NORM_LAYER)
        qr_layernorm_forward(out, mean, rstd, inp, P(m, iw), P(m, ib), N, c->n_embd, c->norm_eps);
    else
        qr_rmsnorm_forward(out, rstd, inp, P(m, iw), N, c->n_embd, c->norm_eps);
}

void qr_model_norm_backward(qr_model *m, float *dinp, const float *dout, const float *inp, const float *mean,
                            const float *rstd, int iw, int ib, int N) {
    const qr_model_config *c = &m->cfg;
    if (m->arch->norm == QR_NORM_LAYER)
        qr_layernorm_backward(dinp, G(m, iw), G(m, ib), dout, inp, P(m, iw), mean, rstd, N, c->n_embd);
    else
        qr_rmsnorm_backward(dinp, G(m, iw), dout, inp, P(m, iw), rstd, N, c->n_embd);
}
#define norm_fwd qr_model_norm_forward
#define norm_bwd qr_model_norm_backward

/* Token embeddings plus, with a position table (wpe), position embeddings. */
static void embed_fwd(qr_model *m, float *out, const int32_t *ids, const int32_t *pos, int N) {
    const qr_model_config *c = &m->cfg;
    qr_embedding_forward(out, ids, P(m, m->i_wte), N, c->n_embd);
    if (m->i_wpe >= 0) {
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

static const float *head_weight(qr_model *m) { return P(m, m->i_head >= 0 ? m->i_head : m->i_wte); }
static float *head_grad(qr_model *m) { return G(m, m->i_head >= 0 ? m->i_head : m->i_wte); }

/* The blocks of a training forward from block `first`: embeddings then
 * every block (first 0, x_first unused), or x_first (B*T, C) as block
 * first's input then blocks first..n_layer-1 (first == n_layer: no block);
 * returns the last block's output (N, C), or NULL on error. */
static const float *forward_blocks(qr_model *m, const int32_t *ids, int B, int T, int first, const float *x_first);

int qr_model_forward(qr_model *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss) {
    const qr_model_config *c = &m->cfg;
    const float *x = forward_blocks(m, ids, B, T, 0, NULL);
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
    return qr_model_forward_rows_from(m, ids, B, T, rows, n_rows, 0, NULL);
}

int qr_model_forward_rows_from(qr_model *m, const int32_t *ids, int B, int T, const int32_t *rows, int n_rows,
                               int first, const float *x_first) {
    const qr_model_config *c = &m->cfg;
    if (first < 0 || first > c->n_layer || (first > 0 && !x_first))
        return qr_err_set("model forward: start at block %d%s: expected 0..%d (the number of blocks), with the "
                          "block's input for any but 0",
                          first, first > 0 && !x_first ? " without its input" : "", c->n_layer);
    if (B > 0 && T > 0 && (n_rows < 0 || n_rows > B * T))
        return qr_err_set("model forward: %d logit rows of a %d x %d batch: expected 0..%d", n_rows, B, T, B * T);
    for (int i = 0; i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= B * T || (i && rows[i] <= rows[i - 1]))
            return qr_err_set("model forward: logit row %d is %d: expected increasing rows in [0, %d)", i, rows[i],
                              B * T);
    const float *x = forward_blocks(m, ids, B, T, first, x_first);
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

/* The input of block l (0..n_layer; n_layer: the final norm's), where a
 * training forward keeps it: the embeddings for block 0, else the output
 * of block l - 1. */
static float *block_input(const qr_model *m, int l) { return l == 0 ? m->encoded : m->lacts[l - 1].out; }

static const float *forward_blocks(qr_model *m, const int32_t *ids, int B, int T, int first, const float *x_first) {
    const qr_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0) {
        qr_err_set("model forward: batch %d x %d: expected positive sizes", B, T);
        return NULL;
    }
    if (T > c->n_ctx) {
        qr_err_set("model forward: sequence length %d exceeds the model's context of %d", T, c->n_ctx);
        return NULL;
    }
    int N = B * T;
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab) {
            qr_err_set("model forward: token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                       c->n_vocab);
            return NULL;
        }
    alloc_train(m, B, T);
    reserve_linear_scratch(m, N);
    m->logits_valid = 0;
    m->has_targets = 0;
    memcpy(m->ids, ids, (size_t)N * sizeof(int32_t));

    /* A later start copies its input to where a full forward leaves it:
     * the blocks then read the same buffer at the same place in the arena,
     * as the full forward's would (nothing can depend on where the input
     * lives), and qr_model_block_input(first) is that input. */
    m->first_block = first;
    if (first == 0)
        embed_fwd(m, m->encoded, ids, m->pos, N);
    else
        memcpy(block_input(m, first), x_first, (size_t)N * c->n_embd * sizeof(float));
    for (int l = first; l < c->n_layer; l++)
        if (m->arch->block_forward(m, l, block_input(m, l), B, T) != QR_OK) return NULL;
    return block_input(m, c->n_layer);
}

const float *qr_model_logits(const qr_model *m) { return m->logits_valid ? m->logits : NULL; }

const float *qr_model_hidden(const qr_model *m, int layer) {
    /* after a start at block f, blocks before f - 1 did not run */
    if (!m->act.mem || layer < m->first_block - 1 || layer < 0 || layer >= m->cfg.n_layer) return NULL;
    return m->lacts[layer].out;
}

const float *qr_model_block_input(const qr_model *m, int layer) {
    if (!m->act.mem || layer < m->first_block || layer > m->cfg.n_layer) return NULL;
    return block_input(m, layer);
}

/* A backward needs every block's saved activations: after a forward that
 * started at a later block (qr_model_forward_rows_from) those of the
 * blocks before it belong to an older forward. */
static int check_full_forward(const qr_model *m) {
    if (m->first_block > 0)
        return qr_err_set("model backward: the last forward started at block %d (qr_model_forward_rows_from), so "
                          "the activations saved for blocks 0..%d are stale: run a full forward "
                          "(qr_model_forward / qr_model_forward_rows) before a backward",
                          m->first_block, m->first_block - 1);
    return QR_OK;
}

/* The backward pass from dlogits (N,V), which may be m->logits itself, and
 * dhidden (n_layer, N, C) or NULL: extra gradient of each block's output. */
static int backward_from(qr_model *m, float *dlogits, const float *dhidden) {
    const qr_model_config *c = &m->cfg;
    int B = m->act_B, T = m->act_T, N = B * T, C = c->n_embd;
    const float *xlast = block_input(m, c->n_layer);
    reserve_linear_scratch(m, N);
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
        const float *x = block_input(m, l);
        /* dx is d(out) from above; a loss on this block's output adds its own */
        if (dhidden) qr_residual_forward(m->dx, m->dx, dhidden + (size_t)l * N * C, (int64_t)N * C);
        m->arch->block_backward(m, l, x, m->dx, B, T);
    }
    float *dwte = G(m, m->i_wte);
    if (dwte) qr_embedding_backward(dwte, m->dx, m->ids, N, C);
    float *dwpe = G(m, m->i_wpe);
    if (dwpe) qr_embedding_backward(dwpe, m->dx, m->pos, N, C);
    m->has_targets = 0;
    return QR_OK;
}

int qr_model_backward(qr_model *m) {
    const qr_model_config *c = &m->cfg;
    if (!m->act.mem || !m->has_targets) return qr_err_set("model backward: no forward with targets to differentiate");
    if (check_full_forward(m)) return QR_ERR;
    if (!m->par.grad) qr_model_set_trainable(m, 0); /* nothing trainable: gradients still reach the adapters */
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
    if (!m->act.mem || !m->logits_valid) return qr_err_set("model backward: no forward to differentiate");
    if (check_full_forward(m)) return QR_ERR;
    if (!m->par.grad) qr_model_set_trainable(m, 0);
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
    if (m->arch->learned_positions && max_len > c->n_ctx) max_len = c->n_ctx;
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

/* The inference arena for n rows, carved again only when n grows: what the
 * model keeps, then the architecture's block buffers. */
static void alloc_inf(qr_model *m, int n) {
    if (n <= m->inf_cap) return;
    int64_t C = m->cfg.n_embd;
    qr_arena *a = &m->inf;
    qr_arena_free(a);
    qr_arena_add(a, &m->ix, n * C, sizeof(float));
    qr_arena_add(a, &m->iln, n * C, sizeof(float));
    qr_arena_add(a, &m->imean, n, sizeof(float));
    qr_arena_add(a, &m->irstd, n, sizeof(float));
    qr_arena_add(a, &m->ipos, n, sizeof(int32_t));
    qr_arena_add(a, &m->iidx, n, sizeof(int32_t));
    m->arch->decode_arena(m, a, n);
    qr_arena_alloc(a);
    m->inf_cap = n;
}

/* Attention of the rows [r0, r0+len) of one sequence s, at positions
 * p0..p0+len-1, over the cache's positions [0, p0+len). */
static void cached_attention(qr_model *m, const qr_kvcache *kv, int l, int s, int r0, int len, int p0,
                             const float *iq, float *iatty) {
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
            const float *Q = iq + (size_t)r0 * QD + h * HD;
            qr_sgemm(QR_NOTRANS, QR_TRANS, len, Lk, HD, scale, Q, QD, K + g * HD, KVD, 0.0f, S,
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
            qr_sgemm(QR_NOTRANS, QR_NOTRANS, len, HD, Lk, 1.0f, S, Lk, Vc + g * HD, KVD, 0.0f,
                        iatty + (size_t)r0 * QD + h * HD, QD);
        }
        return;
    }
    /* decode: few rows, plain loops across heads */
#pragma omp parallel for collapse(2)
    for (int i = 0; i < len; i++) {
        for (int h = 0; h < NH; h++) {
            int g = h / rep, lim = p0 + i + 1;
            const float *q = iq + (size_t)(r0 + i) * QD + h * HD;
            float *o = iatty + (size_t)(r0 + i) * QD + h * HD;
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

void qr_model_attention_backward(qr_model *m, int l, qr_linear *o, const float *dx, int B, int T) {
    const qr_model_config *c = &m->cfg;
    int N = B * T, C = c->n_embd, QD = c->n_head * c->head_dim, KVD = c->n_kv_head * c->head_dim;
    qr_layer_acts *a = &m->lacts[l];
    qr_block_scratch *t = &m->ts;
    memset(t->datty, 0, (size_t)N * QD * sizeof(float));
    qr_linear_backward(o, t->datty, dx, a->atty, N);
    memset(t->dq, 0, (size_t)N * QD * sizeof(float));
    memset(t->dk, 0, (size_t)N * KVD * sizeof(float));
    memset(t->dv, 0, (size_t)N * KVD * sizeof(float));
    qr_attention_backward(t->dq, t->dk, t->dv, t->att, t->datty, a->att, a->q, a->k, a->v, B, T, c->n_head,
                          c->n_kv_head, c->head_dim);
    memset(m->dtmp, 0, (size_t)N * C * sizeof(float));
}

void qr_model_cached_attention(qr_model *m, qr_kvcache *kv, int l, const int32_t *seq, int n, const float *q,
                               const float *k, const float *v, float *atty) {
    int KVD = kv->kvd;
    for (int i = 0; i < n; i++) {
        memcpy(kv_at(kv, kv->k, l, seq[i], m->ipos[i]), k + (size_t)i * KVD, (size_t)KVD * sizeof(float));
        memcpy(kv_at(kv, kv->v, l, seq[i], m->ipos[i]), v + (size_t)i * KVD, (size_t)KVD * sizeof(float));
    }
    /* attention per run of rows of the same sequence */
    for (int r0 = 0; r0 < n;) {
        int r1 = r0 + 1;
        while (r1 < n && seq[r1] == seq[r0]) r1++;
        cached_attention(m, kv, l, seq[r0], r0, r1 - r0, m->ipos[r0], q, atty);
        r0 = r1;
    }
}

int qr_model_decode(qr_model *m, qr_kvcache *kv, const int32_t *tokens, const int32_t *seq, int n,
                    const uint8_t *want, float *logits) {
    const qr_model_config *c = &m->cfg;
    if (n <= 0) return QR_OK;
    int C = c->n_embd;
    alloc_inf(m, n);
    reserve_linear_scratch(m, n);
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
                              m->ipos[i], kv->max_len, m->arch->ctx_note ? m->arch->ctx_note : "");
    }
    embed_fwd(m, m->ix, tokens, m->ipos, n);
    for (int l = 0; l < c->n_layer; l++)
        if (m->arch->block_decode(m, kv, l, seq, n) != QR_OK) return QR_ERR;
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
