/* feature.c - the `feature` loss plugin: mean squared error between the
 * student's and the teacher's hidden states (feature distillation), as a
 * term of its own or combined with others ("ce+0.1*feature").
 *
 *     hidden h, teacher g: (L, N, C), the residual stream after each block
 *     Λ = the blocks compared: every one (layers = "all", default) or the
 *         last (layers = "last")
 *     S = {i : targets[i] != -1} (rows = "answer", default) or all rows
 *         (rows = "all": prompt and padding positions too)
 *     loss = 1 / (|Λ| |S| C) Σ_{l in Λ} Σ_{i in S} Σ_j (h[l,i,j] - g[l,i,j])^2
 *     d loss / d h[l,i,j] = 2 (h[l,i,j] - g[l,i,j]) / (|Λ| |S| C)
 * No logit term: compute() gives 0. Needs a teacher (the trainer's teacher
 * = "fp" or "cascade"). Sums in double, in a fixed order; a non-finite
 * difference is an error naming the layer and the row. */
#include "qr_plugin.h"

#include <math.h>
#include <stdint.h>

#define WHO "loss 'feature'"

typedef struct {
    const qr_host *host;
    int all_rows, last_only;
} feature;

static void *feature_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"rows", "layers", NULL}, *const rows[] = {"answer", "all", NULL},
                             *const layers[] = {"all", "last", NULL};
    feature *f = QR_STATE_NEW(feature, host, kv, n_kv, known, WHO);
    if (f && (host->opt_choice(kv, n_kv, "rows", rows, 0, &f->all_rows, WHO) != QR_PLUGIN_OK ||
              host->opt_choice(kv, n_kv, "layers", layers, 0, &f->last_only, WHO) != QR_PLUGIN_OK))
        return qr_state_fail(f);
    return f;
}

static int feature_compute(void *self, float *loss, float *dlogits, const float *logits, const float *teacher,
                           const int32_t *targets, int64_t N, int V) {
    (void)self, (void)dlogits, (void)logits, (void)teacher, (void)targets, (void)N, (void)V;
    *loss = 0.0f;
    return QR_PLUGIN_OK;
}

static int feature_features(void *self, float *loss, float *dhidden, const float *hidden, const float *teacher,
                            const int32_t *targets, int64_t N, int C, int L) {
    const feature *f = self;
    if (!teacher) return f->host->err_set("%s: no teacher hidden states (train with teacher = \"fp\")", WHO);
    if (N < 0 || C < 1 || L < 1)
        return f->host->err_set("%s: shape (%d, %lld, %d): expected L >= 1, N >= 0, C >= 1", WHO, L, (long long)N,
                                C);
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) n += f->all_rows || targets[i] != -1;
    *loss = 0.0f;
    if (n == 0) return QR_PLUGIN_OK;
    const int l0 = f->last_only ? L - 1 : 0;
    const double scale = 1.0 / ((double)(L - l0) * (double)n * C);
    double total = 0.0;
    int64_t bad = -1;
    for (int l = l0; l < L; l++) {
        double part = 0.0;
#pragma omp parallel for reduction(+ : part) if (N * (int64_t)C > 65536) schedule(static)
        for (int64_t i = 0; i < N; i++) {
            if (!f->all_rows && targets[i] == -1) continue;
            const size_t o = ((size_t)l * N + i) * C;
            const float *h = hidden + o, *g = teacher + o;
            double row = 0.0;
            for (int j = 0; j < C; j++) {
                double d = (double)h[j] - g[j];
                row += d * d;
                if (dhidden) dhidden[o + j] += (float)(2.0 * d * scale);
            }
            if (!isfinite(row)) {
#pragma omp critical(qr_feature_bad)
                if (bad < 0 || (int64_t)l * N + i < bad) bad = (int64_t)l * N + i;
                continue;
            }
            part += row;
        }
        total += part;
    }
    if (bad >= 0)
        return f->host->err_set("%s: layer %lld, row %lld of (%d, %lld, %d): the hidden states are not finite", WHO,
                                (long long)(bad / N), (long long)(bad % N), L, (long long)N, C);
    *loss = (float)(total * scale);
    return QR_PLUGIN_OK;
}

/* compute() reads nothing; the hidden states always come whole */
static int feature_scored_rows_only(void *self) {
    (void)self;
    return 1;
}

QR_LOSS_PLUGIN("feature", "1.0.0", "same as qrun",
               "mean squared error between student and teacher hidden states (every block's output)",
               .create = feature_create, .destroy = qr_state_free, .compute = feature_compute,
               .features = feature_features, .scored_rows_only = feature_scored_rows_only);
