/* lua_text.c - Lua bindings for text: qr.tokenizer (byte-level BPE, userdata
 * "qr.Tokenizer") and qr.squad (load, score, bootstrap confidence interval).
 *
 * A "qr.Tokenizer" userdata is {qr_tokenizer *t; int owned}: owned ones are
 * freed by __gc/__close; borrowed ones (a model's tokenizer) keep their
 * parent alive through user value 1 and never free t. */
#include "qr_lua.h"

#include "qr.h"
#include "text/squad.h"
#include "text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define TOKENIZER_MT "qr.Tokenizer"

typedef struct {
    qr_tokenizer *t; /* first: NULL once closed (see lua_aux.h) */
    int owned;
} lua_tokenizer;

static qr_tokenizer *check_tok(lua_State *L) {
    lua_tokenizer *u = qr_lua_checkopen(L, 1, TOKENIZER_MT);
    return u->t;
}

qr_tokenizer *qr_lua_checktokenizer(lua_State *L, int arg) {
    lua_tokenizer *u = qr_lua_checkopen(L, arg, TOKENIZER_MT);
    return u->t;
}

/* tok:encode(str) -> {id, ...} */
static int tok_encode(lua_State *L) {
    qr_tokenizer *t = check_tok(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int32_t *ids = NULL;
    int n = 0;
    if (qr_tokenizer_encode(t, s, len, &ids, &n) != QR_OK) {
        free(ids);
        return qr_lua_raise(L);
    }
    lua_createtable(L, n, 0); /* may raise on OOM; ids is then lost, rare */
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    free(ids);
    return 1;
}

/* tok:decode({id, ...}) -> string */
static int tok_decode(lua_State *L) {
    qr_tokenizer *t = check_tok(L);
    int n;
    int32_t *ids = qr_lua_toint32array(L, 2, &n);
    size_t len = 0;
    char *s = qr_tokenizer_decode(t, ids, n, &len);
    free(ids);
    if (!s) return qr_lua_raise(L);
    lua_pushlstring(L, s, len);
    free(s);
    return 1;
}

static int tok_n_vocab(lua_State *L) {
    lua_pushinteger(L, qr_tokenizer_n_vocab(check_tok(L)));
    return 1;
}

/* tok:token_id(str) -> id, or nil if str is not a token */
static int tok_token_id(lua_State *L) {
    qr_tokenizer *t = check_tok(L);
    int32_t id = qr_tokenizer_token_id(t, luaL_checkstring(L, 2));
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

/* tok:token_str(id) -> string (the raw, byte-mapped token text), or nil */
static int tok_token_str(lua_State *L) {
    qr_tokenizer *t = check_tok(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *s = NULL;
    if (id >= 0 && id < qr_tokenizer_n_vocab(t)) s = qr_tokenizer_token_str(t, (int32_t)id);
    if (s) lua_pushstring(L, s);
    else lua_pushnil(L);
    return 1;
}

static int push_id_or_nil(lua_State *L, int32_t id) {
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int tok_bos(lua_State *L) { return push_id_or_nil(L, qr_tokenizer_bos(check_tok(L))); }
static int tok_eos(lua_State *L) { return push_id_or_nil(L, qr_tokenizer_eos(check_tok(L))); }

/* __gc and __close: idempotent. */
static int tok_gc(lua_State *L) {
    lua_tokenizer *u = luaL_checkudata(L, 1, TOKENIZER_MT);
    if (u->t && u->owned) qr_tokenizer_free(u->t);
    u->t = NULL;
    return 0;
}

static int tok_tostring(lua_State *L) {
    lua_tokenizer *u = luaL_checkudata(L, 1, TOKENIZER_MT);
    if (!u->t) lua_pushliteral(L, "qr.Tokenizer (closed)");
    else lua_pushfstring(L, "qr.Tokenizer (%d tokens%s)", qr_tokenizer_n_vocab(u->t),
                         u->owned ? "" : ", borrowed");
    return 1;
}

static const luaL_Reg tok_methods[] = {
    {"encode", tok_encode},       {"decode", tok_decode},       {"n_vocab", tok_n_vocab},
    {"token_id", tok_token_id},   {"token_str", tok_token_str}, {"bos", tok_bos},
    {"eos", tok_eos},             {"close", tok_gc},            {NULL, NULL}};

static const luaL_Reg tok_meta[] = {
    {"__gc", tok_gc}, {"__tostring", tok_tostring}, {NULL, NULL}};

static void tok_meta_push(lua_State *L) {
    qr_lua_newmeta(L, TOKENIZER_MT, tok_methods, tok_meta);
}

void qr_lua_push_tokenizer(lua_State *L, qr_tokenizer *t, int owned, int parent_idx) {
    if (parent_idx) parent_idx = lua_absindex(L, parent_idx);
    tok_meta_push(L);
    lua_pop(L, 1);
    lua_tokenizer *u = qr_lua_newudata(L, sizeof *u, TOKENIZER_MT, 1);
    u->t = t;
    u->owned = owned;
    if (parent_idx) {
        lua_pushvalue(L, parent_idx);
        lua_setiuservalue(L, -2, 1);
    }
}

/* qr.tokenizer{vocab=PATH, merges=PATH} (or qr.tokenizer(vocab, merges))
 * -> tokenizer, or nil, message when the files are missing or malformed. */
static int l_tokenizer(lua_State *L) {
    const char *vocab, *merges;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "vocab");
        lua_getfield(L, 1, "merges");
        vocab = lua_tostring(L, -2);
        merges = lua_tostring(L, -1);
        if (!vocab) return luaL_argerror(L, 1, "expected a 'vocab' field (path to vocab/encoder.json)");
        if (!merges) return luaL_argerror(L, 1, "expected a 'merges' field (path to merges.txt/vocab.bpe)");
    } else {
        vocab = luaL_checkstring(L, 1);
        merges = luaL_checkstring(L, 2);
    }
    /* Userdata first, then the resource: an error leaves nothing leaked. */
    tok_meta_push(L);
    lua_pop(L, 1);
    lua_tokenizer *u = qr_lua_newudata(L, sizeof *u, TOKENIZER_MT, 1);
    u->t = qr_tokenizer_from_files(vocab, merges);
    if (!u->t) return qr_lua_fail(L);
    u->owned = 1;
    return 1;
}

/* ---- SQuAD ---- */

/* Push example e as {id=, title=, context=, question=, answers={..},
 * answer_starts={..}}. */
static void push_example(lua_State *L, const qr_squad_example *e) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, e->id ? e->id : "");
    lua_setfield(L, -2, "id");
    lua_pushstring(L, e->title ? e->title : "");
    lua_setfield(L, -2, "title");
    lua_pushstring(L, e->context ? e->context : "");
    lua_setfield(L, -2, "context");
    lua_pushstring(L, e->question ? e->question : "");
    lua_setfield(L, -2, "question");
    lua_createtable(L, e->n_answers, 0);
    lua_createtable(L, e->n_answers, 0);
    for (int a = 0; a < e->n_answers; a++) {
        lua_pushstring(L, e->answers[a].text ? e->answers[a].text : "");
        lua_rawseti(L, -3, a + 1);
        lua_pushinteger(L, e->answers[a].answer_start);
        lua_rawseti(L, -2, a + 1);
    }
    lua_setfield(L, -3, "answer_starts");
    lua_setfield(L, -2, "answers");
}

/* qr.squad.load(PATH) -> {example, ...}, {skipped=n, warnings={msg, ...}};
 * raises with the loader's message when the file is unreadable or malformed.
 * The C dataset is only held while copying: a userdata with __gc anchors it
 * so a memory error mid-copy does not leak it. */
static int squad_anchor_gc(lua_State *L) {
    qr_squad **p = lua_touserdata(L, 1);
    qr_squad_free(*p);
    *p = NULL;
    return 0;
}

static int l_squad_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    qr_squad **anchor = lua_newuserdatauv(L, sizeof *anchor, 0);
    *anchor = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, squad_anchor_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    *anchor = qr_squad_load(path);
    if (!*anchor) return qr_lua_raise(L);
    int n = qr_squad_count(*anchor);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_example(L, qr_squad_at(*anchor, i));
        lua_rawseti(L, -2, i + 1);
    }
    /* info: what the loader skipped or repaired */
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, qr_squad_n_skipped(*anchor));
    lua_setfield(L, -2, "skipped");
    int nw = qr_squad_n_warnings(*anchor);
    lua_createtable(L, nw, 0);
    for (int i = 0; i < nw; i++) {
        lua_pushstring(L, qr_squad_warning(*anchor, i));
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "warnings");
    qr_squad_free(*anchor);
    *anchor = NULL;
    return 2;
}

/* qr.squad.score(prediction, answers) -> em, f1 (best over the answers;
 * answers is a string or an array of strings). */
static int l_squad_score(lua_State *L) {
    const char *pred = luaL_checkstring(L, 1);
    int n;
    if (lua_type(L, 2) == LUA_TSTRING) {
        n = 1;
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_Integer len = luaL_len(L, 2);
        if (len < 1) return luaL_argerror(L, 2, "expected at least one reference answer");
        if (len > 100000) return luaL_argerror(L, 2, "too many answers");
        n = (int)len;
    }
    /* Strings are anchored by this table while the C call runs. */
    const char **ans = lua_newuserdatauv(L, sizeof *ans * (size_t)n, 0);
    if (n == 1 && lua_type(L, 2) == LUA_TSTRING) {
        ans[0] = lua_tostring(L, 2);
    } else {
        for (int i = 0; i < n; i++) {
            if (lua_geti(L, 2, i + 1) != LUA_TSTRING) {
                const char *msg = lua_pushfstring(L, "answer [%d]: expected string, got %s",
                                                  i + 1, luaL_typename(L, -1));
                return luaL_argerror(L, 2, msg);
            }
            ans[i] = lua_tostring(L, -1); /* anchored: answers table holds it */
            lua_pop(L, 1);
        }
    }
    double em = 0, f1 = 0;
    qr_squad_score(pred, ans, n, &em, &f1);
    lua_pushnumber(L, em);
    lua_pushnumber(L, f1);
    return 2;
}

/* qr.squad.ci(values [, {iters=1000, seed=1, level=0.95}]) -> lo, hi:
 * percentile bootstrap interval of the mean. */
static int l_squad_ci(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int iters = 1000;
    lua_Integer seed = 1;
    double level = 0.95;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "iters") != LUA_TNIL) {
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok || v < 1 || v > 100000000) return luaL_argerror(L, 2, "iters: expected an integer >= 1");
            iters = (int)v;
        }
        if (lua_getfield(L, 2, "seed") != LUA_TNIL) {
            int ok;
            seed = lua_tointegerx(L, -1, &ok);
            if (!ok) return luaL_argerror(L, 2, "seed: expected an integer");
        }
        if (lua_getfield(L, 2, "level") != LUA_TNIL) {
            int ok;
            level = lua_tonumberx(L, -1, &ok);
            if (!ok || !(level > 0 && level < 1)) return luaL_argerror(L, 2, "level: expected a number in (0, 1)");
        }
        lua_pop(L, 3);
    }
    lua_Integer len = luaL_len(L, 1);
    if (len < 1) return luaL_argerror(L, 1, "expected at least one value");
    if (len > 100000000) return luaL_argerror(L, 1, "too many values");
    int n = (int)len;
    double *v = lua_newuserdatauv(L, sizeof *v * (size_t)n, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        int ok;
        v[i] = lua_tonumberx(L, -1, &ok);
        if (!ok) {
            const char *msg = lua_pushfstring(L, "element [%d]: expected number, got %s", i + 1,
                                              luaL_typename(L, -2));
            return luaL_argerror(L, 1, msg);
        }
        lua_pop(L, 1);
    }
    double lo = 0, hi = 0;
    qr_bootstrap_ci(v, n, iters, (uint64_t)seed, level, &lo, &hi);
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    return 2;
}

static const luaL_Reg squad_funcs[] = {
    {"load", l_squad_load}, {"score", l_squad_score}, {"ci", l_squad_ci}, {NULL, NULL}};

void qr_lua_text_open(lua_State *L, int mod) {
    tok_meta_push(L);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_tokenizer);
    lua_setfield(L, mod, "tokenizer");
    luaL_newlib(L, squad_funcs);
    lua_setfield(L, mod, "squad");
}
