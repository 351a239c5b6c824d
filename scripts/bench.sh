#!/usr/bin/env bash
# Benchmarks: qrun against PyTorch / Hugging Face transformers, in one run,
# on the same machine and threads, as ratios (these machines are noisy:
# never compare figures from different runs). Writes JSON (default
# results/bench.json) and prints a summary.
#   scripts/bench.sh [OUT.json [BENCH,BENCH,...]]
# BENCH (default: all): sgemm_peak train_gpt2 train_gpt2_w8a8_lora
# generate_smollm2 train_smollm2_lora train_smollm2_answer cpt_step; each runs on
# both sides where it has a reference.
# Needs the build (scripts/setup.sh) and the reference Python
# (scripts/ref/python.sh: scripts/ref/setup_venv.sh's venv, or
# QRUN_REF_PYTHON=/path/to/python).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/bench.json}"
mkdir -p "$(dirname "$out")"
py=$(scripts/ref/python.sh) || exit 1
all="sgemm_peak,train_gpt2,train_gpt2_w8a8_lora,generate_smollm2,train_smollm2_lora,train_smollm2_answer,cpt_step"
only="${2:-$all}"
for b in ${only//,/ }; do
    case ",$all," in *",$b,"*) ;; *) echo "bench.sh: unknown benchmark '$b' (known: $all)" >&2; exit 2 ;; esac
done
threads="${QRUN_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads"
cmake --build build -j "$(nproc)" --target bench_qrun >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in ${only//,/ }; do
    echo "bench: qrun $b ..." >&2
    build/bench_qrun "$b" > "$tmp/qrun_$b.json"
done
echo "bench: reference (PyTorch) ..." >&2
refs=""
for b in sgemm_peak train_gpt2 generate_smollm2 train_smollm2_lora; do
    case ",$only," in *",$b,"*) refs="$refs${refs:+,}$b" ;; esac
done
if [ -n "$refs" ]; then
    "$py" scripts/ref/bench_ref.py --threads "$threads" --only "$refs" --out "$tmp/ref.json"
else
    echo '{}' > "$tmp/ref.json"
fi
"$py" - "$tmp" "$out" <<'PY'
import json, os, sys, platform, subprocess
tmp, out = sys.argv[1], sys.argv[2]
names = ("sgemm_peak", "train_gpt2", "train_gpt2_w8a8_lora", "generate_smollm2", "train_smollm2_lora", "train_smollm2_answer", "cpt_step")
q = {b: json.load(open(os.path.join(tmp, "qrun_%s.json" % b))) for b in names
     if os.path.exists(os.path.join(tmp, "qrun_%s.json" % b))}
ref = json.load(open(os.path.join(tmp, "ref.json")))
r = ref.get("benchmarks", ref)
def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d: return None
        d = d[k]
    return d
res = {"qrun": q, "reference": ref, "ratios": {}}
R = res["ratios"]
rt = get(r, "train_gpt2", "fwd_bwd_seconds_median")
if rt and "train_gpt2" in q:
    R["train_step_qrun_over_pytorch"] = q["train_gpt2"]["step_s"] / rt
rl = get(r, "train_smollm2_lora", "tokens_per_s")
if rl and "train_smollm2_lora" in q:
    # qrun's step carries W8A8 fake quantization; PEFT's is plain fp LoRA
    R["smollm2_lora_w8a8_train_tokens_per_s_qrun_over_peft_fp"] = q["train_smollm2_lora"]["tokens_per_s"] / rl
    R["smollm2_lora_fp_train_tokens_per_s_qrun_over_peft_fp"] = q["train_smollm2_lora"]["fp_tokens_per_s"] / rl
if "train_smollm2_answer" in q:
    R["answer_loss_step_scored_rows_head_over_all_rows_head"] = q["train_smollm2_answer"]["ratio"]
if "cpt_step" in q:
    R["cpt_step_over_one_config_of_joint_step"] = q["cpt_step"]["ratio"]
if "train_gpt2_w8a8_lora" in q:
    R["w8a8_lora_step_over_fp_lora_step"] = q["train_gpt2_w8a8_lora"]["ratio"]
if "train_gpt2" in q and "sgemm_peak" in q:
    R["train_gflops_over_sgemm_peak"] = q["train_gpt2"]["gflops"] / q["sgemm_peak"]["gflops"]
for b in ("batch1", "batch4"):
    for k in ("prefill", "decode"):
        hv = get(r, "generate_smollm2", b, k + "_tokens_per_s")
        if hv and "generate_smollm2" in q:
            R["%s_%s_qrun_over_hf" % (b, k)] = q["generate_smollm2"][b][k + "_tok_s"] / hv
# the aims the issues set (docs: README "Speed"); met is judged on this run only
aims = {"train_step_qrun_over_pytorch": ("<=", 1.0), "train_gflops_over_sgemm_peak": (">=", 0.5),
        "w8a8_lora_step_over_fp_lora_step": ("<=", 1.15), "cpt_step_over_one_config_of_joint_step": ("<=", 1.05),
        "smollm2_lora_w8a8_train_tokens_per_s_qrun_over_peft_fp": (">=", 1.0)}
for b in ("batch1", "batch4"):
    for k in ("prefill", "decode"):
        aims["%s_%s_qrun_over_hf" % (b, k)] = (">=", 1.5)
res["aims"] = {k: {"aim": op + " " + str(v), "value": round(R[k], 3),
                   "met": (R[k] <= v) if op == "<=" else (R[k] >= v)}
               for k, (op, v) in aims.items() if k in R}
rss = {}
for name, qb, rb in (("train_gpt2", "train_gpt2", "train_gpt2"), ("generate_smollm2", "generate_smollm2", "generate_smollm2"),
                     ("train_smollm2_lora", "train_smollm2_lora", "train_smollm2_lora")):
    if qb in q: rss["qrun_" + name] = q[qb]["peak_rss_mb"]
    if get(r, rb, "peak_rss_mb"): rss["reference_" + name] = get(r, rb, "peak_rss_mb")
res["peak_rss_mb"] = rss
try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except Exception:
    rev = "unknown"
res["git_rev"] = rev
res["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0"))
res["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "")
json.dump(res, open(out, "w"), indent=2)
print(json.dumps(res["ratios"], indent=2))
for k, a in res["aims"].items():
    print("%-58s %8.3f  aim %-7s %s" % (k, a["value"], a["aim"], "met" if a["met"] else "NOT MET"))
print("wrote", out)
PY
