/* kd.c - the `kd` loss plugin: knowledge distillation from a teacher's
 * logits (LLM-QAT: KL(teacher || student) on logits), optionally mixed with
 * cross-entropy on the targets.
 *
 *     S = {i : targets[i] != -1} (rows = "answer", default) or all rows
 *         (rows = "all"),  n = |S|,  tau = temperature (default 1)
 *     p = softmax(teacher[i] / tau),  q = softmax(logits[i] / tau)
 *     kl = (tau^2 / n) Σ_{i in S} Σ_j p_j (log p_j - log q_j)
 *     d kl / d logits[i, j] = (tau / n) (q_j - p_j)
 *     loss = kl + ce_weight * CE(logits, targets)   (ce_weight default 0;
 *            CE over the scored rows as in `ce`)
 * The tau^2 factor keeps gradient magnitudes comparable across
 * temperatures (Hinton et al., 2015). Needs teacher logits: the trainer
 * gives them with teacher = "fp" (the frozen base model at full precision,
 * no adapters). Sums in double; a row with non-finite logits is an error
 * naming the row. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>

#define WHO "loss 'kd'"

typedef struct {
    const qr_host *host;
    double tau, ce_weight;
    int all_rows;
} kd;

static void *kd_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"temperature", "ce_weight", "rows", NULL}, *const rows[] = {"answer", "all", NULL};
    kd *k = QR_STATE_NEW(kd, host, kv, n_kv, known, WHO);
    if (k && (host->opt_double(kv, n_kv, "temperature", 1.0, 1e-3, 1e3, &k->tau, WHO) != QR_PLUGIN_OK ||
              host->opt_double(kv, n_kv, "ce_weight", 0.0, 0.0, 1e3, &k->ce_weight, WHO) != QR_PLUGIN_OK ||
              host->opt_choice(kv, n_kv, "rows", rows, 0, &k->all_rows, WHO) != QR_PLUGIN_OK))
        return qr_state_fail(k);
    return k;
}

static int kd_compute(void *self, float *loss, float *dlogits, const float *logits, const float *teacher,
                      const int32_t *targets, int64_t N, int V) {
    const kd *k = self;
    if (!teacher)
        return k->host->err_set("%s: no teacher logits (train with teacher = \"fp\")", WHO);
    if (N < 0 || V < 1)
        return k->host->err_set("%s: shape (%lld, %d): expected N >= 0, V >= 1", WHO, (long long)N, V);
    int64_t n = 0, n_ce = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] != -1 && (targets[i] < 0 || targets[i] >= V))
            return k->host->err_set("%s: targets[%lld] = %d: expected -1 (not scored) or 0..%d", WHO, (long long)i,
                                    targets[i], V - 1);
        n_ce += targets[i] != -1;
        n += k->all_rows || targets[i] != -1;
    }
    *loss = 0.0f;
    if (n == 0) return QR_PLUGIN_OK;
    const double tau = k->tau, inv_n = 1.0 / (double)n, inv_nce = n_ce ? 1.0 / (double)n_ce : 0.0;
    double total = 0.0;
    int64_t bad = -1;
#pragma omp parallel for reduction(+ : total) if (N * (int64_t)V > 32768) schedule(static)
    for (int64_t i = 0; i < N; i++) {
        int scored = targets[i] != -1;
        if (!k->all_rows && !scored) continue;
        const float *l = logits + i * V, *t = teacher + i * V;
        float ml = l[0], mt = t[0];
        for (int j = 1; j < V; j++) {
            ml = l[j] > ml ? l[j] : ml;
            mt = t[j] > mt ? t[j] : mt;
        }
        double sl = 0, st = 0;
        for (int j = 0; j < V; j++) {
            sl += exp((l[j] - ml) / tau);
            st += exp((t[j] - mt) / tau);
        }
        const double lzl = log(sl), lzt = log(st);
        double kl = 0;
        float *d = dlogits ? dlogits + i * V : NULL;
        for (int j = 0; j < V; j++) {
            double lq = (l[j] - ml) / tau - lzl, lp = (t[j] - mt) / tau - lzt, p = exp(lp);
            kl += p * (lp - lq);
            if (d) d[j] += (float)(tau * inv_n * (exp(lq) - p));
        }
        double row = tau * tau * kl * inv_n;
        if (scored && k->ce_weight > 0) {
            double s = 0;
            for (int j = 0; j < V; j++) s += exp((double)l[j] - ml);
            double lse = ml + log(s);
            row += k->ce_weight * (lse - l[targets[i]]) * inv_nce;
            if (d) {
                for (int j = 0; j < V; j++) d[j] += (float)(k->ce_weight * inv_nce * exp(l[j] - lse));
                d[targets[i]] -= (float)(k->ce_weight * inv_nce);
            }
        }
        if (!isfinite(row)) {
#pragma omp critical(qr_kd_bad)
            if (bad < 0 || i < bad) bad = i;
            continue;
        }
        total += row;
    }
    if (bad >= 0)
        return k->host->err_set("%s: row %lld of (%lld, %d): the loss is not finite (NaN or Inf logits)", WHO,
                                (long long)bad, (long long)N, V);
    *loss = (float)total;
    return QR_PLUGIN_OK;
}

/* rows = "all" reads the unscored rows' logits too */
static int kd_scored_rows_only(void *self) { return !((const kd *)self)->all_rows; }

QR_LOSS_PLUGIN("kd", "1.0.0", "same as qrun",
               "KL(teacher || student) on logits with a temperature, plus ce_weight x cross-entropy",
               .create = kd_create, .destroy = qr_state_free, .compute = kd_compute,
               .scored_rows_only = kd_scored_rows_only);
