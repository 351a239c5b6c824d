"""make_model_fixtures.py - reference logits from Hugging Face transformers for
qrun's model tests. Run once, on CPU, with the reference Python (scripts/ref/python.sh):

    "$(scripts/ref/python.sh)" scripts/ref/make_model_fixtures.py [--only gpt2|smollm2]

Writes (deterministic up to float32 summation order; ~5-6 MB each):

tests/fixtures/gpt2_random_logits.safetensors
    The GPT-2-shaped random model of gpt2_random.py (seed 1234, 124M shape:
    12 layers, 768 embd, 12 heads, 1024 positions, vocab 50257), run by
    GPT2LMHeadModel on 3 prompts tokenized by GPT2TokenizerFast from the same
    directory. Per prompt p: p{p}.ids (T,) token ids stored as F32,
    p{p}.logits (T, 50257), p{p}.greedy (16,) greedy continuation ids.
    Also tiny.p0.logits (T0, 50257): the same generator at the tiny shape
    (2 layers, 64 embd, 4 heads; the logits depend on neither n_positions
    nor, for the first 50257 rows, n_vocab, because tensor elements are
    indexed row-major). Metadata: seed, shapes, prompts, the per-tensor
    hash64 of every weight (hex), versions.

tests/fixtures/smollm2_logits.safetensors
    SmolLM2-135M-Instruct from the Q4_1 GGUF, dequantized to float32 by
    transformers, on 3 prompts (plain English, non-ASCII, chat template)
    tokenized by the tokenizer transformers builds from the GGUF metadata.
    Same tensor names. Metadata: config checks, the Q/K row-order finding,
    prompts, versions.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_random  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
GREEDY_NEW = 16

GPT2_SEED = 1234
GPT2_SHAPE = dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024, n_vocab=50257)
GPT2_TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=1024, n_vocab=50257)
GPT2_PROMPTS = [
    "Hello, my dog is cute",
    "It was a bright cold day in April",
    "Café in 1969: naïve",
]

SMOL_PROMPTS = [
    ("text", "The capital of France is"),
    ("text", "naïve 東京 😀"),
    # Rendered with the GGUF's chat template; an explicit one-word system
    # message keeps it at 16 tokens (the default system prompt adds ~14).
    ("chat", [{"role": "system", "content": "Brief"}, {"role": "user", "content": "Hi"}]),
]


def versions():
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__}


def run_prompt(model, ids):
    """ids: list of ints -> (logits (T, V) float32 numpy, greedy (GREEDY_NEW,) ids)."""
    x = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=x).logits[0].float().numpy()
        out = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=GREEDY_NEW,
            min_new_tokens=GREEDY_NEW,
            do_sample=False,
            use_cache=True,
            pad_token_id=0,
        )
    greedy = out[0, len(ids):].tolist()
    assert len(greedy) == GREEDY_NEW, greedy
    return np.ascontiguousarray(logits, dtype=np.float32), greedy


def save(path, tensors, meta):
    """safetensors, written here rather than by safetensors.save_file, whose
    header order (a hash map) changes from run to run: tensors in name
    order, metadata keys sorted, header space-padded to 8 bytes, so a rerun
    gives the same bytes."""
    header, blobs, off = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    print("wrote %s (%.2f MB)" % (path, os.path.getsize(path) / 1e6))


def gpt2_fixture():
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    tensors, meta = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        big, tiny = os.path.join(tmp, "big"), os.path.join(tmp, "tiny")
        hashes = gpt2_random.write_hf_dir(big, GPT2_SEED, **GPT2_SHAPE)
        tiny_hashes = gpt2_random.write_hf_dir(tiny, GPT2_SEED, **GPT2_TINY)
        tok = GPT2TokenizerFast.from_pretrained(big)
        model, info = GPT2LMHeadModel.from_pretrained(big, dtype=torch.float32, output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        assert not bad, "loading the random GPT-2 directory: %s" % bad
        model.eval()
        # the loaded weights are the generated ones, bit for bit
        sd = model.transformer.state_dict()
        for name, h in hashes.items():
            assert gpt2_random.hash64(sd[name].numpy()) == h, name
        all_ids = []
        for p, text in enumerate(GPT2_PROMPTS):
            ids = tok(text).input_ids
            assert len(ids) <= 12, (text, len(ids))
            logits, greedy = run_prompt(model, ids)
            tensors["p%d.ids" % p] = np.array(ids, dtype=np.float32)
            tensors["p%d.logits" % p] = logits
            tensors["p%d.greedy" % p] = np.array(greedy, dtype=np.float32)
            all_ids.append(ids)
            print("gpt2 p%d %r ids %s greedy %s" % (p, text, ids, greedy))
        del model
        tmodel = GPT2LMHeadModel.from_pretrained(tiny, dtype=torch.float32).eval()
        with torch.no_grad():
            tensors["tiny.p0.logits"] = np.ascontiguousarray(
                tmodel(input_ids=torch.tensor([all_ids[0]])).logits[0].numpy(), dtype=np.float32
            )
    meta["seed"] = str(GPT2_SEED)
    meta["shape"] = json.dumps(GPT2_SHAPE)
    meta["tiny_shape"] = json.dumps(GPT2_TINY)
    meta["prompts"] = json.dumps(GPT2_PROMPTS, ensure_ascii=False)
    meta["ids"] = json.dumps(all_ids)
    meta["weight_hash64"] = json.dumps({k: "%016x" % v for k, v in hashes.items()})
    meta["tiny_weight_hash64"] = json.dumps({k: "%016x" % v for k, v in tiny_hashes.items()})
    meta["hash64"] = "sum_i splitmix64(bits(v[i]) | i << 32) mod 2^64, see gpt2_random.py"
    meta["greedy_new_tokens"] = str(GREEDY_NEW)
    meta["versions"] = json.dumps(versions())
    save(os.path.join(FIXTURES, "gpt2_random_logits.safetensors"), tensors, meta)


def check_qk_rows(model, gguf_path, cfg):
    """How do transformers' q_proj/k_proj rows relate to the GGUF's attn_q/attn_k?
    llama.cpp's converter permutes each head's rows from HF's rotate-half
    order (i, i + d/2) to interleaved pairs (2i, 2i+1). Returns a sentence."""
    import gguf

    r = gguf.GGUFReader(gguf_path)
    raw = {t.name: t for t in r.tensors}
    findings = []
    for name, hf, nh in (("blk.0.attn_q.weight", model.model.layers[0].self_attn.q_proj.weight, cfg.num_attention_heads),
                         ("blk.0.attn_k.weight", model.model.layers[0].self_attn.k_proj.weight, cfg.num_key_value_heads)):
        t = raw[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(hf.shape).astype(np.float32)
        hfw = hf.detach().numpy()
        d2 = w.shape[0] // nh // 2
        unperm = w.reshape(nh, d2, 2, -1).swapaxes(1, 2).reshape(w.shape)
        same_raw = np.array_equal(w, hfw)
        same_unperm = np.array_equal(unperm, hfw)
        findings.append((name, same_raw, same_unperm))
    assert all(not a and b for _, a, b in findings), findings
    return (
        "transformers un-permutes llama.cpp's Q/K rows: for attn_q and attn_k, HF row "
        "h*d + j*(d/2) + i (j in 0..1, i < d/2) = GGUF row h*d + 2*i + j (d = head_dim 64), "
        "so HF uses rotate-half RoPE on pairs (i, i + d/2). A C side that reads the GGUF "
        "rows as stored must use interleaved RoPE on pairs (2i, 2i+1) (llama.cpp's "
        "normal mode), or un-permute to use rotate-half; the logits are the same. "
        "Checked bit-exact on blk.0: %s" % findings
    )


def smollm2_fixture(model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, name = os.path.split(model_path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
    cfg = model.config
    checks = {
        "num_hidden_layers": (cfg.num_hidden_layers, 30),
        "hidden_size": (cfg.hidden_size, 576),
        "num_attention_heads": (cfg.num_attention_heads, 9),
        "num_key_value_heads": (cfg.num_key_value_heads, 3),
        "intermediate_size": (cfg.intermediate_size, 1536),
        "vocab_size": (cfg.vocab_size, 49152),
        "tie_word_embeddings": (
            cfg.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
            True,
        ),
        "rope_theta": (cfg.rope_parameters["rope_theta"], 100000.0),
        "rms_norm_eps": (round(cfg.rms_norm_eps, 9), 1e-5),
    }
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    assert not bad, "SmolLM2 config: %s" % bad
    qk = check_qk_rows(model, model_path, cfg)
    print(qk)

    tensors, meta, all_ids, texts = {}, {}, [], []
    for p, (kind, prompt) in enumerate(SMOL_PROMPTS):
        if kind == "chat":
            text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            ids = tok(text, add_special_tokens=False).input_ids
            assert ids == list(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"])
        else:
            text = prompt
            ids = tok(text).input_ids
        assert len(ids) <= 16, (text, len(ids))
        logits, greedy = run_prompt(model, ids)
        tensors["p%d.ids" % p] = np.array(ids, dtype=np.float32)
        tensors["p%d.logits" % p] = logits
        tensors["p%d.greedy" % p] = np.array(greedy, dtype=np.float32)
        all_ids.append(ids)
        texts.append(text)
        print("smollm2 p%d %r ids %s greedy %s %r" % (p, text, ids, greedy, tok.decode(greedy)))
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    meta["model"] = name
    meta["model_sha256"] = sha
    meta["config"] = json.dumps({k: v[0] for k, v in checks.items()})
    meta["qk_rows"] = qk
    meta["prompts"] = json.dumps(texts, ensure_ascii=False)
    meta["prompt_kinds"] = json.dumps([k for k, _ in SMOL_PROMPTS])
    meta["chat_messages"] = json.dumps(SMOL_PROMPTS[2][1], ensure_ascii=False)
    meta["ids"] = json.dumps(all_ids)
    meta["greedy_new_tokens"] = str(GREEDY_NEW)
    meta["dequantized_by"] = "transformers GGUF loader (gguf-py dequantize), float32"
    meta["versions"] = json.dumps(versions())
    save(os.path.join(FIXTURES, "smollm2_logits.safetensors"), tensors, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["gpt2", "smollm2"])
    ap.add_argument(
        "--model",
        default=os.environ.get("QRUN_MODEL")
        or os.path.join(os.path.expanduser("~"), ".cache", "qrun", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    os.makedirs(FIXTURES, exist_ok=True)
    if a.only in (None, "gpt2"):
        gpt2_fixture()
    if a.only in (None, "smollm2"):
        if not os.path.exists(a.model):
            sys.exit("make_model_fixtures: %s not found (run scripts/fetch_model.sh or set QRUN_MODEL)" % a.model)
        smollm2_fixture(a.model)


if __name__ == "__main__":
    main()
