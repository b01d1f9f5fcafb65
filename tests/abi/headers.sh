#!/bin/sh
# Compiles each public header on its own, twice in a row (include guards), as strict C99 and,
# when a C++ compiler is given, as C++11, with warnings as errors; and checks that every header
# declaring functions gives them C linkage for C++ callers.
# usage: headers.sh 'CC...' 'CXX...|-' INCDIR... -- HEADER...
set -eu
cc=$1 cxx=$2
shift 2
incs=
while [ "$1" != "--" ]; do
    incs="$incs -I$1"
    shift
done
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
for h in "$@"; do
    name=$(basename "$h")
    # C++ callers need C linkage: a header declaring functions must wrap them.
    if grep -q '^HC_API' "$h" && ! { grep -q '^HC_BEGIN_DECLS' "$h" && grep -q '^HC_END_DECLS' "$h"; }; then
        echo "FAIL: $name declares HC_API functions outside HC_BEGIN_DECLS / HC_END_DECLS" >&2
        fails=$((fails + 1))
    fi
    printf '#include <hypercomp/%s>\n#include <hypercomp/%s>\nint hc_header_check_%s;\n' \
        "$name" "$name" "$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)" >"$tmp/t.c"
    # shellcheck disable=SC2086  # $cc and $incs are word lists on purpose
    if ! $cc -std=c99 -pedantic -Werror -Wall -Wextra $incs -fsyntax-only -x c "$tmp/t.c"; then
        echo "FAIL: $name does not compile alone as C99" >&2
        fails=$((fails + 1))
    fi
    checks=$((checks + 1))
    if [ "$cxx" != "-" ]; then
        # shellcheck disable=SC2086
        if ! $cxx -std=c++11 -pedantic -Werror -Wall -Wextra $incs -fsyntax-only -x c++ "$tmp/t.c"; then
            echo "FAIL: $name does not compile alone as C++11" >&2
            fails=$((fails + 1))
        fi
        checks=$((checks + 1))
    fi
done
if [ "$fails" -ne 0 ]; then
    echo "$fails of $checks header checks failed" >&2
    exit 1
fi
echo "ok: $checks header compilations ($# headers)"
