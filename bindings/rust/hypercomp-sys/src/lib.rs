//! Raw bindings of libhypercomp's C API, generated at build time by bindgen from the installed
//! headers (every `hc_*` function, type and `HC_*` constant). The safe layer is the `hypercomp`
//! crate.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn version_and_status_names_come_from_the_library() {
        unsafe {
            assert_eq!(hc_version(), HC_VERSION_NUMBER);
            let s = CStr::from_ptr(hc_status_name(HC_EFORMAT)).to_str().unwrap();
            assert_eq!(s, "HC_EFORMAT");
        }
    }
}
