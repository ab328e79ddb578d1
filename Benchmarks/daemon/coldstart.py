#!/usr/bin/env python3
"""Cold start of qsentd and of in-process `qsent classify`, wall time and instructions.

  coldstart.py --bin DIR --model BLOB [--runs 10] [--json OUT] [--callgrind]

1. Socket-activated daemon: `systemd-socket-activate -l SOCK qsentd --model BLOB` listens;
   the client connects (that connection is what makes systemd-socket-activate exec qsentd on
   the listening socket, as systemd does), sends one classify line and reads the answer. The
   figure is connect() -> first answer line: exec + dynamic loader + model read and verify +
   tokenizer + warm-up + the first inference. `--runs` runs after one discarded run (warm page
   cache: the blob and the binaries are read once before).
2. In-process: `qsent classify --model BLOB TEXT`, fork+exec -> exit, same number of runs;
   and `qsent --version` for the process start alone.
3. With --callgrind: instruction counts (valgrind --tool=callgrind) of one in-process run,
   inclusive per phase (the functions named in PHASES).
Standard library only.
"""
import argparse, json, os, re, socket, statistics, subprocess, sys, tempfile, time

TEXT = "A wonderful, moving film: the cast is superb and the ending stays with you."


def stats(xs):
    xs = sorted(xs)
    return {"runs_ms": [round(x, 2) for x in xs], "median_ms": round(statistics.median(xs), 2),
            "min_ms": round(xs[0], 2), "max_ms": round(xs[-1], 2)}


def daemon_once(bindir, model, tmp, threads):
    sock = os.path.join(tmp, "q.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(tmp, "qsentd.log"), "ab")
    env = dict(os.environ)
    env.pop("QSENT_SOCKET", None)
    proc = subprocess.Popen(["systemd-socket-activate", "-l", sock, "--fdname=qsentd",
                             os.path.join(bindir, "qsentd"), "--model", model, "--threads", str(threads)],
                            env=env, stdout=log, stderr=log)
    # systemd-socket-activate binds and listens, then waits for the first connection.
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("systemd-socket-activate did not create the socket")
        time.sleep(0.002)
    time.sleep(0.05)  # let it reach its poll() on the socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    t0 = time.perf_counter()
    s.connect(sock)
    s.sendall((json.dumps({"id": 1, "text": TEXT}) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the answer; see " + os.path.join(tmp, "qsentd.log"))
        buf += chunk
    ms = (time.perf_counter() - t0) * 1000
    # CPU time qsentd's threads used until the answer (less sensitive to a busy machine than
    # the wall clock): schedstat's first field, ns on CPU, summed over the live threads.
    cpu_ns = 0
    try:
        for t in os.listdir(f"/proc/{proc.pid}/task"):
            with open(f"/proc/{proc.pid}/task/{t}/schedstat") as f:
                cpu_ns += int(f.read().split()[0])
    except OSError:
        pass
    answer = json.loads(buf)
    assert "label" in answer, answer
    s.close()
    proc.terminate()
    proc.wait()
    return ms, cpu_ns / 1e6, answer


def timed(cmd, cpu=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    ms = (time.perf_counter() - t0) * 1000
    assert status == 0, cmd
    if cpu is not None:
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return ms


# Phases of an in-process classify, by (demangled, simplified) function name; inclusive counts.
PHASES = [
    ("engine load total (Engine.init)", r"^Engine\.init\(path:options:\)"),
    ("  model file read (FileImage.init)", r"^FileImage\.init\(path:\)"),
    ("  blob open + verify (Blob.init)", r"^Blob\.init\(path:\)"),
    ("  checksums (XXH64.hash, all threads)", r"XXH64\.hash\(_:seed:\)$"),
    ("  meta JSON decode (BlobMeta.init(from:))", r"BlobMeta\.init\(from:\)$"),
    ("  tokenizer (Blob.tokenizer)", r"^Blob\.tokenizer\(\)"),
    ("    vocabulary hash build (PieceTable.build)", r"PieceTable\.build\(vocabulary:prefix:\)$"),
    ("    stored table copy + check (Blob.pieceTable)", r"Blob\.pieceTable\(vocabularyCount:\)$"),
    ("    Unicode tables (CharTables.init)", r"CharTables\.init\(\)$"),
    ("    normalizer map (NormalizerMap.init)", r"NormalizerMap\.init\(strip:lower:\)$"),
    ("  weights views (Blob.weights)", r"^Blob\.weights\(\)"),
    ("classify one text (Engine.classify)", r"^Engine\.classify\(_:\)"),
    ("argument parsing (ParsableCommand.parseAsRoot)", r"ParsableCommand\.parseAsRoot\(_:\)$"),
    ("dynamic loader (_dl_start)", r"^_dl_start$"),
]


def callgrind(bindir, model, tmp):
    # Valgrind 3.19 cannot read the DWARF 5 that swiftc writes: profile a copy without it
    # (the symbol table stays, so functions keep their names).
    qsent = os.path.join(tmp, "qsent")
    subprocess.run(["cp", os.path.join(bindir, "qsent"), qsent], check=True)
    subprocess.run(["strip", "--strip-debug", qsent], check=True)
    out = {}
    for name, cmd in [("classify", [qsent, "classify", "--model", model, TEXT]),
                      ("version", [qsent, "--version"])]:
        f = os.path.join(tmp, f"cg.{name}.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}"] + cmd,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", f],
                             check=True, capture_output=True, text=True).stdout
        dem = subprocess.run(["swift", "demangle", "--simplified"], input=ann, capture_output=True, text=True).stdout
        total = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", dem)
        out[name] = {"total": int(total.group(1).replace(",", "")) if total else None}
        if name == "classify":
            for phase, pat in PHASES:
                best = None
                for line in dem.splitlines():
                    m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+[^:]*?:(.*?)(?: \[[^\]]*\])?$", line)
                    fn = m.group(2).strip() if m else ""
                    fn = re.sub(r"^(specialized |static |protocol witness for )+", "", fn)
                    if m and re.search(pat, fn):
                        v = int(m.group(1).replace(",", ""))
                        best = v if best is None else max(best, v)
                if best is not None:
                    out[name][phase] = best
    return out


def read_syscalls(bindir, model):
    """Kernel time of the model read (callgrind counts user space only): strace -T of one
    in-process run, the mmap/madvise/pread64 calls of 1 MiB or more, in ms."""
    r = subprocess.run(["strace", "-T", "-e", "trace=mmap,madvise,pread64",
                        os.path.join(bindir, "qsent"), "classify", "--model", model, TEXT],
                       capture_output=True, text=True)
    out = {}
    for line in r.stderr.splitlines():
        m = re.match(r"(mmap|madvise|pread64)\((.*)\) += (\S+) <([\d.]+)>", line)
        if not m:
            continue
        # pread64's buffer is quoted text (commas inside): take its size from the result.
        size = int(m.group(3)) if m.group(1) == "pread64" else int(m.group(2).split(",")[1])
        if size >= 1 << 20:
            out[m.group(1)] = round(out.get(m.group(1), 0) + float(m.group(4)) * 1000, 2)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--callgrind", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qsent-cold-")
    # Warm page cache: blob and binaries read once.
    for p in [a.model, os.path.join(a.bin, "qsentd"), os.path.join(a.bin, "qsent")]:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass
    res = {"model": a.model, "bin": a.bin, "runs": a.runs, "threads": a.threads,
           "host": f"{os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[:3]}",
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    daemon_once(a.bin, a.model, tmp, a.threads)  # discarded: warms the page cache and the binaries
    runs, cpus = [], []
    for _ in range(a.runs):
        ms, cpu_ms, answer = daemon_once(a.bin, a.model, tmp, a.threads)
        runs.append(ms)
        cpus.append(cpu_ms)
    res["daemon_connect_to_first_answer"] = stats(runs)
    res["daemon_cpu_until_first_answer"] = stats(cpus)
    res["daemon_answer"] = answer
    qsent = os.path.join(a.bin, "qsent")
    timed([qsent, "classify", "--model", a.model, TEXT])
    cpu = []
    res["inprocess_classify"] = stats([timed([qsent, "classify", "--model", a.model, TEXT], cpu) for _ in range(a.runs)])
    res["inprocess_classify_cpu"] = stats(cpu)
    cpu = []
    res["process_start_version"] = stats([timed([qsent, "--version"], cpu) for _ in range(a.runs)])
    res["process_start_version_cpu"] = stats(cpu)
    res["model_read_syscalls_ms"] = read_syscalls(a.bin, a.model)
    if a.callgrind:
        res["callgrind_instructions"] = callgrind(a.bin, a.model, tmp)
    res["load_after"] = open("/proc/loadavg").read().split()[:3]
    d = res["daemon_connect_to_first_answer"]
    print(f"host: {res['host']}")
    print(f"daemon, connect -> first answer: median {d['median_ms']:.1f} ms, spread {d['min_ms']:.1f}-{d['max_ms']:.1f} ms ({a.runs} runs)")
    c = res["daemon_cpu_until_first_answer"]
    print(f"daemon, CPU time of qsentd until the answer: median {c['median_ms']:.1f} ms, spread {c['min_ms']:.1f}-{c['max_ms']:.1f} ms")
    i = res["inprocess_classify"]
    print(f"qsent classify --model (exec -> exit): median {i['median_ms']:.1f} ms, spread {i['min_ms']:.1f}-{i['max_ms']:.1f} ms")
    c = res["inprocess_classify_cpu"]
    print(f"qsent classify --model, CPU time (user+sys): median {c['median_ms']:.1f} ms, spread {c['min_ms']:.1f}-{c['max_ms']:.1f} ms")
    v = res["process_start_version"]
    print(f"qsent --version (process start): median {v['median_ms']:.1f} ms, spread {v['min_ms']:.1f}-{v['max_ms']:.1f} ms")
    print("kernel time of the model read (strace -T, one run): " +
          ", ".join(f"{k} {v:.1f} ms" for k, v in res["model_read_syscalls_ms"].items()))
    if a.callgrind:
        for run, phases in res["callgrind_instructions"].items():
            for k, n in phases.items():
                print(f"callgrind {run:8s} {k:45s} {n / 1e6:8.2f} M" if n is not None else f"callgrind {run} {k}: n/a")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"written to {a.json}")


if __name__ == "__main__":
    main()
