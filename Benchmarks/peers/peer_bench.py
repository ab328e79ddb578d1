#!/usr/bin/env python3
"""Peer engines on the qsent benchmark subset: the bar qsent has to clear.

Runs one peer engine over the benchmark subset -- the IMDB test reviews at 0-based line index
i with i % --stride == 0 of test.jsonl (default 25: 1,000 reviews, 500 neg, 500 pos) -- one
review at a time (batch 1), 2 intra-op threads, HF fast tokenizer with truncation to
--max-len (384) tokens, and prints one JSON object on stdout.

Engines:
  torch-fp32          transformers *ForSequenceClassification, FP32, torch.set_num_threads(2)
  torch-dynamic-int8  the same after torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8)
  ort-fp32            torch.onnx.export (dynamic batch and sequence axes) ->
                      onnxruntime.transformers.optimizer (model_type "bert": fused attention,
                      LayerNorm, GELU) -> InferenceSession(intra_op 2, inter_op 1)
  ort-int8            torch.onnx.export (dynamic batch and sequence axes) ->
                      onnxruntime.transformers.optimizer (model_type "bert": fused attention,
                      LayerNorm, GELU) -> onnxruntime.quantization.quantize_dynamic (QInt8
                      weights, per channel) -> InferenceSession(intra_op 2, inter_op 1)
                      The export runs in a child process (so torch does not inflate this
                      process's RSS) and is cached under --cache (/tmp/qsent-peers).

Timing: each review is timed from raw text to logits (tokenization included); the first
--warmup reviews are run once before timing and not counted. reviews_per_s = n / sum of the
per-review times. RSS: VmRSS and VmHWM from /proc/self/status after the run.

--limit N takes N reviews of the subset: with --select spread (the default) evenly spaced
over it (so both classes stay represented): subset[(k * len(subset)) // N] for k = 0 ..< N;
with --select first the first N (what `qsent eval --stride K --limit N` takes).

--latency-texts FILE (JSONL {"tokens": N, "text": ...}, each text tokenizing to exactly N
tokens, [CLS] and [SEP] included) adds, after the throughput pass, --latency-reps timed runs of
each text (after --latency-warmup untimed ones), raw text -> logits, reported as p50 / p99.
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import benchlib  # noqa: E402

ENGINES = ("ort-int8", "ort-fp32", "torch-dynamic-int8", "torch-fp32")


def proc_status_mb():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024.0
    return out


def load_tokenizer(tok_dir, max_len):
    from tokenizers import Tokenizer

    path = os.path.join(tok_dir, "tokenizer.json")
    if not os.path.exists(path):
        raise SystemExit("no tokenizer.json in %s; pass --tokenizer DIR with a HF fast tokenizer "
                         "(e.g. /work/shared/models/distilbert-h384-imdb)" % tok_dir)
    tok = Tokenizer.from_file(path)
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def cache_dir(model_dir, root):
    st = os.stat(os.path.join(model_dir, "config.json"))
    sig = "%s|%d|%d" % (os.path.realpath(model_dir), st.st_mtime_ns, st.st_size)
    for name in sorted(os.listdir(model_dir)):
        if name.endswith(".safetensors"):
            s = os.stat(os.path.join(model_dir, name))
            sig += "|%s|%d|%d" % (name, s.st_mtime_ns, s.st_size)
    h = hashlib.sha256(sig.encode()).hexdigest()[:12]
    return os.path.join(root, "%s-%s" % (os.path.basename(os.path.normpath(model_dir)), h))


# ------------------------------------------------------------------------------------------
# ONNX export + optimization + quantization (child process)
# ------------------------------------------------------------------------------------------


def export_onnx(model_dir, out_dir):
    import onnx
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    os.makedirs(out_dir, exist_ok=True)
    fp32_path = os.path.join(out_dir, "model.onnx")
    opt_path = os.path.join(out_dir, "model.opt.onnx")
    int8_path = os.path.join(out_dir, "model.opt.int8.onnx")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = model.config
    ids = torch.tensor([[101] + [2000 + i for i in range(14)] + [102]], dtype=torch.long)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask), fp32_path,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {0: "batch"}},
            opset_version=17, do_constant_folding=True, dynamo=False)
    hidden = getattr(cfg, "dim", None) or cfg.hidden_size
    heads = getattr(cfg, "n_heads", None) or cfg.num_attention_heads
    opt = optimizer.optimize_model(fp32_path, model_type="bert", num_heads=heads, hidden_size=hidden,
                                   opt_level=1, use_gpu=False)
    fused = opt.get_fused_operator_statistics()
    opt.save_model_to_file(opt_path)
    # Fused contrib ops (Attention, SkipLayerNormalization, ...) defeat ONNX shape inference,
    # so the quantizer needs to be told that untyped tensors are float.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    per_channel = True
    try:
        quantize_dynamic(opt_path, int8_path, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options=extra)
    except Exception as e:  # pragma: no cover - depends on the ORT build
        print("per-channel dynamic quantization failed (%s); using per-tensor" % e, file=sys.stderr)
        per_channel = False
        quantize_dynamic(opt_path, int8_path, weight_type=QuantType.QInt8, per_channel=False,
                         extra_options=extra)
    # Sanity: every graph runs at several lengths (the export traced length 16) and stays
    # close to PyTorch.
    import numpy as np
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    probes = [np.array([[101] + rng.integers(1000, cfg.vocab_size, n - 2).tolist() + [102]], dtype=np.int64)
              for n in (3, 57, 384)]
    with torch.no_grad():
        refs = [model(input_ids=torch.from_numpy(a), attention_mask=torch.ones(a.shape, dtype=torch.long)).logits.numpy()
                for a in probes]
    got = {}
    for p in (fp32_path, opt_path, int8_path):
        s = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        got[os.path.basename(p)] = max(
            float(abs(s.run(["logits"], {"input_ids": a, "attention_mask": np.ones_like(a)})[0] - r).max())
            for a, r in zip(probes, refs))
    if got[os.path.basename(opt_path)] > 1e-3:
        raise SystemExit("optimized ONNX graph disagrees with PyTorch: %s" % got)
    info = {"fused_ops": {k: v for k, v in fused.items() if v}, "per_channel": per_channel,
            "max_abs_logit_diff_vs_torch_len_3_57_384": got,
            "torch": torch.__version__, "onnxruntime": ort.__version__}
    with open(os.path.join(out_dir, "export.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info), file=sys.stderr)


# ------------------------------------------------------------------------------------------
# Engines
# ------------------------------------------------------------------------------------------


def make_ort(model_dir, args, quantized):
    out_dir = cache_dir(model_dir, args.cache)
    onnx_path = os.path.join(out_dir, "model.opt.int8.onnx" if quantized else "model.opt.onnx")
    if not os.path.exists(os.path.join(out_dir, "export.json")):
        print("exporting %s -> %s" % (model_dir, out_dir), file=sys.stderr)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export-only", "--model", model_dir,
                        "--cache", args.cache], check=True)
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    with open(os.path.join(out_dir, "export.json")) as f:
        extra = json.load(f)
    extra["onnx_file"] = onnx_path
    extra["onnx_mb"] = round(os.path.getsize(onnx_path) / 2 ** 20, 1)

    def run(ids):
        a = np.asarray([ids], dtype=np.int64)
        return sess.run(["logits"], {"input_ids": a, "attention_mask": np.ones_like(a)})[0][0]

    extra["onnxruntime"] = ort.__version__
    return run, extra


def make_torch(model_dir, args, quantized):
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32).eval()
    if quantized:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    def run(ids):
        t = torch.tensor([ids], dtype=torch.long)
        with torch.inference_mode():
            return model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0].numpy()

    return run, {"torch": torch.__version__, "transformers": transformers.__version__,
                 "attn_implementation": model.config._attn_implementation}


def load_reference(model_dir, choice):
    """--reference auto: the model folder's reference/test_logits_fp32_len384.jsonl if present;
    none: no comparison (the caller compares dumped logits itself); else a JSONL path."""
    if choice == "none":
        return None
    path = os.path.join(model_dir, "reference", "test_logits_fp32_len384.jsonl") if choice == "auto" else choice
    if not os.path.exists(path):
        if choice != "auto":
            raise SystemExit("--reference %s: no such file" % path)
        return None
    ref = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            ref[r["id"]] = r["logits"]
    return ref


def main():
    ap = argparse.ArgumentParser(description="qsent peer benchmark (one engine, batch 1)")
    ap.add_argument("--model", required=True, help="HF model folder")
    ap.add_argument("--engine", choices=ENGINES)
    ap.add_argument("--data", default="/work/shared/data/imdb/test.jsonl")
    ap.add_argument("--stride", type=int, default=25, help="subset: 0-based line index %% STRIDE == 0 (25)")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--select", choices=("spread", "first"), default="spread",
                    help="--limit N takes N evenly spaced reviews of the subset (spread) or its first N (first)")
    ap.add_argument("--reference", default="auto",
                    help="FP32 reference logits JSONL to compare with: auto (the model's reference/ folder), none, or a path")
    ap.add_argument("--dump-logits", help="write {\"id\",\"logits\"} per review to FILE")
    ap.add_argument("--latency-texts", help="JSONL {\"tokens\",\"text\"} of fixed-length texts to time one by one")
    ap.add_argument("--latency-reps", type=int, default=100)
    ap.add_argument("--latency-warmup", type=int, default=5)
    ap.add_argument("--tokenizer", help="folder with tokenizer.json (default: --model)")
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/qsent-peers")
    ap.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.export_only:
        # Exports into the cache unless it already holds this model's graphs.
        out_dir = cache_dir(args.model, args.cache)
        if os.path.exists(os.path.join(out_dir, "export.json")):
            print("cached: %s" % out_dir, file=sys.stderr)
            return
        import torch
        torch.set_num_threads(args.threads)
        export_onnx(args.model, out_dir)
        return
    if not args.engine:
        ap.error("--engine is required")

    reviews = benchlib.select_rows(args.data, args.stride, args.limit, spread=args.select == "spread")
    tok = load_tokenizer(args.tokenizer or args.model, args.max_len)
    fixed = []
    if args.latency_texts:
        with open(args.latency_texts) as f:
            fixed = [json.loads(l) for l in f if l.strip()]
        for t in fixed:
            n = len(tok.encode(t["text"]).ids)
            if n != t["tokens"] or n > args.max_len:
                raise SystemExit("%s: a text meant to be %d tokens tokenizes to %d here (max %d)"
                                 % (args.latency_texts, t["tokens"], n, args.max_len))
    rss_start = proc_status_mb()
    t0 = time.perf_counter()
    if args.engine.startswith("ort-"):
        run, extra = make_ort(args.model, args, quantized=args.engine == "ort-int8")
    else:
        run, extra = make_torch(args.model, args, quantized=args.engine == "torch-dynamic-int8")
    load_s = time.perf_counter() - t0
    rss_loaded = proc_status_mb()

    for r in reviews[:args.warmup]:
        run(tok.encode(r["text"]).ids)

    lat, tok_time, n_tokens, preds = [], 0.0, [], []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_all = time.perf_counter()
    for r in reviews:
        t = time.perf_counter()
        ids = tok.encode(r["text"]).ids
        t1 = time.perf_counter()
        logits = run(ids)
        t2 = time.perf_counter()
        lat.append(t2 - t)
        tok_time += t1 - t
        n_tokens.append(len(ids))
        preds.append([float(x) for x in logits])
    wall = time.perf_counter() - t_all
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rss_end = proc_status_mb()

    latency = {}
    for t in fixed:
        for _ in range(args.latency_warmup):
            run(tok.encode(t["text"]).ids)
        times = []
        for _ in range(args.latency_reps):
            t0 = time.perf_counter()
            run(tok.encode(t["text"]).ids)
            times.append(time.perf_counter() - t0)
        latency[str(t["tokens"])] = benchlib.latency_summary(times)

    total = sum(lat)
    labels = [r["label"] for r in reviews]
    argmax = [max(range(len(p)), key=p.__getitem__) for p in preds]
    result = {
        "engine": args.engine,
        "model": os.path.realpath(args.model),
        "tokenizer": os.path.realpath(args.tokenizer or args.model),
        "n": len(reviews),
        "stride": args.stride,
        "select": args.select,
        "ids_digest": benchlib.ids_digest([r["id"] for r in reviews]),
        "threads": args.threads,
        "max_len": args.max_len,
        "mean_tokens": round(statistics.mean(n_tokens), 1),
        "reviews_per_s": round(len(reviews) / total, 2),
        "median_ms": round(1000 * statistics.median(lat), 2),
        "p90_ms": round(1000 * sorted(lat)[int(0.9 * (len(lat) - 1))], 2),
        "total_s": round(total, 2),
        "wall_s": round(wall, 2),
        "tokenize_share": round(tok_time / total, 4),
        # Process CPU time (all threads) per review: less sensitive than wall time to other
        # load on the machine, though spinning worker threads inflate it under contention.
        "cpu_ms_per_review": round(1000 * cpu / len(reviews), 2),
        "cpu_utilization": round(cpu / wall, 2),
        "load_s": round(load_s, 2),
        "accuracy": round(sum(int(a == l) for a, l in zip(argmax, labels)) / len(labels), 4),
        "rss_mb": round(rss_end["VmRSS"], 1),
        "peak_rss_mb": round(rss_end["VmHWM"], 1),
        "rss_before_load_mb": round(rss_start["VmRSS"], 1),
        "rss_after_load_mb": round(rss_loaded["VmRSS"], 1),
        "measured_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "host": platform.machine(),
        "python": platform.python_version(),
    }
    if latency:
        result["latency"] = latency
        result["latency_reps"] = args.latency_reps
    if args.dump_logits:
        with open(args.dump_logits, "w") as f:
            for r, p in zip(reviews, preds):
                f.write(json.dumps({"id": r["id"], "logits": p}) + "\n")
    ref = load_reference(args.model, args.reference)
    if ref is not None and all(r["id"] in ref for r in reviews) and args.max_len == 384:
        diffs = [max(abs(a - b) for a, b in zip(p, ref[r["id"]])) for p, r in zip(preds, reviews)]
        agree = [int(a == max(range(len(ref[r["id"]])), key=ref[r["id"]].__getitem__))
                 for a, r in zip(argmax, reviews)]
        result["vs_fp32_reference"] = {"argmax_agreement": round(sum(agree) / len(agree), 4),
                                       "max_abs_logit_diff": round(max(diffs), 5),
                                       "mean_abs_logit_diff": round(statistics.mean(diffs), 5)}
    result.update(extra)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
