#!/usr/bin/env python3
"""Training loss and accuracy vs step, one line per run, coloured by model.

Reads results/<suite>/runs.csv (m2bench table writes it) and each run's metrics.jsonl (the
"train" lines), and draws one figure per task and training range.
Usage: training_curves.py --results results/<suite> --out-dir plots/<suite>
"""
import argparse
import collections
import json
import pathlib
import sys

from m2b_plotting import figure_stem, group_key, model_colours, plt, read_csv, save


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


def plot_group(key, runs, results, colours, out_dir):
    task, lo, hi = key
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labelled = set()
    for run in runs:
        lines = read_train_lines(results / run["id"] / "metrics.jsonl")
        steps = [line["step"] for line in lines]
        model = run["model"]
        label = model if model not in labelled else None
        labelled.add(model)
        kw = dict(color=colours[model], alpha=0.8, linewidth=1, label=label)
        loss_ax.plot(steps, [line["loss"] for line in lines], **kw)
        acc_ax.plot(steps, [line["accuracy"] for line in lines], **kw)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("training accuracy")
    acc_ax.set_ylim(-0.03, 1.03)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{task}: training lengths {lo}-{hi} (one line per seed)")
    acc_ax.legend(fontsize=8, loc="best")
    save(fig, out_dir, figure_stem("training_curves", key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results/<suite>")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    args = parser.parse_args()
    results = pathlib.Path(args.results)
    runs = read_csv(results / "runs.csv")
    groups = collections.OrderedDict()
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    colours = model_colours(run["model"] for run in runs)
    drawn = 0
    for key, group in groups.items():
        with_metrics = [r for r in group if read_train_lines(results / r["id"] / "metrics.jsonl")]
        if not with_metrics:
            print(f"training_curves: {key[0]} (training lengths {key[1]}-{key[2]}): no metrics "
                  "yet, no figure")
            continue
        plot_group(key, with_metrics, results, colours, args.out_dir)
        drawn += 1
    if drawn == 0:
        print("training_curves: nothing to plot yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
