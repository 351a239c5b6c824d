/* static.c - the `static` schedule plugin: every configuration trains at
 * every step (joint switchable-precision training: the gradients of all
 * configurations accumulate before one optimizer step).
 *
 *     select(t, T, n) = {0, 1, ..., n-1}     for every step t
 *
 * No options. */
#include "qr_plugin.h"

#include <stdint.h>
#include <stdlib.h>

#define WHO "schedule 'static'"

typedef struct {
    const qr_host *host;
} sched;

static void *st_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {NULL};
    if (!QR_HOST_HAS(host, opt_int)) {
        host->err_set("%s: host services too old (struct_size %u)", WHO, host->struct_size);
        return NULL;
    }
    if (host->opt_check(kv, n_kv, known, WHO) != QR_PLUGIN_OK) return NULL;
    sched *s = calloc(1, sizeof *s);
    if (!s) {
        host->err_set("%s: out of memory", WHO);
        return NULL;
    }
    s->host = host;
    return s;
}

static void st_destroy(void *self) { free(self); }

static int st_select(void *self, int t, int T, int n_configs, int *out) {
    const sched *s = self;
    (void)T; /* the same set at every step */
    if (n_configs < 1) return s->host->err_set("%s: n_configs %d: expected at least 1", WHO, n_configs);
    if (t < 0) return s->host->err_set("%s: step %d: expected >= 0", WHO, t);
    for (int i = 0; i < n_configs; i++)
        out[i] = i;
    return n_configs;
}

static const qr_schedule_ops static_ops = {
    .struct_size = sizeof(qr_schedule_ops),
    .create = st_create,
    .destroy = st_destroy,
    .select = st_select,
};

static const qr_entry entries[] = {
    {.kind = QR_KIND_SCHEDULE,
     .name = "static",
     .description = "every configuration at every step (joint switchable-precision training)",
     .ops = &static_ops},
};

QR_PLUGIN_DEFINE("static", "1.0.0", "same as qrun", entries);
