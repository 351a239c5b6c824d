#!/usr/bin/env bash
# test_search.sh - recipes/search.lua refuses bad options before loading any
# model, with a message naming the option, exit code 2, and writes nothing
# (the run directory is not even created). Refusals that need the model (a
# budget below the cheapest configuration, a --hand file naming an unknown
# layer) and the recipe end to end run on the tiny Llama GGUF of the fuzz
# corpus (one block, 7 linear layers, a byte-level tokenizer, 64 tokens of
# context) with tiny SQuAD-format files written here (short contexts so the
# prompts fit): a bank trained, searched, evaluated, rerun without
# recomputing anything. The machinery is tests/recipes/search_tiny.lua's.
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
refuse search-14 "--sens-cache-mb=-1: expected a number of megabytes >= 0" --sens-cache-mb=-1
# an option qr.opts does not know
run "$QRUN" recipes/search.lua --run-dir="$T/run" --budgets=0.3
expect_fail search-13.1
expect_in search-13.2 "$err" "budgets"
[ -e "$T/run" ] && fail search-13.3 "$T/run was written" || ok search-13.3
# ---- the recipe end to end on a tiny model (no SmolLM2) ----
TINY=tests/fuzz/corpus/fuzz_model/tiny_llama.gguf
cat >"$T/make.lua" <<'LUA'
local out = arg[1]
local colors = {"red", "blue", "green", "black", "white", "pink", "gray", "gold"}
local names = {"Bob", "Ann", "Tom", "Eve", "Max", "Ida", "Sam", "Liz", "Ned", "Amy"}
local function make(n, seed, file)
  local paras, s = {}, seed
  for i = 1, n do
    s = (s * 1103515245 + 12345) % 2147483648
    local nm, c = names[1 + s % #names], colors[1 + (s // 16) % #colors]
    local ctx = nm .. " has a " .. c .. " hat."
    paras[#paras + 1] = {context = ctx, qas = {
      {id = file .. i .. "a", question = "What color?", answers = {{text = c, answer_start = ctx:find(c, 1, true) - 1}}},
      {id = file .. i .. "b", question = "Who?", answers = {{text = nm, answer_start = 0}}}}}
  end
  assert(qr.json.write(out .. "/" .. file .. ".json", {version = "1.1", data = {{title = "t", paragraphs = paras}}}))
end
make(30, 3, "train")
make(12, 5, "dev")
LUA
"$QRUN" "$T/make.lua" "$T"
tiny() {
  run "$QRUN" recipes/search.lua --model=$TINY --data="$T/train.json" --eval-data="$T/dev.json" --train-limit=21 \
    --calib-limit=8 --sens-limit=4 --eval-limit=10 --steps=2 --seq=64 --rank=2 --shots=0 --max-new-tokens=8 \
    --budget=0.3,0.5 --pop=4 --gens=2 --no-plot "$@"
}
methods=greedy,ilp,evo
tiny --run-dir="$T/tiny" --method=$methods
expect_rc search-20.1 0
expect_in search-20.2 "$out" "no sp run given: training a bank"
# after question 21 (the first of paragraph 11), paragraph 11's second question is skipped too
expect_in search-20.3 "$out" "calibration: 8 questions of $T/train.json (indices 23..30, after the 21 the sp run used)"
expect_in search-20.4 "$out" "Spearman rank correlation"
jcheck search-20.5 "$T/tiny/results.json" "(#j.confirm >= 12 and #j.found == #j.methods * 2) or #j.confirm"
jcheck search-20.6 "$T/tiny/results.json" "(j.calibration.indices[1] == 23 and j.calibration.n == 8) or j.calibration.indices[1]"
jcheck search-20.7 "$T/tiny/sensitivity.json" "(#j.layers == 7 and #j.kinds == 7 and #j.blocks == 1) or #j.layers"
# every configuration found reads back with precision.lua, within its budget
run "$QRUN" -e '
  local P = require("qr.precision")
  local m = assert(qr.model("'$TINY'"))
  local j = assert(qr.json.read("'$T'/tiny/results.json"))
  for _, r in ipairs(j.found) do
    local c = P.load(r.file, m)[1]
    assert(c.name == r.name, r.file)
    assert(P.cost(c, m).bytes_ratio <= r.budget, r.name .. " is over its budget")
  end
  print("found " .. #j.found)'
expect_rc search-20.8 0
expect_in search-20.9 "$out" "found "
# the rerun: nothing trained, scored or evaluated again
tiny --run-dir="$T/tiny" --method=$methods
expect_rc search-21.1 0
expect_in search-21.2 "$out" "search: 0 scores computed"
expect_in search-21.3 "$out" "(0 to evaluate)"
if printf '%s' "$out" | grep -qF "training a bank"; then fail search-21.4 "the bank was trained again"; else ok search-21.4; fi
# the same run directory as --sp-dir of another search
tiny --run-dir="$T/tiny2" --sp-dir="$T/tiny/sp" --method=greedy --budget=0.4
expect_rc search-21.5 0
# refusals that need the model: a budget below the cheapest configuration, a --hand file naming an unknown layer
refuse search-22 "--budget=0.1 is below the cheapest reachable configuration" --model=$TINY --data="$T/train.json" \
  --eval-data="$T/dev.json" --sp-dir="$T/tiny/sp" --budget=0.1
printf 'return {name = "bad", default = "w8a8", ["model.layers.5.mlp.*"] = "w4a8"}\n' >"$T/bad.lua"
refuse search-23 "pattern 'model.layers.5.mlp.*' matches no layer" --model=$TINY --data="$T/train.json" \
  --eval-data="$T/dev.json" --sp-dir="$T/tiny/sp" --hand="$T/bad.lua"
refuse search-24 "--choices: 'w4a99'" --model=$TINY --data="$T/train.json" --eval-data="$T/dev.json" \
  --sp-dir="$T/tiny/sp" --choices=fp,w4a99
finish
