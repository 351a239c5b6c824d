/* bert_attack.c - the `bert_attack` attack plugin: BERT-Attack-style (Li
 * et al., EMNLP 2020; TextAttack's bert_attack_li_2020) for a continuous
 * victim score. No masked language model is reachable on these machines,
 * so the candidates come from a causal LM served by the host (ABI 1.3
 * lm_candidates: the fp SmolLM2, a separate instance from the victim,
 * proposing single-token words from the left context, re-ranked by the
 * whole sentence's likelihood): BERT-Attack-STYLE, not BERT-Attack. With
 * s(text) = query(ctx, text) (higher = better for the victim):
 *   1. importance of word i = s(text) - s(text with word i replaced by
 *      "[UNK]") (one query per word; words: runs of ASCII letters with
 *      inner apostrophes and hyphens);
 *   2. for the words in decreasing importance (ties: earlier first),
 *      skipping stop words, while fewer than min(budget, floor(max_frac *
 *      words)) are replaced and the score is above `goal`: the LM's top `k`
 *      candidates (the word itself, compared without case, left out), the
 *      original's capitalisation kept; those whose whole sentence has a
 *      sentence-encoder cosine >= `sim` with the ORIGINAL text are queried
 *      and the lowest-scoring one replaces the word if it lowers the score.
 * Published settings: K = 48, at most 40% of the words, USE cosine >= 0.2
 * (here all-MiniLM-L6-v2, docs/ENCODER.md). Deterministic; seed unused.
 *
 * Batched (ABI 1.4 perturb_batch): the [UNK] replacements of step 1 are
 * scored together, and so are the survivors of each visited word, `batch`
 * at a time; the sequential attack scores every survivor too, so the
 * queries, their order and the result are the same (up to the victim's
 * own batch arithmetic).
 *
 * Options: k (1..256, default 48), sim (-1..1, 0.2; -1 turns the
 * constraint off), max_frac (0..1, 0.4), goal (stop at or below it;
 * default -inf), batch (1..1024, default 64: candidates per batched query;
 * 1 = one query at a time, as perturb). */
#include "qr_plugin.h"
#include "attack_words.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHO "attack 'bert_attack'"
#define K_MAX 256

typedef struct {
    const qr_host *host;
    int k, batch;
    double sim, max_frac, goal;
} ba;

static void *ba_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"k", "sim", "max_frac", "goal", "batch", NULL};
    ba *t = QR_STATE_NEW(ba, host, kv, n_kv, known, WHO);
    int64_t k;
    if (!t) return NULL;
    if (host->opt_int(kv, n_kv, "k", 48, 1, K_MAX, &k, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "sim", 0.2, -1.0, 1.0, &t->sim, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "max_frac", 0.4, 0.0, 1.0, &t->max_frac, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "goal", -DBL_MAX, -DBL_MAX, DBL_MAX, &t->goal, WHO) != QR_PLUGIN_OK ||
        attack_batch_opt(host, kv, n_kv, WHO, &t->batch) != QR_PLUGIN_OK)
        return qr_state_fail(t);
    if (!QR_HOST_HAS(host, lm_candidates)) {
        host->err_set("%s: the host is too old (this plugin needs the ABI 1.3 services is_stopword, similarity "
                      "and lm_candidates)", WHO);
        return qr_state_fail(t);
    }
    t->k = (int)k;
    return t;
}

static int same_word(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a, y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

static int ba_run(const ba *t, const char *text, const attack_victim *v, int budget, uint64_t seed,
                  char **out) {
    const qr_host *h = t->host;
    (void)seed; /* deterministic: no random choice */
    *out = NULL;
    if (!text || !v->query) return h->err_set("%s: text and query must not be NULL", WHO);
    if (budget < 0) return h->err_set("%s: budget %d: expected >= 0 (words to replace)", WHO, budget);
    size_t tlen = strlen(text);
    char *cur = malloc(tlen + 1);
    if (!cur) return h->err_set("%s: out of memory", WHO);
    memcpy(cur, text, tlen + 1);
    int nw = find_words(text, tlen, NULL);
    int cap = (int)floor(t->max_frac * nw);
    if (cap > budget) cap = budget;
    if (cap <= 0 || nw == 0) {
        *out = cur;
        return QR_PLUGIN_OK;
    }
    double score = v->query(v->ctx, cur);
    word *w = malloc((size_t)nw * sizeof *w);
    size_t *start = malloc((size_t)nw * sizeof *start), *len = malloc((size_t)nw * sizeof *len);
    int *order = malloc((size_t)nw * sizeof *order);
    qr_candidate *cands = malloc((size_t)t->k * sizeof *cands);
    char **texts = calloc((size_t)t->k, sizeof *texts);
    double *sims = malloc((size_t)t->k * sizeof *sims), *qs = malloc((size_t)t->k * sizeof *qs);
    const char **asked = malloc((size_t)t->k * sizeof *asked);
    int *asked_c = malloc((size_t)t->k * sizeof *asked_c);
    int rc = QR_PLUGIN_OK;
    if (!w || !start || !len || !order || !cands || !texts || !sims || !qs || !asked || !asked_c) {
        rc = h->err_set("%s: out of memory", WHO);
        goto done;
    }
    find_words(text, tlen, w);
    /* 1. importance by [UNK] (none once the victim cannot be asked) */
    if (score > -HUGE_VAL && (rc = attack_importance(h, WHO, v, cur, tlen, w, nw, "[UNK]", score)) != QR_PLUGIN_OK)
        goto done;
    for (int i = 0; i < nw; i++) {
        start[i] = w[i].start;
        len[i] = w[i].len;
    }
    qsort(w, (size_t)nw, sizeof *w, cmp_importance);
    for (int i = 0; i < nw; i++) order[i] = w[i].pos;
    int replaced = 0;
    char wbuf[QR_WORD_MAX];
    for (int oi = 0; oi < nw && replaced < cap && score > t->goal && score > -HUGE_VAL; oi++) { /* 2. greedy */
        int i = order[oi];
        if (len[i] >= QR_WORD_MAX) continue;
        memcpy(wbuf, cur + start[i], len[i]);
        wbuf[len[i]] = 0;
        int stop = h->is_stopword(h, wbuf);
        if (stop < 0) {
            rc = QR_PLUGIN_ERR;
            goto done;
        }
        if (stop) continue;
        int n = h->lm_candidates(h, cur, start[i], len[i], t->k, cands);
        if (n < 0) {
            rc = QR_PLUGIN_ERR;
            goto done;
        }
        int m = 0;
        for (int c = 0; c < n; c++) {
            char rep[QR_WORD_MAX];
            size_t rl = strlen(cands[c].word);
            memcpy(rep, cands[c].word, rl + 1);
            if (same_word(rep, wbuf)) continue;
            match_case(rep, wbuf, len[i]);
            char *nt = splice(cur, tlen, start[i], len[i], rep, rl);
            if (!nt) break;
            texts[m++] = nt;
        }
        if (m > 0 && t->sim > -1.0 && h->similarity(h, text, (const char *const *)texts, m, sims) != 0) {
            rc = QR_PLUGIN_ERR;
            for (int c = 0; c < m; c++) {
                free(texts[c]);
                texts[c] = NULL;
            }
            goto done;
        }
        /* the survivors, scored together; the lowest below the score wins */
        int na = 0;
        for (int c = 0; c < m; c++) {
            if (t->sim > -1.0 && !(sims[c] >= t->sim)) continue;
            asked[na] = texts[c];
            asked_c[na++] = c;
        }
        if (attack_scores(v, asked, na, qs) != QR_PLUGIN_OK) {
            rc = QR_PLUGIN_ERR;
            for (int c = 0; c < m; c++) {
                free(texts[c]);
                texts[c] = NULL;
            }
            goto done;
        }
        replaced += attack_take_best(qs, na, asked_c, texts, &cur, &tlen, start, len, i, nw, &score);
        for (int c = 0; c < m; c++) {
            free(texts[c]);
            texts[c] = NULL;
        }
    }
done:
    free(w);
    free(start);
    free(len);
    free(order);
    free(cands);
    free(texts);
    free(sims);
    free(qs);
    free(asked);
    free(asked_c);
    if (rc != QR_PLUGIN_OK) {
        free(cur);
        return rc;
    }
    *out = cur;
    return QR_PLUGIN_OK;
}

ATTACK_ENTRY_POINTS(ba, ba, ba_run)

QR_ATTACK_PLUGIN("bert_attack", "1.0.0", "same as qrun",
                 "BERT-Attack-style: [UNK] importance, causal-LM word candidates re-ranked by sentence "
                 "likelihood (no masked LM here), sentence-encoder constraint, at most 40% of words",
                 .create = ba_create, .destroy = qr_state_free, .perturb = ba_perturb,
                 .perturb_batch = ba_perturb_batch);
