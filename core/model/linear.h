/* linear.h - the linear layer, the place where quantization and LoRA act:
 *
 *   y (N,out) = Qa(x) Qw(W)^T + b + s * (Qa(x) A^T) B^T
 *
 * with Qa/Qw fake quantizers at the layer's current input/weight bit-widths
 * (32 = off), and (A, B) the active adapter of the layer's LoRA bank
 * (s = alpha / rank; none active: no LoRA term). Every linear layer of every
 * model is a qr_linear named after the checkpoint's own module name
 * ("h.3.attn.c_attn", "model.layers.3.self_attn.q_proj") so configurations
 * and adapters are written against those names. Weights are stored (out,
 * in) whatever the checkpoint's layout.
 *
 * The LoRA path sees the same quantized input Qa(x) as the base path (not
 * the raw x); neither A nor B is quantized. The gradient w.r.t. x goes
 * through Qa's own backward (minmax: straight-through, optionally masked).
 *
 * A frozen base weight (dw == NULL, as in adapter training) is quantized once
 * per bit-width and cached (wcache[bits]); a trainable one (dw != NULL) is
 * quantized again at every forward, since an optimizer step may have changed
 * it (the backward uses the forward's). Whoever writes a frozen W after a
 * quantized forward (through qr_model_param()->data or l->w) must call
 * qr_linear_invalidate() on the layer, or qr_model_set_quantizers() again
 * for the whole model; otherwise the stale Qw(W) goes on being used. */
#ifndef QR_LINEAR_H
#define QR_LINEAR_H

#include "qr.h"
#include "tensor.h"

struct qr_instance; /* a quantizer (plugin.h) */

/* The scratch of a model's linear layers, one per model (its layers run one
 * at a time): Qa(x) of a forward that saves nothing (n_x), the LoRA h of
 * such a forward or dh of a backward (n_h), and the input gradient before
 * Qa's backward (n_x). An arena, carved again only when a call needs more:
 * the model reserves what a (B,T) step or a decode needs up front, so a step
 * allocates nothing. */
typedef struct {
    qr_arena arena;
    float *x, *h, *dx;
    int64_t n_x, n_h; /* elements of x and dx, of h */
} qr_linear_scratch;

/* Make the scratch hold at least n_x and n_h elements. */
void qr_linear_scratch_reserve(qr_linear_scratch *s, int64_t n_x, int64_t n_h);
void qr_linear_scratch_free(qr_linear_scratch *s);

typedef struct {
    float *A, *B;   /* (rank, in), (out, rank) */
    float *dA, *dB; /* gradients, NULL unless adapters are trainable */
} qr_lora;

typedef struct qr_linear {
    char name[80];
    int in, out;
    float *w;  /* (out, in), in the model's parameter buffer */
    float *b;  /* (out) or NULL */
    float *dw; /* gradient of w, NULL when w is frozen */
    float *db; /* gradient of b, NULL when frozen or absent */
    qr_linear_scratch *scr; /* its model's (required by forward and backward) */

    /* quantization (borrowed quantizers; NULL = not quantized) */
    int wbits, abits;
    struct qr_instance *wq, *aq;
    float *wcache[17]; /* Qw(W) per bit-width 2..16, computed on first use */

    /* the LoRA bank */
    int n_lora, rank, active; /* active: slot in [0, n_lora), or -1 for none */
    float lora_scale;         /* alpha / rank */
    qr_lora *lora;

    /* saved by a training forward for the backward */
    float *xq; /* (N,in) Qa(x); only when abits < 32 */
    float *h;  /* (N,rank) Qa(x) A^T of the active adapter */
    int64_t cap_xq, cap_h;
    int saved_n;
} qr_linear;

/* out (N,out) = the formula above. save: keep what the backward needs
 * (training); otherwise scratch is used. QR_ERR (message naming the layer,
 * the side and the quantizer's own message, e.g. "linear h.0.attn.c_attn:
 * weight at 8 bits: quantizer 'minmax': row 3 of (96, 32) has NaN or Inf")
 * when a quantizer refuses the input or the weight; out is then undefined. */
int qr_linear_forward(qr_linear *l, float *out, const float *inp, int N, int save);
/* Backward of the last saving forward, which must have succeeded: dinp
 * (N,in) += d/dx (the quantizer's own gradient through Qa: minmax's is
 * straight-through), dw/db (if not NULL) += their gradients (straight-
 * through Qw), the active adapter's dA/dB (if not NULL) +=. dinp may be
 * NULL. Aborts with the quantizer's message if Qw(W) is gone and W can no
 * longer be quantized (W or its quantizer changed since the forward). */
void qr_linear_backward(qr_linear *l, float *dinp, const float *dout, const float *inp, int N);
/* Drop the cached Qw(W) (after W or the quantizer changed). */
void qr_linear_invalidate(qr_linear *l);
/* Free what the layer allocated itself (caches, saved buffers). */
void qr_linear_release(qr_linear *l);

#endif
