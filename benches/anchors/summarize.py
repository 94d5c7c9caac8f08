#!/usr/bin/env python3
"""Summarize the runs of scripts/anchors.sh: the median over rounds of each figure of each arm,
its ratio to etcd-cpp-apiv3's median, and every run's own figures, as Markdown (stdout) and
JSON (--json).

usage: summarize.py --meta META.json --index RUNS.tsv --json OUT.json
  META.json  written by scripts/anchors.sh: date, commit, load averages, settings, arm order
  RUNS.tsv   one line per run, in run order: round, the 1-minute load average just before the
             run, and the file holding the arm's JSON line (benches/anchors/anchors.hpp's emit)
"""
import argparse
import json
import statistics
import sys

ANCHOR = "etcd-cpp-apiv3"

# (label, figure, percentile or None for a plain number, unit/format)
ROWS = [
    ("put→callback p50", "put_callback_ms", "p50"),
    ("put→callback p90", "put_callback_ms", "p90"),
    ("put→callback p99", "put_callback_ms", "p99"),
    ("(context) the put's own round trip p50", "put_rtt_ms", "p50"),
    ("(context) the put's own round trip p99", "put_rtt_ms", "p99"),
    ("(context) callbacks that ran before their put returned, %", "callback_before_put_returned",
     None),
    ("own-lease register p50", "register_ms", "p50"),
    ("own-lease register p90", "register_ms", "p90"),
    ("own-lease register p99", "register_ms", "p99"),
    ("(context) threads, watcher + client open", "threads", None),
    ("(context) RSS at exit, MB", "rss_kb", None),
]

# The issue 20 "Done when" figures: ≤ 1.0× etcd-cpp-apiv3.
GOALS = [("put→callback p90", "put_callback_ms", "p90"),
         ("put→callback p99", "put_callback_ms", "p99"),
         ("own-lease register p99", "register_ms", "p99")]


def value(run, fig, pct):
    v = run.get(fig)
    if pct is None:
        if v is None or v < 0:
            return None
        if fig == "rss_kb":
            return v / 1024.0
        if fig == "callback_before_put_returned":
            return 100.0 * v
        return float(v)
    return None if v is None else v.get(pct)


def fmt(v, fig, pct):
    if v is None:
        return "—"
    if pct is None:
        return f"{v:.0f}" if fig == "threads" else f"{v:.1f}"
    return f"{v:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--index", required=True)
    a = ap.parse_args()
    meta = json.load(open(a.meta))
    runs = []
    for line in open(a.index):
        if not line.strip():
            continue
        rnd, load, path = line.rstrip("\n").split("\t")
        run = json.load(open(path))
        run["round"] = int(rnd)
        run["load1"] = float(load)
        runs.append(run)
    if not runs:
        sys.exit("summarize.py: no runs")
    arms = [arm for arm in meta["arms"] if any(r["arm"] == arm for r in runs)]
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in arms}

    medians = {}
    for arm in arms:
        medians[arm] = {}
        for label, fig, pct in ROWS:
            vals = [value(r, fig, pct) for r in by_arm[arm]]
            vals = [v for v in vals if v is not None]
            medians[arm][label] = statistics.median(vals) if vals else None
    ratios = {}
    for arm in arms:
        ratios[arm] = {}
        for label, _fig, _pct in ROWS:
            base = medians.get(ANCHOR, {}).get(label)
            mine = medians[arm][label]
            ratios[arm][label] = (mine / base) if (base and mine is not None) else None

    rounds = sorted({r["round"] for r in runs})
    loads = [r["load1"] for r in runs if r.get("load1") is not None]
    out = []
    out.append(f"anchors: {meta['date']}, commit {meta['commit']}, {meta['machine']}, "
               f"etcd {meta['etcd_version']} (one member, data on {meta['data_dir_fs']}), "
               f"etcd-cpp-apiv3 {meta['upstream_version']}")
    out.append(f"{len(rounds)} rounds, arms alternated in the order {' → '.join(arms)}; "
               f"each run: {meta['events']} put→callback events after {meta['warmup']} "
               f"(puts by the arm's own client), {meta['registrations']} own-lease "
               f"registrations (TTL {meta['ttl']} s) after {meta['reg_warmup']}, each freed "
               f"after it is timed")
    if loads:
        out.append(f"load average (1 min) before each run: {min(loads):.2f}–{max(loads):.2f}; "
                   f"at the start / end: {meta['load_start']} / {meta['load_end']}")
    out.append("")
    out.append(f"Median over {len(rounds)} rounds, ms (ratio to etcd-cpp-apiv3's median):")
    out.append("")
    out.append("| Figure | " + " | ".join(arms) + " |")
    out.append("|---|" + "---|" * len(arms))
    for label, fig, pct in ROWS:
        cells = []
        for arm in arms:
            cell = fmt(medians[arm][label], fig, pct)
            r = ratios[arm][label]
            if arm != ANCHOR and r is not None and fig != "callback_before_put_returned":
                cell += f" ({r:.2f}×)"
            cells.append(cell)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    if ANCHOR in arms:
        out.append("")
        for arm in arms:
            if arm == ANCHOR:
                continue
            parts = []
            ok = True
            # An arm with etcd-cpp-apiv3's putter differs from the anchor in delivery only; its
            # registrations are the native arm's.
            delivery_only = arm.endswith("etcd-cpp-apiv3 puts")
            for label, fig, _pct in GOALS:
                if delivery_only and fig != "put_callback_ms":
                    continue
                r = ratios[arm][label]
                if r is None:
                    ok = False
                    parts.append(f"{label} —")
                    continue
                ok = ok and r <= 1.0
                parts.append(f"{label} {r:.2f}×")
            what = "delivery only: " if delivery_only else ""
            out.append(f"- {arm}: {what}{', '.join(parts)} — issue 20's ≤ 1.0×: "
                       f"{'met' if ok else 'not met'}")
    out.append("")
    out.append("Each run (ms):")
    out.append("")
    out.append("| round | arm | load | put→callback p50 / p90 / p99 | put round trip p50 / p99 "
               "| register p50 / p90 / p99 |")
    out.append("|---|---|---|---|---|---|")
    for rnd in rounds:
        for arm in arms:
            for r in by_arm[arm]:
                if r["round"] != rnd:
                    continue
                pc, rt, rg = r["put_callback_ms"], r["put_rtt_ms"], r["register_ms"]
                load = r.get("load1")
                out.append(
                    f"| {rnd} | {arm} | {'—' if load is None else f'{load:.2f}'} | "
                    f"{pc['p50']:.3f} / {pc['p90']:.3f} / {pc['p99']:.3f} | "
                    f"{rt['p50']:.3f} / {rt['p99']:.3f} | "
                    f"{rg['p50']:.3f} / {rg['p90']:.3f} / {rg['p99']:.3f} |")
    text = "\n".join(out)
    print(text)
    json.dump({"meta": meta, "arms": arms, "medians": medians, "ratios": ratios,
               "runs": runs, "markdown": text},
              open(a.json, "w"), indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
