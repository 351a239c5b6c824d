/* lua_json.c - qr.json: encode, decode, read and write JSON (cJSON), with
 * qr.json.null for JSON null. */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"

#include "qr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>


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

/* s (len bytes) as valid UTF-8, which JSON text must be (RFC 8259 section
 * 8.1): each byte that does not start a valid sequence becomes U+FFFD, the
 * replacement character. A byte-level tokenizer can generate half a
 * character, and a model's answer is written as it came. Returns NULL when s
 * is already valid (use s), else a new string the caller frees. */
static char *utf8_repaired(const char *s, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_int32_t c;
    size_t i = 0;
    while (i < len) {
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) break;
        i += (size_t)n;
    }
    if (i == len) return NULL;
    char *out = qr_xmalloc(len * 3 + 1);
    size_t o = 0;
    for (i = 0; i < len;) {
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        }
    }
    out[o] = '\0';
    return out;
}

/* Convert the Lua value at idx to a new cJSON item (caller owns it). path
 * (a Lua string at stack index pathidx, e.g. ".answers[2]") says where we
 * are, for messages. On failure returns NULL with one message pushed; on
 * success the stack is as it was. */
/* The shortest of %.15g, %.16g and %.17g that reads back as exactly d.
 * cJSON's own printer takes %.15g whenever it reads back within an epsilon,
 * which loses up to an ulp: a victim score written by one run and recomputed
 * by another then differs in its last bit (scripts/verify_bank.lua found it). */
static const char *number_text(char buf[40], double d) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return buf;
}

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
        char *fixed = utf8_repaired(s, len);
        cJSON *item = cJSON_CreateString(fixed ? fixed : s);
        free(fixed);
        return item;
    }
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
            return cJSON_CreateRaw(buf);
        }
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) return json_fail(L, path, "NaN or infinity (not valid JSON)");
        char buf[40];
        return cJSON_CreateRaw(number_text(buf, d));
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
        char *fixed = utf8_repaired(keys[i], strlen(keys[i]));
        cJSON_AddItemToObject(obj, fixed ? fixed : keys[i], c);
        free(fixed);
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
    /* fsync before the rename: after a crash the path holds the old file
     * or the new one, never an empty or torn one */
    int bad = fwrite(s, 1, n, f) != n || fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    cJSON_free(s);
    if (bad || rename(tmp, path) != 0) {
        if (!bad) err = errno;
        remove(tmp);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot write (%s); the previous file, if any, is unchanged", path, strerror(err));
        return 2;
    }
    qr_fsync_parent(path);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg json_funcs[] = {{"encode", l_json_encode},
                                      {"decode", l_json_decode},
                                      {"read", l_json_read},
                                      {"write", l_json_write},
                                      {NULL, NULL}};

void qr_lua_json_open(lua_State *L, int mod) {
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    lua_setfield(L, mod, "json");
}
