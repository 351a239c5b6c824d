/* tokenizer.c - byte-level BPE: special-token split, GPT-2 / SmolLM2
 * pre-tokenization (a hand-written equivalent of the regex, on utf8proc
 * classes), merge by rank with a heap, decode through the byte table.
 * See tokenizer.h for the exact rules. */
#define _POSIX_C_SOURCE 200809L
#include "tokenizer.h"

#include "qr.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- the tokenizer ---------------------------------------------------- */

typedef struct {
    uint64_t key;  /* (left id << 32) | right id; MERGE_EMPTY = free slot */
    int32_t rank;  /* index in the merge list: lower merges first */
    int32_t res;   /* id of the merged token */
} merge_slot;

#define MERGE_EMPTY UINT64_MAX

struct qr_tokenizer {
    int n_vocab;
    char **tok;          /* [n_vocab] NUL-terminated; NULL for an id no string has */
    uint32_t *tok_len;   /* [n_vocab] */
    uint8_t *special;    /* [n_vocab] 1 = split out of the text whole */
    int32_t *vslot;      /* vocab hash (open addressing): ids, -1 = free */
    uint32_t vmask;      /* capacity - 1 (capacity a power of two) */
    merge_slot *mslot;   /* merge hash */
    uint32_t mmask;
    int32_t byte_id[256];    /* id of the one-character token of each byte, -1 if absent */
    char *dec;               /* decoded bytes of id i: dec[dec_off[i] .. dec_off[i+1]) */
    size_t *dec_off;         /* [n_vocab + 1] */
    int32_t *spec;           /* special ids, longest string first */
    int n_spec;
    uint8_t spec_first[256]; /* 1 if some special token starts with this byte */
    qr_pretok pre;
    int32_t bos, eos;
};

/* GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes get U+0100.. in byte order, so every byte
 * is a visible character (space -> U+0120 'Ġ', '\n' -> U+010A 'Ċ'). */
static int byte_is_self(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

static uint32_t byte_cp(int b) {
    if (byte_is_self(b)) return (uint32_t)b;
    int n = 0;
    for (int x = 0; x < b; x++) n += !byte_is_self(x);
    return 256u + (uint32_t)n;
}

#define BYTE_CP_MAX 0x144 /* byte_cp() < BYTE_CP_MAX */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t hash_pair(uint64_t key) { return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32); }

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int32_t vocab_find(const qr_tokenizer *t, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & t->vmask;; h = (h + 1) & t->vmask) {
        int32_t id = t->vslot[h];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(t->tok[id], s, n) == 0) return id;
    }
}

/* Insert or overwrite (a later id with the same string wins, as in HF). */
static void vocab_put(qr_tokenizer *t, int32_t id) {
    const char *s = t->tok[id];
    size_t n = t->tok_len[id];
    for (uint32_t h = hash_bytes(s, n) & t->vmask;; h = (h + 1) & t->vmask) {
        int32_t o = t->vslot[h];
        if (o < 0 || (t->tok_len[o] == n && memcmp(t->tok[o], s, n) == 0)) {
            t->vslot[h] = id;
            return;
        }
    }
}

static inline const merge_slot *merge_find(const qr_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        const merge_slot *m = &t->mslot[h];
        if (m->key == key) return m;
        if (m->key == MERGE_EMPTY) return NULL;
    }
}

static void merge_put(qr_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t res) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        merge_slot *m = &t->mslot[h];
        if (m->key == key || m->key == MERGE_EMPTY) {
            m->key = key;
            m->rank = rank;
            m->res = res;
            return;
        }
    }
}

static int put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#define CP_INVALID UINT32_MAX

/* One code point from s[0..n), n >= 1: its byte length (1..4); *cp =
 * CP_INVALID for a byte that does not start a well-formed sequence (then
 * the length is 1 and the next call resumes at the following byte). */
static inline int utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    *cp = CP_INVALID;
    if (b < 0xC2 || b > 0xF4) return 1;
    if (b < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 1;
        *cp = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b == 0xE0) lo = 0xA0;
    else if (b == 0xED) hi = 0x9F; /* no surrogates */
    else if (b == 0xF0) lo = 0x90;
    else if (b == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    if (n < 2 || s[1] < lo || s[1] > hi) return 1;
    if (b < 0xF0) {
        if (n < 3 || (s[2] & 0xC0) != 0x80) return 1;
        *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 1;
    *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

/* Fill t->dec / dec_off: special tokens decode to their own bytes, others
 * through the inverse byte table; a token with a character outside the
 * table decodes to its own UTF-8 bytes (what HF's ByteLevel decoder does). */
static void build_decode(qr_tokenizer *t) {
    int16_t cp_byte[BYTE_CP_MAX];
    for (int i = 0; i < BYTE_CP_MAX; i++) cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_byte[byte_cp(b)] = (int16_t)b;
    size_t total = 0;
    for (int i = 0; i < t->n_vocab; i++) total += t->tok_len[i];
    t->dec = qr_xmalloc(total + 1);
    t->dec_off = qr_xmalloc(sizeof(size_t) * ((size_t)t->n_vocab + 1));
    size_t o = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        t->dec_off[i] = o;
        const uint8_t *s = (const uint8_t *)t->tok[i];
        size_t n = t->tok_len[i], start = o;
        int raw = t->special[i];
        for (size_t k = 0; k < n && !raw;) {
            uint32_t cp;
            k += (size_t)utf8_next(s + k, n - k, &cp);
            if (cp >= BYTE_CP_MAX || cp_byte[cp] < 0) raw = 1;
            else t->dec[o++] = (char)cp_byte[cp];
        }
        if (raw) {
            o = start;
            if (n) memcpy(t->dec + o, s, n);
            o += n;
        }
    }
    t->dec_off[t->n_vocab] = o;
}

static int cmp_spec_len_desc(const void *a, const void *b, void *ctx) {
    const qr_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tok_len[x] != t->tok_len[y]) return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Insertion sort: a handful of specials, and qsort_r is not portable C11. */
static void sort_specials(qr_tokenizer *t) {
    for (int i = 1; i < t->n_spec; i++) {
        int32_t v = t->spec[i];
        int j = i;
        while (j > 0 && cmp_spec_len_desc(&t->spec[j - 1], &v, t) > 0) {
            t->spec[j] = t->spec[j - 1];
            j--;
        }
        t->spec[j] = v;
    }
}

/* Shared constructor over n_tokens strings (both callers make sure none is
 * NULL: the ids of a vocab.json are dense). mlabel/mline name merges in messages: "vocab.bpe:
 * line 7" when mline is given, else "merges[5]". The strings are copied. */
static qr_tokenizer *build(const char *const *tokens, int n_tokens, const char *const *merges, int n_merges,
                           const int32_t *types, qr_pretok pre, const char *mlabel, const int *mline) {
    if (n_tokens <= 0 || n_tokens > (1 << 30) || n_merges < 0 || (n_merges > 0 && !merges) || !tokens) {
        qr_err_set("tokenizer: expected n_tokens in [1, 2^30] and n_merges >= 0 with arrays, got %d tokens, "
                   "%d merges",
                   n_tokens, n_merges);
        return NULL;
    }
    if (pre != QR_PRE_GPT2 && pre != QR_PRE_SMOLLM) {
        qr_err_set("tokenizer: unknown pre-tokenizer %d (expected QR_PRE_GPT2 or QR_PRE_SMOLLM)", (int)pre);
        return NULL;
    }
    qr_tokenizer *t = qr_xcalloc(1, sizeof *t);
    t->n_vocab = n_tokens;
    t->pre = pre;
    t->bos = t->eos = -1;
    t->tok = qr_xcalloc((size_t)n_tokens, sizeof(char *));
    t->tok_len = qr_xcalloc((size_t)n_tokens, sizeof(uint32_t));
    t->special = qr_xcalloc((size_t)n_tokens, 1);
    uint32_t vcap = pow2_at_least(2 * (uint64_t)n_tokens);
    t->vmask = vcap - 1;
    t->vslot = qr_xmalloc(sizeof(int32_t) * vcap);
    memset(t->vslot, 0xFF, sizeof(int32_t) * vcap);
    for (int i = 0; i < n_tokens; i++) {
        if (!tokens[i]) continue;
        size_t n = strlen(tokens[i]);
        if (n > UINT32_MAX / 2) {
            qr_err_set("tokenizer: tokens[%d]: %zu bytes, expected a short string", i, n);
            qr_tokenizer_free(t);
            return NULL;
        }
        t->tok[i] = qr_xstrdup(tokens[i]);
        t->tok_len[i] = (uint32_t)n;
        if (n) vocab_put(t, i);
        int ty = types ? types[i] : QR_TOKEN_NORMAL;
        if ((ty == QR_TOKEN_CONTROL || ty == QR_TOKEN_USER_DEFINED) && n > 0) t->special[i] = 1;
    }
    /* Bytes -> one-character tokens. */
    for (int b = 0; b < 256; b++) {
        char u[4];
        int k = put_utf8(byte_cp(b), u);
        t->byte_id[b] = vocab_find(t, u, (size_t)k);
    }
    /* Merges -> (left id, right id) -> (rank, merged id). */
    uint32_t mcap = pow2_at_least(2 * (uint64_t)n_merges + 2);
    t->mmask = mcap - 1;
    t->mslot = qr_xmalloc(sizeof(merge_slot) * mcap);
    for (uint32_t i = 0; i < mcap; i++) t->mslot[i].key = MERGE_EMPTY;
    char *buf = NULL;
    size_t cap = 0;
    for (int r = 0; r < n_merges; r++) {
        const char *m = merges[r];
        char where[512];
        if (mline)
            snprintf(where, sizeof where, "%s: line %d", mlabel, mline[r]);
        else
            snprintf(where, sizeof where, "%s[%d]", mlabel, r);
        const char *sp = m ? strchr(m, ' ') : NULL;
        if (!sp || sp == m || !sp[1] || strchr(sp + 1, ' ')) {
            qr_err_set("%s: merge '%s': expected two tokens separated by one space", where, m ? m : "(null)");
            qr_tokenizer_free(t);
            free(buf);
            return NULL;
        }
        size_t la = (size_t)(sp - m), lb = strlen(sp + 1);
        if (la + lb + 1 > cap) {
            cap = 2 * (la + lb + 1);
            buf = qr_xrealloc(buf, cap);
        }
        memcpy(buf, m, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t a = vocab_find(t, m, la), b = vocab_find(t, sp + 1, lb), c = vocab_find(t, buf, la + lb);
        if (a < 0 || b < 0 || c < 0) {
            buf[la + lb] = 0;
            qr_err_set("%s: merge '%s': %s '%.*s' is not in the vocabulary", where, m,
                       a < 0 ? "left part" : b < 0 ? "right part" : "merged token",
                       a < 0 ? (int)la : b < 0 ? (int)lb : (int)(la + lb), a < 0 ? m : b < 0 ? sp + 1 : buf);
            qr_tokenizer_free(t);
            free(buf);
            return NULL;
        }
        merge_put(t, a, b, r, c);
    }
    free(buf);
    /* Special tokens, longest first so that a longer one wins at a position. */
    for (int i = 0; i < n_tokens; i++) t->n_spec += t->special[i];
    t->spec = qr_xmalloc(sizeof(int32_t) * (size_t)(t->n_spec + 1));
    t->n_spec = 0;
    for (int i = 0; i < n_tokens; i++)
        if (t->special[i]) {
            uint8_t b0 = (uint8_t)t->tok[i][0];
            /* Starting with a continuation byte it could only match inside a
             * character: never split there. */
            if ((b0 & 0xC0) == 0x80) continue;
            t->spec[t->n_spec++] = i;
            t->spec_first[b0] = 1;
        }
    sort_specials(t);
    build_decode(t);
    return t;
}

qr_tokenizer *qr_tokenizer_new(const char *const *tokens, int n_tokens, const char *const *merges, int n_merges,
                               const int32_t *token_types, qr_pretok pre) {
    if (tokens)
        for (int i = 0; i < n_tokens; i++)
            if (!tokens[i]) {
                qr_err_set("tokenizer: tokens[%d] is NULL, expected a string", i);
                return NULL;
            }
    return build(tokens, n_tokens, merges, n_merges, token_types, pre, "merges", NULL);
}

qr_tokenizer *qr_tokenizer_from_files(const char *vocab_json, const char *merges_txt) {
    size_t vlen = 0, mlen = 0;
    char *vtext = qr_read_file(vocab_json, &vlen);
    if (!vtext) return NULL;
    cJSON *root = cJSON_ParseWithLength(vtext, vlen);
    if (!root || !cJSON_IsObject(root)) {
        if (!root) {
            const char *e = cJSON_GetErrorPtr();
            size_t off = (e && e >= vtext && e <= vtext + vlen) ? (size_t)(e - vtext) : 0;
            int line = 1;
            for (size_t i = 0; i < off; i++) line += vtext[i] == '\n';
            qr_err_set("%s: invalid JSON near byte %zu (line %d); expected an object {\"token\": id, ...}",
                       vocab_json, off, line);
        } else {
            qr_err_set("%s: expected a JSON object {\"token\": id, ...} at the top level", vocab_json);
        }
        cJSON_Delete(root);
        free(vtext);
        return NULL;
    }
    free(vtext);
    /* Hugging Face's vocab.json holds the ids 0 .. n-1 of its n entries,
     * each once: an id must be an integer below the number of entries, so
     * the tables sized by the vocabulary are bounded by the file's own
     * size (an id of 9e8 in a two-entry file is refused, not allocated). */
    int n_vocab = cJSON_GetArraySize(root);
    if (n_vocab == 0) {
        qr_err_set("%s: expected a non-empty object {\"token\": id, ...}", vocab_json);
        cJSON_Delete(root);
        return NULL;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        double v = it->valuedouble;
        if (!cJSON_IsNumber(it) || v < 0 || v >= (double)n_vocab || v != (double)(int)v) {
            const char *what = !cJSON_IsNumber(it)                                 ? "a non-number"
                               : v > -1e18 && v < 1e18 && v != (double)(long long)v ? "a fraction"
                                                                                    : "an id out of range";
            qr_err_set("%s: entry \"%s\": expected an integer token id in [0, %d) (the ids of a vocab.json "
                       "with %d entries are 0..%d, each once), got %s",
                       vocab_json, it->string ? it->string : "?", n_vocab, n_vocab, n_vocab - 1, what);
            cJSON_Delete(root);
            return NULL;
        }
    }
    const char **tokens = qr_xcalloc((size_t)n_vocab, sizeof(char *));
    for (cJSON *it = root->child; it; it = it->next) {
        int id = (int)it->valuedouble;
        if (tokens[id]) {
            qr_err_set("%s: id %d is given to both \"%s\" and \"%s\"; expected distinct ids", vocab_json, id,
                       tokens[id], it->string);
            free(tokens);
            cJSON_Delete(root);
            return NULL;
        }
        tokens[id] = it->string;
    }
    char *mtext = qr_read_file(merges_txt, &mlen);
    if (!mtext) {
        free(tokens);
        cJSON_Delete(root);
        return NULL;
    }
    /* Lines "a b"; a first line "#version..." and blank lines are skipped. */
    int n_lines = 1;
    for (size_t i = 0; i < mlen; i++) n_lines += mtext[i] == '\n';
    const char **merges = qr_xmalloc(sizeof(char *) * (size_t)n_lines);
    int *mline = qr_xmalloc(sizeof(int) * (size_t)n_lines);
    int n_merges = 0, line = 0;
    for (char *p = mtext; p < mtext + mlen;) {
        char *e = memchr(p, '\n', (size_t)(mtext + mlen - p));
        if (!e) e = mtext + mlen;
        line++;
        char *end = e;
        if (end > p && end[-1] == '\r') end--;
        *end = 0;
        if (!(line == 1 && strncmp(p, "#version", 8) == 0) && end > p) {
            merges[n_merges] = p;
            mline[n_merges++] = line;
        }
        p = e + 1;
    }
    qr_tokenizer *t = build(tokens, n_vocab, merges, n_merges, NULL, QR_PRE_GPT2, merges_txt, mline);
    if (t) {
        int32_t eot = vocab_find(t, "<|endoftext|>", 13);
        if (eot >= 0) {
            /* GPT-2's only special token: HF splits it out of the text. */
            t->special[eot] = 1;
            t->spec = qr_xrealloc(t->spec, sizeof(int32_t) * (size_t)(t->n_spec + 1));
            t->spec[t->n_spec++] = eot;
            t->spec_first['<'] = 1;
            sort_specials(t);
            t->bos = t->eos = eot;
        }
    }
    free(merges);
    free(mline);
    free(mtext);
    free(tokens);
    cJSON_Delete(root);
    return t;
}

void qr_tokenizer_free(qr_tokenizer *t) {
    if (!t) return;
    if (t->tok)
        for (int i = 0; i < t->n_vocab; i++) free(t->tok[i]);
    free(t->tok);
    free(t->tok_len);
    free(t->special);
    free(t->vslot);
    free(t->mslot);
    free(t->dec);
    free(t->dec_off);
    free(t->spec);
    free(t);
}

/* ---- encode ------------------------------------------------------------ */

enum { CL_L = 0, CL_N = 1, CL_WS = 2, CL_OTHER = 3 };

static inline uint8_t cp_class(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) - 'a' < 26) return CL_L;
        if (cp - '0' < 10) return CL_N;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CL_WS;
        return CL_OTHER;
    }
    if (cp == CP_INVALID) return CL_OTHER;
    if (cp == 0x85) return CL_WS; /* NEL: White_Space, but category Cc */
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return CL_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return CL_N;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return CL_WS;
    default: return CL_OTHER;
    }
}

typedef struct {
    int32_t id;
    int32_t prev, next; /* linked list of live symbols; -1 at the ends */
} bpe_sym;

typedef struct {
    int32_t rank, pos; /* ordered by (rank, pos): leftmost among equal ranks */
    int32_t left, right, res;
} bpe_cand;

/* Scratch space for one encode call (so the tokenizer stays const and
 * thread-safe). */
typedef struct {
    int32_t *out;
    size_t n_out, cap_out;
    uint32_t *cpo; /* [m + 1] byte offset of each code point of the segment */
    uint8_t *cls;  /* [m] its class */
    size_t cap_cp;
    bpe_sym *sym;
    bpe_cand *heap;
    size_t cap_sym;
} enc_ctx;

static void out_push(enc_ctx *c, int32_t id) {
    if (c->n_out == c->cap_out) {
        c->cap_out = c->cap_out ? 2 * c->cap_out : 256;
        c->out = qr_xrealloc(c->out, sizeof(int32_t) * c->cap_out);
    }
    c->out[c->n_out++] = id;
}

static inline int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&v, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], v = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        if (l + 1 < *n && cand_less(&h[l + 1], &h[l])) l++;
        if (!cand_less(&h[l], &v)) break;
        h[i] = h[l];
        i = l;
    }
    h[i] = v;
    return top;
}

static inline void try_pair(const qr_tokenizer *t, enc_ctx *c, size_t *nh, int32_t pos) {
    int32_t nx = c->sym[pos].next;
    if (nx < 0) return;
    const merge_slot *m = merge_find(t, c->sym[pos].id, c->sym[nx].id);
    if (m) heap_push(c->heap, nh, (bpe_cand){m->rank, pos, c->sym[pos].id, c->sym[nx].id, m->res});
}

/* BPE on one pre-token s[0..n): bytes -> one-character tokens, then merge
 * the best-ranked adjacent pair until none is in the merge table. A merge
 * adds at most 2 candidates and removes a symbol, so the heap never holds
 * more than 3n. */
static void bpe_piece(const qr_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n) {
    if (n > c->cap_sym) {
        c->cap_sym = n > 2 * c->cap_sym ? n : 2 * c->cap_sym;
        c->sym = qr_xrealloc(c->sym, sizeof(bpe_sym) * c->cap_sym);
        c->heap = qr_xrealloc(c->heap, sizeof(bpe_cand) * 3 * c->cap_sym);
    }
    /* A byte without a token is dropped before merging, as HF's BPE does
     * when there is no unk token (SmolLM2 has none for 0xC0, 0xC1, 0xF1,
     * 0xF2, 0xF5..0xFF and six control characters). */
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        int32_t id = t->byte_id[s[k]];
        if (id < 0) continue;
        c->sym[m] = (bpe_sym){id, (int32_t)m - 1, (int32_t)m + 1};
        m++;
    }
    if (m == 0) return;
    c->sym[m - 1].next = -1;
    if (m == 1) {
        out_push(c, c->sym[0].id);
        return;
    }
    size_t nh = 0;
    for (size_t k = 0; k + 1 < m; k++) try_pair(t, c, &nh, (int32_t)k);
    while (nh > 0) {
        bpe_cand b = heap_pop(c->heap, &nh);
        bpe_sym *l = &c->sym[b.pos];
        /* Stale if the left symbol was merged away (id -1), changed, or its
         * right neighbour is no longer the same token. */
        if (l->id != b.left || l->next < 0 || c->sym[l->next].id != b.right) continue;
        bpe_sym *r = &c->sym[l->next];
        l->id = b.res;
        r->id = -1;
        l->next = r->next;
        if (r->next >= 0) c->sym[r->next].prev = b.pos;
        if (l->prev >= 0) try_pair(t, c, &nh, l->prev);
        try_pair(t, c, &nh, b.pos);
    }
    for (int32_t k = 0; k >= 0; k = c->sym[k].next) out_push(c, c->sym[k].id);
}

/* The GPT-2 regex over code points [i, end) of the current segment, as a
 * scan: at each position the first alternative that matches wins. */
static void gpt2_split(const qr_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t i, size_t end) {
    const uint32_t *o = c->cpo;
    const uint8_t *cl = c->cls;
    while (i < end) {
        size_t j;
        uint8_t b = s[o[i]];
        uint8_t k = cl[i];
        if (b == '\'' && i + 1 < end) {
            /* 's 't 're 've 'm 'll 'd (case-sensitive, ASCII) */
            uint8_t b1 = s[o[i + 1]], b2 = i + 2 < end ? s[o[i + 2]] : 0;
            j = 0;
            if (b1 == 's' || b1 == 't' || b1 == 'm' || b1 == 'd') j = i + 2;
            else if ((b1 == 'r' && b2 == 'e') || (b1 == 'v' && b2 == 'e') || (b1 == 'l' && b2 == 'l')) j = i + 3;
            if (j) goto emit;
        }
        if (k != CL_WS || (b == ' ' && i + 1 < end && cl[i + 1] != CL_WS)) {
            /* ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional
             * ASCII space, then a run of one class. */
            j = k == CL_WS ? i + 1 : i;
            uint8_t run = cl[j];
            while (j < end && cl[j] == run) j++;
        } else {
            /* `\s+(?!\S)` keeps the last space of a run for the next word;
             * `\s+` when that leaves nothing (a lone space before \S). */
            j = i;
            while (j < end && cl[j] == CL_WS) j++;
            if (j < end && j - 1 > i) j--;
        }
    emit:
        bpe_piece(t, c, s + o[i], o[j] - o[i]);
        i = j;
    }
}

/* Encode a stretch of text with no special tokens in it. */
static void encode_segment(const qr_tokenizer *t, enc_ctx *c, const uint8_t *s, size_t n) {
    if (n == 0) return;
    if (n + 1 > c->cap_cp) {
        c->cap_cp = n + 1;
        c->cpo = qr_xrealloc(c->cpo, sizeof(uint32_t) * c->cap_cp);
        c->cls = qr_xrealloc(c->cls, c->cap_cp);
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = s[i] < 0x80 ? (cp = s[i], 1) : utf8_next(s + i, n - i, &cp);
        c->cpo[m] = (uint32_t)i;
        c->cls[m++] = cp_class(cp);
        i += (size_t)k;
    }
    c->cpo[m] = (uint32_t)n;
    if (t->pre == QR_PRE_GPT2) {
        gpt2_split(t, c, s, 0, m);
        return;
    }
    /* SmolLM2: every \p{N} character alone, the GPT-2 regex in between. */
    for (size_t i = 0; i < m;) {
        if (c->cls[i] == CL_N) {
            bpe_piece(t, c, s + c->cpo[i], c->cpo[i + 1] - c->cpo[i]);
            i++;
        } else {
            size_t e = i;
            while (e < m && c->cls[e] != CL_N) e++;
            gpt2_split(t, c, s, i, e);
            i = e;
        }
    }
}

/* The special token starting at s[0..n), longest first; -1 if none. */
static int32_t match_special(const qr_tokenizer *t, const uint8_t *s, size_t n) {
    for (int k = 0; k < t->n_spec; k++) {
        int32_t id = t->spec[k];
        size_t l = t->tok_len[id];
        if (l <= n && memcmp(s, t->tok[id], l) == 0) return id;
    }
    return -1;
}

int qr_tokenizer_encode(const qr_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids) {
    if (!t || !ids || !n_ids || (!text && len > 0)) return qr_err_set("qr_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX) return qr_err_set("qr_tokenizer_encode: text of %zu bytes, expected < 2^31", len);
    enc_ctx c = {0};
    const uint8_t *s = (const uint8_t *)text;
    size_t seg = 0;
    for (size_t i = 0; i < len;) {
        int32_t sp;
        if (t->spec_first[s[i]] && (sp = match_special(t, s + i, len - i)) >= 0) {
            encode_segment(t, &c, s + seg, i - seg);
            out_push(&c, sp);
            i += t->tok_len[sp];
            seg = i;
        } else {
            i++;
        }
    }
    encode_segment(t, &c, s + seg, len - seg);
    free(c.cpo);
    free(c.cls);
    free(c.sym);
    free(c.heap);
    if (c.n_out > (size_t)INT32_MAX) {
        free(c.out);
        return qr_err_set("qr_tokenizer_encode: more than 2^31 tokens");
    }
    *ids = c.out ? c.out : qr_xmalloc(sizeof(int32_t));
    *n_ids = (int)c.n_out;
    return QR_OK;
}

/* ---- decode and accessors ------------------------------------------------ */

char *qr_tokenizer_decode(const qr_tokenizer *t, const int32_t *ids, int n, size_t *len) {
    if (!t || n < 0 || (!ids && n > 0)) {
        qr_err_set("qr_tokenizer_decode: expected a tokenizer and ids[n] with n >= 0, got n = %d", n);
        return NULL;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !t->tok[ids[i]]) {
            qr_err_set("qr_tokenizer_decode: ids[%d] = %d: expected a token id in [0, %d)%s", i, ids[i],
                       t->n_vocab, ids[i] >= 0 && ids[i] < t->n_vocab ? " that has a string" : "");
            return NULL;
        }
        total += t->dec_off[ids[i] + 1] - t->dec_off[ids[i]];
    }
    char *out = qr_xmalloc(total + 1);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        size_t a = t->dec_off[ids[i]], l = t->dec_off[ids[i] + 1] - a;
        memcpy(out + o, t->dec + a, l);
        o += l;
    }
    out[o] = 0;
    if (len) *len = o;
    return out;
}

int qr_tokenizer_n_vocab(const qr_tokenizer *t) { return t ? t->n_vocab : 0; }

int32_t qr_tokenizer_token_id(const qr_tokenizer *t, const char *token) {
    if (!t || !token || !*token) return -1;
    return vocab_find(t, token, strlen(token));
}

const char *qr_tokenizer_token_str(const qr_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->tok[id];
}

int qr_tokenizer_is_special(const qr_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->special[id];
}

int32_t qr_tokenizer_byte_token(const qr_tokenizer *t, uint8_t byte) { return t ? t->byte_id[byte] : -1; }

qr_pretok qr_tokenizer_pretok(const qr_tokenizer *t) { return t ? t->pre : QR_PRE_GPT2; }

void qr_tokenizer_set_special(qr_tokenizer *t, int32_t bos, int32_t eos) {
    if (!t) return;
    t->bos = bos;
    t->eos = eos;
}

int32_t qr_tokenizer_bos(const qr_tokenizer *t) { return t ? t->bos : -1; }
int32_t qr_tokenizer_eos(const qr_tokenizer *t) { return t ? t->eos : -1; }
