#!/usr/bin/env python3
"""The rows of a suite's table ranked by accuracy at one evaluation length: the figure that reads
a recipe search (dozens of rows, too many for one figure of lines).

Reads results/<suite>/table.csv, runs.csv and each run's summary.json, and draws, per task and
training range, one panel per metric at the ranking length: one row per table row, best token
accuracy on top, each seed a small marker, the mean over seeds a large one, the paper's stated
number at that length a dotted line. The ranking length is the shortest evaluated length at least
4x the longest training length (the paper's criterion), else the longest evaluated length.
Usage: ranking.py --table results/<suite>/table.csv --out-dir plots/<suite> [--length L]
"""
import argparse
import pathlib
import sys

# m2b_plotting first: it exits with NO_MATPLOTLIB where matplotlib is missing.
from m2b_plotting import (METRIC_TITLES, PER_LENGTH_METRICS, figure_stem, figure_styles, label,
                          per_seed_table, plt, ranked_models, ranking_length, read_table_groups,
                          save, variant_of)


def plot_group(key, rows, models, seeds, length, out_dir):
    """`models`: the rows to draw, best first (ranked_models). A search's rows share their
    variant's colour and paper number; each variant takes the colour the line figures give it,
    from every variant of the group."""
    task, lo, hi = key
    style_of = figure_styles({variant_of(r["model"]) for r in rows})
    metrics = [m for m in PER_LENGTH_METRICS if any(r["metric"] == m for r in rows)]
    cell = {(r["metric"], r["model"]): r for r in rows if int(r["length"]) == length}
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 3.4,
                                                       1.7 + 0.2 * len(models)),
                             squeeze=False, sharey=True, layout="constrained")
    y = {model: i for i, model in enumerate(reversed(models))}
    for ax, metric in zip(axes[0], metrics):
        for model in models:
            style = style_of(variant_of(model))
            r = cell.get((metric, model))
            if r is None or r["mean"] == "":
                continue
            values = seeds.get((metric, model, length), [])
            if len(values) > 1:
                ax.plot(values, [y[model]] * len(values), linestyle="none", marker=style["marker"],
                        markersize=3.6, color=style["color"], alpha=0.55, markeredgewidth=0)
            ax.plot([float(r["mean"])], [y[model]], linestyle="none", marker=style["marker"],
                    markersize=6.5, color=style["color"], markeredgecolor="white",
                    markeredgewidth=0.6)
        # A paper number belongs to a model, not to each of its search rows: one line per number.
        paper = sorted({(variant_of(r["model"]), float(r["paper_value"])) for r in rows
                        if r["metric"] == metric and int(r["length"]) == length
                        and r["paper_value"] != ""})
        for base, value in paper:
            ax.axvline(value, color=style_of(base)["color"], linestyle=":", linewidth=1.4,
                       zorder=0.5)
            ax.annotate(f"paper: {base}", (value, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(-3, 3), textcoords="offset points", ha="right", va="bottom",
                        fontsize=8, color=style_of(base)["color"])
        ax.set_xlim(-0.02, 1.04)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylim(-0.7, len(models) - 0.3)
        ax.grid(False, axis="y")
        ax.set_xlabel(f"{METRIC_TITLES[metric]} at length {length}")
        ax.set_title(METRIC_TITLES[metric])
    axes[0][0].set_yticks(range(len(models)), [label(m) for m in reversed(models)], fontsize=8)
    most_seeds = max((len(v) for v in seeds.values()), default=1)
    note = (f"large marker: mean of {most_seeds} seeds; small: each seed" if most_seeds > 1
            else "one seed per row")
    if any(r["paper_value"] != "" for r in cell.values()):
        note += "; dotted line: the paper's stated number"
    fig.suptitle(f"{task}: ranked by token accuracy at length {length} (trained on lengths "
                 f"{lo}-{hi})\n{note}")
    save(fig, out_dir, figure_stem("ranking", key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="results/<suite>/table.csv")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    parser.add_argument("--length", type=int,
                        help="rank at this evaluation length (default: the first at 4x)")
    args = parser.parse_args()
    groups, runs = read_table_groups(args.table)
    drawn = 0
    for key, group in groups.items():
        lengths = {int(r["length"]) for r in group}
        if args.length is not None and args.length not in lengths:
            print(f"ranking: --length {args.length} is not an evaluation length of {key[0]} "
                  f"(training lengths {key[1]}-{key[2]}); those are "
                  f"{', '.join(map(str, sorted(lengths)))}", file=sys.stderr)
            return 2
        length = args.length if args.length is not None else ranking_length(lengths, key[2])
        models = ranked_models(group, length)
        if not models:
            print(f"ranking: {key[0]} (training lengths {key[1]}-{key[2]}): no finished runs at "
                  f"length {length} yet, no figure")
            continue
        seeds = per_seed_table(pathlib.Path(args.table).parent, runs, key)
        plot_group(key, group, models, seeds, length, args.out_dir)
        drawn += 1
    if drawn == 0:
        print("ranking: nothing to plot yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
