#!/usr/bin/env python3
"""Prefix accuracy vs t per model: the DeltaProduct paper's state-tracking figure.

For each t, the fraction of evaluation sequences whose first t scored predictions are all right
(the "prefix_accuracy" curve of each evaluation length in a run's summary.json). Reads
results/<suite>/runs.csv (m2bench table writes it) and each run's summary.json, and draws one
figure per task and training range with one panel per evaluation length: each seed a thin line,
the mean over seeds a thick one, each model in its colour (plots/m2b_plotting.py), the training
lengths shaded. Diverged runs give no curve; finished runs whose summaries predate the curve are
counted in a note.
Usage: prefix_accuracy.py --results results/<suite> --out-dir plots/<suite>
"""
import argparse
import collections
import pathlib
import sys

# m2b_plotting first: it exits with NO_MATPLOTLIB where matplotlib is missing.
from m2b_plotting import (METRIC_TITLES, TRAINING_RANGE_COLOUR, TRAINING_RANGE_FILL, figure_stem,
                          groups_of, label, lines_to_draw, plt, read_csv, read_summary, save,
                          shared_legend, table_groups_beside)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def run_curves(results, run):
    """{evaluation length: prefix curve} of a finished run; empty without one."""
    if run["state"] != "finished":
        return {}
    summary = read_summary(pathlib.Path(results) / run["id"]) or {}
    return {int(e["length"]): e["prefix_accuracy"] for e in summary.get("eval", [])
            if e.get("prefix_accuracy")}


def mean_curve(curves):
    width = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(width)]


def plot_group(key, runs, results, out_dir, subset, style_of):
    task, lo, hi = key
    curves = collections.defaultdict(lambda: collections.defaultdict(list))  # [length][model]
    models = list(dict.fromkeys(run["model"] for run in runs))
    without = 0
    for run in runs:
        found = run_curves(results, run)
        if not found and run["state"] == "finished":
            without += 1
        for length, curve in found.items():
            curves[length][run["model"]].append(curve)
    if not curves:
        return False
    lengths = sorted(curves)
    fig, axes = plt.subplots(1, len(lengths), figsize=(3.8 * len(lengths) + 2.4, 3.8),
                             squeeze=False, layout="constrained")
    most_seeds = 1
    for ax, length in zip(axes[0], lengths):
        ax.axvspan(0, min(hi, length), facecolor=TRAINING_RANGE_FILL, edgecolor="none", zorder=0)
        for model in models:
            model_curves = curves[length].get(model, [])
            if not model_curves:
                continue
            most_seeds = max(most_seeds, len(model_curves))
            style = style_of(model)
            if len(model_curves) > 1:
                for curve in model_curves:
                    ax.plot(range(1, len(curve) + 1), curve, color=style["color"],
                            linestyle=style["linestyle"], linewidth=0.7, alpha=0.45, zorder=2)
            mean = mean_curve(model_curves)
            ax.plot(range(1, len(mean) + 1), mean, color=style["color"],
                    linestyle=style["linestyle"], linewidth=2.0, zorder=3)
        ax.set_xlim(0, length)
        ax.set_ylim(-0.02, 1.04)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlabel("t (first t predictions)")
        ax.set_ylabel("fraction with the first t all right")
        ax.set_title(f"evaluation length {length}")
    note = f"{task}: {METRIC_TITLES['prefix_accuracy']}, trained on lengths {lo}-{hi}"
    if without:
        note += f" ({without} finished run{'s' if without > 1 else ''} recorded no curve)"
    fig.suptitle(f"{note}\n{subset}" if subset else note)
    handles = [Line2D([], [], color=style_of(m)["color"], linestyle=style_of(m)["linestyle"],
                      linewidth=2.0, label=label(m))
               for m in models if any(m in curves[length] for length in lengths)]
    handles.append(Line2D([], [], color="0.3", linewidth=2.0,
                          label=f"thick: mean of {most_seeds} seeds\nthin: each seed"
                          if most_seeds > 1 else "one seed per model"))
    handles.append(Patch(facecolor=TRAINING_RANGE_FILL, edgecolor=TRAINING_RANGE_COLOUR,
                         label=f"t inside the training lengths\n({lo}-{hi})"))
    shared_legend(fig, handles)
    save(fig, out_dir, figure_stem("prefix_accuracy", key))
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results/<suite>")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    args = parser.parse_args()
    results = pathlib.Path(args.results)
    runs = read_csv(results / "runs.csv")
    tables = table_groups_beside(results)
    drawn = 0
    for key, group in groups_of(runs).items():
        models, subset, style_of = lines_to_draw(
            "prefix_accuracy", key, {run["model"] for run in group}, tables.get(key, []))
        drawn += plot_group(key, [run for run in group if run["model"] in models], results,
                            args.out_dir, subset, style_of)
    if drawn == 0:
        print("prefix_accuracy: no finished run has a prefix curve yet, no figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
