#!/usr/bin/env python3
"""Writes results/<gpu>/bench_train_step.{json,md} from one device call's outputs: Google
Benchmark's JSON of `bench_train_step --benchmark_filter=cuda` and the PyTorch peer's log
(peer_train_step.py prints one JSON list as its last line), both from the same call.

usage: train_step_results.py BENCH_JSON PEER_LOG OUT_DIR --sha SHA --date DATE [--before JSON]

--before names a JSON object {mixer: ms} of the step times the comparison starts from (the
issue's table, measured at an earlier commit), which the table shows beside this call's.
"""
import argparse
import json
import os
import re


def bench_rows(path):
    data = json.load(open(path))
    rows = {}
    for b in data["benchmarks"]:
        m = re.match(r"BM_TrainStep/(\w+)/cuda/(\w+)/(graphs|eager)/(\w+)_median$", b["name"])
        if m and "error_occurred" not in b:
            rows[(m[1], m[2], m[3])] = b["real_time"]
    errors = {b["name"]: b.get("error_message") for b in data["benchmarks"] if b.get("error_occurred")}
    return data["context"], rows, errors


def peer_rows(path):
    last = [line for line in open(path) if line.startswith("[")]
    rows = {}
    for r in json.loads(last[-1]) if last else []:
        mode = "compiled" if r["mode"].startswith("compile") else "eager"
        rows[(r["mixer"], mode)] = r.get("ms", r.get("error"))
    return rows


def fmt(v):
    return f"{v:.2f}" if isinstance(v, (int, float)) else ("" if v is None else "error")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench"), ap.add_argument("peer"), ap.add_argument("out")
    ap.add_argument("--sha", required=True), ap.add_argument("--date", required=True)
    ap.add_argument("--before", default="{}")
    a = ap.parse_args()
    context, ours, errors = bench_rows(a.bench)
    peer = peer_rows(a.peer)
    before = json.loads(a.before)
    mixers = sorted({k[0] for k in ours} | set(before))
    os.makedirs(a.out, exist_ok=True)
    record = {"git_sha": a.sha, "date": a.date, "device": "NVIDIA H200 (device tool, one call)",
              "bench_context": context, "before_ms": before,
              "m2bench_ms": {"/".join(k): v for k, v in sorted(ours.items())},
              "m2bench_errors": errors,
              "pytorch_peer_ms": {"/".join(k): v for k, v in sorted(peer.items())}}
    with open(os.path.join(a.out, "bench_train_step.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    lines = [
        f"# Training step, B64 S256 D256, 2 layers, vocab 16 (one H200, {a.date}, m2bench {a.sha})",
        "",
        "Milliseconds per step, median of 3 repetitions; both sides ran in the same device call.",
        "m2bench: `bench_train_step`, the trainer's own step (batch copy, forward, loss, backward,",
        "clip, AdamW); `graphs` replays it from CUDA graphs, `eager` is `--no-cuda-graphs`.",
        "PyTorch peer: the same model in PyTorch (forward, loss, backward; no optimizer), eager and",
        "`torch.compile(mode=\"reduce-overhead\")`, TF32 allowed. `before`: the issue's numbers",
        "(forward+backward, no optimizer, fp32, measured at fc291a9 in an earlier call).",
        "",
        "| mixer | before fp32 | eager fp32 | graphs fp32 | graphs tf32 | graphs bf16 | PyTorch eager | PyTorch compiled | target (before / 3) | best graphs vs before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in mixers:
        b = before.get(m)
        g = [ours.get((m, p, "graphs")) for p in ("fp32", "tf32", "bf16")]
        best_fp32 = g[0]
        ratio = f"{b / best_fp32:.1f}x" if b and best_fp32 else ""
        lines.append("| " + " | ".join([m, fmt(b), fmt(ours.get((m, "fp32", "eager"))), *map(fmt, g),
                                       fmt(peer.get((m, "eager"))), fmt(peer.get((m, "compiled"))),
                                       fmt(b / 3 if b else None), ratio]) + " |")
    if errors:
        lines += ["", "Cases that reported an error:", ""] + [f"- `{k}`: {v}" for k, v in errors.items()]
    with open(os.path.join(a.out, "bench_train_step.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
