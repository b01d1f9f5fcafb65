//! The Rust example's bytes equal the C example's (examples/compress_tensor.c). HC_C_EXAMPLE
//! names the built C program (tools/run-tests.sh sets it); without it the test fails rather than
//! pass without comparing, unless HC_ALLOW_NO_C_EXAMPLE=1.
use std::process::Command;

#[test]
fn rust_and_c_examples_write_identical_bytes() {
    let c_exe = match std::env::var("HC_C_EXAMPLE") {
        Ok(p) => p,
        Err(_) if std::env::var("HC_ALLOW_NO_C_EXAMPLE").as_deref() == Ok("1") => return,
        Err(_) => panic!("set HC_C_EXAMPLE to the built examples/compress_tensor (or HC_ALLOW_NO_C_EXAMPLE=1)"),
    };
    let dir = std::env::temp_dir().join(format!("hc-same-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for spec in ["nf4", "int8", "fp16"] {
        let c_out = dir.join(format!("c-{}.hct", spec));
        let st = Command::new(&c_exe).arg(&c_out).arg(spec).status().expect("cannot run the C example");
        assert!(st.success(), "the C example failed for {}", spec);
        let c_bytes = std::fs::read(&c_out).unwrap();
        let ct = hypercomp::Compressor::new(spec).unwrap()
            .compress(&hypercomp::example_tensor(), &[64, 256], Some("w")).unwrap();
        let rust_bytes = ct.serialize().unwrap();
        assert_eq!(rust_bytes.len(), c_bytes.len(), "{}", spec);
        assert!(rust_bytes == c_bytes, "{}: the Rust and C serialised bytes differ", spec);
    }
    std::fs::remove_dir_all(&dir).ok();
}
