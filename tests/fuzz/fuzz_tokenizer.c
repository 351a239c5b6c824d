/* fuzz_tokenizer.c - libFuzzer target for the tokenizer's file parsers
 * (vocab.json, merges.txt) and for encoding arbitrary bytes.
 *
 * The input is split at its first 0xFF byte: the first part is written as a
 * vocab.json, the second as merges.txt, and a tokenizer is built from them
 * if they parse; whatever parses, the whole input is also encoded with the
 * real GPT-2 tokenizer (tests/data/gpt2-tokenizer, loaded once), decoded,
 * and checked to round-trip (GPT-2 has a token for every byte).
 * Run through scripts/fuzz.sh (from the repository root). */
#define _POSIX_C_SOURCE 200809L
#include "text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static qr_tokenizer *gpt2;

static void write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char vpath[64], mpath[64];
    if (!gpt2) {
        gpt2 = qr_tokenizer_from_files("tests/data/gpt2-tokenizer/encoder.json", "tests/data/gpt2-tokenizer/vocab.bpe");
        if (!gpt2) {
            fprintf(stderr, "fuzz_tokenizer: run from the repository root\n");
            abort();
        }
        snprintf(vpath, sizeof vpath, "/tmp/fuzz_tok_vocab.%d.json", (int)getpid());
        snprintf(mpath, sizeof mpath, "/tmp/fuzz_tok_merges.%d.txt", (int)getpid());
    }
    const uint8_t *sep = memchr(data, 0xFF, size);
    size_t nv = sep ? (size_t)(sep - data) : size;
    write_file(vpath, data, nv);
    write_file(mpath, sep ? sep + 1 : data + size, sep ? size - nv - 1 : 0);
    qr_tokenizer *t = qr_tokenizer_from_files(vpath, mpath);
    if (t) {
        int32_t *ids = NULL;
        int n = 0;
        if (qr_tokenizer_encode(t, (const char *)data, size, &ids, &n) == 0) {
            char *back = qr_tokenizer_decode(t, ids, n, NULL);
            free(back);
        }
        free(ids);
        qr_tokenizer_free(t);
    }
    int32_t *ids = NULL;
    int n = 0;
    if (qr_tokenizer_encode(gpt2, (const char *)data, size, &ids, &n) != 0) abort();
    size_t len = 0;
    char *back = qr_tokenizer_decode(gpt2, ids, n, &len);
    if (!back || len != size || memcmp(back, data, size) != 0) abort(); /* must round-trip */
    free(back);
    free(ids);
    return 0;
}
