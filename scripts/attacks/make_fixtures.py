#!/usr/bin/env python3
"""make_fixtures.py - the suite's small word-level fixtures, cut from the
real resources scripts/setup_attacks.sh builds (so the suite needs neither
the cache nor Python):

    "$QRUN_CACHE/attacks/venv/bin/python" scripts/attacks/make_fixtures.py \
        [--cache DIR] [--out tests/fixtures/attacks] [--words 2000]

Words: both words of the most frequent WordNet antonym pairs (up to 250
pairs) and synonym pairs (up to 250) of the constraint list, then the most
frequent words of the vocabulary until --words, kept in the vocabulary's
(frequency) order. Writes into --out:

  cf2k.qrwv       their counter-fitted vectors (rows of glove50-cf-50k.qrwv, as stored)
  glove2k.qrwv    their original GloVe vectors (rows of glove50-50k.qrwv)
  cf2k.pos.tsv    their lines of the POS table
  cf2k.pairs.tsv  every constraint pair with both words among them ("syn|ant<TAB>u<TAB>w")
  cf2k.golden.tsv numpy's 10 nearest neighbours (float64 cosines, ties by
                  index) of 40 of the words in cf2k.qrwv:
                  "word<TAB>n1:cos1 n2:cos2 ..." (cos to 9 decimals)

and the seeds of the fuzz target into --seeds (tests/fuzz/corpus/fuzz_wordvec):
  tiny.qrwv       24 of the words, their first 8 dimensions renormalised
  one.qrwv        one word of one dimension
  pos_head.tsv    the first 150 lines of cf2k.pos.tsv
  header.bin      a bare header claiming 3 words of dimension 2
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_wordvec import write_qrwv  # noqa: E402


def read_qrwv(path):
    b = open(path, "rb").read()
    magic, ver, n, dim, wb, crc, _ = struct.unpack_from("<4sIIIQII", b)
    assert magic == b"QRWV" and ver == 1 and zlib.crc32(b[32:]) & 0xFFFFFFFF == crc, path
    words = b[32: 32 + wb].split(b"\0")[:n]
    off = 32 + wb + (-wb % 4)
    V = np.frombuffer(b, dtype="<f4", count=n * dim, offset=off).reshape(n, dim)
    return [w.decode() for w in words], V


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.join(os.environ.get("QRUN_CACHE", os.path.expanduser("~/.cache/qrun")),
                                                    "attacks"))
    ap.add_argument("--out", default="tests/fixtures/attacks")
    ap.add_argument("--words", type=int, default=2000)
    ap.add_argument("--seeds", default="tests/fuzz/corpus/fuzz_wordvec")
    a = ap.parse_args()
    words, cf = read_qrwv(os.path.join(a.cache, "glove50-cf-50k.qrwv"))
    words0, orig = read_qrwv(os.path.join(a.cache, "glove50-50k.qrwv"))
    assert words == words0
    rank = {w: i for i, w in enumerate(words)}
    pos_lines = open(os.path.join(a.cache, "glove50-cf-50k.pos.tsv")).read().splitlines()
    pairs = [ln.split("\t") for ln in open(os.path.join(a.cache, "glove50-cf-50k.pairs.tsv")).read().splitlines()]

    chosen = set()
    for kind in ("ant", "syn"):
        ps = sorted((max(rank[u], rank[w]), rank[u], rank[w]) for k, u, w in pairs if k == kind)
        for _, u, w in ps[:250]:
            chosen.update((u, w))
    for i in range(len(words)):
        if len(chosen) >= a.words:
            break
        chosen.add(i)
    sel = sorted(chosen)[: a.words]
    fw = [words[i] for i in sel]
    fset = set(fw)
    os.makedirs(a.out, exist_ok=True)
    write_qrwv(os.path.join(a.out, "cf2k.qrwv"), fw, cf[sel])
    write_qrwv(os.path.join(a.out, "glove2k.qrwv"), fw, orig[sel])
    with open(os.path.join(a.out, "cf2k.pos.tsv"), "w") as f:
        for i in sel:
            assert pos_lines[i].split("\t")[0] == words[i]
            f.write(pos_lines[i] + "\n")
    kept = [(k, u, w) for k, u, w in pairs if u in fset and w in fset]
    with open(os.path.join(a.out, "cf2k.pairs.tsv"), "w") as f:
        for k, u, w in kept:
            f.write(f"{k}\t{u}\t{w}\n")
    V = cf[sel].astype(np.float64)
    with open(os.path.join(a.out, "cf2k.golden.tsv"), "w") as f:
        for q in range(0, len(sel), len(sel) // 40)[:40]:
            s = V @ V[q]
            s[q] = -np.inf
            order = sorted(range(len(sel)), key=lambda j: (-s[j], j))[:10]
            f.write(fw[q] + "\t" + " ".join(f"{fw[j]}:{s[j]:.9f}" for j in order) + "\n")
    os.makedirs(a.seeds, exist_ok=True)
    T = cf[sel][:24, :8].astype(np.float64)
    write_qrwv(os.path.join(a.seeds, "tiny.qrwv"), fw[:24], T / np.linalg.norm(T, axis=1, keepdims=True))
    write_qrwv(os.path.join(a.seeds, "one.qrwv"), ["a"], np.ones((1, 1)))
    with open(os.path.join(a.seeds, "pos_head.tsv"), "w") as f:
        for i in sel[:150]:
            f.write(pos_lines[i] + "\n")
    with open(os.path.join(a.seeds, "header.bin"), "wb") as f:
        f.write(struct.pack("<4sIIIQII", b"QRWV", 1, 3, 2, 6, 0, 0))
    n_syn = sum(k == "syn" for k, _, _ in kept)
    print(f"make_fixtures: {len(fw)} words, {n_syn} synonym and {len(kept) - n_syn} antonym pairs -> {a.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
