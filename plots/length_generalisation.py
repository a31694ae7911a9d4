#!/usr/bin/env python3
"""Accuracy vs evaluation length per model: the paper's length-generalisation figure.

Reads results/<suite>/table.csv and runs.csv (m2bench table writes them) and each run's
summary.json beside them, and draws, per task and training range, one panel per metric: each
seed as a small marker, the mean over seeds (the table's) as the line, the longest training
length as a grey line, and the paper's stated numbers as hollow rings labelled "paper". A cell
where some runs diverged or have no result says how many runs it holds (once for the lengths
that share the count, at the last of them); a model with no result yet, or whose every run
diverged, says so in the legend.
One legend for the figure, under the panels.
Usage: length_generalisation.py --table results/<suite>/table.csv --out-dir plots/<suite>
"""
import argparse
import collections
import pathlib
import sys

# m2b_plotting first: it exits with NO_MATPLOTLIB where matplotlib is missing.
from m2b_plotting import (METRIC_TITLES, PER_LENGTH_METRICS, figure_stem, label, length_axis,
                          lines_to_draw, mark_training_range, per_seed_table, plt,
                          read_table_groups, save, shared_legend)
from matplotlib.lines import Line2D  # noqa: E402

DODGE = 0.13  # models side by side at a length, within ± this many octaves


def dodge_factors(models):
    """x multipliers that put the models' points side by side at each length."""
    if len(models) == 1:
        return {models[0]: 1.0}
    step = 2 * DODGE / (len(models) - 1)
    return {m: 2 ** (-DODGE + i * step) for i, m in enumerate(models)}


def paper_x(length, model, shift, models_with_paper_value):
    """Where a paper number at `length` goes: on the length's column, unless other models have
    one there too; then on its model's own place beside them, so that none hides another."""
    return length * (1.0 if models_with_paper_value == 1 else shift[model])


def plot_group(key, rows, seeds, out_dir, subset, style_of):
    task, lo, hi = key
    metrics = [m for m in PER_LENGTH_METRICS if any(r["metric"] == m for r in rows)]
    models = list(dict.fromkeys(r["model"] for r in rows))
    lengths = sorted({int(r["length"]) for r in rows})
    shift = dodge_factors(models)
    paper_cells = collections.Counter((r["metric"], int(r["length"])) for r in rows
                                      if r["paper_value"] != "")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics) + 2.4, 4.2),
                             squeeze=False, layout="constrained")
    most_seeds = 1
    for ax, metric in zip(axes[0], metrics):
        length_axis(ax, lengths, pad=DODGE + 0.17)
        range_handle = mark_training_range(ax, lo, hi, half_width=DODGE + 0.07)
        for model in models:
            style = style_of(model)
            colour = style["color"]
            cells = sorted((r for r in rows if r["metric"] == metric and r["model"] == model),
                           key=lambda r: int(r["length"]))
            measured = [r for r in cells if r["mean"] != ""]
            x = [int(r["length"]) * shift[model] for r in measured]
            y = [float(r["mean"]) for r in measured]
            if measured:  # an empty line drawn unclipped collapses the constrained layout
                ax.plot(x, y, color=colour, linestyle=style["linestyle"], marker=style["marker"],
                        markersize=6, markeredgecolor="white", markeredgewidth=0.6, zorder=3,
                        clip_on=False)
            for i, (r, xm) in enumerate(zip(measured, x)):
                values = seeds.get((metric, model, int(r["length"])), [])
                most_seeds = max(most_seeds, len(values))
                if len(values) > 1:
                    ax.plot([xm] * len(values), values, linestyle="none", marker=style["marker"],
                            markersize=3.6, color=colour, alpha=0.55, markeredgewidth=0,
                            zorder=2.5, clip_on=False)
                # A run count is said once for the stretch of lengths that share it, at its end.
                count = (r["n"], r["runs"])
                same_as_next = (i + 1 < len(measured)
                                and (measured[i + 1]["n"], measured[i + 1]["runs"]) == count)
                if count[0] != count[1] and not same_as_next:
                    ax.annotate(f"{r['n']}/{r['runs']} runs", (xm, float(r["mean"])),
                                xytext=(4, -9), textcoords="offset points", fontsize=7,
                                color=colour)
            for r in cells:
                if r["paper_value"] == "":
                    continue
                length = int(r["length"])
                xp = paper_x(length, model, shift, paper_cells[(metric, length)])
                yp = float(r["paper_value"])
                ax.plot([xp], [yp], linestyle="none", marker="o", markersize=10,
                        markerfacecolor="none", markeredgecolor=colour, markeredgewidth=1.6,
                        zorder=4, clip_on=False)
                ax.annotate("paper", (xp, yp), xytext=(-9, 0), textcoords="offset points",
                            ha="right", va="center", fontsize=9, color=colour,
                            annotation_clip=False)
        ax.set_ylim(-0.02, 1.04)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlabel("evaluation length")
        ax.set_ylabel(METRIC_TITLES[metric])
        ax.set_title(METRIC_TITLES[metric])
    title = f"{task}: accuracy vs length, trained on lengths {lo}-{hi}"
    fig.suptitle(f"{title}\n{subset}" if subset else title)

    measured_models = {r["model"] for r in rows if r["mean"] != ""}
    diverged_models = {r["model"] for r in rows if r["diverged"] != "" and r["runs"] != ""
                       and int(r["diverged"]) == int(r["runs"])}

    def legend_label(m):
        if m in measured_models:
            return label(m)
        return label(f"{m} ({'every run diverged' if m in diverged_models else 'no result yet'})")

    handles = [Line2D([], [], label=legend_label(m), **{k: v for k, v in style_of(m).items()},
                      markersize=6, markeredgecolor="white", markeredgewidth=0.6)
               for m in models]
    if most_seeds > 1:
        handles.append(Line2D([], [], color="0.3", marker="o", linestyle="-", markersize=6,
                              markeredgecolor="white",
                              label=f"line: mean of {most_seeds} seeds\nsmall markers: each seed"))
    else:
        handles.append(Line2D([], [], color="0.3", marker="o", linestyle="-", markersize=6,
                              markeredgecolor="white", label="one seed per model"))
    if any(r["paper_value"] != "" for r in rows):
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=10,
                              markerfacecolor="none", markeredgecolor="0.3", markeredgewidth=1.6,
                              label="paper's stated number"))
    handles.append(range_handle)
    shared_legend(fig, handles)
    save(fig, out_dir, figure_stem("length_generalisation", key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="results/<suite>/table.csv")
    parser.add_argument("--out-dir", required=True, help="where the PNG and PDF go")
    args = parser.parse_args()
    groups, runs = read_table_groups(args.table)
    drawn = 0
    for key, group in groups.items():
        if not any(r["mean"] != "" for r in group):
            print(f"length_generalisation: {key[0]} (training lengths {key[1]}-{key[2]}): no "
                  "finished runs yet, no figure")
            continue
        models, subset, style_of = lines_to_draw(
            "length_generalisation", key, {r["model"] for r in group}, group)
        if not models:
            continue
        seeds = per_seed_table(pathlib.Path(args.table).parent, runs, key)
        plot_group(key, [r for r in group if r["model"] in models], seeds, args.out_dir, subset,
                   style_of)
        drawn += 1
    if drawn == 0:
        print("length_generalisation: nothing to plot yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
