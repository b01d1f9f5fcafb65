#!/bin/sh
# `hypercomp bench`: the JSON report has every documented key with sane values, and the command
# line errors give exit code 2.  usage: bench.sh HYPERCOMP
set -eu
hc=$1
fails=0
check() {  # check DESCRIPTION EXPECTED_EXIT -- ARGS...
    desc=$1 want=$2
    shift 3
    set +e
    out=$("$hc" bench "$@" 2>/dev/null)
    got=$?
    set -e
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $desc: exit $got, expected $want" >&2
        fails=$((fails + 1))
    fi
}

out=$("$hc" bench --codec fp16 --rows 48 --cols 80 --repeat 3 --threads 2 --dist laplace --json)
for key in codec rows cols dist threads bpw rel_rmse compress_s decode_gbps matvec_ms sgemv_ms \
    matvec_speedup matvec_rel_err; do
    case $out in
    *"\"$key\":"*) ;;
    *) echo "FAIL: key '$key' missing from: $out" >&2; fails=$((fails + 1)) ;;
    esac
done
case $out in
*'"codec":"fp16"'*'"rows":48,"cols":80,"dist":"laplace","seed":1,"threads":2'*) ;;
*) echo "FAIL: unexpected header fields in: $out" >&2; fails=$((fails + 1)) ;;
esac
# 48 x 80 fp16 values with a header: 16 bpw plus a little.
bpw=$(echo "$out" | sed 's/.*"bpw":\([0-9.]*\).*/\1/')
case $bpw in
16.[0-9]*) ;;
*) echo "FAIL: fp16 bpw $bpw is not 16.x" >&2; fails=$((fails + 1)) ;;
esac
# The same seed gives the same matrix, hence the same error; another seed another one.
e1=$("$hc" bench --codec fp16 --rows 16 --cols 16 --repeat 1 --json | sed 's/.*"rel_rmse":\([^,]*\).*/\1/')
e2=$("$hc" bench --codec fp16 --rows 16 --cols 16 --repeat 1 --json | sed 's/.*"rel_rmse":\([^,]*\).*/\1/')
e3=$("$hc" bench --codec fp16 --rows 16 --cols 16 --repeat 1 --seed 7 --json | sed 's/.*"rel_rmse":\([^,]*\).*/\1/')
if [ "$e1" != "$e2" ] || [ "$e1" = "$e3" ]; then
    echo "FAIL: seeds: $e1 $e2 (same seed) $e3 (seed 7)" >&2
    fails=$((fails + 1))
fi

check "help" 0 -- --help
check "no codec" 2 -- --rows 4
check "unknown codec" 2 -- --codec nosuchcodec --rows 4 --cols 4
check "bad spec item" 2 -- --codec fp16:nosuchkey=1 --rows 4 --cols 4
check "bad rows" 2 -- --codec fp16 --rows 0
check "bad dist" 2 -- --codec fp16 --dist cauchy
check "unknown option" 2 -- --codec fp16 --frobnicate 1
check "missing value" 2 -- --codec
check "too large" 2 -- --codec fp16 --rows 100000 --cols 100000

if [ "$fails" -ne 0 ]; then
    echo "$fails checks failed" >&2
    exit 1
fi
echo "ok: hypercomp bench JSON keys, determinism and command-line errors"
