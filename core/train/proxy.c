/* proxy.c - the configuration proxy of proxy.h: answer NLL and KL to a
 * full-precision reference, from the trainer's batched forward
 * (qr_model_forward_rows on the answer rows), and the block-input cache
 * that lets a configuration start that forward at the first block it
 * changes (qr_model_forward_rows_from). */
#include "proxy.h"

#include "checkpoint.h" /* qr_fnv_words */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T_ROUND 32 /* pad T up to a multiple of this, as the trainer does */
#define PAD_ID 0   /* right padding is never attended to by a real token (causal) */
/* The largest full-distribution reference built (rows x V x 4 bytes);
 * past it, topk is the way. */
#define REF_MAX_BYTES ((size_t)8 << 30)

struct qr_proxy_ref {
    int n, V, topk;
    int64_t rows;
    uint64_t data_fnv;
    /* topk 0: logits (rows, V), exactly as the forward gave them, and
     * lse (rows) their log-sum-exp.
     * topk k: idx, logits (rows, k): p's k most probable tokens and their
     * logits; lse (rows); rest (rows): the mass P_r of every other token. */
    float *logits;
    int32_t *idx;
    double *lse, *rest;
    double seconds;
};

/* ---- the data ---- */

int qr_proxy_check(const qr_model *m, const qr_train_data *d) {
    const qr_model_config *c = qr_model_cfg(m);
    if (!d || d->n < 1) return qr_err_set("proxy: no sequences: expected at least one");
    for (int e = 0; e < d->n; e++) {
        int64_t o = d->off[e], len = d->off[e + 1] - o, answer = 0;
        if (len < 1) return qr_err_set("proxy: sequence %d (1-based) is empty", e + 1);
        if (len > c->n_ctx)
            return qr_err_set("proxy: sequence %d (1-based) has %lld tokens, more than the model's context of %d",
                              e + 1, (long long)len, c->n_ctx);
        for (int64_t t = 0; t < len; t++) {
            int32_t id = d->ids[o + t], tg = d->targets[o + t];
            if (id < 0 || id >= c->n_vocab)
                return qr_err_set("proxy: sequence %d (1-based), position %lld: token id %d is outside the "
                                  "vocabulary [0, %d)",
                                  e + 1, (long long)t + 1, id, c->n_vocab);
            if (tg < -1 || tg >= c->n_vocab)
                return qr_err_set("proxy: sequence %d (1-based), position %lld: target %d: expected -1 (not "
                                  "scored) or a token id in [0, %d)",
                                  e + 1, (long long)t + 1, tg, c->n_vocab);
            answer += tg >= 0;
        }
        if (!answer)
            return qr_err_set("proxy: sequence %d (1-based) has no answer token (every target is -1)", e + 1);
    }
    return QR_OK;
}

static uint64_t data_fnv(const qr_train_data *d) {
    uint64_t h = qr_fnv(QR_FNV_INIT, &d->n, sizeof d->n);
    h = qr_fnv(h, d->off, (size_t)(d->n + 1) * sizeof *d->off);
    h = qr_fnv_words(h, d->ids, (size_t)d->off[d->n]);
    return qr_fnv_words(h, d->targets, (size_t)d->off[d->n]);
}

/* ---- one row of logits ---- */

/* max and sum_j exp(l_j - max) in double; lse = max + log(total). */
static void row_stats(const float *l, int V, double *max, double *total) {
    float mx = l[0];
    for (int j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
    double s = 0;
    for (int j = 0; j < V; j++) s += exp((double)l[j] - mx);
    *max = mx;
    *total = s;
}

/* The mass of every token but idx[0..k), from the same row_stats: both
 * sides of a top-k KL compute it this way, so equal rows give equal mass. */
static double rest_mass(const float *l, double max, double total, const int32_t *idx, int k) {
    double top = 0;
    for (int i = 0; i < k; i++) top += exp((double)l[idx[i]] - max);
    return fmax(total - top, 0.0) / total;
}

/* KL(p || q) over the whole vocabulary, p and q as logits with their lse. */
static double kl_full(const float *p, double lse_p, const float *q, double lse_q, int V) {
    double s = 0;
    for (int j = 0; j < V; j++) {
        double lp = (double)p[j] - lse_p, lq = (double)q[j] - lse_q;
        s += exp(lp) * (lp - lq);
    }
    return s;
}

/* The k largest of l (V), as ids, by (value, lower id first): a min-heap
 * of the best k seen (heap[0] the worst of them). */
static int worse(const float *l, int32_t a, int32_t b) { return l[a] < l[b] || (l[a] == l[b] && a > b); }
static void sift_down(const float *l, int32_t *h, int k, int i) {
    for (;;) {
        int c = 2 * i + 1;
        if (c >= k) return;
        if (c + 1 < k && worse(l, h[c + 1], h[c])) c++;
        if (!worse(l, h[c], h[i])) return;
        int32_t t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}
static void top_k(const float *l, int V, int k, int32_t *out) {
    for (int i = 0; i < k; i++) out[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(l, out, k, i);
    for (int j = k; j < V; j++)
        if (worse(l, out[0], j)) {
            out[0] = j;
            sift_down(l, out, k, 0);
        }
}

/* ---- the batched forward ---- */

/* What a batch hands to its consumer: the logits of nr answer rows, each
 * row's index among all answer rows (data order) and its target; the
 * batch's index k (0-based, in run order) and its shape B x T. */
typedef struct {
    const float *logits;
    int nr;
    const int64_t *grow;
    const int32_t *tgt;
    int k, B, T;
} batch_rows;

typedef int (*rows_fn)(void *ud, const batch_rows *b);

typedef struct {
    int64_t len;
    int e;
} by_len;
static int cmp_len(const void *a, const void *b) {
    const by_len *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->e - y->e;
}

/* roff (n + 1): the first answer row of each example, in data order. */
static int64_t *answer_offsets(const qr_train_data *d) {
    int64_t *roff = qr_xmalloc((size_t)(d->n + 1) * sizeof *roff), r = 0;
    for (int e = 0; e < d->n; e++) {
        roff[e] = r;
        for (int64_t t = d->off[e]; t < d->off[e + 1]; t++) r += d->targets[t] >= 0;
    }
    roff[d->n] = r;
    return roff;
}

/* The examples in the order they are batched: by length, stable (n). */
static by_len *length_order(const qr_train_data *d) {
    by_len *order = qr_xmalloc((size_t)d->n * sizeof *order);
    for (int e = 0; e < d->n; e++) order[e] = (by_len){d->off[e + 1] - d->off[e], e};
    qsort(order, (size_t)d->n, sizeof *order, cmp_len);
    return order;
}

/* The padded length of the batch of order[s..s+B): its longest (the last)
 * rounded up to T_ROUND, at most the context. */
static int batch_len(const qr_model_config *c, const by_len *order, int s, int B) {
    int64_t T = (order[s + B - 1].len + T_ROUND - 1) / T_ROUND * T_ROUND;
    return (int)(T > c->n_ctx ? c->n_ctx : T);
}

static float *cache_input(const qr_proxy_cache *pc, int k, int l);

/* Every example through the model, `batch` at a time in order of length;
 * fn sees each batch's answer rows. With a cache (built on the same data
 * and batch) and first > 0, each batch starts at block `first` from the
 * cache's input of that block for the batch. */
static int run_batches(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff,
                       const qr_proxy_cache *from, int first, rows_fn fn, void *ud) {
    const qr_model_config *c = qr_model_cfg(m);
    by_len *order = length_order(d);
    size_t cap = (size_t)batch * batch_len(c, order, d->n - 1, 1);
    int32_t *bids = qr_xmalloc(cap * sizeof *bids), *rows = qr_xmalloc(cap * sizeof *rows);
    int32_t *tgt = qr_xmalloc(cap * sizeof *tgt);
    int64_t *grow = qr_xmalloc(cap * sizeof *grow);
    int rc = QR_OK;
    for (int s = 0, kb = 0; rc == QR_OK && s < d->n; s += batch, kb++) {
        int B = d->n - s < batch ? d->n - s : batch;
        int T = batch_len(c, order, s, B);
        int nr = 0;
        for (int b = 0; b < B; b++) {
            int e = order[s + b].e;
            int64_t o = d->off[e], len = order[s + b].len, k = roff[e];
            memcpy(bids + (size_t)b * T, d->ids + o, (size_t)len * sizeof *bids);
            for (int64_t t = len; t < T; t++) bids[(size_t)b * T + t] = PAD_ID;
            for (int64_t t = 0; t < len; t++)
                if (d->targets[o + t] >= 0) {
                    rows[nr] = (int32_t)(b * T + t);
                    tgt[nr] = d->targets[o + t];
                    grow[nr++] = k++;
                }
        }
        const float *x0 = from && first > 0 ? cache_input(from, kb, first) : NULL;
        if (qr_model_forward_rows_from(m, bids, B, T, rows, nr, x0 ? first : 0, x0)) {
            rc = qr_err_prefix("proxy: batch of sequences %d.. (in order of length)", s + 1);
            break;
        }
        batch_rows br = {qr_model_logits(m), nr, grow, tgt, kb, B, T};
        rc = fn(ud, &br);
    }
    free(order);
    free(bids);
    free(rows);
    free(tgt);
    free(grow);
    return rc;
}

/* The same rows through the KV cache when the sequences share a prefix
 * (an attack's candidates: one context, questions that differ): the
 * longest common prefix P of all of them, cut before the first scored
 * position of any, is decoded once (sequence 0 of the cache), copied to
 * `batch` slots, and each sequence's remaining tokens decoded there with
 * logits at its answer positions only. The logits equal the full forward's
 * up to summation order (the decode path). *shared = P (0: no common
 * prefix worth it; the caller then runs run_batches). */
static int run_from(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff, rows_fn fn, void *ud,
                    const qr_kvcache *src, int64_t P);

static int run_shared(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff, rows_fn fn, void *ud,
                      int64_t *shared) {
    int64_t P = d->off[1] - d->off[0];
    for (int e = 0; e < d->n; e++) {
        int64_t o = d->off[e], len = d->off[e + 1] - o, l = 0;
        while (l < len && l < P && d->ids[o + l] == d->ids[l]) l++;
        P = l;
        for (int64_t t = 0; t < len && t < P; t++)
            if (d->targets[o + t] >= 0) P = t;
    }
    *shared = P;
    if (P < 1) return QR_OK;
    return run_from(m, d, batch, roff, fn, ud, NULL, P);
}

/* The rows of d after its first P tokens, which every sequence shares:
 * src (sequence 0) holds their keys and values, or (NULL) they are decoded
 * here first. */
static int run_from(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff, rows_fn fn, void *ud,
                    const qr_kvcache *src, int64_t P) {
    const int V = qr_model_cfg(m)->n_vocab;
    /* no more slots than sequences: the cache is sized by them, and an
     * attack's single query would otherwise allocate batch + 1 slots of the
     * whole context (160 MB on SmolLM2 at batch 8) */
    if (batch > d->n) batch = d->n;
    int64_t max_len = P, max_suffix = 0;
    for (int e = 0; e < d->n; e++)
        if (d->off[e + 1] - d->off[e] > max_len) max_len = d->off[e + 1] - d->off[e];
    for (int e = 0; e < d->n; e++)
        if (d->off[e + 1] - d->off[e] - P > max_suffix) max_suffix = d->off[e + 1] - d->off[e] - P;
    qr_kvcache *kv = qr_kvcache_new(m, batch + 1, (int)max_len);
    if (!kv) return QR_ERR;
    size_t cap = (size_t)batch * max_suffix + (size_t)P;
    int32_t *tok = qr_xmalloc(cap * sizeof *tok), *seq = qr_xmalloc(cap * sizeof *seq);
    int32_t *tgt = qr_xmalloc(cap * sizeof *tgt);
    uint8_t *want = qr_xcalloc(cap, 1);
    int64_t *grow = qr_xmalloc(cap * sizeof *grow);
    float *logits = NULL;
    int rc = QR_OK;
    if (src) {
        if ((rc = qr_kvcache_copy(kv, 0, src, 0, (int)P)) != QR_OK) goto out;
    } else {
        for (int64_t t = 0; t < P; t++) {
            tok[t] = d->ids[t];
            seq[t] = 0;
        }
        if (qr_model_decode(m, kv, tok, seq, (int)P, want, NULL)) {
            rc = qr_err_prefix("proxy: the shared prefix (%lld tokens)", (long long)P);
            goto out;
        }
    }
    int64_t max_rows = 0;
    for (int s = 0; s < d->n; s += batch) {
        int64_t r = roff[(s + batch < d->n ? s + batch : d->n)] - roff[s];
        if (r > max_rows) max_rows = r;
    }
    logits = qr_xmalloc((size_t)(max_rows > 0 ? max_rows : 1) * V * sizeof *logits);
    for (int s = 0; rc == QR_OK && s < d->n; s += batch) {
        int B = d->n - s < batch ? d->n - s : batch, n = 0, nr = 0;
        for (int b = 0; b < B; b++) {
            int e = s + b;
            if ((rc = qr_kvcache_copy(kv, 1 + b, kv, 0, (int)P)) != QR_OK) goto out;
            int64_t o = d->off[e], len = d->off[e + 1] - o, k = roff[e];
            for (int64_t t = P; t < len; t++, n++) {
                tok[n] = d->ids[o + t];
                seq[n] = 1 + b;
                want[n] = d->targets[o + t] >= 0;
                if (want[n]) {
                    tgt[nr] = d->targets[o + t];
                    grow[nr++] = k++;
                }
            }
        }
        if (qr_model_decode(m, kv, tok, seq, n, want, logits)) {
            rc = qr_err_prefix("proxy: sequences %d..%d after the shared prefix", s + 1, s + B);
            break;
        }
        batch_rows br = {logits, nr, grow, tgt, s / batch, B, 0};
        rc = fn(ud, &br);
    }
out:
    qr_kvcache_free(kv);
    free(tok);
    free(seq);
    free(tgt);
    free(want);
    free(grow);
    free(logits);
    return rc;
}

/* ---- the reference ---- */

static int ref_rows(void *ud, const batch_rows *b) {
    qr_proxy_ref *r = ud;
    const int V = r->V, k = r->topk;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < b->nr; i++) {
        const float *l = b->logits + (size_t)i * V;
        const int64_t g = b->grow[i];
        double max, total;
        row_stats(l, V, &max, &total);
        r->lse[g] = max + log(total);
        if (!k) {
            memcpy(r->logits + (size_t)g * V, l, (size_t)V * sizeof *l);
            continue;
        }
        int32_t *idx = r->idx + (size_t)g * k;
        top_k(l, V, k, idx);
        for (int j = 0; j < k; j++) r->logits[(size_t)g * k + j] = l[idx[j]];
        r->rest[g] = rest_mass(l, max, total, idx, k);
    }
    return QR_OK;
}

qr_proxy_ref *qr_proxy_ref_new(qr_model *m, const qr_train_data *d, int batch, int topk, int current) {
    const qr_model_config *c = qr_model_cfg(m);
    if (batch < 1) {
        qr_err_set("proxy: batch %d: expected >= 1", batch);
        return NULL;
    }
    if (topk < 0 || topk >= c->n_vocab) {
        qr_err_set("proxy: topk %d: expected 0 (the full distribution) or 1..%d", topk, c->n_vocab - 1);
        return NULL;
    }
    if (qr_proxy_check(m, d)) return NULL;
    int64_t *roff = answer_offsets(d);
    const int64_t rows = roff[d->n];
    const size_t per_row = topk ? (size_t)topk : (size_t)c->n_vocab;
    if (!topk && (size_t)rows * per_row * sizeof(float) > REF_MAX_BYTES) {
        qr_err_set("proxy: a full reference of %lld answer positions x %d tokens needs %.1f GiB (at most %.0f): "
                   "use topk",
                   (long long)rows, c->n_vocab, (double)rows * per_row * 4 / (1 << 30),
                   (double)REF_MAX_BYTES / (1 << 30));
        free(roff);
        return NULL;
    }
    double t0 = qr_now();
    qr_proxy_ref *r = qr_xcalloc(1, sizeof *r);
    r->n = d->n;
    r->V = c->n_vocab;
    r->topk = topk;
    r->rows = rows;
    r->data_fnv = data_fnv(d);
    r->logits = qr_xmalloc((size_t)rows * per_row * sizeof *r->logits);
    r->lse = qr_xmalloc((size_t)rows * sizeof *r->lse);
    if (topk) {
        r->idx = qr_xmalloc((size_t)rows * topk * sizeof *r->idx);
        r->rest = qr_xmalloc((size_t)rows * sizeof *r->rest);
    }
    /* full precision, no adapter; the configuration put back after */
    const int nl = qr_model_n_linears(m);
    qr_layer_prec *saved = qr_xmalloc((size_t)(nl + 1) * sizeof *saved), *fp = qr_xmalloc((size_t)(nl + 1) * sizeof *fp);
    for (int i = 0; i < nl; i++) {
        const qr_linear *l = qr_model_linear(m, i);
        saved[i] = (qr_layer_prec){l->wbits, l->abits, l->active, l->wgroup};
        fp[i] = (qr_layer_prec){32, 32, -1, 0};
    }
    int rc = current ? QR_OK : qr_model_set_precision(m, fp, nl);
    if (rc == QR_OK) rc = run_batches(m, d, batch, roff, NULL, 0, ref_rows, r);
    if (!current && qr_model_set_precision(m, saved, nl) && rc == QR_OK)
        rc = qr_err_prefix("proxy: putting the configuration back");
    free(saved);
    free(fp);
    free(roff);
    if (rc) {
        qr_err_prefix("proxy reference");
        qr_proxy_ref_free(r);
        return NULL;
    }
    r->seconds = qr_now() - t0;
    return r;
}

void qr_proxy_ref_free(qr_proxy_ref *r) {
    if (!r) return;
    free(r->logits);
    free(r->idx);
    free(r->lse);
    free(r->rest);
    free(r);
}

size_t qr_proxy_ref_bytes(const qr_proxy_ref *r) {
    size_t per = r->topk ? (size_t)r->topk * (sizeof(float) + sizeof(int32_t)) + 2 * sizeof(double)
                         : (size_t)r->V * sizeof(float) + sizeof(double);
    return (size_t)r->rows * per;
}
int64_t qr_proxy_ref_rows(const qr_proxy_ref *r) { return r->rows; }
int qr_proxy_ref_n(const qr_proxy_ref *r) { return r->n; }
int qr_proxy_ref_topk(const qr_proxy_ref *r) { return r->topk; }
double qr_proxy_ref_seconds(const qr_proxy_ref *r) { return r->seconds; }

/* ---- the evaluation ---- */

typedef struct {
    const qr_proxy_ref *ref;
    int V;
    double *nll, *kl; /* (rows) */
} eval_ud;

static int eval_rows(void *ud, const batch_rows *b) {
    eval_ud *u = ud;
    const qr_proxy_ref *r = u->ref;
    const int V = u->V;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < b->nr; i++) {
        const float *q = b->logits + (size_t)i * V;
        const int64_t g = b->grow[i];
        double max, total;
        row_stats(q, V, &max, &total);
        const double lse_q = max + log(total);
        u->nll[g] = lse_q - q[b->tgt[i]];
        if (!r) continue;
        if (!r->topk) {
            u->kl[g] = kl_full(r->logits + (size_t)g * V, r->lse[g], q, lse_q, V);
            continue;
        }
        const int k = r->topk;
        const int32_t *idx = r->idx + (size_t)g * k;
        const float *pl = r->logits + (size_t)g * k;
        double s = 0;
        for (int j = 0; j < k; j++) {
            double lp = (double)pl[j] - r->lse[g], lq = (double)q[idx[j]] - lse_q;
            s += exp(lp) * (lp - lq);
        }
        double pr = r->rest[g], qr = fmax(rest_mass(q, max, total, idx, k), DBL_MIN);
        if (pr > 0) s += pr * (log(pr) - log(qr));
        u->kl[g] = s;
    }
    return QR_OK;
}

int qr_proxy_eval(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch, qr_proxy_result *res,
                  double *per_nll, double *per_kl) {
    return qr_proxy_eval_shared(m, d, ref, batch, 0, res, per_nll, per_kl);
}

static int check_cache(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff,
                       const qr_proxy_cache *pc);
static int first_changed_block(qr_model *m, const qr_proxy_cache *pc);

/* The evaluation under every option: through the KV cache (shared), or
 * from a block-input cache (pc, from the first block the configuration
 * changes), or the plain batched forward. */
static int evaluate(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch, int shared,
                    const qr_proxy_cache *pc, qr_proxy_result *res, double *per_nll, double *per_kl) {
    const qr_model_config *c = qr_model_cfg(m);
    if (batch < 1) return qr_err_set("proxy: batch %d: expected >= 1", batch);
    if (qr_proxy_check(m, d)) return QR_ERR;
    double t0 = qr_now();
    int64_t *roff = answer_offsets(d);
    const int64_t rows = roff[d->n];
    if (ref && (ref->V != c->n_vocab || ref->n != d->n || ref->rows != rows || ref->data_fnv != data_fnv(d))) {
        free(roff);
        return qr_err_set("proxy: the reference was built on other sequences (%d sequences, %lld answer positions, "
                          "vocabulary %d; these: %d, %lld, %d)",
                          ref->n, (long long)ref->rows, ref->V, d->n, (long long)rows, c->n_vocab);
    }
    if (pc && check_cache(m, d, batch, roff, pc)) {
        free(roff);
        return QR_ERR;
    }
    const int first = pc ? first_changed_block(m, pc) : 0;
    eval_ud u = {ref, c->n_vocab, qr_xmalloc((size_t)rows * sizeof(double)),
                 ref ? qr_xmalloc((size_t)rows * sizeof(double)) : NULL};
    int64_t prefix = 0;
    int rc = shared ? run_shared(m, d, batch, roff, eval_rows, &u, &prefix) : QR_OK;
    if (rc == QR_OK && prefix < 1) rc = run_batches(m, d, batch, roff, pc, first, eval_rows, &u);
    if (rc == QR_OK) {
        /* fixed order: per example over its rows, then over examples */
        double sn = 0, sk = 0, tn = 0, tk = 0;
        for (int e = 0; e < d->n; e++) {
            double en = 0, ek = 0;
            for (int64_t g = roff[e]; g < roff[e + 1]; g++) {
                en += u.nll[g];
                if (ref) ek += u.kl[g];
            }
            tn += en;
            tk += ek;
            double cnt = (double)(roff[e + 1] - roff[e]);
            en /= cnt;
            ek = ref ? ek / cnt : NAN;
            sn += en;
            sk += ek;
            if (per_nll) per_nll[e] = en;
            if (per_kl) per_kl[e] = ek;
        }
        if (res)
            *res = (qr_proxy_result){.nll = sn / d->n, .kl = ref ? sk / d->n : NAN, .nll_tok = tn / rows,
                                     .kl_tok = ref ? tk / rows : NAN, .n = d->n, .tokens = rows,
                                     .seconds = qr_now() - t0, .shared_prefix = prefix, .skipped_blocks = first};
    }
    free(u.nll);
    free(u.kl);
    free(roff);
    return rc;
}

int qr_proxy_eval_shared(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch, int shared,
                         qr_proxy_result *res, double *per_nll, double *per_kl) {
    return evaluate(m, d, ref, batch, shared, NULL, res, per_nll, per_kl);
}

int qr_proxy_eval_cached(qr_model *m, const qr_train_data *d, const qr_proxy_ref *ref, int batch,
                         const qr_proxy_cache *pc, qr_proxy_result *res, double *per_nll, double *per_kl) {
    if (!pc) return qr_err_set("proxy: no cache given (qr_proxy_cache_new)");
    return evaluate(m, d, ref, batch, 0, pc, res, per_nll, per_kl);
}

/* ---- the block-input cache ---- */

/* What decides a linear layer's forward besides its input and the values
 * of the weights and adapters (which the weights generation stands for). */
typedef struct {
    int wbits, abits, active, group;
    const void *wq, *aq;
} lin_state;

static lin_state lin_state_of(const qr_linear *l) {
    return (lin_state){l->wbits, l->abits, l->active, qr_linear_weight_group(l), l->wq, l->aq};
}

static int lin_state_eq(const lin_state *a, const lin_state *b) {
    return a->wbits == b->wbits && a->abits == b->abits && a->active == b->active && a->group == b->group &&
           a->wq == b->wq && a->aq == b->aq;
}

struct qr_proxy_cache {
    const qr_model *m;
    uint64_t weights_gen, data_fnv;
    int n, batch, n_layer, n_lin, n_batches;
    int64_t rows;
    lin_state *lin; /* (n_lin) the configuration it was built at */
    /* the LoRA bank it was built with */
    const float *lora_mem;
    int lora_slots, lora_rank;
    float lora_alpha;
    /* batch k (run_batches' order) is B[k] x T[k] tokens; its inputs of
     * blocks 1..n_layer, (n_layer, B[k]*T[k], C), start at x + off[k] */
    int *B, *T;
    size_t *off;
    float *x;
    size_t bytes;
    double seconds;
};

static float *cache_input(const qr_proxy_cache *pc, int k, int l) {
    const size_t N = (size_t)pc->B[k] * pc->T[k];
    return pc->x + pc->off[k] + (size_t)(l - 1) * N * qr_model_cfg(pc->m)->n_embd;
}

/* run_batches' consumer that keeps what the forward left: every block's
 * input but block 0's (the embeddings are cheap, and a configuration that
 * changes block 0 recomputes everything anyway). */
static int cache_rows(void *ud, const batch_rows *b) {
    qr_proxy_cache *pc = ud;
    const qr_model *m = pc->m;
    const size_t NC = (size_t)b->B * b->T * qr_model_cfg(m)->n_embd;
    if (b->B != pc->B[b->k] || b->T != pc->T[b->k])
        return qr_err_set("proxy cache: batch %d is %d x %d, planned %d x %d (internal error)", b->k + 1, b->B, b->T,
                          pc->B[b->k], pc->T[b->k]);
    for (int l = 1; l <= pc->n_layer; l++) {
        const float *x = qr_model_block_input(m, l);
        if (!x) return qr_err_set("proxy cache: no input of block %d after the forward (internal error)", l);
        memcpy(cache_input(pc, b->k, l), x, NC * sizeof(float));
    }
    return QR_OK;
}

qr_proxy_cache *qr_proxy_cache_new(qr_model *m, const qr_train_data *d, int batch, size_t max_bytes) {
    const qr_model_config *c = qr_model_cfg(m);
    if (batch < 1) {
        qr_err_set("proxy cache: batch %d: expected >= 1", batch);
        return NULL;
    }
    if (qr_proxy_check(m, d)) return NULL;
    /* the batches run_batches will make, and their size, before anything is run */
    by_len *order = length_order(d);
    const int nb = (d->n + batch - 1) / batch;
    int *B = qr_xmalloc((size_t)nb * sizeof *B), *T = qr_xmalloc((size_t)nb * sizeof *T);
    size_t *off = qr_xmalloc((size_t)nb * sizeof *off), floats = 0;
    int64_t tokens = 0;
    for (int s = 0, k = 0; s < d->n; s += batch, k++) {
        B[k] = d->n - s < batch ? d->n - s : batch;
        T[k] = batch_len(c, order, s, B[k]);
        off[k] = floats;
        tokens += (int64_t)B[k] * T[k];
        floats += (size_t)c->n_layer * B[k] * T[k] * c->n_embd;
    }
    free(order);
    const size_t bytes = floats * sizeof(float);
    if (bytes > max_bytes) {
        qr_err_set("proxy cache: %d sequences at batch %d need %.1f MB (%d blocks x %lld padded tokens x %d x 4 "
                   "bytes), more than the %.1f MB allowed (max_mb): use fewer sequences",
                   d->n, batch, (double)bytes / 1e6, c->n_layer, (long long)tokens, c->n_embd,
                   (double)max_bytes / 1e6);
        free(B);
        free(T);
        free(off);
        return NULL;
    }
    double t0 = qr_now();
    qr_proxy_cache *pc = qr_xcalloc(1, sizeof *pc);
    pc->m = m;
    pc->weights_gen = qr_model_weights_gen(m);
    pc->data_fnv = data_fnv(d);
    pc->n = d->n;
    pc->batch = batch;
    pc->n_layer = c->n_layer;
    pc->n_lin = qr_model_n_linears(m);
    pc->n_batches = nb;
    pc->B = B;
    pc->T = T;
    pc->off = off;
    pc->bytes = bytes;
    pc->lin = qr_xmalloc((size_t)pc->n_lin * sizeof *pc->lin);
    for (int i = 0; i < pc->n_lin; i++) pc->lin[i] = lin_state_of(qr_model_linear(m, i));
    pc->lora_mem = qr_model_lora_params(m, NULL);
    pc->lora_slots = qr_model_lora_slots(m);
    pc->lora_rank = qr_model_lora_rank(m);
    pc->lora_alpha = qr_model_lora_alpha(m);
    pc->x = qr_xmalloc(bytes ? bytes : 1);
    int64_t *roff = answer_offsets(d);
    pc->rows = roff[d->n];
    int rc = run_batches(m, d, batch, roff, NULL, 0, cache_rows, pc);
    free(roff);
    if (rc) {
        qr_err_prefix("proxy cache");
        qr_proxy_cache_free(pc);
        return NULL;
    }
    pc->seconds = qr_now() - t0;
    return pc;
}

void qr_proxy_cache_free(qr_proxy_cache *pc) {
    if (!pc) return;
    free(pc->lin);
    free(pc->B);
    free(pc->T);
    free(pc->off);
    free(pc->x);
    free(pc);
}

size_t qr_proxy_cache_bytes(const qr_proxy_cache *pc) { return pc->bytes; }
int qr_proxy_cache_n(const qr_proxy_cache *pc) { return pc->n; }
int qr_proxy_cache_batch(const qr_proxy_cache *pc) { return pc->batch; }
double qr_proxy_cache_seconds(const qr_proxy_cache *pc) { return pc->seconds; }

/* A stale cache is refused, naming what changed, rather than used: its
 * inputs would be another model's, or other sequences' or batches'. */
static int check_cache(qr_model *m, const qr_train_data *d, int batch, const int64_t *roff,
                       const qr_proxy_cache *pc) {
    if (pc->m != m) return qr_err_set("proxy: the cache was built for another model");
    if (pc->n != d->n || pc->rows != roff[d->n] || pc->data_fnv != data_fnv(d))
        return qr_err_set("proxy: the cache was built on other sequences (%d sequences, %lld answer positions; "
                          "these: %d, %lld)",
                          pc->n, (long long)pc->rows, d->n, (long long)roff[d->n]);
    if (pc->batch != batch)
        return qr_err_set("proxy: the cache was built with batch %d, this evaluation has batch %d (the batches "
                          "must be the same)",
                          pc->batch, batch);
    if (pc->lora_mem != qr_model_lora_params(m, NULL) || pc->lora_slots != qr_model_lora_slots(m) ||
        pc->lora_rank != qr_model_lora_rank(m) || pc->lora_alpha != qr_model_lora_alpha(m))
        return qr_err_set("proxy: the model's LoRA bank was replaced since the cache was built (%d slots, rank %d, "
                          "alpha %g then; %d, %d, %g now): build the cache again",
                          pc->lora_slots, pc->lora_rank, (double)pc->lora_alpha, qr_model_lora_slots(m),
                          qr_model_lora_rank(m), (double)qr_model_lora_alpha(m));
    if (pc->weights_gen != qr_model_weights_gen(m))
        return qr_err_set("proxy: the model's weights, adapters or quantizers changed since the cache was built "
                          "(adapters loaded, a bank made, quantize, a training step): build the cache again");
    return QR_OK;
}

/* The first block any of whose linear layers runs otherwise than when the
 * cache was built (model.h: the linears in layer order, the same number
 * per block); n_layer when none does. */
static int first_changed_block(qr_model *m, const qr_proxy_cache *pc) {
    const int per = pc->n_lin / pc->n_layer;
    for (int i = 0; i < pc->n_lin; i++) {
        lin_state now = lin_state_of(qr_model_linear(m, i));
        if (!lin_state_eq(&now, &pc->lin[i])) return i / per;
    }
    return pc->n_layer;
}

/* ---- a prefix kept across calls ---- */

#define PREFIX_SLOTS_MAX 64

struct qr_proxy_prefix {
    const qr_model *m;
    int32_t *ids;
    int n, slots, used;
    struct {
        uint64_t prec;   /* the precision fingerprint it was computed at */
        uint64_t stamp;  /* last use, for LRU */
        qr_kvcache *kv;  /* one sequence of n tokens */
    } e[PREFIX_SLOTS_MAX];
    uint64_t clock;
    int64_t hits, misses;
};

qr_proxy_prefix *qr_proxy_prefix_new(const qr_model *m, const int32_t *ids, int n, int slots) {
    const qr_model_config *c = qr_model_cfg(m);
    if (n < 1 || n > c->n_ctx) {
        qr_err_set("proxy prefix: %d tokens: expected 1..%d (the model's context)", n, c->n_ctx);
        return NULL;
    }
    if (slots < 1 || slots > PREFIX_SLOTS_MAX) {
        qr_err_set("proxy prefix: slots %d: expected 1..%d", slots, PREFIX_SLOTS_MAX);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab) {
            qr_err_set("proxy prefix: token %d is id %d, outside the vocabulary [0, %d)", i + 1, ids[i], c->n_vocab);
            return NULL;
        }
    qr_proxy_prefix *p = qr_xcalloc(1, sizeof *p);
    p->m = m;
    p->n = n;
    p->slots = slots;
    p->ids = qr_xmalloc((size_t)n * sizeof *p->ids);
    memcpy(p->ids, ids, (size_t)n * sizeof *ids);
    return p;
}

void qr_proxy_prefix_free(qr_proxy_prefix *p) {
    if (!p) return;
    for (int i = 0; i < p->used; i++) qr_kvcache_free(p->e[i].kv);
    free(p->ids);
    free(p);
}

int qr_proxy_prefix_len(const qr_proxy_prefix *p) { return p->n; }
void qr_proxy_prefix_stats(const qr_proxy_prefix *p, int64_t *hits, int64_t *misses, int *kept) {
    if (hits) *hits = p->hits;
    if (misses) *misses = p->misses;
    if (kept) *kept = p->used;
}

/* What the prefix's keys and values depend on: every linear layer's
 * bit-widths, effective weight group and active adapter, the quantizers
 * (lin_state, as the block-input cache compares them), and the weights
 * generation: keys and values kept from before adapters were loaded or a
 * training step are not found again (they are recomputed). */
static uint64_t prec_fnv(qr_model *m) {
    uint64_t gen = qr_model_weights_gen(m);
    uint64_t h = qr_fnv(QR_FNV_INIT, &gen, sizeof gen);
    for (int i = 0; i < qr_model_n_linears(m); i++) {
        lin_state st = lin_state_of(qr_model_linear(m, i));
        int32_t v[4] = {st.wbits, st.abits, st.active, st.group};
        const void *q[2] = {st.wq, st.aq};
        h = qr_fnv(h, v, sizeof v);
        h = qr_fnv(h, q, sizeof q);
    }
    return h;
}

int qr_proxy_eval_prefix(qr_model *m, const qr_train_data *d, qr_proxy_prefix *p, int batch, qr_proxy_result *res,
                         double *per_nll) {
    if (p->m != m) return qr_err_set("proxy: the prefix was made for another model");
    if (batch < 1) return qr_err_set("proxy: batch %d: expected >= 1", batch);
    if (qr_proxy_check(m, d)) return QR_ERR;
    for (int e = 0; e < d->n; e++) {
        int64_t o = d->off[e], len = d->off[e + 1] - o;
        if (len <= p->n || memcmp(d->ids + o, p->ids, (size_t)p->n * sizeof *p->ids) != 0)
            return qr_err_set("proxy: sequence %d (1-based) does not start with the prefix's %d tokens (or has "
                              "nothing after them)", e + 1, p->n);
        for (int64_t t = 0; t < p->n; t++)
            if (d->targets[o + t] >= 0)
                return qr_err_set("proxy: sequence %d (1-based) scores position %lld, inside the prefix (%d tokens)",
                                  e + 1, (long long)t + 1, p->n);
    }
    double t0 = qr_now();
    uint64_t h = prec_fnv(m);
    int k = -1;
    for (int i = 0; i < p->used; i++)
        if (p->e[i].prec == h) k = i;
    if (k < 0) {
        p->misses++;
        if (p->used < p->slots) {
            k = p->used++;
        } else {
            k = 0;
            for (int i = 1; i < p->used; i++)
                if (p->e[i].stamp < p->e[k].stamp) k = i;
            qr_kvcache_free(p->e[k].kv);
        }
        p->e[k].kv = qr_kvcache_new(m, 1, p->n);
        p->e[k].prec = h;
        int32_t *seq = p->e[k].kv ? qr_xcalloc((size_t)p->n, sizeof *seq) : NULL;
        uint8_t *want = seq ? qr_xcalloc((size_t)p->n, 1) : NULL;
        int rc = !p->e[k].kv ? QR_ERR : qr_model_decode(m, p->e[k].kv, p->ids, seq, p->n, want, NULL);
        free(seq);
        free(want);
        if (rc) {
            qr_kvcache_free(p->e[k].kv);
            p->e[k] = p->e[--p->used];
            return qr_err_prefix("proxy: the prefix (%d tokens)", p->n);
        }
    } else {
        p->hits++;
    }
    p->e[k].stamp = ++p->clock;
    int64_t *roff = answer_offsets(d);
    const int64_t rows = roff[d->n];
    eval_ud u = {NULL, qr_model_cfg(m)->n_vocab, qr_xmalloc((size_t)rows * sizeof(double)), NULL};
    int rc = run_from(m, d, batch, roff, eval_rows, &u, p->e[k].kv, p->n);
    if (rc == QR_OK) {
        double sn = 0, tn = 0;
        for (int e = 0; e < d->n; e++) {
            double en = 0;
            for (int64_t g = roff[e]; g < roff[e + 1]; g++) en += u.nll[g];
            tn += en;
            en /= (double)(roff[e + 1] - roff[e]);
            sn += en;
            if (per_nll) per_nll[e] = en;
        }
        if (res)
            *res = (qr_proxy_result){.nll = sn / d->n, .kl = NAN, .nll_tok = tn / rows, .kl_tok = NAN, .n = d->n,
                                     .tokens = rows, .seconds = qr_now() - t0, .shared_prefix = p->n};
    }
    free(u.nll);
    free(roff);
    return rc;
}
