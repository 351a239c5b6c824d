/* random.c - the `random` schedule plugin: one configuration per step,
 * drawn uniformly from the set (Double-Win Quant's random precision
 * training, Fu et al., ICML 2021: one precision per iteration, the same for
 * every layer when the set holds uniform configurations).
 *
 *     select(t) = splitmix64(seed ^ (t * 0xD1B54A32D192ED03)) mod n
 *
 * A counter-based draw: a pure function of (seed, t), so a run resumed
 * from a checkpoint draws what the uninterrupted one did, with no RNG
 * state to save. splitmix64 is Vigna's (x + 0x9E3779B97F4A7C15, then the
 * two xor-shift-multiply rounds); the bias of "mod n" is below n / 2^64.
 *
 * Options:
 *   seed=1   an integer in [0, 2^63 - 1] */
#include "qr_plugin.h"

#include <stdint.h>

#define WHO "schedule 'random'"

typedef struct {
    const qr_host *host;
    uint64_t seed;
} randsched;

static void *ra_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"seed", NULL};
    randsched *s = QR_STATE_NEW(randsched, host, kv, n_kv, known, WHO);
    int64_t seed;
    if (!s) return NULL;
    if (host->opt_int(kv, n_kv, "seed", 1, 0, INT64_MAX, &seed, WHO) != QR_PLUGIN_OK) return qr_state_fail(s);
    s->seed = (uint64_t)seed;
    return s;
}

static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int ra_select(void *self, int t, int T, int n, int *out) {
    const randsched *s = self;
    if (n < 1) return s->host->err_set("%s: n_configs %d: expected at least 1", WHO, n);
    if (t < 0) return s->host->err_set("%s: step %d: expected >= 0", WHO, t);
    (void)T; /* the draw does not depend on the run's length */
    out[0] = (int)(splitmix64(s->seed ^ ((uint64_t)t * 0xD1B54A32D192ED03u)) % (uint64_t)n);
    return 1;
}

QR_SCHEDULE_PLUGIN("random", "1.0.0", "same as qrun",
                   "one configuration per step, drawn uniformly from a hash of (seed, step) (Double-Win's RPT)",
                   .create = ra_create, .destroy = qr_state_free, .select = ra_select);
