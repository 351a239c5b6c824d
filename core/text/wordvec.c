/* wordvec.c - the word-level resources of the attacks (see wordvec.h): the
 * .qrwv loader (every size checked against the file's own before anything
 * is allocated), the POS table, exact nearest neighbours (OpenBLAS sgemv,
 * finalists rescored in double), TextFooler's stop words, and the provider
 * of the ABI 1.3 host services (qr_wordvec_serve). */
#define _POSIX_C_SOURCE 200809L
#include "wordvec.h"

#include "plugin.h"
#include "qr.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "wordvec.c reads the little-endian float32 vectors in place: a big-endian host needs a byte swap"
#endif

#define WORD_BYTES_MAX (QR_WORD_MAX - 1) /* 63 */
#define POS_LINE_MAX (WORD_BYTES_MAX + 7) /* "word\tnvar\n" at most: the POS file's bound per word */
#define NORM_TOL 1e-3

struct qr_wordvec {
    char *path, *pos_path;
    void *bytes; /* the whole file: mapped (mapped = 1) or malloc'd */
    size_t size;
    int mapped;
    int n, dim;
    uint32_t crc;
    const char **words; /* n pointers into the word block */
    const float *vec;   /* (n, dim), unit rows, inside bytes */
    int32_t *slot;      /* open-addressing table of word indices, -1 = empty */
    uint32_t mask;      /* its size - 1 (a power of two >= 2n) */
    uint8_t *pos;       /* n QR_POS_* masks, or NULL */
};

/* TextAttack's textfooler_jin_2019 stop words (Jin et al. 2020's list),
 * sorted by strcmp; scripts/attacks/stopwords_textfooler.txt holds the same
 * (tests/test_wordvec.c checks). */
static const char *const stopwords[] = {
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "ain", "all", "almost",
    "alone", "along", "already", "also", "although", "am", "among", "amongst", "an", "and", "another", "any",
    "anyhow", "anyone", "anything", "anyway", "anywhere", "are", "aren", "aren't", "around", "as", "at",
    "back", "been", "before", "beforehand", "behind", "being", "below", "beside", "besides", "between",
    "beyond", "both", "but", "by", "can", "cannot", "could", "couldn", "couldn't", "d", "didn", "didn't",
    "doesn", "doesn't", "don", "don't", "down", "due", "during", "either", "else", "elsewhere", "empty",
    "enough", "even", "ever", "everyone", "everything", "everywhere", "except", "first", "for", "former",
    "formerly", "from", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "he", "hence", "her", "here",
    "hereafter", "hereby", "herein", "hereupon", "hers", "herself", "him", "himself", "his", "how", "however",
    "hundred", "i", "if", "in", "indeed", "into", "is", "isn", "isn't", "it", "it's", "its", "itself", "just",
    "latter", "latterly", "least", "ll", "may", "me", "meanwhile", "mightn", "mightn't", "mine", "more",
    "moreover", "most", "mostly", "must", "mustn", "mustn't", "my", "myself", "namely", "needn", "needn't",
    "neither", "never", "nevertheless", "next", "no", "nobody", "none", "noone", "nor", "not", "nothing",
    "now", "nowhere", "o", "of", "off", "on", "once", "one", "only", "onto", "or", "other", "others",
    "otherwise", "our", "ours", "ourselves", "out", "over", "per", "please", "s", "same", "shan", "shan't",
    "she", "she's", "should've", "shouldn", "shouldn't", "somehow", "something", "sometime", "somewhere",
    "such", "t", "than", "that", "that'll", "the", "their", "theirs", "them", "themselves", "then", "thence",
    "there", "thereafter", "thereby", "therefore", "therein", "thereupon", "these", "they", "this", "those",
    "through", "throughout", "thru", "thus", "to", "too", "toward", "towards", "under", "unless", "until",
    "up", "upon", "used", "ve", "was", "wasn", "wasn't", "we", "were", "weren", "weren't", "what", "whatever",
    "when", "whence", "whenever", "where", "whereafter", "whereas", "whereby", "wherein", "whereupon",
    "wherever", "whether", "which", "while", "whither", "who", "whoever", "whole", "whom", "whose", "why",
    "with", "within", "without", "won", "won't", "would", "wouldn", "wouldn't", "y", "yet", "you", "you'd",
    "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves",
};
#define N_STOPWORDS ((int)(sizeof stopwords / sizeof stopwords[0]))

static qr_wordvec *served; /* the one qr_wordvec_serve gave the host, or NULL */

/* ------------------------------------------------------------------ */
/* CRC-32 and the word table                                           */
/* ------------------------------------------------------------------ */

uint32_t qr_wordvec_crc32(uint32_t crc, const void *data, size_t n) {
    /* zlib's CRC-32, four bits at a time (a 16-entry table: no init step) */
    static const uint32_t t[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
                                   0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                   0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return ~crc;
}

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* the index of exactly s, or -1 */
static int find_exact(const qr_wordvec *wv, const char *s) {
    for (uint32_t h = fnv1a(s) & wv->mask;; h = (h + 1) & wv->mask) {
        int32_t i = wv->slot[h];
        if (i < 0) return -1;
        if (strcmp(wv->words[i], s) == 0) return i;
    }
}

int qr_wordvec_find(const qr_wordvec *wv, const char *word) {
    if (!wv || !word) return -1;
    int i = find_exact(wv, word);
    if (i >= 0) return i;
    char low[QR_WORD_MAX];
    size_t len = strlen(word);
    if (len > WORD_BYTES_MAX) return -1;
    int changed = 0;
    for (size_t k = 0; k <= len; k++) {
        char c = word[k];
        low[k] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        changed |= low[k] != c;
    }
    return changed ? find_exact(wv, low) : -1;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */
/* ------------------------------------------------------------------ */

static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Check the bytes of wv (size, bytes set) and build its tables. QR_ERR +
 * message naming `name`, the field and the bound. */
static int parse(qr_wordvec *wv, const char *name) {
    const uint8_t *b = wv->bytes;
    size_t size = wv->size;
    if (size < QR_WORDVEC_HEADER)
        return qr_err_set("%s: %zu bytes: too short for the %d-byte header of a word-vector file (.qrwv)", name, size,
                          QR_WORDVEC_HEADER);
    if (memcmp(b, "QRWV", 4) != 0)
        return qr_err_set("%s: magic: expected \"QRWV\" (a qrun word-vector file, scripts/setup_attacks.sh), got "
                          "bytes %02x %02x %02x %02x",
                          name, b[0], b[1], b[2], b[3]);
    uint32_t version = rd32(b + 4), n = rd32(b + 8), dim = rd32(b + 12), crc = rd32(b + 24), reserved = rd32(b + 28);
    uint64_t wbytes = rd64(b + 16);
    size_t after = size - QR_WORDVEC_HEADER;
    if (version != QR_WORDVEC_VERSION)
        return qr_err_set("%s: header field version = %u: this qrun reads version %d (rebuild it with "
                          "scripts/setup_attacks.sh)",
                          name, version, QR_WORDVEC_VERSION);
    if (dim < 1 || dim > QR_WORDVEC_DIM_MAX)
        return qr_err_set("%s: header field dim = %u: expected 1..%d", name, dim, QR_WORDVEC_DIM_MAX);
    if (n < 1) return qr_err_set("%s: header field n_words = 0: expected at least 1", name);
    if (wbytes > after)
        return qr_err_set("%s: header field words_bytes = %llu exceeds the %zu bytes after the %d-byte header "
                          "(truncated or corrupt)",
                          name, (unsigned long long)wbytes, after, QR_WORDVEC_HEADER);
    if (n > wbytes / 2) /* every word takes at least 2 bytes: one byte and its NUL */
        return qr_err_set("%s: header field n_words = %u: a %llu-byte word block holds at most %llu words (2 bytes "
                          "each at least)",
                          name, n, (unsigned long long)wbytes, (unsigned long long)(wbytes / 2));
    uint64_t pad = (4 - wbytes % 4) % 4, vbytes = (uint64_t)n * dim * 4;
    if (vbytes > after - wbytes)
        return qr_err_set("%s: header fields n_words = %u x dim = %u: the vectors need %llu bytes, the file has %llu "
                          "after the header and the word block (truncated)",
                          name, n, dim, (unsigned long long)vbytes, (unsigned long long)(after - wbytes));
    uint64_t want = QR_WORDVEC_HEADER + wbytes + pad + vbytes;
    if (want != size)
        return qr_err_set("%s: size %zu bytes, expected %llu for n_words = %u, dim = %u and words_bytes = %llu "
                          "(%s)",
                          name, size, (unsigned long long)want, n, dim, (unsigned long long)wbytes,
                          size < want ? "truncated" : "trailing bytes");
    if (reserved != 0) return qr_err_set("%s: header field reserved = %u: expected 0", name, reserved);
    uint32_t got = qr_wordvec_crc32(0, b + QR_WORDVEC_HEADER, after);
    if (got != crc)
        return qr_err_set("%s: header field crc32 = %08x, the bytes after the header give %08x (corrupt)", name, crc,
                          got);
    if (n > INT32_MAX / 4) return qr_err_set("%s: header field n_words = %u: expected at most %d", name, n, INT32_MAX / 4);

    /* the word block: n words, allocations bounded by n <= words_bytes / 2 */
    const char *blk = (const char *)b + QR_WORDVEC_HEADER;
    wv->n = (int)n;
    wv->dim = (int)dim;
    wv->crc = crc;
    wv->words = qr_xmalloc(n * sizeof *wv->words);
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (off >= wbytes)
            return qr_err_set("%s: header field n_words = %u, but the word block ends after %u words", name, n, i);
        const char *w = blk + off, *z = memchr(w, 0, wbytes - off);
        if (!z) return qr_err_set("%s: word %u (block byte %llu): no NUL before the block ends", name, i,
                                  (unsigned long long)off);
        size_t len = (size_t)(z - w);
        if (len < 1 || len > WORD_BYTES_MAX)
            return qr_err_set("%s: word %u (block byte %llu): %zu bytes, expected 1..%d", name, i,
                              (unsigned long long)off, len, WORD_BYTES_MAX);
        for (size_t k = 0; k < len; k++)
            if ((uint8_t)w[k] <= 0x20 || w[k] == 0x7f)
                return qr_err_set("%s: word %u (block byte %llu): byte 0x%02x at %zu: expected no space or control "
                                  "byte",
                                  name, i, (unsigned long long)off, (uint8_t)w[k], k);
        wv->words[i] = w;
        off += len + 1;
    }
    if (off != wbytes)
        return qr_err_set("%s: header field words_bytes = %llu, but its %u words end at byte %llu", name,
                          (unsigned long long)wbytes, n, (unsigned long long)off);
    for (uint64_t k = 0; k < pad; k++)
        if (blk[wbytes + k]) return qr_err_set("%s: padding byte %llu after the word block is not 0", name, (unsigned long long)k);
    uint32_t cap = 1;
    while (cap < 2 * n) cap <<= 1;
    wv->mask = cap - 1;
    wv->slot = qr_xmalloc(cap * sizeof *wv->slot);
    memset(wv->slot, 0xff, cap * sizeof *wv->slot);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = fnv1a(wv->words[i]) & wv->mask;
        for (; wv->slot[h] >= 0; h = (h + 1) & wv->mask)
            if (strcmp(wv->words[wv->slot[h]], wv->words[i]) == 0)
                return qr_err_set("%s: word %u '%s' repeats word %d", name, i, wv->words[i], wv->slot[h]);
        wv->slot[h] = (int32_t)i;
    }

    /* the vectors: finite, unit */
    wv->vec = (const float *)(b + QR_WORDVEC_HEADER + wbytes + pad);
    for (uint32_t i = 0; i < n; i++) {
        const float *v = wv->vec + (size_t)i * dim;
        double s = 0;
        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite(v[d]))
                return qr_err_set("%s: vector %u ('%s'), component %u is not finite", name, i, wv->words[i], d);
            s += (double)v[d] * v[d];
        }
        if (fabs(sqrt(s) - 1) > NORM_TOL)
            return qr_err_set("%s: vector %u ('%s') has norm %.6f: expected unit vectors (1 +- %g)", name, i,
                              wv->words[i], sqrt(s), NORM_TOL);
    }
    return QR_OK;
}

static qr_wordvec *finish(qr_wordvec *wv, const char *name) {
    wv->path = qr_xstrdup(name);
    if (parse(wv, name) != QR_OK) {
        qr_wordvec_free(wv);
        return NULL;
    }
    return wv;
}

qr_wordvec *qr_wordvec_load(const char *path) {
    if (!path) {
        qr_err_set("word-vector file: path is NULL");
        return NULL;
    }
    if (access(path, F_OK) != 0) {
        qr_err_set("%s: no such word-vector file (.qrwv): %s (the attack resources are built by "
                   "scripts/setup_attacks.sh into $QRUN_CACHE/attacks, default ~/.cache/qrun/attacks)",
                   path, strerror(errno));
        return NULL;
    }
    size_t size;
    void *m = qr_map_file(path, "word-vector (.qrwv)", &size);
    if (!m) return NULL;
    qr_wordvec *wv = qr_xcalloc(1, sizeof *wv);
    wv->bytes = m;
    wv->size = size;
    wv->mapped = 1;
    return finish(wv, path);
}

qr_wordvec *qr_wordvec_from_memory(const void *data, size_t size, const char *name) {
    qr_wordvec *wv = qr_xcalloc(1, sizeof *wv);
    wv->bytes = qr_xmalloc(size ? size : 1);
    if (size) memcpy(wv->bytes, data, size);
    wv->size = size;
    return finish(wv, name ? name : "(memory)");
}

void qr_wordvec_free(qr_wordvec *wv) {
    if (!wv) return;
    if (qr_wordvec_served() == wv) qr_wordvec_serve(NULL);
    if (wv->mapped)
        qr_unmap_file(wv->bytes, wv->size);
    else
        free(wv->bytes);
    free(wv->words);
    free(wv->slot);
    free(wv->pos);
    free(wv->path);
    free(wv->pos_path);
    free(wv);
}

/* ------------------------------------------------------------------ */
/* the POS table                                                       */
/* ------------------------------------------------------------------ */

int qr_wordvec_parse_pos(qr_wordvec *wv, const char *text, size_t len, const char *name) {
    if (!name) name = "(POS table)";
    size_t bound = (size_t)wv->n * POS_LINE_MAX;
    if (len > bound)
        return qr_err_set("%s: %zu bytes: a POS table of %d words is at most %zu bytes (%d per line)", name, len,
                          wv->n, bound, POS_LINE_MAX);
    uint8_t *pos = qr_xmalloc((size_t)wv->n);
    size_t at = 0;
    int line = 0;
    while (at < len) {
        const char *s = text + at, *nl = memchr(s, '\n', len - at);
        size_t l = nl ? (size_t)(nl - s) : len - at;
        if (line >= wv->n) {
            free(pos);
            return qr_err_set("%s: line %d: the embedding %s has %d words, the table has more lines", name, line + 1,
                              wv->path, wv->n);
        }
        const char *tab = memchr(s, '\t', l), *w = wv->words[line];
        size_t wl = strlen(w);
        if (!tab || (size_t)(tab - s) != wl || memcmp(s, w, wl) != 0) {
            free(pos);
            return qr_err_set("%s: line %d: expected \"%s<TAB>letters\" (word %d of %s)", name, line + 1, w, line,
                              wv->path);
        }
        const char *f = tab + 1; /* the letters: "-", or some of "nvar", each once */
        size_t fl = (size_t)(s + l - f);
        uint8_t m = 0;
        int ok = fl > 0;
        if (!(fl == 1 && f[0] == '-'))
            for (size_t a = 0; ok && a < fl; a++) {
                const char *q = f[a] ? strchr("nvar", f[a]) : NULL;
                uint8_t bit = q ? (uint8_t)(1u << (q - "nvar")) : 0;
                ok = bit && !(m & bit);
                m |= bit;
            }
        if (!ok) {
            free(pos);
            return qr_err_set("%s: line %d ('%s'): part of speech '%.*s': expected some of the letters \"nvar\" "
                              "(noun, verb, adjective, adverb), each once, or \"-\"",
                              name, line + 1, w, (int)(fl > 16 ? 16 : fl), f);
        }
        pos[line++] = m;
        at += l + (nl ? 1 : 0);
    }
    if (line != wv->n) {
        free(pos);
        return qr_err_set("%s: %d lines, expected one per word of %s (%d)", name, line, wv->path, wv->n);
    }
    free(wv->pos);
    wv->pos = pos;
    free(wv->pos_path);
    wv->pos_path = qr_xstrdup(name);
    if (served == wv) qr_wordvec_serve(wv); /* the host now has the table */
    return QR_OK;
}

int qr_wordvec_load_pos(qr_wordvec *wv, const char *path) {
    if (!path) return qr_err_set("POS table: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return qr_err_set("%s: cannot open the POS table: %s (built by scripts/setup_attacks.sh beside the "
                          "embedding)",
                          path, strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    size_t bound = (size_t)wv->n * POS_LINE_MAX;
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return qr_err_set("%s: cannot tell the POS table's size (not a regular file?)", path);
    }
    if ((unsigned long)n > bound) { /* before allocating: the bound comes from the embedding */
        fclose(f);
        return qr_err_set("%s: %ld bytes: a POS table of %d words is at most %zu bytes (%d per line)", path, n, wv->n,
                          bound, POS_LINE_MAX);
    }
    char *text = qr_xmalloc((size_t)n + 1);
    size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(text);
        return qr_err_set("%s: short read", path);
    }
    int rc = qr_wordvec_parse_pos(wv, text, (size_t)n, path);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* access                                                              */
/* ------------------------------------------------------------------ */

int qr_wordvec_count(const qr_wordvec *wv) { return wv->n; }
int qr_wordvec_dim(const qr_wordvec *wv) { return wv->dim; }
const char *qr_wordvec_path(const qr_wordvec *wv) { return wv->path; }
const char *qr_wordvec_pos_path(const qr_wordvec *wv) { return wv->pos_path; }
uint32_t qr_wordvec_crc(const qr_wordvec *wv) { return wv->crc; }
size_t qr_wordvec_bytes(const qr_wordvec *wv) { return wv->size; }
const char *qr_wordvec_word(const qr_wordvec *wv, int i) { return i >= 0 && i < wv->n ? wv->words[i] : NULL; }
const float *qr_wordvec_vector(const qr_wordvec *wv, int i) {
    return i >= 0 && i < wv->n ? wv->vec + (size_t)i * wv->dim : NULL;
}
int qr_wordvec_pos(const qr_wordvec *wv, int i) { return wv->pos && i >= 0 && i < wv->n ? wv->pos[i] : -1; }

int qr_wordvec_pos_match(int mode, int a, int b) {
    if (mode == QR_POS_MATCH_ANY) return 1;
    if (a == 0 || b == 0) return a == b; /* WordNet knows neither: a class of its own (names, numbers) */
    if (mode == QR_POS_MATCH_NOUN_VERB) {
        const int nv = QR_POS_NOUN | QR_POS_VERB;
        if (a & nv) a |= nv;
        if (b & nv) b |= nv;
    }
    return (a & b) != 0;
}

double qr_wordvec_cos(const qr_wordvec *wv, int i, int j) {
    const float *a = wv->vec + (size_t)i * wv->dim, *b = wv->vec + (size_t)j * wv->dim;
    double s = 0; /* a float times a float is exact in double: fused or not, the same sum */
    for (int d = 0; d < wv->dim; d++) s += (double)a[d] * b[d];
    return s;
}

/* ------------------------------------------------------------------ */
/* nearest neighbours                                                  */
/* ------------------------------------------------------------------ */

typedef struct {
    double cos;
    int32_t index;
} scored;

static int by_cos_then_index(const void *x, const void *y) {
    const scored *a = x, *b = y;
    if (a->cos != b->cos) return a->cos > b->cos ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* a min-heap of k floats: h[0] is the smallest */
static void sift_down(float *h, int k, int at) {
    for (;;) {
        int l = 2 * at + 1, r = l + 1, m = at;
        if (l < k && h[l] < h[m]) m = l;
        if (r < k && h[r] < h[m]) m = r;
        if (m == at) return;
        float t = h[m];
        h[m] = h[at];
        h[at] = t;
        at = m;
    }
}

int qr_wordvec_neighbours_of(const qr_wordvec *wv, int i, int k, double min_cos, int pos_match,
                             qr_wordvec_hit *out) {
    if (!wv) return qr_err_set("word neighbours: no embedding (NULL)");
    if (i < 0 || i >= wv->n)
        return qr_err_set("%s: word index %d: expected 0..%d", wv->path, i, wv->n - 1);
    if (k < 0) return qr_err_set("%s: neighbours: k = %d: expected >= 0", wv->path, k);
    if (isnan(min_cos)) return qr_err_set("%s: neighbours: min_cos is NaN", wv->path);
    if (pos_match < QR_POS_MATCH_ANY || pos_match > QR_POS_MATCH_NOUN_VERB)
        return qr_err_set("%s: neighbours: pos_match = %d: expected 0 (any), 1 (same) or 2 (noun/verb swap)",
                          wv->path, pos_match);
    if (pos_match != QR_POS_MATCH_ANY && !wv->pos)
        return qr_err_set("%s: neighbours: a part-of-speech match needs the POS table, none is loaded (its "
                          ".pos.tsv, built by scripts/setup_attacks.sh)",
                          wv->path);
    int n = wv->n, dim = wv->dim;
    if (k > n - 1) k = n - 1;
    if (k == 0) return 0;

    /* scores (n) = M (n, dim) . v_i (dim), in float */
    float *s = qr_xmalloc((size_t)n * sizeof *s);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, dim, 1.0f, wv->vec, dim, wv->vec + (size_t)i * dim, 1, 0.0f, s, 1);
    /* the k-th largest float score among j != i ... */
    float *h = qr_xmalloc((size_t)k * sizeof *h);
    int nh = 0;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        if (nh < k) {
            h[nh++] = s[j];
            if (nh == k)
                for (int a = k / 2 - 1; a >= 0; a--) sift_down(h, k, a);
        } else if (s[j] > h[0]) {
            h[0] = s[j];
            sift_down(h, k, 0);
        }
    }
    /* ... less twice the float error bound of a dot product of two unit
     * vectors (|fl(x.y) - x.y| <= gamma_dim |x||y|, gamma_d = d u / (1 - d u),
     * u = 2^-24; the norms are 1 +- 1e-3): every word whose exact cosine
     * can be among the k largest scores at least this */
    double u = ldexp(1.0, -24), gamma = dim * u / (1 - dim * u);
    float floor_ = (float)(h[0] - 2 * gamma * (1 + NORM_TOL) * (1 + NORM_TOL)) - ldexpf(1.0f, -23);
    free(h);
    int nc = 0;
    for (int j = 0; j < n; j++) nc += j != i && s[j] >= floor_;
    scored *c = qr_xmalloc((size_t)nc * sizeof *c);
    nc = 0;
    for (int j = 0; j < n; j++)
        if (j != i && s[j] >= floor_) c[nc++] = (scored){.cos = qr_wordvec_cos(wv, i, j), .index = j};
    free(s);
    qsort(c, (size_t)nc, sizeof *c, by_cos_then_index);
    if (nc > k) nc = k;
    int m = 0, pi = wv->pos ? wv->pos[i] : 0;
    for (int a = 0; a < nc; a++) {
        if (c[a].cos < min_cos) break; /* sorted: the rest are lower */
        if (pos_match != QR_POS_MATCH_ANY && !qr_wordvec_pos_match(pos_match, pi, wv->pos[c[a].index])) continue;
        out[m++] = (qr_wordvec_hit){.index = c[a].index, .cos = (float)c[a].cos};
    }
    free(c);
    return m;
}

int qr_wordvec_neighbours(const qr_wordvec *wv, const char *word, int k, double min_cos, int pos_match,
                          qr_wordvec_hit *out) {
    if (!wv) return qr_err_set("word neighbours: no embedding (NULL)");
    if (!word) return qr_err_set("%s: neighbours: word is NULL", wv->path);
    int i = qr_wordvec_find(wv, word);
    if (i < 0) { /* no neighbours, but the arguments are still checked */
        if (k < 0) return qr_err_set("%s: neighbours: k = %d: expected >= 0", wv->path, k);
        if (isnan(min_cos)) return qr_err_set("%s: neighbours: min_cos is NaN", wv->path);
        if (pos_match < QR_POS_MATCH_ANY || pos_match > QR_POS_MATCH_NOUN_VERB)
            return qr_err_set("%s: neighbours: pos_match = %d: expected 0 (any), 1 (same) or 2 (noun/verb swap)",
                              wv->path, pos_match);
        return 0;
    }
    return qr_wordvec_neighbours_of(wv, i, k, min_cos, pos_match, out);
}

/* ------------------------------------------------------------------ */
/* stop words                                                          */
/* ------------------------------------------------------------------ */

static int cmp_str(const void *key, const void *elem) { return strcmp(key, *(const char *const *)elem); }

int qr_wordvec_is_stopword(const char *word) {
    char low[32]; /* the longest stop word has 12 bytes */
    size_t len = word ? strlen(word) : sizeof low;
    if (len >= sizeof low) return 0;
    for (size_t k = 0; k <= len; k++) low[k] = word[k] >= 'A' && word[k] <= 'Z' ? (char)(word[k] - 'A' + 'a') : word[k];
    return bsearch(low, stopwords, N_STOPWORDS, sizeof stopwords[0], cmp_str) != NULL;
}

int qr_wordvec_stopword_count(void) { return N_STOPWORDS; }
const char *qr_wordvec_stopword(int i) { return i >= 0 && i < N_STOPWORDS ? stopwords[i] : NULL; }

/* ------------------------------------------------------------------ */
/* serving the ABI 1.3 host services                                   */
/* ------------------------------------------------------------------ */

static int serve_candidates(void *ctx, const char *word, int k, double min_cos, int pos_match, qr_candidate *out) {
    qr_wordvec *wv = ctx;
    int i = qr_wordvec_find(wv, word);
    if (i < 0) return 0;
    if (k > wv->n) k = wv->n; /* at most n - 1 come back: a huge k allocates no more */
    qr_wordvec_hit *hit = qr_xmalloc((size_t)k * sizeof *hit);
    int m = qr_wordvec_neighbours_of(wv, i, k, min_cos, pos_match, hit);
    for (int a = 0; a < m; a++) {
        qr_candidate *c = &out[a];
        memset(c->word, 0, sizeof c->word);
        memcpy(c->word, wv->words[hit[a].index], strlen(wv->words[hit[a].index])); /* <= 63 bytes (parse) */
        c->cos = hit[a].cos;
        c->pos = wv->pos ? wv->pos[hit[a].index] : 0;
    }
    free(hit);
    return m;
}

static int serve_is_stopword(void *ctx, const char *word) {
    (void)ctx;
    return qr_wordvec_is_stopword(word);
}

void qr_wordvec_serve(qr_wordvec *wv) {
    served = wv;
    if (!wv) {
        qr_plugins_set_lexicon(NULL);
        return;
    }
    qr_lexicon lx = {.ctx = wv, .name = wv->path, .has_pos = wv->pos != NULL, .candidates = serve_candidates,
                     .is_stopword = serve_is_stopword};
    qr_plugins_set_lexicon(&lx);
}

qr_wordvec *qr_wordvec_served(void) { return served; }
