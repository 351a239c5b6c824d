/* test_quantizers.c - the quantizer plugins (minmax, log, tanh) through the
 * real loader on the plugins built into QR_BUILD_DIR/plugins:
 *   - hand-checked values at 2, 4 and 8 bits (tolerance 1e-6);
 *   - edge cases: all-zero rows, one huge outlier, constant rows, 2-bit
 *     levels, NaN/Inf refused naming the row, bits 1/17 refused, bits 32 an
 *     identity copy, in place = out of place;
 *   - round-trip error budgets per bit-width on Gaussian data (printed);
 *   - backward: straight-through (minmax, log) and tanh's own gradient;
 *   - the optimized kernels against plain reference loops in double
 *     (max difference printed; elements within 1e-4 of a rounding tie are
 *     counted apart, since float and double may round them differently);
 *   - weight groups (core/model/linear.c): qr_linear_fake_grouped against
 *     fake() called on each group alone (exact: max difference 0) and the
 *     reference loops per group (1e-6), groups dividing the row, leaving a
 *     tail, of 2 and of the whole row (= per row, bit for bit); bad groups
 *     and NaN refused naming the group layout; the grouped backward
 *     (straight-through, the ste_clip mask, tanh's per-group gradient); a
 *     linear layer with groups, forward and backward, against double loops
 *     (1e-5), its default group and the configuration's overriding it;
 *   - timings of fake() on a 1024x768 matrix (printed, not checked). */
#include "harness.h"
#include "model/linear.h"
#include "plugin.h"
#include "qr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- data ---- */

static uint64_t rng_state = 0x1234567;
static double urand(void) { /* xorshift64*, uniform in (0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * UINT64_C(2685821657736338717)) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}
static float gauss(void) { return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand())); }

static float *gaussian(int64_t n, float sigma) {
    float *x = qr_xmalloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = sigma * gauss();
    return x;
}

static double maxabs_diff(const float *a, const double *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

static qr_quantizer *make(const char *name, const char *k, const char *v) {
    const char *kv[2] = {k, v};
    qr_quantizer *q = qr_quantizer_new(name, kv, k ? 1 : 0);
    if (!q) fprintf(stderr, "qr_quantizer_new(%s): %s\n", name, qr_err_msg());
    return q;
}

/* ---- reference loops (double, straight from the definitions) ---- */

/* Each writes y (n) for one row and sets tie[j] when the value before
 * rounding, v, is within 1e-4 + 2e-7·range of a rounding boundary: range is
 * the span of the level index (Q, N), since float's few-ulp errors in x·s or
 * tanh(x) scale with it (0.013 index units at 16 bits). */
static int near_tie(double v, double range) { return fabs(v - floor(v) - 0.5) < 1e-4 + 2e-7 * range; }

static void ref_minmax_sym(const float *x, int64_t n, int b, double *y, char *tie) {
    double m = 0, Q = (1 << (b - 1)) - 1;
    for (int64_t j = 0; j < n; j++)
        m = fmax(m, fabs(x[j]));
    for (int64_t j = 0; j < n; j++) {
        if (m == 0) {
            y[j] = 0;
            tie[j] = 0;
            continue;
        }
        double v = x[j] * Q / m, q = fmin(fmax(nearbyint(v), -Q), Q);
        tie[j] = near_tie(v, 2 * Q);
        y[j] = q * m / Q;
    }
}

static void ref_minmax_asym(const float *x, int64_t n, int b, double *y, char *tie) {
    double lo = x[0], hi = x[0], Q = (1 << b) - 1;
    for (int64_t j = 0; j < n; j++)
        lo = fmin(lo, x[j]), hi = fmax(hi, x[j]);
    double d = (hi - lo) / Q, z = nearbyint(-lo / d);
    for (int64_t j = 0; j < n; j++) {
        double v = x[j] / d, q = fmin(fmax(nearbyint(v) + z, 0), Q);
        tie[j] = near_tie(v, Q) || near_tie(-lo / d, Q);
        y[j] = (q - z) * d;
    }
}

static void ref_log(const float *x, int64_t n, int b, double *y, char *tie) {
    double m = 0, K = (1 << (b - 1)) - 2;
    for (int64_t j = 0; j < n; j++)
        m = fmax(m, fabs(x[j]));
    for (int64_t j = 0; j < n; j++) {
        tie[j] = 0;
        if (x[j] == 0 || m == 0) {
            y[j] = 0;
            continue;
        }
        double l = log2(m / fabs(x[j])), k = nearbyint(l);
        tie[j] = near_tie(l, 0);
        y[j] = k > K ? 0.0 : copysign(m * exp2(-k), x[j]);
    }
}

static void ref_tanh(const float *x, int64_t n, int b, double *y, char *tie) {
    double m = 0, N = (1 << b) - 1;
    for (int64_t j = 0; j < n; j++)
        m = fmax(m, fabs(x[j]));
    double T = tanh(m);
    for (int64_t j = 0; j < n; j++) {
        tie[j] = 0;
        if (m == 0) {
            y[j] = 0;
            continue;
        }
        double v = N * (tanh(x[j]) / (2 * T) + 0.5), q = fmin(fmax(nearbyint(v), 0), N);
        tie[j] = near_tie(v, N);
        y[j] = m * (2 * q / N - 1);
    }
}

static void ref_tanh_atanh(const float *x, int64_t n, int b, double *y, char *tie) {
    double m = 0, N = (1 << b) - 1;
    for (int64_t j = 0; j < n; j++)
        m = fmax(m, fabs(x[j]));
    double T = tanh(m);
    for (int64_t j = 0; j < n; j++) {
        tie[j] = 0;
        if (m == 0) {
            y[j] = 0;
            continue;
        }
        double v = N * (tanh(x[j]) / (2 * T) + 0.5), q = fmin(fmax(nearbyint(v), 0), N);
        tie[j] = near_tie(v, N);
        y[j] = q == N ? m : q == 0 ? -m : atanh(T * (2 * q / N - 1));
    }
}

typedef struct {
    const char *name, *key, *val, *label;
    void (*ref)(const float *, int64_t, int, double *, char *);
} qspec;

static const qspec specs[] = {
    {"minmax", NULL, NULL, "minmax", ref_minmax_sym},
    {"minmax", "symmetric", "false", "minmax asym", ref_minmax_asym},
    {"log", NULL, NULL, "log", ref_log},
    {"tanh", NULL, NULL, "tanh", ref_tanh},
    {"tanh", "rescale", "atanh", "tanh atanh", ref_tanh_atanh},
};
#define N_SPECS ((int)(sizeof specs / sizeof specs[0]))

/* ---- checks ---- */

static void check_loaded(void) {
    int rc = qr_plugins_init();
    test_cond("qr_plugins_init succeeds", rc == QR_OK);
    if (rc != QR_OK) fprintf(stderr, "  %s\n", qr_err_msg());
    const char *names[] = {"minmax", "log", "tanh"};
    for (int i = 0; i < 3; i++) {
        const qr_plugin_info *p = qr_plugin_find(QR_KIND_QUANTIZER, names[i]);
        test_cond("quantizer plugin found", p != NULL);
        if (!p) {
            fprintf(stderr, "  quantizer '%s' not found: build the plugins first\n", names[i]);
            continue;
        }
        printf("quantizer %-7s from %s\n", names[i], p->file);
        const char *env = getenv("QRUN_PLUGIN_PATH");
        if (!env || !*env)
            test_cond("quantizer loaded from the build tree",
                      strncmp(p->file, QR_BUILD_DIR "/plugins/", strlen(QR_BUILD_DIR "/plugins/")) == 0);
    }
}

/* fake() of one row; compare with want (tolerance 1e-6). */
static void check_row(const char *what, qr_quantizer *q, const float *x, int n, int bits, const double *want,
                      double want_scale) {
    float y[16], s = -1;
    int rc = qr_quantizer_fake(q, y, x, 1, n, bits, &s);
    test_cond(what, rc == QR_OK);
    if (rc != QR_OK) {
        fprintf(stderr, "  %s: %s\n", what, qr_err_msg());
        return;
    }
    double d = maxabs_diff(y, want, n);
    printf("%-28s maxdiff %.3g (tol 1e-6), scale %.9g\n", what, d, s);
    test_cond(what, d <= 1e-6);
    test_cond(what, fabs(s - want_scale) <= 1e-6);
}

static void check_hand_values(void) {
    /* x = {1, -0.5, 0.25, 0.1, -0.03, 0, 0.012, -0.010, 1e-3}; m = 1 */
    const float x[9] = {1, -0.5f, 0.25f, 0.1f, -0.03f, 0, 0.012f, -0.010f, 1e-3f};
    qr_quantizer *mm = make("minmax", NULL, NULL), *ma = make("minmax", "symmetric", "false"),
                 *lg = make("log", NULL, NULL), *th = make("tanh", NULL, NULL);
    test_cond("create quantizers", mm && ma && lg && th);
    if (!mm || !ma || !lg || !th) goto out;
    {
        /* symmetric: Q = 2^(b-1)-1, round(x·Q) half to even (-0.5·7 = -3.5 -> -4; -0.5·127 = -63.5 -> -64) */
        const double s2[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
        const double s4[9] = {1, -4 / 7., 2 / 7., 1 / 7., 0, 0, 0, 0, 0};
        const double s8[9] = {1, -64 / 127., 32 / 127., 13 / 127., -4 / 127., 0, 2 / 127., -1 / 127., 0};
        check_row("minmax 2-bit", mm, x, 9, 2, s2, 1.0);
        check_row("minmax 4-bit", mm, x, 9, 4, s4, 1 / 7.);
        check_row("minmax 8-bit", mm, x, 9, 8, s8, 1 / 127.);
        /* asymmetric: lo = -0.5, hi = 1; 2-bit Δ = 0.5, z = 1; 4-bit Δ = 0.1, z = 5
         * (0.25/0.1 = 2.5 -> 2); 8-bit Δ = 1/170, z = 85 (42.5 -> 42, -1.7 -> -2) */
        const double a2[9] = {1, -0.5, 0, 0, 0, 0, 0, 0, 0};
        const double a4[9] = {1, -0.5, 0.2, 0.1, 0, 0, 0, 0, 0};
        const double a8[9] = {1, -0.5, 42 / 170., 17 / 170., -5 / 170., 0, 2 / 170., -2 / 170., 0};
        check_row("minmax asym 2-bit", ma, x, 9, 2, a2, 0.5);
        check_row("minmax asym 4-bit", ma, x, 9, 4, a4, 0.1);
        check_row("minmax asym 8-bit", ma, x, 9, 8, a8, 1 / 170.);
        /* log: K = 2^(b-1)-2 (0, 6, 126); 0.1 -> 2^-3 (log2 10 = 3.32); -0.03 ->
         * -2^-5 (5.06); 0.012 -> 2^-6 (6.38); -0.010 -> 7 (6.64) > K=6 -> 0 at
         * 4 bits; 1e-3 -> 2^-10 (9.97) */
        const double l2[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
        const double l4[9] = {1, -0.5, 0.25, 0.125, -0.03125, 0, 0.015625, 0, 0};
        const double l8[9] = {1, -0.5, 0.25, 0.125, -0.03125, 0, 0.015625, -0.0078125, 0.0009765625};
        check_row("log 2-bit", lg, x, 9, 2, l2, 1.0);
        check_row("log 4-bit", lg, x, 9, 4, l4, 1.0);
        check_row("log 8-bit", lg, x, 9, 8, l8, 1.0);
        /* tanh: x = {2, -2, 1, -1, 0.5, 0, -0.1}, m = 2, T = tanh 2 = 0.964028;
         * N·u = N·(tanh(x)/(2T) + 1/2): at N = 15: 15, 0, 13.43, 1.57, 11.10,
         * 7.5 (-> 8), 6.72; y = 2·(2q/N - 1) */
        const float t[7] = {2, -2, 1, -1, 0.5f, 0, -0.1f};
        const double t2[7] = {2, -2, 2, -2, 2 / 3., 2 / 3., -2 / 3.};
        const double t4[7] = {2,
                              -2,
                              2 * (26 / 15. - 1),
                              2 * (4 / 15. - 1),
                              2 * (22 / 15. - 1),
                              2 * (16 / 15. - 1),
                              2 * (14 / 15. - 1)};
        const double t8[7] = {2,
                              -2,
                              2 * (456 / 255. - 1),
                              2 * (54 / 255. - 1),
                              2 * (378 / 255. - 1),
                              2 * (256 / 255. - 1),
                              2 * (228 / 255. - 1)};
        check_row("tanh 2-bit", th, t, 7, 2, t2, 4 / 3.);
        check_row("tanh 4-bit", th, t, 7, 4, t4, 4 / 15.);
        check_row("tanh 8-bit", th, t, 7, 8, t8, 4 / 255.);
    }
out:
    qr_quantizer_free(mm);
    qr_quantizer_free(ma);
    qr_quantizer_free(lg);
    qr_quantizer_free(th);
}

static void check_edges(void) {
    for (int s = 0; s < N_SPECS; s++) {
        qr_quantizer *q = make(specs[s].name, specs[s].key, specs[s].val);
        test_cond("create", q != NULL);
        if (!q) continue;
        char what[96];
        /* all-zero row -> zeros, scale 0, no NaN */
        float z[3 * 5] = {0}, y[3 * 5], sc[3];
        z[5] = 1, z[6] = -2; /* rows 0 and 2 all zero */
        for (int bits = 2; bits <= 16; bits += 14) {
            snprintf(what, sizeof what, "%s %d-bit: all-zero rows give zeros", specs[s].label, bits);
            int ok = qr_quantizer_fake(q, y, z, 3, 5, bits, sc) == QR_OK;
            for (int j = 0; j < 5; j++)
                ok &= y[j] == 0 && y[10 + j] == 0;
            ok &= sc[0] == 0 && sc[2] == 0 && isfinite(sc[1]);
            test_cond(what, ok);
        }
        /* NaN / Inf refused, naming the row */
        float bad[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3};
        bad[2 * 3 + 1] = INFINITY;
        snprintf(what, sizeof what, "%s: Inf refused naming row 2", specs[s].label);
        test_cond(what, qr_quantizer_fake(q, y, bad, 4, 3, 4, NULL) == QR_ERR &&
                            strstr(qr_err_msg(), "row 2") && strstr(qr_err_msg(), specs[s].name));
        bad[2 * 3 + 1] = 1, bad[3 * 3] = NAN;
        snprintf(what, sizeof what, "%s: NaN refused naming row 3", specs[s].label);
        test_cond(what,
                  qr_quantizer_fake(q, y, bad, 4, 3, 4, NULL) == QR_ERR && strstr(qr_err_msg(), "row 3"));
        if (s == 0) printf("NaN message: %s\n", qr_err_msg());
        /* bits outside 2..16 (and not 32) refused; 32 is an identity copy */
        float one[3] = {0.3f, -1.7f, 2.9f}, o[3];
        for (int b = 0; b < 4; b++) {
            int bits = (int[]){1, 17, 0, 33}[b];
            snprintf(what, sizeof what, "%s: bits %d refused", specs[s].label, bits);
            test_cond(what, qr_quantizer_fake(q, o, one, 1, 3, bits, NULL) == QR_ERR &&
                                strstr(qr_err_msg(), "bits"));
        }
        snprintf(what, sizeof what, "%s: bits 32 = identity", specs[s].label);
        sc[0] = 1;
        test_cond(what, qr_quantizer_fake(q, o, one, 1, 3, 32, sc) == QR_OK && !memcmp(o, one, sizeof o) &&
                            sc[0] == 0);
        /* in place = out of place */
        float *g = gaussian(64 * 100, 1.0f), *a = qr_xmalloc(64 * 100 * sizeof *a);
        int ok = qr_quantizer_fake(q, a, g, 64, 100, 4, NULL) == QR_OK &&
                 qr_quantizer_fake(q, g, g, 64, 100, 4, NULL) == QR_OK;
        snprintf(what, sizeof what, "%s: in place = out of place", specs[s].label);
        test_cond(what, ok && !memcmp(a, g, 64 * 100 * sizeof *a));
        free(g);
        free(a);
        qr_quantizer_free(q);
    }
    qr_quantizer *mm = make("minmax", NULL, NULL), *ma = make("minmax", "symmetric", "false");
    if (!mm || !ma) return;
    /* one huge outlier: Δ = 1000/127 = 7.87, so every other value rounds to 0 */
    const float out[6] = {1000, 1, -2, 3, 0.5f, -3.9f};
    float y[6];
    int rc = qr_quantizer_fake(mm, y, out, 1, 6, 8, NULL);
    printf("outlier row 8-bit: {1000, 1, -2, 3, 0.5, -3.9} -> {%g, %g, %g, %g, %g, %g}\n", y[0], y[1], y[2],
           y[3], y[4], y[5]);
    test_cond("outlier: others collapse to 0",
              rc == QR_OK && y[0] == 1000 && y[1] == 0 && y[2] == 0 && y[3] == 0 && y[4] == 0 && y[5] == 0);
    /* asymmetric, by hand: lo = -3.9, hi = 1000, D = 1003.9/255 = 3.93686, z = round(3.9/D) = 1;
     * q = clamp(round(x/D) + 1, 0, 255): 1000 -> 255, 1 -> 1, -2 -> 0, 3 -> 2, 0.5 -> 1, -3.9 -> 0;
     * y = (q - 1) D = {254 D, 0, -D, D, 0, -D}: the small values keep one level each side of 0 */
    {
        const float D = (float)(1003.9 / 255.0), want[6] = {254 * D, 0, -D, D, 0, -D};
        float ya[6], sa = 0;
        rc = qr_quantizer_fake(ma, ya, out, 1, 6, 8, &sa);
        double md = 0;
        for (int j = 0; j < 6; j++) md = fmax(md, fabs((double)ya[j] - want[j]));
        printf("outlier row 8-bit asymmetric -> {%g, %g, %g, %g, %g, %g}, scale %g; max |diff| vs hand %.3g "
               "(tol 1e-3)\n",
               ya[0], ya[1], ya[2], ya[3], ya[4], ya[5], sa, md);
        test_cond("outlier, asymmetric: hand-computed levels", rc == QR_OK && md < 1e-3 && fabs(sa - D) < 1e-5);
    }
    /* 2-bit symmetric levels are {-1, 0, 1}·max */
    float *g = gaussian(8 * 256, 1.0f), *o = qr_xmalloc(8 * 256 * sizeof *o), sc[8];
    qr_quantizer_fake(mm, o, g, 8, 256, 2, sc);
    int ok = 1;
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 256; j++) {
            float v = o[r * 256 + j];
            ok &= v == 0 || fabsf(fabsf(v) - sc[r]) <= 1e-6f * sc[r];
        }
    test_cond("2-bit symmetric levels are {-1, 0, 1}·max", ok);
    /* asymmetric: a constant row is returned unchanged; an all-positive row
     * (zero point outside [0, Q]) stays within Δ */
    const float c[4] = {3, 3, 3, 3}, pos[5] = {10, 10.5f, 11, 12, 10.25f};
    float yc[4], yp[5], sp;
    qr_quantizer_fake(ma, yc, c, 1, 4, 4, NULL);
    test_cond("asym: constant row unchanged", !memcmp(yc, c, sizeof c));
    qr_quantizer_fake(ma, yp, pos, 1, 5, 4, &sp);
    double dm = 0;
    for (int j = 0; j < 5; j++)
        dm = fmax(dm, fabs(yp[j] - pos[j]));
    printf("asym 4-bit, row {10, 10.5, 11, 12, 10.25}: max error %.3g, step %.3g\n", dm, sp);
    test_cond("asym: all-positive row within one step", dm <= sp * 1.0001);
    free(g);
    free(o);
    qr_quantizer_free(mm);
    qr_quantizer_free(ma);
}

/* Relative RMS error ||fake(x) - x|| / ||x|| on Gaussian data, per bit-width. */
static void check_budgets(void) {
    const int64_t R = 256, C = 1024;
    float *g1 = gaussian(R * C, 1.0f), *g05 = gaussian(R * C, 0.05f),
          *y = qr_xmalloc((size_t)(R * C) * sizeof *y);
    printf("relative RMS round-trip error on N(0, s^2) data, 256x1024 (bound in brackets):\n");
    printf("%4s %18s %18s %18s %18s %18s\n", "bits", "minmax s=1", "minmax asym s=1", "log s=1",
           "tanh s=0.05", "tanh atanh s=1");
    double prev_log = INFINITY;
    for (int bits = 2; bits <= 16; bits++) {
        printf("%4d", bits);
        for (int s = 0; s < N_SPECS; s++) {
            qr_quantizer *q = make(specs[s].name, specs[s].key, specs[s].val);
            if (!q) continue;
            const float *x = s == 3 ? g05 : g1;
            qr_quantizer_fake(q, y, x, R, C, bits, NULL);
            double e2 = 0, x2 = 0;
            for (int64_t i = 0; i < R * C; i++) {
                e2 += (double)(y[i] - x[i]) * (y[i] - x[i]);
                x2 += (double)x[i] * x[i];
            }
            double rel = sqrt(e2 / x2), bound;
            /* Bounds (b = bits):
             * minmax: the step is range/levels, the error about step/sqrt(12)
             *   relative to σ, so it halves per bit: 2.8·2^-b (2 bits: most
             *   values round to 0, 0.9);
             * log: the relative step is fixed (a factor 2), so the error stops
             *   falling once the range is covered: 0.22 from 5 bits (0.5 at 3-4, 1.0 at 2);
             * tanh (max) on s = 0.05: halving per bit down to the floor of the
             *   tanh distortion m·tanh(x)/tanh(m) vs x (0.8%): hypot(2.5·2^-b, 0.008);
             * tanh atanh: non-uniform levels (sparse in the tails), 8·2^-b (2 bits: 1.5). */
            switch (s) {
            case 0:
            case 1: bound = bits == 2 ? 0.9 : 2.8 * ldexp(1, -bits); break;
            case 2: bound = bits == 2 ? 1.0 : bits < 5 ? 0.5 : 0.22; break;
            case 3: bound = bits == 2 ? 0.9 : hypot(2.5 * ldexp(1, -bits), 0.008); break;
            default: bound = bits == 2 ? 1.5 : 8.0 * ldexp(1, -bits); break;
            }
            printf(" %8.3g [%6.2g]", rel, bound);
            char what[64];
            snprintf(what, sizeof what, "%s %d-bit error budget", specs[s].label, bits);
            test_cond(what, rel <= bound);
            if (s == 2) {
                test_cond("log error does not grow with bits", rel <= prev_log * 1.0001);
                prev_log = rel;
            }
            qr_quantizer_free(q);
        }
        printf("\n");
    }
    free(g1);
    free(g05);
    free(y);
}

static void check_backward(void) {
    const int64_t R = 16, C = 50;
    float *x = gaussian(R * C, 1.0f), *g = gaussian(R * C, 1.0f),
          *dx = qr_xmalloc((size_t)(R * C) * sizeof *dx);
    for (int64_t j = 0; j < C; j++)
        x[3 * C + j] = 0; /* row 3 all zero */
    x[5] = 2.5f, x[6] = -3.0f;
    /* minmax and log: straight-through, accumulated: dx = 1 + dout */
    const char *ste[] = {"minmax", "log"};
    for (int s = 0; s < 2; s++) {
        qr_quantizer *q = make(ste[s], NULL, NULL);
        if (!q) continue;
        for (int64_t i = 0; i < R * C; i++)
            dx[i] = 1.0f;
        qr_quantizer_backward(q, dx, g, x, R, C, 4);
        int ok = 1;
        for (int64_t i = 0; i < R * C; i++)
            ok &= dx[i] == 1.0f + g[i];
        test_cond("straight-through backward accumulates dout", ok);
        qr_quantizer_free(q);
    }
    qr_quantizer *q = make("minmax", "ste_clip", "2");
    if (q) {
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_quantizer_backward(q, dx, g, x, R, C, 4);
        int ok = 1;
        for (int64_t i = 0; i < R * C; i++)
            ok &= dx[i] == (fabsf(x[i]) <= 2 ? g[i] : 0.0f);
        test_cond("ste_clip=2 zeroes the gradient where |x| > 2", ok && dx[5] == 0 && dx[6] == 0);
        qr_quantizer_free(q);
    }
    /* tanh: dy/dx = m (1 - tanh² x) / tanh(m); a zero row passes through */
    q = make("tanh", NULL, NULL);
    if (q) {
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_quantizer_backward(q, dx, g, x, R, C, 4);
        /* relative to |dout|·m/tanh(m), the gradient's scale (1 - tanh² x
         * loses relative precision in float where tanh x is near 1) */
        double maxrel = 0;
        for (int64_t r = 0; r < R; r++) {
            double m = 0;
            for (int64_t j = 0; j < C; j++)
                m = fmax(m, fabs(x[r * C + j]));
            for (int64_t j = 0; j < C; j++) {
                double t = tanh(x[r * C + j]), c = m == 0 ? 1 : m / tanh(m);
                double want = m == 0 ? g[r * C + j] : g[r * C + j] * c * (1 - t * t);
                maxrel = fmax(maxrel, fabs(dx[r * C + j] - want) / (fabs(g[r * C + j]) * c + 1e-6));
            }
        }
        printf("tanh backward vs m(1-tanh^2 x)/tanh m: max diff / (|dout| m/tanh m) %.3g (tol 1e-6)\n",
               maxrel);
        test_cond("tanh backward = its own gradient", maxrel <= 1e-6);
        qr_quantizer_free(q);
    }
    /* tanh rescale=atanh: dy/dx = (1 - tanh² x) / (1 - tanh² y) */
    q = make("tanh", "rescale", "atanh");
    if (q) {
        float *y = qr_xmalloc((size_t)(R * C) * sizeof *y);
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_quantizer_backward(q, dx, g, x, R, C, 6);
        qr_quantizer_fake(q, y, x, R, C, 6, NULL);
        double maxrel = 0;
        for (int64_t i = 0; i < R * C; i++) {
            double t = tanh(x[i]), ty = tanh(y[i]);
            double want = x[i] == 0 && y[i] == 0 ? g[i] : g[i] * (1 - t * t) / (1 - ty * ty);
            if (i / C == 3) want = g[i];
            maxrel = fmax(maxrel, fabs(dx[i] - want) / (fabs(want) + 1e-3));
        }
        printf("tanh atanh backward vs (1-tanh^2 x)/(1-tanh^2 y): max rel diff %.3g (tol 1e-4)\n", maxrel);
        test_cond("tanh atanh backward = its own gradient", maxrel <= 1e-4);
        free(y);
        qr_quantizer_free(q);
    }
    /* bits 32: identity gradient without the plugin */
    q = make("tanh", NULL, NULL);
    if (q) {
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_quantizer_backward(q, dx, g, x, R, C, 32);
        test_cond("bits 32 backward = dout", !memcmp(dx, g, (size_t)(R * C) * sizeof *dx));
        qr_quantizer_free(q);
    }
    free(x);
    free(g);
    free(dx);
}

/* The plugins' kernels (OpenMP, vectorised) against the reference loops. */
static void check_reference(void) {
    const int64_t R = 1024, C = 768;
    float *x = gaussian(R * C, 1.0f), *y = qr_xmalloc((size_t)(R * C) * sizeof *y);
    /* rows of different scales, an outlier row, a zero row, an all-positive row */
    for (int64_t r = 0; r < R; r++) {
        float sc = (float)ldexp(1.0, (int)(r % 16) - 8);
        for (int64_t j = 0; j < C; j++)
            x[r * C + j] *= sc;
    }
    x[7 * C + 3] = 500.0f;
    for (int64_t j = 0; j < C; j++)
        x[9 * C + j] = 0, x[11 * C + j] = 3.0f + fabsf(x[11 * C + j]);
    double *ref = qr_xmalloc((size_t)C * sizeof *ref);
    char *tie = qr_xmalloc((size_t)C);
    const int bitset[] = {2, 3, 4, 8, 16};
    for (int s = 0; s < N_SPECS; s++) {
        qr_quantizer *q = make(specs[s].name, specs[s].key, specs[s].val);
        if (!q) continue;
        for (int bi = 0; bi < 5; bi++) {
            int bits = bitset[bi];
            if (qr_quantizer_fake(q, y, x, R, C, bits, NULL) != QR_OK) {
                test_cond("fake on the reference matrix", 0);
                continue;
            }
            double maxd = 0;
            int64_t nties = 0, nbad = 0;
            for (int64_t r = 0; r < R; r++) {
                specs[s].ref(x + r * C, C, bits, ref, tie);
                double m = 0;
                for (int64_t j = 0; j < C; j++)
                    m = fmax(m, fabs(x[r * C + j]));
                for (int64_t j = 0; j < C; j++) {
                    double d = fabs(y[r * C + j] - ref[j]);
                    if (tie[j]) {
                        nties++;
                        continue;
                    }
                    /* float vs double arithmetic: a few ulps of the row's range */
                    double tol = 1e-6 * fmax(m, 1e-30) + 1e-6 * fabs(ref[j]);
                    if (d > tol && nbad++ < 3)
                        fprintf(stderr, "  %s %d-bit: row %lld col %lld: x %.9g -> %.9g, reference %.9g\n",
                                specs[s].label, bits, (long long)r, (long long)j, x[r * C + j], y[r * C + j],
                                ref[j]);
                    maxd = fmax(maxd, m > 0 ? d / m : d);
                }
            }
            char what[64];
            snprintf(what, sizeof what, "%s %d-bit optimized = reference", specs[s].label, bits);
            printf("%-34s max |diff|/max|x_row| %.3g (tol 1e-6), near-ties skipped %lld, mismatches %lld\n",
                   what, maxd, (long long)nties, (long long)nbad);
            test_cond(what, nbad == 0);
        }
        qr_quantizer_free(q);
    }
    free(ref);
    free(tie);
    free(x);
    free(y);
}

/* ---- weight groups (core/model/linear.c) ---- */

/* x (R, C) with every group of 8 columns at its own scale (2^-6..2^5), so
 * that one scale per row and one per group give different results; a zero
 * group, an outlier and an all-positive stretch. */
static float *grouped_data(int64_t R, int64_t C) {
    float *x = gaussian(R * C, 1.0f);
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < C; j++)
            x[r * C + j] *= (float)ldexp(1.0, (int)((r * 7 + j / 8) % 12) - 6);
    for (int64_t j = 32; j < 64 && j < C; j++)
        x[2 * C + j] = 0;            /* row 2, columns 32..63 zero */
    x[3 * C + 5] = 300.0f;           /* an outlier in row 3's first group */
    for (int64_t j = 0; j < C; j++)
        x[4 * C + j] = 2.0f + fabsf(x[4 * C + j]); /* row 4 all positive */
    return x;
}

/* Grouped fake() against two references, for every quantizer and groups
 * that divide the row (32), leave a tail (40: 96 = 2*40 + 16; 7: 13*7 + 5),
 * are the smallest (2) or the whole row (96, and 0):
 *  - exact: q's own fake() called on a copy of each group alone, which is
 *    the same arithmetic on the same numbers, so the difference must be 0
 *    (memcmp);
 *  - the double reference loop of the quantizer (ref_*) on each group,
 *    within 1e-6 of the group's max |x| (near-ties skipped, as above). */
static void check_grouped(void) {
    const int64_t R = 24, C = 96;
    float *x = grouped_data(R, C), *y = qr_xmalloc((size_t)(R * C) * sizeof *y),
          *row = qr_xmalloc((size_t)(R * C) * sizeof *row), *buf = qr_xmalloc((size_t)C * sizeof *buf),
          *tmp = qr_xmalloc((size_t)(R * C) * sizeof *tmp);
    double *ref = qr_xmalloc((size_t)C * sizeof *ref);
    char *tie = qr_xmalloc((size_t)C);
    const int groups[] = {32, 40, 7, 2, 96, 0}, bitset[] = {2, 4, 8};
    for (int s = 0; s < N_SPECS; s++) {
        qr_quantizer *q = make(specs[s].name, specs[s].key, specs[s].val);
        if (!q) continue;
        double s_exact = 0, s_maxd = 0;
        int64_t s_ties = 0, s_bad = 0;
        for (int gi = 0; gi < 6; gi++)
            for (int bi = 0; bi < 3; bi++) {
                int g = groups[gi], bits = bitset[bi], ge = g ? g : (int)C;
                char what[96];
                snprintf(what, sizeof what, "%s %d-bit groups of %d", specs[s].label, bits, g);
                if (qr_linear_fake_grouped(q, y, x, R, C, bits, g, NULL) != QR_OK) {
                    fprintf(stderr, "  %s: %s\n", what, qr_err_msg());
                    test_cond(what, 0);
                    continue;
                }
                double exact = 0, maxd = 0;
                int64_t nties = 0, nbad = 0;
                for (int64_t r = 0; r < R; r++)
                    for (int64_t j0 = 0; j0 < C; j0 += ge) {
                        int64_t n = j0 + ge <= C ? ge : C - j0;
                        const float *xg = x + r * C + j0, *yg = y + r * C + j0;
                        qr_quantizer_fake(q, buf, xg, 1, n, bits, NULL);
                        for (int64_t j = 0; j < n; j++)
                            exact = fmax(exact, fabs((double)yg[j] - buf[j]));
                        if (memcmp(buf, yg, (size_t)n * sizeof *buf)) exact = fmax(exact, 1e-300);
                        specs[s].ref(xg, n, bits, ref, tie);
                        double m = 0;
                        for (int64_t j = 0; j < n; j++)
                            m = fmax(m, fabs(xg[j]));
                        for (int64_t j = 0; j < n; j++) {
                            if (tie[j]) {
                                nties++;
                                continue;
                            }
                            double d = fabs(yg[j] - ref[j]);
                            if (d > 1e-6 * fmax(m, 1e-30) + 1e-6 * fabs(ref[j]) && nbad++ < 3)
                                fprintf(stderr, "  %s: row %lld col %lld: %.9g -> %.9g, reference %.9g\n", what,
                                        (long long)r, (long long)(j0 + j), xg[j], yg[j], ref[j]);
                            maxd = fmax(maxd, m > 0 ? d / m : d);
                        }
                    }
                s_exact = fmax(s_exact, exact), s_maxd = fmax(s_maxd, maxd);
                s_ties += nties, s_bad += nbad;
                test_cond(what, exact == 0 && nbad == 0);
                /* with a buffer given, and in place: the same bits */
                memcpy(row, x, (size_t)(R * C) * sizeof *row);
                int ok = qr_linear_fake_grouped(q, row, row, R, C, bits, g, tmp) == QR_OK &&
                         !memcmp(row, y, (size_t)(R * C) * sizeof *row);
                snprintf(what, sizeof what, "%s %d-bit groups of %d: in place, with tmp = out of place",
                         specs[s].label, bits, g);
                test_cond(what, ok);
            }
        printf("%-11s grouped, g in {32, 40, 7, 2, 96, 0} x bits {2, 4, 8} on 24x96: vs fake() per group max "
               "|diff| %.3g (exact); vs reference max |diff|/max|x_group| %.3g (tol 1e-6), near-ties skipped %lld, "
               "mismatches %lld\n",
               specs[s].label, s_exact, s_maxd, (long long)s_ties, (long long)s_bad);
        /* one scale per row (group 0, or >= the row) is qr_quantizer_fake itself */
        qr_quantizer_fake(q, row, x, R, C, 4, NULL);
        for (int k = 0; k < 3; k++) {
            int g = (int[]){0, 96, 1000}[k];
            qr_linear_fake_grouped(q, y, x, R, C, 4, g, NULL);
            char what[80];
            snprintf(what, sizeof what, "%s: group %d = one scale per row, bit for bit", specs[s].label, g);
            test_cond(what, !memcmp(row, y, (size_t)(R * C) * sizeof *row));
        }
        /* and groups do change the result (else the checks above prove nothing) */
        qr_linear_fake_grouped(q, y, x, R, C, 4, 32, NULL);
        test_cond("groups of 32 differ from one scale per row", memcmp(row, y, (size_t)(R * C) * sizeof *row) != 0);
        qr_quantizer_free(q);
    }
    /* errors: bad groups; NaN named through the group layout */
    qr_quantizer *q = make("minmax", NULL, NULL);
    if (q) {
        for (int k = 0; k < 2; k++) {
            int g = (int[]){1, -3}[k];
            char what[64];
            snprintf(what, sizeof what, "group %d refused, naming it", g);
            int rc = qr_linear_fake_grouped(q, y, x, R, C, 4, g, NULL);
            char want[32];
            snprintf(want, sizeof want, "weight group %d", g);
            test_cond(what, rc == QR_ERR && strstr(qr_err_msg(), want));
        }
        memcpy(row, x, (size_t)(R * C) * sizeof *row);
        row[5 * C + 70] = NAN; /* row 5, group 2 of 3 (groups of 32): the quantizer's row 17 */
        int rc = qr_linear_fake_grouped(q, y, row, R, C, 4, 32, NULL);
        printf("NaN in groups of 32: %s\n", qr_err_msg());
        test_cond("NaN in a group: refused naming the layout and the group row",
                  rc == QR_ERR && strstr(qr_err_msg(), "groups of 32 columns") && strstr(qr_err_msg(), "row 17 of"));
        row[5 * C + 70] = 1, row[6 * C + 90] = INFINITY; /* groups of 40: in the tail of row 6 */
        rc = qr_linear_fake_grouped(q, y, row, R, C, 4, 40, NULL);
        printf("Inf in a tail: %s\n", qr_err_msg());
        test_cond("Inf in a tail group: refused naming the tail and row 6",
                  rc == QR_ERR && strstr(qr_err_msg(), "tail of 16") && strstr(qr_err_msg(), "row 6 of (24, 16)"));
        qr_quantizer_free(q);
    }
    free(x);
    free(y);
    free(row);
    free(buf);
    free(tmp);
    free(ref);
    free(tie);
}

/* The backward on the same groups: straight-through (minmax), its clip
 * mask (ste_clip), and tanh's gradient, which depends on each group's own
 * maximum, against reference loops (exact for the first two, 1e-6 relative
 * to the gradient's scale for tanh, as check_backward). */
static void check_grouped_backward(void) {
    const int64_t R = 24, C = 96;
    float *x = grouped_data(R, C), *g = gaussian(R * C, 1.0f), *dx = qr_xmalloc((size_t)(R * C) * sizeof *dx);
    const int groups[] = {32, 40, 7};
    qr_quantizer *ste = make("minmax", NULL, NULL), *clip = make("minmax", "ste_clip", "2"),
                 *th = make("tanh", NULL, NULL);
    if (!ste || !clip || !th) goto out;
    for (int gi = 0; gi < 3; gi++) {
        int G = groups[gi];
        char what[96];
        for (int64_t i = 0; i < R * C; i++)
            dx[i] = 1.0f;
        qr_linear_backward_grouped(ste, dx, g, x, R, C, 4, G);
        int ok = 1;
        for (int64_t i = 0; i < R * C; i++)
            ok &= dx[i] == 1.0f + g[i];
        snprintf(what, sizeof what, "groups of %d: straight-through backward accumulates dout", G);
        test_cond(what, ok);
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_linear_backward_grouped(clip, dx, g, x, R, C, 4, G);
        ok = 1;
        int64_t masked = 0;
        for (int64_t i = 0; i < R * C; i++) {
            ok &= dx[i] == (fabsf(x[i]) <= 2 ? g[i] : 0.0f);
            masked += fabsf(x[i]) > 2;
        }
        snprintf(what, sizeof what, "groups of %d: ste_clip=2 zeroes the gradient where |x| > 2 (%lld of %lld)", G,
                 (long long)masked, (long long)(R * C));
        test_cond(what, ok && masked > 0);
        memset(dx, 0, (size_t)(R * C) * sizeof *dx);
        qr_linear_backward_grouped(th, dx, g, x, R, C, 4, G);
        double maxrel = 0;
        for (int64_t r = 0; r < R; r++)
            for (int64_t j0 = 0; j0 < C; j0 += G) {
                int64_t n = j0 + G <= C ? G : C - j0;
                double m = 0;
                for (int64_t j = 0; j < n; j++)
                    m = fmax(m, fabs(x[r * C + j0 + j]));
                for (int64_t j = 0; j < n; j++) {
                    int64_t i = r * C + j0 + j;
                    double t = tanh(x[i]), c = m == 0 ? 1 : m / tanh(m);
                    double want = m == 0 ? g[i] : g[i] * c * (1 - t * t);
                    maxrel = fmax(maxrel, fabs(dx[i] - want) / (fabs(g[i]) * c + 1e-6));
                }
            }
        printf("tanh backward, groups of %2d, vs m_group (1-tanh^2 x)/tanh m_group: max diff / (|dout| m/tanh m) %.3g "
               "(tol 1e-6)\n",
               G, maxrel);
        snprintf(what, sizeof what, "groups of %d: tanh backward uses each group's maximum", G);
        test_cond(what, maxrel <= 1e-6);
    }
    /* and per row, it would not: the tanh check above can fail */
    memset(dx, 0, (size_t)(R * C) * sizeof *dx);
    qr_linear_backward_grouped(th, dx, g, x, R, C, 4, 0);
    float *dg = qr_xmalloc((size_t)(R * C) * sizeof *dg);
    memset(dg, 0, (size_t)(R * C) * sizeof *dg);
    qr_linear_backward_grouped(th, dg, g, x, R, C, 4, 32);
    test_cond("tanh backward: groups of 32 differ from per row", memcmp(dx, dg, (size_t)(R * C) * sizeof *dx) != 0);
    free(dg);
out:
    qr_quantizer_free(ste);
    qr_quantizer_free(clip);
    qr_quantizer_free(th);
    free(x);
    free(g);
    free(dx);
}

/* A linear layer with a weight group: forward y = x Qw_g(W)^T + b and
 * backward (dx = dout Qw_g(W), dW = dout^T x straight-through, db = sum
 * dout) against double loops with Qw_g(W) from fake() per group; the
 * model-wide default group, the configuration's overriding it, and the
 * cache following a change of group. Tolerance 1e-5 relative to the sum of
 * |terms| (float accumulation in sgemm). */
static void check_grouped_linear(void) {
    enum { IN = 80, OUT = 6, N = 3 }; /* 80 = 2*32 + a tail of 16 */
    qr_quantizer *q = make("minmax", NULL, NULL);
    if (!q) return;
    float *w = grouped_data(OUT, IN), *b = gaussian(OUT, 0.1f), *x = gaussian(N * IN, 1.0f),
          *dout = gaussian(N * OUT, 1.0f);
    float y[N * OUT], y2[N * OUT], dx[N * IN], dw[OUT * IN], db[OUT], qw[OUT * IN];
    qr_linear_scratch scr = {0};
    qr_linear l = {.in = IN, .out = OUT, .w = w, .b = b, .scr = &scr, .wbits = 4, .abits = 32, .wq = q,
                   .active = -1};
    snprintf(l.name, sizeof l.name, "test.grouped");
    const int gs[] = {32, 16, 0};
    for (int k = 0; k < 3; k++) {
        int G = gs[k];
        l.wgroup = G;
        char what[96];
        snprintf(what, sizeof what, "linear, groups of %d: qr_linear_weight_group", G);
        test_cond(what, qr_linear_weight_group(&l) == G);
        int rc = qr_linear_forward(&l, y, x, N, 0);
        test_cond("linear forward with groups", rc == QR_OK);
        if (rc) fprintf(stderr, "  %s\n", qr_err_msg());
        for (int r = 0; r < OUT; r++)
            for (int j0 = 0; j0 < IN; j0 += G ? G : IN) {
                int n = G && j0 + G <= IN ? G : IN - j0;
                qr_quantizer_fake(q, qw + r * IN + j0, w + r * IN + j0, 1, n, 4, NULL);
            }
        double maxd = 0;
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OUT; o++) {
                double s = b[o], a = fabs(b[o]);
                for (int j = 0; j < IN; j++)
                    s += (double)x[i * IN + j] * qw[o * IN + j], a += fabs((double)x[i * IN + j] * qw[o * IN + j]);
                maxd = fmax(maxd, fabs(y[i * OUT + o] - s) / a);
            }
        printf("linear forward, groups of %2d (in %d): max |y - x Qw_g^T - b| / sum|terms| %.3g (tol 1e-5)\n", G, IN,
               maxd);
        snprintf(what, sizeof what, "linear forward, groups of %d = x Qw_g(W)^T + b", G);
        test_cond(what, maxd <= 1e-5);
    }
    /* the model's default group applies when the configuration gives none,
     * and a configuration's group overrides it */
    l.wgroup = 32;
    qr_linear_forward(&l, y, x, N, 0);
    l.wgroup = 0;
    l.wgroup_default = 32;
    qr_linear_forward(&l, y2, x, N, 0);
    test_cond("linear: the default group 32 = the configuration's 32", !memcmp(y, y2, sizeof y));
    l.wgroup = 16;
    qr_linear_forward(&l, y2, x, N, 0);
    test_cond("linear: the configuration's group 16 overrides the default", memcmp(y, y2, sizeof y) != 0 &&
                                                                                 qr_linear_weight_group(&l) == 16);
    l.wgroup = l.wgroup_default = 0;
    l.wgroup_default = 200; /* >= in: one scale per row */
    test_cond("linear: a group >= in is one scale per row", qr_linear_weight_group(&l) == 0);
    /* backward with groups 32 and a trainable W (quantized again at every forward) */
    l.wgroup_default = 0;
    l.wgroup = 32;
    memset(dw, 0, sizeof dw);
    memset(db, 0, sizeof db);
    memset(dx, 0, sizeof dx);
    l.dw = dw;
    l.db = db;
    int rc = qr_linear_forward(&l, y, x, N, 1);
    test_cond("linear training forward with groups", rc == QR_OK);
    qr_linear_backward(&l, dx, dout, x, N);
    for (int r = 0; r < OUT; r++)
        for (int j0 = 0; j0 < IN; j0 += 32) {
            int n = j0 + 32 <= IN ? 32 : IN - j0;
            qr_quantizer_fake(q, qw + r * IN + j0, w + r * IN + j0, 1, n, 4, NULL);
        }
    double mdx = 0, mdw = 0, mdb = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < IN; j++) {
            double s = 0, a = 0;
            for (int o = 0; o < OUT; o++)
                s += (double)dout[i * OUT + o] * qw[o * IN + j], a += fabs((double)dout[i * OUT + o] * qw[o * IN + j]);
            mdx = fmax(mdx, fabs(dx[i * IN + j] - s) / (a + 1e-30));
        }
    for (int o = 0; o < OUT; o++) {
        double sb = 0, ab = 0;
        for (int j = 0; j < IN; j++) {
            double s = 0, a = 0;
            for (int i = 0; i < N; i++)
                s += (double)dout[i * OUT + o] * x[i * IN + j], a += fabs((double)dout[i * OUT + o] * x[i * IN + j]);
            mdw = fmax(mdw, fabs(dw[o * IN + j] - s) / (a + 1e-30));
        }
        for (int i = 0; i < N; i++)
            sb += dout[i * OUT + o], ab += fabs(dout[i * OUT + o]);
        mdb = fmax(mdb, fabs(db[o] - sb) / ab);
    }
    printf("linear backward, groups of 32: dx vs dout Qw_g %.3g, dW vs dout^T x (straight-through) %.3g, db %.3g "
           "(relative to sum|terms|, tol 1e-5)\n",
           mdx, mdw, mdb);
    test_cond("linear backward with groups: dx = dout Qw_g(W)", mdx <= 1e-5);
    test_cond("linear backward with groups: dW straight-through, db", mdw <= 1e-5 && mdb <= 1e-5);
    qr_linear_release(&l);
    qr_linear_scratch_free(&scr);
    qr_linear_scratch_free(NULL);
    free(w);
    free(b);
    free(x);
    free(dout);
    qr_quantizer_free(q);
}

static void timings(void) {
    const int64_t R = 1024, C = 768;
    float *x = gaussian(R * C, 1.0f), *y = qr_xmalloc((size_t)(R * C) * sizeof *y);
    printf("fake() on 1024x768, best of 5 (ms):\n");
    for (int s = 0; s < N_SPECS; s++) {
        qr_quantizer *q = make(specs[s].name, specs[s].key, specs[s].val);
        if (!q) continue;
        printf("  %-12s", specs[s].label);
        for (int bits = 4; bits <= 8; bits += 4) {
            double best = 1e9;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = qr_now();
                qr_quantizer_fake(q, y, x, R, C, bits, NULL);
                best = fmin(best, qr_now() - t0);
            }
            printf("  %d-bit %7.3f", bits, best * 1e3);
        }
        printf("\n");
        qr_quantizer_free(q);
    }
    free(x);
    free(y);
}

int main(void) {
    check_loaded();
    check_hand_values();
    check_edges();
    check_budgets();
    check_backward();
    check_reference();
    check_grouped();
    check_grouped_backward();
    check_grouped_linear();
    timings();
    test_cond("no instances left: shutdown succeeds", qr_plugins_shutdown() == QR_OK);
    return test_report();
}
