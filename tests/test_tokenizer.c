/* test_tokenizer.c - byte-level BPE against reference encodings.
 *
 *  - GPT-2: every case in tests/data/gpt2-tokenizer/cases.jsonl (ids from
 *    GPT-2's own tokenizer) must match exactly.
 *  - SmolLM2: the tokenizer built from the GGUF metadata must match every
 *    string of tests/fixtures/smollm2_tokenizer.jsonl (ids from Hugging Face
 *    `tokenizers`, scripts/ref/make_tokenizer_fixtures.py).
 *  - decode(encode(s)) == s byte for byte for all of those, every SQuAD
 *    context in datasets/squad/tiny.json, and invalid UTF-8.
 *  - Bad input gets a message naming the file / field.
 *  - Encode throughput on the dev-sample contexts is printed.
 * Exact comparisons: the tolerance is zero. */
#define _POSIX_C_SOURCE 200809L
#include "io/gguf.h"
#include "harness.h"
#include "qr.h"
#include "text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GPT2_VOCAB "tests/data/gpt2-tokenizer/encoder.json"
#define GPT2_MERGES "tests/data/gpt2-tokenizer/vocab.bpe"

/* decode(encode(s)) == s, except for bytes the vocabulary has no token
 * for, which encode drops (SmolLM2 lacks 21 bytes; GPT-2 none). */
static int roundtrip(const qr_tokenizer *t, const char *s, size_t n) {
    int32_t *ids = NULL;
    int n_ids = 0;
    if (qr_tokenizer_encode(t, s, n, &ids, &n_ids) != QR_OK) return 0;
    char *want = qr_xmalloc(n + 1);
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (qr_tokenizer_byte_token(t, (uint8_t)s[i]) >= 0) want[nw++] = s[i];
    size_t len = 0;
    char *back = qr_tokenizer_decode(t, ids, n_ids, &len);
    int ok = back && len == nw && memcmp(back, want, nw) == 0;
    free(want);
    free(back);
    free(ids);
    return ok;
}

static void print_ids(const char *tag, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", tag, n);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* Every {"text", "ids"} line of a JSONL file must encode exactly and
 * round-trip. Returns the number of cases, -1 if the file is unreadable. */
static int check_jsonl(const qr_tokenizer *t, const char *path, int *n_match, int *n_rt) {
    char *buf = qr_read_file(path, NULL);
    if (!buf) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return -1;
    }
    int n = 0;
    *n_match = *n_rt = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        if (!cJSON_IsString(text) || !cJSON_IsArray(ids)) {
            fprintf(stderr, "%s: line %d: expected {\"text\": string, \"ids\": array}\n", path, n + 1);
            cJSON_Delete(j);
            n++;
            continue;
        }
        int n_want = cJSON_GetArraySize(ids);
        int32_t *want = qr_xmalloc(sizeof(int32_t) * (size_t)(n_want + 1));
        for (int i = 0; i < n_want; i++) want[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        const char *s = text->valuestring;
        int32_t *got = NULL;
        int n_got = 0;
        int rc = qr_tokenizer_encode(t, s, strlen(s), &got, &n_got);
        int same = rc == QR_OK && n_got == n_want && (n_want == 0 || memcmp(got, want, sizeof(int32_t) * n_want) == 0);
        if (same) {
            (*n_match)++;
        } else {
            fprintf(stderr, "%s: line %d: mismatch for \"%.80s\"%s\n", path, n + 1, s, rc ? qr_err_msg() : "");
            print_ids("want", want, n_want);
            if (got) print_ids("got ", got, n_got);
        }
        if (roundtrip(t, s, strlen(s))) (*n_rt)++;
        else fprintf(stderr, "%s: line %d: decode(encode(s)) != s for \"%.80s\"\n", path, n + 1, s);
        free(got);
        free(want);
        cJSON_Delete(j);
        n++;
    }
    free(buf);
    return n;
}

/* Contexts of a SQuAD v1.1 file: a cJSON tree the caller deletes, and
 * pointers into it. */
static cJSON *squad_contexts(const char *path, const char ***ctx, int *n) {
    char *buf = qr_read_file(path, NULL);
    if (!buf) return NULL;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    *n = 0;
    *ctx = NULL;
    int cap = 0;
    cJSON *art;
    cJSON_ArrayForEach(art, cJSON_GetObjectItem(root, "data")) {
        cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(art, "paragraphs")) {
            cJSON *c = cJSON_GetObjectItem(p, "context");
            if (!cJSON_IsString(c)) continue;
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                *ctx = qr_xrealloc(*ctx, sizeof(char *) * (size_t)cap);
            }
            (*ctx)[(*n)++] = c->valuestring;
        }
    }
    return root;
}

static void check_squad_roundtrip(const qr_tokenizer *t, const char *name) {
    const char **ctx;
    int n, ok = 0;
    cJSON *root = squad_contexts("datasets/squad/tiny.json", &ctx, &n);
    test_cond("datasets/squad/tiny.json readable with contexts", root && n > 0);
    for (int i = 0; i < n; i++) ok += roundtrip(t, ctx[i], strlen(ctx[i]));
    printf("%s: decode(encode(context)) == context for %d/%d tiny.json contexts\n", name, ok, n);
    test_cond("tiny.json contexts round-trip", ok == n);
    free(ctx);
    cJSON_Delete(root);
}

/* Byte strings that are not UTF-8 must encode without error and decode to
 * the same bytes. Deterministic LCG. */
static void check_invalid_utf8(const qr_tokenizer *t, const char *name) {
    static const char *fixed[] = {"\xff", "\xc3", "abc\xc3", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                                  "\xf4\x90\x80\x80 too big", "caf\xe9 latin1", "\x80\x80\x80", "a\0b"};
    static const size_t fixed_len[] = {1, 1, 4, 13, 11, 12, 11, 3, 3};
    int ok = 0, total = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++, total++) ok += roundtrip(t, fixed[i], fixed_len[i]);
    uint32_t x = 12345;
    char buf[64];
    for (int r = 0; r < 2000; r++, total++) {
        size_t n = 1 + r % 63;
        for (size_t k = 0; k < n; k++) {
            x = x * 1664525u + 1013904223u;
            /* Mostly high bytes and spaces, to hit partial sequences. */
            uint8_t v = (uint8_t)(x >> 24);
            buf[k] = (char)((v & 3) == 0 ? ' ' : (v & 3) == 1 ? ('a' + v % 26) : v | 0x80);
        }
        ok += roundtrip(t, buf, n);
    }
    printf("%s: %d/%d invalid-UTF-8 byte strings round-trip\n", name, ok, total);
    test_cond("invalid UTF-8 encodes and round-trips", ok == total);
}

/* One pre-token of 256 KiB (letters, then spaces, then punctuation): the
 * heap-based merge is O(n log n), so this takes milliseconds, not minutes. */
static void check_long_pieces(const qr_tokenizer *t, const char *name) {
    const size_t n = 256 * 1024;
    const char fill[] = {'a', ' ', '-'};
    char *s = qr_xmalloc(n);
    for (int f = 0; f < 3; f++) {
        for (size_t i = 0; i < n; i++) s[i] = f == 0 ? (char)('a' + (i * 7) % 26) : fill[f];
        double t0 = qr_now();
        int ok = roundtrip(t, s, n);
        printf("%s: one %zu-byte run of '%c': round-trip %s in %.3f s\n", name, n, s[0], ok ? "ok" : "FAILED",
               qr_now() - t0);
        test_cond("long single pre-token round-trips", ok);
    }
    free(s);
}

static void throughput(const qr_tokenizer *t, const char *name) {
    const char **ctx;
    int n;
    cJSON *root = squad_contexts("datasets/squad/dev-sample.json", &ctx, &n);
    test_cond("datasets/squad/dev-sample.json readable", root && n > 0);
    if (!root) return;
    size_t bytes = 0, toks = 0;
    int ok = 1;
    double t0 = qr_now();
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        int n_ids;
        size_t l = strlen(ctx[i]);
        if (qr_tokenizer_encode(t, ctx[i], l, &ids, &n_ids) != QR_OK) ok = 0;
        else free(ids);
        bytes += l;
        toks += (size_t)n_ids;
    }
    double dt = qr_now() - t0;
    printf("%s: encoded %d dev-sample contexts, %.2f MB -> %zu tokens in %.3f s: %.1f MB/s\n", name, n,
           bytes / 1e6, toks, dt, bytes / 1e6 / dt);
    test_cond("dev-sample contexts encode", ok);
    free(ctx);
    cJSON_Delete(root);
}

static void check_gpt2(void) {
    qr_tokenizer *t = qr_tokenizer_from_files(GPT2_VOCAB, GPT2_MERGES);
    test_cond("GPT-2 tokenizer loads", t != NULL);
    if (!t) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    test_cond("GPT-2 n_vocab 50257", qr_tokenizer_n_vocab(t) == 50257);
    test_cond("GPT-2 <|endoftext|> = 50256", qr_tokenizer_token_id(t, "<|endoftext|>") == 50256);
    test_cond("GPT-2 bos = eos = 50256", qr_tokenizer_bos(t) == 50256 && qr_tokenizer_eos(t) == 50256);
    test_cond("GPT-2 token_str(995) = \"Ġworld\"", strcmp(qr_tokenizer_token_str(t, 995), "\xc4\xa0world") == 0);
    int n_match, n_rt;
    int n = check_jsonl(t, "tests/data/gpt2-tokenizer/cases.jsonl", &n_match, &n_rt);
    printf("GPT-2: %d/%d cases.jsonl encodings match, %d/%d round-trip\n", n_match, n, n_rt, n);
    test_cond("GPT-2 cases.jsonl all match", n > 0 && n_match == n);
    test_cond("GPT-2 cases.jsonl all round-trip", n > 0 && n_rt == n);

    /* The special token in running text is one id. */
    const char *s = "Hello<|endoftext|> world";
    int32_t *ids;
    int n_ids;
    test_cond("GPT-2 encode with <|endoftext|>", qr_tokenizer_encode(t, s, strlen(s), &ids, &n_ids) == QR_OK);
    test_cond("GPT-2 <|endoftext|> literal -> [15496, 50256, 995]",
              n_ids == 3 && ids[0] == 15496 && ids[1] == 50256 && ids[2] == 995);
    free(ids);

    /* Decode: an out-of-range id is an error naming the index and value. */
    int32_t bad[] = {15496, 50257};
    char *d = qr_tokenizer_decode(t, bad, 2, NULL);
    printf("out-of-range decode: %s\n", d ? "(no error)" : qr_err_msg());
    test_cond("decode rejects id 50257", d == NULL && strstr(qr_err_msg(), "ids[1] = 50257"));
    free(d);
    bad[1] = -1;
    d = qr_tokenizer_decode(t, bad, 2, NULL);
    test_cond("decode rejects id -1", d == NULL && strstr(qr_err_msg(), "ids[1] = -1"));
    free(d);
    size_t dl = 99;
    d = qr_tokenizer_decode(t, NULL, 0, &dl);
    test_cond("decode of no ids is \"\"", d && dl == 0 && d[0] == 0);
    free(d);

    check_squad_roundtrip(t, "GPT-2");
    check_invalid_utf8(t, "GPT-2");
    check_long_pieces(t, "GPT-2");
    throughput(t, "GPT-2");
    qr_tokenizer_free(t);
}

static void check_smollm2(void) {
    char path[4096];
    const char *env = getenv("QRUN_MODEL");
    if (env && *env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME") ? getenv("HOME") : "");
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "FAIL: SmolLM2 model not found at %s (set QRUN_MODEL or run scripts/fetch_model.sh)\n", path);
        test_cond("SmolLM2 GGUF present", 0);
        return;
    }
    qr_gguf *g = qr_gguf_open(path);
    test_cond("SmolLM2 GGUF opens", g != NULL);
    if (!g) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    const char *model = qr_gguf_get_str(g, "tokenizer.ggml.model");
    const char *pre = qr_gguf_get_str(g, "tokenizer.ggml.pre");
    test_cond("tokenizer.ggml.model = gpt2", model && strcmp(model, "gpt2") == 0);
    test_cond("tokenizer.ggml.pre = smollm", pre && strcmp(pre, "smollm") == 0);
    uint64_t n_tok = 0, n_merge = 0, n_type = 0;
    char **tokens = qr_gguf_get_str_array(g, "tokenizer.ggml.tokens", &n_tok);
    char **merges = qr_gguf_get_str_array(g, "tokenizer.ggml.merges", &n_merge);
    int32_t *types = qr_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &n_type);
    int64_t bos = -1, eos = -1;
    test_cond("bos/eos ids present", qr_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos) == QR_OK &&
                                         qr_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos) == QR_OK);
    test_cond("tokens, merges, token_type arrays", tokens && merges && types && n_type == n_tok);
    qr_tokenizer *t = NULL;
    if (tokens && merges && types && n_type == n_tok)
        t = qr_tokenizer_new((const char *const *)tokens, (int)n_tok, (const char *const *)merges, (int)n_merge,
                             types, QR_PRE_SMOLLM);
    test_cond("SmolLM2 tokenizer builds", t != NULL);
    if (!t) fprintf(stderr, "%s\n", qr_err_msg());
    qr_gguf_free_str_array(tokens, n_tok);
    qr_gguf_free_str_array(merges, n_merge);
    free(types);
    qr_gguf_close(g);
    if (!t) return;
    qr_tokenizer_set_special(t, (int32_t)bos, (int32_t)eos);
    printf("SmolLM2: %d tokens, %llu merges, bos %d (%s), eos %d (%s)\n", qr_tokenizer_n_vocab(t),
           (unsigned long long)n_merge, qr_tokenizer_bos(t), qr_tokenizer_token_str(t, qr_tokenizer_bos(t)),
           qr_tokenizer_eos(t), qr_tokenizer_token_str(t, qr_tokenizer_eos(t)));
    test_cond("SmolLM2 49152 tokens", qr_tokenizer_n_vocab(t) == 49152);
    test_cond("SmolLM2 bos = <|im_start|>, eos = <|im_end|>",
              qr_tokenizer_bos(t) == 1 && qr_tokenizer_eos(t) == 2 && qr_tokenizer_is_special(t, 1));

    int n_match, n_rt;
    int n = check_jsonl(t, "tests/fixtures/smollm2_tokenizer.jsonl", &n_match, &n_rt);
    printf("SmolLM2: %d/%d fixture encodings match, %d/%d round-trip\n", n_match, n, n_rt, n);
    test_cond("SmolLM2 fixtures all match", n >= 60 && n_match == n);
    test_cond("SmolLM2 fixtures all round-trip", n >= 60 && n_rt == n);

    check_squad_roundtrip(t, "SmolLM2");
    check_invalid_utf8(t, "SmolLM2");
    throughput(t, "SmolLM2");
    qr_tokenizer_free(t);
}

/* Write text to a fresh temporary file; the path goes in path[32]. */
static int write_tmp(char path[32], const char *text) {
    strcpy(path, "/tmp/qr_tok_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

/* Loading must fail with a message naming the vocab file (in_vocab) or
 * the merges file, and containing want. */
static void expect_load_error(const char *descr, const char *vocab_text, const char *merges_text, int in_vocab,
                              const char *want) {
    char vp[32], mp[32];
    if (!write_tmp(vp, vocab_text) || !write_tmp(mp, merges_text)) {
        test_cond("temporary files", 0);
        return;
    }
    qr_err_clear();
    qr_tokenizer *t = qr_tokenizer_from_files(vp, mp);
    const char *msg = qr_err_msg();
    const char *file = in_vocab ? vp : mp;
    printf("%s: %s\n", descr, t ? "(loaded)" : msg);
    test_cond(descr, t == NULL && strstr(msg, file) && strstr(msg, want));
    qr_tokenizer_free(t);
    unlink(vp);
    unlink(mp);
}

static void check_errors(void) {
    qr_tokenizer *t = qr_tokenizer_from_files("tests/data/gpt2-tokenizer/no-such.json", GPT2_MERGES);
    printf("missing file: %s\n", t ? "(loaded)" : qr_err_msg());
    test_cond("missing vocab file named", !t && strstr(qr_err_msg(), "no-such.json"));
    t = qr_tokenizer_from_files(GPT2_VOCAB, "tests/data/gpt2-tokenizer/no-such.bpe");
    test_cond("missing merges file named", !t && strstr(qr_err_msg(), "no-such.bpe"));

    const char *bytes = "{\"a\": 0, \"b\": 1, \"ab\": 2}";
    expect_load_error("malformed vocab.json (syntax)", "{\"a\": 0, \"b\": ", "a b\n", 1, "invalid JSON");
    expect_load_error("malformed vocab.json (array)", "[1, 2]", "a b\n", 1, "expected a JSON object {\"token\": id");
    expect_load_error("malformed vocab.json (string id)", "{\"a\": \"zero\"}", "", 1, "entry \"a\": expected an integer");
    expect_load_error("malformed vocab.json (fractional id)", "{\"a\": 1.5}", "", 1, "entry \"a\": expected an integer");
    /* ids must be dense, 0..n-1: the issue-13 file that asked for 7.2 GB */
    expect_load_error("vocab.json id beyond its entries", "{\"a\": 900000000, \"b\": 1}", "a b\n", 1,
                      "entry \"a\": expected an integer token id in [0, 2)");
    expect_load_error("vocab.json huge id, one entry", "{\"\": 9e7}", "", 1, "in [0, 1)");
    expect_load_error("vocab.json with a gap", "{\"a\": 0, \"b\": 2}", "", 1, "entry \"b\": expected an integer token id in [0, 2)");
    expect_load_error("malformed vocab.json (duplicate id)", "{\"a\": 0, \"b\": 0}", "", 1, "id 0 is given to both");
    expect_load_error("malformed merge line", bytes, "#version: 0.2\na b\nabc\n", 0, "line 3: merge 'abc'");
    expect_load_error("merge part not in vocab", bytes, "a c\n", 0, "line 1: merge 'a c': right part 'c'");
    expect_load_error("merge result not in vocab", "{\"a\": 0, \"b\": 1}", "a b\n", 0, "merged token 'ab'");

    /* A tokenizer without most byte tokens: bytes it has no token for are
     * dropped (as HF does without an unk token), not a crash. */
    const char *toks[] = {"a", "b", "ab"};
    const char *mrg[] = {"a b"};
    t = qr_tokenizer_new(toks, 3, mrg, 1, NULL, QR_PRE_GPT2);
    test_cond("tiny tokenizer builds", t != NULL);
    int32_t *ids = NULL;
    int n_ids = 0;
    test_cond("tiny: \"abab\" -> [2, 2]",
              qr_tokenizer_encode(t, "abab", 4, &ids, &n_ids) == QR_OK && n_ids == 2 && ids[0] == 2 && ids[1] == 2);
    free(ids);
    /* HF drops the byte before merging, so its neighbours can merge. */
    test_cond("tiny: bytes without token dropped: \"azb\" -> [2]",
              qr_tokenizer_encode(t, "azb", 3, &ids, &n_ids) == QR_OK && n_ids == 1 && ids[0] == 2);
    free(ids);
    test_cond("tiny: \"b\xff\" -> [1]",
              qr_tokenizer_encode(t, "b\xff", 2, &ids, &n_ids) == QR_OK && n_ids == 1 && ids[0] == 1);
    free(ids);
    test_cond("tiny: byte_token('a') = 0, byte_token('z') = -1",
              qr_tokenizer_byte_token(t, 'a') == 0 && qr_tokenizer_byte_token(t, 'z') == -1);
    qr_tokenizer_free(t);
    const char *badm[] = {"a  b"};
    t = qr_tokenizer_new(toks, 3, badm, 1, NULL, QR_PRE_GPT2);
    test_cond("qr_tokenizer_new names merges[0]", !t && strstr(qr_err_msg(), "merges[0]"));
    qr_tokenizer_free(NULL);
}

int main(void) {
    check_gpt2();
    check_smollm2();
    check_errors();
    return test_report();
}
