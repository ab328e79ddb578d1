#!/usr/bin/env python3
"""qsent side-by-side benchmark: qsent vs ONNX Runtime vs PyTorch, same reviews, interleaved.

Run it through Benchmarks/sidebyside/run.sh (which picks the venv's Python); see
Benchmarks/README.md for what is measured and how. In short, in every round (order of the
engines rotated by one each round), for every model (the dim-384 stand-in and a random-weight
dim-768 DistilBERT that uses the stand-in's tokenizer), every engine gets:

  throughput  one fresh process classifying the selected reviews one at a time (batch 1,
              tokenization included): qsent `qsent eval --data -`, peers
              Benchmarks/peers/peer_bench.py; reviews/s as each reports it (model load excluded)
  CPU         qsent: user+sys of the eval process after its input arrived (the input is held
              back until the process has loaded the model and sleeps in its read);
              peers: getrusage(RUSAGE_SELF) around their timed loop. Divided by the reviews.
  memory      VmHWM of that process, polled from /proc/PID/status every 10 ms
  accuracy    from each engine's dumped logits: vs the IMDB labels, and argmax agreement /
              max |delta logit| vs the PyTorch FP32 reference logits (stand-in) and vs this
              round's torch-fp32 run (both models)
  latency     texts that tokenize to exactly 128 / 256 / 384 tokens (same text for every
              engine), each sent --latency-reps times one at a time after a warm-up:
              qsent through a qsentd on a private Unix socket (client-side time per request),
              peers inside peer_bench.py (raw text -> logits); p50 / p99 nearest rank.
              qsent's in-process mean (`qsent eval` over copies of the text) is given beside it.

Outputs OUT/sidebyside.json (everything), OUT/sidebyside.md (tables) and OUT/*.png (plots).
`sidebyside.py --render OUT/sidebyside.json` re-renders the Markdown and plots.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib  # noqa: E402

TAG = "sidebyside"
QSENT_ENGINES = ("qsent-int8", "qsent-int8-w7", "qsent-int8-avx2", "qsent-fp32", "qsent-fp32-avx2")
PEER_ENGINES = ("ort-int8", "ort-fp32", "torch-fp32", "torch-dynamic-int8")
DEFAULT_ENGINES = ("qsent-int8", "qsent-fp32", "ort-int8", "ort-fp32", "torch-fp32", "torch-dynamic-int8")
TITLES = {
    "qsent-int8": "qsent int8",
    "qsent-int8-w7": "qsent int8, 7-bit weights",
    "qsent-int8-avx2": "qsent int8 (--isa avx2)",
    "qsent-fp32": "qsent FP32",
    "qsent-fp32-avx2": "qsent FP32 (--isa avx2)",
    "ort-int8": "ONNX Runtime int8",
    "ort-fp32": "ONNX Runtime FP32",
    "torch-fp32": "PyTorch FP32",
    "torch-dynamic-int8": "PyTorch dynamic int8",
}
COLORS = {"qsent-int8": "#1f4e9c", "qsent-int8-w7": "#0b2a5e", "qsent-int8-avx2": "#5b8fd6", "qsent-fp32": "#9dbbe8", "qsent-fp32-avx2": "#c9d9f2",
          "ort-int8": "#d35400", "ort-fp32": "#f0a35e", "torch-fp32": "#2e8b57", "torch-dynamic-int8": "#8fd19e"}
MODEL_TITLES = {"h384": "stand-in, dim 384 (distilbert-h384-imdb, trained)",
                "h768": "dim 768 (random weights, distilbert-base geometry, the stand-in's tokenizer)"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def log(msg):
    benchlib.log(TAG, msg)


def run(cmd, **kw):
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


# ------------------------------------------------------------------------------------------
# Preparation: binaries, models, reviews, fixed-length texts
# ------------------------------------------------------------------------------------------


def prepare_binaries(args):
    if not args.skip_build:
        run(["swift", "build", "-c", "release"], cwd=args.root, stdout=sys.stderr)
    b = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=args.root, check=True,
                       capture_output=True, text=True).stdout.strip()
    bins = {n: os.path.join(b, n) for n in ("qsent", "qsentd", "qsent-quantize")}
    for n, p in bins.items():
        if not os.access(p, os.X_OK):
            raise SystemExit("no release binary %s: run `swift build -c release` (or drop --skip-build)" % p)
    return bins


def prepare_models(args, bins):
    """{"h384": {...}, "h768": {...}} with the int8 blob, the FP32 HF folder, reviews, reference."""
    models = {}
    if "h384" in args.models:
        if not os.path.exists(args.blob):
            raise SystemExit("missing %s (the committed int8 blob): `git checkout Quantizer/Models/` or run "
                             "qsent-quantize %s -o %s" % (args.blob, args.hf, args.blob))
        ref = os.path.join(args.hf, "reference", "test_logits_fp32_len384.jsonl")
        models["h384"] = {"blob": args.blob, "hf": args.hf, "reviews": args.reviews,
                          "reference": ref if os.path.exists(ref) else None,
                          "latency_reps": args.latency_reps}
        if "qsent-int8-w7" in args.engines:
            models["h384"]["blob7"] = quantize_if_stale(bins, args.hf, os.path.join(args.work, "h384-w7.qsent"),
                                                        ["--weight-bits", "7"])
    if "h768" in args.models:
        rnd = os.path.join(args.random_root, "distilbert768")
        if not os.path.exists(os.path.join(rnd, "model.safetensors")):
            run([sys.executable, os.path.join(args.root, "Tests/Fixtures/make_random_models.py"), "--out",
                 args.random_root, "--models", "distilbert768", "--no-oracle"], stdout=sys.stderr)
        # The random folder has a synthetic vocab.txt; give it the stand-in's tokenizer (same
        # bert-base-uncased vocabulary size, 30522) so that every engine, qsent included, sees
        # exactly the same token ids and lengths.
        hf = os.path.join(args.work, "distilbert768")
        os.makedirs(hf, exist_ok=True)
        for n in ("config.json", "model.safetensors"):
            dst = os.path.join(hf, n)
            if not os.path.islink(dst):
                if os.path.exists(dst):
                    os.unlink(dst)
                os.symlink(os.path.join(os.path.realpath(rnd), n), dst)
        for n in TOKENIZER_FILES:
            if os.path.exists(os.path.join(args.hf, n)):
                shutil.copyfile(os.path.join(args.hf, n), os.path.join(hf, n))
        blob = quantize_if_stale(bins, hf, os.path.join(args.work, "distilbert768.qsent"), [])
        models["h768"] = {"blob": blob, "hf": hf, "reviews": args.reviews768, "reference": None,
                          "latency_reps": args.latency_reps768}
        if "qsent-int8-w7" in args.engines:
            models["h768"]["blob7"] = quantize_if_stale(bins, hf, os.path.join(args.work, "distilbert768-w7.qsent"),
                                                        ["--weight-bits", "7"])
    return models


def quantize_if_stale(bins, hf, blob, flags):
    """qsent-quantize HF into BLOB (with FLAGS) unless BLOB is newer than the weights and the quantizer."""
    weights = os.path.join(hf, "model.safetensors")
    if not os.path.exists(blob) or os.path.getmtime(blob) < os.path.getmtime(weights) \
            or os.path.getmtime(blob) < os.path.getmtime(bins["qsent-quantize"]):
        run([bins["qsent-quantize"], hf, "-o", blob, "--force"] + flags, stdout=sys.stderr)
    return blob


def prepare_peers(args, models):
    if not any(e.startswith("ort-") for e in args.engines):
        return
    for tag, m in models.items():
        # Cached under /tmp/qsent-peers; done here so no timed round pays for an export.
        run([args.python, os.path.join(args.root, "Benchmarks/peers/peer_bench.py"), "--export-only",
             "--model", m["hf"], "--threads", str(args.threads)], stdout=sys.stderr, stderr=sys.stderr)


def check_qsent_selection(args, bins, rows):
    """`qsent eval --stride K --limit N` must pick exactly the rows the peers get."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        dump = f.name
    cmd = [bins["qsent"], "eval", "--model", args.blob if "h384" in args.models else args.hf, "--data", args.data,
           "--stride", str(args.stride), "--limit", str(len(rows)), "--max-tokens", "16", "--threads", "1",
           "--json", "--dump-logits", dump]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(dump) as f:
        got = [json.loads(l)["id"] for l in f if l.strip()]
    os.unlink(dump)
    want = [r["id"] for r in rows]
    ok = got == want
    log("qsent eval --stride %d --limit %d selects %s rows as the peers" % (args.stride, len(rows), "the same" if ok else "DIFFERENT"))
    if not ok:
        raise SystemExit("qsent eval --stride/--limit selected other rows than [::%d][:%d] (first ids %s vs %s)"
                         % (args.stride, len(rows), got[:3], want[:3]))
    return {"command": " ".join(cmd[:-2]), "rows": len(got), "same_as_peers": ok,
            "ids_digest": benchlib.ids_digest(got), "first_ids": got[:3], "last_id": got[-1]}


def make_fixed_texts(tokenizer_dir, rows, lengths):
    """Texts that the HF tokenizer turns into exactly N tokens ([CLS] and [SEP] included).

    Source: the first selected review with at least max(lengths) tokens. For each N: its
    longest whitespace-word prefix with <= N tokens, then " the" appended (one token each)
    until exactly N. Every engine gets the same texts; qsent's count is checked separately.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    count = lambda t: len(tok.encode(t).ids)
    top = max(lengths)
    base = next((r for r in rows if count(r["text"]) >= top), None)
    if base is None:
        raise SystemExit("no selected review has %d tokens" % top)
    words = base["text"].split()
    out = []
    for n in lengths:
        lo, hi = 0, len(words)  # largest k with count(words[:k]) <= n (count grows with k)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(" ".join(words[:mid])) <= n:
                lo = mid
            else:
                hi = mid - 1
        text, pad = " ".join(words[:lo]), 0
        while count(text) < n:
            text += " the"
            pad += 1
        if count(text) != n:
            raise SystemExit("could not make a %d-token text" % n)
        out.append({"tokens": n, "text": text, "source_id": base["id"], "words": lo, "padding_words": pad})
    return out


def check_qsent_tokens(bins, model, texts):
    """Token counts of the fixed texts as qsent's tokenizer (in `model`) makes them."""
    inp = "".join(json.dumps({"id": i, "text": t["text"]}) + "\n" for i, t in enumerate(texts))
    r = subprocess.run([bins["qsent"], "tokenize", "--model", model, "--max-tokens", "512"], input=inp,
                       capture_output=True, text=True, check=True)
    got = [json.loads(l)["n_tokens"] for l in r.stdout.splitlines() if l.strip()]
    if got != [t["tokens"] for t in texts]:
        raise SystemExit("qsent tokenizes the fixed-length texts of %s to %s tokens, the HF tokenizer to %s"
                         % (model, got, [t["tokens"] for t in texts]))
    return got


# ------------------------------------------------------------------------------------------
# One engine, one model, one round
# ------------------------------------------------------------------------------------------


def read_logits(path):
    with open(path) as f:
        return {str(d["id"]): d["logits"] for d in (json.loads(l) for l in f if l.strip())}


class Daemon:
    """A qsentd serving `model` on a private socket, for per-request latency."""

    def __init__(self, args, bins, model, isa):
        self.path = os.path.join(args.work, "qsentd-%d.sock" % os.getpid())
        if os.path.exists(self.path):
            os.unlink(self.path)
        env = dict(os.environ)
        env.pop("QSENT_ISA", None)
        if isa:
            env["QSENT_ISA"] = isa
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen([bins["qsentd"], "--model", model, "--socket", self.path, "--threads",
                                   str(args.threads), "--max-tokens", "384", "--log-level", "warning"],
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        t0 = time.time()
        while True:
            if self.p.poll() is not None:
                self.log.seek(0)
                raise SystemExit("qsentd exited (%d): %s" % (self.p.returncode, self.log.read().decode()[-2000:]))
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(self.path)
                break
            except OSError:
                self.s.close()
                if time.time() - t0 > 300:
                    raise SystemExit("qsentd did not come up on %s" % self.path)
                time.sleep(0.05)
        self.buf = b""
        self.info = self.ask({"op": "info"})

    def ask(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise SystemExit("qsentd closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def close(self):
        self.s.close()
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def qsent_latency(args, bins, model, isa, texts, reps):
    d = Daemon(args, bins, model, isa)
    try:
        out = {}
        for t in texts:
            req = {"text": t["text"]}
            for _ in range(args.latency_warmup):
                a = d.ask(req)
            if a.get("tokens") != t["tokens"] or a.get("truncated"):
                raise SystemExit("qsentd answered %r for a %d-token text" % (a, t["tokens"]))
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                d.ask(req)
                times.append(time.perf_counter() - t0)
            out[str(t["tokens"])] = benchlib.latency_summary(times)
        return out, d.info
    finally:
        d.close()


def qsent_inproc_mean(args, bins, model, isa_flags, texts, reps):
    """Mean per-review time of `qsent eval` over `reps` copies of each fixed-length text."""
    out = {}
    for t in texts:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for i in range(reps):
                f.write(json.dumps({"id": i, "label": 0, "text": t["text"]}) + "\n")
            path = f.name
        # eval has no warm-up: the mean includes the first copy's cold caches.
        r = subprocess.run([bins["qsent"], "eval", "--model", model, "--data", path, "--threads", str(args.threads),
                            "--max-tokens", "384", "--json"] + isa_flags, capture_output=True, text=True, check=True)
        os.unlink(path)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        out[str(t["tokens"])] = {"n": res["reviews"], "mean_ms": round(1000 * res["seconds"] / res["reviews"], 3)}
    return out


def run_qsent(args, bins, tag, m, engine, rows, texts, tmp):
    model = m["blob7"] if engine == "qsent-int8-w7" else m["blob"] if engine.startswith("qsent-int8") else m["hf"]
    isa = "avx2" if engine.endswith("-avx2") else None
    isa_flags = ["--isa", isa] if isa else []
    dump = os.path.join(tmp, "%s-%s.jsonl" % (tag, engine))
    cmd = [bins["qsent"], "eval", "--model", model, "--data", "-", "--threads", str(args.threads),
           "--max-tokens", "384", "--json", "--dump-logits", dump] + isa_flags
    inp = "".join(json.dumps({"id": r["id"], "label": r["label"], "text": r["text"]}) + "\n" for r in rows).encode()
    env = dict(os.environ)
    env.pop("QSENT_ISA", None)
    res, meas = benchlib.run_measured(cmd, env=env, stdin_bytes=inp, isolate_cpu=True)
    out = {"reviews_per_s": res["reviews_per_s"], "n": res["reviews"],
           "tokens_per_review": round(res["tokens_per_s"] / res["reviews_per_s"], 1),
           "isa": res["isa"], "precision": res["precision"],
           "cpu_ms_per_review": round(1000 * meas["cpu_after_input_s"] / res["reviews"], 2),
           "command": " ".join(cmd) + " < (the %d selected reviews as JSONL)" % len(rows), **meas}
    out["logits"] = read_logits(dump)
    if texts:
        out["latency"], info = qsent_latency(args, bins, model, isa, texts, m["latency_reps"])
        out["latency_via"] = "qsentd (%s, %s), client-side time per request on a Unix socket" % (info.get("precision"), info.get("isa"))
        if isa and info.get("isa") != isa:
            raise SystemExit("qsentd with QSENT_ISA=%s reports isa %s" % (isa, info.get("isa")))
        if args.inproc_reps:
            out["inproc_mean"] = qsent_inproc_mean(args, bins, model, isa_flags, texts, args.inproc_reps)
    return out


def run_peer(args, tag, m, engine, rows, texts_path, tmp, want_digest):
    dump = os.path.join(tmp, "%s-%s.jsonl" % (tag, engine))
    cmd = [args.python, os.path.join(args.root, "Benchmarks/peers/peer_bench.py"), "--model", m["hf"],
           "--engine", engine, "--data", args.data, "--stride", str(args.stride), "--limit", str(len(rows)),
           "--select", "first", "--threads", str(args.threads), "--max-len", "384", "--reference", "none",
           "--dump-logits", dump]
    if texts_path:
        cmd += ["--latency-texts", texts_path, "--latency-reps", str(m["latency_reps"]),
                "--latency-warmup", str(args.latency_warmup)]
    res, meas = benchlib.run_measured(cmd)
    if res["ids_digest"] != want_digest:
        raise SystemExit("%s saw other reviews than qsent (ids digest %s vs %s)" % (engine, res["ids_digest"], want_digest))
    out = {"reviews_per_s": res["reviews_per_s"], "n": res["n"], "tokens_per_review": res["mean_tokens"],
           "cpu_ms_per_review": res["cpu_ms_per_review"], "tokenize_share": res["tokenize_share"],
           "self_reported_peak_rss_mb": res["peak_rss_mb"], "load_s": res["load_s"],
           "versions": {k: res[k] for k in ("torch", "transformers", "onnxruntime") if k in res},
           "command": " ".join(cmd), **meas}
    if "fused_ops" in res:
        out["fused_ops"] = res["fused_ops"]
    out["logits"] = read_logits(dump)
    if "latency" in res:
        out["latency"] = res["latency"]
        out["latency_via"] = "in-process, raw text -> logits"
    return out


def score(logits, rows, ref):
    """accuracy vs labels; argmax agreement and max |delta| vs a reference {id: logits}."""
    am = lambda v: max(range(len(v)), key=v.__getitem__)
    ids = [str(r["id"]) for r in rows]
    if sorted(ids) != sorted(logits):
        raise SystemExit("dumped logits cover other reviews than selected")
    out = {"accuracy": round(sum(am(logits[i]) == r["label"] for i, r in zip(ids, rows)) / len(rows), 4)}
    if ref:
        out["agreement"] = round(sum(am(logits[i]) == am(ref[i]) for i in ids) / len(ids), 4)
        out["max_abs_logit_diff"] = float("%.3g" % max(max(abs(a - b) for a, b in zip(logits[i], ref[i])) for i in ids))
    return out


def load_reference(path, ids):
    want, ref = set(ids), {}
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d["id"] in want:
                ref[d["id"]] = d["logits"]
    missing = want - set(ref)
    if missing:
        raise SystemExit("%s lacks %d of the selected ids" % (path, len(missing)))
    return ref


# ------------------------------------------------------------------------------------------
# Summary, Markdown, plots
# ------------------------------------------------------------------------------------------


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def summarize(R):
    S = {}
    for tag, g in R["models"].items():
        runs = g["runs"]  # engine -> [per-round dict]
        s = {}
        base = runs.get("qsent-int8", [])
        for e, rs in runs.items():
            d = {"reviews_per_s": med(r["reviews_per_s"] for r in rs),
                 "per_round": [r["reviews_per_s"] for r in rs],
                 "cpu_ms_per_review": med(r["cpu_ms_per_review"] for r in rs),
                 "peak_rss_mb": med(r.get("peak_rss_mb") for r in rs),
                 "max_peak_rss_mb": max(r.get("peak_rss_mb", 0) for r in rs),
                 "tokens_per_review": rs[0]["tokens_per_review"], "n": rs[0]["n"]}
            for k in ("accuracy", "agreement", "max_abs_logit_diff", "agreement_vs_torch_fp32",
                      "max_abs_logit_diff_vs_torch_fp32"):
                vals = [r[k] for r in rs if k in r]
                if vals:
                    d[k] = vals[0] if len(set(vals)) == 1 else {"per_round": vals}
            if base and e != "qsent-int8":
                # Paired by round: zip stops at the shorter list.
                pr = [round(a["reviews_per_s"] / b["reviews_per_s"], 3) for a, b in zip(base, rs)]
                d["qsent_int8_over"] = {"per_round": pr, "median_of_per_round": med(pr),
                                        "of_medians": round(med(a["reviews_per_s"] for a in base) / d["reviews_per_s"], 3)}
            if any("latency" in r for r in rs):
                lat = {}
                for n in rs[0]["latency"]:
                    lat[n] = {"p50_ms": med(r["latency"][n]["p50_ms"] for r in rs),
                              "p99_ms": med(r["latency"][n]["p99_ms"] for r in rs),
                              "samples_per_round": rs[0]["latency"][n]["n"]}
                    if base and e != "qsent-int8" and "latency" in base[0]:
                        pr = [round(a["latency"][n]["p50_ms"] / b["latency"][n]["p50_ms"], 3) for a, b in zip(base, rs)]
                        lat[n]["qsent_int8_p50_over"] = {"per_round": pr, "median_of_per_round": med(pr)}
                    if any("inproc_mean" in r for r in rs):
                        lat[n]["inproc_mean_ms"] = med(r["inproc_mean"][n]["mean_ms"] for r in rs if "inproc_mean" in r)
                d["latency"] = lat
                d["latency_via"] = rs[0]["latency_via"]
            if "isa" in rs[0]:
                d["isa"] = rs[0]["isa"]
            s[e] = d
        w7 = runs.get("qsent-int8-w7")
        for e, rs in runs.items():  # the 7-bit-weight blob against every other engine, paired by round
            if w7 and e != "qsent-int8-w7":
                pr = [round(a["reviews_per_s"] / b["reviews_per_s"], 3) for a, b in zip(w7, rs)]
                s[e]["w7_over"] = {"per_round": pr, "median_of_per_round": med(pr)}
                if "latency" in w7[0] and "latency" in rs[0]:
                    s[e]["w7_p50_over"] = {n: med(round(a["latency"][n]["p50_ms"] / b["latency"][n]["p50_ms"], 3)
                                                  for a, b in zip(w7, rs)) for n in rs[0]["latency"]}
        a8, a32 = runs.get("qsent-int8-avx2"), runs.get("qsent-fp32-avx2")
        if a8 and a32:  # int8 over FP32 with the AVX2 kernels on both sides, paired by round
            pr = [round(a["reviews_per_s"] / b["reviews_per_s"], 3) for a, b in zip(a8, a32)]
            s["qsent-fp32-avx2"]["avx2_int8_over"] = {"per_round": pr, "median_of_per_round": med(pr)}
        S[tag] = s
    return S


def fmt(x, nd=1):
    if x is None:
        return "—"
    if isinstance(x, dict):
        return "varies: " + ", ".join(fmt(v, nd) for v in x["per_round"])
    return "%.*f" % (nd, x)


def markdown(R, png_names):
    m, S = R["meta"], R["summary"]
    L = []
    title = "qsent side-by-side benchmark, %s" % m["date_utc"]
    if m.get("label"):
        title += " — " + m["label"]
    L += ["# " + title, ""]
    if m["loaded"]:
        L += ["> **WARNING: LOADED MACHINE.** The 1-minute load average at start was %.2f on %d CPUs "
              "(%.2f per CPU, above the %.2f limit); the run went ahead only because of `--allow-load`. "
              "These figures are NOT results: other processes competed for the cores, and ONNX Runtime "
              "suffers more from that than qsent. Re-run on an idle machine." %
              (m["loadavg_start"][0], m["cpus"], m["loadavg_start"][0] / m["cpus"], m["max_load_per_core"],), ""]
    L.append("Host: %s, %d CPUs (%s), flags: `%s`; kernel %s; qsent commit `%s`; %d threads for every engine "
             "(peers: intra-op %d, inter-op 1); batch 1; tokenization included." %
             (m["cpu_model"], m["cpus"], m["machine"], " ".join(m["cpu_flags"]) or "none of the relevant ones",
              m["kernel"], m["commit"], m["threads"], m["threads"]))
    L.append("")
    counts = " / ".join("the first %d (%s)" % (m[k], w) for k, w in (("reviews", "stand-in"), ("reviews768", "dim 768")) if m.get(k))
    L.append("Reviews: `%s`, the rows at 0-based line index i %% %d == 0: %s of them, natural length truncated to "
             "384 tokens. `qsent eval --stride %d --limit %d` selects exactly these rows (checked: ids digest `%s`), "
             "and every peer saw the same ids." %
             (m["data"], m["stride"], counts, m["stride"], m["selection_check"]["rows"], m["selection_check"]["ids_digest"]))
    L.append("")
    done = m.get("rounds_done", m["rounds"])
    L.append("%d round%s%s; in round r the engine order is rotated by r. CPU busy at start: %s %% (2 s of /proc/stat). "
             "Load average (1, 5, 15 min): at start %s; per round before → after: %s (after round 1 these include the "
             "benchmark's own %d threads)." %
             (done, "" if done == 1 else "s", "" if done == m["rounds"] else " (of %d asked: the run stopped early)" % m["rounds"],
              m.get("cpu_busy_pct_start", "—"), " / ".join(str(x) for x in m["loadavg_start"]),
              "; ".join("%d: %s → %s" % (i + 1, b[0], a[0]) for i, (b, a) in enumerate(zip(m["loadavg_before_round"], m["loadavg_after_round"]))),
              m["threads"]))
    L.append("")
    L.append("Command: `%s`  " % m["command"])
    L.append("Remake: `%s`" % m["remake"])
    for tag in R["models"]:
        s = S[tag]
        g = R["models"][tag]
        L += ["", "## %s" % MODEL_TITLES[tag], ""]
        if tag == "h768":
            L += ["Random weights: accuracy is meaningless (about 0.5); agreement is with this round's PyTorch "
                  "FP32 run. The folder uses the stand-in's tokenizer, so all engines see the same token ids.", ""]
        L.append("%d reviews, %.1f tokens per review on average." %
                 (next(iter(s.values()))["n"], next(iter(s.values()))["tokens_per_review"]))
        L.append("")
        ref_name = "FP32 reference" if g.get("reference") else "torch-fp32 (same round)"
        L.append("| engine | reviews/s (median) | per round | qsent int8 ÷ engine (median of per-round ratios) | "
                 "CPU ms / review | peak RSS MiB | accuracy | argmax agreement with %s | max \\|Δlogit\\| |" % ref_name)
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for e, d in s.items():
            ratio = d.get("qsent_int8_over")
            agree_k, diff_k = ("agreement", "max_abs_logit_diff") if g.get("reference") else \
                ("agreement_vs_torch_fp32", "max_abs_logit_diff_vs_torch_fp32")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                TITLES[e] + (" (%s)" % d["isa"] if "isa" in d and not e.endswith("-avx2") else ""), fmt(d["reviews_per_s"], 2),
                ", ".join("%.2f" % x for x in d["per_round"]),
                "**%.2f×** (%s)" % (ratio["median_of_per_round"], ", ".join("%.2f" % x for x in ratio["per_round"])) if ratio else ("1" if e == "qsent-int8" else "—"),
                fmt(d["cpu_ms_per_review"], 1), fmt(d["peak_rss_mb"], 1), fmt(d.get("accuracy"), 4),
                fmt(d.get(agree_k), 4), ("%.3g" % d[diff_k]) if isinstance(d.get(diff_k), float) else fmt(d.get(diff_k), 3)))
        w7 = [(e, d["w7_over"], d.get("w7_p50_over", {})) for e, d in s.items() if "w7_over" in d]
        if w7:
            L += ["", "qsent int8 with 7-bit weights (`qsent-quantize --weight-bits 7`) ÷ each engine, medians of "
                  "per-round ratios: " + "; ".join(
                      "%s **%.2f×** (per round %s%s)" % (TITLES[e], r["median_of_per_round"],
                                                         ", ".join("%.2f" % x for x in r["per_round"]),
                                                         "; p50 latency " + " / ".join(
                                                             "%s: %.2f×" % (n, v) for n, v in sorted(p.items(), key=lambda t: int(t[0])))
                                                         if p else "")
                      for e, r, p in w7) + "."]
        r = s.get("qsent-fp32-avx2", {}).get("avx2_int8_over")
        if r:
            L += ["", "With the AVX2 kernels on both sides, qsent int8 (--isa avx2) ÷ qsent FP32 (--isa avx2): "
                  "**%.2f×** (median of per-round ratios; per round %s)." %
                  (r["median_of_per_round"], ", ".join("%.2f" % x for x in r["per_round"]))]
        lens = sorted({n for d in s.values() for n in d.get("latency", {})}, key=int)
        if lens:
            L += ["", "Latency of one review at exactly N tokens (ms, medians over rounds of each round's p50 / p99; "
                  "%d requests per length per round):" % next(d for d in s.values() if "latency" in d)["latency"][lens[0]]["samples_per_round"], ""]
            hdr = "| engine | " + " | ".join("%s p50 | %s p99" % (n, n) for n in lens) + \
                  " | qsent int8 p50 ÷ engine (%s) | qsent in-process mean (%s) |" % (" / ".join(lens), " / ".join(lens))
            L.append(hdr)
            L.append("|---|" + "---:|---:|" * len(lens) + "---:|---:|")
            for e, d in s.items():
                if "latency" not in d:
                    continue
                lat = d["latency"]
                rat = [lat[n].get("qsent_int8_p50_over", {}).get("median_of_per_round") for n in lens]
                inproc = [lat[n].get("inproc_mean_ms") for n in lens]
                L.append("| %s | %s | %s | %s |" % (
                    TITLES[e], " | ".join("%s | %s" % (fmt(lat[n]["p50_ms"]), fmt(lat[n]["p99_ms"])) for n in lens),
                    " / ".join(fmt(x, 2) + "×" if x else "—" for x in rat) if e != "qsent-int8" else "1",
                    " / ".join(fmt(x) for x in inproc) if any(inproc) else "—"))
    L += ["", "## How it is measured", ""]
    L += ["- **reviews/s**: each engine in a fresh process per round, reviews one at a time, tokenization included, "
          "model load excluded. qsent: `qsent eval` (reviews / wall time of its loop); peers: "
          "`peer_bench.py` (reviews / sum of per-review times). Ratios are paired by round, then the median is taken.",
          "- **CPU ms / review**: user + system time of all threads. qsent: the eval process gets its reviews on stdin "
          "only once it has loaded the model and sleeps in its read; CPU = total (rusage of the reaped child) minus CPU "
          "at that moment (/proc/PID/stat). Peers: getrusage(RUSAGE_SELF) around the timed loop (after warm-up).",
          "- **peak RSS**: VmHWM of that process, polled from /proc/PID/status every 10 ms (peers include the Python "
          "interpreter and framework; their process also runs the latency texts, no longer than the reviews).",
          ("- **latency**: `%s`. Fixed-length texts: the first selected review with ≥ %s tokens (id `%s`), cut to its "
          "longest whitespace-word prefix of at most N tokens, then \" the\" appended until the HF tokenizer gives exactly "
          "N tokens ([CLS] and [SEP] included); qsent's tokenizer was checked to give the same counts for every qsent "
          "model. qsent is timed through a `qsentd` (same model, same threads) on a private Unix socket: client-side time "
          "from sending the request line to reading the answer (includes the socket round trip and the daemon's thread "
          "hand-offs); its in-process mean (`qsent eval` over %d copies of the text, load excluded, no warm-up) is shown "
          "beside. Peers are timed in-process (raw text → logits). %d untimed warm-up requests per length first. p99 "
          "is the nearest rank (with 50 samples it is the maximum)." %
          (m["fixed_texts_file"], max(int(x) for x in m["lengths"]), m["fixed_texts_source_id"], m["inproc_reps"],
           m["latency_warmup"])) if m["lengths"] else "- **latency**: not measured in this run (`--lengths ''`).",
          "- **accuracy / agreement**: from each engine's dumped logits, computed by the driver (not inside the timed "
          "processes): argmax vs IMDB label; argmax agreement and max |Δlogit| vs the PyTorch FP32 reference logits "
          "(`reference/test_logits_fp32_len384.jsonl`, stand-in) or vs this round's `torch-fp32` run (dim 768).",
          "- ONNX Runtime: `torch.onnx.export` → `onnxruntime.transformers.optimizer` (fused attention / LayerNorm / GELU) "
          "→ FP32 graph, and `quantize_dynamic` (QInt8, per channel) → int8 graph; PyTorch: eager FP32 and "
          "`quantize_dynamic({nn.Linear}, qint8)`. See Benchmarks/peers/README.md."]
    if R.get("versions"):
        L.append("- Versions: " + ", ".join("%s %s" % kv for kv in sorted(R["versions"].items())))
    if png_names:
        L += ["", "## Plots", ""] + ["![%s](%s)" % (n[:-4], n) for n in png_names]
    L.append("")
    return "\n".join(L)


def plots(R, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plots")
        return []
    S, tags = R["summary"], list(R["models"])
    label = R["meta"].get("label") or ""
    warn = " — LOADED MACHINE, NOT RESULTS" if R["meta"]["loaded"] else ""
    names = []

    fig, axes = plt.subplots(1, len(tags), figsize=(6.5 * len(tags), 4.5), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        s = S[tag]
        es = list(s)
        ys = [s[e]["reviews_per_s"] for e in es]
        ax.bar(range(len(es)), ys, color=[COLORS[e] for e in es])
        for i, e in enumerate(es):
            ax.plot([i] * len(s[e]["per_round"]), s[e]["per_round"], "k.", ms=4)
            r = s[e].get("qsent_int8_over")
            if r:
                ax.annotate("%.2f×" % r["median_of_per_round"], (i, ys[i]), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(es)))
        ax.set_xticklabels([TITLES[e].replace(" (", "\n(") for e in es], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("reviews/s (median; dots: rounds)")
        ax.set_title(tag + ": " + MODEL_TITLES[tag].split(" (")[0], fontsize=10)
    fig.suptitle("Throughput, batch 1, %d threads (labels: qsent int8 ÷ engine)%s %s" % (R["meta"]["threads"], warn, label), fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "throughput.png"), dpi=110)
    plt.close(fig)
    names.append("throughput.png")

    if any("latency" in d for s in S.values() for d in s.values()):
        fig, axes = plt.subplots(1, len(tags), figsize=(6.5 * len(tags), 4.5), squeeze=False)
        for ax, tag in zip(axes[0], tags):
            for e, d in S[tag].items():
                if "latency" not in d:
                    continue
                ns = sorted(d["latency"], key=int)
                p50 = [d["latency"][n]["p50_ms"] for n in ns]
                p99 = [d["latency"][n]["p99_ms"] for n in ns]
                ax.plot([int(n) for n in ns], p50, "o-", label=TITLES[e], color=COLORS[e])
                ax.plot([int(n) for n in ns], p99, "--", color=COLORS[e], alpha=0.6)
            ax.set_yscale("log")
            ax.set_xticks([int(n) for n in ns])
            ax.set_xlabel("tokens")
            ax.set_ylabel("ms per review (solid p50, dashed p99)")
            ax.set_title(tag, fontsize=10)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        fig.suptitle("Latency of one review%s %s" % (warn, label), fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "latency.png"), dpi=110)
        plt.close(fig)
        names.append("latency.png")

    fig, axes = plt.subplots(2, len(tags), figsize=(6.5 * len(tags), 7), squeeze=False)
    for j, tag in enumerate(tags):
        s = S[tag]
        es = list(s)
        for i, (k, yl) in enumerate((("peak_rss_mb", "peak RSS MiB"), ("cpu_ms_per_review", "CPU ms / review"))):
            ax = axes[i][j]
            ax.bar(range(len(es)), [s[e][k] or 0 for e in es],
                   color=[COLORS[e] for e in es])
            ax.set_xticks(range(len(es)))
            ax.set_xticklabels([TITLES[e].replace(" (", "\n(") for e in es], rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(yl)
            ax.set_title(tag, fontsize=10)
    fig.suptitle("Memory and CPU time%s %s" % (warn, label), fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "resources.png"), dpi=110)
    plt.close(fig)
    names.append("resources.png")
    return names


def readme_snippet(R, out_dir, png_names):
    """A compact table + plots, with links relative to the repository root, for README.md."""
    m, S = R["meta"], R["summary"]
    rel = os.path.relpath(os.path.abspath(out_dir), m.get("root") or os.path.join(HERE, "..", ".."))
    n0 = m["lengths"][0] if m["lengths"] else None
    L = ["Measured side by side on %s (%s, %d threads, batch 1, tokenization included; %d interleaved round%s; "
         "load average %s at start%s; qsent `%s`):" %
         (m["date_utc"], m["cpu_model"], m["threads"], m.get("rounds_done", m["rounds"]),
          "" if m.get("rounds_done", m["rounds"]) == 1 else "s", m["loadavg_start"][0],
          ", **LOADED MACHINE: NOT RESULTS**" if m["loaded"] else "", m["commit"]), ""]
    L.append("| model | engine | reviews/s | qsent int8 ÷ engine | %s | CPU ms / review | peak RSS MiB | accuracy |"
             % ("latency p50 / p99 at %s tokens" % n0 if n0 else "latency"))
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for tag, s in S.items():
        for e, d in s.items():
            lat = d.get("latency", {}).get(n0)
            r = d.get("qsent_int8_over")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                tag, TITLES[e], fmt(d["reviews_per_s"], 2), "%.2f×" % r["median_of_per_round"] if r else ("1" if e == "qsent-int8" else "—"),
                "%s / %s ms" % (fmt(lat["p50_ms"]), fmt(lat["p99_ms"])) if lat else "—",
                fmt(d["cpu_ms_per_review"], 1), fmt(d["peak_rss_mb"], 0),
                fmt(d.get("accuracy"), 3) if tag == "h384" else "(random)"))
    L += ["", "Full tables: [%s/sidebyside.md](%s/sidebyside.md). Remake: `%s`" % (rel, rel, m["remake"]), ""]
    L += ["![%s](%s/%s)" % (n[:-4], rel, n) for n in png_names if n != "resources.png"]
    L.append("")
    return "\n".join(L)


def write_outputs(R, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    names = plots(R, out_dir)
    md = markdown(R, names)
    with open(os.path.join(out_dir, "sidebyside.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "readme-snippet.md"), "w") as f:
        f.write(readme_snippet(R, out_dir, names))
    return md


# ------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        with open(sys.argv[2]) as f:
            R = json.load(f)
        print(write_outputs(R, os.path.dirname(os.path.abspath(sys.argv[2]))))
        return
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    shared = os.path.join(root, "..", "shared")
    if not os.path.isdir(os.path.join(shared, "data", "imdb")):
        shared = "/work/shared"
    ap = argparse.ArgumentParser(prog="Benchmarks/sidebyside/run.sh",
                                 description="qsent vs ONNX Runtime vs PyTorch on the same reviews, interleaved rounds.")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--reviews", type=int, default=300, help="stand-in: the first N selected reviews (300)")
    ap.add_argument("--reviews768", type=int, default=100, help="dim 768: the first N of them (100)")
    ap.add_argument("--stride", type=int, default=83, help="select 0-based line index %% STRIDE == 0 (83)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="h384,h768", help="h384 (stand-in), h768 (random dim 768), comma-separated")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help="comma-separated, from %s" % ", ".join(QSENT_ENGINES + PEER_ENGINES))
    ap.add_argument("--avx2", action="store_true", help="add qsent int8 with --isa avx2 (QSENT_ISA=avx2 for qsentd)")
    ap.add_argument("--lengths", default="128,256,384", help="fixed token lengths for latency ('' for none)")
    ap.add_argument("--latency-reps", type=int, default=100, help="requests per length per round, stand-in (100)")
    ap.add_argument("--latency-reps768", type=int, default=50, help="requests per length per round, dim 768 (50)")
    ap.add_argument("--latency-warmup", type=int, default=5)
    ap.add_argument("--inproc-reps", type=int, default=20,
                    help="copies of each fixed text for qsent's in-process mean (0: skip)")
    ap.add_argument("--allow-load", action="store_true",
                    help="run even if the machine is busy (the output is flagged as NOT results)")
    ap.add_argument("--max-load-per-core", type=float, default=0.5,
                    help="refuse to start above this 1-minute load average per CPU (0.5)")
    ap.add_argument("--wait-for-idle", type=float, default=0, metavar="SECONDS",
                    help="wait up to SECONDS for the load average to drop below the limit before refusing (0)")
    ap.add_argument("--label", default="", help="a note for the title, e.g. 'smoke run'")
    ap.add_argument("--out", help="output directory (default Benchmarks/results/<UTC date>)")
    ap.add_argument("--skip-build", action="store_true", help="use the existing release binaries")
    ap.add_argument("--python", default=sys.executable, help="Python with torch/onnxruntime for the peers")
    ap.add_argument("--data", default=os.path.join(shared, "data", "imdb", "test.jsonl"))
    ap.add_argument("--hf", default=os.path.join(shared, "models", "distilbert-h384-imdb"), help="stand-in HF folder (FP32)")
    ap.add_argument("--blob", default=os.path.join(root, "Quantizer", "Models", "distilbert-h384-imdb.qsent"), help="stand-in int8 blob")
    ap.add_argument("--random-root", default="/tmp/qsent-random", help="where make_random_models.py writes distilbert768")
    ap.add_argument("--work", default="/tmp/qsent-sbs", help="scratch: the 768 folder and blob, sockets, dumps")
    args = ap.parse_args()
    args.root = root
    args.models = [x for x in args.models.split(",") if x]
    args.engines = [x for x in args.engines.split(",") if x]
    if any(e.endswith("-avx2") for e in args.engines) or args.avx2:
        if "avx2" not in benchlib.cpu_info()[1]:
            ap.error("--avx2 / qsent-*-avx2: this CPU has no AVX2")
    if args.avx2 and "qsent-int8-avx2" not in args.engines:
        args.engines.insert(args.engines.index("qsent-int8") + 1 if "qsent-int8" in args.engines else 0, "qsent-int8-avx2")
    lengths = [int(x) for x in args.lengths.split(",") if x]
    for e in args.engines:
        if e not in QSENT_ENGINES + PEER_ENGINES:
            ap.error("unknown engine %s" % e)
    for t in args.models:
        if t not in MODEL_TITLES:
            ap.error("unknown model %s (h384, h768)" % t)
    if any(n > 384 or n < 3 for n in lengths):
        ap.error("--lengths must be within 3..384")
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    date = datetime.datetime.now(datetime.timezone.utc)
    out_dir = args.out or os.path.join(root, "Benchmarks", "results", date.strftime("%Y-%m-%d"))
    command = "Benchmarks/sidebyside/run.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    remake = "Benchmarks/sidebyside/run.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:]
                                                        if a not in ("--allow-load", "--skip-build"))

    cpus = os.cpu_count()
    load0 = benchlib.loadavg()
    deadline = time.time() + args.wait_for_idle
    while load0[0] / cpus > args.max_load_per_core and time.time() < deadline:
        log("load average %.2f on %d CPUs: waiting for it to drop below %.2f" % (load0[0], cpus, args.max_load_per_core * cpus))
        time.sleep(min(30, max(1, deadline - time.time())))
        load0 = benchlib.loadavg()
    loaded = load0[0] / cpus > args.max_load_per_core
    if loaded and not args.allow_load:
        raise SystemExit("the machine is busy: 1-minute load average %.2f on %d CPUs (%.2f per CPU > %.2f). "
                         "Figures from a loaded machine mislead (ONNX Runtime suffers more than qsent). "
                         "Wait until it is idle, or pass --allow-load to run anyway (the output is then "
                         "flagged as not results)." % (load0[0], cpus, load0[0] / cpus, args.max_load_per_core))
    if loaded:
        log("WARNING: load average %.2f on %d CPUs: running anyway (--allow-load); output flagged" % (load0[0], cpus))
    for p in (args.data, os.path.join(args.hf, "config.json")):
        if not os.path.exists(p):
            raise SystemExit("missing %s: pass --data / --hf (shared data lives in ../shared or /work/shared)" % p)
    if any(e in PEER_ENGINES for e in args.engines):
        try:
            subprocess.run([args.python, "-c", "import torch, transformers, onnxruntime, tokenizers"], check=True,
                           capture_output=True)
        except (subprocess.CalledProcessError, FileNotFoundError):
            raise SystemExit("%s cannot import torch/transformers/onnxruntime/tokenizers: make the venv "
                             "(Benchmarks/peers/README.md) or pass --python" % args.python)
    busy0 = benchlib.cpu_busy_pct()
    os.makedirs(args.work, exist_ok=True)

    bins = prepare_binaries(args)
    models = prepare_models(args, bins)
    prepare_peers(args, models)
    n_rows = max(m["reviews"] for m in models.values())
    rows = benchlib.select_rows(args.data, args.stride, n_rows)
    if len(rows) < n_rows:
        raise SystemExit("only %d rows selected with --stride %d" % (len(rows), args.stride))
    selection = check_qsent_selection(args, bins, rows)
    texts = make_fixed_texts(args.hf, rows, lengths) if lengths else []
    texts_path = None
    if texts:
        texts_path = os.path.join(args.work, "fixed-lengths.jsonl")
        with open(texts_path, "w") as f:
            for t in texts:
                f.write(json.dumps(t) + "\n")
        for m in models.values():
            for p in (m["blob"], m["hf"]):
                check_qsent_tokens(bins, p, texts)
        log("fixed-length texts: %s tokens for the HF tokenizer and for qsent (every model)" % [t["tokens"] for t in texts])

    cpu_model, flags = benchlib.cpu_info()
    R = {"meta": {"date_utc": date.strftime("%Y-%m-%d %H:%M UTC"), "label": args.label, "loaded": loaded,
                  "max_load_per_core": args.max_load_per_core, "cpu_model": cpu_model, "cpu_flags": flags,
                  "cpus": cpus, "machine": platform.machine(), "kernel": platform.release(),
                  "commit": benchlib.git_commit(root), "threads": args.threads, "rounds": args.rounds,
                  "engines": args.engines, "data": os.path.relpath(os.path.realpath(args.data), os.path.realpath(os.path.join(root, ".."))),
                  "stride": args.stride, "reviews": models.get("h384", {}).get("reviews"),
                  "reviews768": models.get("h768", {}).get("reviews"), "lengths": [str(n) for n in lengths],
                  "latency_warmup": args.latency_warmup, "inproc_reps": args.inproc_reps,
                  "fixed_texts_file": os.path.basename(texts_path) if texts_path else None,
                  "fixed_texts_source_id": texts[0]["source_id"] if texts else None,
                  "selection_check": selection, "loadavg_start": load0, "cpu_busy_pct_start": busy0, "loadavg_before_round": [],
                  "loadavg_after_round": [], "command": command, "remake": remake,
                  "python": platform.python_version(), "root": root},
         "fixed_texts": texts, "models": {}, "versions": {}}
    for tag, m in models.items():
        R["models"][tag] = {"blob": m["blob"], "hf": m["hf"], "reference": m["reference"],
                            "runs": {e: [] for e in args.engines}}
    refs = {tag: load_reference(m["reference"], [r["id"] for r in rows[:m["reviews"]]])
            for tag, m in models.items() if m["reference"]}
    digests = {tag: benchlib.ids_digest([r["id"] for r in rows[:m["reviews"]]]) for tag, m in models.items()}

    tmp = tempfile.mkdtemp(prefix="sbs-", dir=args.work)
    for r in range(args.rounds):
        R["meta"]["loadavg_before_round"].append(benchlib.loadavg())
        k = r % len(args.engines)
        order = args.engines[k:] + args.engines[:k]
        for tag, m in models.items():
            sub = rows[:m["reviews"]]
            for e in order:
                log("round %d/%d %s %s" % (r + 1, args.rounds, tag, e))
                if e in QSENT_ENGINES:
                    res = run_qsent(args, bins, tag, m, e, sub, texts, tmp)
                else:
                    res = run_peer(args, tag, m, e, sub, texts_path, tmp, digests[tag])
                    R["versions"].update(res.pop("versions"))
                res["round"] = r + 1
                res["loadavg_after"] = benchlib.loadavg()
                res.update(score(res["logits"], sub, refs.get(tag)))
                R["models"][tag]["runs"][e].append(res)
                log("  %.2f reviews/s, CPU %.1f ms/review, peak RSS %.1f MiB, accuracy %.4f%s" % (
                    res["reviews_per_s"], res["cpu_ms_per_review"], res.get("peak_rss_mb", 0), res["accuracy"],
                    "".join(", %s p50 %.1f ms" % (n, v["p50_ms"]) for n, v in res.get("latency", {}).items())))
            # Agreement with this round's PyTorch FP32 run.
            runs = R["models"][tag]["runs"]
            if "torch-fp32" in runs and runs["torch-fp32"]:
                base = runs["torch-fp32"][-1]["logits"]
                for e in args.engines:
                    if runs[e] and runs[e][-1]["round"] == r + 1:
                        s = score(runs[e][-1]["logits"], sub, base)
                        runs[e][-1]["agreement_vs_torch_fp32"] = s["agreement"]
                        runs[e][-1]["max_abs_logit_diff_vs_torch_fp32"] = s["max_abs_logit_diff"]
        R["meta"]["loadavg_after_round"].append(benchlib.loadavg())
        for g in R["models"].values():
            for rs in g["runs"].values():
                for x in rs:
                    x.pop("logits", None)
        # Written after every round, so a failure later keeps the rounds done so far.
        R["meta"]["rounds_done"] = r + 1
        R["summary"] = summarize(R)
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "sidebyside.json"), "w") as f:
            json.dump(R, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    md = write_outputs(R, out_dir)
    print(md)
    log("wrote %s/{sidebyside.md,sidebyside.json,*.png}" % out_dir)


if __name__ == "__main__":
    main()
