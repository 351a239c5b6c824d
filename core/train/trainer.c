/* trainer.c - switchable-precision LoRA tuning: the step loop (see
 * trainer.h); the checkpoint file is checkpoint.c's. */
#define _GNU_SOURCE
#include "trainer.h"

#include "checkpoint.h"
#include "optim.h"
#include "plugin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAD_ID 0
#define T_ROUND 32 /* pad T up to a multiple of this: fewer activation-arena reallocations */
#define MAX_LOSS_TERMS 8

/* One term of the loss: weight x plugin ("ce+0.1*feature" has two). */
typedef struct {
    char name[QR_TRAIN_NAME_MAX];
    double w;
    qr_instance *inst;
    const qr_loss_ops *ops;
    int feat; /* has the hidden-state term (ABI 1.1) */
} loss_term;

struct qr_trainer {
    qr_model *m;
    int n_lin, n_slots, V;
    int n_cfg;
    char names[QR_TRAIN_MAX_CONFIGS][QR_TRAIN_NAME_MAX];
    const char *name_ptr[QR_TRAIN_MAX_CONFIGS];
    qr_layer_prec *prec; /* (n_cfg, n_lin) */
    qr_train_opts o;     /* strings below are our own copies */
    char *schedule_name, *loss_name, *run_dir, *schedule_opts, *loss_opts;
    qr_instance *sched;
    const qr_schedule_ops *sops;
    qr_schedule_config sched_cfg[QR_TRAIN_MAX_CONFIGS]; /* what a 1.2 schedule sees of each */
    const qr_schedule_config *sched_cfg_ptr[QR_TRAIN_MAX_CONFIGS];
    loss_term terms[MAX_LOSS_TERMS];
    int n_terms, need_feat;
    int compact;          /* every loss term reads only scored rows: logits of those alone */
    int32_t *rows, *ctgt; /* (batch*seq) the micro-batch's scored rows and their targets */
    int n_rows;

    /* data (copied) */
    int32_t *ids, *tgt;
    int64_t *off;
    int n_data;
    int64_t n_tokens;

    /* optimizer: moments over the whole LoRA buffer, a step count per
     * (layer, slot) adapter, slices into the buffer */
    int64_t n_lora;
    float *m1, *v1;
    int32_t *slot_t;              /* (n_lin * n_slots) */
    int64_t *slice_off, *slice_n; /* (n_lin * n_slots) */
    uint8_t *used;                /* (n_lin * n_slots) this step */

    /* progress through training and the data */
    int step, epoch, cursor;
    int32_t *perm;
    uint64_t rng;
    int failed;

    /* scratch */
    float *dlogits;
    size_t dl_cap;
    int teacher_fp;       /* teacher logits from the fp base model */
    int cascade;          /* teacher = the next higher-precision configuration (InstantNet) */
    int tuned;            /* teacher = the step's highest-precision configuration, with its adapters */
    double *bits_rank;    /* per configuration: mean over layers of w x a, to order a cascade */
    float *tlogits;       /* (B*T, V) teacher logits of the current micro-batch */
    size_t tl_cap;
    qr_layer_prec *fp_prec; /* every layer at 32 bits, no adapter */
    float *dlscratch;       /* (B*T, V) one weighted term's dlogits */
    float *hid, *thid, *dhid, *dhscratch; /* (L, B*T, C) student / teacher hidden states, their gradient */
    size_t hid_cap;
    int32_t *bids, *btgt;
    int *sel;

    float last_loss[QR_TRAIN_MAX_CONFIGS];
    int ran[QR_TRAIN_MAX_CONFIGS];
    int64_t tokens;
    double seconds;
    int steps_here, resumed_from, resumed;

    uint64_t weights_fnv, configs_fnv, data_fnv;
    int lock_fd;
    char *ckpt_path, *log_path;
    FILE *log;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static char *xstrdup0(const char *s) { return s ? qr_xstrdup(s) : NULL; }

/* "k=v;k=v" of plugin options, for the checkpoint header. */
static char *join_kv(const char *const *kv, int n) {
    size_t len = 1;
    for (int i = 0; i < 2 * n; i++) len += strlen(kv[i]) + 1;
    char *s = qr_xcalloc(len, 1);
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, ";");
        strcat(s, kv[2 * i]);
        strcat(s, "=");
        strcat(s, kv[2 * i + 1]);
    }
    /* the header is line-based */
    for (char *c = s; *c; c++)
        if (*c == '\n') *c = ' ';
    return s;
}

static int mkdir_p(const char *dir) {
    char *p = qr_xstrdup(dir);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        if (mkdir(p, 0777) && errno != EEXIST) {
            int e = errno;
            free(p);
            return qr_err_set("%s: cannot create directory: %s", dir, strerror(e));
        }
        *c = '/';
    }
    int rc = QR_OK;
    if (mkdir(p, 0777) && errno != EEXIST) rc = qr_err_set("%s: cannot create directory: %s", dir, strerror(errno));
    free(p);
    return rc;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = qr_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

qr_train_opts qr_train_defaults(void) {
    return (qr_train_opts){.steps = 1000, .batch = 4, .accum = 1, .seq = 512, .lr = 2e-4f, .min_lr = 0.0f,
                           .warmup = 0, .clip = 1.0f, .weight_decay = 0.0f, .beta1 = 0.9f, .beta2 = 0.999f,
                           .eps = 1e-8f, .seed = 1, .schedule = "static", .loss = "ce", .checkpoint_every = 0};
}

/* ------------------------------------------------------------------ */
/* data order                                                          */

static int64_t seq_len(const qr_trainer *t, int32_t i) { return t->off[i + 1] - t->off[i]; }

/* opts.bucket = W > 0: in each window of W micro-batches of the shuffled
 * order, the sequences sorted by length (stable), then the window's whole
 * micro-batches shuffled among themselves: a batch holds sequences of
 * similar length (it is padded to its longest), and the order of lengths
 * stays random. A pure function of the RNG, as the plain shuffle. */
static void bucket_by_length(qr_trainer *t) {
    const int B = t->o.batch, W = B * t->o.bucket, n = t->n_data;
    int32_t tmp[4096];
    for (int s0 = 0; s0 < n; s0 += W) {
        int e = s0 + W < n ? s0 + W : n;
        for (int i = s0 + 1; i < e; i++) { /* insertion sort: windows are small */
            int32_t x = t->perm[i];
            int j = i;
            for (; j > s0 && seq_len(t, t->perm[j - 1]) > seq_len(t, x); j--) t->perm[j] = t->perm[j - 1];
            t->perm[j] = x;
        }
        int nch = (e - s0) / B; /* whole micro-batches; a tail stays where it is */
        for (int i = nch - 1; i > 0; i--) {
            int j = (int)(splitmix(&t->rng) % (uint64_t)(i + 1));
            if (j == i) continue;
            int32_t *a = t->perm + s0 + (size_t)i * B, *b = t->perm + s0 + (size_t)j * B;
            memcpy(tmp, a, (size_t)B * sizeof *tmp);
            memcpy(a, b, (size_t)B * sizeof *tmp);
            memcpy(b, tmp, (size_t)B * sizeof *tmp);
        }
    }
}

static void shuffle(qr_trainer *t) {
    for (int i = 0; i < t->n_data; i++) t->perm[i] = i;
    for (int i = t->n_data - 1; i > 0; i--) {
        int j = (int)(splitmix(&t->rng) % (uint64_t)(i + 1));
        int32_t x = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = x;
    }
    if (t->o.bucket > 0) bucket_by_length(t);
}

static int next_example(qr_trainer *t) {
    if (t->cursor >= t->n_data) {
        t->epoch++;
        t->cursor = 0;
        shuffle(t);
    }
    return t->perm[t->cursor++];
}

/* ------------------------------------------------------------------ */
/* construction                                                        */

static void free_parts(qr_trainer *t) {
    qr_instance_free(t->sched);
    for (int k = 0; k < t->n_terms; k++) qr_instance_free(t->terms[k].inst);
    free(t->dlscratch);
    free(t->hid);
    free(t->thid);
    free(t->dhid);
    free(t->dhscratch);
    free(t->rows);
    free(t->ctgt);
    free(t->prec);
    free(t->schedule_name);
    free(t->loss_name);
    free(t->run_dir);
    free(t->schedule_opts);
    free(t->loss_opts);
    free(t->ids);
    free(t->tgt);
    free(t->off);
    free(t->m1);
    free(t->v1);
    free(t->slot_t);
    free(t->slice_off);
    free(t->slice_n);
    free(t->used);
    free(t->perm);
    free(t->dlogits);
    free(t->tlogits);
    free(t->fp_prec);
    free(t->bits_rank);
    free(t->bids);
    free(t->btgt);
    free(t->sel);
    free(t->ckpt_path);
    free(t->log_path);
    if (t->log) fclose(t->log);
    if (t->lock_fd >= 0) close(t->lock_fd); /* releases the flock */
    free(t);
}

void qr_trainer_free(qr_trainer *t) {
    if (t) free_parts(t);
}

/* Remove the temporaries (NAME.tmp.<pid>) of the files a training run
 * writes in its directory, left by a process killed while writing one. Only
 * called under the run's lock, so no live writer owns them. The final
 * adapters are written by lua_train.c after training, under the same lock. */
static void remove_stale_tmp(const char *dir) {
    static const char *const owned[] = {"checkpoint.tmp.", "train.jsonl.tmp.", "adapters.safetensors.tmp."};
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int mine = 0;
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
            if (strncmp(e->d_name, owned[i], strlen(owned[i])) == 0) mine = 1;
        if (mine) {
            char *p = path_join(dir, e->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
}

/* A configuration as a schedule sees it (ABI 1.2): its bit-widths over the
 * linear layers, means weighted by in x out, and its BitOPs per token
 * relative to w32a32 (precision.lua's P.cost: sum(in out w a) / sum(in out
 * 32 32)). The trainer and qr.schedule (lua_plugin.c) both use it, so a
 * schedule asked from Lua answers what it answers in training. */
void qr_schedule_config_fill(qr_schedule_config *d, const char *name, int n_lin, const double *in_out,
                             const qr_layer_prec *p) {
    *d = (qr_schedule_config){.struct_size = sizeof *d, .name = name, .n_layers = n_lin,
                              .wbits_mean = 32, .abits_mean = 32, .wbits_min = 32, .wbits_max = 32,
                              .abits_min = 32, .abits_max = 32, .bitops = 1};
    double n = 0, w = 0, a = 0, ops = 0;
    for (int i = 0; i < n_lin; i++) {
        double k = in_out ? in_out[i] : 1.0;
        n += k;
        w += k * p[i].wbits;
        a += k * p[i].abits;
        ops += k * p[i].wbits * p[i].abits;
        if (i == 0 || p[i].wbits < d->wbits_min) d->wbits_min = p[i].wbits;
        if (i == 0 || p[i].wbits > d->wbits_max) d->wbits_max = p[i].wbits;
        if (i == 0 || p[i].abits < d->abits_min) d->abits_min = p[i].abits;
        if (i == 0 || p[i].abits > d->abits_max) d->abits_max = p[i].abits;
    }
    if (n > 0) {
        d->wbits_mean = w / n;
        d->abits_mean = a / n;
        d->bitops = ops / (n * 32 * 32);
    }
}

static void describe_configs(qr_trainer *t) {
    double *k = qr_xmalloc((size_t)(t->n_lin > 0 ? t->n_lin : 1) * sizeof *k);
    for (int i = 0; i < t->n_lin; i++) {
        const qr_linear *l = qr_model_linear(t->m, i);
        k[i] = (double)l->in * l->out;
    }
    for (int c = 0; c < t->n_cfg; c++) {
        qr_schedule_config_fill(&t->sched_cfg[c], t->names[c], t->n_lin, k, t->prec + (size_t)c * t->n_lin);
        t->sched_cfg_ptr[c] = &t->sched_cfg[c];
    }
    free(k);
}

static int check_opts(const qr_train_opts *o, const qr_model_config *c) {
#define REQ(cond, ...) \
    if (!(cond)) return qr_err_set(__VA_ARGS__)
    REQ(o->steps >= 1, "train: steps = %d: expected >= 1", o->steps);
    REQ(o->batch >= 1 && o->batch <= 4096, "train: batch = %d: expected 1..4096", o->batch);
    REQ(o->accum >= 1 && o->accum <= 4096, "train: accum = %d: expected 1..4096", o->accum);
    REQ(o->seq >= 2 && o->seq <= c->n_ctx, "train: seq = %d: expected 2..%d (the model's context)", o->seq, c->n_ctx);
    REQ(isfinite(o->lr) && o->lr > 0, "train: lr = %g: expected > 0", (double)o->lr);
    REQ(isfinite(o->min_lr) && o->min_lr >= 0 && o->min_lr <= o->lr, "train: min_lr = %g: expected 0..lr (%g)",
        (double)o->min_lr, (double)o->lr);
    REQ(o->warmup >= 0 && o->warmup <= o->steps, "train: warmup = %d: expected 0..steps (%d)", o->warmup, o->steps);
    REQ(isfinite(o->clip) && o->clip >= 0, "train: clip = %g: expected >= 0 (0 = no clipping)", (double)o->clip);
    REQ(isfinite(o->weight_decay) && o->weight_decay >= 0, "train: weight_decay = %g: expected >= 0",
        (double)o->weight_decay);
    REQ(o->beta1 >= 0 && o->beta1 < 1, "train: beta1 = %g: expected [0, 1)", (double)o->beta1);
    REQ(o->beta2 >= 0 && o->beta2 < 1, "train: beta2 = %g: expected [0, 1)", (double)o->beta2);
    REQ(o->eps > 0 && isfinite(o->eps), "train: eps = %g: expected > 0", (double)o->eps);
    REQ(o->bucket >= 0 && o->bucket <= 1 << 20, "train: bucket = %d: expected 0 (off) or a window of micro-batches "
        ">= 1", o->bucket);
    REQ(o->checkpoint_every >= 0, "train: checkpoint_every = %d: expected >= 0", o->checkpoint_every);
    REQ(o->schedule && *o->schedule, "train: schedule: a plugin name is required");
    REQ(o->loss && *o->loss, "train: loss: a plugin name (or a sum like \"ce+0.1*feature\") is required");
    REQ(o->schedule_nkv >= 0 && o->loss_nkv >= 0, "train: negative option counts");
#undef REQ
    return QR_OK;
}

static int copy_data(qr_trainer *t, const qr_train_data *d) {
    if (!d || d->n < 1 || !d->ids || !d->targets || !d->off)
        return qr_err_set("train: data: expected at least one sequence");
    if (d->off[0] != 0) return qr_err_set("train: data: offsets must start at 0");
    for (int i = 0; i < d->n; i++) {
        int64_t len = d->off[i + 1] - d->off[i];
        if (len < 1 || len > t->o.seq)
            return qr_err_set("train: data: sequence %d has %lld tokens: expected 1..seq (%d)", i, (long long)len,
                              t->o.seq);
        for (int64_t k = d->off[i]; k < d->off[i + 1]; k++) {
            if (d->ids[k] < 0 || d->ids[k] >= t->V)
                return qr_err_set("train: data: sequence %d, token %lld: id %d outside the vocabulary 0..%d", i,
                                  (long long)(k - d->off[i]), d->ids[k], t->V - 1);
            if (d->targets[k] < -1 || d->targets[k] >= t->V)
                return qr_err_set("train: data: sequence %d, position %lld: target %d: expected -1 or 0..%d", i,
                                  (long long)(k - d->off[i]), d->targets[k], t->V - 1);
        }
    }
    int64_t n = d->off[d->n];
    t->n_data = d->n;
    t->n_tokens = n;
    t->ids = qr_xmalloc((size_t)n * sizeof(int32_t));
    t->tgt = qr_xmalloc((size_t)n * sizeof(int32_t));
    t->off = qr_xmalloc((size_t)(d->n + 1) * sizeof(int64_t));
    memcpy(t->ids, d->ids, (size_t)n * sizeof(int32_t));
    memcpy(t->tgt, d->targets, (size_t)n * sizeof(int32_t));
    memcpy(t->off, d->off, (size_t)(d->n + 1) * sizeof(int64_t));
    uint64_t h = qr_fnv_words(QR_FNV_INIT, t->ids, (size_t)n);
    h = qr_fnv_words(h, t->tgt, (size_t)n);
    t->data_fnv = qr_fnv(h, t->off, (size_t)(d->n + 1) * sizeof(int64_t));
    if (t->o.bucket > 0) /* the order depends on it: a resume under another bucketing is refused as other data */
        t->data_fnv = qr_fnv(t->data_fnv, &t->o.bucket, sizeof t->o.bucket);
    return QR_OK;
}

static int open_run_dir(qr_trainer *t) {
    if (mkdir_p(t->run_dir)) return QR_ERR;
    char *lock = path_join(t->run_dir, "lock");
    t->lock_fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (t->lock_fd < 0) {
        qr_err_set("%s: cannot open: %s", lock, strerror(errno));
        free(lock);
        return QR_ERR;
    }
    if (flock(t->lock_fd, LOCK_EX | LOCK_NB)) {
        qr_err_set("%s: the run directory is in use by another training process (lock held on %s)", t->run_dir,
                   lock);
        free(lock);
        return QR_ERR;
    }
    free(lock);
    remove_stale_tmp(t->run_dir);
    t->ckpt_path = path_join(t->run_dir, "checkpoint");
    t->log_path = path_join(t->run_dir, "train.jsonl");
    return QR_OK;
}

/* The loss: "NAME" or a sum of terms "[W*]NAME + [W*]NAME ...", W a
 * positive number. Options "key=value" go to the only term, or, with
 * several, name theirs: "kd.temperature=2". */
static int make_loss_terms(qr_trainer *t, const qr_train_opts *opts) {
    const char *spec = opts->loss;
    const char *p = spec;
    while (*p) {
        if (t->n_terms == MAX_LOSS_TERMS)
            return qr_err_set("train: loss \"%s\": more than %d terms", spec, MAX_LOSS_TERMS);
        const char *end = strchr(p, '+');
        if (!end) end = p + strlen(p);
        char term[128];
        size_t n = (size_t)(end - p);
        if (n >= sizeof term) return qr_err_set("train: loss \"%s\": a term is too long", spec);
        memcpy(term, p, n);
        term[n] = 0;
        char *a = term, *z = term + n;
        while (*a == ' ') a++;
        while (z > a && z[-1] == ' ') *--z = 0;
        loss_term *lt = &t->terms[t->n_terms];
        lt->w = 1.0;
        char *star = strchr(a, '*');
        if (star) {
            *star = 0;
            char *e;
            lt->w = strtod(a, &e);
            while (*e == ' ') e++;
            if (e == a || *e || !isfinite(lt->w) || lt->w <= 0)
                return qr_err_set("train: loss \"%s\": weight \"%s\": expected a positive number", spec, a);
            a = star + 1;
            while (*a == ' ') a++;
        }
        if (!*a || strlen(a) >= QR_TRAIN_NAME_MAX || strpbrk(a, " *.=;"))
            return qr_err_set("train: loss \"%s\": term \"%s\": expected [WEIGHT*]PLUGIN, terms joined by +", spec,
                              a);
        for (int k = 0; k < t->n_terms; k++)
            if (strcmp(t->terms[k].name, a) == 0)
                return qr_err_set("train: loss \"%s\": \"%s\" appears twice", spec, a);
        strcpy(lt->name, a);
        t->n_terms++;
        p = *end ? end + 1 : end;
        if (*end && !*p) return qr_err_set("train: loss \"%s\": ends with +", spec);
    }
    if (t->n_terms == 0) return qr_err_set("train: loss \"%s\": no term", spec);
    t->compact = 1;
    /* route the options */
    const char **kv = qr_xmalloc((size_t)(2 * opts->loss_nkv + 1) * sizeof *kv);
    int rc = QR_OK;
    for (int k = 0; k < t->n_terms && rc == QR_OK; k++) {
        loss_term *lt = &t->terms[k];
        size_t ln = strlen(lt->name);
        int nkv = 0;
        for (int i = 0; i < opts->loss_nkv; i++) {
            const char *key = opts->loss_kv[2 * i], *dot = strchr(key, '.');
            if (!dot && t->n_terms > 1) {
                rc = qr_err_set("train: loss option \"%s\": with several loss terms, name the term (e.g. %s.%s)",
                                key, t->terms[0].name, key);
                break;
            }
            if (dot && !(dot - key == (ptrdiff_t)ln && strncmp(key, lt->name, ln) == 0)) {
                int known = 0;
                for (int j = 0; j < t->n_terms; j++)
                    known |= dot - key == (ptrdiff_t)strlen(t->terms[j].name) &&
                             strncmp(key, t->terms[j].name, (size_t)(dot - key)) == 0;
                if (!known) {
                    rc = qr_err_set("train: loss option \"%s\": \"%.*s\" is not a term of the loss \"%s\"", key,
                                    (int)(dot - key), key, spec);
                    break;
                }
                continue;
            }
            kv[2 * nkv] = dot ? dot + 1 : key;
            kv[2 * nkv + 1] = opts->loss_kv[2 * i + 1];
            nkv++;
        }
        if (rc) break;
        lt->inst = qr_instance_new(QR_KIND_LOSS, lt->name, kv, nkv);
        if (!lt->inst) {
            rc = qr_err_prefix("train"); /* the plugin's message names it */
            break;
        }
        lt->ops = qr_instance_ops(lt->inst);
        lt->feat = QR_LOSS_HAS_FEATURES(lt->ops);
        t->need_feat |= lt->feat;
        if (!QR_LOSS_HAS(lt->ops, scored_rows_only) || !lt->ops->scored_rows_only(qr_instance_self(lt->inst)))
            t->compact = 0;
    }
    free(kv);
    return rc;
}

qr_trainer *qr_trainer_new(qr_model *m, const qr_train_config *configs, int n_configs, const qr_train_data *data,
                           const qr_train_opts *opts) {
    const qr_model_config *mc = qr_model_cfg(m);
    if (check_opts(opts, mc)) return NULL;
    if (n_configs < 1 || n_configs > QR_TRAIN_MAX_CONFIGS) {
        qr_err_set("train: %d configurations: expected 1..%d", n_configs, QR_TRAIN_MAX_CONFIGS);
        return NULL;
    }
    if (qr_model_lora_slots(m) < 1) {
        qr_err_set("train: the model has no LoRA adapters (qr_model_lora_init / model:lora{} first)");
        return NULL;
    }
    qr_trainer *t = qr_xcalloc(1, sizeof *t);
    t->lock_fd = -1;
    t->m = m;
    t->n_lin = qr_model_n_linears(m);
    t->n_slots = qr_model_lora_slots(m);
    t->V = mc->n_vocab;
    t->o = *opts;
    t->schedule_name = qr_xstrdup(opts->schedule);
    t->loss_name = qr_xstrdup(opts->loss);
    t->run_dir = xstrdup0(opts->run_dir && *opts->run_dir ? opts->run_dir : NULL);
    t->schedule_opts = join_kv(opts->schedule_kv, opts->schedule_nkv);
    t->loss_opts = join_kv(opts->loss_kv, opts->loss_nkv);
    t->o.schedule = t->schedule_name;
    t->o.loss = t->loss_name;
    t->o.run_dir = t->run_dir;
    t->o.schedule_kv = t->o.loss_kv = NULL; /* not kept: only the instances use them */
    t->resumed_from = -1;

    /* configurations: copy, validate against the model, hash */
    t->n_cfg = n_configs;
    t->prec = qr_xmalloc((size_t)n_configs * t->n_lin * sizeof *t->prec);
    uint64_t h = QR_FNV_INIT;
    for (int c = 0; c < n_configs; c++) {
        const char *nm = configs[c].name;
        if (!nm || !*nm || strlen(nm) >= QR_TRAIN_NAME_MAX || strpbrk(nm, ",\n\"\\")) {
            qr_err_set("train: configuration %d: name '%s': expected 1..%d characters without , \" \\ or newline",
                       c + 1, nm ? nm : "(null)", QR_TRAIN_NAME_MAX - 1);
            goto fail;
        }
        for (int k = 0; k < c; k++)
            if (strcmp(t->names[k], nm) == 0) {
                qr_err_set("train: configuration name '%s' given twice", nm);
                goto fail;
            }
        strcpy(t->names[c], nm);
        t->name_ptr[c] = t->names[c];
        memcpy(t->prec + (size_t)c * t->n_lin, configs[c].layers, (size_t)t->n_lin * sizeof *t->prec);
        if (qr_model_set_precision(m, configs[c].layers, t->n_lin)) {
            qr_err_prefix("train: configuration '%s'", nm);
            goto fail;
        }
        h = qr_fnv(h, nm, strlen(nm) + 1);
        for (int i = 0; i < t->n_lin; i++) {
            const qr_layer_prec *p = &configs[c].layers[i];
            int32_t v[3] = {p->wbits, p->abits, p->adapter};
            h = qr_fnv(h, v, sizeof v);
            /* a weight group enters only when set, so the checkpoints of
             * configurations without one keep their hash */
            if (p->wgroup) h = qr_fnv(h, &p->wgroup, sizeof p->wgroup);
        }
    }
    t->configs_fnv = h;
    describe_configs(t);

    if (copy_data(t, data)) goto fail;

    /* the base model's weights identify it (a resume on other weights is refused) */
    h = QR_FNV_INIT;
    for (int i = 0; i < qr_model_n_params(m); i++) {
        qr_param *p = qr_model_param(m, i);
        h = qr_fnv_words(h, p->data, (size_t)p->n);
    }
    t->weights_fnv = h;

    /* the distillation teacher */
    if (opts->teacher && (strcmp(opts->teacher, "fp") == 0 || strcmp(opts->teacher, "cascade") == 0 ||
                          strcmp(opts->teacher, "tuned") == 0)) {
        t->teacher_fp = 1; /* teacher logits exist (from the base, or from a configuration of the step) */
        t->cascade = strcmp(opts->teacher, "cascade") == 0;
        t->tuned = strcmp(opts->teacher, "tuned") == 0;
        t->bits_rank = qr_xcalloc((size_t)n_configs, sizeof(double));
        for (int c = 0; c < n_configs; c++)
            for (int i = 0; i < t->n_lin; i++) {
                const qr_layer_prec *p = &configs[c].layers[i];
                t->bits_rank[c] += (double)p->wbits * p->abits / t->n_lin;
            }
        t->fp_prec = qr_xmalloc((size_t)t->n_lin * sizeof *t->fp_prec);
        for (int i = 0; i < t->n_lin; i++) t->fp_prec[i] = (qr_layer_prec){32, 32, -1, 0};
    } else if (opts->teacher && strcmp(opts->teacher, "none") != 0) {
        qr_err_set("train: teacher \"%s\": expected \"fp\", \"cascade\", \"tuned\" or \"none\"", opts->teacher);
        goto fail;
    }

    /* plugins */
    t->sched = qr_instance_new(QR_KIND_SCHEDULE, t->schedule_name, opts->schedule_kv, opts->schedule_nkv);
    if (!t->sched) {
        qr_err_prefix("train: schedule '%s'", t->schedule_name);
        goto fail;
    }
    if (make_loss_terms(t, opts)) goto fail;
    if (t->need_feat && !t->teacher_fp) {
        qr_err_set("train: loss \"%s\" compares hidden states with a teacher's: set teacher = \"fp\" or "
                   "\"cascade\"", t->loss_name);
        goto fail;
    }
    t->sops = qr_instance_ops(t->sched);

    /* only the adapters train */
    qr_model_set_trainable(m, 0);
    qr_model_lora_trainable(m, 1);
    float *base = qr_model_lora_params(m, &t->n_lora);
    int na = t->n_lin * t->n_slots;
    t->m1 = qr_xcalloc((size_t)t->n_lora, sizeof(float));
    t->v1 = qr_xcalloc((size_t)t->n_lora, sizeof(float));
    t->slot_t = qr_xcalloc((size_t)na, sizeof(int32_t));
    t->slice_off = qr_xcalloc((size_t)na, sizeof(int64_t));
    t->slice_n = qr_xcalloc((size_t)na, sizeof(int64_t));
    t->used = qr_xcalloc((size_t)na, 1);
    for (int i = 0; i < t->n_lin; i++) {
        qr_linear *l = qr_model_linear(m, i);
        for (int s = 0; s < t->n_slots; s++) {
            qr_lora *a = qr_model_lora(m, i, s);
            /* A (rank, in) then B (out, rank), contiguous (lora.c's layout) */
            t->slice_off[i * t->n_slots + s] = a->A - base;
            t->slice_n[i * t->n_slots + s] = (int64_t)qr_model_lora_rank(m) * (l->in + l->out);
        }
    }

    t->perm = qr_xmalloc((size_t)t->n_data * sizeof(int32_t));
    t->rng = opts->seed ^ 0x5157A11ULL;
    shuffle(t);
    int T = opts->seq;
    t->bids = qr_xmalloc((size_t)opts->batch * T * sizeof(int32_t));
    t->btgt = qr_xmalloc((size_t)opts->batch * T * sizeof(int32_t));
    t->rows = qr_xmalloc((size_t)opts->batch * T * sizeof(int32_t));
    t->ctgt = qr_xmalloc((size_t)opts->batch * T * sizeof(int32_t));
    t->sel = qr_xmalloc((size_t)n_configs * sizeof(int));
    for (int c = 0; c < n_configs; c++) t->last_loss[c] = NAN;

    if (t->run_dir && open_run_dir(t)) goto fail;
    return t;
fail:
    free_parts(t);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the checkpoint (the file format is checkpoint.c's)                  */

/* The trainer as a checkpoint sees it: pointers into t, nothing copied. */
static qr_checkpoint checkpoint_of(qr_trainer *t) {
    return (qr_checkpoint){.m = t->m,
                           .weights_fnv = t->weights_fnv,
                           .configs_fnv = t->configs_fnv,
                           .data_fnv = t->data_fnv,
                           .n_configs = t->n_cfg,
                           .config_names = t->name_ptr,
                           .schedule = t->schedule_name,
                           .schedule_opts = t->schedule_opts,
                           .loss = t->loss_name,
                           .loss_opts = t->loss_opts,
                           .teacher = t->cascade ? "cascade" : t->tuned ? "tuned" : t->teacher_fp ? "fp" : "none",
                           .o = &t->o,
                           .n_data = t->n_data,
                           .n_tokens = t->n_tokens,
                           .lora = qr_model_lora_params(t->m, NULL),
                           .m1 = t->m1,
                           .v1 = t->v1,
                           .n_lora = t->n_lora,
                           .n_slots = t->n_slots,
                           .slot_t = t->slot_t,
                           .n_adapters = t->n_lin * t->n_slots,
                           .perm = t->perm,
                           .step = t->step,
                           .epoch = t->epoch,
                           .cursor = t->cursor,
                           .rng = t->rng};
}

int qr_trainer_save(qr_trainer *t, const char *path) {
    if (t->failed) return qr_err_set("%s: not saved: the trainer stopped on an error", path);
    qr_checkpoint c = checkpoint_of(t);
    return qr_checkpoint_write(&c, path);
}

int qr_trainer_load(qr_trainer *t, const char *path) {
    qr_checkpoint c = checkpoint_of(t);
    int rc = qr_checkpoint_read(&c, path);
    qr_model_weights_changed(t->m); /* the adapters were read (perhaps partly, on error) */
    if (rc) return QR_ERR;
    t->step = c.step;
    t->epoch = c.epoch;
    t->cursor = c.cursor;
    t->rng = c.rng;
    return QR_OK;
}

/* ------------------------------------------------------------------ */
/* the log                                                             */

/* Keep the complete lines of train.jsonl whose step <= upto (atomically). */
static int cut_log(qr_trainer *t, int upto) {
    size_t len = 0;
    char *buf = NULL;
    struct stat st;
    if (stat(t->log_path, &st) == 0) {
        buf = qr_read_file(t->log_path, &len);
        if (!buf) return QR_ERR;
    }
    size_t tl = strlen(t->log_path) + 32;
    char *tmp = qr_xmalloc(tl);
    snprintf(tmp, tl, "%s.tmp.%ld", t->log_path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        qr_err_set("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(buf);
        return QR_ERR;
    }
    for (char *l = buf; l && l < buf + len;) {
        char *e = memchr(l, '\n', (size_t)(buf + len - l));
        if (!e) break; /* a torn last line */
        int s;
        if (sscanf(l, "{\"step\":%d", &s) == 1 && s <= upto) fwrite(l, 1, (size_t)(e - l + 1), f);
        l = e + 1;
    }
    int rc = QR_OK;
    if (fflush(f) || fsync(fileno(f))) rc = qr_err_set("%s: write failed: %s", tmp, strerror(errno));
    fclose(f);
    if (!rc && rename(tmp, t->log_path)) rc = qr_err_set("%s: cannot rename: %s", tmp, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    free(buf);
    return rc;
}

static void log_num(FILE *f, double x) {
    if (isfinite(x))
        fprintf(f, "%.9g", x);
    else
        fputs("null", f);
}

/* ------------------------------------------------------------------ */
/* training                                                            */

int qr_trainer_resume(qr_trainer *t, int *resumed_from) {
    if (t->resumed) { /* once per trainer: later calls report the first */
        if (resumed_from) *resumed_from = t->resumed_from;
        return QR_OK;
    }
    int from = -1;
    if (t->run_dir) {
        struct stat st;
        if (stat(t->ckpt_path, &st) == 0) {
            if (qr_trainer_load(t, t->ckpt_path)) return QR_ERR;
            from = t->step;
        }
        if (cut_log(t, from < 0 ? 0 : from)) return QR_ERR;
        if (!t->log) {
            t->log = fopen(t->log_path, "ab");
            if (!t->log) return qr_err_set("%s: cannot open for appending: %s", t->log_path, strerror(errno));
        }
    }
    t->resumed_from = from;
    t->resumed = 1;
    if (resumed_from) *resumed_from = from;
    return QR_OK;
}

/* L2 norm of the gradient over the adapters used at this step, in double
 * and in a fixed order (OpenMP reductions may combine partial sums in any
 * order, which would break bit-identical resumes). */
static double used_grad_norm(qr_trainer *t, const float *g) {
    int na = t->n_lin * t->n_slots;
    double s = 0;
    for (int k = 0; k < na; k++) {
        if (!t->used[k]) continue;
        const float *x = g + t->slice_off[k];
        double part = 0;
        for (int64_t i = 0; i < t->slice_n[k]; i++) part += (double)x[i] * x[i];
        s += part;
    }
    return sqrt(s);
}

static void fill_batch(qr_trainer *t, int *T_out, int64_t *tokens) {
    int B = t->o.batch, ex[4096], T = 1;
    for (int b = 0; b < B; b++) {
        ex[b] = next_example(t);
        int len = (int)(t->off[ex[b] + 1] - t->off[ex[b]]);
        if (len > T) T = len;
    }
    T = (T + T_ROUND - 1) / T_ROUND * T_ROUND;
    if (T > t->o.seq) T = t->o.seq;
    /* Right padding: every real token sits before the padding of its row,
     * and attention is causal, so no real position ever attends to a pad
     * and no mask is needed; pads get target -1 so they are not scored. */
    for (int b = 0; b < B; b++) {
        int64_t o = t->off[ex[b]];
        int len = (int)(t->off[ex[b] + 1] - o);
        memcpy(t->bids + (size_t)b * T, t->ids + o, (size_t)len * 4);
        memcpy(t->btgt + (size_t)b * T, t->tgt + o, (size_t)len * 4);
        for (int i = len; i < T; i++) {
            t->bids[(size_t)b * T + i] = PAD_ID;
            t->btgt[(size_t)b * T + i] = -1;
        }
        *tokens += len;
    }
    *T_out = T;
}

/* The forward of the current micro-batch: logits of every row, or of the
 * scored rows alone when the loss reads no others. */
static int forward(qr_trainer *t, int B, int T) {
    if (t->compact) return qr_model_forward_rows(t->m, t->bids, B, T, t->rows, t->n_rows);
    return qr_model_forward(t->m, t->bids, NULL, B, T, NULL);
}

/* The last forward's hidden states, (L, N, C) contiguous, into out. */
static void gather_hidden(qr_trainer *t, float *out, size_t N) {
    const qr_model_config *c = qr_model_cfg(t->m);
    for (int l = 0; l < c->n_layer; l++)
        memcpy(out + (size_t)l * N * c->n_embd, qr_model_hidden(t->m, l), N * c->n_embd * sizeof(float));
}

/* The weighted sum of the loss terms on the last forward: *loss, and its
 * gradients in t->dlogits (and t->dhid when a term reads hidden states). A
 * term of weight 1 adds straight into them; another goes through scratch
 * and is scaled, so each plugin only ever sees "+=". */
static int compute_loss(qr_trainer *t, float *loss, int B, int T) {
    const qr_model_config *c = qr_model_cfg(t->m);
    const int64_t N = (int64_t)B * T, NL = t->compact ? t->n_rows : N; /* rows of the logits */
    const int32_t *ltgt = t->compact ? t->ctgt : t->btgt;
    const size_t nl = (size_t)NL * t->V, nh = (size_t)c->n_layer * N * c->n_embd;
    const float *logits = qr_model_logits(t->m);
    memset(t->dlogits, 0, nl * sizeof(float));
    if (t->need_feat) {
        gather_hidden(t, t->hid, (size_t)N);
        memset(t->dhid, 0, nh * sizeof(float));
    }
    double total = 0;
    for (int k = 0; k < t->n_terms; k++) {
        loss_term *lt = &t->terms[k];
        void *self = qr_instance_self(lt->inst);
        int direct = lt->w == 1.0;
        float *dl = direct ? t->dlogits : t->dlscratch;
        if (!direct) memset(dl, 0, nl * sizeof(float));
        float lk = 0, lf = 0;
        if (lt->ops->compute(self, &lk, dl, logits, t->teacher_fp ? t->tlogits : NULL, ltgt, NL, t->V))
            return qr_err_prefix("loss '%s'", lt->name);
        if (!direct) qr_axpy(t->dlogits, dl, (float)lt->w, (int64_t)nl);
        if (lt->feat) {
            float *dh = direct ? t->dhid : t->dhscratch;
            if (!direct) memset(dh, 0, nh * sizeof(float));
            if (lt->ops->features(self, &lf, dh, t->hid, t->thid, t->btgt, N, c->n_embd, c->n_layer))
                return qr_err_prefix("loss '%s'", lt->name);
            if (!direct) qr_axpy(t->dhid, dh, (float)lt->w, (int64_t)nh);
        }
        total += lt->w * ((double)lk + lf);
    }
    *loss = (float)total;
    return QR_OK;
}

/* What one step carries from verb to verb. */
typedef struct {
    double t0;      /* wall clock at its start */
    int nsel;       /* configurations selected, in t->sel (run in that order) */
    int64_t tokens; /* non-padding tokens of all its micro-batches */
    float lr;
    double norm; /* the gradient's norm before clipping */
    double dt;   /* its wall time */
    int stop;    /* the progress callback asked to stop */
} step_state;

/* Refusals before a step; the first step on a run directory continues
 * from its checkpoint (a fresh start must never overwrite a good one). */
static int step_begin(qr_trainer *t, step_state *s) {
    if (t->failed) return qr_err_set("train: the trainer stopped on an error at step %d", t->step + 1);
    if (t->step >= t->o.steps) return qr_err_set("train: all %d steps are done", t->o.steps);
    if (!t->resumed && qr_trainer_resume(t, NULL)) return QR_ERR;
    s->t0 = qr_now();
    return QR_OK;
}

/* The schedule picks this step's configurations into t->sel (a 1.2
 * schedule sees their bit-widths); a cascade runs them from the highest
 * precision down. The step then starts from zero: no loss (NaN for the
 * configurations not selected), no gradient, no adapter used. */
static int select_configs(qr_trainer *t, step_state *s) {
    const int step1 = t->step + 1;
    void *self = qr_instance_self(t->sched);
    int n = QR_SCHEDULE_HAS(t->sops, select_cfg)
                ? t->sops->select_cfg(self, t->step, t->o.steps, t->n_cfg, t->sched_cfg_ptr, t->sel)
                : t->sops->select(self, t->step, t->o.steps, t->n_cfg, t->sel);
    if (n < 0) return qr_err_prefix("train: step %d: schedule '%s'", step1, t->schedule_name);
    if (n < 1 || n > t->n_cfg)
        return qr_err_set("train: step %d: schedule '%s' selected %d configurations (expected 1..%d)", step1,
                          t->schedule_name, n, t->n_cfg);
    for (int k = 0; k < n; k++)
        if (t->sel[k] < 0 || t->sel[k] >= t->n_cfg)
            return qr_err_set("train: step %d: schedule '%s' selected configuration %d (expected 0..%d)", step1,
                              t->schedule_name, t->sel[k], t->n_cfg - 1);
    if (t->cascade || t->tuned) /* highest precision first: it teaches the others (insertion sort, stable) */
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && t->bits_rank[t->sel[b]] > t->bits_rank[t->sel[b - 1]]; b--) {
                int x = t->sel[b];
                t->sel[b] = t->sel[b - 1];
                t->sel[b - 1] = x;
            }
    s->nsel = n;
    for (int c = 0; c < t->n_cfg; c++) {
        t->ran[c] = 0;
        t->last_loss[c] = NAN;
    }
    for (int k = 0; k < n; k++) t->last_loss[t->sel[k]] = 0;
    memset(t->used, 0, (size_t)t->n_lin * t->n_slots);
    qr_model_zero_grad(t->m);
    return QR_OK;
}

/* The scored rows of the micro-batch in t->rows / t->ctgt (when the logits
 * are of those alone), and scratch grown to fit it. Returns the floats of
 * its logits. */
static size_t prepare_micro_batch(qr_trainer *t, int T) {
    const int B = t->o.batch;
    t->n_rows = 0;
    if (t->compact)
        for (int i = 0; i < B * T; i++)
            if (t->btgt[i] >= 0) {
                t->rows[t->n_rows] = i;
                t->ctgt[t->n_rows++] = t->btgt[i];
            }
    size_t need = (size_t)(t->compact ? t->n_rows : B * T) * t->V;
    if (need > t->dl_cap) {
        free(t->dlogits);
        free(t->dlscratch);
        t->dlogits = qr_xmalloc(need * sizeof(float));
        t->dlscratch = t->n_terms > 1 || t->terms[0].w != 1.0 ? qr_xmalloc(need * sizeof(float)) : NULL;
        t->dl_cap = need;
    }
    if (t->teacher_fp && need > t->tl_cap) {
        free(t->tlogits);
        t->tlogits = qr_xmalloc(need * sizeof(float));
        t->tl_cap = need;
    }
    if (t->need_feat) {
        size_t hn = (size_t)qr_model_cfg(t->m)->n_layer * B * T * qr_model_cfg(t->m)->n_embd;
        if (hn > t->hid_cap) {
            free(t->hid);
            free(t->thid);
            free(t->dhid);
            free(t->dhscratch);
            t->hid = qr_xmalloc(hn * sizeof(float));
            t->thid = qr_xmalloc(hn * sizeof(float));
            t->dhid = qr_xmalloc(hn * sizeof(float));
            t->dhscratch = qr_xmalloc(hn * sizeof(float));
            t->hid_cap = hn;
        }
    }
    return need;
}

/* The teacher: the frozen base, full precision, no adapter; its logits
 * (need floats) and hidden states. */
static int teacher_forward(qr_trainer *t, int T, size_t need) {
    if (qr_model_set_precision(t->m, t->fp_prec, t->n_lin) || forward(t, t->o.batch, T))
        return qr_err_prefix("train: step %d, teacher", t->step + 1);
    memcpy(t->tlogits, qr_model_logits(t->m), need * sizeof(float));
    if (t->need_feat) gather_hidden(t, t->thid, (size_t)t->o.batch * T);
    return QR_OK;
}

/* Configuration c on the micro-batch: forward, loss, backward into the
 * gradients of its active adapters, which count as used. */
static int train_config(qr_trainer *t, int c, int first, int T, size_t need) {
    const int step1 = t->step + 1, B = t->o.batch;
    const qr_layer_prec *p = t->prec + (size_t)c * t->n_lin;
    float loss = 0;
    if (qr_model_set_precision(t->m, p, t->n_lin) || forward(t, B, T))
        return qr_err_prefix("train: step %d, configuration '%s'", step1, t->names[c]);
    /* cascade, tuned: the highest configuration has none above it and is its own teacher (its distillation
     * terms are 0, InstantNet's empty sum): its logits, as constants, teach the next one (cascade) or every
     * other one of the step (tuned) */
    if ((t->cascade || t->tuned) && first) {
        memcpy(t->tlogits, qr_model_logits(t->m), need * sizeof(float));
        if (t->need_feat) gather_hidden(t, t->thid, (size_t)B * T);
    }
    if (compute_loss(t, &loss, B, T))
        return qr_err_prefix("train: step %d, configuration '%s'", step1, t->names[c]);
    if (!isfinite(loss))
        return qr_err_set("train: step %d, configuration '%s': the loss is %s", step1, t->names[c],
                          isnan(loss) ? "NaN" : "Inf");
    /* cascade: this configuration's logits (before its backward, treated
     * as constants) teach the next, lower one */
    if (t->cascade) {
        memcpy(t->tlogits, qr_model_logits(t->m), need * sizeof(float));
        if (t->need_feat)
            memcpy(t->thid, t->hid,
                   (size_t)qr_model_cfg(t->m)->n_layer * B * T * qr_model_cfg(t->m)->n_embd * sizeof(float));
    }
    if (qr_model_backward_hidden(t->m, t->dlogits, t->need_feat ? t->dhid : NULL))
        return qr_err_prefix("train: step %d, configuration '%s'", step1, t->names[c]);
    t->ran[c] = 1;
    t->last_loss[c] += loss / (float)t->o.accum;
    for (int i = 0; i < t->n_lin; i++)
        if (p[i].adapter >= 0) t->used[i * t->n_slots + p[i].adapter] = 1;
    return QR_OK;
}

/* One micro-batch: the next `batch` sequences (right-padded), the teacher
 * if any, then each selected configuration in turn; gradients accumulate. */
static int run_micro_batch(qr_trainer *t, step_state *s) {
    int T;
    fill_batch(t, &T, &s->tokens);
    size_t need = prepare_micro_batch(t, T);
    int rc = t->teacher_fp && !t->cascade && !t->tuned ? teacher_forward(t, T, need) : QR_OK;
    for (int k = 0; rc == QR_OK && k < s->nsel; k++) rc = train_config(t, t->sel[k], k == 0, T, need);
    return rc;
}

/* The gradient: the mean over micro-batches, its norm, clipped, then AdamW
 * on every adapter used at this step (each with its own step count). The
 * step is then done: counted, timed. */
static int update_adapters(qr_trainer *t, step_state *s) {
    float *par = qr_model_lora_params(t->m, NULL), *g = qr_model_lora_grads(t->m, NULL);
    int na = t->n_lin * t->n_slots;
    if (t->o.accum > 1)
        for (int k = 0; k < na; k++)
            if (t->used[k]) qr_scale(g + t->slice_off[k], t->slice_n[k], 1.0f / (float)t->o.accum);
    s->norm = used_grad_norm(t, g);
    if (!isfinite(s->norm))
        return qr_err_set("train: step %d: the gradient norm is not finite (configurations %s...)", t->step + 1,
                          t->names[t->sel[0]]);
    if (t->o.clip > 0 && s->norm > t->o.clip)
        for (int k = 0; k < na; k++)
            if (t->used[k]) qr_scale(g + t->slice_off[k], t->slice_n[k], (float)(t->o.clip / s->norm));
    s->lr = qr_lr_cosine(t->step, t->o.warmup, t->o.steps, t->o.lr, t->o.min_lr);
    qr_adamw_cfg ac = {s->lr, t->o.beta1, t->o.beta2, t->o.eps, t->o.weight_decay};
    for (int k = 0; k < na; k++) {
        if (!t->used[k]) continue;
        int64_t o = t->slice_off[k];
        qr_adamw_step(par + o, g + o, t->m1 + o, t->v1 + o, t->slice_n[k], &ac, ++t->slot_t[k]);
    }
    qr_model_weights_changed(t->m);
    t->step++;
    s->dt = qr_now() - s->t0;
    t->seconds += s->dt;
    t->tokens += s->tokens;
    t->steps_here++;
    return QR_OK;
}

/* The step's line of train.jsonl, flushed before any checkpoint of this
 * step: the log never lags it. */
static int log_step(qr_trainer *t, const step_state *s) {
    if (!t->log) return QR_OK;
    fprintf(t->log, "{\"step\":%d,\"lr\":%.9g,\"loss\":{", t->step, (double)s->lr);
    for (int c = 0, first = 1; c < t->n_cfg; c++) {
        if (!t->ran[c]) continue;
        fprintf(t->log, "%s\"%s\":", first ? "" : ",", t->names[c]);
        log_num(t->log, t->last_loss[c]);
        first = 0;
    }
    fprintf(t->log, "},\"grad_norm\":");
    log_num(t->log, s->norm);
    fprintf(t->log, ",\"tokens\":%lld,\"epoch\":%d,\"seconds\":%.4f}\n", (long long)s->tokens, t->epoch, s->dt);
    if (fflush(t->log)) return qr_err_set("%s: write failed: %s", t->log_path, strerror(errno));
    return QR_OK;
}

/* The progress callback; a non-zero return asks to stop. */
static void report_progress(qr_trainer *t, step_state *s) {
    if (!t->o.progress) return;
    qr_train_progress pr = {.step = t->step, .total = t->o.steps, .n_configs = t->n_cfg,
                            .config_names = t->name_ptr, .loss = t->last_loss, .ran = t->ran, .lr = s->lr,
                            .grad_norm = (float)s->norm, .tokens = s->tokens, .step_seconds = s->dt,
                            .tokens_per_s = t->seconds > 0 ? t->tokens / t->seconds : 0,
                            .eta_seconds = t->seconds / t->steps_here * (t->o.steps - t->step),
                            .epoch = t->epoch, .resumed_from = t->resumed_from};
    s->stop = t->o.progress(t->o.ud, &pr) != 0;
}

/* A checkpoint every checkpoint_every steps, at the last step, and when
 * the callback stops the run (the step is complete: a rerun loses
 * nothing); the stop is then this step's error. */
static int checkpoint_step(qr_trainer *t, const step_state *s) {
    int due = t->step == t->o.steps || (t->o.checkpoint_every > 0 && t->step % t->o.checkpoint_every == 0);
    if (t->run_dir && (due || s->stop) && qr_trainer_save(t, t->ckpt_path)) return QR_ERR;
    if (s->stop) return qr_err_set("train: stopped by the progress callback at step %d", t->step);
    return QR_OK;
}

int qr_trainer_step(qr_trainer *t) {
    step_state s = {0};
    int rc = step_begin(t, &s);
    if (rc == QR_OK) {
        /* a failure from here to the update stops the trainer, nothing updated */
        rc = select_configs(t, &s);
        for (int mb = 0; rc == QR_OK && mb < t->o.accum; mb++) rc = run_micro_batch(t, &s);
        if (rc == QR_OK) rc = update_adapters(t, &s);
        if (rc != QR_OK) t->failed = 1;
    }
    if (rc == QR_OK) rc = log_step(t, &s);
    if (rc == QR_OK) report_progress(t, &s);
    if (rc == QR_OK) rc = checkpoint_step(t, &s);
    return rc;
}

int qr_trainer_run(qr_trainer *t) {
    if (qr_trainer_resume(t, NULL)) return QR_ERR;
    while (t->step < t->o.steps)
        if (qr_trainer_step(t)) return QR_ERR;
    return QR_OK;
}

int qr_trainer_step_count(const qr_trainer *t) { return t->step; }
float qr_trainer_last_loss(const qr_trainer *t, int i) { return i >= 0 && i < t->n_cfg ? t->last_loss[i] : NAN; }
int64_t qr_trainer_tokens(const qr_trainer *t) { return t->tokens; }
double qr_trainer_seconds(const qr_trainer *t) { return t->seconds; }
