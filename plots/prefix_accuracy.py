#!/usr/bin/env python3
"""Prefix accuracy vs t per model: the DeltaProduct paper's state-tracking figure.

For each t, the fraction of evaluation sequences whose first t scored predictions are all right
(the "prefix_accuracy" curve of each evaluation length in a run's summary.json). Reads
results/<suite>/runs.csv (m2bench table writes it) and each finished run's summary.json, and
draws one figure per task and training range with one panel per evaluation length: the mean over
seeds per model with a ± std band, the training lengths shaded. Runs whose summaries predate the
curve are left out and counted in the panel title.
Usage: prefix_accuracy.py --results results/<suite> --out-dir plots/<suite>
"""
import argparse
import collections
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from m2b_plotting import figure_stem, group_key, model_colours, read_csv, save  # noqa: E402


def read_curves(summary_path):
    """{evaluation length: prefix curve} of a run; empty when it has no summary or no curves."""
    if not summary_path.exists():
        return {}
    summary = json.loads(summary_path.read_text())
    if summary.get("status") != "finished":
        return {}
    return {e["length"]: e["prefix_accuracy"] for e in summary.get("eval", [])
            if e.get("prefix_accuracy")}


def mean_std(curves):
    """Mean and sample std over curves of one length, position by position."""
    n = len(curves)
    width = min(len(c) for c in curves)
    mean = [sum(c[i] for c in curves) / n for i in range(width)]
    if n < 2:
        return mean, [0.0] * width
    std = [(sum((c[i] - mean[i]) ** 2 for c in curves) / (n - 1)) ** 0.5 for i in range(width)]
    return mean, std


def plot_group(key, runs, results, colours, out_dir):
    task, lo, hi = key
    # curves[length][model]: one curve per finished seed; without[length]: runs with no curve.
    curves = collections.defaultdict(lambda: collections.defaultdict(list))
    lengths = set()
    without = 0
    for run in runs:
        run_curves = read_curves(results / run["id"] / "summary.json")
        if not run_curves and run["state"] == "finished":
            without += 1
        for length, curve in run_curves.items():
            curves[length][run["model"]].append(curve)
            lengths.add(length)
    if not lengths:
        return False
    lengths = sorted(lengths)
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.5 * len(lengths), 3.8), squeeze=False)
    for ax, length in zip(axes[0], lengths):
        ax.axvspan(1, min(hi, length), color="0.9", label=f"training lengths {lo}-{hi}")
        for model, model_curves in curves[length].items():
            mean, std = mean_std(model_curves)
            t = list(range(1, len(mean) + 1))
            colour = colours[model]
            ax.plot(t, mean, "-", color=colour, label=f"{model} (n={len(model_curves)})")
            ax.fill_between(t, [m - s for m, s in zip(mean, std)],
                            [m + s for m, s in zip(mean, std)], color=colour, alpha=0.2)
        ax.set_xlim(1, length)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("t (first t predictions)")
        ax.set_ylabel("fraction with all first t right")
        ax.set_title(f"{task}: evaluation length {length}")
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    note = "mean ± std over seeds"
    if without:
        note += f"; {without} finished run(s) recorded no prefix curve and are left out"
    fig.text(0.01, -0.03, note, fontsize=8)
    save(fig, out_dir, figure_stem("prefix_accuracy", key))
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results/<suite>")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    args = parser.parse_args()
    results = pathlib.Path(args.results)
    runs = read_csv(results / "runs.csv")
    groups = collections.OrderedDict()
    for r in runs:
        groups.setdefault(group_key(r), []).append(r)
    colours = model_colours(r["model"] for r in runs)
    drawn = sum(plot_group(key, group, results, colours, args.out_dir)
                for key, group in groups.items())
    if drawn == 0:
        print("prefix_accuracy: no finished run has a prefix curve yet, no figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
