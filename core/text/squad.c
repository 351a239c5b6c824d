/* squad.c - SQuAD v1.1 loading, the official EM/F1 metric, bootstrap CIs.
 * See squad.h for what is fatal, what is skipped, and how the metric follows
 * evaluate-v1.1.py character by character. */
#include "squad.h"

#include "qr.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* Unicode: decoding and the character classes CPython uses.                */

/* Next code point of s[*i..n); a byte that does not start valid UTF-8 reads
 * as U+FFFD and advances by one, so every input has a defined meaning. */
static int32_t next_cp(const uint8_t *s, size_t n, size_t *i) {
    int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(s + *i, (utf8proc_ssize_t)(n - *i), &c);
    if (k <= 0) {
        *i += 1;
        return 0xFFFD;
    }
    *i += (size_t)k;
    return c;
}

static int utf8_valid(const char *s) {
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Python's str.split() separators (Py_UNICODE_ISSPACE: bidi class WS, B, S
 * or category Zs). U+200B ZERO WIDTH SPACE is not one of them. */
static int is_space(int32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python re's \w on str: str.isalnum() or '_'; isalnum = letters (L*) or
 * numerics (N*). Combining marks (Mn, Mc) are not word characters. */
static int is_word(int32_t c) {
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

/* string.punctuation: the 32 ASCII characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
static int is_punct(int32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

/* Unicode Case_Ignorable: Mn, Me, Cf, Lm, Sk and Word_Break MidLetter,
 * MidNumLet, Single_Quote. Used only for the Final_Sigma context. */
static int is_case_ignorable(int32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        break;
    }
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        return 0;
    }
}

/* Unicode Cased: Lu, Ll, Lt, anything with a case mapping, and the
 * Other_Lowercase / Other_Uppercase characters that have none (ordinal and
 * modifier letters, small-letter superscripts, ...). Sorted ranges. */
static const int32_t other_cased[][2] = {
    {0x00AA, 0x00AA}, {0x00BA, 0x00BA}, {0x02B0, 0x02B8}, {0x02C0, 0x02C1},
    {0x02E0, 0x02E4}, {0x0345, 0x0345}, {0x037A, 0x037A}, {0x10FC, 0x10FC},
    {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78}, {0x1D9B, 0x1DBF}, {0x2071, 0x2071},
    {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2160, 0x217F}, {0x24B6, 0x24E9},
    {0x2C7C, 0x2C7D}, {0xA69C, 0xA69D}, {0xA770, 0xA770}, {0xA7F2, 0xA7F4},
    {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F}, {0xAB69, 0xAB69}, {0x10780, 0x10780},
    {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA}, {0x1E030, 0x1E06D},
    {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};

static int is_cased(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    if (utf8proc_tolower(c) != c || utf8proc_toupper(c) != c) return 1;
    int lo = 0, hi = (int)(sizeof other_cased / sizeof other_cased[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < other_cased[mid][0]) hi = mid - 1;
        else if (c > other_cased[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* CPython's lower() of U+03A3 at cp[i]: final 'ς' when preceded by a cased
 * letter and not followed by one, skipping case-ignorables both ways. */
static int32_t lower_sigma(const int32_t *cp, size_t n, size_t i) {
    size_t j = i;
    int32_t c = 0;
    int found = 0;
    while (j > 0) {
        c = cp[--j];
        if (!is_case_ignorable(c)) {
            found = 1;
            break;
        }
    }
    if (!found || !is_cased(c)) return 0x3C3;
    for (j = i + 1; j < n; j++) {
        c = cp[j];
        if (!is_case_ignorable(c)) return is_cased(c) ? 0x3C3 : 0x3C2;
    }
    return 0x3C2;
}

/* ------------------------------------------------------------------------ */
/* The metric.                                                              */

static int is_article(const int32_t *w, size_t n) {
    if (n == 1) return w[0] == 'a';
    if (n == 2) return w[0] == 'a' && w[1] == 'n';
    if (n == 3) return w[0] == 't' && w[1] == 'h' && w[2] == 'e';
    return 0;
}

/* normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s))))
 * s is n bytes of (ideally) UTF-8; returns malloc'd UTF-8, *out_len bytes. */
static char *normalize(const char *s, size_t n, size_t *out_len) {
    const uint8_t *u = (const uint8_t *)s;
    int32_t *cp = qr_xmalloc((n + 1) * sizeof *cp);
    size_t m = 0;
    for (size_t i = 0; i < n;) cp[m++] = next_cp(u, n, &i);

    /* lower(): at most two code points per input code point ('İ'). */
    int32_t *w = qr_xmalloc((2 * m + 1) * sizeof *w);
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        int32_t c = cp[i];
        if (c == 0x130) {
            w[k++] = 'i';
            w[k++] = 0x307;
        } else if (c == 0x3A3) {
            w[k++] = lower_sigma(cp, m, i);
        } else {
            w[k++] = utf8proc_tolower(c);
        }
    }
    free(cp);

    /* remove_punc, in place */
    size_t p = 0;
    for (size_t i = 0; i < k; i++)
        if (!is_punct(w[i])) w[p++] = w[i];

    /* remove_articles: re.sub(r'\b(a|an|the)\b', ' ', t) matches exactly
     * the maximal runs of \w characters equal to a, an or the. In place:
     * the write position never passes the read position. */
    size_t q = 0;
    for (size_t i = 0; i < p;) {
        if (!is_word(w[i])) {
            w[q++] = w[i++];
            continue;
        }
        size_t j = i;
        while (j < p && is_word(w[j])) j++;
        if (is_article(w + i, j - i)) {
            w[q++] = ' ';
        } else {
            memmove(w + q, w + i, (j - i) * sizeof *w);
            q += j - i;
        }
        i = j;
    }

    /* white_space_fix: ' '.join(t.split()) */
    char *out = qr_xmalloc(4 * q + 1);
    size_t o = 0;
    int sep = 0;
    for (size_t i = 0; i < q; i++) {
        if (is_space(w[i])) {
            sep = o > 0;
            continue;
        }
        if (sep) out[o++] = ' ';
        sep = 0;
        o += (size_t)utf8proc_encode_char(w[i], (uint8_t *)out + o);
    }
    out[o] = 0;
    free(w);
    if (out_len) *out_len = o;
    return out;
}

char *qr_squad_normalize(const char *s) {
    if (!s) s = "";
    return normalize(s, strlen(s), NULL);
}

/* The tokens of a normalised string (separated by single spaces), sorted so
 * that the multiset intersection is one merge. */
typedef struct {
    const char *p;
    size_t n;
} tok;

static int tok_cmp(const void *a, const void *b) {
    const tok *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->p, y->p, n);
    if (r) return r;
    return (x->n > y->n) - (x->n < y->n);
}

static tok *tokens(const char *s, size_t len, size_t *count) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += s[i] == ' ';
    tok *t = qr_xmalloc((n + 1) * sizeof *t);
    n = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != ' ') j++;
        t[n].p = s + i;
        t[n].n = j - i;
        n++;
        i = j + 1;
    }
    qsort(t, n, sizeof *t, tok_cmp);
    *count = n;
    return t;
}

/* f1_score on already-normalised strings, same operations in the same
 * order as the Python so the doubles agree bit for bit. */
static double f1_norm(const tok *pt, size_t np, const tok *gt, size_t ng) {
    size_t i = 0, j = 0, same = 0;
    while (i < np && j < ng) {
        int r = tok_cmp(pt + i, gt + j);
        if (r == 0) {
            same++;
            i++;
            j++;
        } else if (r < 0) {
            i++;
        } else {
            j++;
        }
    }
    if (same == 0) return 0.0;
    double precision = 1.0 * (double)same / (double)np;
    double recall = 1.0 * (double)same / (double)ng;
    return (2 * precision * recall) / (precision + recall);
}

double qr_squad_em(const char *prediction, const char *ground_truth) {
    char *a = qr_squad_normalize(prediction), *b = qr_squad_normalize(ground_truth);
    double r = strcmp(a, b) == 0 ? 1.0 : 0.0;
    free(a);
    free(b);
    return r;
}

void qr_squad_score(const char *prediction, const char *const *answers, int n_answers, double *em,
                    double *f1) {
    double best_em = 0.0, best_f1 = 0.0;
    size_t lp, np;
    char *p = normalize(prediction ? prediction : "", prediction ? strlen(prediction) : 0, &lp);
    tok *pt = tokens(p, lp, &np);
    for (int a = 0; a < n_answers; a++) {
        const char *g0 = answers[a] ? answers[a] : "";
        size_t lg, ng;
        char *g = normalize(g0, strlen(g0), &lg);
        tok *gt = tokens(g, lg, &ng);
        double e = strcmp(p, g) == 0 ? 1.0 : 0.0, f = f1_norm(pt, np, gt, ng);
        if (e > best_em) best_em = e;
        if (f > best_f1) best_f1 = f;
        free(gt);
        free(g);
    }
    free(pt);
    free(p);
    if (em) *em = best_em;
    if (f1) *f1 = best_f1;
}

double qr_squad_f1(const char *prediction, const char *ground_truth) {
    double f1;
    qr_squad_score(prediction, &ground_truth, 1, NULL, &f1);
    return f1;
}

/* ------------------------------------------------------------------------ */
/* Bootstrap.                                                               */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* xoshiro256** */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t xnext(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, n) without modulo bias (rejection of the short tail). */
static uint64_t xbelow(uint64_t s[4], uint64_t n) {
    uint64_t lim = (0 - n) % n, r;
    do r = xnext(s);
    while (r < lim);
    return r % n;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(const double *v, int n, double q) {
    double h = (n - 1) * q;
    int i = (int)floor(h);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (h - i) * (v[i + 1] - v[i]);
}

void qr_bootstrap_ci(const double *vals, int n, int iters, uint64_t seed, double level, double *lo,
                     double *hi) {
    double l = NAN, h = NAN;
    if (n > 0 && level > 0 && level < 1) {
        if (iters <= 0) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += vals[i];
            l = h = sum / n;
        } else {
            uint64_t st[4], x = seed;
            for (int i = 0; i < 4; i++) st[i] = splitmix64(&x);
            double *means = qr_xmalloc((size_t)iters * sizeof *means);
            for (int it = 0; it < iters; it++) {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += vals[xbelow(st, (uint64_t)n)];
                means[it] = sum / n;
            }
            qsort(means, (size_t)iters, sizeof *means, dbl_cmp);
            l = quantile_sorted(means, iters, (1 - level) / 2);
            h = quantile_sorted(means, iters, (1 + level) / 2);
            free(means);
        }
    }
    if (lo) *lo = l;
    if (hi) *hi = h;
}

/* ------------------------------------------------------------------------ */
/* Loading.                                                                 */

/* Strings live in a chain of blocks freed together. */
typedef struct blk {
    struct blk *next;
    size_t used, cap;
    char data[];
} blk;

struct qr_squad {
    qr_squad_example *ex;
    int n, cap;
    qr_squad_answer *ans; /* all answers; ex[i].answers points into it */
    int n_ans, cap_ans;
    int n_skipped;
    char **warn;
    int n_warn, cap_warn;
    blk *blocks;
    /* load-time only: id set (open addressing) and answer offsets */
    const char **ids;
    size_t ids_cap, ids_n;
    int *first_ans;
};

static char *arena_dup(qr_squad *s, const char *str) {
    size_t n = strlen(str) + 1;
    blk *b = s->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = qr_xmalloc(sizeof *b + cap);
        b->cap = cap;
        b->used = 0;
        b->next = s->blocks;
        s->blocks = b;
    }
    char *d = b->data + b->used;
    memcpy(d, str, n);
    b->used += n;
    return d;
}

static void warnf(qr_squad *s, const char *fmt, ...) QR_PRINTF(2, 3);
static void warnf(qr_squad *s, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (s->n_warn == s->cap_warn) {
        s->cap_warn = s->cap_warn ? 2 * s->cap_warn : 16;
        s->warn = qr_xrealloc(s->warn, (size_t)s->cap_warn * sizeof *s->warn);
    }
    s->warn[s->n_warn++] = qr_xstrdup(buf);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Insert id; returns 0 when it was already there. */
static int id_insert(qr_squad *s, const char *id) {
    if (2 * (s->ids_n + 1) > s->ids_cap) {
        size_t cap = s->ids_cap ? 2 * s->ids_cap : 1024;
        const char **t = qr_xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < s->ids_cap; i++) {
            if (!s->ids[i]) continue;
            size_t h = (size_t)fnv1a(s->ids[i]) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = s->ids[i];
        }
        free(s->ids);
        s->ids = t;
        s->ids_cap = cap;
    }
    size_t h = (size_t)fnv1a(id) & (s->ids_cap - 1);
    while (s->ids[h]) {
        if (strcmp(s->ids[h], id) == 0) return 0;
        h = (h + 1) & (s->ids_cap - 1);
    }
    s->ids[h] = id;
    s->ids_n++;
    return 1;
}

static const char *json_type(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

/* obj[key] as a valid UTF-8 string, or NULL + message. */
static const char *get_str(const cJSON *obj, const char *key, const char *label, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || !v->valuestring) {
        qr_err_set("%s: %s: '%s' missing or not a string (got %s)", label, path, key, json_type(v));
        return NULL;
    }
    if (!utf8_valid(v->valuestring)) {
        qr_err_set("%s: %s: '%s' is not valid UTF-8", label, path, key);
        return NULL;
    }
    return v->valuestring;
}

static const cJSON *get_arr(const cJSON *obj, const char *key, const char *label, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(v)) {
        qr_err_set("%s: %s: '%s' missing or not an array (got %s)", label, path, key, json_type(v));
        return NULL;
    }
    return v;
}

static int only_space(const char *str) {
    const uint8_t *u = (const uint8_t *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;)
        if (!is_space(next_cp(u, n, &i))) return 0;
    return 1;
}

/* Where a SQuAD answer really is: its code point start in the context, or
 * -1 when the text occurs nowhere. start as given in the file (any number);
 * the occurrence nearest to it wins, the earlier one on a tie. Both strings
 * are valid UTF-8, so a byte match always starts on a code point. */
static long locate(const char *ctx, const char *text, double start) {
    long best = -1;
    double best_d = 0;
    long cpos = 0; /* code points before byte i */
    size_t i = 0;
    for (const char *hit = strstr(ctx, text); hit; hit = strstr(hit + 1, text)) {
        size_t b = (size_t)(hit - ctx);
        for (; i < b; i++) cpos += ((uint8_t)ctx[i] & 0xC0) != 0x80;
        double d = fabs((double)cpos - start);
        if (best < 0 || d < best_d) {
            best = cpos;
            best_d = d;
        }
        if (d == 0 || (double)cpos > start) break; /* later hits are farther */
    }
    return best;
}

/* A readable JSON path for byte offset `at` of buf: a light scan tracking
 * containers, keys and array indices, e.g. "data[0].paragraphs[2].qas[7]".
 * Used only to explain parse errors, where cJSON gives no tree. Returns
 * nonzero when `at` lies inside an open string or container. */
static int json_path_at(const char *buf, size_t at, char *out, size_t outsz) {
    enum { MAXD = 32 };
    struct {
        char arr, has_key;
        int idx;
        char key[48];
    } st[MAXD];
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < at; i++) {
        char c = buf[i];
        if (c == '{' || c == '[') {
            if (depth < MAXD) {
                st[depth].arr = c == '[';
                st[depth].has_key = 0;
                st[depth].idx = 0;
                st[depth].key[0] = 0;
            }
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth > 0) depth--;
        } else if (c == ',') {
            if (depth > 0 && depth <= MAXD) {
                if (st[depth - 1].arr) st[depth - 1].idx++;
                else st[depth - 1].has_key = 0;
            }
        } else if (c == '"') {
            size_t j = i + 1;
            while (j < at && buf[j] != '"') j += buf[j] == '\\' ? 2 : 1;
            in_str = j >= at;
            if (depth > 0 && depth <= MAXD && !st[depth - 1].arr && !st[depth - 1].has_key) {
                size_t n = j - i - 1 < sizeof st[0].key - 1 ? j - i - 1 : sizeof st[0].key - 1;
                if (i + 1 + n > at) n = at - i - 1;
                memcpy(st[depth - 1].key, buf + i + 1, n);
                st[depth - 1].key[n] = 0;
                st[depth - 1].has_key = 1;
            }
            i = j;
        }
    }
    size_t o = 0;
    out[0] = 0;
    for (int d = 0; d < depth && d < MAXD && o + 1 < outsz; d++) {
        int w;
        if (st[d].arr) w = snprintf(out + o, outsz - o, "[%d]", st[d].idx);
        else if (st[d].has_key) w = snprintf(out + o, outsz - o, "%s%s", o ? "." : "", st[d].key);
        else break;
        if (w < 0) break;
        o += (size_t)w;
        if (o >= outsz) o = outsz - 1;
    }
    if (!out[0]) snprintf(out, outsz, "the top level");
    return depth > 0 || in_str;
}

static int parse_error(const char *buf, size_t len, size_t at, const char *label) {
    char path[256];
    if (at > len) at = len;
    /* cJSON reports where the failing value began (an unterminated string:
     * its opening quote), so first ask whether the whole input is cut off. */
    int open = json_path_at(buf, len, path, sizeof path);
    if (len == 0 || open)
        return qr_err_set("%s: invalid JSON: input ends at byte %zu inside %s (truncated file?)", label,
                          len, path);
    json_path_at(buf, at, path, sizeof path);
    int line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24];
    size_t k = 0;
    for (size_t i = at; i < len && k < sizeof near - 1; i++)
        near[k++] = (buf[i] >= 32 && buf[i] < 127) ? buf[i] : '?';
    near[k] = 0;
    return qr_err_set("%s: invalid JSON at byte %zu (line %d, column %d) in %s, near '%s'", label, at,
                      line, col, path, near);
}

static int load_tree(qr_squad *s, const cJSON *root, const char *label) {
    char path[160];
    if (!cJSON_IsObject(root))
        return qr_err_set("%s: top level: expected an object, got %s", label, json_type(root));
    const cJSON *data = get_arr(root, "data", label, "top level");
    if (!data) return QR_ERR;
    int ai = 0;
    for (const cJSON *art = data->child; art; art = art->next, ai++) {
        snprintf(path, sizeof path, "data[%d]", ai);
        if (!cJSON_IsObject(art))
            return qr_err_set("%s: %s: expected an object, got %s", label, path, json_type(art));
        const char *title = get_str(art, "title", label, path);
        if (!title) return QR_ERR;
        const cJSON *paras = get_arr(art, "paragraphs", label, path);
        if (!paras) return QR_ERR;
        title = arena_dup(s, title);
        int pi = 0;
        for (const cJSON *para = paras->child; para; para = para->next, pi++) {
            snprintf(path, sizeof path, "data[%d].paragraphs[%d]", ai, pi);
            if (!cJSON_IsObject(para))
                return qr_err_set("%s: %s: expected an object, got %s", label, path, json_type(para));
            const char *ctx0 = get_str(para, "context", label, path);
            if (!ctx0) return QR_ERR;
            const cJSON *qas = get_arr(para, "qas", label, path);
            if (!qas) return QR_ERR;
            const char *ctx = arena_dup(s, ctx0);
            int qi = 0;
            for (const cJSON *qa = qas->child; qa; qa = qa->next, qi++) {
                snprintf(path, sizeof path, "data[%d].paragraphs[%d].qas[%d]", ai, pi, qi);
                if (!cJSON_IsObject(qa))
                    return qr_err_set("%s: %s: expected an object, got %s", label, path, json_type(qa));
                const char *id = get_str(qa, "id", label, path);
                const char *question = id ? get_str(qa, "question", label, path) : NULL;
                if (!question) return QR_ERR;
                const cJSON *answers = get_arr(qa, "answers", label, path);
                if (!answers) return QR_ERR;

                /* Check every answer's structure first: a structural error
                 * is fatal even in a question that would be skipped. */
                int mi = 0;
                for (const cJSON *a = answers->child; a; a = a->next, mi++) {
                    char apath[192];
                    snprintf(apath, sizeof apath, "%s.answers[%d]", path, mi);
                    if (!cJSON_IsObject(a))
                        return qr_err_set("%s: %s: expected an object, got %s", label, apath, json_type(a));
                    if (!get_str(a, "text", label, apath)) return QR_ERR;
                    const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "answer_start");
                    if (!cJSON_IsNumber(st))
                        return qr_err_set("%s: %s: 'answer_start' missing or not a number (got %s)", label,
                                          apath, json_type(st));
                }

                const char *why = NULL;
                if (!id[0]) why = "empty id";
                else if (only_space(question)) why = "empty question";
                if (why) {
                    warnf(s, "%s: %s: skipped: %s", label, path, why);
                    s->n_skipped++;
                    continue;
                }

                int first = s->n_ans;
                mi = 0;
                for (const cJSON *a = answers->child; a; a = a->next, mi++) {
                    const char *text = cJSON_GetObjectItemCaseSensitive(a, "text")->valuestring;
                    double start = cJSON_GetObjectItemCaseSensitive(a, "answer_start")->valuedouble;
                    if (!text[0]) {
                        warnf(s, "%s: %s.answers[%d] (id %s): empty answer text, answer dropped", label,
                              path, mi, id);
                        continue;
                    }
                    long at = locate(ctx, text, start);
                    if (at > 0x7fffffffL) at = -1; /* not representable as int */
                    if (at < 0) {
                        warnf(s, "%s: %s.answers[%d] (id %s): text '%.60s' not in the context, answer dropped",
                              label, path, mi, id, text);
                        continue;
                    }
                    if ((double)at != start) {
                        warnf(s, "%s: %s.answers[%d] (id %s): text '%.60s' not at answer_start %g, moved to %ld",
                              label, path, mi, id, text, start, at);
                    }
                    if (s->n_ans == s->cap_ans) {
                        s->cap_ans = s->cap_ans ? 2 * s->cap_ans : 1024;
                        s->ans = qr_xrealloc(s->ans, (size_t)s->cap_ans * sizeof *s->ans);
                    }
                    s->ans[s->n_ans].text = arena_dup(s, text);
                    s->ans[s->n_ans].answer_start = (int)at;
                    s->n_ans++;
                }
                if (s->n_ans == first) {
                    warnf(s, "%s: %s (id %s): skipped: no usable answer", label, path, id);
                    s->n_skipped++;
                    continue;
                }
                id = arena_dup(s, id);
                if (!id_insert(s, id)) {
                    warnf(s, "%s: %s: skipped: duplicate id %s", label, path, id);
                    s->n_skipped++;
                    s->n_ans = first;
                    continue;
                }
                if (s->n == s->cap) {
                    s->cap = s->cap ? 2 * s->cap : 1024;
                    s->ex = qr_xrealloc(s->ex, (size_t)s->cap * sizeof *s->ex);
                    s->first_ans = qr_xrealloc(s->first_ans, (size_t)s->cap * sizeof *s->first_ans);
                }
                qr_squad_example *e = &s->ex[s->n];
                e->id = id;
                e->title = title;
                e->question = arena_dup(s, question);
                e->context = ctx;
                e->n_answers = s->n_ans - first;
                e->answers = NULL; /* set once s->ans stops moving */
                s->first_ans[s->n] = first;
                s->n++;
            }
        }
    }
    return QR_OK;
}

qr_squad *qr_squad_load_mem(const char *buf, size_t len, const char *label) {
    if (!label) label = "<memory>";
    if (!buf) {
        if (len) {
            qr_err_set("%s: no buffer", label);
            return NULL;
        }
        buf = "";
    }
    /* cJSON gets a NUL-terminated copy: buf may not be terminated, and a
     * NUL inside the buffer must not end the document silently. */
    if (memchr(buf, 0, len)) {
        size_t at = (size_t)((const char *)memchr(buf, 0, len) - buf);
        qr_err_set("%s: invalid JSON: NUL byte at byte %zu", label, at);
        return NULL;
    }
    char *copy = qr_xmalloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 0);
    if (!root) {
        parse_error(copy, len, end ? (size_t)(end - copy) : 0, label);
        free(copy);
        return NULL;
    }
    const char *p = end;
    while (p < copy + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p < copy + len) {
        qr_err_set("%s: invalid JSON: unexpected data after the document at byte %zu", label,
                   (size_t)(p - copy));
        cJSON_Delete(root);
        free(copy);
        return NULL;
    }
    qr_squad *s = qr_xcalloc(1, sizeof *s);
    int rc = load_tree(s, root, label);
    cJSON_Delete(root);
    free(copy);
    free(s->ids);
    s->ids = NULL;
    if (rc != QR_OK) {
        qr_squad_free(s);
        return NULL;
    }
    for (int i = 0; i < s->n; i++) s->ex[i].answers = s->ans + s->first_ans[i];
    free(s->first_ans);
    s->first_ans = NULL;
    return s;
}

qr_squad *qr_squad_load(const char *path) {
    size_t len;
    char *buf = qr_read_file(path, &len);
    if (!buf) return NULL;
    qr_squad *s = qr_squad_load_mem(buf, len, path);
    free(buf);
    return s;
}

void qr_squad_free(qr_squad *s) {
    if (!s) return;
    for (blk *b = s->blocks, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    for (int i = 0; i < s->n_warn; i++) free(s->warn[i]);
    free(s->warn);
    free(s->ex);
    free(s->ans);
    free(s->ids);
    free(s->first_ans);
    free(s);
}

int qr_squad_count(const qr_squad *s) { return s ? s->n : 0; }

const qr_squad_example *qr_squad_at(const qr_squad *s, int i) {
    return s && i >= 0 && i < s->n ? &s->ex[i] : NULL;
}

int qr_squad_n_skipped(const qr_squad *s) { return s ? s->n_skipped : 0; }
int qr_squad_n_warnings(const qr_squad *s) { return s ? s->n_warn : 0; }

const char *qr_squad_warning(const qr_squad *s, int i) {
    return s && i >= 0 && i < s->n_warn ? s->warn[i] : NULL;
}
