//! Safe Rust interface to libhypercomp: build a [`Compressor`] from a spec string, compress an
//! `f32` slice into a [`CTensor`], decode it, multiply by a vector straight from the packed
//! form, read its [`Stats`], serialise and deserialise it. Every failure is an [`Error`]
//! carrying the library's status name and message.
//!
//! ```no_run
//! let w: Vec<f32> = (0..64 * 256).map(|k| (k as f32 * 0.01).sin()).collect();
//! let ct = hypercomp::Compressor::new("nf4")?.compress(&w, &[64, 256], Some("w"))?;
//! println!("{} bits per weight", ct.stats()?.bpw);
//! # Ok::<(), hypercomp::Error>(())
//! ```
use std::ffi::{CStr, CString};
use std::fmt;
use std::mem;
use std::os::raw::c_char;
use std::ptr;

pub use hypercomp_sys as sys;

/// A failed library call: the negative `hc_status`, its name and the library's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The negative status code (`HC_EINVAL`, `HC_EFORMAT`, ...).
    pub status: i32,
    /// `hc_status_name(status)`, such as `"HC_EFORMAT"`.
    pub name: String,
    /// `hc_last_error()` right after the failing call.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for Error {}

/// The result of every fallible call.
pub type Result<T> = std::result::Result<T, Error>;

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn check(rc: i32) -> Result<()> {
    if rc >= 0 {
        return Ok(());
    }
    // hc_last_error is per thread, and nothing ran on this thread since the failing call.
    Err(Error { status: rc, name: cstr(unsafe { sys::hc_status_name(rc) }), message: cstr(unsafe { sys::hc_last_error() }) })
}

fn invalid(message: String) -> Error {
    Error { status: sys::HC_EINVAL, name: cstr(unsafe { sys::hc_status_name(sys::HC_EINVAL) }), message }
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("'{}' contains a NUL byte", s.escape_debug())))
}

/// The library's version string ("major.minor.patch").
pub fn version() -> String {
    cstr(unsafe { sys::hc_version_string() })
}

/// Size and quality of a compressed tensor (`hc_stats`).
pub type Stats = sys::hc_stats;

/// A codec with its options.
pub struct Compressor {
    raw: *mut sys::hc_compressor,
}

// The library allows a compressor to be used from any thread (not from two at once).
unsafe impl Send for Compressor {}

impl Compressor {
    /// Parses a spec string such as `"nf4"` or `"int8:clip=99.9"`.
    pub fn new(spec: &str) -> Result<Self> {
        let spec = c_string(spec)?;
        let mut raw = ptr::null_mut();
        check(unsafe { sys::hc_compressor_from_spec(&mut raw, spec.as_ptr()) })?;
        Ok(Compressor { raw })
    }

    /// The canonical spec, every option spelt out.
    pub fn spec(&self) -> String {
        cstr(unsafe { sys::hc_compressor_spec(self.raw) })
    }

    /// Sets the worker thread count (0 = all CPUs).
    pub fn set_threads(&mut self, threads: u32) -> Result<()> {
        check(unsafe { sys::hc_compressor_set_threads(self.raw, threads) })
    }

    /// Compresses row-major f32 values of the given shape (at most 4 dimensions).
    pub fn compress(&mut self, data: &[f32], shape: &[i64], name: Option<&str>) -> Result<CTensor> {
        if shape.len() > sys::HC_MAX_DIMS as usize {
            return Err(invalid(format!("{} dimensions; at most {}", shape.len(), sys::HC_MAX_DIMS)));
        }
        let numel: i64 = shape.iter().product();
        if numel != data.len() as i64 {
            return Err(invalid(format!("shape {:?} has {} values; the slice has {}", shape, numel, data.len())));
        }
        let name = name.map(c_string).transpose()?;
        let mut view: sys::hc_tensor_view = unsafe { mem::zeroed() };
        check(unsafe { sys::hc_tensor_view_init(&mut view, mem::size_of::<sys::hc_tensor_view>() as u32) })?;
        view.name = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        view.dtype = sys::HC_DTYPE_F32;
        view.ndim = shape.len() as u32;
        view.shape[..shape.len()].copy_from_slice(shape);
        view.data = data.as_ptr().cast();
        let mut raw = ptr::null_mut();
        check(unsafe { sys::hc_compress(&mut raw, self.raw, &view) })?;
        Ok(CTensor { raw })
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        unsafe { sys::hc_compressor_free(self.raw) }
    }
}

/// A compressed tensor, freed on drop.
pub struct CTensor {
    raw: *mut sys::hc_ctensor,
}

unsafe impl Send for CTensor {}

impl CTensor {
    /// Parses a serialised tensor; hostile input gives `HC_EFORMAT`, never a crash.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::hc_ctensor_deserialize(&mut raw, bytes.as_ptr().cast(), bytes.len()) })?;
        Ok(CTensor { raw })
    }

    /// The extents of each dimension.
    pub fn shape(&self) -> Vec<i64> {
        let mut s = [0i64; sys::HC_MAX_DIMS as usize];
        unsafe { sys::hc_ctensor_shape(self.raw, s.as_mut_ptr()) };
        s[..unsafe { sys::hc_ctensor_ndim(self.raw) } as usize].to_vec()
    }

    /// Number of values.
    pub fn numel(&self) -> usize {
        unsafe { sys::hc_ctensor_numel(self.raw) as usize }
    }

    /// The codec's short name ("nf4", ...).
    pub fn codec_name(&self) -> String {
        cstr(unsafe { sys::hc_ctensor_codec_name(self.raw) })
    }

    /// Size and quality recorded at compression.
    pub fn stats(&self) -> Result<Stats> {
        let mut s: Stats = unsafe { mem::zeroed() };
        s.struct_size = mem::size_of::<Stats>() as u32;
        check(unsafe { sys::hc_ctensor_stats(&mut s, self.raw) })?;
        Ok(s)
    }

    /// The decoded values in f32.
    pub fn decode(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.numel()];
        check(unsafe {
            sys::hc_ctensor_decode(self.raw, sys::HC_DTYPE_F32, out.as_mut_ptr().cast(), out.len() * 4)
        })?;
        Ok(out)
    }

    /// y = W' x straight from the packed form; x has one value per column.
    pub fn matvec(&self, x: &[f32]) -> Result<Vec<f32>> {
        let (rows, cols) = unsafe { (sys::hc_ctensor_rows(self.raw), sys::hc_ctensor_cols(self.raw)) };
        if x.len() as i64 != cols {
            return Err(invalid(format!("x has {} values; the tensor has {} columns", x.len(), cols)));
        }
        let mut y = vec![0f32; rows as usize];
        check(unsafe { sys::hc_ctensor_matvec(self.raw, x.as_ptr(), y.as_mut_ptr()) })?;
        Ok(y)
    }

    /// The serialised form: header, params, payload and CRC.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let n = unsafe { sys::hc_ctensor_serialized_size(self.raw) };
        let mut out = vec![0u8; n];
        check(unsafe { sys::hc_ctensor_serialize(self.raw, out.as_mut_ptr().cast(), n) })?;
        Ok(out)
    }
}

impl Drop for CTensor {
    fn drop(&mut self) {
        unsafe { sys::hc_ctensor_free(self.raw) }
    }
}

/// The fixed 64 x 256 tensor of the examples: w[i][j] = sin(0.37 i) cos(0.11 j) in f64, rounded
/// to f32 (the C, Python and Rust examples compute it identically).
pub fn example_tensor() -> Vec<f32> {
    let mut w = Vec::with_capacity(64 * 256);
    for i in 0..64 {
        for j in 0..256 {
            w.push(((i as f64 * 0.37).sin() * (j as f64 * 0.11).cos()) as f32);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stats() {
        let w = example_tensor();
        let ct = Compressor::new("int8").unwrap().compress(&w, &[64, 256], Some("w")).unwrap();
        assert_eq!(ct.shape(), vec![64, 256]);
        assert_eq!(ct.codec_name(), "int8");
        let d = ct.decode().unwrap();
        let (mut num, mut den) = (0f64, 0f64);
        for (a, b) in w.iter().zip(&d) {
            num += ((a - b) as f64).powi(2);
            den += (*a as f64).powi(2);
        }
        let rel = (num / den).sqrt();
        assert!(rel < 0.02, "rel_rmse {}", rel);
        let st = ct.stats().unwrap();
        assert_eq!(st.bits, 8 * ct.serialize().unwrap().len() as u64);
        assert!((st.rel_rmse - rel).abs() < 1e-4);
    }

    #[test]
    fn matvec_matches_the_decoded_product() {
        let w = example_tensor();
        let ct = Compressor::new("nf4").unwrap().compress(&w, &[64, 256], None).unwrap();
        let x: Vec<f32> = (0..256).map(|j| ((j % 7) as f32) - 3.0).collect();
        let y = ct.matvec(&x).unwrap();
        let d = ct.decode().unwrap();
        for i in 0..64 {
            let r: f64 = (0..256).map(|j| d[i * 256 + j] as f64 * x[j] as f64).sum();
            assert!((y[i] as f64 - r).abs() < 1e-3, "row {}: {} vs {}", i, y[i], r);
        }
        let e = ct.matvec(&x[..255]).err().unwrap();
        assert_eq!(e.name, "HC_EINVAL");
    }

    #[test]
    fn serialise_round_trip_and_hostile_bytes() {
        let ct = Compressor::new("nf4").unwrap().compress(&example_tensor(), &[64, 256], None).unwrap();
        let blob = ct.serialize().unwrap();
        assert_eq!(CTensor::deserialize(&blob).unwrap().serialize().unwrap(), blob);
        let e = CTensor::deserialize(&blob[..blob.len() - 3]).err().unwrap();
        assert_eq!(e.status, sys::HC_EFORMAT);
        assert_eq!(e.name, "HC_EFORMAT");
        assert!(e.message.contains("bytes"), "{}", e.message);
        let mut flipped = blob.clone();
        flipped[blob.len() / 2] ^= 0x10;
        assert_eq!(CTensor::deserialize(&flipped).err().unwrap().name, "HC_EFORMAT");
    }

    #[test]
    fn errors_carry_the_status_name_and_message() {
        let e = Compressor::new("nf9").err().unwrap();
        assert_eq!(e.name, "HC_ENOTFOUND");
        assert!(e.message.contains("nf9"), "{}", e.message);
        assert!(e.to_string().starts_with("HC_ENOTFOUND: "));
        let mut c = Compressor::new("nf4").unwrap();
        assert!(c.spec().starts_with("nf4:"));
        let e = c.compress(&[0.0; 10], &[2, 6], None).err().unwrap();
        assert_eq!(e.name, "HC_EINVAL");
        let e = c.compress(&[f32::NAN; 64], &[1, 64], Some("bad")).err().unwrap();
        assert_eq!(e.name, "HC_EINVAL");
        assert!(e.message.contains("bad"), "{}", e.message);
    }
}
