//! compress_tensor: compress the fixed 64 x 256 tensor w[i][j] = sin(0.37 i) cos(0.11 j) and write
//! its serialised form, the same job as examples/compress_tensor.c and examples/compress.py, with
//! byte-identical output.
//!
//!     cargo run --example compress_tensor -- out.hct [spec]
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: compress_tensor OUT [SPEC]");
        return ExitCode::from(2);
    }
    let spec = args.get(2).map_or("nf4", String::as_str);
    let run = || -> Result<(usize, hypercomp::Stats), Box<dyn std::error::Error>> {
        let w = hypercomp::example_tensor();
        let ct = hypercomp::Compressor::new(spec)?.compress(&w, &[64, 256], Some("w"))?;
        let blob = ct.serialize()?;
        std::fs::write(&args[1], &blob)?;
        Ok((blob.len(), ct.stats()?))
    };
    match run() {
        Ok((n, st)) => {
            println!("{}: {} bytes, {:.4} bits per weight, rel_rmse {:.6}", spec, n, st.bpw, st.rel_rmse);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compress_tensor: {}", e);
            ExitCode::FAILURE
        }
    }
}
