/* gpt2_random.h - a GPT-2-shaped model with fixed random weights, generated
 * bit-identically here and in scripts/ref/gpt2_random.py (which produced the
 * reference logits in tests/fixtures/gpt2_random_logits.safetensors with
 * Hugging Face transformers). Header-only, for tests.
 *
 * Generator (keep in step with the Python module):
 *   splitmix64(x): z = x + 0x9E3779B97F4A7C15;
 *                  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
 *                  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
 *                  return z ^ (z >> 31);                 (uint64 arithmetic)
 *   tensor k (0-based, HF state-dict order, see qr_test_gpt2_tensors),
 *   element i (flat row-major index in the stored shape):
 *     u = splitmix64(seed * 1000003 + k * 2^40 + i)
 *     r = (int)(u >> 40) - 2^23                 in [-2^23, 2^23)
 *     MAT-like kinds: value = r * 2^-23 * 2^-e, uniform in [-2^-e, 2^-e):
 *       wte e=4, wpe e=6, c_attn/c_fc weight e=5, attn and mlp c_proj
 *       weight e=7, every bias (LayerNorm's too) e=6
 *     LayerNorm weights: q = (int)(u >> 43) - 2^20, value = 1 + q * 2^-23,
 *       in [0.875, 1.125)
 *   All of these are exact in float32, so C and Python agree to the bit.
 *
 * Layout as in Hugging Face's gpt2 model.safetensors: no "transformer."
 * prefix, Conv1D weights stored (in, out), lm_head tied to wte and absent.
 * For n_layer L there are 2 + 12 L + 2 tensors.
 *
 * qr_test_gpt2_hash() is the checksum the Python side records in the
 * fixture's metadata: sum over i of splitmix64(bits(v[i]) | i << 32) mod
 * 2^64 (order-sensitive; vectorises in numpy, unlike FNV-1a).
 *
 * qr_test_write_gpt2_random() writes an HF directory: config.json,
 * model.safetensors, vocab.json and merges.txt (copied from
 * tests/data/gpt2-tokenizer). The vocabulary files have 50257 entries, so a
 * tokenizer only makes sense with n_vocab 50257; bos/eos are n_vocab - 1. */
#ifndef QR_TEST_GPT2_RANDOM_H
#define QR_TEST_GPT2_RANDOM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qr.h"
#include "io/safetensors.h"

#ifndef QR_SOURCE_DIR
#define QR_SOURCE_DIR "."
#endif

enum { QR_TEST_GPT2_WTE, QR_TEST_GPT2_WPE, QR_TEST_GPT2_MAT, QR_TEST_GPT2_PROJ,
       QR_TEST_GPT2_BIAS, QR_TEST_GPT2_LNW };

typedef struct {
    char name[48];
    int n_dims;
    int64_t shape[2];
    int kind; /* QR_TEST_GPT2_* */
} qr_test_gpt2_tensor;

static inline int qr_test_gpt2_n_tensors(int n_layer) { return 4 + 12 * n_layer; }

static inline uint64_t qr_test_splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fill t[qr_test_gpt2_n_tensors(n_layer)] with names, shapes and kinds in
 * HF state-dict order; the index is k in the generator. */
static inline void qr_test_gpt2_tensors(qr_test_gpt2_tensor *t, int n_layer, int n_embd,
                                        int n_positions, int n_vocab)
{
    static const struct { const char *suffix; int kind; int rows_x, cols_x; } per_layer[12] = {
        /* shape = (rows_x * C, cols_x * C); cols_x 0 means 1-D (rows_x * C,) */
        {"ln_1.weight", QR_TEST_GPT2_LNW, 1, 0},
        {"ln_1.bias", QR_TEST_GPT2_BIAS, 1, 0},
        {"attn.c_attn.weight", QR_TEST_GPT2_MAT, 1, 3},
        {"attn.c_attn.bias", QR_TEST_GPT2_BIAS, 3, 0},
        {"attn.c_proj.weight", QR_TEST_GPT2_PROJ, 1, 1},
        {"attn.c_proj.bias", QR_TEST_GPT2_BIAS, 1, 0},
        {"ln_2.weight", QR_TEST_GPT2_LNW, 1, 0},
        {"ln_2.bias", QR_TEST_GPT2_BIAS, 1, 0},
        {"mlp.c_fc.weight", QR_TEST_GPT2_MAT, 1, 4},
        {"mlp.c_fc.bias", QR_TEST_GPT2_BIAS, 4, 0},
        {"mlp.c_proj.weight", QR_TEST_GPT2_PROJ, 4, 1},
        {"mlp.c_proj.bias", QR_TEST_GPT2_BIAS, 1, 0},
    };
    int64_t C = n_embd;
    int k = 0;
    snprintf(t[k].name, sizeof t[k].name, "wte.weight");
    t[k].n_dims = 2, t[k].shape[0] = n_vocab, t[k].shape[1] = C, t[k].kind = QR_TEST_GPT2_WTE, k++;
    snprintf(t[k].name, sizeof t[k].name, "wpe.weight");
    t[k].n_dims = 2, t[k].shape[0] = n_positions, t[k].shape[1] = C, t[k].kind = QR_TEST_GPT2_WPE, k++;
    for (int l = 0; l < n_layer; l++) {
        for (int j = 0; j < 12; j++, k++) {
            snprintf(t[k].name, sizeof t[k].name, "h.%d.%s", l, per_layer[j].suffix);
            t[k].kind = per_layer[j].kind;
            t[k].shape[0] = per_layer[j].rows_x * C;
            t[k].shape[1] = per_layer[j].cols_x * C;
            t[k].n_dims = per_layer[j].cols_x ? 2 : 1;
        }
    }
    snprintf(t[k].name, sizeof t[k].name, "ln_f.weight");
    t[k].n_dims = 1, t[k].shape[0] = C, t[k].shape[1] = 0, t[k].kind = QR_TEST_GPT2_LNW, k++;
    snprintf(t[k].name, sizeof t[k].name, "ln_f.bias");
    t[k].n_dims = 1, t[k].shape[0] = C, t[k].shape[1] = 0, t[k].kind = QR_TEST_GPT2_BIAS, k++;
}

static inline int64_t qr_test_gpt2_numel(const qr_test_gpt2_tensor *t)
{
    return t->n_dims == 2 ? t->shape[0] * t->shape[1] : t->shape[0];
}

/* dst[n] = the values of tensor k of the given kind. */
static inline void qr_test_gpt2_fill(float *dst, int64_t n, uint64_t seed, int k, int kind)
{
    /* 2^-23 * 2^-e per kind */
    static const float scale_of_kind[] = {
        [QR_TEST_GPT2_WTE] = 0x1p-27f, [QR_TEST_GPT2_WPE] = 0x1p-29f,
        [QR_TEST_GPT2_MAT] = 0x1p-28f, [QR_TEST_GPT2_PROJ] = 0x1p-30f,
        [QR_TEST_GPT2_BIAS] = 0x1p-29f, [QR_TEST_GPT2_LNW] = 0x1p-23f,
    };
    uint64_t base = seed * 1000003ull + ((uint64_t)k << 40);
    if (kind == QR_TEST_GPT2_LNW) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t u = qr_test_splitmix64(base + (uint64_t)i);
            int32_t q = (int32_t)(u >> 43) - (1 << 20);
            dst[i] = 1.0f + (float)q * 0x1p-23f;
        }
    } else {
        float scale = scale_of_kind[kind];
        for (int64_t i = 0; i < n; i++) {
            uint64_t u = qr_test_splitmix64(base + (uint64_t)i);
            int32_t r = (int32_t)(u >> 40) - (1 << 23);
            dst[i] = (float)r * scale;
        }
    }
}

static inline uint64_t qr_test_gpt2_hash(const float *v, int64_t n)
{
    uint64_t h = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        h += qr_test_splitmix64((uint64_t)bits | ((uint64_t)i << 32));
    }
    return h;
}

/* The exact bytes scripts/ref/gpt2_random.py writes. */
static inline int qr_test_gpt2_write_config(const char *path, int n_layer, int n_embd, int n_head,
                                            int n_positions, int n_vocab)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return qr_err_set("%s: cannot create config.json", path);
    fprintf(f,
            "{\n"
            "  \"model_type\": \"gpt2\",\n"
            "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
            "  \"n_layer\": %d,\n"
            "  \"n_embd\": %d,\n"
            "  \"n_head\": %d,\n"
            "  \"n_positions\": %d,\n"
            "  \"n_ctx\": %d,\n"
            "  \"n_inner\": null,\n"
            "  \"vocab_size\": %d,\n"
            "  \"layer_norm_epsilon\": 1e-05,\n"
            "  \"activation_function\": \"gelu_new\",\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"resid_pdrop\": 0.0,\n"
            "  \"embd_pdrop\": 0.0,\n"
            "  \"attn_pdrop\": 0.0,\n"
            "  \"scale_attn_weights\": true,\n"
            "  \"scale_attn_by_inverse_layer_idx\": false,\n"
            "  \"reorder_and_upcast_attn\": false,\n"
            "  \"tie_word_embeddings\": true,\n"
            "  \"bos_token_id\": %d,\n"
            "  \"eos_token_id\": %d,\n"
            "  \"dtype\": \"float32\"\n"
            "}\n",
            n_layer, n_embd, n_head, n_positions, n_positions, n_vocab, n_vocab - 1, n_vocab - 1);
    if (fclose(f) != 0)
        return qr_err_set("%s: write failed", path);
    return QR_OK;
}

static inline int qr_test_gpt2_copy_file(const char *src, const char *dst)
{
    size_t len;
    char *buf = qr_read_file(src, &len);
    if (!buf)
        return QR_ERR;
    FILE *f = fopen(dst, "wb");
    if (!f) {
        free(buf);
        return qr_err_set("%s: cannot create", dst);
    }
    size_t w = fwrite(buf, 1, len, f);
    int bad = fclose(f) != 0 || w != len;
    free(buf);
    return bad ? qr_err_set("%s: short write (%zu of %zu bytes)", dst, w, len) : QR_OK;
}

/* Write the HF directory dir (created if missing). The weights of the
 * 124M shape take 500 MB of memory while writing. */
static inline int qr_test_write_gpt2_random(const char *dir, uint64_t seed, int n_layer, int n_embd,
                                            int n_head, int n_positions, int n_vocab)
{
    if (n_layer < 1 || n_embd < 1 || n_head < 1 || n_embd % n_head || n_positions < 1 ||
        n_vocab < 1)
        return qr_err_set("qr_test_write_gpt2_random: bad shape (n_layer %d, n_embd %d, n_head "
                          "%d, n_positions %d, n_vocab %d)",
                          n_layer, n_embd, n_head, n_positions, n_vocab);
    if (mkdir(dir, 0755) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return qr_err_set("%s: cannot create directory", dir);
    }
    size_t plen = strlen(dir) + 64;
    char *path = qr_xmalloc(plen);
    int rc = QR_ERR;

    snprintf(path, plen, "%s/config.json", dir);
    if (qr_test_gpt2_write_config(path, n_layer, n_embd, n_head, n_positions, n_vocab) != QR_OK)
        goto done;

    int n = qr_test_gpt2_n_tensors(n_layer);
    qr_test_gpt2_tensor *spec = qr_xmalloc(sizeof *spec * n);
    qr_st_out *out = qr_xcalloc(n, sizeof *out);
    qr_test_gpt2_tensors(spec, n_layer, n_embd, n_positions, n_vocab);
    int64_t total = 0;
    for (int k = 0; k < n; k++)
        total += qr_test_gpt2_numel(&spec[k]);
    /* one allocation for all the weights; out[k].data points into it */
    float *all = qr_xmalloc(sizeof(float) * (size_t)total), *p = all;
    for (int k = 0; k < n; k++) {
        int64_t numel = qr_test_gpt2_numel(&spec[k]);
        qr_test_gpt2_fill(p, numel, seed, k, spec[k].kind);
        out[k].name = spec[k].name;
        out[k].data = p;
        out[k].n_dims = spec[k].n_dims;
        out[k].shape[0] = spec[k].shape[0];
        out[k].shape[1] = spec[k].shape[1];
        p += numel;
    }
    static const char *const meta[] = {"format", "pt", NULL};
    snprintf(path, plen, "%s/model.safetensors", dir);
    int wrc = qr_st_write(path, out, n, meta);
    free(all);
    free(out);
    free(spec);
    if (wrc != QR_OK)
        goto done;

    static const char *const copies[2][2] = {{"encoder.json", "vocab.json"},
                                              {"vocab.bpe", "merges.txt"}};
    for (int c = 0; c < 2; c++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/tests/data/gpt2-tokenizer/%s", QR_SOURCE_DIR, copies[c][0]);
        snprintf(path, plen, "%s/%s", dir, copies[c][1]);
        if (qr_test_gpt2_copy_file(src, path) != QR_OK)
            goto done;
    }
    rc = QR_OK;
done:
    free(path);
    return rc;
}

#endif
