/* linear.c - the quantized linear layer with a LoRA bank (see linear.h). */
#include "linear.h"
#include "ops/ops.h"
#include "plugin.h"

#include "ops/gemm.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qr_linear_scratch_reserve(qr_linear_scratch *s, int64_t n_x, int64_t n_h) {
    if (n_x <= s->n_x && n_h <= s->n_h) return;
    if (n_x < s->n_x) n_x = s->n_x;
    if (n_h < s->n_h) n_h = s->n_h;
    qr_arena_free(&s->arena);
    qr_arena_add(&s->arena, &s->x, n_x, sizeof(float));
    qr_arena_add(&s->arena, &s->h, n_h, sizeof(float));
    qr_arena_add(&s->arena, &s->dx, n_x, sizeof(float));
    qr_arena_alloc(&s->arena);
    s->n_x = n_x;
    s->n_h = n_h;
}

void qr_linear_scratch_free(qr_linear_scratch *s) {
    if (!s) return;
    qr_arena_free(&s->arena);
    s->n_x = s->n_h = 0;
    free(s->wt);
    s->wt = NULL;
    s->n_wt = 0;
}

/* The scratch for N rows of this layer (re-carved only if too small). */
static qr_linear_scratch *scratch(qr_linear *l, int N) {
    int64_t r = l->active >= 0 && l->active < l->n_lora ? l->rank : 0;
    qr_linear_scratch_reserve(l->scr, (int64_t)N * l->in, (int64_t)N * r);
    return l->scr;
}

static float *grow(float **p, int64_t *cap, int64_t n) {
    if (n > *cap) {
        free(*p);
        *p = qr_xmalloc((size_t)n * sizeof(float));
        *cap = n;
    }
    return *p;
}

int qr_linear_weight_group(const qr_linear *l) {
    int g = l->wgroup > 0 ? l->wgroup : l->wgroup_default;
    return g >= 2 && g < l->in ? g : 0;
}

/* x (rows, cols) is, with groups of g columns, nf = cols / g full groups
 * and a tail of t = cols % g columns per row. Without a tail the groups are
 * the rows of the (rows * nf, g) view of x itself: one call, no copy, and
 * the same arithmetic per group as a call per group. With one, the full
 * groups of every row are packed into tmp as a (rows * nf, g) matrix
 * followed by the tails as a (rows, t) matrix: two calls (each threaded by
 * the plugin as one matrix), then unpacked into out. */
int qr_linear_fake_grouped(struct qr_instance *q, float *out, const float *x, int64_t rows, int64_t cols,
                           int bits, int group, float *tmp) {
    if (group < 0 || group == 1)
        return qr_err_set("quantize: weight group %d: expected 0 (one scale per row) or a group size >= 2", group);
    if (group == 0 || group >= cols || bits == 32) return qr_quantizer_fake(q, out, x, rows, cols, bits, NULL);
    const int64_t nf = cols / group, t = cols % group, nm = nf * group;
    if (t == 0) {
        if (qr_quantizer_fake(q, out, x, rows * nf, group, bits, NULL) != QR_OK)
            return qr_err_prefix("in groups of %d columns (the quantizer's row k is group k %% %lld of row k / %lld)",
                                 group, (long long)nf, (long long)nf);
        return QR_OK;
    }
    float *buf = tmp ? tmp : qr_xmalloc((size_t)(rows * cols) * sizeof *buf), *tail = buf + rows * nm;
    for (int64_t r = 0; r < rows; r++) {
        memcpy(buf + r * nm, x + r * cols, (size_t)nm * sizeof *buf);
        memcpy(tail + r * t, x + r * cols + nm, (size_t)t * sizeof *buf);
    }
    int rc = QR_OK;
    if (qr_quantizer_fake(q, buf, buf, rows * nf, group, bits, NULL) != QR_OK)
        rc = qr_err_prefix("in groups of %d columns and a tail of %lld (the quantizer's row k is group k %% %lld "
                           "of row k / %lld)",
                           group, (long long)t, (long long)nf, (long long)nf);
    else if (qr_quantizer_fake(q, tail, tail, rows, t, bits, NULL) != QR_OK)
        rc = qr_err_prefix("in groups of %d columns and a tail of %lld (the quantizer's row k is the tail of row k)",
                           group, (long long)t);
    if (rc == QR_OK)
        for (int64_t r = 0; r < rows; r++) {
            memcpy(out + r * cols, buf + r * nm, (size_t)nm * sizeof *buf);
            memcpy(out + r * cols + nm, tail + r * t, (size_t)t * sizeof *buf);
        }
    if (!tmp) free(buf);
    return rc;
}

/* The same groups as qr_linear_fake_grouped; with a tail, two calls per row
 * (its full groups as an (nf, g) matrix, its tail as a (1, t) one) instead
 * of copies, since nothing in the engine's hot path calls this. */
void qr_linear_backward_grouped(struct qr_instance *q, float *dx, const float *dout, const float *x, int64_t rows,
                                int64_t cols, int bits, int group) {
    if (group <= 1 || group >= cols || bits == 32) {
        qr_quantizer_backward(q, dx, dout, x, rows, cols, bits);
        return;
    }
    const int64_t nf = cols / group, t = cols % group, nm = nf * group;
    if (t == 0) {
        qr_quantizer_backward(q, dx, dout, x, rows * nf, group, bits);
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t o = r * cols;
        qr_quantizer_backward(q, dx + o, dout + o, x + o, nf, group, bits);
        qr_quantizer_backward(q, dx + o + nm, dout + o + nm, x + o + nm, 1, t, bits);
    }
}

/* Qw(W) at the current weight bit-width and group (W itself when not
 * quantized), or NULL + message (naming the layer) when the quantizer
 * refuses W. A frozen W is quantized once per bit-width (again when the
 * group changed since); refresh: quantize again into the same buffer (a
 * trainable W may have changed since the last forward). */
static const float *weight_used(qr_linear *l, int refresh) {
    if (!l->wq || l->wbits >= 32) return l->w;
    const int g = qr_linear_weight_group(l);
    float **c = &l->wcache[l->wbits];
    if (*c && !refresh && l->wcache_group[l->wbits] == g) return *c;
    if (!*c) *c = qr_xmalloc((size_t)l->out * l->in * sizeof(float));
    float *tmp = NULL;
    if (g && l->in % g && l->scr) { /* a tail group: regroup in the model's scratch */
        int64_t n = (int64_t)l->out * l->in;
        tmp = grow(&l->scr->wt, &l->scr->n_wt, n);
    }
    if (qr_linear_fake_grouped(l->wq, *c, l->w, l->out, l->in, l->wbits, g, tmp) != QR_OK) {
        free(*c);
        *c = NULL;
        qr_err_prefix("linear %s: weight at %d bits", l->name, l->wbits); /* the group layout follows */
        return NULL;
    }
    l->wcache_group[l->wbits] = g;
    return *c;
}

int qr_linear_forward(qr_linear *l, float *out, const float *inp, int N, int save) {
    const float *x = inp;
    int64_t nx = (int64_t)N * l->in;
    qr_linear_scratch *scr = save ? NULL : scratch(l, N);
    if (l->aq && l->abits < 32) {
        float *xq = save ? grow(&l->xq, &l->cap_xq, nx) : scr->x;
        if (qr_quantizer_fake(l->aq, xq, inp, N, l->in, l->abits, NULL) != QR_OK)
            return qr_err_prefix("linear %s: input at %d bits", l->name, l->abits);
        x = xq;
    }
    const float *w = weight_used(l, l->dw != NULL);
    if (!w) return QR_ERR;
    qr_matmul_forward(out, x, w, l->b, N, l->in, l->out);
    if (l->active >= 0 && l->active < l->n_lora) {
        const qr_lora *a = &l->lora[l->active];
        int64_t nh = (int64_t)N * l->rank;
        float *h = save ? grow(&l->h, &l->cap_h, nh) : scr->h;
        qr_sgemm(QR_NOTRANS, QR_TRANS, N, l->rank, l->in, 1.0f, x, l->in, a->A, l->in, 0.0f,
                    h, l->rank);
        qr_sgemm(QR_NOTRANS, QR_TRANS, N, l->out, l->rank, l->lora_scale, h, l->rank, a->B,
                    l->rank, 1.0f, out, l->out);
    }
    if (save) l->saved_n = N;
    return QR_OK;
}

void qr_linear_backward(qr_linear *l, float *dinp, const float *dout, const float *inp, int N) {
    int quant_in = l->aq && l->abits < 32;
    const float *x = quant_in ? l->xq : inp;
    qr_linear_scratch *scr = scratch(l, N);
    /* the forward's Qw(W), cached by it: this fails only when W or its
     * quantizer changed in between (a programmer error) */
    const float *w = weight_used(l, 0);
    if (!w) {
        fprintf(stderr, "qr_linear_backward: %s\n", qr_err_msg());
        abort();
    }
    /* base weight and bias (straight-through Qw) */
    qr_matmul_backward(NULL, l->dw, l->db, dout, x, w, N, l->in, l->out);
    /* gradient w.r.t. the (quantized) input, before Qa's backward */
    float *dx = NULL;
    if (dinp) {
        dx = quant_in ? scr->dx : dinp;
        if (quant_in) memset(dx, 0, (size_t)N * l->in * sizeof(float));
        qr_matmul_backward(dx, NULL, NULL, dout, x, w, N, l->in, l->out);
    }
    if (l->active >= 0 && l->active < l->n_lora) {
        qr_lora *a = &l->lora[l->active];
        float s = l->lora_scale;
        /* out += s h B^T:  dB += s dout^T h ;  dh = s dout B */
        if (a->dB)
            qr_sgemm(QR_TRANS, QR_NOTRANS, l->out, l->rank, N, s, dout, l->out, l->h, l->rank,
                        1.0f, a->dB, l->rank);
        if (a->dA || dx) {
            float *dh = scr->h;
            qr_sgemm(QR_NOTRANS, QR_NOTRANS, N, l->rank, l->out, s, dout, l->out, a->B, l->rank,
                        0.0f, dh, l->rank);
            /* h = x A^T:  dA += dh^T x ;  dx += dh A */
            if (a->dA)
                qr_sgemm(QR_TRANS, QR_NOTRANS, l->rank, l->in, N, 1.0f, dh, l->rank, x, l->in,
                            1.0f, a->dA, l->in);
            if (dx)
                qr_sgemm(QR_NOTRANS, QR_NOTRANS, N, l->in, l->rank, 1.0f, dh, l->rank, a->A,
                            l->in, 1.0f, dx, l->in);
        }
    }
    if (dinp && quant_in) qr_quantizer_backward(l->aq, dinp, dx, inp, N, l->in, l->abits);
}

void qr_linear_invalidate(qr_linear *l) {
    for (int b = 0; b < 17; b++) {
        free(l->wcache[b]);
        l->wcache[b] = NULL;
    }
}

void qr_linear_release(qr_linear *l) {
    qr_linear_invalidate(l);
    free(l->xq);
    free(l->h);
    l->xq = l->h = NULL;
    l->cap_xq = l->cap_h = 0;
}
