/* bench_qrun.c - qrun's side of the benchmarks (not a test): prints one
 * JSON object. Run each benchmark in its own process so that peak_rss_mb
 * (getrusage ru_maxrss) is its own; scripts/bench.sh does that and puts the
 * PyTorch figures of scripts/ref/bench_ref.py beside them.
 *
 *   bench_qrun sgemm_peak        cblas_sgemm 2048^3, GFLOP/s
 *   bench_qrun train_gpt2        GPT-2 124M shape, batch 4 x 256, fp32, one
 *                                step = zero_grad + forward + backward
 *                                (every parameter trainable), median of 7
 *                                after 2 warm-up; FLOPs counted as in
 *                                bench_ref.py: 6 N BT + 12 L T C BT + 6 C V BT
 *   bench_qrun train_gpt2_w8a8_lora
 *                                the same shape with frozen base weights and
 *                                one LoRA (rank 8) per linear: the step under
 *                                W8A8 minmax fake quantization against the
 *                                same step unquantized, interleaved, median
 *                                of 7 each; the ratio is the overhead
 *   bench_qrun generate_smollm2  [GGUF] prefill of a 256-token prompt and 64
 *                                greedy decode steps, batch 1 and 4, tokens/s
 *                                over the batch, median of 3
 *   bench_qrun train_smollm2_lora [GGUF] SmolLM2 with one LoRA (rank 8, alpha
 *                                16) on every linear (q,k,v,o,gate,up,down),
 *                                base frozen, W8A8 minmax fake quantization;
 *                                batch 4 x 256 random tokens, loss on every
 *                                next token; one step = zero_grad + forward
 *                                + backward + AdamW (lr 1e-4), as
 *                                bench_ref.py's PEFT step; training tokens/s,
 *                                median of 5 after 2 warm-up. The same step
 *                                unquantized is timed too (fp_*).
 *   bench_qrun train_smollm2_answer [GGUF] the step sp.lua runs: SmolLM2,
 *                                LoRA r8 + W8A8, batch 4 x 384 with the loss
 *                                on 8 answer positions per sequence; the head
 *                                on every row (qr_model_forward) against the
 *                                head on the scored rows only
 *                                (qr_model_forward_rows), interleaved,
 *                                median of 5 after 1 warm-up; the ratio is
 *                                the saving.
 *   bench_qrun cpt_step [GGUF]   the claim of issue 9: a CPT arm's step
 *                                (one configuration) costs what one
 *                                configuration of a joint step costs.
 *                                SmolLM2, LoRA r8, four configurations (fp,
 *                                w8a8, w6a6, w4a8, one adapter slot each),
 *                                batch 4 x 256, 8 scored positions per
 *                                sequence, through qr_trainer_step (the
 *                                trainer, schedule and AdamW included): a
 *                                static trainer (all four per step) and a
 *                                cyclic mode=configs trainer (one per step;
 *                                period 8 runs each configuration at least
 *                                once), interleaved one joint step then one
 *                                period, 4 rounds after a warm-up; ratio =
 *                                sum over the configurations of the mean
 *                                cyclic step time running it, over the
 *                                median joint step time (1 = no overhead). */
#define _POSIX_C_SOURCE 200809L
#include "model/model.h"
#include "train/optim.h"
#include "train/trainer.h"
#include "ops/ops.h"
#include "plugin.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static int bench_sgemm(void) {
    int n = 2048;
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double t[7];
    for (int r = 0; r < 9; r++) {
        double t0 = qr_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r >= 2) t[r - 2] = qr_now() - t0;
    }
    double s = median(t, 7);
    printf("{\"bench\": \"sgemm_peak\", \"n\": %d, \"seconds\": %.6f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f}\n", n,
           s, 2.0 * n * n * (double)n / s / 1e9, peak_rss_mb());
    free(a);
    free(b);
    free(c);
    return 0;
}

static int bench_train_gpt2(void) {
    qr_model_config c = {.arch = QR_ARCH_GPT2, .n_layer = 12, .n_embd = 768, .n_head = 12, .n_kv_head = 12,
                         .head_dim = 64, .n_ff = 3072, .n_vocab = 50257, .n_ctx = 1024, .norm_eps = 1e-5f, .tied = 1};
    enum { B = 4, T = 256 };
    qr_model *m = qr_model_new(&c, 1);
    qr_model_set_trainable(m, 1);
    int32_t *ids = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    uint64_t s = 5;
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(lcg(&s) % 50257);
    for (int i = 0; i < B * T; i++) tgt[i] = (int32_t)(lcg(&s) % 50257);
    double t[7], tf[7];
    float loss = 0;
    for (int r = 0; r < 9; r++) {
        double t0 = qr_now();
        qr_model_zero_grad(m);
        if (qr_model_forward(m, ids, tgt, B, T, &loss)) goto fail;
        double t1 = qr_now();
        if (qr_model_backward(m)) goto fail;
        if (r >= 2) {
            t[r - 2] = qr_now() - t0;
            tf[r - 2] = t1 - t0;
        }
    }
    double step = median(t, 7), fwd = median(tf, 7);
    double L = c.n_layer, C = c.n_embd, V = c.n_vocab, BT = B * T;
    double n_nonemb = (double)qr_model_n_weights(m) - V * C - (double)c.n_ctx * C;
    double flops = 6 * n_nonemb * BT + 12 * L * T * C * BT + 6 * C * V * BT;
    printf("{\"bench\": \"train_gpt2\", \"batch\": %d, \"seq\": %d, \"step_s\": %.4f, \"forward_s\": %.4f, "
           "\"backward_s\": %.4f, \"flops_per_step\": %.4g, \"gflops\": %.2f, \"loss\": %.4f, \"peak_rss_mb\": %.1f}\n",
           B, T, step, fwd, step - fwd, flops, flops / step / 1e9, loss, peak_rss_mb());
    qr_model_free(m);
    free(ids);
    free(tgt);
    return 0;
fail:
    fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
    return 1;
}

static int bench_w8a8_lora(void) {
    qr_model_config c = {.arch = QR_ARCH_GPT2, .n_layer = 12, .n_embd = 768, .n_head = 12, .n_kv_head = 12,
                         .head_dim = 64, .n_ff = 3072, .n_vocab = 50257, .n_ctx = 1024, .norm_eps = 1e-5f, .tied = 1};
    enum { B = 4, T = 256 };
    if (qr_plugins_init()) goto fail;
    qr_quantizer *q = qr_quantizer_new("minmax", NULL, 0);
    if (!q) goto fail;
    qr_model *m = qr_model_new(&c, 1);
    if (qr_model_lora_init(m, 1, 8, 16.0f, 1)) goto fail;
    qr_model_lora_trainable(m, 1);
    qr_model_set_quantizers(m, q, q);
    int nl = qr_model_n_linears(m);
    qr_layer_prec *fp = malloc((size_t)nl * sizeof *fp), *w8 = malloc((size_t)nl * sizeof *w8);
    for (int i = 0; i < nl; i++) {
        fp[i] = (qr_layer_prec){32, 32, 0, 0};
        w8[i] = (qr_layer_prec){8, 8, 0, 0};
    }
    int32_t *ids = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    uint64_t s = 5;
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(lcg(&s) % 50257);
    for (int i = 0; i < B * T; i++) tgt[i] = (int32_t)(lcg(&s) % 50257);
    double tf[7], tq[7];
    float loss;
    for (int r = 0; r < 9; r++) {
        for (int k = 0; k < 2; k++) {
            if (qr_model_set_precision(m, k ? w8 : fp, nl)) goto fail;
            double t0 = qr_now();
            qr_model_zero_grad(m);
            if (qr_model_forward(m, ids, tgt, B, T, &loss) || qr_model_backward(m)) goto fail;
            if (r >= 2) (k ? tq : tf)[r - 2] = qr_now() - t0;
        }
    }
    double a = median(tf, 7), b = median(tq, 7);
    printf("{\"bench\": \"train_gpt2_w8a8_lora\", \"batch\": %d, \"seq\": %d, \"lora_rank\": 8, \"fp_step_s\": %.4f, "
           "\"w8a8_step_s\": %.4f, \"ratio\": %.3f, \"peak_rss_mb\": %.1f}\n",
           B, T, a, b, b / a, peak_rss_mb());
    free(fp);
    free(w8);
    free(ids);
    free(tgt);
    qr_model_free(m);
    qr_instance_free(q);
    return 0;
fail:
    fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
    return 1;
}

static int bench_generate(const char *path) {
    qr_model *m = qr_model_load(path);
    if (!m) {
        fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
        return 1;
    }
    const qr_model_config *c = qr_model_cfg(m);
    enum { P = 256, D = 64 };
    int V = c->n_vocab;
    printf("{\"bench\": \"generate_smollm2\", \"prompt\": %d, \"new_tokens\": %d", P, D);
    for (int bi = 0; bi < 2; bi++) {
        int B = bi == 0 ? 1 : 4;
        qr_kvcache *kv = qr_kvcache_new(m, B, P + D + 1);
        int32_t *tok = malloc((size_t)B * P * sizeof(int32_t)), *seq = malloc((size_t)B * P * sizeof(int32_t));
        uint8_t *want = calloc((size_t)B * P, 1);
        float *lg = malloc((size_t)B * V * sizeof(float));
        uint64_t s = 11;
        for (int i = 0; i < B * P; i++) {
            tok[i] = (int32_t)(lcg(&s) % (uint64_t)V);
            seq[i] = i / P;
            want[i] = i % P == P - 1;
        }
        double tp[3], td[3];
        for (int r = 0; r < 3; r++) {
            qr_kvcache_clear(kv, -1);
            double t0 = qr_now();
            /* the whole batch in one prefill call, as qr_generate packs it */
            qr_model_decode(m, kv, tok, seq, B * P, want, lg);
            tp[r] = qr_now() - t0;
            int32_t nt[4], ns[4];
            t0 = qr_now();
            for (int d = 0; d < D; d++) {
                for (int b = 0; b < B; b++) {
                    const float *row = lg + (size_t)b * V;
                    int32_t best = 0;
                    for (int v = 1; v < V; v++)
                        if (row[v] > row[best]) best = v;
                    nt[b] = best;
                    ns[b] = b;
                }
                qr_model_decode(m, kv, nt, ns, B, NULL, lg);
            }
            td[r] = qr_now() - t0;
        }
        double p = median(tp, 3), d = median(td, 3);
        printf(", \"batch%d\": {\"prefill_tok_s\": %.1f, \"decode_tok_s\": %.1f, \"prefill_s\": %.4f, \"decode_s\": "
               "%.4f}",
               B, B * P / p, B * D / d, p, d);
        qr_kvcache_free(kv);
        free(tok);
        free(seq);
        free(want);
        free(lg);
    }
    printf(", \"peak_rss_mb\": %.1f}\n", peak_rss_mb());
    qr_model_free(m);
    return 0;
}

/* SmolLM2 from path with one LoRA (rank 8, alpha 16) per linear, trainable,
 * and the minmax quantizer on weights and inputs (*q, the caller frees it);
 * NULL + message on error. */
static qr_model *smollm2_lora(const char *path, qr_quantizer **q) {
    *q = NULL;
    if (qr_plugins_init() || !(*q = qr_quantizer_new("minmax", NULL, 0))) return NULL;
    qr_model *m = qr_model_load(path);
    if (!m || qr_model_lora_init(m, 1, 8, 16.0f, 1)) {
        qr_model_free(m);
        qr_instance_free(*q);
        return NULL;
    }
    qr_model_lora_trainable(m, 1);
    qr_model_set_quantizers(m, *q, *q);
    return m;
}

static int bench_train_smollm2_lora(const char *path) {
    enum { B = 4, T = 256 };
    qr_quantizer *q;
    qr_model *m = smollm2_lora(path, &q);
    if (!m) goto fail0;
    int V = qr_model_cfg(m)->n_vocab;
    int nl = qr_model_n_linears(m);
    qr_layer_prec *fp = malloc((size_t)nl * sizeof *fp), *w8 = malloc((size_t)nl * sizeof *w8);
    for (int i = 0; i < nl; i++) {
        fp[i] = (qr_layer_prec){32, 32, 0, 0};
        w8[i] = (qr_layer_prec){8, 8, 0, 0};
    }
    int64_t n;
    float *par = qr_model_lora_params(m, &n), *g = qr_model_lora_grads(m, NULL);
    float *m1 = calloc((size_t)n, sizeof(float)), *v1 = calloc((size_t)n, sizeof(float));
    int32_t *ids = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    uint64_t s = 3;
    for (int i = 0; i < B * T; i++) ids[i] = 17 + (int32_t)(lcg(&s) % (uint64_t)(V - 17));
    /* labels = inputs, shifted as Hugging Face does: position t predicts t+1 */
    for (int i = 0; i < B * T; i++) tgt[i] = i % T == T - 1 ? -1 : ids[i + 1];
    qr_adamw_cfg ac = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f};
    double tq[5], tf[5];
    float loss = 0, first = 0;
    int t = 0;
    for (int r = 0; r < 7; r++) {
        for (int k = 0; k < 2; k++) {
            if (qr_model_set_precision(m, k ? fp : w8, nl)) goto fail;
            double t0 = qr_now();
            qr_model_zero_grad(m);
            if (qr_model_forward(m, ids, tgt, B, T, &loss) || qr_model_backward(m)) goto fail;
            qr_adamw_step(par, g, m1, v1, n, &ac, ++t);
            if (r == 0 && k == 0) first = loss;
            if (r >= 2) (k ? tf : tq)[r - 2] = qr_now() - t0;
        }
    }
    double a = median(tq, 5), b = median(tf, 5);
    printf("{\"bench\": \"train_smollm2_lora\", \"batch\": %d, \"seq\": %d, \"lora_rank\": 8, \"lora_alpha\": 16, "
           "\"trainable_params\": %lld, \"quant\": \"w8a8 minmax\", \"step_s\": %.4f, \"tokens_per_s\": %.1f, "
           "\"fp_step_s\": %.4f, \"fp_tokens_per_s\": %.1f, \"loss_first\": %.4f, \"loss_last\": %.4f, "
           "\"peak_rss_mb\": %.1f}\n",
           B, T, (long long)n, a, B * T / a, b, B * T / b, first, loss, peak_rss_mb());
    free(fp);
    free(w8);
    free(m1);
    free(v1);
    free(ids);
    free(tgt);
    qr_model_free(m);
    qr_instance_free(q);
    return 0;
fail:
    qr_model_free(m);
fail0:
    fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
    return 1;
}

static int bench_train_smollm2_answer(const char *path) {
    enum { B = 4, T = 384, ANS = 8 };
    qr_quantizer *q;
    qr_model *m = smollm2_lora(path, &q);
    if (!m) goto fail0;
    int V = qr_model_cfg(m)->n_vocab;
    int nl = qr_model_n_linears(m);
    qr_layer_prec *w8 = malloc((size_t)nl * sizeof *w8);
    for (int i = 0; i < nl; i++) w8[i] = (qr_layer_prec){8, 8, 0, 0};
    if (qr_model_set_precision(m, w8, nl)) goto fail;
    int32_t *ids = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    int32_t rows[B * ANS], rt[B * ANS];
    uint64_t s = 3;
    int R = 0;
    for (int i = 0; i < B * T; i++) ids[i] = 17 + (int32_t)(lcg(&s) % (uint64_t)(V - 17));
    for (int i = 0; i < B * T; i++) {
        int t = i % T;
        tgt[i] = t >= T - 1 - ANS && t < T - 1 ? ids[i + 1] : -1;
        if (tgt[i] >= 0) {
            rows[R] = i;
            rt[R++] = tgt[i];
        }
    }
    float *probs = malloc((size_t)R * V * sizeof(float)), *losses = malloc((size_t)R * sizeof(float)),
          *dl = malloc((size_t)R * V * sizeof(float));
    double tf[5], tr[5];
    float lf = 0, lr = 0;
    for (int r = 0; r < 6; r++) {
        double t0 = qr_now();
        qr_model_zero_grad(m);
        if (qr_model_forward(m, ids, tgt, B, T, &lf) || qr_model_backward(m)) goto fail;
        double t1 = qr_now();
        qr_model_zero_grad(m);
        if (qr_model_forward_rows(m, ids, B, T, rows, R)) goto fail;
        lr = qr_crossentropy_forward(losses, probs, qr_model_logits(m), rt, R, V);
        memset(dl, 0, (size_t)R * V * sizeof(float));
        qr_crossentropy_backward(dl, probs, rt, 1.0f / (float)R, R, V);
        if (qr_model_backward_logits(m, dl)) goto fail;
        double t2 = qr_now();
        if (r >= 1) {
            tf[r - 1] = t1 - t0;
            tr[r - 1] = t2 - t1;
        }
    }
    double a = median(tf, 5), b = median(tr, 5);
    printf("{\"bench\": \"train_smollm2_answer\", \"batch\": %d, \"seq\": %d, \"scored_rows\": %d, "
           "\"all_rows_step_s\": %.4f, \"scored_rows_step_s\": %.4f, \"ratio\": %.3f, \"loss_all_rows\": %.5f, "
           "\"loss_scored_rows\": %.5f, \"peak_rss_mb\": %.1f}\n",
           B, T, R, a, b, b / a, lf, lr, peak_rss_mb());
    free(w8);
    free(ids);
    free(tgt);
    free(probs);
    free(losses);
    free(dl);
    qr_model_free(m);
    qr_instance_free(q);
    return 0;
fail:
    qr_model_free(m);
fail0:
    fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
    return 1;
}

/* The progress callback of bench_cpt_step: which configuration ran. */
static int cpt_ran(void *ud, const qr_train_progress *p) {
    int *which = ud;
    *which = -1;
    for (int i = 0; i < p->n_configs; i++)
        if (p->ran[i]) *which = *which < 0 ? i : -2; /* -2: more than one */
    return 0;
}

static int bench_cpt_step(const char *path) {
    enum { B = 4, T = 256, ANS = 8, NS = 64, K = 4, ROUNDS = 4, PERIOD = 8 };
    static const int bits[K][2] = {{32, 32}, {8, 8}, {6, 6}, {4, 8}};
    static const char *const names[K] = {"fp", "w8a8", "w6a6", "w4a8"};
    qr_quantizer *q = NULL;
    qr_model *m = NULL;
    qr_trainer *tj = NULL, *tc = NULL;
    qr_layer_prec *lp = NULL;
    int32_t *ids = NULL, *tgt = NULL;
    int64_t off[NS + 1];
    int rc = 1;
    if (qr_plugins_init() || !(q = qr_quantizer_new("minmax", NULL, 0)) || !(m = qr_model_load(path)) ||
        qr_model_lora_init(m, K, 8, 16.0f, 1))
        goto out;
    qr_model_set_quantizers(m, q, q);
    int V = qr_model_cfg(m)->n_vocab, nl = qr_model_n_linears(m);
    lp = malloc((size_t)K * nl * sizeof *lp);
    ids = malloc(NS * T * sizeof(int32_t));
    tgt = malloc(NS * T * sizeof(int32_t));
    if (!lp || !ids || !tgt) goto out;
    qr_train_config cfgs[K];
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < nl; i++) lp[k * nl + i] = (qr_layer_prec){bits[k][0], bits[k][1], k, 0};
        cfgs[k] = (qr_train_config){names[k], lp + k * nl};
    }
    uint64_t s = 5;
    for (int i = 0; i < NS * T; i++) ids[i] = 17 + (int32_t)(lcg(&s) % (uint64_t)(V - 17));
    for (int i = 0; i < NS * T; i++) {
        int t = i % T;
        tgt[i] = t >= T - 1 - ANS && t < T - 1 ? ids[i + 1] : -1;
    }
    for (int i = 0; i <= NS; i++) off[i] = (int64_t)i * T;
    qr_train_data data = {ids, tgt, off, NS};
    int which = -1;
    qr_train_opts oj = qr_train_defaults();
    oj.steps = 1 + ROUNDS;
    oj.batch = B;
    oj.seq = T;
    oj.lr = 1e-4f;
    oj.progress = cpt_ran;
    oj.ud = &which;
    qr_train_opts oc = oj;
    static const char *const ckv[] = {"mode", "configs", "n_cycles", "5"};
    oc.steps = PERIOD * (1 + ROUNDS); /* T_c = floor(40 / 5) = 8 */
    oc.schedule = "cyclic";
    oc.schedule_kv = ckv;
    oc.schedule_nkv = 2;
    if (!(tj = qr_trainer_new(m, cfgs, K, &data, &oj)) || !(tc = qr_trainer_new(m, cfgs, K, &data, &oc))) goto out;
    double tjs[ROUNDS], sum[K] = {0};
    int cnt[K] = {0};
    for (int r = 0; r <= ROUNDS; r++) {
        double t0 = qr_now();
        if (qr_trainer_step(tj)) goto out;
        if (r > 0) tjs[r - 1] = qr_now() - t0;
        for (int p = 0; p < PERIOD; p++) {
            t0 = qr_now();
            if (qr_trainer_step(tc)) goto out;
            double dt = qr_now() - t0;
            if (which < 0) {
                qr_err_set("bench cpt_step: the cyclic step ran %s configuration", which == -1 ? "no" : "more than one");
                goto out;
            }
            if (r > 0) {
                sum[which] += dt;
                cnt[which]++;
            }
        }
    }
    double tot = 0, jm = median(tjs, ROUNDS);
    printf("{\"bench\": \"cpt_step\", \"batch\": %d, \"seq\": %d, \"scored_per_seq\": %d, \"configs\": [", B, T, ANS);
    for (int k = 0; k < K; k++) {
        if (!cnt[k]) {
            qr_err_set("bench cpt_step: configuration %s never ran in a cyclic period", names[k]);
            goto out;
        }
        tot += sum[k] / cnt[k];
        printf("%s{\"name\": \"%s\", \"cyclic_step_s\": %.4f, \"steps\": %d}", k ? ", " : "", names[k],
               sum[k] / cnt[k], cnt[k]);
    }
    printf("], \"joint_step_s\": %.4f, \"cyclic_sum_s\": %.4f, \"ratio\": %.4f, \"rounds\": %d, \"peak_rss_mb\": %.1f}\n",
           jm, tot, tot / jm, ROUNDS, peak_rss_mb());
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_qrun: %s\n", qr_err_msg());
    qr_trainer_free(tj);
    qr_trainer_free(tc);
    qr_model_free(m);
    qr_instance_free(q);
    free(lp);
    free(ids);
    free(tgt);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_qrun sgemm_peak | train_gpt2 | train_gpt2_w8a8_lora | generate_smollm2 [GGUF] | train_smollm2_lora [GGUF] | train_smollm2_answer [GGUF] | cpt_step [GGUF]\n");
        return 2;
    }
    if (strcmp(argv[1], "sgemm_peak") == 0) return bench_sgemm();
    if (strcmp(argv[1], "train_gpt2") == 0) return bench_train_gpt2();
    if (strcmp(argv[1], "train_gpt2_w8a8_lora") == 0) return bench_w8a8_lora();
    if (strcmp(argv[1], "generate_smollm2") == 0 || strcmp(argv[1], "train_smollm2_lora") == 0 ||
        strcmp(argv[1], "train_smollm2_answer") == 0 || strcmp(argv[1], "cpt_step") == 0) {
        char buf[4096];
        const char *p = argc > 2 ? argv[2] : getenv("QRUN_MODEL");
        if (!p) {
            snprintf(buf, sizeof buf, "%s/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME"));
            p = buf;
        }
        if (argv[1][0] == 'g') return bench_generate(p);
        if (argv[1][0] == 'c') return bench_cpt_step(p);
        return strcmp(argv[1], "train_smollm2_lora") == 0 ? bench_train_smollm2_lora(p) : bench_train_smollm2_answer(p);
    }
    fprintf(stderr, "bench_qrun: unknown benchmark '%s'\n", argv[1]);
    return 2;
}
