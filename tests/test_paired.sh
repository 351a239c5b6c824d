#!/usr/bin/env bash
# test_paired.sh - recipes/paired.lua on two hand-made results files whose
# per-question scores give a known difference: a - b = +50 F1 points on 4
# questions (the bootstrap interval then lies inside [0, 100] and holds the
# mean), the arm chosen by FILE:ARM, and the refusals: questions that differ
# (eval_n, or arrays of other lengths), an arm that is not there, a file
# with several arms and none named.
#   usage: bash tests/test_paired.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

cat >"$T/a.json" <<'J'
{"eval_data": "/x/dev-sample.json", "eval_n": 4, "results": [
 {"arm": "joint", "config": "fp", "f1": 75, "em": 75, "per_question": {"f1": [1, 1, 0, 1], "em": [1, 1, 0, 1]}},
 {"arm": "cyclic", "config": "fp", "f1": 0, "em": 0, "per_question": {"f1": [0, 0, 0, 0], "em": [0, 0, 0, 0]}}]}
J
cat >"$T/b.json" <<'J'
{"eval_data": "dev-sample.json", "eval_n": 4, "results": [
 {"config": "fp", "f1": 25, "em": 25, "per_question": {"f1": [0, 1, 0, 0], "em": [0, 1, 0, 0]}},
 {"config": "w8a8", "f1": 25, "em": 25, "per_question": {"f1": [0, 1, 0, 0], "em": [0, 1, 0, 0]}}]}
J

run "$QRUN" recipes/paired.lua --a="$T/a.json:joint" --b="$T/b.json" --out="$T/d.json"
expect_rc paired-1.1 0
jcheck paired-1.2 "$T/d.json" '#j.comparisons == 1 and j.comparisons[1].config == "fp" or #j.comparisons'
jcheck paired-1.3 "$T/d.json" 'math.abs(j.comparisons[1].f1_diff - 50) < 1e-9 or j.comparisons[1].f1_diff'
jcheck paired-1.4 "$T/d.json" '(function() local c = j.comparisons[1].f1_diff_ci
  return c[1] >= 0 and c[1] <= 50 and c[2] >= 50 and c[2] <= 100 or (c[1] .. "," .. c[2]) end)()'
jcheck paired-1.5 "$T/d.json" '(function() local c, v = j.comparisons[1].f1_diff_ci, j.comparisons[1].verdict
  return v == (c[1] > 0 and "helps" or "no measurable difference") or v end)()'
jcheck paired-1.6 "$T/d.json" 'math.abs(j.comparisons[1].em_diff - 50) < 1e-9 or j.comparisons[1].em_diff'

run "$QRUN" recipes/paired.lua --a="$T/a.json:cyclic" --b="$T/b.json" --out="$T/e.json"
jcheck paired-1.7 "$T/e.json" 'math.abs(j.comparisons[1].f1_diff + 25) < 1e-9 or j.comparisons[1].f1_diff'

# refusals, each naming what is wrong
run "$QRUN" recipes/paired.lua --a="$T/a.json" --b="$T/b.json"
expect_rc paired-2.1 2
expect_in paired-2.2 "$err" "several arms"
run "$QRUN" recipes/paired.lua --a="$T/a.json:nope" --b="$T/b.json"
expect_rc paired-2.3 2
expect_in paired-2.4 "$err" "no arm 'nope' (it has: cyclic, joint)"
sed 's/"eval_n": 4/"eval_n": 5/' "$T/b.json" >"$T/b5.json"
run "$QRUN" recipes/paired.lua --a="$T/a.json:joint" --b="$T/b5.json"
expect_rc paired-2.5 2
expect_in paired-2.6 "$err" "'eval_n' differs"
sed 's/"f1": \[0, 1, 0, 0\], "em"/"f1": [0, 1, 0], "em"/' "$T/b.json" | sed 's/"eval_n": 4, //' >"$T/b3.json"
run "$QRUN" recipes/paired.lua --a="$T/a.json:joint" --b="$T/b3.json"
expect_rc paired-2.7 2
expect_in paired-2.8 "$err" "4 questions in"
run "$QRUN" recipes/paired.lua --a="$T/a.json:joint" --b="$T/none.json"
expect_rc paired-2.9 2
expect_in paired-2.10 "$err" "cannot read"
run "$QRUN" recipes/paired.lua --a="$T/a.json:joint" --b="$T/b.json" --configs=w4a8
expect_rc paired-2.11 2
expect_in paired-2.12 "$err" "'w4a8' has no per-question row"

finish
