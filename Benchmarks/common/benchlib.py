"""Pieces shared by the qsent benchmark drivers (standard library only).

Used by Benchmarks/e2e/e2e.py (system python3), Benchmarks/peers/peer_bench.py and
Benchmarks/sidebyside/sidebyside.py (the venv's python). Import with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
    import benchlib

What lives here:
  select_rows     the review selection every engine uses (0-based line index % stride == 0)
  Poller          /proc/PID/status sampler: peak RSS (VmHWM), largest RssAnon / RssFile
  run_measured    run a command under the poller; optionally feed stdin only once the process
                  has loaded and gone idle, so its CPU time after that point can be isolated
  wait_idle       wait until every thread of a process sleeps and no CPU time accrues
  cpu_info        CPU model and the SIMD flags that matter to qsent and its peers
  percentile      nearest-rank percentile
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

STATUS_KEYS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
# The /proc/cpuinfo flags that decide which int8 / FP32 kernels qsent and the peers can use.
RELEVANT_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "asimd", "asimddp")


def log(tag, msg):
    print("[%s %s] %s" % (tag, time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Review selection
# ------------------------------------------------------------------------------------------


def select_rows(path, stride, limit=None, spread=False):
    """The records at 0-based line index i with i % stride == 0 of a JSONL file.

    Blank lines are skipped without advancing the index (as `qsent eval` does; the IMDB files
    have none). limit: keep the first `limit` selected records, or with spread=True `limit`
    records evenly spaced over the whole selection (subset[(k * len) // limit]), which keeps
    both classes of the label-sorted IMDB test split. Each record gets "_index", its 0-based
    record index in the file.
    """
    rows, index = [], 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            if index % stride == 0:
                r = json.loads(line)
                r["_index"] = index
                rows.append(r)
                if limit and not spread and len(rows) >= limit:
                    break
            index += 1
    if limit and spread and limit < len(rows):
        rows = [rows[(k * len(rows)) // limit] for k in range(limit)]
    return rows


def ids_digest(ids):
    """Short order-sensitive digest of a list of review ids (to prove two engines saw the same rows)."""
    import hashlib

    return hashlib.sha256("\n".join(str(i) for i in ids).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------
# Process measurement
# ------------------------------------------------------------------------------------------


def read_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in STATUS_KEYS:
                    out[k] = int(v.split()[0])  # kB
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out if out else None


class Poller(threading.Thread):
    """Samples /proc/PID/status until the process is gone."""

    def __init__(self, pid, interval=0.01):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.last, self.peak, self.samples = None, {}, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            s = read_status(self.pid)
            if s is None:
                break
            self.samples += 1
            self.last = s
            for k, v in s.items():
                self.peak[k] = max(self.peak.get(k, 0), v)
            time.sleep(self.interval)

    def result(self):
        mb = lambda kb: round(kb / 1024.0, 1)
        if not self.last:
            return {}
        return {"peak_rss_mb": mb(max(self.last.get("VmHWM", 0), self.peak.get("VmHWM", 0))),
                "max_rss_anon_mb": mb(self.peak.get("RssAnon", 0)),
                "max_rss_file_mb": mb(self.peak.get("RssFile", 0)),
                "rss_samples": self.samples}


def proc_cpu_s(pid):
    """utime + stime of the whole process (live and exited threads), seconds, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads_cpu(pid):
    """(any thread running or in disk wait?, total utime+stime ticks) from /proc/PID/task/*/stat."""
    busy, ticks = False, 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except FileNotFoundError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        if fields[0] in ("R", "D"):
            busy = True
        ticks += int(fields[11]) + int(fields[12])
    return busy, ticks


def wait_idle(p, quiet_polls=5, interval=0.1, timeout=300, what="process"):
    """Waits until every thread of Popen p sleeps and no CPU time accrues for quiet_polls polls."""
    t0, quiet, last = time.time(), 0, None
    while time.time() - t0 < timeout:
        if p.poll() is not None:
            raise SystemExit("%s exited early (%d)" % (what, p.returncode))
        busy, ticks = threads_cpu(p.pid)
        quiet = quiet + 1 if (not busy and ticks == last) else 0
        last = ticks
        if quiet >= quiet_polls:
            return
        time.sleep(interval)
    raise SystemExit("%s never went idle" % what)


def run_measured(cmd, env=None, stdin_bytes=None, isolate_cpu=False, json_line=True):
    """Runs cmd with its memory polled; returns (parsed last JSON line of stdout, measurement dict).

    stdin_bytes: fed to the process's stdin (then closed). With isolate_cpu=True the input is
    held back until the process has gone idle (it has loaded its model and blocks reading
    stdin); its CPU time at that moment is recorded as "cpu_before_input_s", so that
    "cpu_after_input_s" = total - that is the CPU spent on the input alone.
    The total ("process_cpu_s", user + sys of every thread) comes from the kernel's rusage
    of the reaped child (the RUSAGE_CHILDREN delta: run one measured command at a time).
    """
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    poller = Poller(p.pid)
    poller.start()
    cpu_before = None
    if stdin_bytes is not None and isolate_cpu:
        wait_idle(p, what=os.path.basename(cmd[0]))
        cpu_before = proc_cpu_s(p.pid)
    out, err = p.communicate(input=stdin_bytes)
    poller.stop.set()
    poller.join()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if p.returncode != 0:
        raise SystemExit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err[-2000:]))
    res = None
    if json_line:
        lines = [l for l in out.splitlines() if l.strip().startswith("{")]
        if not lines:
            raise SystemExit("no JSON output from: %s\n%s" % (" ".join(cmd), out[-2000:]))
        res = json.loads(lines[-1])
    m = poller.result()
    m["process_wall_s"] = round(wall, 2)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    m["process_cpu_s"] = round(cpu, 3)
    if cpu_before is not None:
        m["cpu_before_input_s"] = round(cpu_before, 3)
        m["cpu_after_input_s"] = round(cpu - cpu_before, 3)
    return res, m


# ------------------------------------------------------------------------------------------
# Host description
# ------------------------------------------------------------------------------------------


def cpu_info():
    """(model name, [relevant flags present]) from /proc/cpuinfo (x86 "flags", ARM "Features")."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k in ("model name", "Model") and model == "unknown":
                    model = v.strip()
                elif k in ("flags", "Features") and not flags:
                    flags = set(v.split())
    except FileNotFoundError:
        pass
    return model, [x for x in RELEVANT_FLAGS if x in flags]


def git_commit(root):
    """Short HEAD commit of the checkout at root, with "-dirty" if tracked files changed."""
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (commit or "unknown") + ("-dirty" if dirty else "")


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def cpu_busy_pct(seconds=2.0):
    """Share of all CPUs' time spent not idle (nor in iowait) over the next `seconds`, from /proc/stat."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1)


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100), at least 1
    return s[int(k) - 1]


def latency_summary(seconds):
    """p50 / p99 (nearest rank) / mean / min / max in ms of a list of per-request times in s."""
    ms = [1000.0 * x for x in seconds]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.mean(ms), 3), "min_ms": round(min(ms), 3), "max_ms": round(max(ms), 3)}
