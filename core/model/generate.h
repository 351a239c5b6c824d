/* generate.h - batched greedy generation with a KV cache and stop strings. */
#ifndef QR_GENERATE_H
#define QR_GENERATE_H

#include "model.h"

#define QR_GEN_EOS_DEFAULT 0
#define QR_GEN_NO_EOS (-1)

typedef struct {
    int max_new_tokens;       /* default 32 */
    int min_new_tokens;       /* eos is never chosen before this many tokens (as HF's min_new_tokens) */
    int32_t eos;              /* end token (not part of the output): QR_GEN_EOS_DEFAULT (0, so a zeroed
                                 struct does the expected thing) = the tokenizer's eos, QR_GEN_NO_EOS = none,
                                 any positive id = that token */
    const char *const *stop;  /* stop strings: generation ends at the first one (excluded from the text) */
    int n_stop;
    int batch;                /* sequences decoded together (default 8) */
    int max_prefill_rows;     /* rows per prefill call (default 2048) */
    /* optional progress callback after each finished group; return non-zero to stop */
    int (*progress)(void *ud, int done, int total);
    void *ud;
} qr_gen_opts;

typedef struct {
    int32_t *ids;  /* generated ids after the prompt, eos excluded; when a stop string ended the
                    * sequence they run to the token that completed it (text is cut, ids are not) */
    int n_ids;
    char *text;    /* decoded text, cut at the first stop string */
    int stopped;   /* 1 eos, 2 stop string, 0 max_new_tokens */
} qr_gen_result;

typedef struct {
    int64_t prefill_tokens, decode_tokens;
    double prefill_s, decode_s;
} qr_gen_stats;

/* prompts[i] (lens[i] tokens) -> out[i] (caller-allocated array of n).
 * stats may be NULL. n == 0 does nothing. In opts, max_new_tokens, batch and
 * max_prefill_rows <= 0 take their defaults (32, 8, 2048), so a
 * zero-initialized qr_gen_opts is the default; callers that take these from
 * a user check them first (the Lua binding refuses max_new_tokens < 1). */
int qr_generate(qr_model *m, const int32_t *const *prompts, const int *lens, int n, const qr_gen_opts *opts,
                qr_gen_result *out, qr_gen_stats *stats);
void qr_gen_result_free(qr_gen_result *r, int n);

#endif
