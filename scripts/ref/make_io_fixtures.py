#!/usr/bin/env python3
"""Reference values for tests/test_io.c, from the Python `gguf` package.

Reads the real SmolLM2 GGUF with gguf.GGUFReader, dequantizes a few tensors
with gguf.quants.dequantize (the reference implementation of the block
formats) and writes tests/fixtures/io_smollm2_ref.json: file size, counts,
some key/values, and for each chosen tensor its type, dims, absolute data
offset and three runs of 64 dequantized values (start, middle, end) stored as
float32 bit patterns so the C test can compare with tolerance 0.

Usage: "$(scripts/ref/python.sh)" scripts/ref/make_io_fixtures.py [model.gguf]
(default: $QRUN_MODEL or ~/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf)
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize

TENSORS = [
    "token_embd.weight",        # Q8_0
    "blk.0.attn_q.weight",      # Q4_1
    "blk.0.attn_norm.weight",   # F32
    "blk.29.ffn_down.weight",   # Q4_1, last layer
    "output_norm.weight",       # F32
]
INT_KEYS = ["llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
            "llama.attention.head_count", "llama.attention.head_count_kv", "llama.context_length",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "general.file_type",
            "tokenizer.ggml.add_bos_token"]
FLOAT_KEYS = ["llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"]
STR_KEYS = ["general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.pre"]
TOKEN_IDS = [0, 1, 2, 3, 100, 1000, 49151]


def field_scalar(f):
    return f.parts[f.data[0]].tolist()[0]


def field_str(f):
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "QRUN_MODEL", os.path.expanduser("~/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf"))
    r = gguf.GGUFReader(path)
    user_fields = [k for k in r.fields if not k.startswith("GGUF.")]
    out = {
        "model": os.path.basename(path),
        "file_size": os.path.getsize(path),
        "version": field_scalar(r.fields["GGUF.version"]),
        "n_kv": len(user_fields),
        "n_tensors": len(r.tensors),
        "ints": {k: int(field_scalar(r.fields[k])) for k in INT_KEYS},
        # f32 values as their bit patterns: exact
        "floats_f32_bits": {k: int(np.float32(field_scalar(r.fields[k])).view(np.uint32)) for k in FLOAT_KEYS},
        "strings": {k: field_str(r.fields[k]) for k in STR_KEYS},
    }
    tok = r.fields["tokenizer.ggml.tokens"]
    out["tokens"] = {"n": len(tok.data),
                     "samples": {str(i): bytes(tok.parts[tok.data[i]]).decode("utf-8") for i in TOKEN_IDS}}
    mer = r.fields["tokenizer.ggml.merges"]
    out["merges"] = {"n": len(mer.data), "first": bytes(mer.parts[mer.data[0]]).decode("utf-8")}
    tt = r.fields["tokenizer.ggml.token_type"]
    out["token_type"] = {"n": len(tt.data), "first16": [int(tt.parts[i][0]) for i in tt.data[:16]]}

    by_name = {t.name: t for t in r.tensors}
    out["tensors"] = []
    for name in TENSORS:
        t = by_name[name]
        vals = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        n = int(t.n_elements)
        assert vals.size == n
        starts = sorted({0, (n // 2) // 32 * 32, n - 64})
        out["tensors"].append({
            "name": name,
            "type": int(t.tensor_type),
            "type_name": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],   # ggml order, dims[0] fastest
            "n_elems": n,
            "data_offset": int(t.data_offset),    # absolute file offset
            "samples": [{"start": s, "bits": vals[s:s + 64].view(np.uint32).tolist()} for s in starts],
        })
        print(f"{name}: {t.tensor_type.name} {list(t.shape)} n={n}", file=sys.stderr)

    dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                       "io_smollm2_ref.json")
    with open(dst, "w") as fp:
        json.dump(out, fp, indent=1)
        fp.write("\n")
    print(f"wrote {os.path.normpath(dst)}", file=sys.stderr)


if __name__ == "__main__":
    main()
