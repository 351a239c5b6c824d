/* fuzz_report.c - libFuzzer target for the report's artifacts: the JSON
 * and JSONL files of a study run directory (docs/REPORT.md) as
 * recipes/lib/qr/report.lua reads them. A temporary study directory holds
 * the synthetic fixture of tests/fixtures/report/ (every stage present, so
 * every section is reached); each input replaces one of its files (the
 * first byte picks which, the rest is the file), then R.load and R.build
 * make the whole groff source, and the file is put back.
 * Checked beyond "no crash, no sanitizer report, no timeout": R.build never
 * raises (a malformed artifact is reported as such in the document, never
 * an error), and its document renders to groff source. QR_FUZZ_VERBOSE=1 prints each verdict. */
#define _GNU_SOURCE
#include "fuzz_lua.h"

static lua_State *L;
static int verbose;

static const char setup_lua[] =
    "local src = ...\n"
    "package.path = src .. '/recipes/lib/?.lua;' .. package.path\n"
    "local R = require('qr.report')\n"
    "local dir = os.tmpname()\n"
    "os.remove(dir)\n"
    "assert(os.execute(\"cp -r '\" .. src .. \"/tests/fixtures/report' '\" .. dir .. \"'\"))\n"
    "local files = {}\n"
    "for _, f in ipairs(R.FILES) do files[#files + 1] = f.file end\n"
    "local function slurp(p) local h = io.open(p, 'rb') if not h then return nil end local s = h:read('a') h:close() return s end\n"
    "local function put(p, s)\n"
    "  if s == nil then os.remove(p) return end\n"
    "  os.execute(\"mkdir -p '\" .. p:match('^(.*)/') .. \"'\")\n"
    "  local h = assert(io.open(p, 'wb')) h:write(s) h:close()\n"
    "end\n"
    "return function(which, bytes)\n"
    "  local path = dir .. '/' .. files[which % #files + 1]\n"
    "  local saved = slurp(path)\n"
    "  put(path, bytes)\n"
    "  local ok, doc = pcall(function() return R.build(R.load(dir), {generated = 'fuzz', report_rev = 'fuzz'}) end)\n"
    "  put(path, saved)\n"
    "  if not ok then return 'R.build raised on ' .. files[which % #files + 1] .. ': ' .. tostring(doc) end\n"
    "  if type(doc) ~= 'table' or type(doc.ms) ~= 'function' then return 'R.build returned no document' end\n"
    "  local okm, src = pcall(doc.ms, doc, {}, {})\n"
    "  if not okm then return 'doc:ms raised: ' .. tostring(src) end\n"
    "  if type(src) ~= 'string' or #src == 0 then return 'the document has no source' end\n"
    "  return 'ok', files[which % #files + 1]\n"
    "end\n";

static void setup(void) {
    verbose = getenv("QR_FUZZ_VERBOSE") != NULL;
    L = luaL_newstate();
    CHECK(L);
    luaL_openlibs(L);
    luaL_requiref(L, "qr", luaopen_qr, 1);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, setup_lua, sizeof setup_lua - 1, "=fuzz_report") != LUA_OK ||
        (lua_pushstring(L, QR_SOURCE_DIR), lua_pcall(L, 1, 1, 0)) != LUA_OK) {
        fprintf(stderr, "fuzz_report: setup: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_report.check");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) setup();
    if (size < 1) return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_report.check");
    lua_pushinteger(L, data[0]);
    lua_pushlstring(L, (const char *)data + 1, size - 1);
    int rc = lua_pcall(L, 2, 2, 0);
    if (rc != LUA_OK) {
        fprintf(stderr, "fuzz_report: the check raised: %s\n", lua_tostring(L, -1));
        __builtin_trap();
    }
    const char *verdict = lua_tostring(L, -2);
    int good = verdict && strcmp(verdict, "ok") == 0;
    if (verbose || !good) fprintf(stderr, "fuzz_report: %s %s\n", verdict ? verdict : "?", luaL_tolstring(L, -1, NULL));
    CHECK(good);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
