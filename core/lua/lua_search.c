/* lua_search.c - the configuration-search bindings of the `qr` module
 * (docs/SEARCH.md):
 *
 *   qr.ilp{groups = {{{cost =, loss = [, cost2 =]}, ...}, ...}, budget = [, budget2 =]}
 *     -> {choice = {j1, j2, ...} (1-based), loss =, cost = [, cost2 =], status = "optimal",
 *         min_cost = [, min_cost2 =], solves =, seconds =}
 *     (core/search/ilp.h; bad input and an unreachable budget raise)
 *   model:proxy_ref(seqs [, {batch = 8, topk = 0, current = false}]) -> qr.ProxyRef
 *   model:proxy(seqs [, {ref = ref, batch = 8, cache = c}])
 *     -> {nll =, kl =, nll_tok =, kl_tok =, n =, tokens =, per = {...}, per_kl = {...}, seconds =
 *         [, skipped_blocks =, blocks = (with a cache)]}
 *     (core/train/proxy.h; seqs as sp_data.lua builds them: {ids = {...}, targets = {...}})
 *   ref:info() -> {n =, rows =, topk =, vocab =, bytes =, seconds =}
 *   model:proxy_cache(seqs [, {batch = 8, max_mb = 2048}]) -> qr.ProxyCache: the input of
 *     every block under the current configuration, for model:proxy{cache =} of
 *     configurations that differ from it in a few blocks
 *   cache:bytes(), cache:info() -> {n =, batch =, bytes =, seconds =}, cache:close() (frees it now)
 *
 * The two model methods are added to qr.Model's method table here, so
 * lua_model.c stays the model's own bindings. */
#include "qr_lua.h"

#include "model/model.h"
#include "search/ilp.h"
#include "train/proxy.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROXYREF_T "qr.ProxyRef"
#define PREFIX_T "qr.ProxyPrefix"
#define CACHE_T "qr.ProxyCache"

/* Refuse keys of the options table at t that are not in `known` (NULL
 * terminated; `list` names them for the message). */
static void check_keys(lua_State *L, int t, const char *const *known, const char *list, const char *what) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (const char *const *k = known; *k; k++) ok |= strcmp(*k, lua_tostring(L, -2)) == 0;
        if (!ok) {
            lua_pop(L, 1);
            luaL_error(L, "%s: unknown option '%s' (known: %s)", what, luaL_tolstring(L, -1, NULL), list);
        }
        lua_pop(L, 1);
    }
}

/* ---- qr.ilp ---- */

/* The number t[k] of the option table at t, or NAN when absent; anything
 * else but a number raises naming the group and option (1-based). */
static double option_num(lua_State *L, int t, const char *k, int g, int o, int required) {
    int ty = lua_getfield(L, t, k);
    double v = NAN;
    if (ty == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (ty != LUA_TNIL || required)
        luaL_error(L, "ilp: group %d, option %d: %s %s: expected a number", g, o, k,
                   ty == LUA_TNIL ? "is missing" : luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static int l_ilp(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const known[] = {"groups", "budget", "budget2", NULL};
    check_keys(L, 1, known, "groups, budget, budget2", "ilp");
    if (lua_getfield(L, 1, "groups") != LUA_TTABLE) return luaL_error(L, "ilp: groups must be an array of groups");
    const int gi = 2;
    int ng = (int)luaL_len(L, gi);
    if (ng < 1) return luaL_error(L, "ilp: groups is empty: expected at least one group");
    if (lua_getfield(L, 1, "budget") != LUA_TNUMBER) return luaL_error(L, "ilp: budget must be a number");
    double budget = lua_tonumber(L, -1);
    int has_b2 = lua_getfield(L, 1, "budget2") != LUA_TNIL;
    if (has_b2 && !lua_isnumber(L, -1)) return luaL_error(L, "ilp: budget2 must be a number");
    double budget2 = has_b2 ? lua_tonumber(L, -1) : INFINITY;
    lua_pop(L, 2);
    if (isnan(budget)) return luaL_error(L, "ilp: budget is NaN");
    if (isnan(budget2)) return luaL_error(L, "ilp: budget2 is NaN");

    /* sizes first, then the arrays (userdata: an error leaks nothing) */
    int *nopt = lua_newuserdatauv(L, (size_t)ng * sizeof *nopt, 0);
    int64_t total = 0;
    for (int g = 0; g < ng; g++) {
        if (lua_rawgeti(L, gi, g + 1) != LUA_TTABLE) return luaL_error(L, "ilp: group %d is not an array of options", g + 1);
        nopt[g] = (int)luaL_len(L, -1);
        if (nopt[g] < 1) return luaL_error(L, "ilp: group %d has no options", g + 1);
        total += nopt[g];
        lua_pop(L, 1);
    }
    double *cost = lua_newuserdatauv(L, (size_t)total * 3 * sizeof *cost, 0), *cost2 = cost + total,
           *loss = cost2 + total;
    int64_t k = 0;
    int n_c2 = 0, first_c2[2] = {0, 0}, first_no_c2[2] = {0, 0};
    for (int g = 0; g < ng; g++) {
        lua_rawgeti(L, gi, g + 1);
        for (int o = 0; o < nopt[g]; o++, k++) {
            if (lua_rawgeti(L, -1, o + 1) != LUA_TTABLE)
                return luaL_error(L, "ilp: group %d, option %d is not a table {cost =, loss = [, cost2 =]}", g + 1,
                                  o + 1);
            int t = lua_gettop(L);
            cost[k] = option_num(L, t, "cost", g + 1, o + 1, 1);
            loss[k] = option_num(L, t, "loss", g + 1, o + 1, 1);
            cost2[k] = option_num(L, t, "cost2", g + 1, o + 1, 0);
            if (!isfinite(cost[k]) || cost[k] < 0)
                return luaL_error(L, "ilp: group %d, option %d: cost %f: expected a finite number >= 0", g + 1, o + 1,
                                  cost[k]);
            if (!isfinite(loss[k]))
                return luaL_error(L, "ilp: group %d, option %d: loss %f: expected a finite number", g + 1, o + 1,
                                  loss[k]);
            if (!isnan(cost2[k])) {
                if (!isfinite(cost2[k]) || cost2[k] < 0)
                    return luaL_error(L, "ilp: group %d, option %d: cost2 %f: expected a finite number >= 0", g + 1,
                                      o + 1, cost2[k]);
                if (!n_c2++) first_c2[0] = g + 1, first_c2[1] = o + 1;
            } else if (!first_no_c2[0]) {
                first_no_c2[0] = g + 1, first_no_c2[1] = o + 1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (has_b2 && n_c2 < total)
        return luaL_error(L, "ilp: budget2 is given but group %d, option %d has no cost2", first_no_c2[0],
                          first_no_c2[1]);
    if (n_c2 && n_c2 < total)
        return luaL_error(L, "ilp: cost2 is given on group %d, option %d but not on group %d, option %d", first_c2[0],
                          first_c2[1], first_no_c2[0], first_no_c2[1]);

    int *choice = lua_newuserdatauv(L, (size_t)ng * sizeof *choice, 0);
    qr_ilp_problem p = {.n_groups = ng, .n_options = nopt, .cost = cost, .cost2 = n_c2 ? cost2 : NULL,
                        .loss = loss, .budget = budget, .budget2 = budget2};
    qr_ilp_result r;
    if (qr_ilp_solve(&p, choice, &r)) return qr_lua_raise(L);
    lua_createtable(L, 0, 9);
    lua_createtable(L, ng, 0);
    for (int g = 0; g < ng; g++) {
        lua_pushinteger(L, choice[g] + 1);
        lua_rawseti(L, -2, g + 1);
    }
    lua_setfield(L, -2, "choice");
    qr_lua_setnum(L, "loss", r.loss);
    qr_lua_setnum(L, "cost", r.cost);
    qr_lua_setnum(L, "min_cost", r.min_cost);
    if (n_c2) {
        qr_lua_setnum(L, "cost2", r.cost2);
        qr_lua_setnum(L, "min_cost2", r.min_cost2);
    }
    qr_lua_setstr(L, "status", "optimal");
    qr_lua_setint(L, "solves", r.solves);
    qr_lua_setnum(L, "seconds", r.seconds);
    return 1;
}

/* ---- sequences ---- */

/* seqs (the table at idx) flattened into userdata left on the stack:
 * ids, targets, offsets. Shapes and types are checked here, naming
 * seqs[i] (1-based); values against the model in qr_proxy_check. */
static qr_train_data push_seqs(lua_State *L, int idx, const char *what) {
    if (!lua_istable(L, idx)) luaL_error(L, "%s: seqs must be an array of {ids =, targets =} sequences", what);
    int n = (int)luaL_len(L, idx);
    int64_t total = 0;
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TTABLE) luaL_error(L, "%s: seqs[%d] is not a table", what, i);
        if (lua_getfield(L, -1, "ids") != LUA_TTABLE) luaL_error(L, "%s: seqs[%d].ids is not an array", what, i);
        int64_t len = (int64_t)luaL_len(L, -1);
        if (lua_getfield(L, -2, "targets") != LUA_TTABLE || (int64_t)luaL_len(L, -1) != len)
            luaL_error(L, "%s: seqs[%d].targets must be an array as long as ids (%d)", what, i, (int)len);
        lua_pop(L, 3);
        total += len;
    }
    int32_t *ids = lua_newuserdatauv(L, (size_t)(total + 1) * sizeof *ids, 0);
    int32_t *tg = lua_newuserdatauv(L, (size_t)(total + 1) * sizeof *tg, 0);
    int64_t *off = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *off, 0);
    int64_t k = 0;
    for (int i = 1; i <= n; i++) {
        off[i - 1] = k;
        lua_rawgeti(L, idx, i);
        lua_getfield(L, -1, "ids");
        lua_getfield(L, -2, "targets");
        int64_t len = (int64_t)luaL_len(L, -1);
        for (int64_t j = 1; j <= len; j++, k++) {
            int ok1, ok2;
            lua_rawgeti(L, -2, j);
            lua_rawgeti(L, -2, j);
            lua_Integer a = lua_tointegerx(L, -2, &ok1), b = lua_tointegerx(L, -1, &ok2);
            if (!ok1 || !ok2 || a < INT32_MIN || a > INT32_MAX || b < INT32_MIN || b > INT32_MAX)
                luaL_error(L, "%s: seqs[%d] position %d: ids and targets must be integers (targets -1 = not scored)",
                           what, i, (int)j);
            ids[k] = (int32_t)a;
            tg[k] = (int32_t)b;
            lua_pop(L, 2);
        }
        lua_pop(L, 3);
    }
    off[n] = k;
    return (qr_train_data){ids, tg, off, n};
}

/* ---- qr.ProxyRef ---- */

typedef struct {
    qr_proxy_ref *r;
} lref;

static int ref_gc(lua_State *L) {
    lref *u = luaL_checkudata(L, 1, PROXYREF_T);
    qr_proxy_ref_free(u->r);
    u->r = NULL;
    return 0;
}

static int ref_tostring(lua_State *L) {
    lref *u = luaL_checkudata(L, 1, PROXYREF_T);
    if (!u->r) {
        lua_pushstring(L, PROXYREF_T " (closed)");
        return 1;
    }
    char kind[64];
    if (qr_proxy_ref_topk(u->r))
        snprintf(kind, sizeof kind, "top-%d + rest", qr_proxy_ref_topk(u->r));
    else
        snprintf(kind, sizeof kind, "full distributions");
    lua_pushfstring(L, PROXYREF_T ": %d sequences, %I answer positions, %s, %f MB", qr_proxy_ref_n(u->r),
                    (lua_Integer)qr_proxy_ref_rows(u->r), kind, (double)qr_proxy_ref_bytes(u->r) / 1e6);
    return 1;
}

static int ref_info(lua_State *L) {
    lref *u = qr_lua_checkopen(L, 1, PROXYREF_T);
    lua_createtable(L, 0, 5);
    qr_lua_setint(L, "n", qr_proxy_ref_n(u->r));
    qr_lua_setint(L, "rows", qr_proxy_ref_rows(u->r));
    qr_lua_setint(L, "topk", qr_proxy_ref_topk(u->r));
    qr_lua_setint(L, "bytes", (lua_Integer)qr_proxy_ref_bytes(u->r));
    qr_lua_setnum(L, "seconds", qr_proxy_ref_seconds(u->r));
    return 1;
}

/* model:proxy_ref(seqs [, {batch =, topk =, current =}]) */
static int model_proxy_ref(lua_State *L) {
    qr_model *m = qr_lua_checkmodel(L, 1);
    lua_settop(L, 3);
    int batch = QR_PROXY_BATCH, topk = 0, current = 0;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        static const char *const known[] = {"batch", "topk", "current", NULL};
        check_keys(L, 3, known, "batch, topk, current", "proxy_ref");
        batch = qr_lua_fieldint(L, 3, "batch", batch, "proxy_ref");
        topk = qr_lua_fieldint(L, 3, "topk", topk, "proxy_ref");
        lua_getfield(L, 3, "current");
        current = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lref *u = qr_lua_newudata(L, sizeof *u, PROXYREF_T, 0); /* 4: empty first, then acquired */
    qr_train_data d = push_seqs(L, 2, "proxy_ref");
    u->r = qr_proxy_ref_new(m, &d, batch, topk, current);
    if (!u->r) return qr_lua_raise(L);
    lua_settop(L, 4);
    return 1;
}

/* a qr.ProxyPrefix: the prefix and the model it belongs to (user value 1) */
typedef struct {
    qr_proxy_prefix *p;
} lprefix;

static int prefix_gc(lua_State *L) {
    lprefix *u = luaL_checkudata(L, 1, PREFIX_T);
    qr_proxy_prefix_free(u->p);
    u->p = NULL;
    return 0;
}

static int prefix_info(lua_State *L) {
    lprefix *u = qr_lua_checkopen(L, 1, PREFIX_T);
    int64_t hits, misses;
    int kept;
    qr_proxy_prefix_stats(u->p, &hits, &misses, &kept);
    lua_createtable(L, 0, 4);
    qr_lua_setint(L, "tokens", qr_proxy_prefix_len(u->p));
    qr_lua_setint(L, "hits", hits);
    qr_lua_setint(L, "misses", misses);
    qr_lua_setint(L, "kept", kept);
    return 1;
}

/* model:proxy_prefix(ids [, {slots = 8}]) -> a qr.ProxyPrefix for
 * model:proxy(seqs, {prefix = it}): the prompt prefix every sequence will
 * start with, its keys and values kept per precision configuration */
static int model_proxy_prefix(lua_State *L) {
    qr_model *m = qr_lua_checkmodel(L, 1);
    lua_settop(L, 3);
    int slots = 8;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        static const char *const known[] = {"slots", NULL};
        check_keys(L, 3, known, "slots", "proxy_prefix");
        slots = qr_lua_fieldint(L, 3, "slots", slots, "proxy_prefix");
    }
    lprefix *u = qr_lua_newudata(L, sizeof *u, PREFIX_T, 1); /* 4 */
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, 4, 1); /* the model lives as long as its prefix */
    int n = 0;
    int32_t *ids = qr_lua_toint32array(L, 2, &n);
    u->p = ids ? qr_proxy_prefix_new(m, ids, n, slots) : NULL;
    free(ids);
    if (!u->p) return qr_lua_raise(L);
    lua_settop(L, 4);
    return 1;
}

/* a qr.ProxyCache: the cache and the model it belongs to (user value 1) */
typedef struct {
    qr_proxy_cache *c;
} lcache;

static int cache_gc(lua_State *L) {
    lcache *u = luaL_checkudata(L, 1, CACHE_T);
    qr_proxy_cache_free(u->c);
    u->c = NULL;
    return 0;
}

static int cache_tostring(lua_State *L) {
    lcache *u = luaL_checkudata(L, 1, CACHE_T);
    if (!u->c) {
        lua_pushstring(L, CACHE_T " (closed)");
        return 1;
    }
    lua_pushfstring(L, CACHE_T ": %d sequences, batch %d, %f MB", qr_proxy_cache_n(u->c), qr_proxy_cache_batch(u->c),
                    (double)qr_proxy_cache_bytes(u->c) / 1e6);
    return 1;
}

static int cache_bytes(lua_State *L) {
    lcache *u = qr_lua_checkopen(L, 1, CACHE_T);
    lua_pushinteger(L, (lua_Integer)qr_proxy_cache_bytes(u->c));
    return 1;
}

static int cache_info(lua_State *L) {
    lcache *u = qr_lua_checkopen(L, 1, CACHE_T);
    lua_createtable(L, 0, 4);
    qr_lua_setint(L, "n", qr_proxy_cache_n(u->c));
    qr_lua_setint(L, "batch", qr_proxy_cache_batch(u->c));
    qr_lua_setint(L, "bytes", (lua_Integer)qr_proxy_cache_bytes(u->c));
    qr_lua_setnum(L, "seconds", qr_proxy_cache_seconds(u->c));
    return 1;
}

/* model:proxy_cache(seqs [, {batch = 8, max_mb = QR_PROXY_CACHE_MB}]) */
static int model_proxy_cache(lua_State *L) {
    qr_model *m = qr_lua_checkmodel(L, 1);
    lua_settop(L, 3);
    int batch = QR_PROXY_BATCH;
    double max_mb = QR_PROXY_CACHE_MB;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        static const char *const known[] = {"batch", "max_mb", NULL};
        check_keys(L, 3, known, "batch, max_mb", "proxy_cache");
        batch = qr_lua_fieldint(L, 3, "batch", batch, "proxy_cache");
        if (lua_getfield(L, 3, "max_mb") != LUA_TNIL) {
            int isnum;
            max_mb = lua_tonumberx(L, -1, &isnum);
            if (!isnum || !(max_mb > 0) || !isfinite(max_mb))
                return luaL_error(L, "proxy_cache: max_mb: expected a positive number of megabytes (10^6 bytes)");
        }
        lua_pop(L, 1);
    }
    lcache *u = qr_lua_newudata(L, sizeof *u, CACHE_T, 1); /* 4: empty first, then acquired */
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, 4, 1); /* the model lives as long as its cache */
    qr_train_data d = push_seqs(L, 2, "proxy_cache");
    u->c = qr_proxy_cache_new(m, &d, batch, max_mb * 1e6 >= (double)SIZE_MAX ? SIZE_MAX : (size_t)(max_mb * 1e6));
    if (!u->c) return qr_lua_raise(L);
    lua_settop(L, 4);
    return 1;
}

/* model:proxy(seqs [, {ref =, batch =, shared = false, prefix =, cache =}]); shared = true:
 * the sequences' common prefix is run once through the KV cache
 * (qr_proxy_eval_shared; the result's shared_prefix says how long) */
static int model_proxy(lua_State *L) {
    qr_model *m = qr_lua_checkmodel(L, 1);
    lua_settop(L, 3);
    int batch = QR_PROXY_BATCH, shared = 0;
    const qr_proxy_ref *ref = NULL;
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        static const char *const known[] = {"ref", "batch", "shared", "prefix", "cache", NULL};
        check_keys(L, 3, known, "ref, batch, shared, prefix, cache", "proxy");
        batch = qr_lua_fieldint(L, 3, "batch", batch, "proxy");
        lua_getfield(L, 3, "shared");
        shared = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, 3, "ref"); /* 4, kept on the stack while it is used */
        if (!lua_isnil(L, -1)) {
            if (!luaL_testudata(L, -1, PROXYREF_T))
                return luaL_error(L, "proxy: ref must be a %s (model:proxy_ref(seqs)), got a %s", PROXYREF_T,
                                  luaL_typename(L, -1));
            ref = ((lref *)qr_lua_checkopen(L, 4, PROXYREF_T))->r;
        }
    }
    qr_proxy_prefix *pre = NULL;
    if (!lua_isnil(L, 3)) {
        lua_getfield(L, 3, "prefix"); /* kept on the stack while it is used */
        if (!lua_isnil(L, -1)) {
            if (!luaL_testudata(L, -1, PREFIX_T))
                return luaL_error(L, "proxy: prefix must be a %s (model:proxy_prefix(ids)), got a %s", PREFIX_T,
                                  luaL_typename(L, -1));
            pre = ((lprefix *)qr_lua_checkopen(L, lua_gettop(L), PREFIX_T))->p;
            if (ref) return luaL_error(L, "proxy: prefix and ref together are not supported (the prefix path scores NLL only)");
        }
    }
    const qr_proxy_cache *pc = NULL;
    if (!lua_isnil(L, 3)) {
        lua_getfield(L, 3, "cache"); /* kept on the stack while it is used */
        if (!lua_isnil(L, -1)) {
            if (!luaL_testudata(L, -1, CACHE_T))
                return luaL_error(L, "proxy: cache must be a %s (model:proxy_cache(seqs)), got a %s", CACHE_T,
                                  luaL_typename(L, -1));
            pc = ((lcache *)qr_lua_checkopen(L, lua_gettop(L), CACHE_T))->c;
            if (pre || shared)
                return luaL_error(L, "proxy: cache with %s is not supported (each runs its own forward)",
                                  pre ? "prefix" : "shared");
        }
    }
    qr_train_data d = push_seqs(L, 2, "proxy");
    double *per = lua_newuserdatauv(L, (size_t)(d.n + 1) * 2 * sizeof *per, 0), *per_kl = per + d.n + 1;
    qr_proxy_result r;
    if (pre ? qr_proxy_eval_prefix(m, &d, pre, batch, &r, per)
        : pc ? qr_proxy_eval_cached(m, &d, ref, batch, pc, &r, per, per_kl)
             : qr_proxy_eval_shared(m, &d, ref, batch, shared, &r, per, per_kl))
        return qr_lua_raise(L);
    lua_createtable(L, 0, 12);
    if (pc) {
        qr_lua_setint(L, "skipped_blocks", r.skipped_blocks);
        qr_lua_setint(L, "blocks", qr_model_cfg(m)->n_layer);
    }
    qr_lua_setint(L, "shared_prefix", r.shared_prefix);
    qr_lua_setnum(L, "nll", r.nll);
    qr_lua_setnum(L, "nll_tok", r.nll_tok);
    qr_lua_setint(L, "n", r.n);
    qr_lua_setint(L, "tokens", r.tokens);
    qr_lua_setnum(L, "seconds", r.seconds);
    lua_createtable(L, r.n, 0);
    for (int e = 0; e < r.n; e++) {
        lua_pushnumber(L, per[e]);
        lua_rawseti(L, -2, e + 1);
    }
    lua_setfield(L, -2, "per");
    if (ref) {
        qr_lua_setnum(L, "kl", r.kl);
        qr_lua_setnum(L, "kl_tok", r.kl_tok);
        lua_createtable(L, r.n, 0);
        for (int e = 0; e < r.n; e++) {
            lua_pushnumber(L, per_kl[e]);
            lua_rawseti(L, -2, e + 1);
        }
        lua_setfield(L, -2, "per_kl");
    }
    return 1;
}

static const luaL_Reg ref_methods[] = {{"info", ref_info}, {NULL, NULL}};
static const luaL_Reg ref_meta[] = {{"__gc", ref_gc}, {"__tostring", ref_tostring}, {NULL, NULL}};
static const luaL_Reg prefix_methods[] = {{"info", prefix_info}, {NULL, NULL}};
static const luaL_Reg prefix_meta[] = {{"__gc", prefix_gc}, {NULL, NULL}};
static const luaL_Reg cache_methods[] = {{"bytes", cache_bytes}, {"info", cache_info}, {"close", cache_gc},
                                         {NULL, NULL}};
static const luaL_Reg cache_meta[] = {{"__gc", cache_gc}, {"__close", cache_gc}, {"__tostring", cache_tostring},
                                      {NULL, NULL}};
static const luaL_Reg model_methods[] = {{"proxy", model_proxy}, {"proxy_ref", model_proxy_ref},
                                         {"proxy_prefix", model_proxy_prefix}, {"proxy_cache", model_proxy_cache},
                                         {NULL, NULL}};

void qr_lua_search_open(lua_State *L, int mod) {
    qr_lua_newmeta(L, PROXYREF_T, ref_methods, ref_meta);
    lua_pop(L, 1);
    qr_lua_newmeta(L, PREFIX_T, prefix_methods, prefix_meta);
    lua_pop(L, 1);
    qr_lua_newmeta(L, CACHE_T, cache_methods, cache_meta);
    lua_pop(L, 1);
    /* qr.Model's methods (lua_model.c keeps them in its metatable's
     * __methods, behind an __index function) */
    luaL_getmetatable(L, "qr.Model");
    if (lua_getfield(L, -1, "__methods") != LUA_TTABLE) luaL_error(L, "qr.Model has no method table: open lua_model first");
    luaL_setfuncs(L, model_methods, 0);
    lua_pop(L, 2);
    lua_pushcfunction(L, l_ilp);
    lua_setfield(L, mod, "ilp");
}
