#!/usr/bin/env python3
"""RssAnon of qsentd while N clients pipeline 1 MB lines (ping with a 1 MB id) and never read.

  memflood.py QSENTD MODEL N     e.g. memflood.py .build/release/qsentd Quantizer/Models/distilbert-h384-imdb.qsent 8

Prints idle and peak RssAnon over 15 s (--io-timeout 60, so nobody is closed meanwhile).
Standard library only (issue 8, finding 3).
"""
import os, socket, subprocess, sys, tempfile, threading, time
qsentd, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tmp = tempfile.mkdtemp(prefix="qmem-"); sock = os.path.join(tmp, "q.sock")
p = subprocess.Popen([qsentd, "--model", model, "--socket", sock, "--io-timeout", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("RssAnon:"): return int(l.split()[1]) // 1024
for _ in range(600):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sock); s.sendall(b'{"op":"ping"}\n'); s.recv(100); s.close(); break
    except OSError: time.sleep(0.1)
time.sleep(1.5); idle = rss()
line = b'{"op":"ping","id":"' + b"m" * 1_000_000 + b'"}\n'
socks = []
def flood(s):
    try:
        for _ in range(300): s.sendall(line)
    except OSError: pass
for _ in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); socks.append(s)
    threading.Thread(target=flood, args=(s,), daemon=True).start()
peak = 0; t0 = time.monotonic()
while time.monotonic() - t0 < 15:
    peak = max(peak, rss()); time.sleep(0.2)
print(f"{n} clients pipelining 1 MB lines without reading, 15 s: RssAnon idle {idle} MiB, peak {peak} MiB")
p.kill()
