/* lua_plugin.c - plugins from Lua: qr.plugins(), qr.load_plugin(path),
 * qr.quantizer(name, opts) -> "qr.Quantizer" with :fake(rows, bits),
 * :backward(rows, douts, bits), :name(), :close(), and qr.attack(name,
 * opts) -> "qr.Attack" with :perturb(text, query_fn, budget, seed
 * [, query_batch_fn]), :batched(), :name(), :close(), and qr.schedule(name, opts) -> "qr.Schedule" with
 * :select(t, T, configs[, model]), :name(), :close().
 *
 * Rows are Lua arrays of arrays of numbers (all of one length), i.e. a
 * (rows, cols) matrix; results are new tables of the same shape. An unknown
 * name, a bad option or bad bits raise errors (the plugin's message);
 * qr.load_plugin returns nil, message.
 *
 * close() (and __gc, __close) drops the object's reference to its plugin
 * instance: the object is closed at once, but a model that was given the
 * quantizer keeps its own reference (lua_model.c), so the instance lives
 * until the model lets go of it too. */
#include "qr_lua.h"

#include "model/model.h"
#include "plugin.h"
#include "qr.h"
#include "train/trainer.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUANTIZER_MT "qr.Quantizer"
#define ATTACK_MT "qr.Attack"
#define SCHEDULE_MT "qr.Schedule"

/* A qr.Quantizer or a qr.Attack: the instance, NULL once closed. */
typedef struct {
    qr_instance *p;
} lua_instance;

/* qr.plugins() -> {{kind=, name=, description=, plugin=, version=, file=}, ...},
 *                 {{file=, error=}, ...} (the files that failed to load) */
static int l_plugins(lua_State *L) {
    (void)qr_plugins_init();
    int n = qr_plugins_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const qr_plugin_info *p = qr_plugins_at(i);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, p->kind_name);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, p->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, p->description);
        lua_setfield(L, -2, "description");
        lua_pushstring(L, p->plugin);
        lua_setfield(L, -2, "plugin");
        lua_pushstring(L, p->version);
        lua_setfield(L, -2, "version");
        lua_pushstring(L, p->file);
        lua_setfield(L, -2, "file");
        lua_rawseti(L, -2, i + 1);
    }
    int nf = qr_plugins_failed_count();
    lua_createtable(L, nf, 0);
    for (int i = 0; i < nf; i++) {
        const qr_plugin_failure *f = qr_plugins_failed_at(i);
        lua_createtable(L, 0, 2);
        lua_pushstring(L, f->file);
        lua_setfield(L, -2, "file");
        lua_pushstring(L, f->error);
        lua_setfield(L, -2, "error");
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

/* qr.load_plugin(path) -> true | nil, message */
static int l_load_plugin(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (qr_plugin_load(path) != QR_OK) return qr_lua_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* qr.quantizer(name, opts) -> qr.Quantizer */
static int l_quantizer(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    int n_kv;
    const char **kv = qr_lua_tokv(L, 2, &n_kv);
    lua_instance *u = qr_lua_newudata(L, sizeof *u, QUANTIZER_MT, 0);
    u->p = qr_quantizer_new(name, kv, n_kv);
    if (!u->p) return qr_lua_raise(L);
    return 1;
}

/* Read a (rows, cols) matrix from the table at idx into a malloc'd buffer
 * anchored as a userdata on the stack (freed by Lua). what names it. */
static float *check_matrix(lua_State *L, int idx, const char *what, int64_t *rows, int64_t *cols) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer R = luaL_len(L, idx), C = -1;
    for (lua_Integer r = 1; r <= R; r++) {
        if (lua_geti(L, idx, r) != LUA_TTABLE)
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "%s[%d]: expected an array of numbers, got %s", what, (int)r,
                                          luaL_typename(L, -1)));
        lua_Integer c = luaL_len(L, -1);
        if (C < 0)
            C = c;
        else if (c != C)
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "%s[%d]: %d numbers, expected %d like %s[1]", what, (int)r,
                                          (int)c, (int)C, what));
        lua_pop(L, 1);
    }
    if (C < 0) C = 0;
    if (R > 0 && C > (lua_Integer)(((size_t)1 << 40) / (size_t)R)) luaL_argerror(L, idx, "matrix too large");
    float *m = lua_newuserdatauv(L, (size_t)(R * C > 0 ? R * C : 1) * sizeof *m, 0);
    for (lua_Integer r = 1; r <= R; r++) {
        lua_geti(L, idx, r);
        for (lua_Integer c = 1; c <= C; c++) {
            int isnum = 0;
            lua_geti(L, -1, c);
            lua_Number v = lua_tonumberx(L, -1, &isnum);
            if (!isnum)
                luaL_argerror(L, idx,
                              lua_pushfstring(L, "%s[%d][%d]: expected a number, got %s", what, (int)r,
                                              (int)c, luaL_typename(L, -1)));
            if (isfinite(v) && fabs(v) > FLT_MAX) /* would become Inf and be reported as such */
                luaL_argerror(L, idx,
                              lua_pushfstring(L, "%s[%d][%d]: %f is outside float32's range (|x| <= 3.4e38)", what,
                                              (int)r, (int)c, v));
            m[(r - 1) * C + (c - 1)] = (float)v;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    *rows = R;
    *cols = C;
    return m;
}

static void push_matrix(lua_State *L, const float *m, int64_t rows, int64_t cols) {
    lua_createtable(L, (int)rows, 0);
    for (int64_t r = 0; r < rows; r++) {
        lua_createtable(L, (int)cols, 0);
        for (int64_t c = 0; c < cols; c++) {
            lua_pushnumber(L, m[r * cols + c]);
            lua_rawseti(L, -2, c + 1);
        }
        lua_rawseti(L, -2, r + 1);
    }
}

/* q:fake(rows, bits) -> rows, scales */
static int q_fake(lua_State *L) {
    lua_instance *u = qr_lua_checkopen(L, 1, QUANTIZER_MT);
    int64_t rows, cols;
    float *x = check_matrix(L, 2, "rows", &rows, &cols);
    int bits = qr_lua_checkint(L, 3);
    float *scales = lua_newuserdatauv(L, (size_t)(rows > 0 ? rows : 1) * sizeof *scales, 0);
    if (qr_quantizer_fake(u->p, x, x, rows, cols, bits, scales) != QR_OK) return qr_lua_raise(L);
    push_matrix(L, x, rows, cols);
    lua_createtable(L, (int)rows, 0);
    for (int64_t r = 0; r < rows; r++) {
        lua_pushnumber(L, scales[r]);
        lua_rawseti(L, -2, r + 1);
    }
    return 2;
}

/* q:backward(rows, douts, bits) -> dx (= douts · d fake/dx, same shape) */
static int q_backward(lua_State *L) {
    lua_instance *u = qr_lua_checkopen(L, 1, QUANTIZER_MT);
    int64_t rows, cols, grows, gcols;
    float *x = check_matrix(L, 2, "rows", &rows, &cols);
    float *g = check_matrix(L, 3, "douts", &grows, &gcols);
    int bits = qr_lua_checkint(L, 4);
    if (grows != rows || gcols != cols)
        return luaL_error(L, "quantizer '%s': backward: douts is (%d, %d), rows is (%d, %d)",
                          qr_instance_name(u->p), (int)grows, (int)gcols, (int)rows, (int)cols);
    if (bits != 32 && (bits < 2 || bits > 16))
        return luaL_error(L, "quantizer '%s': bits %d: expected 2..16, or 32 for no quantization",
                          qr_instance_name(u->p), bits);
    float *dx = lua_newuserdatauv(L, (size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof *dx, 0);
    memset(dx, 0, (size_t)(rows * cols) * sizeof *dx);
    qr_quantizer_backward(u->p, dx, g, x, rows, cols, bits);
    push_matrix(L, dx, rows, cols);
    return 1;
}

/* The methods every kind shares; the userdata is any of the metatables. */
static lua_instance *check_instance(lua_State *L, const char **mt) {
    *mt = luaL_testudata(L, 1, QUANTIZER_MT) ? QUANTIZER_MT : luaL_testudata(L, 1, SCHEDULE_MT) ? SCHEDULE_MT
                                                                                              : ATTACK_MT;
    return luaL_checkudata(L, 1, *mt);
}

static int inst_name(lua_State *L) {
    const char *mt;
    check_instance(L, &mt);
    lua_instance *u = qr_lua_checkopen(L, 1, mt);
    lua_pushstring(L, qr_instance_name(u->p));
    return 1;
}

static int inst_gc(lua_State *L) {
    const char *mt;
    lua_instance *u = check_instance(L, &mt);
    qr_instance_free(u->p); /* drops this reference: a model using it keeps its own */
    u->p = NULL;
    return 0;
}

static int inst_tostring(lua_State *L) {
    const char *mt;
    lua_instance *u = check_instance(L, &mt);
    if (u->p)
        lua_pushfstring(L, "%s: %s", mt, qr_instance_name(u->p));
    else
        lua_pushfstring(L, "%s (closed)", mt);
    return 1;
}

/* ---- attacks ---- */

/* qr.attack(name, opts) -> qr.Attack */
static int l_attack(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    int n_kv;
    const char **kv = qr_lua_tokv(L, 2, &n_kv);
    lua_instance *u = qr_lua_newudata(L, sizeof *u, ATTACK_MT, 0);
    u->p = qr_instance_new(QR_KIND_ATTACK, name, kv, n_kv);
    if (!u->p) return qr_lua_raise(L);
    return 1;
}

/* The Lua side of the plugin's query(): the query function and the stack
 * slot that receives the first error it raised. */
typedef struct {
    lua_State *L;
    int fn, batch_fn, err; /* stack slots: query_fn, query_batch_fn, the error */
    const char *who;       /* "attack 'typo'" */
    int failed;
} query_ctx;

/* Under lua_pcall: fn(candidate) -> a number (anything else is an error). */
static int query_call(lua_State *L) {
    const char *who = lua_touserdata(L, 3);
    lua_pushstring(L, lua_touserdata(L, 2));
    lua_pushvalue(L, 1);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_error(L, "%s: query_fn returned %s, expected a number (higher = better for the victim)", who,
                          luaL_typename(L, -1));
    return 1;
}

/* The plugin calls this from its C frames, so a Lua error must not unwind
 * through them: the call runs under lua_pcall, the first error is kept in
 * the ctx's stack slot, and from then on every query answers -HUGE_VAL
 * without calling Lua: the lowest score, with which an attack ends (typo
 * stops at once: its score is no longer > 0). perturb re-raises the error
 * when the plugin has returned. */
static double query_trampoline(void *ctx, const char *candidate) {
    query_ctx *c = ctx;
    if (c->failed) return -HUGE_VAL;
    lua_State *L = c->L;
    lua_pushcfunction(L, query_call); /* no allocation: a light C function */
    lua_pushvalue(L, c->fn);
    lua_pushlightuserdata(L, (void *)candidate);
    lua_pushlightuserdata(L, (void *)c->who);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        c->failed = 1;
        lua_replace(L, c->err);
        return -HUGE_VAL;
    }
    double s = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return s;
}

/* Under lua_pcall: fn({cands[0], ..., cands[n-1]}) -> a list of n
 * numbers, written to scores as they are read (anything else is an error;
 * the trampoline then overwrites them all). */
static int query_batch_call(lua_State *L) {
    const char *const *cands = lua_touserdata(L, 2);
    int n = (int)lua_tointeger(L, 3);
    double *scores = lua_touserdata(L, 4);
    const char *who = lua_touserdata(L, 5);
    lua_pushvalue(L, 1);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, cands[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: query_batch_fn returned %s, expected a list of %d numbers (one per candidate)",
                          who, luaL_typename(L, -1), n);
    for (int i = 0; i < n; i++) {
        if (lua_geti(L, -1, i + 1) != LUA_TNUMBER)
            return luaL_error(L, "%s: query_batch_fn's result [%d] is %s, expected a number (%d candidates)", who,
                              i + 1, luaL_typename(L, -1), n);
        scores[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return 0;
}

/* The plugin's query_batch (ABI 1.4), as query_trampoline: under lua_pcall,
 * the first error kept, and from then on every candidate answers
 * -HUGE_VAL (the whole failed batch too) without calling Lua. */
static int query_batch_trampoline(void *ctx, const char *const *cands, int n, double *scores) {
    query_ctx *c = ctx;
    if (n < 0 || (n > 0 && (!cands || !scores)))
        return qr_err_set("%s: query_batch: n = %d with %s: expected n >= 0 and arrays for n > 0", c->who, n,
                          !cands ? "cands NULL" : "scores NULL");
    for (int i = 0; i < n; i++)
        if (!cands[i]) return qr_err_set("%s: query_batch: cands[%d] is NULL", c->who, i);
    if (n == 0) return QR_PLUGIN_OK;
    if (!c->failed) {
        lua_State *L = c->L;
        lua_pushcfunction(L, query_batch_call);
        lua_pushvalue(L, c->batch_fn);
        lua_pushlightuserdata(L, (void *)cands);
        lua_pushinteger(L, n);
        lua_pushlightuserdata(L, scores);
        lua_pushlightuserdata(L, (void *)c->who);
        if (lua_pcall(L, 5, 0, 0) == LUA_OK) return QR_PLUGIN_OK;
        c->failed = 1;
        lua_replace(L, c->err);
    }
    for (int i = 0; i < n; i++) scores[i] = -HUGE_VAL;
    return QR_PLUGIN_OK;
}

/* a:perturb(text, query_fn, budget, seed = 0 [, query_batch_fn]) -> the
 * perturbed text. query_fn(candidate) -> number, higher = better for the
 * victim; query_batch_fn({candidate, ...}) -> {number, ...}, the same for a
 * list (used when the plugin has the ABI 1.4 perturb_batch: a:batched();
 * otherwise the attack asks query_fn one at a time). An error in either
 * ends the attack and is raised again here, unchanged. */
static int a_perturb(lua_State *L) {
    lua_instance *u = qr_lua_checkopen(L, 1, ATTACK_MT);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    if (strlen(text) != len) return luaL_argerror(L, 2, "text contains a NUL byte");
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int budget = qr_lua_checkint(L, 4);
    uint64_t seed = (uint64_t)luaL_optinteger(L, 5, 0);
    if (!lua_isnoneornil(L, 6)) luaL_checktype(L, 6, LUA_TFUNCTION);
    lua_settop(L, 6);
    lua_pushnil(L); /* 7: the query functions' error, if any */
    luaL_checkstack(L, 10, "perturb");
    char who[128];
    snprintf(who, sizeof who, "attack '%s'", qr_instance_name(u->p));
    query_ctx c = {.L = L, .fn = 3, .batch_fn = 6, .err = 7, .who = who};
    /* query_fn may close this object: the instance stays until perturb is done */
    qr_instance *a = qr_instance_retain(u->p);
    const qr_attack_ops *ops = qr_instance_ops(a);
    char *out = NULL;
    int rc = !lua_isnil(L, 6) && QR_ATTACK_HAS(ops, perturb_batch)
                 ? ops->perturb_batch(qr_instance_self(a), text, query_trampoline, query_batch_trampoline, &c,
                                      budget, seed, &out)
                 : ops->perturb(qr_instance_self(a), text, query_trampoline, &c, budget, seed, &out);
    qr_instance_free(a);
    if (c.failed) {
        free(out);
        lua_settop(L, 7);
        return lua_error(L);
    }
    if (rc != QR_PLUGIN_OK || !out) {
        free(out);
        if (rc == QR_PLUGIN_OK) qr_err_set("%s: perturb() gave no text", who);
        return qr_lua_raise(L);
    }
    lua_pushstring(L, out);
    free(out);
    return 1;
}

/* a:batched() -> whether the plugin scores candidates together when
 * perturb is given a query_batch_fn (the ABI 1.4 perturb_batch) */
static int a_batched(lua_State *L) {
    lua_instance *u = qr_lua_checkopen(L, 1, ATTACK_MT);
    const qr_attack_ops *ops = qr_instance_ops(u->p);
    lua_pushboolean(L, QR_ATTACK_HAS(ops, perturb_batch));
    return 1;
}

/* ---- schedules ---- */

/* qr.schedule(name, opts) -> qr.Schedule */
static int l_schedule(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    int n_kv;
    const char **kv = qr_lua_tokv(L, 2, &n_kv);
    lua_instance *u = qr_lua_newudata(L, sizeof *u, SCHEDULE_MT, 0);
    u->p = qr_instance_new(QR_KIND_SCHEDULE, name, kv, n_kv);
    if (!u->p) return qr_lua_raise(L);
    return 1;
}

/* s:select(t, T, configs[, model]) -> {i, ...}: the 1-based indices of the
 * configurations the schedule trains at step t (0-based) of T. configs is
 * what qr.train takes ({name=, layers = {{w=, a=}, ...}}, bits default 32).
 * The means and BitOPs a schedule sees are weighted by each layer's in x
 * out: the model's linears when model is given (as in training), else
 * layers[i].in_features * out_features when both are set, else 1. */
static int s_select(lua_State *L) {
    lua_instance *u = qr_lua_checkopen(L, 1, SCHEDULE_MT);
    int t = qr_lua_checkint(L, 2), T = qr_lua_checkint(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    qr_model *m = lua_isnoneornil(L, 5) ? NULL : qr_lua_checkmodel(L, 5);
    lua_settop(L, 5);
    const char *who = qr_instance_name(u->p);
    int n = (int)luaL_len(L, 4);
    if (n < 1 || n > QR_TRAIN_MAX_CONFIGS)
        return luaL_error(L, "schedule '%s': select: %d configurations: expected 1..%d", who, n,
                          QR_TRAIN_MAX_CONFIGS);
    int nl = -1;
    for (int c = 1; c <= n; c++) { /* one layer count for all */
        if (lua_rawgeti(L, 4, c) != LUA_TTABLE)
            return luaL_error(L, "schedule '%s': select: configs[%d] is not a table", who, c);
        if (lua_getfield(L, -1, "name") != LUA_TSTRING)
            return luaL_error(L, "schedule '%s': select: configs[%d] has no name", who, c);
        if (lua_getfield(L, -2, "layers") != LUA_TTABLE)
            return luaL_error(L, "schedule '%s': select: config '%s' has no layers array", who, lua_tostring(L, -2));
        int k = (int)luaL_len(L, -1);
        if (m && k != qr_model_n_linears(m))
            return luaL_error(L, "schedule '%s': select: config '%s': %d layers, the model has %d linear layers",
                              who, lua_tostring(L, -2), k, qr_model_n_linears(m));
        if (nl >= 0 && k != nl)
            return luaL_error(L, "schedule '%s': select: config '%s': %d layers, configs[1] has %d", who,
                              lua_tostring(L, -2), k, nl);
        nl = k;
        lua_pop(L, 3);
    }
    size_t np = (size_t)n * (size_t)(nl > 0 ? nl : 1);
    qr_layer_prec *prec = lua_newuserdatauv(L, np * sizeof *prec, 0); /* freed by the GC */
    double *k = lua_newuserdatauv(L, (size_t)(nl > 0 ? nl : 1) * sizeof *k, 0);
    qr_schedule_config *sc = lua_newuserdatauv(L, (size_t)n * sizeof *sc, 0);
    const qr_schedule_config **sp = lua_newuserdatauv(L, (size_t)n * sizeof *sp, 0);
    int *out = lua_newuserdatauv(L, (size_t)n * sizeof *out, 0);
    for (int c = 1; c <= n; c++) {
        lua_rawgeti(L, 4, c);
        lua_getfield(L, -1, "name");
        const char *name = lua_tostring(L, -1); /* kept alive by configs */
        lua_getfield(L, -2, "layers");
        for (int i = 0; i < nl; i++) {
            if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE)
                return luaL_error(L, "schedule '%s': select: config '%s': layers[%d] is not a table", who, name,
                                  i + 1);
            qr_layer_prec *p = &prec[(size_t)(c - 1) * nl + i];
            p->wbits = qr_lua_fieldint(L, -1, "w", 32, "schedule");
            p->abits = qr_lua_fieldint(L, -1, "a", 32, "schedule");
            p->adapter = -1;
            p->wgroup = 0; /* a schedule sees bit-widths only */
            if (c == 1) {
                if (m) {
                    const qr_linear *l = qr_model_linear(m, i);
                    k[i] = (double)l->in * l->out;
                } else {
                    lua_Integer fi = qr_lua_fieldint(L, -1, "in_features", 0, "schedule");
                    lua_Integer fo = qr_lua_fieldint(L, -1, "out_features", 0, "schedule");
                    k[i] = fi > 0 && fo > 0 ? (double)fi * (double)fo : 1.0;
                }
            }
            lua_pop(L, 1);
        }
        qr_schedule_config_fill(&sc[c - 1], name, nl, k, prec + (size_t)(c - 1) * nl);
        sp[c - 1] = &sc[c - 1];
        lua_pop(L, 3);
    }
    const qr_schedule_ops *ops = qr_instance_ops(u->p);
    void *self = qr_instance_self(u->p);
    int got = QR_SCHEDULE_HAS(ops, select_cfg) ? ops->select_cfg(self, t, T, n, sp, out)
                                               : ops->select(self, t, T, n, out);
    if (got < 0) return qr_lua_raise(L);
    if (got < 1 || got > n)
        return luaL_error(L, "schedule '%s': selected %d configurations (expected 1..%d)", who, got, n);
    lua_createtable(L, got, 0);
    for (int j = 0; j < got; j++) {
        if (out[j] < 0 || out[j] >= n)
            return luaL_error(L, "schedule '%s': selected configuration %d (expected 0..%d)", who, out[j], n - 1);
        lua_pushinteger(L, out[j] + 1);
        lua_rawseti(L, -2, j + 1);
    }
    return 1;
}

static const luaL_Reg schedule_methods[] = {
    {"select", s_select}, {"name", inst_name}, {"close", inst_gc}, {NULL, NULL}};

static const luaL_Reg schedule_meta[] = {
    {"__gc", inst_gc}, {"__tostring", inst_tostring}, {NULL, NULL}};

static const luaL_Reg attack_methods[] = {
    {"perturb", a_perturb}, {"batched", a_batched}, {"name", inst_name}, {"close", inst_gc}, {NULL, NULL}};

static const luaL_Reg attack_meta[] = {{"__gc", inst_gc}, {"__tostring", inst_tostring}, {NULL, NULL}};

static const luaL_Reg quantizer_methods[] = {
    {"fake", q_fake}, {"backward", q_backward}, {"name", inst_name}, {"close", inst_gc}, {NULL, NULL}};

static const luaL_Reg quantizer_meta[] = {{"__gc", inst_gc}, {"__tostring", inst_tostring}, {NULL, NULL}};

static const luaL_Reg plugin_funcs[] = {{"plugins", l_plugins},
                                        {"load_plugin", l_load_plugin},
                                        {"quantizer", l_quantizer},
                                        {"attack", l_attack},
                                        {"schedule", l_schedule},
                                        {NULL, NULL}};

void qr_lua_plugin_open(lua_State *L, int mod) {
    qr_lua_newmeta(L, QUANTIZER_MT, quantizer_methods, quantizer_meta);
    lua_pop(L, 1);
    qr_lua_newmeta(L, ATTACK_MT, attack_methods, attack_meta);
    lua_pop(L, 1);
    qr_lua_newmeta(L, SCHEDULE_MT, schedule_methods, schedule_meta);
    lua_pop(L, 1);
    lua_pushvalue(L, mod);
    luaL_setfuncs(L, plugin_funcs, 0);
    lua_pop(L, 1);
}
