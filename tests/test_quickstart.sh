#!/usr/bin/env bash
# test_quickstart.sh - recipes/quickstart.lua end to end on the default model
# (two questions of datasets/squad/tiny.json): exit code, the results JSON
# (em, f1, n, questions_per_s), the EM/F1 lines on stdout; then bad inputs
# (missing model, data that is not JSON or not there, a bad --limit) exit
# non-zero naming what was wrong. Independent of the prompt format.
#   usage: bash tests/test_quickstart.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

DATA=datasets/squad/tiny.json
MODEL_OK=1
run "$QRUN" -e 'assert(qr.default_model())'
if [ "$rc" -ne 0 ]; then
  MODEL_OK=0
  fail model-1.0 "the default model is needed (scripts/setup.sh or scripts/fetch_model.sh, or QRUN_MODEL): $err"
fi

# ---- a normal run: two questions ----
if [ "$MODEL_OK" = 1 ]; then
  t0=$(date +%s)
  run "$QRUN" recipes/quickstart.lua --limit=2 --data=$DATA --out="$T/q.json"
  echo "  (quickstart --limit=2: $(( $(date +%s) - t0 ))s)"
  expect_rc qs-1.1 0
  [ -f "$T/q.json" ] && ok qs-1.2 || fail qs-1.2 "no $T/q.json written (stdout: $out)"
  num='type(j.%s) == "number" and j.%s >= 0 and j.%s <= 100 or tostring(j.%s)'
  # shellcheck disable=SC2059
  jcheck qs-1.3 "$T/q.json" "$(printf "$num" em em em em)"
  # shellcheck disable=SC2059
  jcheck qs-1.4 "$T/q.json" "$(printf "$num" f1 f1 f1 f1)"
  jcheck qs-1.5 "$T/q.json" 'math.type(j.n) == "integer" and j.n == 2 or j.n'
  jcheck qs-1.6 "$T/q.json" 'type(j.questions_per_s) == "number" and j.questions_per_s > 0 or j.questions_per_s'
  # EM implies F1 = 1 for a question, so EM <= F1 on average
  jcheck qs-1.7 "$T/q.json" 'j.em <= j.f1 + 1e-9 or (j.em .. " > " .. j.f1)'
  jcheck qs-1.8 "$T/q.json" 'type(j.predictions) == "table" and #j.predictions == 2 or #(j.predictions or {})'
  # stdout: the EM and F1 lines, with the values the JSON has (to 2 decimals)
  em_line=$(printf '%s\n' "$out" | grep -E '^(exact match|EM)[ :]+[0-9]' | head -1)
  f1_line=$(printf '%s\n' "$out" | grep -E '^F1[ :]+[0-9]' | head -1)
  [ -n "$em_line" ] && ok qs-1.9 || fail qs-1.9 "no 'exact match <number>' line on stdout: $out"
  [ -n "$f1_line" ] && ok qs-1.10 || fail qs-1.10 "no 'F1 <number>' line on stdout: $out"
  em_out=$(printf '%s' "$em_line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
  f1_out=$(printf '%s' "$f1_line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
  jcheck qs-1.11 "$T/q.json" "string.format('%.2f', j.em) == '$em_out' or string.format('%.2f', j.em)"
  jcheck qs-1.12 "$T/q.json" "string.format('%.2f', j.f1) == '$f1_out' or string.format('%.2f', j.f1)"
fi

# ---- bad inputs: non-zero exit, the culprit named, nothing written ----
run "$QRUN" recipes/quickstart.lua --model=/nonexistent/qs-model.gguf --limit=1 --data=$DATA --out="$T/bad1.json"
expect_fail qs-2.1
expect_in qs-2.2 "$err" "/nonexistent/qs-model.gguf"
[ ! -e "$T/bad1.json" ] && ok qs-2.3 || fail qs-2.3 "--out written by a failed run"

printf 'this is { not JSON\n' >"$T/notjson.json"
if [ "$MODEL_OK" = 1 ]; then
  run "$QRUN" recipes/quickstart.lua --limit=1 --data="$T/notjson.json" --out="$T/bad2.json"
  expect_fail qs-2.4
  expect_in qs-2.5 "$err" "$T/notjson.json"
  [ ! -e "$T/bad2.json" ] && ok qs-2.6 || fail qs-2.6 "--out written by a failed run"
  run "$QRUN" recipes/quickstart.lua --limit=1 --data="$T/no-such-data.json"
  expect_fail qs-2.7
  expect_in qs-2.8 "$err" "$T/no-such-data.json"
fi

run "$QRUN" recipes/quickstart.lua --limit=abc --data=$DATA --out="$T/bad3.json"
expect_fail qs-2.9
expect_in qs-2.10 "$err" "--limit"
expect_in qs-2.11 "$err" "abc"
[ ! -e "$T/bad3.json" ] && ok qs-2.12 || fail qs-2.12 "--out written by a failed run"

finish
