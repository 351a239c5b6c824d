#!/usr/bin/env python3
"""Reference encodings for the SmolLM2 byte-level BPE tokenizer.

Writes tests/fixtures/smollm2_tokenizer.jsonl: one {"text": ..., "ids": [...]}
per line, the ids Hugging Face `tokenizers` gives for the text.

The reference tokenizer is built from the GGUF's tokenizer.ggml.tokens /
tokenizer.ggml.merges (read with the `gguf` package) and the pipeline of
SmolLM2's original tokenizer.json:
  pre_tokenizer Sequence[Digits(individual_digits=True),
                         ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]
  decoder ByteLevel, no normalizer,
  the tokens typed 3 (control) added as special tokens (split out of the text whole).
llama.cpp's "smollm" pre-tokenizer is the same: regexes "\\p{N}" then the GPT-2 one.

As a cross-check it also loads transformers' AutoTokenizer from the GGUF and
reports every string where the two disagree. transformers (5.x) has no entry
for pre "smollm", so it falls back to GPT-2's plain ByteLevel regex without the
digit split: it keeps " ²" as one pre-token, where the original tokenizer
splits every \p{N} character off. SmolLM2's merges hold no ASCII-digit merge
and no "Ġ" + ASCII digit, so the two agree on ASCII numbers; they differ only
where a space precedes a non-ASCII number (of the 71 strings: "½ ⅓ Ⅻ ٣٤٥ ²").
We trust the explicit pipeline: it is SmolLM2's tokenizer.json, and llama.cpp
implements pre "smollm" the same way.
Bytes the vocabulary has no token for (0x04 0x06 0x13 0x14 0x16 0x1D, and the
UTF-8 lead bytes 0xF1 0xF2) are dropped by both (BPE without an unk token).

Run: "$(scripts/ref/python.sh)" scripts/ref/make_tokenizer_fixtures.py [model.gguf]
(default: $QRUN_MODEL or ~/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf).
SQuAD strings are CC BY-SA 4.0 (Rajpurkar et al. 2016), see datasets/squad/README.md.
"""
import json
import os
import sys

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "smollm2_tokenizer.jsonl")


def model_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("QRUN_MODEL") or os.path.expanduser(
        "~/.cache/qrun/SmolLM2-135M-Instruct.Q4_1.gguf")


def read_gguf_tokenizer(path):
    r = gguf.GGUFReader(path)
    f = r.fields
    assert f["tokenizer.ggml.model"].contents() == "gpt2"
    assert f["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = f["tokenizer.ggml.tokens"].contents()
    merges = f["tokenizer.ggml.merges"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    return tokens, merges, types


def build_reference(tokens, merges, types):
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(t, special=True, normalized=False)
               for t, ty in zip(tokens, types) if ty in (3, 4)]
    tok.add_special_tokens(special)
    return tok


def strings():
    s = [
        # ASCII prose
        "Hello world",
        "Hello, world! How are you?",
        "The quick brown fox jumps over the lazy dog.",
        " leading space",
        "trailing space ",
        "a",
        "",
        "x = y + 3 * (z - 1)",
        "http://example.com/path?query=1&x=2",
        "email@example.com",
        "mixedCASE camelCase snake_case kebab-case",
        "!!!???...",
        "def f(x):\n    return x ** 2\n",
        # numbers
        "123456",
        "3.14",
        "2015–16",
        "The 2015 season",
        "Numbers: 1234567890 and 3.14159 and 2,000,000",
        "February 7, 2016",
        " 42",
        "a1b2c3",
        "½ ⅓ Ⅻ ٣٤٥ ²",
        # contractions
        "I'm sure they'll say it's what we've done, isn't it?",
        "DON'T SHOUT, I'D SAY",
        "'s 't 're 've 'm 'll 'd 'x ''s",
        "rock 'n' roll",
        # whitespace
        "multiple   spaces   inside",
        "Tabs\tand\nnewlines\n\n",
        "     ",
        "\n",
        "line one\r\nline two\r\n",
        "a \t b\t\t c",
        "end with newline\n\n\n",
        "nbsp\u00a0here and ideographic\u3000space",
        "next line\u0085char and line\u2028separator",
        "file\x1cgroup\x1funit separators",
        "zero\u200bwidth space",
        # bytes SmolLM2 has no token for: HF's BPE (no unk token) drops them
        "ctrl\x04\x06\x13\x14\x16\x1d chars\x07\x7f",  # (no NUL: the C test reads strings with cJSON)
        "plane 4 \U00040000 and plane 8 \U00080000 end",
        # accented Latin
        "Unicode: café naïve résumé",
        "Łódź, Kraków and Gdańsk",
        "e\u0301 combining acute",
        "Straße Øresund Ærø",
        # Greek, Cyrillic, CJK, other scripts
        "Ελληνικά και Русский текст",
        "Πολιτεία της Αθήνας",
        "Москва — столица России.",
        "日本語のテキスト",
        "中文字符和标点：你好，世界！",
        "한국어 텍스트입니다",
        "नमस्ते दुनिया",
        "مرحبا بالعالم",
        # emoji and symbols
        "Emoji 🙂 and symbols ©®™",
        "👍🏽 👨‍👩‍👧 🇫🇷",
        "°C −5 × 10⁻³ ≤ ∞",
        # mixed scripts
        "Tesla (Тесла) 尼古拉·特斯拉 was born in 1856.",
        "mixed: abcαβγабв123",
    ]
    # SQuAD contexts and questions from tiny.json
    with open(os.path.join(ROOT, "datasets", "squad", "tiny.json"), encoding="utf-8") as fh:
        squad = json.load(fh)
    paras = squad["data"][0]["paragraphs"]
    s.append(paras[0]["context"])
    s.append(paras[1]["context"])
    for qa in paras[0]["qas"][:4]:
        s.append(qa["question"])
    # chat template and special tokens
    s += [
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nHi!<|im_end|>",
        "<|endoftext|>",
        "text<|endoftext|>more text",
        "abc<|im_end|>def",
        "<|im_start <|im_end |> <| im_start|>",
        "<|im_start|><|im_start|><|im_end|>",
        " <|im_start|> spaced <|im_end|> ",
        "<repo_name>qrun<file_sep>main.c",
    ]
    return s


def main():
    path = model_path()
    tokens, merges, types = read_gguf_tokenizer(path)
    ref = build_reference(tokens, merges, types)
    texts = strings()

    try:
        from transformers import AutoTokenizer
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        tf = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    except Exception as e:  # the cross-check is advisory
        print("transformers cross-check unavailable:", e)
        tf = None

    n_disagree = 0
    with open(OUT, "w", encoding="utf-8") as out:
        for t in texts:
            ids = ref.encode(t, add_special_tokens=False).ids
            back = ref.decode(ids, skip_special_tokens=False)
            lossy = any(c in t for c in "\x04\x06\x13\x14\x16\x1d\U00040000\U00080000")
            assert back == t or lossy, (t, back)
            if tf is not None:
                ids_tf = tf.encode(t, add_special_tokens=False)
                if ids_tf != ids:
                    n_disagree += 1
                    print("DISAGREE", repr(t[:60]))
                    print("  tokenizers  :", [tokens[i] for i in ids][:24])
                    print("  transformers:", [tokens[i] for i in ids_tf][:24])
            out.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} strings to {OUT}; transformers disagrees on {n_disagree}")


if __name__ == "__main__":
    main()
