#!/usr/bin/env python3
"""Plots a soak run: soak_plot.py PREFIX (reads PREFIX.json from soak.py, writes PREFIX.png).
Needs matplotlib (the /tmp/venv of the benchmarks); soak.py itself is standard library only."""
import json, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

prefix = sys.argv[1]
r = json.load(open(prefix + ".json"))
s = r["samples"]
t = [x["t"] / 60 for x in s]
fig, ax = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
ax[0].plot(t, [x["rss_anon"] / 2**20 for x in s], marker=".", linewidth=0.6, label="sample (every 10 s)")
# A sample taken during a reload shows two model images (the new one is read and verified while
# the old one serves): the median of each window shows the trend through those spikes.
W = 300.0
windows = {}
for x in s[1:]:
    windows.setdefault(int(x["t"] // W), []).append(x["rss_anon"] / 2**20)
med = sorted((k, sorted(v)[len(v) // 2]) for k, v in windows.items() if v)
if med:
    ax[0].step([k * W / 60 for k, _ in med] + [min((med[-1][0] + 1) * W, s[-1]["t"]) / 60], [m for _, m in med] + [med[-1][1]],
               where="post", color="black", linewidth=1.5, label="median per 5 min")
    ax[0].legend(loc="lower right", fontsize=8)
ax[0].set_ylabel("RssAnon (MiB)")
ax[0].set_ylim(bottom=0)
ax[1].plot(t, [x["fds"] for x in s], marker=".", color="tab:orange")
ax[1].set_ylabel("open fds")
ax[1].set_ylim(bottom=0)
ax[2].plot(t, [x["threads"] for x in s], marker=".", color="tab:green")
ax[2].set_ylabel("threads")
ax[2].set_ylim(bottom=0)
ax[2].set_xlabel("minutes")
c = r["counts"]
title = (f"qsentd soak {r['minutes']:g} min: {c.get('answered', 0)} answers, lost {r['lost']}, "
         f"mismatched {r['mismatched']}, reloads {c.get('reload_op_ok', 0) + c.get('reload_sighup', 0)}")
if len(med) >= 2:
    title += f"\nRssAnon median {med[0][1]:.1f} MiB in minutes 0-5, {med[-1][1]:.1f} MiB in the last window"
fig.suptitle(title)
fig.tight_layout()
fig.savefig(prefix + ".png", dpi=110)
print(f"plot written to {prefix}.png")
