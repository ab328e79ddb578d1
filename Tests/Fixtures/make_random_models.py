#!/usr/bin/env python3
"""Random-weight HF models and their PyTorch FP32 logits: oracles for qsent's parity tests.

Two models, generated deterministically and bit for bit identically by this script (numpy)
and by Tests/QsentCoreTests/RandomModels.swift (Swift):

  distilbert768  DistilBertForSequenceClassification at distilbert-base geometry (dim 768,
                 FFN 3072, 12 heads, 6 layers, vocab 30522, 512 positions), 2 labels
                 NEGATIVE/POSITIVE; one model.safetensors, F32.
  bert_small     BertForSequenceClassification (hidden 128, 2 layers, 4 heads, FFN 512,
                 vocab 30522, 2 token types, 512 positions), 3 labels anger/joy/neutral,
                 pooler included; sharded checkpoint (model.safetensors.index.json and
                 model-0000{1,2}-of-00002.safetensors), BF16.

THE GENERATOR (both languages must follow this exactly)
-------------------------------------------------------
All integer arithmetic is on unsigned 64-bit integers modulo 2^64.

  fnv1a64(name)  FNV-1a, 64-bit, over the UTF-8 bytes of the tensor name:
                 h = 0xCBF29CE484222325; for each byte b: h = (h ^ b) * 0x100000001B3.
  mix64(z)       the SplitMix64 output function (Steele, Lea, Flood 2014):
                 z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                 z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                 return z ^ (z >> 31)
  G              0x9E3779B97F4A7C15 (the SplitMix64 increment).

For a tensor `name` with n elements (row-major, i.e. PyTorch's flattening order) in a model
with seed `modelSeed`:
  seed = fnv1a64(name) ^ modelSeed
  x_i  = mix64(seed + (i + 1) * G)          for i = 0 ..< n
         (x_i is the (i+1)-th output of a standard SplitMix64 generator started at `seed`,
         i.e. splitmix64(seed + i*G) where splitmix64(s) = mix64(s + G))
  u_i  = Float32(x_i >> 40) * 2^-24         (24-bit integer, exact in float32; u in [0, 1))
  a_i  = (2 * u_i - 1)                       float32; exact
  w_i  = a_i * scale                         float32 multiply (one IEEE rounding)
  w_i  = w_i + offset   (only if offset != 0) float32 add (one IEEE rounding)
Every scale and offset is a dyadic rational (exact in float32), listed per tensor in
TENSOR SPECS below and stored in random_models.json. No fused multiply-add.

Stored dtype: F32 stores w_i as is. BF16 stores bf16(w_i) with round-to-nearest-even,
exactly like torch's float32 -> bfloat16 cast (no NaNs or infinities occur here):
  b = bits(w_i) (uint32);  bf16 = (b + 0x7FFF + ((b >> 16) & 1)) >> 16.

Per-tensor check values (in random_models.json, "tensors"):
  checksum  sum over i of mix64((i << 32) | s_i) mod 2^64, as 16 lower-case hex digits, where
            s_i is the stored bit pattern of element i (uint32 for F32, uint16 for BF16).
  sum       float64 sum of the stored values (as decoded to float32); diagnostics only, the
            summation order differs between implementations.
  first     the stored bit patterns of the first 4 elements (decimal integers).

Safetensors files are written by hand (same bytes in both languages):
  8-byte little-endian header length N, then N bytes of compact JSON
  {"__metadata__":{"format":"pt"},"<name>":{"dtype":"F32","shape":[a,b],"data_offsets":[s,e]},...}
  in tensor-spec order, padded with spaces to a multiple of 8, then the tensor data in the
  same order, little-endian, no gaps.

ORACLE
------
For each model, 16 token-id sequences ([CLS]=101, random ids in [1000, vocab), [SEP]=102) of
lengths 2 ... 512 are run through transformers' *ForSequenceClassification in FP32
(model.eval(), torch.no_grad(), one sequence at a time, no padding, attention_mask all ones,
token_type_ids all zero for BERT, torch.set_num_threads(2), eager attention). BF16 weights are
upcast to float32 (exact) at load; the computation is FP32. The logits are stored as the
float32 values PyTorch produced.

Usage:
  python make_random_models.py                   # regenerate Tests/Fixtures/random_models.json
  python make_random_models.py --out DIR         # also write the HF folders DIR/<model>
  python make_random_models.py --out DIR --models distilbert768 --no-oracle
"""

import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np

U64 = np.uint64
G = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
CHUNK = 1 << 22

# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def generate(name: str, n: int, model_seed: int, scale: float, offset: float) -> np.ndarray:
    """float32 values w_0 ..< w_n of tensor `name` (see the module docstring)."""
    seed = U64(fnv1a64(name) ^ model_seed)
    sc = np.float32(scale)
    off = np.float32(offset)
    assert float(sc) == scale and float(off) == offset, "scales must be exact in float32"
    out = np.empty(n, dtype=np.float32)
    with np.errstate(over="ignore"):
        for s in range(0, n, CHUNK):
            e = min(n, s + CHUNK)
            i1 = np.arange(s + 1, e + 1, dtype=U64)
            x = mix64(seed + i1 * U64(G))
            u = (x >> U64(40)).astype(np.float32) * np.float32(2.0 ** -24)
            w = (np.float32(2) * u - np.float32(1)) * sc
            if offset != 0:
                w = w + off
            out[s:e] = w
    return out


def to_bf16_bits(w: np.ndarray) -> np.ndarray:
    b = w.view(np.uint32).astype(np.uint64)
    return ((b + U64(0x7FFF) + ((b >> U64(16)) & U64(1))) >> U64(16)).astype(np.uint16)


def bf16_bits_to_f32(h: np.ndarray) -> np.ndarray:
    return (h.astype(np.uint32) << np.uint32(16)).view(np.float32)


def checksum(stored_bits: np.ndarray) -> str:
    total = U64(0)
    with np.errstate(over="ignore"):
        for s in range(0, len(stored_bits), CHUNK):
            e = min(len(stored_bits), s + CHUNK)
            i = np.arange(s, e, dtype=U64)
            z = (i << U64(32)) | stored_bits[s:e].astype(U64)
            total = U64(total + np.sum(mix64(z), dtype=U64))
    return "%016x" % int(total)


# --------------------------------------------------------------------------------------
# Tensor specs
# --------------------------------------------------------------------------------------

# Scales are half-widths of the uniform distribution (std = scale / sqrt(3)); all dyadic.
MODELS = {
    "distilbert768": {
        "arch": "distilbert",
        "seed": 0x5153454E54000770,
        "dtype": "F32",
        "dim": 768, "hidden": 3072, "heads": 12, "layers": 6,
        "vocab": 30522, "max_pos": 512,
        "labels": ["NEGATIVE", "POSITIVE"],
        "scales": {
            "embedding": 0.125,
            "linear": 0.09375,        # fan-in 768: std 0.054
            "linear_wide": 0.046875,  # fan-in 3072 (ffn.lin2): std 0.027
            "bias": 0.03125,
            "ln_weight": 0.125,       # 1 + (2u-1) * 0.125
            "ln_bias": 0.0625,
            "head_linear": 0.09375,   # pre_classifier
            "head_out": 0.25,         # classifier weight
            "head_bias": 0.0625,
        },
    },
    "bert_small": {
        "arch": "bert",
        "seed": 0x5153454E54000128,
        "dtype": "BF16",
        "dim": 128, "hidden": 512, "heads": 4, "layers": 2,
        "vocab": 30522, "max_pos": 512, "type_vocab": 2,
        "labels": ["anger", "joy", "neutral"],
        "scales": {
            "embedding": 0.125,
            "linear": 0.21875,        # fan-in 128: std 0.126
            "linear_wide": 0.109375,  # fan-in 512 (output.dense): std 0.063
            "bias": 0.03125,
            "ln_weight": 0.125,
            "ln_bias": 0.0625,
            "head_linear": 0.21875,   # pooler.dense
            "head_out": 0.5,          # classifier weight
            "head_bias": 0.0625,
        },
    },
}


def tensor_specs(m: dict):
    """[(name, shape, scale, offset, shard)] in checkpoint order."""
    sc = m["scales"]
    D, H, V, P = m["dim"], m["hidden"], m["vocab"], m["max_pos"]
    L = len(m["labels"])
    specs = []

    def lin(prefix, o, i, wscale, bscale, shard=1):
        specs.append((prefix + ".weight", [o, i], wscale, 0.0, shard))
        specs.append((prefix + ".bias", [o], bscale, 0.0, shard))

    def ln(prefix, shard=1):
        specs.append((prefix + ".weight", [D], sc["ln_weight"], 1.0, shard))
        specs.append((prefix + ".bias", [D], sc["ln_bias"], 0.0, shard))

    if m["arch"] == "distilbert":
        e = "distilbert.embeddings."
        specs.append((e + "word_embeddings.weight", [V, D], sc["embedding"], 0.0, 1))
        specs.append((e + "position_embeddings.weight", [P, D], sc["embedding"], 0.0, 1))
        ln(e + "LayerNorm")
        for l in range(m["layers"]):
            p = "distilbert.transformer.layer.%d." % l
            for q in ("q_lin", "k_lin", "v_lin", "out_lin"):
                lin(p + "attention." + q, D, D, sc["linear"], sc["bias"])
            ln(p + "sa_layer_norm")
            lin(p + "ffn.lin1", H, D, sc["linear"], sc["bias"])
            lin(p + "ffn.lin2", D, H, sc["linear_wide"], sc["bias"])
            ln(p + "output_layer_norm")
        lin("pre_classifier", D, D, sc["head_linear"], sc["bias"])
        lin("classifier", L, D, sc["head_out"], sc["head_bias"])
    else:
        e = "bert.embeddings."
        specs.append((e + "word_embeddings.weight", [V, D], sc["embedding"], 0.0, 1))
        specs.append((e + "position_embeddings.weight", [P, D], sc["embedding"], 0.0, 1))
        specs.append((e + "token_type_embeddings.weight", [m["type_vocab"], D], sc["embedding"], 0.0, 1))
        ln(e + "LayerNorm")
        for l in range(m["layers"]):
            shard = 1 if l < m["layers"] // 2 else 2
            p = "bert.encoder.layer.%d." % l
            for q in ("query", "key", "value"):
                lin(p + "attention.self." + q, D, D, sc["linear"], sc["bias"], shard)
            lin(p + "attention.output.dense", D, D, sc["linear"], sc["bias"], shard)
            ln(p + "attention.output.LayerNorm", shard)
            lin(p + "intermediate.dense", H, D, sc["linear"], sc["bias"], shard)
            lin(p + "output.dense", D, H, sc["linear_wide"], sc["bias"], shard)
            ln(p + "output.LayerNorm", shard)
        lin("bert.pooler.dense", D, D, sc["head_linear"], sc["bias"], 2)
        lin("classifier", L, D, sc["head_out"], sc["head_bias"], 2)
    return specs


def hf_config(m: dict) -> dict:
    labels = m["labels"]
    id2label = {str(i): s for i, s in enumerate(labels)}
    label2id = {s: i for i, s in enumerate(labels)}
    if m["arch"] == "distilbert":
        return {
            "activation": "gelu",
            "architectures": ["DistilBertForSequenceClassification"],
            "attention_dropout": 0.1,
            "dim": m["dim"],
            "dropout": 0.1,
            "hidden_dim": m["hidden"],
            "id2label": id2label,
            "initializer_range": 0.02,
            "label2id": label2id,
            "max_position_embeddings": m["max_pos"],
            "model_type": "distilbert",
            "n_heads": m["heads"],
            "n_layers": m["layers"],
            "pad_token_id": 0,
            "qa_dropout": 0.1,
            "seq_classif_dropout": 0.2,
            "sinusoidal_pos_embds": False,
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
            "vocab_size": m["vocab"],
        }
    return {
        "architectures": ["BertForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": m["dim"],
        "id2label": id2label,
        "initializer_range": 0.02,
        "intermediate_size": m["hidden"],
        "label2id": label2id,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": m["max_pos"],
        "model_type": "bert",
        "num_attention_heads": m["heads"],
        "num_hidden_layers": m["layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "problem_type": "single_label_classification",
        "torch_dtype": "bfloat16",
        "type_vocab_size": m["type_vocab"],
        "vocab_size": m["vocab"],
    }


def tokenizer_config(m: dict) -> dict:
    return {
        "clean_up_tokenization_spaces": True,
        "cls_token": "[CLS]",
        "do_lower_case": True,
        "mask_token": "[MASK]",
        "model_max_length": 512,
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "strip_accents": None,
        "tokenize_chinese_chars": True,
        "tokenizer_class": "DistilBertTokenizer" if m["arch"] == "distilbert" else "BertTokenizer",
        "unk_token": "[UNK]",
    }


def vocab_lines(n: int):
    """[PAD]=0, [unused0..98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, tokNNNNN."""
    out = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    out += ["tok%05d" % i for i in range(len(out), n)]
    assert len(out) == n
    return out


def dumps(obj) -> str:
    # Same layout as the Swift writer: indent 2, sorted keys, ", " / ": " separators.
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def stored_tensors(name: str):
    """[(spec, f32 values as used by torch, stored bits)] for one model."""
    m = MODELS[name]
    out = []
    for spec in tensor_specs(m):
        tname, shape, scale, offset, shard = spec
        n = int(np.prod(shape))
        w = generate(tname, n, m["seed"], scale, offset)
        if m["dtype"] == "F32":
            bits = w.view(np.uint32)
            vals = w
        else:
            bits = to_bf16_bits(w)
            vals = bf16_bits_to_f32(bits)
        out.append((spec, vals, bits))
    return out


def safetensors_header(entries, dtype: str) -> bytes:
    """entries: [(name, shape, nbytes)] -> header bytes incl. the 8-byte length prefix."""
    parts = ['"__metadata__":{"format":"pt"}']
    off = 0
    for tname, shape, nbytes in entries:
        parts.append('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                     % (tname, dtype, ",".join(str(s) for s in shape), off, off + nbytes))
        off += nbytes
    js = ("{" + ",".join(parts) + "}").encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    return struct.pack("<Q", len(js)) + js


def write_model(name: str, directory: str, tensors=None) -> str:
    m = MODELS[name]
    folder = os.path.join(directory, name)
    os.makedirs(folder, exist_ok=True)
    if tensors is None:
        tensors = stored_tensors(name)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(dumps(hf_config(m)))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        f.write(dumps(tokenizer_config(m)))
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab_lines(m["vocab"])) + "\n")
    shards = sorted({spec[4] for spec, _, _ in tensors})
    if m["dtype"] == "F32":
        assert shards == [1]
        files = {1: "model.safetensors"}
    else:
        files = {s: "model-%05d-of-%05d.safetensors" % (s, len(shards)) for s in shards}
    total = 0
    for s in shards:
        group = [(spec, bits) for spec, _, bits in tensors if spec[4] == s]
        header = safetensors_header([(sp[0], sp[1], bits.nbytes) for sp, bits in group], m["dtype"])
        with open(os.path.join(folder, files[s]), "wb") as f:
            f.write(header)
            for _, bits in group:
                f.write(bits.astype(bits.dtype.newbyteorder("<")).tobytes())
                total += bits.nbytes
    if m["dtype"] != "F32":
        index = {"metadata": {"total_size": total},
                 "weight_map": {spec[0]: files[spec[4]] for spec, _, _ in tensors}}
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            f.write(dumps(index))
    return folder


# --------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------

CASE_LENGTHS = [2, 3, 5, 8, 17, 33, 64, 100, 128, 200, 255, 256, 300, 384, 511, 512]


def case_ids(name: str):
    m = MODELS[name]
    rng = np.random.default_rng(m["seed"] & 0xFFFFFFFF)
    cases = []
    for n in CASE_LENGTHS:
        body = rng.integers(1000, m["vocab"], size=n - 2).tolist()
        cases.append([101] + body + [102])
    return cases


def load_and_check(name: str, folder: str, tensors):
    import torch
    import transformers

    m = MODELS[name]
    cls = (transformers.DistilBertForSequenceClassification if m["arch"] == "distilbert"
           else transformers.BertForSequenceClassification)
    model, info = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                      output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise SystemExit("%s: loading info not clean: %s" % (name, bad))
    sd = model.state_dict()
    for (tname, shape, _, _, _), vals, _ in tensors:
        t = sd[tname]
        assert t.dtype == torch.float32, (tname, t.dtype)
        assert list(t.shape) == shape, (tname, t.shape, shape)
        if not np.array_equal(t.numpy().reshape(-1).view(np.uint32), vals.view(np.uint32)):
            raise SystemExit("%s: %s differs from the generator after loading" % (name, tname))
    model.eval()
    return model


def run_oracle(model, seqs):
    import torch

    out = []
    with torch.no_grad():
        for ids in seqs:
            t = torch.tensor([ids], dtype=torch.long)
            logits = model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0]
            out.append(logits.to(torch.float32).numpy())
    return out


def stats(name: str, logits):
    arr = np.stack(logits)
    win = arr.argmax(1)
    top2 = np.sort(arr, 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return {
        "logit_min": float(arr.min()), "logit_max": float(arr.max()),
        "per_class_std": [float(x) for x in arr.std(0)],
        "wins_per_class": [int((win == c).sum()) for c in range(arr.shape[1])],
        "margin_min": float(margin.min()), "margin_median": float(np.median(margin)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="also write the HF folders to OUT/<model>")
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--fixture", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "random_models.json"))
    ap.add_argument("--no-oracle", action="store_true", help="only write folders, no PyTorch, no fixture")
    ap.add_argument("--extra", type=int, default=0,
                    help="also report class balance over this many extra random inputs (not stored)")
    args = ap.parse_args()

    fixture = {"generator": "see Tests/Fixtures/make_random_models.py (docstring)", "models": {}}
    for name in args.models:
        m = MODELS[name]
        tensors = stored_tensors(name)
        tmp = None
        if args.out:
            folder = write_model(name, args.out, tensors)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="qsent-random-")
            folder = write_model(name, tmp.name, tensors)
        print("%s: wrote %s" % (name, folder), file=sys.stderr)
        if args.no_oracle:
            continue
        import torch
        torch.set_num_threads(2)
        model = load_and_check(name, folder, tensors)
        seqs = case_ids(name)
        logits = run_oracle(model, seqs)
        st = stats(name, logits)
        print("%s: %d cases %s" % (name, len(seqs), json.dumps(st)), file=sys.stderr)
        if args.extra:
            rng = np.random.default_rng(7)
            extra = []
            for _ in range(args.extra):
                n = int(rng.integers(2, 513))
                extra.append([101] + rng.integers(1000, m["vocab"], size=n - 2).tolist() + [102])
            print("%s: %d extra inputs %s" % (name, args.extra, json.dumps(stats(name, run_oracle(model, extra)))),
                  file=sys.stderr)
        entry = {
            "arch": m["arch"],
            "seed": "%016x" % m["seed"],
            "dtype": m["dtype"],
            "sharded": m["dtype"] != "F32",
            "scales": m["scales"],
            "config": hf_config(m),
            "tensors": [],
            "stats": st,
            "cases": [],
        }
        for (tname, shape, scale, offset, shard), vals, bits in tensors:
            entry["tensors"].append({
                "name": tname, "shape": shape, "scale": scale, "offset": offset, "shard": shard,
                "checksum": checksum(bits),
                "sum": float(vals.astype(np.float64).sum()),
                "first": [int(b) for b in bits[:4]],
            })
        for ids, lg in zip(seqs, logits):
            entry["cases"].append({"ids": ids, "logits": [float(x) for x in lg]})
        fixture["models"][name] = entry
        if tmp is not None:
            tmp.cleanup()
    if not args.no_oracle and set(args.models) == set(MODELS):
        import torch
        import transformers
        fixture["produced_by"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                                  "numpy": np.__version__}
        with open(args.fixture, "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")
        print("wrote %s (%d bytes)" % (args.fixture, os.path.getsize(args.fixture)), file=sys.stderr)


if __name__ == "__main__":
    main()
