#!/usr/bin/env python3
"""Generate Sources/QsentTokenizer/UnicodeTables.swift by probing the Hugging Face
`tokenizers` library itself, one Unicode scalar at a time.

Why probe instead of using a Unicode database: HF's BertNormalizer/BertPreTokenizer use
old crate tables (`unicode_categories` for Cc/Cf/Co/Cs, Mn and P*, and
`unicode-normalization-alignments` for NFD) next to Rust std (`char::is_whitespace`,
`char::to_lowercase`), each at its own Unicode version. Bit-exactness needs exactly those
tables, so we ask the library what it does with every scalar:

  flags  CTRL     clean_text drops the scalar (\\0, U+FFFD, Cc/Cf/Co/Cs except \\t\\n\\r)
         WSCLEAN  clean_text maps it to ' '
         WSSPLIT  BertPreTokenizer splits on it (char::is_whitespace)
         PUNCT    BertPreTokenizer isolates it
         CJK      handle_chinese_chars surrounds it with spaces
         STRIPDROP strip_accents removes it (NFD then drop Mn) -> empty
         STRIPMAP strip_accents changes it (entry in the strip map; Hangul is algorithmic)
         LOWERMAP lowercase changes it (entry in the lower map)

Usage: /tmp/venv/bin/python Tests/Fixtures/make_tokenizer_tables.py   (needs tokenizers 0.23)
"""
import os
import sys
import unicodedata

import tokenizers
from tokenizers import normalizers, pre_tokenizers

CTRL, WSCLEAN, WSSPLIT, PUNCT, CJK, STRIPDROP, STRIPMAP, LOWERMAP = (1 << i for i in range(8))
HANGUL = range(0xAC00, 0xD7A4)


def hangul_nfd(c):
    s = c - 0xAC00
    l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return [l, v] + ([t] if t != 0x11A7 else [])


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_path = os.path.join(root, "Sources", "QsentTokenizer", "UnicodeTables.swift")
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    both = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()

    flags = [0] * 0x110000
    strip_map, lower_map = {}, {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        f = 0
        r = clean.normalize_str(c)
        if r == "":
            f |= CTRL
        elif r == " ":
            f |= WSCLEAN
        else:
            assert r == c, (hex(cp), r)
        r = chinese.normalize_str(c)
        if r == " " + c + " ":
            f |= CJK
        else:
            assert r == c, (hex(cp), r)
        r = strip.normalize_str(c)
        if r != c:
            if r == "":
                f |= STRIPDROP
            else:
                f |= STRIPMAP
                if cp in HANGUL:
                    assert [ord(x) for x in r] == hangul_nfd(cp), hex(cp)
                else:
                    strip_map[cp] = [ord(x) for x in r]
        r = lower.normalize_str(c)
        if r != c:
            f |= LOWERMAP
            lower_map[cp] = [ord(x) for x in r]
        toks = [t for t, _ in pre.pre_tokenize_str("a" + c + "b")]
        if toks == ["a", "b"]:
            f |= WSSPLIT
        elif toks == ["a", c, "b"]:
            f |= PUNCT
        else:
            assert toks == ["a" + c + "b"], (hex(cp), toks)
        flags[cp] = f

    # The runtime composes strip then lowercase per scalar; check that against the library.
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or not flags[cp] & (STRIPMAP | STRIPDROP | LOWERMAP):
            continue
        if flags[cp] & STRIPDROP:
            s = []
        elif cp in HANGUL:
            s = hangul_nfd(cp)
        else:
            s = strip_map.get(cp, [cp])
        composed = "".join("".join(chr(y) for y in lower_map.get(x, [x])) for x in s)
        assert both.normalize_str(chr(cp)) == composed, hex(cp)

    # Survivors of strip_accents with a non-zero canonical combining class could be
    # reordered by NFD inside a combining sequence; report how many there are (the Swift
    # side does not reorder them).
    survivors = [cp for cp in range(0x110000) if not (0xD800 <= cp <= 0xDFFF)
                 and not flags[cp] & STRIPDROP and unicodedata.combining(chr(cp)) != 0]
    print(f"non-zero-ccc scalars kept by strip_accents (per Python unicodedata {unicodedata.unidata_version}): "
          f"{len(survivors)}: {' '.join('%04X' % x for x in survivors[:40])}", file=sys.stderr)

    ranges = []
    cp = 0
    while cp < 0x110000:
        f = flags[cp]
        end = cp
        while end + 1 < 0x110000 and flags[end + 1] == f:
            end += 1
        if f:
            ranges.append("%X-%X:%X" % (cp, end, f))
        cp = end + 1

    def fmt_map(m):
        return ";".join("%X=%s" % (k, " ".join("%X" % x for x in v)) for k, v in sorted(m.items()))

    def chunk(s, n=100):
        return "\n".join(s[i:i + n] for i in range(0, len(s), n))

    with open(out_path, "w") as f:
        f.write("// GENERATED by Tests/Fixtures/make_tokenizer_tables.py from Hugging Face tokenizers "
                f"{tokenizers.__version__}.\n// Do not edit. See the script for what the flags mean.\n\n")
        f.write("enum UnicodeTables {\n")
        f.write("    static let tokenizersVersion = \"%s\"\n" % tokenizers.__version__)
        for name, text in (("flagRanges", ",".join(ranges)), ("stripMap", fmt_map(strip_map)),
                           ("lowerMap", fmt_map(lower_map))):
            f.write('    static let %s = """\n%s\n"""\n' % (name, chunk(text)))
        f.write("}\n")
    print(f"wrote {out_path}: {len(ranges)} flag ranges, {len(strip_map)} strip entries, "
          f"{len(lower_map)} lower entries", file=sys.stderr)


if __name__ == "__main__":
    main()
