#!/usr/bin/env python3
"""Timing-only backward benchmarks -> what each phase adds to the fused backward's time.

Reads the full kernel benchmark (bench.json) and the timing-only programs of
scripts/ablate-backward.sh, run in the same device call (scripts/gpu-check.sh's ablate step:
ablation.tar.gz, or the folder it unpacks to), and writes results/kernels/<gpu>_backward_ablation
.{json,md}: per shape, the fused backward (forward+backward less forward) of the full kernel and
of each program that leaves phases out, and what leaving them out saved. A phase whose removal
saves little is off the critical path, however many instructions it issues.
Usage: backward_ablation.py BENCH_JSON ABLATION [--root REPO_ROOT]
"""
import json
import pathlib
import sys
import tarfile

from kernel_throughput import bench_parser, gpu_slug, load_rows, provenance, read_bench

# kernels/cuda/m2rnn_fused_backward.cuh's BackwardPhase.
PHASES = {1: "staging", 2: "pass 1", 4: "pass 2's forward", 8: "reverse", 16: "dW", 32: "flush",
          64: "shared-head adds"}


def phases_of(mask):
    return ", ".join(name for bit, name in PHASES.items() if mask & bit)


def backward_ms(bench):
    """(shape, dtype) -> the fused backward's ms: its forward+backward less its forward."""
    by = {}
    for r in load_rows(bench):
        if r["backend"] == "fused":
            by.setdefault((r["shape"], r["dtype"]), {})[r["pass"]] = r["ms"]
    return {k: p["fwd_bwd"] - p["fwd"] for k, p in by.items() if {"fwd", "fwd_bwd"} <= p.keys()}


def ablation_benches(path):
    """Each timing-only program's benchmark JSON, from the tarball or folder of the ablate step. One
    that is not whole (its program was stopped) is left out with a warning: the others still make
    their rows."""
    if path.is_dir():
        files = [(p, p.read_text()) for p in sorted(path.glob("**/*.json"))]
    else:
        with tarfile.open(path) as tar:
            files = [(pathlib.Path(m.name), tar.extractfile(m).read().decode())
                     for m in tar.getmembers() if m.name.endswith(".json")]
    benches = []
    for name, text in files:
        try:
            benches.append(read_bench(name, text))
        except SystemExit as e:
            print(f"backward_ablation: left out: {e}", file=sys.stderr)
    return benches


def main():
    ap = bench_parser(__doc__)
    ap.add_argument("ablation", type=pathlib.Path)
    args = ap.parse_args()
    full = read_bench(args.bench_json)
    device = full["context"]["device_name"]
    base = backward_ms(full)
    variants = []
    for b in ablation_benches(args.ablation):
        ctx = b["context"]
        if "backward_skip" not in ctx:
            raise SystemExit(f"{args.ablation}: a benchmark without backward_skip in its context is not "
                             "a timing-only program of scripts/ablate-backward.sh")
        if ctx["device_name"] != device:
            raise SystemExit(f"{args.ablation}: ran on {ctx['device_name']}, the full benchmark on {device}: "
                             "compare programs timed in the same call only")
        mask = int(ctx["backward_skip"])
        variants.append({"backward_skip": mask, "left_out": phases_of(mask), "git_sha": ctx.get("git_sha"),
                         "date": ctx.get("date"), "backward_ms": backward_ms(b)})
    if not variants:
        raise SystemExit(f"{args.ablation}: no benchmark JSON in it")
    variants.sort(key=lambda v: (bin(v["backward_skip"]).count("1"), v["backward_skip"]))
    shapes = sorted(base)
    prov = provenance(full)
    lines = [f"# What each phase adds to the fused backward on {device}", "",
             f"The full kernel: git {prov['git_sha']}, {prov['date']}, driver {prov['cuda_driver_version']}, "
             f"CUDA runtime {prov['cuda_runtime_version']}, input seed {prov['seed']}. Each other row is a "
             "timing-only build of the same kernel (scripts/ablate-backward.sh, git "
             f"{', '.join(sorted({str(v['git_sha']) for v in variants}))}) that leaves the named phases out, "
             "run in the same device call (scripts/gpu-check.sh's ablate step). Backward = median "
             f"forward+backward less median forward ({load_rows(full)[0]['repetitions']} repetitions "
             "each), in ms; in brackets its change "
             "against the full kernel's backward. Its gradients are wrong: "
             "these rows time a kernel, they do not compute anything.", "",
             "| left out | " + " | ".join(f"{s} {d}" for s, d in shapes) + " |",
             "|---|" + "---|" * len(shapes),
             "| nothing (the full kernel) | " + " | ".join(f"{base[k]:.3f}" for k in shapes) + " |"]
    for v in variants:
        cells = []
        for k in shapes:
            ms = v["backward_ms"].get(k)
            cells.append("-" if ms is None else f"{ms:.3f} ({ms / base[k] - 1:+.0%})")
        lines.append(f"| {v['left_out']} | " + " | ".join(cells) + " |")
    out = args.root / "results" / "kernels"
    stem = f"{gpu_slug(device)}_backward_ablation"
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps(
        {"provenance": prov, "full_backward_ms": {f"{s}/{d}": ms for (s, d), ms in base.items()},
         "variants": [{**v, "backward_ms": {f"{s}/{d}": ms for (s, d), ms in v["backward_ms"].items()}}
                      for v in variants]}, indent=1) + "\n")
    print(f"wrote results/kernels/{stem}.json and .md")


if __name__ == "__main__":
    main()
