#!/usr/bin/env python3
"""compress.py: compress a fixed 64 x 256 tensor, w[i][j] = sin(0.37 i) cos(0.11 j), and write its
serialised form: the same job as compress_tensor.c, with byte-identical output.

    HYPERCOMP_LIBRARY=build/lib/libhypercomp.so PYTHONPATH=bindings/python \\
        python3 examples/compress.py out.hct [spec]

The values come from the math module (the C library's sin and cos, in double, rounded to f32), so
the example runs with or without numpy.
"""
import array
import math
import os
import sys

try:
    import hypercomp
except ImportError:  # run from a source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
    import hypercomp

ROWS, COLS = 64, 256


def main(argv):
    if len(argv) < 2:
        print("usage: compress.py OUT [SPEC]", file=sys.stderr)
        return 2
    spec = argv[2] if len(argv) > 2 else "nf4"
    w = array.array("f", (math.sin(i * 0.37) * math.cos(j * 0.11) for i in range(ROWS) for j in range(COLS)))
    try:
        ct = hypercomp.Compressor(spec).compress(w, shape=(ROWS, COLS), name="w")
        blob = ct.serialize()
        stats = ct.stats()
    except hypercomp.Error as e:
        print(f"compress.py: {e}", file=sys.stderr)
        return 1
    with open(argv[1], "wb") as f:
        f.write(blob)
    print(f"{spec}: {len(blob)} bytes, {stats.bpw:.4f} bits per weight, rel_rmse {stats.rel_rmse:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
