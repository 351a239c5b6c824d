#!/usr/bin/env bash
# test_faults.sh - a write that fails (here: the file-size limit of
# `ulimit -f`, which makes write() fail with EFBIG once a file would pass
# it; qrun ignores SIGXFSZ so the writer sees the error, as it would see
# ENOSPC on a full disk) while qrun writes a checkpoint, the adapters or a
# results file: the previous good file is left as it was, the message names
# the file, no temporary file is left behind, and a rerun once the limit is
# gone resumes and ends exactly where an uninterrupted run ends.
. "$(dirname "$0")/harness.sh" "$@"

# A tiny model trained with checkpoints (each ~200 KB; train.jsonl stays a
# few KB), its adapters (~64 KB) saved at the end, and a results file.
cat >"$T/train.lua" <<'LUA'
local P = require("qr.precision")
local dir, stop = arg[1], tonumber(arg[2]) -- stop: raise an error in the progress callback of that step
local m = qr.model_new{arch = "gpt2", n_layer = 2, n_embd = 64, n_head = 4, n_vocab = 97, n_ctx = 64, seed = 1}
m:quantize{weight = "minmax", act = "minmax"}
m:lora{rank = 4, slots = 2, seed = 2}
local cfgs = P.load("fp,w8a8", m)
P.assign_adapters(cfgs)
local data, s = {}, 7
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
for i = 1, 16 do
  local ids, tg = {}, {}
  for j = 1, 12 do ids[j] = 1 + rnd(96) end
  for j = 1, 12 do ids[12 + j] = ids[j] end
  for j = 1, #ids do tg[j] = (j >= 12 and j < #ids) and ids[j + 1] or -1 end
  data[i] = {ids = ids, targets = tg}
end
local r = qr.train{model = m, configs = cfgs, data = data, steps = 6, batch = 4, seq = 32, lr = 1e-2,
  seed = 3, run_dir = dir, checkpoint_every = 2, print = false,
  progress = function(p) if p.step == stop then error("stopped at step " .. stop) end end}
print("resumed_from " .. r.resumed_from)
LUA

# the reference: 6 steps without interruption
run "$QRUN" "$T/train.lua" "$T/ref" 0
expect_rc faults-1.0 0

# 1. a checkpoint write fails: a run stopped at step 5 leaves step 5's
#    checkpoint; resumed under a limit below a checkpoint's size, it fails
#    writing step 6's
run "$QRUN" "$T/train.lua" "$T/run" 5
expect_in faults-1.1 "$err" "stopped at step 5"
cp "$T/run/checkpoint" "$T/good-checkpoint"
ck_kb=$(( $(stat -c %s "$T/run/checkpoint") / 1024 ))
run bash -c 'ulimit -f "$1" && shift && exec "$@"' _ 64 "$QRUN" "$T/train.lua" "$T/run" 0
expect_fail faults-1.2
expect_in faults-1.3 "$err" "$T/run/checkpoint"
expect_in faults-1.4 "$err" "File too large"
if cmp -s "$T/run/checkpoint" "$T/good-checkpoint"; then ok faults-1.5; else fail faults-1.5 "the good checkpoint changed"; fi
left=$(ls "$T/run" | grep '\.tmp\.' || true)
if [ -z "$left" ]; then ok faults-1.6; else fail faults-1.6 "temporary files left: $left"; fi
# 2. the rerun without the limit resumes from step 5 (a run stopped by its
#    progress callback saves its checkpoint) and ends as the reference
run "$QRUN" "$T/train.lua" "$T/run" 0
expect_rc faults-2.1 0
expect_in faults-2.2 "$out" "resumed_from 5"
if cmp -s "$T/run/checkpoint" "$T/ref/checkpoint" && cmp -s "$T/run/adapters.safetensors" "$T/ref/adapters.safetensors"; then
    ok faults-2.3
else
    fail faults-2.3 "the resumed run's checkpoint or adapters differ from the uninterrupted run's"
fi
echo "checkpoint ${ck_kb} KiB, limit 64 KiB"

# 3. the adapters and a results file, written from Lua under the limit
cat >"$T/save.lua" <<'LUA'
local dir, what = arg[1], arg[2]
local m = qr.model_new{arch = "gpt2", n_layer = 2, n_embd = 64, n_head = 4, n_vocab = 97, n_ctx = 64, seed = 1}
m:lora{rank = 8, slots = 4, seed = tonumber(arg[3])}
if what == "adapters" then
  assert(m:save_adapters(dir .. "/adapters.safetensors"))
else
  local big = {}
  for i = 1, 20000 do big[i] = i * tonumber(arg[3]) end
  assert(qr.json.write(dir .. "/results.json", {results = big}))
end
LUA
mkdir -p "$T/s"
for what in adapters results; do
    f=$T/s/$what.safetensors
    [ $what = results ] && f=$T/s/results.json
    run "$QRUN" "$T/save.lua" "$T/s" $what 1
    expect_rc "faults-3.$what.1" 0
    cp "$f" "$T/good"
    run bash -c 'ulimit -f "$1" && shift && exec "$@"' _ 32 "$QRUN" "$T/save.lua" "$T/s" $what 2
    expect_fail "faults-3.$what.2"
    expect_in "faults-3.$what.3" "$err" "$f"
    if cmp -s "$f" "$T/good"; then ok "faults-3.$what.4"; else fail "faults-3.$what.4" "$f changed"; fi
    left=$(ls "$T/s" | grep '\.tmp\.' || true)
    if [ -z "$left" ]; then ok "faults-3.$what.5"; else fail "faults-3.$what.5" "temporary files left: $left"; fi
    run "$QRUN" "$T/save.lua" "$T/s" $what 2
    expect_rc "faults-3.$what.6" 0
    if cmp -s "$f" "$T/good"; then fail "faults-3.$what.7" "the rerun did not replace the file"; else ok "faults-3.$what.7"; fi
done
# the report: a write that fails (ulimit -f 16 KiB) leaves the previous
# report.pdf as it was and names what failed; a rerun with room writes it
# (only when groff and its tools are installed: scripts/setup_report.sh)
if bash scripts/setup_report.sh --check >/dev/null 2>&1; then
    cp -r tests/fixtures/report "$T/study"
    run "$QRUN" recipes/report.lua --run-dir="$T/study" --out="$T/study/report.pdf" --no-plots
    expect_rc faults-4.1 0
    cp "$T/study/report.pdf" "$T/good.pdf"
    printf '\n' >>"$T/study/study.json" # any change, so a rerun's report differs in its generation time at least
    run bash -c 'ulimit -f "$1" && shift && exec "$@"' _ 16 "$QRUN" recipes/report.lua --run-dir="$T/study" \
        --out="$T/study/report.pdf" --no-plots
    expect_fail faults-4.2
    expect_in faults-4.2b "$err" "cannot write $T/study/report.d/report.ms"
    if cmp -s "$T/study/report.pdf" "$T/good.pdf"; then ok faults-4.3; else fail faults-4.3 "report.pdf changed"; fi
    if [ -e "$T/study/report.pdf.tmp" ]; then fail faults-4.4 "report.pdf.tmp left"; else ok faults-4.4; fi
    run "$QRUN" recipes/report.lua --run-dir="$T/study" --out="$T/study/report.pdf" --no-plots
    expect_rc faults-4.5 0
    # a limit that lets the groff source through but not the PDF: the typesetting's own write fails
    cp "$T/study/report.pdf" "$T/good.pdf"
    ms_kb=$(( $(stat -c %s "$T/study/report.d/report.ms") / 1024 + 1 ))
    pdf_kb=$(( $(stat -c %s "$T/study/report.pdf") / 1024 ))
    if [ "$ms_kb" -lt "$pdf_kb" ]; then
        printf '\n' >>"$T/study/study.json"
        run bash -c 'ulimit -f "$1" && shift && exec "$@"' _ $(( (ms_kb + pdf_kb) / 2 )) "$QRUN" recipes/report.lua \
            --run-dir="$T/study" --out="$T/study/report.pdf" --no-plots
        expect_fail faults-4.6
        expect_in faults-4.7 "$err" "report: groff failed on"
        if cmp -s "$T/study/report.pdf" "$T/good.pdf"; then ok faults-4.8; else fail faults-4.8 "report.pdf changed or gone"; fi
        if [ -e "$T/study/report.pdf.tmp" ]; then fail faults-4.9 "report.pdf.tmp left"; else ok faults-4.9; fi
    else
        echo "skipped faults-4.6: the groff source (${ms_kb} KiB) is not smaller than the PDF (${pdf_kb} KiB)"
    fi
else
    echo "skipped faults-4: the report's tools are not installed (scripts/setup_report.sh)"
fi
finish
