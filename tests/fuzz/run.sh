#!/bin/sh
# Builds the libFuzzer targets with clang + ASan/UBSan, generates seed corpora from the real
# fixture, and runs each target for a bounded time. Prints executions and findings per target;
# exits 1 if any target found a crash (the input is saved under BUILD/fuzz-artifacts/).
# usage: tests/fuzz/run.sh [SECONDS_PER_TARGET (default 20)] [BUILD_DIR (default build-fuzz)]
# CI can instead configure the same build and run `meson test -C BUILD_DIR --suite fuzz`.
set -eu
SECS=${1:-20}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${2:-$SRC/build-fuzz}
if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" "$SRC" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$B" >"$B/fuzz-build.log" 2>&1 || { cat "$B/fuzz-build.log"; echo "run.sh: build failed" >&2; exit 1; }
C=$B/fuzz-corpus
mkdir -p "$C" "$B/fuzz-artifacts"
"$B/tests/fuzz/make_seeds" "$SRC/tests/data/ppocr-rec-subset.safetensors" "$C/seeds"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in archive ctensor safetensors; do
    mkdir -p "$C/$t"
    log=$B/fuzz-$t.log
    if "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$B/fuzz-artifacts/$t-" "$C/$t" "$C/seeds/$t" >"$log" 2>&1; then
        result="no crash"
    else
        result="FOUND A CRASH: see $log and $B/fuzz-artifacts/"
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "fuzz_$t: ${runs:-?} executions in ${SECS} s, ${cov:-cov: ?}, corpus $(ls "$C/$t" | wc -l) inputs: $result"
done
exit $status
