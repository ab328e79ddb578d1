#!/usr/bin/env python3
"""Differential fuzz corpus (not committed: ~20 MB): every Unicode scalar at least once, in
random context with ASCII, plus dense BMP mixes, with the untruncated ids of the HF fast
tokenizer. Run the Swift side with:
  QSENT_TOKENIZER_FUZZ=/tmp/fuzz.jsonl swift test -c release --filter TokenizerFuzzTests

Usage: /tmp/venv/bin/python Tests/Fixtures/make_tokenizer_fuzz.py /tmp/fuzz.jsonl [seed] [tokenizer.json]
"""
import json, random, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[3] if len(sys.argv) > 3 else '/work/shared/models/distilbert-h384-imdb/tokenizer.json')
tok.no_truncation()
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
cps = [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF)]
rng.shuffle(cps)
ascii_pool = list("abcdefghijklmnop ABC .,'")
out = open(sys.argv[1], 'w')
texts = []
i = 0
while i < len(cps):
    n = rng.randint(1, 40)
    chunk = cps[i:i+n]; i += n
    s = []
    for c in chunk:
        s.append(chr(c))
        if rng.random() < 0.5: s.append(rng.choice(ascii_pool))
    texts.append("".join(s))
# denser BMP mixes
bmp = [c for c in range(0x80, 0x10000) if not (0xD800 <= c <= 0xDFFF)]
for _ in range(20000):
    texts.append("".join(chr(rng.choice(bmp)) if rng.random() < 0.6 else rng.choice(ascii_pool) for _ in range(rng.randint(1, 30))))
encs = tok.encode_batch(texts)
for t, e in zip(texts, encs):
    out.write(json.dumps({"text": t, "ids": e.ids}) + "\n")
print(f"wrote {sys.argv[1]}: {len(texts)} cases", file=sys.stderr)
