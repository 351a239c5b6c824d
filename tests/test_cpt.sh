#!/usr/bin/env bash
# test_cpt.sh - recipes/cpt.lua refuses bad options before any training,
# with a message naming the option, exit code 2, and writes nothing (the
# run directory is not even created). The machinery itself is
# tests/recipes/cpt_tiny.lua's; a real run is in docs/TRAINING.md.
#   usage: bash tests/test_cpt.sh /path/to/qrun     (from the repo root)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
. "$(dirname "$0")/harness.sh" "$@"

# refuse ID NEEDLE ARGS...: exit 2, NEEDLE in stderr, no run directory
refuse() {
  local id=$1 needle=$2
  shift 2
  run "$QRUN" recipes/cpt.lua --run-dir="$T/run" "$@"
  expect_rc "$id.1" 2
  expect_in "$id.2" "$err" "$needle"
  if [ -e "$T/run" ]; then fail "$id.3" "$T/run was written"; rm -rf "$T/run"; else ok "$id.3"; fi
}

refuse cpt-1 "--arms: no arm named 'cyclic'" --arms=joint,cyclic
refuse cpt-2 "--b-min=9 > --b-max=8" --b-min=9
refuse cpt-3 "--b-min=1: expected an integer bit-width in 2..16" --b-min=1
refuse cpt-4 "--b-max=17: expected an integer bit-width in 2..16" --b-max=17
refuse cpt-5 "--n-cycles=32 is larger than the 8 steps of the cyclic arm" --steps=2
refuse cpt-6 "--n-cycles=9 is larger than the 8 steps" --steps=2 --arms=cyclic_configs --n-cycles=9
refuse cpt-7 "--train-shots=3: expected an integer 0..2" --train-shots=3
refuse cpt-8 "--arms: 'joint' given twice" --arms=joint,joint
refuse cpt-9 "--arms is empty" --arms=
# an option qr.opts does not know
run "$QRUN" recipes/cpt.lua --run-dir="$T/run" --bmin=3
expect_fail cpt-10.1
expect_in cpt-10.2 "$err" "bmin"
[ -e "$T/run" ] && fail cpt-10.3 "$T/run was written" || ok cpt-10.3
# a bad evaluation configuration is refused once the model is loaded, still before anything is written
if "$QRUN" -e 'assert(qr.default_model())' >/dev/null 2>&1; then
  refuse cpt-11 "--eval-configs" --eval-configs=w8a8,w99a8
  # --singles names an evaluation configuration; refused before the precision range test trains anything
  refuse cpt-12 "--singles: 'w2a2' is not an evaluation configuration" --singles=w2a2 --prt
else
  echo "skip cpt-11, cpt-12 (no default model)"
fi
finish
