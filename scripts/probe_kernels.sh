#!/usr/bin/env bash
# probe_kernels.sh - how much do quantized evaluations depend on the BLAS
# kernels? The same untuned evaluation (ptq.lua: fp and the uniform
# configurations, minmax, zero-shot) twice on this machine, once with
# OpenBLAS's Haswell (AVX2) kernels forced (OPENBLAS_CORETYPE=Haswell) and
# once with the kernels OpenBLAS picks for this CPU, then per configuration
# the paired F1 difference (95% bootstrap CI), the questions whose answer
# changed, and the verdict. fp moves only in the last bits of its logits;
# a quantized configuration rounds activations, so a last-bit difference
# can move a value across a rounding boundary, and answers can change.
#
#   bash scripts/probe_kernels.sh [--limit=N] [--configs=w8a8,w4a8] [--out=FILE] [--run-dir=DIR]
#
# Writes FILE (default reports/kernel-sensitivity.json) with both runs'
# rows and the comparison; DIR (default runs/probe-kernels) keeps each
# run's ptq results, so a rerun resumes. Each run is ptq.lua's own resumable
# evaluation; at --limit=200 on SmolLM2 with two threads a configuration
# takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=200 configs=w8a8,w4a8 out=reports/kernel-sensitivity.json dir=runs/probe-kernels
for a in "$@"; do
    case $a in
        --limit=*) limit=${a#*=} ;;
        --configs=*) configs=${a#*=} ;;
        --out=*) out=${a#*=} ;;
        --run-dir=*) dir=${a#*=} ;;
        *) echo "probe_kernels.sh: unknown option $a (known: --limit= --configs= --out= --run-dir=)" >&2; exit 2 ;;
    esac
done
[[ $limit =~ ^[1-9][0-9]*$ ]] || { echo "probe_kernels.sh: --limit=$limit: expected a positive integer" >&2; exit 2; }
qrun=build/qrun
[ -x "$qrun" ] || { echo "probe_kernels.sh: no $qrun (bash scripts/setup.sh builds it)" >&2; exit 2; }
mkdir -p "$dir"
run() { # NAME [ENV...]
    local name=$1; shift
    echo "== $name" >&2
    env "$@" "$qrun" recipes/ptq.lua --configs="$configs" --quantizers=minmax --mixed= --limit="$limit" --shots=0 \
        --out="$dir/$name.json"
}
run haswell OPENBLAS_CORETYPE=Haswell
run native PROBE_KERNELS=native # OPENBLAS_CORETYPE as the environment has it (unset: OpenBLAS's own choice)
"$qrun" -e "
local C = require('qr.cpt')
local a, b = assert(qr.json.read('$dir/haswell.json')), assert(qr.json.read('$dir/native.json'))
local cpu = require('qr.squad_qa').cpu_model()
local function row(doc, cfg) for _, r in ipairs(doc.results) do if r.config == cfg then return r end end end
local cmp = {}
for _, r in ipairs(a.results) do
  local s = row(b, r.config)
  if s and r.per_question and s.per_question then
    local p = C.paired(s.per_question.f1, r.per_question.f1)
    local changed = 0
    for i = 1, #r.per_question.f1 do if r.per_question.f1[i] ~= s.per_question.f1[i] then changed = changed + 1 end end
    cmp[#cmp + 1] = {config = r.config, f1_haswell = r.f1, f1_native = s.f1, diff_native_minus_haswell = p.diff,
      diff_ci = p.ci, verdict = p.verdict, n = p.n, questions_f1_changed = changed}
    print(string.format('%-6s F1 Haswell %6.2f  native %6.2f  paired diff %+.2f [%+.2f, %+.2f]  %d of %d questions changed F1',
      r.config, r.f1, s.f1, p.diff, p.ci[1], p.ci[2], changed, p.n))
  end
end
local doc = {cpu = cpu, limit = $limit, configs = '$configs', git_rev = require('qr.squad_qa').git_rev(),
  command = 'bash scripts/probe_kernels.sh --limit=$limit --configs=$configs',
  kernels = {haswell = 'OPENBLAS_CORETYPE=Haswell', native = 'OPENBLAS_CORETYPE=' .. (os.getenv('OPENBLAS_CORETYPE') or '(unset: OpenBLAS picks for this CPU)')},
  comparison = cmp, haswell = a.results, native = b.results}
assert(qr.json.write('$out', doc, {indent = true}))
print('wrote $out')"
