/* lua_util.c - the small utilities of the `qr` module: qr.opts (command
 * line options against a spec), qr.now, qr.getenv, qr.isatty, qr.sha256,
 * qr.run_limited and qr.spawn. */
#define _DEFAULT_SOURCE /* wait4 */
#define _POSIX_C_SOURCE 200809L
#include "qr_lua.h"

#include "ops/gemm.h"
#include "qr.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- qr.opts ---- */


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

/* ---- qr.now, qr.getenv, qr.isatty ---- */


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

/* ---- qr.sha256 ---- */

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

/* qr.run_limited(f, max_instructions, max_kb) -> true, value | false, message:
 * call f() on a coroutine of its own under a budget of Lua VM instructions
 * and of memory (KiB the state may hold above what it held at the call),
 * both checked at every instruction by a C count hook (a Lua hook there
 * costs ~50x more; qr.sandbox's configuration files run so). A budget
 * overrun is an error raised at every later instruction too, so code that
 * catches it still stops; it is not reentrant (refused when nested). f's
 * own error comes back as false, message (tostring'd). Only instructions
 * are counted: a single C call (a pattern match, table.move) is not
 * interrupted, which is why qr.sandbox leaves those out. */
static struct {
    long long n, max;
    long long base_kb, max_kb;
    int active, tripped;
    char msg[96];
} limit;

static void limit_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (!limit.tripped) {
        if (++limit.n > limit.max) {
            limit.tripped = 1;
            snprintf(limit.msg, sizeof limit.msg, "ran over %lld Lua instructions", limit.max);
        } else if (lua_gc(L, LUA_GCCOUNT, 0) - limit.base_kb > limit.max_kb) {
            limit.tripped = 1;
            snprintf(limit.msg, sizeof limit.msg, "used over %lld KiB of memory", limit.max_kb);
        }
    }
    if (limit.tripped) luaL_error(L, "%s", limit.msg);
}

static int l_run_limited(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Integer max_ins = luaL_checkinteger(L, 2), max_kb = luaL_checkinteger(L, 3);
    luaL_argcheck(L, max_ins > 0, 2, "expected a positive instruction budget");
    luaL_argcheck(L, max_kb > 0, 3, "expected a positive memory budget (KiB)");
    if (limit.active) return luaL_error(L, "run_limited: already running (it does not nest)");
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    limit.n = 0;
    limit.max = max_ins;
    limit.max_kb = max_kb;
    limit.base_kb = lua_gc(L, LUA_GCCOUNT, 0);
    limit.tripped = 0;
    limit.active = 1;
    lua_sethook(co, limit_hook, LUA_MASKCOUNT, 1);
    int nres = 0, st = lua_resume(co, L, 0, &nres);
    limit.active = 0;
    lua_sethook(co, NULL, 0, 0);
    if (st == LUA_OK) {
        lua_pushboolean(L, 1);
        if (nres > 0) {
            lua_settop(co, lua_gettop(co) - nres + 1); /* the first result */
            lua_xmove(co, L, 1);
        } else {
            lua_pushnil(L);
        }
        return 2;
    }
    lua_pushboolean(L, 0);
    if (st == LUA_YIELD)
        lua_pushliteral(L, "yielded instead of returning");
    else if (limit.tripped)
        lua_pushstring(L, limit.msg);
    else {
        luaL_tolstring(co, -1, NULL);
        lua_xmove(co, L, 1);
    }
    return 2;
}

/* ---- qr.spawn ---- */

/* qr.spawn(cmd) -> {status =, signal =, seconds =, user =, sys =,
 * max_rss_mb =}: cmd run by /bin/sh -c, as os.execute does, with what that
 * one child used: wait4's rusage (Linux: its peak resident set is the
 * largest of the shell's and of every process it waited for, so the recipe
 * that sh runs is counted). status: the exit status, or 128 + the signal
 * that ended it (signal then names it); 127 when sh could not be started.
 * A study records each stage's peak memory and CPU time this way (the
 * RUSAGE_CHILDREN of getrusage would give the largest of all children so
 * far, not this one's). */
static int l_spawn(lua_State *L) {
    const char *cmd = luaL_checkstring(L, 1);
    fflush(NULL); /* the child inherits no half-written buffers */
    double t0 = qr_now();
    pid_t pid = fork();
    if (pid < 0) return luaL_error(L, "qr.spawn: fork: %s", strerror(errno));
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    do w = wait4(pid, &st, 0, &ru);
    while (w < 0 && errno == EINTR);
    if (w < 0) return luaL_error(L, "qr.spawn: wait4: %s", strerror(errno));
    lua_createtable(L, 0, 6);
    if (WIFEXITED(st)) {
        qr_lua_setint(L, "status", WEXITSTATUS(st));
    } else {
        int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        qr_lua_setint(L, "status", 128 + sig);
        qr_lua_setint(L, "signal", sig);
    }
    qr_lua_setnum(L, "seconds", qr_now() - t0);
    qr_lua_setnum(L, "user", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6);
    qr_lua_setnum(L, "sys", (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
    qr_lua_setnum(L, "max_rss_mb", (double)ru.ru_maxrss / 1024.0); /* Linux: kilobytes */
    return 1;
}

/* qr.kernels([mode [, simd]]) -> mode, simd: the matrix products' kernels,
 * "blas" (OpenBLAS) or "portable" (core/ops/gemm.h: one fixed order of
 * operations, the same bits on every machine and thread count), and whether
 * the portable product uses its AVX2 path (false: scalar, the same bits).
 * With arguments, sets them first. */
static int l_kernels(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        const char *m = luaL_checkstring(L, 1);
        if (strcmp(m, "portable") == 0)
            qr_gemm_set_portable(1);
        else if (strcmp(m, "blas") == 0)
            qr_gemm_set_portable(0);
        else
            return luaL_argerror(L, 1, lua_pushfstring(L, "kernels '%s': expected 'blas' or 'portable'", m));
    }
    if (!lua_isnoneornil(L, 2)) qr_gemm_set_simd(lua_toboolean(L, 2));
    lua_pushstring(L, qr_gemm_portable() ? "portable" : "blas");
    lua_pushboolean(L, qr_gemm_simd());
    return 2;
}

static const luaL_Reg util_funcs[] = {
    {"kernels", l_kernels},
    {"opts", l_opts},     {"now", l_now},       {"getenv", l_getenv},         {"isatty", l_isatty},
    {"sha256", l_sha256}, {"spawn", l_spawn},   {"run_limited", l_run_limited}, {NULL, NULL}};

void qr_lua_util_open(lua_State *L, int mod) {
    lua_pushvalue(L, mod);
    luaL_setfuncs(L, util_funcs, 0);
    lua_pop(L, 1);
}
