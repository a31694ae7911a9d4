"""What the suite plot scripts share: matplotlib (or a clear exit without it), reading the table
CSVs, one colour per model, and saving a figure as PNG and PDF."""
import csv
import pathlib
import sys

# The exit status of a script run by a Python without matplotlib; `m2bench plot` says so for this
# status only (kExitNoMatplotlib in harness/cmd_plot.cpp), and shows any other failure as it is.
NO_MATPLOTLIB = 3

try:
    import matplotlib
except ImportError:
    print(f"{sys.executable} has no matplotlib", file=sys.stderr)
    sys.exit(NO_MATPLOTLIB)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def group_key(row):
    """Tables and figures are per task and training range, as in m2bench table."""
    return row["task"], int(row["train_min_length"]), int(row["train_max_length"])


def figure_stem(kind, key):
    task, lo, hi = key
    return f"{kind}_{task}_train{lo}-{hi}"


def model_colours(models):
    """The same model gets the same colour in every figure of a suite (order of first row)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = list(dict.fromkeys(models))
    return {m: cycle[i % len(cycle)] for i, m in enumerate(order)}


def save(fig, out_dir, stem):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        print(f"wrote {path}")
    plt.close(fig)
