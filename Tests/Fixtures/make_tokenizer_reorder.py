#!/usr/bin/env python3
"""Write Tests/Fixtures/tokenizer_reorder.jsonl: NFD canonical ordering inside strip_accents.

With the BERT vocabulary, words holding the marks that survive strip_accents with a non-zero
combining class are [UNK] whatever their order, so the order is invisible. This fixture uses
a small vocabulary where each such mark is a piece of its own: the ids then show the order.
Line 1: {"vocabulary": [...]} (id = index); then {"text", "ids"} per line, from the HF fast
tokenizer (BertNormalizer lowercase + strip_accents, BertPreTokenizer, WordPiece, [CLS] $A [SEP]).

Usage: /tmp/venv/bin/python Tests/Fixtures/make_tokenizer_reorder.py
"""
import json
import os
import random
import re
import sys

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = os.path.join(HERE, "..", "..", "Sources", "QsentTokenizer", "UnicodeTables.swift")


def main():
    text = open(TABLES, encoding="utf-8").read()
    body = re.search(r'static let reorderCCC = """\n(.*?)\n"""', text, re.S).group(1).replace("\n", "")
    marks = [chr(int(kv.split("=")[0], 16)) for kv in body.split(";") if kv]
    letters = list("abcdexyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + ["##" + c for c in letters]
    vocab += marks + ["##" + m for m in marks]
    tok = Tokenizer(models.WordPiece({v: i for i, v in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])

    key = ["\U0001D16D", "\U0001D165", "\u302e", "\u302f", "\u1b44", "\u08d4", "\u0c3c"]
    dropped = ["\u0301", "\u0316", "\u034f", "\u0f71", "\ufe0f"]  # 034f, fe0f: combining class 0
    composed = ["\u00e9", "\U0001D15F", "\U0001D160", "\u1e09"]
    cases = [
        "x\U0001D16D\U0001D165", "x\U0001D165\U0001D16D", "x\u302e\u1b44", "a\U0001D16D\u0301\U0001D165",
        "a\U0001D16D\u034f\U0001D165", "\U0001D15F\u1b44", "x\u08d4\u1b44", "x\u302e\U0001D16D\U0001D165\u1b44\u08d4",
        "x\U0001D16D \U0001D165", "\U0001D16D\U0001D165", "x\U0001D16D[CLS]\U0001D165", "e\U0001D16D\u0301\u1b44y",
        "x\U0001D16D\u0000\U0001D165", "x\U0001D16D\u200b\U0001D165", "x\U0001D16D\ufe0f\U0001D165",
    ]
    rng = random.Random(99)
    pool = key * 3 + marks + dropped * 2 + composed + letters
    for _ in range(300):
        cases.append(rng.choice(letters) + "".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
    out = os.path.join(HERE, "tokenizer_reorder.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps({"vocabulary": vocab}, ensure_ascii=True) + "\n")
        for t in cases:
            f.write(json.dumps({"text": t, "ids": tok.encode(t).ids}, ensure_ascii=True) + "\n")
    print(f"wrote {out}: {len(cases)} cases, vocabulary {len(vocab)}", file=sys.stderr)


if __name__ == "__main__":
    main()
