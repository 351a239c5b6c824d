#!/usr/bin/env bash
# test_plugin_example.sh - an out-of-tree plugin end to end: install qrun
# (header + plugins) into a temporary prefix, check that the installed qrun
# (and a copy of the prefix moved elsewhere) finds its own plugins, build
# tests/plugin_example/myquant.c with its Makefile against the installed
# header only, and use it from a recipe through QRUN_PLUGIN_PATH. Also: a
# bad .so on the path is a warning naming it (qr.plugins()'s second value)
# while the good plugins work. Nothing is written into the source tree.
#   usage: bash tests/test_plugin_example.sh /path/to/build/qrun   (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
set -u
QRUN=${1:?usage: test_plugin_example.sh /path/to/qrun}
case $QRUN in /*) ;; *) QRUN=$PWD/$QRUN ;; esac
[ -x "$QRUN" ] || { echo "test_plugin_example.sh: $QRUN is not an executable"; exit 1; }
BUILD=$(dirname "$QRUN")

T=$(mktemp -d "${TMPDIR:-/tmp}/test_plugin_example.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# ---- install ----
if cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
    ok install-1.1
else
    fail install-1.1 "cmake --install $BUILD failed: $(tail -5 "$T/install.log")"
fi
for f in include/qrun/qr_plugin.h lib/qrun/plugins/quantizer/minmax.so lib/qrun/plugins/loss/ce.so; do
    if [ -f "$T/prefix/$f" ]; then ok "install-1.2 $f"; else fail "install-1.2" "$f not installed"; fi
done

# ---- the installed qrun finds its own plugins ----
# <prefix>/bin/qrun looks in <prefix>/lib/qrun/plugins (from /proc/self/exe)
# before the build tree, so every entry must come from the prefix; its Lua
# libraries (qr.X) come from <prefix>/share/qrun/lua/qr. The
# prefix is not the configure-time one, and a copy moved elsewhere must work
# too: neither can be found any other way.
cat >"$T/installed.lua" <<'LUA'
local pre = os.getenv("PREFIX") .. "/lib/qrun/plugins/"
local list, failed = qr.plugins()
local bad = 0
for _, p in ipairs(list) do
  if p.file:sub(1, #pre) ~= pre then print("outside the prefix: " .. p.kind .. "/" .. p.name .. " " .. p.file); bad = bad + 1 end
end
for _, f in ipairs(failed) do print("failed: " .. f.error); bad = bad + 1 end
if #list < 8 then print("only " .. #list .. " entries"); bad = bad + 1 end
local y = qr.quantizer("minmax"):fake({{1, -0.5}}, 2)
if y[1][1] ~= 1 or y[1][2] ~= 0 then print("minmax gave " .. y[1][1] .. ", " .. y[1][2]); bad = bad + 1 end
-- its Lua libraries too (<prefix>/share/qrun/lua/qr, before the source tree's)
local _, lib = require("qr.precision")
local want = os.getenv("PREFIX") .. "/bin/../share/qrun/lua/qr/precision.lua"
if lib ~= want then print("qr.precision from " .. tostring(lib) .. ", want " .. want); bad = bad + 1 end
print(#list .. " entries, all under " .. pre)
os.exit(bad == 0 and 0 or 1)
LUA
cp -R "$T/prefix" "$T/moved"
for p in prefix moved; do
    if [ -x "$T/$p/bin/qrun" ] &&
        (cd / && env -u QRUN_PLUGIN_PATH PREFIX="$T/$p" "$T/$p/bin/qrun" "$T/installed.lua") >"$T/inst.out" 2>&1; then
        ok "installed-1.1 $p"
    else
        fail "installed-1.1 $p" "$T/$p/bin/qrun: $(cat "$T/inst.out")"
    fi
done

# ---- build the example against the installed header ----
before=$(ls -A tests/plugin_example | sort)
if make -C tests/plugin_example PREFIX="$T/prefix" OUT="$T/plug" >"$T/make.log" 2>&1; then
    ok build-1.1
else
    fail build-1.1 "make failed: $(cat "$T/make.log")"
fi
if [ -f "$T/plug/myquant.so" ]; then ok build-1.2; else fail build-1.2 "no $T/plug/myquant.so"; fi
if grep -q "warning:" "$T/make.log"; then fail build-1.3 "warnings: $(grep warning: "$T/make.log")"; else ok build-1.3; fi
after=$(ls -A tests/plugin_example | sort)
if [ "$before" = "$after" ]; then ok build-1.4; else fail build-1.4 "the build wrote into tests/plugin_example"; fi

# ---- use it from a recipe ----
cat >"$T/use.lua" <<'LUA'
local T = require("qr.qrtest")
local dir = os.getenv("PLUG")
local found
for _, p in ipairs(qr.plugins()) do
  if p.kind == "quantizer" and p.name == "myquant" then found = p end
end
T.ok("example-1.1", found ~= nil, "myquant not in qr.plugins()")
T.eq("example-1.2", found and found.file, dir .. "/myquant.so")
T.eq("example-1.3", found and found.version, "0.1.0")
local q = qr.quantizer("myquant")
T.eq("example-2.1", q:name(), "myquant")
-- 8 bits, 4 fractional bits: 0.3*16 = 4.8 -> 5 -> 0.3125; 100 -> 127/16; -100 -> -128/16
local y, s = q:fake({{0.3, 100, -0.03, -100}}, 8)
T.near("example-2.2", y[1], {0.3125, 7.9375, 0, -8}, 0)
T.near("example-2.3", s, {0.0625}, 0)
-- 4 bits, 2 fractional bits: integers -8..7, step 0.25
y = qr.quantizer("myquant", {frac_bits = 2}):fake({{0.3, 100, -100}}, 4)
T.near("example-2.4", y[1], {0.25, 1.75, -2}, 0)
T.near("example-2.5", q:backward({{0.3, 100}}, {{1, 1}}, 8)[1], {1, 0}, 0)
T.errors("example-3.1", function() qr.quantizer("myquant", {frac = 1}) end, "unknown option 'frac'")
T.errors("example-3.2", function() qr.quantizer("myquant", {frac_bits = 31}) end, "frac_bits")
T.errors("example-3.3", function() q:fake({{1}}, 17) end, "bits 17")
-- the built-in plugins are still there
T.ok("example-4.1", qr.quantizer("minmax"):name() == "minmax")
T.done()
LUA
if PLUG="$T/plug" QRUN_PLUGIN_PATH="$T/plug" "$QRUN" "$T/use.lua" >"$T/use.out" 2>&1; then
    ok recipe-1.1
else
    fail recipe-1.1 "recipe failed: $(cat "$T/use.out")"
fi
sed 's/^/    /' "$T/use.out"

# ---- a bad file on the path is a warning naming it; the rest works ----
mkdir -p "$T/bad/quantizer"
echo "not a shared object" >"$T/bad/quantizer/broken.so"
cat >"$T/bad.lua" <<'LUA'
local list, failed = qr.plugins()
print(#list .. " entries, " .. #failed .. " failed")
for _, f in ipairs(failed) do print("failed: " .. f.file .. ": " .. f.error) end
assert(#failed == 1, "expected one failed file")
assert(failed[1].file == os.getenv("BROKEN"), "failed[1].file")
assert(failed[1].error:find(os.getenv("BROKEN"), 1, true), "the error names the file")
assert(qr.quantizer("minmax"):name() == "minmax", "minmax still works")
local ok, msg = pcall(qr.quantizer, "broken")
print(msg)
assert(not ok and msg:find("1 plugin file failed to load", 1, true) and msg:find(os.getenv("BROKEN"), 1, true),
  "an unknown name says why")
LUA
BROKEN="$T/bad/quantizer/broken.so" QRUN_PLUGIN_PATH="$T/bad" "$QRUN" "$T/bad.lua" >"$T/bad.out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    ok bad-1.1
else
    fail bad-1.1 "exit $rc, output: $(cat "$T/bad.out")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
