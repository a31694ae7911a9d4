#!/usr/bin/env python3
"""Accuracy vs evaluation length per model: the paper's length-generalisation figure.

Reads results/<suite>/table.csv (m2bench table writes it) and draws, per task and training
range, the mean over seeds with a ± std band for each model, the training range shaded, points
with diverged or missing runs hollow, and the paper's stated numbers as stars.
Usage: length_generalisation.py --table results/<suite>/table.csv --out-dir plots/<suite>
"""
import argparse
import collections
import sys

from m2b_plotting import figure_stem, group_key, model_colours, plt, read_csv, save

METRIC_TITLES = {"accuracy": "token accuracy", "sequence_accuracy": "sequence accuracy"}


def plot_group(key, rows, colours, out_dir):
    task, lo, hi = key
    metrics = [m for m in METRIC_TITLES if any(r["metric"] == m for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.axvspan(lo, hi, color="0.9", label=f"training lengths {lo}-{hi}")
        by_model = collections.defaultdict(list)
        for r in rows:
            if r["metric"] == metric:
                by_model[r["model"]].append(r)
        for model, cells in by_model.items():
            cells.sort(key=lambda r: int(r["length"]))
            measured = [r for r in cells if r["mean"] != ""]
            colour = colours[model]
            if measured:
                x = [int(r["length"]) for r in measured]
                mean = [float(r["mean"]) for r in measured]
                std = [float(r["std"]) for r in measured]
                ax.plot(x, mean, "-", color=colour, label=model)
                ax.fill_between(x, [m - s for m, s in zip(mean, std)],
                                [m + s for m, s in zip(mean, std)], color=colour, alpha=0.2)
                whole = [r["n"] == r["runs"] for r in measured]
                ax.scatter([a for a, w in zip(x, whole) if w], [m for m, w in zip(mean, whole) if w],
                           color=colour, zorder=3)
                ax.scatter([a for a, w in zip(x, whole) if not w],
                           [m for m, w in zip(mean, whole) if not w], facecolors="white",
                           edgecolors=colour, zorder=3)
            for r in cells:
                if r["paper_value"] != "":
                    ax.scatter([int(r["length"])], [float(r["paper_value"])], marker="*", s=160,
                               color=colour, edgecolors="black", zorder=4,
                               label=f"{model}: paper ({r['paper_claim']})")
        ax.set_xscale("log", base=2)
        lengths = sorted({int(r["length"]) for r in rows})
        ax.set_xticks(lengths, [str(x) for x in lengths])
        ax.minorticks_off()
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("evaluation length")
        ax.set_ylabel(METRIC_TITLES[metric])
        ax.set_title(f"{task}: {METRIC_TITLES[metric]}")
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.text(0.01, -0.02, "mean ± std over seeds; hollow: some runs diverged or have no result",
             fontsize=8)
    save(fig, out_dir, figure_stem("length_generalisation", key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="results/<suite>/table.csv")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    args = parser.parse_args()
    rows = read_csv(args.table)
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    colours = model_colours(r["model"] for r in rows)
    drawn = 0
    for key, group in groups.items():
        if not any(r["mean"] != "" for r in group):
            print(f"length_generalisation: {key[0]} (training lengths {key[1]}-{key[2]}): no "
                  "finished runs yet, no figure")
            continue
        plot_group(key, group, colours, args.out_dir)
        drawn += 1
    if drawn == 0:
        print("length_generalisation: nothing to plot yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
