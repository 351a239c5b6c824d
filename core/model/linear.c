/* linear.c - the quantized linear layer with a LoRA bank (see linear.h). */
#include "linear.h"
#include "ops/ops.h"
#include "plugin.h"

#include <cblas.h>
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

/* Qw(W) at the current weight bit-width (W itself when not quantized), or
 * NULL + message (naming the layer) when the quantizer refuses W. A frozen W
 * is quantized once per bit-width; refresh: quantize again into the same
 * buffer (a trainable W may have changed since the last forward). */
static const float *weight_used(qr_linear *l, int refresh) {
    if (!l->wq || l->wbits >= 32) return l->w;
    float **c = &l->wcache[l->wbits];
    if (*c && !refresh) return *c;
    if (!*c) *c = qr_xmalloc((size_t)l->out * l->in * sizeof(float));
    if (qr_quantizer_fake(l->wq, *c, l->w, l->out, l->in, l->wbits, NULL) != QR_OK) {
        free(*c);
        *c = NULL;
        qr_err_prefix("linear %s: weight at %d bits", l->name, l->wbits);
        return NULL;
    }
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, l->rank, l->in, 1.0f, x, l->in, a->A, l->in, 0.0f,
                    h, l->rank);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, l->out, l->rank, l->lora_scale, h, l->rank, a->B,
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
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out, l->rank, N, s, dout, l->out, l->h, l->rank,
                        1.0f, a->dB, l->rank);
        if (a->dA || dx) {
            float *dh = scr->h;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, l->rank, l->out, s, dout, l->out, a->B, l->rank,
                        0.0f, dh, l->rank);
            /* h = x A^T:  dA += dh^T x ;  dx += dh A */
            if (a->dA)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->rank, l->in, N, 1.0f, dh, l->rank, x, l->in,
                            1.0f, a->dA, l->in);
            if (dx)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, l->in, l->rank, 1.0f, dh, l->rank, a->A,
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
