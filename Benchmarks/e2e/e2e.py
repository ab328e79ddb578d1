#!/usr/bin/env python3
"""qsent end-to-end benchmark driver (standard library only; run by Benchmarks/e2e/run.sh).

Everything below is measured in one run, on the same reviews: the benchmark subset of the
IMDB test split (0-based line index % 25 == 0 of test.jsonl: 1,000 reviews), batch 1,
--threads 2 (peers: 2 intra-op threads), tokenization included, truncation to 384 tokens.

  speed     `qsent eval --stride 25 --json` on the int8 blob and on the FP32 HF folder,
            interleaved for --rounds rounds (A B, B A, A B, ...) so that drifting load on the
            shared machine hits both alike; medians reported, plus the median of the per-round
            int8/FP32 ratios (a paired figure, less sensitive to load changes).
  peers     Benchmarks/peers/peer_bench.py --engine ort-int8 | torch-dynamic-int8 in the same
            rounds (skipped when the peer Python is missing).
  memory    every process above runs under a /proc/PID/status poller (every 10 ms):
            VmHWM (peak RSS) at the last sample, and the largest RssAnon / RssFile seen.
  load      `qsent classify --model BLOB TEXT` wall time (process start -> first logits
            printed -> exit) via hyperfine (or a loop of timed runs when it is missing).
  resident  a `qsent classify --model M --jsonl -` process reading a pipe: RssAnon/RssFile
            once it has loaded the model and is idle (blocked reading stdin), and again after
            one classification, vs the size of the model file.
  768       the same speed / peers / resident measurements on the random-weight distilbert768
            (distilbert-base geometry), int8 blob made by qsent-quantize.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TEXT = "A quietly moving film with a wonderful cast; I would happily watch it again."

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from benchlib import read_status, run_measured, wait_idle  # noqa: E402
import benchlib  # noqa: E402


def log(msg):
    benchlib.log("e2e", msg)


# ------------------------------------------------------------------------------------------


def qsent_eval(args, model):
    # Every step-th review of the subset: 0-based line index % (stride * step) == 0.
    cmd = [args.qsent, "eval", "--model", model, "--data", args.data, "--stride", str(args.stride * args.step),
           "--threads", str(args.threads), "--json"]
    res, mem = run_measured(cmd)
    return {"reviews_per_s": res["reviews_per_s"], "tokens_per_s": res["tokens_per_s"],
            "n": res["reviews"], "accuracy": res["accuracy"], "precision": res["precision"],
            "isa": res["isa"], "seconds": res["seconds"], **mem}


def peer_eval(args, model, engine, tokenizer=None):
    cmd = [args.peer_python, os.path.join(args.root, "Benchmarks/peers/peer_bench.py"), "--model", model,
           "--engine", engine, "--data", args.data, "--threads", str(args.threads),
           "--limit", str(args.subset_n // args.step)]
    if tokenizer:
        cmd += ["--tokenizer", tokenizer]
    res, mem = run_measured(cmd)
    return {"reviews_per_s": res["reviews_per_s"],
            "tokens_per_s": round(res["reviews_per_s"] * res["mean_tokens"], 1),
            "n": res["n"], "accuracy": res["accuracy"], "seconds": res["total_s"],
            "load_s": res["load_s"], "self_reported_peak_rss_mb": res["peak_rss_mb"], **mem}


def median_summary(runs):
    keys = ("reviews_per_s", "tokens_per_s", "peak_rss_mb", "max_rss_anon_mb", "max_rss_file_mb")
    s = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys if all(k in r for r in runs)}
    s["runs_reviews_per_s"] = [round(r["reviews_per_s"], 2) for r in runs]
    for k in ("n", "accuracy", "isa", "precision"):
        if k in runs[0]:
            s[k] = runs[0][k]
    return s


def speed_block(args, label, variants):
    """variants: list of (name, thunk, rounds). Runs them interleaved: in round r (0-based)
    every variant with rounds > r, in the given order for even r and reversed for odd r."""
    runs = {name: [] for name, _, _ in variants}
    order = list(variants)
    for r in range(args.rounds):
        seq = order if r % 2 == 0 else list(reversed(order))
        for name, thunk, n in seq:
            if r >= n:
                continue
            log("%s round %d/%d: %s" % (label, r + 1, args.rounds, name))
            res = thunk()
            res["round"] = r + 1
            res["loadavg_1m"] = round(os.getloadavg()[0], 2)
            runs[name].append(res)
            log("  %.2f reviews/s, peak RSS %.1f MB" % (res["reviews_per_s"], res.get("peak_rss_mb", 0)))
    summary = {name: median_summary(rs) for name, rs in runs.items()}
    return summary, runs


def paired_ratio(runs, a, b):
    # zip pairs the runs of the same round (b may have run in fewer rounds).
    rs = [x["reviews_per_s"] / y["reviews_per_s"] for x, y in zip(runs[a], runs[b])]
    return round(statistics.median(rs), 3), [round(x, 3) for x in rs]


# ------------------------------------------------------------------------------------------


def hyperfine_load(args, model, runs, warmup):
    cmd = [args.qsent, "classify", "--model", model, "--threads", str(args.threads), TEXT]
    hf = shutil.which("hyperfine")
    if hf:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            path = f.name
        # -N: no intermediate shell; the command line has no shell syntax.
        quoted = " ".join("'%s'" % c.replace("'", "'\\''") for c in cmd)
        subprocess.run([hf, "-N", "--warmup", str(warmup), "--runs", str(runs), "--export-json", path,
                        "--style", "none", quoted], check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            r = json.load(f)["results"][0]
        os.unlink(path)
        times = r["times"]
        tool = "hyperfine -N --warmup %d --runs %d" % (warmup, runs)
    else:
        for _ in range(warmup):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
        tool = "python loop of %d timed runs after %d warm-up runs" % (runs, warmup)
    times = sorted(times)
    return {"median_ms": round(1000 * statistics.median(times), 1), "min_ms": round(1000 * times[0], 1),
            "max_ms": round(1000 * times[-1], 1), "runs": len(times), "tool": tool,
            "command": " ".join(cmd)}


def resident_probe(args, model, model_bytes):
    """RssAnon/RssFile of a qsent process that has loaded `model`, before and after one text.

    `qsent classify --jsonl -` loads the engine, then reads stdin in 1 MiB chunks. We sample
    once it is idle in that read, then send one review padded with a blank line to exactly
    1 MiB (so the read returns whatever its semantics, and the line is classified), sample
    again once idle, then close stdin and check that exactly one classification came out.
    The pad is at most 2 MiB of anonymous memory (the line buffer), counted in the figure.
    """
    cmd = [args.qsent, "classify", "--model", model, "--threads", str(args.threads), "--json", "--jsonl", "-"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    mb = lambda kb: round(kb / 1024.0, 1)
    try:
        wait_idle(p, what="resident probe: qsent")
        loaded = read_status(p.pid)
        with open(args.data) as f:
            review = json.loads(f.readline())
        line = json.dumps({"id": "probe", "text": review["text"]}).encode() + b"\n"
        pad = (1 << 20) - len(line) - 1
        p.stdin.write(line + b" " * pad + b"\n")
        p.stdin.flush()
        wait_idle(p, what="resident probe: qsent")
        after = read_status(p.pid)
        p.stdin.close()
        out = p.stdout.read().decode()
        err = p.stderr.read().decode()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    outs = [l for l in out.splitlines() if l.strip()]
    if p.returncode != 0 or len(outs) != 1 or '"probe"' not in outs[0]:
        raise SystemExit("resident probe: unexpected output (%s): %r %r" % (p.returncode, out[-500:], err[-500:]))
    return {"model_file_mb": round(model_bytes / 2 ** 20, 1),
            "after_load": {"rss_anon_mb": mb(loaded["RssAnon"]), "rss_file_mb": mb(loaded["RssFile"]),
                           "rss_mb": mb(loaded["VmRSS"])},
            "after_first_text": {"rss_anon_mb": mb(after["RssAnon"]), "rss_file_mb": mb(after["RssFile"]),
                                 "rss_mb": mb(after["VmRSS"]), "peak_rss_mb": mb(after["VmHWM"])},
            "rss_anon_over_model_file": round(after["RssAnon"] * 1024 / model_bytes, 3),
            "command": " ".join(cmd)}


def model_size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path) if n.endswith(".safetensors"))
    return os.path.getsize(path)


# ------------------------------------------------------------------------------------------


def geometry(args, tag, blob, hf, tokenizer, with_peers):
    variants = [("qsent-int8", lambda: qsent_eval(args, blob), args.rounds),
                ("qsent-fp32", lambda: qsent_eval(args, hf), args.rounds)]
    if with_peers:
        for eng in args.peers:
            variants.append((eng, lambda eng=eng: peer_eval(args, hf, eng, tokenizer),
                             min(args.rounds, args.peer_rounds or args.rounds)))
    summary, runs = speed_block(args, tag, variants)
    res = {"summary": summary, "runs": runs, "reviews": summary["qsent-int8"]["n"], "step": args.step,
           "rounds": args.rounds, "peer_rounds": min(args.rounds, args.peer_rounds or args.rounds)}
    i8, f32 = summary["qsent-int8"], summary["qsent-fp32"]
    res["int8_over_fp32"] = {"of_medians": round(i8["reviews_per_s"] / f32["reviews_per_s"], 3)}
    res["int8_over_fp32"]["paired_median"], res["int8_over_fp32"]["per_round"] = paired_ratio(runs, "qsent-int8", "qsent-fp32")
    if with_peers and args.peers:
        best = max(args.peers, key=lambda e: summary[e]["reviews_per_s"])
        r = {"best_peer": best, "of_medians": round(i8["reviews_per_s"] / summary[best]["reviews_per_s"], 3)}
        r["paired_median"], r["per_round"] = paired_ratio(runs, "qsent-int8", best)
        res["int8_over_best_peer"] = r
    res["resident"] = {}
    for name, m in (("qsent-int8", blob), ("qsent-fp32", hf)):
        log("%s resident probe: %s" % (tag, name))
        res["resident"][name] = resident_probe(args, m, model_size(m))
    return res


def fmt(x, nd=1):
    return "—" if x is None else ("%.*f" % (nd, x))


def markdown(R):
    L = []
    m = R["meta"]
    L.append("# qsent end-to-end benchmark, %s" % m["date_utc"])
    L.append("")
    L.append("Host: %s, %d CPUs, `%s`; kernel ISA used: **%s**; load average (1 min) %s at start, %s at end "
             "(the machine is shared: figures are medians of interleaved rounds)." %
             (m["cpu_model"], m["cpus"], m["cpu_flags_note"], m["isa"], m["loadavg_start"], m["loadavg_end"]))
    L.append("")
    L.append("Reviews: the benchmark subset of %s (0-based line index %% %d == 0: %d reviews), batch 1, "
             "%d threads, tokenization included, truncation to 384 tokens. qsent commit `%s`." %
             (m["data"], m["stride"], m["subset_n"], m["threads"], m["commit"]))
    L.append("")
    L.append("Command: `%s`" % m["command"])
    for tag, title in (("h384", "DistilBERT dim 384 (distilbert-h384-imdb, trained)"),
                       ("h768", "DistilBERT dim 768 (random weights, distilbert-base geometry)")):
        if tag not in R:
            continue
        g = R[tag]
        L.append("")
        L.append("## %s" % title)
        L.append("")
        if tag == "h768":
            L.append("Random weights: accuracy is meaningless (~0.5). qsent tokenizes with the random folder's "
                     "synthetic vocab.txt and the peers with the stand-in's HF tokenizer, so token ids and "
                     "lengths differ a little between engines (see tokens/review); speed depends only on "
                     "the lengths, not on the ids.")
            L.append("")
        L.append("%d reviews (every %sreview of the subset; peers' `--limit %d` selects the same ones), "
                 "%d interleaved rounds (peers in the first %d)." %
                 (g["reviews"], "" if g["step"] == 1 else "%d-th " % g["step"], g["reviews"], g["rounds"], g["peer_rounds"]))
        L.append("")
        L.append("| engine | reviews/s (median) | tokens/s | tokens/review | runs (reviews/s) | accuracy | peak RSS MiB | max RssAnon MiB | max RssFile MiB |")
        L.append("|---|---:|---:|---:|---|---:|---:|---:|---:|")
        for name, s in g["summary"].items():
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, fmt(s["reviews_per_s"], 2), fmt(s["tokens_per_s"], 0),
                fmt(g["runs"][name][0]["tokens_per_s"] / g["runs"][name][0]["reviews_per_s"], 1),
                ", ".join("%.2f" % x for x in s["runs_reviews_per_s"]), fmt(s.get("accuracy"), 4),
                fmt(s.get("peak_rss_mb")), fmt(s.get("max_rss_anon_mb")), fmt(s.get("max_rss_file_mb"))))
        L.append("")
        r = g["int8_over_fp32"]
        L.append("- qsent int8 / qsent FP32: **%.2f×** (ratio of medians; median of per-round ratios %.2f×, rounds %s)" %
                 (r["of_medians"], r["paired_median"], ", ".join("%.2f" % x for x in r["per_round"])))
        if "int8_over_best_peer" in g:
            r = g["int8_over_best_peer"]
            L.append("- qsent int8 / best peer (%s): **%.2f×** (ratio of medians; median of per-round ratios %.2f×)" %
                     (r["best_peer"], r["of_medians"], r["paired_median"]))
        L.append("")
        L.append("Resident memory of a `qsent classify --jsonl -` process (idle after loading; after one review):")
        L.append("")
        L.append("| model | file MiB | RssAnon after load | RssFile after load | RssAnon after 1 text | RssFile after 1 text | RssAnon / file size |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, p in g["resident"].items():
            L.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |" % (
                name, p["model_file_mb"], p["after_load"]["rss_anon_mb"], p["after_load"]["rss_file_mb"],
                p["after_first_text"]["rss_anon_mb"], p["after_first_text"]["rss_file_mb"], p["rss_anon_over_model_file"]))
    if "load" in R:
        L.append("")
        L.append("## Load to first logit")
        L.append("")
        L.append("Process start → model loaded → one text classified → printed → exit, warm page cache.")
        L.append("")
        L.append("| model | median ms | min ms | max ms | runs | tool |")
        L.append("|---|---:|---:|---:|---:|---|")
        for name, l in R["load"].items():
            L.append("| %s | %.1f | %.1f | %.1f | %d | %s |" % (name, l["median_ms"], l["min_ms"], l["max_ms"], l["runs"], l["tool"]))
    if R.get("notes"):
        L.append("")
        L.append("## Notes")
        L.append("")
        for n in R["notes"]:
            L.append("- " + n)
    L.append("")
    return "\n".join(L)


def cpu_info():
    model, have = benchlib.cpu_info()
    return model, "flags: " + (" ".join(have) if have else "none of avx2/avx512/dotprod")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Re-render the Markdown of an earlier run: e2e.py --render OUT.json (writes OUT.md).
        with open(sys.argv[2]) as f:
            R = json.load(f)
        md = markdown(R)
        with open(sys.argv[2][:-len(".json")] + ".md", "w") as f:
            f.write(md)
        print(md)
        return
    ap = argparse.ArgumentParser(description="qsent end-to-end benchmark driver")
    ap.add_argument("--root", required=True)
    ap.add_argument("--qsent", required=True)
    ap.add_argument("--blob", required=True, help="int8 .qsent of the 384 model")
    ap.add_argument("--hf", required=True, help="HF folder of the 384 model (FP32 path)")
    ap.add_argument("--blob768")
    ap.add_argument("--hf768")
    ap.add_argument("--data", required=True)
    ap.add_argument("--stride", type=int, default=25)
    ap.add_argument("--step", type=int, default=1,
                    help="use every STEP-th review of the subset (1: all 1,000); the peers' --limit 1000/STEP "
                         "picks exactly the same reviews")
    ap.add_argument("--step768", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rounds768", type=int, default=None)
    ap.add_argument("--load-runs", type=int, default=20)
    ap.add_argument("--peer-python", default="/tmp/venv/bin/python")
    ap.add_argument("--peers", default="ort-int8,torch-dynamic-int8", help="comma-separated peer_bench engines")
    ap.add_argument("--peer-rounds", type=int, default=0, help="peers run in the first N rounds only (0: all)")
    ap.add_argument("--out", required=True, help="output prefix: writes OUT.json and OUT.md")
    ap.add_argument("--command", default="")
    args = ap.parse_args()
    args.peers = [e for e in args.peers.split(",") if e]

    notes = []
    with_peers = os.access(args.peer_python, os.X_OK)
    if not with_peers:
        msg = "peers skipped: %s not found (create the venv, see Benchmarks/peers/README.md)" % args.peer_python
        log(msg)
        notes.append(msg)
    with open(args.data) as f:
        args.subset_n = sum(1 for i, _ in enumerate(f) if i % args.stride == 0)
    for st in (args.step, args.step768 or args.step):
        # peer_bench.py --limit N picks subset[(k * len) // N]: the same as every STEP-th review
        # only when STEP divides the subset size.
        if args.subset_n % st:
            raise SystemExit("--step %d must divide the subset size %d" % (st, args.subset_n))
    model, flags = cpu_info()
    R = {"meta": {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "cpu_model": model, "cpus": os.cpu_count(), "cpu_flags_note": flags,
                  "machine": platform.machine(), "kernel": platform.release(),
                  "commit": benchlib.git_commit(args.root), "data": os.path.realpath(args.data), "stride": args.stride,
                  "subset_n": args.subset_n, "step": args.step, "step768": args.step768 or args.step, "threads": args.threads, "rounds": args.rounds,
                  "loadavg_start": round(os.getloadavg()[0], 2), "command": args.command,
                  "blob": args.blob, "hf": args.hf, "blob768": args.blob768, "hf768": args.hf768}}

    R["h384"] = geometry(args, "h384", args.blob, args.hf, None, with_peers)
    R["meta"]["isa"] = R["h384"]["summary"]["qsent-int8"]["isa"]

    log("load-to-first-logit")
    R["load"] = {"qsent-int8 blob (h384)": hyperfine_load(args, args.blob, args.load_runs, 3),
                 "qsent-fp32 HF folder (h384)": hyperfine_load(args, args.hf, max(5, args.load_runs // 2), 2)}

    if args.blob768 and args.hf768:
        saved = args.rounds, args.step
        args.rounds, args.step = args.rounds768 or args.rounds, args.step768 or args.step
        R["h768"] = geometry(args, "h768", args.blob768, args.hf768,
                             args.hf if with_peers else None, with_peers)
        args.rounds, args.step = saved
        R["meta"]["rounds768"] = args.rounds768 or args.rounds
        R["load"]["qsent-int8 blob (h768)"] = hyperfine_load(args, args.blob768, max(5, args.load_runs // 2), 2)
    else:
        notes.append("768-wide geometry skipped (SKIP_768=1, or no --blob768/--hf768)")

    R["meta"]["loadavg_end"] = round(os.getloadavg()[0], 2)
    R["notes"] = notes + [
        "reviews/s: qsent = reviews / wall time of the eval loop (tokenize + forward, records read "
        "beforehand); peers = reviews / sum of per-review times (tokenize + forward). Both exclude model load.",
        "Peak RSS / RssAnon / RssFile come from polling /proc/PID/status every 10 ms for the whole "
        "process (peers: Python interpreter, tokenizers and framework included).",
        "RssFile of the int8 blob counts the mmapped blob pages that were touched (shared page cache); "
        "RssAnon is private memory: activations, tokenizer tables, runtime.",
    ]
    with open(args.out + ".json", "w") as f:
        json.dump(R, f, indent=1)
    md = markdown(R)
    with open(args.out + ".md", "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
