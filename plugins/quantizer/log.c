/* log.c - a logarithmic (power-of-two) quantizer plugin, per row of a
 * row-major (rows, cols) matrix.
 *
 *     m = max_j |x_j|,  K = 2^(b-1) - 2
 *     k_j = round(log2(m / |x_j|))       (rounding in the log domain)
 *     y_j = sign(x_j) · m · 2^(-k_j)     if x_j != 0 and k_j <= K
 *     y_j = 0                            otherwise
 * The levels are ±m·2^-k, k = 0..K, and 0: one sign bit and b-1 bits for k
 * with one code kept for zero, so 2^b - 1 levels (2-bit: {-m, 0, m};
 * 4-bit: ±m·{1, 1/2, ..., 1/64} and 0). The rounding boundaries are the
 * geometric midpoints: |x| rounds to m·2^-k for m·2^(-k-1/2) < |x| <
 * m·2^(-k+1/2) (never a tie: √2 is irrational); so |x| < m·2^(-K-1/2)
 * (below the smallest level by more than half a step in log2) becomes 0. scale (per row) = m. A row with
 * m = 0 gives zeros.
 *
 * Exactly as computed: r = |x|/m in double, written r = f·2^e with f in
 * [1, 2); k = -e - [f > √2] (no log2 call; √2 is irrational, so there are
 * no ties); y = (float)(m · 2^-k) with the sign of x.
 *
 * Gradient: straight-through, dx += dout. NaN or Inf in a row is an error
 * naming the row. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define WHO "quantizer 'log'"

/* The mantissa bits of double(√2); double(√2) > √2, so for a double f in
 * [1, 2): f > √2 <=> mantissa(f) >= SQRT2_MANT. */
#define SQRT2_MANT INT64_C(0x6a09e667f3bcd)
#define MANT_MASK ((INT64_C(1) << 52) - 1)

typedef struct {
    const qr_host *host;
} logq;

static void *lq_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {NULL};
    return QR_STATE_NEW(logq, host, kv, n_kv, known, WHO);
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

static void log_row(float *y, const float *x, int64_t n, float m, int bits) {
    const int64_t K = (INT64_C(1) << (bits - 1)) - 2;
    const double md = m;
    if (m == 0.0f) {
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.0f;
        return;
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        double r = fabs((double)x[j]) / md; /* in [0, 1]; >= 2^-277 unless 0 */
        int64_t b;
        memcpy(&b, &r, sizeof b);
        int64_t up = (b & MANT_MASK) >= SQRT2_MANT;
        int64_t k = 1023 - (b >> 52) - up;
        k = k < 0 ? 0 : k;
        /* m·2^-k is 0 in float well before k = 1000; keep 2^-k a normal
         * double. k > K (which includes x = 0) selects the zero level. */
        int64_t kc = k > 1000 ? 1000 : k;
        int64_t pb = (1023 - kc) << 52;
        double p;
        memcpy(&p, &pb, sizeof p);
        double keep = k > K ? 0.0 : 1.0;
        y[j] = copysignf((float)(md * p * keep), x[j]);
    }
}

static int lq_fake(void *self, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                   float *scales) {
    const logq *q = self;
    if (bits < 2 || bits > 16) return q->host->err_set("%s: bits %d: expected 2..16", WHO, bits);
    int64_t bad = -1;
#pragma omp parallel for if (rows * cols > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float m;
        if (!row_absmax(xr, cols, &m)) {
#pragma omp critical(qr_log_bad)
            if (bad < 0 || r < bad) bad = r;
            continue;
        }
        log_row(out + r * cols, xr, cols, m, bits);
        if (scales) scales[r] = m;
    }
    if (bad >= 0)
        return q->host->err_set("%s: row %lld of (%lld, %lld) has NaN or Inf", WHO, (long long)bad,
                                (long long)rows, (long long)cols);
    return QR_PLUGIN_OK;
}

static void lq_backward(void *self, float *dx, const float *dout, const float *x, int64_t rows, int64_t cols,
                        int bits) {
    (void)self, (void)x, (void)bits; /* straight-through: independent of x */
    const int64_t n = rows * cols;
#pragma omp parallel for simd if (n > 32768) schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] += dout[i];
}

QR_QUANTIZER_PLUGIN("log", "1.0.0", "same as qrun",
                    "per-row power-of-two levels sign(x)*max|x|*2^-k, k in 0..2^(b-1)-2 rounded in "
                    "log2, straight-through gradient",
                    .create = lq_create, .destroy = qr_state_free, .fake = lq_fake, .backward = lq_backward);
