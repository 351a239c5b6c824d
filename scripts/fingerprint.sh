#!/usr/bin/env bash
# fingerprint.sh - the kernels' fingerprint of this machine (qr.squad_qa.
# kernel_fingerprint: a hash of the float bits of a model's logits at fp, w8a8
# and w4a8) for each build and matrix-product kernel, at 1 and 2 threads:
#   build/qrun        (-march=native)  with OpenBLAS and with the portable products
#   build-portable/   (cmake -DQR_PORTABLE=ON: -march=x86-64-v3, portable products)
# One JSON line per combination goes to stdout and to the ledger
# $QR_FINGERPRINTS (default reports/kernel-fingerprints.jsonl, committed), so
# that runs on different hosts can be compared: two hosts whose lines agree for
# a build and kernel compute that model bit for bit alike, and a study run with
# it can move between them.
#
#   scripts/fingerprint.sh [MODEL]        (default: the default model, SmolLM2)
#   scripts/fingerprint.sh --compare      (per build/kernel/threads: the hosts and whether they agree)
set -euo pipefail
cd "$(dirname "$0")/.."
ledger=${QR_FINGERPRINTS:-reports/kernel-fingerprints.jsonl}

if [ "${1:-}" = --compare ]; then
    [ -s "$ledger" ] || { echo "fingerprint.sh: no ledger at $ledger (run scripts/fingerprint.sh first)" >&2; exit 1; }
    L="$ledger" build/qrun -e '
      local f = assert(io.open(qr.getenv("L")))
      local by, order = {}, {}
      for line in f:lines() do
        local j = qr.json.decode(line)
        if j then
          local key = string.format("%s %s %s threads, model %s", j.build, j.gemm, j.threads, j.model)
          if not by[key] then by[key] = {}; order[#order + 1] = key end
          by[key][#by[key] + 1] = j
        end
      end
      f:close()
      for _, key in ipairs(order) do
        local seen, hosts = {}, {}
        for _, j in ipairs(by[key]) do
          seen[j.fingerprint] = true
          hosts[#hosts + 1] = j.cpu .. " " .. j.fingerprint
        end
        local n = 0
        for _ in pairs(seen) do n = n + 1 end
        print(string.format("%-60s %s: %s", key, n == 1 and "agree" or (n .. " different"), table.concat(hosts, "; ")))
      end'
    exit 0
fi

model=${1:-}
[ -x build/qrun ] || { echo "fingerprint.sh: build/qrun is missing (bash scripts/setup.sh builds it)" >&2; exit 2; }
if [ ! -x build-portable/qrun ]; then
    echo "fingerprint.sh: building build-portable/ (cmake -DQR_PORTABLE=ON) ..." >&2
    cmake -S . -B build-portable -DQR_PORTABLE=ON >/dev/null
    cmake --build build-portable -j "$(nproc)" --target qrun >/dev/null
fi
mkdir -p "$(dirname "$ledger")"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for build in build build-portable; do
    for gemm in blas portable; do
        [ "$build" = build-portable ] && [ "$gemm" = blas ] && continue
        for th in 1 2; do
            line=$(OMP_NUM_THREADS=$th QR_KERNELS=$gemm M="$model" B="$build" R="$rev" TH="$th" "$build/qrun" -e '
              local qa = require("qr.squad_qa")
              local m = qr.getenv("M")
              if m == nil or m == "" then m = assert(qr.default_model()) end
              local t = qr.now()
              local fp = qa.kernel_fingerprint(m)
              print(qr.json.encode({build = qr.getenv("B"), gemm = (qr.kernels()), threads = tonumber(qr.getenv("TH")),
                fingerprint = fp, cpu = qa.cpu_model(), model = require("qr.squad_qa").portable_path(m),
                rev = qr.getenv("R"), date = os.date("!%Y-%m-%dT%H:%M:%SZ"), seconds = qr.now() - t}))')
            echo "$line"
            echo "$line" >>"$ledger"
        done
    done
done
