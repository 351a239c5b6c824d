/* ops.c - instantiates the kernels of ops_impl.h for float (the training
 * path) and for double (the reference twins used by tests).
 *
 * The float path replaces libm's scalar expf/tanhf with inline versions that
 * GCC vectorises inside `omp simd` loops (glibc's vector math is only used
 * under -ffast-math): softmax, cross-entropy over 50k classes, GELU and SiLU
 * are otherwise bound by scalar exp calls. */
#include "ops.h"

#include "gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* Loops over fewer elements than this run on one thread: a parallel region
 * costs a few microseconds, more than the work below it. */
#define QR_PAR_MIN 16384
/* up to this many rows a matmul forward streams W once itself (decoding) */
#ifndef QR_SMALL_N
#define QR_SMALL_N 16
#endif
/* Column band of the column-sum loops (bias, norm weights, embeddings). */
#define QR_COL_BAND 64

size_t qr_attention_scratch_size(int B, int T, int NH) { return (size_t)B * NH * T * T; }

/* e^x for float: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor
 * polynomial (truncation error < 6e-9 relative, below float rounding), 2^n
 * built in the exponent bits. The input is clamped to [-87, 88] so the
 * result stays a normal float: e^-87 ~ 1.6e-38 stands in for underflow. */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* round x log2(e) to nearest with the 1.5 * 2^23 trick (vectorises; rint
     * would not without -ffast-math): kb's low mantissa bits then hold n */
    union {
        float f;
        uint32_t u;
    } kb, e;
    kb.f = x * 1.44269504088896341f + 12582912.0f;
    float n = kb.f - 12582912.0f;
    /* ln2 split in two so n * hi is exact */
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n from integer bit arithmetic alone: no float-to-int conversion,
     * so a NaN input stays NaN (through p) without undefined behaviour */
    e.u = (kb.u - 0x4B400000u + 127u) << 23;
    return p * e.f;
}

/* tanh(u) = 1 - 2 / (1 + e^(2u)): absolute error ~1e-7, which is what GELU
 * needs (it adds tanh to 1); the clamp in fast_expf keeps it finite. */
static inline float fast_tanhf(float u) { return 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u)); }

/* Attention runs its (batch, head) tasks on OpenMP threads, each calling a
 * single-threaded gemm. Returns the previous OpenBLAS thread count when it
 * switched BLAS to one thread (the caller then parallelises the tasks), or 0
 * when there is no point (one thread, one task, or already in a parallel
 * region), in which case the tasks run in order with BLAS threads as set. */
static int blas_serial_begin(int tasks) {
    if (tasks < 2 || omp_get_max_threads() < 2 || omp_in_parallel()) return 0;
    int old = openblas_get_num_threads();
    if (old > 1) openblas_set_num_threads(1);
    return old;
}

static void blas_serial_end(int old) {
    if (old > 1) openblas_set_num_threads(old);
}

/* the float path's products go through qr_sgemm (OpenBLAS, or the portable
 * fixed-order product of gemm.h); the CBLAS-style call of ops_impl.h maps
 * onto it */
static inline void sgemm_rowmajor(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                                  const float *B, int ldb, float beta, float *C, int ldc) {
    (void)order; /* always CblasRowMajor */
    qr_sgemm(ta == CblasTrans ? QR_TRANS : QR_NOTRANS, tb == CblasTrans ? QR_TRANS : QR_NOTRANS, M, N, K, alpha, A, lda,
             B, ldb, beta, C, ldc);
}

/* ----------------------------------------------------------------- float */
#define real float
#define QR_F(name) name
#define QR_GEMM sgemm_rowmajor
/* the decode path's own dot products are OpenBLAS mode's; the portable mode
 * keeps its one order of operations for every row count */
#define QR_OWN_SMALL_N() (!qr_gemm_portable())
#define QR_EXP fast_expf
#define QR_TANH fast_tanhf
#define QR_LOG logf
#define QR_SQRT sqrtf
#define QR_COS cosf
#define QR_SIN sinf
/* as HF computes it in float32: 1 / theta^(float(2i) / D) */
#define QR_ROPE_FREQ(i, D, theta) (1.0f / powf((theta), (float)(2 * (i)) / (float)(D)))
#include "ops_impl.h"
#undef real
#undef QR_F
#undef QR_GEMM
#undef QR_OWN_SMALL_N
#undef QR_EXP
#undef QR_TANH
#undef QR_LOG
#undef QR_SQRT
#undef QR_COS
#undef QR_SIN
#undef QR_ROPE_FREQ

/* ---------------------------------------------------------------- double */
#define real double
#define QR_F(name) name##_f64
#define QR_GEMM cblas_dgemm
#define QR_OWN_SMALL_N() 1
#define QR_EXP exp
#define QR_TANH tanh
#define QR_LOG log
#define QR_SQRT sqrt
#define QR_COS cos
#define QR_SIN sin
#define QR_ROPE_FREQ(i, D, theta) (1.0 / pow((theta), (double)(2 * (i)) / (double)(D)))
#include "ops_impl.h"
#undef real
#undef QR_F
#undef QR_GEMM
#undef QR_OWN_SMALL_N
#undef QR_EXP
#undef QR_TANH
#undef QR_LOG
#undef QR_SQRT
#undef QR_COS
#undef QR_SIN
#undef QR_ROPE_FREQ
