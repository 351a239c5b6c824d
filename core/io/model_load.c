/* model_load.c - building a qr_model from real checkpoint files:
 *   - a Hugging Face GPT-2 directory: config.json, model.safetensors,
 *     vocab.json, merges.txt (Conv1D weights stored (in,out): transposed);
 *   - a GGUF file of the Llama architecture (SmolLM2), whose Q and K rows
 *     llama.cpp's converter permuted for its interleaved RoPE: un-permuted
 *     here to Hugging Face's rotate-half layout. */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"
#include "model/model.h"
#include "model/model_internal.h"
#include "safetensors.h"
#include "text/tokenizer.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------- Hugging Face GPT-2 directory ---------------- */

static int json_int(const cJSON *root, const char *path, const char *key, int def, int required, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) return qr_err_set("%s: field '%s' missing (expected an integer)", path, key);
        *out = def;
        return QR_OK;
    }
    if (!cJSON_IsNumber(it) || it->valuedouble <= 0 || it->valuedouble > (1 << 24) ||
        it->valuedouble != (double)(int)it->valuedouble)
        return qr_err_set("%s: field '%s': expected a positive integer up to %d", path, key, 1 << 24);
    *out = (int)it->valuedouble;
    return QR_OK;
}

static int read_gpt2_config(const char *path, qr_model_config *c) {
    size_t len;
    char *txt = qr_read_file(path, &len);
    if (!txt) return QR_ERR;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(txt, &end, 1);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end && end >= txt ? (size_t)(end - txt) : len;
        cJSON_Delete(root);
        free(txt);
        if (!root)
            return qr_err_set("%s: invalid JSON at byte %zu of %zu%s", path, at, len,
                              at >= len ? " (truncated file?)" : "");
        return qr_err_set("%s: expected a JSON object", path);
    }
    free(txt);
    int rc = QR_ERR;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(mt)) {
        qr_err_set("%s: field 'model_type' missing (expected \"gpt2\")", path);
        goto done;
    }
    if (strcmp(mt->valuestring, "gpt2") != 0) {
        qr_err_set("%s: model_type \"%s\" is not supported from a directory (expected \"gpt2\"; Llama models load "
                   "from GGUF)",
                   path, mt->valuestring);
        goto done;
    }
    memset(c, 0, sizeof *c);
    c->arch = QR_ARCH_GPT2;
    int n_inner;
    if (json_int(root, path, "n_layer", 0, 1, &c->n_layer) || json_int(root, path, "n_embd", 0, 1, &c->n_embd) ||
        json_int(root, path, "n_head", 0, 1, &c->n_head) || json_int(root, path, "vocab_size", 0, 1, &c->n_vocab) ||
        json_int(root, path, "n_positions", 1024, 0, &c->n_ctx) || json_int(root, path, "n_inner", 0, 0, &n_inner))
        goto done;
    if (c->n_embd % c->n_head) {
        qr_err_set("%s: n_embd %d is not a multiple of n_head %d", path, c->n_embd, c->n_head);
        goto done;
    }
    c->n_kv_head = c->n_head;
    c->head_dim = c->n_embd / c->n_head;
    c->n_ff = n_inner ? n_inner : 4 * c->n_embd;
    c->norm_eps = 1e-5f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (cJSON_IsNumber(eps)) c->norm_eps = (float)eps->valuedouble;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu_new") != 0 &&
        strcmp(act->valuestring, "gelu_pytorch_tanh") != 0) {
        qr_err_set("%s: activation_function \"%s\" is not supported (expected \"gelu_new\")", path,
                   act->valuestring);
        goto done;
    }
    c->tied = 1;
    rc = QR_OK;
done:
    cJSON_Delete(root);
    return rc;
}

static const qr_st_tensor *st_find2(const qr_st_file *f, const char *name) {
    const qr_st_tensor *t = qr_st_find(f, name);
    if (t) return t;
    char buf[160];
    snprintf(buf, sizeof buf, "transformer.%s", name);
    return qr_st_find(f, buf);
}

static int load_gpt2_weights(qr_model *m, qr_st_file *f) {
    const char *path = qr_st_path(f);
    int rc = QR_OK;
    float *tmp = NULL;
    size_t tmp_cap = 0;
    for (int i = 0; i < m->par.n && rc == QR_OK; i++) {
        qr_param *p = &m->par.p[i];
        const qr_st_tensor *t = st_find2(f, p->name);
        if (!t) {
            rc = qr_err_set("%s: tensor '%s' missing", path, p->name);
            break;
        }
        /* Conv1D weights are (in, out); everything else matches our shape */
        int conv = p->n_dims == 2 && strstr(p->name, ".weight") && strncmp(p->name, "h.", 2) == 0;
        int64_t want0 = conv ? p->shape[1] : p->shape[0], want1 = conv ? p->shape[0] : p->shape[1];
        if (t->n_dims != p->n_dims || t->shape[0] != want0 || (p->n_dims == 2 && t->shape[1] != want1)) {
            rc = qr_err_set("%s: tensor '%s' has shape [%lld%s%lld], expected [%lld%s%lld]", path, p->name,
                            (long long)t->shape[0], t->n_dims > 1 ? ", " : "",
                            t->n_dims > 1 ? (long long)t->shape[1] : 0LL, (long long)want0,
                            p->n_dims > 1 ? ", " : "", p->n_dims > 1 ? (long long)want1 : 0LL);
            break;
        }
        if (!conv) {
            rc = qr_st_read_f32(f, t, p->data, p->n);
            continue;
        }
        if ((size_t)p->n > tmp_cap) {
            free(tmp);
            tmp_cap = (size_t)p->n;
            tmp = qr_xmalloc(tmp_cap * sizeof(float));
        }
        rc = qr_st_read_f32(f, t, tmp, p->n);
        if (rc) break;
        int64_t in = want0, out = want1; /* tmp is (in, out) */
        for (int64_t a = 0; a < in; a++)
            for (int64_t b = 0; b < out; b++) p->data[b * in + a] = tmp[a * out + b];
    }
    free(tmp);
    return rc;
}

static qr_model *load_hf_dir(const char *dir) {
    char path[4096], vocab[4096], merges[4096];
    qr_model_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (read_gpt2_config(path, &cfg) != QR_OK) return NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    qr_st_file *st = qr_st_open(path);
    if (!st) return NULL;
    int64_t file_elems = 0;
    for (int i = 0; i < qr_st_count(st); i++) file_elems += qr_st_at(st, i)->n_elems;
    qr_model *m = qr_xcalloc(1, sizeof *m);
    m->cfg = cfg;
    m->path = qr_xstrdup(dir);
    int rc = qr_model_alloc(m, file_elems);
    if (rc == QR_OK) rc = load_gpt2_weights(m, st);
    qr_st_close(st);
    if (rc != QR_OK) goto fail;
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    m->tok = qr_tokenizer_from_files(vocab, merges);
    if (!m->tok) goto fail;
    if (qr_tokenizer_n_vocab(m->tok) > cfg.n_vocab) {
        qr_err_set("%s: the vocabulary has %d tokens but config.json says vocab_size %d", vocab,
                   qr_tokenizer_n_vocab(m->tok), cfg.n_vocab);
        goto fail;
    }
    {
        int32_t eot = qr_tokenizer_token_id(m->tok, "<|endoftext|>");
        qr_tokenizer_set_special(m->tok, eot, eot);
    }
    return m;
fail:
    qr_model_free(m);
    return NULL;
}

/* ---------------- GGUF (Llama) ---------------- */

static int gguf_arch_int(const qr_gguf *g, const char *arch, const char *key, int64_t *out, int required,
                         int64_t def) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (qr_gguf_find_key(g, k) < 0) {
        if (required) return qr_err_set("%s: metadata key '%s' missing", qr_gguf_path(g), k);
        *out = def;
        return QR_OK;
    }
    if (qr_gguf_get_int(g, k, out) != QR_OK) return QR_ERR;
    if (*out <= 0 || *out > (1 << 30)) return qr_err_set("%s: metadata '%s' = %lld: expected a positive size",
                                                         qr_gguf_path(g), k, (long long)*out);
    return QR_OK;
}

static int gguf_arch_float(const qr_gguf *g, const char *arch, const char *key, double *out, double def) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (qr_gguf_find_key(g, k) < 0) {
        *out = def;
        return QR_OK;
    }
    return qr_gguf_get_float(g, k, out);
}

/* llama.cpp stores Q/K rows of each head as interleaved pairs: GGUF row
 * h*HD + 2j + i holds HF row h*HD + i*HD/2 + j. */
static void unpermute_rows(float *w, int n_head, int head_dim, int in, float *tmp) {
    int half = head_dim / 2;
    size_t row = (size_t)in * sizeof(float);
    for (int h = 0; h < n_head; h++) {
        float *base = w + (size_t)h * head_dim * in;
        memcpy(tmp, base, (size_t)head_dim * row);
        for (int j = 0; j < half; j++)
            for (int i = 0; i < 2; i++)
                memcpy(base + (size_t)(i * half + j) * in, tmp + (size_t)(2 * j + i) * in, row);
    }
}

static int gguf_load_tensor(const qr_gguf *g, const char *name, float *dst, int64_t d0 /*rows*/, int64_t d1) {
    const qr_gguf_tensor *t = qr_gguf_find_tensor(g, name);
    if (!t) return qr_err_set("%s: tensor '%s' missing", qr_gguf_path(g), name);
    /* ggml dims are reversed: dims[0] is the row length */
    int ok = d1 > 1 ? (t->n_dims == 2 && t->dims[0] == d1 && t->dims[1] == d0)
                    : (t->n_elems == d0 && (t->n_dims == 1 || t->dims[0] == d0));
    if (!ok)
        return qr_err_set("%s: tensor '%s' has dims [%lld, %lld], expected [%lld, %lld] (ggml order)",
                          qr_gguf_path(g), name, (long long)t->dims[0], (long long)(t->n_dims > 1 ? t->dims[1] : 1),
                          (long long)(d1 > 1 ? d1 : d0), (long long)(d1 > 1 ? d0 : 1));
    return qr_gguf_read_f32(g, t, dst, d0 * (d1 > 1 ? d1 : 1));
}

static qr_model *load_gguf(const char *path) {
    qr_gguf *g = qr_gguf_open(path);
    if (!g) return NULL;
    qr_model *m = NULL;
    char **tokens = NULL, **merges = NULL;
    uint64_t n_tok = 0, n_merge = 0, n_types = 0;
    int32_t *types = NULL;
    float *tmp = NULL;
    const char *arch = qr_gguf_get_str(g, "general.architecture");
    if (!arch) goto fail;
    if (strcmp(arch, "llama") != 0) {
        qr_err_set("%s: general.architecture \"%s\" is not supported (expected \"llama\")", path, arch);
        goto fail;
    }
    qr_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = QR_ARCH_LLAMA;
    int64_t n_layer, n_embd, n_head, n_kv, n_ff, n_ctx, rope_dim;
    double eps, theta;
    if (gguf_arch_int(g, arch, "block_count", &n_layer, 1, 0) ||
        gguf_arch_int(g, arch, "embedding_length", &n_embd, 1, 0) ||
        gguf_arch_int(g, arch, "attention.head_count", &n_head, 1, 0) ||
        gguf_arch_int(g, arch, "attention.head_count_kv", &n_kv, 0, n_head) ||
        gguf_arch_int(g, arch, "feed_forward_length", &n_ff, 1, 0) ||
        gguf_arch_int(g, arch, "context_length", &n_ctx, 0, 2048) ||
        gguf_arch_float(g, arch, "attention.layer_norm_rms_epsilon", &eps, 1e-5) ||
        gguf_arch_float(g, arch, "rope.freq_base", &theta, 10000.0))
        goto fail;
    if (n_embd % n_head) {
        qr_err_set("%s: embedding_length %lld is not a multiple of head_count %lld", path, (long long)n_embd,
                   (long long)n_head);
        goto fail;
    }
    if (gguf_arch_int(g, arch, "rope.dimension_count", &rope_dim, 0, n_embd / n_head)) goto fail;
    if (rope_dim != n_embd / n_head) {
        qr_err_set("%s: rope.dimension_count %lld: partial rotary embeddings are not supported (head dim %lld)", path,
                   (long long)rope_dim, (long long)(n_embd / n_head));
        goto fail;
    }
    tokens = qr_gguf_get_str_array(g, "tokenizer.ggml.tokens", &n_tok);
    if (!tokens) goto fail;
    c.n_layer = (int)n_layer;
    c.n_embd = (int)n_embd;
    c.n_head = (int)n_head;
    c.n_kv_head = (int)n_kv;
    c.head_dim = (int)(n_embd / n_head);
    c.n_ff = (int)n_ff;
    c.n_ctx = (int)n_ctx;
    c.n_vocab = (int)n_tok;
    c.norm_eps = (float)eps;
    c.rope_theta = (float)theta;
    c.tied = qr_gguf_find_tensor(g, "output.weight") == NULL;
    qr_err_clear();
    m = qr_xcalloc(1, sizeof *m);
    m->cfg = c;
    m->path = qr_xstrdup(path);
    int64_t file_elems = 0;
    for (int i = 0; i < qr_gguf_n_tensors(g); i++) file_elems += qr_gguf_tensor_at(g, i)->n_elems;
    if (qr_model_alloc(m, file_elems) != QR_OK) goto fail;

    char nm[160];
    tmp = qr_xmalloc((size_t)c.head_dim * (c.n_embd > c.n_ff ? c.n_embd : c.n_ff) * sizeof(float));
    if (gguf_load_tensor(g, "token_embd.weight", m->par.p[m->i_wte].data, c.n_vocab, c.n_embd) ||
        gguf_load_tensor(g, "output_norm.weight", m->par.p[m->i_nfw].data, c.n_embd, 1))
        goto fail;
    if (!c.tied && gguf_load_tensor(g, "output.weight", m->par.p[m->i_head].data, c.n_vocab, c.n_embd)) goto fail;
    /* the linear slots' GGUF names and row orders come from the descriptor */
    const qr_arch_desc *A = m->arch;
    for (int l = 0; l < c.n_layer; l++) {
        qr_layer *L = &m->layers[l];
        snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", l);
        if (gguf_load_tensor(g, nm, m->par.p[L->i_n1w].data, c.n_embd, 1)) goto fail;
        snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", l);
        if (gguf_load_tensor(g, nm, m->par.p[L->i_n2w].data, c.n_embd, 1)) goto fail;
        for (int j = 0; j < A->n_linear; j++) {
            qr_linear *lin = qr_model_lin(m, l, j);
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, A->linear[j].gguf);
            if (gguf_load_tensor(g, nm, lin->w, lin->out, lin->in)) goto fail;
            if (A->linear[j].gguf_rows == QR_GGUF_ROPE_HEADS)
                unpermute_rows(lin->w, c.n_head, c.head_dim, lin->in, tmp);
            else if (A->linear[j].gguf_rows == QR_GGUF_ROPE_KV_HEADS)
                unpermute_rows(lin->w, c.n_kv_head, c.head_dim, lin->in, tmp);
        }
    }

    /* tokenizer from the metadata */
    const char *tmodel = qr_gguf_get_str(g, "tokenizer.ggml.model");
    if (!tmodel) goto fail;
    if (strcmp(tmodel, "gpt2") != 0) {
        qr_err_set("%s: tokenizer.ggml.model \"%s\" is not supported (expected \"gpt2\", byte-level BPE)", path,
                   tmodel);
        goto fail;
    }
    qr_pretok pre = QR_PRE_GPT2;
    if (qr_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        const char *p = qr_gguf_get_str(g, "tokenizer.ggml.pre");
        if (!p) goto fail;
        if (strcmp(p, "smollm") == 0)
            pre = QR_PRE_SMOLLM;
        else if (strcmp(p, "gpt2") != 0 && strcmp(p, "default") != 0) {
            qr_err_set("%s: tokenizer.ggml.pre \"%s\" is not supported (expected \"smollm\" or \"gpt2\")", path, p);
            goto fail;
        }
    }
    merges = qr_gguf_get_str_array(g, "tokenizer.ggml.merges", &n_merge);
    if (!merges) goto fail;
    if (qr_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        types = qr_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &n_types);
        if (!types) goto fail;
        if (n_types != n_tok) {
            qr_err_set("%s: tokenizer.ggml.token_type has %llu entries, expected %llu (one per token)", path,
                       (unsigned long long)n_types, (unsigned long long)n_tok);
            goto fail;
        }
    }
    m->tok = qr_tokenizer_new((const char *const *)tokens, (int)n_tok, (const char *const *)merges, (int)n_merge,
                              types, pre);
    if (!m->tok) {
        qr_err_prefix("%s", path);
        goto fail;
    }
    int64_t bos = -1, eos = -1;
    if (qr_gguf_find_key(g, "tokenizer.ggml.bos_token_id") >= 0 &&
        qr_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos))
        goto fail;
    if (qr_gguf_find_key(g, "tokenizer.ggml.eos_token_id") >= 0 &&
        qr_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &eos))
        goto fail;
    qr_tokenizer_set_special(m->tok, (int32_t)bos, (int32_t)eos);
    qr_gguf_free_str_array(tokens, n_tok);
    qr_gguf_free_str_array(merges, n_merge);
    free(types);
    free(tmp);
    qr_gguf_close(g);
    return m;
fail:
    if (tokens) qr_gguf_free_str_array(tokens, n_tok);
    if (merges) qr_gguf_free_str_array(merges, n_merge);
    free(types);
    free(tmp);
    qr_model_free(m);
    qr_gguf_close(g);
    return NULL;
}

qr_model *qr_model_load(const char *path) {
    struct stat st;
    if (!path || !*path) {
        qr_err_set("model: empty path (expected a .gguf file or a Hugging Face model directory)");
        return NULL;
    }
    if (stat(path, &st) != 0) {
        qr_err_set("%s: cannot open model: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) return load_hf_dir(path);
    return load_gguf(path);
}
