"""Shared fixtures; and a session that collected no test fails instead of passing quietly."""
import math
import os

import pytest


def pytest_sessionfinish(session, exitstatus):
    if session.testscollected == 0:
        session.exitstatus = 1


def matrix(rows=64, cols=256):
    """The deterministic tensor the examples compress too: sin(i*0.37) * cos(j*0.11) in double
    (the C library's sin and cos, as the C and Rust examples use), rounded to f32."""
    import numpy as np
    return np.array([[math.sin(i * 0.37) * math.cos(j * 0.11) for j in range(cols)] for i in range(rows)],
                    dtype=np.float32)


def gauss(seed, shape, scale=1.0):
    import numpy as np
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.fixture
def data_dir():
    d = os.environ.get("HC_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "data"))
    assert os.path.isdir(d), d
    return d
