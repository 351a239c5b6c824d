# harness.sh - what the shell tests share (sourced, not run): the qrun
# argument, a temporary directory, pass/fail counting and the checks.
#   . "$(dirname "$0")/harness.sh" "$@"     (first line of a test_*.sh)
# Sets QRUN (absolute), T (removed at exit), passed/failed; the test ends
# with `finish`, which prints "N passed, M failed" and exits non-zero when
# anything failed.
set -u
_name=$(basename "$0")
QRUN=${1:?usage: $_name /path/to/qrun   (from the repo root)}
case $QRUN in /*) ;; *) QRUN=$PWD/$QRUN ;; esac
[ -x "$QRUN" ] || { echo "$_name: $QRUN is not an executable"; exit 1; }
[ -d recipes ] && [ -d tests ] || { echo "$_name: run from the repo root"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/${_name%.sh}.XXXXXX")
trap '[ -n "${KEEP_T:-}" ] || rm -rf "$T"' EXIT
passed=0 failed=0

ok()   { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
# run CMD...: runs it with no stdin, capturing $out, $err and $rc
run() {
  "$@" >"$T/out" 2>"$T/err" </dev/null
  rc=$?
  out=$(cat "$T/out")
  err=$(cat "$T/err")
}
# expect_rc ID WANT; expect_fail ID (any non-zero); expect_in ID HAYSTACK NEEDLE (fixed string)
expect_rc() { if [ "$rc" -eq "$2" ]; then ok "$1"; else fail "$1" "exit code $rc, want $2 (stderr: $err)"; fi; }
expect_fail() { if [ "$rc" -ne 0 ]; then ok "$1"; else fail "$1" "exit code 0, want non-zero (stdout: $out)"; fi; }
expect_in() {
  if printf '%s' "$2" | grep -qF -- "$3"; then ok "$1"; else fail "$1" "'$3' not in: $2"; fi
}
# jcheck ID FILE LUA-EXPR: the expression must be exactly true; write it as
# `cond or <value to show when it fails>`. In it, `j` is the decoded JSON,
# row(config, quantizer) the first matching row of j.results (or {}), and
# pct(x) whether x is a number in [0, 100].
jcheck() {
  local v
  v=$(J="$2" E="$3" "$QRUN" -e '
    local j, e = qr.json.read(qr.getenv("J"))
    if not j then print("cannot read JSON: " .. tostring(e)) os.exit(0) end
    local function row(c, q)
      for _, r in ipairs(type(j.results) == "table" and j.results or {}) do
        if r.config == c and (q == nil or r.quantizer == q) then return r end
      end
      return {}
    end
    local function pct(x) return type(x) == "number" and x >= 0 and x <= 100 end
    local f = assert(load("local j, row, pct = ...; return " .. qr.getenv("E")))
    local okv, r = pcall(f, j, row, pct)
    print(okv and r == true and "true" or ("false: " .. tostring(r)))' 2>&1)
  if [ "$v" = "true" ]; then ok "$1"; else fail "$1" "$3 -> $v"; fi
}
# need_model: fail (and stop the test) unless the default model is there
need_model() {
  run "$QRUN" -e 'assert(qr.default_model())'
  if [ "$rc" -ne 0 ]; then
    fail model-1.0 "the default model is needed (scripts/setup.sh or scripts/fetch_model.sh, or QRUN_MODEL): $err"
    finish
  fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && exit 0
  exit 1
}
