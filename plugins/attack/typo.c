/* typo.c - the `typo` attack plugin: character edits as Pruthi et al.
 * (ACL 2019) define them (as in DeepWordBug, Gao et al., 2018), greedy by
 * word importance. Only words of 4+ characters are edited, never their
 * first or last character.
 *
 * Words are maximal runs of ASCII letters and digits and non-ASCII UTF-8
 * bytes (so punctuation and spaces separate words; an edit never splits a
 * UTF-8 sequence). With s(text) = query(ctx, text) (higher = better for the
 * victim):
 *   1. importance of word i = s(text) - s(text with word i's bytes deleted)
 *      (one query per word);
 *   2. for the words in decreasing importance (ties: earlier first), while
 *      fewer than `budget` words are edited and the score is > 0: try the
 *      one-character edits of the word (`tries` of each kind, positions and
 *      letters drawn from a splitmix64 stream seeded with `seed`):
 *        swap two adjacent inner characters, substitute an inner ASCII
 *        letter by one of its QWERTY neighbours (case kept), delete an
 *        inner character, insert a letter a-z between two characters
 *        (words of fewer than 4 characters are skipped);
 *      keep the candidate with the lowest score if it is lower than the
 *      current score (the word then counts against the budget), otherwise
 *      leave the word as it is.
 * budget counts edited words (one character edit each); 0 returns the text
 * unchanged. The result is deterministic for a given seed and a
 * deterministic query. Queries: n_words + up to 4·tries per visited word.
 *
 * Batched (ABI 1.4 perturb_batch): the deletions of step 1 are scored
 * together, and so are the candidate edits of each visited word (drawn
 * first, then scored: the draws do not depend on the scores), `batch` at a
 * time. Every candidate of a word is scored in the sequential attack too,
 * so the queries, their order and the result are the same (up to the
 * victim's own batch arithmetic).
 *
 * Options: tries (1..64, default 1): candidates per edit kind and word;
 * batch (1..1024, default 64): candidates per batched query (1 = one query
 * at a time, as perturb). */
#include "qr_plugin.h"
#include "attack_words.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHO "attack 'typo'"

typedef struct {
    const qr_host *host;
    int tries, batch;
} typo;

static void *ty_create(const qr_host *host, const char *const *kv, int n_kv) {
    static const char *const known[] = {"tries", "batch", NULL};
    typo *t = QR_STATE_NEW(typo, host, kv, n_kv, known, WHO);
    int64_t tries;
    if (!t) return NULL;
    if (host->opt_int(kv, n_kv, "tries", 1, 1, 64, &tries, WHO) != QR_PLUGIN_OK ||
        attack_batch_opt(host, kv, n_kv, WHO, &t->batch) != QR_PLUGIN_OK)
        return qr_state_fail(t);
    t->tries = (int)tries;
    return t;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int below(uint64_t *s, int n) { return (int)(splitmix64(s) % (uint64_t)n); }

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Byte offset of character p of w (wl bytes; p = the count gives wl). */
static size_t char_start(const char *w, size_t wl, int p) {
    size_t i = 0;
    for (int c = 0; i < wl; i++)
        if (((unsigned char)w[i] & 0xC0) != 0x80 && c++ == p) return i;
    return wl;
}

/* The QWERTY neighbours of ASCII letter c (lower case) into nb; returns
 * their count (0 for anything else). Rows "qwertyuiop", "asdfghjkl",
 * "zxcvbnm", each staggered half a key right of the one above: a key's
 * neighbours are the keys beside it and the two touching it in the rows
 * above and below (s: a d w e z x). */
static int qwerty_neighbours(char c, char nb[8]) {
    static const char *const rows[3] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};
    int r = -1, col = -1, n = 0;
    for (int i = 0; i < 3 && r < 0; i++) {
        const char *p = strchr(rows[i], c);
        if (c && p) {
            r = i;
            col = (int)(p - rows[i]);
        }
    }
    if (r < 0) return 0;
    int len[3] = {10, 9, 7};
    /* (row offset, column offset) of the touching keys: row r-1 holds
     * columns col and col+1 above, row r+1 columns col-1 and col below */
    const int dr[6] = {0, 0, -1, -1, 1, 1}, dc[6] = {-1, 1, 0, 1, -1, 0};
    for (int k = 0; k < 6; k++) {
        int rr = r + dr[k], cc = col + dc[k];
        if (rr >= 0 && rr < 3 && cc >= 0 && cc < len[rr]) nb[n++] = rows[rr][cc];
    }
    return n;
}

/* One edit of kind k (0 swap, 1 substitute, 2 delete, 3 insert) of word w
 * (wl bytes) into buf (room for wl + 1 bytes), as Pruthi et al. (2019)
 * define them: the first and last characters stay, words of fewer than 4
 * characters are not edited; swap two adjacent inner characters,
 * substitute an inner ASCII letter by a QWERTY neighbour (the case kept),
 * delete an inner character, insert a letter a-z between two characters.
 * Returns the new length, or -1 if the edit does not apply. */
static long edit_word(const char *w, size_t wl, int k, uint64_t *rng, char *buf) {
    int nc = 0;
    for (size_t i = 0; i < wl; i++)
        nc += ((unsigned char)w[i] & 0xC0) != 0x80;
    if (nc < 4) return -1;
    switch (k) {
    case 0: { /* swap inner characters p and p+1, 1 <= p <= nc-3 */
        int p = 1 + below(rng, nc - 3);
        size_t a = char_start(w, wl, p), b = char_start(w, wl, p + 1), c = char_start(w, wl, p + 2);
        memcpy(buf, w, a);
        memcpy(buf + a, w + b, c - b);
        memcpy(buf + a + (c - b), w + a, b - a);
        memcpy(buf + c, w + c, wl - c);
        return (long)wl;
    }
    case 1: { /* substitute inner character p by a QWERTY neighbour */
        int p = 1 + below(rng, nc - 2);
        size_t a = char_start(w, wl, p), b = char_start(w, wl, p + 1);
        char o = w[a], nb[8];
        int upper = o >= 'A' && o <= 'Z';
        int n = b - a == 1 ? qwerty_neighbours(upper ? (char)(o - 'A' + 'a') : o, nb) : 0;
        if (!n) return -1;
        char ch = nb[below(rng, n)];
        memcpy(buf, w, a);
        buf[a] = upper ? (char)(ch - 'a' + 'A') : ch;
        memcpy(buf + a + 1, w + b, wl - b);
        return (long)wl;
    }
    case 2: { /* delete inner character p */
        int p = 1 + below(rng, nc - 2);
        size_t a = char_start(w, wl, p), b = char_start(w, wl, p + 1);
        memcpy(buf, w, a);
        memcpy(buf + a, w + b, wl - b);
        return (long)(wl - (b - a));
    }
    case 3: { /* insert a letter before character p, 1 <= p <= nc-1 */
        int p = 1 + below(rng, nc - 1);
        size_t a = char_start(w, wl, p);
        memcpy(buf, w, a);
        buf[a] = (char)('a' + below(rng, 26));
        memcpy(buf + a + 1, w + a, wl - a);
        return (long)(wl + 1);
    }
    }
    return -1;
}

static int ty_run(const typo *t, const char *text, const attack_victim *v, int budget, uint64_t seed, char **out) {
    *out = NULL;
    if (!text || !v->query) return t->host->err_set("%s: text and query must not be NULL", WHO);
    if (budget < 0) return t->host->err_set("%s: budget %d: expected >= 0 (words to edit)", WHO, budget);
    size_t tlen = strlen(text);
    char *cur = malloc(tlen + 1);
    if (!cur) return t->host->err_set("%s: out of memory", WHO);
    memcpy(cur, text, tlen + 1);

    /* the words */
    int nw = 0;
    for (size_t i = 0; i < tlen; i++)
        if (is_word_byte((unsigned char)text[i]) && (i == 0 || !is_word_byte((unsigned char)text[i - 1])))
            nw++;
    double score = budget > 0 && nw > 0 ? v->query(v->ctx, cur) : 0.0;
    if (budget == 0 || nw == 0 || !(score > 0.0)) {
        *out = cur;
        return QR_PLUGIN_OK;
    }
    /* the candidate edits of one word: at most 4 kinds x tries */
    int max_c = 4 * t->tries;
    word *w = malloc((size_t)nw * sizeof *w);
    char **cands = calloc((size_t)max_c, sizeof *cands);
    long *clen = malloc((size_t)max_c * sizeof *clen);
    double *cs = malloc((size_t)max_c * sizeof *cs);
    char *buf = malloc(tlen + 2);
    int *order = malloc((size_t)nw * sizeof *order);
    size_t *start = malloc((size_t)nw * sizeof *start), *len = malloc((size_t)nw * sizeof *len);
    int rc = QR_PLUGIN_OK, nc = 0;
    if (!w || !cands || !clen || !cs || !buf || !order || !start || !len) {
        rc = t->host->err_set("%s: out of memory", WHO);
        goto done;
    }
    nw = 0;
    for (size_t i = 0; i < tlen;) {
        if (!is_word_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < tlen && is_word_byte((unsigned char)text[j]))
            j++;
        w[nw] = (word){.start = i, .len = j - i, .pos = nw};
        nw++;
        i = j;
    }

    /* 1. importance by deletion */
    if ((rc = attack_importance(t->host, WHO, v, cur, tlen, w, nw, "", score)) != QR_PLUGIN_OK) goto done;
    /* visit order; positions are looked up by pos since edits shift them */
    for (int i = 0; i < nw; i++) {
        start[i] = w[i].start;
        len[i] = w[i].len;
    }
    qsort(w, (size_t)nw, sizeof *w, cmp_importance);
    for (int i = 0; i < nw; i++)
        order[i] = w[i].pos;

    /* 2. greedy edits: the word's candidates drawn, scored, the lowest kept */
    uint64_t rng = seed;
    int edited = 0;
    for (int oi = 0; oi < nw && edited < budget && score > 0.0; oi++) {
        int i = order[oi];
        nc = 0;
        for (int k = 0; k < 4; k++) {
            for (int r = 0; r < t->tries; r++) {
                long nl = edit_word(cur + start[i], len[i], k, &rng, buf);
                if (nl <= 0 || ((size_t)nl == len[i] && memcmp(buf, cur + start[i], len[i]) == 0)) continue;
                if (!(cands[nc] = splice(cur, tlen, start[i], len[i], buf, (size_t)nl))) {
                    rc = t->host->err_set("%s: out of memory", WHO);
                    goto done;
                }
                clen[nc++] = nl;
            }
        }
        if ((rc = attack_scores(v, (const char *const *)cands, nc, cs)) != QR_PLUGIN_OK) goto done;
        double best_score = score;
        int best = attack_best(cs, nc, &best_score);
        if (best >= 0) {
            free(cur);
            cur = cands[best];
            cands[best] = NULL;
            long delta = clen[best] - (long)len[i];
            tlen = (size_t)((long)tlen + delta);
            for (int j = i + 1; j < nw; j++)
                start[j] = (size_t)((long)start[j] + delta);
            len[i] = (size_t)clen[best];
            char *nb = realloc(buf, tlen + 2);
            if (!nb) {
                rc = t->host->err_set("%s: out of memory", WHO);
                goto done;
            }
            buf = nb;
            edited++;
            score = best_score;
        }
        for (int c = 0; c < nc; c++) {
            free(cands[c]);
            cands[c] = NULL;
        }
        nc = 0;
    }
done:
    for (int c = 0; cands && c < nc; c++)
        free(cands[c]);
    free(w);
    free(cands);
    free(clen);
    free(cs);
    free(buf);
    free(order);
    free(start);
    free(len);
    if (rc != QR_PLUGIN_OK) {
        free(cur);
        return rc;
    }
    *out = cur;
    return QR_PLUGIN_OK;
}

ATTACK_ENTRY_POINTS(ty, typo, ty_run)

QR_ATTACK_PLUGIN("typo", "1.0.0", "same as qrun",
                 "Pruthi et al. / DeepWordBug one-character edits of inner characters of 4+ letter words "
                 "(swap, QWERTY substitute, delete, insert), greedy by word importance; budget = words edited",
                 .create = ty_create, .destroy = qr_state_free, .perturb = ty_perturb,
                 .perturb_batch = ty_perturb_batch);
