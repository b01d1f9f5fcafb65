#!/bin/sh
# The examples in every language compress the same tensor to the same bytes (TAP).
# usage: test_examples_same_bytes.sh OUTDIR C-EXAMPLE PYTHON3 COMPRESS.PY [RUST-EXAMPLE]
# HYPERCOMP_LIBRARY and PYTHONPATH come from the environment.
out=$1 c_exe=$2 py=$3 py_script=$4 rust_exe=${5:-}
mkdir -p "$out" || exit 1
n=0
status=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; status=1; }
for spec in nf4 int8 fp16; do
    rm -f "$out/c-$spec.hct" "$out/py-$spec.hct" "$out/rs-$spec.hct"
    if "$c_exe" "$out/c-$spec.hct" "$spec" >/dev/null && [ -s "$out/c-$spec.hct" ]; then ok "C example writes $spec"; else notok "C example writes $spec"; fi
    if "$py" "$py_script" "$out/py-$spec.hct" "$spec" >/dev/null; then ok "Python example writes $spec"; else notok "Python example writes $spec"; fi
    if cmp "$out/c-$spec.hct" "$out/py-$spec.hct"; then ok "C and Python give identical $spec bytes"; else notok "C and Python give identical $spec bytes"; fi
    if [ -n "$rust_exe" ]; then
        if "$rust_exe" "$out/rs-$spec.hct" "$spec" >/dev/null; then ok "Rust example writes $spec"; else notok "Rust example writes $spec"; fi
        if cmp "$out/c-$spec.hct" "$out/rs-$spec.hct"; then ok "C and Rust give identical $spec bytes"; else notok "C and Rust give identical $spec bytes"; fi
    fi
done
echo "1..$n"
exit $status
