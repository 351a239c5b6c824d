/* squad.h - SQuAD v1.1 data sets, the official EM/F1 metric, and bootstrap
 * confidence intervals.
 *
 * Loading: the SQuAD v1.1 JSON layout
 *   {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
 *     "answers": [{"text", "answer_start"}, ...]}, ...]}, ...]}, ...]}
 * becomes a flat array of examples, one per question.
 *
 * What is fatal and what is skipped:
 *   fatal (NULL + qr_err_msg naming the file and the field, e.g.
 *   "dev.json: data[3].paragraphs[0].qas[5]: 'question' missing or not a
 *   string"): unreadable file, invalid JSON (the message gives the byte,
 *   line and column and the field being read), any structural field missing
 *   or of the wrong type, a string that is not valid UTF-8.
 *   skipped and counted (qr_squad_n_skipped, each with a warning): a question
 *   that is empty or only whitespace, an empty id, an id already seen, a
 *   question left with no usable answer.
 *   answer-level, with a warning: an empty answer text or one that occurs
 *   nowhere in the context is dropped; an answer whose text is not at
 *   answer_start (counted in code points, as in the official files) but
 *   occurs elsewhere in the context is kept and moved to the occurrence
 *   nearest to answer_start.
 *
 * Metric: exactly evaluate-v1.1.py. normalize = Python str.lower() (full
 * mapping: 'İ' becomes "i" U+0307; Greek capital sigma becomes final 'ς' in
 * the Final_Sigma context), delete the 32 ASCII characters of
 * string.punctuation, replace whole words a|an|the by a space (word = Python
 * re's Unicode \w: letters, digits/numerics and '_'; combining marks are NOT
 * word characters in Python's re), then split on Python's Unicode whitespace
 * and join with single spaces. Character properties come from utf8proc,
 * whose Unicode version may be newer than the Python that made the fixtures;
 * only characters assigned in between can differ. Bytes that are not valid
 * UTF-8 (which a Python str cannot hold) are read as U+FFFD each. */
#ifndef QR_SQUAD_H
#define QR_SQUAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *text;
    int answer_start; /* code points into the context */
} qr_squad_answer;

typedef struct {
    const char *id, *title, *question;
    const char *context; /* shared between the questions of a paragraph */
    int n_answers;       /* >= 1 for every loaded example */
    qr_squad_answer *answers;
} qr_squad_example;

typedef struct qr_squad qr_squad; /* owns every string */

qr_squad *qr_squad_load(const char *path);
/* Same from memory; buf need not be NUL-terminated; label names it in
 * messages (a file name, "<mem>", ...). */
qr_squad *qr_squad_load_mem(const char *buf, size_t len, const char *label);
void qr_squad_free(qr_squad *s);
int qr_squad_count(const qr_squad *s);
const qr_squad_example *qr_squad_at(const qr_squad *s, int i); /* NULL if out of range */
int qr_squad_n_skipped(const qr_squad *s);  /* questions skipped */
int qr_squad_n_warnings(const qr_squad *s); /* skips, dropped and realigned answers */
const char *qr_squad_warning(const qr_squad *s, int i); /* NULL if out of range */

/* The official metric. NULL strings count as "". */
char *qr_squad_normalize(const char *s); /* malloc'd, caller frees */
double qr_squad_em(const char *prediction, const char *ground_truth);
/* 0 when no token is shared, so also when either side normalises to empty
 * (even when both do: EM 1, F1 0, as in evaluate-v1.1.py). */
double qr_squad_f1(const char *prediction, const char *ground_truth);
/* Max over the answers; n_answers <= 0 gives 0 and 0 (the official script
 * would raise). */
void qr_squad_score(const char *prediction, const char *const *answers, int n_answers, double *em,
                    double *f1);

/* Percentile bootstrap CI of the mean of vals[n]: iters resamples of size n
 * drawn with replacement from a generator seeded by seed (same seed, same
 * interval), the (1-level)/2 and (1+level)/2 quantiles of the resampled
 * means with linear interpolation (numpy's default). level e.g. 0.95.
 * n <= 0 or level outside (0,1) gives NaN; iters <= 0 gives lo = hi = mean. */
void qr_bootstrap_ci(const double *vals, int n, int iters, uint64_t seed, double level, double *lo,
                     double *hi);

#endif
