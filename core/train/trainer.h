/* trainer.h - switchable-precision LoRA tuning: a set of precision
 * configurations trained together on (prompt, answer) token sequences,
 * with AdamW, warm-up + cosine decay, gradient clipping and accumulation,
 * and checkpoints that survive SIGKILL.
 *
 * One optimizer step (qr_trainer_step):
 *   for each of `accum` micro-batches of `batch` sequences (right-padded):
 *     for each configuration c the schedule plugin selects at this step
 *     (a 1.2 schedule sees each one's bit-widths and BitOPs, qr_plugin.h):
 *       qr_model_set_precision(c); forward; loss plugin -> loss_c, dlogits;
 *       backward into the LoRA gradients (only c's active adapters get any)
 *   gradient /= accum; clip the global norm; lr = qr_lr_cosine(step);
 *   AdamW on every (layer, slot) adapter that was active this step.
 * The objective is the sum over selected configurations of each one's mean
 * loss, averaged over micro-batches.
 *
 * Only the LoRA bank trains: the base weights are frozen. The optimizer
 * skips adapters that no selected configuration used at this step (their
 * moments and step counts stay as they were), as PyTorch does for a
 * parameter whose .grad is None: an unused adapter must not drift through
 * momentum or weight decay. Each adapter keeps its own AdamW step count for
 * the bias correction.
 *
 * Determinism: given the same model, data, options and thread count, a run
 * is bit-for-bit reproducible, and one resumed from a checkpoint continues
 * exactly as the uninterrupted run (every reduction that feeds the update
 * is done in a fixed order).
 *
 * Run directory (opts.run_dir, optional):
 *   checkpoint   adapters, AdamW moments and step counts, step, data order,
 *                cursor, RNG, and a header of everything that must not
 *                change on resume; FNV-1a 64 checksum. Written to
 *                checkpoint.tmp.<pid>, fsync'd, renamed over checkpoint,
 *                directory fsync'd: a crash at any moment leaves the
 *                previous good checkpoint or the new one, never a torn file
 *                (the layout: checkpoint.h).
 *   train.jsonl  one JSON object per step; on resume, lines past the
 *                checkpoint's step are dropped so the log reads as one run.
 *   lock         flock'd while a trainer holds the directory.
 */
#ifndef QR_TRAINER_H
#define QR_TRAINER_H

#include "model/model.h"
#include "qr.h"
#include "qr_plugin.h"

#define QR_TRAIN_MAX_CONFIGS 32
#define QR_TRAIN_NAME_MAX 64

/* A precision configuration: a name and one qr_layer_prec per linear layer
 * of the model (in qr_model_linear order). */
typedef struct {
    const char *name;
    const qr_layer_prec *layers;
} qr_train_config;

/* The data: n sequences; sequence i is ids[off[i] .. off[i+1]) with
 * next-token targets at the same positions (-1 = not scored: the prompt;
 * the answer tokens and the end marker are scored). Copied by
 * qr_trainer_new. */
typedef struct {
    const int32_t *ids, *targets;
    const int64_t *off; /* n + 1 offsets, off[0] = 0 */
    int n;
} qr_train_data;

/* What a progress callback sees after each step. */
typedef struct {
    int step, total;  /* steps done (1-based after the step), of total */
    int n_configs;
    const char *const *config_names;
    const float *loss;     /* (n_configs) this step's mean loss per configuration, NaN if not run */
    const int *ran;        /* (n_configs) 1 if the configuration ran at this step */
    float lr, grad_norm;   /* grad_norm before clipping */
    int64_t tokens;        /* non-padding tokens of this step (all micro-batches) */
    double step_seconds;   /* this step's wall time */
    double tokens_per_s;   /* since this process started training */
    double eta_seconds;
    int epoch;
    int resumed_from;      /* step of the checkpoint this process resumed from, or -1 */
} qr_train_progress;

typedef struct {
    int steps;          /* optimizer steps in total */
    int batch;          /* sequences per micro-batch */
    int accum;          /* micro-batches per step (>= 1) */
    int seq;            /* longest sequence; longer data is an error */
    float lr, min_lr;   /* peak and final learning rate */
    int warmup;         /* linear warm-up steps */
    float clip;         /* max global gradient norm (0 = no clipping) */
    float weight_decay, beta1, beta2, eps;
    uint64_t seed;      /* data order */
    int bucket;         /* 0: plain shuffle; W: sequences sorted by length within each window of W
                           micro-batches of the shuffled order, those batches shuffled (less padding) */
    const char *schedule;                 /* schedule plugin, e.g. "static" */
    const char *const *schedule_kv;       /* its options, n pairs */
    int schedule_nkv;
    const char *loss;                     /* loss plugin, e.g. "ce", or a weighted sum of them,
                                             "ce+0.5*kd+0.01*feature" (each plugin once) */
    const char *teacher;                  /* NULL/"none"; "fp": the frozen base at full precision without
                                             adapters gives the loss plugin teacher logits (distillation);
                                             "cascade": the selected configurations run from the highest mean
                                             w x a down, each taught by the one before (the first by itself:
                                             its distillation terms are 0) — InstantNet's cascade with one
                                             teacher each; "tuned": the same order, every configuration
                                             taught by the step's first (highest) one with its adapters, as
                                             it is tuned (switchable precision's fp teacher) */
    const char *const *loss_kv;           /* with several terms, keys name theirs: "kd.temperature" */
    int loss_nkv;
    const char *run_dir;  /* NULL: no checkpoint, no log */
    int checkpoint_every; /* steps between checkpoints (0: only at the end) */
    /* Called after every step (may be NULL); a non-zero return stops the
     * run (qr_trainer_run returns QR_ERR with message "stopped by the
     * progress callback"). */
    int (*progress)(void *ud, const qr_train_progress *p);
    void *ud;
} qr_train_opts;

/* Defaults: steps 1000 (the protocol's length), batch 4, accum 1, seq 512,
 * lr 2e-4, min_lr 0, warmup 0, clip 1, weight_decay 0, betas 0.9/0.999,
 * eps 1e-8, seed 1, "static", "ce", checkpoint_every 0, no run_dir. */
qr_train_opts qr_train_defaults(void);

typedef struct qr_trainer qr_trainer;

/* A trainer over model m (borrowed; it must already have a LoRA bank whose
 * slots the configurations use) and n_configs configurations (copied).
 * Makes the adapters trainable and the base weights frozen. Creates the
 * schedule and loss instances and, with a run_dir, the directory, its lock
 * (refused when another process holds it) and removes stale
 * checkpoint.tmp.*, train.jsonl.tmp.* and adapters.safetensors.tmp.* files
 * (temporaries of a killed writer). Does not read the checkpoint (see
 * qr_trainer_resume). NULL + message naming the option on error. */
qr_trainer *qr_trainer_new(qr_model *m, const qr_train_config *configs, int n_configs,
                           const qr_train_data *data, const qr_train_opts *opts);
void qr_trainer_free(qr_trainer *t);

/* If <run_dir>/checkpoint exists, load it (verifying everything; a bad or
 * mismatched one is refused naming the file and the field, and nothing is
 * changed) and cut train.jsonl back to its step. Sets *resumed_from to the
 * checkpoint's step, or -1 when there was none. */
int qr_trainer_resume(qr_trainer *t, int *resumed_from);

/* One optimizer step; appends the log line and writes a checkpoint when
 * due (every checkpoint_every steps and at the last step). A NaN or Inf
 * loss is an error naming the step and the configuration; nothing is
 * updated then. */
int qr_trainer_step(qr_trainer *t);

/* qr_trainer_resume, then steps until opts.steps. */
int qr_trainer_run(qr_trainer *t);

/* Save / load the full training state to / from a file (atomic write). */
int qr_trainer_save(qr_trainer *t, const char *path);
int qr_trainer_load(qr_trainer *t, const char *path);

/* A configuration (n_lin layer precisions) as a schedule sees it
 * (qr_plugin.h, ABI 1.2): bit-widths min/max and means weighted by
 * in_out[i] (layer i's in x out; NULL: every layer 1), BitOPs relative to
 * w32a32. d->name = name (borrowed). */
void qr_schedule_config_fill(qr_schedule_config *d, const char *name, int n_lin, const double *in_out,
                             const qr_layer_prec *layers);

int qr_trainer_step_count(const qr_trainer *t); /* steps done */
/* The last step's loss of configuration i (NaN if it did not run). */
float qr_trainer_last_loss(const qr_trainer *t, int i);
int64_t qr_trainer_tokens(const qr_trainer *t);    /* tokens this process trained on */
double qr_trainer_seconds(const qr_trainer *t);    /* wall time this process spent in steps */

#endif
