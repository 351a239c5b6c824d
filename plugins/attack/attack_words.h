/* attack_words.h - what the word-level attack plugins share (typo,
 * textfooler, bert_attack): the word record with its importance, the
 * visit order, splicing a replacement into a text, the ASCII word finder
 * and capitalisation. Static functions in a header: each plugin is one
 * shared object built from one .c file, and the helpers are small. */
#ifndef QR_ATTACK_WORDS_H
#define QR_ATTACK_WORDS_H

#include <stddef.h>
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

#endif
