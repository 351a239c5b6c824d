/* bench_gemm.c - the portable fixed-order product (core/ops/gemm.h) against
 * OpenBLAS in the same run, at SmolLM2-135M's shapes: training rows (batch
 * 4 x 384 tokens), a prefill of 384 tokens and decoding (one row), for the
 * three layouts the engine uses (forward x W^T, dinp = dout W, dW = dout^T x).
 * Not a test. Built by CMake as build/bench_gemm; run e.g.
 *   OMP_NUM_THREADS=2 build/bench_gemm
 * Each time is the best of 5, the two kernels interleaved (the machine may be
 * shared); the ratio is portable / OpenBLAS time (above 1: portable slower).
 * Also prints the largest difference of the two results relative to the
 * largest |C| (they differ by rounding only). */
#include "ops/gemm.h"
#include "qr.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *frand(size_t n, uint32_t s) {
    float *x = qr_xmalloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) * (1.0 / 16777216.0) - 0.5);
    }
    return x;
}

typedef struct {
    const char *what;
    int ta, tb, M, N, K;
} shape;

int main(void) {
    printf("threads %d; portable path: %s\n", omp_get_max_threads(), qr_gemm_simd() ? "AVX2+FMA" : "scalar");
    const shape shapes[] = {
        {"train fwd  x W^T  (1536x576)(1536x576)^T", QR_NOTRANS, QR_TRANS, 1536, 1536, 576},
        {"train fwd  x W^T  (1536x1536)(576x1536)^T", QR_NOTRANS, QR_TRANS, 1536, 576, 1536},
        {"train dinp dout W (1536x1536)(1536x576)", QR_NOTRANS, QR_NOTRANS, 1536, 576, 1536},
        {"train dW   dout^T x (1536x1536)^T(1536x576)", QR_TRANS, QR_NOTRANS, 1536, 576, 1536},
        {"prefill    x W^T  (384x576)(576x576)^T", QR_NOTRANS, QR_TRANS, 384, 576, 576},
        {"decode     x W^T  (1x576)(1536x576)^T", QR_NOTRANS, QR_TRANS, 1, 1536, 576},
    };
    double sum_b = 0, sum_p = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *h = &shapes[s];
        int M = h->M, N = h->N, K = h->K;
        /* op(A) is M x K, op(B) is K x N */
        int lda = h->ta == QR_TRANS ? M : K, ldb = h->tb == QR_TRANS ? K : N;
        float *A = frand((size_t)M * K, 1), *B = frand((size_t)K * N, 2);
        float *Cb = qr_xmalloc((size_t)M * N * sizeof(float)), *Cp = qr_xmalloc((size_t)M * N * sizeof(float));
        int reps = M == 1 ? 200 : 5;
        double tb = 1e30, tp = 1e30;
        for (int r = 0; r < 5; r++) {
            qr_gemm_set_portable(0);
            double t0 = qr_now();
            for (int i = 0; i < reps / 5 + 1; i++) qr_sgemm(h->ta, h->tb, M, N, K, 1, A, lda, B, ldb, 0, Cb, N);
            double t = (qr_now() - t0) / (reps / 5 + 1);
            tb = t < tb ? t : tb;
            qr_gemm_set_portable(1);
            t0 = qr_now();
            for (int i = 0; i < reps / 5 + 1; i++) qr_sgemm(h->ta, h->tb, M, N, K, 1, A, lda, B, ldb, 0, Cp, N);
            t = (qr_now() - t0) / (reps / 5 + 1);
            tp = t < tp ? t : tp;
        }
        double mx = 0, md = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) {
            mx = fabs(Cb[i]) > mx ? fabs(Cb[i]) : mx;
            double d = fabs((double)Cb[i] - Cp[i]);
            md = d > md ? d : md;
        }
        double fl = 2.0 * M * N * K;
        printf("%-46s OpenBLAS %8.3f ms %6.1f GFLOP/s  portable %8.3f ms %6.1f GFLOP/s  ratio %.2f  max diff %.1e\n",
               h->what, tb * 1e3, fl / tb * 1e-9, tp * 1e3, fl / tp * 1e-9, tp / tb, mx > 0 ? md / mx : md);
        sum_b += tb;
        sum_p += tp;
        free(A);
        free(B);
        free(Cb);
        free(Cp);
    }
    printf("all shapes: portable / OpenBLAS time = %.2f\n", sum_p / sum_b);
    return 0;
}
