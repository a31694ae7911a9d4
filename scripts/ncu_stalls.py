#!/usr/bin/env python3
"""Summarises `ncu --page source --csv --print-source sass`: per kernel, the stall reasons summed
over all SASS lines, then the lines with the most stall samples. Used by scripts/gpu-profile.sh.

usage: ncu_stalls.py SASS.csv [TOP]
"""
import csv
import io
import sys


def sections(lines):
    """Yields (title, rows) per kernel: rows are dicts keyed by the CSV header."""
    title, header, rows = "", None, []
    for line in lines:
        if not line.strip():
            continue
        if "Address" in line.split(",")[0]:
            if header is not None:
                yield title, rows
            header = next(csv.reader(io.StringIO(line)))
            rows = []
        elif header is not None and line.startswith('"'):
            rows.append(dict(zip(header, next(csv.reader(io.StringIO(line))))))
        else:
            if header is not None:
                yield title, rows
                header, rows = None, []
            title = line.strip()
    if header is not None:
        yield title, rows


def number(x):
    try:
        return float(x.replace(",", ""))
    except (AttributeError, ValueError):
        return 0.0


def main():
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for title, rows in sections(lines):
        if not rows:
            continue
        keys = list(rows[0].keys())
        samples = next((k for k in keys if "Stall Sampling (All" in k), None)
        executed = next((k for k in keys if k.startswith("Instructions Executed")), None)
        source = next((k for k in keys if k == "Source"), keys[1])
        print(f"#### {title}")
        print("columns:", ", ".join(keys))
        reasons = [k for k in keys if k.startswith("stall_") or "(stall" in k.lower()]
        if samples:
            total = sum(number(r[samples]) for r in rows)
            print(f"stall samples: {total:.0f}, SASS lines: {len(rows)}")
            sums = sorted(((sum(number(r[k]) for r in rows), k) for k in reasons), reverse=True)
            for s, k in sums[:14]:
                if s > 0:
                    print(f"  {k:50s} {s:10.0f} {100 * s / max(total, 1):5.1f}%")
            print(f"top {top} lines by stall samples (samples, executed, address, SASS):")
            for r in sorted(rows, key=lambda r: -number(r[samples]))[:top]:
                top_reasons = sorted(((number(r[k]), k) for k in reasons), reverse=True)[:2]
                why = " ".join(f"{k}={v:.0f}" for v, k in top_reasons if v > 0)
                print(f"  {number(r[samples]):7.0f} {number(r.get(executed, '0')):9.0f} "
                      f"{r.get(keys[0], '')} {r[source][:70]:70s} {why}")
        print()


if __name__ == "__main__":
    main()
