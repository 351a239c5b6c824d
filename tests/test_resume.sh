#!/bin/bash
# test_resume.sh - training survives SIGKILL: a tiny switchable-precision
# run (random GPT-2, 2 layers, vocab 97, synthetic copy task, configurations
# fp + w8a8, a checkpoint every 3 steps) is run once uninterrupted, then in a
# second run directory killed with SIGKILL at random moments and rerun with
# the same command until it completes. The final adapters must be
# bit-identical (sha256), and the log must hold one line per step.
#   bash tests/test_resume.sh build/qrun        (from the repo root)
# Ends with "N passed, M failed"; exits non-zero on failure.
set -u
QRUN=${1:-build/qrun}
tmp=$(mktemp -d /tmp/qr_test_resume.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

cat > "$tmp/tiny.lua" <<'LUA'
-- a tiny training run; the run directory is the first argument
local dir = assert(arg[1], "usage: tiny.lua RUN_DIR")
local m = qr.model_new{arch = "gpt2", n_layer = 2, n_embd = 64, n_head = 4, n_vocab = 97, n_ctx = 64, seed = 1}
m:quantize{weight = "minmax", act = "minmax"}
m:lora{rank = 4, slots = 2, seed = 2}
local P = require("qr.precision")
local cfgs = P.load("fp,w8a8", m)
P.assign_adapters(cfgs)
local data, s = {}, 7
local function rnd(n) s = (s * 1103515245 + 12345) % 2147483648; return s % n end
for i = 1, 64 do
  local plen = 8 + rnd(16)
  local ids, tg = {}, {}
  for j = 1, plen do ids[j] = 1 + rnd(96) end
  for j = 1, plen do ids[plen + j] = ids[j] end
  for j = 1, #ids do tg[j] = (j >= plen and j < #ids) and ids[j + 1] or -1 end
  data[i] = {ids = ids, targets = tg}
end
local r = qr.train{model = m, configs = cfgs, data = data, steps = 40, batch = 4, seq = 64, lr = 5e-3,
  warmup = 4, min_lr = 5e-4, clip = 1.0, accum = 2, seed = 3, run_dir = dir, checkpoint_every = 3,
  progress = false}
print(string.format("done %d steps, resumed from %d", r.steps, r.resumed_from))
LUA

sha() { sha256sum "$1" | cut -d' ' -f1; }

# 1. uninterrupted
t0=$(date +%s.%N)
if "$QRUN" "$tmp/tiny.lua" "$tmp/a" > "$tmp/a.out" 2>&1; then ok "resume-1.1 uninterrupted run"; else bad "resume-1.1 uninterrupted run" "$(tail -3 "$tmp/a.out")"; fi
t1=$(date +%s.%N)
ref=$(sha "$tmp/a/adapters.safetensors" 2>/dev/null)
[ -n "$ref" ] && ok "resume-1.2 adapters written" || bad "resume-1.2 adapters written" "no $tmp/a/adapters.safetensors"
dur_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "  uninterrupted run: ${dur_ms} ms, adapters sha256 ${ref:0:16}..."

# 2. killed at random moments, rerun until it completes. A moment is chosen
# by progress, not by clock (a clock window measured on a loaded machine can
# outlast the whole run on a quiet one): wait until the log shows a random
# number of further steps (0-5), then a random 0-40 ms more, then SIGKILL.
# Kills land before, during and after checkpoint writes.
RANDOM=$$
kills=0
nlines() { [ -f "$tmp/b/train.jsonl" ] && wc -l < "$tmp/b/train.jsonl" || echo 0; }
for try in $(seq 1 30); do
  start=$(nlines)
  "$QRUN" "$tmp/tiny.lua" "$tmp/b" > "$tmp/b.out" 2>&1 &
  pid=$!
  if [ $kills -lt 6 ]; then
    # for the first 6 tries; then let it finish
    want=$((RANDOM % 6))
    while kill -0 "$pid" 2>/dev/null; do
      now=$(nlines)
      # a resumed run first cuts the log back to its checkpoint
      [ "$now" -lt "$start" ] && start=$now
      [ $((now - start)) -ge "$want" ] && break
      sleep 0.005
    done
    ms=$((RANDOM % 40))
    sleep "$(awk -v x="$ms" 'BEGIN { printf "%.3f", x / 1000 }')"
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      kills=$((kills + 1))
      step=$(sed -n 's/^step=//p' "$tmp/b/checkpoint" 2>/dev/null | head -1)
      echo "  killed ${want} logged steps + ${ms} ms in (checkpoint at step ${step:-none})"
      continue
    fi
  fi
  if wait "$pid"; then break; fi
  bad "resume-2.1 rerun $try" "$(tail -3 "$tmp/b.out")"
  break
done
echo "  $kills kills; last run: $(tail -1 "$tmp/b.out")"
[ $kills -ge 1 ] && ok "resume-2.1 killed at least once ($kills)" || bad "resume-2.1 killed at least once" "the run always finished first"
got=$(sha "$tmp/b/adapters.safetensors" 2>/dev/null)
if [ -n "$got" ] && [ "$got" = "$ref" ]; then
  ok "resume-2.2 adapters bit-identical after $kills kills"
else
  bad "resume-2.2 adapters bit-identical" "sha256 ${got:-missing} vs $ref"
fi
lines=$(wc -l < "$tmp/b/train.jsonl" 2>/dev/null || echo 0)
[ "$lines" = 40 ] && ok "resume-2.3 log has one line per step" || bad "resume-2.3 log has one line per step" "$lines lines"
strip() { sed 's/,"seconds":[^}]*}/}/' "$1"; }
if cmp -s <(strip "$tmp/a/train.jsonl") <(strip "$tmp/b/train.jsonl"); then
  ok "resume-2.4 logs agree except wall time"
else
  bad "resume-2.4 logs agree" "$(diff <(strip "$tmp/a/train.jsonl") <(strip "$tmp/b/train.jsonl") | head -4)"
fi
ls "$tmp/b" | grep -q 'tmp\.' && bad "resume-2.5 no temporary files left" "$(ls "$tmp/b")" || ok "resume-2.5 no temporary files left"

# 3. the same command on a completed run does nothing more and changes nothing;
# it removes the temporaries a writer killed mid-write leaves (a kill during
# the final adapters write leaves adapters.safetensors.tmp.<pid>, and a later
# run finishes without ever writing that name again)
for f in adapters.safetensors.tmp.99999 checkpoint.tmp.99998 train.jsonl.tmp.99997; do : > "$tmp/b/$f"; done
"$QRUN" "$tmp/tiny.lua" "$tmp/b" > "$tmp/c.out" 2>&1
ls "$tmp/b" | grep -q 'tmp\.' && bad "resume-3.2 a killed writer's temporaries removed by the next run" "$(ls "$tmp/b")" ||
  ok "resume-3.2 a killed writer's temporaries removed by the next run"
[ "$(sha "$tmp/b/adapters.safetensors")" = "$ref" ] && grep -q "resumed from 40" "$tmp/c.out" &&
  ok "resume-3.1 rerun of a finished run" || bad "resume-3.1 rerun of a finished run" "$(tail -2 "$tmp/c.out")"

# 4. a corrupt checkpoint is refused and left as it was
cp "$tmp/b/checkpoint" "$tmp/ck.good"
printf 'X' | dd of="$tmp/b/checkpoint" bs=1 seek=2000 conv=notrunc 2>/dev/null
cp "$tmp/b/checkpoint" "$tmp/ck.bad"
if "$QRUN" "$tmp/tiny.lua" "$tmp/b" > "$tmp/d.out" 2>&1; then
  bad "resume-4.1 corrupt checkpoint refused" "the run went on"
else
  grep -q "$tmp/b/checkpoint: checksum" "$tmp/d.out" && ok "resume-4.1 corrupt checkpoint refused, naming file and field" ||
    bad "resume-4.1 message" "$(tail -2 "$tmp/d.out")"
fi
cmp -s "$tmp/b/checkpoint" "$tmp/ck.bad" && ok "resume-4.2 refused checkpoint untouched" || bad "resume-4.2 refused checkpoint untouched" "it changed"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
