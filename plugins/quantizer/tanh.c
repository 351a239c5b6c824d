/* tanh.c - a DoReFa-style quantizer plugin (Zhou et al., 2016, weights),
 * per row of a row-major (rows, cols) matrix, rescaled to the input's units.
 *
 *     m = max_j |x_j|,  T = tanh(m) = max_j |tanh(x_j)|,  N = 2^b - 1
 *     u_j = tanh(x_j) / (2T) + 1/2                      in [0, 1]
 *     q_j = round(N · u_j)                              in {0..N}
 *     y_j = m · (2 q_j / N - 1)                         in [-m, m]
 * DoReFa's weight quantizer is 2·q/N - 1 in [-1, 1]; we multiply by m so
 * that the output is in the input's units and the extreme element maps to
 * itself (x = ±m gives ±m). The 2^b output levels are uniform in [-m, m]
 * (step 2m/N; there is no zero level: 2-bit levels are {-1, -1/3, 1/3, 1}·m),
 * while the choice of level follows tanh(x)/tanh(m): close to x/m for
 * |x| << 1 (typical weights), compressed towards ±m for a row with a large
 * range (tanh saturates), as in DoReFa, which used it for weights only.
 * round = half to even; scale (per row) = the step 2m/N. A row with m = 0
 * gives zeros.
 *
 * In float: a = N/(2T), q = round(tanh(x)·a + N/2) clamped to [0, N],
 * y = ((2q - N) / N) · m, with tanh(x) from fast_tanhf (a few ulps).
 *
 * Gradient: the transform's own, straight-through at the rounding, with m
 * and T taken as constants: dy/dx = m · (1 - tanh²(x)) / T; a row with
 * m = 0 passes the gradient through (the limit as m -> 0 is 1).
 *
 * Option rescale=atanh maps back through the inverse transform instead:
 *     y_j = atanh(T · (2 q_j / N - 1))          (y = ±m exactly when q = N or 0)
 * so the output is in the input's units for any range: a non-uniform
 * quantizer whose levels atanh(T·w) are dense near 0 and sparse near ±m
 * (it converges to x as b grows; rescale=max has a floor, the tanh
 * distortion). scale (per row) = m. Gradient, straight-through at the
 * rounding: dy/dx = (1 - tanh²(x)) / (1 - tanh²(y)) (1 where the
 * denominator underflows). Computed in double (T = tanh(m) in double).
 *
 * NaN or Inf in a row is an error naming the row. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define WHO "quantizer 'tanh'"

typedef struct {
    const qr_host *host;
    int inverse; /* rescale=atanh */
} tanhq;

static void *tq_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"rescale", NULL}, *const rescale[] = {"max", "atanh", NULL};
    tanhq *q = QR_STATE_NEW(tanhq, host, kv, n_kv, known, WHO);
    if (q && host->opt_choice(kv, n_kv, "rescale", rescale, 0, &q->inverse, WHO) != QR_PLUGIN_OK)
        return qr_state_fail(q);
    return q;
}

/* tanh in float, vectorisable (no libm call), within a few ulps of tanhf:
 * an odd polynomial for |x| < 0.625 (Cephes' tanhf coefficients), else
 * 1 - 2/(e^(2|x|) + 1) with e^y = 2^n·e^r, n = round(y/ln 2), |r| <= ln2/2,
 * e^r by a degree-6 polynomial (Cephes' expf coefficients). */
static inline float fast_tanhf(float x) {
    float a = fabsf(x), z = x * x;
    float p =
        ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) *
             z -
         3.33332819422e-1f) *
            z * x +
        x;
    float y = 2.0f * (a < 9.0f ? a : 9.0f); /* tanh is 1 in float beyond 9 */
    float n = rintf(y * 1.44269504089f);
    float r = (y - n * 0.693359375f) + n * 2.12194440e-4f;
    float e =
        (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
          1.6666665459e-1f) *
             r +
         5.0000001201e-1f) *
            r * r +
        r + 1.0f;
    int32_t bits;
    memcpy(&bits, &e, sizeof bits);
    bits += (int32_t)n << 23; /* e·2^n: n <= 26, no overflow */
    memcpy(&e, &bits, sizeof e);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? p : big;
}

/* max |x| and whether every element is finite (x·0 is NaN for NaN/Inf). */
static int row_absmax(const float *x, int64_t n, float *m) {
    float mx = 0.0f, z = 0.0f;
#pragma omp simd reduction(max : mx) reduction(+ : z)
    for (int64_t j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        mx = a > mx ? a : mx;
        z += x[j] * 0.0f;
    }
    *m = mx;
    return z == 0.0f;
}

static void tanh_row(float *y, const float *x, int64_t n, float m, int bits, float *scale) {
    if (m == 0.0f) {
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.0f;
        *scale = 0.0f;
        return;
    }
    const float N = (float)((1u << bits) - 1u);
    const float T = fast_tanhf(m), a = N / (2.0f * T), h = 0.5f * N;
    *scale = 2.0f * m / N;
    /* y may be x: each element is read before it is written */
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float q = rintf(fast_tanhf(x[j]) * a + h);
        q = q > N ? N : q;
        q = q < 0.0f ? 0.0f : q;
        y[j] = (2.0f * q - N) / N * m; /* exactly ±m at the ends */
    }
}

/* rescale=atanh: the level index q of x (as in tanh_row), in double. */
static double atanh_level(double t, double a, double h, double N) {
    double q = rint(t * a + h);
    return q > N ? N : q < 0.0 ? 0.0 : q;
}

static void atanh_row(float *y, const float *x, int64_t n, float m, int bits, float *scale) {
    *scale = m;
    if (m == 0.0f) {
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.0f;
        return;
    }
    const double N = (double)((1u << bits) - 1u), T = tanh((double)m), a = N / (2.0 * T), h = 0.5 * N;
    for (int64_t j = 0; j < n; j++) {
        double q = atanh_level(tanh((double)x[j]), a, h, N);
        y[j] = q == N ? m : q == 0.0 ? -m : (float)atanh(T * (2.0 * q / N - 1.0));
    }
}

static int tq_fake(void *self, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                   float *scales) {
    const tanhq *q = self;
    if (bits < 2 || bits > 16) return q->host->err_set("%s: bits %d: expected 2..16", WHO, bits);
    int64_t bad = -1;
#pragma omp parallel for if (rows * cols > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float m, sc;
        if (!row_absmax(xr, cols, &m)) {
#pragma omp critical(qr_tanh_bad)
            if (bad < 0 || r < bad) bad = r;
            continue;
        }
        if (q->inverse)
            atanh_row(out + r * cols, xr, cols, m, bits, &sc);
        else
            tanh_row(out + r * cols, xr, cols, m, bits, &sc);
        if (scales) scales[r] = sc;
    }
    if (bad >= 0)
        return q->host->err_set("%s: row %lld of (%lld, %lld) has NaN or Inf", WHO, (long long)bad,
                                (long long)rows, (long long)cols);
    return QR_PLUGIN_OK;
}

static void tq_backward(void *self, float *dx, const float *dout, const float *x, int64_t rows, int64_t cols,
                        int bits) {
    const tanhq *q = self;
#pragma omp parallel for if (rows * cols > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *gr = dout + r * cols;
        float *dr = dx + r * cols, m;
        row_absmax(xr, cols, &m);
        if (m == 0.0f) {
            for (int64_t j = 0; j < cols; j++)
                dr[j] += gr[j];
            continue;
        }
        if (q->inverse) {
            const double N = (double)((1u << bits) - 1u), T = tanh((double)m), a = N / (2.0 * T), h = 0.5 * N;
            for (int64_t j = 0; j < cols; j++) {
                double t = tanh((double)xr[j]), l = atanh_level(t, a, h, N), tq = T * (2.0 * l / N - 1.0);
                double den = 1.0 - tq * tq;
                dr[j] += (float)(gr[j] * (den > 0.0 ? (1.0 - t * t) / den : 1.0));
            }
            continue;
        }
        const float c = m / fast_tanhf(m);
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) {
            float t = fast_tanhf(xr[j]);
            dr[j] += gr[j] * c * (1.0f - t * t);
        }
    }
}

QR_QUANTIZER_PLUGIN("tanh", "1.0.0", "same as qrun",
                    "per-row DoReFa: uniform levels on tanh(x)/max|tanh(x)|, rescaled by max|x|; "
                    "gradient of the tanh transform",
                    .create = tq_create, .destroy = qr_state_free, .fake = tq_fake, .backward = tq_backward);
