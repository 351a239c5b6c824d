/* fuzz_config.c - libFuzzer target for precision configuration files
 * (as in recipes/configs/): arbitrary bytes saved as a .lua file and read by
 * P.load (recipes/lib/qr/precision.lua), which runs it in the sandbox of
 * recipes/lib/qr/sandbox.lua, against a fixed tiny Llama (qr.model_new,
 * 30 blocks as SmolLM2 has, so recipes/configs/mixed.lua applies: 210 linear
 * layers).
 *
 * A configuration file is Lua code, so what is fuzzed is not Lua's parser
 * but what qrun lets such a file do and what it does with the value: the
 * sandbox (no io/os/require, instruction and memory budgets, no pattern
 * matching) and the spec checks (patterns, precedence, bit ranges, names).
 * Checked beyond "no crash, no sanitizer report, no timeout":
 *   a rejection is a string naming the file;
 *   an accepted file gives configurations whose every layer has weight and
 *   activation bits in 2..16 or 32, and a name.
 * The Lua state persists across inputs (as a recipe's would); a leak of
 * the string metatable swap would show as a wrong verdict on the next
 * input, which the check after each input catches (("ab"):find("b") = 2).
 * QR_FUZZ_VERBOSE=1 prints each verdict. */
#define _GNU_SOURCE
#include "fuzz_lua.h"

static lua_State *L;
static char path[64];
static int verbose;

static const char setup_lua[] =
    "package.path = ... .. '/recipes/lib/?.lua;' .. package.path\n"
    "local P = require('qr.precision')\n"
    "local model = qr.model_new{arch = 'llama', n_layer = 30, n_embd = 8, n_head = 2, n_kv_head = 1,\n"
    "  n_ff = 16, n_vocab = 40, n_ctx = 16, seed = 1}\n"
    "local n = #model:linears()\n"
    "return function(path)\n"
    "  local ok, r = pcall(P.load, {path}, model)\n"
    "  if not ok then\n"
    "    if type(r) ~= 'string' then return 'a non-string error' end\n"
    "    if not r:find(path, 1, true) then return 'an error not naming the file: ' .. r end\n"
    "    return 'rejected', r\n"
    "  end\n"
    "  if type(r) ~= 'table' or #r == 0 then return 'no configurations' end\n"
    "  for _, c in ipairs(r) do\n"
    "    if type(c.name) ~= 'string' or #c.layers ~= n then return 'a configuration without name or layers' end\n"
    "    for _, l in ipairs(c.layers) do\n"
    "      for _, b in ipairs{l.w, l.a} do\n"
    "        if math.type(b) ~= 'integer' or not ((b >= 2 and b <= 16) or b == 32) then\n"
    "          return 'bits ' .. tostring(b) .. ' accepted'\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if select(1, ('ab'):find('b')) ~= 2 then return 'the string metatable was not restored' end\n"
    "  return 'accepted', #r\n"
    "end\n";

static void setup(void) {
    verbose = getenv("QR_FUZZ_VERBOSE") != NULL;
    L = luaL_newstate();
    CHECK(L);
    luaL_openlibs(L);
    luaL_requiref(L, "qr", luaopen_qr, 1);
    lua_pop(L, 1);
    const char *src = getenv("QR_SOURCE_DIR_OVERRIDE");
    if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=fuzz_config") != LUA_OK ||
        (lua_pushstring(L, src ? src : QR_SOURCE_DIR), lua_pcall(L, 1, 1, 0)) != LUA_OK) {
        fprintf(stderr, "fuzz_config: setup: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_config.check");
    snprintf(path, sizeof path, "/tmp/fuzz_config.%ld.lua", (long)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) setup();
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(data, 1, size, f) == size || size == 0);
    CHECK(fclose(f) == 0);
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_config.check");
    lua_pushstring(L, path);
    int rc = lua_pcall(L, 1, 2, 0);
    const char *verdict = lua_tostring(L, -2);
    if (rc != LUA_OK) {
        fprintf(stderr, "fuzz_config: the check raised: %s\n", lua_tostring(L, -1));
        __builtin_trap();
    }
    int good = verdict && (strcmp(verdict, "rejected") == 0 || strcmp(verdict, "accepted") == 0);
    if (verbose || !good) fprintf(stderr, "fuzz_config: %s %s\n", verdict ? verdict : "?", luaL_tolstring(L, -1, NULL));
    CHECK(good);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    unlink(path);
    return 0;
}
