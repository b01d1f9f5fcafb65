"""How the package finds the library: HYPERCOMP_LIBRARY first, then the soname libhypercomp.so.1."""
import os
import subprocess
import sys

import hypercomp

PROBE = "import hypercomp, sys; sys.stdout.write(hypercomp.version_string())"


def run(env):
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)


def test_soname_is_found_on_the_library_path():
    lib = os.environ["HYPERCOMP_LIBRARY"]
    env = {k: v for k, v in os.environ.items() if k != "HYPERCOMP_LIBRARY"}
    env["LD_LIBRARY_PATH"] = os.path.dirname(os.path.abspath(lib))
    assert os.path.exists(os.path.join(env["LD_LIBRARY_PATH"], "libhypercomp.so.1"))
    r = run(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == hypercomp.version_string()


def test_a_wrong_hypercomp_library_fails_loudly():
    env = dict(os.environ, HYPERCOMP_LIBRARY="/nonexistent/libhypercomp.so")
    r = run(env)
    assert r.returncode != 0
    assert "/nonexistent/libhypercomp.so" in r.stderr
