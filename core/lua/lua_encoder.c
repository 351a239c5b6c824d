/* lua_encoder.c - the sentence encoder of the attacks' similarity
 * constraint (core/encoder/encoder.h, docs/ENCODER.md):
 *
 *   enc = qr.sentence_encoder([dir])   -> qr.SentenceEncoder, or nil, message
 *       dir: a sentence-transformers directory; default
 *       $QRUN_CACHE/encoder/all-MiniLM-L6-v2 (else ~/.cache/qrun/...), where
 *       scripts/fetch_encoder.sh puts all-MiniLM-L6-v2
 *   enc:embed({text, ...})              -> {{v1, ..., v_dim}, ...} (unit vectors)
 *   enc:similarity(a, b)                -> cosine; a, b texts or vectors
 *   enc:similarities(ref, {text, ...})  -> {cos, ...}, one batched embed;
 *                                          ref a text or a vector
 *   enc:tokenize(text)                  -> {101, ..., 102} ([CLS] ... [SEP])
 *   enc:info()                          -> {path=, dim=, n_layer=, n_head=, n_ff=,
 *                                          n_vocab=, max_len=, n_params=, normalize=}
 *   enc:close()                         (also __gc / __close)
 *   qr.attack_encoder(enc | nil)        -> the previous one: serve enc to attack
 *                                          plugins (the ABI 1.3 host service
 *                                          similarity), or stop; kept alive while
 *                                          served, closing it stops the serving
 *   qr.attack_similarity(ref, {text, ...}) -> {cos, ...} through that service,
 *                                          as a plugin calls it
 * A vector argument is a Lua array of dim numbers (what embed returns). */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"

#include "encoder/encoder.h"
#include "plugin.h"
#include "qr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ENCODER_T "qr.SentenceEncoder"

typedef struct {
    qr_encoder *e; /* first: NULL once closed */
} lencoder;

static qr_encoder *check_enc(lua_State *L) {
    lencoder *u = qr_lua_checkopen(L, 1, ENCODER_T);
    return u->e;
}

/* The default directory: $QRUN_CACHE/encoder/all-MiniLM-L6-v2, else under
 * ~/.cache/qrun (as scripts/fetch_encoder.sh). Pushes it. */
static const char *push_default_dir(lua_State *L) {
    const char *cache = getenv("QRUN_CACHE"), *home = getenv("HOME");
    if (cache && *cache) return lua_pushfstring(L, "%s/encoder/all-MiniLM-L6-v2", cache);
    return lua_pushfstring(L, "%s/.cache/qrun/encoder/all-MiniLM-L6-v2", home ? home : ".");
}

/* qr.sentence_encoder([dir]) */
static int l_sentence_encoder(lua_State *L) {
    int dflt = lua_isnoneornil(L, 1);
    const char *dir = dflt ? push_default_dir(L) : luaL_checkstring(L, 1);
    struct stat st;
    if (dflt && stat(dir, &st) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: the default sentence encoder is not there; run scripts/fetch_encoder.sh "
                           "(or pass the directory)", dir);
        return 2;
    }
    lencoder *u = qr_lua_newudata(L, sizeof *u, ENCODER_T, 0);
    u->e = qr_encoder_open(dir);
    if (!u->e) {
        if (!dflt && stat(dir, &st) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s: %s (scripts/fetch_encoder.sh fetches all-MiniLM-L6-v2)", dir, "not found");
            return 2;
        }
        return qr_lua_fail(L);
    }
    return 1;
}

/* The strings of the array at idx (argument arg for messages): pointers
 * and lengths into a userdata left on the stack (the strings stay anchored
 * in the array). */
static const char **check_texts(lua_State *L, int idx, int arg, size_t **lens, int *n) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len > 100000000) luaL_argerror(L, arg, "too many texts");
    *n = (int)len;
    size_t cnt = len > 0 ? (size_t)len : 1;
    char *blk = lua_newuserdatauv(L, cnt * (sizeof(char *) + sizeof(size_t)), 0);
    const char **texts = (const char **)blk;
    *lens = (size_t *)(blk + cnt * sizeof(char *));
    for (int i = 0; i < *n; i++) {
        lua_geti(L, idx, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            const char *msg = lua_pushfstring(L, "element [%d]: expected string, got %s", i + 1, luaL_typename(L, -2));
            luaL_argerror(L, arg, msg);
        }
        texts[i] = lua_tolstring(L, -1, &(*lens)[i]);
        lua_pop(L, 1); /* still referenced by the array */
    }
    return texts;
}

/* A scratch of n floats as a userdata on the stack (freed by the GC, so an
 * error leaks nothing). */
static float *push_floats(lua_State *L, size_t n) { return lua_newuserdatauv(L, sizeof(float) * (n ? n : 1), 0); }

static void push_vector(lua_State *L, const float *v, int dim) {
    lua_createtable(L, dim, 0);
    for (int i = 0; i < dim; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* enc:embed({text, ...}) */
static int enc_embed(lua_State *L) {
    qr_encoder *e = check_enc(L);
    size_t *lens;
    int n;
    const char **texts = check_texts(L, 2, 2, &lens, &n);
    int dim = qr_encoder_cfg(e)->dim;
    float *out = push_floats(L, (size_t)n * dim);
    if (qr_encoder_embed(e, texts, lens, n, out)) return qr_lua_raise(L);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_vector(L, out + (size_t)i * dim, dim);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* argument arg as a vector into v[dim]: a text is embedded, an array of
 * dim numbers copied */
static void check_vector(lua_State *L, qr_encoder *e, int arg, float *v) {
    int dim = qr_encoder_cfg(e)->dim;
    if (lua_type(L, arg) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, arg, &len);
        if (qr_encoder_embed(e, &s, &len, 1, v)) qr_lua_raise(L);
        return;
    }
    if (lua_type(L, arg) != LUA_TTABLE) luaL_typeerror(L, arg, "string or vector");
    if (luaL_len(L, arg) != dim) {
        const char *msg = lua_pushfstring(L, "a vector of %d numbers expected, got %d", dim, (int)luaL_len(L, arg));
        luaL_argerror(L, arg, msg);
    }
    for (int i = 0; i < dim; i++) {
        lua_geti(L, arg, i + 1);
        int ok;
        v[i] = (float)lua_tonumberx(L, -1, &ok);
        if (!ok) {
            const char *msg = lua_pushfstring(L, "element [%d]: expected number, got %s", i + 1, luaL_typename(L, -2));
            luaL_argerror(L, arg, msg);
        }
        lua_pop(L, 1);
    }
}

/* enc:similarity(a, b) */
static int enc_similarity(lua_State *L) {
    qr_encoder *e = check_enc(L);
    int dim = qr_encoder_cfg(e)->dim;
    float *v = push_floats(L, 2 * (size_t)dim);
    if (lua_type(L, 2) == LUA_TSTRING && lua_type(L, 3) == LUA_TSTRING) { /* one batch of two */
        const char *s[2];
        size_t len[2];
        s[0] = lua_tolstring(L, 2, &len[0]);
        s[1] = lua_tolstring(L, 3, &len[1]);
        if (qr_encoder_embed(e, s, len, 2, v)) return qr_lua_raise(L);
    } else {
        check_vector(L, e, 2, v);
        check_vector(L, e, 3, v + dim);
    }
    lua_pushnumber(L, qr_encoder_cosine(v, v + dim, dim));
    return 1;
}

/* enc:similarities(ref, {text, ...}) */
static int enc_similarities(lua_State *L) {
    qr_encoder *e = check_enc(L);
    int dim = qr_encoder_cfg(e)->dim;
    size_t *lens;
    int n;
    const char **texts = check_texts(L, 3, 3, &lens, &n);
    float *ref = push_floats(L, (size_t)dim);
    check_vector(L, e, 2, ref);
    float *out = push_floats(L, (size_t)n * dim);
    if (qr_encoder_embed(e, texts, lens, n, out)) return qr_lua_raise(L);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, qr_encoder_cosine(ref, out + (size_t)i * dim, dim));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* enc:tokenize(text) */
static int enc_tokenize(lua_State *L) {
    qr_encoder *e = check_enc(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int32_t *ids = NULL;
    int n = 0;
    if (qr_wordpiece_encode(qr_encoder_tokenizer(e), s, len, qr_encoder_cfg(e)->max_len, &ids, &n)) {
        free(ids);
        return qr_lua_raise(L);
    }
    lua_createtable(L, n, 0); /* n <= max_len: small */
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    free(ids);
    return 1;
}

static int enc_info(lua_State *L) {
    qr_encoder *e = check_enc(L);
    const qr_encoder_config *c = qr_encoder_cfg(e);
    lua_createtable(L, 0, 10);
    qr_lua_setstr(L, "path", qr_encoder_path(e));
    qr_lua_setint(L, "dim", c->dim);
    qr_lua_setint(L, "n_layer", c->n_layer);
    qr_lua_setint(L, "n_head", c->n_head);
    qr_lua_setint(L, "n_ff", c->n_ff);
    qr_lua_setint(L, "n_vocab", c->n_vocab);
    qr_lua_setint(L, "max_len", c->max_len);
    qr_lua_setint(L, "n_params", qr_encoder_n_params(e));
    lua_pushboolean(L, c->normalize);
    lua_setfield(L, -2, "normalize");
    return 1;
}

/* __gc and __close: idempotent */
static int enc_gc(lua_State *L) {
    lencoder *u = luaL_checkudata(L, 1, ENCODER_T);
    qr_encoder_free(u->e);
    u->e = NULL;
    return 0;
}

static int enc_tostring(lua_State *L) {
    lencoder *u = luaL_checkudata(L, 1, ENCODER_T);
    if (!u->e) lua_pushliteral(L, "qr.SentenceEncoder (closed)");
    else {
        const qr_encoder_config *c = qr_encoder_cfg(u->e);
        lua_pushfstring(L, "qr.SentenceEncoder (%s: %d layers, dim %d)", qr_encoder_path(u->e), c->n_layer, c->dim);
    }
    return 1;
}

/* ---- the similarity host service ---- */

#define SERVED_ENC "qr.attack_encoder" /* registry: the served qr.SentenceEncoder */

/* ctx: the served userdata's block (its encoder pointer is NULL once closed) */
static int serve_similarity(void *ctx, const char *ref, const char *const *texts, int n, double *out) {
    lencoder *u = ctx;
    if (!u->e) return qr_err_set("host service similarity: the served sentence encoder was closed");
    int dim = qr_encoder_cfg(u->e)->dim;
    const char **all = malloc(((size_t)n + 1) * sizeof *all);
    float *v = malloc(((size_t)n + 1) * dim * sizeof *v);
    if (!all || !v) {
        free(all);
        free(v);
        return qr_err_set("host service similarity: out of memory for %d texts", n);
    }
    all[0] = ref;
    for (int i = 0; i < n; i++) all[i + 1] = texts[i];
    int rc = qr_encoder_embed(u->e, all, NULL, n + 1, v);
    for (int i = 0; rc == QR_OK && i < n; i++) out[i] = qr_encoder_cosine(v, v + (size_t)(i + 1) * dim, dim);
    free(all);
    free(v);
    return rc;
}

static int l_attack_encoder(lua_State *L) {
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, SERVED_ENC); /* 2: the previous one, returned */
    if (lua_isnil(L, 1)) {
        qr_plugins_set_sentence(NULL);
        lua_pushnil(L);
        lua_setfield(L, LUA_REGISTRYINDEX, SERVED_ENC);
        return 1;
    }
    lencoder *u = qr_lua_checkopen(L, 1, ENCODER_T);
    qr_sentence_service sv = {u, qr_encoder_path(u->e), serve_similarity};
    qr_plugins_set_sentence(&sv);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SERVED_ENC);
    return 1;
}

static int l_attack_similarity(lua_State *L) {
    const char *ref = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    const char **t = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *t, 0);
    double *out = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *out, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (!lua_isstring(L, -1)) return luaL_error(L, "attack_similarity: texts[%d] is not a string", i + 1);
        t[i] = lua_tostring(L, -1); /* the table keeps it alive */
        lua_pop(L, 1);
    }
    if (qr_plugins_similarity(ref, t, n, out) != QR_OK) return qr_lua_raise(L);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, out[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg enc_methods[] = {{"embed", enc_embed},       {"similarity", enc_similarity},
                                       {"similarities", enc_similarities}, {"tokenize", enc_tokenize},
                                       {"info", enc_info},         {"close", enc_gc},
                                       {NULL, NULL}};
static const luaL_Reg enc_meta[] = {{"__gc", enc_gc}, {"__tostring", enc_tostring}, {NULL, NULL}};

void qr_lua_encoder_open(lua_State *L, int mod) {
    qr_lua_newmeta(L, ENCODER_T, enc_methods, enc_meta);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_sentence_encoder);
    lua_setfield(L, mod, "sentence_encoder");
    lua_pushcfunction(L, l_attack_encoder);
    lua_setfield(L, mod, "attack_encoder");
    lua_pushcfunction(L, l_attack_similarity);
    lua_setfield(L, mod, "attack_similarity");
}
