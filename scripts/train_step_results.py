#!/usr/bin/env python3
"""Writes results/<gpu>/bench_train_step.{json,md} from the console log of one
`scripts/gpu-suites.sh` call with M2B_CHECKS="bench peer": it holds bench_train_step's medians
(one `BM_TrainStep/... real_time_median <ms> ms` line per case) and the PyTorch peer's rows
(one Python dict per line), both measured in that call.

usage: train_step_results.py CONSOLE_LOG OUT_DIR --sha SHA --date DATE [--before JSON]

--before names a JSON object {mixer: ms} of the step times the comparison starts from (the
issue's table, measured at an earlier commit), which the table shows beside this call's.
"""
import argparse
import ast
import json
import os
import re


def console_rows(path):
    ours, peer = {}, {}
    for line in open(path):
        m = re.match(r"BM_TrainStep/(\w+)/cuda/(\w+)/(graphs|eager)/\w+/real_time_median ([\d.]+) ms", line)
        if m:
            ours[(m[1], m[2], m[3])] = float(m[4])
        elif line.startswith("{'mixer'"):
            r = ast.literal_eval(line)
            mode = "compiled" if r["mode"].startswith("compile") else "eager"
            peer[(r["mixer"], mode)] = r.get("ms", "error: " + r.get("error", "")[:120])
    return ours, peer


def fmt(v):
    return f"{v:.2f}" if isinstance(v, (int, float)) else ("" if v is None else "error")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("console"), ap.add_argument("out")
    ap.add_argument("--sha", required=True), ap.add_argument("--date", required=True)
    ap.add_argument("--before", default="{}")
    a = ap.parse_args()
    ours, peer = console_rows(a.console)
    before = json.loads(a.before)
    mixers = sorted({k[0] for k in ours} | set(before))
    os.makedirs(a.out, exist_ok=True)
    record = {"git_sha": a.sha, "date": a.date, "device": "NVIDIA H200 (device tool, one call)",
              "before_ms": before,
              "m2bench_ms": {"/".join(k): v for k, v in sorted(ours.items())},
              "pytorch_peer_ms": {"/".join(k): v for k, v in sorted(peer.items())}}
    with open(os.path.join(a.out, "bench_train_step.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    lines = [
        f"# Training step, B64 S256 D256, 2 layers, vocab 16 (one H200, {a.date}, m2bench {a.sha})",
        "",
        "Milliseconds per step, median of 3 repetitions. m2bench and the PyTorch peer ran in the",
        "same device call. m2bench: `bench_train_step`, the trainer's own step (the batch's copy,",
        "forward, loss, backward, clip, AdamW); `graphs` replays it from CUDA graphs (the",
        "trainer's default), `eager` is `--no-cuda-graphs`. PyTorch peer: the same model in PyTorch",
        "(forward, loss, backward, no optimizer step), TF32 allowed, eager and",
        "`torch.compile(mode=\"reduce-overhead\")`. `before`: the step as the issue measured it",
        "(forward, loss, backward, no optimizer, fp32), at an earlier commit in an earlier call.",
        "",
        "| mixer | before fp32 | eager fp32 | graphs fp32 | graphs tf32 | graphs bf16 "
        "| PyTorch eager | PyTorch compiled | target (before / 3) | fastest graphs step vs before "
        "| vs best PyTorch row |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in mixers:
        b = before.get(m)
        g = {p: ours.get((m, p, "graphs")) for p in ("fp32", "tf32", "bf16")}
        measured = {p: v for p, v in g.items() if v}
        best_p = min(measured, key=measured.get) if measured else None
        speedup = f"{b / measured[best_p]:.2f}x ({best_p})" if b and best_p else ""
        peers = [v for v in (peer.get((m, "eager")), peer.get((m, "compiled"))) if isinstance(v, float)]
        vs_peer = (f"{min(peers) / measured[best_p]:.2f}x faster" if min(peers) >= measured[best_p]
                   else f"{measured[best_p] / min(peers):.2f}x slower") if peers and best_p else ""
        lines.append("| " + " | ".join([m, fmt(b), fmt(ours.get((m, "fp32", "eager"))),
                                       *(fmt(g[p]) for p in ("fp32", "tf32", "bf16")),
                                       fmt(peer.get((m, "eager"))), fmt(peer.get((m, "compiled"))),
                                       fmt(b / 3 if b else None), speedup, vs_peer]) + " |")
    with open(os.path.join(a.out, "bench_train_step.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
