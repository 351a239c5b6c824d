#!/usr/bin/env python3
"""make_model_seed.py - write a tiny but complete Llama GGUF (one block,
embedding 32, 4 query heads / 2 kv heads, FFN 32, a byte-level BPE vocabulary
of the 256 byte tokens plus 4 merges, F32 and Q8_0 tensors) as the seed of
the fuzz_model target (tests/fuzz/corpus/fuzz_model/). Standard library
only; the layout follows the GGUF v3 specification (REFERENCES.md).
    python3 tests/fuzz/make_model_seed.py OUT.gguf"""
import struct
import sys

ALIGN = 32


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def u32(key, v):
    return kv(key, 4, struct.pack("<I", v))


def f32(key, v):
    return kv(key, 6, struct.pack("<f", v))


def string(key, v):
    return kv(key, 8, s(v))


def str_array(key, items):
    return kv(key, 9, struct.pack("<IQ", 8, len(items)) + b"".join(s(i) for i in items))


def i32_array(key, items):
    return kv(key, 9, struct.pack("<IQ", 5, len(items)) + b"".join(struct.pack("<i", i) for i in items))


def byte_chars():
    """GPT-2's printable stand-in for each byte (the byte-level alphabet)."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(cs[bs.index(b)]) for b in range(256)]


def q8_0(values):
    """Q8_0 blocks of 32: an fp16 scale, then 32 int8."""
    out = b""
    for i in range(0, len(values), 32):
        blk = values[i:i + 32]
        amax = max(abs(v) for v in blk) or 1.0
        d = amax / 127
        out += struct.pack("<e", d) + bytes((round(v / d) & 0xFF) for v in blk)
    return out


def main(path):
    C, H, KV, F, L = 32, 4, 2, 32, 1
    hd = C // H
    chars = byte_chars()
    merges = ["h e", "l l", "he ll", "Ġ t"]
    tokens = chars + [m.replace(" ", "") for m in merges] + ["<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]
    V = len(tokens)
    meta = [
        string("general.architecture", "llama"),
        u32("llama.block_count", L),
        u32("llama.embedding_length", C),
        u32("llama.attention.head_count", H),
        u32("llama.attention.head_count_kv", KV),
        u32("llama.feed_forward_length", F),
        u32("llama.context_length", 64),
        u32("llama.rope.dimension_count", hd),
        f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        f32("llama.rope.freq_base", 10000.0),
        string("tokenizer.ggml.model", "gpt2"),
        string("tokenizer.ggml.pre", "smollm"),
        str_array("tokenizer.ggml.tokens", tokens),
        str_array("tokenizer.ggml.merges", merges),
        i32_array("tokenizer.ggml.token_type", types),
        u32("tokenizer.ggml.bos_token_id", V - 1),
        u32("tokenizer.ggml.eos_token_id", V - 1),
        u32("general.alignment", ALIGN),
    ]
    # (name, rows, cols, type): ggml dims are (cols, rows)
    shapes = [("token_embd.weight", V, C, 8), ("output_norm.weight", 1, C, 0)]
    for l in range(L):
        shapes += [(f"blk.{l}.attn_norm.weight", 1, C, 0), (f"blk.{l}.ffn_norm.weight", 1, C, 0),
                   (f"blk.{l}.attn_q.weight", H * hd, C, 0), (f"blk.{l}.attn_k.weight", KV * hd, C, 0),
                   (f"blk.{l}.attn_v.weight", KV * hd, C, 0), (f"blk.{l}.attn_output.weight", C, H * hd, 0),
                   (f"blk.{l}.ffn_gate.weight", F, C, 8), (f"blk.{l}.ffn_up.weight", F, C, 0),
                   (f"blk.{l}.ffn_down.weight", C, F, 0)]
    infos, blobs, off, seed = b"", [], 0, 1
    for name, rows, cols, typ in shapes:
        vals = []
        for _ in range(rows * cols):
            seed = (seed * 1103515245 + 12345) % (1 << 31)
            vals.append(1.0 if "norm" in name else (seed / (1 << 31) - 0.5) * 0.2)
        data = q8_0(vals) if typ == 8 else struct.pack("<%df" % len(vals), *vals)
        dims = [cols] if rows == 1 else [cols, rows]
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, off)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(meta)) + b"".join(meta) + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


if __name__ == "__main__":
    main(sys.argv[1])
