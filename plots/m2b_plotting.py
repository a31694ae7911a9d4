"""What every plot script shares: one figure style, one colour per model and per kernel backend,
reading the table CSVs and the runs' results, and saving a figure so that the same data gives the
same bytes.

The colours are the Okabe-Ito palette, and past its seven Paul Tol's, as colour-blind safe
(distinguishable with every common colour-vision deficiency); each model name keeps its colour and
marker in every figure of the project. Grey is no model's colour: it marks the training range.
"""
import csv
import json
import os
import pathlib
import re
import sys
import textwrap

# The metrics of table.csv and summary.json as the figures title them, under the names that
# harness/results/metrics.cpp (the C++ table of metrics) gives them. Panel titles say "token
# accuracy" where the tables say "accuracy": beside sequence accuracy on one figure, the unit
# matters.
METRIC_TITLES = {"accuracy": "token accuracy", "sequence_accuracy": "sequence accuracy",
                 "prefix_accuracy": "prefix accuracy"}
# Those with one number per evaluation length; prefix_accuracy is a curve over t at each length.
PER_LENGTH_METRICS = ("accuracy", "sequence_accuracy")

# The exit status of a script run by a Python without matplotlib; `m2bench plot` says so for this
# status only (kExitNoMatplotlib in harness/cli/cmd_plot.cpp), and shows any other failure as it is.
NO_MATPLOTLIB = 3

try:
    import matplotlib
except ImportError:
    print(f"{sys.executable} has no matplotlib", file=sys.stderr)
    sys.exit(NO_MATPLOTLIB)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# Okabe & Ito, "Color Universal Design" (2008). The yellow is left out: on white it is too faint
# for a line.
OKABE_ITO = {
    "vermillion": "#D55E00",
    "orange": "#E69F00",
    "bluish green": "#009E73",
    "sky blue": "#56B4E9",
    "blue": "#0072B2",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
# For the names beyond the table below (Paul Tol's "muted" set, equally colour-blind safe), less
# the two the table already gives (olive, indigo).
EXTRA_COLOURS = ["#882255", "#117733", "#44AA99", "#AA4499", "#CC6677", "#88CCEE", "#DDCC77"]

# Model name -> (colour, marker). A hybrid takes the colour of the layer it tests.
MODEL_STYLES = {
    "m2rnn": (OKABE_ITO["vermillion"], "o"),
    "m2rnn_authors_init": (OKABE_ITO["orange"], "s"),
    "mamba2": (OKABE_ITO["bluish green"], "^"),
    "gated_deltanet": (OKABE_ITO["sky blue"], "v"),
    "gated_deltanet_neg": (OKABE_ITO["blue"], "D"),
    "gated_deltaproduct_neg": ("#332288", "d"),  # Tol's indigo: the DeltaProduct control
    "attention": (OKABE_ITO["black"], "X"),
    "gru": (OKABE_ITO["reddish purple"], "P"),
    "lstm": ("#999933", "h"),  # Tol's olive: Okabe-Ito has no eighth line colour
    "gated_deltanet_x4": (OKABE_ITO["sky blue"], "v"),
    "gated_deltanet_x3_m2rnn": (OKABE_ITO["vermillion"], "o"),
}
# `<model>_state<N>` (the state-size suite): the model's colour, the line style says the size.
STATE_LINESTYLES = {256: ":", 1024: "--", 4096: "-"}

# Kernel backends (plots/kernel_throughput.py), in the order the bars are drawn. The reference
# (the authors' kernel) is hollow, as reference points are in the other figures.
BACKEND_STYLES = {
    "fused": OKABE_ITO["vermillion"],
    "fused_ck8": OKABE_ITO["orange"],
    "fused_exact": OKABE_ITO["reddish purple"],
    "cublas": OKABE_ITO["bluish green"],
}
REFERENCE_COLOUR = OKABE_ITO["black"]

TRAINING_RANGE_COLOUR = "#BBBBBB"  # no model's colour
TRAINING_RANGE_FILL = "#EEEEEE"

STYLE = {
    "pdf.fonttype": 42,  # TrueType fonts embedded whole-glyph: editable text, no Type 3
    "ps.fonttype": 42,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.8,
    "savefig.dpi": 150,
    "svg.hashsalt": "m2bench",
}
plt.rcParams.update(STYLE)


def fail(message):
    """Ends the script with one line naming what was wrong, as m2bench's own errors do."""
    sys.exit(f"{pathlib.Path(sys.argv[0]).name}: {message}")


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        fail(f"{path}: {e.strerror} (m2bench table writes it)")


def group_key(row):
    """Tables and figures are per task and training range, as in m2bench table."""
    return row["task"], int(row["train_min_length"]), int(row["train_max_length"])


def figure_stem(kind, key):
    task, lo, hi = key
    return f"{kind}_{task}_train{lo}-{hi}"


# A figure with one line per model stops being readable past this many models (a recipe search has
# dozens); the line figures then draw the best of them, and plots/ranking.py ranks every row.
MAX_LINES = 12
EXTRAPOLATION = 4  # the paper's claim is about 4x the training length


def ranking_length(lengths, longest_trained):
    """The shortest length at least 4x the training range, else the longest there is."""
    far = [length for length in sorted(lengths) if length >= EXTRAPOLATION * longest_trained]
    return far[0] if far else max(lengths)


def ranked_models(rows, length):
    """The models of table rows with a result at `length`, best mean token accuracy first (ties by
    name)."""
    means = {r["model"]: float(r["mean"]) for r in rows
             if r["metric"] == "accuracy" and int(r["length"]) == length and r["mean"] != ""}
    return sorted(means, key=lambda m: (-means[m], m))


# Colours of the rows of a crowded group (lines_to_draw), by rank: names of search rows are not in
# MODEL_STYLES, and a colour from the name would repeat among twelve.
RANKED_COLOURS = ["#332288", "#CC6677", "#117733", "#DDCC77", "#88CCEE", "#882255", "#44AA99",
                  "#999933", "#AA4499", "#000000", "#E69F00", "#0072B2"]


def lines_to_draw(script, key, models, table_rows):
    """The models of a group that a figure of lines draws, a line for its title, and their style
    (a function of the model): all of them in figure_styles, or past MAX_LINES the MAX_LINES best
    by token accuracy at the ranking length (the top of the ranking figure), coloured by their
    rank, so that a recipe search still shows its leaders' curves. `models`: every model of the
    group, those without a result too, so that each figure of a suite gives a model one colour."""
    models = set(models)
    if len(models) <= MAX_LINES:
        return models, "", figure_styles(models)
    lengths = {int(r["length"]) for r in table_rows}
    length = ranking_length(lengths, key[2]) if lengths else None
    best = [m for m in ranked_models(table_rows, length) if m in models][:MAX_LINES]
    if not best:
        print(f"{script}: {key[0]} (training lengths {key[1]}-{key[2]}): {len(models)} models are "
              f"too many lines for one figure, and no table ranks them yet: no figure")
        return set(), "", None
    note = f"the {len(best)} best of {len(models)} rows by token accuracy at length {length}"
    print(f"{script}: {key[0]} (training lengths {key[1]}-{key[2]}): {len(models)} models are too "
          f"many lines for one figure; it draws {note} ({figure_stem('ranking', key)} ranks them "
          "all)")
    ranked = {m: {"color": RANKED_COLOURS[i], "marker": "o", "linestyle": "-"}
              for i, m in enumerate(best)}
    return set(best), note, ranked.__getitem__


def known_style(model):
    """The style MODEL_STYLES gives a model (or a `_state<N>` variant of one), or None."""
    if model in MODEL_STYLES:
        colour, marker = MODEL_STYLES[model]
        return {"color": colour, "marker": marker, "linestyle": "-"}
    m = re.fullmatch(r"(.+)_state(\d+)", model)
    if m and m.group(1) in MODEL_STYLES:
        colour, marker = MODEL_STYLES[m.group(1)]
        return {"color": colour, "marker": marker,
                "linestyle": STATE_LINESTYLES.get(int(m.group(2)), "-.")}
    return None


def variant_of(model):
    """A search's row is `<variant> key=value ...` (the grid's other keys): the variant is the
    model it varies."""
    return model.split(" ")[0]


def figure_styles(models):
    """The style of each of `models`, the rows of a group (every figure of the group passes them
    all, drawn or not, so that a row keeps one colour across the group's figures). Each variant
    first: MODEL_STYLES's where it lists the variant, else in name order the first colours that
    no other variant has; so the ranking, which colours variants, agrees. A variant's first row
    (in name order) takes its style, its other rows the colours no variant took, in name order
    (round again past the last)."""
    models = sorted(set(models))
    variants = list(dict.fromkeys(variant_of(m) for m in models))
    styles = {v: known_style(v) for v in variants}
    free = [c for c in dict.fromkeys(EXTRA_COLOURS + RANKED_COLOURS)
            if c not in {s["color"] for s in styles.values() if s}]
    unlisted = [v for v in variants if styles[v] is None]
    for i, v in enumerate(unlisted):
        styles[v] = {"color": free[i % len(free)], "marker": "o", "linestyle": "-"}
    spare = free[len(unlisted):] or free
    rows, others, seen = {}, [], set()
    for m in models:  # in name order: a variant's first row comes first
        if variant_of(m) in seen:
            others.append(m)
        else:
            seen.add(variant_of(m))
            rows[m] = styles[variant_of(m)]
    for i, m in enumerate(others):
        rows[m] = {"color": spare[i % len(spare)], "marker": "o", "linestyle": "-"}
    return rows.__getitem__


def label(model):
    """A model's name as legends and tick labels show it: wrapped past 60 characters, so that a
    long name cannot squeeze the axes away."""
    return textwrap.fill(model, 60)


def backend_colour(backend):
    return BACKEND_STYLES.get(backend, EXTRA_COLOURS[0])


def read_summary(run_dir):
    path = pathlib.Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def per_seed_values(results_dir, runs, metric):
    """{(model, length): [value per seed]} from each run's summary.json, counting the runs the
    table counts: a finished one's (a diverged run gives no value, and the table leaves out a
    summary it cannot trust)."""
    values = {}
    for run in sorted(runs, key=lambda r: (r["model"], int(r["seed"]))):
        if run["state"] != "finished":
            continue
        summary = read_summary(pathlib.Path(results_dir) / run["id"])
        for e in (summary or {}).get("eval", []):
            values.setdefault((run["model"], int(e["length"])), []).append(float(e[metric]))
    return values


def groups_of(rows):
    """Rows of table.csv or runs.csv per (task, training range), in their order."""
    groups = {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    return groups


def read_table_groups(table):
    """A table.csv's rows per (task, training range), and the suite's runs (runs.csv beside it;
    none where it is missing)."""
    table = pathlib.Path(table)
    runs_csv = table.parent / "runs.csv"
    return groups_of(read_csv(table)), read_csv(runs_csv) if runs_csv.exists() else []


def table_groups_beside(results_dir):
    """The rows per (task, training range) of the table.csv in a suite's results folder, which
    rank a crowded group's lines (lines_to_draw); none before `m2bench table` has written it."""
    table = pathlib.Path(results_dir) / "table.csv"
    return groups_of(read_csv(table)) if table.exists() else {}


def per_seed_table(results_dir, runs, key):
    """{(metric, model, length): [value per seed]} of one group, for the per-length metrics."""
    group_runs = [run for run in runs if group_key(run) == key]
    return {(metric, model, length): values
            for metric in PER_LENGTH_METRICS
            for (model, length), values in per_seed_values(results_dir, group_runs,
                                                           metric).items()}


def length_axis(ax, lengths, pad=0.3):
    """Log-2 x axis from the first to the last evaluated length, ticked at those lengths only."""
    ax.set_xscale("log", base=2)
    ax.set_xlim(lengths[0] * 2 ** -pad, lengths[-1] * 2 ** pad)
    ax.set_xticks(lengths, [str(x) for x in lengths])
    ax.minorticks_off()
    ax.grid(False, axis="x")


def mark_training_range(ax, lo, hi, half_width=0.0):
    """Shades the part of a length axis inside the training range (up to `half_width` octaves
    past its longest length, so that points drawn side by side there are all inside) and draws a
    grey dashed line where it ends; returns the legend entry."""
    left, right = ax.get_xlim()
    edge = hi * 2 ** half_width
    if edge > left:
        ax.axvspan(left, min(edge, right), facecolor=TRAINING_RANGE_FILL, edgecolor="none",
                   zorder=0)
        if edge < right:
            ax.axvline(edge, color=TRAINING_RANGE_COLOUR, linestyle="--", linewidth=1.2,
                       zorder=0.5)
        ax.set_xlim(left, right)
    return Patch(facecolor=TRAINING_RANGE_FILL, edgecolor=TRAINING_RANGE_COLOUR, linestyle="--",
                 label=f"inside the training range\n(lengths {lo}-{hi})")


def shared_legend(fig, handles):
    """One legend for the whole figure, right of the axes."""
    fig.legend(handles=handles, loc="outside right center", frameon=False, handlelength=2.6,
               labelspacing=0.6)


def save(fig, out_dir, stem, formats=("png", "pdf")):
    """Writes the figure as PNG and PDF. No creation date and no other time-varying metadata, so
    redrawing unchanged data writes the same bytes and leaves git clean."""
    out_dir = pathlib.Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"{out_dir}: cannot make the figures' folder: {e.strerror}")
    # Each file whole or not at all: drawn beside its name, then renamed into place.
    for ext in formats:
        path = out_dir / f"{stem}.{ext}"
        partial = out_dir / f".{stem}.partial.{ext}"
        metadata = {"CreationDate": None} if ext == "pdf" else {}
        try:
            fig.savefig(partial, metadata=metadata)
            os.replace(partial, path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            fail(f"{path}: cannot write it: {e.strerror}")
        print(f"wrote {path}")
    plt.close(fig)
