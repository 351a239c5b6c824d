/* lua_init.c - luaopen_qr: the `qr` module built in one place (after Lua's
 * linit.c). Each binding file adds its part to the module table; the order
 * below is the order they are opened in (qr_lua.h). */
#include "qr_lua.h"

#include <string.h>

static void (*const qr_bindings[])(lua_State *L, int mod) = {
    qr_lua_util_open,   /* qr.opts, now, getenv, isatty, sha256 */
    qr_lua_json_open,   /* qr.json */
    qr_lua_text_open,   /* qr.tokenizer, qr.squad */
    qr_lua_model_open,  /* qr.model, model_new, default_model, qr.Model */
    qr_lua_train_open,  /* qr.train */
    qr_lua_search_open, /* qr.ilp, model:proxy, model:proxy_ref, qr.ProxyRef (after the model's) */
    qr_lua_plugin_open, /* qr.plugins, load_plugin, quantizer, attack */
    qr_lua_attackres_open, /* qr.wordvec, qr.Wordvec, stopwords, is_stopword, attack_resources, attack_cache */
    qr_lua_encoder_open, /* qr.sentence_encoder, qr.SentenceEncoder */
};

/* Add the C functions of the table at t to the set at set, and those of its
 * subtables (qr.json, a metatable's __index) down to depth levels. */
static void collect(lua_State *L, int t, int set, int depth) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_iscfunction(L, -1)) {
            lua_pushvalue(L, -1);
            lua_pushboolean(L, 1);
            lua_rawset(L, set);
        } else if (depth > 0 && lua_istable(L, -1)) {
            collect(L, lua_gettop(L), set, depth - 1);
        }
        lua_pop(L, 1);
    }
}

/* registry[QR_LUA_FUNCTIONS] = the C functions of the module at mod and of
 * the "qr.*" metatables in the registry. */
static void record_functions(lua_State *L, int mod) {
    lua_newtable(L);
    int set = lua_gettop(L);
    collect(L, mod, set, 1);
    lua_pushnil(L);
    while (lua_next(L, LUA_REGISTRYINDEX)) {
        if (lua_type(L, -2) == LUA_TSTRING && strncmp(lua_tostring(L, -2), "qr.", 3) == 0 &&
            lua_istable(L, -1))
            collect(L, lua_gettop(L), set, 1);
        lua_pop(L, 1);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, QR_LUA_FUNCTIONS);
}

int luaopen_qr(lua_State *L) {
    lua_newtable(L);
    int mod = lua_gettop(L);
    lua_pushliteral(L, QR_VERSION);
    lua_setfield(L, mod, "version");
#ifdef QR_SOURCE_DIR
    /* where the checkout is: recipes find datasets/ and tests/ from here */
    lua_pushliteral(L, QR_SOURCE_DIR);
    lua_setfield(L, mod, "source_dir");
#endif
#ifdef QR_BUILD_DIR
    lua_pushliteral(L, QR_BUILD_DIR);
    lua_setfield(L, mod, "build_dir");
#endif
    for (size_t i = 0; i < sizeof qr_bindings / sizeof qr_bindings[0]; i++) {
        qr_bindings[i](L, mod);
        lua_settop(L, mod);
    }
    record_functions(L, mod);
    return 1;
}
