#!/bin/sh
# The examples in every language compress the same tensor to the same bytes (TAP): each program
# is run as `PROGRAM OUT SPEC` and its output compared with the C example's.
# usage: test_examples_same_bytes.sh OUTDIR C-EXAMPLE [LABEL=COMMAND]...
#   e.g. python='/usr/bin/python3 examples/compress.py' (COMMAND is split on spaces)
# HYPERCOMP_LIBRARY and PYTHONPATH for the Python example come from the environment.
out=$1 c_exe=$2
shift 2
mkdir -p "$out" || exit 1
n=0
status=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; status=1; }
for spec in nf4 int8 fp16; do
    rm -f "$out/c-$spec.hct"
    if "$c_exe" "$out/c-$spec.hct" "$spec" >/dev/null && [ -s "$out/c-$spec.hct" ]; then ok "C example writes $spec"; else notok "C example writes $spec"; fi
    for producer in "$@"; do
        label=${producer%%=*}
        cmd=${producer#*=}
        rm -f "$out/$label-$spec.hct"
        # shellcheck disable=SC2086  # the command is a word list
        if $cmd "$out/$label-$spec.hct" "$spec" >/dev/null; then ok "$label example writes $spec"; else notok "$label example writes $spec"; fi
        if cmp "$out/c-$spec.hct" "$out/$label-$spec.hct"; then ok "C and $label give identical $spec bytes"; else notok "C and $label give identical $spec bytes"; fi
    done
done
echo "1..$n"
exit $status
