#!/usr/bin/env python3
"""Where a training step's GPU time goes: sums the kernels (and copies) of Kineto traces that
bench_train_step wrote under M2BENCH_PROFILE_DIR, by name, per trace.

usage: profile_summary.py TRACE.json... [--top N]
Prints, per trace, the GPU busy time per step and the top N kernel names with their share.
"""
import argparse
import collections
import json
import os


def summarize(path, top, steps=2):
    events = json.load(open(path)).get("traceEvents", [])
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    total = sum(e.get("dur", 0) for e in gpu) / steps
    by_name = collections.Counter()
    count = collections.Counter()
    for e in gpu:
        name = e["name"]
        if len(name) > 110:  # the head says which kernel, the tail which functor it runs
            name = name[:45] + " ... " + name[-60:]
        by_name[name] += e.get("dur", 0) / steps
        count[name] += 1
    lines = [f"## {os.path.basename(path)}: {total / 1000:.2f} ms of GPU time per step, "
             f"{len(gpu) // steps} kernels and copies per step"]
    for name, us in by_name.most_common(top):
        lines.append(f"  {us / 1000:7.3f} ms {100 * us / total:5.1f}%  x{count[name] // steps:<4} {name}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    for path in a.traces:
        print(summarize(path, a.top))


if __name__ == "__main__":
    main()
