#!/usr/bin/env bash
# test_search.sh - recipes/search.lua refuses bad options before loading any
# model, with a message naming the option, exit code 2, and writes nothing
# (the run directory is not even created). Refusals that need the model (a
# budget below the cheapest configuration, a --hand file naming an unknown
# layer) and the machinery itself are tests/recipes/search_tiny.lua's, on a
# tiny random model.
#   usage: bash tests/test_search.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

# refuse ID NEEDLE ARGS...: exit 2, NEEDLE in stderr, no run directory
refuse() {
  local id=$1 needle=$2
  shift 2
  run "$QRUN" recipes/search.lua --run-dir="$T/run" "$@"
  expect_rc "$id.1" 2
  expect_in "$id.2" "$err" "$needle"
  if [ -e "$T/run" ]; then fail "$id.3" "$T/run was written"; rm -rf "$T/run"; else ok "$id.3"; fi
}

refuse search-1 "--method: no method named 'anneal' (known: greedy,ilp,evo)" --method=greedy,anneal
refuse search-2 "--metric: no metric named 'flops'" --metric=flops
refuse search-3 "--budget=0.3,abc: 'abc' is not a ratio to fp in (0, 1]" --budget=0.3,abc
refuse search-4 "--budget=1.5" --budget=1.5
refuse search-5 "--score: no score named 'em'" --score=em
refuse search-6 "--method: 'ilp' given twice" --method=ilp,ilp
refuse search-7 "--sens=kinds,blocks: greedy and ilp need the per-layer sensitivities" --sens=kinds,blocks
refuse search-8 "--pop=1: expected an integer >= 2" --pop=1
refuse search-9 "--elite=8: expected fewer than --pop=8" --elite=8
refuse search-10 "--score=f1 needs dev questions after --eval-limit" --score=f1 --eval-limit=0
refuse search-11 "--sp-dir=$T/nowhere: no results.json there" --sp-dir="$T/nowhere"
refuse search-12 "--method is empty" --method=
# an option qr.opts does not know
run "$QRUN" recipes/search.lua --run-dir="$T/run" --budgets=0.3
expect_fail search-13.1
expect_in search-13.2 "$err" "budgets"
[ -e "$T/run" ] && fail search-13.3 "$T/run was written" || ok search-13.3
finish
