/* proxy.h - a cheap score of a precision configuration for the search
 * (docs/SEARCH.md): one teacher-forced forward pass per example, no
 * generation. Over sequences in the trainer's format (qr_train_data: ids,
 * next-token targets, -1 except at the positions that predict the answer
 * tokens and the end marker), under the model's current configuration:
 *
 *   nll = 1/n sum_e ( 1/|A_e| sum_{t in A_e} -log q_t(target_t) )
 *   kl  = 1/n sum_e ( 1/|A_e| sum_{t in A_e} KL(p_t || q_t) )
 *
 * A_e the answer positions of example e, q_t the model's next-token
 * distribution at t, p_t the reference's (full precision, computed once
 * by qr_proxy_ref_new). Each example weighs the same whatever its answer's
 * length (as SQuAD's EM/F1 average over questions); the token-weighted
 * means are reported too (nll_tok, kl_tok). Log-softmax and KL are
 * computed in double from the float32 logits.
 *
 * The forward is the trainer's: `batch` sequences right-padded to the
 * longest (rounded up to 32), qr_model_forward_rows with the answer rows
 * only (the final norm and head on those rows alone). Sequences are
 * batched in order of length (stable), so a batch pays little padding and
 * the same data and batch size always give the same batches: at full
 * precision against its own reference, with the same batch size and
 * thread count, kl is exactly 0.
 *
 * The reference stores, per answer position, either the full fp logits
 * (float32, exactly what the forward produced) and their log-sum-exp:
 * exact KL, rows x (4V + 8) bytes (SmolLM2: 196,616 bytes a row; 273 MB for
 * 256 zero-shot SQuAD training sequences, 1390 answer positions); or, with topk = k > 0, the
 * k most probable tokens of p (id, log p) and the log of the rest's mass
 * P_r: 8k + 8 bytes a row, and the KL of the distributions coarsened to
 * those k tokens plus one "rest" bin,
 *   KL_k = sum_{i in S} p_i log(p_i / q_i) + P_r log(P_r / Q_r),
 * a lower bound: KL - KL_k = P_r KL(p_rest/P_r || q_rest/Q_r) >= 0 (the
 * log-sum inequality), so the gap is at most P_r times the tail's own
 * divergence and vanishes as P_r does. */
#ifndef QR_PROXY_H
#define QR_PROXY_H

#include "model/model.h"
#include "qr.h"
#include "train/trainer.h"

#define QR_PROXY_BATCH 8 /* default sequences per forward */
#define QR_PROXY_CACHE_MB 2048 /* model:proxy_cache's default bound on a block-input cache (10^6 bytes) */

typedef struct qr_proxy_ref qr_proxy_ref;

/* Check d against m: at least one sequence; each non-empty, at most the
 * model's context, ids in [0, V), targets in [-1, V), and at least one
 * answer position (target >= 0). Messages name the sequence as a recipe
 * numbers it ("proxy: sequence 3 (1-based): no answer token ..."). */
int qr_proxy_check(const qr_model *m, const qr_train_data *d);

/* The reference over d: at full precision without adapters (every linear
 * layer w32a32, adapter -1; the model's configuration is restored after),
 * or with current != 0 under the model's current configuration. topk 0:
 * full distributions (exact KL); k in 1..V-1: top-k and the rest's mass.
 * batch >= 1 sequences per forward. NULL + message on error. */
qr_proxy_ref *qr_proxy_ref_new(qr_model *m, const qr_train_data *d, int batch, int topk, int current);
void qr_proxy_ref_free(qr_proxy_ref *r);
size_t qr_proxy_ref_bytes(const qr_proxy_ref *r); /* the stored distributions and their index */
int64_t qr_proxy_ref_rows(const qr_proxy_ref *r); /* answer positions */
int qr_proxy_ref_n(const qr_proxy_ref *r);        /* sequences */
int qr_proxy_ref_topk(const qr_proxy_ref *r);     /* 0: full distributions */
double qr_proxy_ref_seconds(const qr_proxy_ref *r);

typedef struct {
    double nll, kl;         /* the per-example means above (kl NaN without a reference) */
    double nll_tok, kl_tok; /* the same, each answer token weighing the same */
    int n;                  /* sequences */
    int64_t tokens;         /* answer positions */
    double seconds;
    int64_t shared_prefix;  /* tokens decoded once for every sequence (qr_proxy_eval_shared), else 0 */
    int skipped_blocks;     /* blocks taken from the cache, per batch (qr_proxy_eval_cached), else 0 */
} qr_proxy_result;

/* The proxy of the model's current configuration on d (ref may be NULL:
 * no KL; otherwise it must have been built on the same sequences, checked
 * by a fingerprint of ids and targets). per_nll, per_kl (may be NULL): n
 * entries each, every example's mean over its answer positions (per_kl
 * NaN without ref). */
int qr_proxy_eval(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch, qr_proxy_result *r,
                  double *per_nll, double *per_kl);
/* The same, and with shared != 0 through the KV cache when the sequences
 * share a prefix (an attack's candidates: one context, other questions):
 * their longest common prefix, cut before any answer position, is run once
 * and each sequence's rest decoded after a copy of it, `batch` at a time
 * (the logits equal the full forward's up to summation order; without a
 * common prefix this is qr_proxy_eval). r->shared_prefix says how many
 * tokens were shared. */
int qr_proxy_eval_shared(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch, int shared,
                         qr_proxy_result *r, double *per_nll, double *per_kl);

/* A block-input cache, for scoring many configurations that each differ
 * from one base in a few blocks (the search's sensitivity analysis: one
 * layer, one kind or one block lowered below the base). Built under the
 * model's current configuration (the base) over d, in exactly the
 * evaluation's batches (same order, same padding): for every batch, the
 * input of blocks 1..n_layer, and the configuration of every linear layer
 * (bit-widths, active adapter, effective weight group, quantizers), the
 * LoRA bank's identity and the model's weights generation (model.h).
 * n_layer x (padded tokens) x n_embd x 4 bytes: SmolLM2 (30 x 576), the
 * search's 16 two-shot questions padded to 384 tokens, 425 MB. Refused (NULL + message naming
 * the bytes needed) when that is more than max_bytes, and when d is not
 * valid data (qr_proxy_check) or batch < 1. */
typedef struct qr_proxy_cache qr_proxy_cache;
qr_proxy_cache *qr_proxy_cache_new(qr_model *m, const qr_train_data *d, int batch, size_t max_bytes);
void qr_proxy_cache_free(qr_proxy_cache *pc);
size_t qr_proxy_cache_bytes(const qr_proxy_cache *pc);
int qr_proxy_cache_n(const qr_proxy_cache *pc);     /* sequences */
int qr_proxy_cache_batch(const qr_proxy_cache *pc); /* sequences per forward */
double qr_proxy_cache_seconds(const qr_proxy_cache *pc);
/* qr_proxy_eval from the cache: b0 = the first block any of whose linear
 * layers is configured otherwise than when pc was built; each batch starts
 * at block b0 from the cached input (b0 = 0: the full forward; b0 =
 * n_layer: the final norm and the head only). Blocks 0..b0-1 would compute
 * exactly what they did then (same inputs, same configuration, same
 * weights, the deterministic kernels at the same thread count), so the
 * scores are bit-identical to qr_proxy_eval's. r->skipped_blocks = b0. Refused, naming what changed,
 * when pc was built for another model, on other sequences, with another
 * batch, with another LoRA bank, or at another weights generation (adapters
 * loaded, a bank made, quantizers set, a training step since). */
int qr_proxy_eval_cached(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch,
                         const qr_proxy_cache *pc, qr_proxy_result *r, double *per_nll, double *per_kl);

/* A prompt prefix kept across calls (an attack asks about one context
 * hundreds of times, one candidate question each): its keys and values
 * are computed once per precision configuration the model is in when asked
 * (every layer's bits, group, active adapter and quantizers; up to `slots`
 * configurations, the least recently used dropped), so an RPI attacker's
 * draws each find theirs. Valid while the adapters' and weights' values do
 * not change (it is for inference). */
typedef struct qr_proxy_prefix qr_proxy_prefix;
qr_proxy_prefix *qr_proxy_prefix_new(const qr_model *m, const int32_t *ids, int n, int slots);
void qr_proxy_prefix_free(qr_proxy_prefix *p);
int qr_proxy_prefix_len(const qr_proxy_prefix *p);
void qr_proxy_prefix_stats(const qr_proxy_prefix *p, int64_t *hits, int64_t *misses, int *kept);
/* The NLL part of qr_proxy_eval for sequences that all start with p's
 * tokens (and score nothing inside them): the prefix from p's cache, the
 * rest decoded after it, `batch` sequences at a time. */
int qr_proxy_eval_prefix(qr_model *m, const qr_train_data *d, qr_proxy_prefix *p, int batch, qr_proxy_result *r,
                         double *per_nll);

#endif
