/* linear.h - the linear layer, the place where quantization and LoRA act:
 *
 *   y (N,out) = Qa(x) Qw(W)^T + b + s * (Qa(x) A^T) B^T
 *
 * with Qa/Qw fake quantizers at the layer's current input/weight bit-widths
 * (32 = off), and (A, B) the active adapter of the layer's LoRA bank
 * (s = alpha / rank; none active: no LoRA term). Qw has one scale per row
 * of W (per output channel), or, with a weight group g, one per group of g
 * consecutive input channels of a row (qr_linear_fake_grouped below). Every
 * linear layer of every
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
    /* W regrouped for a group size that does not divide `in` (out * in
     * elements); outside the arena, grown on first use */
    float *wt;
    int64_t n_wt;
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
    /* the weight group: wgroup from the configuration, else (0) the model's
     * wgroup_default (model:quantize{weight_opts = {group = g}}), else (0)
     * one scale per row; a group >= in is one scale per row too */
    int wgroup, wgroup_default;
    float *wcache[17];     /* Qw(W) per bit-width 2..16, computed on first use */
    int wcache_group[17];  /* the group wcache[b] was computed with (0 = per row) */

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
/* The group size the layer's weight is quantized with now: 0 (one scale per
 * row) or g in [2, in). */
int qr_linear_weight_group(const qr_linear *l);

/* Group-wise fake quantization with a row-wise quantizer q. x (rows, cols)
 * row-major is quantized with one scale per group of `group` consecutive
 * columns of a row. When group divides cols that is exactly q's row-wise
 * fake() of the (rows * cols/group, group) view of the same memory; when it
 * does not, each row is cols/group full groups and one shorter tail group
 * of cols % group columns (the groups are copied into tmp, quantized as a
 * (rows * cols/group, group) and a (rows, cols % group) matrix, and copied
 * back). group 0, or >= cols: one scale per row, qr_quantizer_fake itself.
 * out may be x. tmp: room for rows * cols floats, used only with a tail
 * (NULL: allocated and freed here). QR_ERR + q's message prefixed by the
 * group layout (its row k is row k / (cols/group) of x) when q refuses. */
int qr_linear_fake_grouped(struct qr_instance *q, float *out, const float *x, int64_t rows, int64_t cols,
                           int bits, int group, float *tmp);
/* dx (rows, cols) += dout * d fake_grouped(x) / dx: q's own backward on the
 * same groups (straight-through for minmax and log, masked by ste_clip;
 * tanh's depends on each group's maximum). The linear layer's weight
 * gradient stays straight-through and does not call this; it is the pair
 * of qr_linear_fake_grouped for callers that want Qw's own gradient. */
void qr_linear_backward_grouped(struct qr_instance *q, float *dx, const float *dout, const float *x, int64_t rows,
                                int64_t cols, int bits, int group);

/* Drop the cached Qw(W) (after W or the quantizer changed). */
void qr_linear_invalidate(qr_linear *l);
/* Free what the layer allocated itself (caches, saved buffers). */
void qr_linear_release(qr_linear *l);

#endif
