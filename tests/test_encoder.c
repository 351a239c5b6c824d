/* test_encoder.c - the sentence encoder (core/encoder/) and its WordPiece
 * tokenizer (core/text/wordpiece.c) against Hugging Face references made by
 * scripts/ref/make_encoder_fixtures.py (tests/fixtures/encoder/).
 *
 *  a. Tokenizer, exact (tolerance zero): every case of tokens.jsonl (ids
 *     from the real all-MiniLM-L6-v2 tokenizer.json, on the committed real
 *     vocab.txt); every one of the 1,112,064 code points normalised and
 *     classed as tokenizers does (unicode_blocks.txt: a digest per block of
 *     4096); the tiny model's own vocabulary; invalid UTF-8, truncation and
 *     bad vocabularies.
 *  b. Forward on a tiny random BERT (tests/fixtures/encoder/tiny/): last
 *     hidden state and pooled, normalised vectors against transformers'
 *     BertModel on a padded batch, and on a mask with holes; embed() on the
 *     texts (its own batching); batch invariance; bad model directories.
 *     Tolerance TOL_HIDDEN on the hidden state, TOL_POOLED on the pooled
 *     vectors (float32 both sides; the differences are rounding).
 *  c. The real model, when scripts/fetch_encoder.sh has put it in the cache
 *     ($QRUN_CACHE/encoder/all-MiniLM-L6-v2, else
 *     ~/.cache/qrun/encoder/all-MiniLM-L6-v2): its embeddings of 10
 *     sentences against real_ref.safetensors (TOL_POOLED); skipped with a
 *     message otherwise.
 * Every comparison prints its maximum difference. */
#define _POSIX_C_SOURCE 200809L
#include "encoder/encoder.h"
#include "harness.h"
#include "io/safetensors.h"
#include "qr.h"
#include "text/wordpiece.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#define FIX "tests/fixtures/encoder/"
#define TOL_HIDDEN 1e-5
#define TOL_POOLED 1e-6

/* ---- helpers ---------------------------------------------------------- */

static float *read_tensor(const qr_st_file *f, const char *name, int64_t *shape0, int64_t *shape1) {
    const qr_st_tensor *t = qr_st_find(f, name);
    if (!t) return NULL;
    float *p = qr_xmalloc(sizeof(float) * (size_t)(t->n_elems ? t->n_elems : 1));
    if (qr_st_read_f32(f, t, p, t->n_elems)) {
        free(p);
        return NULL;
    }
    if (shape0) *shape0 = t->n_dims > 0 ? t->shape[0] : 1;
    if (shape1) *shape1 = t->n_dims > 1 ? t->shape[1] : 1;
    return p;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN counts as the largest */
    }
    return m;
}

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static char *unhex(const char *h, size_t *n) {
    size_t len = strlen(h) / 2;
    char *o = qr_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) o[i] = (char)(hexval(h[2 * i]) * 16 + hexval(h[2 * i + 1]));
    o[len] = 0;
    *n = len;
    return o;
}

static void print_ids(const char *tag, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", tag, n);
    for (int i = 0; i < n && i < 32; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 32 ? " ...\n" : "\n");
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(s, f);
    fclose(f);
}

static int has(const char *msg, const char *what) { return msg && strstr(msg, what) != NULL; }

/* ---- a. tokenizer ------------------------------------------------------ */

static void test_tokens_jsonl(const qr_wordpiece *w) {
    char *buf = qr_read_file(FIX "tokens.jsonl", NULL);
    test_cond("tokens.jsonl readable", buf != NULL);
    if (!buf) return;
    int n = 0, match = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *hx = cJSON_GetObjectItem(j, "hex"), *ids = cJSON_GetObjectItem(j, "ids");
        if (!cJSON_IsString(hx) || !cJSON_IsArray(ids)) {
            cJSON_Delete(j);
            continue;
        }
        size_t len;
        char *text = unhex(hx->valuestring, &len);
        int nw = cJSON_GetArraySize(ids);
        int32_t *want = qr_xmalloc(sizeof(int32_t) * (size_t)(nw + 1));
        for (int i = 0; i < nw; i++) want[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        int32_t *got = NULL;
        int ng = 0;
        int rc = qr_wordpiece_encode(w, text, len, 256, &got, &ng);
        n++;
        if (rc == QR_OK && same_ids(got, ng, want, nw)) {
            match++;
        } else {
            const cJSON *t = cJSON_GetObjectItem(j, "text");
            fprintf(stderr, "tokens.jsonl case %d differs: %.60s\n", n, cJSON_IsString(t) ? t->valuestring : "?");
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
        }
        free(got);
        free(want);
        free(text);
        cJSON_Delete(j);
    }
    free(buf);
    printf("tokenizer: %d/%d cases of tokens.jsonl exact\n", match, n);
    test_cond("tokens.jsonl has the cases", n >= 30);
    test_cond("every tokens.jsonl case exact", match == n);
}

/* FNV-1a 64 over each code point's normalised UTF-8, 0xFF, 'P'/'O' (the
 * record of make_encoder_fixtures.py's unicode_blocks) */
static void test_unicode_blocks(void) {
    char *buf = qr_read_file(FIX "unicode_blocks.txt", NULL);
    test_cond("unicode_blocks.txt readable", buf != NULL);
    if (!buf) return;
    int blocks = 0, bad = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned start = 0;
        unsigned long long want = 0;
        if (sscanf(line, "%x %llx", &start, &want) != 2) continue;
        uint64_t h = 0xCBF29CE484222325ull;
        for (uint32_t c = start; c < start + 4096; c++) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            char in[4];
            size_t n = (size_t)utf8proc_encode_char((utf8proc_int32_t)c, (utf8proc_uint8_t *)in);
            size_t ol = 0;
            char *o = qr_wordpiece_normalize(in, n, &ol);
            for (size_t i = 0; i < ol; i++) h = (h ^ (uint8_t)o[i]) * 0x100000001B3ull;
            free(o);
            h = (h ^ 0xFF) * 0x100000001B3ull;
            h = (h ^ (uint8_t)(qr_wordpiece_char_class(c) == QR_WP_PUNCT ? 'P' : 'O')) * 0x100000001B3ull;
        }
        blocks++;
        if (h != want) {
            if (bad < 10) fprintf(stderr, "unicode block U+%05X..U+%05X differs from tokenizers\n", start, start + 4095);
            bad++;
        }
    }
    free(buf);
    printf("tokenizer: %d/%d blocks of 4096 code points normalised and classed as tokenizers does\n", blocks - bad,
           blocks);
    test_cond("all 272 unicode blocks read", blocks == 272);
    test_cond("every code point as tokenizers", bad == 0);
}

static void encode_str(const qr_wordpiece *w, const char *s, size_t n, int max_len, int32_t **ids, int *k) {
    if (qr_wordpiece_encode(w, s, n, max_len, ids, k) != QR_OK) {
        *ids = NULL;
        *k = -1;
    }
}

static void test_tokenizer_edges(const qr_wordpiece *w) {
    int32_t *a, *b;
    int na, nb;
    /* bytes that are not UTF-8 are dropped one by one */
    encode_str(w, "na\xefve caf\xc3", 10, 0, &a, &na);
    encode_str(w, "nave caf", 8, 0, &b, &nb);
    test_cond("invalid UTF-8 dropped", na > 2 && same_ids(a, na, b, nb));
    free(a);
    free(b);
    encode_str(w, "\xc3", 1, 0, &a, &na);
    test_cond("a lone lead byte gives [CLS] [SEP]", na == 2 && a[0] == 101 && a[1] == 102);
    free(a);
    /* truncation keeps the first pieces and ends with [SEP] */
    const char *long_s = "the cat sat on the mat and the dog sat on the log";
    encode_str(w, long_s, strlen(long_s), 0, &a, &na);
    encode_str(w, long_s, strlen(long_s), 6, &b, &nb);
    test_cond("max_len 6 gives 6 ids", nb == 6);
    test_cond("truncated: the first pieces, then [SEP]", nb == 6 && na > 6 && memcmp(a, b, 5 * sizeof(int32_t)) == 0 && b[5] == 102);
    free(a);
    free(b);
    encode_str(w, long_s, strlen(long_s), 2, &a, &na);
    test_cond("max_len 2: [CLS] [SEP]", na == 2 && a[0] == 101 && a[1] == 102);
    free(a);
    test_cond("max_len 1 refused", qr_wordpiece_encode(w, "x", 1, 1, &a, &na) == QR_ERR && has(qr_err_msg(), "max_len"));
    /* a special token at the cut */
    encode_str(w, "[MASK] [MASK] [MASK]", 20, 4, &a, &na);
    test_cond("specials count toward max_len", na == 4 && a[1] == 103 && a[2] == 103 && a[3] == 102);
    free(a);
    test_cond("lookups", qr_wordpiece_token_id(w, "[CLS]") == 101 && qr_wordpiece_token_id(w, "##ing") >= 0 &&
                             qr_wordpiece_token_id(w, "no such token") == -1 &&
                             strcmp(qr_wordpiece_token_str(w, 7592), "hello") == 0 && !qr_wordpiece_token_str(w, 30522));
}

static void test_bad_vocab(void) {
    char dir[] = "/tmp/test_encoder.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    write_text(path, "[PAD]\n[CLS]\n[SEP]\nhello\n");
    qr_wordpiece *w = qr_wordpiece_from_file(path);
    test_cond("a vocabulary without [UNK] refused", !w);
    test_cond("  naming the file and the token", has(qr_err_msg(), path) && has(qr_err_msg(), "[UNK]"));
    qr_wordpiece_free(w);
    write_text(path, "");
    w = qr_wordpiece_from_file(path);
    test_cond("an empty vocabulary refused", !w && has(qr_err_msg(), "empty"));
    /* too large: a sparse file past the bound, refused before reading */
    FILE *f = fopen(path, "w");
    if (!f || ftruncate(fileno(f), (off_t)QR_WORDPIECE_MAX_FILE + 1) != 0) {
        perror(path);
        exit(2);
    }
    fclose(f);
    w = qr_wordpiece_from_file(path);
    test_cond("a vocabulary past the bound refused", !w && has(qr_err_msg(), path) && has(qr_err_msg(), "at most"));
    unlink(path);
    w = qr_wordpiece_from_file(path);
    test_cond("a missing vocabulary named", !w && has(qr_err_msg(), path));
    rmdir(dir);
    /* CRLF lines and a repeated token (the later id wins) */
    const char *toks[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b", "a"};
    w = qr_wordpiece_new(toks, 7, "mem");
    int32_t *ids;
    int n;
    encode_str(w, "ab", 2, 0, &ids, &n);
    test_cond("a repeated token keeps its later id", n == 4 && ids[1] == 6 && ids[2] == 5);
    free(ids);
    qr_wordpiece_free(w);
}

/* ---- b. the tiny model -------------------------------------------------- */

static int32_t *to_i32(const float *v, size_t n) {
    int32_t *o = qr_xmalloc(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) o[i] = (int32_t)v[i];
    return o;
}

/* the tiny model against tiny_ref.safetensors */
static void test_tiny(void) {
    qr_encoder *e = qr_encoder_open(FIX "tiny");
    test_cond("tiny model opens", e != NULL);
    if (!e) {
        fprintf(stderr, "  %s\n", qr_err_msg());
        return;
    }
    const qr_encoder_config *c = qr_encoder_cfg(e);
    test_cond("tiny config", c->dim == 32 && c->n_layer == 2 && c->n_head == 4 && c->n_ff == 64 && c->n_pos == 64 &&
                                 c->max_len == 48 && c->normalize == 1);
    qr_st_file *f = qr_st_open(FIX "tiny_ref.safetensors");
    test_cond("tiny_ref opens", f != NULL);
    if (!f) {
        qr_encoder_free(e);
        return;
    }
    int64_t B = 0, T = 0, C = c->dim;
    float *fids = read_tensor(f, "ids", &B, &T), *fmask = read_tensor(f, "mask", NULL, NULL);
    float *want_h = read_tensor(f, "hidden", NULL, NULL), *want_p = read_tensor(f, "pooled", NULL, NULL);
    float *fmask2 = read_tensor(f, "mask2", NULL, NULL), *want_h2 = read_tensor(f, "hidden2", NULL, NULL);
    float *want_p2 = read_tensor(f, "pooled2", NULL, NULL);
    test_cond("tiny_ref tensors", fids && fmask && want_h && want_p && fmask2 && want_h2 && want_p2);
    if (!(fids && fmask && want_h && want_p && fmask2 && want_h2 && want_p2)) return;
    size_t N = (size_t)(B * T);
    int32_t *ids = to_i32(fids, N), *mask = to_i32(fmask, N), *mask2 = to_i32(fmask2, N);

    /* the tokenizer on the tiny vocabulary gives the reference ids */
    const char *meta = qr_st_metadata(f, "sentences");
    cJSON *sent = meta ? cJSON_Parse(meta) : NULL;
    test_cond("tiny sentences in the metadata", cJSON_GetArraySize(sent) == B);
    const char **texts = qr_xcalloc((size_t)B, sizeof(char *));
    int tok_ok = 0;
    for (int b = 0; b < B && b < cJSON_GetArraySize(sent); b++) {
        texts[b] = cJSON_GetArrayItem(sent, b)->valuestring;
        int32_t *got;
        int ng;
        encode_str(qr_encoder_tokenizer(e), texts[b], strlen(texts[b]), c->max_len, &got, &ng);
        int nw = 0;
        while (nw < T && mask[(size_t)b * T + nw]) nw++;
        if (same_ids(got, ng, ids + (size_t)b * T, nw)) tok_ok++;
        else {
            print_ids("want", ids + (size_t)b * T, nw);
            print_ids("got ", got, ng);
        }
        free(got);
    }
    test_cond("tiny vocabulary: ids as transformers'", tok_ok == B);

    float *hid = qr_xmalloc(sizeof(float) * N * C), *pooled = qr_xmalloc(sizeof(float) * B * C);
    int rc = qr_encoder_forward(e, ids, mask, (int)B, (int)T, hid, pooled);
    test_cond("tiny forward", rc == QR_OK);
    double dh = max_diff(hid, want_h, N * C), dp = max_diff(pooled, want_p, (size_t)(B * C));
    printf("tiny (%lld x %lld, padded): max |hidden - HF| = %.3g (tol %.0e), max |pooled - HF| = %.3g (tol %.0e)\n",
           (long long)B, (long long)T, dh, TOL_HIDDEN, dp, TOL_POOLED);
    test_cond("tiny hidden state within tolerance", dh <= TOL_HIDDEN);
    test_cond("tiny pooled within tolerance", dp <= TOL_POOLED);

    rc = qr_encoder_forward(e, ids, mask2, (int)B, (int)T, hid, pooled);
    double dh2 = max_diff(hid, want_h2, N * C), dp2 = max_diff(pooled, want_p2, (size_t)(B * C));
    printf("tiny (mask with holes): max |hidden - HF| = %.3g, max |pooled - HF| = %.3g\n", dh2, dp2);
    test_cond("tiny forward, mask with holes", rc == QR_OK && dh2 <= TOL_HIDDEN && dp2 <= TOL_POOLED);
    /* the check can fail: the other mask's reference is far from this one */
    double dx = max_diff(pooled, want_p, (size_t)(B * C));
    printf("tiny: the same ids under the first mask differ by %.3g (the comparison sees a mask)\n", dx);
    test_cond("a wrong mask is detected", dx > 100 * TOL_POOLED);

    /* embed(): its own tokenization and batching (by length, padded to each
     * batch's longest), the same vectors */
    float *emb = qr_xmalloc(sizeof(float) * B * C);
    rc = qr_encoder_embed(e, texts, NULL, (int)B, emb);
    double de = max_diff(emb, want_p, (size_t)(B * C));
    printf("tiny embed(): max |pooled - HF| = %.3g\n", de);
    test_cond("embed() as the reference", rc == QR_OK && de <= TOL_POOLED);
    /* one at a time: batch invariance */
    double di = 0;
    for (int b = 0; b < B; b++) {
        float one[64];
        rc |= qr_encoder_embed(e, &texts[b], NULL, 1, one);
        double d = max_diff(one, emb + (size_t)b * C, (size_t)C);
        if (d > di) di = d;
    }
    printf("tiny embed(): max |alone - batched| = %.3g\n", di);
    test_cond("batch invariance", rc == QR_OK && di <= TOL_POOLED);
    test_cond("cosine of a vector with itself", fabs(qr_encoder_cosine(emb, emb, (int)C) - 1) < 1e-6);
    float zero[64] = {0};
    test_cond("cosine with zero is 0", qr_encoder_cosine(emb, zero, (int)C) == 0);
    test_cond("embed of none", qr_encoder_embed(e, NULL, NULL, 0, NULL) == QR_OK);

    /* misuse */
    int32_t bad_ids[2] = {2, 5000}, ones[2] = {1, 1};
    test_cond("an id out of range refused", qr_encoder_forward(e, bad_ids, ones, 1, 2, NULL, pooled) == QR_ERR &&
                                               has(qr_err_msg(), "5000"));
    int32_t *many = qr_xcalloc(65, sizeof(int32_t));
    test_cond("T past max_position_embeddings refused",
              qr_encoder_forward(e, many, many, 1, 65, NULL, NULL) == QR_ERR && has(qr_err_msg(), "64"));
    free(many);

    cJSON_Delete(sent);
    free(texts);
    free(emb);
    free(hid);
    free(pooled);
    free(ids);
    free(mask);
    free(mask2);
    free(fids);
    free(fmask);
    free(fmask2);
    free(want_h);
    free(want_p);
    free(want_h2);
    free(want_p2);
    qr_st_close(f);
    qr_encoder_free(e);
}

/* copy the tiny directory to dst, replacing one file's text */
static void tiny_copy(const char *dst, const char *file, const char *text) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r " FIX "tiny '%s'", dst, dst);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot copy the tiny model\n");
        exit(2);
    }
    if (file) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dst, file);
        write_text(p, text);
    }
}

static char *tiny_config_with(const char *key, const char *value) {
    char *s = qr_read_file(FIX "tiny/config.json", NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cJSON_DeleteItemFromObject(j, key);
    if (value) cJSON_AddItemToObject(j, key, cJSON_Parse(value));
    char *o = cJSON_Print(j);
    cJSON_Delete(j);
    return o;
}

static void expect_refused(const char *what, const char *dir, const char *m1, const char *m2) {
    qr_encoder *e = qr_encoder_open(dir);
    int ok = !e && has(qr_err_msg(), m1) && (!m2 || has(qr_err_msg(), m2));
    if (!ok) fprintf(stderr, "  %s: %s\n", what, e ? "(opened)" : qr_err_msg());
    test_cond(what, ok);
    qr_encoder_free(e);
}

static void test_bad_dirs(void) {
    char dir[] = "/tmp/test_encoder_dir.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char d[512];
    snprintf(d, sizeof d, "%s/m", dir);
    expect_refused("a missing directory named", d, d, NULL);
    char *cfg = tiny_config_with("hidden_act", "\"relu\"");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("hidden_act relu refused", d, "config.json", "hidden_act");
    cfg = tiny_config_with("intermediate_size", "128");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("a shape that config.json does not give refused, naming the tensor", d,
                   "encoder.layer.0.intermediate.dense.weight", "expected [128, 32]");
    cfg = tiny_config_with("hidden_size", "48");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("hidden_size against the pooling's dimension", d, "word_embedding_dimension", NULL);
    cfg = tiny_config_with("num_hidden_layers", "3");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("a missing layer named", d, "encoder.layer.2.attention.self.query.weight", NULL);
    cfg = tiny_config_with("vocab_size", "10000000");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("a huge vocab_size refused by the tensor's shape, before allocating", d,
                   "embeddings.word_embeddings.weight", "expected [10000000, 32]");
    cfg = tiny_config_with("num_attention_heads", "5");
    tiny_copy(d, "config.json", cfg);
    free(cfg);
    expect_refused("heads not dividing hidden refused", d, "num_attention_heads", NULL);
    tiny_copy(d, "1_Pooling/config.json", "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": false}");
    expect_refused("CLS pooling refused", d, "1_Pooling/config.json", "pooling_mode_mean_tokens");
    tiny_copy(d, "tokenizer_config.json", "{\"do_lower_case\": false}");
    expect_refused("a cased tokenizer refused", d, "tokenizer_config.json", "do_lower_case");
    tiny_copy(d, "sentence_bert_config.json", "{\"max_seq_length\": 1000}");
    expect_refused("max_seq_length past the positions refused", d, "sentence_bert_config.json", "max_seq_length");
    tiny_copy(d, "modules.json", "[{\"type\": \"sentence_transformers.models.Dense\"}]");
    expect_refused("a Dense module refused", d, "modules.json", "Dense");
    tiny_copy(d, "model.safetensors", "not a safetensors file");
    expect_refused("a bad weights file named", d, "model.safetensors", NULL);
    tiny_copy(d, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    { /* more tokens than embedding rows */
        char p[600], *big = qr_xmalloc(200 * 8 + 64);
        size_t k = (size_t)sprintf(big, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
        for (int i = 0; i < 200; i++) k += (size_t)sprintf(big + k, "t%d\n", i);
        snprintf(p, sizeof p, "%s/vocab.txt", d);
        write_text(p, big);
        free(big);
    }
    expect_refused("a vocabulary larger than the embedding refused", d, "vocab.txt", "vocab_size");
    tiny_copy(d, "modules.json", "[{\"type\": \"sentence_transformers.models.Transformer\"}, "
                                 "{\"type\": \"sentence_transformers.models.Pooling\"}]");
    qr_encoder *e = qr_encoder_open(d);
    test_cond("no Normalize module: not normalised", e && qr_encoder_cfg(e)->normalize == 0);
    qr_encoder_free(e);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- c. the real model ------------------------------------------------- */

static void test_real(void) {
    char dir[4096];
    const char *cache = getenv("QRUN_CACHE"), *home = getenv("HOME");
    if (cache && *cache) snprintf(dir, sizeof dir, "%s/encoder/all-MiniLM-L6-v2", cache);
    else snprintf(dir, sizeof dir, "%s/.cache/qrun/encoder/all-MiniLM-L6-v2", home ? home : ".");
    char w[4200];
    snprintf(w, sizeof w, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(w, &st) != 0) {
        printf("real model: skipped, %s not found (scripts/fetch_encoder.sh fetches it)\n", w);
        return;
    }
    double t0 = qr_now();
    qr_encoder *e = qr_encoder_open(dir);
    test_cond("the real model opens", e != NULL);
    if (!e) {
        fprintf(stderr, "  %s\n", qr_err_msg());
        return;
    }
    const qr_encoder_config *c = qr_encoder_cfg(e);
    printf("real model: %s, %lld parameters, opened in %.2f s\n", dir, (long long)qr_encoder_n_params(e), qr_now() - t0);
    test_cond("all-MiniLM-L6-v2's config", c->dim == 384 && c->n_layer == 6 && c->n_head == 12 && c->n_ff == 1536 &&
                                               c->n_vocab == 30522 && c->max_len == 256 && c->normalize == 1);
    qr_st_file *f = qr_st_open(FIX "real_ref.safetensors");
    int64_t B = 0, T = 0, C = c->dim;
    float *fids = f ? read_tensor(f, "ids", &B, &T) : NULL, *fmask = f ? read_tensor(f, "mask", NULL, NULL) : NULL;
    float *want = f ? read_tensor(f, "pooled", NULL, NULL) : NULL;
    test_cond("real_ref tensors", fids && fmask && want);
    if (fids && fmask && want) {
        size_t N = (size_t)(B * T);
        int32_t *ids = to_i32(fids, N), *mask = to_i32(fmask, N);
        float *pooled = qr_xmalloc(sizeof(float) * B * C), *emb = qr_xmalloc(sizeof(float) * B * C);
        int rc = qr_encoder_forward(e, ids, mask, (int)B, (int)T, NULL, pooled);
        double dp = max_diff(pooled, want, (size_t)(B * C));
        printf("real model (%lld x %lld, padded): max |pooled - sentence-transformers| = %.3g (tol %.0e)\n",
               (long long)B, (long long)T, dp, TOL_POOLED);
        test_cond("real model's embeddings within tolerance", rc == QR_OK && dp <= TOL_POOLED);
        cJSON *sent = cJSON_Parse(qr_st_metadata(f, "sentences"));
        const char **texts = qr_xcalloc((size_t)B, sizeof(char *));
        for (int b = 0; b < B && b < cJSON_GetArraySize(sent); b++) texts[b] = cJSON_GetArrayItem(sent, b)->valuestring;
        rc = cJSON_GetArraySize(sent) == B ? qr_encoder_embed(e, texts, NULL, (int)B, emb) : QR_ERR;
        double de = max_diff(emb, want, (size_t)(B * C));
        printf("real model embed() on the texts: max diff = %.3g\n", de);
        test_cond("real model: embed() on the texts", rc == QR_OK && de <= TOL_POOLED);
        printf("real model: cos(q0, q1) = %.4f (same question), cos(q0, q4) = %.4f (unrelated)\n",
               qr_encoder_cosine(emb, emb + C, (int)C), qr_encoder_cosine(emb, emb + 4 * C, (int)C));
        test_cond("a paraphrase is closer than an unrelated sentence",
                  qr_encoder_cosine(emb, emb + C, (int)C) > qr_encoder_cosine(emb, emb + 4 * C, (int)C) + 0.3);
        cJSON_Delete(sent);
        free(texts);
        free(ids);
        free(mask);
        free(pooled);
        free(emb);
    }
    free(fids);
    free(fmask);
    free(want);
    qr_st_close(f);
    qr_encoder_free(e);
}

int main(void) {
    qr_wordpiece *w = qr_wordpiece_from_file(FIX "vocab.txt");
    test_cond("the real vocab.txt loads", w != NULL);
    if (w) {
        test_cond("30522 tokens, BERT's special ids",
                  qr_wordpiece_n_vocab(w) == 30522 && qr_wordpiece_pad(w) == 0 && qr_wordpiece_unk(w) == 100 &&
                      qr_wordpiece_cls(w) == 101 && qr_wordpiece_sep(w) == 102);
        test_tokens_jsonl(w);
        test_tokenizer_edges(w);
    }
    qr_wordpiece_free(w);
    test_unicode_blocks();
    test_bad_vocab();
    test_tiny();
    test_bad_dirs();
    test_real();
    return test_report();
}
