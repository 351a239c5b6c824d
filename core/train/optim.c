/* optim.c - AdamW and its helpers (see optim.h). */

#include "optim.h"

#include <math.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#define QR_OPTIM_PAR_MIN 16384

/* Elements [i0, i1) of the update. GCC does not vectorise sqrtf unless
 * -fno-math-errno is given (sqrtf may set errno), so the body is written
 * with AVX-512 / AVX intrinsics where the target has them; the scalar loop
 * does the tail and other targets. All lanes compute the same formula. */
static void adamw_range(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t i0, int64_t i1,
                        float b1, float b2, float eps, float lr, float wd, float c1, float c2) {
    int64_t i = i0;
#if defined(__AVX512F__)
    const __m512 vb1 = _mm512_set1_ps(b1), va1 = _mm512_set1_ps(1 - b1), vb2 = _mm512_set1_ps(b2), va2 = _mm512_set1_ps(1 - b2);
    const __m512 veps = _mm512_set1_ps(eps), vlr = _mm512_set1_ps(lr), vwd = _mm512_set1_ps(wd);
    const __m512 vc1 = _mm512_set1_ps(c1), vc2 = _mm512_set1_ps(c2);
    for (; i + 16 <= i1; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i), pi = _mm512_loadu_ps(p + i);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(va1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(va2, gi), gi));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, vc2)), veps);
        __m512 upd = _mm512_add_ps(_mm512_div_ps(_mm512_mul_ps(mi, vc1), den), _mm512_mul_ps(vwd, pi));
        _mm512_storeu_ps(p + i, _mm512_sub_ps(pi, _mm512_mul_ps(vlr, upd)));
    }
#elif defined(__AVX__)
    const __m256 vb1 = _mm256_set1_ps(b1), va1 = _mm256_set1_ps(1 - b1), vb2 = _mm256_set1_ps(b2), va2 = _mm256_set1_ps(1 - b2);
    const __m256 veps = _mm256_set1_ps(eps), vlr = _mm256_set1_ps(lr), vwd = _mm256_set1_ps(wd);
    const __m256 vc1 = _mm256_set1_ps(c1), vc2 = _mm256_set1_ps(c2);
    for (; i + 8 <= i1; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(va1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(va2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, vc2)), veps);
        __m256 upd = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(mi, vc1), den), _mm256_mul_ps(vwd, pi));
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(vlr, upd)));
    }
#endif
    for (; i < i1; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1 - b1) * gi;
        float vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + wd * p[i]);
    }
}

void qr_adamw_step(float *p, const float *g, float *m, float *v, int64_t n, const qr_adamw_cfg *cfg, int t) {
    /* bias corrections in double: beta2^t for t in the thousands is close to
     * 1, and 1 - beta2^t must not lose its digits */
    const float c1 = (float)(1.0 / (1.0 - pow(cfg->beta1, t)));
    const float c2 = (float)(1.0 / (1.0 - pow(cfg->beta2, t)));
    const int64_t chunk = 1 << 16;
#pragma omp parallel for if (n >= QR_OPTIM_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += chunk)
        adamw_range(p, g, m, v, i0, i0 + chunk < n ? i0 + chunk : n, cfg->beta1, cfg->beta2, cfg->eps, cfg->lr, cfg->weight_decay, c1, c2);
}

double qr_grad_norm(const float *g, int64_t n) {
    double s = 0;
#pragma omp parallel for simd reduction(+ : s) if (n >= QR_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

void qr_scale(float *x, int64_t n, float s) {
#pragma omp parallel for simd if (n >= QR_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void qr_axpy(float *y, const float *x, float a, int64_t n) {
#pragma omp parallel for simd if (n >= QR_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

float qr_lr_cosine(int step, int warmup, int total, float lr_max, float lr_min) {
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double ratio = (double)(step - warmup) / (double)(total - warmup);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * ratio));
    return (float)(lr_min + coeff * (lr_max - lr_min));
}
