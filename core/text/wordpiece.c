/* wordpiece.c - BERT's uncased WordPiece tokenizer: special-token split,
 * BertNormalizer (clean, CJK spacing, NFD accent strip, lower case),
 * BertPreTokenizer (whitespace and punctuation), greedy longest-match
 * WordPiece. See wordpiece.h for the exact rules. */
#define _POSIX_C_SOURCE 200809L
#include "wordpiece.h"

#include "qr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

struct qr_wordpiece {
    int n;             /* tokens */
    char *pool;        /* every token, NUL-terminated, one after another */
    size_t *off;       /* [n] start of token i in pool */
    uint32_t *len;     /* [n] bytes */
    int32_t *slot;     /* hash (open addressing) of strings -> ids, -1 free */
    uint32_t mask;     /* capacity - 1 */
    int max_chars;     /* most code points of a token: no longer piece can match */
    int32_t unk, cls, sep, pad;
    int32_t spec[5];   /* ids of the special tokens split out of the text */
    int n_spec;
};

static const char *const special_names[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

/* ---- the vocabulary ---------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int32_t vocab_find(const qr_wordpiece *w, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & w->mask;; h = (h + 1) & w->mask) {
        int32_t id = w->slot[h];
        if (id < 0) return -1;
        if (w->len[id] == n && memcmp(w->pool + w->off[id], s, n) == 0) return id;
    }
}

/* insert, or overwrite: a later id with the same string wins */
static void vocab_put(qr_wordpiece *w, int32_t id) {
    const char *s = w->pool + w->off[id];
    size_t n = w->len[id];
    for (uint32_t h = hash_bytes(s, n) & w->mask;; h = (h + 1) & w->mask) {
        int32_t o = w->slot[h];
        if (o < 0 || (w->len[o] == n && memcmp(w->pool + w->off[o], s, n) == 0)) {
            w->slot[h] = id;
            return;
        }
    }
}

/* code points in s[n], each invalid byte counted as one */
static int count_chars(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        i += k > 0 ? (size_t)k : 1;
        c++;
    }
    return c;
}

/* tokens[n] with byte lengths lens[n] -> the tokenizer; label for messages */
static qr_wordpiece *build(const char *const *tokens, const size_t *lens, int n, const char *label) {
    if (n <= 0) {
        qr_err_set("%s: empty vocabulary; expected one token per line", label);
        return NULL;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i] + 1;
    qr_wordpiece *w = qr_xcalloc(1, sizeof *w);
    w->n = n;
    w->pool = qr_xmalloc(total);
    w->off = qr_xmalloc(sizeof(size_t) * (size_t)n);
    w->len = qr_xmalloc(sizeof(uint32_t) * (size_t)n);
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n) cap <<= 1;
    w->mask = cap - 1;
    w->slot = qr_xmalloc(sizeof(int32_t) * cap);
    memset(w->slot, 0xFF, sizeof(int32_t) * cap);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(w->pool + at, tokens[i], lens[i]);
        w->pool[at + lens[i]] = 0;
        w->off[i] = at;
        w->len[i] = (uint32_t)lens[i];
        at += lens[i] + 1;
        vocab_put(w, i);
        int c = count_chars(tokens[i], lens[i]);
        if (c > w->max_chars) w->max_chars = c;
    }
    int32_t ids[5];
    for (int k = 0; k < 5; k++) {
        ids[k] = vocab_find(w, special_names[k], strlen(special_names[k]));
        if (ids[k] >= 0) w->spec[w->n_spec++] = ids[k];
    }
    w->pad = ids[0];
    w->unk = ids[1];
    w->cls = ids[2];
    w->sep = ids[3];
    for (int k = 0; k < 4; k++) {
        if (ids[k] < 0) {
            qr_err_set("%s: the vocabulary has no %s token; a BERT vocabulary has [PAD], [UNK], [CLS] and [SEP]",
                       label, special_names[k]);
            qr_wordpiece_free(w);
            return NULL;
        }
    }
    return w;
}

qr_wordpiece *qr_wordpiece_new(const char *const *tokens, int n, const char *label) {
    if (!tokens && n > 0) {
        qr_err_set("qr_wordpiece_new: tokens is NULL");
        return NULL;
    }
    size_t *lens = qr_xmalloc(sizeof(size_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) lens[i] = strlen(tokens[i]);
    qr_wordpiece *w = build(tokens, lens, n, label ? label : "wordpiece");
    free(lens);
    return w;
}

qr_wordpiece *qr_wordpiece_from_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        qr_err_set("%s: cannot open the WordPiece vocabulary: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        qr_err_set("%s: not a regular file; expected a vocab.txt", path);
        return NULL;
    }
    /* the bound comes first: nothing is read or allocated past it */
    if ((uint64_t)st.st_size > QR_WORDPIECE_MAX_FILE) {
        qr_err_set("%s: %lld bytes; a WordPiece vocabulary is at most %u bytes (BERT's is 231508)", path,
                   (long long)st.st_size, QR_WORDPIECE_MAX_FILE);
        return NULL;
    }
    size_t len = 0;
    char *text = qr_read_file(path, &len);
    if (!text) return NULL;
    if (len > QR_WORDPIECE_MAX_FILE) { /* it grew since the stat */
        free(text);
        qr_err_set("%s: more than %u bytes; refused", path, QR_WORDPIECE_MAX_FILE);
        return NULL;
    }
    /* lines: a final line without "\n" counts, an empty tail after the last
     * "\n" does not (Python's readlines) */
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') n_lines++;
    const char **tok = qr_xmalloc(sizeof(char *) * (n_lines ? n_lines : 1));
    size_t *lens = qr_xmalloc(sizeof(size_t) * (n_lines ? n_lines : 1));
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        const char *e = memchr(text + i, '\n', len - i);
        size_t end = e ? (size_t)(e - text) : len;
        size_t n = end - i;
        if (n && text[i + n - 1] == '\r') n--;
        tok[k] = text + i;
        lens[k++] = n;
        i = end + 1;
    }
    qr_wordpiece *w = NULL;
    if (k > INT32_MAX / 4)
        qr_err_set("%s: %zu lines; at most %d tokens", path, k, INT32_MAX / 4);
    else
        w = build(tok, lens, (int)k, path);
    free(tok);
    free(lens);
    free(text);
    return w;
}

void qr_wordpiece_free(qr_wordpiece *w) {
    if (!w) return;
    free(w->pool);
    free(w->off);
    free(w->len);
    free(w->slot);
    free(w);
}

int qr_wordpiece_n_vocab(const qr_wordpiece *w) { return w ? w->n : 0; }
int32_t qr_wordpiece_unk(const qr_wordpiece *w) { return w ? w->unk : -1; }
int32_t qr_wordpiece_cls(const qr_wordpiece *w) { return w ? w->cls : -1; }
int32_t qr_wordpiece_sep(const qr_wordpiece *w) { return w ? w->sep : -1; }
int32_t qr_wordpiece_pad(const qr_wordpiece *w) { return w ? w->pad : -1; }

int32_t qr_wordpiece_token_id(const qr_wordpiece *w, const char *token) {
    if (!w || !token) return -1;
    return vocab_find(w, token, strlen(token));
}

const char *qr_wordpiece_token_str(const qr_wordpiece *w, int32_t id) {
    if (!w || id < 0 || id >= w->n) return NULL;
    return w->pool + w->off[id];
}

/* ---- character classes ------------------------------------------------- */

/* The classes are tokenizers' own, not utf8proc's: its category tables are
 * older than utf8proc's (a Cf or Mn added to Unicode since is kept, U+166D
 * is still punctuation) and its lower case newer (Unicode 16), so the
 * tables below are generated from tokenizers itself, code point by code
 * point (scripts/ref/make_encoder_fixtures.py; tests/test_encoder.c checks
 * all 1,112,064 against tests/fixtures/encoder/unicode_blocks.txt). utf8proc
 * still decodes UTF-8, decomposes (NFD) and gives combining classes. */

typedef struct {
    uint32_t lo, hi;
} wp_range;

typedef struct {
    uint32_t start, count, stride;
    int32_t delta;
} wp_lower_run;

/* BEGIN GENERATED: scripts/ref/make_encoder_fixtures.py from tokenizers 0.23.3; do not edit. */
/* dropped by the clean step (U+0000, U+FFFD, tokenizers' Cc Cf Co but \t \n \r) */
static const wp_range wp_drop[] = {
    {0x0, 0x8}, {0xB, 0xC}, {0xE, 0x1F}, {0x7F, 0x9F},
    {0xAD, 0xAD}, {0x600, 0x605}, {0x61C, 0x61C}, {0x6DD, 0x6DD},
    {0x70F, 0x70F}, {0x180E, 0x180E}, {0x200B, 0x200F}, {0x202A, 0x202E},
    {0x2060, 0x2064}, {0x2066, 0x206F}, {0xE000, 0xF8FF}, {0xFEFF, 0xFEFF},
    {0xFFF9, 0xFFFB}, {0xFFFD, 0xFFFD}, {0x110BD, 0x110BD}, {0x1BCA0, 0x1BCA3},
    {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD},
    {0x100000, 0x10FFFD},
};
/* non-spacing marks the accent strip removes (tokenizers' Mn) */
static const wp_range wp_mn[] = {
    {0x300, 0x33F}, {0x342, 0x342}, {0x345, 0x36F}, {0x483, 0x487},
    {0x591, 0x5BD}, {0x5BF, 0x5BF}, {0x5C1, 0x5C2}, {0x5C4, 0x5C5},
    {0x5C7, 0x5C7}, {0x610, 0x61A}, {0x64B, 0x65F}, {0x670, 0x670},
    {0x6D6, 0x6DC}, {0x6DF, 0x6E4}, {0x6E7, 0x6E8}, {0x6EA, 0x6ED},
    {0x711, 0x711}, {0x730, 0x74A}, {0x7A6, 0x7B0}, {0x7EB, 0x7F3},
    {0x816, 0x819}, {0x81B, 0x823}, {0x825, 0x827}, {0x829, 0x82D},
    {0x859, 0x85B}, {0x8E3, 0x902}, {0x93A, 0x93A}, {0x93C, 0x93C},
    {0x941, 0x948}, {0x94D, 0x94D}, {0x951, 0x957}, {0x962, 0x963},
    {0x981, 0x981}, {0x9BC, 0x9BC}, {0x9C1, 0x9C4}, {0x9CD, 0x9CD},
    {0x9E2, 0x9E3}, {0xA01, 0xA02}, {0xA3C, 0xA3C}, {0xA41, 0xA42},
    {0xA47, 0xA48}, {0xA4B, 0xA4D}, {0xA51, 0xA51}, {0xA70, 0xA71},
    {0xA75, 0xA75}, {0xA81, 0xA82}, {0xABC, 0xABC}, {0xAC1, 0xAC5},
    {0xAC7, 0xAC8}, {0xACD, 0xACD}, {0xAE2, 0xAE3}, {0xB01, 0xB01},
    {0xB3C, 0xB3C}, {0xB3F, 0xB3F}, {0xB41, 0xB44}, {0xB4D, 0xB4D},
    {0xB56, 0xB56}, {0xB62, 0xB63}, {0xB82, 0xB82}, {0xBC0, 0xBC0},
    {0xBCD, 0xBCD}, {0xC00, 0xC00}, {0xC3E, 0xC40}, {0xC46, 0xC47},
    {0xC4A, 0xC4D}, {0xC55, 0xC56}, {0xC62, 0xC63}, {0xC81, 0xC81},
    {0xCBC, 0xCBC}, {0xCBF, 0xCBF}, {0xCC6, 0xCC6}, {0xCCC, 0xCCD},
    {0xCE2, 0xCE3}, {0xD01, 0xD01}, {0xD41, 0xD44}, {0xD4D, 0xD4D},
    {0xD62, 0xD63}, {0xDCA, 0xDCA}, {0xDD2, 0xDD4}, {0xDD6, 0xDD6},
    {0xE31, 0xE31}, {0xE34, 0xE3A}, {0xE47, 0xE4E}, {0xEB1, 0xEB1},
    {0xEB4, 0xEB9}, {0xEBB, 0xEBC}, {0xEC8, 0xECD}, {0xF18, 0xF19},
    {0xF35, 0xF35}, {0xF37, 0xF37}, {0xF39, 0xF39}, {0xF71, 0xF72},
    {0xF74, 0xF74}, {0xF77, 0xF77}, {0xF79, 0xF7E}, {0xF80, 0xF80},
    {0xF82, 0xF84}, {0xF86, 0xF87}, {0xF8D, 0xF92}, {0xF94, 0xF97},
    {0xF99, 0xF9C}, {0xF9E, 0xFA1}, {0xFA3, 0xFA6}, {0xFA8, 0xFAB},
    {0xFAD, 0xFB8}, {0xFBA, 0xFBC}, {0xFC6, 0xFC6}, {0x102D, 0x1030},
    {0x1032, 0x1037}, {0x1039, 0x103A}, {0x103D, 0x103E}, {0x1058, 0x1059},
    {0x105E, 0x1060}, {0x1071, 0x1074}, {0x1082, 0x1082}, {0x1085, 0x1086},
    {0x108D, 0x108D}, {0x109D, 0x109D}, {0x135D, 0x135F}, {0x1712, 0x1714},
    {0x1732, 0x1734}, {0x1752, 0x1753}, {0x1772, 0x1773}, {0x17B4, 0x17B5},
    {0x17B7, 0x17BD}, {0x17C6, 0x17C6}, {0x17C9, 0x17D3}, {0x17DD, 0x17DD},
    {0x180B, 0x180D}, {0x18A9, 0x18A9}, {0x1920, 0x1922}, {0x1927, 0x1928},
    {0x1932, 0x1932}, {0x1939, 0x193B}, {0x1A17, 0x1A18}, {0x1A1B, 0x1A1B},
    {0x1A56, 0x1A56}, {0x1A58, 0x1A5E}, {0x1A60, 0x1A60}, {0x1A62, 0x1A62},
    {0x1A65, 0x1A6C}, {0x1A73, 0x1A7C}, {0x1A7F, 0x1A7F}, {0x1AB0, 0x1ABD},
    {0x1B00, 0x1B03}, {0x1B34, 0x1B34}, {0x1B36, 0x1B3A}, {0x1B3C, 0x1B3C},
    {0x1B42, 0x1B42}, {0x1B6B, 0x1B73}, {0x1B80, 0x1B81}, {0x1BA2, 0x1BA5},
    {0x1BA8, 0x1BA9}, {0x1BAB, 0x1BAD}, {0x1BE6, 0x1BE6}, {0x1BE8, 0x1BE9},
    {0x1BED, 0x1BED}, {0x1BEF, 0x1BF1}, {0x1C2C, 0x1C33}, {0x1C36, 0x1C37},
    {0x1CD0, 0x1CD2}, {0x1CD4, 0x1CE0}, {0x1CE2, 0x1CE8}, {0x1CED, 0x1CED},
    {0x1CF4, 0x1CF4}, {0x1CF8, 0x1CF9}, {0x1DC0, 0x1DF5}, {0x1DFC, 0x1DFF},
    {0x20D0, 0x20DC}, {0x20E1, 0x20E1}, {0x20E5, 0x20F0}, {0x2CEF, 0x2CF1},
    {0x2D7F, 0x2D7F}, {0x2DE0, 0x2DFF}, {0x302A, 0x302D}, {0x3099, 0x309A},
    {0xA66F, 0xA66F}, {0xA674, 0xA67D}, {0xA69E, 0xA69F}, {0xA6F0, 0xA6F1},
    {0xA802, 0xA802}, {0xA806, 0xA806}, {0xA80B, 0xA80B}, {0xA825, 0xA826},
    {0xA8C4, 0xA8C4}, {0xA8E0, 0xA8F1}, {0xA926, 0xA92D}, {0xA947, 0xA951},
    {0xA980, 0xA982}, {0xA9B3, 0xA9B3}, {0xA9B6, 0xA9B9}, {0xA9BC, 0xA9BC},
    {0xA9E5, 0xA9E5}, {0xAA29, 0xAA2E}, {0xAA31, 0xAA32}, {0xAA35, 0xAA36},
    {0xAA43, 0xAA43}, {0xAA4C, 0xAA4C}, {0xAA7C, 0xAA7C}, {0xAAB0, 0xAAB0},
    {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8}, {0xAABE, 0xAABF}, {0xAAC1, 0xAAC1},
    {0xAAEC, 0xAAED}, {0xAAF6, 0xAAF6}, {0xABE5, 0xABE5}, {0xABE8, 0xABE8},
    {0xABED, 0xABED}, {0xFB1E, 0xFB1E}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0x101FD, 0x101FD}, {0x102E0, 0x102E0}, {0x10376, 0x1037A}, {0x10A01, 0x10A03},
    {0x10A05, 0x10A06}, {0x10A0C, 0x10A0F}, {0x10A38, 0x10A3A}, {0x10A3F, 0x10A3F},
    {0x10AE5, 0x10AE6}, {0x11001, 0x11001}, {0x11038, 0x11046}, {0x1107F, 0x11081},
    {0x110B3, 0x110B6}, {0x110B9, 0x110BA}, {0x11100, 0x11102}, {0x11127, 0x1112B},
    {0x1112D, 0x1112D}, {0x11130, 0x11134}, {0x11173, 0x11173}, {0x11180, 0x11181},
    {0x111B6, 0x111BE}, {0x111CA, 0x111CC}, {0x1122F, 0x11231}, {0x11234, 0x11234},
    {0x11236, 0x11237}, {0x112DF, 0x112DF}, {0x112E3, 0x112EA}, {0x11300, 0x11301},
    {0x1133C, 0x1133C}, {0x11340, 0x11340}, {0x11366, 0x1136C}, {0x11370, 0x11374},
    {0x114B3, 0x114B8}, {0x114BA, 0x114BA}, {0x114BF, 0x114C0}, {0x114C2, 0x114C3},
    {0x115B2, 0x115B5}, {0x115BC, 0x115BD}, {0x115BF, 0x115C0}, {0x115DC, 0x115DD},
    {0x11633, 0x1163A}, {0x1163D, 0x1163D}, {0x1163F, 0x11640}, {0x116AB, 0x116AB},
    {0x116AD, 0x116AD}, {0x116B0, 0x116B5}, {0x116B7, 0x116B7}, {0x1171D, 0x1171F},
    {0x11722, 0x11725}, {0x11727, 0x1172B}, {0x16AF0, 0x16AF4}, {0x16B30, 0x16B36},
    {0x16F8F, 0x16F92}, {0x1BC9D, 0x1BC9E}, {0x1D167, 0x1D169}, {0x1D17B, 0x1D182},
    {0x1D185, 0x1D18B}, {0x1D1AA, 0x1D1AD}, {0x1D242, 0x1D244}, {0x1DA00, 0x1DA36},
    {0x1DA3B, 0x1DA6C}, {0x1DA75, 0x1DA75}, {0x1DA84, 0x1DA84}, {0x1DA9B, 0x1DA9F},
    {0x1DAA1, 0x1DAAF}, {0x1E8D0, 0x1E8D6}, {0xE0100, 0xE01EF},
};
/* punctuation the pre-tokenizer splits off (ASCII punctuation or tokenizers' P*) */
static const wp_range wp_punct[] = {
    {0x21, 0x2F}, {0x3A, 0x40}, {0x5B, 0x60}, {0x7B, 0x7E},
    {0xA1, 0xA1}, {0xA7, 0xA7}, {0xAB, 0xAB}, {0xB6, 0xB7},
    {0xBB, 0xBB}, {0xBF, 0xBF}, {0x37E, 0x37E}, {0x387, 0x387},
    {0x55A, 0x55F}, {0x589, 0x58A}, {0x5BE, 0x5BE}, {0x5C0, 0x5C0},
    {0x5C3, 0x5C3}, {0x5C6, 0x5C6}, {0x5F3, 0x5F4}, {0x609, 0x60A},
    {0x60C, 0x60D}, {0x61B, 0x61B}, {0x61E, 0x61F}, {0x66A, 0x66D},
    {0x6D4, 0x6D4}, {0x700, 0x70D}, {0x7F7, 0x7F9}, {0x830, 0x83E},
    {0x85E, 0x85E}, {0x964, 0x965}, {0x970, 0x970}, {0xAF0, 0xAF0},
    {0xDF4, 0xDF4}, {0xE4F, 0xE4F}, {0xE5A, 0xE5B}, {0xF04, 0xF12},
    {0xF14, 0xF14}, {0xF3A, 0xF3D}, {0xF85, 0xF85}, {0xFD0, 0xFD4},
    {0xFD9, 0xFDA}, {0x104A, 0x104F}, {0x10FB, 0x10FB}, {0x1360, 0x1368},
    {0x1400, 0x1400}, {0x166D, 0x166E}, {0x169B, 0x169C}, {0x16EB, 0x16ED},
    {0x1735, 0x1736}, {0x17D4, 0x17D6}, {0x17D8, 0x17DA}, {0x1800, 0x180A},
    {0x1944, 0x1945}, {0x1A1E, 0x1A1F}, {0x1AA0, 0x1AA6}, {0x1AA8, 0x1AAD},
    {0x1B5A, 0x1B60}, {0x1BFC, 0x1BFF}, {0x1C3B, 0x1C3F}, {0x1C7E, 0x1C7F},
    {0x1CC0, 0x1CC7}, {0x1CD3, 0x1CD3}, {0x2010, 0x2027}, {0x2030, 0x2043},
    {0x2045, 0x2051}, {0x2053, 0x205E}, {0x207D, 0x207E}, {0x208D, 0x208E},
    {0x2308, 0x230B}, {0x2329, 0x232A}, {0x2768, 0x2775}, {0x27C5, 0x27C6},
    {0x27E6, 0x27EF}, {0x2983, 0x2998}, {0x29D8, 0x29DB}, {0x29FC, 0x29FD},
    {0x2CF9, 0x2CFC}, {0x2CFE, 0x2CFF}, {0x2D70, 0x2D70}, {0x2E00, 0x2E2E},
    {0x2E30, 0x2E42}, {0x3001, 0x3003}, {0x3008, 0x3011}, {0x3014, 0x301F},
    {0x3030, 0x3030}, {0x303D, 0x303D}, {0x30A0, 0x30A0}, {0x30FB, 0x30FB},
    {0xA4FE, 0xA4FF}, {0xA60D, 0xA60F}, {0xA673, 0xA673}, {0xA67E, 0xA67E},
    {0xA6F2, 0xA6F7}, {0xA874, 0xA877}, {0xA8CE, 0xA8CF}, {0xA8F8, 0xA8FA},
    {0xA8FC, 0xA8FC}, {0xA92E, 0xA92F}, {0xA95F, 0xA95F}, {0xA9C1, 0xA9CD},
    {0xA9DE, 0xA9DF}, {0xAA5C, 0xAA5F}, {0xAADE, 0xAADF}, {0xAAF0, 0xAAF1},
    {0xABEB, 0xABEB}, {0xFD3E, 0xFD3F}, {0xFE10, 0xFE19}, {0xFE30, 0xFE52},
    {0xFE54, 0xFE61}, {0xFE63, 0xFE63}, {0xFE68, 0xFE68}, {0xFE6A, 0xFE6B},
    {0xFF01, 0xFF03}, {0xFF05, 0xFF0A}, {0xFF0C, 0xFF0F}, {0xFF1A, 0xFF1B},
    {0xFF1F, 0xFF20}, {0xFF3B, 0xFF3D}, {0xFF3F, 0xFF3F}, {0xFF5B, 0xFF5B},
    {0xFF5D, 0xFF5D}, {0xFF5F, 0xFF65}, {0x10100, 0x10102}, {0x1039F, 0x1039F},
    {0x103D0, 0x103D0}, {0x1056F, 0x1056F}, {0x10857, 0x10857}, {0x1091F, 0x1091F},
    {0x1093F, 0x1093F}, {0x10A50, 0x10A58}, {0x10A7F, 0x10A7F}, {0x10AF0, 0x10AF6},
    {0x10B39, 0x10B3F}, {0x10B99, 0x10B9C}, {0x11047, 0x1104D}, {0x110BB, 0x110BC},
    {0x110BE, 0x110C1}, {0x11140, 0x11143}, {0x11174, 0x11175}, {0x111C5, 0x111C9},
    {0x111CD, 0x111CD}, {0x111DB, 0x111DB}, {0x111DD, 0x111DF}, {0x11238, 0x1123D},
    {0x112A9, 0x112A9}, {0x114C6, 0x114C6}, {0x115C1, 0x115D7}, {0x11641, 0x11643},
    {0x1173C, 0x1173E}, {0x12470, 0x12474}, {0x16A6E, 0x16A6F}, {0x16AF5, 0x16AF5},
    {0x16B37, 0x16B3B}, {0x16B44, 0x16B44}, {0x1BC9F, 0x1BC9F}, {0x1DA87, 0x1DA8B},
};
/* lower case (Rust's char::to_lowercase): start + i * stride -> + delta, i < count */
static const wp_lower_run wp_lower[] = {
    {0x41, 26, 1, 32}, {0xC0, 23, 1, 32}, {0xD8, 7, 1, 32},
    {0x100, 24, 2, 1}, {0x132, 3, 2, 1}, {0x139, 8, 2, 1},
    {0x14A, 23, 2, 1}, {0x178, 1, 1, -121}, {0x179, 3, 2, 1},
    {0x181, 1, 1, 210}, {0x182, 2, 2, 1}, {0x186, 1, 1, 206},
    {0x187, 1, 1, 1}, {0x189, 2, 1, 205}, {0x18B, 1, 1, 1},
    {0x18E, 1, 1, 79}, {0x18F, 1, 1, 202}, {0x190, 1, 1, 203},
    {0x191, 1, 1, 1}, {0x193, 1, 1, 205}, {0x194, 1, 1, 207},
    {0x196, 1, 1, 211}, {0x197, 1, 1, 209}, {0x198, 1, 1, 1},
    {0x19C, 1, 1, 211}, {0x19D, 1, 1, 213}, {0x19F, 1, 1, 214},
    {0x1A0, 3, 2, 1}, {0x1A6, 1, 1, 218}, {0x1A7, 1, 1, 1},
    {0x1A9, 1, 1, 218}, {0x1AC, 1, 1, 1}, {0x1AE, 1, 1, 218},
    {0x1AF, 1, 1, 1}, {0x1B1, 2, 1, 217}, {0x1B3, 2, 2, 1},
    {0x1B7, 1, 1, 219}, {0x1B8, 1, 1, 1}, {0x1BC, 1, 1, 1},
    {0x1C4, 1, 1, 2}, {0x1C5, 1, 1, 1}, {0x1C7, 1, 1, 2},
    {0x1C8, 1, 1, 1}, {0x1CA, 1, 1, 2}, {0x1CB, 9, 2, 1},
    {0x1DE, 9, 2, 1}, {0x1F1, 1, 1, 2}, {0x1F2, 2, 2, 1},
    {0x1F6, 1, 1, -97}, {0x1F7, 1, 1, -56}, {0x1F8, 20, 2, 1},
    {0x220, 1, 1, -130}, {0x222, 9, 2, 1}, {0x23A, 1, 1, 10795},
    {0x23B, 1, 1, 1}, {0x23D, 1, 1, -163}, {0x23E, 1, 1, 10792},
    {0x241, 1, 1, 1}, {0x243, 1, 1, -195}, {0x244, 1, 1, 69},
    {0x245, 1, 1, 71}, {0x246, 5, 2, 1}, {0x370, 2, 2, 1},
    {0x376, 1, 1, 1}, {0x37F, 1, 1, 116}, {0x386, 1, 1, 38},
    {0x388, 3, 1, 37}, {0x38C, 1, 1, 64}, {0x38E, 2, 1, 63},
    {0x391, 17, 1, 32}, {0x3A3, 9, 1, 32}, {0x3CF, 1, 1, 8},
    {0x3D8, 12, 2, 1}, {0x3F4, 1, 1, -60}, {0x3F7, 1, 1, 1},
    {0x3F9, 1, 1, -7}, {0x3FA, 1, 1, 1}, {0x3FD, 3, 1, -130},
    {0x400, 16, 1, 80}, {0x410, 32, 1, 32}, {0x460, 17, 2, 1},
    {0x48A, 27, 2, 1}, {0x4C0, 1, 1, 15}, {0x4C1, 7, 2, 1},
    {0x4D0, 48, 2, 1}, {0x531, 38, 1, 48}, {0x10A0, 38, 1, 7264},
    {0x10C7, 1, 1, 7264}, {0x10CD, 1, 1, 7264}, {0x13A0, 80, 1, 38864},
    {0x13F0, 6, 1, 8}, {0x1C89, 1, 1, 1}, {0x1C90, 43, 1, -3008},
    {0x1CBD, 3, 1, -3008}, {0x1E00, 75, 2, 1}, {0x1E9E, 1, 1, -7615},
    {0x1EA0, 48, 2, 1}, {0x1F08, 8, 1, -8}, {0x1F18, 6, 1, -8},
    {0x1F28, 8, 1, -8}, {0x1F38, 8, 1, -8}, {0x1F48, 6, 1, -8},
    {0x1F59, 4, 2, -8}, {0x1F68, 8, 1, -8}, {0x1F88, 8, 1, -8},
    {0x1F98, 8, 1, -8}, {0x1FA8, 8, 1, -8}, {0x1FB8, 2, 1, -8},
    {0x1FBA, 2, 1, -74}, {0x1FBC, 1, 1, -9}, {0x1FC8, 4, 1, -86},
    {0x1FCC, 1, 1, -9}, {0x1FD8, 2, 1, -8}, {0x1FDA, 2, 1, -100},
    {0x1FE8, 2, 1, -8}, {0x1FEA, 2, 1, -112}, {0x1FEC, 1, 1, -7},
    {0x1FF8, 2, 1, -128}, {0x1FFA, 2, 1, -126}, {0x1FFC, 1, 1, -9},
    {0x2126, 1, 1, -7517}, {0x212A, 1, 1, -8383}, {0x212B, 1, 1, -8262},
    {0x2132, 1, 1, 28}, {0x2160, 16, 1, 16}, {0x2183, 1, 1, 1},
    {0x24B6, 26, 1, 26}, {0x2C00, 48, 1, 48}, {0x2C60, 1, 1, 1},
    {0x2C62, 1, 1, -10743}, {0x2C63, 1, 1, -3814}, {0x2C64, 1, 1, -10727},
    {0x2C67, 3, 2, 1}, {0x2C6D, 1, 1, -10780}, {0x2C6E, 1, 1, -10749},
    {0x2C6F, 1, 1, -10783}, {0x2C70, 1, 1, -10782}, {0x2C72, 1, 1, 1},
    {0x2C75, 1, 1, 1}, {0x2C7E, 2, 1, -10815}, {0x2C80, 50, 2, 1},
    {0x2CEB, 2, 2, 1}, {0x2CF2, 1, 1, 1}, {0xA640, 23, 2, 1},
    {0xA680, 14, 2, 1}, {0xA722, 7, 2, 1}, {0xA732, 31, 2, 1},
    {0xA779, 2, 2, 1}, {0xA77D, 1, 1, -35332}, {0xA77E, 5, 2, 1},
    {0xA78B, 1, 1, 1}, {0xA78D, 1, 1, -42280}, {0xA790, 2, 2, 1},
    {0xA796, 10, 2, 1}, {0xA7AA, 1, 1, -42308}, {0xA7AB, 1, 1, -42319},
    {0xA7AC, 1, 1, -42315}, {0xA7AD, 1, 1, -42305}, {0xA7AE, 1, 1, -42308},
    {0xA7B0, 1, 1, -42258}, {0xA7B1, 1, 1, -42282}, {0xA7B2, 1, 1, -42261},
    {0xA7B3, 1, 1, 928}, {0xA7B4, 8, 2, 1}, {0xA7C4, 1, 1, -48},
    {0xA7C5, 1, 1, -42307}, {0xA7C6, 1, 1, -35384}, {0xA7C7, 2, 2, 1},
    {0xA7CB, 1, 1, -42343}, {0xA7CC, 8, 2, 1}, {0xA7DC, 1, 1, -42561},
    {0xA7F5, 1, 1, 1}, {0xFF21, 26, 1, 32}, {0x10400, 40, 1, 40},
    {0x104B0, 36, 1, 40}, {0x10570, 11, 1, 39}, {0x1057C, 15, 1, 39},
    {0x1058C, 7, 1, 39}, {0x10594, 2, 1, 39}, {0x10C80, 51, 1, 64},
    {0x10D50, 22, 1, 32}, {0x118A0, 32, 1, 32}, {0x16E40, 32, 1, 32},
    {0x16EA0, 25, 1, 27}, {0x1E900, 34, 1, 34},
};
/* code points tokenizers' NFD leaves whole though Unicode decomposes them */
static const uint32_t wp_nodecomp[] = {0x11938};
/* END GENERATED */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int in_ranges(const wp_range *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n; /* first range with hi >= c */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].hi < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && r[lo].lo <= c;
}

static uint32_t to_lower(uint32_t c) {
    size_t lo = 0, hi = N_OF(wp_lower); /* last run starting at or before c */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (wp_lower[mid].start <= c) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return c;
    const wp_lower_run *r = &wp_lower[lo - 1];
    uint32_t k = c - r->start;
    if (k % r->stride == 0 && k / r->stride < r->count) return (uint32_t)((int32_t)c + r->delta);
    return c;
}

/* Unicode White_Space (Rust's char::is_whitespace, which tokenizers uses);
 * U+000B, U+000C and U+0085 are dropped as controls before this is asked */
static int is_space(uint32_t c) {
    return c == 0x20 || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_dropped(uint32_t c) { return in_ranges(wp_drop, N_OF(wp_drop), c); }
static int is_mark(uint32_t c) { return in_ranges(wp_mn, N_OF(wp_mn), c); }
static int is_punct(uint32_t c) { return in_ranges(wp_punct, N_OF(wp_punct), c); }

static int no_decompose(uint32_t c) {
    for (size_t i = 0; i < N_OF(wp_nodecomp); i++)
        if (wp_nodecomp[i] == c) return 1;
    return 0;
}

/* The CJK blocks of BERT's _is_chinese_char as tokenizers writes them:
 * its fourth-from-last range starts at U+2B920, not U+2B820 as in
 * Google's BERT and transformers' Python BertTokenizer. */
static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

int qr_wordpiece_char_class(uint32_t c) {
    return c == ' ' ? QR_WP_SPACE : is_punct(c) ? QR_WP_PUNCT : QR_WP_OTHER;
}

/* ---- normalisation ----------------------------------------------------- */

/* The longest canonical decomposition of one code point is 4 (U+1F82 and
 * kin); utf8proc reports a longer one by returning more than the room,
 * and such a code point would be kept whole. */
#define DECOMP_MAX 4

/* Steps 1-4 of wordpiece.h on s[n]: code points into *out (malloc'd),
 * count returned. Steps 1-2 give at most one code point per input byte (a
 * CJK ideograph takes at least 3 bytes and becomes 3 code points), step 3
 * at most DECOMP_MAX per code point: memory is linear in n. */
static size_t normalize_cps(const uint8_t *s, size_t n, uint32_t **out) {
    uint32_t *a = qr_xmalloc(sizeof(uint32_t) * (n + 1));
    size_t na = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { /* not UTF-8: U+FFFD in Python, dropped */
            i++;
            continue;
        }
        i += (size_t)k;
        uint32_t c = (uint32_t)cp;
        if (is_dropped(c)) continue;
        if (is_space(c)) {
            a[na++] = ' ';
        } else if (is_cjk(c)) {
            a[na++] = ' ';
            a[na++] = c;
            a[na++] = ' ';
        } else {
            a[na++] = c;
        }
    }
    uint32_t *b = qr_xmalloc(sizeof(uint32_t) * (DECOMP_MAX * na + 1));
    size_t nb = 0;
    for (size_t i = 0; i < na; i++) {
        utf8proc_int32_t d[DECOMP_MAX];
        int bound = 0;
        utf8proc_ssize_t k = no_decompose(a[i]) ? 0
                             : utf8proc_decompose_char((utf8proc_int32_t)a[i], d, DECOMP_MAX, UTF8PROC_DECOMPOSE, &bound);
        if (k < 1 || k > DECOMP_MAX) { /* kept whole (longer does not happen with Unicode 15's data) */
            b[nb++] = a[i];
            continue;
        }
        /* canonical ordering: a mark moves before the marks of higher class
         * before it (insertion sort within each run of marks, stable) */
        for (utf8proc_ssize_t j = 0; j < k; j++) {
            uint32_t c = (uint32_t)d[j];
            int cc = utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
            size_t at = nb;
            if (cc)
                while (at > 0 && utf8proc_get_property((utf8proc_int32_t)b[at - 1])->combining_class > cc) {
                    b[at] = b[at - 1];
                    at--;
                }
            b[at] = c;
            nb++;
        }
    }
    free(a);
    /* strip the non-spacing marks, then lower-case */
    size_t m = 0;
    for (size_t i = 0; i < nb; i++) {
        if (is_mark(b[i])) continue;
        b[m++] = to_lower(b[i]);
    }
    *out = b;
    return m;
}

static size_t put_utf8(uint32_t c, char *o) {
    return (size_t)utf8proc_encode_char((utf8proc_int32_t)c, (utf8proc_uint8_t *)o);
}

char *qr_wordpiece_normalize(const char *text, size_t len, size_t *out_len) {
    uint32_t *cp = NULL;
    size_t n = normalize_cps((const uint8_t *)(text ? text : ""), text ? len : 0, &cp);
    char *o = qr_xmalloc(4 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += put_utf8(cp[i], o + k);
    o[k] = 0;
    free(cp);
    if (out_len) *out_len = k;
    return o;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct {
    int32_t *ids;
    int n, cap;
    int limit; /* most pieces (max_len - 2), INT32_MAX for none */
} out_buf;

static void push(out_buf *o, int32_t id) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->ids = qr_xrealloc(o->ids, sizeof(int32_t) * (size_t)o->cap);
    }
    o->ids[o->n++] = id;
}

/* One word of nc code points, UTF-8 in u with char c starting at u[co[c]]
 * (co[nc] = the end); key is scratch of 2 + co[nc] bytes. */
static void wordpiece_word(const qr_wordpiece *w, out_buf *o, const char *u, const size_t *co, int nc, char *key) {
    if (nc > QR_WORDPIECE_MAX_WORD) {
        push(o, w->unk);
        return;
    }
    int first = o->n;
    for (int start = 0; start < nc;) {
        int end = start + w->max_chars < nc ? start + w->max_chars : nc;
        int32_t found = -1;
        for (; end > start; end--) {
            size_t pre = 0;
            if (start > 0) {
                key[0] = key[1] = '#';
                pre = 2;
            }
            size_t nb = co[end] - co[start];
            memcpy(key + pre, u + co[start], nb);
            found = vocab_find(w, key, pre + nb);
            if (found >= 0) break;
        }
        if (found < 0) { /* a position nothing matches: the whole word is [UNK] */
            o->n = first;
            push(o, w->unk);
            return;
        }
        push(o, found);
        start = end;
    }
}

/* Steps 1-6 on one segment (no special tokens inside), pieces into o. */
static void encode_segment(const qr_wordpiece *w, out_buf *o, const uint8_t *s, size_t n) {
    if (n == 0 || o->n >= o->limit) return;
    uint32_t *cp = NULL;
    size_t nc = normalize_cps(s, n, &cp);
    char *u = qr_xmalloc(4 * nc + 1);
    size_t *co = qr_xmalloc(sizeof(size_t) * (nc + 1));
    char *key = qr_xmalloc(4 * nc + 3);
    size_t i = 0;
    while (i < nc && o->n < o->limit) {
        if (cp[i] == ' ') { /* the only white space left after cleaning */
            i++;
            continue;
        }
        size_t j = i + 1;
        if (!is_punct(cp[i]))
            while (j < nc && cp[j] != ' ' && !is_punct(cp[j])) j++;
        size_t nb = 0;
        for (size_t c = i; c < j; c++) {
            co[c - i] = nb;
            nb += put_utf8(cp[c], u + nb);
        }
        co[j - i] = nb;
        wordpiece_word(w, o, u, co, (int)((j - i) > INT32_MAX ? INT32_MAX : (j - i)), key);
        i = j;
    }
    if (o->n > o->limit) o->n = o->limit;
    free(key);
    free(co);
    free(u);
    free(cp);
}

/* the special token starting at s[0..n), its id and byte length in *len, or -1 */
static int32_t match_special(const qr_wordpiece *w, const uint8_t *s, size_t n, size_t *len) {
    if (n == 0 || s[0] != '[') return -1;
    for (int k = 0; k < w->n_spec; k++) {
        int32_t id = w->spec[k];
        size_t l = w->len[id];
        if (l <= n && memcmp(s, w->pool + w->off[id], l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

int qr_wordpiece_encode(const qr_wordpiece *w, const char *text, size_t len, int max_len, int32_t **ids, int *n_ids) {
    if (!w || !ids || !n_ids || (!text && len)) return qr_err_set("qr_wordpiece_encode: NULL argument");
    if (max_len == 1 || max_len < 0)
        return qr_err_set("qr_wordpiece_encode: max_len %d; expected 0 (no limit) or at least 2 ([CLS] and [SEP])",
                          max_len);
    out_buf o = {0};
    o.limit = max_len ? max_len - 2 : INT32_MAX - 2;
    push(&o, w->cls); /* the pieces are counted after it: shift by one */
    o.limit += 1;
    const uint8_t *s = (const uint8_t *)text;
    size_t seg = 0;
    for (size_t i = 0; i < len && o.n < o.limit;) {
        size_t sl = 0;
        int32_t id = s[i] == '[' ? match_special(w, s + i, len - i, &sl) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        encode_segment(w, &o, s + seg, i - seg);
        if (o.n < o.limit) push(&o, id);
        i += sl;
        seg = i;
    }
    if (seg < len) encode_segment(w, &o, s + seg, len - seg);
    push(&o, w->sep);
    *ids = o.ids;
    *n_ids = o.n;
    return QR_OK;
}
