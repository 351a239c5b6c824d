/* lua_aux.h - the helpers every binding file of the `qr` module uses (what
 * lauxlib is to Lua's own libraries). The bottom of the Lua wing: lua_aux.c
 * includes no binding, and a binding reaches another one only through
 * qr_lua.h.
 *
 * Conventions (after liolib.c; see STYLE.md):
 *   - expected failures (a file that is missing or malformed) return
 *     `nil, message` (qr_lua_fail); misuse (wrong argument types, using a
 *     closed object) raises an argument error;
 *   - one metatable per userdata type, named "qr.<Type>", created once by
 *     qr_lua_newmeta(); the userdata block starts with the handle pointer,
 *     which is NULL once the object is closed, so __gc and __close can share
 *     one idempotent free and __tostring can say "(closed)". */
#ifndef QR_LUA_AUX_H
#define QR_LUA_AUX_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* ---- errors ---- */

/* Push nil and the current qr_err_msg(); returns 2 (use `return
 * qr_lua_fail(L);` after a library call failed). */
int qr_lua_fail(lua_State *L);
/* Raise the current qr_err_msg() as a Lua error (does not return). */
int qr_lua_raise(lua_State *L);

/* ---- arguments ---- */

/* luaL_checkinteger that also checks the value fits an int (argument error
 * "number has no integer representation" / "out of range" otherwise). */
int qr_lua_checkint(lua_State *L, int arg);
int qr_lua_optint(lua_State *L, int arg, int def);

/* Read the array part t[1..#t] of the table at idx as int32s: malloc'd
 * (free() it), *n set to the length (0 gives a valid 1-byte allocation).
 * A non-table raises an argument error; an element that is not an integer
 * in int32 range raises "bad argument #idx (element [i]: expected int32, got
 * <type or value>)". */
int32_t *qr_lua_toint32array(lua_State *L, int idx, int *n);
/* Push a new Lua array {a[0], ..., a[n-1]} of integers. */
void qr_lua_pushint32array(lua_State *L, const int32_t *a, int n);

/* ---- option tables: fields of the table at index t ---- */

/* t[k] as an int (def when nil); anything but an integer in int range
 * raises "<what>: <k> must be an integer, got <value>". */
int qr_lua_fieldint(lua_State *L, int t, const char *k, int def, const char *what);
/* t[k] as a number (def when nil); else "<what>: <k> must be a number, got
 * a <type>". */
double qr_lua_fieldnum(lua_State *L, int t, const char *k, double def, const char *what);

/* Plugin options {key = value} -> NULL-terminated array of 2n strings
 * (key, value, ...): booleans become "true"/"false", integers "%d", floats
 * "%.17g", strings stay. The array is a userdata left on the stack (with
 * the strings anchored in it), so an error leaks nothing; keys are sorted so
 * the first bad option named is always the same. Returns NULL (nothing
 * pushed) when arg is none or nil, *n_kv the pair count. A non-table, a key
 * that is not a string or a value of another type is an argument error. */
const char **qr_lua_tokv(lua_State *L, int arg, int *n_kv);
/* The same for the field t[field] (nil: none), messages "<what>: <field>
 * ...", values through luaL_tolstring, keys unsorted; the strings are kept
 * alive by being appended to the table at index keep. */
int qr_lua_fieldkv(lua_State *L, int t, const char *field, int keep, const char ***out,
                   const char *what);

/* ---- results ---- */

/* t[k] = v for the table at the top of the stack. */
void qr_lua_setint(lua_State *L, const char *k, lua_Integer v);
void qr_lua_setnum(lua_State *L, const char *k, double v);
void qr_lua_setstr(lua_State *L, const char *k, const char *v);

/* ---- userdata ---- */

/* Create the metatable tname (once; later calls just push it): methods go in
 * __index, metamethods into the metatable. If metamethods has __gc and no
 * __close, __close is set to the same function; if there is no __tostring, a
 * default one prints "tname: 0x..." or "tname (closed)". Leaves the
 * metatable on the stack. */
void qr_lua_newmeta(lua_State *L, const char *tname, const luaL_Reg *methods,
                    const luaL_Reg *metamethods);
/* New zeroed userdata of `size` bytes (size >= sizeof(void*); the first field
 * must be the handle pointer) with metatable tname (which must exist) and
 * nuv user values. Pushes it and returns its block. */
void *qr_lua_newudata(lua_State *L, size_t size, const char *tname, int nuv);
/* luaL_checkudata + "attempt to use a closed tname" if the handle is NULL.
 * Returns the block (not the handle). */
void *qr_lua_checkopen(lua_State *L, int arg, const char *tname);

#endif
