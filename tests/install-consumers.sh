#!/bin/sh
# Installs a configured build into a temporary directory and builds the examples against the
# installed tree exactly as a user would: C and C++ through `pkg-config --cflags --libs
# hypercomp`, and C again against the static library with `pkg-config --static`, which proves
# the private requirements (json-c, the BLAS, libm, pthread) are complete.
# usage: tests/install-consumers.sh [BUILDDIR]   (default: build)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cc=${CC:-cc}
cxx=${CXX:-c++}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --quiet >/dev/null
pc=$(find "$dest" -name hypercomp.pc -print | head -n 1)
if [ -z "$pc" ]; then
    echo "FAIL: meson install left no hypercomp.pc under $dest" >&2
    exit 1
fi
# The installed .pc names the configured prefix; relocate it into the staging directory the way
# pkg-config users do (--define-variable), leaving every other line of the file as installed.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
prefix=$(pkg-config --variable=prefix hypercomp)
pkgconf() { pkg-config --define-variable=prefix="$dest$prefix" "$@" hypercomp; }
libdir=$(pkgconf --variable=libdir)
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
echo "installed into $dest; pkg-config --cflags --libs hypercomp: $(pkgconf --cflags --libs)"

for h in "$src"/include/hypercomp/*.h; do
    if [ ! -f "$(pkgconf --variable=includedir)/hypercomp/$(basename "$h")" ]; then
        echo "FAIL: public header $(basename "$h") was not installed" >&2
        exit 1
    fi
done

out=$dest/consumers
mkdir -p "$out"
# shellcheck disable=SC2046  # pkg-config output is a word list on purpose
"$cc" -std=c99 -Wall -Wextra -Werror "$src/examples/hello.c" $(pkgconf --cflags --libs) -o "$out/hello"
# shellcheck disable=SC2046
"$cxx" -std=c++11 -Wall -Wextra -Werror "$src/examples/hello.cc" $(pkgconf --cflags --libs) \
    -o "$out/hello-cc"
"$out/hello" fp16
"$out/hello-cc" bf16
# The same-job examples, C and C++, built the same way: identical serialised bytes.
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror "$src/examples/compress_tensor.c" $(pkgconf --cflags --libs) -lm \
    -o "$out/compress_tensor"
# shellcheck disable=SC2046
"$cxx" -std=c++11 -Wall -Wextra -Werror "$src/examples/compress_tensor.cc" $(pkgconf --cflags --libs) \
    -o "$out/compress_tensor_cc"
"$out/compress_tensor" "$out/c.hct" nf4
"$out/compress_tensor_cc" "$out/cc.hct" nf4
cmp "$out/c.hct" "$out/cc.hct"

if [ -f "$libdir/libhypercomp.a" ]; then
    # shellcheck disable=SC2046
    "$cc" -std=c99 "$src/examples/hello.c" $(pkgconf --cflags) "$libdir/libhypercomp.a" \
        $(pkgconf --static --libs | sed 's/-lhypercomp\b//') -o "$out/hello-static"
    if readelf -d "$out/hello-static" | grep -q 'libhypercomp\.so'; then
        echo "FAIL: the static consumer still needs libhypercomp.so" >&2
        exit 1
    fi
    env -u LD_LIBRARY_PATH "$out/hello-static" fp16
fi
echo "ok: installed libhypercomp builds and runs C, C++ and static consumers through pkg-config"
