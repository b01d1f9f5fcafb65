#!/bin/sh
# Fails unless the shared library's SONAME is the expected one.  usage: soname.sh READELF LIBRARY SONAME
set -eu
readelf=$1 lib=$2 want=$3
got=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$got" != "$want" ]; then
    echo "FAIL: $lib has SONAME '$got', expected '$want'" >&2
    exit 1
fi
echo "ok: SONAME $got"
