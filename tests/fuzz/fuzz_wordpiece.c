/* fuzz_wordpiece.c - libFuzzer target for the WordPiece tokenizer
 * (core/text/wordpiece.c) on arbitrary bytes, its vocab.txt parser, and
 * the sentence encoder's directory loader (core/encoder/encoder.c: the
 * JSON configuration files).
 *
 * Every input is encoded whole with the real BERT vocabulary
 * (tests/fixtures/encoder/vocab.txt, loaded once) with and without a
 * length limit, and normalised; the ids must start with [CLS], end with
 * [SEP], lie in the vocabulary and respect the limit, and the limited ids
 * must be a prefix of the others (then [SEP]). Then, by the first byte:
 *   'V'  the rest up to the first 0xFF is a vocab.txt; the part after it is
 *        encoded with that vocabulary (same invariants);
 *   'C'  the rest is split at 0xFF bytes into config.json,
 *        1_Pooling/config.json, modules.json and sentence_bert_config.json
 *        of a copy of the tiny model (tests/fixtures/encoder/tiny); if the
 *        directory opens, a sentence is embedded and must give a finite
 *        vector.
 * Run through scripts/fuzz.sh (from the repository root). */
#define _POSIX_C_SOURCE 200809L
#include "encoder/encoder.h"
#include "text/wordpiece.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static qr_wordpiece *bert;
static char tmpdir[64];

static void write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) abort();
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) abort();
    fclose(a);
    fclose(b);
}

/* encode with and without a limit and check the invariants */
static void check_encode(const qr_wordpiece *w, const uint8_t *d, size_t n) {
    int32_t *ids = NULL, *cut = NULL;
    int k = 0, kc = 0;
    if (qr_wordpiece_encode(w, (const char *)d, n, 0, &ids, &k) != 0) abort();
    int nv = qr_wordpiece_n_vocab(w);
    if (k < 2 || ids[0] != qr_wordpiece_cls(w) || ids[k - 1] != qr_wordpiece_sep(w)) abort();
    for (int i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] >= nv) abort();
    int lim = 2 + (int)(n % 7);
    if (qr_wordpiece_encode(w, (const char *)d, n, lim, &cut, &kc) != 0) abort();
    int want = k < lim ? k : lim;
    if (kc != want || cut[kc - 1] != qr_wordpiece_sep(w)) abort();
    if (memcmp(cut, ids, sizeof(int32_t) * (size_t)(kc - 1)) != 0) abort();
    free(ids);
    free(cut);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!bert) {
        bert = qr_wordpiece_from_file("tests/fixtures/encoder/vocab.txt");
        if (!bert) {
            fprintf(stderr, "fuzz_wordpiece: run from the repository root\n");
            abort();
        }
        snprintf(tmpdir, sizeof tmpdir, "/tmp/fuzz_wordpiece.%d", (int)getpid());
        mkdir(tmpdir, 0700);
    }
    check_encode(bert, data, size);
    size_t nl = 0;
    char *norm = qr_wordpiece_normalize((const char *)data, size, &nl);
    if (!norm || norm[nl] != 0) abort();
    free(norm);
    if (size == 0) return 0;

    const uint8_t *rest = data + 1;
    size_t nrest = size - 1;
    char path[256];
    if (data[0] == 'V') {
        const uint8_t *sep = memchr(rest, 0xFF, nrest);
        size_t nv = sep ? (size_t)(sep - rest) : nrest;
        snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
        write_file(path, rest, nv);
        qr_wordpiece *w = qr_wordpiece_from_file(path);
        if (w) {
            check_encode(w, sep ? sep + 1 : rest + nv, sep ? nrest - nv - 1 : 0);
            qr_wordpiece_free(w);
        }
    } else if (data[0] == 'C') {
        static const char *const parts[] = {"config.json", "1_Pooling/config.json", "modules.json",
                                            "sentence_bert_config.json"};
        snprintf(path, sizeof path, "%s/1_Pooling", tmpdir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
        copy_file("tests/fixtures/encoder/tiny/model.safetensors", path);
        snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
        copy_file("tests/fixtures/encoder/tiny/vocab.txt", path);
        const uint8_t *p = rest, *end = rest + nrest;
        for (int i = 0; i < 4; i++) {
            const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
            size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
            snprintf(path, sizeof path, "%s/%s", tmpdir, parts[i]);
            write_file(path, p, n);
            p = sep ? sep + 1 : end;
        }
        qr_encoder *e = qr_encoder_open(tmpdir);
        if (e) {
            const char *s = "the cat sat on the mat";
            float v[64];
            if (qr_encoder_cfg(e)->dim > 64) abort(); /* the tiny weights fix the sizes */
            if (qr_encoder_embed(e, &s, NULL, 1, v) != 0) abort();
            for (int i = 0; i < qr_encoder_cfg(e)->dim; i++)
                if (!isfinite(v[i])) abort();
            qr_encoder_free(e);
        }
    }
    return 0;
}
