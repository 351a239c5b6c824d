/* encoder.c - the BERT sentence encoder of encoder.h: loading a
 * sentence-transformers directory, the post-LN forward over the kernels of
 * ops.h (matmul, layernorm, embedding, residual) plus the two BERT needs
 * that ops.h does not have (bidirectional attention with a key mask, erf
 * GELU), mean pooling and L2 normalisation. */
#define _POSIX_C_SOURCE 200809L
#include "encoder.h"

#include "io/safetensors.h"
#include "ops/ops.h"
#include "qr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- parameters: one buffer, a table of named slices ------------------- */

enum { P_WORD, P_POS, P_TYPE, P_ELN_W, P_ELN_B, P_GLOBAL };
enum { L_QW, L_QB, L_KW, L_KB, L_VW, L_VB, L_AOW, L_AOB, L_LN1W, L_LN1B, L_IW, L_IB, L_OW, L_OB, L_LN2W, L_LN2B, L_PER };

static const char *const global_names[P_GLOBAL] = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"};
static const char *const layer_names[L_PER] = {
    "attention.self.query.weight",      "attention.self.query.bias",      "attention.self.key.weight",
    "attention.self.key.bias",          "attention.self.value.weight",    "attention.self.value.bias",
    "attention.output.dense.weight",    "attention.output.dense.bias",    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",  "intermediate.dense.weight",      "intermediate.dense.bias",
    "output.dense.weight",              "output.dense.bias",              "output.LayerNorm.weight",
    "output.LayerNorm.bias"};

typedef struct {
    float *p;         /* into the parameter buffer */
    int64_t rows, cols; /* cols 0: a vector of rows elements */
} param;

struct qr_encoder {
    char *path;
    qr_encoder_config c;
    qr_wordpiece *tok;
    float *params; /* one allocation */
    int64_t n_params;
    param g[P_GLOBAL];
    param *l; /* [n_layer * L_PER] */
    /* activation arena, sized for cap_tokens rows (grown on demand) */
    float *arena;
    int64_t cap_tokens;
    float *x, *tmp, *q, *k, *v, *ctx, *ff, *scores; /* scores: one row of keys per thread */
    int n_threads;
};

/* ---- configuration files ------------------------------------------------ */

/* dir/name parsed as JSON (a bounded read); NULL + message. optional: a
 * missing file gives NULL with *missing = 1 and no message. */
static cJSON *read_json(const char *dir, const char *name, int optional, int *missing) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (missing) *missing = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (optional && errno == ENOENT) {
            if (missing) *missing = 1;
            return NULL;
        }
        qr_err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > QR_ENCODER_MAX_JSON) {
        qr_err_set("%s: expected a JSON file of at most %u bytes, found %s of %lld bytes", path, QR_ENCODER_MAX_JSON,
                   S_ISREG(st.st_mode) ? "one" : "something else", (long long)st.st_size);
        return NULL;
    }
    size_t len = 0;
    char *text = qr_read_file(path, &len);
    if (!text) return NULL;
    cJSON *j = len <= QR_ENCODER_MAX_JSON ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        qr_err_set("%s: expected a JSON object", path);
        return NULL;
    }
    return j;
}

/* an integer field in [lo, hi]; def when absent and def >= lo */
static int json_int(const cJSON *j, const char *path, const char *key, int lo, int hi, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v && def >= lo) {
        *out = def;
        return QR_OK;
    }
    if (!v) return qr_err_set("%s: no \"%s\"; expected an integer in [%d, %d]", path, key, lo, hi);
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return qr_err_set("%s: \"%s\": expected an integer in [%d, %d]", path, key, lo, hi);
    *out = (int)d;
    return QR_OK;
}

/* a string field that must equal want (absent: ok when def_ok) */
static int json_str_is(const cJSON *j, const char *path, const char *key, const char *want, int def_ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v && def_ok) return QR_OK;
    if (!cJSON_IsString(v) || strcmp(v->valuestring, want) != 0)
        return qr_err_set("%s: \"%s\": expected \"%s\" (the only one implemented)%s%s", path, key, want,
                          cJSON_IsString(v) ? ", got " : "", cJSON_IsString(v) ? v->valuestring : "");
    return QR_OK;
}

/* a boolean field that must be want (absent: ok when def_ok; null counts as
 * absent when null_ok) */
static int json_bool_is(const cJSON *j, const char *path, const char *key, int want, int def_ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if ((!v || cJSON_IsNull(v)) && def_ok) return QR_OK;
    if (!cJSON_IsBool(v) || !!cJSON_IsTrue(v) != !!want)
        return qr_err_set("%s: \"%s\": expected %s (the only setting implemented)", path, key, want ? "true" : "false");
    return QR_OK;
}

static int read_config(qr_encoder *e, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = read_json(dir, "config.json", 0, NULL);
    if (!j) return QR_ERR;
    qr_encoder_config *c = &e->c;
    int rc = QR_OK;
    /* the upper bounds only keep products in range; the shapes of the
     * tensors (bounded by the file's size) are what really bounds them */
    if (json_str_is(j, path, "model_type", "bert", 1) || json_str_is(j, path, "hidden_act", "gelu", 0) ||
        json_str_is(j, path, "position_embedding_type", "absolute", 1) ||
        json_int(j, path, "hidden_size", 1, 1 << 16, -1, &c->dim) ||
        json_int(j, path, "num_hidden_layers", 1, 1024, -1, &c->n_layer) ||
        json_int(j, path, "num_attention_heads", 1, 1 << 16, -1, &c->n_head) ||
        json_int(j, path, "intermediate_size", 1, 1 << 20, -1, &c->n_ff) ||
        json_int(j, path, "max_position_embeddings", 2, 1 << 16, -1, &c->n_pos) ||
        json_int(j, path, "type_vocab_size", 1, 1 << 16, 2, &c->n_type) ||
        json_int(j, path, "vocab_size", 5, 1 << 24, -1, &c->n_vocab))
        rc = QR_ERR;
    if (!rc && c->dim % c->n_head)
        rc = qr_err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->dim, c->n_head);
    c->eps = 1e-12f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_eps");
    if (!rc && eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 && eps->valuedouble < 1))
            rc = qr_err_set("%s: \"layer_norm_eps\": expected a number in (0, 1)", path);
        else
            c->eps = (float)eps->valuedouble;
    }
    cJSON_Delete(j);
    if (rc) return rc;

    /* the tokenizer: the uncased one only */
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    int missing = 0;
    j = read_json(dir, "tokenizer_config.json", 1, &missing);
    if (!j && !missing) return QR_ERR;
    if (j) {
        if (json_bool_is(j, path, "do_lower_case", 1, 1) || json_bool_is(j, path, "strip_accents", 1, 1) ||
            json_bool_is(j, path, "tokenize_chinese_chars", 1, 1) || json_bool_is(j, path, "do_basic_tokenize", 1, 1))
            rc = QR_ERR;
        cJSON_Delete(j);
        if (rc) return rc;
    }

    /* the sentence length */
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    j = read_json(dir, "sentence_bert_config.json", 1, &missing);
    if (!j && !missing) return QR_ERR;
    c->max_len = c->n_pos;
    if (j) {
        if (json_int(j, path, "max_seq_length", 2, c->n_pos, c->n_pos, &c->max_len) ||
            json_bool_is(j, path, "do_lower_case", 0, 1))
            rc = QR_ERR;
        cJSON_Delete(j);
        if (rc) return rc;
    }

    /* pooling: mean over the tokens, the only mode */
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", dir);
    j = read_json(dir, "1_Pooling/config.json", 0, NULL);
    if (!j) return QR_ERR;
    int wdim = 0;
    if (json_bool_is(j, path, "pooling_mode_mean_tokens", 1, 0) || json_bool_is(j, path, "pooling_mode_cls_token", 0, 1) ||
        json_bool_is(j, path, "pooling_mode_max_tokens", 0, 1) ||
        json_bool_is(j, path, "pooling_mode_mean_sqrt_len_tokens", 0, 1) ||
        json_bool_is(j, path, "pooling_mode_weightedmean_tokens", 0, 1) ||
        json_bool_is(j, path, "pooling_mode_lasttoken", 0, 1) ||
        json_int(j, path, "word_embedding_dimension", c->dim, c->dim, c->dim, &wdim))
        rc = QR_ERR;
    cJSON_Delete(j);
    if (rc) return rc;

    /* the modules: Transformer, Pooling, optional Normalize */
    snprintf(path, sizeof path, "%s/modules.json", dir);
    c->normalize = 1;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > QR_ENCODER_MAX_JSON)
            return qr_err_set("%s: expected a JSON file of at most %u bytes", path, QR_ENCODER_MAX_JSON);
        char *text = qr_read_file(path, NULL);
        if (!text) return QR_ERR;
        cJSON *a = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsArray(a)) {
            cJSON_Delete(a);
            return qr_err_set("%s: expected a JSON array of modules", path);
        }
        c->normalize = 0;
        int i = 0;
        for (const cJSON *m = a->child; m; m = m->next, i++) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "type");
            const char *s = cJSON_IsString(t) ? t->valuestring : "";
            if (strcmp(s, "sentence_transformers.models.Normalize") == 0)
                c->normalize = 1;
            else if (strcmp(s, "sentence_transformers.models.Transformer") != 0 &&
                     strcmp(s, "sentence_transformers.models.Pooling") != 0) {
                rc = qr_err_set("%s: module [%d] \"%s\": expected Transformer, Pooling or Normalize (the only ones "
                                "implemented)",
                                path, i, s);
                break;
            }
        }
        cJSON_Delete(a);
    }
    return rc;
}

/* ---- weights ------------------------------------------------------------ */

static const qr_st_tensor *find_tensor(const qr_st_file *f, const char *name) {
    char alt[256];
    snprintf(alt, sizeof alt, "bert.%s", name);
    for (int i = 0; i < qr_st_count(f); i++) { /* qr_st_find sets a message when absent: probe quietly */
        const qr_st_tensor *t = qr_st_at(f, i);
        if (strcmp(t->name, name) == 0 || strcmp(t->name, alt) == 0) return t;
    }
    return NULL;
}

/* the tensor name with shape (rows) or (rows, cols), checked */
static int check_shape(const qr_st_file *f, const char *name, int64_t rows, int64_t cols, const qr_st_tensor **out) {
    const qr_st_tensor *t = find_tensor(f, name);
    if (!t) return qr_err_set("%s: no tensor '%s' (nor 'bert.%s'); expected a BertModel checkpoint", qr_st_path(f), name, name);
    int ok = cols ? (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->n_dims == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[128] = "";
        size_t k = 0;
        for (int d = 0; d < t->n_dims && k < sizeof got - 24; d++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (cols)
            return qr_err_set("%s: tensor '%s': shape [%s], expected [%lld, %lld] (from config.json)", qr_st_path(f),
                              t->name, got, (long long)rows, (long long)cols);
        return qr_err_set("%s: tensor '%s': shape [%s], expected [%lld] (from config.json)", qr_st_path(f), t->name, got,
                          (long long)rows);
    }
    *out = t;
    return QR_OK;
}

static int load_weights(qr_encoder *e, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    qr_st_file *f = qr_st_open(path);
    if (!f) return QR_ERR;
    const qr_encoder_config *c = &e->c;
    const int64_t C = c->dim, F = c->n_ff;
    int64_t g_shape[P_GLOBAL][2] = {{c->n_vocab, C}, {c->n_pos, C}, {c->n_type, C}, {C, 0}, {C, 0}};
    int64_t l_shape[L_PER][2] = {{C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0},
                                 {C, 0}, {C, 0}, {F, C}, {F, 0}, {C, F}, {C, 0}, {C, 0}, {C, 0}};
    int n_t = P_GLOBAL + L_PER * c->n_layer;
    const qr_st_tensor **ts = qr_xcalloc((size_t)n_t, sizeof *ts);
    int64_t total = 0;
    int rc = QR_OK;
    char name[256];
    /* every shape checked before the buffer is allocated: its size is then
     * a sum of tensor sizes the file holds */
    for (int i = 0; i < n_t && !rc; i++) {
        int64_t r, cc;
        if (i < P_GLOBAL) {
            snprintf(name, sizeof name, "%s", global_names[i]);
            r = g_shape[i][0];
            cc = g_shape[i][1];
        } else {
            int l = (i - P_GLOBAL) / L_PER, s = (i - P_GLOBAL) % L_PER;
            snprintf(name, sizeof name, "encoder.layer.%d.%s", l, layer_names[s]);
            r = l_shape[s][0];
            cc = l_shape[s][1];
        }
        rc = check_shape(f, name, r, cc, &ts[i]);
        if (!rc) total += ts[i]->n_elems;
    }
    if (!rc) {
        e->n_params = total;
        e->params = qr_xmalloc(sizeof(float) * (size_t)total);
        e->l = qr_xcalloc((size_t)c->n_layer * L_PER, sizeof(param));
        float *p = e->params;
        for (int i = 0; i < n_t && !rc; i++) {
            param *dst = i < P_GLOBAL ? &e->g[i] : &e->l[i - P_GLOBAL];
            dst->p = p;
            dst->rows = ts[i]->shape[0];
            dst->cols = ts[i]->n_dims == 2 ? ts[i]->shape[1] : 0;
            rc = qr_st_read_f32(f, ts[i], p, ts[i]->n_elems);
            p += ts[i]->n_elems;
        }
    }
    free(ts);
    qr_st_close(f);
    return rc;
}

qr_encoder *qr_encoder_open(const char *dir) {
    if (!dir) {
        qr_err_set("qr_encoder_open: NULL directory");
        return NULL;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        qr_err_set("%s: cannot open the encoder directory: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        qr_err_set("%s: not a directory; expected the encoder's directory (config.json, model.safetensors, vocab.txt, ...)",
                   dir);
        return NULL;
    }
    qr_encoder *e = qr_xcalloc(1, sizeof *e);
    e->path = qr_xstrdup(dir);
    if (read_config(e, dir) || load_weights(e, dir)) {
        qr_encoder_free(e);
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    e->tok = qr_wordpiece_from_file(path);
    if (!e->tok) {
        qr_encoder_free(e);
        return NULL;
    }
    /* every id the tokenizer can give must index the embedding */
    if (qr_wordpiece_n_vocab(e->tok) > e->c.n_vocab) {
        qr_err_set("%s: %d tokens, but config.json's vocab_size (the embedding's rows) is %d", path,
                   qr_wordpiece_n_vocab(e->tok), e->c.n_vocab);
        qr_encoder_free(e);
        return NULL;
    }
    return e;
}

void qr_encoder_free(qr_encoder *e) {
    if (!e) return;
    qr_wordpiece_free(e->tok);
    free(e->params);
    free(e->l);
    free(e->arena);
    free(e->path);
    free(e);
}

const qr_encoder_config *qr_encoder_cfg(const qr_encoder *e) { return e ? &e->c : NULL; }
const qr_wordpiece *qr_encoder_tokenizer(const qr_encoder *e) { return e ? e->tok : NULL; }
const char *qr_encoder_path(const qr_encoder *e) { return e ? e->path : NULL; }
int64_t qr_encoder_n_params(const qr_encoder *e) { return e ? e->n_params : 0; }

/* ---- forward -------------------------------------------------------------- */

/* the arena for n token rows: x, tmp, q, k, v, ctx (n,C), ff (n,F), and a
 * row of n_pos scores per thread */
static void arena_fit(qr_encoder *e, int64_t n) {
    int nt = omp_get_max_threads();
    if (n <= e->cap_tokens && nt <= e->n_threads) return;
    if (nt > e->n_threads) e->n_threads = nt;
    if (n < e->cap_tokens) n = e->cap_tokens;
    const int64_t C = e->c.dim, F = e->c.n_ff;
    size_t total = (size_t)(6 * n * C + n * F + (int64_t)e->n_threads * e->c.n_pos);
    free(e->arena);
    e->arena = qr_xmalloc(sizeof(float) * total);
    float *p = e->arena;
    e->x = p, p += n * C;
    e->tmp = p, p += n * C;
    e->q = p, p += n * C;
    e->k = p, p += n * C;
    e->v = p, p += n * C;
    e->ctx = p, p += n * C;
    e->ff = p, p += n * F;
    e->scores = p;
    e->cap_tokens = n;
}

/* e^x for x <= 0 in float, vectorisable (libm's expf is not, in an omp
 * simd loop without -ffast-math): x = n ln2 + r, |r| <= ln2/2, e^r by its
 * degree-7 Taylor polynomial (relative error < 1e-7), 2^n in the exponent
 * bits; x is clamped at -87 (e^-87 ~ 1.6e-38 stands in for underflow). */
static inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    union {
        float f;
        uint32_t u;
    } kb, e;
    kb.f = x * 1.44269504088896341f + 12582912.0f; /* round to nearest: n in the low mantissa bits */
    float n = kb.f - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    e.u = (kb.u - 0x4B400000u + 127u) << 23;
    return p * e.f;
}

/* BERT's GELU, the erf one: u/2 (1 + erf(u/sqrt 2)), in place over n.
 * erf as PyTorch's CPU kernel computes it (Vectorized<float>::erf, which
 * the reference's GELU runs): Abramowitz & Stegun 7.1.26, t = 1/(1 + p|z|),
 * erf z = sign(z) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z^2)),
 * absolute error below 1.5e-7 - under float rounding of GELU's output. */
static void gelu_erf(float *x, int64_t n) {
#pragma omp parallel for simd if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        float u = x[i], z = u * 0.70710678118654752f, az = fabsf(z);
        float t = 1.0f / (0.3275911f * az + 1.0f);
        float r = 1.061405429f * t + -1.453152027f;
        r = r * t + 1.421413741f;
        r = r * t + -0.284496736f;
        r = r * t + 0.254829592f;
        float erf_az = 1.0f - r * t * exp_nonpos(-(z * z));
        float erf_z = z < 0 ? -erf_az : erf_az;
        x[i] = 0.5f * u * (1.0f + erf_z);
    }
}

/* Sequences are packed: sequence b is rows [start[b], start[b] + len[b])
 * of every (N, .) activation, at positions 0 .. len[b]-1; mask (N) is 1 for
 * a row that is a key and is pooled, 0 for one that is neither (HF's
 * attention_mask), or NULL for all 1. qr_encoder_forward packs a padded
 * (B,T) batch as B sequences of T rows with its mask; embed packs the
 * sentences back to back, with no padding and no mask. */
typedef struct {
    const int *start, *len;
    const int32_t *mask;
    int B;
} packing;

/* Bidirectional attention with a key mask.
 * q, k, v (N,NH,HD) -> out (N,NH,HD). Keys with mask 0 are left out of
 * every softmax of their sequence (HF adds the dtype's minimum to their
 * scores, which makes their weight exactly 0); a sequence with no key left
 * attends uniformly to all its rows (what the minimum added everywhere
 * gives). scores: a row of n_pos floats per thread. */
static void attention_masked(float *out, float *scores, const float *q, const float *k, const float *v,
                             const packing *pk, int NH, int HD, int n_pos) {
    const int ld = NH * HD;
    const float scale = 1.0f / sqrtf((float)HD);
    int64_t work = 0;
    for (int b = 0; b < pk->B; b++) work += (int64_t)pk->len[b] * pk->len[b];
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (work * NH * HD >= 65536)
    for (int b = 0; b < pk->B; b++) {
        for (int h = 0; h < NH; h++) {
            float *s = scores + (size_t)omp_get_thread_num() * (size_t)n_pos;
            const int T = pk->len[b];
            const size_t r0 = (size_t)pk->start[b];
            const int32_t *m = pk->mask ? pk->mask + r0 : NULL;
            int all = 1, any = 1; /* all keys / some key */
            if (m) {
                any = 0;
                for (int j = 0; j < T; j++) {
                    any |= m[j] != 0;
                    all &= m[j] != 0;
                }
            }
            for (int t = 0; t < T; t++) {
                const float *qt = q + (r0 + t) * ld + (size_t)h * HD;
                float mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if (!all && any && !m[j]) continue;
                    const float *kj = k + (r0 + j) * ld + (size_t)h * HD;
                    float d = 0;
#pragma omp simd reduction(+ : d)
                    for (int i = 0; i < HD; i++) d += qt[i] * kj[i];
                    s[j] = any ? d * scale : 0; /* all masked: equal scores */
                    if (s[j] > mx) mx = s[j];
                }
                float sum = 0;
                for (int j = 0; j < T; j++) {
                    if (!all && any && !m[j]) continue;
                    s[j] = expf(s[j] - mx);
                    sum += s[j];
                }
                float inv = 1.0f / sum;
                float *o = out + (r0 + t) * ld + (size_t)h * HD;
                for (int i = 0; i < HD; i++) o[i] = 0;
                for (int j = 0; j < T; j++) {
                    if (!all && any && !m[j]) continue;
                    const float *vj = v + (r0 + j) * ld + (size_t)h * HD;
                    float w = s[j] * inv;
#pragma omp simd
                    for (int i = 0; i < HD; i++) o[i] += w * vj[i];
                }
            }
        }
    }
}

/* pooled (B,C) = mean of x's rows (N,C) of each sequence with mask 1, then L2 */
static void pool(float *pooled, const float *x, const packing *pk, int C, int normalize) {
    for (int b = 0; b < pk->B; b++) {
        float *o = pooled + (size_t)b * C;
        double n = 0;
        for (int c = 0; c < C; c++) o[c] = 0;
        for (int t = 0; t < pk->len[b]; t++) {
            size_t r = (size_t)pk->start[b] + t;
            if (pk->mask && !pk->mask[r]) continue;
            const float *xr = x + r * C;
            for (int c = 0; c < C; c++) o[c] += xr[c];
            n += 1;
        }
        float inv = 1.0f / (float)(n > 1e-9 ? n : 1e-9);
        double ss = 0;
        for (int c = 0; c < C; c++) {
            o[c] *= inv;
            ss += (double)o[c] * o[c];
        }
        if (normalize) {
            double norm = sqrt(ss);
            float sc = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
            for (int c = 0; c < C; c++) o[c] *= sc;
        }
    }
}

/* the forward over N packed rows; ids checked by the callers */
static void forward_packed(qr_encoder *e, const int32_t *ids, int N, const packing *pk, float *hidden, float *pooled) {
    const qr_encoder_config *c = &e->c;
    const int C = c->dim, F = c->n_ff, NH = c->n_head;
    arena_fit(e, N);
    /* embeddings: word + position + token type 0, then LayerNorm */
    qr_embedding_forward(e->tmp, ids, e->g[P_WORD].p, N, C);
    const float *pos = e->g[P_POS].p, *typ = e->g[P_TYPE].p;
    for (int b = 0; b < pk->B; b++)
        for (int t = 0; t < pk->len[b]; t++) {
            float *r = e->tmp + ((size_t)pk->start[b] + t) * C;
            const float *pr = pos + (size_t)t * C;
            for (int i = 0; i < C; i++) r[i] = r[i] + typ[i] + pr[i];
        }
    qr_layernorm_forward(e->x, NULL, NULL, e->tmp, e->g[P_ELN_W].p, e->g[P_ELN_B].p, N, C, c->eps);
    for (int l = 0; l < c->n_layer; l++) {
        const param *w = e->l + (size_t)l * L_PER;
        qr_matmul_forward(e->q, e->x, w[L_QW].p, w[L_QB].p, N, C, C);
        qr_matmul_forward(e->k, e->x, w[L_KW].p, w[L_KB].p, N, C, C);
        qr_matmul_forward(e->v, e->x, w[L_VW].p, w[L_VB].p, N, C, C);
        attention_masked(e->ctx, e->scores, e->q, e->k, e->v, pk, NH, C / NH, c->n_pos);
        qr_matmul_forward(e->tmp, e->ctx, w[L_AOW].p, w[L_AOB].p, N, C, C);
        qr_residual_forward(e->tmp, e->tmp, e->x, (int64_t)N * C);
        qr_layernorm_forward(e->x, NULL, NULL, e->tmp, w[L_LN1W].p, w[L_LN1B].p, N, C, c->eps);
        qr_matmul_forward(e->ff, e->x, w[L_IW].p, w[L_IB].p, N, C, F);
        gelu_erf(e->ff, (int64_t)N * F);
        qr_matmul_forward(e->tmp, e->ff, w[L_OW].p, w[L_OB].p, N, F, C);
        qr_residual_forward(e->tmp, e->tmp, e->x, (int64_t)N * C);
        qr_layernorm_forward(e->x, NULL, NULL, e->tmp, w[L_LN2W].p, w[L_LN2B].p, N, C, c->eps);
    }
    if (hidden) memcpy(hidden, e->x, sizeof(float) * (size_t)N * C);
    if (pooled) pool(pooled, e->x, pk, C, c->normalize);
}

int qr_encoder_forward(qr_encoder *e, const int32_t *ids, const int32_t *mask, int B, int T, float *hidden,
                       float *pooled) {
    if (!e || !ids || !mask) return qr_err_set("qr_encoder_forward: NULL argument");
    const qr_encoder_config *c = &e->c;
    if (B < 1 || T < 1 || T > c->n_pos || (int64_t)B * T > (int64_t)INT32_MAX / c->n_ff)
        return qr_err_set("%s: forward of %d x %d tokens; expected B >= 1 and 1 <= T <= %d (max_position_embeddings)",
                          e->path, B, T, c->n_pos);
    const int N = B * T;
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab)
            return qr_err_set("%s: token id %d at [%d][%d]; expected [0, %d)", e->path, ids[i], i / T, i % T, c->n_vocab);
    int *start = qr_xmalloc(sizeof(int) * 2 * (size_t)B), *len = start + B;
    for (int b = 0; b < B; b++) {
        start[b] = b * T;
        len[b] = T;
    }
    packing pk = {start, len, mask, B};
    forward_packed(e, ids, N, &pk, hidden, pooled);
    free(start);
    return QR_OK;
}

/* ---- sentences -------------------------------------------------------------- */

int qr_encoder_embed(qr_encoder *e, const char *const *texts, const size_t *lens, int n, float *out) {
    if (!e || (n > 0 && (!texts || !out)) || n < 0) return qr_err_set("qr_encoder_embed: bad arguments");
    if (n == 0) return QR_OK;
    const int C = e->c.dim;
    /* the sentences back to back, in batches of at most cap tokens (one
     * sentence is at most max_len <= cap) */
    const int cap = QR_ENCODER_BATCH_TOKENS > e->c.max_len ? QR_ENCODER_BATCH_TOKENS : e->c.max_len;
    int32_t *ids = qr_xmalloc(sizeof(int32_t) * (size_t)cap);
    int *start = qr_xmalloc(sizeof(int) * 2 * (size_t)cap), *len = start + cap;
    int rc = QR_OK;
    for (int i0 = 0; i0 < n && !rc;) {
        int B = 0, N = 0, i = i0;
        for (; i < n; i++) {
            const char *t = texts[i] ? texts[i] : "";
            int32_t *tid = NULL;
            int nt = 0;
            rc = qr_wordpiece_encode(e->tok, t, lens ? lens[i] : strlen(t), e->c.max_len, &tid, &nt);
            if (rc || N + nt > cap) { /* this one starts the next batch */
                free(tid);
                break;
            }
            memcpy(ids + N, tid, sizeof(int32_t) * (size_t)nt);
            free(tid);
            start[B] = N;
            len[B++] = nt;
            N += nt;
        }
        if (rc) break;
        packing pk = {start, len, NULL, B};
        forward_packed(e, ids, N, &pk, NULL, out + (size_t)i0 * C);
        i0 = i;
    }
    free(ids);
    free(start);
    return rc;
}

double qr_encoder_cosine(const float *a, const float *b, int dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return 0;
    return ab / sqrt(aa * bb);
}
