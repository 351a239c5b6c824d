/* test_lora.c - the quantized linear layer and the LoRA bank on a small
 * GPT-2 and a small Llama:
 *   lora-1  every layer at 32 bits with B = 0 adapters active: logits equal
 *           the plain engine's bit for bit
 *   lora-2  two configurations activate different adapters: a gradient
 *           reaches only the active ones; switching back restores identical
 *           outputs
 *   lora-3  adapter gradients against central finite differences
 *   lora-4  W8A8: the quantized weight is computed once per bit-width and
 *           reused; repeated forwards are identical; 32 bits restores fp
 *   lora-5  adapters round-trip through safetensors bit for bit; a
 *           mismatched file is refused with a message, the bank untouched */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "model.h"
#include "plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { B = 2, T = 12 };

static qr_model *small(qr_arch arch, uint64_t seed) {
    qr_model_config c = {.arch = arch, .n_layer = 2, .n_embd = 32, .n_head = 4, .n_kv_head = arch == QR_ARCH_LLAMA ? 2 : 4,
                         .head_dim = 8, .n_ff = 64, .n_vocab = 61, .n_ctx = 32, .norm_eps = 1e-5f,
                         .rope_theta = 10000.0f, .tied = 1};
    return qr_model_new(&c, seed);
}

static void batch(int32_t *ids, int32_t *tgt) {
    uint64_t s = 3;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((s >> 33) % 61);
    }
    for (int i = 0; i < B * T; i++) tgt[i] = i % T == T - 1 ? -1 : ids[i + 1];
}

static void set_all(qr_model *m, int w, int a, int adapter) {
    int n = qr_model_n_linears(m);
    qr_layer_prec *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) p[i] = (qr_layer_prec){w, a, adapter};
    int rc = qr_model_set_precision(m, p, n);
    if (rc) fprintf(stderr, "%s\n", qr_err_msg());
    test_cond("set precision", rc == QR_OK);
    free(p);
}

static float *logits_copy(qr_model *m, const int32_t *ids, size_t *n) {
    *n = (size_t)B * T * qr_model_cfg(m)->n_vocab;
    qr_model_forward(m, ids, NULL, B, T, NULL);
    float *c = malloc(*n * sizeof(float));
    memcpy(c, qr_model_logits(m), *n * sizeof(float));
    return c;
}

static double absmax(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s = fmax(s, fabs(x[i]));
    return s;
}

static void run(qr_arch arch, const char *label, qr_quantizer *mm) {
    int32_t ids[B * T], tgt[B * T];
    batch(ids, tgt);
    size_t n;
    qr_model *m = small(arch, 11);
    float *plain = logits_copy(m, ids, &n);

    /* lora-1 */
    test_cond("lora init", qr_model_lora_init(m, 2, 4, 8.0f, 5) == QR_OK);
    qr_model_set_quantizers(m, mm, mm);
    set_all(m, 32, 32, 0);
    float *l1 = logits_copy(m, ids, &n);
    printf("%s lora-1: fp config, B=0 adapter: logits %s the engine's\n", label,
           memcmp(l1, plain, n * sizeof(float)) == 0 ? "bit-identical to" : "DIFFER from");
    test_cond("fp config with B=0 equals the engine exactly", memcmp(l1, plain, n * sizeof(float)) == 0);

    /* lora-2: give both slots non-zero B, train under slot 0 */
    int nl = qr_model_n_linears(m);
    for (int i = 0; i < nl; i++)
        for (int s = 0; s < 2; s++) {
            qr_lora *a = qr_model_lora(m, i, s);
            qr_linear *l = qr_model_linear(m, i);
            for (int j = 0; j < l->out * 4; j++) a->B[j] = 0.01f * (float)((j * 7 + s * 3 + i) % 11 - 5);
        }
    qr_model_lora_trainable(m, 1);
    set_all(m, 32, 32, 0);
    float *s0 = logits_copy(m, ids, &n);
    qr_model_zero_grad(m);
    float loss;
    qr_model_forward(m, ids, tgt, B, T, &loss);
    qr_model_backward(m);
    double g0 = 0, g1 = 0;
    for (int i = 0; i < nl; i++) {
        qr_linear *l = qr_model_linear(m, i);
        qr_lora *a0 = qr_model_lora(m, i, 0), *a1 = qr_model_lora(m, i, 1);
        g0 = fmax(g0, fmax(absmax(a0->dA, 4 * l->in), absmax(a0->dB, l->out * 4)));
        g1 = fmax(g1, fmax(absmax(a1->dA, 4 * l->in), absmax(a1->dB, l->out * 4)));
    }
    printf("%s lora-2: max |grad| active slot %.3g, inactive slot %.3g\n", label, g0, g1);
    test_cond("gradient reaches the active adapter", g0 > 0);
    test_cond("no gradient in the inactive adapter", g1 == 0);
    set_all(m, 32, 32, 1);
    float *s1 = logits_copy(m, ids, &n);
    test_cond("another adapter gives other outputs", memcmp(s1, s0, n * sizeof(float)) != 0);
    set_all(m, 32, 32, 0);
    float *s0b = logits_copy(m, ids, &n);
    test_cond("switching back restores identical outputs", memcmp(s0b, s0, n * sizeof(float)) == 0);

    /* lora-3: finite differences on a few adapter entries (float32 model:
     * central differences with h = 1e-2, relative tolerance 5e-2) */
    qr_model_zero_grad(m);
    qr_model_forward(m, ids, tgt, B, T, &loss);
    qr_model_backward(m);
    double worst = 0;
    for (int i = 0; i < nl; i += 3) {
        qr_lora *a = qr_model_lora(m, i, 0);
        float *vals[2] = {a->A, a->B}, *grads[2] = {a->dA, a->dB};
        for (int w = 0; w < 2; w++)
            for (int j = 0; j < 3; j++) {
                float *p = &vals[w][j * 5], old = *p, lp, lm;
                const float h = 1e-2f;
                *p = old + h;
                qr_model_forward(m, ids, tgt, B, T, &lp);
                *p = old - h;
                qr_model_forward(m, ids, tgt, B, T, &lm);
                *p = old;
                double fd = ((double)lp - lm) / (2.0 * h), an = grads[w][j * 5];
                double rel = fabs(fd - an) / fmax(1e-3, fmax(fabs(fd), fabs(an)));
                worst = fmax(worst, rel);
            }
    }
    printf("%s lora-3: adapter gradients vs finite differences: max relative diff %.3g (tol 5e-2)\n", label, worst);
    test_cond("adapter gradients match finite differences", worst < 5e-2);

    /* lora-3r: logits of a subset of rows (qr_model_forward_rows) equal
     * those rows of the full forward, and the adapter gradients from
     * dlogits on those rows equal the full backward's with zeros elsewhere
     * (tolerance 1e-5 relative to the largest; max differences printed) */
    {
        const qr_model_config *mc = qr_model_cfg(m);
        int V = mc->n_vocab, rows[3] = {1, T + 2, B * T - 1}, R = 3;
        size_t nf;
        float *full = logits_copy(m, ids, &nf);
        float *dl = calloc((size_t)B * T * V, sizeof(float)), *dr = calloc((size_t)R * V, sizeof(float));
        for (int r = 0; r < R; r++)
            for (int j = 0; j < V; j++) dl[(size_t)rows[r] * V + j] = dr[(size_t)r * V + j] = 0.01f * (float)((j * 5 + r) % 7 - 3);
        qr_model_zero_grad(m);
        qr_model_forward(m, ids, NULL, B, T, NULL);
        qr_model_backward_logits(m, dl);
        int64_t ng;
        float *g = qr_model_lora_grads(m, &ng), *gfull = malloc((size_t)ng * sizeof(float));
        memcpy(gfull, g, (size_t)ng * sizeof(float));
        qr_model_zero_grad(m);
        int ok = qr_model_forward_rows(m, ids, B, T, rows, R) == QR_OK && qr_model_logit_rows(m) == R;
        double dlog = 0, big = 0, dg = 0, gbig = 0;
        const float *lr = qr_model_logits(m);
        for (int r = 0; ok && r < R; r++)
            for (int j = 0; j < V; j++) {
                dlog = fmax(dlog, fabs(lr[(size_t)r * V + j] - full[(size_t)rows[r] * V + j]));
                big = fmax(big, fabs(full[(size_t)rows[r] * V + j]));
            }
        ok = ok && qr_model_backward_logits(m, dr) == QR_OK;
        for (int64_t i = 0; i < ng; i++) {
            dg = fmax(dg, fabs(g[i] - gfull[i]));
            gbig = fmax(gbig, fabs(gfull[i]));
        }
        printf("%s lora-3r: logits of 3 rows vs the full forward max |diff| %.3g (of %.3g); adapter gradients max "
               "|diff| %.3g (of %.3g), tol 1e-5 relative\n", label, dlog, big, dg, gbig);
        test_cond("row-subset forward runs", ok);
        test_cond("row-subset logits equal the full forward's rows", dlog <= 1e-5 * big);
        test_cond("row-subset gradients equal the full backward's", gbig > 0 && dg <= 1e-5 * gbig);
        int bad[2] = {3, 2};
        test_cond("rows out of order refused", qr_model_forward_rows(m, ids, B, T, bad, 2) == QR_ERR &&
                                                   strstr(qr_err_msg(), "increasing"));
        free(full);
        free(dl);
        free(dr);
        free(gfull);
    }

    /* lora-3h: a loss on the hidden states (qr_model_backward_hidden):
     * F = sum over layers l, rows i, j of R[l,i,j] hidden_l[i,j] for a fixed
     * random R, no logit term; adapter gradients against central
     * differences of F (h = 1e-2, relative tolerance 5e-2) */
    {
        const qr_model_config *mc = qr_model_cfg(m);
        size_t per = (size_t)B * T * mc->n_embd, nh = per * mc->n_layer;
        float *R = malloc(nh * sizeof(float)), *dl = calloc((size_t)B * T * mc->n_vocab, sizeof(float));
        uint64_t s = 77;
        for (size_t i = 0; i < nh; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            R[i] = (float)((s >> 40) % 2001) / 1000.0f - 1.0f;
        }
#define HID_F(out)                                                                   \
    do {                                                                             \
        qr_model_forward(m, ids, NULL, B, T, NULL);                                  \
        double f_ = 0;                                                               \
        for (int l_ = 0; l_ < mc->n_layer; l_++) {                                   \
            const float *h_ = qr_model_hidden(m, l_);                                \
            for (size_t i_ = 0; i_ < per; i_++) f_ += (double)R[l_ * per + i_] * h_[i_]; \
        }                                                                            \
        (out) = f_;                                                                  \
    } while (0)
        double f0;
        qr_model_zero_grad(m);
        HID_F(f0);
        (void)f0;
        int ok = qr_model_backward_hidden(m, dl, R) == QR_OK;
        test_cond("backward from hidden states runs", ok);
        test_cond("no hidden state out of range", qr_model_hidden(m, mc->n_layer) == NULL && qr_model_hidden(m, -1) == NULL);
        double worst_h = 0;
        for (int i = 0; i < nl; i += 2) {
            qr_lora *a = qr_model_lora(m, i, 0);
            float *vals[2] = {a->A, a->B}, *grads[2] = {a->dA, a->dB};
            for (int w = 0; w < 2; w++)
                for (int j = 0; j < 3; j++) {
                    float *p = &vals[w][j * 7], old = *p;
                    double fp, fm;
                    const float h = 1e-2f;
                    *p = old + h;
                    HID_F(fp);
                    *p = old - h;
                    HID_F(fm);
                    *p = old;
                    double fd = (fp - fm) / (2.0 * h), an = grads[w][j * 7];
                    worst_h = fmax(worst_h, fabs(fd - an) / fmax(1e-2, fmax(fabs(fd), fabs(an))));
                }
        }
#undef HID_F
        printf("%s lora-3h: hidden-state loss, adapter gradients vs finite differences: max relative diff %.3g "
               "(tol 5e-2)\n", label, worst_h);
        test_cond("hidden-state gradients match finite differences", worst_h < 5e-2);
        free(R);
        free(dl);
    }

    /* lora-4: W8A8 */
    set_all(m, 8, 8, 0);
    float *q1 = logits_copy(m, ids, &n);
    float *cache = qr_model_linear(m, 0)->wcache[8];
    float *q2 = logits_copy(m, ids, &n);
    test_cond("quantized weight cached", cache != NULL && qr_model_linear(m, 0)->wcache[8] == cache);
    test_cond("repeated W8A8 forwards identical", memcmp(q1, q2, n * sizeof(float)) == 0);
    double dq = 0;
    for (size_t i = 0; i < n; i++) dq = fmax(dq, fabs((double)q1[i] - s0[i]));
    printf("%s lora-4: W8A8 vs fp logits max |diff| %.3g (expected small, > 0)\n", label, dq);
    test_cond("W8A8 changes the logits a little", dq > 0 && dq < 0.5);
    qr_model_zero_grad(m);
    qr_model_forward(m, ids, tgt, B, T, &loss);
    qr_model_backward(m);
    test_cond("W8A8 training step gives finite gradients", isfinite(loss) && absmax(qr_model_lora(m, 0, 0)->dB, 4) < 1e6);
    set_all(m, 32, 32, 0);
    float *back = logits_copy(m, ids, &n);
    test_cond("back at 32 bits: identical to before", memcmp(back, s0, n * sizeof(float)) == 0);

    /* lora-5 */
    char path[] = "/tmp/qrun-lora-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    test_cond("save adapters", qr_model_lora_save(m, path) == QR_OK);
    qr_model *m2 = small(arch, 11);
    test_cond("load adapters", qr_model_lora_load(m2, path) == QR_OK);
    int64_t na, nb;
    float *pa = qr_model_lora_params(m, &na), *pb = qr_model_lora_params(m2, &nb);
    test_cond("adapters round-trip bit for bit", na == nb && memcmp(pa, pb, (size_t)na * sizeof(float)) == 0);
    qr_model_set_quantizers(m2, mm, mm);
    set_all(m2, 32, 32, 0);
    float *r2 = logits_copy(m2, ids, &n);
    test_cond("reloaded model gives identical outputs", memcmp(r2, s0, n * sizeof(float)) == 0);
    qr_model *m3 = small(arch, 11);
    qr_model_lora_init(m3, 2, 8, 16.0f, 1);
    int64_t n3;
    float *p3 = qr_model_lora_params(m3, &n3);
    float first = p3[0];
    int rc = qr_model_lora_load(m3, path);
    printf("%s lora-5: mismatched rank refused: %s\n", label, qr_err_msg());
    test_cond("mismatched adapters refused", rc == QR_ERR && strstr(qr_err_msg(), path) && p3[0] == first);
    unlink(path);
    free(plain);
    free(l1);
    free(s0);
    free(s1);
    free(s0b);
    free(q1);
    free(q2);
    free(back);
    free(r2);
    qr_model_free(m);
    qr_model_free(m2);
    qr_model_free(m3);
}

int main(void) {
    if (qr_plugins_init() != QR_OK) {
        fprintf(stderr, "plugins: %s\n", qr_err_msg());
        return 1;
    }
    qr_quantizer *mm = qr_quantizer_new("minmax", NULL, 0);
    test_cond("minmax quantizer", mm != NULL);
    if (!mm) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return test_report();
    }
    run(QR_ARCH_GPT2, "gpt2-small", mm);
    run(QR_ARCH_LLAMA, "llama-small", mm);
    qr_instance_free(mm);
    return test_report();
}
