#!/usr/bin/env python3
"""Kernel benchmark JSON -> committed results and figure.

Reads the Google Benchmark JSON that bench/cuda/bench_m2rnn_kernels writes (median aggregates,
scripts/gpu-check.sh runs it) and writes, for the GPU it ran on (e.g. h100):
  results/kernels/<gpu>.json  every row with provenance (git SHA, device, driver/CUDA, date, seed)
  results/kernels/<gpu>.md    the table: ms, ns per step, speed-ups over cuBLAS and the anchor,
                              bytes of saved state
  plots/kernels/<gpu>.{png,pdf} ns per step, fused vs cuBLAS vs the anchor, per shape and pass
                              (the style and colours of plots/m2b_plotting.py)
Usage: kernel_throughput.py BENCH_JSON [--anchor ANCHOR_JSON] [--root REPO_ROOT]
  --anchor  the anchor measured in the same device call (scripts/gpu-check.sh's anchor step
            writes anchor.json); without it, the H100 anchor below
"""
import argparse
import json
import pathlib
import re

from matplotlib.patches import Patch

from m2b_plotting import BACKEND_STYLES, REFERENCE_COLOUR, backend_colour, plt, save, shared_legend

# The anchor: the authors' Triton M2RNN kernel, timed on one NVIDIA H100 80GB HBM3
# (PyTorch 2.11.0+cu130, Triton 3.6.0; median of CUDA-event timings after a warm-up, q and k
# shared by all heads, gradient clipping 1.0), in ms, forward and forward+backward, at the
# benchmark's shapes.
ANCHOR_SOURCE = ("the authors' Triton kernel, timed on one H100 80GB HBM3 with PyTorch 2.11.0 "
                 "and Triton 3.6.0")
ANCHOR_LABEL = "anchor: authors' Triton kernel, H100"
ANCHORS = {
    ("lm400m", "bf16"): {"fwd": 4.93, "fwd_bwd": 18.8},
    ("lm400m", "fp32"): {"fwd": 4.72, "fwd_bwd": 21.6},
    ("statetrack", "fp32"): {"fwd": 0.527, "fwd_bwd": 2.74},
    ("wide", "bf16"): {"fwd": 2.77, "fwd_bwd": 11.4},
}
TARGET_SPEEDUP = 3.0
PASSES = {"fwd": "forward", "fwd_bwd": "forward+backward"}


DTYPES = {"torch.bfloat16": "bf16", "torch.float32": "fp32"}


def read_bench(path, text=None):
    """A benchmark JSON file (or its text, read from elsewhere), refused in one line where it is
    not whole: a program stopped while writing it (gpu-check.sh's deadline) leaves it cut off."""
    try:
        return json.loads(path.read_text() if text is None else text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path}: not a whole benchmark JSON ({e}); was its program stopped?")


def measured_anchor(path, rows):
    """ANCHORS, source and label from anchor.json: the anchor script's rows (shape names such as
    lm400m-fp32 or wide-V64: the benchmark's shape before the dash) with the versions it ran
    under. Refuses an anchor whose sequence length differs from the benchmark's."""
    doc = json.loads(path.read_text())
    steps = {r["shape"]: r["S"] for r in rows}
    anchors = {}
    for a in doc["rows"]:
        if a.get("backend") != "triton":
            continue
        if "error" in a:
            raise SystemExit(f"{path}: the anchor failed at {a['shape']}: {a['error']}")
        shape, dtype = a["shape"].split("-")[0], DTYPES[a["dtype"]]
        if shape in steps and steps[shape] != a["S"]:
            raise SystemExit(f"{path}: anchor {a['shape']} has S={a['S']}, the benchmark S={steps[shape]}")
        anchors[(shape, dtype)] = {"fwd": a["fwd_ms"], "fwd_bwd": a["fwdbwd_ms"]}
    source = (f"the authors' Triton kernel, timed on the same {doc['device_name']} in the same call "
              f"({doc['date']}) with PyTorch {doc['torch']} and Triton {doc['triton']}; its forward "
              f"runs under no_grad, saving no states, while ours saves its checkpoints")
    return anchors, source, "anchor: authors' Triton kernel, same GPU"


def provenance(bench):
    """What a benchmark JSON says of the run: commit, date, GPU, driver and CUDA, input seed."""
    ctx = bench["context"]
    prov = {k: ctx.get(k, "unknown") for k in
            ("git_sha", "date", "device_name", "sm_count", "cuda_driver_version", "cuda_runtime_version", "seed")}
    prov["host_name"] = ctx.get("host_name")
    return prov


def gpu_slug(device_name):
    m = re.search(r"\b([A-Z]\d{2,3})\b", device_name)
    return m.group(1).lower() if m else re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")


def load_rows(bench):
    rows = []
    for b in bench["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        _, shape, dtype, backend, pas = b["run_name"].split("/")[:5]
        assert b["time_unit"] == "ms"
        row = {"shape": shape, "dtype": dtype, "backend": backend, "pass": pas,
               "ms": b["real_time"], "repetitions": b.get("repetitions"),
               "S": int(b["S"]), "saved_state_bytes": int(b["saved_state_bytes"])}
        if "all_states_bytes" in b:
            row["all_states_bytes"] = int(b["all_states_bytes"])
            # Benchmarks run before the kernels' option was renamed call it checkpoint_every.
            row["state_checkpoint_every"] = int(b.get("state_checkpoint_every", b.get("checkpoint_every")))
        row["ns_per_step"] = row["ms"] * 1e6 / row["S"]
        rows.append(row)
    by_key = {(r["shape"], r["dtype"], r["backend"], r["pass"]): r for r in rows}
    for r in rows:
        cublas = by_key.get((r["shape"], r["dtype"], "cublas", r["pass"]))
        r["speedup_vs_cublas"] = cublas["ms"] / r["ms"] if cublas else None
    return rows


def add_anchor(rows, anchors):
    """Each row's anchor time at its shape, dtype and pass, and its speed-up over it."""
    for r in rows:
        anchor = anchors.get((r["shape"], r["dtype"]), {}).get(r["pass"])
        r["anchor_ms"] = anchor
        r["speedup_vs_anchor"] = anchor / r["ms"] if anchor else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def gib(n):
    return f"{n / 2**30:.2f} GiB"


def missing_cases(rows):
    """Passes of a (shape, dtype, backend) that the run did not finish (e.g. cut off by a time limit)."""
    have = {(r["shape"], r["dtype"], r["backend"], r["pass"]) for r in rows}
    cases = dict.fromkeys((r["shape"], r["dtype"], r["backend"]) for r in rows)
    return [f"{s}/{d}/{b}/{PASSES[p]}" for s, d, b in cases for p in PASSES if (s, d, b, p) not in have]


def markdown(rows, prov, anchor_source):
    missing = missing_cases(rows)
    ck_note = ""
    if any(r["backend"].startswith("fused_ck") for r in rows):
        ck_note = ("fused_ck<N> = fused with a state checkpoint every N steps instead of 64 (more "
                   "memory, less recomputation in the backward); ")
    lines = [
        f"# M2RNN recurrence kernels on {prov['device_name']}",
        "",
        f"Measured by `bench/cuda/bench_m2rnn_kernels` (median of {rows[0]['repetitions']} CUDA-event "
        f"timings, one call each, after a warm-up), git {prov['git_sha']}, {prov['date']}, "
        f"driver {prov['cuda_driver_version']}, CUDA runtime {prov['cuda_runtime_version']}, "
        f"input seed {prov['seed']}. q and k shared by all heads, gradient clipping 1.0. "
        f"Anchor: {anchor_source}. "
        f"Target: {TARGET_SPEEDUP:g}x the anchor. fused = tensor cores (bf16 mma for bf16, tf32 for fp32); "
        f"{ck_note}fused_exact = fp32 FMA, no tensor cores.",
        "",
        *([f"Not in this run (no median in the benchmark JSON): {', '.join(missing)}.", ""] if missing else []),
        "| shape | dtype | backend | pass | ms | ns / step | x cuBLAS | x anchor | target | saved state |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "all_states_bytes" in r:
            saved = (f"{gib(r['saved_state_bytes'])} (every {r['state_checkpoint_every']} steps; "
                     f"all states {gib(r['all_states_bytes'])})")
        else:
            saved = f"{gib(r['saved_state_bytes'])} (every state, fp32)"
        met = "-"
        if r["backend"] != "cublas" and r["speedup_vs_anchor"] is not None:
            met = "met" if r["speedup_vs_anchor"] >= TARGET_SPEEDUP else "not met"
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['backend']} | {PASSES[r['pass']]} | {r['ms']:.3f} | "
                     f"{r['ns_per_step']:.0f} | {fmt(r['speedup_vs_cublas'], '.1f')} | "
                     f"{fmt(r['speedup_vs_anchor'], '.2f')} | {met} | {saved} |")
    return "\n".join(lines) + "\n"


def figure(rows, prov, anchors, anchor_label, out_dir, stem):
    shapes = list(dict.fromkeys((r["shape"], r["dtype"]) for r in rows))
    present = {r["backend"] for r in rows}
    backends = [b for b in BACKEND_STYLES if b in present] + sorted(present - set(BACKEND_STYLES))
    fig, axes = plt.subplots(1, len(PASSES), figsize=(11.6, 4.2), sharey=True, layout="constrained")
    for ax, pas in zip(axes, PASSES):
        series = {b: {} for b in backends}
        series[anchor_label] = {}
        for i, (shape, dtype) in enumerate(shapes):
            for r in rows:
                if (r["shape"], r["dtype"], r["pass"]) == (shape, dtype, pas):
                    series[r["backend"]][i] = r["ns_per_step"]
            anchor = anchors.get((shape, dtype), {}).get(pas)
            if anchor:
                steps = next(r["S"] for r in rows if r["shape"] == shape)
                series[anchor_label][i] = anchor * 1e6 / steps
        width = 0.8 / len(series)
        for j, (name, vals) in enumerate(series.items()):
            xs = [i + (j - (len(series) - 1) / 2) * width for i in vals]
            if name == anchor_label:
                ax.bar(xs, list(vals.values()), width, facecolor="white",
                       edgecolor=REFERENCE_COLOUR, linewidth=1.2, hatch="///")
            else:
                ax.bar(xs, list(vals.values()), width, color=backend_colour(name))
            if name == "fused":  # the speed-up over the anchor, above the fused bar
                for x, i in zip(xs, vals):
                    r = next(r for r in rows if (r["shape"], r["dtype"], r["backend"], r["pass"])
                             == (*shapes[i], "fused", pas))
                    if r["speedup_vs_anchor"]:
                        ax.annotate(f"{r['speedup_vs_anchor']:.1f}x", (x, vals[i]),
                                    xytext=(0, 2), textcoords="offset points", ha="center",
                                    va="bottom", fontsize=8)
        ax.set_xticks(range(len(shapes)), [f"{s}\n{d}" for s, d in shapes])
        ax.set_yscale("log")
        ax.set_title(PASSES[pas])
        ax.grid(False, axis="x")
        ax.grid(True, axis="y", which="both", alpha=0.25)
    axes[0].set_ylabel("ns per time step (lower is better)")
    handles = [Patch(color=backend_colour(b), label=b) for b in backends]
    handles.append(Patch(facecolor="white", edgecolor=REFERENCE_COLOUR, hatch="///",
                         label=anchor_label.replace(": ", ":\n")))
    handles.append(Patch(color="none", label="above fused: its\nspeed-up over the anchor"))
    shared_legend(fig, handles)
    fig.suptitle(f"M2RNN recurrence on {prov['device_name']} (git {prov['git_sha'][:12]})")
    save(fig, out_dir, stem)


def bench_parser(doc):
    """The arguments both kernel-table scripts take: the benchmark JSON, and the repository root
    their files go under."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_json", type=pathlib.Path)
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    return ap


def main():
    ap = bench_parser(__doc__)
    ap.add_argument("--anchor", type=pathlib.Path)
    args = ap.parse_args()
    bench = read_bench(args.bench_json)
    prov = provenance(bench)
    rows = load_rows(bench)
    if not rows:
        raise SystemExit(f"{args.bench_json}: no median aggregates (run with --benchmark_repetitions > 1)")
    anchors, anchor_source, anchor_label = ANCHORS, ANCHOR_SOURCE, ANCHOR_LABEL
    if args.anchor:
        anchors, anchor_source, anchor_label = measured_anchor(args.anchor, rows)
    add_anchor(rows, anchors)
    slug = gpu_slug(prov["device_name"])
    out = args.root / "results" / "kernels"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{slug}.json").write_text(json.dumps(
        {"provenance": prov, "anchor_source": anchor_source,
         "anchors_ms": {f"{s}/{d}": v for (s, d), v in anchors.items()},
         "target_speedup_vs_anchor": TARGET_SPEEDUP, "rows": rows}, indent=1) + "\n")
    (out / f"{slug}.md").write_text(markdown(rows, prov, anchor_source))
    figure(rows, prov, anchors, anchor_label, args.root / "plots" / "kernels", slug)
    print(f"wrote results/kernels/{slug}.json and .md")


if __name__ == "__main__":
    main()
