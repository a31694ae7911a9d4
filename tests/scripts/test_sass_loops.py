#!/usr/bin/env python3
"""scripts/sass_loops.py on a committed disassembly: fixture/scale_sum.sass is
`nvdisasm -g -hex -c` of fixture/scale_sum.cu (nvcc 13.0, -gencode arch=compute_90,code=sm_90 -O3
-lineinfo -cubin), paths shortened. Its expected stall counts and waits were read off the
instructions' high words by hand, and agree with what the kernel does: the address product that
the load needs stalls 6 cycles and waits on the constant load of the pointer, the FFMA waits on
the global load."""
import importlib.util
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("sass_loops", HERE.parent.parent / "scripts" / "sass_loops.py")
sass_loops = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sass_loops)


def check(what, got, expected):
    if got != expected:
        sys.exit(f"test_sass_loops: {what}: got {got!r}, expected {expected!r}")


def main():
    check("an independent FFMA's control", sass_loops.control(0x000FE200000000E9), (1, 0))
    check("a load's dependent's control", sass_loops.control(0x004FD80000000002), (12, 0b100))
    code, labels = sass_loops.instructions((HERE / "fixture" / "scale_sum.sass").read_text())
    check("instructions", len(code), 32)
    check("the loop's first instruction", code[13][0], "IMAD.WIDE R2, R11, 0x4, R6")
    check("its source line", code[13][1], ("scale_sum.cu", 3))
    check("loops", list(sass_loops.loops(code, labels)), [(13, 18), (22, 22)])
    body = code[13:19]
    check("the loop's stall counts", [c.stall for _, _, c in body], [6, 1, 4, 1, 12, 5])
    check("its waits", [c.wait for _, _, c in body], [0b10, 0, 0b1, 0, 0b100, 0])
    print("test_sass_loops: passed")


if __name__ == "__main__":
    main()
