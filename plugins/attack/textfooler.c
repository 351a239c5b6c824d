/* textfooler.c - the `textfooler` attack plugin: TextFooler (Jin et al.,
 * AAAI 2020; TextAttack's textfooler_jin_2019) for a continuous victim
 * score, on the host's word resources (ABI 1.3: candidates, is_stopword,
 * similarity). With s(text) = query(ctx, text) (higher = better for the
 * victim):
 *   1. importance of word i = s(text) - s(text with word i deleted) (one
 *      query per word; a word is a maximal run of ASCII letters, with
 *      inner apostrophes and hyphens);
 *   2. for the words in decreasing importance (ties: earlier first),
 *      skipping stop words (TextFooler's 266) and words the embedding does
 *      not have, while fewer than `budget` words are replaced and the score
 *      is above `goal`: the word's `k` nearest neighbours in the embedding
 *      with cosine >= min_cos and a matching part of speech (noun and verb
 *      counted as one, as TextAttack's allow_verb_noun_swap); a candidate
 *      keeps the original's capitalisation (first letter, or all capitals);
 *      the sentence constraint keeps those whose window of `window` words
 *      centred on the edit has a sentence-encoder cosine >= `sim` with the
 *      same window of the current text; each survivor is queried and the
 *      lowest-scoring one replaces the word if it lowers the score. No word
 *      is replaced twice (each is visited once).
 * Substitutes, named here and in docs/ATTACKS.md: GloVe 6B 50-d
 * counter-fitted with WordNet 3.0 (the published counter-fitted
 * PARAGRAM-SL999 is not reachable), WordNet's parts of speech for the word
 * alone (the published tagger runs on the sentence), all-MiniLM-L6-v2 for
 * the Universal Sentence Encoder. `sim` defaults to 0.8776, the cosine of
 * TextAttack's angular threshold 0.840845 (cos(pi (1 - 0.840845))).
 * budget counts replaced words; 0 returns the text unchanged. Queries:
 * n_words + at most k per visited word. Deterministic (no randomness; seed
 * is unused).
 *
 * Batched (ABI 1.4 perturb_batch): the deletions of step 1 are scored
 * together, and so are the survivors of each visited word, `batch` at a
 * time; the sequential attack scores every survivor too, so the queries,
 * their order and the result are the same (up to the victim's own batch
 * arithmetic).
 *
 * Options: k (1..256, default 50), min_cos (-1..1, 0.5), sim (-1..1,
 * 0.8776; -1 turns the sentence constraint off), window (1..101 words, 15),
 * pos (noun_verb | same | any), goal (stop once the score is at or below
 * it; default -inf: until the budget or the words run out), batch
 * (1..1024, default 64: candidates per batched query; 1 = one query at a
 * time, as perturb). */
#include "qr_plugin.h"
#include "attack_words.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHO "attack 'textfooler'"
#define K_MAX 256

typedef struct {
    const qr_host *host;
    int k, window, pos, batch;
    double min_cos, sim, goal;
} tf;

static void *tf_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"k", "min_cos", "sim", "window", "pos", "goal", "batch", NULL};
    static const char *const pos_names[] = {"any", "same", "noun_verb", NULL};
    tf *t = QR_STATE_NEW(tf, host, kv, n_kv, known, WHO);
    int64_t k, window;
    int pos;
    if (!t) return NULL;
    if (host->opt_int(kv, n_kv, "k", 50, 1, K_MAX, &k, WHO) != QR_PLUGIN_OK ||
        host->opt_int(kv, n_kv, "window", 15, 1, 101, &window, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "min_cos", 0.5, -1.0, 1.0, &t->min_cos, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "sim", 0.8776, -1.0, 1.0, &t->sim, WHO) != QR_PLUGIN_OK ||
        host->opt_double(kv, n_kv, "goal", -DBL_MAX, -DBL_MAX, DBL_MAX, &t->goal, WHO) != QR_PLUGIN_OK ||
        host->opt_choice(kv, n_kv, "pos", pos_names, 2, &pos, WHO) != QR_PLUGIN_OK ||
        attack_batch_opt(host, kv, n_kv, WHO, &t->batch) != QR_PLUGIN_OK)
        return qr_state_fail(t);
    if (!QR_HOST_HAS(host, similarity)) {
        host->err_set("%s: the host is too old (this plugin needs the ABI 1.3 services candidates, is_stopword "
                      "and similarity)", WHO);
        return qr_state_fail(t);
    }
    t->k = (int)k;
    t->window = (int)window;
    t->pos = pos == 0 ? QR_POS_MATCH_ANY : pos == 1 ? QR_POS_MATCH_SAME : QR_POS_MATCH_NOUN_VERB;
    return t;
}

/* the bytes of words [a, b] of text (inclusive, clamped), malloc'd */
static char *window_text(const char *text, const size_t *start, const size_t *len, int nw, int a, int b) {
    if (a < 0) a = 0;
    if (b >= nw) b = nw - 1;
    size_t s = start[a], e = start[b] + len[b];
    char *r = malloc(e - s + 1);
    if (!r) return NULL;
    memcpy(r, text + s, e - s);
    r[e - s] = 0;
    return r;
}

static int tf_run(const tf *t, const char *text, const attack_victim *v, int budget, uint64_t seed,
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
    if (budget == 0 || nw == 0) {
        *out = cur;
        return QR_PLUGIN_OK;
    }
    double score = v->query(v->ctx, cur);
    word *w = malloc((size_t)nw * sizeof *w);
    size_t *start = malloc((size_t)nw * sizeof *start), *len = malloc((size_t)nw * sizeof *len);
    int *order = malloc((size_t)nw * sizeof *order);
    qr_candidate *cands = malloc((size_t)t->k * sizeof *cands);
    char **texts = calloc((size_t)t->k, sizeof *texts), **wins = calloc((size_t)t->k, sizeof *wins);
    double *sims = malloc((size_t)t->k * sizeof *sims), *qs = malloc((size_t)t->k * sizeof *qs);
    const char **asked = malloc((size_t)t->k * sizeof *asked);
    int *asked_c = malloc((size_t)t->k * sizeof *asked_c);
    int rc = QR_PLUGIN_OK;
    if (!w || !start || !len || !order || !cands || !texts || !wins || !sims || !qs || !asked || !asked_c) {
        rc = h->err_set("%s: out of memory", WHO);
        goto done;
    }
    find_words(text, tlen, w);
    /* 1. importance by deletion (none once the victim cannot be asked) */
    if (score > -HUGE_VAL && (rc = attack_importance(h, WHO, v, cur, tlen, w, nw, "", score)) != QR_PLUGIN_OK)
        goto done;
    for (int i = 0; i < nw; i++) {
        start[i] = w[i].start;
        len[i] = w[i].len;
    }
    qsort(w, (size_t)nw, sizeof *w, cmp_importance);
    for (int i = 0; i < nw; i++) order[i] = w[i].pos;

    /* 2. greedy replacement */
    int replaced = 0;
    char wbuf[QR_WORD_MAX];
    for (int oi = 0; oi < nw && replaced < budget && score > t->goal && score > -HUGE_VAL; oi++) {
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
        int n = h->candidates(h, wbuf, t->k, t->min_cos, t->pos, cands);
        if (n < 0) {
            rc = QR_PLUGIN_ERR;
            goto done;
        }
        if (n == 0) continue;
        /* the candidates' texts and their windows */
        int half = t->window / 2, m = 0;
        char *ref = window_text(cur, start, len, nw, i - half, i + half);
        if (!ref) {
            rc = h->err_set("%s: out of memory", WHO);
            goto done;
        }
        for (int c = 0; c < n; c++) {
            char rep[QR_WORD_MAX];
            size_t rl = strlen(cands[c].word);
            memcpy(rep, cands[c].word, rl + 1);
            match_case(rep, wbuf, len[i]);
            if (strcmp(rep, wbuf) == 0) continue;
            char *nt = splice(cur, tlen, start[i], len[i], rep, rl);
            if (!nt) break;
            /* the window in the new text: word i now spans rl bytes */
            size_t *st2 = start, *ln2 = len, save_len = len[i];
            long delta = (long)rl - (long)save_len;
            len[i] = rl;
            for (int j = i + 1; j < nw; j++) start[j] = (size_t)((long)start[j] + delta);
            wins[m] = window_text(nt, st2, ln2, nw, i - half, i + half);
            for (int j = i + 1; j < nw; j++) start[j] = (size_t)((long)start[j] - delta);
            len[i] = save_len;
            if (!wins[m]) {
                free(nt);
                break;
            }
            texts[m++] = nt;
        }
        int ok = 1;
        if (m > 0 && t->sim > -1.0) ok = h->similarity(h, ref, (const char *const *)wins, m, sims) == 0;
        free(ref);
        if (!ok) {
            rc = QR_PLUGIN_ERR;
            for (int c = 0; c < m; c++) {
                free(texts[c]);
                free(wins[c]);
                texts[c] = wins[c] = NULL;
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
                free(wins[c]);
                texts[c] = wins[c] = NULL;
            }
            goto done;
        }
        replaced += attack_take_best(qs, na, asked_c, texts, &cur, &tlen, start, len, i, nw, &score);
        for (int c = 0; c < m; c++) {
            free(texts[c]);
            free(wins[c]);
            texts[c] = wins[c] = NULL;
        }
    }
done:
    free(w);
    free(start);
    free(len);
    free(order);
    free(cands);
    free(texts);
    free(wins);
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

ATTACK_ENTRY_POINTS(tf, tf, tf_run)

QR_ATTACK_PLUGIN("textfooler", "1.0.0", "same as qrun",
                 "TextFooler: deletion importance, counter-fitted embedding neighbours with matching POS, "
                 "sentence-encoder window constraint, greedy; budget = words replaced",
                 .create = tf_create, .destroy = qr_state_free, .perturb = tf_perturb,
                 .perturb_batch = tf_perturb_batch);
