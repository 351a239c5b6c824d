"""bench_ref.py - the PyTorch / Hugging Face side of qrun's benchmarks.

    "$(scripts/ref/python.sh)" scripts/ref/bench_ref.py [--out FILE] [--only a,b,...] [--threads 2]
                                    [--attn sdpa|eager] [--model GGUF]

Prints one JSON object (or writes it to --out). Every benchmark runs in its
own subprocess, so that its peak resident memory (the child's ru_maxrss,
reported as peak_rss_mb) is its own. All on CPU, float32, torch.set_num_threads(--threads), eager
PyTorch (no torch.compile). Timings are medians after warm-up.

Benchmarks:
  sgemm_peak         torch.mm 2048x2048 @ 2048x2048, GFLOP/s (2 n^3 flops).
  train_gpt2         GPT2LMHeadModel, GPT2Config() 124M shape, random init,
                     dropout 0, batch 4 x 256 random tokens, LM cross-entropy.
                     One step = zero_grad + forward + backward (median of 7
                     after 2 warm-up); also with an AdamW step (median of 5).
                     FLOPs per step (fwd + bwd = 3 x forward):
                       6 * N * BT               N = non-embedding parameters
                                                (every parameter but wte, wpe)
                     + 12 * L * T * C * BT      attention scores and weighted
                                                sum, full T x T (no causal
                                                halving): fwd 4 L T C per token
                     + 6 * C * V * BT           the tied LM head
  generate_smollm2   SmolLM2-135M-Instruct, from the Q4_1 GGUF dequantized to
                     float32 by transformers (converted once to a temporary
                     HF directory so that loading is not in the memory peak).
                     Prefill: one forward over a 256-token prompt with
                     use_cache=True; decode: 64 greedy steps feeding one token
                     at a time with the KV cache. Batch 1 and 4, tokens/s
                     counted over the batch, median of 3.
  train_smollm2_lora PEFT LoRA r=8, alpha=16, dropout 0 on q,k,v,o,gate,up,down
                     of SmolLM2, batch 4 x 256 random tokens; one step =
                     zero_grad + forward + backward + AdamW step (lr 1e-4);
                     training tokens/s, median of 5 after 2 warm-up.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCHES = ["sgemm_peak", "train_gpt2", "generate_smollm2", "train_smollm2_lora"]
DEFAULT_MODEL = os.environ.get("QRUN_MODEL") or os.path.join(
    os.path.expanduser("~"), ".cache", "qrun", "SmolLM2-135M-Instruct.Q4_1.gguf"
)


def rss_mb():
    """Current resident set size (MB) from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timeit(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


# --- the benchmarks, each run inside its own child process -----------------


def bench_sgemm_peak(a):
    torch = torch_setup(a.threads)
    n = 2048
    x, y = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    med, ts = timeit(lambda: torch.mm(x, y, out=out), 2, 7)
    return {"n": n, "seconds_median": med, "seconds_all": ts, "gflops": 2 * n**3 / med / 1e9}


def bench_train_gpt2(a):
    torch = torch_setup(a.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    B, T = 4, 256
    cfg = GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation=a.attn)
    model = GPT2LMHeadModel(cfg).float().train()
    assert model.config._attn_implementation == a.attn, model.config._attn_implementation
    L, C, V = cfg.n_layer, cfg.n_embd, cfg.vocab_size
    n_params = sum(p.numel() for p in model.parameters())  # tied lm_head counted once
    n_emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    n_nonemb = n_params - n_emb
    BT = B * T
    flops = 6 * n_nonemb * BT + 12 * L * T * C * BT + 6 * C * V * BT
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (B, T), generator=g)
    losses = []

    def step():
        model.zero_grad(set_to_none=False)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        losses.append(loss.item())

    med, ts = timeit(step, 2, 7)
    loss_no_update = losses[-1]  # same batch, no update: the loss stays put
    losses.clear()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step_opt():
        step()
        opt.step()

    med_opt, ts_opt = timeit(step_opt, 2, 5)
    return {
        "batch": B, "seq": T, "attn_implementation": a.attn,
        "n_params": n_params, "n_params_non_embedding": n_nonemb,
        "flops_per_step": flops,
        "flops_formula": "6*N_nonemb*BT + 12*L*T*C*BT + 6*C*V*BT",
        "fwd_bwd_seconds_median": med, "fwd_bwd_seconds_all": ts,
        "fwd_bwd_gflops": flops / med / 1e9, "fwd_bwd_tokens_per_s": BT / med,
        "with_adamw_seconds_median": med_opt, "with_adamw_seconds_all": ts_opt,
        "with_adamw_tokens_per_s": BT / med_opt,
        "loss_without_update": loss_no_update,
        "loss_adamw_first": losses[0], "loss_adamw_last": losses[-1],
        "rss_after_run_mb": rss_mb(),
    }


def smollm2_dir(a, torch):
    """The float32 HF directory converted once by the parent."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(a.hf_dir, dtype=torch.float32, attn_implementation=a.attn)
    return model


def bench_generate_smollm2(a):
    torch = torch_setup(a.threads)
    model = smollm2_dir(a, torch).eval()
    rss_load = rss_mb()
    V = model.config.vocab_size
    T, NEW = 256, 64
    g = torch.Generator().manual_seed(2)
    res = {"prompt_tokens": T, "new_tokens": NEW, "attn_implementation": a.attn, "rss_after_load_mb": rss_load}
    for B in (1, 4):
        x = torch.randint(17, V, (B, T), generator=g)  # ids 0..16 are special tokens

        def prefill():
            with torch.no_grad():
                return model(input_ids=x, use_cache=True)

        def decode():
            with torch.no_grad():
                out = model(input_ids=x, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                t0 = time.perf_counter()
                for _ in range(NEW):
                    out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                    past = out.past_key_values
                    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                return time.perf_counter() - t0

        med_p, ts_p = timeit(prefill, 1, 3)
        decode()  # warm-up
        ts_d = [decode() for _ in range(3)]
        med_d = statistics.median(ts_d)
        res["batch%d" % B] = {
            "prefill_seconds_median": med_p, "prefill_seconds_all": ts_p,
            "prefill_tokens_per_s": B * T / med_p,
            "decode_seconds_median": med_d, "decode_seconds_all": ts_d,
            "decode_tokens_per_s": B * NEW / med_d,
        }
    return res


def bench_train_smollm2_lora(a):
    torch = torch_setup(a.threads)
    from peft import LoraConfig, get_peft_model

    model = smollm2_dir(a, torch)
    lcfg = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    model = get_peft_model(model, lcfg)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    B, T = 4, 256
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(3)
    x = torch.randint(17, V, (B, T), generator=g)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    losses = []

    def step():
        opt.zero_grad(set_to_none=False)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())

    med, ts = timeit(step, 2, 5)
    return {
        "batch": B, "seq": T, "r": 8, "alpha": 16, "attn_implementation": a.attn,
        "trainable_params": trainable, "total_params": total,
        "step_seconds_median": med, "step_seconds_all": ts,
        "tokens_per_s": B * T / med,
        "loss_first": losses[0], "loss_last": losses[-1],
        "rss_after_run_mb": rss_mb(),
    }


# --- the parent: environment, conversion, one child per benchmark ----------


def environment(threads):
    import torch
    import transformers

    torch.set_num_threads(threads)
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "cpu": cpu, "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "mkl_available": torch.backends.mkl.is_available(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "openmp_available": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    try:
        import peft

        env["peft"] = peft.__version__
    except ImportError:
        pass
    return env


def convert_smollm2(model_path, out_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, name = os.path.split(model_path)
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    m.config.quantization_config = None  # plain float32 weights from here on
    if hasattr(m, "hf_quantizer"):
        m.hf_quantizer = None
    m.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(d, gguf_file=name).save_pretrained(out_dir)


def run_child(name, a):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--threads", str(a.threads), "--attn", a.attn]
    if a.hf_dir:
        cmd += ["--hf-dir", a.hf_dir]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": "exit %d" % p.returncode, "stderr_tail": err[-2000:]}
    res = json.loads(out.strip().splitlines()[-1])
    res["wall_seconds_total"] = wall
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--hf-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child:
        res = globals()["bench_" + a.child](a)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return

    names = a.only.split(",") if a.only else BENCHES
    for n in names:
        if n not in BENCHES:
            sys.exit("bench_ref: unknown benchmark %r (have %s)" % (n, ", ".join(BENCHES)))
    report = {"environment": environment(a.threads), "attn_implementation": a.attn, "benchmarks": {}}
    tmp = None
    try:
        if any("smollm2" in n for n in names):
            if not os.path.exists(a.model):
                sys.exit("bench_ref: %s not found (run scripts/fetch_model.sh or set QRUN_MODEL)" % a.model)
            tmp = tempfile.mkdtemp(prefix="bench_ref_smollm2_")
            convert_smollm2(a.model, tmp)
            a.hf_dir = tmp
            report["smollm2_source"] = a.model
        for n in names:
            print("bench_ref: %s ..." % n, file=sys.stderr, flush=True)
            report["benchmarks"][n] = run_child(n, a)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
