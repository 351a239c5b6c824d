/* fuzz_squad.c - libFuzzer target for the SQuAD loader, the v1.1 metric
 * and the bootstrap CI, on arbitrary bytes.
 *
 * Build and run (from the repository root; 2 minutes; seeds: tiny.json, cut
 * to max_len by libFuzzer, and a small file with recoverable problems):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *       -Icore core/qr.c core/squad.c tests/fuzz/fuzz_squad.c \
 *       $(pkg-config --cflags --libs libcjson libutf8proc) -lm -o /tmp/fuzz_squad
 *   mkdir -p /tmp/fuzz_squad_corpus && cp datasets/squad/tiny.json /tmp/fuzz_squad_corpus/
 *   printf '%s' '{"data": [{"title": "T", "paragraphs": [{"context": "The cat \u00e9 sat on the mat.",
 *     "qas": [{"id": "q1", "question": "Who?", "answers": [{"answer_start": 4, "text": "cat"},
 *     {"answer_start": 3, "text": "mat"}, {"answer_start": 0, "text": ""}]}, {"id": "q1",
 *     "question": " ", "answers": []}]}]}], "version": "1.1"}' > /tmp/fuzz_squad_corpus/seed.json
 *   /tmp/fuzz_squad -max_total_time=120 -max_len=4096 /tmp/fuzz_squad_corpus
 *
 * What is checked beyond "no crash, no sanitizer report":
 *   loader: every loaded answer text sits at its answer_start (code points)
 *     in its context; counts and warnings are consistent; a failure leaves a
 *     message naming the label.
 *   metric: normalize is idempotent; EM(x,x) = 1; F1(x,x) is 1, or 0 when x
 *     normalises to empty; EM and F1 lie in [0,1] and are symmetric; the
 *     score over answers is the max of the pairwise scores.
 *   bootstrap: lo <= hi, both inside [min, max] of the values. */
#include "qr.h"
#include "text/squad.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static void check_loaded(const qr_squad *s) {
    CHECK(qr_squad_n_warnings(s) >= qr_squad_n_skipped(s));
    for (int i = 0; i < qr_squad_count(s); i++) {
        const qr_squad_example *e = qr_squad_at(s, i);
        CHECK(e && e->id && e->id[0] && e->question && e->context && e->title && e->n_answers >= 1);
        for (int a = 0; a < e->n_answers; a++) {
            const char *c = e->context;
            long b = 0;
            for (int k = 0; k < e->answers[a].answer_start; k++) {
                CHECK(c[b]);
                b++;
                while (((unsigned char)c[b] & 0xC0) == 0x80) b++;
            }
            CHECK(strncmp(c + b, e->answers[a].text, strlen(e->answers[a].text)) == 0);
        }
    }
    for (int i = 0; i < qr_squad_n_warnings(s); i++) CHECK(qr_squad_warning(s, i) != NULL);
}

static void check_metric(const char *a, const char *b) {
    char *na = qr_squad_normalize(a), *nna = qr_squad_normalize(na);
    CHECK(strcmp(na, nna) == 0);
    double em = qr_squad_em(a, a), f1 = qr_squad_f1(a, a);
    CHECK(em == 1.0);
    CHECK(na[0] ? f1 == 1.0 : f1 == 0.0);
    free(nna);
    free(na);

    double e1 = qr_squad_em(a, b), e2 = qr_squad_em(b, a);
    double f_ab = qr_squad_f1(a, b), f_ba = qr_squad_f1(b, a);
    CHECK(e1 == e2 && (e1 == 0.0 || e1 == 1.0));
    CHECK(f_ab >= 0.0 && f_ab <= 1.0 && fabs(f_ab - f_ba) < 1e-15);
    CHECK(e1 == 0.0 || f_ab == 1.0 || f_ab == 0.0); /* EM 1 means equal tokens */

    const char *gts[2] = {a, b};
    double em2, f12;
    qr_squad_score(b, gts, 2, &em2, &f12);
    CHECK(em2 == 1.0); /* b is one of its own answers */
    CHECK(f12 == fmax(qr_squad_f1(b, a), qr_squad_f1(b, b)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the whole input as a SQuAD file */
    qr_err_clear();
    qr_squad *s = qr_squad_load_mem((const char *)data, size, "fuzz.json");
    if (s) check_loaded(s);
    else CHECK(strstr(qr_err_msg(), "fuzz.json") != NULL);
    qr_squad_free(s);

    /* the input split at its first NUL (or in half) as two answers */
    const uint8_t *z = memchr(data, 0, size);
    size_t na = z ? (size_t)(z - data) : size / 2;
    size_t nb = size - na - (z ? 1 : 0);
    char *a = malloc(na + 1), *b = malloc(nb + 1);
    memcpy(a, data, na);
    a[na] = 0;
    memcpy(b, data + size - nb, nb);
    b[nb] = 0;
    /* (b ends at its own first NUL, if any: these are C strings) */
    check_metric(a, b);
    free(a);
    free(b);

    /* bootstrap on up to 64 doubles made from the bytes */
    if (size >= 2) {
        int n = (int)(size - 1) < 64 ? (int)(size - 1) : 64;
        double v[64], mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < n; i++) {
            v[i] = data[i + 1] / 255.0;
            mn = fmin(mn, v[i]);
            mx = fmax(mx, v[i]);
        }
        double lo, hi;
        qr_bootstrap_ci(v, n, 1 + data[0] % 50, data[0], 0.5 + (data[0] % 49) / 100.0, &lo, &hi);
        CHECK(lo <= hi && lo >= mn - 1e-12 && hi <= mx + 1e-12);
    }
    return 0;
}
