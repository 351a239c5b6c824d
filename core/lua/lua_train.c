/* lua_train.c - the trainer binding of the `qr` module (core/trainer.h):
 *
 *   local r = qr.train{
 *     model = m,                 -- a qr.Model with a LoRA bank (model:lora{})
 *     configs = cfgs,            -- precision.lua configurations with adapters
 *                                --   assigned: {name=, layers={{name=, w=, a=, adapter=}, ...}}
 *     data = seqs,               -- array of {ids = {...}, targets = {...}} (sp_data.lua)
 *     steps = 1000 (default), batch = 4, accum = 1, seq = 384,
 *     lr = 2e-4, min_lr = 0, warmup = 0, clip = 1, weight_decay = 0,
 *     beta1 = 0.9, beta2 = 0.999, eps = 1e-8, seed = 1,
 *     bucket = 0,                -- W > 0: batches of similar length (trainer.h)
 *     schedule = "static", schedule_opts = {}, loss = "ce", loss_opts = {},
 *     teacher = "none" | "fp" (distillation teacher logits for the loss),
 *     run_dir = "runs/sp", checkpoint_every = 10,
 *     log_every = 10,            -- plain progress lines when stderr is not a terminal
 *     progress = true,           -- false: silent; a function(p) gets each step's table
 *   }
 *   -- r = {steps=, final_loss = {[config] = loss}, seconds=, tokens=, resumed_from=,
 *   --      adapters = "<run_dir>/adapters.safetensors"}
 *
 * With a run_dir it resumes from <run_dir>/checkpoint when there is one and
 * writes <run_dir>/adapters.safetensors at the end. Bad options raise an
 * error; a refused checkpoint or a NaN loss raise the trainer's message. */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"
#include "model/model.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    lua_State *L;
    int fn;        /* stack index of a Lua progress function, or 0 */
    int print;     /* print progress lines */
    int tty;       /* stderr is a terminal: one \r line */
    int log_every; /* plain lines every N steps otherwise */
    char err[512]; /* an error raised by the Lua function */
} progress_ud;

static void fmt_time(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long x = (long)(s + 0.5);
    if (x >= 3600)
        snprintf(b, n, "%ldh%02ldm", x / 3600, x / 60 % 60);
    else if (x >= 60)
        snprintf(b, n, "%ldm%02lds", x / 60, x % 60);
    else
        snprintf(b, n, "%lds", x);
}

static int progress_cb(void *ud, const qr_train_progress *p) {
    progress_ud *u = ud;
    if (u->print && (u->tty || p->step % u->log_every == 0 || p->step == p->total)) {
        char line[1024], eta[32];
        int k = snprintf(line, sizeof line, "train step %d/%d", p->step, p->total);
        for (int c = 0; c < p->n_configs && k < (int)sizeof line - 64; c++)
            if (p->ran[c]) k += snprintf(line + k, sizeof line - k, "  %s %.4f", p->config_names[c], (double)p->loss[c]);
        fmt_time(eta, sizeof eta, p->eta_seconds);
        snprintf(line + k, sizeof line - k, "  |g| %.3g  lr %.3g  %.0f tok/s  eta %s", (double)p->grad_norm,
                 (double)p->lr, p->tokens_per_s, eta);
        if (u->tty)
            fprintf(stderr, "\r%s\033[K%s", line, p->step == p->total ? "\n" : "");
        else
            fprintf(stderr, "%s\n", line);
        fflush(stderr);
    }
    if (u->fn) {
        lua_State *L = u->L;
        lua_pushvalue(L, u->fn);
        lua_createtable(L, 0, 8);
        lua_pushinteger(L, p->step);
        lua_setfield(L, -2, "step");
        lua_pushinteger(L, p->total);
        lua_setfield(L, -2, "total");
        lua_createtable(L, 0, p->n_configs);
        for (int c = 0; c < p->n_configs; c++)
            if (p->ran[c]) {
                lua_pushnumber(L, p->loss[c]);
                lua_setfield(L, -2, p->config_names[c]);
            }
        lua_setfield(L, -2, "loss");
        lua_pushnumber(L, p->lr);
        lua_setfield(L, -2, "lr");
        lua_pushnumber(L, p->grad_norm);
        lua_setfield(L, -2, "grad_norm");
        lua_pushinteger(L, p->tokens);
        lua_setfield(L, -2, "tokens");
        lua_pushnumber(L, p->step_seconds);
        lua_setfield(L, -2, "seconds");
        lua_pushnumber(L, p->eta_seconds);
        lua_setfield(L, -2, "eta");
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            snprintf(u->err, sizeof u->err, "train: progress function: %s", lua_tostring(L, -1));
            lua_pop(L, 1);
            return 1;
        }
        int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1); /* returning false stops */
        lua_pop(L, 1);
        return stop;
    }
    return 0;
}

static int l_train(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L); /* 2: keeps option strings alive */
    const int keep = 2;
    lua_getfield(L, 1, "model");
    if (lua_isnil(L, -1)) return luaL_error(L, "train: model is required");
    qr_model *m = qr_lua_checkmodel(L, lua_gettop(L)); /* stays on the stack: 3 */
    const int nl = qr_model_n_linears(m);

    qr_train_opts o = qr_train_defaults();
    o.steps = qr_lua_fieldint(L, 1, "steps", o.steps, "train");
    o.batch = qr_lua_fieldint(L, 1, "batch", o.batch, "train");
    o.accum = qr_lua_fieldint(L, 1, "accum", o.accum, "train");
    o.seq = qr_lua_fieldint(L, 1, "seq", o.seq, "train");
    o.lr = (float)qr_lua_fieldnum(L, 1, "lr", o.lr, "train");
    o.min_lr = (float)qr_lua_fieldnum(L, 1, "min_lr", o.min_lr, "train");
    o.warmup = qr_lua_fieldint(L, 1, "warmup", o.warmup, "train");
    o.clip = (float)qr_lua_fieldnum(L, 1, "clip", o.clip, "train");
    o.weight_decay = (float)qr_lua_fieldnum(L, 1, "weight_decay", o.weight_decay, "train");
    o.beta1 = (float)qr_lua_fieldnum(L, 1, "beta1", o.beta1, "train");
    o.beta2 = (float)qr_lua_fieldnum(L, 1, "beta2", o.beta2, "train");
    o.eps = (float)qr_lua_fieldnum(L, 1, "eps", o.eps, "train");
    o.seed = (uint64_t)qr_lua_fieldint(L, 1, "seed", 1, "train");
    o.checkpoint_every = qr_lua_fieldint(L, 1, "checkpoint_every", 0, "train");
    o.bucket = qr_lua_fieldint(L, 1, "bucket", 0, "train");
    int log_every = qr_lua_fieldint(L, 1, "log_every", 10, "train");
    if (log_every < 1) return luaL_error(L, "train: log_every = %d: expected >= 1", log_every);
    lua_getfield(L, 1, "schedule");
    if (!lua_isnil(L, -1)) o.schedule = luaL_checkstring(L, -1);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    lua_getfield(L, 1, "loss");
    if (!lua_isnil(L, -1)) o.loss = luaL_checkstring(L, -1);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    lua_getfield(L, 1, "teacher");
    if (!lua_isnil(L, -1)) o.teacher = luaL_checkstring(L, -1);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    lua_getfield(L, 1, "run_dir");
    if (!lua_isnil(L, -1)) o.run_dir = luaL_checkstring(L, -1);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);

    /* configurations: names and layers, checked against the model */
    lua_getfield(L, 1, "configs");
    if (!lua_istable(L, -1)) return luaL_error(L, "train: configs must be an array of configurations");
    int cfgs_i = lua_gettop(L);
    int nc = (int)luaL_len(L, cfgs_i);
    if (nc < 1 || nc > QR_TRAIN_MAX_CONFIGS)
        return luaL_error(L, "train: %d configurations: expected 1..%d", nc, QR_TRAIN_MAX_CONFIGS);
    qr_layer_prec *prec = lua_newuserdatauv(L, (size_t)nc * nl * sizeof *prec, 0); /* freed by the GC */
    qr_train_config cfgs[QR_TRAIN_MAX_CONFIGS];
    for (int c = 0; c < nc; c++) {
        lua_rawgeti(L, cfgs_i, c + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "train: configs[%d] is not a table", c + 1);
        lua_getfield(L, -1, "name");
        if (!lua_isstring(L, -1)) return luaL_error(L, "train: configs[%d] has no name", c + 1);
        cfgs[c].name = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        lua_getfield(L, -1, "layers");
        if (!lua_istable(L, -1) || (int)luaL_len(L, -1) != nl)
            return luaL_error(L, "train: config '%s': layers must list the model's %d linear layers", cfgs[c].name, nl);
        for (int i = 0; i < nl; i++) {
            lua_rawgeti(L, -1, i + 1);
            if (!lua_istable(L, -1)) return luaL_error(L, "train: config '%s': layers[%d] is not a table", cfgs[c].name, i + 1);
            lua_getfield(L, -1, "name");
            const char *ln = lua_tostring(L, -1);
            if (ln && strcmp(ln, qr_model_linear(m, i)->name) != 0)
                return luaL_error(L, "train: config '%s': layers[%d] is '%s', the model's layer %d is '%s'",
                                  cfgs[c].name, i + 1, ln, i + 1, qr_model_linear(m, i)->name);
            lua_pop(L, 1);
            qr_layer_prec *p = &prec[(size_t)c * nl + i];
            p->wbits = qr_lua_fieldint(L, -1, "w", 32, "train");
            p->abits = qr_lua_fieldint(L, -1, "a", 32, "train");
            p->adapter = qr_lua_fieldint(L, -1, "adapter", -1, "train");
            p->wgroup = qr_lua_fieldint(L, -1, "g", 0, "train");
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        cfgs[c].layers = prec + (size_t)c * nl;
    }

    /* data: flatten {ids=, targets=} sequences */
    lua_getfield(L, 1, "data");
    if (!lua_istable(L, -1)) return luaL_error(L, "train: data must be an array of {ids=, targets=} sequences");
    int data_i = lua_gettop(L);
    int nd = (int)luaL_len(L, data_i);
    if (nd < 1) return luaL_error(L, "train: data is empty");
    int64_t total = 0;
    for (int i = 1; i <= nd; i++) {
        lua_rawgeti(L, data_i, i);
        if (!lua_istable(L, -1)) return luaL_error(L, "train: data[%d] is not a table", i);
        lua_getfield(L, -1, "ids");
        if (!lua_istable(L, -1)) return luaL_error(L, "train: data[%d].ids is not an array", i);
        int64_t len = (int64_t)luaL_len(L, -1);
        lua_getfield(L, -2, "targets");
        if (!lua_istable(L, -1) || (int64_t)luaL_len(L, -1) != len)
            return luaL_error(L, "train: data[%d].targets must be an array as long as ids (%d)", i, (int)len);
        lua_pop(L, 3);
        total += len;
    }
    int32_t *ids = lua_newuserdatauv(L, (size_t)(total + 1) * sizeof(int32_t), 0);
    int32_t *tg = lua_newuserdatauv(L, (size_t)(total + 1) * sizeof(int32_t), 0);
    int64_t *off = lua_newuserdatauv(L, (size_t)(nd + 1) * sizeof(int64_t), 0);
    int64_t k = 0;
    for (int i = 1; i <= nd; i++) {
        off[i - 1] = k;
        lua_rawgeti(L, data_i, i);
        lua_getfield(L, -1, "ids");
        lua_getfield(L, -2, "targets");
        int64_t len = (int64_t)luaL_len(L, -1);
        for (int64_t j = 1; j <= len; j++) {
            int ok1, ok2;
            lua_rawgeti(L, -2, j);
            lua_rawgeti(L, -2, j);
            lua_Integer a = lua_tointegerx(L, -2, &ok1), b = lua_tointegerx(L, -1, &ok2);
            if (!ok1 || !ok2 || a < 0 || a > INT32_MAX || b < -1 || b > INT32_MAX)
                return luaL_error(L, "train: data[%d] position %d: ids and targets must be token ids (targets -1 = "
                                     "not scored)",
                                  i, (int)j);
            ids[k] = (int32_t)a;
            tg[k] = (int32_t)b;
            k++;
            lua_pop(L, 2);
        }
        lua_pop(L, 3);
    }
    off[nd] = k;
    qr_train_data data = {ids, tg, off, nd};

    const char **skv, **lkv;
    o.schedule_nkv = qr_lua_fieldkv(L, 1, "schedule_opts", keep, &skv, "train");
    o.schedule_kv = skv;
    o.loss_nkv = qr_lua_fieldkv(L, 1, "loss_opts", keep, &lkv, "train");
    o.loss_kv = lkv;

    progress_ud pu = {.L = L, .print = 1, .tty = isatty(2), .log_every = log_every};
    lua_getfield(L, 1, "progress");
    if (lua_isfunction(L, -1))
        pu.fn = lua_gettop(L);
    else if (!lua_isnil(L, -1))
        pu.print = lua_toboolean(L, -1);
    o.progress = progress_cb;
    o.ud = &pu;

    qr_trainer *t = qr_trainer_new(m, cfgs, nc, &data, &o);
    if (!t) return qr_lua_raise(L);
    int from = -1;
    int rc = qr_trainer_resume(t, &from);
    if (rc == QR_OK && pu.print && from >= 0)
        fprintf(stderr, "train: resuming from %s/checkpoint at step %d of %d\n", o.run_dir, from, o.steps);
    if (rc == QR_OK) rc = qr_trainer_run(t);
    char adapters[4096] = "";
    if (rc == QR_OK && o.run_dir) {
        snprintf(adapters, sizeof adapters, "%s/adapters.safetensors", o.run_dir);
        rc = qr_model_lora_save(m, adapters);
    }
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", pu.err[0] ? pu.err : qr_err_msg());
        qr_trainer_free(t);
        return luaL_error(L, "%s", msg);
    }
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, qr_trainer_step_count(t));
    lua_setfield(L, -2, "steps");
    lua_createtable(L, 0, nc);
    for (int c = 0; c < nc; c++) {
        float l = qr_trainer_last_loss(t, c);
        if (isfinite(l)) {
            lua_pushnumber(L, l);
            lua_setfield(L, -2, cfgs[c].name);
        }
    }
    lua_setfield(L, -2, "final_loss");
    lua_pushnumber(L, qr_trainer_seconds(t));
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, qr_trainer_tokens(t));
    lua_setfield(L, -2, "tokens");
    lua_pushinteger(L, from);
    lua_setfield(L, -2, "resumed_from");
    if (adapters[0]) {
        lua_pushstring(L, adapters);
        lua_setfield(L, -2, "adapters");
    }
    qr_trainer_free(t);
    return 1;
}

void qr_lua_train_open(lua_State *L, int mod) {
    lua_pushcfunction(L, l_train);
    lua_setfield(L, mod, "train");
}
