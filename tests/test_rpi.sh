#!/usr/bin/env bash
# test_rpi.sh - recipes/rpi.lua end to end on the fuzz corpus's tiny Llama
# with tiny SQuAD-format files (tests/tiny_squad.lua): an sp.lua bank is
# trained, every threat model runs with the typo attack, the adversarial
# questions are saved as JSONL, a rerun computes nothing, --replay
# evaluates every victim on a saved set, the EOT score equals the weighted
# mean of the per-configuration scores, and bad options are refused naming
# them before anything is written.
. "$(dirname "$0")/harness.sh" "$@"
TINY=tests/fuzz/corpus/fuzz_model/tiny_llama.gguf
run "$QRUN" tests/tiny_squad.lua "$T" 40 16
expect_rc data-1 0
run env OMP_NUM_THREADS=1 "$QRUN" recipes/sp.lua --model="$TINY" --data="$T/train.json" --eval-data="$T/dev.json" \
    --configs=fp,w8a8,w4a8 --steps=300 --batch=8 --seq=64 --shots=0 --max-new-tokens=4 --train-limit=40 \
    --eval-limit=16 --batch-eval=8 --run-dir="$T/sp" --lr=1e-2 --rank=16 --warmup=10 --checkpoint-every=100
expect_rc sp-1 0
common=(--sp-dir="$T/sp" --eval-data="$T/dev.json" --eval-limit=16 --max-new-tokens=4 --seq=64 --run-dir="$T/rpi"
    --budget=30 --attacks=typo --attack-opts=typo.tries=2)
run env OMP_NUM_THREADS=1 "$QRUN" recipes/rpi.lua "${common[@]}"
expect_rc rpi-1.1 0
R="$T/rpi/results.json"
for c in typo/transfer/fp/rpi typo/transfer/w8a8/w4a8 typo/adaptive/rpi/rpi typo/eot/eot/rpi; do
    jcheck "rpi-1.2 $c" "$R" "j.cells['$c'] ~= nil and j.cells['$c'].attacked >= 1 or 'no cell $c with attacked questions'"
done
jcheck rpi-1.3 "$R" '(function() for _, c in pairs(j.cells) do if c.queries.mean > 30 then return false end end return true end)() or "a cell spent more than --budget=30 queries per question"'
jcheck rpi-1.4 "$R" '(function() for _, c in pairs(j.cells) do if c.attacked > c.correct_on_source then return false end end return true end)() or "attacked more questions than the source answered"'
jcheck rpi-1.5 "$R" 'j.clean.rpi.f1.n == 16 or "clean rpi n"'
n=$(wc -l <"$T/rpi/adv-typo-fp.jsonl")
jcheck rpi-1.6 "$R" "j.cells['typo/transfer/fp/fp'].correct_on_source == $n or 'adv-typo-fp.jsonl has $n lines'"
run "$QRUN" -e "
local n = 0
for l in io.lines('$T/rpi/adv-typo-fp.jsonl') do
  local x = qr.json.decode(l)
  assert(x.id and x.original and (x.skipped or (x.perturbed and x.queries and x.words_changed and x.answer_before)), l)
  n = n + 1
end
assert(n > 0)"
expect_rc rpi-1.7 0
# a rerun computes nothing (no attack progress, no cells printed)
run env OMP_NUM_THREADS=1 "$QRUN" recipes/rpi.lua "${common[@]}"
expect_rc rpi-2.1 0
if printf '%s' "$out" | grep -q -- '->'; then fail rpi-2.2 "the rerun recomputed cells: $out"; else ok rpi-2.2; fi
# the bank is recorded; a retrained (here: one changed weight) bank is refused on resume, nothing rewritten
jcheck rpi-2.3 "$R" "type(j.bank) == 'table' and #j.bank.sha256 == 64 and #j.machines >= 1 or 'no bank / machines record'"
# scripts/verify_bank.lua: the bank reproduces the run's clean answers and victim scores; a reference that
# differs in one answer is reported as another bank (exit 1, naming the question)
run env OMP_NUM_THREADS=1 "$QRUN" scripts/verify_bank.lua --sp-dir="$T/sp" --rpi-dir="$T/rpi" --limit=16 --scores=4
expect_rc verify-1.1 0
expect_in verify-1.2 "$out" "the same bank, on the same kernels"
mkdir -p "$T/rpi-edited"
cp "$T"/rpi/adv-*.jsonl "$T/rpi-edited/"
run "$QRUN" -e "
local j = qr.json.read('$T/rpi/results.json')
local id = next(j.clean.w8a8.per)
j.clean.w8a8.per[id].prediction = j.clean.w8a8.per[id].prediction .. ' edited'
assert(qr.json.write('$T/rpi-edited/results.json', j))"
expect_rc verify-1.3 0
run env OMP_NUM_THREADS=1 "$QRUN" scripts/verify_bank.lua --sp-dir="$T/sp" --rpi-dir="$T/rpi-edited" --limit=16 --scores=4
expect_rc verify-1.4 1
expect_in verify-1.5 "$out" "clean w8a8   15 of 16 answers identical; first difference"
A="$T/sp/adapters.safetensors"
cp "$A" "$T/adapters.keep"
cp "$R" "$T/results.keep"
size=$(stat -c %s "$A")
b=$(od -An -tu1 -j $((size - 4)) -N1 "$A" | tr -d ' ') # a low mantissa byte of the last float, its low bit flipped
printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$A" bs=1 seek=$((size - 4)) conv=notrunc status=none
if cmp -s "$A" "$T/adapters.keep"; then fail rpi-2.4 "the bank was not changed"; fi
run env OMP_NUM_THREADS=1 "$QRUN" recipes/rpi.lua "${common[@]}"
expect_rc rpi-2.4 2
expect_in rpi-2.5 "$err" "resuming would mix two banks in one table"
if cmp -s "$R" "$T/results.keep"; then ok rpi-2.6; else fail rpi-2.6 "results.json was rewritten by the refused run"; fi
cp "$T/adapters.keep" "$A"
# --replay: every victim on a saved set
run env OMP_NUM_THREADS=1 "$QRUN" recipes/rpi.lua "${common[@]}" --run-dir="$T/replay" --replay="$T/rpi/adv-typo-fp.jsonl"
expect_rc rpi-3.1 0
jcheck rpi-3.2 "$T/replay/results.json" "j.cells['replay/transfer/replay:adv-typo-fp/rpi'] ~= nil or 'no replay cell'"
# the EOT score is the weighted mean of the per-configuration scores
run env OMP_NUM_THREADS=1 "$QRUN" -e "
local E, P, qa = require('qr.attack_eval'), require('qr.precision'), require('qr.squad_qa')
local m = assert(qr.model('$TINY'))
m:quantize{weight = 'minmax', act = 'minmax'}
local cfgs = P.load('fp,w8a8,w4a8', m)
m:lora{rank = 16, alpha = 32, slots = P.assign_adapters(cfgs), seed = 1}
assert(m:load_adapters('$T/sp/adapters.safetensors'))
local ex = qa.load('$T/dev.json', 1)[1]
local probs = {0.5, 0.3, 0.2}
local eot = E.victim(m, {kind = 'eot', configs = cfgs, probs = probs})
local want = 0
for k, c in ipairs(cfgs) do want = want + probs[k] * E.score(E.victim(m, {kind = 'fixed', config = c}), ex, ex.question, 64) end
local got = E.score(eot, ex, ex.question, 64)
print(string.format('eot %.12g mean %.12g diff %.3g', got, want, math.abs(got - want)))
assert(math.abs(got - want) <= 1e-12 * math.max(1, want), 'eot score is not the weighted mean')"
expect_rc rpi-4.1 0
expect_in rpi-4.2 "$out" "eot "
# batched queries (E.scores, ABI 1.4): each victim's batched scores equal
# its one-at-a-time scores (up to the batched forward's summation order),
# rpi with the same draws; the EOT batch is the weighted mean of the fixed
# batches exactly; a batched attack asks what the sequential one asks and
# stays within a budget that ends inside a batch
run env OMP_NUM_THREADS=1 "$QRUN" -e "
local E, P, qa = require('qr.attack_eval'), require('qr.precision'), require('qr.squad_qa')
local m = assert(qr.model('$TINY'))
m:quantize{weight = 'minmax', act = 'minmax'}
local cfgs = P.load('fp,w8a8,w4a8', m)
m:lora{rank = 16, alpha = 32, slots = P.assign_adapters(cfgs), seed = 1}
assert(m:load_adapters('$T/sp/adapters.safetensors'))
local exs = qa.load('$T/dev.json', 3)
local probs = {0.5, 0.3, 0.2}
local fails = 0
local function check(id, cond, msg) if not cond then print('FAIL ' .. id .. ': ' .. msg) fails = fails + 1 else print('ok ' .. id) end end
local maxd, nilmix, scored = 0, 0, 0
for _, ex in ipairs(exs) do
  local qs = {ex.question, ex.question .. ' now', 'What is it?', (ex.question:gsub('%a+', 'who', 1)), ex.question}
  local fixed, per = {}, {}
  for k, c in ipairs(cfgs) do
    fixed[k] = E.victim(m, {kind = 'fixed', config = c})
    per[k] = E.scores(fixed[k], ex, qs, 64)
    for i, q in ipairs(qs) do
      local one = E.score(fixed[k], ex, q, 64)
      if (one == nil) ~= (per[k][i] == nil) then nilmix = nilmix + 1
      elseif one then maxd, scored = math.max(maxd, math.abs(per[k][i] - one) / one), scored + 1 end
    end
  end
  local eot = E.scores(E.victim(m, {kind = 'eot', configs = cfgs, probs = probs}), ex, qs, 64)
  local ed = 0
  for i = 1, #qs do
    local want = 0
    for k = 1, #cfgs do want = per[k][i] and want and want + probs[k] * per[k][i] end
    if (want == nil) ~= (eot[i] == nil) then ed = math.huge elseif want then ed = math.max(ed, math.abs(eot[i] - want)) end
  end
  check('batch-1.1 ' .. ex.id, ed <= 1e-12, string.format('eot batch vs weighted mean of the fixed batches: %.3g', ed))
  local v1 = E.victim(m, {kind = 'rpi', configs = cfgs, probs = probs, seed = 9})
  local seq = {}
  for i, q in ipairs(qs) do seq[i] = E.score(v1, ex, q, 64) end
  local d1 = m:rpi().draws
  m:rpi(false)
  local v2 = E.victim(m, {kind = 'rpi', configs = cfgs, probs = probs, seed = 9})
  local bat = E.scores(v2, ex, qs, 64)
  local d2 = m:rpi().draws
  m:rpi(false)
  local rd = 0
  for i = 1, #qs do
    if (bat[i] == nil) ~= (seq[i] == nil) then rd = math.huge elseif seq[i] then rd = math.max(rd, math.abs(bat[i] - seq[i]) / seq[i]) end
  end
  check('batch-1.2 ' .. ex.id, d1 == #qs and d2 == #qs and rd <= 1e-4,
    string.format('rpi: draws %d / %d of %d, max rel diff %.3g', d1, d2, #qs, rd))
end
print(string.format('batched vs one at a time, fixed: max rel diff %.3g over %d scores', maxd, scored))
check('batch-1.3', maxd <= 1e-4 and nilmix == 0 and scored >= 20,
  string.format('fixed batched vs single: %.3g over %d scores, %d nil in one only', maxd, scored, nilmix))
local a = qr.attack('typo', {tries = 2})
local same, n = 0, 0
for _, ex in ipairs(exs) do
  for _, src in ipairs{E.victim(m, {kind = 'fixed', config = cfgs[3]}),
                       E.victim(m, {kind = 'rpi', configs = cfgs, probs = probs, seed = 3}),
                       E.victim(m, {kind = 'eot', configs = cfgs, probs = probs})} do
    for _, budget in ipairs{7, 30} do
      local r1 = E.attack_one(m, src, a, ex, {budget = budget, seed = 2, seq = 64, query_batch = false})
      local r2 = E.attack_one(m, src, a, ex, {budget = budget, seed = 2, seq = 64})
      n = n + 1
      if r1.perturbed == r2.perturbed and r1.queries == r2.queries then same = same + 1
      else print(string.format('  %s budget %d: %q (%d) vs %q (%d)', src.name, budget, r1.perturbed, r1.queries, r2.perturbed, r2.queries)) end
      check('batch-2.1 ' .. src.name .. ' ' .. budget, r2.queries <= budget and r1.batches == 0 and r2.batches > 0,
        string.format('queries %d of %d, batches %d / %d', r2.queries, budget, r1.batches, r2.batches))
    end
  end
end
print(string.format('typo attacks, batched == sequential (text and queries): %d of %d', same, n))
check('batch-2.2', same == n, same .. ' of ' .. n)
os.exit(fails == 0 and 0 or 1)"
expect_rc batch-1 0
printf '%s\n' "$out" | grep -E 'batched|FAIL|  ' || true
# resumed on another machine: a cell is judged against clean answers computed where it is replayed. Here the
# directory is told its clean answers came from "Another CPU", two EOT cells are removed, and the rerun
# recomputes those targets' clean pass (on this machine, so no answer moves) and the two cells, equal to the
# removed ones, each naming its machine and baseline; nothing else is recomputed
cp "$R" "$T/results.same"
run "$QRUN" -e "
local j = assert(qr.json.read('$R'))
j.clean_machine = 'Another CPU'
j.keep = {w8a8 = j.cells['typo/eot/eot/w8a8'], rpi = j.cells['typo/eot/eot/rpi']}
j.cells['typo/eot/eot/w8a8'], j.cells['typo/eot/eot/rpi'] = nil, nil
assert(qr.json.write('$R', j, {indent = true}))"
expect_rc machine-1.1 0
run env OMP_NUM_THREADS=1 "$QRUN" recipes/rpi.lua "${common[@]}"
expect_rc machine-1.2 0
expect_in machine-1.3 "$out" "w8a8: 0 of 16 answers differ from Another CPU's"
n=$(printf '%s\n' "$out" | grep -c -- '->' || true)
if [ "$n" = 2 ]; then ok machine-1.4; else fail machine-1.4 "expected the 2 removed cells recomputed, saw $n: $out"; fi
for t in w8a8 rpi; do
    jcheck "machine-1.5 $t" "$R" "(function()
      local c, k, on = j.cells['typo/eot/eot/$t'], j.keep['$t'], j.clean_on and j.clean_on[j.machines[#j.machines]]
      if not (c and on and on['$t']) then return 'no recomputed cell or clean_on record' end
      if c.baseline ~= 'clean_on.' .. c.machine then return 'baseline ' .. tostring(c.baseline) end
      if c.crafted_on[c.machine] ~= c.attacked then return 'crafted_on does not count every line on this machine' end
      if on['$t'].answers_changed ~= 0 then return 'answers changed: ' .. on['$t'].answers_changed end
      if c.success.mean ~= k.success.mean or c.attacked_f1.mean ~= k.attacked_f1.mean then
        return string.format('success %s vs %s', c.success.mean, k.success.mean) end
      return j.clean_on[c.machine].fp == nil or 'fp recomputed though no fp cell was replayed'
    end)()"
done
# the report says which cells were judged on which machine's clean pass, and how far the passes differ
mkdir -p "$T/study" && ln -s "$T/rpi" "$T/study/rpi"
run "$QRUN" recipes/report.lua --run-dir="$T/study" --format=ms --out="$T/study/report.ms"
expect_rc machine-1.6 0
txt=$(tr '\n' ' ' <"$T/study/report.ms" | tr -s ' ')
expect_in machine-1.7 "$txt" "The 2 cells typo/eot/eot (targets rpi, w8a8) were replayed on"
expect_in machine-1.8 "$txt" "which differs from Another CPU's in rpi 0 of 16 answers (F1 0.0 [0.0, 0.0]) and w8a8 0 of 16 answers"
cp "$T/results.same" "$R"
# refusals: before anything is written
refuse() {
    local id=$1 needle=$2
    shift 2
    run "$QRUN" recipes/rpi.lua "${common[@]}" --run-dir="$T/bad" "$@"
    expect_rc "$id.1" 2
    expect_in "$id.2" "$err" "$needle"
    if [ -e "$T/bad" ]; then fail "$id.3" "$T/bad was written"; rm -rf "$T/bad"; else ok "$id.3"; fi
}
refuse bad-1 "--threats: no threat model named 'pgd'" --threats=transfer,pgd
refuse bad-2 "--victims: 'w6a6' is not a configuration of the sp run" --victims=w6a6
refuse bad-3 "--rpi-configs: 'w2a2' is not a configuration" --rpi-configs=fp,w2a2
refuse bad-4 "probs sum to 1.5" --rpi-probs=0.5,0.5,0.5
refuse bad-5 "--attacks: 'nope'" --attacks=nope
refuse bad-6 "--sp-dir=$T/none: no results.json there" --sp-dir="$T/none"
refuse bad-7 "--budget: expected an integer >= 1" --budget=0
# the default attacks include the word-level ones: without their resources, refused naming the setup and the way out
mkdir -p "$T/nocache"
QRUN_CACHE="$T/nocache" refuse bad-8 "scripts/setup_attacks.sh" --attacks=typo,textfooler
QRUN_CACHE="$T/nocache" refuse bad-9 "(or --attacks=typo, which needs none)" --attacks=bert_attack
finish
