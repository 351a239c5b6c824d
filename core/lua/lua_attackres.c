/* lua_attackres.c - the word-level attack resources of the `qr` module
 * (core/text/wordvec.h, docs/ATTACKS.md):
 *
 *   qr.wordvec([path [, {pos = path | false}]]) -> qr.Wordvec, or nil, message
 *     path: a .qrwv file (default: qr.attack_cache() .. "/glove50-cf-50k.qrwv");
 *     pos: its POS table (default: the file beside it, <path less .qrwv>.pos.tsv,
 *     when there is one; false: none)
 *   wv:neighbours(word [, {k = 50, min_cos = 0.5, pos = "any" | "same" | "noun_verb"}])
 *     -> {{word =, cos =, pos = "nv"}, ...}  by decreasing cosine ({} for a word it lacks)
 *   wv:pos(word) -> {noun = true, verb = true, ...} ({} when WordNet knows none),
 *     or nil, message (not in the embedding, or no POS table)
 *   wv:has(word) -> boolean;  wv:cos(a, b) -> number or nil;  #wv -> the word count
 *   wv:info() -> {path =, pos_path =, words =, dim =, bytes =, crc32 = "8 hex digits"}
 *   wv:close() (also __gc, __close)
 *   qr.stopwords() -> {"a", "about", ...} (TextFooler's 266, sorted)
 *   qr.is_stopword(word) -> boolean
 *   qr.attack_resources(wv | nil) -> wv | nil: serve wv to attack plugins (the
 *     ABI 1.3 host services candidates and is_stopword), or stop; returns
 *     what was served before. The served qr.Wordvec is kept alive; closing it
 *     stops the serving.
 *   qr.attack_cache() -> the folder scripts/setup_attacks.sh writes
 *     ($QRUN_CACHE/attacks, default ~/.cache/qrun/attacks)
 *
 * Lookups try the word as given, then ASCII-lower-cased. */
#include "qr_lua.h"

#include "qr.h"
#include "text/wordvec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORDVEC_MT "qr.Wordvec"
#define SERVED_KEY "qr.attack_resources" /* registry: the served qr.Wordvec userdata */

typedef struct {
    qr_wordvec *wv; /* first: NULL once closed (see lua_aux.h) */
} lua_wordvec;

static qr_wordvec *check_wv(lua_State *L, int arg) {
    lua_wordvec *u = qr_lua_checkopen(L, arg, WORDVEC_MT);
    return u->wv;
}

/* qr.attack_cache() */
static void push_cache(lua_State *L) {
    const char *c = getenv("QRUN_CACHE"), *home = getenv("HOME");
    if (c && *c)
        lua_pushfstring(L, "%s/attacks", c);
    else
        lua_pushfstring(L, "%s/.cache/qrun/attacks", home && *home ? home : ".");
}

static int l_attack_cache(lua_State *L) {
    push_cache(L);
    return 1;
}

/* qr.wordvec([path [, {pos = path | false}]]) */
static int l_wordvec(lua_State *L) {
    lua_settop(L, 2);
    if (lua_isnoneornil(L, 1)) {
        push_cache(L);
        lua_pushliteral(L, "/glove50-cf-50k.qrwv");
        lua_concat(L, 2);
        lua_replace(L, 1);
    }
    const char *path = luaL_checkstring(L, 1);
    const char *pos = NULL;
    int pos_given = 0;
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "pos") != 0)
                return luaL_error(L, "wordvec: unknown option '%s' (known: pos)", luaL_tolstring(L, -2, NULL));
            lua_pop(L, 1);
        }
        int t = lua_getfield(L, 2, "pos");
        if (t == LUA_TSTRING) {
            pos = lua_tostring(L, -1);
            pos_given = 1;
        } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            pos_given = 1; /* pos = false: none */
        } else if (t != LUA_TNIL) {
            return luaL_error(L, "wordvec: pos must be a path or false, got a %s", luaL_typename(L, -1));
        }
    }
    if (!pos_given) { /* the table beside the file, when there is one */
        size_t len = strlen(path);
        if (len > 5 && strcmp(path + len - 5, ".qrwv") == 0) {
            lua_pushlstring(L, path, len - 5);
            lua_pushliteral(L, ".pos.tsv");
            lua_concat(L, 2);
            if (access(lua_tostring(L, -1), F_OK) == 0) pos = lua_tostring(L, -1);
        }
    }
    lua_wordvec *u = qr_lua_newudata(L, sizeof *u, WORDVEC_MT, 0);
    u->wv = qr_wordvec_load(path);
    if (!u->wv) return qr_lua_fail(L);
    if (pos && qr_wordvec_load_pos(u->wv, pos) != QR_OK) {
        qr_wordvec_free(u->wv);
        u->wv = NULL;
        return qr_lua_fail(L);
    }
    return 1;
}

static const char *pos_letters(int m, char *buf) {
    char *p = buf;
    for (int b = 0; b < 4; b++)
        if (m & (1 << b)) *p++ = "nvar"[b];
    if (p == buf) *p++ = '-';
    *p = 0;
    return buf;
}

/* wv:neighbours(word [, opts]) */
static int wv_neighbours(lua_State *L) {
    qr_wordvec *wv = check_wv(L, 1);
    const char *word = luaL_checkstring(L, 2);
    int k = 50, pos_match = QR_POS_MATCH_ANY;
    double min_cos = 0.5;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(key, "k") && strcmp(key, "min_cos") && strcmp(key, "pos"))
                return luaL_error(L, "neighbours: unknown option '%s' (known: k, min_cos, pos)",
                                  luaL_tolstring(L, -2, NULL));
            lua_pop(L, 1);
        }
        k = qr_lua_fieldint(L, 3, "k", 50, "neighbours");
        min_cos = qr_lua_fieldnum(L, 3, "min_cos", 0.5, "neighbours");
        if (lua_getfield(L, 3, "pos") != LUA_TNIL) {
            static const char *const modes[] = {"any", "same", "noun_verb", NULL};
            pos_match = luaL_checkoption(L, -1, NULL, modes);
        }
        lua_pop(L, 1);
    }
    if (k < 0) return luaL_error(L, "neighbours: k = %d: expected >= 0", k);
    int cap = k < qr_wordvec_count(wv) ? k : qr_wordvec_count(wv);
    qr_wordvec_hit *hit = lua_newuserdatauv(L, (size_t)(cap > 0 ? cap : 1) * sizeof *hit, 0);
    int n = qr_wordvec_neighbours(wv, word, k, min_cos, pos_match, hit);
    if (n < 0) return qr_lua_raise(L);
    lua_createtable(L, n, 0);
    char letters[8];
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        qr_lua_setstr(L, "word", qr_wordvec_word(wv, hit[i].index));
        qr_lua_setnum(L, "cos", hit[i].cos);
        int m = qr_wordvec_pos(wv, hit[i].index);
        if (m >= 0) qr_lua_setstr(L, "pos", pos_letters(m, letters));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* wv:pos(word) */
static int wv_pos(lua_State *L) {
    qr_wordvec *wv = check_wv(L, 1);
    const char *word = luaL_checkstring(L, 2);
    int i = qr_wordvec_find(wv, word);
    if (i < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: no word '%s'", qr_wordvec_path(wv), word);
        return 2;
    }
    int m = qr_wordvec_pos(wv, i);
    if (m < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: no POS table loaded (qr.wordvec(path, {pos = <.pos.tsv>}); built by "
                           "scripts/setup_attacks.sh)",
                        qr_wordvec_path(wv));
        return 2;
    }
    static const char *const names[] = {"noun", "verb", "adj", "adv"};
    lua_createtable(L, 0, 4);
    for (int b = 0; b < 4; b++)
        if (m & (1 << b)) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, names[b]);
        }
    return 1;
}

static int wv_has(lua_State *L) {
    qr_wordvec *wv = check_wv(L, 1);
    lua_pushboolean(L, qr_wordvec_find(wv, luaL_checkstring(L, 2)) >= 0);
    return 1;
}

static int wv_cos(lua_State *L) {
    qr_wordvec *wv = check_wv(L, 1);
    int i = qr_wordvec_find(wv, luaL_checkstring(L, 2)), j = qr_wordvec_find(wv, luaL_checkstring(L, 3));
    if (i < 0 || j < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: no word '%s'", qr_wordvec_path(wv), lua_tostring(L, i < 0 ? 2 : 3));
        return 2;
    }
    lua_pushnumber(L, qr_wordvec_cos(wv, i, j));
    return 1;
}

static int wv_info(lua_State *L) {
    qr_wordvec *wv = check_wv(L, 1);
    lua_createtable(L, 0, 6);
    qr_lua_setstr(L, "path", qr_wordvec_path(wv));
    if (qr_wordvec_pos_path(wv)) qr_lua_setstr(L, "pos_path", qr_wordvec_pos_path(wv));
    qr_lua_setint(L, "words", qr_wordvec_count(wv));
    qr_lua_setint(L, "dim", qr_wordvec_dim(wv));
    qr_lua_setint(L, "bytes", (lua_Integer)qr_wordvec_bytes(wv));
    char crc[16];
    snprintf(crc, sizeof crc, "%08x", (unsigned)qr_wordvec_crc(wv));
    qr_lua_setstr(L, "crc32", crc);
    lua_pushboolean(L, qr_wordvec_served() == wv);
    lua_setfield(L, -2, "served");
    return 1;
}

static int wv_len(lua_State *L) {
    lua_pushinteger(L, qr_wordvec_count(check_wv(L, 1)));
    return 1;
}

static int wv_gc(lua_State *L) {
    lua_wordvec *u = luaL_checkudata(L, 1, WORDVEC_MT);
    qr_wordvec_free(u->wv); /* stops serving it, if it was served */
    u->wv = NULL;
    return 0;
}

static int wv_tostring(lua_State *L) {
    lua_wordvec *u = luaL_checkudata(L, 1, WORDVEC_MT);
    if (u->wv)
        lua_pushfstring(L, WORDVEC_MT ": %s (%d words x %d)", qr_wordvec_path(u->wv), qr_wordvec_count(u->wv),
                        qr_wordvec_dim(u->wv));
    else
        lua_pushliteral(L, WORDVEC_MT " (closed)");
    return 1;
}

/* ---- stop words, serving ---- */

static int l_stopwords(lua_State *L) {
    int n = qr_wordvec_stopword_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, qr_wordvec_stopword(i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_is_stopword(lua_State *L) {
    lua_pushboolean(L, qr_wordvec_is_stopword(luaL_checkstring(L, 1)));
    return 1;
}

/* qr.attack_resources(wv | nil) -> what was served before (a closed one: nil) */
static int l_attack_resources(lua_State *L) {
    lua_settop(L, 1);
    qr_wordvec *wv = lua_isnil(L, 1) ? NULL : check_wv(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, SERVED_KEY); /* 2: the previous */
    lua_wordvec *prev = lua_isnil(L, 2) ? NULL : luaL_testudata(L, 2, WORDVEC_MT);
    if (!prev || !prev->wv || qr_wordvec_served() != prev->wv) {
        lua_pushnil(L);
        lua_replace(L, 2);
    }
    qr_wordvec_serve(wv);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, SERVED_KEY); /* keeps it alive while served */
    return 1;
}

static const luaL_Reg wordvec_methods[] = {{"neighbours", wv_neighbours}, {"pos", wv_pos}, {"has", wv_has},
                                           {"cos", wv_cos},               {"info", wv_info}, {"close", wv_gc},
                                           {NULL, NULL}};
static const luaL_Reg wordvec_meta[] = {{"__gc", wv_gc}, {"__tostring", wv_tostring}, {"__len", wv_len}, {NULL, NULL}};
static const luaL_Reg attackres_funcs[] = {{"wordvec", l_wordvec},
                                           {"stopwords", l_stopwords},
                                           {"is_stopword", l_is_stopword},
                                           {"attack_resources", l_attack_resources},
                                           {"attack_cache", l_attack_cache},
                                           {NULL, NULL}};

void qr_lua_attackres_open(lua_State *L, int mod) {
    qr_lua_newmeta(L, WORDVEC_MT, wordvec_methods, wordvec_meta);
    lua_pop(L, 1);
    lua_pushvalue(L, mod);
    luaL_setfuncs(L, attackres_funcs, 0);
    lua_pop(L, 1);
}
