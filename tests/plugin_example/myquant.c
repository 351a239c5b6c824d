/* myquant.c - an example quantizer plugin built outside the qrun tree,
 * against the installed header only (see docs/PLUGINS.md):
 *
 *     make PREFIX=/usr/local OUT=/some/dir
 *     QRUN_PLUGIN_PATH=/some/dir qrun recipe.lua   -- qr.quantizer("myquant")
 *
 * A signed fixed-point quantizer with F fractional bits (option frac_bits,
 * default 4): with b bits the integers are -2^(b-1) .. 2^(b-1)-1, so
 *     y = clamp(round(x · 2^F), -2^(b-1), 2^(b-1) - 1) · 2^-F
 * (round half to even); scale = 2^-F for every row. Unlike minmax the grid
 * does not depend on the data. Gradient: straight-through inside the
 * representable range [-2^(b-1), 2^(b-1) - 1]·2^-F, zero outside (clipped). */
#include <qrun/qr_plugin.h>

#include <math.h>
#include <stdint.h>

#define WHO "quantizer 'myquant'"

typedef struct {
    const qr_host *host; /* first: QR_STATE_NEW sets it */
    int frac_bits;
} myquant;

static void *mq_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"frac_bits", NULL};
    myquant *q = QR_STATE_NEW(myquant, host, kv, n_kv, known, WHO); /* NULL on an old host, a bad key */
    int64_t f;
    if (!q) return NULL;
    if (host->opt_int(kv, n_kv, "frac_bits", 4, 0, 30, &f, WHO) != QR_PLUGIN_OK) return qr_state_fail(q);
    q->frac_bits = (int)f;
    return q;
}

static int mq_fake(void *self, float *out, const float *x, int64_t rows, int64_t cols, int bits,
                   float *scales) {
    const myquant *q = self;
    const float s = ldexpf(1.0f, q->frac_bits), step = 1.0f / s;
    const float lo = -ldexpf(1.0f, bits - 1), hi = ldexpf(1.0f, bits - 1) - 1.0f;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = out + r * cols;
        for (int64_t j = 0; j < cols; j++)
            if (!isfinite(xr[j])) return q->host->err_set("%s: row %lld has NaN or Inf", WHO, (long long)r);
        for (int64_t j = 0; j < cols; j++) {
            float v = rintf(xr[j] * s);
            v = v < lo ? lo : v > hi ? hi : v;
            yr[j] = v * step;
        }
        if (scales) scales[r] = step;
    }
    return QR_PLUGIN_OK;
}

static void mq_backward(void *self, float *dx, const float *dout, const float *x, int64_t rows, int64_t cols,
                        int bits) {
    const myquant *q = self;
    const float step = ldexpf(1.0f, -q->frac_bits);
    const float lo = -ldexpf(1.0f, bits - 1) * step, hi = (ldexpf(1.0f, bits - 1) - 1.0f) * step;
    for (int64_t i = 0; i < rows * cols; i++)
        dx[i] += (x[i] >= lo && x[i] <= hi) ? dout[i] : 0.0f;
}

QR_QUANTIZER_PLUGIN("myquant", "0.1.0", "public domain",
                    "fixed point with frac_bits fractional bits (example plugin)",
                    .create = mq_create, .destroy = qr_state_free, .fake = mq_fake, .backward = mq_backward);
