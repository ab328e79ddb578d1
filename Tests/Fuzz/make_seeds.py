#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz harnesses (standard library only, deterministic).

  Tests/Fuzz/make_seeds.py QSENT_QUANTIZE     (path to a built qsent-quantize)

protocol/     request lines (every op, text, texts, ids of every JSON type, escapes)
tokenizer/    byte 0 = settings, byte 1 = token limit - 2, then text (scripts, accents, CJK,
              added tokens, controls, long words)
config/       HF config.json files (DistilBERT, BERT, id2label/num_labels variants)
safetensors/  small .safetensors files (F32/F16/BF16/I64, metadata, empty tensors)
blob/         a tiny DistilBERT (dim 16, 2 heads, 1 layer, vocab 24) quantized by qsent-quantize,
              so every section type is present in a few KB
"""
import json, os, random, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
C = os.path.join(HERE, "corpus")


def put(kind, name, data):
    with open(os.path.join(C, kind, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> file bytes."""
    header, off, blob = {}, 0, b""
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def tiny_model(dirpath):
    rng = random.Random(5153)
    dim, hidden, vocab, maxpos, layers = 16, 32, 24, 16, 1
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "good", "bad", "great",
             "awful", "plot", "act", "##ing", "##s", ".", ",", "!", "a", "it", "not", "very", "##ly"]
    assert len(words) == vocab
    cfg = {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert", "dim": dim,
           "n_heads": 2, "n_layers": layers, "hidden_dim": hidden, "vocab_size": vocab,
           "max_position_embeddings": maxpos, "activation": "gelu", "sinusoidal_pos_embds": False,
           "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}
    ts = []

    def t(name, *shape, scale=0.3, offset=0.0):
        n = 1
        for d in shape:
            n *= d
        ts.append((name, "F32", list(shape), f32([offset + scale * (2 * rng.random() - 1) for _ in range(n)])))

    def lin(p, n, k):
        t(p + ".weight", n, k)
        t(p + ".bias", n, scale=0.05)

    def ln(p):
        t(p + ".weight", dim, scale=0.1, offset=1.0)
        t(p + ".bias", dim, scale=0.05)

    t("distilbert.embeddings.word_embeddings.weight", vocab, dim)
    t("distilbert.embeddings.position_embeddings.weight", maxpos, dim)
    ln("distilbert.embeddings.LayerNorm")
    for i in range(layers):
        p = f"distilbert.transformer.layer.{i}"
        for q in ("q_lin", "k_lin", "v_lin", "out_lin"):
            lin(f"{p}.attention.{q}", dim, dim)
        ln(f"{p}.sa_layer_norm")
        lin(f"{p}.ffn.lin1", hidden, dim)
        lin(f"{p}.ffn.lin2", dim, hidden)
        ln(f"{p}.output_layer_norm")
    lin("pre_classifier", dim, dim)
    lin("classifier", 2, dim)
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(dirpath, "vocab.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    with open(os.path.join(dirpath, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": maxpos}, f)
    st = safetensors(ts, {"format": "pt"})
    with open(os.path.join(dirpath, "model.safetensors"), "wb") as f:
        f.write(st)
    return cfg, st


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    quantize = sys.argv[1]

    for i, line in enumerate([
        '{"op":"ping"}', '{"op":"info","id":1}', '{"op":"stats","id":"s"}', '{"op":"reload","id":[1,{"a":null}]}',
        '{"id":42,"text":"A wonderful, moving film."}', '{"text":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t"}',
        '{"id":-1.5e-3,"texts":["one","two","three"]}', '{"texts":[]}', '{"id":true,"text":"","extra":{"x":[1,2,3]}}',
        '  {"text" : "spaces" , "id" : null }\r', '{"text":"a","texts":["b"]}', '{"op":"nope"}', '[1,2]',
        '{"id":1,"id":2,"op":"ping"}', '{"text":"\\u0000nul"}', '{"id":123456789012345678901234567890,"op":"ping"}',
    ]):
        put("protocol", f"seed{i:02}", line)

    for i, (settings, limit, text) in enumerate([
        (0, 254, "A wonderful, moving film with superb acting."),
        (1, 30, "Héllo WORLD! Ça va? naïve café résumé"),
        (2, 62, "日本語のテキスト 中文字符 한국어 текст Ελληνικά"),
        (3, 6, "[CLS] inside [SEP] and [MASK] tokens [UNK]"),
        (0, 254, "tab\tnew\nline\r\x00ctl\x7f\u200b\u00ad zero-width"),
        (1, 126, "supercalifragilisticexpialidocious" * 4),
        (2, 10, "emoji 😀👍🏽 and symbols ™©® 1,234.56 $%&"),
        (0, 0, "x"),
        (3, 200, "Ａｂｃ ｆｕｌｌｗｉｄｔｈ ﬁ ligature Ǆ titlecase İstanbul"),
    ]):
        put("tokenizer", f"seed{i:02}", bytes([settings, limit]) + text.encode())

    with tempfile.TemporaryDirectory() as tmp:
        cfg, st = tiny_model(os.path.join(tmp, "hf"))
        out = os.path.join(tmp, "tiny.qsent")
        subprocess.run([quantize, os.path.join(tmp, "hf"), "--output", out, "--name", "tiny", "--max-tokens", "16"],
                       check=True)
        put("blob", "tiny.qsent", open(out, "rb").read())
        put("safetensors", "tiny-model.safetensors", st)
        put("config", "tiny-distilbert.json", json.dumps(cfg))

    shared = os.path.join(HERE, "..", "..", "..", "shared", "models", "distilbert-h384-imdb", "config.json")
    if os.path.exists(shared):
        put("config", "distilbert-h384-imdb.json", open(shared, "rb").read())
    put("config", "bert.json", json.dumps({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512, "vocab_size": 30522,
        "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute", "id2label": {"0": "anger", "1": "joy", "2": "neutral"}}))
    put("config", "model-type-only.json", json.dumps({"model_type": "distilbert", "dim": 64, "n_heads": 4,
        "n_layers": 1, "hidden_dim": 128, "vocab_size": 100, "max_position_embeddings": 64, "num_labels": 3}))

    rng = random.Random(8)
    put("safetensors", "dtypes.safetensors", safetensors([
        ("a", "F32", [2, 3], f32([rng.random() for _ in range(6)])),
        ("b", "F16", [4], struct.pack("<4H", 0x3C00, 0x7C00, 0x0001, 0xFC00)),
        ("c", "BF16", [2], struct.pack("<2H", 0x3F80, 0x7FC0)),
        ("d", "I64", [1], struct.pack("<q", 7)),
        ("e", "F32", [0, 4], b""),
    ], {"format": "pt", "note": "seed"}))
    put("safetensors", "scalar.safetensors", safetensors([("s", "F32", [], f32([1.5]))]))
    put("safetensors", "empty-header.safetensors", struct.pack("<Q", 2) + b"{}")


if __name__ == "__main__":
    main()
