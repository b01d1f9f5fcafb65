//! Finds libhypercomp through pkg-config (`hypercomp.pc`) and generates the FFI declarations
//! with bindgen from `hypercomp/hypercomp.h` in the include directories pkg-config names.
use std::env;
use std::path::PathBuf;

fn main() {
    let lib = pkg_config::Config::new()
        .atleast_version("0.1.0")
        .probe("hypercomp")
        .expect("libhypercomp not found by pkg-config: install it or set PKG_CONFIG_PATH to the directory of hypercomp.pc");

    let mut builder = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <hypercomp/hypercomp.h>\n")
        .allowlist_function("hc_.*")
        .allowlist_type("hc_.*")
        .allowlist_var("HC_.*")
        .prepend_enum_name(false)
        .size_t_is_usize(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks));
    for dir in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder.generate().expect("bindgen could not parse hypercomp/hypercomp.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("cannot write the generated bindings");
}
