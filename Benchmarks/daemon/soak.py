#!/usr/bin/env python3
"""qsentd soak (issue 8): a mixed hostile + honest load for MINUTES, standard library only.

  soak.py --qsentd PATH --model BLOB --minutes M --out PREFIX [--imdb test.jsonl]

Runs for the whole time, all at once, against one qsentd on a Unix socket (started here, on a
scratch copy of BLOB so renames never touch the original):
  - pipelining clients (bursts of 32 requests, then 32 answers) and batch clients ("texts" of 8);
  - one interactive client (one request at a time);
  - a client sending bad lines (bad JSON, bad UTF-8, unknown op, conflicting fields, deep nesting),
    each followed by a ping;
  - clients that drop mid-request (half a line, or whole requests, then close without reading);
  - every RELOAD_EVERY s, in turn: the protocol `reload` op, SIGHUP, and the model replaced by
    rename (copy to model.qsent.tmp, rename over model.qsent) followed by SIGHUP.
Every 10 s it samples the daemon's RssAnon, open fds and threads.

Accounting: every honest request carries a unique id. Each answer must carry the id of the
request it answers, in order; lost = sent but never answered (or not within ANSWER_TIMEOUT);
mismatched = wrong id, or an answer for a text that differs from that text's reference answer
(asked once, alone, before the load starts): another label, or logits further than
LOGIT_TOLERANCE (bitwise differences are counted separately; see compare()). Error answers are counted by code (`busy` is legitimate back-pressure, not loss).

Writes PREFIX.json (summary + samples) and PREFIX.md; soak_plot.py draws PREFIX.png.
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Conn, rss, texts_from_imdb  # noqa: E402

RELOAD_EVERY = 4.0
SAMPLE_EVERY = 10.0
# An answer not received within this many seconds counts as lost (and ends that connection).
ANSWER_TIMEOUT = 120.0

BAD_LINES = [
    b'{"text": "unterminated',
    b'\xff\xfe{"text":"bad utf-8"}',
    b'{"op":"launch"}',
    b'{"text":"a","texts":["b"]}',
    b'[' * 200 + b']' * 200,
    b'{"id":1,"id":2,"op":"ping"}',
    b'{"texts":"not an array"}',
    b'42',
    b'',  # an empty line is not JSON either
]


class Tally:
    """Counters shared by all client threads (guarded by self.lock)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n

    def max(self, key, v):
        with self.lock:
            self.c[key] = max(self.c.get(key, 0), v)

    def snapshot(self):
        with self.lock:
            return dict(self.c)


# Packing a text into a batch with others changes the float summation order: its logits then
# differ from the single-text answer in the last bits (<= 5e-7 measured). Bitwise differences are
# counted (logits_not_bitwise_equal, max_logit_delta) but only a different label or a difference
# above this bound is a mismatch.
LOGIT_TOLERANCE = 1e-5


def compare(tally, a, ref):
    """True when `a` answers the same as `ref` (same label, logits within LOGIT_TOLERANCE)."""
    la, lr = a.get("logits") or [], ref["logits"]
    if len(la) != len(lr) or a.get("label") != ref["label"]:
        return False
    if la != lr:
        tally.add("logits_not_bitwise_equal")
        d = max(abs(x - y) for x, y in zip(la, lr))
        tally.max("max_logit_delta", d)
        return d <= LOGIT_TOLERANCE
    return True


class Honest(threading.Thread):
    """A pipelining, batch or interactive client; checks every answer."""

    def __init__(self, kind, k, sock, texts, refs, tally, stop):
        super().__init__(daemon=True, name=f"{kind}{k}")
        self.kind, self.k, self.sock, self.texts, self.refs = kind, k, sock, texts, refs
        self.tally, self.stop = tally, stop
        self.rng = random.Random(1000 + k)

    def check(self, want_id, ti, line):
        t = self.tally
        if not line:
            t.add("lost")
            return False
        a = json.loads(line)
        if a.get("id") != want_id:
            t.add("mismatched_id")
            return True
        if "error" in a:
            t.add("error_" + a["error"].get("code", "?"))
            return True
        if self.kind == "batch":
            rs = a.get("results", [])
            if len(rs) != len(ti):
                t.add("mismatched_answer")
            for r, i in zip(rs, ti):
                t.add("answered_texts")
                if not compare(t, r, self.refs[i]):
                    t.add("mismatched_answer")
        else:
            t.add("answered_texts")
            if not compare(t, a, self.refs[ti[0]]):
                t.add("mismatched_answer")
        t.add("answered")
        return True

    def run(self):
        seq = 0
        while not self.stop.is_set():
            try:
                c = Conn(self.sock)
                c.s.settimeout(ANSWER_TIMEOUT)
            except OSError:
                self.tally.add("connect_failed")
                time.sleep(0.2)
                continue
            try:
                # A fresh connection every 50 rounds (connection churn).
                for _ in range(50):
                    if self.stop.is_set():
                        break
                    burst = 32 if self.kind == "pipe" else 1
                    reqs = []
                    for _ in range(burst):
                        seq += 1
                        rid = f"{self.kind}{self.k}-{seq}"
                        if self.kind == "batch":
                            ti = [self.rng.randrange(len(self.texts)) for _ in range(8)]
                            obj = {"id": rid, "texts": [self.texts[i] for i in ti]}
                        else:
                            ti = [self.rng.randrange(len(self.texts))]
                            obj = {"id": rid, "text": self.texts[ti[0]]}
                        reqs.append((rid, ti, (json.dumps(obj) + "\n").encode()))
                    c.s.sendall(b"".join(r[2] for r in reqs))
                    self.tally.add("sent", len(reqs))
                    for n, (rid, ti, _) in enumerate(reqs):
                        try:
                            line = c.f.readline()
                        except OSError:  # timed out: this and the rest of the burst are lost
                            self.tally.add("lost", len(reqs) - n)
                            raise
                        if not self.check(rid, ti, line):
                            self.tally.add("lost", len(reqs) - n - 1)
                            raise ConnectionError("closed")
            except (OSError, ConnectionError, ValueError):
                self.tally.add("connection_broken")
            finally:
                c.close()


def bad_client(sock, tally, stop):
    """Bad lines, each followed by a ping: every bad line gets an error, every ping its ok."""
    n = 0
    while not stop.is_set():
        try:
            c = Conn(sock)
            c.s.settimeout(ANSWER_TIMEOUT)
            for bad in BAD_LINES:
                n += 1
                c.s.sendall(bad + b"\n" + json.dumps({"id": n, "op": "ping"}).encode() + b"\n")
                tally.add("bad_sent")
                a = json.loads(c.f.readline() or b"null")
                tally.add("bad_answered_error" if isinstance(a, dict) and "error" in a else "bad_unexpected")
                p = json.loads(c.f.readline() or b"null")
                tally.add("ping_ok" if p == {"id": n, "ok": True} else "ping_unexpected")
            c.close()
        except (OSError, ValueError):
            tally.add("bad_client_broken")
        time.sleep(0.2)


def dropper(sock, texts, tally, stop):
    """Connects, sends half a line or a few whole requests, closes without reading."""
    rng = random.Random(7)
    while not stop.is_set():
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            line = (json.dumps({"id": "drop", "text": texts[rng.randrange(len(texts))]}) + "\n").encode()
            if rng.random() < 0.5:
                s.sendall(line[: len(line) // 2])
            else:
                s.sendall(line * rng.randint(1, 2))
            s.close()
            tally.add("dropped_clients")
        except OSError:
            tally.add("dropper_failed")
        time.sleep(0.5)


def reloader(sock, proc, model, spare, tally, stop):
    """Protocol reload, SIGHUP, and rename-replace + SIGHUP, in turn."""
    i = 0
    while not stop.wait(RELOAD_EVERY):
        kind = ("op", "sighup", "rename")[i % 3]
        i += 1
        try:
            if kind == "op":
                c = Conn(sock)
                c.s.settimeout(ANSWER_TIMEOUT)
                a = c.ask({"id": "reload", "op": "reload"})
                c.close()
                tally.add("reload_op_ok" if a.get("ok") else "reload_op_failed")
            else:
                if kind == "rename":
                    shutil.copyfile(spare, model + ".tmp")
                    os.rename(model + ".tmp", model)
                    tally.add("model_renamed")
                proc.send_signal(signal.SIGHUP)
                tally.add("reload_sighup")
        except (OSError, ValueError):
            tally.add("reload_client_broken")


def sample(pid):
    r = rss(pid)
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
    return {"rss_anon": r["RssAnon"], "rss_file": r["RssFile"], "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": threads}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qsentd", required=True)
    ap.add_argument("--model", required=True, help="a .qsent blob (copied to a scratch dir)")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.json, PREFIX.md)")
    ap.add_argument("--imdb", default=None)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--keep-log", default=None, help="copy the daemon's log here (e.g. to read sanitizer reports)")
    a = ap.parse_args()

    texts = texts_from_imdb(a.imdb, 64, 1500) if a.imdb else \
        [f"review {i}: the film was {'great' if i % 2 else 'awful'} and the cast did well" for i in range(64)]
    tmp = tempfile.mkdtemp(prefix="qsentd-soak-")
    sock = os.path.join(tmp, "q.sock")
    model = os.path.join(tmp, "model.qsent")
    spare = os.path.join(tmp, "spare.qsent")
    shutil.copyfile(a.model, model)
    shutil.copyfile(a.model, spare)
    log = open(os.path.join(tmp, "qsentd.log"), "ab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QSENT_")}
    proc = subprocess.Popen([a.qsentd, "--model", model, "--socket", sock, "--threads", a.threads],
                            env=env, stdout=log, stderr=log)
    deadline = time.time() + 120
    while True:
        try:
            if Conn(sock).ask({"op": "ping"}) == {"ok": True}:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            sys.exit(f"qsentd did not start (see {tmp}/qsentd.log)")
        time.sleep(0.1)

    # Reference answers, one text at a time on an idle daemon.
    c = Conn(sock)
    refs = []
    for t in texts:
        r = c.ask({"text": t})
        refs.append({"label": r["label"], "logits": r["logits"]})
    info = c.ask({"op": "info"})
    c.close()

    tally, stop = Tally(), threading.Event()
    workers = [Honest("pipe", k, sock, texts, refs, tally, stop) for k in range(2)]
    workers += [Honest("batch", k, sock, texts, refs, tally, stop) for k in range(2, 4)]
    workers += [Honest("one", 4, sock, texts, refs, tally, stop)]
    aux = [threading.Thread(target=bad_client, args=(sock, tally, stop), daemon=True),
           threading.Thread(target=dropper, args=(sock, texts, tally, stop), daemon=True),
           threading.Thread(target=reloader, args=(sock, proc, model, spare, tally, stop), daemon=True)]
    samples = []
    t0 = time.time()
    samples.append(dict(t=0.0, **sample(proc.pid)))
    for w in workers + aux:
        w.start()
    end = t0 + a.minutes * 60
    while time.time() < end and proc.poll() is None:
        time.sleep(min(SAMPLE_EVERY - (time.time() - t0) % SAMPLE_EVERY, max(0.0, end - time.time())))
        if proc.poll() is None:
            samples.append(dict(t=round(time.time() - t0, 1), **sample(proc.pid)))
    stop.set()
    for w in workers + aux:
        w.join()  # bounded: every read times out after ANSWER_TIMEOUT
    alive = proc.poll() is None
    st = Conn(sock).ask({"op": "stats"}) if alive else {}
    if alive:
        samples.append(dict(t=round(time.time() - t0, 1), **sample(proc.pid)))
        proc.terminate()
    t_term = time.time()
    try:
        status = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = "killed after 90 s"
    counts = tally.snapshot()

    # Flatness after warm-up: compare the first post-warm-up sample (>= 60 s, or the 2nd
    # sample on short runs) with the last one.
    warm = next((s for s in samples if s["t"] >= 60), samples[min(1, len(samples) - 1)])
    last = samples[-1]
    # A sample taken during a reload holds two model images (the new one is read and verified
    # while the old one serves), so single samples jump by the model's size; the median of each
    # 5-minute window shows the trend through those spikes.
    windows = {}
    for x in samples[1:]:
        windows.setdefault(int(x["t"] // 300), []).append(x["rss_anon"] / 2**20)
    medians = [round(sorted(v)[len(v) // 2], 1) for _, v in sorted(windows.items())]
    summary = {
        "minutes": a.minutes, "model": info.get("model"), "checksum": info.get("checksum"), "isa": info.get("isa"),
        "load_avg_end": open("/proc/loadavg").read().split()[:3], "host_cores": os.cpu_count(),
        "counts": counts,
        "lost": counts.get("lost", 0), "mismatched": counts.get("mismatched_id", 0) + counts.get("mismatched_answer", 0),
        "unexpected": counts.get("bad_unexpected", 0) + counts.get("ping_unexpected", 0),
        "daemon_alive_at_end": alive, "exit_status": status, "sigterm_exit_s": round(time.time() - t_term, 2),
        "daemon_stats": {k: st.get(k) for k in ("requests", "texts", "batches", "errors", "reloads", "reload_failures",
                                                 "connections_total")} if st else {},
        "rss_anon_mib": {"start": samples[0]["rss_anon"] / 2**20, "after_warmup": warm["rss_anon"] / 2**20,
                         "max": max(s["rss_anon"] for s in samples) / 2**20, "end": last["rss_anon"] / 2**20,
                         "median_per_5min": medians},
        "fds": {"after_warmup": warm["fds"], "max": max(s["fds"] for s in samples), "end": last["fds"]},
        "threads": {"after_warmup": warm["threads"], "max": max(s["threads"] for s in samples), "end": last["threads"]},
        "samples": samples,
    }
    ok = summary["lost"] == 0 and summary["mismatched"] == 0 and summary["unexpected"] == 0 and alive and status == 0
    summary["pass"] = ok
    with open(a.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    r = summary
    md = [f"# qsentd soak, {a.minutes:g} min ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))})", "",
          f"Command: `Benchmarks/daemon/soak.sh {a.minutes:g}`; model {r['model']} ({r['isa']}), "
          f"{r['host_cores']} cores, load at end {' '.join(r['load_avg_end'])}.", "",
          f"- **{'PASS' if ok else 'FAIL'}**: lost {r['lost']}, mismatched {r['mismatched']}, unexpected answers to bad lines/pings {r['unexpected']}; "
          f"daemon alive at end: {alive}; SIGTERM exit status {status} after {r['sigterm_exit_s']} s",
          f"- honest requests sent {counts.get('sent', 0)}, answered {counts.get('answered', 0)} "
          f"({counts.get('answered_texts', 0)} texts); error answers: " +
          (", ".join(f"{k[6:]} {v}" for k, v in sorted(counts.items()) if k.startswith("error_")) or "none"),
          f"- answers whose logits are not bitwise equal to the text's single-request answer: "
          f"{counts.get('logits_not_bitwise_equal', 0)} (max |Δlogit| {counts.get('max_logit_delta', 0):.2g}; "
          f"tolerance {LOGIT_TOLERANCE:g}, labels must match)",
          f"- bad lines {counts.get('bad_sent', 0)} (errors {counts.get('bad_answered_error', 0)}), pings ok {counts.get('ping_ok', 0)}, "
          f"dropped clients {counts.get('dropped_clients', 0)}, broken honest connections {counts.get('connection_broken', 0)}",
          f"- reloads: op ok {counts.get('reload_op_ok', 0)} / failed {counts.get('reload_op_failed', 0)}, SIGHUP {counts.get('reload_sighup', 0)} "
          f"(of which after rename {counts.get('model_renamed', 0)}); daemon: {r['daemon_stats']}",
          f"- RssAnon MiB: start {r['rss_anon_mib']['start']:.1f}, after warm-up {r['rss_anon_mib']['after_warmup']:.1f}, "
          f"max {r['rss_anon_mib']['max']:.1f}, end {r['rss_anon_mib']['end']:.1f}; median per 5 min: "
          f"{', '.join(f'{m:.1f}' for m in medians)}",
          f"- fds: after warm-up {r['fds']['after_warmup']}, max {r['fds']['max']}, end {r['fds']['end']}; "
          f"threads: after warm-up {r['threads']['after_warmup']}, max {r['threads']['max']}, end {r['threads']['end']}",
          "", f"Plot: `{os.path.basename(a.out)}.png`. Samples (every {SAMPLE_EVERY:g} s) are in the JSON."]
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if a.keep_log:
        shutil.copyfile(os.path.join(tmp, "qsentd.log"), a.keep_log)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
