/* test_trainer.c - the switchable-precision trainer (core/train/trainer.c) on a
 * tiny random GPT-2 (2 layers, 32 wide, vocab 97) with random token data:
 *   train-1  resume is bit-identical: N steps uninterrupted give adapters
 *            A; k steps with a checkpoint every step, then a fresh model
 *            and trainer resuming from the run directory (with a torn log
 *            line and a stale checkpoint.tmp left behind, as after SIGKILL)
 *            give adapters B; memcmp(A, B) == 0, and the two logs agree
 *            line for line (up to the wall-clock field)
 *   train-2  a corrupt checkpoint (byte flip, truncation, bad magic) and a
 *            mismatched one (other configuration set, other LoRA rank,
 *            other step count) are refused with a message naming the file
 *            and the field; the checkpoint file is unchanged afterwards
 *   train-3  a NaN weight stops the run naming the step and configuration;
 *            the last good checkpoint stays as it was
 *   train-4  the static schedule with two configurations: both adapters
 *            receive gradient and move; a third, unused slot does not move
 *   train-5  with accumulation 2 the loss of a step is the mean over the
 *            micro-batches; training lowers the loss on repeated data
 *   train-6  a loss made of weighted terms: the first step's loss of
 *            "ce+1e3*feature" (teacher fp) equals ce's plus 1000 times
 *            feature's, from the same start (relative tolerance 1e-5);
 *            feature is 0 for an fp student equal to its teacher; bad sums,
 *            unrouted options and a feature term without a teacher are
 *            refused naming what is wrong
 *   train-7  the schedule sees the configurations (ABI 1.2): a cyclic
 *            schedule built at test time (select_cfg only, no select) gets
 *            each one's name, weight/activation bits (means weighted by
 *            in x out, min, max) and relative BitOPs, equal to a
 *            computation here from the layer shapes, and runs them in
 *            increasing BitOPs, one per step; a 1.1-sized schedule (whose
 *            select_cfg, past its struct_size, would fail) is called
 *            through select */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "tiny_train.h"
#include "model/model.h"
#include "plugin.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NSEQ = 24, STEPS = 6, KILL_AT = 3 };

static char root[256];
static qr_quantizer *mm;

static qr_model *tiny(int rank, int slots) { return tiny_gpt2(mm, slots, rank); }

/* NSEQ sequences of 10..40 tokens: a random "prompt" then an "answer" that
 * copies the prompt's first tokens; only the answer is scored. */
static int32_t ids[NSEQ * 40], tgts[NSEQ * 40];
static int64_t offs[NSEQ + 1];
static qr_train_data make_data(void) { return tiny_copy_data(ids, tgts, offs, NSEQ); }

static qr_layer_prec precs[4][64];
/* configurations by name: "fp" slot 0, "w8a8", "w4a8", "w2a4" slot 1 */
static qr_train_config cfg(qr_model *m, int idx, const char *name) {
    int w = 32, a = 32, slot = 0;
    if (strcmp(name, "w8a8") == 0) w = a = 8, slot = 1;
    if (strcmp(name, "w4a8") == 0) w = 4, a = 8, slot = 1;
    if (strcmp(name, "w2a4") == 0) w = 2, a = 4, slot = 1;
    for (int i = 0; i < qr_model_n_linears(m); i++) precs[idx][i] = (qr_layer_prec){w, a, slot, 0};
    return (qr_train_config){name, precs[idx]};
}

static qr_train_opts opts(const char *dir, int every) {
    qr_train_opts o = qr_train_defaults();
    o.steps = STEPS;
    o.batch = 3;
    o.seq = 48;
    o.lr = 1e-2f;
    o.warmup = 2;
    o.min_lr = 1e-3f;
    o.clip = 0.5f;
    o.weight_decay = 0.01f;
    o.run_dir = dir;
    o.checkpoint_every = every;
    o.seed = 9;
    return o;
}

static qr_trainer *make(qr_model *m, const char *c1, const char *c2, const char *dir, int every) {
    qr_train_config cs[2] = {cfg(m, 0, c1), cfg(m, 1, c2)};
    qr_train_data d = make_data();
    qr_train_opts o = opts(dir, every);
    qr_trainer *t = qr_trainer_new(m, cs, 2, &d, &o);
    if (!t) fprintf(stderr, "trainer_new: %s\n", qr_err_msg());
    return t;
}

static char *slurp(const char *path, size_t *n) {
    char *b = qr_read_file(path, n);
    if (!b) *n = 0;
    return b;
}

static void spit(const char *path, const char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static char *dirpath(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", root, name);
    return p;
}

/* Log lines without their "seconds" field (wall time differs). */
static char *strip_seconds(char *s) {
    for (char *p = s; (p = strstr(p, ",\"seconds\":"));) {
        char *e = strchr(p, '}');
        memmove(p, e, strlen(e) + 1);
    }
    return s;
}

static int contains(const char *msg, const char *part) {
    if (strstr(msg, part)) return 1;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, part);
    return 0;
}

/* ---- train-7: schedules built at test time ---- */

#define PLUGIN_HEAD "#include \"qr_plugin.h\"\n#include <stddef.h>\n#include <stdio.h>\n"
/* t_cyclic: ABI 1.2, select_cfg only. Writes what it sees to the file of
 * option out=, one line per configuration per step, and runs at step t the
 * configuration of the (t mod n)-th lowest BitOPs. */
static const char *cyclic_src = PLUGIN_HEAD
    "static void *cr(const qr_host *h, const char *const *kv, int n) {\n"
    "  const char *out = h->opt(kv, n, \"out\");\n"
    "  FILE *f = out ? fopen(out, \"w\") : NULL;\n"
    "  if (!f) h->err_set(\"schedule 't_cyclic': out=FILE required\");\n"
    "  return f; }\n"
    "static void de(void *s) { fclose(s); }\n"
    "static int sel(void *s, int t, int T, int n, const qr_schedule_config *const *c, int *out) {\n"
    "  int o[32];\n"
    "  for (int i = 0; i < n; i++) {\n"
    "    fprintf(s, \"%d %s %u %d %.17g %d %d %.17g %d %d %.17g\\n\", t, c[i]->name, c[i]->struct_size,\n"
    "            c[i]->n_layers, c[i]->wbits_mean, c[i]->wbits_min, c[i]->wbits_max, c[i]->abits_mean,\n"
    "            c[i]->abits_min, c[i]->abits_max, c[i]->bitops);\n"
    "    int k = i;\n"
    "    for (; k > 0 && c[o[k - 1]]->bitops > c[i]->bitops; k--) o[k] = o[k - 1];\n"
    "    o[k] = i;\n"
    "  }\n"
    "  out[0] = o[t % n]; return 1; }\n"
    "static const qr_schedule_ops ops = {.struct_size = sizeof ops, .create = cr, .destroy = de, "
    ".select_cfg = sel};\n"
    "static const qr_entry e[] = {{.kind = QR_KIND_SCHEDULE, .name = \"t_cyclic\", .description = "
    "\"cyclic by BitOPs\", .ops = &ops}};\n"
    "QR_PLUGIN_DEFINE(\"t_cyclic\", \"0.1\", \"test\", e);\n";
/* t_old: a 1.1 schedule (struct_size ends at select; its descriptor says
 * 1.1) that runs the last configuration; the select_cfg past its size
 * fails, so a host that called it would show. */
static const char *old_src = PLUGIN_HEAD
    "static void *cr(const qr_host *h, const char *const *kv, int n) { static int s; return &s; }\n"
    "static void de(void *s) { }\n"
    "static int sel(void *s, int t, int T, int n, int *out) { out[0] = n - 1; return 1; }\n"
    "static int trap(void *s, int t, int T, int n, const qr_schedule_config *const *c, int *out) {\n"
    "  return QR_PLUGIN_ERR; }\n"
    "static const qr_schedule_ops ops = {.struct_size = offsetof(qr_schedule_ops, select_cfg), .create = cr, "
    ".destroy = de, .select = sel, .select_cfg = trap};\n"
    "static const qr_entry e[] = {{.kind = QR_KIND_SCHEDULE, .name = \"t_old\", .description = \"1.1\", "
    ".ops = &ops}};\n"
    "static const qr_entry *ge(uint32_t i) { return i < 1 ? &e[i] : NULL; }\n"
    "static const qr_plugin_desc d = {.abi_major = 1, .abi_minor = 1, .struct_size = sizeof d, .name = "
    "\"t_old\", .version = \"0.1\", .n_entries = 1, .get_entry = ge};\n"
    "QR_PLUGIN_EXPORT const qr_plugin_desc *qr_plugin_get_desc(void) { return &d; }\n";

/* Compile src into root/name.so and load it. */
static int load_plugin(const char *name, const char *src) {
    char c[600], so[600], cmd[2048];
    snprintf(c, sizeof c, "%s/%s.c", root, name);
    snprintf(so, sizeof so, "%s/%s.so", root, name);
    FILE *f = fopen(c, "w");
    if (!f) return QR_ERR;
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -w -I'%s/core' -o '%s' '%s'", QR_SOURCE_DIR, so, c);
    if (system(cmd) != 0) {
        fprintf(stderr, "  failed: %s\n", cmd);
        return QR_ERR;
    }
    if (qr_plugin_load(so)) {
        fprintf(stderr, "  %s\n", qr_err_msg());
        return QR_ERR;
    }
    return QR_OK;
}

/* Which configurations ran at each step (progress callback). */
static int ran_at[STEPS][4];
static int record_ran(void *ud, const qr_train_progress *p) {
    for (int c = 0; c < p->n_configs && c < 4; c++) ran_at[p->step - 1][c] = p->ran[c];
    return 0;
}

static float *adapters_after(qr_model *m, int64_t *n) {
    const float *p = qr_model_lora_params(m, n);
    float *c = malloc((size_t)*n * sizeof(float));
    memcpy(c, p, (size_t)*n * sizeof(float));
    return c;
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/qr_test_trainer.%ld", (long)getpid());
    mkdir(root, 0777);
    mm = qr_quantizer_new("minmax", NULL, 0);
    test_cond("minmax quantizer plugin", mm != NULL);
    if (!mm) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return test_report();
    }

    /* ---- train-1: resume is bit-identical ---- */
    int64_t n;
    qr_model *m = tiny(4, 2);
    float *init = adapters_after(m, &n);
    qr_trainer *t = make(m, "fp", "w8a8", dirpath("a"), 0);
    test_cond("train-1 trainer", t != NULL);
    int rc = qr_trainer_run(t);
    if (rc) fprintf(stderr, "%s\n", qr_err_msg());
    test_cond("train-1 uninterrupted run", rc == QR_OK);
    float l_fp = qr_trainer_last_loss(t, 0), l_w8 = qr_trainer_last_loss(t, 1);
    printf("train-1 uninterrupted: %d steps, last loss fp %.6f w8a8 %.6f\n", qr_trainer_step_count(t), l_fp, l_w8);
    test_cond("train-1 both losses finite", isfinite(l_fp) && isfinite(l_w8));
    qr_trainer_free(t);
    float *A = adapters_after(m, &n);
    test_cond("train-1 training moved the adapters", memcmp(A, init, (size_t)n * 4) != 0);
    qr_model_free(m);

    m = tiny(4, 2);
    t = make(m, "fp", "w8a8", dirpath("b"), 1);
    for (int i = 0; i < KILL_AT && t; i++) test_cond("train-1 step before the kill", qr_trainer_step(t) == QR_OK);
    qr_trainer_free(t); /* "killed": nothing more is written */
    qr_model_free(m);
    /* what a SIGKILL can leave: a torn log line, a half-written checkpoint */
    FILE *f = fopen(dirpath("b/train.jsonl"), "ab");
    fputs("{\"step\":4,\"lr\":0.00", f);
    fclose(f);
    spit(dirpath("b/checkpoint.tmp.99999"), "garbage", 7);
    m = tiny(4, 2);
    t = make(m, "fp", "w8a8", dirpath("b"), 1);
    int from = -2;
    rc = t ? qr_trainer_resume(t, &from) : QR_ERR;
    if (rc) fprintf(stderr, "%s\n", qr_err_msg());
    test_cond("train-1 resume", rc == QR_OK && from == KILL_AT);
    struct stat st;
    test_cond("train-1 stale checkpoint.tmp removed", stat(dirpath("b/checkpoint.tmp.99999"), &st) != 0);
    rc = t ? qr_trainer_run(t) : QR_ERR;
    test_cond("train-1 resumed run", rc == QR_OK);
    qr_trainer_free(t);
    float *Bv = adapters_after(m, &n);
    int same = memcmp(A, Bv, (size_t)n * 4) == 0;
    double maxd = 0;
    for (int64_t i = 0; i < n; i++) maxd = fmax(maxd, fabs((double)A[i] - Bv[i]));
    printf("train-1 resumed after step %d: adapters %s (max |diff| %.3g, %lld values)\n", KILL_AT,
           same ? "bit-identical" : "DIFFER", maxd, (long long)n);
    test_cond("train-1 resumed adapters bit-identical to the uninterrupted run", same);
    size_t la, lb;
    char *loga = slurp(dirpath("a/train.jsonl"), &la), *logb = slurp(dirpath("b/train.jsonl"), &lb);
    test_cond("train-1 logs exist", loga && logb);
    if (loga && logb) {
        int lines = 0;
        for (char *p = logb; *p; p++) lines += *p == '\n';
        test_cond("train-1 resumed log has one line per step", lines == STEPS);
        test_cond("train-1 logs agree (except wall time)", strcmp(strip_seconds(loga), strip_seconds(logb)) == 0);
    }
    free(loga);
    free(logb);
    free(Bv);
    qr_model_free(m);

    /* ---- train-2: corrupt and mismatched checkpoints are refused ---- */
    size_t clen;
    char *good = slurp(dirpath("b/checkpoint"), &clen);
    test_cond("train-2 checkpoint exists", good && clen > 100);
    struct {
        const char *what, *c1, *c2;
        int rank, steps;
        int mode; /* 0 flip, 1 truncate, 2 magic, 3 as is */
        const char *expect;
    } cases[] = {
        {"flipped byte", "fp", "w8a8", 4, STEPS, 0, "checksum"},
        {"truncated", "fp", "w8a8", 4, STEPS, 1, "truncated or corrupt"},
        {"bad magic", "fp", "w8a8", 4, STEPS, 2, "not a qrun training checkpoint"},
        {"other configuration set", "fp", "w4a8", 4, STEPS, 3,
         "configuration set differs: checkpoint has fp,w8a8, this run has fp,w4a8"},
        {"other rank", "fp", "w8a8", 8, STEPS, 3, "LoRA rank differs: checkpoint has 4, this run has 8"},
        {"other step count", "fp", "w8a8", 4, STEPS + 4, 3, "steps differs: checkpoint has 6, this run has 10"},
    };
    for (size_t i = 0; good && i < sizeof cases / sizeof cases[0]; i++) {
        char dn[32];
        snprintf(dn, sizeof dn, "c%zu", i);
        char *dir = dirpath(dn);
        mkdir(dir, 0777);
        char cp[600];
        snprintf(cp, sizeof cp, "%s/checkpoint", dir);
        size_t len = clen;
        char *bad = malloc(clen);
        memcpy(bad, good, clen);
        if (cases[i].mode == 0) bad[clen / 2] ^= 0x10;
        if (cases[i].mode == 1) len = clen - 1000;
        if (cases[i].mode == 2) bad[0] = 'X';
        spit(cp, bad, len);
        m = tiny(cases[i].rank, 2);
        qr_train_config cs[2] = {cfg(m, 0, cases[i].c1), cfg(m, 1, cases[i].c2)};
        qr_train_data d = make_data();
        qr_train_opts o = opts(dir, 1);
        o.steps = cases[i].steps;
        t = qr_trainer_new(m, cs, 2, &d, &o);
        test_cond("train-2 trainer", t != NULL);
        rc = t ? qr_trainer_run(t) : QR_OK;
        const char *msg = qr_err_msg();
        printf("train-2 %s: %s\n", cases[i].what, rc ? msg : "ACCEPTED");
        test_cond("train-2 refused", rc == QR_ERR);
        test_cond("train-2 message names the file", contains(msg, cp));
        test_cond("train-2 message names the field", contains(msg, cases[i].expect));
        size_t after_len;
        char *after = slurp(cp, &after_len);
        test_cond("train-2 checkpoint unchanged after the refusal",
                  after && after_len == len && memcmp(after, bad, len) == 0);
        free(after);
        free(bad);
        qr_trainer_free(t);
        qr_model_free(m);
    }
    free(good);

    /* ---- train-3: NaN stops the run naming step and configuration ---- */
    m = tiny(4, 2);
    t = make(m, "fp", "w8a8", dirpath("nan"), 1);
    for (int i = 0; i < 2 && t; i++) qr_trainer_step(t);
    size_t before_len;
    char *before = slurp(dirpath("nan/checkpoint"), &before_len);
    qr_param *w = qr_model_find_param(m, "h.0.ln_1.weight");
    test_cond("train-3 found the weight", w != NULL);
    if (w) w->data[3] = NAN;
    rc = t ? qr_trainer_step(t) : QR_OK;
    const char *msg = qr_err_msg();
    printf("train-3 NaN weight: %s\n", rc ? msg : "NOT STOPPED");
    test_cond("train-3 NaN stops the run", rc == QR_ERR);
    test_cond("train-3 message names the step", contains(msg, "step 3"));
    test_cond("train-3 message names the configuration", contains(msg, "configuration 'fp'"));
    test_cond("train-3 the trainer refuses to go on", t && qr_trainer_step(t) == QR_ERR);
    size_t after_len;
    char *after = slurp(dirpath("nan/checkpoint"), &after_len);
    test_cond("train-3 last good checkpoint kept",
              before && after && before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    qr_trainer_free(t);
    qr_model_free(m);

    /* ---- train-4: static schedule, two configurations, a third slot unused ---- */
    m = tiny(4, 3);
    float *p0 = adapters_after(m, &n);
    t = make(m, "fp", "w8a8", NULL, 0);
    rc = t ? qr_trainer_step(t) : QR_ERR;
    test_cond("train-4 step", rc == QR_OK);
    const float *g = qr_model_lora_grads(m, NULL);
    const float *p1 = qr_model_lora_params(m, NULL);
    for (int s = 0; s < 3; s++) {
        double gs = 0, moved = 0;
        for (int i = 0; i < qr_model_n_linears(m); i++) {
            qr_lora *a = qr_model_lora(m, i, s);
            qr_linear *l = qr_model_linear(m, i);
            int64_t o = a->A - p1, len = (int64_t)4 * (l->in + l->out);
            for (int64_t j = 0; j < len; j++) {
                gs += fabs(g[o + j]);
                moved += fabs((double)p1[o + j] - p0[o + j]);
            }
        }
        printf("train-4 slot %d: sum |grad| %.4g, sum |change| %.4g\n", s, gs, moved);
        if (s < 2) {
            test_cond("train-4 active slot got gradient", gs > 0);
            test_cond("train-4 active slot moved", moved > 0);
        } else {
            test_cond("train-4 unused slot got no gradient", gs == 0);
            test_cond("train-4 unused slot did not move (no decay, no momentum)", moved == 0);
        }
    }
    test_cond("train-4 both losses reported", t && isfinite(qr_trainer_last_loss(t, 0)) &&
                                                  isfinite(qr_trainer_last_loss(t, 1)));
    free(p0);
    qr_trainer_free(t);
    qr_model_free(m);

    /* ---- train-5: accumulation and learning on repeated data ---- */
    m = tiny(4, 2);
    {
        qr_train_config cs[1] = {cfg(m, 0, "fp")};
        qr_train_data d = make_data();
        d.n = 3; /* one batch worth of data, repeated */
        qr_train_opts o = opts(NULL, 0);
        o.steps = 30;
        o.accum = 2;
        o.lr = 3e-2f;
        o.warmup = 0;
        t = qr_trainer_new(m, cs, 1, &d, &o);
        test_cond("train-5 trainer", t != NULL);
        float first = NAN, last = NAN;
        for (int i = 0; t && i < o.steps; i++) {
            if (qr_trainer_step(t)) {
                fprintf(stderr, "%s\n", qr_err_msg());
                break;
            }
            if (i == 0) first = qr_trainer_last_loss(t, 0);
            last = qr_trainer_last_loss(t, 0);
        }
        printf("train-5 accum 2, 30 steps on 3 sequences: loss %.4f -> %.4f\n", first, last);
        test_cond("train-5 loss decreased by 5% or more", last < 0.95f * first);
        qr_trainer_free(t);
    }
    qr_model_free(m);

    /* ---- train-6: weighted loss terms, the feature loss ---- */
    {
        const char *specs[3] = {"ce", "feature", "ce + 1e3*feature"};
        float l6[3][2];
        for (int k = 0; k < 3; k++) {
            m = tiny(4, 2);
            qr_train_config cs[2] = {cfg(m, 0, "fp"), cfg(m, 1, "w2a4")};
            qr_train_data d = make_data();
            qr_train_opts o = opts(NULL, 0);
            o.loss = specs[k];
            o.teacher = "fp";
            t = qr_trainer_new(m, cs, 2, &d, &o);
            rc = t ? qr_trainer_step(t) : QR_ERR;
            if (rc) fprintf(stderr, "train-6 %s: %s\n", specs[k], qr_err_msg());
            test_cond("train-6 step with a summed loss", rc == QR_OK);
            for (int c = 0; c < 2; c++) l6[k][c] = t ? qr_trainer_last_loss(t, c) : NAN;
            qr_trainer_free(t);
            qr_model_free(m);
        }
        double worst = 0;
        for (int c = 0; c < 2; c++) {
            double want = (double)l6[0][c] + 1e3 * l6[1][c];
            worst = fmax(worst, fabs(l6[2][c] - want) / fmax(1e-12, fabs(want)));
        }
        printf("train-6 fp: ce %.6f feature %.3g; w2a4: ce %.6f feature %.6g; ce+1e3*feature %.6f / %.6f "
               "(max relative diff %.3g, tol 1e-5)\n",
               l6[0][0], l6[1][0], l6[0][1], l6[1][1], l6[2][0], l6[2][1], worst);
        test_cond("train-6 the sum is ce + 1e3 feature", worst < 1e-5);
        test_cond("train-6 feature is 0 for the untouched fp student", l6[1][0] == 0.0f);
        test_cond("train-6 feature of w2a4 counts (> 1e-3 of the sum)", 1e3 * l6[1][1] > 1e-3 * l6[2][1]);

        struct {
            const char *loss, *teacher, *key, *want;
        } bad[] = {
            {"ce+", "fp", NULL, "ends with +"},
            {"0*ce", "fp", NULL, "weight \"0\""},
            {"x*ce", "fp", NULL, "weight \"x\""},
            {"ce+ce", "fp", NULL, "appears twice"},
            {"ce+nosuch", "fp", NULL, "nosuch"},
            {"feature", "none", NULL, "set teacher"},
            {"ce+kd", "fp", "temperature", "name the term (e.g. ce.temperature)"},
            {"ce+kd", "fp", "kld.temperature", "\"kld\" is not a term"},
            {"ce+kd", "fp", "kd.nosuch", "nosuch"},
        };
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            m = tiny(4, 2);
            qr_train_config cs[1] = {cfg(m, 0, "fp")};
            qr_train_data d = make_data();
            qr_train_opts o = opts(NULL, 0);
            o.loss = bad[k].loss;
            o.teacher = bad[k].teacher;
            const char *kv[2] = {bad[k].key, "2"};
            if (bad[k].key) {
                o.loss_kv = kv;
                o.loss_nkv = 1;
            }
            t = qr_trainer_new(m, cs, 1, &d, &o);
            int ok = !t && contains(qr_err_msg(), bad[k].want);
            printf("train-6 loss \"%s\"%s%s: %s\n", bad[k].loss, bad[k].key ? " option " : "",
                   bad[k].key ? bad[k].key : "", t ? "accepted" : qr_err_msg());
            test_cond("train-6 bad loss refused with its reason", ok);
            qr_trainer_free(t);
            qr_model_free(m);
        }
        /* a routed option reaches its term */
        m = tiny(4, 2);
        qr_train_config cs[1] = {cfg(m, 0, "fp")};
        qr_train_data d = make_data();
        qr_train_opts o = opts(NULL, 0);
        o.loss = "ce+0.1*kd";
        o.teacher = "fp";
        const char *kv[4] = {"kd.temperature", "2", "kd.rows", "all"};
        o.loss_kv = kv;
        o.loss_nkv = 2;
        t = qr_trainer_new(m, cs, 1, &d, &o);
        test_cond("train-6 kd.temperature routed to kd", t != NULL && qr_trainer_step(t) == QR_OK);
        qr_trainer_free(t);
        qr_model_free(m);
    }

    /* ---- train-7: the schedule sees the configurations ---- */
    if (load_plugin("t_cyclic", cyclic_src) == QR_OK && load_plugin("t_old", old_src) == QR_OK) {
        m = tiny(4, 2);
        /* fp (slot 0), w4a8 and a mixed one: layer 0 w2a4, the rest w8a8 (slot 1) */
        qr_train_config cs[3] = {cfg(m, 0, "fp"), cfg(m, 1, "w4a8"), cfg(m, 2, "w8a8")};
        cs[2].name = "mix";
        precs[2][0] = (qr_layer_prec){2, 4, 1, 0};
        /* what the schedule should see: computed here from the layer shapes */
        double want[3][7] = {{0}}; /* wmean, wmin, wmax, amean, amin, amax, bitops */
        int nl = qr_model_n_linears(m);
        for (int c = 0; c < 3; c++) {
            double n = 0, w = 0, a = 0, ops = 0;
            want[c][1] = want[c][4] = 99;
            for (int i = 0; i < nl; i++) {
                const qr_linear *l = qr_model_linear(m, i);
                double k = (double)l->in * l->out;
                const qr_layer_prec *p = &cs[c].layers[i];
                n += k, w += k * p->wbits, a += k * p->abits, ops += k * p->wbits * p->abits;
                want[c][1] = fmin(want[c][1], p->wbits), want[c][2] = fmax(want[c][2], p->wbits);
                want[c][4] = fmin(want[c][4], p->abits), want[c][5] = fmax(want[c][5], p->abits);
            }
            want[c][0] = w / n, want[c][3] = a / n, want[c][6] = ops / (n * 1024);
        }
        char out[600];
        snprintf(out, sizeof out, "%s/t_cyclic.txt", root);
        const char *kv[2] = {"out", out};
        qr_train_data d = make_data();
        qr_train_opts o = opts(NULL, 0);
        o.schedule = "t_cyclic";
        o.schedule_kv = kv;
        o.schedule_nkv = 1;
        o.progress = record_ran;
        memset(ran_at, 0, sizeof ran_at);
        t = qr_trainer_new(m, cs, 3, &d, &o);
        test_cond("train-7 a schedule with select_cfg only", t != NULL && qr_trainer_run(t) == QR_OK);
        if (!t || qr_trainer_step_count(t) != STEPS) fprintf(stderr, "  %s\n", qr_err_msg());
        qr_trainer_free(t); /* closes the schedule's file */
        /* by BitOPs: w4a8 (32/1024) < mix < fp (1): one per step, cycling */
        const int order[3] = {1, 2, 0};
        int cyc = 1;
        for (int st = 0; st < STEPS; st++)
            for (int c = 0; c < 3; c++) cyc &= ran_at[st][c] == (c == order[st % 3]);
        test_cond("train-7 the cyclic schedule runs w4a8, mix, fp, w4a8, ... (increasing BitOPs)", cyc);
        size_t n;
        char *txt = slurp(out, &n);
        int lines = 0, seen_ok = txt != NULL;
        double maxdiff = 0;
        for (char *l = txt; l && *l; lines++) {
            int step, nlay, wmin, wmax, amin, amax;
            unsigned sz;
            char name[64];
            double wm, am, bo;
            if (sscanf(l, "%d %63s %u %d %lf %d %d %lf %d %d %lf", &step, name, &sz, &nlay, &wm, &wmin, &wmax, &am,
                       &amin, &amax, &bo) != 11) {
                seen_ok = 0;
                break;
            }
            int c = lines % 3;
            seen_ok &= step == lines / 3 && strcmp(name, cs[c].name) == 0 && sz == sizeof(qr_schedule_config) &&
                       nlay == nl && wmin == want[c][1] && wmax == want[c][2] && amin == want[c][4] &&
                       amax == want[c][5];
            maxdiff = fmax(maxdiff, fmax(fabs(wm - want[c][0]), fmax(fabs(am - want[c][3]), fabs(bo - want[c][6]))));
            l = strchr(l, '\n');
            if (l) l++;
        }
        printf("train-7 schedule saw %d lines; mix: w mean %.6g, a mean %.6g, bitops %.6g; maxdiff %.3g\n", lines,
               want[2][0], want[2][3], want[2][6], maxdiff);
        test_cond("train-7 the schedule saw every configuration at every step", lines == 3 * STEPS);
        test_cond("train-7 names, struct_size, layer count and min/max bits as given", seen_ok);
        test_cond("train-7 weighted means and BitOPs as computed from the layer shapes (1e-12)", maxdiff < 1e-12);
        test_cond("train-7 the mixed configuration is in between",
                  want[2][1] == 2 && want[2][2] == 8 && want[2][6] > want[1][6] && want[2][6] < 1);
        free(txt);

        /* a 1.1 schedule: its select runs, never the select_cfg past its size */
        o = opts(NULL, 0);
        o.schedule = "t_old";
        o.progress = record_ran;
        memset(ran_at, 0, sizeof ran_at);
        t = qr_trainer_new(m, cs, 3, &d, &o);
        int rc = t ? qr_trainer_step(t) : QR_ERR;
        if (rc) fprintf(stderr, "  %s\n", qr_err_msg());
        test_cond("train-7 a 1.1-sized schedule trains through select (the last configuration)",
                  rc == QR_OK && !ran_at[0][0] && !ran_at[0][1] && ran_at[0][2]);
        qr_trainer_free(t);
        qr_model_free(m);
    } else {
        test_cond("train-7 compile and load the test schedules (cc)", 0);
    }

    free(init);
    free(A);
    qr_quantizer_free(mm);
    char cmd[400];
    snprintf(cmd, sizeof cmd, getenv("KEEP") ? "true %s" : "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return test_report();
}
