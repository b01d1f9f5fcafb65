"""Without numpy: buffers in, array.array and bytes out, the same bytes as the numpy path."""
import os
import subprocess
import sys

import hypercomp
from conftest import matrix

SCRIPT = r"""
import sys, array, math, hashlib
sys.modules["numpy"] = None          # any import of numpy now fails
import hypercomp
assert hypercomp._np is None
vals = array.array("f", [math.sin(i * 0.37) * math.cos(j * 0.11) for i in range(64) for j in range(256)])
c = hypercomp.Compressor("nf4")
ct = c.compress(vals, shape=(64, 256), name="w")
ro = c.compress(vals.tobytes(), shape=(64, 256), dtype="f32")          # read-only bytes
mv = c.compress(memoryview(vals).cast("B").cast("f", (64, 256)))       # shape from the buffer
assert ro.serialize() == ct.serialize() == mv.serialize()
d = ct.decode()
assert isinstance(d, array.array) and d.typecode == "f" and len(d) == 64 * 256
assert d.tobytes() == ct.decode_bytes()
y = ct.matvec([1.0] * 256)
assert isinstance(y, array.array) and len(y) == 64
ref = [sum(d[i * 256 + j] for j in range(256)) for i in range(64)]
assert max(abs(a - b) for a, b in zip(y, ref)) < 1e-3
back = hypercomp.CTensor.deserialize(ct.serialize())
assert back.decode_bytes() == ct.decode_bytes()
try:
    c.compress(vals, shape=(64, 255))
except hypercomp.InvalidArgument as e:
    assert "needs" in e.message
else:
    raise AssertionError("a wrong shape was accepted")
vals.append(0.0)  # the buffer export was released, so the array can grow again
sys.stdout.write(hashlib.sha256(ct.serialize()).hexdigest())
"""


def test_buffers_without_numpy_give_the_numpy_bytes():
    import hashlib
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=dict(os.environ), timeout=120)
    assert r.returncode == 0, r.stderr
    want = hashlib.sha256(hypercomp.Compressor("nf4").compress(matrix(), name="w").serialize()).hexdigest()
    assert r.stdout == want
