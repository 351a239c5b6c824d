/* gemm.h - every float matrix product of the engine goes through qr_sgemm,
 * row-major, C = alpha op(A) op(B) + beta C, with BLAS's meaning of the
 * arguments (op(A) is M x K, op(B) is K x N; beta = 0: C is not read).
 *
 * Two implementations, chosen at run time:
 *  - "blas" (the default): OpenBLAS's cblas_sgemm. Fast, but its bits
 *    depend on the host: OpenBLAS picks kernels and cache blocking per CPU,
 *    and the thread count changes them too, so a quantized configuration's
 *    answers move from one machine to the next (reports/kernel-sensitivity.json).
 *  - "portable": qrun's own product with one fixed order of operations per
 *    element of C. Each element is
 *        l_t = sum over k = t (mod 8), k < K8, in increasing k, by fused
 *              multiply-add (t = 0..7, K8 = K rounded down to a multiple of 8)
 *        s   = ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
 *        s   = fma(a_k, b_k, s) for k = K8 .. K-1, in order
 *        C   = fma(beta, C, alpha s)        (alpha s alone when beta = 0)
 *    whatever the vector width (AVX2 and FMA when the CPU has them, else
 *    scalar fmaf: the same bits), the thread count (threads split C, never
 *    K) or the host. With the rest of the engine built for one fixed target
 *    (CMake's QR_PORTABLE: -march=x86-64-v3), results are then the same on
 *    every AVX2 machine.
 * The environment variable QR_KERNELS=blas|portable picks one at start
 * (default: blas, or portable in a QR_PORTABLE build); qr_gemm_set_portable
 * changes it (tests, and qr.kernels in Lua). */
#ifndef QR_GEMM_H
#define QR_GEMM_H

enum { QR_NOTRANS = 0, QR_TRANS = 1 };

void qr_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

/* 1 when qr_sgemm is the portable product, 0 for OpenBLAS. */
int qr_gemm_portable(void);
void qr_gemm_set_portable(int on);
/* The portable product's vector path (1: AVX2+FMA where the CPU has them;
 * 0: scalar fmaf). For tests, which check that both give the same bits. */
int qr_gemm_simd(void);
void qr_gemm_set_simd(int on);

#endif
