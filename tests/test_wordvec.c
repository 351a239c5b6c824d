/* test_wordvec.c - the word-level attack resources (core/text/wordvec.h) on
 * the committed fixtures cut from the real ones (tests/fixtures/attacks/,
 * scripts/attacks/make_fixtures.py: 2,000 words x 50 of the counter-fitted
 * GloVe file, the same words' original vectors, their POS lines and
 * constraint pairs, and numpy's neighbours of 40 of them):
 *
 *   wv-1  the fixture loads: sizes, checksum, lookups (ASCII case folded)
 *   wv-2  nearest neighbours equal a brute-force loop here (double cosines,
 *         ties by index): the same words in the same order for 200 queries,
 *         k = 50 and k = all, with min_cos and each POS mode; cos diff printed
 *   wv-3  ... and numpy's (cf2k.golden.tsv): same order, |cos diff| <= 1e-6
 *   wv-4  the POS table: every mask as the file says; the match modes
 *   wv-5  counter-fitting moved the fixture's synonym pairs closer and its
 *         antonym pairs apart (glove2k.qrwv -> cf2k.qrwv), means printed
 *   wv-6  the stop words: TextFooler's 266, as scripts/attacks/stopwords_textfooler.txt
 *   wv-7  hostile .qrwv files refused naming the file and the field or bound:
 *         missing, empty, short, wrong magic, version, oversized header
 *         fields (n_words, words_bytes, dim), truncated, trailing bytes,
 *         checksum, a non-unit vector, an empty / long / duplicate word
 *   wv-8  hostile POS tables: too big for the bound, a line short or
 *         extra, a wrong word, bad letters
 *   wv-9  the ABI 1.3 host services through an attack plugin built here:
 *         nothing served -> a message naming the resource and the setup
 *         command; served -> the same candidates as qr_wordvec_neighbours;
 *         POS refused without a table; freeing the served one stops it
 */
#define _GNU_SOURCE
#include "harness.h"
#include "plugin.h"
#include "qr.h"
#include "text/wordvec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "tests/fixtures/attacks/"
#define CF FIX "cf2k.qrwv"

static char tmpdir[] = "/tmp/test_wordvec.XXXXXX";

static int has(const char *msg, const char *needle) {
    if (msg && strstr(msg, needle)) return 1;
    fprintf(stderr, "  message '%s'\n  lacks '%s'\n", msg ? msg : "(null)", needle);
    return 0;
}

static char *slurp(const char *path, size_t *n) {
    char *b = qr_read_file(path, n);
    if (!b) {
        fprintf(stderr, "cannot read %s: %s (run from the repository root)\n", path, qr_err_msg());
        exit(1);
    }
    return b;
}

/* ---- wv-1 ---- */

static void test_load(qr_wordvec *wv) {
    test_cond("wv-1.1 2000 words x 50", qr_wordvec_count(wv) == 2000 && qr_wordvec_dim(wv) == 50);
    size_t n;
    char *b = slurp(CF, &n);
    uint32_t crc;
    memcpy(&crc, b + 24, 4);
    test_cond("wv-1.2 the header's checksum", qr_wordvec_crc(wv) == crc && qr_wordvec_bytes(wv) == n);
    test_cond("wv-1.3 checksum = CRC-32 of the bytes after the header",
              qr_wordvec_crc32(0, b + 32, n - 32) == crc && qr_wordvec_crc32(0, "123456789", 9) == 0xCBF43926u);
    free(b);
    int ok = 1;
    for (int i = 0; i < qr_wordvec_count(wv); i++) ok &= qr_wordvec_find(wv, qr_wordvec_word(wv, i)) == i;
    test_cond("wv-1.4 every word found at its index", ok);
    test_cond("wv-1.5 'the' is word 0, also as 'The' and 'THE'",
              qr_wordvec_find(wv, "the") == 0 && qr_wordvec_find(wv, "The") == 0 && qr_wordvec_find(wv, "THE") == 0);
    test_cond("wv-1.6 unknown words", qr_wordvec_find(wv, "qwertyzz") == -1 && qr_wordvec_find(wv, "") == -1 &&
                                          qr_wordvec_find(wv, NULL) == -1);
    double worst = 0;
    for (int i = 0; i < qr_wordvec_count(wv); i++) worst = fmax(worst, fabs(qr_wordvec_cos(wv, i, i) - 1));
    printf("wv-1 max |norm^2 - 1| = %.3g\n", worst);
    test_cond("wv-1.7 unit vectors (|v.v - 1| <= 1e-5)", worst <= 1e-5);
}

/* ---- wv-2 ---- */

typedef struct {
    double cos;
    int index;
} bf;

static int bf_cmp(const void *x, const void *y) {
    const bf *a = x, *b = y;
    if (a->cos != b->cos) return a->cos > b->cos ? -1 : 1;
    return a->index - b->index;
}

/* the test's own neighbours: every cosine in double, sorted, the first k,
 * then min_cos, then the POS mode */
static int brute(const qr_wordvec *wv, int q, int k, double min_cos, int mode, bf *out) {
    int n = qr_wordvec_count(wv), dim = qr_wordvec_dim(wv), m = 0;
    const float *a = qr_wordvec_vector(wv, q);
    bf *all = malloc((size_t)n * sizeof *all);
    for (int j = 0; j < n; j++) {
        if (j == q) continue;
        const float *b = qr_wordvec_vector(wv, j);
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)a[d] * (double)b[d];
        all[m++] = (bf){s, j};
    }
    qsort(all, (size_t)m, sizeof *all, bf_cmp);
    if (k > m) k = m;
    int r = 0;
    for (int j = 0; j < k; j++) {
        if (all[j].cos < min_cos) continue;
        if (mode && !qr_wordvec_pos_match(mode, qr_wordvec_pos(wv, q), qr_wordvec_pos(wv, all[j].index))) continue;
        out[r++] = all[j];
    }
    free(all);
    return r;
}

static void test_neighbours(qr_wordvec *wv) {
    int n = qr_wordvec_count(wv);
    qr_wordvec_hit *hit = malloc((size_t)n * sizeof *hit);
    bf *ref = malloc((size_t)n * sizeof *ref);
    struct {
        int k;
        double min_cos;
        int mode;
    } cfg[] = {{50, -2, QR_POS_MATCH_ANY},
               {50, 0.5, QR_POS_MATCH_NOUN_VERB},
               {50, 0.9, QR_POS_MATCH_SAME},
               {n, -2, QR_POS_MATCH_ANY},
               {1, -2, QR_POS_MATCH_ANY}};
    int queries = 0, same = 0, total = 0;
    double maxdiff = 0;
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
        for (int q = 0; q < n; q += c == 3 ? 100 : 10) {
            int got = qr_wordvec_neighbours_of(wv, q, cfg[c].k, cfg[c].min_cos, cfg[c].mode, hit);
            int want = brute(wv, q, cfg[c].k, cfg[c].min_cos, cfg[c].mode, ref);
            int eq = got == want;
            for (int j = 0; eq && j < got; j++) {
                eq = hit[j].index == ref[j].index;
                maxdiff = fmax(maxdiff, fabs(hit[j].cos - ref[j].cos));
            }
            if (!eq) fprintf(stderr, "  wv-2 query %d ('%s'), config %zu: %d vs %d neighbours or another order\n", q,
                             qr_wordvec_word(wv, q), c, got, want);
            queries++;
            same += eq;
            total += got;
        }
    printf("wv-2 %d queries, %d neighbours, same order as brute force in %d; max |cos diff| %.3g (float output)\n",
           queries, total, same, maxdiff);
    test_cond("wv-2.1 the same neighbours in the same order as brute force", same == queries);
    test_cond("wv-2.2 cosines within float rounding of double", maxdiff <= 1e-7);
    test_cond("wv-2.3 k = 0 gives none", qr_wordvec_neighbours_of(wv, 5, 0, -2, 0, hit) == 0);
    test_cond("wv-2.4 k beyond the vocabulary gives all others", qr_wordvec_neighbours_of(wv, 5, n + 10, -2, 0, hit) == n - 1);
    test_cond("wv-2.5 by word, case folded", qr_wordvec_neighbours(wv, "Film", 5, -2, 0, hit) == 5 &&
                                                 qr_wordvec_neighbours(wv, "qwertyzz", 5, -2, 0, hit) == 0);
    test_cond("wv-2.6 k < 0 refused", qr_wordvec_neighbours_of(wv, 5, -1, 0, 0, hit) == QR_ERR && has(qr_err_msg(), "k = -1"));
    test_cond("wv-2.7 a bad index refused", qr_wordvec_neighbours_of(wv, n, 5, 0, 0, hit) == QR_ERR &&
                                                has(qr_err_msg(), "word index 2000: expected 0..1999"));
    test_cond("wv-2.8 min_cos NaN refused", qr_wordvec_neighbours(wv, "film", 5, NAN, 0, hit) == QR_ERR);
    test_cond("wv-2.9 a bad POS mode refused", qr_wordvec_neighbours_of(wv, 5, 5, 0, 3, hit) == QR_ERR &&
                                                   has(qr_err_msg(), "pos_match = 3"));
    free(hit);
    free(ref);
}

/* ---- wv-3 ---- */

static void test_golden(qr_wordvec *wv) {
    size_t len;
    char *text = slurp(FIX "cf2k.golden.tsv", &len), *save = NULL;
    int lines = 0, good = 0;
    double maxdiff = 0;
    qr_wordvec_hit hit[10];
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(ln, '\t');
        if (!tab) break;
        *tab = 0;
        int n = qr_wordvec_neighbours(wv, ln, 10, -2, 0, hit), ok = n == 10, j = 0;
        char *s2 = NULL;
        for (char *it = strtok_r(tab + 1, " ", &s2); it && ok; it = strtok_r(NULL, " ", &s2), j++) {
            char *colon = strrchr(it, ':');
            *colon = 0;
            ok = j < n && strcmp(qr_wordvec_word(wv, hit[j].index), it) == 0;
            if (ok) maxdiff = fmax(maxdiff, fabs(hit[j].cos - strtod(colon + 1, NULL)));
        }
        if (!ok) fprintf(stderr, "  wv-3 '%s': another order than numpy's\n", ln);
        lines++;
        good += ok && j == 10;
    }
    free(text);
    printf("wv-3 %d words x 10 neighbours vs numpy: %d the same; max |cos diff| %.3g\n", lines, good, maxdiff);
    test_cond("wv-3.1 numpy's neighbours, in its order", lines == 40 && good == lines);
    test_cond("wv-3.2 |cos diff| <= 1e-6", maxdiff <= 1e-6);
}

/* ---- wv-4 ---- */

static void test_pos(qr_wordvec *wv) {
    size_t len;
    char *text = slurp(FIX "cf2k.pos.tsv", &len), *save = NULL;
    int i = 0, ok = 1;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), i++) {
        char *tab = strchr(ln, '\t');
        int m = 0;
        for (char *p = tab + 1; *p && *p != '-'; p++) m |= *p == 'n' ? 1 : *p == 'v' ? 2 : *p == 'a' ? 4 : 8;
        ok &= qr_wordvec_pos(wv, i) == m;
    }
    free(text);
    test_cond("wv-4.1 every word's POS bits as the table says", ok && i == 2000);
    int film = qr_wordvec_find(wv, "film"), the = qr_wordvec_find(wv, "the");
    test_cond("wv-4.2 'film' noun and verb, 'the' none",
              film >= 0 && qr_wordvec_pos(wv, film) == (QR_POS_NOUN | QR_POS_VERB) && qr_wordvec_pos(wv, the) == 0);
    test_cond("wv-4.3 match ANY", qr_wordvec_pos_match(QR_POS_MATCH_ANY, 0, QR_POS_ADJ));
    test_cond("wv-4.4 match SAME", qr_wordvec_pos_match(1, QR_POS_NOUN | QR_POS_ADJ, QR_POS_ADJ) &&
                                       !qr_wordvec_pos_match(1, QR_POS_NOUN, QR_POS_VERB) && qr_wordvec_pos_match(1, 0, 0) &&
                                       !qr_wordvec_pos_match(1, 0, QR_POS_NOUN));
    test_cond("wv-4.5 match NOUN_VERB", qr_wordvec_pos_match(2, QR_POS_NOUN, QR_POS_VERB) &&
                                            !qr_wordvec_pos_match(2, QR_POS_NOUN, QR_POS_ADV) &&
                                            qr_wordvec_pos_match(2, QR_POS_ADJ, QR_POS_ADJ | QR_POS_ADV));
    qr_wordvec *bare = qr_wordvec_load(CF);
    qr_wordvec_hit hit[5];
    test_cond("wv-4.6 no table: pos -1, a POS match refused naming the table",
              bare && qr_wordvec_pos(bare, 0) == -1 && qr_wordvec_pos_path(bare) == NULL &&
                  qr_wordvec_neighbours_of(bare, 3, 5, 0, QR_POS_MATCH_SAME, hit) == QR_ERR &&
                  has(qr_err_msg(), "needs the POS table") && has(qr_err_msg(), "scripts/setup_attacks.sh"));
    qr_wordvec_free(bare);
}

/* ---- wv-5 ---- */

static void test_counter_fitting(qr_wordvec *cf) {
    qr_wordvec *orig = qr_wordvec_load(FIX "glove2k.qrwv");
    test_cond("wv-5.0 the original vectors load", orig != NULL);
    if (!orig) return;
    int same = qr_wordvec_count(orig) == qr_wordvec_count(cf);
    for (int i = 0; same && i < qr_wordvec_count(cf); i++) same = !strcmp(qr_wordvec_word(orig, i), qr_wordvec_word(cf, i));
    test_cond("wv-5.1 the same words", same);
    size_t len;
    char *text = slurp(FIX "cf2k.pairs.tsv", &len), *save = NULL;
    double sum[2][2] = {{0, 0}, {0, 0}}; /* [syn, ant][before, after] */
    int n[2] = {0, 0}, moved[2] = {0, 0}, missing = 0, top[2][2] = {{0, 0}, {0, 0}};
    qr_wordvec_hit hit[50];
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        char *u = strchr(ln, '\t');
        char *w = u ? strchr(u + 1, '\t') : NULL;
        if (!w) break;
        *u++ = 0;
        *w++ = 0;
        int kind = strcmp(ln, "ant") == 0, i = qr_wordvec_find(cf, u), j = qr_wordvec_find(cf, w);
        if (i < 0 || j < 0) {
            missing++;
            continue;
        }
        double b = qr_wordvec_cos(orig, i, j), a = qr_wordvec_cos(cf, i, j);
        sum[kind][0] += b;
        sum[kind][1] += a;
        moved[kind] += kind ? a < b : a > b;
        n[kind]++;
        /* what TextFooler sees: the other word among the 50 nearest at cos >= 0.5, both ways */
        for (int t = 0; t < 2; t++) {
            const qr_wordvec *v = t ? cf : orig;
            for (int dir = 0; dir < 2; dir++) {
                int q = dir ? j : i, o = dir ? i : j, m = qr_wordvec_neighbours_of(v, q, 50, 0.5, 0, hit);
                for (int h = 0; h < m; h++) top[kind][t] += hit[h].index == o;
            }
        }
    }
    free(text);
    double f[2][2];
    for (int k = 0; k < 2; k++) {
        f[k][0] = top[k][0] / (2.0 * n[k]), f[k][1] = top[k][1] / (2.0 * n[k]);
        printf("wv-5 %s pairs %d: mean cos %.4f -> %.4f (%d of them %s); one among the other's 50 nearest "
               "(cos >= 0.5): %.1f%% -> %.1f%%\n",
               k ? "antonym" : "synonym", n[k], sum[k][0] / n[k], sum[k][1] / n[k], moved[k],
               k ? "moved apart" : "moved closer", 100 * f[k][0], 100 * f[k][1]);
    }
    /* The fixture's pairs are the most frequent ones, whose words carry
     * many constraints each: the authors' per-word averaged step moves
     * them less than the whole file's (docs/ATTACKS.md; measured here
     * synonyms 0.609 -> 0.882, antonyms 0.703 -> 0.565, 71% apart). */
    test_cond("wv-5.2 every pair's words in the fixture", missing == 0 && n[0] > 500 && n[1] > 100);
    test_cond("wv-5.3 synonyms closer: mean cos up by > 0.2", sum[0][1] / n[0] > sum[0][0] / n[0] + 0.2);
    test_cond("wv-5.4 antonyms apart: mean cos down by > 0.1", sum[1][1] / n[1] < sum[1][0] / n[1] - 0.1);
    test_cond("wv-5.5 most pairs moved the right way", moved[0] > 0.95 * n[0] && moved[1] > 0.6 * n[1]);
    test_cond("wv-5.6 more synonyms among the 50 nearest (by > 20 points)", f[0][1] > f[0][0] + 0.2);
    test_cond("wv-5.7 fewer antonyms among the 50 nearest (by > 20 points)", f[1][1] < f[1][0] - 0.2);
    qr_wordvec_free(orig);
}

/* ---- wv-6 ---- */

static void test_stopwords(void) {
    size_t len;
    char *text = slurp("scripts/attacks/stopwords_textfooler.txt", &len), *save = NULL;
    int i = 0, ok = 1;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), i++)
        ok &= qr_wordvec_stopword(i) && strcmp(qr_wordvec_stopword(i), ln) == 0 && qr_wordvec_is_stopword(ln);
    free(text);
    test_cond("wv-6.1 266 stop words, as the data file", ok && i == 266 && qr_wordvec_stopword_count() == 266 &&
                                                            qr_wordvec_stopword(266) == NULL);
    test_cond("wv-6.2 case folded, contractions", qr_wordvec_is_stopword("The") && qr_wordvec_is_stopword("DOESN'T") &&
                                                      qr_wordvec_is_stopword("noone"));
    test_cond("wv-6.3 not stop words", !qr_wordvec_is_stopword("film") && !qr_wordvec_is_stopword("") &&
                                           !qr_wordvec_is_stopword(NULL) && !qr_wordvec_is_stopword("thereuponxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
}

/* ---- wv-7 ---- */

/* a .qrwv file in the test's folder: header fields, words, vectors; crc
 * computed unless crc_override */
static char *write_qrwv(const char *name, const char *magic, uint32_t version, uint32_t n, uint32_t dim,
                        uint64_t wbytes, const char *block, size_t block_len, const float *vec, size_t n_floats,
                        int bad_crc, size_t extra) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    size_t pad = (4 - block_len % 4) % 4, body = block_len + pad + n_floats * 4 + extra;
    uint8_t *b = calloc(1, 32 + body);
    memcpy(b, magic, 4);
    memcpy(b + 4, &version, 4);
    memcpy(b + 8, &n, 4);
    memcpy(b + 12, &dim, 4);
    memcpy(b + 16, &wbytes, 8);
    memcpy(b + 32, block, block_len);
    memcpy(b + 32 + block_len + pad, vec, n_floats * 4);
    uint32_t crc = qr_wordvec_crc32(0, b + 32, body) ^ (bad_crc ? 1u : 0u);
    memcpy(b + 24, &crc, 4);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, 32 + body, f);
    fclose(f);
    free(b);
    return path;
}

static void expect_refused(const char *id, const char *path, const char *need1, const char *need2) {
    qr_wordvec *wv = qr_wordvec_load(path);
    const char *msg = qr_err_msg();
    int ok = wv == NULL && has(msg, path) && has(msg, need1) && (!need2 || has(msg, need2));
    test_cond(id, ok);
    if (!ok) fprintf(stderr, "  %s: %s\n", id, wv ? "loaded" : msg);
    qr_wordvec_free(wv);
}

static void test_hostile(void) {
    const float v2[4] = {1, 0, 0.6f, 0.8f}; /* two unit vectors of dim 2 */
    const char blk[] = "cat\0dog"; /* 8 bytes with the final NUL */
    char *p;
    p = write_qrwv("good.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, v2, 4, 0, 0);
    qr_wordvec *ok = qr_wordvec_load(p);
    test_cond("wv-7.0 a hand-made 2-word file loads", ok && qr_wordvec_count(ok) == 2 && qr_wordvec_find(ok, "dog") == 1 &&
                                                        fabs(qr_wordvec_cos(ok, 0, 1) - 0.6) < 1e-7);
    qr_wordvec_free(ok);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.qrwv", tmpdir);
    expect_refused("wv-7.1 a missing file: named, with the setup command", missing, "no such word-vector file",
                   "scripts/setup_attacks.sh");
    snprintf(missing, sizeof missing, "%s/empty.qrwv", tmpdir);
    fclose(fopen(missing, "wb"));
    expect_refused("wv-7.2 an empty file", missing, "", NULL);
    p = write_qrwv("short.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, v2, 4, 0, 0);
    if (truncate(p, 20) != 0) perror("truncate");
    expect_refused("wv-7.3 shorter than the header", p, "20 bytes: too short for the 32-byte header", NULL);
    p = write_qrwv("magic.qrwv", "GGUF", 1, 2, 2, 8, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.4 wrong magic", p, "magic: expected \"QRWV\"", "47 47 55 46");
    p = write_qrwv("version.qrwv", "QRWV", 2, 2, 2, 8, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.5 another version", p, "header field version = 2", "reads version 1");
    p = write_qrwv("nwords.qrwv", "QRWV", 1, 4000000000u, 2, 8, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.6 oversized n_words: the bound from the word block", p, "header field n_words = 4000000000",
                   "holds at most 4 words");
    p = write_qrwv("wbytes.qrwv", "QRWV", 1, 2, 2, UINT64_C(1) << 40, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.7 oversized words_bytes: the bound from the file", p,
                   "header field words_bytes = 1099511627776 exceeds the 24 bytes after the 32-byte header", NULL);
    p = write_qrwv("dim.qrwv", "QRWV", 1, 2, 100000, 8, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.8 oversized dim", p, "header field dim = 100000: expected 1..4096", NULL);
    p = write_qrwv("vectors.qrwv", "QRWV", 1, 2, 3, 8, blk, 8, v2, 4, 0, 0);
    expect_refused("wv-7.9 vectors beyond the file", p, "n_words = 2 x dim = 3: the vectors need 24 bytes",
                   "the file has 16");
    p = write_qrwv("trunc.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, v2, 4, 0, 0);
    if (truncate(p, 32 + 8 + 12) != 0) perror("truncate");
    expect_refused("wv-7.10 truncated in the vectors", p, "the vectors need 16 bytes, the file has 12", NULL);
    p = write_qrwv("trail.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, v2, 4, 0, 4);
    expect_refused("wv-7.11 trailing bytes", p, "size 60 bytes, expected 56", "trailing bytes");
    p = write_qrwv("crc.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, v2, 4, 1, 0);
    expect_refused("wv-7.12 a bad checksum", p, "header field crc32", "(corrupt)");
    const float nu[4] = {1, 0, 0.6f, 0.9f};
    p = write_qrwv("norm.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, nu, 4, 0, 0);
    expect_refused("wv-7.13 a vector that is not unit", p, "vector 1 ('dog') has norm 1.08", "expected unit vectors");
    const float inf[4] = {INFINITY, 0, 0.6f, 0.8f};
    p = write_qrwv("inf.qrwv", "QRWV", 1, 2, 2, 8, blk, 8, inf, 4, 0, 0);
    expect_refused("wv-7.14 a vector that is not finite", p, "vector 0 ('cat'), component 0 is not finite", NULL);
    p = write_qrwv("dup.qrwv", "QRWV", 1, 2, 2, 8, "cat\0cat", 8, v2, 4, 0, 0);
    expect_refused("wv-7.15 a repeated word", p, "word 1 'cat' repeats word 0", NULL);
    p = write_qrwv("emptyword.qrwv", "QRWV", 1, 2, 2, 8, "\0catdog", 8, v2, 4, 0, 0);
    expect_refused("wv-7.16 an empty word", p, "word 0 (block byte 0): 0 bytes, expected 1..63", NULL);
    p = write_qrwv("space.qrwv", "QRWV", 1, 2, 2, 8, "c t\0dog", 8, v2, 4, 0, 0);
    expect_refused("wv-7.17 a word with a space", p, "word 0 (block byte 0): byte 0x20 at 1", NULL);
    char longblk[80];
    memset(longblk, 'a', 64);
    memcpy(longblk + 64, "\0dog", 5); /* 69 bytes */
    p = write_qrwv("long.qrwv", "QRWV", 1, 2, 2, 69, longblk, 69, v2, 4, 0, 0);
    expect_refused("wv-7.18 a word longer than 63 bytes", p, "word 0 (block byte 0): 64 bytes, expected 1..63", NULL);
    p = write_qrwv("fewer.qrwv", "QRWV", 1, 3, 2, 8, blk, 8, (const float[6]){1, 0, 0.6f, 0.8f, 0, 1}, 6, 0, 0);
    expect_refused("wv-7.19 fewer words than n_words", p, "header field n_words = 3, but the word block ends after 2 words",
                   NULL);
    p = write_qrwv("more.qrwv", "QRWV", 1, 1, 2, 8, blk, 8, v2, 2, 0, 0);
    expect_refused("wv-7.20 more words than n_words", p, "header field words_bytes = 8, but its 1 words end at byte 4",
                   NULL);
    qr_wordvec *m = qr_wordvec_from_memory("QRWV", 4, "mem");
    test_cond("wv-7.21 from memory: named", !m && has(qr_err_msg(), "mem: 4 bytes: too short"));
}

/* ---- wv-8 ---- */

static void expect_pos_refused(qr_wordvec *wv, const char *id, const char *text, const char *need) {
    char path[600];
    snprintf(path, sizeof path, "%s/pos.tsv", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    int rc = qr_wordvec_load_pos(wv, path);
    test_cond(id, rc == QR_ERR && has(qr_err_msg(), path) && has(qr_err_msg(), need));
}

static void test_pos_hostile(void) {
    const float v2[4] = {1, 0, 0.6f, 0.8f};
    qr_wordvec *wv = qr_wordvec_load(write_qrwv("pos.qrwv", "QRWV", 1, 2, 2, 8, "cat\0dog", 8, v2, 4, 0, 0));
    char path[600];
    snprintf(path, sizeof path, "%s/pos.tsv", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs("cat\tn\ndog\tnv", f); /* no final newline: accepted */
    fclose(f);
    test_cond("wv-8.0 a good table loads", wv && qr_wordvec_load_pos(wv, path) == QR_OK && qr_wordvec_pos(wv, 1) == 3);
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    expect_pos_refused(wv, "wv-8.1 bigger than the bound", big, "199 bytes: a POS table of 2 words is at most 140 bytes");
    expect_pos_refused(wv, "wv-8.2 a line short", "cat\tn\n", "1 lines, expected one per word");
    expect_pos_refused(wv, "wv-8.3 a line extra", "cat\tn\ndog\tv\nemu\tn\n", "line 3: the embedding");
    expect_pos_refused(wv, "wv-8.4 another word", "cat\tn\ndig\tv\n", "line 2: expected \"dog<TAB>letters\"");
    expect_pos_refused(wv, "wv-8.5 a bad letter", "cat\tnx\ndog\tv\n", "line 1 ('cat'): part of speech 'nx'");
    expect_pos_refused(wv, "wv-8.6 a letter twice", "cat\tnn\ndog\tv\n", "part of speech 'nn'");
    expect_pos_refused(wv, "wv-8.7 no letters", "cat\t\ndog\tv\n", "part of speech ''");
    test_cond("wv-8.8 a refused table leaves the loaded one", qr_wordvec_pos(wv, 1) == 3);
    snprintf(path, sizeof path, "%s/nopos.tsv", tmpdir);
    test_cond("wv-8.9 a missing table: named", qr_wordvec_load_pos(wv, path) == QR_ERR && has(qr_err_msg(), path) &&
                                                   has(qr_err_msg(), "cannot open the POS table"));
    qr_wordvec_free(wv);
}

/* ---- wv-9 ---- */

/* An attack whose perturb runs a host service named by the text:
 *   "has"                       -> "1" if the host has the 1.3 services
 *   "cand WORD K MIN_COS MODE"  -> "N word:cos:pos ..."
 *   "stop WORD"                 -> "1" / "0" */
static const char *lex_src =
    "#include \"qr_plugin.h\"\n"
    "#include <stdio.h>\n#include <string.h>\n"
    "typedef struct { const qr_host *host; } st;\n"
    "static void *cr(const qr_host *h, const char *const *kv, int n) { return QR_STATE_NEW(st, h, kv, n, NULL, \"attack 't_lex'\"); }\n"
    "static int perturb(void *self, const char *text, double (*q)(void *, const char *), void *ctx, int budget,\n"
    "                   uint64_t seed, char **out) {\n"
    "    const qr_host *h = ((st *)self)->host;\n"
    "    char word[256]; int k = 0, mode = 0; double mc = 0; char *s = malloc(65536); s[0] = 0;\n"
    "    if (!strcmp(text, \"has\")) { sprintf(s, \"%d\", QR_HOST_HAS(h, candidates) && QR_HOST_HAS(h, is_stopword)); }\n"
    "    else if (sscanf(text, \"cand %255s %d %lf %d\", word, &k, &mc, &mode) == 4) {\n"
    "        qr_candidate c[64]; int n = h->candidates(h, word, k, mc, mode, c);\n"
    "        if (n < 0) { free(s); return QR_PLUGIN_ERR; }\n"
    "        size_t at = (size_t)sprintf(s, \"%d\", n);\n"
    "        for (int i = 0; i < n; i++) at += (size_t)sprintf(s + at, \" %s:%.9g:%u\", c[i].word, c[i].cos, c[i].pos);\n"
    "    } else if (sscanf(text, \"stop %255s\", word) == 1) {\n"
    "        int r = h->is_stopword(h, word); if (r < 0) { free(s); return QR_PLUGIN_ERR; }\n"
    "        sprintf(s, \"%d\", r);\n"
    "    } else { free(s); return h->err_set(\"attack 't_lex': bad command '%s'\", text); }\n"
    "    *out = s; return QR_PLUGIN_OK;\n"
    "}\n"
    "QR_ATTACK_PLUGIN(\"t_lex\", \"1.3\", \"MIT\", \"runs the 1.3 host services\", .create = cr,\n"
    "                 .destroy = qr_state_free, .perturb = perturb);\n";

static double no_query(void *ctx, const char *c) { (void)ctx, (void)c; return 0; }

/* run the plugin's perturb on cmd: its output (malloc'd) or NULL */
static char *run(qr_instance *a, const char *cmd) {
    const qr_attack_ops *ops = qr_instance_ops(a);
    char *out = NULL;
    qr_err_clear();
    if (ops->perturb(qr_instance_self(a), cmd, no_query, NULL, 1, 0, &out) != QR_PLUGIN_OK) return NULL;
    return out;
}

static void test_host_services(void) {
    char c[600], so[600], cmd[2048];
    snprintf(c, sizeof c, "%s/t_lex.c", tmpdir);
    snprintf(so, sizeof so, "%s/t_lex.so", tmpdir);
    FILE *f = fopen(c, "w");
    fputs(lex_src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -w -I'%s/core' -o '%s' '%s'", QR_SOURCE_DIR, so, c);
    if (system(cmd) != 0 || qr_plugin_load(so) != QR_OK) {
        fprintf(stderr, "  %s / %s\n", cmd, qr_err_msg());
        test_cond("wv-9.0 build and load the test attack", 0);
        return;
    }
    qr_instance *a = qr_instance_new(QR_KIND_ATTACK, "t_lex", NULL, 0);
    test_cond("wv-9.0 build and load the test attack", a != NULL);
    if (!a) return;
    char *r = run(a, "has");
    test_cond("wv-9.1 the host has the ABI 1.3 services", r && !strcmp(r, "1") && QR_PLUGIN_ABI_MINOR >= 3);
    free(r);
    qr_host old = {.struct_size = (uint32_t)offsetof(qr_host, candidates)};
    test_cond("wv-9.2 a 1.2-sized host table has not", !QR_HOST_HAS(&old, candidates) && !QR_HOST_HAS(&old, is_stopword));

    qr_wordvec_serve(NULL);
    r = run(a, "cand film 5 0.5 0");
    test_cond("wv-9.3 nothing served: candidates refused naming the resource and the setup command",
              !r && has(qr_err_msg(), "host service candidates: no word-level attack resources loaded") &&
                  has(qr_err_msg(), "glove50-cf-50k.qrwv") && has(qr_err_msg(), "scripts/setup_attacks.sh"));
    r = run(a, "stop the");
    test_cond("wv-9.4 nothing served: is_stopword refused the same way",
              !r && has(qr_err_msg(), "host service is_stopword") && has(qr_err_msg(), "scripts/setup_attacks.sh"));

    qr_wordvec *wv = qr_wordvec_load(CF);
    qr_wordvec_serve(wv);
    test_cond("wv-9.5 served", qr_wordvec_served() == wv && qr_plugins_lexicon() != NULL);
    r = run(a, "cand film 5 0.5 2");
    test_cond("wv-9.6 a POS match without the table refused naming it",
              !r && has(qr_err_msg(), "needs the part-of-speech table") && has(qr_err_msg(), CF));
    qr_wordvec_load_pos(wv, FIX "cf2k.pos.tsv"); /* the host sees the table at once */
    int same = 1, queries = 0;
    const char *words[] = {"film", "Good", "quickly", "increase", "east", "qwertyzz"};
    for (int m = 0; m <= 2; m++)
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
            snprintf(cmd, sizeof cmd, "cand %s 50 0.5 %d", words[w], m);
            r = run(a, cmd);
            qr_wordvec_hit hit[50];
            int n = qr_wordvec_neighbours(wv, words[w], 50, 0.5, m, hit);
            char want[65536];
            size_t at = (size_t)sprintf(want, "%d", n);
            for (int i = 0; i < n; i++)
                at += (size_t)sprintf(want + at, " %s:%.9g:%d", qr_wordvec_word(wv, hit[i].index), hit[i].cos,
                                      qr_wordvec_pos(wv, hit[i].index));
            if (!r || strcmp(r, want)) fprintf(stderr, "  wv-9.7 %s:\n  got  %s\n  want %s\n", cmd, r ? r : qr_err_msg(), want);
            same &= r && !strcmp(r, want);
            queries++;
            free(r);
        }
    test_cond("wv-9.7 candidates = qr_wordvec_neighbours (18 queries, every POS mode)", same && queries == 18);
    { /* a huge k: the provider allocates by the vocabulary, not by k (out has room for all words) */
        const qr_lexicon *lx = qr_plugins_lexicon();
        qr_candidate *all = malloc(2000 * sizeof *all);
        int got = lx->candidates(lx->ctx, "film", 2000000000, -2, QR_POS_MATCH_ANY, all);
        test_cond("wv-9.8a k = 2e9 gives the 1999 others", got == 1999);
        free(all);
    }
    r = run(a, "cand qwertyzz 50 0.5 2");
    test_cond("wv-9.8 a word the embedding lacks: none", r && !strcmp(r, "0"));
    free(r);
    r = run(a, "cand film -1 0.5 0");
    test_cond("wv-9.9 k < 0 refused", !r && has(qr_err_msg(), "host service candidates: k = -1"));
    r = run(a, "cand film 5 0.5 7");
    test_cond("wv-9.10 a bad pos_match refused", !r && has(qr_err_msg(), "pos_match = 7"));
    char *r1 = run(a, "stop Doesn't"), *r2 = run(a, "stop film");
    test_cond("wv-9.11 is_stopword", r1 && r2 && !strcmp(r1, "1") && !strcmp(r2, "0"));
    free(r1);
    free(r2);
    qr_wordvec_free(wv); /* the served one: serving stops, nothing dangles */
    r = run(a, "cand film 5 0.5 0");
    test_cond("wv-9.12 freeing the served embedding stops the service",
              !r && qr_wordvec_served() == NULL && qr_plugins_lexicon() == NULL && has(qr_err_msg(), "no word-level"));
    qr_instance_free(a);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    qr_wordvec *wv = qr_wordvec_load(CF);
    if (!wv) {
        fprintf(stderr, "%s (run from the repository root)\n", qr_err_msg());
        return 1;
    }
    test_load(wv);
    test_cond("wv-4.0 the fixture's POS table loads", qr_wordvec_load_pos(wv, FIX "cf2k.pos.tsv") == QR_OK);
    test_neighbours(wv);
    test_golden(wv);
    test_pos(wv);
    test_counter_fitting(wv);
    test_stopwords();
    test_hostile();
    test_pos_hostile();
    qr_wordvec_free(wv);
    test_host_services();
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmpdir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    qr_plugins_shutdown();
    return test_report();
}
