#!/usr/bin/env python3
"""The figure test: every plot script runs on the committed fixture (tests/plots/fixture), writes
the files it should, and a second run writes the same bytes (no creation date or other
time-varying metadata, so redrawing unchanged results leaves git clean). The PDFs embed TrueType
fonts (pdf.fonttype 42), not Type 3.

Usage: test_figures.py [--python PYTHON]  (default: this Python; it needs matplotlib)
"""
import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLOTS = ROOT / "plots"
FIXTURE = HERE / "fixture"

EXPECTED = [
    "s3/length_generalisation_s3_train2-16.png",
    "s3/length_generalisation_s3_train2-16.pdf",
    "s3/training_curves_s3_train2-16.png",
    "s3/training_curves_s3_train2-16.pdf",
    "s3/ranking_s3_train2-16.png",
    "s3/ranking_s3_train2-16.pdf",
    "s3_prefix/prefix_accuracy_s3_train16-16.png",
    "s3_prefix/prefix_accuracy_s3_train16-16.pdf",
    "kernels/results/kernels/h200.json",
    "kernels/results/kernels/h200.md",
    "kernels/plots/kernels/h200.png",
    "kernels/plots/kernels/h200.pdf",
]


def draw(python, out):
    results = FIXTURE / "results" / "s3"
    commands = [
        [PLOTS / "length_generalisation.py", "--table", results / "table.csv",
         "--out-dir", out / "s3"],
        [PLOTS / "training_curves.py", "--results", results, "--out-dir", out / "s3"],
        [PLOTS / "ranking.py", "--table", results / "table.csv", "--out-dir", out / "s3"],
        # No run of the s3 fixture records prefix curves: it draws nothing there.
        [PLOTS / "prefix_accuracy.py", "--results", results, "--out-dir", out / "s3"],
        [PLOTS / "prefix_accuracy.py", "--results", FIXTURE / "results" / "s3_prefix",
         "--out-dir", out / "s3_prefix"],
        [PLOTS / "kernel_throughput.py", FIXTURE / "h200_statetrack_bench.json",
         "--root", out / "kernels"],
    ]
    for command in commands:
        subprocess.run([python, *map(str, command)], check=True, stdout=subprocess.DEVNULL)


def png_chunks(data):
    """The chunk types of a PNG file, in order."""
    pos, types = 8, []
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        types.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += 12 + length
    return types


def digests(out):
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def paper_ring_failures():
    """A paper number alone at its length sits on the length's column (not on its model's
    side-by-side place, left or right of it); paper numbers of several models there keep their
    models' places."""
    sys.path.insert(0, str(PLOTS))
    import length_generalisation as lg
    shift = lg.dodge_factors(["m2rnn", "mamba2", "gru"])
    failures = []
    alone = lg.paper_x(64, "m2rnn", shift, 1)
    if alone != 64:
        failures.append(f"a lone paper number at 64 is drawn at {alone}")
    shared = [lg.paper_x(64, m, shift, 2) for m in ("m2rnn", "gru")]
    if shared[0] >= 64 or shared[1] <= 64:
        failures.append(f"two paper numbers at 64 are drawn at {shared}, not side by side")
    return failures


def ranking_failures():
    """The ranking length is the first evaluated length at 4x the training range, else the
    longest; of a group of more models than MAX_LINES, the line figures draw the MAX_LINES best by
    token accuracy there."""
    sys.path.insert(0, str(PLOTS))
    import m2b_plotting
    import ranking
    failures = []
    for lengths, longest, want in (([16, 32, 64, 128], 16, 64), ([16, 32, 48], 16, 48),
                                   ([128, 256, 512, 1024], 128, 512)):
        got = ranking.ranking_length(lengths, longest)
        if got != want:
            failures.append(f"ranking length of {lengths} trained to {longest}: {got}, want {want}")
    key = ("s3", 2, 16)
    many = [f"m{i}" for i in range(m2b_plotting.MAX_LINES + 1)]
    rows = [{"metric": "accuracy", "length": length, "model": m, "mean": str(i / 100)}
            for i, m in enumerate(many) for length in (16, 64)]
    models, note, style_of = m2b_plotting.lines_to_draw("test", key, many, rows)
    if models != set(many[1:]) or "the 12 best of 13 rows" not in note or "length 64" not in note:
        failures.append(f"13 models: drawn {sorted(models)} with note {note!r}, want all but m0")
    if len({style_of(m)["color"] for m in models}) != len(models):
        failures.append("the 12 best rows do not each have their own colour")
    models, note, _ = m2b_plotting.lines_to_draw("test", key, many[:-1], rows)
    if models != set(many[:-1]) or note:
        failures.append(f"12 models: drawn {sorted(models)} with note {note!r}, want all")
    models, _, _ = m2b_plotting.lines_to_draw("test", key, many, [])
    if models:
        failures.append(f"13 models and no table: drawn {sorted(models)}, want none")
    # The S3 protocol suite's ten models (a control variant the style table does not list among
    # them) and two more unlisted names: twelve lines, the most a figure draws.
    protocol = ["gated_deltaproduct_neg", "gated_deltaproduct_neg_8heads", "lstm", "gru", "m2rnn",
                "m2rnn_authors_init", "gated_deltanet", "gated_deltanet_neg", "mamba2", "attention",
                "m2rnn_k32_v32", "m2rnn_heads8"]
    _, _, style_of = m2b_plotting.lines_to_draw("test", key, protocol, rows)
    colours = {m: style_of(m)["color"] for m in protocol}
    if len(set(colours.values())) != len(protocol):
        failures.append(f"12 named lines share colours: {colours}")
    if colours["lstm"] != m2b_plotting.known_style("lstm")["color"]:
        failures.append("lstm lost its own colour in a figure with unlisted names")
    # A figure that draws some of the group's models (the others diverged, or have no curve yet)
    # gives each the colour every other figure of the group gives it; the ranking gives each
    # variant the same.
    # Rows named `<variant> key=value` (a grid key beside the model) keep their variant's colour.
    for suffix in ("", " train.lr=1e-3"):
        group = [m + suffix for m in ("m2rnn", "attention", "m2rnn_k32_v32", "m2rnn_heads8",
                                      "zz_variant")]
        _, _, style_of = m2b_plotting.lines_to_draw("test", key, set(group), rows)
        ranking_style = m2b_plotting.figure_styles({m2b_plotting.variant_of(m) for m in group})
        for m in group:
            if style_of(m)["color"] != ranking_style(m2b_plotting.variant_of(m))["color"]:
                failures.append(f"{m}: the line figures and the ranking give it different colours")
        if style_of("attention" + suffix)["color"] != m2b_plotting.known_style("attention")["color"]:
            failures.append(f"attention{suffix} lost its own colour")
    # A variant's several rows are told apart; more unlisted names than colours still draw.
    many = [f"m2rnn lr={i}" for i in range(3)] + [f"v{i:02d}" for i in range(30)]
    style_of = m2b_plotting.figure_styles(many)
    if len({style_of(m)["color"] for m in many[:3]}) != 3:
        failures.append("three rows of one variant share colours")
    return failures


def seed_failures():
    """Per-seed markers come from the runs the table counts: a diverged run, or one whose summary
    the table left out (state invalid), gives none."""
    sys.path.insert(0, str(PLOTS))
    import m2b_plotting
    results = FIXTURE / "results" / "s3"
    runs = m2b_plotting.read_csv(results / "runs.csv")
    full = m2b_plotting.per_seed_values(results, runs, "accuracy")
    for state in ("diverged", "invalid"):
        marked = [dict(r, state=state) if r["id"] == runs[0]["id"] else r for r in runs]
        got = m2b_plotting.per_seed_values(results, marked, "accuracy")
        key = (runs[0]["model"], 16)
        if len(got[key]) != len(full[key]) - 1:
            return [f"a run of state {state} gave a per-seed value: {got[key]} of {full[key]}"]
    return []


def error_failures(python):
    """A missing input or an output folder that cannot be made ends a script with one line naming
    it, not a traceback, and no figure is left half-written."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="m2b-errors-") as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "a_file").write_text("not a folder\n")
        table = FIXTURE / "results" / "s3" / "table.csv"
        for command, want in (
                ([PLOTS / "ranking.py", "--table", tmp / "none.csv", "--out-dir", tmp / "out"],
                 f"ranking.py: {tmp / 'none.csv'}: No such file or directory"),
                ([PLOTS / "training_curves.py", "--results", tmp / "none", "--out-dir",
                  tmp / "out"], f"training_curves.py: {tmp / 'none' / 'runs.csv'}: No such file"),
                ([PLOTS / "length_generalisation.py", "--table", table, "--out-dir",
                  tmp / "a_file" / "out"], "length_generalisation.py: "
                 f"{tmp / 'a_file' / 'out'}: cannot make the figures' folder")):
            run = subprocess.run([python, *map(str, command)], capture_output=True, text=True)
            if run.returncode == 0 or "Traceback" in run.stderr or want not in run.stderr:
                failures.append(f"{command[0].name}: exit {run.returncode}, {run.stderr.strip()}")
        left = [p.name for p in tmp.rglob("*.partial.*")]
        if left:
            failures.append(f"half-written files left: {left}")
    return failures


def anchor_failures(python):
    """With --anchor, speed-ups are over the anchor measured in the same call (the fixture's
    statetrack: 3.0 ms forward+backward), and an anchor of another sequence length is refused."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="m2b-anchor-") as tmp:
        tmp = pathlib.Path(tmp)
        script, bench = PLOTS / "kernel_throughput.py", FIXTURE / "h200_statetrack_bench.json"
        subprocess.run([python, script, bench, "--anchor", FIXTURE / "h200_anchor.json",
                        "--root", tmp], check=True, stdout=subprocess.DEVNULL)
        doc = json.loads((tmp / "results" / "kernels" / "h200.json").read_text())
        if "same NVIDIA H200" not in doc["anchor_source"]:
            failures.append(f"anchor source: {doc['anchor_source']}")
        for r in doc["rows"]:
            if r["pass"] == "fwd_bwd" and abs(r["speedup_vs_anchor"] - 3.0 / r["ms"]) > 1e-9:
                failures.append(f"{r['backend']} speed-up {r['speedup_vs_anchor']} is not over 3.0 ms")
        other = json.loads((FIXTURE / "h200_anchor.json").read_text())
        other["rows"][0]["S"] = 512
        (tmp / "other.json").write_text(json.dumps(other))
        run = subprocess.run([python, script, bench, "--anchor", tmp / "other.json", "--root", tmp],
                             capture_output=True, text=True)
        if run.returncode == 0 or "S=512, the benchmark S=256" not in run.stderr:
            failures.append(f"an anchor of S=512 was not refused: {run.stderr.strip()}")
    return failures


def ablation_failures(python):
    """The ablation table's backward is forward+backward less forward, beside the full kernel's;
    a benchmark that is not a timing-only build, or that ran on another GPU, is refused."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="m2b-ablation-") as tmp:
        tmp = pathlib.Path(tmp)
        script, bench = PLOTS / "backward_ablation.py", FIXTURE / "h200_statetrack_bench.json"
        full = json.loads(bench.read_text())
        median = {b["run_name"].split("/")[4]: b["real_time"] for b in full["benchmarks"]
                  if b.get("aggregate_name") == "median" and "/fused/" in b["run_name"]}
        skip = json.loads(bench.read_text())
        skip["context"]["backward_skip"] = "8"
        for b in skip["benchmarks"]:
            if b["run_name"].startswith("m2rnn/statetrack/fp32/fused/fwd_bwd/"):
                b["real_time"] = median["fwd"] + 0.5  # a backward of 0.5 ms, the forward unchanged
        (tmp / "ablation").mkdir()
        (tmp / "ablation" / "skip8.json").write_text(json.dumps(skip))
        (tmp / "results" / "kernels").mkdir(parents=True)
        subprocess.run([python, script, bench, tmp / "ablation", "--root", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        doc = json.loads((tmp / "results" / "kernels" / "h200_backward_ablation.json").read_text())
        want = median["fwd_bwd"] - median["fwd"]
        if abs(doc["full_backward_ms"]["statetrack/fp32"] - want) > 1e-9:
            failures.append(f"full backward {doc['full_backward_ms']} is not {want}")
        [v] = doc["variants"]
        if v["left_out"] != "reverse" or abs(v["backward_ms"]["statetrack/fp32"] - 0.5) > 1e-6:
            failures.append(f"variant {v}")
        table = (tmp / "results" / "kernels" / "h200_backward_ablation.md").read_text()
        if f"| reverse | 0.500 ({0.5 / want - 1:+.0%}) |" not in table:
            failures.append(f"the reverse row is not in the table:\n{table}")
        # A program stopped while writing its JSON: that variant is left out, the others stay;
        # the full benchmark cut off is refused in one line.
        (tmp / "ablation" / "skip2.json").write_text(json.dumps(skip)[:300])
        run = subprocess.run([python, script, bench, tmp / "ablation", "--root", tmp],
                             capture_output=True, text=True)
        if run.returncode != 0 or "left out" not in run.stderr or "skip2.json" not in run.stderr:
            failures.append(f"a cut-off variant: exit {run.returncode}, {run.stderr.strip()}")
        (tmp / "cut.json").write_text(bench.read_text()[:300])
        run = subprocess.run([python, script, tmp / "cut.json", tmp / "ablation", "--root", tmp],
                             capture_output=True, text=True)
        if (run.returncode == 0 or "Traceback" in run.stderr
                or "not a whole benchmark JSON" not in run.stderr):
            failures.append(f"a cut-off benchmark: exit {run.returncode}, {run.stderr.strip()}")
        (tmp / "ablation" / "skip2.json").unlink()
        for change, message in (("backward_skip", "not a timing-only program"),
                                ("device_name", "compare programs timed in the same call only")):
            other = json.loads(json.dumps(skip))
            if change == "backward_skip":
                del other["context"]["backward_skip"]
            else:
                other["context"]["device_name"] = "NVIDIA H100 80GB HBM3"
            (tmp / "ablation" / "skip8.json").write_text(json.dumps(other))
            run = subprocess.run([python, script, bench, tmp / "ablation", "--root", tmp],
                                 capture_output=True, text=True)
            if run.returncode == 0 or message not in run.stderr:
                failures.append(f"a benchmark with {change} changed was not refused: {run.stderr.strip()}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    failures = (paper_ring_failures() + ranking_failures() + seed_failures()
                + error_failures(args.python) + anchor_failures(args.python)
                + ablation_failures(args.python))
    with tempfile.TemporaryDirectory(prefix="m2b-figures-") as tmp:
        out = pathlib.Path(tmp)
        draw(args.python, out)
        first = digests(out)
        failures += [f"not written: {name}" for name in EXPECTED if name not in first]
        for name in first:
            path = out / name
            if path.suffix == ".pdf":
                data = path.read_bytes()
                if b"/CreationDate" in data:
                    failures.append(f"{name}: has a /CreationDate")
                if b"/Type3" in data:
                    failures.append(f"{name}: has Type 3 fonts (want pdf.fonttype 42)")
                if b"/FontFile2" not in data:
                    failures.append(f"{name}: embeds no TrueType font")
            if path.suffix == ".png" and "tIME" in png_chunks(path.read_bytes()):
                failures.append(f"{name}: has a PNG time chunk")
        draw(args.python, out)  # again, over the first run's files
        second = digests(out)
        failures += [f"second run changed {name}" for name in first
                     if second.get(name) != first[name]]
        failures += [f"second run wrote a new file {name}" for name in second if name not in first]
    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"{len(first)} files written, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
