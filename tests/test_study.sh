#!/usr/bin/env bash
# test_study.sh - recipes/study.lua --scale=smoke end to end on the fuzz
# corpus's tiny Llama with tiny SQuAD-format files (tests/tiny_squad.lua):
# every stage runs (ptq, sp, the four losses, search, cpt, rpi;
# report when recipes/report.lua and its tools are there), study.json
# records each command with exit 0, a rerun skips every stage, a failed
# stage stops the study with a message and resumes on the rerun, --dry-run
# writes nothing, bad options are refused naming them; each stage's peak
# memory and CPU time are recorded; a stage that ran on another CPU is
# named, and rerun here with --rerun-other-cpu.
. "$(dirname "$0")/harness.sh" "$@"
TINY=tests/fuzz/corpus/fuzz_model/tiny_llama.gguf
run "$QRUN" tests/tiny_squad.lua "$T" 40 16
expect_rc data-1 0
common=(--scale=smoke --model="$TINY" --data="$T/train.json" --eval-data="$T/dev.json" --max-new-tokens=4 --seq=64)
# a stage that fails first: search before its sp bank exists
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=search
expect_rc study-1.1 1
expect_in study-1.2 "$err" "stage search failed"
jcheck study-1.3 "$T/run/study.json" 'j.stages.search.status ~= 0 or "status"'
# the whole study; the failed stage now runs
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run"
expect_rc study-2.1 0
for s in ptq sp sp-ce sp-kd sp-cascade sp-feature search cpt rpi; do
    jcheck "study-2.2 $s" "$T/run/study.json" "j.stages['$s'] and j.stages['$s'].status == 0 or 'stage $s'"
done
for f in ptq/results.json sp/results.json sp/adapters.safetensors sp-ce/results.json sp-kd/results.json sp-cascade/results.json \
    sp-feature/results.json search/results.json cpt/results.json rpi/results.json; do
    if [ -s "$T/run/$f" ]; then ok "study-2.3 $f"; else fail "study-2.3 $f" "missing"; fi
done
jcheck study-2.4 "$T/run/sp-cascade/results.json" 'j.teacher == "cascade" or j.teacher'
jcheck study-2.5 "$T/run/study.json" 'j.scale == "smoke" or j.scale'
# sp.lua names its machine in its results: the CPU model and the kernels' fingerprint the study recorded
k=$(F="$T/run/study.json" "$QRUN" -e 'print(qr.json.read(qr.getenv("F")).stages.sp.kernels)')
jcheck study-2.11 "$T/run/sp/results.json" "j.kernels == '$k' and type(j.cpu) == 'string' or tostring(j.kernels)"
# each stage's peak memory, CPU time and CPU model (qr.spawn's wait4 rusage): a recipe
# holds at least its model, so at least a few MB; search ran twice (failed, then resumed)
jcheck study-2.7 "$T/run/study.json" '(function()
  for name, st in pairs(j.stages) do
    if type(st.peak_rss_mb) ~= "number" or st.peak_rss_mb < 2 then return name .. " peak_rss_mb " .. tostring(st.peak_rss_mb) end
    if type(st.cpu_seconds) ~= "number" or st.cpu_seconds <= 0 then return name .. " cpu_seconds " .. tostring(st.cpu_seconds) end
    if type(st.cpu) ~= "string" or st.cpu == "" then return name .. " cpu " .. tostring(st.cpu) end
    if type(st.kernels) ~= "string" or not st.kernels:match("^%x+$") or #st.kernels ~= 16 then
      return name .. " kernels " .. tostring(st.kernels) end
  end
  return j.stages.search.runs == 2 or ("search runs " .. tostring(j.stages.search.runs)) end)()'
# the report: made when its tools are installed, else skipped with a message
if bash scripts/setup_report.sh --check >/dev/null 2>&1; then
    if head -c 4 "$T/run/report.pdf" 2>/dev/null | grep -q '%PDF'; then ok study-2.6; else fail study-2.6 "no report.pdf"; fi
    # its text: the six questions' sections, and the numbers of the run's JSON
    pdftotext "$T/run/report.pdf" "$T/report.txt" 2>/dev/null
    txt=$(sed -e ':a;N;$!ba;s/-\n */-/g;s/\n/ /g;s/  */ /g' "$T/report.txt" 2>/dev/null)
    for t in "Task accuracy under every configuration tried" "How the best configuration was found" \
        "Training objectives for switching" "Cyclic precision training against joint training" \
        "Random precision inference against fixed precision" "Research directions"; do
        expect_in "study-2.8 ($t)" "$txt" "$t"
    done
    cat >"$T/nums.lua" <<'EOF'
-- the numbers as the report writes them (an estimate and its interval)
local R = require("qr.report")
local sp = assert(qr.json.read(arg[1] .. "/sp/results.json"))
local rp = assert(qr.json.read(arg[1] .. "/rpi/results.json"))
for _, r in ipairs(sp.results) do if r.tuned and r.config == "fp" then print(R.est(r.f1, r.f1_ci)) end end
print(R.est(rp.clean.rpi.f1.mean, rp.clean.rpi.f1.ci))
EOF
    { read -r f1; read -r rf1; } < <("$QRUN" "$T/nums.lua" "$T/run")
    expect_in "study-2.9 (tuned fp F1 $f1, sp/results.json)" "$txt" "$f1"
    expect_in "study-2.10 (RPI clean F1 $rf1, rpi/results.json)" "$txt" "$rf1"
else
    expect_in study-2.6 "$out" "its tools are not installed"
fi
# the rerun skips every stage
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run"
expect_rc study-3.1 0
n=$(printf '%s\n' "$out" | grep -c 'skipped$')
if [ "$n" -ge 8 ]; then ok "study-3.2 ($n stages skipped)"; else fail study-3.2 "only $n stages skipped: $out"; fi
# and so does a rerun through another path to the same qrun (the stages' commands name the binary as invoked)
ln -s "$(readlink -f "$QRUN")" "$T/qrun-elsewhere"
run env OMP_NUM_THREADS=1 "$T/qrun-elsewhere" recipes/study.lua "${common[@]}" --run-dir="$T/run"
expect_rc study-3.3 0
n=$(printf '%s\n' "$out" | grep -c 'skipped$')
if [ "$n" -ge 8 ]; then ok "study-3.4 ($n stages skipped through another path to qrun)"; else fail study-3.4 "only $n stages skipped: $out"; fi
# a finished stage recorded on another CPU: skipped with a note; --rerun-other-cpu moves its directory aside and
# reruns it here (the loss comparison is made on one machine), keeping the old record under <stage>@<cpu>
cat >"$T/othercpu.lua" <<'EOF'
local j = assert(qr.json.read(arg[1]))
j.stages["sp-kd"].cpu, j.stages["sp-kd"].kernels = "Another CPU", "0123456789abcdef"
assert(qr.json.write(arg[1], j, {indent = true}))
EOF
run "$QRUN" "$T/othercpu.lua" "$T/run/study.json"
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=losses
expect_rc study-6.1 0
expect_in study-6.2 "$out" "(it ran on Another CPU (kernels 0123456789abcdef), this machine is"
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=losses --rerun-other-cpu
expect_rc study-6.3 0
expect_in study-6.4 "$out" "sp-kd.another-cpu-0123456789abcdef, rerunning it here"
n=$(printf '%s\n' "$out" | grep -c 'skipped$')
if [ "$n" -eq 3 ]; then ok "study-6.5 (the other 3 objectives skipped)"; else fail study-6.5 "$n skipped: $out"; fi
if [ -s "$T/run/sp-kd.another-cpu-0123456789abcdef/results.json" ] && [ -s "$T/run/sp-kd/results.json" ]; then ok study-6.6
else fail study-6.6 "the moved-aside and the rerun results.json"; fi
jcheck study-6.7 "$T/run/study.json" 'j.stages["sp-kd"].cpu ~= "Another CPU" and j.stages["sp-kd"].status == 0
  and j.stages["sp-kd@Another CPU/0123456789abcdef"].cpu == "Another CPU" or "stages"'
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=losses --rerun-other-cpu
n=$(printf '%s\n' "$out" | grep -c 'skipped$')
if [ "$n" -eq 4 ]; then ok "study-6.8 (a second rerun skips all 4)"; else fail study-6.8 "$n skipped: $out"; fi
# a stage begun on another machine and interrupted (study.json records "started" before a stage runs): resuming it
# here says so, and the record names both machines
cat >"$T/begun.lua" <<'EOF'
local j = assert(qr.json.read(arg[1]))
local st = j.stages["sp-feature"]
st.status, st.cpu, st.kernels = "started", "Another CPU", "fedcba9876543210"
assert(qr.json.write(arg[1], j, {indent = true}))
EOF
run "$QRUN" "$T/begun.lua" "$T/run/study.json"
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=losses
expect_rc study-6.9 0
expect_in study-6.10 "$err" "sp-feature was begun on Another CPU (kernels fedcba9876543210); resuming it on"
jcheck study-6.11 "$T/run/study.json" 'j.stages["sp-feature"].status == 0
  and j.stages["sp-feature"].kernels:find("^fedcba9876543210 then %x+$") ~= nil
  and j.stages["sp-feature"].cpu:find("^Another CPU then ") ~= nil or (tostring(j.stages["sp-feature"].cpu) .. " / " .. tostring(j.stages["sp-feature"].kernels))'
# a finished stage that recorded no fingerprint (an older study.json): --rerun-other-cpu cannot tell it ran here, so
# reruns it
cat >"$T/nokern.lua" <<'EOF'
local j = assert(qr.json.read(arg[1]))
j.stages["sp-ce"].kernels = nil
assert(qr.json.write(arg[1], j, {indent = true}))
EOF
run "$QRUN" "$T/nokern.lua" "$T/run/study.json"
run env OMP_NUM_THREADS=1 "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/run" --stages=losses --rerun-other-cpu
expect_rc study-6.12 0
expect_in study-6.13 "$out" "(kernels not recorded); this machine is"
jcheck study-6.14 "$T/run/study.json" 'type(j.stages["sp-ce"].kernels) == "string" and j.stages["sp-ce"].status == 0 or "sp-ce"'
# --dry-run prints the commands and writes nothing
run "$QRUN" recipes/study.lua "${common[@]}" --run-dir="$T/dry" --dry-run
expect_rc study-4.1 0
expect_in study-4.2 "$out" "recipes/cpt.lua"
if [ -e "$T/dry" ]; then fail study-4.3 "--dry-run wrote $T/dry"; else ok study-4.3; fi
# refusals
run "$QRUN" recipes/study.lua --scale=huge --run-dir="$T/bad"
expect_rc study-5.1 2
expect_in study-5.2 "$err" "--scale=huge: expected smoke, default or full"
run "$QRUN" recipes/study.lua --stages=sp,train --run-dir="$T/bad"
expect_rc study-5.3 2
expect_in study-5.4 "$err" "--stages: no stage named 'train'"
if [ -e "$T/bad" ]; then fail study-5.5 "a refused run wrote $T/bad"; else ok study-5.5; fi
finish
