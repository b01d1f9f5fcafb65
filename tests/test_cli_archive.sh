#!/bin/sh
# compress / info / decompress / eval on a container, end to end on the real fixture: values
# checked by Python against the original (fp16 rounding for compressed tensors, bit-exact for
# kept ones), the report files, exit codes and messages, and a corrupt container. TAP output.
# usage: test_cli_archive.sh HYPERCOMP PYTHON3 DATA_DIR
set -u
HC=$1
PY=$2
DATA=$3
FIX=$DATA/ppocr-rec-subset.safetensors
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hc-cli-archive-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$TMP/err" 2>/dev/null; }
check() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }

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
    else
        ok "$name"
    fi
}

# 1. compress with a keep pattern, report and JSON; plain progress lines on a non-terminal
"$HC" compress "$FIX" -o "$TMP/m.hcz" --codec fp16 --keep 'linear_*' --report "$TMP/r.html" --json "$TMP/r.json" \
    >"$TMP/out" 2>"$TMP/err"
check $? "compress exits 0"
grep -q "^compress: \[1/12\] " "$TMP/err" && ! grep -q "$(printf '\r')" "$TMP/err"
check $? "progress is one plain line per tensor when stderr is not a terminal"
grep -q "^fp16 " "$TMP/out" && grep -q "^kept " "$TMP/out" && grep -q "^model error: relative RMS" "$TMP/out" &&
    grep -q "^report: $TMP/r.html" "$TMP/out"
check $? "the summary has per-codec lines, the model error and the report path"
! ls -a "$TMP" | grep -q "tmp-"
check $? "no temporary file is left beside the output"

# 2. --quiet prints nothing at all
"$HC" compress "$FIX" -o "$TMP/q.hcz" --quiet >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] && [ ! -s "$TMP/out" ] && [ ! -s "$TMP/err" ] && [ -s "$TMP/q.hcz" ]
check $? "--quiet prints nothing and still writes the file"

# 3. info lists every tensor and verifies the checksums
"$HC" info "$TMP/m.hcz" >"$TMP/out" 2>"$TMP/err"
check $? "info exits 0"
grep -q "^format    hypercomp container 1.0" "$TMP/out" && grep -q "^tensors   12" "$TMP/out" &&
    grep -q "conv2d_180.w_0  *480x480x1x1  *F32   fp16  *230400" "$TMP/out" &&
    grep -q "^checksums 12 of 12 tensors verified$" "$TMP/out" && grep -q "hypercomp.codec = fp16" "$TMP/out"
check $? "info shows the format, the tensors, the metadata and the checksums"

# 4. decompress, then compare with the original in Python
"$HC" decompress "$TMP/m.hcz" -o "$TMP/d.safetensors" --quiet >"$TMP/out" 2>"$TMP/err"
check $? "decompress exits 0"
"$PY" - "$FIX" "$TMP/d.safetensors" "$TMP/r.json" >"$TMP/err" 2>&1 <<'EOF'
import json, struct, sys

def load(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    out = {}
    for k, v in head.items():
        a, b = v["data_offsets"]
        assert v["dtype"] == "F32", v
        out[k] = (v["shape"], struct.unpack("<%df" % ((b - a) // 4), data[a:b]))
    return out, meta

orig, om = load(sys.argv[1])
dec, dm = load(sys.argv[2])
report = json.load(open(sys.argv[3]))
assert dm == om, (dm, om)
assert set(orig) == set(dec)
by_name = {t["name"]: t for t in report["tensors"]}
def f16(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]
for k, (shape, w) in orig.items():
    dshape, d = dec[k]
    assert dshape == shape, (k, dshape, shape)
    t = by_name[k]
    if t["kept"]:
        assert d == w, k                     # bit for bit
    else:
        assert t["codec"] == "fp16", t
        assert all(a == f16(b) for a, b in zip(d, w)), k
kept = [t["name"] for t in report["tensors"] if t["kept"]]
assert all(name.startswith("linear_") or t["values"] < 4096
           for name, t in by_name.items() if t["kept"]), kept
assert any(name.startswith("linear_") and by_name[name]["values"] >= 4096 for name in kept), kept
tot = report["totals"]
assert tot["tensors"] == 12 and tot["values"] == 291328, tot
assert abs(tot["bpw"] - tot["bits"] / tot["values"]) < 1e-9
EOF
check $? "decompressed values are the fp16 roundings (kept tensors bit for bit) and the metadata survives"

# 5. decompress --dtype bf16 writes BF16 tensors
"$HC" decompress "$TMP/m.hcz" -o "$TMP/b.safetensors" --dtype bf16 >"$TMP/out" 2>"$TMP/err" &&
    "$PY" -c "import json,struct,sys;f=open(sys.argv[1],'rb');n=struct.unpack('<Q',f.read(8))[0];h=json.loads(f.read(n));h.pop('__metadata__',None);assert {v['dtype'] for v in h.values()}=={'BF16'}" "$TMP/b.safetensors"
check $? "decompress --dtype bf16 writes BF16"

# 6. eval on the container against its original agrees with eval of the codec itself
"$HC" eval "$TMP/m.hcz" --original "$FIX" --json >"$TMP/e1.json" 2>"$TMP/err" &&
    "$HC" eval "$FIX" --codec fp16 --json >"$TMP/e2.json" 2>>"$TMP/err" &&
    "$PY" - "$TMP/e1.json" "$TMP/e2.json" >>"$TMP/err" 2>&1 <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ta = {t["name"]: t for t in a["tensors"]}
tb = {t["name"]: t for t in b["tensors"]}
for k, t in ta.items():
    if k.startswith("linear_"):
        assert t["rel_rmse"] == 0, t         # kept
    else:
        assert abs(t["rel_rmse"] - tb[k]["rel_rmse"]) <= 1e-12, (k, t, tb[k])
        assert t["bits"] == tb[k]["bits"], k
EOF
check $? "eval of the container against its original matches eval of fp16"

# 7. the report is one self-contained HTML file with SVG plots
grep -q "<svg" "$TMP/r.html" && grep -q "conv2d_180.w_0" "$TMP/r.html" &&
    ! grep -Eq "(src|href)=\"(https?:)?//" "$TMP/r.html" && ! grep -q "@import" "$TMP/r.html"
check $? "the HTML report has inline SVG, names the tensors and loads nothing external"

# 8. bad command lines and bad files
expect_fail "compress without -o" 2 "no output file given" compress "$FIX"
expect_fail "compress with an unknown option" 2 "unknown option '--frobnicate'" compress "$FIX" -o "$TMP/x.hcz" --frobnicate
expect_fail "compress with a bad codec" 2 "--codec 'nope'" compress "$FIX" -o "$TMP/x.hcz" --codec nope
expect_fail "compress with a bad --min-size" 2 "--min-size 'lots'" compress "$FIX" -o "$TMP/x.hcz" --min-size lots
expect_fail "compress --pipeline without a stage" 2 "needs at least one --stage" compress "$FIX" -o "$TMP/x.hcz" --pipeline refine
expect_fail "compress of a missing file names it" 1 "$TMP/absent.safetensors" compress "$TMP/absent.safetensors" -o "$TMP/x.hcz"
expect_fail "compress into a missing directory names it" 1 "$TMP/no/such/dir" compress "$FIX" -o "$TMP/no/such/dir/x.hcz" --quiet
[ ! -e "$TMP/x.hcz" ]
check $? "failed runs leave no output file"
expect_fail "decompress with a bad dtype" 2 "--dtype 'f64' is not f32, f16 or bf16" decompress "$TMP/m.hcz" -o "$TMP/x.st" --dtype f64
expect_fail "info on a safetensors file" 1 "is not a hypercomp container" info "$FIX"
head -c 3000 "$TMP/m.hcz" >"$TMP/cut.hcz"
expect_fail "info on a truncated container says so" 1 "truncated" info "$TMP/cut.hcz"
cp "$TMP/m.hcz" "$TMP/flip.hcz"
printf '\377' | dd of="$TMP/flip.hcz" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_fail "info on a corrupted payload names the tensor" 1 "checksum mismatch" info "$TMP/flip.hcz"
expect_fail "eval of a container without --original" 2 "give the file it was made from with --original" eval "$TMP/m.hcz"
expect_fail "decompress of a corrupted container fails" 1 "checksum mismatch" decompress "$TMP/flip.hcz" -o "$TMP/x.st" -q
[ ! -e "$TMP/x.st" ]
check $? "a failed decompress leaves no output file"

# 9. a container from a newer build (a codec id this build lacks): info lists it and warns,
#    decompress refuses it. Python rewrites the id and every checksum (CRC-32C, doc/format.md).
"$PY" - "$TMP/m.hcz" "$TMP/newer.hcz" >"$TMP/err" 2>&1 <<'EOF'
import struct, sys
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
buf = bytearray(open(sys.argv[1], "rb").read())
dir_off, dir_len = struct.unpack_from("<QQ", buf, 24)
ntens, nmeta = struct.unpack_from("<II", buf, 40)
o = dir_off
for _ in range(nmeta):
    o += struct.unpack_from("<I", buf, o)[0]
for _ in range(ntens):
    codec, dtype, ndim = struct.unpack_from("<HBB", buf, o + 4)
    if codec == 2:   # the first fp16 tensor becomes codec 4000
        plen, = struct.unpack_from("<I", buf, o + 12)
        poff, loff, llen = struct.unpack_from("<QQQ", buf, o + 16)
        shape = bytes(buf[o + 96:o + 96 + 8 * ndim])
        head = b"HCT1" + struct.pack("<HHBBHIQ", 1, 4000, dtype, ndim, 0, plen, llen) + shape
        struct.pack_into("<H", buf, o + 4, 4000)
        crc = crc32c(buf[loff:loff + llen], crc32c(buf[poff:poff + plen], crc32c(head)))
        struct.pack_into("<I", buf, o + 40, crc)
        break
    o += struct.unpack_from("<I", buf, o)[0]
else:
    sys.exit("no fp16 tensor")
struct.pack_into("<I", buf, 52, crc32c(buf[dir_off:dir_off + dir_len]))
struct.pack_into("<I", buf, 60, crc32c(buf[:60]))
open(sys.argv[2], "wb").write(buf)
EOF
check $? "a container with a codec id from the future can be made"
"$HC" info "$TMP/newer.hcz" >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && grep -q "codec#4000" "$TMP/out" && grep -q "uses codec id 4000, which this library does not know" "$TMP/err" &&
    [ "$(grep -c 'codec id 4000' "$TMP/err")" -eq 1 ] &&
    grep -q "^checksums 12 of 12 tensors verified; 1 use a codec this build lacks" "$TMP/out"
check $? "info lists a tensor of an unknown codec, verifies its checksum and warns once"
expect_fail "decompress refuses a codec it cannot decode" 1 "codec id 4000" decompress "$TMP/newer.hcz" -o "$TMP/x.st" -q

for c in compress decompress info; do
    "$HC" $c --help >"$TMP/out" 2>"$TMP/err"
    [ $? -eq 0 ] && grep -q "^usage: hypercomp $c" "$TMP/out" && grep -q "exit codes" "$TMP/out"
    check $? "$c --help prints the usage and the exit codes"
done

echo "1..$n"
[ "$fails" -eq 0 ]
