"""The ctypes structs match the C compiler's layout of the headers, field by field."""
import ctypes
import os
import subprocess

import pytest

from hypercomp import _capi


def c_layout():
    exe = os.environ.get("HC_LAYOUT_EXE")
    if not exe:
        pytest.skip("HC_LAYOUT_EXE not set (meson test sets it)")
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    layout = {}
    for line in out.splitlines():
        struct, field, value = line.split()
        layout.setdefault(struct, {})[field] = int(value)
    return layout


def test_every_struct_matches_the_headers():
    layout = c_layout()
    assert set(layout) == set(_capi.STRUCTS)
    for name, cls in _capi.STRUCTS.items():
        c = layout[name]
        assert c.pop("sizeof") == ctypes.sizeof(cls), name
        assert [f[0] for f in cls._fields_] == list(c), name  # same fields in the same order
        for field, off in c.items():
            assert getattr(cls, field).offset == off, f"{name}.{field}"
