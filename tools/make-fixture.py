#!/usr/bin/env python3
"""Cuts the test fixture tests/data/ppocr-rec-subset.safetensors out of the full PaddleOCR v4
recognizer: the chosen tensors' bytes are copied unchanged, the source metadata is kept.

usage: tools/make-fixture.py SOURCE.safetensors DEST.safetensors
Only the Python standard library is needed: the format is an 8-byte little-endian header length,
a JSON header and the raw data section.
"""
import json
import struct
import sys

# About 1.16 MB: the worst-outlier 1x1 convolution (kurtosis ~1460) and a smaller one with
# outliers of exactly 4096 values (the default --min-size), a depthwise 5x5, a stem 3x3, two
# attention linears, and the small norms and biases that evaluations skip.
TENSORS = [
    "conv2d_180.w_0",       # [480, 480, 1, 1] pointwise conv, heavy outliers
    "conv2d_180.b_0",       # [480] its bias
    "conv2d_162.w_0",       # [64, 64, 1, 1] pointwise conv, 4096 values
    "conv2d_181.w_0",       # [480, 1, 5, 5] depthwise conv
    "conv2d_10.w_0",        # [16, 3, 3, 3] stem conv, 432 values
    "linear_78.w_0",        # [120, 120] attention projection
    "linear_79.w_0",        # [120, 240] MLP
    "linear_79.b_0",        # [240]
    "layer_norm_43.w_0",    # [120]
    "layer_norm_43.b_0",    # [120]
    "batch_norm2d_149.w_0", # [120]
    "batch_norm2d_149.b_0", # [120]
]


def main(src, dst):
    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out_header = {}
        if "__metadata__" in header:
            out_header["__metadata__"] = header["__metadata__"]
        chunks = []
        pos = 0
        # keep the source's order of data offsets
        for name in sorted(TENSORS, key=lambda t: header[t]["data_offsets"][0]):
            entry = header[name]
            begin, end = entry["data_offsets"]
            f.seek(base + begin)
            data = f.read(end - begin)
            assert len(data) == end - begin, name
            out_header[name] = {"dtype": entry["dtype"], "shape": entry["shape"],
                                "data_offsets": [pos, pos + len(data)]}
            chunks.append(data)
            pos += len(data)
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
