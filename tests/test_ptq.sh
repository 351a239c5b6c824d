#!/usr/bin/env bash
# test_ptq.sh - recipes/ptq.lua end to end with the least work: the default
# model, two questions of datasets/squad/tiny.json, one configuration (w8a8)
# with one quantizer (minmax), no mixed configurations. Checks the results
# JSON (rows, costs, EM/F1), that a rerun with the same --out resumes (skips
# the rows it has, runs only a new one), and that a bad configuration or
# quantizer name is refused, named.
#   usage: bash tests/test_ptq.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

need_model

LEAST=(--limit=2 --data=datasets/squad/tiny.json --quantizers=minmax --mixed=)

# ---- one run: fp and w8a8/minmax ----
t0=$(date +%s)
run "$QRUN" recipes/ptq.lua "${LEAST[@]}" --configs=w8a8 --out="$T/p.json"
echo "  (ptq, fp + w8a8: $(( $(date +%s) - t0 ))s)"
expect_rc ptq-1.1 0
[ -f "$T/p.json" ] && ok ptq-1.2 || fail ptq-1.2 "no $T/p.json written (stdout: $out)"
jcheck ptq-1.3 "$T/p.json" 'type(j.results) == "table" and #j.results == 2 or #(j.results or {})'
jcheck ptq-1.4 "$T/p.json" '(function()
  for i, r in ipairs(j.results) do
    for _, k in ipairs{"config", "quantizer", "em", "f1", "bitops_ratio", "bytes_ratio"} do
      if r[k] == nil then return "row " .. i .. " has no " .. k end
    end
  end
  return true end)()'
jcheck ptq-1.5 "$T/p.json" 'row("fp").quantizer == "none" or tostring(row("fp").quantizer)'
jcheck ptq-1.6 "$T/p.json" 'math.abs(row("fp").bitops_ratio - 1) < 1e-9 or row("fp").bitops_ratio'
jcheck ptq-1.7 "$T/p.json" 'math.abs(row("fp").bytes_ratio - 1) < 1e-9 or row("fp").bytes_ratio'
jcheck ptq-1.8 "$T/p.json" 'row("w8a8").quantizer == "minmax" or tostring(row("w8a8").quantizer)'
# 8-bit weights: a quarter of float32's bytes, plus scales
jcheck ptq-1.9 "$T/p.json" '(row("w8a8").bytes_ratio > 0.2 and row("w8a8").bytes_ratio < 0.3) or row("w8a8").bytes_ratio'
# 8x8-bit products against 32x32: 1/16
jcheck ptq-1.10 "$T/p.json" 'math.abs(row("w8a8").bitops_ratio - 1 / 16) < 0.01 or row("w8a8").bitops_ratio'
jcheck ptq-1.11 "$T/p.json" '(pct(row("fp").em) and pct(row("fp").f1) and pct(row("w8a8").em) and pct(row("w8a8").f1))
  or ("fp " .. tostring(row("fp").em) .. "/" .. tostring(row("fp").f1) .. ", w8a8 " .. tostring(row("w8a8").em)
      .. "/" .. tostring(row("w8a8").f1))'
jcheck ptq-1.12 "$T/p.json" 'j.n == 2 or tostring(j.n)'
# every question's F1 and EM, with its id (paired comparisons), means agreeing with the row's
jcheck ptq-1.14 "$T/p.json" '(function() local r = row("w8a8"); local q = r.per_question or {}; local s = 0
  if #(q.f1 or {}) ~= j.n or #(q.id or {}) ~= j.n then return "per_question has " .. #(q.f1 or {}) .. " scores" end
  for _, f in ipairs(q.f1) do s = s + f end
  return math.abs(100 * s / j.n - r.f1) < 1e-6 or ("mean " .. 100 * s / j.n .. " vs f1 " .. r.f1) end)()'
expect_in ptq-1.13 "$out" "wrote $T/p.json"

# ---- the same run again resumes: nothing computed, the file unchanged ----
cp "$T/p.json" "$T/p1.json"
run "$QRUN" recipes/ptq.lua "${LEAST[@]}" --configs=w8a8 --out="$T/p.json"
expect_rc ptq-2.1 0
n_skip=$(printf '%s\n' "$out" | grep -cF "(already in $T/p.json)")
[ "$n_skip" -eq 2 ] && ok ptq-2.2 || fail ptq-2.2 "$n_skip rows reported '(already in $T/p.json)', want 2: $out"
cmp -s "$T/p.json" "$T/p1.json" && ok ptq-2.3 || fail ptq-2.3 "a rerun with nothing to do changed $T/p.json"
# a new configuration: only it is computed, the old rows kept as they were
run "$QRUN" recipes/ptq.lua "${LEAST[@]}" --configs=w8a8,w4a8 --out="$T/p.json"
expect_rc ptq-2.4 0
n_skip=$(printf '%s\n' "$out" | grep -cF "(already in $T/p.json)")
[ "$n_skip" -eq 2 ] && ok ptq-2.5 || fail ptq-2.5 "$n_skip rows reported '(already in $T/p.json)', want 2: $out"
jcheck ptq-2.6 "$T/p.json" '#j.results == 3 and row("w4a8", "minmax").bytes_ratio ~= nil or #j.results'
J1=$(cat "$T/p1.json") jcheck ptq-2.7 "$T/p.json" '(function()
  local old = qr.json.decode(qr.getenv("J1"))
  for i = 1, 2 do
    for k, v in pairs(old.results[i]) do
      if type(v) ~= "table" and j.results[i][k] ~= v then return "row " .. i .. " field " .. k .. " changed" end
    end
  end
  return true end)()'

# ---- bad names are refused, named ----
run "$QRUN" recipes/ptq.lua --limit=1 --data=datasets/squad/tiny.json --quantizers=minmax --mixed= \
  --configs=w8a8,w9z9 --out="$T/bad1.json"
expect_fail ptq-3.1
expect_in ptq-3.2 "$err" "w9z9"
# refused before any evaluation: not even the fp row was computed and written
[ ! -e "$T/bad1.json" ] && ok ptq-3.5 || fail ptq-3.5 "$T/bad1.json was written before the bad name was refused"
run "$QRUN" recipes/ptq.lua --limit=1 --data=datasets/squad/tiny.json --quantizers=nosuchquant --mixed= \
  --configs=w8a8 --out="$T/bad2.json"
expect_fail ptq-3.3
expect_in ptq-3.4 "$err" "nosuchquant"

finish
