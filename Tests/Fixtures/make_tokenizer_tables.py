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
import base64
import os
import struct
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


def crate_combining_classes(flags):
    """(survivor -> ccc for strip_accents survivors with a non-zero ccc in the NFD crate,
    set of dropped marks whose crate ccc is 0), probed through tokenizers' NFD normalizer."""
    nfd = normalizers.NFD()

    def swaps(a, b):
        return nfd.normalize_str("x" + a + b) == "x" + b + a

    scalars = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    values = sorted({unicodedata.combining(chr(c)) for c in scalars} - {0})
    refs = {230: "\u0301"}
    for v in values:
        for c in scalars:
            ch = chr(c)
            if v != 230 and unicodedata.combining(ch) == v and unicodedata.decomposition(ch) == "":
                if (v < 230 and swaps("\u0301", ch)) or (v > 230 and swaps(ch, "\u0301")):
                    refs[v] = ch
                    break
    missing = sorted(set(values) - set(refs))
    if missing:  # no scalar with these classes is known to the crate (e.g. ccc 6, Unicode 13)
        print(f"ccc values unknown to the NFD crate: {missing}", file=sys.stderr)

    def crate_ccc(ch):
        # The crate's ccc k of ch: ch moves after a reference of class v iff k > v, and a
        # reference moves after ch iff v > k (k = 0: nothing ever moves).
        observed = [(v, swaps(ch, m), swaps(m, ch)) for v, m in refs.items() if m != ch]
        if not any(a or b for _, a, b in observed):
            return 0
        for k in [unicodedata.combining(ch)] + values:
            if all(a == (k > v) and b == (v > k) for v, a, b in observed):
                return k
        raise AssertionError(f"inconsistent combining class for U+{ord(ch):04X}")

    reorder = {}
    blockers = set()
    for c in scalars:
        ch = chr(c)
        if flags[c] & STRIPDROP:
            # Dropped mark: does it separate runs? (ccc 0 in the crate)
            r = nfd.normalize_str("x\u0301" + ch + "\u0316")
            if r.index("\u0301") < r.index("\u0316"):
                blockers.add(c)
        elif unicodedata.combining(ch) != 0 or c in (0x302E, 0x302F, 0x1D165):
            k = crate_ccc(ch)
            if k:
                reorder[c] = k
    # The Swift side sees decompositions only after the marks are dropped; check that no
    # decomposition hides a run separator (a dropped ccc-0 mark after a reorderable survivor).
    for c in scalars:
        if flags[c] & STRIPMAP:
            d = nfd.normalize_str(chr(c))
            seen_survivor = False
            for x in d:
                if ord(x) in reorder:
                    seen_survivor = True
                elif seen_survivor and ord(x) in blockers:
                    raise AssertionError(f"U+{c:04X}: decomposition separates a combining run")
    return reorder, blockers


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

    # Canonical reordering. NFD (inside strip_accents) sorts runs of non-zero-ccc marks. After
    # the nonspacing marks are dropped, this is visible only between surviving marks with a
    # non-zero ccc in the NFD crate's (old) tables, e.g. U+1D16D (226) before U+1D165 (216).
    # A dropped mark with ccc 0 (e.g. U+034F) still separates runs. We learn the crate's ccc
    # through its NFD normalizer, against reference marks of each ccc value.
    reorder_ccc, blockers = crate_combining_classes(flags)
    print(f"strip_accents survivors with a non-zero crate ccc: {len(reorder_ccc)}; "
          f"dropped marks with ccc 0: {len(blockers)}", file=sys.stderr)

    # Two-stage flag table: stage1[cp >> 8] = block number, stage2[block * 256 + (cp & 255)].
    stage1, blocks, index = [], [], {}
    for b in range(0x1100):
        block = bytes(flags[b << 8:(b + 1) << 8])
        if block not in index:
            index[block] = len(blocks)
            blocks.append(block)
        stage1.append(index[block])
    stage1_b64 = base64.b64encode(b"".join(struct.pack("<H", x) for x in stage1)).decode()
    stage2_b64 = base64.b64encode(b"".join(blocks)).decode()

    def fmt_map(m):
        return ";".join("%X=%s" % (k, " ".join("%X" % x for x in v)) for k, v in sorted(m.items()))

    def chunk(s, n=100):
        return "\n".join(s[i:i + n] for i in range(0, len(s), n))

    with open(out_path, "w") as f:
        f.write("// GENERATED by Tests/Fixtures/make_tokenizer_tables.py from Hugging Face tokenizers "
                f"{tokenizers.__version__}.\n// Do not edit. See the script for what the flags mean.\n\n")
        f.write("// stage1: base64 of UInt16 LE block numbers, one per 256 scalars; stage2: base64 of the\n"
                "// distinct 256-byte flag blocks. Maps: \"cp=scalars;\" in hex.\n")
        f.write("enum UnicodeTables {\n")
        f.write("    static let tokenizersVersion = \"%s\"\n" % tokenizers.__version__)
        ccc_text = ";".join("%X=%X" % (k, v) for k, v in sorted(reorder_ccc.items()))
        blocker_text = ",".join("%X" % x for x in sorted(blockers))
        for name, text in (("stage1", stage1_b64), ("stage2", stage2_b64), ("stripMap", fmt_map(strip_map)),
                           ("lowerMap", fmt_map(lower_map)), ("reorderCCC", ccc_text),
                           ("dropBlockers", blocker_text)):
            f.write('    static let %s = """\n%s\n"""\n' % (name, chunk(text)))
        f.write("}\n")
    print(f"wrote {out_path}: {len(blocks)} flag blocks, {len(strip_map)} strip entries, "
          f"{len(lower_map)} lower entries", file=sys.stderr)


if __name__ == "__main__":
    main()
