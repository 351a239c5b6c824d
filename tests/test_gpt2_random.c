/* test_gpt2_random.c - tests/gpt2_random.h generates the same weights, bit
 * for bit, as scripts/ref/gpt2_random.py did when it produced
 * tests/fixtures/gpt2_random_logits.safetensors: every tensor's hash64 must
 * equal the one recorded in the fixture's metadata (124M shape and tiny
 * shape). Then the HF directory writer is checked at the tiny shape: the
 * safetensors it writes reads back with the right names, shapes and
 * hashes, config.json carries the shape, the tokenizer files are copies. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpt2_random.h"
#include "harness.h"
#include "qr.h"
#include "io/safetensors.h"

#define FIXTURE "tests/fixtures/gpt2_random_logits.safetensors"

static cJSON *meta_json(const qr_st_file *f, const char *key)
{
    const char *s = qr_st_metadata(f, key);
    return s ? cJSON_Parse(s) : NULL;
}

static int json_int(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* Generate every tensor of the shape in shape_json and compare its hash64
 * with hashes_json. Returns the number of mismatches (also counted by the
 * harness); prints the first few. */
static int check_hashes(const cJSON *shape, const cJSON *hashes, uint64_t seed, const char *label)
{
    int L = json_int(shape, "n_layer"), C = json_int(shape, "n_embd");
    int P = json_int(shape, "n_positions"), V = json_int(shape, "n_vocab");
    test_cond("fixture shape fields present", L > 0 && C > 0 && P > 0 && V > 0);
    if (L <= 0 || C <= 0 || P <= 0 || V <= 0)
        return 1;
    int n = qr_test_gpt2_n_tensors(L);
    qr_test_gpt2_tensor *spec = qr_xmalloc(sizeof *spec * n);
    qr_test_gpt2_tensors(spec, L, C, P, V);
    test_cond("fixture has one hash per tensor", cJSON_GetArraySize(hashes) == n);
    /* the largest tensor is wte (V, C) or c_fc (C, 4C) */
    int64_t maxn = 0;
    for (int k = 0; k < n; k++)
        if (qr_test_gpt2_numel(&spec[k]) > maxn)
            maxn = qr_test_gpt2_numel(&spec[k]);
    float *buf = qr_xmalloc(sizeof(float) * (size_t)maxn);
    int bad = 0;
    for (int k = 0; k < n; k++) {
        int64_t numel = qr_test_gpt2_numel(&spec[k]);
        qr_test_gpt2_fill(buf, numel, seed, k, spec[k].kind);
        uint64_t h = qr_test_gpt2_hash(buf, numel);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(hashes, spec[k].name);
        uint64_t w = cJSON_IsString(want) ? strtoull(want->valuestring, NULL, 16) : 0;
        if (h != w) {
            if (bad++ < 5)
                fprintf(stderr, "%s: %s: hash64 %016" PRIx64 ", fixture says %s\n", label,
                        spec[k].name, h, cJSON_IsString(want) ? want->valuestring : "(absent)");
        }
    }
    printf("%s: %d tensors, %d hash mismatches\n", label, n, bad);
    test_cond("C generator matches the Python one, every tensor", bad == 0);
    free(buf);
    free(spec);
    return bad;
}

static void test_values(void)
{
    /* Spot values worked out by hand from the spec: a kind's range and
     * exactness, independently of the hashes. */
    float v[4096];
    qr_test_gpt2_fill(v, 4096, 1234, 2, QR_TEST_GPT2_LNW);
    int ok = 1;
    for (int i = 0; i < 4096; i++)
        ok &= v[i] >= 0.875f && v[i] < 1.125f;
    test_cond("LayerNorm weights in [0.875, 1.125)", ok);
    qr_test_gpt2_fill(v, 4096, 1234, 0, QR_TEST_GPT2_WTE);
    ok = 1;
    for (int i = 0; i < 4096; i++)
        ok &= v[i] >= -0.0625f && v[i] < 0.0625f && v[i] * 0x1p27f == (float)(int32_t)(v[i] * 0x1p27f);
    test_cond("wte values in [-1/16, 1/16) on the 2^-27 grid", ok);
    /* u = splitmix64(1234 * 1000003 + 5); (u >> 40) - 2^23 = -5340496 */
    uint64_t u = qr_test_splitmix64(1234ull * 1000003ull + 5);
    test_cond("splitmix64 reference value", (int32_t)(u >> 40) - (1 << 23) == -5340496);
    test_cond("wte[5] = r * 2^-27", v[5] == -5340496 * 0x1p-27f);
}

static void test_writer(const cJSON *tiny_shape, const cJSON *tiny_hashes)
{
    char dir[] = "/tmp/qr_gpt2_random_XXXXXX";
    test_cond("mkdtemp", mkdtemp(dir) != NULL);
    int L = 2, C = 64, H = 4, P = 1024, V = 50257;
    test_cond("fixture tiny shape is 2/64/1024/50257",
              json_int(tiny_shape, "n_layer") == L && json_int(tiny_shape, "n_embd") == C &&
                  json_int(tiny_shape, "n_positions") == P && json_int(tiny_shape, "n_vocab") == V);
    int rc = qr_test_write_gpt2_random(dir, 1234, L, C, H, P, V);
    test_cond("qr_test_write_gpt2_random", rc == QR_OK);
    if (rc != QR_OK) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return;
    }
    char path[512];

    snprintf(path, sizeof path, "%s/config.json", dir);
    char *txt = qr_read_file(path, NULL);
    cJSON *cfg = txt ? cJSON_Parse(txt) : NULL;
    test_cond("config.json parses", cfg != NULL);
    if (cfg) {
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg, "model_type");
        test_cond("config model_type gpt2", cJSON_IsString(mt) && !strcmp(mt->valuestring, "gpt2"));
        test_cond("config shape", json_int(cfg, "n_layer") == L && json_int(cfg, "n_embd") == C &&
                                      json_int(cfg, "n_head") == H && json_int(cfg, "n_positions") == P &&
                                      json_int(cfg, "vocab_size") == V &&
                                      json_int(cfg, "eos_token_id") == 50256);
        cJSON_Delete(cfg);
    }
    free(txt);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    qr_st_file *st = qr_st_open(path);
    test_cond("model.safetensors opens", st != NULL);
    if (st) {
        int n = qr_test_gpt2_n_tensors(L);
        qr_test_gpt2_tensor *spec = qr_xmalloc(sizeof *spec * n);
        qr_test_gpt2_tensors(spec, L, C, P, V);
        test_cond("tensor count 4 + 12 L", qr_st_count(st) == n);
        int bad = 0;
        for (int k = 0; k < n; k++) {
            const qr_st_tensor *t = qr_st_find(st, spec[k].name);
            if (!t || strcmp(t->dtype, "F32") || t->n_dims != spec[k].n_dims ||
                t->shape[0] != spec[k].shape[0] ||
                (spec[k].n_dims == 2 && t->shape[1] != spec[k].shape[1])) {
                bad++;
                continue;
            }
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(tiny_hashes, spec[k].name);
            uint64_t h = qr_test_gpt2_hash((const float *)t->data, t->n_elems);
            if (!cJSON_IsString(want) || h != strtoull(want->valuestring, NULL, 16))
                bad++;
        }
        test_cond("written tensors: names, F32, shapes, hashes", bad == 0);
        test_cond("no lm_head (tied)", qr_st_find(st, "lm_head.weight") == NULL);
        qr_err_clear();
        free(spec);
        qr_st_close(st);
    }

    static const char *const pairs[2][2] = {{"encoder.json", "vocab.json"}, {"vocab.bpe", "merges.txt"}};
    for (int c = 0; c < 2; c++) {
        char src[512];
        size_t la = 0, lb = 0;
        snprintf(src, sizeof src, "tests/data/gpt2-tokenizer/%s", pairs[c][0]);
        snprintf(path, sizeof path, "%s/%s", dir, pairs[c][1]);
        char *a = qr_read_file(src, &la), *b = qr_read_file(path, &lb);
        test_cond("tokenizer file copied", a && b && la == lb && !memcmp(a, b, la));
        free(a);
        free(b);
    }
    static const char *const files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);

    test_cond("bad shape rejected", qr_test_write_gpt2_random(dir, 1, 2, 65, 4, 8, 10) == QR_ERR);
    test_cond("bad shape message", strstr(qr_err_msg(), "n_embd 65") != NULL);
}

int main(void)
{
    qr_st_file *f = qr_st_open(FIXTURE);
    test_cond("open " FIXTURE, f != NULL);
    if (!f) {
        fprintf(stderr, "%s\n", qr_err_msg());
        return test_report();
    }
    const char *seed_s = qr_st_metadata(f, "seed");
    uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : 0;
    test_cond("fixture seed 1234", seed == 1234);
    cJSON *shape = meta_json(f, "shape"), *hashes = meta_json(f, "weight_hash64");
    cJSON *tshape = meta_json(f, "tiny_shape"), *thashes = meta_json(f, "tiny_weight_hash64");
    test_cond("fixture metadata: shape, hashes", shape && hashes && tshape && thashes);
    if (shape && hashes && tshape && thashes) {
        test_values();
        check_hashes(shape, hashes, seed, "124M shape");
        check_hashes(tshape, thashes, seed, "tiny shape");
        test_writer(tshape, thashes);
    }
    cJSON_Delete(shape);
    cJSON_Delete(hashes);
    cJSON_Delete(tshape);
    cJSON_Delete(thashes);
    qr_st_close(f);
    return test_report();
}
