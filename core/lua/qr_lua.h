/* qr_lua.h - the Lua module `qr`: its opener and one opener per binding
 * file (as Lua's lualib.h declares luaopen_base ... luaopen_debug).
 *
 * luaopen_qr() (lua_init.c, after Lua's linit.c) builds the module table
 * and calls the openers below in order; each adds its functions (and
 * creates its metatables) in the table at stack index `mod`, an absolute
 * index. The few functions one binding offers another are declared here
 * too, so no binding file declares anything of another one. The helpers
 * every binding uses are in lua_aux.h. */
#ifndef QR_QR_LUA_H
#define QR_QR_LUA_H

#include "lua_aux.h"

#define QR_VERSION "0.1.0"

/* The module opener (package.preload["qr"] in qrun). */
int luaopen_qr(lua_State *L);

/* Registry field luaopen_qr sets to the set {[f] = true} of every C
 * function of the module (functions, methods and metamethods of its
 * "qr.*" metatables): qrun's message handler tells by it an error raised
 * by a qr check (a user error) from one raised anywhere else. */
#define QR_LUA_FUNCTIONS "qr.functions"

/* ---- the binding files, in the order luaopen_qr opens them ---- */

void qr_lua_util_open(lua_State *L, int mod);   /* lua_util.c: qr.opts, now, getenv, isatty, sha256, run_limited */
void qr_lua_json_open(lua_State *L, int mod);   /* lua_json.c: qr.json */
void qr_lua_text_open(lua_State *L, int mod);   /* lua_text.c: qr.tokenizer, qr.squad */
void qr_lua_model_open(lua_State *L, int mod);  /* lua_model.c: qr.model, qr.Model */
void qr_lua_train_open(lua_State *L, int mod);  /* lua_train.c: qr.train */
void qr_lua_search_open(lua_State *L, int mod); /* lua_search.c: qr.ilp, model:proxy(_ref), qr.ProxyRef */
void qr_lua_plugin_open(lua_State *L, int mod); /* lua_plugin.c: plugins, quantizers, attacks */
void qr_lua_attackres_open(lua_State *L, int mod); /* lua_attackres.c: qr.wordvec, stop words, attack_resources */
void qr_lua_encoder_open(lua_State *L, int mod); /* lua_encoder.c: qr.sentence_encoder, qr.SentenceEncoder */

/* ---- what one binding offers another ---- */

struct qr_tokenizer;
struct qr_model;

/* lua_text.c. Push t as a "qr.Tokenizer" userdata. owned=1: it is freed
 * when the userdata is collected/closed. owned=0: borrowed from the object
 * at stack index parent_idx (e.g. the model that owns the tokenizer), which
 * is kept alive as the userdata's user value; parent_idx 0 means no
 * parent. */
void qr_lua_push_tokenizer(lua_State *L, struct qr_tokenizer *t, int owned,
                           int parent_idx);
/* lua_text.c. The tokenizer behind argument arg (a "qr.Tokenizer"); raises
 * if it is not one or is closed. */
struct qr_tokenizer *qr_lua_checktokenizer(lua_State *L, int arg);

/* lua_model.c. The model behind argument arg (a "qr.Model"); raises if it
 * is not one or is closed. */
struct qr_model *qr_lua_checkmodel(lua_State *L, int arg);

#endif
