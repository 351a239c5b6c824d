/* cyclic.c - the `cyclic` schedule plugin: CPT, cyclic precision training
 * (Fu et al., ICLR 2021), computed as the official code's
 * cyclic_adjust_precision does:
 *
 *     T_c = floor(T / n_cycles)                             (the period, in steps)
 *     b_t = rint(b_min + 0.5 (b_max - b_min) (1 + cos(pi ((t mod T_c) / T_c) + pi)))
 *
 * a half-cosine rise from b_min to b_max over each period (1 + cos(x + pi)
 * is 1 - cos(x)), then a reset: a sawtooth. The steps past n_cycles * T_c
 * (T not a multiple of n_cycles) start one more, partial, cycle.
 *
 * Bit for bit as numpy: the expression is evaluated in double in the
 * official code's order and spelling (the division before the product with
 * pi, cos(x + pi), not 1 - cos(x): the two differ in the last bit, which
 * decides some half-way cases), each operation rounded on its own (no
 * fused multiply-add: contraction is off in this file, since -march=native
 * under gnu11 would otherwise fuse), and rint is nearbyint under the
 * default rounding mode FE_TONEAREST: half to even, as np.rint. So 5.5
 * gives 6 and 4.5 gives 4 (tests/test_schedules.c checks every step of
 * several schedules against numpy, tests/fixtures/cpt_schedule.jsonl).
 *
 * Only the forward pass's precision cycles: the weights' and activations'
 * bits. Gradients are not quantized in qrun (the paper keeps them at a
 * constant 8 bits).
 *
 * Options:
 *   b_min=4, b_max=8    bit-widths, 2..16, b_min <= b_max (32, "fp", is not
 *                       a cyclic width)
 *   n_cycles=32         cycles over the run (the paper's 32), 1..T (T is
 *                       checked at the first select, before any update)
 *   mode=bits           one model whose precision cycles: the set holds a
 *                       uniform configuration wBaB (every layer's weight
 *                       and activation bits = B) for each B in b_min..b_max,
 *                       typically all on one adapter slot; step t runs the
 *                       one with B = b_t (the first such, if several). A
 *                       width without one is refused at the first select,
 *                       naming it and listing the set.
 *   mode=configs        one configuration per step along the same cosine
 *                       over the set ordered by BitOPs (ascending; ties by
 *                       index): position rint((n-1) 0.5 (1 + cos(pi ((t mod
 *                       T_c) / T_c) + pi))) of that order, the formula
 *                       above with b_min = 0, b_max = n - 1: cheap to
 *                       expensive, then a reset. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846 /* np.pi, the same double */
#endif

#define WHO "schedule 'cyclic'"
#define BITS_LO 2
#define BITS_HI 16

enum { MODE_BITS, MODE_CONFIGS };

typedef struct {
    const qr_host *host;
    int b_min, b_max, n_cycles, mode;
} cyclic;

/* b_min / b_max: an integer in 2..16, with a word for 32 (fp). */
static int get_bits(const qr_host *h, const char *const *kv, int n_kv, const char *key, int def, int *out) {
    int64_t v;
    if (h->opt_int(kv, n_kv, key, def, INT32_MIN, INT32_MAX, &v, WHO) != QR_PLUGIN_OK) return QR_PLUGIN_ERR;
    if (v < BITS_LO || v > BITS_HI)
        return h->err_set("%s: option %s: expected an integer in [%d, %d]%s, got %lld", WHO, key, BITS_LO, BITS_HI,
                          v == 32 ? " (32, full precision, is not a cyclic width)" : "", (long long)v);
    *out = (int)v;
    return QR_PLUGIN_OK;
}

static void *cy_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"b_min", "b_max", "n_cycles", "mode", NULL};
    static const char *const modes[] = {"bits", "configs", NULL};
    cyclic *s = QR_STATE_NEW(cyclic, host, kv, n_kv, known, WHO);
    int64_t nc;
    if (!s) return NULL;
    if (get_bits(host, kv, n_kv, "b_min", 4, &s->b_min) != QR_PLUGIN_OK ||
        get_bits(host, kv, n_kv, "b_max", 8, &s->b_max) != QR_PLUGIN_OK ||
        host->opt_int(kv, n_kv, "n_cycles", 32, 1, INT32_MAX, &nc, WHO) != QR_PLUGIN_OK ||
        host->opt_choice(kv, n_kv, "mode", modes, MODE_BITS, &s->mode, WHO) != QR_PLUGIN_OK)
        return qr_state_fail(s);
    if (s->b_min > s->b_max) {
        host->err_set("%s: options b_min=%d > b_max=%d (expected b_min <= b_max)", WHO, s->b_min, s->b_max);
        return qr_state_fail(s);
    }
    s->n_cycles = (int)nc;
    return s;
}

/* The published formula at step t of T: lo + 0.5 (hi - lo) (1 + cos(pi
 * ((t mod T_c) / T_c) + pi)), rounded half to even. */
static int cpt_value(int t, int period, int lo, int hi) {
    double frac = (double)(t % period) / (double)period;
    double c = cos(M_PI * frac + M_PI);
    double v = (double)lo + 0.5 * (double)(hi - lo) * (1.0 + c);
    return (int)nearbyint(v); /* FE_TONEAREST, the default: half to even */
}

static int uniform_at(const qr_schedule_config *c, int b) {
    return c->wbits_min == b && c->wbits_max == b && c->abits_min == b && c->abits_max == b;
}

/* The index of the uniform configuration at b bits, or -1. */
static int find_uniform(int n, const qr_schedule_config *const *cfgs, int b) {
    for (int i = 0; i < n; i++)
        if (uniform_at(cfgs[i], b)) return i;
    return -1;
}

static int cy_select_cfg(void *self, int t, int T, int n, const qr_schedule_config *const *cfgs, int *out) {
    const cyclic *s = self;
    const qr_host *h = s->host;
    if (n < 1) return h->err_set("%s: n_configs %d: expected at least 1", WHO, n);
    if (T < 1 || t < 0 || t >= T) return h->err_set("%s: step %d of %d: expected 0 <= step < steps", WHO, t, T);
    if (s->n_cycles > T)
        return h->err_set("%s: option n_cycles: %d cycles in %d steps (expected n_cycles <= the number of steps)",
                          WHO, s->n_cycles, T);
    for (int i = 0; i < n; i++)
        if (cfgs[i]->struct_size < offsetof(qr_schedule_config, bitops) + sizeof cfgs[i]->bitops)
            return h->err_set("%s: configuration %d: struct_size %u too small (host older than ABI 1.2)", WHO, i,
                              cfgs[i]->struct_size);
    const int period = T / s->n_cycles;
    if (s->mode == MODE_CONFIGS) {
        out[0] = qr_schedule_by_bitops(n, cfgs, cpt_value(t, period, 0, n - 1));
        return 1;
    }
    /* mode=bits: every width of the range must be there, whatever this step's */
    for (int b = s->b_min; b <= s->b_max; b++) {
        if (find_uniform(n, cfgs, b) >= 0) continue;
        char list[256];
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                    cfgs[i]->name ? cfgs[i]->name : "?");
        if (len >= sizeof list) snprintf(list + sizeof list - 5, 5, " ...");
        return h->err_set("%s: mode=bits needs a uniform w%da%d configuration for b=%d (b_min=%d, b_max=%d); "
                          "the set has: %s",
                          WHO, b, b, b, s->b_min, s->b_max, list);
    }
    out[0] = find_uniform(n, cfgs, cpt_value(t, period, s->b_min, s->b_max));
    return 1;
}

QR_SCHEDULE_PLUGIN("cyclic", "1.0.0", "same as qrun",
                   "CPT: precision (mode=bits) or configuration by BitOPs (mode=configs) along a cosine, "
                   "n_cycles times",
                   .create = cy_create, .destroy = qr_state_free, .select_cfg = cy_select_cfg);
