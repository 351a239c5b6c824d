#!/usr/bin/env bash
# test_qrun.sh - the qrun program end to end: exit codes, error messages,
# -e, stdin, the REPL (under a pseudo-terminal via script(1)), recipe
# arguments and options, SIGINT.
#   usage: bash tests/test_qrun.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

# ---- errors: exit 1 with FILE:LINE: on stderr; a bug (a runtime error) with a traceback ----
printf 'local t = nil\nprint(t.field)\n' >"$T/rterr.lua"
run "$QRUN" "$T/rterr.lua"
expect_rc runtime-1.1 1
expect_in runtime-1.2 "$err" "qrun: $T/rterr.lua:2:"
expect_in runtime-1.3 "$err" "stack traceback:"

# ---- user errors: one line, no traceback (QRUN_TRACEBACK=1 / --traceback: with one) ----
printf 'local x = ...\nif x ~= "ok" then error("refused: " .. tostring(x)) end\n' >"$T/usererr.lua"
run "$QRUN" "$T/usererr.lua" bad
expect_rc user-1.1 1
[ "$err" = "qrun: $T/usererr.lua:2: refused: bad" ] && ok user-1.2 || fail user-1.2 "stderr '$err'"
run "$QRUN" -e 'assert(io.open("/no/such/file"))'
expect_rc user-1.3 1
[ "$err" = "qrun: (command line):1: /no/such/file: No such file or directory" ] && ok user-1.4 || fail user-1.4 "stderr '$err'"
run "$QRUN" -e 'qr.train{}'
expect_rc user-1.5 1
[ "$err" = "qrun: (command line):1: train: model is required" ] && ok user-1.6 || fail user-1.6 "stderr '$err'"
run "$QRUN" -e 'qr.opts({{"n", 1, "count"}}, {"--n=x"})'
[ "$err" = "qrun: (command line):1: option --n: expected integer, got 'x'" ] && ok user-1.7 || fail user-1.7 "stderr '$err'"
run "$QRUN" -e 'qr.quantizer("minmax", {bits = {}})'
expect_rc user-1.8 1
case $err in *"stack traceback"*) fail user-1.9 "a traceback: $err" ;; *) ok user-1.9 ;; esac
run "$QRUN" -e 'require("qr.no_such_lib")'
case $err in *"stack traceback"*) fail user-1.10 "a traceback: $err" ;; *) ok user-1.10 ;; esac
run env QRUN_TRACEBACK=1 "$QRUN" "$T/usererr.lua" bad
expect_in user-2.1 "$err" "qrun: $T/usererr.lua:2: refused: bad"
expect_in user-2.2 "$err" "stack traceback:"
run "$QRUN" --traceback -e 'qr.train{}'
expect_rc user-2.3 1
expect_in user-2.4 "$err" "stack traceback:"
run env QRUN_TRACEBACK=0 "$QRUN" "$T/usererr.lua" bad
case $err in *"stack traceback"*) fail user-2.5 "a traceback with QRUN_TRACEBACK=0" ;; *) ok user-2.5 ;; esac
# bugs keep it: a Lua library misused, a runtime error inside a required module
run "$QRUN" -e 'string.rep()'
expect_in bug-1.1 "$err" "stack traceback:"
mkdir -p "$T/buglib"
printf 'local M = {}\nfunction M.f(t) return t.x.y end\nreturn M\n' >"$T/buglib/buggy.lua"
printf 'require("buggy").f({})\n' >"$T/buglib/run.lua"
run "$QRUN" "$T/buglib/run.lua"
expect_rc bug-1.2 1
expect_in bug-1.3 "$err" "buggy.lua:2: attempt to index a nil value"
expect_in bug-1.4 "$err" "stack traceback:"
run "$QRUN" -h
expect_in bug-1.5 "$out" "QRUN_TRACEBACK=1"

printf 'local x = 1\nlocal y = = 2\n' >"$T/synerr.lua"
run "$QRUN" "$T/synerr.lua"
expect_rc syntax-1.1 1
expect_in syntax-1.2 "$err" "$T/synerr.lua:2:"

printf 'error({code = 1})\n' >"$T/objerr.lua"
run "$QRUN" "$T/objerr.lua"
expect_rc runtime-2.1 1
expect_in runtime-2.2 "$err" "error object is a table value"

run "$QRUN" "$T/no_such_recipe.lua"
expect_rc missing-1.1 1
expect_in missing-1.2 "$err" "no_such_recipe.lua"

# ---- exit codes ----
printf 'io.write("before ")\nos.exit(3)\nprint("after")\n' >"$T/exit3.lua"
run "$QRUN" "$T/exit3.lua"
expect_rc exit-1.1 3
expect_in exit-1.2 "$out" "before"
run "$QRUN" -e 'os.exit(true)'
expect_rc exit-1.3 0
run "$QRUN" -e 'os.exit(false)'
expect_rc exit-1.4 1
run "$QRUN" -e 'error("boom")'
expect_rc exit-1.5 1
expect_in exit-1.6 "$err" "qrun: (command line):1: boom"

# ---- -e, -v, -h, bad options ----
run "$QRUN" -e 'print(1+1)'
expect_rc e-1.1 0
[ "$out" = "2" ] && ok e-1.2 || fail e-1.2 "stdout '$out', want '2'"
run "$QRUN" -e 'x = 20' -e 'print(x + 1)'
[ "$out" = "21" ] && ok e-1.3 || fail e-1.3 "stdout '$out', want '21'"
run "$QRUN" -e 'print(qr.version, require("qr") == qr)'
expect_in e-1.4 "$out" "0.1.0	true"
run "$QRUN" -v
expect_rc v-1.1 0
expect_in v-1.2 "$out" "qrun 0.1.0"
run "$QRUN" --version
expect_in v-1.3 "$out" "qrun 0.1.0"
run "$QRUN" -h
expect_rc h-1.1 0
expect_in h-1.2 "$out" "usage: qrun"
run "$QRUN" --bogus
expect_rc h-1.3 1
expect_in h-1.4 "$err" "unrecognized option '--bogus'"
run "$QRUN" -e
expect_rc h-1.5 1
expect_in h-1.6 "$err" "'-e' needs an argument"

# ---- stdin ----
out=$(printf 'print(qr.version)\n' | "$QRUN" 2>"$T/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "0.1.0" ] && ok stdin-1.1 || fail stdin-1.1 "rc $rc, stdout '$out'"
out=$(printf 'print(...)\n' | "$QRUN" - a b 2>"$T/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "a	b" ] && ok stdin-1.2 || fail stdin-1.2 "rc $rc, stdout '$out'"
printf 'error("from stdin")\n' | "$QRUN" >/dev/null 2>"$T/err"; rc=$?
err=$(cat "$T/err")
expect_rc stdin-1.3 1
expect_in stdin-1.4 "$err" "stdin:1: from stdin"

# ---- recipe arguments, arg table, module path ----
mkdir -p "$T/rdir/lib"
printf 'return {hello = function() return "hi from lib" end}\n' >"$T/rdir/lib/helper.lua"
cat >"$T/rdir/args.lua" <<'EOF'
local a, b = ...
print(arg[0]:match("args%.lua$") ~= nil, arg[1], arg[2], a, b, #arg)
print(require("helper").hello())
print(require("qr.qrtest") ~= nil)
EOF
run "$QRUN" "$T/rdir/args.lua" one two
expect_rc args-1.1 0
expect_in args-1.2 "$out" "true	one	two	one	two	2"
expect_in args-1.3 "$out" "hi from lib"
expect_in args-1.4 "$out" "true"
mkdir -p "$T/extra"
printf 'return 42\n' >"$T/extra/fortytwo.lua"
run env QRUN_PATH="$T/extra/?.lua" "$QRUN" -e 'print((require("fortytwo")))'
[ "$out" = "42" ] && ok args-2.1 || fail args-2.1 "stdout '$out' (stderr: $err)"

# ---- qr.opts on the command line ----
cat >"$T/opts.lua" <<'EOF'
local o = qr.opts({{"limit", 10, "how many"}, {"name", nil, "who"}, {"fast", false, "go fast"}}, arg)
print(o.limit, o.name, o.fast)
EOF
run "$QRUN" "$T/opts.lua" --limit=3 --name=x --fast
expect_rc opts-1.1 0
[ "$out" = "3	x	true" ] && ok opts-1.2 || fail opts-1.2 "stdout '$out'"
run "$QRUN" "$T/opts.lua" --bogus=1
[ "$rc" -ne 0 ] && ok opts-1.3 || fail opts-1.3 "exit code 0 for an unknown option"
expect_in opts-1.4 "$err" "--bogus"
run "$QRUN" "$T/opts.lua" --limit=many
[ "$rc" -ne 0 ] && ok opts-1.5 || fail opts-1.5 "exit code 0 for a bad value"
expect_in opts-1.6 "$err" "--limit: expected integer"
run "$QRUN" "$T/opts.lua" --help
expect_rc opts-1.7 0
expect_in opts-1.8 "$out" "--limit=<integer>"
expect_in opts-1.9 "$out" "how many"

# ---- REPL under a pseudo-terminal ----
if command -v script >/dev/null 2>&1; then
  # "script" gives qrun a terminal on stdin; the input comes from our pipe.
  # The history goes to $T/history, never to ~/.qrun_history.
  repl() {
    printf '%b' "$1" | TERM=dumb QRUN_HISTORY="$T/history" timeout 20 script -qec "$QRUN" /dev/null 2>&1 |
      tr -d '\r'
  }
  out=$(repl '1+2\n')
  expect_in repl-1.1 "$out" "3"
  expect_in repl-1.2 "$out" "qrun> "
  out=$(repl 'x = 5\n=x * 2\nfunction f(a)\n  return a + 1\nend\nprint(f(x))\n')
  expect_in repl-1.3 "$out" "10"
  expect_in repl-1.4 "$out" ">> "
  expect_in repl-1.5 "$out" "6"
  out=$(repl 'error("oops")\nprint("still here")\n')
  expect_in repl-1.6 "$out" "oops"
  expect_in repl-1.7 "$out" "still here"
  printf 'y = 7\n' >"$T/pre.lua"
  out=$(printf 'print(y * 6)\n' | QRUN_HISTORY="$T/history" timeout 20 script -qec "$QRUN -i $T/pre.lua" /dev/null 2>&1 | tr -d '\r')
  expect_in repl-1.8 "$out" "42"
  # line editing and history, when qrun was built with readline: two
  # Left-arrows then "3" edit print(12) into print(132); Up recalls it,
  # also in the next session (from the history file)
  if ldd "$QRUN" 2>/dev/null | grep -q libreadline; then
    rm -f "$T/history"
    out=$(repl 'print(12)\033[D\033[D3\n\033[A\n')
    [ "$(printf '%s\n' "$out" | grep -c '^132$')" = 2 ] && ok repl-2.1 || fail repl-2.1 "want 132 twice: $out"
    [ "$(cat "$T/history" 2>/dev/null)" = "$(printf 'print(132)\nprint(132)')" ] && ok repl-2.2 ||
      fail repl-2.2 "history file: $(cat "$T/history" 2>&1)"
    out=$(repl '\033[A\n')
    [ "$(printf '%s\n' "$out" | grep -c '^132$')" = 1 ] && ok repl-2.3 || fail repl-2.3 "want 132 from the history: $out"
    out=$(printf 'print(1)\n' | TERM=dumb QRUN_HISTORY="$T/no/such/dir/h" timeout 20 script -qec "$QRUN" /dev/null 2>&1 | tr -d '\r')
    expect_in repl-2.4 "$out" "cannot write the history to $T/no/such/dir/h"
  else
    echo "skip repl-2.*: $QRUN is built without readline"
  fi
else
  fail repl-1.1 "script(1) from util-linux is not installed"
fi

# ---- the REPL on a stdin that is not a terminal (-i): plain lines, no history ----
out=$(printf 'x = 6\nprint(x * 7)\n' | QRUN_HISTORY="$T/history-pipe" "$QRUN" -i 2>&1); rc=$?
[ $rc -eq 0 ] && ok repl-3.1 || fail repl-3.1 "rc $rc"
expect_in repl-3.2 "$out" "qrun> 42"
[ ! -e "$T/history-pipe" ] && ok repl-3.3 || fail repl-3.3 "a history file written for a non-terminal stdin"

# ---- SIGINT stops a running script with "interrupted" ----
"$QRUN" -e 'io.write("started\n"); io.stdout:flush(); while true do end' >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 1 100); do grep -q started "$T/out" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"; rc=$?
err=$(cat "$T/err")
expect_rc sigint-1.1 1
expect_in sigint-1.2 "$err" "interrupted"

# ---- qr.X is qrun's library: a precision.lua beside the recipe cannot hide it ----
mkdir -p "$T/shadow/qr"
echo 'return {mine = true}' >"$T/shadow/precision.lua"
echo 'return {mine = true}' >"$T/shadow/qr/precision.lua"
cat >"$T/shadow/run.lua" <<'LUA'
local P = require("qr.precision")
print(type(P.config), type(P.assign_adapters), P.mine)
print(require("precision").mine)
local m = qr.model_new{arch = "gpt2", n_layer = 1, n_embd = 32, n_head = 4, n_vocab = 50, n_ctx = 16}
m:quantize{weight = "minmax", act = "minmax"}
m:precision("w8a8")
print("precision ok")
LUA
run "$QRUN" "$T/shadow/run.lua"
expect_rc shadow-1.1 0
expect_in shadow-1.2 "$out" "function	function	nil"
expect_in shadow-1.3 "$out" "true"
expect_in shadow-1.4 "$out" "precision ok"
run env QRUN_PATH="$T/shadow/?.lua" "$QRUN" -e 'print(require("qr.precision").mine)'
[ "$out" = "nil" ] && ok shadow-1.5 || fail shadow-1.5 "stdout '$out' (stderr: $err)"
run "$QRUN" -e 'require("qr.no_such_lib")'
expect_rc shadow-1.6 1
expect_in shadow-1.7 "$err" "module 'qr.no_such_lib' not found"
run "$QRUN" -e 'require("precision")'
expect_rc shadow-1.8 1

finish
