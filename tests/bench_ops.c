/* bench_ops.c - micro-benchmarks of the ops kernels at GPT-2 124M training
 * shapes (batch 4 x 256 tokens). Not a test (CMake registers test_*.c only).
 * Build and run by hand, e.g.:
 *   gcc -std=gnu11 -O2 -march=native -fopenmp -Icore core/qr.c core/ops/ops.c core/train/optim.c \
 *       tests/bench_ops.c $(pkg-config --cflags --libs openblas) -lm -o /tmp/bench_ops
 *   OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 /tmp/bench_ops
 * Each figure is the best of several repetitions (the machine may be shared). */
#include "ops/ops.h"
#include "train/optim.h"
#include "qr.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *frand(int64_t n) {
    float *x = qr_xmalloc((size_t)n * sizeof *x);
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) * (1.0 / 16777216.0) - 0.5);
    }
    return x;
}

#define BEST(reps, var, body)                                                                      \
    do {                                                                                           \
        var = 1e30;                                                                                \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            double t0_ = qr_now();                                                                 \
            body;                                                                                  \
            double dt_ = qr_now() - t0_;                                                           \
            var = dt_ < var ? dt_ : var;                                                           \
        }                                                                                          \
    } while (0)

int main(void) {
    printf("threads: OpenMP %d, OpenBLAS %d\n", omp_get_max_threads(), openblas_get_num_threads());
    double t;

    /* raw sgemm and the matmul pair at the MLP fc shape */
    int N = 1024, C = 768, OC = 3072;
    float *inp = frand((int64_t)N * C), *w = frand((int64_t)OC * C), *bias = frand(OC), *out = frand((int64_t)N * OC);
    float *dinp = frand((int64_t)N * C), *dw = frand((int64_t)OC * C), *db = frand(OC);
    double fl = 2.0 * N * C * OC;
    BEST(5, t, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, inp, C, w, C, 0, out, OC));
    double peak = fl / t * 1e-9;
    printf("raw sgemm %dx%dx%d:               %7.2f ms  %6.1f GFLOP/s\n", N, C, OC, t * 1e3, peak);
    BEST(5, t, qr_matmul_forward(out, inp, w, bias, N, C, OC));
    printf("matmul_forward (bias):             %7.2f ms  %6.1f GFLOP/s (%3.0f%% of raw)\n", t * 1e3, fl / t * 1e-9, fl / t * 1e-9 / peak * 100);
    BEST(5, t, qr_matmul_backward(dinp, dw, db, out, inp, w, N, C, OC));
    printf("matmul_backward (dinp, dw, dbias): %7.2f ms  %6.1f GFLOP/s (%3.0f%% of raw)\n", t * 1e3, 2 * fl / t * 1e-9, 2 * fl / t * 1e-9 / peak * 100);
    BEST(5, t, {
        qr_matmul_forward(out, inp, w, bias, N, C, OC);
        qr_matmul_backward(dinp, dw, db, out, inp, w, N, C, OC);
    });
    printf("matmul forward+backward:           %7.2f ms  %6.1f GFLOP/s (%3.0f%% of raw)\n", t * 1e3, 3 * fl / t * 1e-9, 3 * fl / t * 1e-9 / peak * 100);

    /* attention at GPT-2 shapes */
    int B = 4, T = 256, NH = 12, HD = 64;
    int64_t nq = (int64_t)B * T * NH * HD, na = (int64_t)B * NH * T * T;
    float *q = frand(nq), *k = frand(nq), *v = frand(nq), *o = frand(nq), *att = frand(na);
    float *dq = frand(nq), *dk = frand(nq), *dv = frand(nq), *scr = frand((int64_t)qr_attention_scratch_size(B, T, NH));
    /* causal flops actually done: score and value gemms over the lower
     * triangle (plus diagonal blocks) */
    double afl = 0;
    for (int r0 = 0; r0 < T; r0 += QR_ATT_BLOCK) afl += 2.0 * QR_ATT_BLOCK * (r0 + QR_ATT_BLOCK) * HD;
    afl *= B * NH; /* one T x T x HD product, causal */
    double tf, tb;
    BEST(5, tf, qr_attention_forward(o, att, q, k, v, B, T, NH, NH, HD));
    BEST(5, tb, qr_attention_backward(dq, dk, dv, scr, o, att, q, k, v, B, T, NH, NH, HD));
    printf("attention %d,%d,%d,%d fwd %.2f ms + bwd %.2f ms = %.2f ms  (%.1f GFLOP/s on causal flops)\n", B, T, NH, HD, tf * 1e3, tb * 1e3,
           (tf + tb) * 1e3, 6 * afl / (tf + tb) * 1e-9);
    int nthr = omp_get_max_threads();
    omp_set_num_threads(1);
    BEST(3, tf, qr_attention_forward(o, att, q, k, v, B, T, NH, NH, HD));
    BEST(3, tb, qr_attention_backward(dq, dk, dv, scr, o, att, q, k, v, B, T, NH, NH, HD));
    omp_set_num_threads(nthr);
    printf("  same, heads in sequence with threaded BLAS: fwd %.2f + bwd %.2f = %.2f ms\n", tf * 1e3, tb * 1e3, (tf + tb) * 1e3);
    BEST(5, tf, qr_attention_forward(o, att, q, k, v, 4, 256, 9, 3, 64));
    BEST(5, tb, qr_attention_backward(dq, dk, dv, scr, o, att, q, k, v, 4, 256, 9, 3, 64));
    printf("attention SmolLM2 4,256,9/3,64 fwd %.2f ms + bwd %.2f ms\n", tf * 1e3, tb * 1e3);

    /* the other per-layer kernels */
    int64_t nf = (int64_t)N * 4 * C;
    float *a = frand(nf), *bb = frand(nf), *c = frand(nf);
    BEST(5, tf, qr_gelu_forward(c, a, nf));
    BEST(5, tb, qr_gelu_backward(bb, a, c, nf));
    printf("gelu %dx%d: fwd %.2f ms, bwd %.2f ms\n", N, 4 * C, tf * 1e3, tb * 1e3);
    BEST(5, tf, qr_swiglu_forward(c, a, bb, nf));
    BEST(5, tb, qr_swiglu_backward(a, bb, c, a, bb, nf));
    printf("swiglu %dx%d: fwd %.2f ms, bwd %.2f ms\n", N, 4 * C, tf * 1e3, tb * 1e3);
    float *mean = frand(N), *rstd = frand(N), *lw = frand(C), *lb = frand(C), *dlw = frand(C), *dlb = frand(C);
    BEST(5, tf, qr_layernorm_forward(c, mean, rstd, a, lw, lb, N, C, 1e-5f));
    BEST(5, tb, qr_layernorm_backward(bb, dlw, dlb, c, a, lw, mean, rstd, N, C));
    printf("layernorm %dx%d: fwd %.3f ms, bwd %.3f ms\n", N, C, tf * 1e3, tb * 1e3);
    BEST(5, tf, qr_residual_forward(c, a, bb, (int64_t)N * C));
    printf("residual %dx%d: %.3f ms\n", N, C, tf * 1e3);

    int V = 50257;
    float *logits = frand((int64_t)N * V), *probs = frand((int64_t)N * V), *losses = frand(N);
    int32_t *tg = qr_xmalloc((size_t)N * sizeof *tg);
    for (int i = 0; i < N; i++) tg[i] = (i * 7919) % V;
    BEST(3, tf, qr_crossentropy_forward(losses, probs, logits, tg, N, V));
    BEST(3, tb, qr_crossentropy_backward(logits, probs, tg, 1.0f / N, N, V));
    printf("crossentropy %dx%d: fwd %.2f ms, bwd %.2f ms\n", N, V, tf * 1e3, tb * 1e3);

    /* one GPT-2 block, forward + backward, out of these kernels (q, k, v as
     * three matmuls so attention reads contiguous (B,T,NH,HD) tensors) */
    {
        int64_t nc = (int64_t)N * C, n4 = 4 * nc;
        float *x = frand(nc), *ln1 = frand(nc), *m1 = frand(N), *r1 = frand(N), *qq = frand(nc), *kk = frand(nc), *vv2 = frand(nc);
        float *ao = frand(nc), *at = frand(na), *pr = frand(nc), *x2 = frand(nc), *ln2 = frand(nc), *m2 = frand(N), *r2 = frand(N);
        float *fc = frand(n4), *ge = frand(n4), *fp = frand(nc), *x3 = frand(nc);
        float *wq = frand((int64_t)C * C), *wk = frand((int64_t)C * C), *wv = frand((int64_t)C * C), *wp = frand((int64_t)C * C);
        float *wfc = frand(4 * (int64_t)C * C), *wfp = frand(4 * (int64_t)C * C), *bs = frand(4 * C), *lnw = frand(C), *lnb = frand(C);
        float *dwq = frand((int64_t)C * C), *dwk = frand((int64_t)C * C), *dwv = frand((int64_t)C * C), *dwp = frand((int64_t)C * C);
        float *dwfc = frand(4 * (int64_t)C * C), *dwfp = frand(4 * (int64_t)C * C), *dbs = frand(4 * C), *dlnw = frand(C), *dlnb = frand(C);
        float *d1 = frand(n4), *d2 = frand(n4), *dc = frand(nc), *dq2 = frand(nc), *dk2 = frand(nc), *dv2 = frand(nc), *dx = frand(nc);
        double tfw, tbw;
        BEST(3, tfw, {
            qr_layernorm_forward(ln1, m1, r1, x, lnw, lnb, N, C, 1e-5f);
            qr_matmul_forward(qq, ln1, wq, bs, N, C, C);
            qr_matmul_forward(kk, ln1, wk, bs, N, C, C);
            qr_matmul_forward(vv2, ln1, wv, bs, N, C, C);
            qr_attention_forward(ao, at, qq, kk, vv2, B, T, NH, NH, HD);
            qr_matmul_forward(pr, ao, wp, bs, N, C, C);
            qr_residual_forward(x2, x, pr, nc);
            qr_layernorm_forward(ln2, m2, r2, x2, lnw, lnb, N, C, 1e-5f);
            qr_matmul_forward(fc, ln2, wfc, bs, N, C, 4 * C);
            qr_gelu_forward(ge, fc, n4);
            qr_matmul_forward(fp, ge, wfp, bs, N, 4 * C, C);
            qr_residual_forward(x3, x2, fp, nc);
        });
        BEST(3, tbw, {
            /* dx3 = dx2 = dx = dc (residual stream) */
            qr_matmul_backward(d1, dwfp, dbs, dc, ge, wfp, N, 4 * C, C);
            qr_gelu_backward(d2, fc, d1, n4);
            qr_matmul_backward(dq2, dwfc, dbs, d2, ln2, wfc, N, C, 4 * C);
            qr_layernorm_backward(dx, dlnw, dlnb, dq2, x2, lnw, m2, r2, N, C);
            qr_matmul_backward(dq2, dwp, dbs, dx, ao, wp, N, C, C);
            qr_attention_backward(d1, dk2, dv2, scr, dq2, at, qq, kk, vv2, B, T, NH, NH, HD);
            qr_matmul_backward(dc, dwq, dbs, d1, ln1, wq, N, C, C);
            qr_matmul_backward(dc, dwk, dbs, dk2, ln1, wk, N, C, C);
            qr_matmul_backward(dc, dwv, dbs, dv2, ln1, wv, N, C, C);
            qr_layernorm_backward(dx, dlnw, dlnb, dc, x, lnw, m1, r1, N, C);
        });
        double bfl = 3 * 2.0 * N * 12.0 * C * C;
        printf("GPT-2 block fwd %.1f ms + bwd %.1f ms = %.1f ms; matmul flops alone %.1f GFLOP/s (%.0f%% of raw)\n", tfw * 1e3, tbw * 1e3,
               (tfw + tbw) * 1e3, bfl / (tfw + tbw) * 1e-9, bfl / (tfw + tbw) * 1e-9 / peak * 100);
    }

    int64_t np = (int64_t)N * V; /* 51M parameters stand in for the model */
    float *m = calloc((size_t)np, 4), *vv = calloc((size_t)np, 4);
    qr_adamw_cfg cfg = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    BEST(3, t, qr_adamw_step(logits, probs, m, vv, np, &cfg, 1));
    printf("adamw %lld params: %.2f ms (%.2f ms per 124M)\n", (long long)np, t * 1e3, t * 1e3 * 124e6 / np);
    BEST(3, t, (void)qr_grad_norm(probs, np));
    printf("grad_norm %lld: %.2f ms\n", (long long)np, t * 1e3);
    return 0;
}
