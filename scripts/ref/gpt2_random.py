"""gpt2_random.py - a GPT-2-shaped model with fixed random weights, generated
bit-identically here and in C (tests/gpt2_random.h).

We cannot download GPT-2 and cannot commit a 500 MB checkpoint, so both sides
regenerate the weights from a seed. Every value is exact in float32, so the C
and Python tensors are the same bits, not merely close.

The generator (keep in step with tests/gpt2_random.h):

  splitmix64(x): z = x + 0x9E3779B97F4A7C15
                 z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                 z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                 return z ^ (z >> 31)            (all mod 2^64)

  tensor k (0-based, HF GPT-2 state-dict order, see tensor_specs), element i
  (flat row-major index in the stored shape):
      u = splitmix64(seed * 1000003 + k * 2^40 + i)      (mod 2^64)
      r = (int)(u >> 40) - 2^23                          in [-2^23, 2^23)
  kind MAT/EMB/BIAS:  value = r * 2^-23 * 2^-e   (uniform in [-2^-e, 2^-e))
      wte                        e = 4   (std 0.036: logits of std ~1)
      wpe                        e = 6   (std 0.009)
      attn.c_attn.w, mlp.c_fc.w  e = 5   (std 0.018, like GPT-2's 0.02)
      attn.c_proj.w, mlp.c_proj.w e = 7  (std 0.0045 ~ 0.02/sqrt(2*n_layer))
      every bias (LayerNorm's too) e = 6
  kind LNW (ln_1/ln_2/ln_f weight):
      q = (int)(u >> 43) - 2^20                          in [-2^20, 2^20)
      value = 1 + q * 2^-23                              in [0.875, 1.125)
  |r| < 2^24 and |q| < 2^21, so every product and the sum 1 + q*2^-23 are
  exact in float32.

Bit-identity check: hash64(values) = sum over i of
splitmix64(bits(v_i) | i << 32) mod 2^64, where bits() is the float32 bit
pattern. (Not FNV-1a: FNV is byte-serial and would take minutes in pure
Python over 500 MB; this one vectorises in numpy and is a loop in C.)

HF layout: Conv1D weights are stored (in, out); names carry no "transformer."
prefix and lm_head is tied to wte and absent, as in the hub's gpt2 file.

Usage: "$(scripts/ref/python.sh)" scripts/ref/gpt2_random.py OUT_DIR [--seed 1234] [--layers 12 --embd 768
       --heads 12 --positions 1024 --vocab 50257]
"""
import argparse
import json
import os
import shutil

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB

# kinds: (name, scale exponent e); LNW is special-cased
KIND_EXP = {"wte": 4, "wpe": 6, "mat": 5, "proj": 7, "bias": 6}
LNW = "lnw"

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER_DIR = os.path.join(REPO, "tests", "data", "gpt2-tokenizer")


def tensor_specs(n_layer, n_embd, n_positions, n_vocab):
    """[(name, shape, kind)] in HF GPT-2 state-dict order; index = k."""
    C = n_embd
    t = [("wte.weight", (n_vocab, C), "wte"), ("wpe.weight", (n_positions, C), "wpe")]
    for l in range(n_layer):
        p = "h.%d." % l
        t += [
            (p + "ln_1.weight", (C,), LNW),
            (p + "ln_1.bias", (C,), "bias"),
            (p + "attn.c_attn.weight", (C, 3 * C), "mat"),
            (p + "attn.c_attn.bias", (3 * C,), "bias"),
            (p + "attn.c_proj.weight", (C, C), "proj"),
            (p + "attn.c_proj.bias", (C,), "bias"),
            (p + "ln_2.weight", (C,), LNW),
            (p + "ln_2.bias", (C,), "bias"),
            (p + "mlp.c_fc.weight", (C, 4 * C), "mat"),
            (p + "mlp.c_fc.bias", (4 * C,), "bias"),
            (p + "mlp.c_proj.weight", (4 * C, C), "proj"),
            (p + "mlp.c_proj.bias", (C,), "bias"),
        ]
    t += [("ln_f.weight", (C,), LNW), ("ln_f.bias", (C,), "bias")]
    return t


def _splitmix64(x):
    """x: uint64 array of input states; returns outputs (wrapping arithmetic)."""
    z = x + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(M2)
    return z ^ (z >> np.uint64(31))


def generate(seed, k, shape, kind, chunk=1 << 22):
    """The float32 tensor k of the given shape and kind."""
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    base = (seed * 1000003 + (k << 40)) & MASK64
    with np.errstate(over="ignore"):
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            x = np.arange(s, e, dtype=np.uint64) + np.uint64(base)
            u = _splitmix64(x)
            if kind == LNW:
                q = (u >> np.uint64(43)).astype(np.int64) - (1 << 20)
                out[s:e] = np.float32(1.0) + q.astype(np.float32) * np.float32(2.0 ** -23)
            else:
                r = (u >> np.uint64(40)).astype(np.int64) - (1 << 23)
                out[s:e] = r.astype(np.float32) * np.float32(2.0 ** (-23 - KIND_EXP[kind]))
    return out.reshape(shape)


def hash64(a, chunk=1 << 22):
    """Order-sensitive 64-bit hash of a float32 array's bit patterns."""
    bits = np.ascontiguousarray(a, dtype=np.float32).reshape(-1).view(np.uint32)
    h = 0
    with np.errstate(over="ignore"):
        for s in range(0, bits.size, chunk):
            e = min(bits.size, s + chunk)
            x = bits[s:e].astype(np.uint64) | (np.arange(s, e, dtype=np.uint64) << np.uint64(32))
            h = (h + int(_splitmix64(x).sum(dtype=np.uint64))) & MASK64
    return h


def config_json(n_layer, n_embd, n_head, n_positions, n_vocab):
    """The same bytes tests/gpt2_random.h writes."""
    return (
        "{\n"
        '  "model_type": "gpt2",\n'
        '  "architectures": ["GPT2LMHeadModel"],\n'
        '  "n_layer": %d,\n'
        '  "n_embd": %d,\n'
        '  "n_head": %d,\n'
        '  "n_positions": %d,\n'
        '  "n_ctx": %d,\n'
        '  "n_inner": null,\n'
        '  "vocab_size": %d,\n'
        '  "layer_norm_epsilon": 1e-05,\n'
        '  "activation_function": "gelu_new",\n'
        '  "initializer_range": 0.02,\n'
        '  "resid_pdrop": 0.0,\n'
        '  "embd_pdrop": 0.0,\n'
        '  "attn_pdrop": 0.0,\n'
        '  "scale_attn_weights": true,\n'
        '  "scale_attn_by_inverse_layer_idx": false,\n'
        '  "reorder_and_upcast_attn": false,\n'
        '  "tie_word_embeddings": true,\n'
        '  "bos_token_id": %d,\n'
        '  "eos_token_id": %d,\n'
        '  "dtype": "float32"\n'
        "}\n"
    ) % (n_layer, n_embd, n_head, n_positions, n_positions, n_vocab, n_vocab - 1, n_vocab - 1)


def write_hf_dir(out_dir, seed, n_layer=12, n_embd=768, n_head=12, n_positions=1024, n_vocab=50257):
    """Write config.json, model.safetensors, vocab.json, merges.txt.
    Returns {name: hash64} for every tensor."""
    from safetensors.numpy import save_file

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config_json(n_layer, n_embd, n_head, n_positions, n_vocab))
    tensors, hashes = {}, {}
    for k, (name, shape, kind) in enumerate(tensor_specs(n_layer, n_embd, n_positions, n_vocab)):
        a = generate(seed, k, shape, kind)
        tensors[name] = a
        hashes[name] = hash64(a)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(os.path.join(TOKENIZER_DIR, "encoder.json"), os.path.join(out_dir, "vocab.json"))
    shutil.copyfile(os.path.join(TOKENIZER_DIR, "vocab.bpe"), os.path.join(out_dir, "merges.txt"))
    return hashes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--embd", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--positions", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    a = ap.parse_args()
    h = write_hf_dir(a.out_dir, a.seed, a.layers, a.embd, a.heads, a.positions, a.vocab)
    print(json.dumps({k: "%016x" % v for k, v in h.items()}, indent=1))


if __name__ == "__main__":
    main()
