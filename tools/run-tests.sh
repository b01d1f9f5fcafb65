#!/bin/bash
# Every check of libhypercomp on a fresh Debian 12 machine (as root): install what is missing,
# then build and run, each in its own build directory under build-run/:
#   test     the default build and `meson test` (default setup: everything but the slow suite)
#   install  `meson install` into a temporary prefix, then the C and C++ examples built with
#            pkg-config against it (tests/install-consumers.sh)
#   python   the Python bindings' pytest suite and the C/Python same-bytes check, which must be
#            registered (meson passes quietly when no test matches a suite)
#   rust     the Rust bindings: `cargo test` offline against the installed library, and the Rust
#            example's bytes equal to the C and Python ones (tests/rust-bindings.sh)
#   valgrind `meson test --setup valgrind` on the default build, without the suites that take
#            over 40 s each under valgrind (vptq, hyper, kmeans; asan covers them), so that the
#            whole run stays near 10 minutes
#   asan     an ASan+UBSan build and `meson test --setup sanitize`
#   docs     the Doxygen API reference (any warning, e.g. an undocumented symbol, fails it)
#   blis     the -Dblas=blis configuration, built and tested
#   fuzz     the libFuzzer targets built with clang, 20 s each (tests/fuzz/run.sh)
# Every step runs even when an earlier one failed; the last line sums up, and the exit status is
# non-zero when any step failed. Logs: build-run/STEP.log.
#
#   bash tools/run-tests.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tools/deps.sh
. tools/deps.sh

start=$(date +%s)
results=()
failed=0
mkdir -p build-run

# step NAME COMMAND... : runs the command with its output in build-run/NAME.log (and on the
# terminal when it fails), and records the outcome and the time it took.
step() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    echo "== $name: $*"
    "$@" >"build-run/$name.log" 2>&1 </dev/null
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        results+=("$name ok ${dt}s")
        echo "   ok (${dt}s)"
    else
        results+=("$name FAILED ${dt}s")
        failed=$((failed + 1))
        echo "   FAILED (exit $rc, ${dt}s); last lines of build-run/$name.log:"
        tail -n 40 "build-run/$name.log" | sed 's/^/   | /'
    fi
    return $rc
}

# shellcheck disable=SC2086  # word lists
step deps hc_install_deps $HC_DEPS_BUILD $HC_DEPS_TEST

configure_build() {  # configure_build DIR OPTION... : configure (or reconfigure) and build
    local dir=$1
    shift
    hc_setup "$dir" "$@" && ninja -C "$dir"
}

# python_tests DIR : the python and examples-same-bytes tests, failing when either is missing.
python_tests() {
    local list
    list=$(meson test -C "$1" --list --suite python --suite examples 2>/dev/null) || return 1
    for t in 'fast+python / python' 'fast+examples / examples-same-bytes'; do
        if ! grep -qF "$t" <<<"$list"; then
            echo "the test '$t' is not registered (python3-pytest and python3-numpy installed?)"
            return 1
        fi
    done
    meson test -C "$1" --suite python --suite examples --print-errorlogs
}

if step test-build configure_build build-run/test -Ddocs=disabled; then
    step test meson test -C build-run/test --print-errorlogs
    step install bash tests/install-consumers.sh build-run/test
    step python python_tests build-run/test
    step rust bash tests/rust-bindings.sh build-run/test
    step valgrind meson test -C build-run/test --setup valgrind --no-suite vptq --no-suite hyper --no-suite kmeans \
        --print-errorlogs
fi
if step asan-build configure_build build-run/asan -Db_sanitize=address,undefined -Db_lundef=false -Ddocs=disabled; then
    step asan meson test -C build-run/asan --setup sanitize --print-errorlogs
fi
# The docs need no compiled code: configure without tests and build only the docs target.
step docs bash -c 'source tools/deps.sh && hc_setup build-run/docs -Ddocs=enabled -Dtests=false && ninja -C build-run/docs docs'
if step blis-build configure_build build-run/blis -Dblas=blis -Ddocs=disabled; then
    step blis meson test -C build-run/blis --print-errorlogs
fi
# The libFuzzer targets (container reader, safetensors reader, every codec's deserialiser), a
# bounded time each, seeded from the real fixture.
step fuzz bash tests/fuzz/run.sh "${HC_FUZZ_SECONDS:-20}" build-run/fuzz

total=$(($(date +%s) - start))
echo
printf '   %s\n' "${results[@]}"
# Test counts over every `meson test` run; a failed step that ran no test counts as one failure,
# so the closing line never looks better than the exit status.
count() {
    awk -v key="$1" 'index($0, key ":") == 1 { n += $NF } END { print n + 0 }' \
        build-run/test.log build-run/valgrind.log build-run/asan.log build-run/blis.log 2>/dev/null
}
passed=$(count Ok)
failures=$(($(count Fail) + $(count Timeout) + $(count 'Unexpected Pass')))
for r in "${results[@]}"; do
    case $r in
    'test '* | 'valgrind '* | 'asan '* | 'blis '*) ;;
    *FAILED*) failures=$((failures + 1)) ;;
    esac
done
if [ $failed -eq 0 ]; then
    echo "run-tests: PASS: ${#results[@]} steps in ${total}s"
else
    echo "run-tests: FAIL: $failed of ${#results[@]} steps failed in ${total}s (logs in build-run/)"
fi
echo "tests: $passed passed, $failures failed"
[ $failed -eq 0 ]
