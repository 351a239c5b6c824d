/* lua_aux.c - the helpers of the Lua wing (lua_aux.h): errors, arguments,
 * option tables, result fields, userdata and their metatables. */
#include "lua_aux.h"

#include "qr.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

int qr_lua_fail(lua_State *L) {
    lua_pushnil(L);
    lua_pushstring(L, qr_err_msg());
    return 2;
}

int qr_lua_raise(lua_State *L) { return luaL_error(L, "%s", qr_err_msg()); }

int qr_lua_checkint(lua_State *L, int arg) {
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < INT_MIN || v > INT_MAX) return luaL_argerror(L, arg, "integer out of int range");
    return (int)v;
}

int qr_lua_optint(lua_State *L, int arg, int def) {
    return lua_isnoneornil(L, arg) ? def : qr_lua_checkint(L, arg);
}

int32_t *qr_lua_toint32array(lua_State *L, int idx, int *n) {
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > INT_MAX) luaL_argerror(L, idx, "array too long");
    /* Check every element before allocating so a raised error leaks nothing. */
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < INT32_MIN || v > INT32_MAX) {
            const char *got = lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                             : luaL_typename(L, -1);
            const char *msg = lua_pushfstring(L, "element [%d]: expected int32, got %s",
                                              (int)i, got);
            luaL_argerror(L, idx, msg);
        }
        lua_pop(L, 1);
    }
    int32_t *a = qr_xmalloc(len > 0 ? (size_t)len * sizeof *a : 1);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        a[i - 1] = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    *n = (int)len;
    return a;
}

void qr_lua_pushint32array(lua_State *L, const int32_t *a, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, a[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* ---- userdata ---- */

/* Default __tostring: every qr userdata starts with its handle pointer. */
static int udata_tostring(lua_State *L) {
    void **h = lua_touserdata(L, 1);
    luaL_getmetafield(L, 1, "__name");
    const char *name = lua_tostring(L, -1);
    if (!h || !*h) lua_pushfstring(L, "%s (closed)", name ? name : "qr object");
    else lua_pushfstring(L, "%s: %p", name ? name : "qr object", *h);
    return 1;
}

void qr_lua_newmeta(lua_State *L, const char *tname, const luaL_Reg *methods,
                    const luaL_Reg *metamethods) {
    if (!luaL_newmetatable(L, tname)) return; /* exists: leave it on the stack */
    if (metamethods) luaL_setfuncs(L, metamethods, 0);
    if (lua_getfield(L, -1, "__close") == LUA_TNIL &&
        lua_getfield(L, -2, "__gc") != LUA_TNIL) {
        lua_setfield(L, -3, "__close");
        lua_pop(L, 1);
    } else {
        lua_pop(L, lua_isnil(L, -1) ? 2 : 1);
    }
    if (lua_getfield(L, -1, "__tostring") == LUA_TNIL) {
        lua_pushcfunction(L, udata_tostring);
        lua_setfield(L, -3, "__tostring");
    }
    lua_pop(L, 1);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
}

void *qr_lua_newudata(lua_State *L, size_t size, const char *tname, int nuv) {
    void *p = lua_newuserdatauv(L, size, nuv);
    memset(p, 0, size);
    luaL_setmetatable(L, tname);
    return p;
}

void *qr_lua_checkopen(lua_State *L, int arg, const char *tname) {
    void **h = luaL_checkudata(L, arg, tname);
    if (!*h) luaL_error(L, "attempt to use a closed %s", tname);
    return h;
}


/* ---- option tables ---- */

int qr_lua_fieldint(lua_State *L, int t, const char *k, int def, const char *what) {
    lua_getfield(L, t, k);
    int v = def;
    if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint || x < -2147483647 || x > 2147483647)
            luaL_error(L, "%s: %s must be an integer, got %s", what, k, luaL_tolstring(L, -1, NULL));
        v = (int)x;
    }
    lua_pop(L, 1);
    return v;
}

double qr_lua_fieldnum(lua_State *L, int t, const char *k, double def, const char *what) {
    lua_getfield(L, t, k);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "%s: %s must be a number, got a %s", what, k, luaL_typename(L, -1));
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **qr_lua_tokv(lua_State *L, int arg, int *n_kv) {
    *n_kv = 0;
    if (lua_isnoneornil(L, arg)) return NULL;
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option keys must be strings, got %s", luaL_typename(L, -2)));
        n++;
        lua_pop(L, 1);
    }
    const char **kv = lua_newuserdatauv(L, (size_t)(2 * n + 1) * sizeof *kv, 1);
    lua_createtable(L, 2 * n, 0); /* anchors the strings */
    int anchor = lua_gettop(L);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        const char *key = lua_tostring(L, -2);
        switch (lua_type(L, -1)) {
        case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false"); break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1))
                lua_pushfstring(L, "%I", lua_tointeger(L, -1));
            else {
                char buf[64];
                snprintf(buf, sizeof buf, "%.17g", (double)lua_tonumber(L, -1));
                lua_pushstring(L, buf);
            }
            break;
        case LUA_TSTRING: lua_pushvalue(L, -1); break;
        default:
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option '%s': expected a string, number or boolean, got %s", key,
                                          luaL_typename(L, -1)));
            return NULL;
        }
        kv[2 * i] = key; /* the key is anchored by the options table itself */
        kv[2 * i + 1] = lua_tostring(L, -1);
        lua_rawseti(L, anchor, i + 1);
        lua_pop(L, 1);
        i++;
    }
    /* sort the pairs by key */
    const char **pairs = kv;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && cmp_key(&pairs[2 * b], &pairs[2 * (b - 1)]) < 0; b--) {
            const char *k = pairs[2 * b], *v = pairs[2 * b + 1];
            pairs[2 * b] = pairs[2 * (b - 1)];
            pairs[2 * b + 1] = pairs[2 * (b - 1) + 1];
            pairs[2 * (b - 1)] = k;
            pairs[2 * (b - 1) + 1] = v;
        }
    lua_setiuservalue(L, -2, 1); /* the anchor table lives with kv */
    *n_kv = n;
    return kv;
}

int qr_lua_fieldkv(lua_State *L, int t, const char *field, int keep, const char ***out,
                   const char *what) {
    *out = NULL;
    lua_getfield(L, t, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) luaL_error(L, "%s: %s must be a table of options", what, field);
    int tab = lua_gettop(L), n = 0;
    lua_pushnil(L);
    while (lua_next(L, tab)) {
        n++;
        lua_pop(L, 1);
    }
    /* a userdata (collected with the call's stack), so an error cannot leak it */
    const char **kv = lua_newuserdatauv(L, ((size_t)2 * n + 1) * sizeof *kv, 0);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, tab)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: %s: option keys must be strings", what, field);
        lua_pushvalue(L, -2);
        kv[2 * i] = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        if (lua_isboolean(L, -1))
            lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
        else
            luaL_tolstring(L, -1, NULL);
        kv[2 * i + 1] = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        lua_pop(L, 1);
        i++;
    }
    lua_pop(L, 1);
    *out = kv;
    return n;
}

/* ---- results ---- */

void qr_lua_setint(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

void qr_lua_setnum(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

void qr_lua_setstr(lua_State *L, const char *k, const char *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}
