#!/usr/bin/env python3
"""Markdown table from peer_bench.py JSON outputs:  summarize.py results/*.json"""
import json
import os
import sys

print("| run | engine | n | reviews/s | median ms | p90 ms | CPU ms/review | CPU util | RSS MB | peak RSS MB "
      "| accuracy | argmax agree vs FP32 ref | load avg | measured (UTC) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    with open(path) as f:
        text = f.read().strip()
    if not text:
        continue
    d = json.loads(text)
    ref = d.get("vs_fp32_reference", {}).get("argmax_agreement", "")
    print("| %s | %s | %d | %.2f | %.1f | %.1f | %s | %s | %.0f | %.0f | %.3f | %s | %.1f | %s |" % (
        os.path.basename(path).rsplit(".", 1)[0], d["engine"], d["n"], d["reviews_per_s"], d["median_ms"],
        d["p90_ms"], d.get("cpu_ms_per_review", "n/a"), d.get("cpu_utilization", "n/a"), d["rss_mb"],
        d["peak_rss_mb"], d["accuracy"], ref, d["loadavg_1m_at_end"], d["measured_at_utc"]))
