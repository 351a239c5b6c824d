/* linear.c - the linear layer (see linear.h). */
#include "linear.h"
#include "ops.h"

void qr_linear_forward(const qr_linear *l, float *out, const float *inp, int N) {
    qr_matmul_forward(out, inp, l->w, l->b, N, l->in, l->out);
}

void qr_linear_backward(qr_linear *l, float *dinp, const float *dout, const float *inp, int N) {
    qr_matmul_backward(dinp, l->dw, l->db, dout, inp, l->w, N, l->in, l->out);
}
