#!/usr/bin/env python3
"""The loops of a compiled CUDA kernel, from its SASS, without a GPU: for each backward branch
(a loop body from its target to the branch) its instruction count, tensor-core (HMMA), tanh/exp
(MUFU) and barrier (BAR) instructions, its stall cycles, its scoreboard waits, and the source
lines most of its instructions come from. A loop that runs once per time step gives that step's
instruction stream, which the dynamic counts of a profile (scripts/gpu-profile.sh) can then be
split by.

Stall cycles: the sum of the stall counts that ptxas encodes in each instruction's control bits,
the cycles its warp waits before it may issue the next one (fixed-latency dependencies and pipe
rates; a profile counts them as "selected" plus "stall_wait"). It is the least time one warp
takes over the body, since results of variable latency (shared memory, MUFU, shuffles) are
waited for on top, at the instructions counted as waits. Where each warp issues far below one
instruction a cycle, as in the fused backward, this sum rather than the instruction count is
what a change has to shorten.

Usage: sass_loops.py OBJECT_OR_CUBIN KERNEL_REGEX [--top N]
  OBJECT_OR_CUBIN  a .o built with -lineinfo (nvcc ... -lineinfo -c x.cu) or a .cubin
  KERNEL_REGEX     matched against the mangled kernel names; the first match is read
Needs cuobjdump and nvdisasm: from the CUDA toolkit, or where it lacks them from the project's
venv, where scripts/setup.sh installs them (in its nvidia/cu13/bin, which is searched too).
"""
import argparse
import collections
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def tool(name):
    found = shutil.which(name) or shutil.which(name, path="/usr/local/cuda/bin")
    if found:
        return found
    for candidate in sorted(ROOT.glob(f".venv/lib/python3*/site-packages/nvidia/cu*/bin/{name}")):
        return str(candidate)
    sys.exit(f"sass_loops: {name} not found: run scripts/setup.sh, which installs it into .venv")


Control = collections.namedtuple("Control", "stall wait")


def control(high_word):
    """The control bits of a Volta-to-Hopper instruction from the high 64 bits of its 128: the
    stall count (bits 105-108 of the instruction) and the mask of scoreboards it waits on (bits
    116-121)."""
    return Control(stall=(high_word >> 41) & 0xF, wait=(high_word >> 52) & 0x3F)


def instructions(sass):
    """[(text, (file, line), Control)] of one kernel's SASS as `nvdisasm -hex` prints it (each
    instruction's low word on its line, the high word on the next), and {label: index of its next
    instruction}."""
    out, labels, where, pending = [], {}, ("?", 0), None
    for line in sass.splitlines():
        if pending is not None:
            high = re.match(r"\s*/\* 0x([0-9a-f]{16}) \*/", line)
            if not high:
                sys.exit(f"sass_loops: no high word after {pending!r}: read with nvdisasm -hex")
            out.append((pending, where, control(int(high.group(1), 16))))
            pending = None
        elif m := re.match(r'\s*//## File "(.*)", line (\d+)', line):
            where = (pathlib.Path(m.group(1)).name, int(m.group(2)))
        elif m := re.match(r"\s*(\.L_x_\d+):", line):
            labels[m.group(1)] = len(out)
        elif m := re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", line):
            pending = m.group(1)
    return out, labels


def loops(code, labels):
    """(first, last) index of each loop body: from a backward branch's target to the branch."""
    for i, (text, _, _) in enumerate(code):
        m = re.search(r"BRA\s.*`\((\.L_x_\d+)\)", text)
        if m and labels.get(m.group(1), i + 1) <= i:
            yield labels[m.group(1)], i


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=pathlib.Path)
    parser.add_argument("kernel")
    parser.add_argument("--top", type=int, default=3, help="source lines listed per loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cubin = args.binary
        if cubin.suffix != ".cubin":
            subprocess.run([tool("cuobjdump"), "-xelf", "all", str(args.binary.resolve())],
                           cwd=tmp, check=True, capture_output=True)
            cubins = sorted(pathlib.Path(tmp).glob("*.cubin"))
            if not cubins:
                sys.exit(f"sass_loops: {args.binary} holds no cubin")
            cubin = cubins[0]
        sass = subprocess.run([tool("nvdisasm"), "-g", "-hex", "-c", str(cubin)], check=True,
                              capture_output=True, text=True).stdout
    kernels = re.split(r"\n(?=\.text\.)", sass)
    chosen = [k for k in kernels if k.startswith(".text.") and re.search(args.kernel, k.split(":")[0])]
    if not chosen:
        sys.exit(f"sass_loops: no kernel matches {args.kernel!r}")
    body = chosen[0].split("\n\t.section", 1)[0]
    print(chosen[0].split(":")[0][len(".text."):])
    code, labels = instructions(body)
    print(f"{len(code)} instructions")
    print("first  last  instructions  HMMA  MUFU  BAR  stall cycles  waits  most from")
    for first, last in loops(code, labels):
        loop = code[first:last + 1]
        count = lambda op: sum(op in t for t, _, _ in loop)
        lines = collections.Counter(w for _, w, _ in loop).most_common(args.top)
        print(f"{first:5d} {last:5d} {len(loop):13d} {count('HMMA'):5d} "
              f"{count('MUFU'):5d} {count('BAR'):4d} {sum(c.stall for _, _, c in loop):13d} "
              f"{sum(c.wait != 0 for _, _, c in loop):6d}  "
              + ", ".join(f"{f}:{n} ({c})" for (f, n), c in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
