/* ops.h - the layer kernels of GPT-2 and Llama (SmolLM2) training: forward
 * and backward pairs, after llm.c.
 *
 * Conventions:
 *  - Argument order: outputs, forward caches, inputs, weights, sizes.
 *  - Row-major, contiguous tensors; every kernel states its shapes.
 *  - Forward outputs are OVERWRITTEN. Gradients (prefixed d) are ACCUMULATED
 *    with +=, so a caller memsets its gradient arena once per step. The one
 *    exception is qr_rope_backward, which works in place.
 *  - Any gradient pointer may be NULL to skip that gradient (frozen weights
 *    skip dw; the first layer skips dinp).
 *  - Every float matmul goes through qr_sgemm (gemm.h: OpenBLAS, or the portable
 *    fixed-order product); the other loops are OpenMP
 *    parallel. Kernels never allocate (but for the portable product's transposed
 *    operand copies): attention backward takes scratch.
 *  - Kernels do not validate arguments (these are programmer contracts, not
 *    input): token ids and targets are checked by the caller.
 *
 * Every float kernel has a double twin named qr_<op>_f64 with the same
 * arguments (float -> double, dgemm for sgemm, libm exp/tanh for the fast
 * vector ones). The twins let tests check each backward against finite
 * differences in double precision, and each float kernel against its twin. */
#ifndef QR_OPS_H
#define QR_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Row-block size of the causal attention tiles: rows [r0, r0+BLOCK) of the
 * score matrix only need keys [0, r0+BLOCK), so the work above the diagonal
 * is skipped except inside the diagonal blocks. */
#define QR_ATT_BLOCK 64

/* Number of elements the scratch of qr_attention_backward must hold: one
 * (T,T) tile per (batch, query head), i.e. B*NH*T*T (same size as att). */
size_t qr_attention_scratch_size(int B, int T, int NH);

/* out (N,OC) = inp (N,C) @ w (OC,C)^T + bias (OC); bias may be NULL. */
void qr_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
/* dinp (N,C) += dout (N,OC) @ w;  dw (OC,C) += dout^T @ inp;  dbias (OC) += sum_n dout[n]. */
void qr_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N, int C, int OC);

/* out (N,C) = wte (V,C) row ids[n]; ids in [0,V), checked by the caller. */
void qr_embedding_forward(float *out, const int32_t *ids, const float *wte, int N, int C);
/* dwte row ids[n] += dout (N,C) row n; repeated ids accumulate. */
void qr_embedding_backward(float *dwte, const float *dout, const int32_t *ids, int N, int C);

/* out (N,C) = (inp - mean) * rstd * w (C) + b (C); caches mean, rstd (N) may be NULL. */
void qr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C, float eps);
/* dinp (N,C), dw (C), db (C) from dout (N,C), using the forward caches. */
void qr_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, const float *mean, const float *rstd, int N, int C);

/* out (N,C) = (inp * rstd) * w (C), rstd = 1/sqrt(mean(inp^2) + eps) (Llama/HF:
 * normalise in fp32, then multiply by w); cache rstd (N) may be NULL. */
void qr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
void qr_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd, int N, int C);

/* GPT-2's gelu_new over n elements: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void qr_gelu_forward(float *out, const float *inp, int64_t n);
void qr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);

/* out = silu(gate) * up over n elements, silu(g) = g * sigmoid(g). */
void qr_swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
void qr_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* RoPE in place on x (N,H,D), D even, row n at position pos[n]; HF Llama
 * rotate_half convention: pairs (i, i+D/2) rotate by pos * theta^(-2i/D).
 * Backward rotates dx (N,H,D) back IN PLACE: on return dx holds the gradient
 * w.r.t. the pre-rotation input (not accumulated). */
void qr_rope_forward(float *x, const int32_t *pos, int N, int H, int D, float theta);
void qr_rope_backward(float *dx, const int32_t *pos, int N, int H, int D, float theta);

/* Causal self-attention with grouped KV heads (NH % NKV == 0; head h reads
 * kv head h / (NH/NKV)); scale 1/sqrt(HD).
 * q (B,T,NH,HD), k and v (B,T,NKV,HD), out (B,T,NH,HD); att (B,NH,T,T)
 * receives the softmax probabilities (upper triangle zero), kept for backward. */
void qr_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T, int NH, int NKV, int HD);
/* dq (B,T,NH,HD), dk and dv (B,T,NKV,HD) from dout (B,T,NH,HD) and att;
 * scratch holds qr_attention_scratch_size(B,T,NH) floats, clobbered. */
void qr_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *att, const float *q, const float *k, const float *v, int B, int T, int NH, int NKV, int HD);

/* Softmax cross-entropy: logits (N,V), targets (N) in [0,V) or < 0 to ignore
 * the row. Writes losses (N) unless NULL (0 on ignored rows) and probs (N,V)
 * unless NULL (evaluation needs none; ignored rows get them too); probs must
 * not alias logits. Returns the mean loss over non-ignored rows, accumulated
 * in double (0 if there are none). */
float qr_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets, int N, int V);
/* dlogits (N,V) += scale * (probs - onehot(target)) on non-ignored rows;
 * scale = 1/n_valid gives the gradient of the mean loss. */
void qr_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, float scale, int N, int V);

/* out = a + b over n elements; out may alias a or b. */
void qr_residual_forward(float *out, const float *a, const float *b, int64_t n);

/* The double twins (see the top of this file). */
void qr_matmul_forward_f64(double *out, const double *inp, const double *w, const double *bias, int N, int C, int OC);
void qr_matmul_backward_f64(double *dinp, double *dw, double *dbias, const double *dout, const double *inp, const double *w, int N, int C, int OC);
void qr_embedding_forward_f64(double *out, const int32_t *ids, const double *wte, int N, int C);
void qr_embedding_backward_f64(double *dwte, const double *dout, const int32_t *ids, int N, int C);
void qr_layernorm_forward_f64(double *out, double *mean, double *rstd, const double *inp, const double *w, const double *b, int N, int C, double eps);
void qr_layernorm_backward_f64(double *dinp, double *dw, double *db, const double *dout, const double *inp, const double *w, const double *mean, const double *rstd, int N, int C);
void qr_rmsnorm_forward_f64(double *out, double *rstd, const double *inp, const double *w, int N, int C, double eps);
void qr_rmsnorm_backward_f64(double *dinp, double *dw, const double *dout, const double *inp, const double *w, const double *rstd, int N, int C);
void qr_gelu_forward_f64(double *out, const double *inp, int64_t n);
void qr_gelu_backward_f64(double *dinp, const double *inp, const double *dout, int64_t n);
void qr_swiglu_forward_f64(double *out, const double *gate, const double *up, int64_t n);
void qr_swiglu_backward_f64(double *dgate, double *dup, const double *dout, const double *gate, const double *up, int64_t n);
void qr_rope_forward_f64(double *x, const int32_t *pos, int N, int H, int D, double theta);
void qr_rope_backward_f64(double *dx, const int32_t *pos, int N, int H, int D, double theta);
void qr_attention_forward_f64(double *out, double *att, const double *q, const double *k, const double *v, int B, int T, int NH, int NKV, int HD);
void qr_attention_backward_f64(double *dq, double *dk, double *dv, double *scratch, const double *dout, const double *att, const double *q, const double *k, const double *v, int B, int T, int NH, int NKV, int HD);
double qr_crossentropy_forward_f64(double *losses, double *probs, const double *logits, const int32_t *targets, int N, int V);
void qr_crossentropy_backward_f64(double *dlogits, const double *probs, const int32_t *targets, double scale, int N, int V);
void qr_residual_forward_f64(double *out, const double *a, const double *b, int64_t n);

#endif
