/* attack_words.h - what the word-level attack plugins share (typo,
 * textfooler, bert_attack): the word record with its importance, the
 * visit order, splicing a replacement into a text, the ASCII word finder,
 * capitalisation, and the victim as the plugins ask it (one query at a
 * time, or ABI 1.4's batched query; the `batch` option). Static functions
 * in a header: each plugin is one shared object built from one .c file,
 * and the helpers are small. */
#ifndef QR_ATTACK_WORDS_H
#define QR_ATTACK_WORDS_H

#include "qr_plugin.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline int is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

typedef struct {
    size_t start, len;
    double importance;
    int pos;
} word;

static inline int cmp_importance(const void *a, const void *b) {
    const word *x = a, *y = b;
    if (x->importance != y->importance) return x->importance > y->importance ? -1 : 1;
    return x->pos - y->pos;
}

/* text with bytes [start, start+len) replaced by rep (rlen bytes); malloc'd */
static inline char *splice(const char *text, size_t tlen, size_t start, size_t len, const char *rep, size_t rlen) {
    char *s = malloc(tlen - len + rlen + 1);
    if (!s) return NULL;
    memcpy(s, text, start);
    memcpy(s + start, rep, rlen);
    memcpy(s + start + rlen, text + start + len, tlen - start - len);
    s[tlen - len + rlen] = 0;
    return s;
}

/* the words of text: runs of letters with inner ' and - */
static inline int find_words(const char *text, size_t tlen, word *w) {
    int n = 0;
    for (size_t i = 0; i < tlen;) {
        if (!is_letter((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < tlen && (is_letter((unsigned char)text[j]) ||
                            ((text[j] == '\'' || text[j] == '-') && j + 1 < tlen && is_letter((unsigned char)text[j + 1]))))
            j++;
        if (w) w[n] = (word){.start = i, .len = j - i, .pos = n};
        n++;
        i = j;
    }
    return n;
}

static inline void match_case(char *cand, const char *orig, size_t olen) {
    int all_upper = olen > 1, first_upper = orig[0] >= 'A' && orig[0] <= 'Z';
    for (size_t i = 0; i < olen; i++)
        if (is_letter((unsigned char)orig[i]) && !(orig[i] >= 'A' && orig[i] <= 'Z')) all_upper = 0;
    for (char *p = cand; *p; p++) {
        if (all_upper && *p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    }
    if (first_upper && cand[0] >= 'a' && cand[0] <= 'z') cand[0] = (char)(cand[0] - 'a' + 'A');
}

/* The victim behind perturb (query only: query_batch NULL) or
 * perturb_batch (both), and the most candidates one query_batch call may
 * carry (the `batch` option; 1 = one query at a time, as perturb). */
typedef struct {
    double (*query)(void *ctx, const char *candidate);
    int (*query_batch)(void *ctx, const char *const *cands, int n, double *scores);
    void *ctx;
    int batch;
} attack_victim;

#define ATTACK_BATCH_DEFAULT 64
#define ATTACK_BATCH_MAX 1024

/* A plugin's two entry points over its one run(t, text, victim, budget,
 * seed, out): <prefix>_perturb asks the victim one query at a time,
 * <prefix>_perturb_batch (ABI 1.4) through the host's query_batch, up to
 * the state's `batch` candidates a call. STATE: the plugin's state type,
 * with `host` and `batch` fields; WHO: the plugin's name for messages. */
#define ATTACK_ENTRY_POINTS(prefix, STATE, run)                                                                  \
    static int prefix##_perturb(void *self, const char *text, double (*query)(void *ctx, const char *candidate), \
                                void *ctx, int budget, uint64_t seed, char **out) {                              \
        return run(self, text, &(attack_victim){.query = query, .ctx = ctx, .batch = 1}, budget, seed, out);    \
    }                                                                                                              \
    static int prefix##_perturb_batch(                                                                            \
        void *self, const char *text, double (*query)(void *ctx, const char *candidate),                          \
        int (*query_batch)(void *ctx, const char *const *cands, int n, double *scores), void *ctx, int budget,   \
        uint64_t seed, char **out) {                                                                              \
        const STATE *t = self;                                                                                     \
        if (!query_batch) {                                                                                        \
            *out = NULL;                                                                                           \
            return t->host->err_set("%s: perturb_batch: query_batch must not be NULL", WHO);                      \
        }                                                                                                          \
        return run(t, text, &(attack_victim){query, query_batch, ctx, t->batch}, budget, seed, out);             \
    }

/* The `batch` option every attack plugin takes: candidates per batched
 * query (1..ATTACK_BATCH_MAX, default ATTACK_BATCH_DEFAULT; 1 asks one at a
 * time, through query, even when the host has a batched scorer). */
static inline int attack_batch_opt(const qr_host *h, const char *const *kv, int n_kv, const char *who, int *batch) {
    int64_t b;
    if (h->opt_int(kv, n_kv, "batch", ATTACK_BATCH_DEFAULT, 1, ATTACK_BATCH_MAX, &b, who) != QR_PLUGIN_OK)
        return QR_PLUGIN_ERR;
    *batch = (int)b;
    return QR_PLUGIN_OK;
}

/* scores[i] = the victim's score of cands[i], i < n: query_batch on runs of
 * at most v->batch, or query one at a time (no query_batch, or batch 1);
 * in order either way, so a host charges and draws the same queries as the
 * sequential attack. The attacks score every candidate of a position
 * before choosing (none stops at the first that succeeds), so batching
 * changes neither the queries asked nor the choice. Returns QR_PLUGIN_OK,
 * or query_batch's QR_PLUGIN_ERR (its message stands). */
static inline int attack_scores(const attack_victim *v, const char *const *cands, int n, double *scores) {
    if (!v->query_batch || v->batch <= 1) {
        for (int i = 0; i < n; i++) scores[i] = v->query(v->ctx, cands[i]);
        return QR_PLUGIN_OK;
    }
    for (int i = 0; i < n; i += v->batch) {
        int m = n - i < v->batch ? n - i : v->batch;
        if (v->query_batch(v->ctx, cands + i, m, scores + i) != QR_PLUGIN_OK) return QR_PLUGIN_ERR;
    }
    return QR_PLUGIN_OK;
}

/* The first c < n with scores[c] < *best (strictly: ties keep the earlier,
 * and the current text wins a tie), *best lowered to it; -1 if none. The
 * sequential attack's rule, applied after the scores are in. */
static inline int attack_best(const double *scores, int n, double *best) {
    int k = -1;
    for (int c = 0; c < n; c++)
        if (scores[c] < *best) {
            *best = scores[c];
            k = c;
        }
    return k;
}

/* The greedy step of a word-substitution attack at word i of nw: of the
 * na candidates scored (qs; asked_c[k] their index into texts), the one
 * scoring lowest below *score, if any, becomes the current text: *cur is
 * freed and takes texts[that] (set to NULL, so the caller frees the rest),
 * *tlen and *score follow, word i's length and the start of every later
 * word move by the change in length. Returns 1 when a word was replaced. */
static inline int attack_take_best(const double *qs, int na, const int *asked_c, char **texts, char **cur,
                                   size_t *tlen, size_t *start, size_t *len, int i, int nw, double *score) {
    double best_score = *score;
    int best = attack_best(qs, na, &best_score);
    if (best < 0) return 0;
    best = asked_c[best];
    size_t nl = strlen(texts[best]);
    long delta = (long)nl - (long)*tlen;
    free(*cur);
    *cur = texts[best];
    texts[best] = NULL;
    len[i] = (size_t)((long)len[i] + delta);
    for (int j = i + 1; j < nw; j++) start[j] = (size_t)((long)start[j] + delta);
    *tlen = nl;
    *score = best_score;
    return 1;
}

/* importance of every word: base - the score of the text with word i's
 * bytes replaced by rep (NaN scores count 0), into w[i].importance, the
 * candidates scored together (attack_scores). Returns QR_PLUGIN_OK, or
 * QR_PLUGIN_ERR (out of memory: a message naming who; or the victim's). */
static inline int attack_importance(const qr_host *h, const char *who, const attack_victim *v, const char *text,
                                    size_t tlen, word *w, int nw, const char *rep, double base) {
    size_t rl = strlen(rep);
    char **c = calloc((size_t)nw, sizeof *c);
    double *s = malloc((size_t)nw * sizeof *s);
    int rc = c && s ? QR_PLUGIN_OK : h->err_set("%s: out of memory", who);
    for (int i = 0; rc == QR_PLUGIN_OK && i < nw; i++)
        if (!(c[i] = splice(text, tlen, w[i].start, w[i].len, rep, rl))) rc = h->err_set("%s: out of memory", who);
    if (rc == QR_PLUGIN_OK) rc = attack_scores(v, (const char *const *)c, nw, s);
    for (int i = 0; rc == QR_PLUGIN_OK && i < nw; i++) w[i].importance = s[i] == s[i] ? base - s[i] : 0.0;
    for (int i = 0; c && i < nw; i++) free(c[i]);
    free(c);
    free(s);
    return rc;
}

#endif
