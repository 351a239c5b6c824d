/* lua_model.c - the model bindings of the `qr` module:
 *   qr.model(path)          -> qr.Model (a GGUF file or a Hugging Face dir)
 *   qr.default_model()      -> path of the default model (SmolLM2)
 *   model.tokenizer         -> the model's qr.Tokenizer (borrowed)
 *   model:generate(prompts, opts) -> texts, info
 *   model:info(), model:linears(), model:logits(ids), model:loss(ids)
 */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"

#include "model/generate.h"
#include "model/linear.h"
#include "model/model.h"
#include "plugin.h"
#include "text/tokenizer.h"
#include "train/proxy.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_T "qr.Model"

typedef struct {
    qr_model *m;
    /* the quantizers set by model:quantize, each retained (plugin.h) so that
     * closing the qr.Quantizer cannot free what the layers point to */
    qr_instance *wq, *aq;
    struct rpi *rpi; /* random precision inference, set by model:rpi (NULL: off) */
} lmodel;

/* Random precision inference (Double-Win, Fu et al. 2021, for text): each
 * input draws one configuration of the set with the given probabilities,
 * from the model's own RNG (splitmix64, seeded by model:rpi; a caller of
 * generate cannot steer it). */
struct rpi {
    int n, nl;            /* configurations, linear layers */
    qr_layer_prec *prec;  /* (n, nl) */
    double *cum;          /* (n) cumulative probabilities, cum[n-1] = 1 */
    double *prob;         /* (n) */
    char **names;         /* (n) */
    uint64_t seed, state;
    int64_t draws;
};

static void rpi_free(struct rpi *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->names[i]);
    free(r->names);
    free(r->prec);
    free(r->cum);
    free(r->prob);
    free(r);
}

/* the next configuration (0-based): a uniform double in [0, 1) from the
 * top 53 bits of splitmix64, against the cumulative probabilities */
static int rpi_draw(struct rpi *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) * 0x1.0p-53;
    r->draws++;
    for (int k = 0; k < r->n - 1; k++)
        if (u < r->cum[k]) return k;
    return r->n - 1;
}

static qr_model *checkmodel(lua_State *L, int arg) { return ((lmodel *)qr_lua_checkopen(L, arg, MODEL_T))->m; }
/* qr_lua.h: for other binding files (lua_train.c) */
qr_model *qr_lua_checkmodel(lua_State *L, int arg) { return checkmodel(L, arg); }

static int model_gc(lua_State *L) {
    lmodel *u = luaL_checkudata(L, 1, MODEL_T);
    qr_model_free(u->m);
    u->m = NULL;
    qr_instance_free(u->wq);
    qr_instance_free(u->aq);
    u->wq = u->aq = NULL;
    rpi_free(u->rpi);
    u->rpi = NULL;
    return 0;
}

static int model_tostring(lua_State *L) {
    lmodel *u = luaL_checkudata(L, 1, MODEL_T);
    if (!u->m) {
        lua_pushstring(L, MODEL_T " (closed)");
        return 1;
    }
    const qr_model_config *c = qr_model_cfg(u->m);
    lua_pushfstring(L, MODEL_T ": %s, %d layers, %d embd, %d heads (%d kv), vocab %d, %f M params (%s)",
                    qr_model_arch_name(u->m), c->n_layer, c->n_embd, c->n_head, c->n_kv_head, c->n_vocab,
                    (double)qr_model_n_weights(u->m) / 1e6, qr_model_path(u->m));
    return 1;
}

/* qr.model(path) -> model | nil, msg */
static int l_model(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    /* user values: 1 tokenizer, 2 weight quantizer, 3 input quantizer */
    lmodel *u = qr_lua_newudata(L, sizeof *u, MODEL_T, 3);
    u->m = qr_model_load(path);
    if (!u->m) return qr_lua_fail(L);
    return 1;
}

/* qr.model_new{arch = "gpt2" | "llama", n_layer =, n_embd =, n_head =,
 * n_kv_head =, n_ff =, n_vocab =, n_ctx =, seed =} -> a model with random
 * weights and no tokenizer (tests, experiments on small shapes). */
static int l_model_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    qr_model_config c = {0};
    lua_getfield(L, 1, "arch");
    const char *arch = luaL_optstring(L, -1, "gpt2");
    if (strcmp(arch, "gpt2") == 0)
        c.arch = QR_ARCH_GPT2;
    else if (strcmp(arch, "llama") == 0)
        c.arch = QR_ARCH_LLAMA;
    else
        return luaL_error(L, "model_new: arch '%s': expected \"gpt2\" or \"llama\"", arch);
    lua_pop(L, 1);
    static const char *keys[] = {"n_layer", "n_embd", "n_head", "n_kv_head", "n_ff", "n_vocab", "n_ctx", "seed"};
    int v[8] = {2, 64, 4, 0, 0, 97, 64, 1};
    for (int i = 0; i < 8; i++) {
        lua_getfield(L, 1, keys[i]);
        if (!lua_isnil(L, -1)) v[i] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    c.n_layer = v[0];
    c.n_embd = v[1];
    c.n_head = v[2];
    c.n_kv_head = v[3] && c.arch == QR_ARCH_LLAMA ? v[3] : v[2]; /* GPT-2 has no grouped KV heads */
    c.head_dim = v[2] > 0 ? v[1] / v[2] : 0;
    c.n_ff = v[4] ? v[4] : 4 * v[1];
    c.n_vocab = v[5];
    c.n_ctx = v[6];
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied = 1;
    if (c.n_head <= 0 || c.n_embd % c.n_head)
        return luaL_error(L, "model_new: n_embd %d must be a positive multiple of n_head %d", c.n_embd, c.n_head);
    lmodel *u = qr_lua_newudata(L, sizeof *u, MODEL_T, 3);
    u->m = qr_model_new(&c, (uint64_t)v[7]);
    if (!u->m) return qr_lua_raise(L);
    return 1;
}

/* The default model: $QRUN_MODEL, else the cache path the fetch script uses. */
static int l_default_model(lua_State *L) {
    const char *env = getenv("QRUN_MODEL");
    if (env && *env) {
        lua_pushstring(L, env);
        return 1;
    }
    const char *cache = getenv("QRUN_CACHE");
    const char *home = getenv("HOME");
    if (cache && *cache)
        lua_pushfstring(L, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else
        lua_pushfstring(L, "%s/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : ".");
    struct stat st;
    if (stat(lua_tostring(L, -1), &st) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: default model not found; run scripts/fetch_model.sh (or set QRUN_MODEL)",
                        lua_tostring(L, -2));
        return 2;
    }
    return 1;
}

static int model_info(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    const qr_model_config *c = qr_model_cfg(m);
    lua_newtable(L);
    lua_pushstring(L, qr_model_arch_name(m));
    lua_setfield(L, -2, "arch");
    lua_pushstring(L, qr_model_path(m));
    lua_setfield(L, -2, "path");
    qr_lua_setint(L, "n_layer", c->n_layer);
    qr_lua_setint(L, "n_embd", c->n_embd);
    qr_lua_setint(L, "n_head", c->n_head);
    qr_lua_setint(L, "n_kv_head", c->n_kv_head);
    qr_lua_setint(L, "head_dim", c->head_dim);
    qr_lua_setint(L, "n_ff", c->n_ff);
    qr_lua_setint(L, "n_vocab", c->n_vocab);
    qr_lua_setint(L, "n_ctx", c->n_ctx);
    qr_lua_setint(L, "n_params", qr_model_n_weights(m));
    qr_lua_setnum(L, "norm_eps", c->norm_eps);
    if (c->arch == QR_ARCH_LLAMA) qr_lua_setnum(L, "rope_theta", c->rope_theta);
    lua_pushboolean(L, c->tied);
    lua_setfield(L, -2, "tied");
    return 1;
}

/* model:linears() -> { {name=, in_features=, out_features=[, weight_group=]}, ... }
 * (weight_group: model:quantize's weight_opts.group, when set) */
static int model_linears(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    int n = qr_model_n_linears(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        qr_linear *l = qr_model_linear(m, i);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, l->name);
        lua_setfield(L, -2, "name");
        qr_lua_setint(L, "in_features", l->in);
        qr_lua_setint(L, "out_features", l->out);
        if (l->wgroup_default) qr_lua_setint(L, "weight_group", l->wgroup_default);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* model:logits(ids) -> array of V logits at the last position */
static int model_logits(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    int n;
    int32_t *ids = qr_lua_toint32array(L, 2, &n);
    if (n == 0) {
        free(ids);
        return luaL_argerror(L, 2, "empty token array");
    }
    int rc = qr_model_forward(m, ids, NULL, 1, n, NULL);
    free(ids);
    if (rc) return qr_lua_raise(L);
    const qr_model_config *c = qr_model_cfg(m);
    const float *lg = qr_model_logits(m) + (size_t)(n - 1) * c->n_vocab;
    lua_createtable(L, c->n_vocab, 0);
    for (int i = 0; i < c->n_vocab; i++) {
        lua_pushnumber(L, lg[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* model:loss(ids) -> mean next-token cross-entropy over the sequence */
static int model_loss(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    int n;
    int32_t *ids = qr_lua_toint32array(L, 2, &n);
    if (n < 2) {
        free(ids);
        return luaL_argerror(L, 2, "need at least 2 tokens");
    }
    int32_t *tgt = malloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n - 1; i++) tgt[i] = ids[i + 1];
    tgt[n - 1] = -1;
    float loss;
    int rc = qr_model_forward(m, ids, tgt, 1, n, &loss);
    free(ids);
    free(tgt);
    if (rc) return qr_lua_raise(L);
    lua_pushnumber(L, loss);
    return 1;
}

typedef struct {
    lua_State *L;
    int fn; /* stack index of a Lua progress function, or 0 */
    int print;
    double t0;
} progress_ud;

static int progress_cb(void *ud, int done, int total) {
    progress_ud *p = ud;
    if (p->print) {
        double el = qr_now() - p->t0;
        double eta = done > 0 ? el / done * (total - done) : 0;
        fprintf(stderr, "%sgenerate %d/%d  %.1f prompts/s  eta %.0fs%s", isatty(2) ? "\r" : "", done, total,
                el > 0 ? done / el : 0.0, eta, isatty(2) ? (done == total ? "\n" : "") : "\n");
    }
    if (p->fn) {
        lua_pushvalue(p->L, p->fn);
        lua_pushinteger(p->L, done);
        lua_pushinteger(p->L, total);
        lua_call(p->L, 2, 1);
        int stop = lua_isboolean(p->L, -1) && !lua_toboolean(p->L, -1); /* returning false stops */
        lua_pop(p->L, 1);
        return stop;
    }
    return 0;
}

static void current_prec(qr_model *m, qr_layer_prec *p);

/* qr_generate under random precision inference: one draw per prompt (in
 * prompt order), then the prompts of each configuration generated
 * together at it; *draw (n, malloc'd) gets the draws; the model's
 * precision is restored after (also on error). */
static int generate_rpi(qr_model *m, struct rpi *r, int32_t **prompts, int *lens, int n, const qr_gen_opts *o,
                        qr_gen_result *res, qr_gen_stats *st, int **draw) {
    int nl = qr_model_n_linears(m), rc = QR_OK;
    int *d = malloc(((size_t)n + 1) * sizeof *d), *idx = malloc(((size_t)n + 1) * sizeof *idx);
    int32_t **gp = malloc(((size_t)n + 1) * sizeof *gp);
    int *gl = malloc(((size_t)n + 1) * sizeof *gl);
    qr_gen_result *gr = calloc((size_t)n + 1, sizeof *gr);
    qr_layer_prec *saved = malloc(((size_t)nl + 1) * sizeof *saved);
    if (!d || !idx || !gp || !gl || !gr || !saved) {
        rc = qr_err_set("generate: out of memory for %d prompts", n);
        goto out;
    }
    current_prec(m, saved);
    for (int i = 0; i < n; i++) d[i] = rpi_draw(r);
    for (int k = 0; k < r->n && rc == QR_OK; k++) {
        int g = 0;
        for (int i = 0; i < n; i++)
            if (d[i] == k) {
                idx[g] = i;
                gp[g] = prompts[i];
                gl[g++] = lens[i];
            }
        if (!g) continue;
        qr_gen_stats gs = {0};
        if ((rc = qr_model_set_precision(m, r->prec + (size_t)k * nl, nl)) != QR_OK) break;
        memset(gr, 0, (size_t)g * sizeof *gr);
        if ((rc = qr_generate(m, (const int32_t *const *)gp, gl, g, o, gr, &gs)) != QR_OK) {
            qr_err_prefix("generate at the RPI draw '%s'", r->names[k]);
            break;
        }
        for (int j = 0; j < g; j++) res[idx[j]] = gr[j];
        st->prefill_tokens += gs.prefill_tokens;
        st->decode_tokens += gs.decode_tokens;
        st->prefill_s += gs.prefill_s;
        st->decode_s += gs.decode_s;
    }
    if (qr_model_set_precision(m, saved, nl) && rc == QR_OK) rc = QR_ERR;
out:
    free(idx);
    free(gp);
    free(gl);
    free(gr);
    free(saved);
    if (rc != QR_OK) {
        free(d);
        d = NULL;
        qr_gen_result_free(res, n); /* the groups done before the error */
        memset(res, 0, (size_t)n * sizeof *res);
    }
    *draw = d;
    return rc;
}

/* model:generate(prompts, opts) -> texts, info
 * prompts: array of strings (tokenized with the model's tokenizer) or of
 * token-id arrays. opts: max_new_tokens, stop (string or array), batch,
 * eos (id or false for none), progress (true to print, or a function
 * (done,total) that returns false to stop). info: {ids = {...}, stopped =
 * {...}, prefill_tokens, decode_tokens, prefill_s, decode_s}. */
static int model_generate(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    qr_tokenizer *tok = qr_model_tokenizer(m);
    qr_gen_opts o = {.max_new_tokens = 32, .eos = QR_GEN_EOS_DEFAULT, .batch = 8};
    const char *stops[16];
    progress_ud pu = {L, 0, 0, qr_now()};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "max_new_tokens");
        if (!lua_isnil(L, -1)) {
            lua_Integer v = luaL_checkinteger(L, -1);
            if (v < 1 || v > 1 << 20)
                return luaL_error(L, "generate: opts.max_new_tokens = %I: expected 1..%d", v, 1 << 20);
            o.max_new_tokens = (int)v;
        }
        lua_pop(L, 1);
        lua_getfield(L, 3, "batch");
        if (!lua_isnil(L, -1) && luaL_checkinteger(L, -1) < 1)
            return luaL_error(L, "generate: opts.batch = %I: expected >= 1", luaL_checkinteger(L, -1));
        lua_pop(L, 1);
        lua_getfield(L, 3, "min_new_tokens");
        if (!lua_isnil(L, -1)) o.min_new_tokens = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, 3, "batch");
        if (!lua_isnil(L, -1)) o.batch = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, 3, "eos");
        if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
            o.eos = QR_GEN_NO_EOS;
        else if (!lua_isnil(L, -1)) {
            lua_Integer e = luaL_checkinteger(L, -1);
            if (e <= 0) return luaL_error(L, "generate: opts.eos = %d: expected a positive token id or false", (int)e);
            o.eos = (int32_t)e;
        }
        lua_pop(L, 1);
        lua_getfield(L, 3, "stop");
        if (lua_isstring(L, -1)) {
            stops[0] = lua_tostring(L, -1);
            o.n_stop = 1;
        } else if (lua_istable(L, -1)) {
            int n = (int)luaL_len(L, -1);
            if (n > 16) return luaL_error(L, "generate: at most 16 stop strings (got %d)", n);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                if (!lua_isstring(L, -1)) return luaL_error(L, "generate: opts.stop[%d] is not a string", i);
                stops[o.n_stop++] = lua_tostring(L, -1);
                lua_pop(L, 1); /* the table keeps the string alive */
            }
        }
        /* keep the stop value on the stack while generating */
        lua_getfield(L, 3, "progress");
        if (lua_isfunction(L, -1)) {
            pu.fn = lua_gettop(L);
        } else {
            pu.print = lua_toboolean(L, -1);
        }
        if (pu.fn || pu.print) {
            o.progress = progress_cb;
            o.ud = &pu;
        }
    }
    o.stop = stops;
    int n = (int)luaL_len(L, 2);
    int32_t **prompts = calloc((size_t)n + 1, sizeof *prompts);
    int *lens = calloc((size_t)n + 1, sizeof *lens);
    int rc = QR_OK;
    for (int i = 0; i < n && rc == QR_OK; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            if (!tok) {
                rc = qr_err_set("generate: the model has no tokenizer; give token-id arrays");
            } else {
                size_t len;
                const char *s = lua_tolstring(L, -1, &len);
                rc = qr_tokenizer_encode(tok, s, len, &prompts[i], &lens[i]);
            }
        } else if (lua_istable(L, -1)) {
            prompts[i] = qr_lua_toint32array(L, lua_gettop(L), &lens[i]);
        } else {
            rc = qr_err_set("generate: prompts[%d] is a %s (expected a string or an array of token ids)", i + 1,
                            luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    qr_gen_result *res = calloc((size_t)n + 1, sizeof *res);
    qr_gen_stats st = {0};
    struct rpi *r = ((lmodel *)qr_lua_checkopen(L, 1, MODEL_T))->rpi;
    int *draw = NULL;
    if (rc == QR_OK && r) rc = generate_rpi(m, r, prompts, lens, n, &o, res, &st, &draw);
    else if (rc == QR_OK) rc = qr_generate(m, (const int32_t *const *)prompts, lens, n, &o, res, &st);
    for (int i = 0; i < n; i++) free(prompts[i]);
    free(prompts);
    free(lens);
    if (rc) {
        free(res);
        free(draw);
        return qr_lua_raise(L);
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, res[i].text ? res[i].text : "");
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, 6);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        qr_lua_pushint32array(L, res[i].ids, res[i].n_ids);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "ids");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        static const char *why[3] = {"length", "eos", "stop"};
        lua_pushstring(L, why[res[i].stopped]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "stopped");
    qr_lua_setint(L, "prefill_tokens", st.prefill_tokens);
    qr_lua_setint(L, "decode_tokens", st.decode_tokens);
    qr_lua_setnum(L, "prefill_s", st.prefill_s);
    qr_lua_setnum(L, "decode_s", st.decode_s);
    if (draw) {
        lua_createtable(L, n, 0);
        for (int i = 0; i < n; i++) {
            lua_pushinteger(L, draw[i] + 1);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "rpi");
        lua_createtable(L, r->n, 0);
        for (int k = 0; k < r->n; k++) {
            lua_pushstring(L, r->names[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "rpi_names");
        free(draw);
    }
    qr_gen_result_free(res, n);
    free(res);
    return 2;
}

/* A quantizer argument: a qr.Quantizer, or a name (+ the options at stack
 * index optidx, 0 for none) made into one by qr.quantizer. Leaves the
 * userdata on the stack; returns its handle. */
static struct qr_instance *get_quantizer(lua_State *L, int tidx, const char *key, int optidx) {
    lua_getfield(L, tidx, key);
    if (lua_isnil(L, -1)) return NULL;
    if (lua_type(L, -1) == LUA_TSTRING) {
        int name = lua_gettop(L);
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, "qr");
        lua_getfield(L, -1, "quantizer");
        lua_pushvalue(L, name);
        if (optidx)
            lua_pushvalue(L, optidx);
        else
            lua_pushnil(L);
        lua_call(L, 2, 2);
        if (lua_isnil(L, -2)) luaL_error(L, "quantize: %s = \"%s\": %s", key, lua_tostring(L, name), lua_tostring(L, -1));
        lua_pop(L, 1);
        lua_replace(L, name);
        lua_settop(L, name);
    }
    void *blk = qr_lua_checkopen(L, lua_gettop(L), "qr.Quantizer");
    return *(struct qr_instance **)blk;
}

/* weight_opts without its `group` key, which the host reads (one grouping,
 * linear.c's, for every row-wise quantizer, and a configuration's g can
 * override it per layer): pushes the options to hand the plugin (the table
 * itself when it has no group) and returns their index; *group = the value
 * (0 when absent). */
static int weight_opts(lua_State *L, int tidx, int *group) {
    *group = 0;
    lua_getfield(L, tidx, "weight_opts");
    int o = lua_gettop(L);
    if (!lua_istable(L, o)) return o;
    lua_getfield(L, o, "group");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return o;
    }
    int isint;
    lua_Integer g = lua_tointegerx(L, -1, &isint);
    if (!isint || g < 0 || g == 1 || g > 2147483647)
        luaL_error(L, "quantize: weight_opts.group = %s: expected an integer >= 2 (input channels per scale), or 0 "
                      "for one scale per output channel",
                   luaL_tolstring(L, -1, NULL));
    *group = (int)g;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, o)) {
        if (!(lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "group") == 0)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_replace(L, o);
    return o;
}

/* model:quantize{weight = "minmax" | quantizer, act = ..., weight_opts = {}, act_opts = {}}
 * Sets the quantizers; bit-widths come from model:precision(cfg).
 * weight_opts.group = g (any row-wise quantizer) is read here, not by the
 * plugin: one scale per g input channels for every layer whose
 * configuration gives no g (0 or absent: one per output channel). The model
 * holds its own reference to each quantizer (a quantizer closed afterwards
 * keeps working for the model until the model is collected or quantized
 * anew). */
static int model_quantize(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    lmodel *u = lua_touserdata(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int group;
    int wo = weight_opts(L, 2, &group);
    lua_getfield(L, 2, "act_opts");
    int ao = lua_gettop(L);
    if (lua_istable(L, ao)) {
        lua_getfield(L, ao, "group");
        if (!lua_isnil(L, -1))
            return luaL_error(L, "quantize: act_opts.group: groups are for weights (weight_opts.group); inputs "
                                 "have one scale per token");
        lua_pop(L, 1);
    }
    struct qr_instance *wq = get_quantizer(L, 2, "weight", lua_isnil(L, wo) ? 0 : wo);
    int wi = lua_gettop(L);
    struct qr_instance *aq = get_quantizer(L, 2, "act", lua_isnil(L, ao) ? 0 : ao);
    int ai = lua_gettop(L);
    lua_pushvalue(L, wi);
    lua_setiuservalue(L, 1, 2);
    lua_pushvalue(L, ai);
    lua_setiuservalue(L, 1, 3);
    /* retain the new ones before letting go of the old (they may be the same) */
    qr_instance *oldw = u->wq, *olda = u->aq;
    u->wq = qr_instance_retain(wq);
    u->aq = qr_instance_retain(aq);
    qr_model_set_quantizers(m, wq, aq);
    qr_model_set_weight_group(m, group); /* validated above: cannot fail */
    qr_instance_free(oldw);
    qr_instance_free(olda);
    lua_settop(L, 1);
    return 1;
}

/* model:lora{rank = 8, alpha = 16, slots = 1, seed = 0} */
static int model_lora(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int rank = qr_lua_fieldint(L, 2, "rank", 8, "lora"), slots = qr_lua_fieldint(L, 2, "slots", 1, "lora"),
        seed = qr_lua_fieldint(L, 2, "seed", 0, "lora");
    lua_getfield(L, 2, "alpha");
    double alpha = lua_isnil(L, -1) ? 2.0 * rank : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (qr_model_lora_init(m, slots, rank, (float)alpha, (uint64_t)seed)) return qr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

/* model:precision(cfg): cfg = {name=, layers = {{name=, w=, a=, g=, adapter=}, ...}}
 * (g: the weight group, absent = the model's default from model:quantize)
 * (recipes/lib/qr/precision.lua makes them), or a spec that precision.config
 * understands ("w8a8", {default = ..., [pattern] = ...}). */
static qr_layer_prec *check_layers(lua_State *L, qr_model *m, int cfg, const char *who);
static int model_precision(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    int is_cfg = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "layers");
        is_cfg = lua_istable(L, -1);
        lua_pop(L, 1);
    }
    if (!is_cfg) {
        lua_getglobal(L, "require");
        lua_pushstring(L, "qr.precision");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "config");
        if (!lua_isfunction(L, -1) || (lua_getfield(L, -2, "assign_adapters"), !lua_isfunction(L, -1)))
            return luaL_error(L, "precision: require(\"qr.precision\") did not return qrun's precision library "
                                 "(recipes/lib/qr/precision.lua): package.loaded[\"qr.precision\"] or "
                                 "package.preload[\"qr.precision\"] was replaced");
        lua_pop(L, 1);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_call(L, 2, 1);
        lua_replace(L, 2);
        lua_settop(L, 2);
    }
    qr_layer_prec *p = check_layers(L, m, 2, "precision");
    if (qr_model_set_precision(m, p, qr_model_n_linears(m))) return qr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

/* The layer precisions of the configuration table at cfg ({layers = {{name=,
 * w=, a=, g=, adapter=}, ...}}) as an array in a userdata it pushes
 * (collected with the stack: an error leaks nothing); raises naming the
 * layer. who prefixes the messages. */
static qr_layer_prec *check_layers(lua_State *L, qr_model *m, int cfg, const char *who) {
    lua_getfield(L, cfg, "layers");
    if (!lua_istable(L, -1)) luaL_error(L, "%s: the configuration has no layers table", who);
    int layers = lua_gettop(L);
    int n = (int)luaL_len(L, layers), nl = qr_model_n_linears(m);
    if (n != nl) luaL_error(L, "%s: %d layers in the configuration, the model has %d", who, n, nl);
    int slots = qr_model_lora_slots(m);
    qr_layer_prec *p = lua_newuserdatauv(L, (size_t)n * sizeof *p + 1, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, layers, i + 1);
        if (!lua_istable(L, -1)) luaL_error(L, "%s: layers[%d] is not a table", who, i + 1);
        lua_getfield(L, -1, "name");
        const char *name = lua_tostring(L, -1);
        if (name && strcmp(name, qr_model_linear(m, i)->name) != 0) {
            luaL_error(L, "%s: layers[%d] is '%s', the model's layer %d is '%s'", who, i + 1, name, i + 1,
                       qr_model_linear(m, i)->name);
        }
        lua_pop(L, 1);
        p[i].wbits = qr_lua_fieldint(L, -1, "w", 32, who);
        p[i].abits = qr_lua_fieldint(L, -1, "a", 32, who);
        p[i].wgroup = qr_lua_fieldint(L, -1, "g", 0, who);
        lua_getfield(L, -1, "adapter");
        int no_adapter = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (no_adapter && slots > 0) {
            /* silently running without the adapters would evaluate the base */
            luaL_error(L,
                       "%s: the model has a LoRA bank (%d slots) but layers[%d] (%s) names no "
                       "adapter: give every layer adapter = <slot> (P.assign_adapters(cfgs) sets them) or "
                       "adapter = -1 to run without",
                       who, slots, i + 1, qr_model_linear(m, i)->name);
        }
        p[i].adapter = qr_lua_fieldint(L, -1, "adapter", -1, who);
        lua_pop(L, 1);
    }
    lua_remove(L, layers);
    return p;
}

/* The model's current layer precisions into p (nl). */
static void current_prec(qr_model *m, qr_layer_prec *p) {
    for (int i = 0; i < qr_model_n_linears(m); i++) {
        const qr_linear *l = qr_model_linear(m, i);
        p[i] = (qr_layer_prec){l->wbits, l->abits, l->active, l->wgroup};
    }
}

/* model:rpi{configs = {cfg, ...}, probs = {p, ...}, seed = 1} -> model
 * Random precision inference: from now on model:generate draws, for each
 * prompt, one configuration of `configs` (tables as model:precision takes,
 * e.g. from P.load; each with a name) with probabilities `probs` (default
 * uniform; each >= 0, summing to 1 within 1e-6), from the model's own
 * seeded RNG, and generates it at that configuration (prompts that drew the
 * same one are batched together); generate's info.rpi[i] is prompt i's
 * draw (1-based) and info.rpi_names the names. Every configuration is
 * checked against the model when set (an adapter slot the bank does not
 * have, a bit-width out of range: refused naming the configuration and the
 * layer; nothing changes). model:rpi(false) turns it off; model:rpi()
 * returns {configs = {names}, probs =, seed =, draws =} or nil. The
 * precision the model had before a generate call is restored after it. */
static int model_rpi(lua_State *L) {
    lmodel *u = qr_lua_checkopen(L, 1, MODEL_T);
    qr_model *m = u->m;
    if (lua_isnoneornil(L, 2)) {
        struct rpi *r = u->rpi;
        if (!r) {
            lua_pushnil(L);
            return 1;
        }
        lua_createtable(L, 0, 4);
        lua_createtable(L, r->n, 0);
        for (int k = 0; k < r->n; k++) {
            lua_pushstring(L, r->names[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "configs");
        lua_createtable(L, r->n, 0);
        for (int k = 0; k < r->n; k++) {
            lua_pushnumber(L, r->prob[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "probs");
        qr_lua_setint(L, "seed", (int64_t)r->seed);
        qr_lua_setint(L, "draws", r->draws);
        return 1;
    }
    if (lua_isboolean(L, 2) && !lua_toboolean(L, 2)) {
        rpi_free(u->rpi);
        u->rpi = NULL;
        lua_settop(L, 1);
        return 1;
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "configs");
    if (!lua_istable(L, -1)) return luaL_error(L, "rpi: configs: expected an array of configurations");
    int cfgs = lua_gettop(L);
    int n = (int)luaL_len(L, cfgs), nl = qr_model_n_linears(m);
    if (n < 1) return luaL_error(L, "rpi: configs is empty: expected at least one configuration");
    if (n > 4096) return luaL_error(L, "rpi: %d configurations: at most 4096", n);
    double *prob = lua_newuserdatauv(L, (size_t)n * sizeof *prob, 0);
    lua_getfield(L, 2, "probs");
    if (lua_isnil(L, -1)) {
        for (int k = 0; k < n; k++) prob[k] = 1.0 / n;
    } else {
        if (!lua_istable(L, -1)) return luaL_error(L, "rpi: probs: expected an array of numbers");
        int np = (int)luaL_len(L, -1);
        if (np != n) return luaL_error(L, "rpi: probs has %d entries for %d configurations", np, n);
        double sum = 0;
        for (int k = 0; k < n; k++) {
            lua_rawgeti(L, -1, k + 1);
            int isnum;
            double v = lua_tonumberx(L, -1, &isnum);
            if (!isnum || !(v >= 0) || v > 1) return luaL_error(L, "rpi: probs[%d]: expected a number in [0, 1]", k + 1);
            prob[k] = v;
            sum += v;
            lua_pop(L, 1);
        }
        if (!(fabs(sum - 1) <= 1e-6)) {
            char b[64];
            snprintf(b, sizeof b, "%.9g", sum);
            return luaL_error(L, "rpi: probs sum to %s: expected 1 (within 1e-6)", b);
        }
        for (int k = 0; k < n; k++) prob[k] /= sum;
    }
    lua_pop(L, 1);
    lua_Integer seed = 1;
    lua_getfield(L, 2, "seed");
    if (!lua_isnil(L, -1)) {
        int isint;
        seed = lua_tointegerx(L, -1, &isint);
        if (!isint) return luaL_error(L, "rpi: seed: expected an integer");
    }
    lua_pop(L, 1);
    /* check every configuration against the model (set it, then restore) */
    qr_layer_prec *saved = lua_newuserdatauv(L, (size_t)nl * sizeof *saved + 1, 0);
    current_prec(m, saved);
    qr_layer_prec *all = lua_newuserdatauv(L, (size_t)n * nl * sizeof *all, 0);
    int names = lua_gettop(L) + 1;
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        lua_rawgeti(L, cfgs, k + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "rpi: configs[%d] is not a configuration table", k + 1);
        lua_getfield(L, -1, "name");
        if (!lua_isstring(L, -1)) return luaL_error(L, "rpi: configs[%d] has no name", k + 1);
        lua_rawseti(L, names, k + 1);
        lua_rawgeti(L, names, k + 1);
        char who[160];
        snprintf(who, sizeof who, "rpi: configuration '%s'", lua_tostring(L, -1));
        lua_pop(L, 1);
        qr_layer_prec *p = check_layers(L, m, lua_gettop(L), who);
        memcpy(all + (size_t)k * nl, p, (size_t)nl * sizeof *p);
        lua_pop(L, 1); /* p */
        if (qr_model_set_precision(m, all + (size_t)k * nl, nl)) {
            qr_err_prefix("%s", who);
            return qr_lua_raise(L);
        }
        lua_pop(L, 1); /* the configuration */
    }
    if (qr_model_set_precision(m, saved, nl)) return qr_lua_raise(L);
    struct rpi *r = calloc(1, sizeof *r);
    if (r) {
        r->n = n;
        r->nl = nl;
        r->prec = malloc((size_t)n * nl * sizeof *r->prec);
        r->cum = malloc((size_t)n * sizeof *r->cum);
        r->prob = malloc((size_t)n * sizeof *r->prob);
        r->names = calloc((size_t)n, sizeof *r->names);
    }
    if (!r || !r->prec || !r->cum || !r->prob || !r->names) {
        rpi_free(r);
        return luaL_error(L, "rpi: out of memory");
    }
    memcpy(r->prec, all, (size_t)n * nl * sizeof *all);
    double c = 0;
    for (int k = 0; k < n; k++) {
        r->prob[k] = prob[k];
        c += prob[k];
        r->cum[k] = c;
        lua_rawgeti(L, names, k + 1);
        r->names[k] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (!r->names[k]) {
            rpi_free(r);
            return luaL_error(L, "rpi: out of memory");
        }
    }
    r->cum[n - 1] = 1.0;
    r->seed = (uint64_t)seed;
    r->state = (uint64_t)seed;
    rpi_free(u->rpi);
    u->rpi = r;
    lua_settop(L, 1);
    return 1;
}

/* model:rpi_next() -> k, name: draw the next configuration of the RPI set
 * (as generate does for each prompt) and set it on the model, for scoring
 * that is not generation (model:loss, model:proxy); raises when RPI is off. */
static int model_rpi_next(lua_State *L) {
    lmodel *u = qr_lua_checkopen(L, 1, MODEL_T);
    if (!u->rpi) return luaL_error(L, "rpi_next: random precision inference is off (model:rpi{configs = ...} first)");
    int k = rpi_draw(u->rpi);
    if (qr_model_set_precision(u->m, u->rpi->prec + (size_t)k * u->rpi->nl, u->rpi->nl)) return qr_lua_raise(L);
    lua_pushinteger(L, k + 1);
    lua_pushstring(L, u->rpi->names[k]);
    return 2;
}

static int model_save_adapters(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    if (qr_model_lora_save(m, luaL_checkstring(L, 2))) return qr_lua_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int model_load_adapters(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    if (qr_model_lora_load(m, luaL_checkstring(L, 2))) return qr_lua_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* model:adapters() -> {slots=, rank=, alpha=, n_params=} or nil */
static int model_adapters(lua_State *L) {
    qr_model *m = checkmodel(L, 1);
    if (!qr_model_lora_slots(m)) {
        lua_pushnil(L);
        return 1;
    }
    int64_t n;
    qr_model_lora_params(m, &n);
    lua_createtable(L, 0, 4);
    qr_lua_setint(L, "slots", qr_model_lora_slots(m));
    qr_lua_setint(L, "rank", qr_model_lora_rank(m));
    qr_lua_setnum(L, "alpha", qr_model_lora_alpha(m));
    qr_lua_setint(L, "n_params", n);
    return 1;
}

/* ---- the lm_candidates host service: a causal LM proposing words ---- */

#define SERVED_LM "qr.attack_lm" /* registry: the served qr.Model */

typedef struct {
    lmodel *u;          /* the served userdata's block (NULL model once closed) */
    uint8_t *word_tok;  /* per token: 1 = " letters" (a word after a space), 2 = "letters" (a bare word) */
    int V;
} lm_ctx;
static lm_ctx served_lm;

static int is_alpha_str(const char *p, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z'))) return 0;
    return 1;
}

/* the log-likelihood (nats) of ids[0..n) under the model: every next token */
static int lm_loglik(qr_model *m, const int32_t *ids, int n, double *out) {
    if (n < 2) {
        *out = 0;
        return QR_OK;
    }
    int32_t *tg = malloc((size_t)n * sizeof *tg);
    if (!tg) return qr_err_set("lm_candidates: out of memory");
    for (int i = 0; i < n; i++) tg[i] = i + 1 < n ? ids[i + 1] : -1;
    float loss = 0;
    int rc = qr_model_forward(m, ids, tg, 1, n, &loss);
    free(tg);
    *out = -(double)loss * (n - 1);
    return rc;
}

static int serve_lm_candidates(void *vctx, const char *text, size_t start, size_t len, int k, qr_candidate *out) {
    lm_ctx *c = vctx;
    qr_model *m = c->u->m;
    if (!m) return qr_err_set("lm_candidates: the served model was closed");
    qr_tokenizer *tok = qr_model_tokenizer(m);
    if (!tok) return qr_err_set("lm_candidates: the served model has no tokenizer");
    const int V = qr_model_cfg(m)->n_vocab;
    if (!c->word_tok) {
        c->V = V;
        c->word_tok = calloc((size_t)V, 1);
        if (!c->word_tok) return qr_err_set("lm_candidates: out of memory");
        for (int32_t id = 0; id < V && id < qr_tokenizer_n_vocab(tok); id++) {
            if (qr_tokenizer_is_special(tok, id)) continue;
            size_t n;
            char *d = qr_tokenizer_decode(tok, &id, 1, &n);
            if (!d) continue;
            if (n > 1 && d[0] == ' ' && is_alpha_str(d + 1, n - 1) && n - 1 < QR_WORD_MAX) c->word_tok[id] = 1;
            else if (is_alpha_str(d, n) && n < QR_WORD_MAX) c->word_tok[id] = 2;
            free(d);
        }
    }
    /* the left context, without its trailing spaces, after a newline (a start for the first word) */
    size_t ls = start;
    while (ls > 0 && text[ls - 1] == ' ') ls--;
    int spaced = ls < start;
    size_t nl = ls + 1;
    char *left = malloc(nl + 1);
    if (!left) return qr_err_set("lm_candidates: out of memory");
    left[0] = '\n';
    memcpy(left + 1, text, ls);
    left[nl] = 0;
    int32_t *ids = NULL;
    int n = 0, rc = qr_tokenizer_encode(tok, left, nl, &ids, &n);
    free(left);
    if (rc) return QR_ERR;
    rc = qr_model_forward(m, ids, NULL, 1, n, NULL);
    free(ids);
    if (rc) return QR_ERR;
    const float *lg = qr_model_logits(m) + (size_t)(n - 1) * V;
    /* the top k word tokens of the right kind, by logit */
    int want = spaced ? 1 : 2, got = 0;
    int32_t *best = malloc((size_t)k * sizeof *best);
    if (!best) return qr_err_set("lm_candidates: out of memory");
    for (int32_t id = 0; id < V; id++) {
        if (c->word_tok[id] != want) continue;
        int pos = got < k ? got++ : k;
        if (pos == k && !(lg[id] > lg[best[k - 1]])) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && lg[id] > lg[best[pos - 1]]) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = id;
    }
    /* re-rank by the whole text's log-likelihood with each in place: the
     * candidates' texts tokenized, then scored in one batched pass
     * (qr_proxy_eval_shared) whose positions from the last token of their
     * common prefix c on are scored, the prefix's own log-likelihood (the
     * same for every candidate) run once and added: the whole text's
     * log-likelihood, as one forward per candidate computes it, up to
     * summation order */
    size_t tl = strlen(text);
    char (*words)[QR_WORD_MAX] = malloc((size_t)(got > 0 ? got : 1) * sizeof *words);
    int32_t **fid = calloc((size_t)(got > 0 ? got : 1), sizeof *fid);
    int *fn = calloc((size_t)(got > 0 ? got : 1), sizeof *fn);
    int w = 0;
    rc = (!words || !fid || !fn) ? qr_err_set("lm_candidates: out of memory") : QR_OK;
    for (int i = 0; rc == QR_OK && i < got; i++) {
        size_t dn;
        char *d = qr_tokenizer_decode(tok, &best[i], 1, &dn);
        if (!d) continue;
        const char *word = spaced ? d + 1 : d;
        size_t wl = strlen(word);
        char *full = malloc(tl - len + wl + 2);
        if (!full) {
            free(d);
            rc = qr_err_set("lm_candidates: out of memory");
            break;
        }
        full[0] = '\n';
        memcpy(full + 1, text, start);
        memcpy(full + 1 + start, word, wl);
        memcpy(full + 1 + start + wl, text + start + len, tl - start - len);
        full[tl - len + wl + 1] = 0;
        memcpy(words[w], word, wl + 1);
        free(d);
        rc = qr_tokenizer_encode(tok, full, strlen(full), &fid[w], &fn[w]);
        free(full);
        if (rc == QR_OK && fn[w] < 2) rc = qr_err_set("lm_candidates: a candidate's text is under 2 tokens");
        w += rc == QR_OK;
    }
    double *ll = NULL;
    if (rc == QR_OK && w > 0) {
        int c = fn[0] - 1; /* the common prefix, leaving each candidate a scored position */
        int64_t total = 0;
        for (int i = 0; i < w; i++) {
            int l = 0;
            while (l < c && l < fn[i] - 1 && fid[i][l] == fid[0][l]) l++;
            c = l;
            total += fn[i];
        }
        if (c < 1) c = 1;
        int32_t *ids2 = malloc((size_t)total * sizeof *ids2), *tg = malloc((size_t)total * sizeof *tg);
        int64_t *off = malloc((size_t)(w + 1) * sizeof *off);
        double *per = malloc((size_t)w * sizeof *per);
        ll = malloc((size_t)w * sizeof *ll);
        double ll0 = 0;
        if (!ids2 || !tg || !off || !per || !ll) rc = qr_err_set("lm_candidates: out of memory");
        if (rc == QR_OK) {
            off[0] = 0;
            for (int i = 0; i < w; i++) {
                int64_t o = off[i];
                for (int t = 0; t < fn[i]; t++) {
                    ids2[o + t] = fid[i][t];
                    tg[o + t] = (t >= c - 1 && t + 1 < fn[i]) ? fid[i][t + 1] : -1;
                }
                off[i + 1] = o + fn[i];
            }
            qr_train_data dd = {ids2, tg, off, w};
            qr_proxy_result r;
            rc = lm_loglik(m, fid[0], c, &ll0);
            if (rc == QR_OK) rc = qr_proxy_eval_shared(m, &dd, NULL, w, 1, &r, per, NULL);
            for (int i = 0; rc == QR_OK && i < w; i++) ll[i] = ll0 - per[i] * (fn[i] - c);
        }
        free(ids2);
        free(tg);
        free(off);
        free(per);
    }
    int kept = 0;
    for (int i = 0; rc == QR_OK && i < w; i++) { /* insertion by log-likelihood, the best first */
        qr_candidate cd = {{0}, (float)ll[i], 0};
        memcpy(cd.word, words[i], strlen(words[i]) + 1);
        int p = kept++;
        while (p > 0 && out[p - 1].cos < cd.cos) {
            out[p] = out[p - 1];
            p--;
        }
        out[p] = cd;
    }
    for (int i = 0; fid && i < w; i++) free(fid[i]);
    free(fid);
    free(fn);
    free(words);
    free(ll);
    free(best);
    return rc == QR_OK ? kept : QR_ERR;
}

/* qr.attack_lm(model | nil) -> the previous one: serve model's proposals
 * to attack plugins (the ABI 1.3 host service lm_candidates), or stop. Use
 * a separate instance from the victim, at full precision. */
static int l_attack_lm(lua_State *L) {
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, SERVED_LM);
    free(served_lm.word_tok);
    served_lm = (lm_ctx){0};
    if (lua_isnil(L, 1)) {
        qr_plugins_set_lm(NULL);
        lua_pushnil(L);
        lua_setfield(L, LUA_REGISTRYINDEX, SERVED_LM);
        return 1;
    }
    lmodel *u = qr_lua_checkopen(L, 1, MODEL_T);
    if (!qr_model_tokenizer(u->m)) return luaL_error(L, "attack_lm: the model has no tokenizer");
    served_lm.u = u;
    qr_lm_service sv = {&served_lm, "a causal LM", serve_lm_candidates};
    qr_plugins_set_lm(&sv);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SERVED_LM);
    return 1;
}

/* qr.attack_lm_candidates(text, start, len, k) -> {{word=, loglik=}, ...}
 * through the service, as a plugin calls it (start 0-based byte offset) */
static int l_attack_lm_candidates(lua_State *L) {
    const char *text = luaL_checkstring(L, 1);
    lua_Integer st = luaL_checkinteger(L, 2), ln = luaL_checkinteger(L, 3), k = luaL_checkinteger(L, 4);
    if (st < 0 || ln < 0 || k < 1 || k > 4096) return luaL_error(L, "attack_lm_candidates: bad start, len or k");
    qr_candidate *c = lua_newuserdatauv(L, (size_t)k * sizeof *c, 0);
    int n = qr_plugins_lm_candidates(text, (size_t)st, (size_t)ln, (int)k, c);
    if (n < 0) return qr_lua_raise(L);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, c[i].word);
        lua_setfield(L, -2, "word");
        lua_pushnumber(L, c[i].cos);
        lua_setfield(L, -2, "loglik");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg model_methods[] = {{"generate", model_generate},
                                         {"rpi", model_rpi},
                                         {"rpi_next", model_rpi_next},
                                         {"info", model_info},
                                         {"linears", model_linears},
                                         {"logits", model_logits},
                                         {"loss", model_loss},
                                         {"quantize", model_quantize},
                                         {"lora", model_lora},
                                         {"precision", model_precision},
                                         {"save_adapters", model_save_adapters},
                                         {"load_adapters", model_load_adapters},
                                         {"adapters", model_adapters},
                                         {NULL, NULL}};

/* model.tokenizer: a borrowed tokenizer userdata, made once and kept in the
 * model's user value so repeated access gives the same object. */
static int model_index(lua_State *L) {
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "tokenizer") == 0) {
        qr_model *m = checkmodel(L, 1);
        if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) return 1;
        lua_pop(L, 1);
        if (!qr_model_tokenizer(m)) {
            lua_pushnil(L);
            return 1;
        }
        qr_lua_push_tokenizer(L, qr_model_tokenizer(m), 0, 1);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 1);
        return 1;
    }
    luaL_getmetatable(L, MODEL_T);
    lua_getfield(L, -1, "__methods");
    lua_getfield(L, -1, k);
    return 1;
}

static const luaL_Reg model_meta[] = {{"__gc", model_gc}, {"__tostring", model_tostring}, {NULL, NULL}};

void qr_lua_model_open(lua_State *L, int mod) {
    qr_lua_newmeta(L, MODEL_T, model_methods, model_meta);
    /* replace __index with a function that also serves .tokenizer */
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -2, "__methods");
    lua_pushcfunction(L, model_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_model);
    lua_setfield(L, mod, "model");
    lua_pushcfunction(L, l_attack_lm);
    lua_setfield(L, mod, "attack_lm");
    lua_pushcfunction(L, l_attack_lm_candidates);
    lua_setfield(L, mod, "attack_lm_candidates");
    lua_pushcfunction(L, l_model_new);
    lua_setfield(L, mod, "model_new");
    lua_pushcfunction(L, l_default_model);
    lua_setfield(L, mod, "default_model");
}
