/* fuzz_wordvec.c - libFuzzer target for the word-level resource files
 * (core/text/wordvec.c): the .qrwv word-vector file and the POS table.
 *
 * Each input is read three ways:
 *   1. as a .qrwv file, as is;
 *   2. as a .qrwv file with its crc32 field recomputed (when it has a
 *      header), so that mutations get past the checksum to the word block
 *      and the vectors;
 *   3. as a POS table of the committed fixture (tests/fixtures/attacks/
 *      cf2k.qrwv, loaded once: run from the repository root).
 * Whatever loads must hold up: every word found at its index, neighbours
 * at most k, sorted by decreasing cosine, within [-1.01, 1.01], and a
 * refused file leaves a message. Run through scripts/fuzz.sh. */
#define _POSIX_C_SOURCE 200809L
#include "qr.h"
#include "text/wordvec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static qr_wordvec *fixture;

static void check(const qr_wordvec *wv) {
    int n = qr_wordvec_count(wv);
    for (int i = 0; i < n; i++)
        if (qr_wordvec_find(wv, qr_wordvec_word(wv, i)) != i) abort();
    qr_wordvec_hit hit[8];
    for (int q = 0; q < n && q < 4; q++) {
        int m = qr_wordvec_neighbours_of(wv, q, 8, -2, QR_POS_MATCH_ANY, hit);
        if (m < 0 || m > 8 || m > n - 1) abort();
        for (int j = 0; j < m; j++) {
            if (hit[j].index == q || hit[j].index < 0 || hit[j].index >= n) abort();
            if (hit[j].cos < -1.01f || hit[j].cos > 1.01f) abort();
            if (j && hit[j].cos > hit[j - 1].cos) abort();
        }
    }
}

static void try_load(const uint8_t *data, size_t size) {
    qr_err_clear();
    qr_wordvec *wv = qr_wordvec_from_memory(data, size, "fuzz.qrwv");
    if (!wv) {
        if (!qr_err_msg()[0]) abort(); /* a refusal says why */
        return;
    }
    check(wv);
    qr_wordvec_free(wv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fixture) {
        fixture = qr_wordvec_load("tests/fixtures/attacks/cf2k.qrwv");
        if (!fixture) {
            fprintf(stderr, "fuzz_wordvec: %s (run from the repository root)\n", qr_err_msg());
            abort();
        }
    }
    try_load(data, size);
    if (size >= QR_WORDVEC_HEADER) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        uint32_t crc = qr_wordvec_crc32(0, fixed + QR_WORDVEC_HEADER, size - QR_WORDVEC_HEADER);
        for (int k = 0; k < 4; k++) fixed[24 + k] = (uint8_t)(crc >> (8 * k));
        try_load(fixed, size);
        free(fixed);
    }
    qr_err_clear();
    if (qr_wordvec_parse_pos(fixture, (const char *)data, size, "fuzz.pos.tsv") != QR_OK && !qr_err_msg()[0]) abort();
    for (int i = 0; i < qr_wordvec_count(fixture); i++) {
        int m = qr_wordvec_pos(fixture, i);
        if (m > 15) abort();
    }
    return 0;
}
