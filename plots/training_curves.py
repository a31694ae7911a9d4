#!/usr/bin/env python3
"""Training loss and accuracy vs step: each seed a thin line, the mean over seeds a thick one.

Reads results/<suite>/runs.csv (m2bench table writes it) and each run's metrics.jsonl (the
"train" lines), and draws one figure per task and training range, each model in its colour
(plots/m2b_plotting.py), with one legend for the figure.
Usage: training_curves.py --results results/<suite> --out-dir plots/<suite>
"""
import argparse
import collections
import json
import math
import pathlib
import sys

# m2b_plotting first: it exits with NO_MATPLOTLIB where matplotlib is missing.
from m2b_plotting import (figure_stem, groups_of, label, lines_to_draw, plt, read_csv, save,
                          shared_legend, table_groups_beside)
from matplotlib.lines import Line2D  # noqa: E402


def read_train_lines(path):
    """The whole "train" lines of a metrics.jsonl; a torn or damaged line (not JSON, or without
    the numbers a curve needs) is skipped, as the harness's reader skips what it cannot read."""
    lines = []
    if not path.exists():
        return lines
    for text in path.read_text().split("\n")[:-1]:  # the part after the last newline is torn
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if not isinstance(line, dict) or line.get("kind") != "train":
            continue
        if all(isinstance(line.get(key), (int, float)) for key in ("step", "loss", "accuracy")):
            lines.append(line)
    return lines


def mean_curve(curves, field, geometric=False):
    """Steps every seed logged, and the mean over seeds there (geometric for the loss, which is
    drawn on a log axis). A run that stopped early ends the mean where it stops."""
    common = set.intersection(*({line["step"] for line in c} for c in curves))
    steps = sorted(common)
    out = []
    for step in steps:
        values = [next(line[field] for line in c if line["step"] == step) for c in curves]
        if geometric:
            values = [max(v, 1e-12) for v in values]
            out.append(math.exp(sum(math.log(v) for v in values) / len(values)))
        else:
            out.append(sum(values) / len(values))
    return steps, out


def plot_group(key, runs, results, out_dir, subset, style_of):
    task, lo, hi = key
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11.6, 4.2), layout="constrained")
    by_model = collections.OrderedDict()
    for run in runs:
        by_model.setdefault(run["model"], []).append(
            read_train_lines(results / run["id"] / "metrics.jsonl"))
    most_seeds = max(len(curves) for curves in by_model.values())
    handles = []
    for model, curves in by_model.items():
        style = style_of(model)
        for lines in curves:
            steps = [line["step"] for line in lines]
            kw = dict(color=style["color"], linestyle=style["linestyle"], linewidth=0.8,
                      alpha=0.35 if len(curves) > 1 else 0.9)
            loss_ax.plot(steps, [line["loss"] for line in lines], **kw)
            acc_ax.plot(steps, [line["accuracy"] for line in lines], **kw)
        if len(curves) > 1:
            kw = dict(color=style["color"], linestyle=style["linestyle"], linewidth=2)
            loss_ax.plot(*mean_curve(curves, "loss", geometric=True), **kw)
            acc_ax.plot(*mean_curve(curves, "accuracy"), **kw)
        handles.append(Line2D([], [], color=style["color"], linestyle=style["linestyle"],
                              linewidth=2, label=label(model)))
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("training loss (log scale)")
    acc_ax.set_ylabel("training token accuracy")
    acc_ax.set_title("training token accuracy")
    acc_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.set_xlim(left=0)
    title = f"{task}: training, lengths {lo}-{hi}"
    fig.suptitle(f"{title}\n{subset}" if subset else title)
    if most_seeds > 1:
        handles.append(Line2D([], [], color="0.3", linewidth=2,
                              label=f"thick: mean of {most_seeds} seeds until\n"
                                    "one stops (loss: geometric)"))
        handles.append(Line2D([], [], color="0.3", linewidth=0.8, alpha=0.5,
                              label="thin: each seed"))
    shared_legend(fig, handles)
    save(fig, out_dir, figure_stem("training_curves", key))


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
        with_metrics = [r for r in group if read_train_lines(results / r["id"] / "metrics.jsonl")]
        if not with_metrics:
            print(f"training_curves: {key[0]} (training lengths {key[1]}-{key[2]}): no metrics "
                  "yet, no figure")
            continue
        models, subset, style_of = lines_to_draw(
            "training_curves", key, {r["model"] for r in group}, tables.get(key, []))
        if not models:
            continue
        plot_group(key, [r for r in with_metrics if r["model"] in models], results, args.out_dir,
                   subset, style_of)
        drawn += 1
    if drawn == 0:
        print("training_curves: nothing to plot yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
