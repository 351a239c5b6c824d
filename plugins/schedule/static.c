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

static const qr_entry *get_entry(uint32_t i) { return i < 1 ? &entries[i] : NULL; }

static const qr_plugin_desc desc = {
    .abi_major = QR_PLUGIN_ABI_MAJOR,
    .abi_minor = QR_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(qr_plugin_desc),
    .name = "static",
    .version = "1.0.0",
    .license = "same as qrun",
    .n_entries = 1,
    .get_entry = get_entry,
    .get_ext = NULL,
};

QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &desc; }
