#!/bin/sh
# `hypercomp eval` end to end on the real fixture: the JSON report checked against an independent
# computation (Python's struct rounds to binary16 to nearest even), the text table, and the exit
# codes and messages of bad command lines and bad files. TAP output.
# usage: test_cli_eval.sh HYPERCOMP PYTHON3 DATA_DIR
set -u
HC=$1
PY=$2
DATA=$3
FIX=$DATA/ppocr-rec-subset.safetensors
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hc-cli-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$TMP/err" 2>/dev/null; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }

# expect_fail NAME CODE NEEDLE ARGS...: the exit code, the message on stderr, nothing on stdout
expect_fail() {
    name=$1 code=$2 needle=$3
    shift 3
    "$HC" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "# exit code $rc, expected $code" >>"$TMP/err"
        not_ok "$name"
    elif ! grep -qF -- "$needle" "$TMP/err"; then
        echo "# stderr lacks: $needle" >>"$TMP/err"
        not_ok "$name"
    elif [ -s "$TMP/out" ]; then
        echo "# stdout is not empty" >>"$TMP/err"
        not_ok "$name"
    else
        ok "$name"
    fi
}

# 1. fp16 JSON, checked against Python on the same file
"$HC" eval "$FIX" --codec fp16 --json >"$TMP/fp16.json" 2>"$TMP/err"
check $? "eval --codec fp16 --json exits 0"
"$PY" - "$FIX" "$TMP/fp16.json" >"$TMP/err" 2>&1 <<'EOF'
import json, math, struct, sys
from array import array

path, report = sys.argv[1], sys.argv[2]
with open(report) as f:
    r = json.load(f)
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    data = f.read()

for key in ("codec", "file", "bpw", "rel_rmse", "snr_db", "seconds", "n_values", "bits", "tensors", "skipped"):
    assert key in r, key
assert r["codec"] == "fp16", r["codec"]
assert r["file"] == path
big = {k: v for k, v in header.items() if k != "__metadata__" and math.prod(v["shape"]) >= 4096}
small = {k for k in header if k != "__metadata__"} - set(big)
# tensors in the order of their data offsets
assert [t["name"] for t in r["tensors"]] == sorted(big, key=lambda k: big[k]["data_offsets"][0])
assert {s["name"] for s in r["skipped"]} == small and len(small) == 7
assert all(s["reason"] == "fewer than 4096 values" for s in r["skipped"])

ref_total = err_total = 0.0
for t in r["tensors"]:
    h = big[t["name"]]
    for key in ("shape", "n_values", "bits", "bpw", "rel_rmse", "snr_db", "max_abs_err", "cosine", "sparsity", "seconds"):
        assert key in t, (t["name"], key)
    assert t["shape"] == h["shape"]
    b, e = h["data_offsets"]
    w = array("f", data[b:e])
    assert t["n_values"] == len(w)
    ref = err = mx = 0.0
    for x in w:
        d = x - struct.unpack("<e", struct.pack("<e", x))[0]
        ref += x * x
        err += d * d
        mx = max(mx, abs(d))
    rel = math.sqrt(err / ref)
    assert abs(t["rel_rmse"] - rel) <= 1e-9 * rel, (t["name"], t["rel_rmse"], rel)
    assert t["max_abs_err"] == mx, (t["name"], t["max_abs_err"], mx)
    assert abs(t["bpw"] - t["bits"] / t["n_values"]) < 1e-12
    # 16 bits per value plus a header of at most a few hundred bits
    assert 16 * len(w) < t["bits"] < 16 * len(w) + 1024, t["bits"]
    assert t["cosine"] > 0.9999999
    ref_total += ref
    err_total += err

assert r["n_values"] == sum(t["n_values"] for t in r["tensors"]) == 289696
assert r["bits"] == sum(t["bits"] for t in r["tensors"])
assert abs(r["bpw"] - r["bits"] / r["n_values"]) < 1e-12
rel = math.sqrt(err_total / ref_total)
assert abs(r["rel_rmse"] - rel) <= 1e-9 * rel, (r["rel_rmse"], rel)
assert abs(r["snr_db"] - 10 * math.log10(ref_total / err_total)) < 1e-6
assert r["seconds"] >= 0
EOF
check $? "fp16 JSON matches an independent computation on the fixture"

# 2. bf16 on every tensor (--min-size 0), with threads: all 12 compressed, error in proportion
"$HC" eval "$FIX" --codec bf16 --min-size 0 --threads 2 --json >"$TMP/bf16.json" 2>"$TMP/err"
check $? "eval --codec bf16 --min-size 0 --threads 2 --json exits 0"
"$PY" - "$TMP/bf16.json" "$TMP/fp16.json" >"$TMP/err" 2>&1 <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
f = json.load(open(sys.argv[2]))
assert b["codec"].startswith("bf16"), b["codec"]
assert len(b["tensors"]) == 12 and b["skipped"] == [], (len(b["tensors"]), b["skipped"])
assert b["n_values"] == 291328
# bf16 keeps 8 mantissa bits to fp16's 11: about 8 times the error on these weights
assert 4 < b["rel_rmse"] / f["rel_rmse"] < 16, (b["rel_rmse"], f["rel_rmse"])
EOF
check $? "bf16 with --min-size 0 compresses all 12 tensors"

# 3. the text table
"$HC" eval "$FIX" --codec fp16 >"$TMP/out" 2>"$TMP/err"
check $? "eval table exits 0"
grep -q "conv2d_180.w_0  *480x480x1x1  *230400  *16\.0" "$TMP/out" && grep -q "^total (5 tensors)  *289696" "$TMP/out" &&
    grep -q "^skipped 7 tensors (1632 values)" "$TMP/out"
check $? "eval table has the tensor rows, the total and the skipped line"

# 4. errors: exit codes and messages
expect_fail "bad spec is a usage error naming the codec" 2 "unknown codec 'nope'" eval "$FIX" --codec nope
expect_fail "bad spec key names the key" 2 "unknown key 'bogus'" eval "$FIX" --codec fp16:bogus=1
expect_fail "missing --codec" 2 "--codec SPEC is required" eval "$FIX"
expect_fail "missing file names it" 1 "cannot open safetensors file '$TMP/absent.safetensors': No such file or directory" \
    eval "$TMP/absent.safetensors" --codec fp16
expect_fail "no FILE" 2 "needs exactly one FILE.safetensors, got 0" eval --codec fp16
expect_fail "unknown option" 2 "unknown option '--frobnicate'" eval "$FIX" --codec fp16 --frobnicate
expect_fail "bad number" 2 "--min-size needs a whole number, not 'many'" eval "$FIX" --codec fp16 --min-size many
printf '\002\000\000\000\000\000\000\000[]' >"$TMP/array.safetensors"
expect_fail "malformed file is a library error naming the file" 1 \
    "safetensors file '$TMP/array.safetensors': the header is a JSON array, not an object" \
    eval "$TMP/array.safetensors" --codec fp16
expect_fail "unknown command" 2 "unknown command 'evaluate'" evaluate "$FIX"

"$HC" eval --help >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && grep -q "^usage: hypercomp eval FILE.safetensors --codec SPEC" "$TMP/out"
check $? "eval --help prints the usage and exits 0"

echo "1..$n"
[ "$fails" -eq 0 ]
