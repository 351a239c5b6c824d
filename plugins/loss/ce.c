/* ce.c - the `ce` loss plugin: mean cross-entropy of the student's logits
 * against the target tokens (the teacher's logits, if given, are ignored).
 *
 *     S = {i : targets[i] != -1},  n = |S|
 *     loss = (1/n) Σ_{i in S} [ logsumexp_j(logits[i, j]) - logits[i, targets[i]] ]
 *     dlogits[i, j] += (softmax(logits[i])_j - [j == targets[i]]) / n     (i in S)
 * Rows not scored get no gradient. n = 0 gives loss 0 and no gradient.
 * dlogits may be NULL (loss only). A target outside [0, V) other than -1,
 * or a row whose loss is not finite (NaN/Inf logits), is an error naming
 * the row. logsumexp is max + log Σ expf(l - max), the sum in double. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>

#define WHO "loss 'ce'"

typedef struct {
    const qr_host *host;
} ce;

static void *ce_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {NULL};
    return QR_STATE_NEW(ce, host, kv, n_kv, known, WHO);
}

/* logits (N, V), targets (N); dlogits (N, V) or NULL. */
static int ce_compute(void *self, float *loss, float *dlogits, const float *logits, const float *teacher,
                      const int32_t *targets, int64_t N, int V) {
    const ce *c = self;
    (void)teacher; /* plain cross-entropy against the targets */
    if (N < 0 || V < 1)
        return c->host->err_set("%s: shape (%lld, %d): expected N >= 0, V >= 1", WHO, (long long)N, V);
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] == -1) continue;
        if (targets[i] < 0 || targets[i] >= V)
            return c->host->err_set("%s: targets[%lld] = %d: expected -1 (not scored) or 0..%d", WHO,
                                    (long long)i, targets[i], V - 1);
        n++;
    }
    *loss = 0.0f;
    if (n == 0) return QR_PLUGIN_OK;
    const double inv_n = 1.0 / (double)n;
    double total = 0.0;
    int64_t bad = -1;
#pragma omp parallel for reduction(+ : total) if (N * (int64_t)V > 32768) schedule(static)
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] == -1) continue;
        const float *l = logits + i * V;
        float mx = l[0];
        for (int j = 1; j < V; j++)
            mx = l[j] > mx ? l[j] : mx;
        double s = 0.0;
        for (int j = 0; j < V; j++)
            s += expf(l[j] - mx);
        const double lse = mx + log(s), li = lse - l[targets[i]];
        if (!isfinite(li)) {
#pragma omp critical(qr_ce_bad)
            if (bad < 0 || i < bad) bad = i;
            continue;
        }
        total += li;
        if (dlogits) {
            float *d = dlogits + i * V;
            const float lsef = (float)lse, invf = (float)inv_n;
            for (int j = 0; j < V; j++)
                d[j] += expf(l[j] - lsef) * invf;
            d[targets[i]] -= (float)inv_n;
        }
    }
    if (bad >= 0)
        return c->host->err_set("%s: row %lld of (%lld, %d): the loss is not finite (NaN or Inf logits)", WHO,
                                (long long)bad, (long long)N, V);
    *loss = (float)(total * inv_n);
    return QR_PLUGIN_OK;
}

static int ce_scored_rows_only(void *self) {
    (void)self;
    return 1;
}

QR_LOSS_PLUGIN("ce", "1.0.0", "same as qrun", "mean cross-entropy over scored rows (targets != -1); teacher ignored",
               .create = ce_create, .destroy = qr_state_free, .compute = ce_compute,
               .scored_rows_only = ce_scored_rows_only);
