/* gemm.c - qr_sgemm: OpenBLAS, or the portable fixed-order product of
 * gemm.h. The portable product reduces every case to C[i][j] = dot(a_i, b_j)
 * with a_i and b_j contiguous over k ("NT"): an operand that is not laid out
 * so is first copied transposed (O(MK) or O(NK) work beside the product's
 * O(MNK)). C is split into blocks of JB columns x IB rows, one task each, so
 * the threads share out C and every element is computed the same way by
 * whichever thread gets it. Inside a block, 3 rows x 4 columns of C are
 * computed together (twelve 8-lane accumulators); the edges one element at a
 * time, with the same arithmetic. */
#include "gemm.h"

#include "qr.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QR_GEMM_X86 1
#endif

#define IB 48 /* a multiple of the tile's 3 rows */
#define JB 64
#define KC 256 /* k block of the tiles (a multiple of 8) */

/* -1: not yet read from QR_KERNELS */
static int g_portable = -1;
static int g_simd = -1;

static int portable_default(void) {
    const char *e = getenv("QR_KERNELS");
    if (e && strcmp(e, "portable") == 0) return 1;
    if (e && strcmp(e, "blas") == 0) return 0;
#ifdef QR_PORTABLE_DEFAULT
    return 1;
#else
    return 0;
#endif
}

int qr_gemm_portable(void) {
    int p = __atomic_load_n(&g_portable, __ATOMIC_RELAXED);
    if (p < 0) {
        p = portable_default();
        __atomic_store_n(&g_portable, p, __ATOMIC_RELAXED);
    }
    return p;
}

void qr_gemm_set_portable(int on) { __atomic_store_n(&g_portable, on ? 1 : 0, __ATOMIC_RELAXED); }

static int cpu_simd(void) {
#ifdef QR_GEMM_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int qr_gemm_simd(void) {
    int s = __atomic_load_n(&g_simd, __ATOMIC_RELAXED);
    if (s < 0) {
        s = cpu_simd();
        __atomic_store_n(&g_simd, s, __ATOMIC_RELAXED);
    }
    return s;
}

void qr_gemm_set_simd(int on) { __atomic_store_n(&g_simd, on && cpu_simd() ? 1 : 0, __ATOMIC_RELAXED); }

/* ------------------------------------------------------------ scalar path */

/* the fixed reduction of gemm.h over 8 lanes, then the tail in order */
static inline float finish(const float l[8], const float *a, const float *b, int k, int K) {
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (; k < K; k++) s = fmaf(a[k], b[k], s);
    return s;
}

static float dot_scalar(const float *a, const float *b, int K) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int t = 0; t < 8; t++) l[t] = fmaf(a[k + t], b[k + t], l[t]);
    return finish(l, a, b, k, K);
}

/* ------------------------------------------------------------ AVX2 path */

#ifdef QR_GEMM_X86
/* the same tree as finish(): (lo + hi) gives l_t + l_{t+4}; then lanes
 * (0 + 2) and (1 + 3); then their sum */
__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(h) + _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
}

__attribute__((target("avx2,fma"))) static float tail_fma(float s, const float *a, const float *b, int k, int K) {
    for (; k < K; k++) s = fmaf(a[k], b[k], s);
    return s;
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int K) {
    __m256 c = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) c = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), c);
    return tail_fma(hsum8(c), a, b, k, K);
}

/* 3 rows of A x 4 rows of B over k in [k0, k1) (multiples of 8): twelve
 * 8-lane accumulators, acc[r*4+t] (in memory between calls, so that k can be
 * taken in blocks that stay in cache while each lane still adds its terms in
 * increasing k); enough independent fused multiply-adds to cover their latency
 * on two FMA units */
__attribute__((target("avx2,fma"))) static void tile_avx2(const float *a0, const float *a1, const float *a2,
                                                          const float *b0, const float *b1, const float *b2,
                                                          const float *b3, int k0, int k1, float *acc) {
    __m256 c00 = _mm256_loadu_ps(acc), c01 = _mm256_loadu_ps(acc + 8), c02 = _mm256_loadu_ps(acc + 16),
           c03 = _mm256_loadu_ps(acc + 24);
    __m256 c10 = _mm256_loadu_ps(acc + 32), c11 = _mm256_loadu_ps(acc + 40), c12 = _mm256_loadu_ps(acc + 48),
           c13 = _mm256_loadu_ps(acc + 56);
    __m256 c20 = _mm256_loadu_ps(acc + 64), c21 = _mm256_loadu_ps(acc + 72), c22 = _mm256_loadu_ps(acc + 80),
           c23 = _mm256_loadu_ps(acc + 88);
    for (int k = k0; k < k1; k += 8) {
        __m256 x0 = _mm256_loadu_ps(a0 + k), x1 = _mm256_loadu_ps(a1 + k), x2 = _mm256_loadu_ps(a2 + k), y;
        y = _mm256_loadu_ps(b0 + k);
        c00 = _mm256_fmadd_ps(x0, y, c00);
        c10 = _mm256_fmadd_ps(x1, y, c10);
        c20 = _mm256_fmadd_ps(x2, y, c20);
        y = _mm256_loadu_ps(b1 + k);
        c01 = _mm256_fmadd_ps(x0, y, c01);
        c11 = _mm256_fmadd_ps(x1, y, c11);
        c21 = _mm256_fmadd_ps(x2, y, c21);
        y = _mm256_loadu_ps(b2 + k);
        c02 = _mm256_fmadd_ps(x0, y, c02);
        c12 = _mm256_fmadd_ps(x1, y, c12);
        c22 = _mm256_fmadd_ps(x2, y, c22);
        y = _mm256_loadu_ps(b3 + k);
        c03 = _mm256_fmadd_ps(x0, y, c03);
        c13 = _mm256_fmadd_ps(x1, y, c13);
        c23 = _mm256_fmadd_ps(x2, y, c23);
    }
    _mm256_storeu_ps(acc, c00);
    _mm256_storeu_ps(acc + 8, c01);
    _mm256_storeu_ps(acc + 16, c02);
    _mm256_storeu_ps(acc + 24, c03);
    _mm256_storeu_ps(acc + 32, c10);
    _mm256_storeu_ps(acc + 40, c11);
    _mm256_storeu_ps(acc + 48, c12);
    _mm256_storeu_ps(acc + 56, c13);
    _mm256_storeu_ps(acc + 64, c20);
    _mm256_storeu_ps(acc + 72, c21);
    _mm256_storeu_ps(acc + 80, c22);
    _mm256_storeu_ps(acc + 88, c23);
}

__attribute__((target("avx2,fma"))) static float lanes_avx2(const float *acc) { return hsum8(_mm256_loadu_ps(acc)); }
#endif

/* ------------------------------------------------------------ the product */

static inline void store(float *c, float alpha, float beta, float s) {
    *c = beta == 0.0f ? alpha * s : fmaf(beta, *c, alpha * s);
}

/* C[i0..i1) x [j0..j1) from rows of a (lda) and b (ldb), both contiguous over k */
static void block(int i0, int i1, int j0, int j1, int K, float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *C, int ldc, int simd) {
    int i = i0;
#ifdef QR_GEMM_X86
    if (simd) {
        /* the 3 x 4 tiles, k in blocks of KC: every tile of the block takes
         * its next KC terms while they are in cache */
        int nti = (i1 - i0) / 3, ntj = (j1 - j0) / 4, K8 = K / 8 * 8;
        if (nti > 0 && ntj > 0) {
            size_t nacc = (size_t)nti * ntj * 96;
            float *acc = qr_xmalloc(nacc * sizeof(float));
            memset(acc, 0, nacc * sizeof(float));
            for (int k0 = 0; k0 < K8; k0 += KC) {
                int k1 = k0 + KC < K8 ? k0 + KC : K8;
                for (int ti = 0; ti < nti; ti++) {
                    const float *a0 = a + (size_t)(i0 + 3 * ti) * lda;
                    for (int tj = 0; tj < ntj; tj++) {
                        const float *b0 = b + (size_t)(j0 + 4 * tj) * ldb;
                        tile_avx2(a0, a0 + lda, a0 + 2 * (size_t)lda, b0, b0 + ldb, b0 + 2 * (size_t)ldb,
                                  b0 + 3 * (size_t)ldb, k0, k1, acc + ((size_t)ti * ntj + tj) * 96);
                    }
                }
            }
            for (int ti = 0; ti < nti; ti++)
                for (int tj = 0; tj < ntj; tj++)
                    for (int r = 0; r < 3; r++)
                        for (int t = 0; t < 4; t++) {
                            int ii = i0 + 3 * ti + r, jj = j0 + 4 * tj + t;
                            float sv = lanes_avx2(acc + ((size_t)ti * ntj + tj) * 96 + (r * 4 + t) * 8);
                            sv = tail_fma(sv, a + (size_t)ii * lda, b + (size_t)jj * ldb, K8, K);
                            store(C + (size_t)ii * ldc + jj, alpha, beta, sv);
                        }
            free(acc);
        }
        /* the edges: columns past the last whole tile, then rows past it */
        for (int ii = i0; ii < i0 + 3 * nti; ii++)
            for (int jj = j0 + 4 * ntj; jj < j1; jj++)
                store(C + (size_t)ii * ldc + jj, alpha, beta, dot_avx2(a + (size_t)ii * lda, b + (size_t)jj * ldb, K));
        i = i0 + 3 * nti;
        for (; i < i1; i++)
            for (int j = j0; j < j1; j++)
                store(C + (size_t)i * ldc + j, alpha, beta, dot_avx2(a + (size_t)i * lda, b + (size_t)j * ldb, K));
        return;
    }
#endif
    for (; i < i1; i++)
        for (int j = j0; j < j1; j++)
            store(C + (size_t)i * ldc + j, alpha, beta, dot_scalar(a + (size_t)i * lda, b + (size_t)j * ldb, K));
}

/* rows x cols of src (ld) -> dst (cols x rows, contiguous) */
static float *transposed(const float *src, int rows, int cols, int ld) {
    float *t = qr_xmalloc((size_t)rows * cols * sizeof(float) + 1);
    /* in 32 x 32 tiles, so that both sides stay in cache */
#pragma omp parallel for if ((int64_t)rows * cols >= 65536 && !omp_in_parallel())
    for (int c0 = 0; c0 < cols; c0 += 32)
        for (int r0 = 0; r0 < rows; r0 += 32) {
            int c1 = c0 + 32 < cols ? c0 + 32 : cols, r1 = r0 + 32 < rows ? r0 + 32 : rows;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) t[(size_t)c * rows + r] = src[(size_t)r * ld + c];
        }
    return t;
}

static void portable(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { /* C = beta C (beta 0: zeros, C not read) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    /* a: M rows of K; b: N rows of K */
    float *at = NULL, *bt = NULL;
    const float *a = A, *b = B;
    int la = lda, lb = ldb;
    if (ta == QR_TRANS) { /* A is K x M */
        a = at = transposed(A, K, M, lda);
        la = K;
    }
    if (tb == QR_NOTRANS) { /* B is K x N */
        b = bt = transposed(B, K, N, ldb);
        lb = K;
    }
    int simd = qr_gemm_simd();
    int mi = (M + IB - 1) / IB, nj = (N + JB - 1) / JB;
    int64_t tasks = (int64_t)mi * nj;
    int par = tasks > 1 && (int64_t)M * N * K >= 262144 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < tasks; t++) {
        int bi = (int)(t % mi), bj = (int)(t / mi);
        int i0 = bi * IB, j0 = bj * JB;
        int i1 = i0 + IB < M ? i0 + IB : M, j1 = j0 + JB < N ? j0 + JB : N;
        block(i0, i1, j0, j1, K, alpha, a, la, b, lb, beta, C, ldc, simd);
    }
    free(at);
    free(bt);
}

void qr_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    if (qr_gemm_portable()) {
        portable(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a == QR_TRANS ? CblasTrans : CblasNoTrans,
                trans_b == QR_TRANS ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
