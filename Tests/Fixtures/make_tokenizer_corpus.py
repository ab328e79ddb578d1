#!/usr/bin/env python3
"""Write Tests/Fixtures/tokenizer_unicode.jsonl: hard Unicode cases with the untruncated ids
of the Hugging Face fast tokenizer (`tokenizers` 0.23) loaded from the shared model's
tokenizer.json, truncation disabled (the Swift test computes truncation itself).

Also writes Tests/Fixtures/tokenizer_unicode_configs.jsonl: the same vocabulary with other
BertNormalizer settings (cased, no accent stripping, strip without lowercase, no Chinese
handling, no clean_text), {"config", "lowercase", "strip_accents", "clean_text",
"handle_chinese_chars", "text", "ids"} per line.

Usage: /tmp/venv/bin/python Tests/Fixtures/make_tokenizer_corpus.py [path/to/tokenizer.json]
"""
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer, normalizers

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOKENIZER = os.path.join(HERE, "..", "..", "..", "shared", "models", "distilbert-h384-imdb", "tokenizer.json")
if not os.path.exists(DEFAULT_TOKENIZER):
    DEFAULT_TOKENIZER = "/work/shared/models/distilbert-h384-imdb/tokenizer.json"

CASES = [
    # accents and combining marks, precomposed and decomposed
    "café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m", "résumé",
    "Crème Brûlée", "ÀÉÎÕÜ àéîõü", "Ç ç Ñ ñ Ø ø Æ æ Œ œ Ð ð Þ þ Ł ł Đ đ", "ǅ ǈ ǋ ǲ",
    "e\u0301\u0302\u0303\u0304\u0305", "a\u0316\u0301", "a\u0301\u0316", "x\u034fy", "o\u0338",
    "Zalgo: Z\u0351\u036b\u0343a\u0352l\u0367g\u0310o\u0306", "ḱṷṓn", "Việt Nam", "Tiếng Việt có dấu",
    # NFD canonical ordering of marks that survive strip_accents (crate ccc: 1D16D 226,
    # 1D165 216, 302E 224, 1B44 9, 08D4 230), with dropped marks inside runs (0301: ccc 230,
    # does not separate; 034F: ccc 0, separates)
    "x\U0001D16D\U0001D165", "x\U0001D165\U0001D16D", "x\u302e\u1b44", "a\U0001D16D\u0301\U0001D165",
    "a\U0001D16D\u034f\U0001D165", "\U0001D15F\u1b44", "x\u08d4\u1b44", "x\u302e\U0001D16D\U0001D165\u1b44\u08d4",
    "x\U0001D16D\u3000\U0001D165", "\U0001D16D\U0001D165", "x\U0001D16D[CLS]\U0001D165", "e\U0001D16D\u0301\u1b44y",
    "\u00e9\U0001D16D\u1b44", "x\U0001D16D\u0000\U0001D165", "\u1b44\u302e\u302f\U0001D16D\u1b44\U0001D165z",
    # Turkish, German, Greek
    "İstanbul", "ISTANBUL ıstanbul", "I\u0307", "DİYARBAKIR", "Straße", "STRASSE", "ẞ groß", "ß",
    "ΟΔΥΣΣΕΥΣ", "Σίσυφος", "ὈΔΥΣΣΕΎΣ", "ΣΑΣ σας ςσΣ", "ᾼ ᾳ ῼ", "Ω Ω", "Å K",
    # CJK ideographs, CJK punctuation, compatibility ideographs, extension planes
    "中文字符测试", "我爱你。你好吗？", "「日本語」『引用』【注】", "漢字かな交じり文", "豈 更 車",
    "𠀀𠀁 𪜀 𫝀 𫠠 𬺰 𰀀", "中a文b字", "〇一二三", "㐀㐁 䶵", "CJK兼容：︰︱︳",
    # Hangul, kana, Thai, Arabic, Hebrew, Devanagari and other scripts
    "한국어 텍스트", "안녕하세요!", "ㄱㄴㄷ ᄀᄂ", "ひらがな カタカナ ｶﾀｶﾅ", "ヴァイオリン", "ｶﾞｷﾞ",
    "ภาษาไทย สวัสดีครับ", "العربية مرحبا بالعالم", "كِتَابٌ", "עברית שָׁלוֹם", "हिन्दी नमस्ते",
    "ক্ষ বাংলা", "தமிழ்", "ქართული", "Հայերեն", "Ελληνικά", "русский ЁЖИК Ёлка", "Ўзбек", "ᚠᛇᚻ",
    "ꦗꦮ", "𐌰𐌱𐌲", "ⴰⵣⵓⵍ", "ᏣᎳᎩ", "አማርኛ", "ພາສາລາວ", "မြန်မာ", "ខ្មែរ", "སྐད",
    # emoji
    "😀", "I love it 😍😍😍!", "👍🏽 👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸🇫🇷🇯🇵", "1️⃣ #️⃣ *️⃣",
    "❤️ ❤ ☺️ ☺", "✌🏻", "🥰🤩🥳", "🫠🫶", "🧑‍🚀", "❤️‍🔥", "😂😂😂 lol",
    # control chars
    "a\u0000b", "a\u0007b", "a\u001bb", "a\u007fb", "a\u0085b", "a\u0008b", "a\tb\nc\rd", "a\u000bb\u000cc",
    "\u001c\u001d\u001e\u001f", "a\u0080b\u009fc", "x\u0000", "\u0000",
    # zero-width and format chars
    "a\u200bb", "a\u200cb", "a\u200db", "\ufeffhello", "co\u00adop\u00aderate", "a\u2060b", "a\u2066b\u2069",
    "\u200e\u200fleft", "a\u061cb", "a\u180eb", "a\U000e0001b", "a\U000e0041b",
    # replacement char, private use, noncharacters
    "bad \ufffd char", "\ufffd\ufffd", "a\ue000b", "a\U000f0000b", "a\ufdd0b", "a\uffffb",
    # Unicode spaces, separators
    "a\u00a0b", "a\u2000b\u2001c\u2002d\u2003e\u2004f\u2005g\u2006h\u2007i\u2008j\u2009k\u200al",
    "a\u3000b", "a\u202fb", "a\u205fb", "a\u1680b", "a\u2028b", "a\u2029b", "   leading and trailing   ",
    # full-width, ligatures, math, roman numerals, superscripts
    "Ａｂｃ１２３！", "ＨＥＬＬＯ　ＷＯＲＬＤ", "ﬁnance ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ", "Æsop ǽ", "𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹ℂ 𝟘𝟙𝟚", "ℌℑℜ ℕℤ",
    "Ⅰ Ⅱ Ⅲ Ⅳ ⅻ", "x² y³ z¹⁰ H₂O", "½ ¼ ¾ ⅓", "™ © ® ℠", "№ ℃ ℉ Å", "µ μ", "ǆ Ǆ", "ſ", "ﬀ",
    "①②③ ⑴ ⒜", "㎏ ㎞ ㍿", "Ǳ", "ﷺ", "ﷻ",
    # punctuation and symbols
    "Hello, world!", "wait... what?!", "«quotes» „German“ ‘single’ “double”", "em—dash en–dash ‐ ‑ ‒ ―",
    "¿Qué? ¡Sí!", "§ ¶ † ‡ • ‣ ′ ″", "$100 €50 £20 ¥1000 ₹500", "a+b=c <d> e^f `g` |h| ~i~",
    "#hashtag @mention", "50% off & more", "{[()]}", "a_b_c", "snake_case_word", "÷ × ± ∞ ≠ ≤",
    "→ ← ↑ ↓ ⇒", "♠ ♣ ♥ ♦", "★☆", "‼ ⁉", "‽", "⸮", "。、・", "٪ ٫ ٬", "।॥", "၊။",
    # HTML, URLs, numbers, apostrophes
    "<br /><br />", "This movie<br /><br />was great.", "<i>italic</i> &amp; &lt;tag&gt; &quot;", "&#39;s",
    "https://www.example.com/path?q=1&x=y#frag", "mailto:someone@example.org", "www.imdb.com/title/tt0111161/",
    "3.14159 1,000,000 -42 +7 1e10 0x1F", "1990s 80's '90s", "don't can't won't it's", "rock 'n' roll",
    "O'Brien", "he said ‘don’t’", "it`s", "L'été", "10/10 would watch again", "7/10", "2:30pm",
    # special-token look-alikes
    "[CLS] [SEP] [UNK] [PAD] [MASK]", "[cls]", "[CLS]", "a[CLS]b", "[SEP][SEP]", "[[CLS]]", "[UNK]s",
    "[\u0000CLS]", "[\u200bSEP]", "[CLS\u0301]", "［CLS］", "[ＣＬＳ]", "\u0301[CLS]\u0301", "x[PAD]y[MASK]z",
    "[CLS [SEP", "[MASK]ed", "[Mask]", "[ CLS ]", "##", "##ing", "a ##b", "###", "[unused0]", "[unused99]",
    # empty and whitespace
    "", " ", "   ", "\t\n\r", "\u00a0\u3000\u2003", "\u200b", "\ufeff", "\u0000\u0000",
    # mixed scripts
    "Hello世界مرحباПривет", "abcабвαβγ", "Tokyo東京Токио", "naïve日本語café", "x中y", "ℍ𝕖𝕝𝕝𝕠 world",
    "Mixed😀text中文and العربية", "Ⓐⓑⓒ", "🅰🅱", "ᴀʙᴄ", "ꜱᴍᴀʟʟ ᴄᴀᴘꜱ",
    # long words
    "a" * 99, "a" * 100, "a" * 101, "é" * 100, "é" * 101, "e\u0301" * 50, "e\u0301" * 51,
    "中" * 150, "😀" * 100, "😀" * 101, "ab" * 60, "x" * 100 + " " + "y" * 101,
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "unbelievably", "zzzzzzzzzzzzzzzzzzzzzz",
    "ü" * 100, "ü" * 101, "Ü" * 101, "ß" * 100, "İ" * 100, "İ" * 101,
]

POOL = (
    list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,!?'\"-()[]{}<>/\\@#$%^&*_+=|~`;:")
    + list("éèêëÉÈàâäçñöüßøåæœıİŁłΣσςΩωЖжЁё") + ["e\u0301", "a\u0308", "\u0300", "\u0327", "\u034f"]
    + list("中文字日本語漢字豈") + list("한국어ひらがなカタカナｶﾀｶﾅไทยعربيहिन्दी")
    + ["😀", "👍🏽", "👨‍👩‍👧", "🇺🇸", "1️⃣", "❤️", "\ufe0f", "\u200d", "🥰", "🫠"]
    + ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\u200b", "\u200c", "\ufeff", "\u00ad", "\ufffd",
       "\u00a0", "\u2003", "\u3000", "\u202f", "\u2028", "\u2029", "\t", "\n", "\r", "\u000b"]
    + list("ＡｂＣ１２！？ﬁﬂ𝐀𝑏ⅣⅻⅫ²³₂½™№「」。、・«»„“”‘’—–…¿¡§€£¥₹")
    + ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]", "[cls]", "<br />", "##", "don't", "http://x.y/z"]
)


def random_cases(rng, count):
    out = []
    for i in range(count):
        n = rng.randint(1, 40 if i % 10 else 400)
        out.append("".join(rng.choice(POOL) for _ in range(n)))
    return out


def word_cases(rng, count):
    # Word-like strings made of runs of letters and marks, to exercise WordPiece splitting.
    letters = list("abcdefghijklmnopqrstuvwxyzéüñçøßı") + ["e\u0301", "\u0301", "中", "한"]
    out = []
    for _ in range(count):
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 8))]
        out.append(" ".join(words))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_TOKENIZER
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    rng = random.Random(20261126)
    texts = CASES + random_cases(rng, 250) + word_cases(rng, 80)
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    out_path = os.path.join(HERE, "tokenizer_unicode.jsonl")
    with open(out_path, "w", encoding="utf-8") as f:
        for t in unique:
            ids = tok.encode(t).ids
            f.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=True) + "\n")
    print(f"wrote {out_path}: {len(unique)} cases (tokenizers {tokenizers.__version__})", file=sys.stderr)

    configs = [
        ("cased", dict(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False)),
        ("lower_keep_accents", dict(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True)),
        ("strip_no_lower", dict(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=False)),
        ("no_chinese", dict(clean_text=True, handle_chinese_chars=False, strip_accents=None, lowercase=True)),
        ("no_clean", dict(clean_text=False, handle_chinese_chars=True, strip_accents=None, lowercase=True)),
    ]
    texts = CASES + random_cases(random.Random(7), 60)
    out_path = os.path.join(HERE, "tokenizer_unicode_configs.jsonl")
    count = 0
    with open(out_path, "w", encoding="utf-8") as f:
        for name, cfg in configs:
            tok.normalizer = normalizers.BertNormalizer(**cfg)
            for t in texts:
                ids = tok.encode(t).ids
                f.write(json.dumps({"config": name, **cfg, "text": t, "ids": ids}, ensure_ascii=True) + "\n")
                count += 1
    print(f"wrote {out_path}: {count} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
