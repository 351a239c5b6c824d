/* test_loss_feature.c - the `feature` loss plugin (hidden-state MSE): its
 * gradient against central finite differences (h = 1e-2, tolerance 1e-4
 * absolute, max difference printed) for every combination of rows and
 * layers, the value against a direct sum, 0 when student = teacher, and
 * its refusals (no teacher, bad options, non-finite hidden states). */
#include "harness.h"
#include "plugin.h"
#include "qr.h"
#include "qr_plugin.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { L = 3, N = 4, C = 5 };

static float eval(const qr_loss_ops *ops, void *self, const float *h, const float *g, const int32_t *tg, float *d) {
    float loss = 0;
    if (d) memset(d, 0, sizeof(float) * L * N * C);
    if (ops->features(self, &loss, d, h, g, tg, N, C, L) != QR_PLUGIN_OK) return NAN;
    return loss;
}

static void check(const char *const *kv, int n_kv, const char *label, int all_rows, int last_only) {
    qr_instance *q = qr_instance_new(QR_KIND_LOSS, "feature", kv, n_kv);
    test_cond("feature created", q != NULL);
    if (!q) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    const qr_loss_ops *ops = qr_instance_ops(q);
    void *self = qr_instance_self(q);
    test_cond("feature has the hidden-state term (ABI 1.1)", QR_LOSS_HAS_FEATURES(ops));
    float h[L * N * C], g[L * N * C], d[L * N * C];
    uint64_t s = 21;
    for (int i = 0; i < L * N * C; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        h[i] = (float)((s >> 40) % 1000) / 250.0f - 2.0f;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        g[i] = (float)((s >> 40) % 1000) / 250.0f - 2.0f;
    }
    int32_t tg[N] = {3, -1, -1, 0};
    float got = eval(ops, self, h, g, tg, d);
    /* the definition, summed directly */
    double want = 0;
    int rows = 0, layers = last_only ? 1 : L;
    for (int i = 0; i < N; i++) rows += all_rows || tg[i] != -1;
    for (int l = last_only ? L - 1 : 0; l < L; l++)
        for (int i = 0; i < N; i++)
            if (all_rows || tg[i] != -1)
                for (int j = 0; j < C; j++) {
                    double e = (double)h[(l * N + i) * C + j] - g[(l * N + i) * C + j];
                    want += e * e;
                }
    want /= (double)layers * rows * C;
    printf("feature %s: loss %.7f, direct sum %.7f\n", label, got, want);
    test_cond("feature loss equals the definition", fabs(got - want) < 1e-6 * fmax(1.0, want));
    double worst = 0;
    for (int i = 0; i < L * N * C; i++) {
        float old = h[i];
        const float eps = 1e-2f;
        h[i] = old + eps;
        double lp = eval(ops, self, h, g, tg, NULL);
        h[i] = old - eps;
        double lm = eval(ops, self, h, g, tg, NULL);
        h[i] = old;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * eps) - d[i]));
    }
    printf("feature %s: gradient vs finite differences max |diff| %.3g (tol 1e-4)\n", label, worst);
    test_cond("feature gradient matches finite differences", worst < 1e-4);
    test_cond("feature of identical hidden states is 0", eval(ops, self, g, g, tg, NULL) == 0.0f);
    float tmp = 1, dl[1] = {0};
    test_cond("feature has no logit term", ops->compute(self, &tmp, dl, h, NULL, tg, 1, 1) == QR_PLUGIN_OK &&
                                                tmp == 0.0f && dl[0] == 0.0f);
    test_cond("no teacher refused", ops->features(self, &tmp, d, h, NULL, tg, N, C, L) != QR_PLUGIN_OK &&
                                        strstr(qr_err_msg(), "teacher"));
    h[(L - 1) * N * C + 3 * C + 1] = NAN;
    int rc = ops->features(self, &tmp, d, h, g, tg, N, C, L);
    printf("feature %s: NaN hidden state: %s\n", label, rc ? qr_err_msg() : "accepted");
    test_cond("a NaN hidden state is refused naming layer and row",
              rc != QR_PLUGIN_OK && strstr(qr_err_msg(), "layer 2, row 3"));
    qr_instance_free(q);
}

int main(void) {
    if (qr_plugins_init() != QR_OK) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return 1;
    }
    check(NULL, 0, "answer rows, all layers", 0, 0);
    const char *kv2[] = {"rows", "all"};
    check(kv2, 1, "all rows, all layers", 1, 0);
    const char *kv3[] = {"layers", "last", "rows", "answer"};
    check(kv3, 2, "answer rows, last layer", 0, 1);
    const char *bad[] = {"layer", "last"};
    qr_instance *q = qr_instance_new(QR_KIND_LOSS, "feature", bad, 1);
    printf("unknown option: %s\n", qr_err_msg());
    test_cond("unknown option refused by name", !q && strstr(qr_err_msg(), "layer"));
    const char *bad2[] = {"layers", "first"};
    q = qr_instance_new(QR_KIND_LOSS, "feature", bad2, 1);
    printf("bad layers: %s\n", qr_err_msg());
    test_cond("bad layers refused", !q && strstr(qr_err_msg(), "loss 'feature': option layers: expected \"all\" or \"last\", got 'first'"));
    /* the older plugins have no hidden-state term */
    q = qr_instance_new(QR_KIND_LOSS, "ce", NULL, 0);
    test_cond("ce has no hidden-state term", q && !QR_LOSS_HAS_FEATURES((const qr_loss_ops *)qr_instance_ops(q)));
    qr_instance_free(q);
    return test_report();
}
