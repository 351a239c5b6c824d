/* optim.h - AdamW, gradient-norm clipping helpers and the learning-rate
 * schedule. Float32 parameters and moments, one flat array each (the caller's
 * parameter arena), so one call updates the whole model. */
#ifndef QR_OPTIM_H
#define QR_OPTIM_H

#include <stdint.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} qr_adamw_cfg;

/* One AdamW step over n parameters p (n), gradients g (n), first and second
 * moments m, v (n, zero before step 1), t the 1-based step count:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + lr wd p
 * The decay is decoupled (it multiplies p, not g), as in PyTorch's AdamW;
 * callers wanting no decay on some tensors call this per slice with wd 0. */
void qr_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, const qr_adamw_cfg *cfg, int t);

/* L2 norm of g (n), accumulated in double. */
double qr_grad_norm(const float *g, int64_t n);

/* x (n) *= s, e.g. clipping: qr_scale(g, n, clip / norm) when norm > clip. */
void qr_scale(float *x, int64_t n, float s);

/* y (n) += a x (n), e.g. a weighted loss term's gradient. */
void qr_axpy(float *y, const float *x, float a, int64_t n);

/* Learning rate at 0-based step `step`: linear warm-up
 * lr_max (step+1)/warmup for step < warmup, then cosine decay from lr_max at
 * step == warmup to lr_min at step == total, and lr_min after total. */
float qr_lr_cosine(int step, int warmup, int total, float lr_max, float lr_min);

#endif
