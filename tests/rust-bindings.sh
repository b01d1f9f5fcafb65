#!/bin/sh
# The Rust bindings against an installed library: `meson install` into a temporary directory,
# then `cargo test` of bindings/rust offline (Debian's packaged crates, see
# bindings/rust/.cargo/config.toml), hypercomp-sys finding the library through pkg-config, and the
# Rust example's bytes compared with the C and Python examples'.
# usage: tests/rust-bindings.sh [BUILDDIR]   (default: build)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
# Debian's cargo (the `cargo` package) when present, even if another toolchain comes first on PATH.
cargo=cargo
[ -x /usr/bin/cargo ] && cargo=/usr/bin/cargo
if [ "$cargo" = /usr/bin/cargo ]; then
    PATH=/usr/bin:$PATH  # so cargo runs the matching /usr/bin/rustc
    export PATH
fi
echo "using $($cargo --version) and $(rustc --version)"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --quiet >/dev/null
pc=$(find "$dest" -name hypercomp.pc -print | head -n 1)
[ -n "$pc" ] || { echo "FAIL: meson install left no hypercomp.pc" >&2; exit 1; }
# The .pc names the configured prefix; the sysroot puts its -I and -L under the staging directory.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$dest
LD_LIBRARY_PATH=$dest$(PKG_CONFIG_SYSROOT_DIR= PKG_CONFIG_PATH=$PKG_CONFIG_PATH pkg-config --variable=libdir hypercomp)
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR LD_LIBRARY_PATH
HC_C_EXAMPLE=$build/examples/compress_tensor
export HC_C_EXAMPLE
CARGO_TARGET_DIR=$build/cargo-target
export CARGO_TARGET_DIR
cd "$src/bindings/rust"
$cargo test --offline
$cargo build --offline --example compress_tensor
HYPERCOMP_LIBRARY=$LD_LIBRARY_PATH/libhypercomp.so.1 PYTHONPATH=$src/bindings/python \
    sh "$src/tests/test_examples_same_bytes.sh" "$build/same-bytes-rust" "$HC_C_EXAMPLE" \
    "python=/usr/bin/python3 $src/examples/compress.py" "rust=$CARGO_TARGET_DIR/debug/examples/compress_tensor"
