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
#include "model/model.h"
#include "plugin.h"

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
} lmodel;

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
    if (rc == QR_OK) rc = qr_generate(m, (const int32_t *const *)prompts, lens, n, &o, res, &st);
    for (int i = 0; i < n; i++) free(prompts[i]);
    free(prompts);
    free(lens);
    if (rc) {
        free(res);
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
    lua_getfield(L, 2, "layers");
    int layers = lua_gettop(L);
    int n = (int)luaL_len(L, layers), nl = qr_model_n_linears(m);
    if (n != nl) return luaL_error(L, "precision: %d layers in the configuration, the model has %d", n, nl);
    int slots = qr_model_lora_slots(m);
    /* a userdata, collected with the stack: an error below leaks nothing */
    qr_layer_prec *p = lua_newuserdatauv(L, (size_t)n * sizeof *p + 1, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, layers, i + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "precision: layers[%d] is not a table", i + 1);
        lua_getfield(L, -1, "name");
        const char *name = lua_tostring(L, -1);
        if (name && strcmp(name, qr_model_linear(m, i)->name) != 0) {
            return luaL_error(L, "precision: layers[%d] is '%s', the model's layer %d is '%s'", i + 1, name,
                              i + 1, qr_model_linear(m, i)->name);
        }
        lua_pop(L, 1);
        p[i].wbits = qr_lua_fieldint(L, -1, "w", 32, "precision");
        p[i].abits = qr_lua_fieldint(L, -1, "a", 32, "precision");
        p[i].wgroup = qr_lua_fieldint(L, -1, "g", 0, "precision");
        lua_getfield(L, -1, "adapter");
        int no_adapter = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (no_adapter && slots > 0) {
            /* silently running without the adapters would evaluate the base */
            return luaL_error(L,
                              "precision: the model has a LoRA bank (%d slots) but layers[%d] (%s) names no "
                              "adapter: give every layer adapter = <slot> (P.assign_adapters(cfgs) sets them) or "
                              "adapter = -1 to run without",
                              slots, i + 1, qr_model_linear(m, i)->name);
        }
        p[i].adapter = qr_lua_fieldint(L, -1, "adapter", -1, "precision");
        lua_pop(L, 1);
    }
    if (qr_model_set_precision(m, p, n)) return qr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
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

static const luaL_Reg model_methods[] = {{"generate", model_generate},
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
    lua_pushcfunction(L, l_model_new);
    lua_setfield(L, mod, "model_new");
    lua_pushcfunction(L, l_default_model);
    lua_setfield(L, mod, "default_model");
}
