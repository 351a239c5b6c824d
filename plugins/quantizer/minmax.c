/* minmax.c - the MinMax quantizer plugin (LLM-QAT's weight/activation
 * quantizer), per row of a row-major (rows, cols) matrix.
 *
 * Symmetric (default), as in LLM-QAT (Liu et al., 2023):
 *     Q = 2^(b-1) - 1,  m = max_j |x_j|,  s = Q / m,  Δ = m / Q
 *     y_j = clamp(round(x_j · s), -Q, Q) · Δ
 * levels {-Q..Q}·Δ (2-bit: {-1, 0, 1}·m); round = half to even (as
 * torch.round); scale (per row) = Δ. A row with m = 0 gives zeros and scale 0.
 *
 * Asymmetric (symmetric=false):
 *     Q = 2^b - 1,  lo = min_j x_j,  hi = max_j x_j,  Δ = (hi - lo) / Q
 *     z = round(-lo / Δ)                        (an integer zero point)
 *     q_j = clamp(round(x_j / Δ) + z, 0, Q),    y_j = (q_j - z) · Δ
 * scale = Δ. A constant row (hi = lo, or Δ underflowing to 0) is returned
 * unchanged with scale 0 (all-zero rows give zeros).
 *
 * In float: s = Q/m (resp. 1/Δ) and Δ are computed once per row in float
 * and the division by Δ is a multiplication by that reciprocal. A row whose
 * reciprocal overflows float (m below about Q·2^-128) takes a double path.
 *
 * Gradient: straight-through, dx += dout. Option ste_clip=c (> 0) zeroes it
 * where |x| > c (LLM-QAT's variant with c = 2); default 0 = off.
 *
 * NaN or Inf in a row is an error naming the row. */
#include "qr_plugin.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#define WHO "quantizer 'minmax'"

typedef struct {
    const qr_host *host;
    int symmetric;
    float ste_clip;
} minmax;

static void *mm_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"symmetric", "ste_clip", NULL};
    minmax *q = QR_STATE_NEW(minmax, host, kv, n_kv, known, WHO);
    double clip;
    if (!q) return NULL;
    if (host->opt_bool(kv, n_kv, "symmetric", 1, &q->symmetric, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "ste_clip", 0.0, 0.0, FLT_MAX, &clip, WHO) != QR_PLUGIN_OK)
        return qr_state_fail(q);
    q->ste_clip = (float)clip;
    return q;
}

/* min, max and whether every element is finite (x·0 is NaN for NaN/Inf). */
static int row_range(const float *x, int64_t n, float *lo, float *hi) {
    float mn = x[0], mx = x[0], z = 0.0f;
#pragma omp simd reduction(min : mn) reduction(max : mx) reduction(+ : z)
    for (int64_t j = 0; j < n; j++) {
        mn = x[j] < mn ? x[j] : mn;
        mx = x[j] > mx ? x[j] : mx;
        z += x[j] * 0.0f;
    }
    *lo = mn;
    *hi = mx;
    return z == 0.0f;
}

static void sym_row(float *y, const float *x, int64_t n, float m, int bits, float *scale) {
    const float Q = (float)((1 << (bits - 1)) - 1);
    if (m == 0.0f) {
        for (int64_t j = 0; j < n; j++)
            y[j] = 0.0f;
        *scale = 0.0f;
        return;
    }
    const float s = Q / m, d = m / Q;
    *scale = d;
    if (!(s <= FLT_MAX)) { /* tiny m: Q/m overflows float */
        const double sd = (double)Q / m, dd = (double)m / Q;
        for (int64_t j = 0; j < n; j++)
            y[j] = (float)(rint(x[j] * sd) * dd);
        return;
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float q = rintf(x[j] * s);
        q = q > Q ? Q : q;
        q = q < -Q ? -Q : q;
        y[j] = q * d;
    }
}

static void asym_row(float *y, const float *x, int64_t n, float lo, float hi, int bits, float *scale) {
    const float Q = (float)((1u << bits) - 1u);
    const float d = (float)(((double)hi - (double)lo) / Q);
    const float inv = (float)(Q / ((double)hi - (double)lo));
    if (!(d > 0.0f) || !(inv <= FLT_MAX)) { /* constant row (or a range that underflows) */
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j];
        *scale = 0.0f;
        return;
    }
    *scale = d;
    const float z = rintf(-lo * inv);
    if (fabsf(z) > 4194304.0f) { /* far from 0: q + z would lose integers in float */
        const double dd = ((double)hi - (double)lo) / Q, zd = rint(-lo / dd);
        for (int64_t j = 0; j < n; j++) {
            double qd = rint(x[j] / dd) + zd;
            qd = qd > Q ? Q : qd < 0 ? 0 : qd;
            y[j] = (float)((qd - zd) * dd);
        }
        return;
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float q = rintf(x[j] * inv) + z;
        q = q > Q ? Q : q;
        q = q < 0.0f ? 0.0f : q;
        y[j] = (q - z) * d;
    }
}

static int mm_fake(void *self, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                   float *scales) {
    const minmax *q = self;
    if (bits < 2 || bits > 16) return q->host->err_set("%s: bits %d: expected 2..16", WHO, bits);
    int64_t bad = -1;
#pragma omp parallel for if (rows * cols > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols, lo, hi, sc;
        if (!row_range(xr, cols, &lo, &hi)) {
#pragma omp critical(qr_minmax_bad)
            if (bad < 0 || r < bad) bad = r;
            continue;
        }
        if (q->symmetric) {
            float m = hi > -lo ? hi : -lo;
            sym_row(yr, xr, cols, m, bits, &sc);
        } else {
            asym_row(yr, xr, cols, lo, hi, bits, &sc);
        }
        if (scales) scales[r] = sc;
    }
    if (bad >= 0)
        return q->host->err_set("%s: row %lld of (%lld, %lld) has NaN or Inf", WHO, (long long)bad,
                                (long long)rows, (long long)cols);
    return QR_PLUGIN_OK;
}

static void mm_backward(void *self, float *dx, const float *dout, const float *x, int64_t rows, int64_t cols,
                        int bits) {
    (void)bits; /* straight-through: the same at every bit-width */
    const minmax *q = self;
    const int64_t n = rows * cols;
    const float c = q->ste_clip;
    if (c > 0.0f) {
#pragma omp parallel for simd if (n > 32768) schedule(static)
        for (int64_t i = 0; i < n; i++)
            dx[i] += fabsf(x[i]) <= c ? dout[i] : 0.0f;
    } else {
#pragma omp parallel for simd if (n > 32768) schedule(static)
        for (int64_t i = 0; i < n; i++)
            dx[i] += dout[i];
    }
}

QR_QUANTIZER_PLUGIN("minmax", "1.0.0", "same as qrun",
                    "per-row MinMax: symmetric round(x*Q/max|x|) as LLM-QAT (symmetric=false: "
                    "asymmetric with a zero point), straight-through gradient",
                    .create = mm_create, .destroy = qr_state_free, .fake = mm_fake, .backward = mm_backward);
