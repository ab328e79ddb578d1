#!/usr/bin/env python3
"""qsentd figures: cold start on an activated socket, RSS (anon/file) idle and after N requests,
closed-loop latency p50/p99 for 1 and 16 clients. Standard library only.

  loadgen.py --qsentd PATH --model PATH [--requests 10000] [--text-bytes 256] [--clients 1,16]

The script activates qsentd itself, like systemd does: it binds the socket, a client connects
(and waits in the backlog), then qsentd is started with LISTEN_FDS=1 on fd 3. Cold start is the
time from that client's connect() to its first answer (process start + model load + warm-up
+ first inference).
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, threading, time


def texts_from_imdb(path, n, max_bytes):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"]
            b = t.encode("utf-8")
            if len(b) > max_bytes:
                t = b[:max_bytes].decode("utf-8", "ignore").rsplit(" ", 1)[0]
            out.append(t)
            if len(out) == n:
                break
    return out


def rss(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "RssShmem", "VmRSS"):
                d[k] = int(v.split()[0]) * 1024
    return d


def mib(x):
    return f"{x / 1048576:.1f} MiB"


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def ask(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())
        line = self.f.readline()
        if not line:
            raise RuntimeError("connection closed")
        return json.loads(line)

    def close(self):
        self.f.close()
        self.s.close()


def start_activated(qsentd, model, sock_path, extra):
    """Binds the socket, connects a client, then starts qsentd on fd 3. Returns (proc, conn, t0)."""
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(sock_path)
    ls.listen(64)
    t0 = time.perf_counter()
    c = Conn(sock_path)  # sits in the backlog until qsentd accepts
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="qsentd")
    env.pop("QSENT_SOCKET", None)
    os.dup2(ls.fileno(), 3, inheritable=True) if ls.fileno() != 3 else None
    proc = subprocess.Popen(
        ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', qsentd, "--model", model] + extra,
        env=env, pass_fds=(3,), stderr=open(sock_path + ".log", "ab"))
    ls.close()
    return proc, c, t0


def closed_loop(path, texts, n_clients, per_client):
    lat = []
    lock = threading.Lock()
    errors = []

    def worker(k):
        try:
            c = Conn(path)
            mine = []
            for j in range(per_client):
                t = texts[(k * per_client + j) % len(texts)]
                a = time.perf_counter()
                r = c.ask({"id": j, "text": t})
                mine.append((time.perf_counter() - a) * 1000)
                if "error" in r:
                    errors.append(r)
            c.close()
            with lock:
                lat.extend(mine)
        except Exception as e:  # noqa
            errors.append(repr(e))

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(n_clients)]
    a = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - a
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, max(0, int(-(-p * len(lat) // 1)) - 1))]
    return {"clients": n_clients, "requests": len(lat), "p50_ms": q(0.50), "p99_ms": q(0.99),
            "mean_ms": statistics.fmean(lat), "throughput_rps": len(lat) / wall, "errors": len(errors)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qsentd", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--imdb", default=None)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--text-bytes", type=int, default=256)
    ap.add_argument("--clients", default="1,16")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args()

    texts = texts_from_imdb(a.imdb, 2000, a.text_bytes) if a.imdb else \
        [f"review {i}: the film was {'great' if i % 2 else 'awful'} and the cast did well" for i in range(2000)]
    tmp = tempfile.mkdtemp(prefix="qsentd-bench-")
    sock = os.path.join(tmp, "q.sock")
    extra = ["--threads", a.threads]
    res = {"model": a.model, "text_bytes": a.text_bytes}

    cold = []
    for i in range(a.cold_runs):
        proc, c, t0 = start_activated(a.qsentd, a.model, sock, extra)
        r = c.ask({"id": 0, "text": texts[0]})
        cold.append((time.perf_counter() - t0) * 1000)
        assert "label" in r, r
        c.close()
        if i < a.cold_runs - 1:
            proc.terminate()
            proc.wait()
    res["cold_start_ms"] = {"runs": cold, "median": statistics.median(cold)}

    time.sleep(1.0)
    info = Conn(sock).ask({"op": "info"})
    res["info"] = {k: info.get(k) for k in ("model", "precision", "isa", "checksum", "max_tokens")}
    res["rss_idle"] = rss(proc.pid)

    clients = [int(x) for x in a.clients.split(",")]
    # Split the request budget: 1/10 to each latency run but the last, the rest to the last one.
    runs = []
    remaining = a.requests - 1
    for i, n in enumerate(clients):
        budget = remaining if i == len(clients) - 1 else max(n, a.requests // 10)
        per = max(1, budget // n)
        runs.append(closed_loop(sock, texts, n, per))
        remaining -= per * n
    res["latency"] = runs
    st = Conn(sock).ask({"op": "stats"})
    res["daemon_stats"] = {k: st.get(k) for k in ("requests", "texts", "batches", "batched_texts", "latency_p50_ms", "latency_p99_ms")}
    res["rss_after"] = rss(proc.pid)
    proc.terminate()
    res["exit_status"] = proc.wait()

    print(f"model            {res['info']['model']} ({res['info']['precision']}, {res['info']['isa']})")
    print(f"cold start       median {res['cold_start_ms']['median']:.0f} ms  runs " +
          ", ".join(f"{x:.0f}" for x in cold) + "  (connect on activated socket -> first answer)")
    for k in ("rss_idle", "rss_after"):
        r = res[k]
        label = "RSS idle" if k == "rss_idle" else f"RSS after {res['daemon_stats']['requests']} req"
        print(f"{label:<16} anon {mib(r['RssAnon'])}  file {mib(r['RssFile'])}  (total {mib(r['VmRSS'])})")
    for r in runs:
        print(f"{r['clients']:>2} client(s)     p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"mean {r['mean_ms']:.2f} ms  {r['throughput_rps']:.0f} req/s  ({r['requests']} requests, {r['errors']} errors)")
    ds = res["daemon_stats"]
    print(f"daemon batches   {ds['batches']} for {ds['batched_texts']} texts (mean batch {ds['batched_texts'] / max(1, ds['batches']):.2f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
