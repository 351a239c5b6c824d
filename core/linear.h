/* linear.h - the linear layer, the one place where quantization and LoRA
 * will act: y (N,out) = x (N,in) W(out,in)^T + b.
 *
 * Every linear layer of every model is a qr_linear, named after the
 * checkpoint's own module name ("h.3.attn.c_attn",
 * "model.layers.3.self_attn.q_proj") so precision configurations and
 * adapters can be written against those names. Weights are stored (out, in)
 * whatever the checkpoint's layout (GPT-2's Conv1D is transposed at load). */
#ifndef QR_LINEAR_H
#define QR_LINEAR_H

#include "qr.h"

typedef struct qr_linear {
    char name[80];
    int in, out;
    float *w;  /* (out, in), in the model's parameter buffer */
    float *b;  /* (out) or NULL */
    float *dw; /* gradient of w, NULL when w is frozen */
    float *db; /* gradient of b, NULL when frozen or absent */
} qr_linear;

/* out (N,out) = inp (N,in) W^T + b */
void qr_linear_forward(const qr_linear *l, float *out, const float *inp, int N);
/* dinp (N,in) += dout W ; dw += dout^T inp ; db += sum(dout). dinp may be NULL. */
void qr_linear_backward(qr_linear *l, float *dinp, const float *dout, const float *inp, int N);

#endif
