#!/usr/bin/env python3
"""qsentd fairness figures (issue 8, "Done when: Fairness"). Standard library only.

  fairness.py --qsentd PATH --model PATH [--heavy 8] [--per 60] [--interval 0.5] [--threads 2]
              [--reviews ../shared/data/imdb/test.jsonl] [--json OUT.json]

Two runs against one daemon, with the same texts (IMDB test reviews of at least 1500 bytes, so
each is cut at the model's max_tokens):

1. baseline: ONE client pipelines all HEAVY x PER reviews; its throughput (texts/s).
2. contended: HEAVY clients each pipeline PER reviews (all sent at once, answers read on their
   own thread) while an interactive client sends a short text every INTERVAL seconds until the
   heavy clients are done; the interactive latencies (p50/p90/max), each heavy client's finish
   time, and the total throughput.

It prints the figures, the load average before and after, and each done-when check:
interactive p90 <= 300 ms and max <= 1 s; heavy finish times within 1.5x of each other; total
throughput within 10 % of the baseline, by wall clock and (load-insensitive) by texts per CPU-second
of the daemon. Exit status 0 if all hold, 1 otherwise. On a shared machine the wall-clock figures
move with the other load; run it on a quiet machine and give the load average with every figure.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, threading, time


def long_reviews(path, n, min_bytes=1500):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"]
            if len(t.encode("utf-8")) >= min_bytes:
                out.append(t)
                if len(out) == n:
                    break
    if len(out) < n:
        sys.exit(f"only {len(out)} reviews of >= {min_bytes} bytes in {path}")
    return out


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def wait_ready(path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"qsentd exited with {proc.returncode}")
        try:
            s = connect(path)
            s.sendall(b'{"op":"ping"}\n')
            if s.makefile("rb").readline().strip() == b'{"ok":true}':
                s.close()
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("qsentd not ready")


def pipeline(path, texts, tag, t0, out, key):
    """Sends every text at once (from a thread), reads every answer; records the finish time."""
    s = connect(path)
    payload = "".join(json.dumps({"id": f"{tag}-{i}", "text": t}) + "\n" for i, t in enumerate(texts)).encode()
    sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
    sender.start()
    f = s.makefile("rb")
    for i in range(len(texts)):
        line = f.readline()
        a = json.loads(line)
        if a.get("id") != f"{tag}-{i}" or "label" not in a:
            raise RuntimeError(f"{tag}: bad answer {i}: {line[:200]!r}")
    out[key] = time.monotonic() - t0
    sender.join()
    s.close()


def pct(xs, p):
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 1)) - 1))  # nearest rank
    return s[k]


def cpu_seconds(pid):
    """user + system CPU time of a process (s), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qsentd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--heavy", type=int, default=8)
    ap.add_argument("--per", type=int, default=60)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reviews", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/imdb/test.jsonl"))
    ap.add_argument("--json")
    ap.add_argument("--daemon-arg", action="append", default=[], help="extra qsentd argument (repeat)")
    a = ap.parse_args()

    texts = long_reviews(a.reviews, a.heavy * a.per)
    tmp = tempfile.mkdtemp(prefix="qfair-")
    sock = os.path.join(tmp, "q.sock")
    log = open(os.path.join(tmp, "qsentd.log"), "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSENT_")}
    proc = subprocess.Popen([a.qsentd, "--model", a.model, "--socket", sock, "--threads", str(a.threads)] + a.daemon_arg,
                            stdout=log, stderr=log, env=env)
    try:
        wait_ready(sock, proc)
        load_before = loadavg()
        # Warm-up (page in the model, settle the cost estimate).
        pipeline(sock, texts[:32], "warm", time.monotonic(), {}, "w")

        # 1. baseline: one client, all texts.
        res = {}
        c0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        pipeline(sock, texts, "solo", t0, res, "solo")
        solo_s = res["solo"]
        solo_cpu = cpu_seconds(proc.pid) - c0
        solo_tput = len(texts) / solo_s

        # 2. contended.
        finish = {}
        errors = []
        c0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()

        def heavy(c):
            try:
                pipeline(sock, texts[c * a.per:(c + 1) * a.per], f"h{c}", t0, finish, c)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"heavy {c}: {e}")

        threads = [threading.Thread(target=heavy, args=(c,)) for c in range(a.heavy)]
        for t in threads:
            t.start()
        lat = []
        s = connect(sock)
        f = s.makefile("rb")
        i = 0
        while any(t.is_alive() for t in threads):
            ts = time.monotonic()
            s.sendall((json.dumps({"id": f"i{i}", "text": "Great film."}) + "\n").encode())
            ans = json.loads(f.readline())
            lat.append((time.monotonic() - ts) * 1000)
            if ans.get("id") != f"i{i}" or "label" not in ans:
                errors.append(f"interactive: bad answer {ans}")
            i += 1
            left = a.interval - (time.monotonic() - ts)
            if left > 0:
                time.sleep(left)
        for t in threads:
            t.join()
        contended_cpu = cpu_seconds(proc.pid) - c0
        s.close()
        load_after = loadavg()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    if errors or len(finish) != a.heavy:
        print("\n".join(errors) or "not every heavy client finished")
        return 1
    fin = sorted(finish.values())
    total_s = fin[-1]
    tput = len(texts) / total_s
    r = {
        "heavy_clients": a.heavy, "texts_per_client": a.per, "interactive_interval_s": a.interval, "threads": a.threads,
        "baseline_one_client_s": round(solo_s, 3), "baseline_texts_per_s": round(solo_tput, 1),
        "contended_total_s": round(total_s, 3), "contended_texts_per_s": round(tput, 1),
        "throughput_ratio": round(tput / solo_tput, 3),
        # Load-insensitive: texts per CPU-second of the daemon (the interactive texts are few and short).
        "baseline_texts_per_cpu_s": round(len(texts) / solo_cpu, 2), "contended_texts_per_cpu_s": round(len(texts) / contended_cpu, 2),
        "cpu_throughput_ratio": round(solo_cpu / contended_cpu, 3),
        "heavy_finish_s": [round(x, 3) for x in fin], "heavy_finish_ratio": round(fin[-1] / fin[0], 3),
        "interactive_requests": len(lat), "interactive_p50_ms": round(pct(lat, 0.5), 1),
        "interactive_p90_ms": round(pct(lat, 0.9), 1), "interactive_max_ms": round(max(lat), 1),
        "interactive_ms": [round(x) for x in lat], "interactive_max_at": lat.index(max(lat)),
        "loadavg_before": load_before, "loadavg_after": load_after,
    }
    checks = [
        ("interactive p90 <= 300 ms", r["interactive_p90_ms"] <= 300),
        ("interactive max <= 1000 ms", r["interactive_max_ms"] <= 1000),
        ("heavy clients finish within 1.5x", r["heavy_finish_ratio"] <= 1.5),
        ("total throughput within 10 % of one client's (wall clock)", r["throughput_ratio"] >= 0.9),
        ("texts per daemon CPU-second within 10 % of one client's", r["cpu_throughput_ratio"] >= 0.9),
    ]
    r["checks"] = {name: ok for name, ok in checks}
    print(f"qsentd {a.qsentd} {' '.join(a.daemon_arg)}, model {os.path.basename(a.model)}, --threads {a.threads}; load average before {load_before}, after {load_after}")
    print(f"baseline: 1 client pipelining {len(texts)} reviews: {solo_s:.2f} s, {solo_tput:.1f} texts/s")
    print(f"contended: {a.heavy} clients x {a.per} reviews: all done in {total_s:.2f} s, {tput:.1f} texts/s "
          f"({100 * tput / solo_tput:.1f} % of baseline)")
    print(f"  daemon CPU: baseline {solo_cpu:.1f} s ({r['baseline_texts_per_cpu_s']} texts/CPU-s), contended "
          f"{contended_cpu:.1f} s ({r['contended_texts_per_cpu_s']} texts/CPU-s): ratio {r['cpu_throughput_ratio']:.3f}")
    print(f"  heavy finish times (s): {' '.join(f'{x:.2f}' for x in fin)}  (last/first {r['heavy_finish_ratio']:.2f}x)")
    print(f"  interactive: {len(lat)} requests every {a.interval} s: p50 {r['interactive_p50_ms']:.0f} ms, "
          f"p90 {r['interactive_p90_ms']:.0f} ms, max {r['interactive_max_ms']:.0f} ms (request #{r['interactive_max_at']})")
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if a.json:
        with open(a.json, "w") as out:
            json.dump(r, out, indent=1)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
