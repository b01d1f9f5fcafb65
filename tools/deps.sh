# Debian 12 packages libhypercomp needs, in one place; sourced by tools/run-main.sh and
# tools/run-tests.sh. hc_install_deps installs only what is missing, with apt-get.

# shellcheck disable=SC2034  # used by the scripts that source this file
# To build the library and the tool, and run the main job.
HC_DEPS_BUILD="gcc g++ meson ninja-build pkgconf libc6-dev libopenblas-dev libjson-c-dev check binutils"
# Additionally, to run every test: valgrind, the Doxygen docs build, the BLIS configuration,
# python3 (its standard library checks the JSON of the CLI tests), clang with its runtime for the
# libFuzzer targets, the Python bindings' tests (pytest, numpy) and the Rust bindings' (Debian's
# cargo and rustc, and the bindgen and pkg-config crates that build offline from
# /usr/share/cargo/registry).
HC_DEPS_TEST="valgrind doxygen libblis-dev python3 clang libclang-rt-14-dev python3-numpy python3-pytest cargo rustc librust-bindgen-dev librust-pkg-config-dev"

# hc_missing_packages PKG... : prints the packages that are not installed.
hc_missing_packages() {
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s ' "$p"
        fi
    done
}

# hc_install_deps PKG... : installs the missing ones (root, or sudo when available).
hc_install_deps() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: not a Debian system; install by hand: $*" >&2
        return 0
    fi
    missing=$(hc_missing_packages "$@")
    if [ -z "$missing" ]; then
        echo "deps: all $# packages present"
        return 0
    fi
    echo "deps: installing $missing"
    sudo=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo -n"
        else
            echo "deps: missing packages ($missing) and not root: run as root or install them" >&2
            return 1
        fi
    fi
    # shellcheck disable=SC2086  # $missing is a word list
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing </dev/null
}

# hc_setup DIR [MESON-OPTION...] : configures DIR, or reconfigures it with the options when it
# already holds a build.
hc_setup() {
    dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}
