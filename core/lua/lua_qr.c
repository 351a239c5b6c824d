/* lua_qr.c - the `qr` Lua module: shared binding helpers, qr.opts (command
 * line options against a spec), qr.json (cJSON), qr.now/getenv/isatty and
 * qr.sha256. Tokenizer/SQuAD bindings are in lua_text.c, models in
 * lua_model.c. */
#define _POSIX_C_SOURCE 200809L
#include "lua_qr.h"

#include "qr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* shared helpers                                                      */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* qr.opts                                                             */
/* ------------------------------------------------------------------ */

/* Option types, taken from the spec's default (or its `type` field). */
enum { OPT_STRING, OPT_NUMBER, OPT_INTEGER, OPT_BOOLEAN };
static const char *const opt_type_names[] = {"string", "number", "integer", "boolean", NULL};

/* Type of spec entry at index e (a table {name, default, help, type=?}). */
static int opt_type(lua_State *L, int e, const char *name) {
    int t;
    if (lua_getfield(L, e, "type") != LUA_TNIL) {
        const char *s = lua_tostring(L, -1);
        for (t = 0; opt_type_names[t]; t++)
            if (s && strcmp(s, opt_type_names[t]) == 0) break;
        if (!opt_type_names[t])
            luaL_error(L, "qr.opts: spec '%s': type must be string, number, integer or boolean",
                       name);
        lua_pop(L, 1);
        return t;
    }
    lua_pop(L, 1);
    lua_geti(L, e, 2);
    switch (lua_type(L, -1)) {
    case LUA_TNIL: t = OPT_STRING; break;
    case LUA_TSTRING: t = OPT_STRING; break;
    case LUA_TBOOLEAN: t = OPT_BOOLEAN; break;
    case LUA_TNUMBER: t = lua_isinteger(L, -1) ? OPT_INTEGER : OPT_NUMBER; break;
    default:
        return luaL_error(L, "qr.opts: spec '%s': default must be a string, number, boolean or nil",
                          name);
    }
    lua_pop(L, 1);
    return t;
}

/* Set out[name] = value at top (popped), and out[name with '-' -> '_']. */
static void opt_set(lua_State *L, int out, const char *name) {
    lua_pushvalue(L, -1);
    lua_setfield(L, out, name);
    if (strchr(name, '-')) {
        luaL_gsub(L, name, "-", "_");
        lua_pushvalue(L, -2);
        lua_setfield(L, out, lua_tostring(L, -2));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void opts_usage(lua_State *L, int spec, int argv) {
    const char *prog = "recipe";
    if (argv && lua_geti(L, argv, 0) == LUA_TSTRING) prog = lua_tostring(L, -1);
    printf("usage: qrun %s [options]\n", prog);
    if (lua_getfield(L, spec, "usage") == LUA_TSTRING) printf("%s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    printf("options:\n");
    lua_Integer n = luaL_len(L, spec);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, spec, i);
        int e = lua_gettop(L);
        lua_geti(L, e, 1);
        const char *name = lua_tostring(L, -1);
        int t = opt_type(L, e, name);
        lua_geti(L, e, 2);
        const char *def = lua_isnil(L, -1) ? "(none)" : luaL_tolstring(L, -1, NULL);
        lua_geti(L, e, 3);
        const char *help = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
        char left[256];
        if (t == OPT_BOOLEAN) snprintf(left, sizeof left, "--[no-]%s", name);
        else snprintf(left, sizeof left, "--%s=<%s>", name, opt_type_names[t]);
        printf("  %-28s %s (default: %s)\n", left, help, def);
        lua_settop(L, e - 1);
    }
    printf("  %-28s %s\n", "--help", "show this help and exit");
    fflush(stdout);
}

/* Parse a value for option `name` of type t; pushes it or raises. */
static void opt_parse_value(lua_State *L, const char *name, int t, const char *v) {
    switch (t) {
    case OPT_STRING: lua_pushstring(L, v); return;
    case OPT_BOOLEAN:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
            lua_pushboolean(L, 1);
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
            lua_pushboolean(L, 0);
        else
            luaL_error(L, "option --%s: expected boolean (true/false), got '%s'", name, v);
        return;
    case OPT_NUMBER:
    case OPT_INTEGER:
        if (*v && lua_stringtonumber(L, v)) {
            if (t == OPT_NUMBER) {
                lua_pushnumber(L, lua_tonumber(L, -1));
                lua_remove(L, -2);
                return;
            }
            if (lua_isinteger(L, -1)) return;
            lua_pop(L, 1);
        }
        luaL_error(L, "option --%s: expected %s, got '%s'", name, opt_type_names[t], v);
        return;
    }
}

/* qr.opts(spec, argv) -> table. argv defaults to the global `arg`.
 * Positional arguments (and everything after "--") go to out[1..n]. */
static int l_opts(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        if (lua_getglobal(L, "arg") != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
        }
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    const int spec = 1, argv = 2;
    lua_newtable(L);
    const int out = 3;
    lua_newtable(L); /* name -> spec entry */
    const int byname = 4;

    /* Defaults, and check the spec. */
    lua_Integer nspec = luaL_len(L, spec);
    for (lua_Integer i = 1; i <= nspec; i++) {
        if (lua_geti(L, spec, i) != LUA_TTABLE)
            return luaL_error(L, "qr.opts: spec entry %d: expected a table {name, default, help}",
                              (int)i);
        int e = lua_gettop(L);
        if (lua_geti(L, e, 1) != LUA_TSTRING)
            return luaL_error(L, "qr.opts: spec entry %d: expected the option name as [1]", (int)i);
        const char *name = lua_tostring(L, -1);
        (void)opt_type(L, e, name);
        lua_pushvalue(L, e);
        lua_setfield(L, byname, name);
        lua_geti(L, e, 2);
        opt_set(L, out, name);
        lua_settop(L, e - 1);
    }

    int npos = 0, only_pos = 0;
    lua_Integer argc = luaL_len(L, argv);
    for (lua_Integer i = 1; i <= argc; i++) {
        lua_geti(L, argv, i);
        const char *a = lua_tostring(L, -1);
        if (!a) return luaL_error(L, "qr.opts: argument %d is not a string", (int)i);
        int top = lua_gettop(L);
        if (only_pos || a[0] != '-' || a[1] != '-') {
            if (!only_pos && a[0] == '-' && a[1])
                return luaL_error(L, "unknown option '%s' (options are --name=value; try --help)", a);
            lua_rawseti(L, out, ++npos);
            continue;
        }
        if (a[2] == 0) { /* "--" */
            only_pos = 1;
            lua_pop(L, 1);
            continue;
        }
        if (!strcmp(a, "--help")) {
            opts_usage(L, spec, argv);
            /* --help ends the recipe as a recipe would: os.exit(0, true),
             * which closes the Lua state (freeing models) before exiting */
            lua_getglobal(L, "os");
            if (lua_istable(L, -1) && lua_getfield(L, -1, "exit") == LUA_TFUNCTION) {
                lua_pushinteger(L, 0);
                lua_pushboolean(L, 1);
                lua_call(L, 2, 0);
            }
            return luaL_error(L, "--help: the os library is not available to exit");
        }
        const char *body = a + 2, *eq = strchr(body, '=');
        lua_pushlstring(L, body, eq ? (size_t)(eq - body) : strlen(body));
        const char *name = lua_tostring(L, -1);
        int negated = 0;
        if (lua_getfield(L, byname, name) == LUA_TNIL) {
            /* --x_y for --x-y; --no-flag for a boolean flag */
            lua_pop(L, 1);
            int found = 0;
            if (strchr(name, '_')) {
                luaL_gsub(L, name, "_", "-");
                if (lua_getfield(L, byname, lua_tostring(L, -1)) != LUA_TNIL) {
                    /* stack: name, dashed name, entry -> dashed name, entry */
                    lua_pushvalue(L, top + 2);
                    lua_replace(L, top + 1);
                    lua_replace(L, top + 2);
                    name = lua_tostring(L, top + 1);
                    found = 1;
                } else {
                    lua_pop(L, 2);
                }
            }
            if (!found && !eq && !strncmp(name, "no-", 3)) {
                if (lua_getfield(L, byname, name + 3) == LUA_TTABLE &&
                    opt_type(L, lua_gettop(L), name) == OPT_BOOLEAN) {
                    lua_pushstring(L, name + 3);
                    lua_replace(L, top + 1);
                    name = lua_tostring(L, top + 1);
                    negated = found = 1;
                } else {
                    lua_pop(L, 1);
                }
            }
            if (!found)
                return luaL_error(L, "unknown option '--%s' (try --help)", name);
        }
        int e = lua_gettop(L);
        int t = opt_type(L, e, name);
        if (negated) {
            lua_pushboolean(L, 0);
        } else if (!eq) {
            if (t != OPT_BOOLEAN)
                return luaL_error(L, "option --%s: expected --%s=<%s>", name, name,
                                  opt_type_names[t]);
            lua_pushboolean(L, 1);
        } else {
            opt_parse_value(L, name, t, eq + 1);
        }
        opt_set(L, out, name);
        lua_settop(L, top - 1);
    }
    lua_settop(L, out);
    return 1;
}

/* ------------------------------------------------------------------ */
/* qr.json                                                             */
/* ------------------------------------------------------------------ */

#define JSON_MAX_DEPTH 200

/* qr.json.null: a sentinel for JSON null (decode gives it, encode takes it). */
#define JSON_NULL ((void *)0)

static int is_json_null(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == JSON_NULL;
}

/* A table is an array when its keys are exactly 1..n (n >= 1); the empty
 * table encodes as []. Returns n, or -1 for an object. */
static lua_Integer json_array_len(lua_State *L, int t) {
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return -1;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1) {
            lua_pop(L, 1);
            return -1;
        }
        if (k > max) max = k;
        count++;
    }
    return count == max ? max : -1;
}

static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *json_fail(lua_State *L, const char *path, const char *what) {
    lua_pushfstring(L, "json.encode: %s at %s", what, *path ? path : "(top)");
    return NULL;
}

/* Convert the Lua value at idx to a new cJSON item (caller owns it). path
 * (a Lua string at stack index pathidx, e.g. ".answers[2]") says where we
 * are, for messages. On failure returns NULL with one message pushed; on
 * success the stack is as it was. */
static cJSON *enc(lua_State *L, int idx, int depth, int pathidx) {
    const char *path = lua_tostring(L, pathidx);
    luaL_checkstack(L, 8, "json.encode");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len) return json_fail(L, path, "string with an embedded NUL");
        return cJSON_CreateString(s);
    }
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) return json_fail(L, path, "NaN or infinity (not valid JSON)");
        return cJSON_CreateNumber(d);
    }
    case LUA_TLIGHTUSERDATA:
        if (is_json_null(L, idx)) return cJSON_CreateNull();
        return json_fail(L, path, "light userdata");
    case LUA_TTABLE: break;
    default: {
        const char *w = lua_pushfstring(L, "%s value (not encodable)", luaL_typename(L, idx));
        cJSON *r = json_fail(L, path, w);
        lua_remove(L, -2);
        return r;
    }
    }
    if (depth > JSON_MAX_DEPTH) return json_fail(L, path, "nesting too deep (a cycle?)");
    lua_Integer n = json_array_len(L, idx);
    if (n >= 0) {
        cJSON *arr = cJSON_CreateArray();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, idx, i);
            lua_pushfstring(L, "%s[%d]", path, (int)i);
            cJSON *c = enc(L, lua_gettop(L) - 1, depth + 1, lua_gettop(L));
            if (!c) {
                cJSON_Delete(arr);
                lua_replace(L, -3); /* keep the message, drop value+path */
                lua_pop(L, 1);
                return NULL;
            }
            lua_pop(L, 2);
            cJSON_AddItemToArray(arr, c);
        }
        return arr;
    }
    /* Object: collect keys (strings as they are, numbers formatted), sort
     * them so the output is deterministic. */
    int nkeys = 0, cap = 16;
    lua_newtable(L); /* key string -> original key */
    int keymap = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int kt = lua_type(L, -1);
        if (kt == LUA_TSTRING) {
            lua_pushvalue(L, -1);
        } else if (kt == LUA_TNUMBER) {
            lua_pushvalue(L, -1);
            lua_tostring(L, -1); /* converts the copy in place */
        } else {
            const char *w = lua_pushfstring(L, "table key of type %s", luaL_typename(L, -1));
            cJSON *r = json_fail(L, path, w);
            lua_replace(L, keymap);
            lua_settop(L, keymap);
            return r;
        }
        lua_pushvalue(L, -2);
        lua_rawset(L, keymap);
        nkeys++;
    }
    const char **keys = qr_xmalloc(sizeof *keys * (size_t)(nkeys > cap ? nkeys : cap));
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, keymap)) {
        lua_pop(L, 1);
        keys[k++] = lua_tostring(L, -1); /* anchored in keymap */
    }
    qsort(keys, (size_t)k, sizeof *keys, key_cmp);
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; i < k; i++) {
        lua_getfield(L, keymap, keys[i]); /* original key */
        lua_gettable(L, idx);
        lua_pushfstring(L, "%s.%s", path, keys[i]);
        cJSON *c = enc(L, lua_gettop(L) - 1, depth + 1, lua_gettop(L));
        if (!c) {
            free(keys);
            cJSON_Delete(obj);
            lua_replace(L, keymap);
            lua_settop(L, keymap);
            return NULL;
        }
        lua_pop(L, 2);
        cJSON_AddItemToObject(obj, keys[i], c);
    }
    free(keys);
    lua_settop(L, keymap - 1);
    return obj;
}

static int json_depth(const cJSON *j) {
    int d = 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        int cd = json_depth(c);
        if (cd > d) d = cd;
    }
    return d + 1;
}

/* Push the Lua value for cJSON item j. */
static void dec(lua_State *L, const cJSON *j, int depth) {
    luaL_checkstack(L, 4, "json.decode");
    if (cJSON_IsNull(j)) {
        lua_pushlightuserdata(L, JSON_NULL);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* cJSON keeps only a double: integral values within 2^53 become Lua
         * integers (ids, counts), everything else a float. */
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
        else lua_pushnumber(L, d);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        int i = 0;
        for (const cJSON *c = j->child; c; c = c->next) {
            dec(L, c, depth + 1);
            lua_rawseti(L, -2, ++i);
        }
    } else if (cJSON_IsObject(j)) {
        lua_newtable(L);
        for (const cJSON *c = j->child; c; c = c->next) {
            dec(L, c, depth + 1);
            lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

/* Parse text; on success push the value and return 1, else push a message
 * naming line, column and byte offset and return 0. */
static int json_parse(lua_State *L, const char *text, size_t len, const char *what) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (j) { /* only whitespace may follow the value */
        while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end != text + len) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        if (!end) {
            const char *ep = cJSON_GetErrorPtr();
            if (ep >= text && ep <= text + len) off = (size_t)(ep - text);
        }
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
        }
        lua_pushfstring(L, "%s: invalid JSON at line %d, column %d (byte %d)%s", what, line, col,
                        (int)off, off >= len ? ": unexpected end of input" : "");
        return 0;
    }
    /* Check the depth before converting, so dec() cannot raise with j
     * still allocated. */
    if (json_depth(j) > JSON_MAX_DEPTH) {
        cJSON_Delete(j);
        lua_pushfstring(L, "%s: JSON nested deeper than %d", what, JSON_MAX_DEPTH);
        return 0;
    }
    dec(L, j, 0);
    cJSON_Delete(j);
    return 1;
}

/* Encode the value at idx with options table at opt (0 = none). Returns a
 * malloc'd string, or NULL with a message pushed. */
static char *json_encode_at(lua_State *L, int idx, int opt) {
    int indent = 0;
    if (opt && lua_istable(L, opt)) {
        lua_getfield(L, opt, "indent");
        indent = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_pushliteral(L, "");
    cJSON *j = enc(L, idx, 0, lua_gettop(L));
    if (!j) {
        lua_remove(L, -2);
        return NULL;
    }
    lua_pop(L, 1);
    char *s = indent ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) lua_pushliteral(L, "json.encode: out of memory");
    return s;
}

/* qr.json.encode(value [, {indent=true}]) -> string; raises on a value JSON
 * cannot hold. */
static int l_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    char *s = json_encode_at(L, 1, lua_istable(L, 2) ? 2 : 0);
    if (!s) return lua_error(L);
    lua_pushstring(L, s);
    cJSON_free(s);
    return 1;
}

/* qr.json.decode(string) -> value; raises with the position on bad JSON. */
static int l_json_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (!json_parse(L, s, len, "json.decode")) return lua_error(L);
    return 1;
}

/* qr.json.read(path) -> value, or nil, message. */
static int l_json_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    char *text = qr_read_file(path, &len);
    if (!text) return qr_lua_fail(L);
    int ok = json_parse(L, text, len, path);
    free(text);
    if (!ok) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

/* qr.json.write(path, value [, {indent=true}]) -> true, or nil, message.
 * Atomic: written to "<path>.tmp.<pid>" then renamed over path, so a
 * reader never sees half a file. */
static int l_json_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    char *s = json_encode_at(L, 2, lua_istable(L, 3) ? 3 : 0);
    if (!s) return lua_error(L); /* an unencodable value is misuse */
    const char *tmp = lua_pushfstring(L, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cJSON_free(s);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot create: %s", tmp, strerror(errno));
        return 2;
    }
    size_t n = strlen(s);
    int bad = fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF || fflush(f) != 0;
    int err = errno;
    bad |= fclose(f) != 0;
    cJSON_free(s);
    if (bad || rename(tmp, path) != 0) {
        if (!bad) err = errno;
        remove(tmp);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot write: %s", path, strerror(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ */
/* small utilities                                                     */
/* ------------------------------------------------------------------ */

static int l_now(lua_State *L) {
    lua_pushnumber(L, qr_now());
    return 1;
}

static int l_getenv(lua_State *L) {
    const char *v = getenv(luaL_checkstring(L, 1));
    if (v) lua_pushstring(L, v);
    else if (lua_gettop(L) >= 2) lua_pushvalue(L, 2); /* qr.getenv(name, default) */
    else lua_pushnil(L);
    return 1;
}

/* qr.isatty([fd or file]) -> boolean; default stdout. */
static int l_isatty(lua_State *L) {
    int fd = 1;
    if (lua_isinteger(L, 1)) {
        fd = qr_lua_checkint(L, 1);
    } else if (!lua_isnoneornil(L, 1)) {
        luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
        if (!p->f) return luaL_argerror(L, 1, "closed file");
        fd = fileno(p->f);
    }
    lua_pushboolean(L, isatty(fd));
    return 1;
}

/* SHA-256 (FIPS 180-4), for checking data files against published sums. */
typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} sha256_ctx;

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *p) {
    uint32_t w[64], s[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, c->h, sizeof s);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR32(s[4], 6) ^ ROR32(s[4], 11) ^ ROR32(s[4], 25);
        uint32_t ch = (s[4] & s[5]) ^ (~s[4] & s[6]);
        uint32_t t1 = s[7] + S1 + ch + sha256_k[i] + w[i];
        uint32_t S0 = ROR32(s[0], 2) ^ ROR32(s[0], 13) ^ ROR32(s[0], 22);
        uint32_t maj = (s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]);
        uint32_t t2 = S0 + maj;
        memmove(s + 1, s, 7 * sizeof *s);
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) c->h[i] += s[i];
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->nbytes = 0;
    c->nbuf = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
    c->nbytes += n;
    while (n > 0) {
        size_t k = 64 - c->nbuf < n ? 64 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k, p += k, n -= k;
        if (c->nbuf == 64) {
            sha256_block(c, c->buf);
            c->nbuf = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->nbytes * 8;
    uint8_t pad[72] = {0x80};
    size_t npad = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, pad, npad + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

/* qr.sha256(path) -> hex digest, or nil, message. */
static int l_sha256(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot open: %s", path, strerror(errno));
        return 2;
    }
    sha256_ctx c;
    sha256_init(&c);
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: read error", path);
        return 2;
    }
    uint8_t d[32];
    char hex[65];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    lua_pushstring(L, hex);
    return 1;
}

/* ------------------------------------------------------------------ */
/* the module                                                          */
/* ------------------------------------------------------------------ */

static const luaL_Reg qr_funcs[] = {
    {"opts", l_opts},     {"now", l_now},       {"getenv", l_getenv},
    {"isatty", l_isatty}, {"sha256", l_sha256}, {NULL, NULL}};

static const luaL_Reg json_funcs[] = {{"encode", l_json_encode},
                                      {"decode", l_json_decode},
                                      {"read", l_json_read},
                                      {"write", l_json_write},
                                      {NULL, NULL}};

int luaopen_qr(lua_State *L) {
    luaL_newlib(L, qr_funcs);
    int mod = lua_gettop(L);
    lua_pushliteral(L, QR_VERSION);
    lua_setfield(L, mod, "version");
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    lua_setfield(L, mod, "json");
#ifdef QR_SOURCE_DIR
    /* where the checkout is: recipes find datasets/ and tests/ from here */
    lua_pushliteral(L, QR_SOURCE_DIR);
    lua_setfield(L, mod, "source_dir");
#endif
#ifdef QR_BUILD_DIR
    lua_pushliteral(L, QR_BUILD_DIR);
    lua_setfield(L, mod, "build_dir");
#endif
    qr_lua_text_open(L, mod);
    qr_lua_model_open(L, mod);
    qr_lua_plugin_open(L, mod);
    lua_settop(L, mod);
    return 1;
}
