/* lua_qr.h - the Lua module `qr` and the helpers its binding files share.
 *
 * luaopen_qr() builds the module table and hands it to each binding file in
 * turn: qr_lua_text_open() (lua_text.c: tokenizer, SQuAD), then
 * qr_lua_model_open() (lua_model.c: models). A binding file adds its
 * functions to the table at stack index `mod` (an absolute index).
 *
 * Conventions (after liolib.c; see STYLE.md):
 *   - expected failures (a file that is missing or malformed) return
 *     `nil, message` (qr_lua_fail); misuse (wrong argument types, using a
 *     closed object) raises an argument error;
 *   - one metatable per userdata type, named "qr.<Type>", created once by
 *     qr_lua_newmeta(); the userdata block starts with the handle pointer,
 *     which is NULL once the object is closed, so __gc and __close can share
 *     one idempotent free and __tostring can say "(closed)". */
#ifndef QR_LUA_QR_H
#define QR_LUA_QR_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define QR_VERSION "0.1.0"

struct qr_tokenizer;

/* The module opener (package.preload["qr"] in qrun). */
int luaopen_qr(lua_State *L);

/* Binding files: add functions to the module table at absolute index mod. */
void qr_lua_text_open(lua_State *L, int mod);
void qr_lua_model_open(lua_State *L, int mod);
void qr_lua_plugin_open(lua_State *L, int mod); /* lua_plugin.c: plugins, quantizers */

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

/* ---- tokenizer (lua_text.c) ---- */

/* Push t as a "qr.Tokenizer" userdata. owned=1: it is freed when the
 * userdata is collected/closed. owned=0: borrowed from the object at stack
 * index parent_idx (e.g. the model that owns the tokenizer), which is kept
 * alive as the userdata's user value; parent_idx 0 means no parent. */
void qr_lua_push_tokenizer(lua_State *L, struct qr_tokenizer *t, int owned,
                           int parent_idx);
/* The tokenizer behind argument arg (a "qr.Tokenizer"); raises if it is not
 * one or is closed. */
struct qr_tokenizer *qr_lua_checktokenizer(lua_State *L, int arg);

#endif
