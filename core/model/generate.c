/* generate.c - batched greedy generation (see generate.h).
 *
 * Prompts go in groups of opts->batch. Each group is prefilled (all its
 * prompt tokens through the model at once, logits only at each prompt's
 * last token), then decoded one token per live sequence per step, the
 * sequences of the group sharing each step's matrix products. */
#include "generate.h"
#include "arch.h"

#include <stdlib.h>
#include <string.h>

/* Greedy choice; `ban` (e.g. eos before min_new_tokens) is never chosen. */
static int32_t argmax(const float *x, int n, int32_t ban) {
    int32_t best = ban == 0 ? 1 : 0;
    float bv = x[best];
    for (int i = best + 1; i < n; i++)
        if (x[i] > bv && i != ban) {
            bv = x[i];
            best = i;
        }
    return best;
}

/* Decode the generated ids; cut at the first stop string. Returns 1 when a
 * stop string was found. */
static int check_stop(const qr_tokenizer *tok, qr_gen_result *r, const qr_gen_opts *o) {
    size_t len = 0;
    char *text = qr_tokenizer_decode(tok, r->ids, r->n_ids, &len);
    if (!text) text = qr_xstrdup("");
    free(r->text);
    r->text = text;
    char *cut = NULL;
    for (int s = 0; s < o->n_stop; s++) {
        if (!o->stop[s] || !o->stop[s][0]) continue;
        char *p = strstr(text, o->stop[s]);
        if (p && (!cut || p < cut)) cut = p;
    }
    if (cut) {
        *cut = 0;
        return 1;
    }
    return 0;
}

int qr_generate(qr_model *m, const int32_t *const *prompts, const int *lens, int n, const qr_gen_opts *opts,
                qr_gen_result *out, qr_gen_stats *stats) {
    const qr_model_config *c = qr_model_cfg(m);
    qr_tokenizer *tok = qr_model_tokenizer(m);
    if (!tok) return qr_err_set("generate: the model has no tokenizer");
    if (n < 0) return qr_err_set("generate: %d prompts", n);
    if (stats) memset(stats, 0, sizeof *stats);
    if (n == 0) return QR_OK;
    qr_gen_opts o = {.max_new_tokens = 32, .batch = 8, .max_prefill_rows = 2048};
    if (opts) o = *opts;
    if (o.max_new_tokens <= 0) o.max_new_tokens = 32;
    if (o.batch <= 0) o.batch = 8;
    if (o.max_prefill_rows <= 0) o.max_prefill_rows = 2048;
    int32_t eos = o.eos == QR_GEN_EOS_DEFAULT ? qr_tokenizer_eos(tok) : o.eos < 0 ? -1 : o.eos;
    memset(out, 0, (size_t)n * sizeof *out);
    qr_gen_stats st = {0};
    int max_prompt = 1;
    for (int i = 0; i < n; i++) {
        if (lens[i] <= 0) return qr_err_set("generate: prompt %d is empty", i);
        if (lens[i] > max_prompt) max_prompt = lens[i];
    }
    int max_len = max_prompt + o.max_new_tokens;
    if (qr_arch_get(c->arch)->learned_positions && max_len > c->n_ctx)
        return qr_err_set("generate: a prompt of %d tokens plus %d new tokens exceeds GPT-2's context of %d; "
                          "shorten the prompt",
                          max_prompt, o.max_new_tokens, c->n_ctx);
    int B = o.batch < n ? o.batch : n;
    qr_kvcache *kv = qr_kvcache_new(m, B, max_len);
    if (!kv) return QR_ERR;
    /* A prefix shared by every prompt (a system prompt, worked examples) is
     * computed once and copied into each sequence's cache. Each prompt keeps
     * at least one token of its own, whose logits start the generation. */
    int shared = lens[0] - 1;
    for (int i = 1; i < n && shared > 0; i++) {
        int k = 0, lim = lens[i] - 1 < shared ? lens[i] - 1 : shared;
        while (k < lim && prompts[i][k] == prompts[0][k]) k++;
        shared = k;
    }
    qr_kvcache *pre = NULL;
    if (n > 1 && shared >= 16) {
        pre = qr_kvcache_new(m, 1, shared);
        int32_t *z = qr_xcalloc((size_t)shared, sizeof(int32_t));
        uint8_t *nowant = qr_xcalloc((size_t)shared, 1);
        double t0 = qr_now();
        int rc0 = pre ? qr_model_decode(m, pre, prompts[0], z, shared, nowant, NULL) : QR_ERR;
        st.prefill_s += qr_now() - t0;
        st.prefill_tokens += shared;
        free(z);
        free(nowant);
        if (rc0) {
            qr_kvcache_free(pre);
            qr_kvcache_free(kv);
            return QR_ERR;
        }
    } else {
        shared = 0;
    }
    int V = c->n_vocab;
    float *logits = qr_xmalloc((size_t)B * V * sizeof(float));
    int32_t *tokens = qr_xmalloc((size_t)(o.max_prefill_rows > B ? o.max_prefill_rows : B) * sizeof(int32_t));
    int32_t *seq = qr_xmalloc((size_t)(o.max_prefill_rows > B ? o.max_prefill_rows : B) * sizeof(int32_t));
    uint8_t *want = qr_xmalloc((size_t)(o.max_prefill_rows > B ? o.max_prefill_rows : B));
    int32_t *next = qr_xmalloc((size_t)B * sizeof(int32_t));
    int *live = qr_xmalloc((size_t)B * sizeof(int));
    int rc = QR_OK;

    for (int g0 = 0; g0 < n && rc == QR_OK; g0 += B) {
        int gb = n - g0 < B ? n - g0 : B;
        qr_kvcache_clear(kv, -1);
        for (int s = 0; s < gb && pre; s++) qr_kvcache_copy(kv, s, pre, 0, shared);
        /* prefill: whole prompts packed into calls of at most
         * max_prefill_rows rows (bigger matrix products); a prompt longer
         * than that goes alone, in pieces */
        double t0 = qr_now();
        for (int s = 0; s < gb && rc == QR_OK;) {
            int len = lens[g0 + s] - shared;
            if (len > o.max_prefill_rows) {
                const int32_t *p = prompts[g0 + s] + shared;
                for (int off = 0; off < len && rc == QR_OK;) {
                    int take = len - off < o.max_prefill_rows ? len - off : o.max_prefill_rows;
                    for (int j = 0; j < take; j++) {
                        tokens[j] = p[off + j];
                        seq[j] = s;
                        want[j] = (off + j == len - 1);
                    }
                    rc = qr_model_decode(m, kv, tokens, seq, take, want, logits + (size_t)s * V);
                    off += take;
                }
                st.prefill_tokens += len;
                s++;
                continue;
            }
            int s1 = s, rows = 0;
            while (s1 < gb && lens[g0 + s1] - shared <= o.max_prefill_rows &&
                   rows + lens[g0 + s1] - shared <= o.max_prefill_rows) {
                const int32_t *p = prompts[g0 + s1] + shared;
                int l1 = lens[g0 + s1] - shared;
                for (int j = 0; j < l1; j++) {
                    tokens[rows + j] = p[j];
                    seq[rows + j] = s1;
                    want[rows + j] = j == l1 - 1;
                }
                rows += l1;
                st.prefill_tokens += l1;
                s1++;
            }
            rc = qr_model_decode(m, kv, tokens, seq, rows, want, logits + (size_t)s * V);
            s = s1;
        }
        st.prefill_s += qr_now() - t0;
        if (rc) break;
        t0 = qr_now();
        int n_live = 0;
        for (int s = 0; s < gb; s++) {
            qr_gen_result *r = &out[g0 + s];
            r->ids = qr_xmalloc((size_t)o.max_new_tokens * sizeof(int32_t));
            int32_t t = argmax(logits + (size_t)s * V, V, o.min_new_tokens > 0 ? eos : -1);
            live[s] = 1;
            if (t == eos) {
                r->stopped = 1;
                live[s] = 0;
            } else {
                r->ids[r->n_ids++] = t;
                next[s] = t;
                if (o.n_stop && check_stop(tok, r, &o)) {
                    r->stopped = 2;
                    live[s] = 0;
                }
                if (r->n_ids >= o.max_new_tokens) live[s] = 0;
            }
            n_live += live[s];
        }
        while (n_live > 0 && rc == QR_OK) {
            int k = 0;
            for (int s = 0; s < gb; s++)
                if (live[s]) {
                    tokens[k] = next[s];
                    seq[k] = s;
                    k++;
                }
            rc = qr_model_decode(m, kv, tokens, seq, k, NULL, logits);
            if (rc) break;
            st.decode_tokens += k;
            k = 0;
            n_live = 0;
            for (int s = 0; s < gb; s++) {
                if (!live[s]) continue;
                qr_gen_result *r = &out[g0 + s];
                int32_t t = argmax(logits + (size_t)(k++) * V, V, r->n_ids < o.min_new_tokens ? eos : -1);
                if (t == eos) {
                    r->stopped = 1;
                    live[s] = 0;
                    continue;
                }
                r->ids[r->n_ids++] = t;
                next[s] = t;
                if (o.n_stop && check_stop(tok, r, &o)) {
                    r->stopped = 2;
                    live[s] = 0;
                    continue;
                }
                if (r->n_ids >= o.max_new_tokens) {
                    live[s] = 0;
                    continue;
                }
                n_live++;
            }
        }
        st.decode_s += qr_now() - t0;
        for (int s = 0; s < gb && rc == QR_OK; s++) {
            qr_gen_result *r = &out[g0 + s];
            if (r->stopped != 2) check_stop(tok, r, &o);
        }
        if (o.progress && o.progress(o.ud, g0 + gb, n)) {
            rc = qr_err_set("generate: stopped by the progress callback after %d of %d prompts", g0 + gb, n);
            break;
        }
    }
    free(logits);
    free(tokens);
    free(seq);
    free(want);
    free(next);
    free(live);
    qr_kvcache_free(kv);
    qr_kvcache_free(pre);
    if (stats) *stats = st;
    if (rc) {
        qr_gen_result_free(out, n);
        memset(out, 0, (size_t)n * sizeof *out);
    }
    return rc;
}

void qr_gen_result_free(qr_gen_result *r, int n) {
    if (!r) return;
    for (int i = 0; i < n; i++) {
        free(r[i].ids);
        free(r[i].text);
        r[i].ids = NULL;
        r[i].text = NULL;
    }
}
