/* test_model_errors.c - bad model files give a message naming the file and
 * the problem, never a crash:
 *   err-1  missing path; missing config.json; config.json not JSON; wrong
 *          model_type; a field of the wrong type; sizes out of range or
 *          describing far more weights than model.safetensors holds
 *   err-2  model.safetensors truncated; a tensor missing; a tensor with the
 *          wrong shape
 *   err-3  the GGUF truncated (its first 1 MiB); a text file named .gguf;
 *          header sizes (feed_forward_length, block_count) that ask for more
 *          weights than the file holds (refused before anything is allocated:
 *          they used to abort in the allocator)
 *   err-4  a missing vocabulary file */
#define _POSIX_C_SOURCE 200809L
#include "gpt2_random.h"
#include "harness.h"
#include "model/model.h"
#include "io/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[] = "/tmp/qrun-errors-XXXXXX";

/* Expect loading path to fail with a message containing every needle. */
static void expect_fail(const char *id, const char *path, const char *n1, const char *n2) {
    qr_model *m = qr_model_load(path);
    const char *msg = qr_err_msg();
    int ok = !m && strstr(msg, n1) && (!n2 || strstr(msg, n2));
    printf("%s: %s\n", id, m ? "(loaded!)" : msg);
    test_cond(id, ok);
    qr_model_free(m);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Write src (len bytes, a GGUF) to path with the u32 metadata value of key
 * set to v. Returns 0 when the key was found and patched. */
static int write_gguf_patched(const char *path, const unsigned char *src, size_t len, const char *key, uint32_t v) {
    size_t kl = strlen(key);
    unsigned char *buf = malloc(len);
    memcpy(buf, src, len);
    int found = 0;
    for (size_t i = 8; i + kl + 12 <= len && i < (16u << 20); i++) {
        uint64_t n;
        memcpy(&n, buf + i - 8, 8);
        uint32_t type;
        memcpy(&type, buf + i + kl, 4);
        if (n == kl && memcmp(buf + i, key, kl) == 0 && (type == 4 || type == 5)) { /* u32, i32 */
            memcpy(buf + i + kl + 4, &v, 4);
            found = 1;
            break;
        }
    }
    FILE *out = fopen(path, "wb");
    if (out) {
        fwrite(buf, 1, len, out);
        fclose(out);
    }
    free(buf);
    return found && out ? 0 : -1;
}

static void fresh_dir(char *dir, size_t n, const char *name) {
    snprintf(dir, n, "%s/%s", root, name);
    if (qr_test_write_gpt2_random(dir, 1, 1, 32, 4, 64, 50257) != QR_OK) {
        fprintf(stderr, "cannot write %s: %s\n", dir, qr_err_msg());
        exit(1);
    }
}

/* A good model directory `name` whose config.json is replaced by text:
 * loading it must fail with a message containing n1 (and n2). */
static void bad_config(const char *name, const char *text, const char *id, const char *n1, const char *n2) {
    char dir[512], p[600];
    fresh_dir(dir, sizeof dir, name);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, text);
    expect_fail(id, dir, n1, n2);
}

int main(void) {
    if (!mkdtemp(root)) return 1;
    char dir[512], p[600];

    expect_fail("err-1.1 missing path", "/nonexistent/model", "/nonexistent/model", NULL);
    fresh_dir(dir, sizeof dir, "ok");
    qr_model *m = qr_model_load(dir);
    test_cond("a good directory loads", m != NULL);
    qr_model_free(m);

    fresh_dir(dir, sizeof dir, "noconfig");
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    expect_fail("err-1.2 missing config.json", dir, "config.json", NULL);

    bad_config("badjson", "{\"model_type\": \"gpt2\", \"n_layer\": ", "err-1.3 truncated config.json", "config.json",
               "JSON");
    bad_config("badtype", "{\"model_type\": \"bert\"}", "err-1.4 wrong model_type", "config.json", "bert");
    bad_config("badfield",
               "{\"model_type\": \"gpt2\", \"n_layer\": \"two\", \"n_embd\": 32, \"n_head\": 4, \"vocab_size\": 50257}",
               "err-1.5 field of the wrong type", "config.json", "n_layer");
    bad_config("hugefield",
               "{\"model_type\": \"gpt2\", \"n_layer\": 1000000000, \"n_embd\": 32, \"n_head\": 4, \"vocab_size\": 50257}",
               "err-1.6 a size out of range", "config.json", "n_layer");
    bad_config("bigger",
               "{\"model_type\": \"gpt2\", \"n_layer\": 4096, \"n_embd\": 16384, \"n_head\": 4, \"vocab_size\": 50257}",
               "err-1.7 config.json needs more weights than the file holds", "needs", "hold only");

    fresh_dir(dir, sizeof dir, "trunc");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (truncate(p, 5000) != 0) return 1;
    expect_fail("err-2.1 truncated model.safetensors", dir, "model.safetensors", NULL);

    /* a model.safetensors with a missing tensor and one of the wrong shape */
    fresh_dir(dir, sizeof dir, "shape");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    qr_st_file *f = qr_st_open(p);
    int n = qr_st_count(f);
    qr_st_out *t = calloc((size_t)n, sizeof *t);
    float **bufs = calloc((size_t)n, sizeof *bufs);
    char **names = calloc((size_t)n, sizeof *names);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const qr_st_tensor *s = qr_st_at(f, i);
        bufs[k] = malloc((size_t)s->n_elems * sizeof(float) + 4);
        qr_st_read_f32(f, s, bufs[k], s->n_elems);
        names[k] = strdup(s->name); /* outlives f */
        t[k] = (qr_st_out){names[k], bufs[k], s->n_dims, {0}};
        memcpy(t[k].shape, s->shape, sizeof t[k].shape);
        if (strcmp(s->name, "h.0.mlp.c_fc.weight") == 0) { /* (in, out) = (32, 128): claim (128, 32) */
            t[k].shape[0] = s->shape[1];
            t[k].shape[1] = s->shape[0];
        }
        k++;
    }
    char p2[700];
    snprintf(p2, sizeof p2, "%s/shape.safetensors", root);
    qr_st_write(p2, t, k, NULL);
    qr_st_close(f);
    rename(p2, p);
    expect_fail("err-2.2 tensor of the wrong shape", dir, "h.0.mlp.c_fc.weight", "shape");
    /* drop ln_f.bias */
    k = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i].name, "h.0.mlp.c_fc.weight") == 0) { /* shape back to (32, 128) */
            t[i].shape[0] = 32;
            t[i].shape[1] = 128;
        }
        if (strcmp(t[i].name, "ln_f.bias") != 0) t[k++] = t[i];
    }
    qr_st_write(p2, t, k, NULL);
    rename(p2, p);
    expect_fail("err-2.3 tensor missing", dir, "ln_f.bias", "missing");
    for (int i = 0; i < n; i++) {
        free(bufs[i]);
        free(names[i]);
    }
    free(names);
    free(bufs);
    free(t);

    fresh_dir(dir, sizeof dir, "novocab");
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    unlink(p);
    expect_fail("err-4.1 missing vocab.json", dir, "vocab.json", NULL);

    /* GGUF: a prefix of the real file, and a text file */
    const char *home = getenv("HOME");
    char real[600];
    snprintf(real, sizeof real, "%s/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : ".");
    if (getenv("QRUN_MODEL")) snprintf(real, sizeof real, "%s", getenv("QRUN_MODEL"));
    FILE *in = fopen(real, "rb");
    test_cond("the default model exists (scripts/fetch_model.sh)", in != NULL);
    if (in) {
        snprintf(p, sizeof p, "%s/cut.gguf", root);
        FILE *out = fopen(p, "wb");
        char *buf = malloc(1 << 20);
        size_t got = fread(buf, 1, 1 << 20, in);
        fwrite(buf, 1, got, out);
        fclose(out);
        free(buf);
        expect_fail("err-3.1 truncated GGUF", p, "cut.gguf", NULL);

        fseek(in, 0, SEEK_END);
        long len = ftell(in);
        fseek(in, 0, SEEK_SET);
        unsigned char *all = malloc((size_t)len);
        size_t rd = fread(all, 1, (size_t)len, in);
        snprintf(p, sizeof p, "%s/big_ff.gguf", root);
        test_cond("err-3.3 patch llama.feed_forward_length",
                  rd == (size_t)len && write_gguf_patched(p, all, rd, "llama.feed_forward_length", 1u << 30) == 0);
        expect_fail("err-3.3 feed_forward_length 2^30", p, "big_ff.gguf", "hold only");
        snprintf(p, sizeof p, "%s/big_blocks.gguf", root);
        test_cond("err-3.4 patch llama.block_count",
                  rd == (size_t)len && write_gguf_patched(p, all, rd, "llama.block_count", 1u << 20) == 0);
        expect_fail("err-3.4 block_count 2^20", p, "big_blocks.gguf", "hold only");
        free(all);
        fclose(in);
    }
    snprintf(p, sizeof p, "%s/text.gguf", root);
    write_text(p, "this is not a model\n");
    expect_fail("err-3.2 not a GGUF file", p, "text.gguf", NULL);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", root);
    return test_report();
}
