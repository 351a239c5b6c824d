#!/usr/bin/env bash
# test_sp_rpi.sh - sp.lua --rpi end to end on the fuzz corpus's tiny Llama
# (one block, a byte-level tokenizer, 64 tokens of context) with tiny
# SQuAD-format files written here: the tuned set is evaluated under random
# precision inference, each question's draw is recorded, the counts add up,
# a rerun skips it, and an RPI set naming an untrained configuration is
# refused naming it.
. "$(dirname "$0")/harness.sh" "$@"
TINY=tests/fuzz/corpus/fuzz_model/tiny_llama.gguf
run "$QRUN" tests/tiny_squad.lua "$T" 16 12
expect_rc data-1 0
common=(--model="$TINY" --data="$T/train.json" --eval-data="$T/dev.json" --configs=fp,w8a8,w4a8 --steps=2
    --batch=2 --seq=64 --shots=0 --max-new-tokens=4 --train-limit=16 --eval-limit=12 --batch-eval=4 --run-dir="$T/sp" --rpi
    --rpi-seed=3)
run "$QRUN" recipes/sp.lua "${common[@]}"
expect_rc rpi-1.1 0
expect_in rpi-1.2 "$out" "rpi(fp,w8a8,w4a8) tuned"
R="$T/sp/results.json"
jcheck rpi-1.3 "$R" 'row("rpi(fp,w8a8,w4a8)").n == 12 or row("rpi(fp,w8a8,w4a8)")'
jcheck rpi-1.4 "$R" '(function(r) local s = 0 for _, c in ipairs(r.rpi.counts) do s = s + c end return s == 12 end)(row("rpi(fp,w8a8,w4a8)")) or "counts do not add up to 12"'
jcheck rpi-1.5 "$R" '(function(r) local ok = {fp = true, w8a8 = true, w4a8 = true} for _, d in ipairs(r.rpi.draws) do if not ok[d] then return false end end return #r.rpi.draws == 12 end)(row("rpi(fp,w8a8,w4a8)")) or "draws"'
jcheck rpi-1.6 "$R" 'row("rpi(fp,w8a8,w4a8)").rpi.seed == 3 or "seed"'
jcheck rpi-1.7 "$R" '(#row("fp").per_question.f1 == 12 and #row("rpi(fp,w8a8,w4a8)").per_question.em == 12) or "per_question"'
# the rerun skips the finished evaluation
run "$QRUN" recipes/sp.lua "${common[@]}"
expect_rc rpi-2.1 0
expect_in rpi-2.2 "$out" "rpi(fp,w8a8,w4a8) tuned   (already in"
# an RPI set naming a configuration without adapters
run "$QRUN" recipes/sp.lua "${common[@]}" --rpi-configs=fp,w6a6
expect_fail rpi-3.1
expect_in rpi-3.2 "$err" "--rpi-configs: 'w6a6' is not one of --configs"
run "$QRUN" recipes/sp.lua "${common[@]}" --rpi-configs=fp,w8a8 --rpi-probs=0.7,0.7
expect_fail rpi-3.3
expect_in rpi-3.4 "$err" "probs sum to 1.4"
finish
