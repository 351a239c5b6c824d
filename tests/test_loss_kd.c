/* test_loss_kd.c - the `kd` loss plugin: its gradient against central
 * finite differences (float inputs, double sums: h = 1e-2, tolerance 1e-4
 * absolute, max difference printed), KL = 0 when student = teacher, and its
 * refusals (no teacher, bad options). */
#include "harness.h"
#include "plugin.h"
#include "qr.h"
#include "qr_plugin.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { N = 4, V = 9 };

static float eval(const qr_loss_ops *ops, void *self, const float *l, const float *t, const int32_t *tg, float *d) {
    float loss = 0;
    if (d) memset(d, 0, sizeof(float) * N * V);
    if (ops->compute(self, &loss, d, l, t, tg, N, V) != QR_PLUGIN_OK) return NAN;
    return loss;
}

static void check(const char *const *kv, int n_kv, const char *label) {
    qr_instance *q = qr_instance_new(QR_KIND_LOSS, "kd", kv, n_kv);
    test_cond("kd created", q != NULL);
    if (!q) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    const qr_loss_ops *ops = qr_instance_ops(q);
    void *self = qr_instance_self(q);
    float l[N * V], t[N * V], d[N * V];
    uint64_t s = 9;
    for (int i = 0; i < N * V; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        l[i] = (float)((s >> 40) % 1000) / 250.0f - 2.0f;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (float)((s >> 40) % 1000) / 250.0f - 2.0f;
    }
    int32_t tg[N] = {2, -1, 5, 0};
    eval(ops, self, l, t, tg, d);
    double worst = 0;
    for (int i = 0; i < N * V; i++) {
        float old = l[i];
        const float h = 1e-2f;
        l[i] = old + h;
        double lp = eval(ops, self, l, t, tg, NULL);
        l[i] = old - h;
        double lm = eval(ops, self, l, t, tg, NULL);
        l[i] = old;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * h) - d[i]));
    }
    printf("kd %s: gradient vs finite differences max |diff| %.3g (tol 1e-4)\n", label, worst);
    test_cond("kd gradient matches finite differences", worst < 1e-4);
    float same = eval(ops, self, t, t, tg, NULL);
    int has_ce = 0;
    for (int i = 0; i < n_kv; i++) has_ce |= strcmp(kv[2 * i], "ce_weight") == 0; /* n_kv pairs */
    if (!has_ce) {
        printf("kd %s: loss with student = teacher: %g\n", label, same);
        test_cond("KL of identical logits is 0", fabsf(same) < 1e-6f);
    }
    float tmp;
    test_cond("no teacher refused", ops->compute(self, &tmp, d, l, NULL, tg, N, V) != QR_PLUGIN_OK &&
                                        strstr(qr_err_msg(), "teacher"));
    qr_instance_free(q);
}

int main(void) {
    if (qr_plugins_init() != QR_OK) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return 1;
    }
    check(NULL, 0, "tau 1");
    const char *kv2[] = {"temperature", "2", "rows", "all"};
    check(kv2, 2, "tau 2, all rows");
    const char *kv3[] = {"temperature", "1.5", "ce_weight", "0.5"};
    check(kv3, 2, "tau 1.5 + 0.5 ce");
    const char *bad[] = {"temprature", "2"};
    qr_instance *q = qr_instance_new(QR_KIND_LOSS, "kd", bad, 1);
    printf("unknown option: %s\n", qr_err_msg());
    test_cond("unknown option refused by name", !q && strstr(qr_err_msg(), "temprature"));
    const char *bad2[] = {"rows", "some"};
    q = qr_instance_new(QR_KIND_LOSS, "kd", bad2, 1);
    test_cond("bad rows refused", !q && strstr(qr_err_msg(), "loss 'kd': option rows: expected \"answer\" or \"all\", got 'some'"));
    return test_report();
}
