#!/usr/bin/env python3
"""RssAnon of qsentd before, during and after a classification burst (issue 8: "memory returns
to near idle after a burst"). Standard library only.

  burst.py QSENTD MODEL [CLIENTS] [SECONDS] [--imdb test.jsonl]

CLIENTS (16) clients each send `texts` batches of 8 IMDB reviews (or synthetic texts) as fast as
they are answered for SECONDS (20); RssAnon is sampled every 0.2 s. Prints idle (after the
warm-up request), peak, and the level 0.5, 2 and 5 s after the last answer (the daemon trims
its heap after one quiet second).
"""
import os, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Conn, texts_from_imdb  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
imdb = sys.argv[sys.argv.index("--imdb") + 1] if "--imdb" in sys.argv else None
if imdb in args:
    args.remove(imdb)
qsentd, model = args[0], args[1]
clients = int(args[2]) if len(args) > 2 else 16
seconds = float(args[3]) if len(args) > 3 else 20.0
texts = texts_from_imdb(imdb, 64, 1500) if imdb else \
    [f"review {i}: the film was {'great' if i % 2 else 'awful'} and the cast did well" for i in range(64)]

tmp = tempfile.mkdtemp(prefix="qburst-")
sock = os.path.join(tmp, "q.sock")
p = subprocess.Popen([qsentd, "--model", model, "--socket", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss():
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024


for _ in range(600):
    try:
        c = Conn(sock)
        c.ask({"text": texts[0]})
        c.close()
        break
    except OSError:
        time.sleep(0.1)
time.sleep(1.5)
idle = rss()
stop = threading.Event()
answered = [0] * clients


def client(k):
    c = Conn(sock)
    i = k
    while not stop.is_set():
        batch = [texts[(i + j) % len(texts)] for j in range(8)]
        a = c.ask({"texts": batch})
        assert "results" in a, a
        answered[k] += 1
        i += 8
    c.close()


ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
for t in ts:
    t.start()
peak = 0.0
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    peak = max(peak, rss())
    time.sleep(0.2)
stop.set()
for t in ts:
    t.join()
t_end = time.monotonic()
after = {}
for dt in (0.5, 2.0, 5.0):
    time.sleep(max(0.0, t_end + dt - time.monotonic()))
    after[dt] = rss()
p.terminate()
p.wait(timeout=30)
print(f"{clients} clients, batches of 8 for {seconds:g} s ({sum(answered)} batches answered): RssAnon idle {idle:.1f} MiB, "
      f"peak {peak:.1f} MiB, after the burst {after[0.5]:.1f} (0.5 s), {after[2.0]:.1f} (2 s), {after[5.0]:.1f} MiB (5 s)")
