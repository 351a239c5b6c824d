/* progressive.c - the `progressive` schedule plugin: one configuration at a
 * time, from the cheapest to the most expensive (direction=up) or back
 * (direction=down), in n equal stages for the n configurations of the set:
 *
 *     order     = the set by BitOPs, ascending (ties by index)
 *     stage k   = steps [floor(k T / n), floor((k+1) T / n)),  k = 0..n-1
 *     select(t) = order[k]           (up)
 *                 order[n - 1 - k]   (down: the same stages, reversed)
 *
 * A pure function of (t, T, the set): resuming needs no state. Every
 * stage must have at least one step: T < n is refused at the first select
 * (before any update), naming the counts.
 *
 * Options:
 *   direction=up|down   default up */
#include "qr_plugin.h"

#include <stdint.h>

#define WHO "schedule 'progressive'"

enum { DIR_UP, DIR_DOWN };

typedef struct {
    const qr_host *host;
    int direction;
} progressive;

static void *pr_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"direction", NULL};
    static const char *const dirs[] = {"up", "down", NULL};
    progressive *s = QR_STATE_NEW(progressive, host, kv, n_kv, known, WHO);
    if (!s) return NULL;
    if (host->opt_choice(kv, n_kv, "direction", dirs, DIR_UP, &s->direction, WHO) != QR_PLUGIN_OK)
        return qr_state_fail(s);
    return s;
}

static int pr_select_cfg(void *self, int t, int T, int n, const qr_schedule_config *const *cfgs, int *out) {
    const progressive *s = self;
    const qr_host *h = s->host;
    if (n < 1) return h->err_set("%s: n_configs %d: expected at least 1", WHO, n);
    if (T < 1 || t < 0 || t >= T) return h->err_set("%s: step %d of %d: expected 0 <= step < steps", WHO, t, T);
    if (T < n)
        return h->err_set("%s: %d configurations need at least %d steps (one stage each), got %d", WHO, n, n, T);
    for (int i = 0; i < n; i++)
        if (cfgs[i]->struct_size < offsetof(qr_schedule_config, bitops) + sizeof cfgs[i]->bitops)
            return h->err_set("%s: configuration %d: struct_size %u too small (host older than ABI 1.2)", WHO, i,
                              cfgs[i]->struct_size);
    int k = 0; /* the last stage whose start floor(k T / n) is <= t */
    while (k + 1 < n && ((int64_t)(k + 1) * T) / n <= t)
        k++;
    out[0] = qr_schedule_by_bitops(n, cfgs, s->direction == DIR_UP ? k : n - 1 - k);
    return 1;
}

QR_SCHEDULE_PLUGIN("progressive", "1.0.0", "same as qrun",
                   "one configuration per stage, by BitOPs: cheapest first (direction=up) or last, n equal stages",
                   .create = pr_create, .destroy = qr_state_free, .select_cfg = pr_select_cfg);
