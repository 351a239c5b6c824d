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
 * y = q·(2m/N) - m.
 *
 * Gradient: the transform's own, straight-through at the rounding, with m
 * and T taken as constants: dy/dx = m · (1 - tanh²(x)) / T; a row with
 * m = 0 passes the gradient through (the limit as m -> 0 is 1).
 *
 * NaN or Inf in a row is an error naming the row. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define WHO "quantizer 'tanh'"

typedef struct {
    const qr_host *host;
} tanhq;

static void *tq_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {NULL};
    if (!QR_HOST_HAS(host, opt_int)) {
        host->err_set("%s: host services too old (struct_size %u)", WHO, host->struct_size);
        return NULL;
    }
    if (host->opt_check(kv, n_kv, known, WHO) != QR_PLUGIN_OK) return NULL;
    tanhq *q = calloc(1, sizeof *q);
    if (!q) {
        host->err_set("%s: out of memory", WHO);
        return NULL;
    }
    q->host = host;
    return q;
}

static void tq_destroy(void *self) { free(self); }

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
        for (int64_t j = 0; j < n; j++) y[j] = 0.0f;
        *scale = 0.0f;
        return;
    }
    const float N = (float)((1u << bits) - 1u);
    const float T = tanhf(m), a = N / (2.0f * T), h = 0.5f * N, step = 2.0f * m / N;
    *scale = step;
    /* tanhf is a libm call (not vectorised): one pass for it, in place, then
     * the vectorisable rest. y may be x: each element is read before written. */
    for (int64_t j = 0; j < n; j++) y[j] = tanhf(x[j]);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float q = rintf(y[j] * a + h);
        q = q > N ? N : q;
        q = q < 0.0f ? 0.0f : q;
        y[j] = q * step - m;
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
        tanh_row(out + r * cols, xr, cols, m, bits, &sc);
        if (scales) scales[r] = sc;
    }
    if (bad >= 0)
        return q->host->err_set("%s: row %lld of (%lld, %lld) has NaN or Inf", WHO, (long long)bad,
                                (long long)rows, (long long)cols);
    return QR_PLUGIN_OK;
}

static void tq_backward(void *self, float *dx, const float *dout, const float *x, int64_t rows,
                        int64_t cols, int bits) {
#pragma omp parallel for if (rows * cols > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *gr = dout + r * cols;
        float *dr = dx + r * cols, m;
        row_absmax(xr, cols, &m);
        if (m == 0.0f) {
            for (int64_t j = 0; j < cols; j++) dr[j] += gr[j];
            continue;
        }
        const float c = m / tanhf(m);
        for (int64_t j = 0; j < cols; j++) {
            float t = tanhf(xr[j]);
            dr[j] += gr[j] * c * (1.0f - t * t);
        }
    }
}

static const qr_quantizer_ops tanh_ops = {
    .struct_size = sizeof(qr_quantizer_ops),
    .create = tq_create,
    .destroy = tq_destroy,
    .fake = tq_fake,
    .backward = tq_backward,
};

static const qr_entry entries[] = {
    {.kind = QR_KIND_QUANTIZER,
     .name = "tanh",
     .description = "per-row DoReFa: uniform levels on tanh(x)/max|tanh(x)|, rescaled by max|x|; "
                    "gradient of the tanh transform",
     .ops = &tanh_ops},
};

static const qr_entry *get_entry(uint32_t i) { return i < 1 ? &entries[i] : NULL; }

static const qr_plugin_desc desc = {
    .abi_major = QR_PLUGIN_ABI_MAJOR,
    .abi_minor = QR_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(qr_plugin_desc),
    .name = "tanh",
    .version = "1.0.0",
    .license = "same as qrun",
    .n_entries = 1,
    .get_entry = get_entry,
    .get_ext = NULL,
};

QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &desc; }
