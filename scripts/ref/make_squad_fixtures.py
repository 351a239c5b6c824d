#!/usr/bin/env python3
"""Write tests/fixtures/squad_metric_cases.jsonl: reference EM/F1 values of the
official SQuAD v1.1 metric (evaluate-v1.1.py) for tests/test_squad.c.

Plain python3, standard library only. Run from the repository root:

    python3 scripts/ref/make_squad_fixtures.py

The four metric functions below are the official v1.1 ones (normalize_answer,
f1_score, exact_match_score, metric_max_over_ground_truths), written out from
their published definition; nothing here reimplements them differently.

Each output line is one JSON object:
    {"id", "note", "prediction", "ground_truths": [...],
     "norm_prediction": normalize_answer(prediction), "em": 0.0|1.0, "f1": float}

The cases drawn from datasets/squad/dev-sample.json contain SQuAD v1.1 text
(CC BY-SA 4.0, Rajpurkar et al. 2016); see datasets/squad/README.md.
"""
import json
import random
import re
import string
import sys
from collections import Counter


# ---- the official SQuAD v1.1 metric ---------------------------------------

def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


# ---- cases -----------------------------------------------------------------

# (note, prediction, ground truths): chosen to hit each step of the
# normalisation and the multiset F1.
TRICKY = [
    ("leading article", "the Denver Broncos", ["Denver Broncos"]),
    ("lone article on both sides: EM 1, F1 0", "A", ["a"]),
    ("an", "an apple", ["apple"]),
    ("article inside a word is kept", "theater", ["the ater"]),
    ("all articles, any case, with punctuation", "The, the. THE! an A", ["Denver"]),
    ("prediction all articles vs article answer", "the the a an", ["the"]),
    ("trailing period and case", "Denver Broncos.", ["denver broncos"]),
    ("dots inside abbreviations", "U.S.", ["US"]),
    ("en dash is not ASCII punctuation", "24\u201310", ["24 10"]),
    ("em dash joins words", "Tesla\u2014the inventor", ["Tesla inventor"]),
    ("number with commas", "1,000", ["1000"]),
    ("number with commas plus words", "1,000 people", ["1000"]),
    ("currency", "$1,000,000", ["1000000 dollars"]),
    ("decimal point removed", "3.14", ["314"]),
    ("accented capital", "CAF\u00c9", ["caf\u00e9"]),
    ("decomposed accent is not composed", "cafe\u0301", ["caf\u00e9"]),
    ("dotted capital I lowers to i + U+0307", "\u0130stanbul", ["istanbul"]),
    ("dotted capital I vs its lower form", "\u0130", ["i\u0307"]),
    ("dotless i", "\u0131stanbul", ["Istanbul"]),
    ("non-breaking space splits", "New\u00a0York", ["New York"]),
    ("thin and ideographic spaces split", "New\u2009York\u3000City", ["new york city"]),
    ("zero-width space does not split", "New\u200bYork", ["New York"]),
    ("tab and newlines", "Denver\n\tBroncos\r\n", ["Denver Broncos"]),
    ("ASCII file separator is whitespace in Python", "x\x1cy", ["x y"]),
    ("NEL and line separator", "x\x85y\u2028z", ["x y z"]),
    ("empty prediction", "", ["Denver Broncos"]),
    ("whitespace-only prediction", "  \t ", ["Denver"]),
    ("punctuation only on both sides", "!!!", ["?"]),
    ("repeated tokens, multiset counts", "paris paris paris", ["Paris"]),
    ("multiset intersection", "a b a b c", ["b b b a c c"]),
    ("multiset intersection without articles", "x y x y", ["y y y x"]),
    ("several ground truths, exact one wins",
     "Santa Clara", ["Santa Clara, California", "Levi's Stadium", "Santa Clara"]),
    ("several ground truths, best F1 from one, EM from none",
     "Levi's Stadium in California", ["Santa Clara, California", "Levi's Stadium", "Stadium"]),
    ("apostrophe removed before articles: l'the", "l'the", ["lthe"]),
    ("underscore is punctuation", "the_end", ["theend"]),
    ("hyphen removed joins words", "a-b", ["ab"]),
    ("parentheses then article", "(the) answer", ["answer"]),
    ("punctuation between articles", "the.ory", ["theory"]),
    ("article followed by accented letter is a longer word", "the\u00e9 an\u00e9", ["the\u00e9"]),
    ("combining mark is not a word char: 'the' + U+0301 matches", "the\u0301 end", ["\u0301 end"]),
    ("article next to an Arabic-Indic digit", "the\u0663 a", ["the\u0663"]),
    ("fullwidth THE is not an article", "\uff34\uff28\uff25 end", ["end"]),
    ("Cyrillic a is not an article", "\u0430 cat", ["cat"]),
    ("curly quotes stay", "\u201cgolden anniversary\u201d", ["golden anniversary"]),
    ("Greek final sigma", "\u039f\u0394\u039f\u03a3", ["\u03bf\u03b4\u03bf\u03c2"]),
    ("Greek lone capital sigma", "\u03a3", ["\u03c3"]),
    ("sigma before case-ignorable apostrophe then end", "A\u03a3'", ["a\u03c2"]),
    ("sigma with case-ignorable apostrophe then letter", "A\u03a3'B", ["a\u03c3b"]),
    ("sigma after combining mark", "\u0391\u0301\u03a3 \u03a3\u0391", ["\u03b1\u0301\u03c2 \u03c3\u03b1"]),
    ("Kelvin sign lowers to k", "\u212aelvin", ["kelvin"]),
    ("titlecase digraph", "\u01c5ak", ["\u01c6ak"]),
    ("capital sharp s", "STRA\u1e9eE", ["stra\u00dfe"]),
    ("roman numeral twelve", "\u216b", ["\u217b"]),
    ("non-BMP Deseret capital", "\U00010400", ["\U00010428"]),
    ("non-BMP math bold A has no lower case", "\U0001d400", ["a"]),
    ("emoji token", "\U0001f600 the", ["\U0001f600"]),
    ("extra words lower precision", "Denver Broncos team", ["Denver Broncos"]),
    ("CJK without spaces is one token", "\u5317\u4eac\u5e02", ["\u5317\u4eac"]),
    ("backslash and quotes are punctuation", "\\\"quoted\\\"", ["quoted"]),
    ("all 32 ASCII punctuation characters", string.punctuation + "x", ["x"]),
]


def dev_cases(path, n_each=5, seed=1101):
    """Real dev-sample questions with perturbed predictions."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    paras = [p for art in data for p in art["paragraphs"]]
    rng = random.Random(seed)
    out = []

    def pick():
        p = rng.choice(paras)
        return p, rng.choice(p["qas"])

    kinds = ["exact", "extra words", "truncated", "other answer", "article+case+period",
             "preceding words", "other ground truth", "reversed words"]
    for kind in kinds:
        made = 0
        while made < n_each:
            p, qa = pick()
            ctx = p["context"]
            gts = [a["text"] for a in qa["answers"]]
            a = qa["answers"][0]
            text, start = a["text"], a["answer_start"]
            words = text.split()
            if kind == "exact":
                pred = text
            elif kind == "extra words":
                after = ctx[start + len(text):].split()[:rng.randint(1, 4)]
                if not after:
                    continue
                pred = text + " " + " ".join(after)
            elif kind == "truncated":
                if len(words) < 2:
                    continue
                pred = " ".join(words[:-1])
            elif kind == "other answer":
                others = [q for q in p["qas"] if q["id"] != qa["id"]]
                if not others:
                    continue
                pred = rng.choice(others)["answers"][0]["text"]
            elif kind == "article+case+period":
                pred = "The " + text.upper() + "."
            elif kind == "preceding words":
                before = ctx[:start].split()[-rng.randint(1, 3):]
                if not before:
                    continue
                pred = " ".join(before) + " " + text
            elif kind == "other ground truth":
                distinct = sorted(set(gts) - {text})
                if not distinct:
                    continue
                pred = distinct[0]
            else:  # reversed words: same bag, different string
                if len(words) < 2:
                    continue
                pred = " ".join(reversed(words))
            out.append((qa["id"], "dev-sample: " + kind, pred, gts))
            made += 1
    return out


def main():
    cases = [("tricky-%02d" % (i + 1), note, pred, gts) for i, (note, pred, gts) in enumerate(TRICKY)]
    cases += dev_cases("datasets/squad/dev-sample.json")
    out_path = "tests/fixtures/squad_metric_cases.jsonl"
    with open(out_path, "w", encoding="ascii") as f:
        for cid, note, pred, gts in cases:
            em = metric_max_over_ground_truths(exact_match_score, pred, gts)
            f1 = metric_max_over_ground_truths(f1_score, pred, gts)
            rec = {"id": cid, "note": note, "prediction": pred, "ground_truths": gts,
                   "norm_prediction": normalize_answer(pred),
                   "em": float(em), "f1": float(f1)}
            f.write(json.dumps(rec, ensure_ascii=True) + "\n")
    print("wrote %d cases to %s (python %s)" % (len(cases), out_path, sys.version.split()[0]))


if __name__ == "__main__":
    main()
