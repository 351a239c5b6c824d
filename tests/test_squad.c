/* test_squad.c - SQuAD loading, the official v1.1 EM/F1 metric against
 * fixtures from scripts/ref/make_squad_fixtures.py, error messages for bad
 * files, and the bootstrap CI. Run from the repository root. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "qr.h"
#include "text/squad.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURES "tests/fixtures/squad_metric_cases.jsonl"

/* ---- metric against the Python reference ---- */

static void test_metric_fixtures(void) {
    size_t len;
    char *buf = qr_read_file(FIXTURES, &len);
    test_cond("fixture file readable (run scripts/ref/make_squad_fixtures.py)", buf != NULL);
    if (!buf) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    int n = 0, bad_norm = 0, bad_pair = 0;
    double maxdiff = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        test_cond("fixture line parses", c != NULL);
        if (!c) continue;
        const char *id = cJSON_GetObjectItem(c, "id")->valuestring;
        const char *pred = cJSON_GetObjectItem(c, "prediction")->valuestring;
        const char *norm = cJSON_GetObjectItem(c, "norm_prediction")->valuestring;
        const cJSON *gts = cJSON_GetObjectItem(c, "ground_truths");
        double em_ref = cJSON_GetObjectItem(c, "em")->valuedouble;
        double f1_ref = cJSON_GetObjectItem(c, "f1")->valuedouble;
        int ng = cJSON_GetArraySize(gts);
        const char **g = qr_xmalloc((size_t)ng * sizeof *g);
        for (int i = 0; i < ng; i++) g[i] = cJSON_GetArrayItem(gts, i)->valuestring;

        char *mine = qr_squad_normalize(pred);
        if (strcmp(mine, norm) != 0) {
            bad_norm++;
            fprintf(stderr, "  %s: normalize gives '%s', Python '%s'\n", id, mine, norm);
        }
        free(mine);

        double em, f1;
        qr_squad_score(pred, g, ng, &em, &f1);
        /* the pairwise functions, maxed by hand, must agree with the score */
        double em2 = 0, f12 = 0;
        for (int i = 0; i < ng; i++) {
            em2 = fmax(em2, qr_squad_em(pred, g[i]));
            f12 = fmax(f12, qr_squad_f1(pred, g[i]));
        }
        double d = fmax(fabs(em - em_ref), fabs(f1 - f1_ref));
        if (d > maxdiff) maxdiff = d;
        if (d > 1e-12) fprintf(stderr, "  %s: em %g f1 %.17g, Python em %g f1 %.17g\n", id, em, f1, em_ref, f1_ref);
        if (em2 != em || f12 != f1) bad_pair++;
        free(g);
        cJSON_Delete(c);
        n++;
    }
    free(buf);
    printf("metric: %d fixture cases, max |diff| %.3g (tolerance 1e-12)\n", n, maxdiff);
    test_cond("at least 60 fixture cases", n >= 60);
    test_cond("normalize matches normalize_answer on every case", bad_norm == 0);
    test_cond("EM and F1 match evaluate-v1.1.py to 1e-12", maxdiff <= 1e-12);
    test_cond("qr_squad_em/f1 maxed by hand equal qr_squad_score", bad_pair == 0);
}

static void test_metric_edges(void) {
    double em = -1, f1 = -1;
    qr_squad_score("x", NULL, 0, &em, &f1);
    test_cond("no ground truths scores 0", em == 0 && f1 == 0);
    test_cond("NULL strings are empty", qr_squad_em(NULL, "") == 1 && qr_squad_f1(NULL, NULL) == 0);
    char *n = qr_squad_normalize("\xff The \xc3");
    test_cond("invalid UTF-8 reads as U+FFFD per byte", strcmp(n, "\xef\xbf\xbd \xef\xbf\xbd") == 0);
    free(n);
}

/* ---- loading ---- */

/* byte offset of code point cp in s, or -1 past the end */
static long cp_to_byte(const char *s, long cp) {
    long b = 0;
    for (; cp > 0; cp--) {
        if (!s[b]) return -1;
        b++;
        while (((unsigned char)s[b] & 0xC0) == 0x80) b++;
    }
    return b;
}

static void check_set(const char *path, int want_q, int want_paras, int want_answers, const char *first_id,
                      const char *first_title) {
    double t0 = qr_now();
    qr_squad *s = qr_squad_load(path);
    double dt = qr_now() - t0;
    test_cond(path, s != NULL);
    if (!s) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    int n = qr_squad_count(s), answers = 0, paras = 0, bad = 0, misplaced = 0, self_em = 0;
    const char *last_ctx = NULL;
    for (int i = 0; i < n; i++) {
        const qr_squad_example *e = qr_squad_at(s, i);
        if (!e->id[0] || !e->question[0] || !e->context[0] || !e->title[0] || e->n_answers < 1) bad++;
        if (e->context != last_ctx) paras++;
        last_ctx = e->context;
        const char **g = qr_xmalloc((size_t)e->n_answers * sizeof *g);
        for (int a = 0; a < e->n_answers; a++) {
            const qr_squad_answer *an = &e->answers[a];
            long b = cp_to_byte(e->context, an->answer_start);
            if (b < 0 || strncmp(e->context + b, an->text, strlen(an->text)) != 0) misplaced++;
            g[a] = an->text;
        }
        double em, f1;
        qr_squad_score(e->answers[0].text, g, e->n_answers, &em, &f1);
        self_em += em == 1 && f1 == 1;
        free(g);
        answers += e->n_answers;
    }
    printf("%s: %d questions, %d paragraphs, %d answers, %d skipped, %d warnings, loaded in %.3f s\n", path,
           n, paras, answers, qr_squad_n_skipped(s), qr_squad_n_warnings(s), dt);
    test_cond("question count", n == want_q);
    test_cond("paragraph count (shared contexts)", paras == want_paras);
    test_cond("answer count", answers == want_answers);
    test_cond("nothing skipped or warned in the official data", qr_squad_n_skipped(s) == 0 && qr_squad_n_warnings(s) == 0);
    test_cond("every field non-empty, every question answered", bad == 0);
    test_cond("every answer is at answer_start (code points)", misplaced == 0);
    test_cond("a reference answer scores EM 1 and F1 1 against its own set", self_em == n);
    test_cond("first id", n > 0 && strcmp(qr_squad_at(s, 0)->id, first_id) == 0);
    test_cond("first title", n > 0 && strcmp(qr_squad_at(s, 0)->title, first_title) == 0);
    test_cond("out of range is NULL", qr_squad_at(s, n) == NULL && qr_squad_at(s, -1) == NULL);
    qr_squad_free(s);
}

/* ---- bad files ---- */

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *data, size_t len) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

/* Load must fail with a message containing the file name and each of the
 * given pieces. */
static void expect_fail(const char *name, const char *json, const char *piece1, const char *piece2) {
    const char *path = write_tmp(name, json, strlen(json));
    qr_err_clear();
    qr_squad *s = qr_squad_load(path);
    const char *m = qr_err_msg();
    printf("  %s -> %s\n", name, m);
    test_cond(name, s == NULL);
    test_cond("message names the file", strstr(m, path) != NULL);
    test_cond("message names the field", strstr(m, piece1) != NULL);
    if (piece2) test_cond("message says what was wrong", strstr(m, piece2) != NULL);
    qr_squad_free(s);
    unlink(path);
}

#define QA(id, q, ans) "{\"id\": \"" id "\", \"question\": \"" q "\", \"answers\": [" ans "]}"
#define AN(start, text) "{\"answer_start\": " #start ", \"text\": \"" text "\"}"

static void test_bad_files(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qr_test_squad_XXXXXX");
    test_cond("mkdtemp", mkdtemp(tmpdir) != NULL);

    qr_err_clear();
    qr_squad *s = qr_squad_load("/nonexistent/dev.json");
    test_cond("missing file fails", s == NULL);
    test_cond("missing file: message names it", strstr(qr_err_msg(), "/nonexistent/dev.json") != NULL);
    printf("  missing -> %s\n", qr_err_msg());

    /* truncated: the first half of tiny.json */
    size_t len;
    char *tiny = qr_read_file("datasets/squad/tiny.json", &len);
    test_cond("tiny.json readable", tiny != NULL);
    if (tiny) {
        const char *path = write_tmp("cut.json", tiny, len / 2);
        qr_err_clear();
        s = qr_squad_load(path);
        printf("  cut.json -> %s\n", qr_err_msg());
        test_cond("truncated file fails", s == NULL);
        test_cond("truncated: names the file", strstr(qr_err_msg(), path) != NULL);
        test_cond("truncated: names where it ends", strstr(qr_err_msg(), "data[0].paragraphs[1].qas[") != NULL);
        test_cond("truncated: says truncated", strstr(qr_err_msg(), "(truncated file?)") != NULL);
        unlink(path);
        free(tiny);
    }

    const char *head = "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"The cat sat on the mat.\", \"qas\": [";
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%s, %s]}]}]}", head, QA("q1", "Who?", AN(4, "cat")),
             "{\"id\": \"q2\", \"question\": 7, \"answers\": []}");
    expect_fail("wrongtype.json", buf, "data[0].paragraphs[0].qas[1]: 'question' missing or not a string", "got a number");
    snprintf(buf, sizeof buf, "%s%s]}]}]}", head, QA("q1", "Who?", AN("4", "cat")));
    expect_fail("startstring.json", buf, "data[0].paragraphs[0].qas[0].answers[0]: 'answer_start'", "not a number");
    snprintf(buf, sizeof buf, "%s{\"id\": \"q1\", \"question\": \"Who?\"}]}]}]}", head);
    expect_fail("noanswers.json", buf, "data[0].paragraphs[0].qas[0]: 'answers' missing or not an array", NULL);
    expect_fail("datanotarray.json", "{\"data\": {}}", "'data' missing or not an array", "got an object");
    expect_fail("toplevel.json", "[1, 2]", "top level", "expected an object");
    expect_fail("notitle.json", "{\"data\": [{\"paragraphs\": []}]}", "data[0]: 'title'", NULL);
    expect_fail("syntax.json", "{\"data\": [{\"title\": \"T\",\n \"paragraphs\": [} ]}]}", "data[0].paragraphs", "line 2");
    snprintf(buf, sizeof buf, "%s%s]}]}]}", head, QA("q1", "Wh\xff?", AN(4, "cat")));
    expect_fail("badutf8.json", buf, "qas[0]: 'question' is not valid UTF-8", NULL);
    expect_fail("trailing.json", "{\"data\": []} x", "after the document", NULL);
    expect_fail("empty.json", "", "(truncated file?)", NULL);

    /* recoverable problems: skipped or repaired, counted, warned */
    snprintf(buf, sizeof buf, "%s%s, %s, %s, %s, %s, %s, %s]}]}], \"version\": \"1.1\"}", head,
             QA("ok", "Who sat?", AN(4, "cat") ", " AN(19, "mat")),          /* fine */
             QA("moved", "Where?", AN(3, "mat") ", " AN(0, "The cat")),      /* 'mat' realigned to 19 */
             QA("blank", "  \\t ", AN(4, "cat")),                            /* empty question: skipped */
             QA("gone", "What?", AN(0, "dog")),                              /* no usable answer: skipped */
             QA("partly", "Who?", AN(0, "dog") ", " AN(4, "cat") ", " AN(4, "")), /* 2 answers dropped */
             QA("ok", "Again?", AN(4, "cat")),                               /* duplicate id: skipped */
             QA("", "No id?", AN(4, "cat")));                                /* empty id: skipped */
    const char *path = write_tmp("recoverable.json", buf, strlen(buf));
    s = qr_squad_load(path);
    test_cond("recoverable file loads", s != NULL);
    if (!s) fprintf(stderr, "%s\n", qr_err_msg());
    if (s) {
        for (int i = 0; i < qr_squad_n_warnings(s); i++) printf("  warning: %s\n", qr_squad_warning(s, i));
        test_cond("3 questions kept", qr_squad_count(s) == 3);
        test_cond("4 questions skipped", qr_squad_n_skipped(s) == 4);
        test_cond("8 warnings (4 skips, 1 move, 3 drops)", qr_squad_n_warnings(s) == 8);
        test_cond("warning out of range is NULL", qr_squad_warning(s, 8) == NULL);
        const qr_squad_example *e = qr_squad_at(s, 1);
        test_cond("realigned answer", e && strcmp(e->id, "moved") == 0 && e->answers[0].answer_start == 19);
        e = qr_squad_at(s, 2);
        test_cond("dropped answers", e && strcmp(e->id, "partly") == 0 && e->n_answers == 1 &&
                                         strcmp(e->answers[0].text, "cat") == 0);
        test_cond("contexts shared", qr_squad_at(s, 0)->context == qr_squad_at(s, 2)->context);
        test_cond("warning names file and field", strstr(qr_squad_warning(s, 0), path) &&
                                                      strstr(qr_squad_warning(s, 0), "qas[1].answers[0]"));
    }
    qr_squad_free(s);
    unlink(path);
    rmdir(tmpdir);
    qr_squad_free(NULL);

    s = qr_squad_load_mem("{\"data\": []}", 12, "mem");
    test_cond("load_mem of an empty data set", s && qr_squad_count(s) == 0);
    qr_squad_free(s);
}

/* ---- bootstrap ---- */

static void test_bootstrap(void) {
    enum { N = 1000 };
    double v[N], mean = 0;
    for (int i = 0; i < N; i++) {
        v[i] = (i * 37 % 100) < 62 ? 1.0 : 0.0; /* 62% ones, like an EM vector */
        mean += v[i];
    }
    mean /= N;
    double lo, hi, lo2, hi2, lo3, hi3;
    double t0 = qr_now();
    qr_bootstrap_ci(v, N, 2000, 42, 0.95, &lo, &hi);
    double dt = qr_now() - t0;
    qr_bootstrap_ci(v, N, 2000, 42, 0.95, &lo2, &hi2);
    qr_bootstrap_ci(v, N, 2000, 43, 0.95, &lo3, &hi3);
    /* normal approximation: half-width 1.96 * sqrt(p(1-p)/n) = 0.0301 */
    double half = 1.96 * sqrt(mean * (1 - mean) / N);
    printf("bootstrap: mean %.4f, 95%% CI [%.4f, %.4f] (seed 43: [%.4f, %.4f]), normal approx +-%.4f, %.3f s\n",
           mean, lo, hi, lo3, hi3, half, dt);
    test_cond("CI contains the mean", lo < mean && mean < hi);
    test_cond("same seed, same interval (bitwise)", lo == lo2 && hi == hi2);
    test_cond("other seed, other interval", lo != lo3 || hi != hi3);
    test_cond("half-width within 15% of the normal approximation", fabs((hi - lo) / 2 - half) < 0.15 * half);
    double c[5] = {0.25, 0.25, 0.25, 0.25, 0.25};
    qr_bootstrap_ci(c, 5, 100, 1, 0.9, &lo, &hi);
    test_cond("constant vector: lo = hi = value", lo == 0.25 && hi == 0.25);
    qr_bootstrap_ci(v, 0, 100, 1, 0.95, &lo, &hi);
    test_cond("empty vector: NaN", isnan(lo) && isnan(hi));
    qr_bootstrap_ci(v, N, 100, 1, 1.5, &lo, &hi);
    test_cond("level outside (0,1): NaN", isnan(lo) && isnan(hi));
    qr_bootstrap_ci(v, N, 0, 1, 0.95, &lo, &hi);
    test_cond("no resamples: the mean", fabs(lo - mean) < 1e-12 && lo == hi);
}

int main(void) {
    test_metric_fixtures();
    test_metric_edges();
    check_set("datasets/squad/tiny.json", 80, 3, 240, "56be4db0acb8001400a502ec", "Super_Bowl_50");
    check_set("datasets/squad/dev-sample.json", 7628, 1444, 24574, "56be4db0acb8001400a502ec", "Super_Bowl_50");
    check_set("datasets/squad/train-sample.json", 11877, 2430, 11877, "5733be284776f41900661182",
              "University_of_Notre_Dame");
    test_bad_files();
    test_bootstrap();
    return test_report();
}
