/* test_gemm.c - qr_sgemm's portable product (core/ops/gemm.h):
 *  - it computes exactly the order of operations gemm.h states: each element
 *    equals, to the bit, an independent scalar transcription of that order;
 *  - its AVX2 path and its scalar path give the same bits, and so do 1 and 2
 *    threads;
 *  - it agrees with OpenBLAS up to rounding (tolerance 2e-6 of max |C|, the
 *    largest difference printed), for the four layouts, odd sizes (K not a
 *    multiple of 8, M and N not multiples of the 3 x 4 tile), leading
 *    dimensions wider than the matrix, alpha and beta;
 *  - beta = 0 does not read C (NaN there stays out of the result). */
#include "harness.h"
#include "ops/gemm.h"
#include "qr.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, uint32_t s) {
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) * (1.0 / 16777216.0) - 0.5) * 3.0f;
    }
}

/* gemm.h's order, written out again element by element (no tiles, no
 * vectors): the contract the portable product must meet to the bit */
static float spec(int ta, int tb, int K, const float *A, int lda, const float *B, int ldb, int i, int j) {
#define AE(k) (ta == QR_TRANS ? A[(size_t)(k) * lda + i] : A[(size_t)i * lda + (k)])
#define BE(k) (tb == QR_TRANS ? B[(size_t)j * ldb + (k)] : B[(size_t)(k) * ldb + j])
    int K8 = K / 8 * 8;
    float l[8];
    for (int t = 0; t < 8; t++) {
        l[t] = 0.0f;
        for (int k = t; k < K8; k += 8) l[t] = fmaf(AE(k), BE(k), l[t]);
    }
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (int k = K8; k < K; k++) s = fmaf(AE(k), BE(k), s);
    return s;
#undef AE
#undef BE
}

typedef struct {
    int ta, tb, M, N, K, pad;
    float alpha, beta;
} shape;

int main(void) {
    const shape shapes[] = {
        {QR_NOTRANS, QR_TRANS, 7, 13, 29, 0, 1.0f, 0.0f},   {QR_NOTRANS, QR_TRANS, 50, 67, 64, 3, 0.5f, 1.0f},
        {QR_NOTRANS, QR_NOTRANS, 31, 9, 45, 2, 1.0f, 1.0f}, {QR_TRANS, QR_NOTRANS, 12, 70, 101, 1, -0.25f, 0.0f},
        {QR_TRANS, QR_TRANS, 5, 6, 7, 0, 2.0f, -1.0f},      {QR_NOTRANS, QR_TRANS, 1, 130, 576, 0, 1.0f, 0.0f},
        {QR_NOTRANS, QR_TRANS, 97, 129, 8, 5, 1.0f, 0.0f},  {QR_NOTRANS, QR_NOTRANS, 200, 150, 300, 0, 1.0f, 1.0f},
        /* k in several blocks of 256 with a tail; fewer columns than a tile, with beta */
        {QR_NOTRANS, QR_TRANS, 40, 70, 1001, 1, 1.0f, 1.0f}, {QR_NOTRANS, QR_TRANS, 10, 3, 520, 0, 1.0f, 0.5f},
    };
    int simd_here = qr_gemm_simd();
    printf("portable path on this CPU: %s\n", simd_here ? "AVX2+FMA (scalar checked too)" : "scalar only");
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *h = &shapes[s];
        int M = h->M, N = h->N, K = h->K;
        int lda = (h->ta == QR_TRANS ? M : K) + h->pad, ldb = (h->tb == QR_TRANS ? K : N) + h->pad, ldc = N + h->pad;
        size_t na = (size_t)(h->ta == QR_TRANS ? K : M) * lda, nb = (size_t)(h->tb == QR_TRANS ? N : K) * ldb;
        size_t nc = (size_t)M * ldc;
        float *A = qr_xmalloc(na * sizeof(float)), *B = qr_xmalloc(nb * sizeof(float));
        float *C0 = qr_xmalloc(nc * sizeof(float)), *Cs = qr_xmalloc(nc * sizeof(float));
        float *Cv = qr_xmalloc(nc * sizeof(float)), *Ct = qr_xmalloc(nc * sizeof(float));
        float *Cb = qr_xmalloc(nc * sizeof(float));
        fill(A, na, 11 + (uint32_t)s);
        fill(B, nb, 23 + (uint32_t)s);
        fill(C0, nc, 37 + (uint32_t)s);
        if (h->beta == 0.0f)
            for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* must not be read */
        qr_gemm_set_portable(1);
        /* scalar path, one thread */
        omp_set_num_threads(1);
        qr_gemm_set_simd(0);
        memcpy(Cs, C0, nc * sizeof(float));
        qr_sgemm(h->ta, h->tb, M, N, K, h->alpha, A, lda, B, ldb, h->beta, Cs, ldc);
        /* vector path (where the CPU has it), one thread; then two threads */
        qr_gemm_set_simd(1);
        memcpy(Cv, C0, nc * sizeof(float));
        qr_sgemm(h->ta, h->tb, M, N, K, h->alpha, A, lda, B, ldb, h->beta, Cv, ldc);
        omp_set_num_threads(2);
        memcpy(Ct, C0, nc * sizeof(float));
        qr_sgemm(h->ta, h->tb, M, N, K, h->alpha, A, lda, B, ldb, h->beta, Ct, ldc);
        /* OpenBLAS */
        qr_gemm_set_portable(0);
        memcpy(Cb, C0, nc * sizeof(float));
        qr_sgemm(h->ta, h->tb, M, N, K, h->alpha, A, lda, B, ldb, h->beta, Cb, ldc);
        int spec_ok = 1, nan_ok = 1, pad_ok = 1;
        double mx = 0, md = 0;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                size_t c = (size_t)i * ldc + j;
                float d = spec(h->ta, h->tb, K, A, lda, B, ldb, i, j);
                float want = h->beta == 0.0f ? h->alpha * d : fmaf(h->beta, C0[c], h->alpha * d);
                if (memcmp(&want, &Cs[c], sizeof want) != 0) spec_ok = 0;
                if (isnan(Cs[c])) nan_ok = 0;
                mx = fabs(Cb[c]) > mx ? fabs(Cb[c]) : mx;
                double df = fabs((double)Cb[c] - Cs[c]);
                md = df > md ? df : md;
            }
            for (int j = N; j < ldc; j++) /* the padding of C is not written */
                if (memcmp(&Cs[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float)) != 0 &&
                    !(isnan(C0[(size_t)i * ldc + j]) && isnan(Cs[(size_t)i * ldc + j])))
                    pad_ok = 0;
        }
        double rel = mx > 0 ? md / mx : md;
        worst = rel > worst ? rel : worst;
        printf("shape %zu (%c%c %dx%dx%d, pad %d, alpha %g, beta %g): portable vs OpenBLAS max diff %.2e of max |C|\n", s,
               h->ta ? 'T' : 'N', h->tb ? 'T' : 'N', M, N, K, h->pad, h->alpha, h->beta, rel);
        test_cond("each element is gemm.h's order of operations, to the bit", spec_ok);
        test_cond("the AVX2 path gives the scalar path's bits", memcmp(Cs, Cv, nc * sizeof(float)) == 0);
        test_cond("two threads give one thread's bits", memcmp(Cv, Ct, nc * sizeof(float)) == 0);
        test_cond("beta = 0 does not read C (no NaN from it)", nan_ok);
        test_cond("the padding of C is left alone", pad_ok);
        test_cond("agrees with OpenBLAS within 2e-6 of max |C|", rel <= 2e-6);
        free(A);
        free(B);
        free(C0);
        free(Cs);
        free(Cv);
        free(Ct);
        free(Cb);
    }
    printf("largest portable vs OpenBLAS difference: %.2e of max |C| (tolerance 2e-6)\n", worst);
    return test_report();
}
