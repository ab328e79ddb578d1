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
ax[0].plot(t, [x["rss_anon"] / 2**20 for x in s], marker=".")
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
fig.suptitle(f"qsentd soak {r['minutes']:g} min: {c.get('answered', 0)} answers, lost {r['lost']}, "
             f"mismatched {r['mismatched']}, reloads {c.get('reload_op_ok', 0) + c.get('reload_sighup', 0)}")
fig.tight_layout()
fig.savefig(prefix + ".png", dpi=110)
print(f"plot written to {prefix}.png")
