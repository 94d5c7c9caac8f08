#!/usr/bin/env python3
"""Draws the fleet scenario's figures (scenario 10 of the bench): etcd's memory, idle CPU and
watch streams against the number of client processes, one series per run.

Usage: scripts/fleet-plot.py [-o OUT_PNG] [DIR ...]   (defaults: docs/fleet.png; docs/fleet target)

Reads every DIR/bench-fleet-<label>.json: the runs kept in docs/fleet/ (committed) and those the
bench wrote in target/ (ETCD_SD_FLEET_LABEL names a run, e.g. "before" and "after"); a label
found in a later DIR replaces the earlier one. Runs before and after a change are drawn side by
side. Needs matplotlib (scripts/bench.sh installs it from PyPI when missing).
"""

import argparse
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def order(run):
    # "before" first, "after…" next, anything else by the time the file was written.
    label = run["label"]
    rank = 0 if label == "before" else 1 if label.startswith("after") else 2
    return (rank, run["_mtime"])


def main():
    ap = argparse.ArgumentParser(description="Plot the bench's fleet figures.")
    ap.add_argument("-o", "--out", default=os.path.join("docs", "fleet.png"))
    ap.add_argument("dirs", nargs="*", default=[os.path.join("docs", "fleet"), "target"])
    args = ap.parse_args()
    by_label = {}
    for d in args.dirs:
        for path in sorted(glob.glob(os.path.join(d, "bench-fleet-*.json"))):
            with open(path, encoding="utf-8") as f:
                run = json.load(f)
            run["_mtime"] = os.path.getmtime(path)
            by_label[run["label"]] = run
    runs = sorted(by_label.values(), key=order)
    if not runs:
        print(f"fleet-plot: no bench-fleet-*.json in {' '.join(args.dirs)}", file=sys.stderr)
        return 1
    out = args.out

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    panels = [
        ("etcd RSS, 3 members (MB)", lambda p: p["etcd"]["rss_mb"]),
        ("etcd idle CPU, 3 members (% of one core)", lambda p: p["etcd"]["cpu_pct"]),
        ("etcd watch streams", lambda p: p["etcd"]["watch_streams"]),
    ]
    markers = "osD^v<>"
    for k, run in enumerate(runs):
        pts = sorted(run["points"], key=lambda p: p["n"])
        xs = [p["n"] for p in pts]
        name = f'{run["label"]} ({run.get("commit", "?")})'
        for ax, (_, get) in zip(axes, panels):
            ax.plot(xs, [get(p) for p in pts], marker=markers[k % len(markers)], label=name)
    d = runs[0]["points"][-1].get("discoveries_each", 7)
    for ax, (title, _) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"client processes (1 registry + {d} discoveries each)")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(
        "What a fleet costs etcd (scripts/bench.sh --only fleet; "
        f'{runs[0].get("etcd_version", "etcd")}, idle window '
        f'{runs[0].get("idle_window_s", 10):g} s)',
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"fleet-plot: {out} ({', '.join(r['label'] for r in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
