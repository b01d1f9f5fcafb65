#!/bin/sh
# Fails unless the shared library exports exactly the hc_* functions the public headers declare:
# no stray internal symbol (hci_*, a static helper, a dependency's symbol) and no declared
# function missing from the binary.  usage: exports.sh NM LIBRARY PENDING HEADER...
# PENDING lists declared functions whose implementation has not landed yet (one per line, '#'
# comments); they may be missing, nothing else may.
set -eu
nm=$1 lib=$2 pending=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, minus the version-script node names (absolute symbols like HYPERCOMP_1.0).
"$nm" -D --defined-only "$lib" | awk '!($2 == "A" && $3 ~ /^HYPERCOMP_[0-9.]+$/) { print $3 }' |
    sed 's/@.*//' | sort -u >"$tmp/exported"
if [ ! -s "$tmp/exported" ]; then
    echo "not ok: $lib exports nothing" >&2
    exit 1
fi
grep -v '^hc_' "$tmp/exported" >"$tmp/stray" || true
if [ -s "$tmp/stray" ]; then
    echo "FAIL: $lib exports symbols outside the hc_ prefix:" >&2
    sed 's/^/  /' "$tmp/stray" >&2
    exit 1
fi

# Every function declared with HC_API (declarations may span lines; the name is the identifier
# right before the first '(').
for h in "$@"; do
    grep -v '^[[:space:]]*#' "$h" | tr '\n' ' ' | grep -o 'HC_API[^;(]*(' | sed 's/($//; s/.*[ *]//' || true
done | sort -u >"$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
    echo "FAIL: found no HC_API declarations in: $*" >&2
    exit 1
fi
sed 's/#.*//; s/[[:space:]]//g; /^$/d' "$pending" | sort -u >"$tmp/pending"
comm -23 "$tmp/declared" "$tmp/exported" | comm -23 - "$tmp/pending" >"$tmp/missing"
for f in $(comm -12 "$tmp/pending" "$tmp/exported"); do
    echo "note: $f is exported now; remove it from $pending"
done
if [ -s "$tmp/missing" ]; then
    echo "FAIL: declared in the public headers but not exported by $lib:" >&2
    sed 's/^/  /' "$tmp/missing" >&2
    exit 1
fi
echo "ok: $(wc -l <"$tmp/exported") symbols exported, all hc_*; every one of the $(wc -l <"$tmp/declared") declared functions present except $(comm -23 "$tmp/pending" "$tmp/exported" | wc -l) listed in $pending"
