//! The library's typed errors. Each message is one line a user can act on.

use cudarc::driver::DriverError;
use cudarc::nvrtc::result::NvrtcError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    // The underlying error is part of the message and deliberately not named `source`: thiserror
    // would also report it as `source()`, and `{:#}` (anyhow's chain) would print it twice.
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: std::io::Error },

    #[error("{path}: malformed config.json: {msg}")]
    BadConfig { path: PathBuf, msg: String },

    #[error("unsupported model: {0}")]
    Unsupported(String),

    /// A bug in llmc, not a property of the model or the input.
    #[error("internal error (a bug in llmc; please report it): {0}")]
    Internal(String),

    #[error("{path}: malformed safetensors file: {msg}")]
    BadSafetensors { path: PathBuf, msg: String },

    #[error("missing tensor `{0}` in the model's weights")]
    MissingTensor(String),

    #[error("tensor `{name}` has {got}, expected {want}")]
    TensorMismatch { name: String, got: String, want: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("{path}: not a valid llmc plan: {msg}")]
    BadPlan { path: PathBuf, msg: String },

    #[error("{path}: plan was written by {found}, this is {expected}; recompile it with `llmc compile`")]
    PlanVersion { path: PathBuf, found: String, expected: String },

    #[error("prompt of {prompt} tokens plus {gen} new tokens exceeds the compiled context of {max} (compile with a larger --max-seq-len)")]
    ContextOverflow { prompt: usize, gen: usize, max: usize },

    #[error("invalid input: {0}")]
    Input(String),

    #[error("interrupted; nothing was written")]
    Interrupted,

    #[error("numerical failure: {0}")]
    Numeric(String),

    #[error("{path}: malformed GGUF file: {reason}")]
    BadGguf { path: PathBuf, reason: GgufError },

    /// A CUDA driver call failed; `reason` is the driver's error.
    #[error("CUDA: {what}: {}", driver_error_text(.reason))]
    Cuda { what: String, reason: DriverError },

    /// NVRTC failed; `reason` is its error, `log` the compiler's output (empty if it wrote none).
    #[error("NVRTC: {what}: {:?}{}", .reason.0, if .log.is_empty() { String::new() } else { format!(":\n{}", .log) })]
    Nvrtc { what: String, reason: NvrtcError, log: String },

    /// Something a GPU command needs is not on this machine: the driver, NVRTC, a new enough GPU.
    #[error("{0}")]
    Unavailable(String),

    /// A plan compiled for another target than the one it is asked to run on.
    #[error("this plan was compiled for {plan} but is run on {runs_on}; recompile it with `llmc compile --target {target}`")]
    WrongTarget { plan: String, runs_on: String, target: String },

    #[error("{what} are not computed by the {backend} backend yet")]
    NotOnBackend { backend: &'static str, what: &'static str },

    #[error("serving on {addr}: {reason}")]
    Serve { addr: String, reason: std::io::Error },

    #[error(
        "out of GPU memory: {} needed for {what}, {} free on the GPU; compile with a smaller --max-seq-len (it sizes the KV cache) or free GPU memory",
        format_bytes(*.needed),
        format_bytes(*.free)
    )]
    OutOfDeviceMemory { what: String, needed: u64, free: u64 },
}

/// The driver's name for an error and, where the driver is loaded (as it is whenever it returned
/// the error), its description. Without the driver, describing the error would abort.
fn driver_error_text(e: &DriverError) -> String {
    // SAFETY: only tries to dlopen libcuda.
    let text = unsafe { cudarc::driver::sys::is_culib_present() }.then(|| e.error_string().ok()).flatten();
    match text {
        Some(text) => format!("{:?} ({})", e.0, text.to_string_lossy()),
        None => format!("{:?}", e.0),
    }
}

/// A byte count for people: GiB from 1 GiB up, MiB below.
pub fn format_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

/// What is wrong with a GGUF file, found while reading it.
#[derive(Debug, Error, PartialEq)]
pub enum GgufError {
    #[error("bad magic {0:02x?} (expected \"GGUF\"); not a GGUF file")]
    BadMagic([u8; 4]),

    #[error("GGUF version {0} is not supported (only 2 and 3)")]
    UnsupportedVersion(u32),

    #[error("big-endian GGUF files are not supported")]
    BigEndian,

    #[error("truncated: {what} needs {need} bytes at offset {offset}, but the file is {len} bytes")]
    Truncated { what: String, offset: usize, need: u64, len: usize },

    #[error("{what} count {count} is absurd for a file of {len} bytes")]
    AbsurdCount { what: &'static str, count: u64, len: usize },

    #[error("metadata `{key}` has unknown value type id {id}")]
    UnknownValueType { key: String, id: u32 },

    #[error("metadata `{0}` is a nested array, which GGUF readers do not support")]
    NestedArray(String),

    #[error("{what} is not valid UTF-8")]
    NotUtf8 { what: String },

    #[error("duplicate metadata key `{0}`")]
    DuplicateKey(String),

    #[error("duplicate tensor `{0}`")]
    DuplicateTensor(String),

    #[error("`general.alignment` = {0} is not a power of two")]
    BadAlignment(u64),

    #[error("tensor `{name}` has unknown ggml type id {id}")]
    UnknownTensorType { name: String, id: u32 },

    #[error("tensor `{name}` has {n_dims} dimensions (at most 4)")]
    TooManyDims { name: String, n_dims: u32 },

    #[error("tensor `{name}` has dimensions {dims:?} whose size overflows")]
    SizeOverflow { name: String, dims: Vec<u64> },

    #[error("tensor `{name}`: row length {row} is not a multiple of the {ggml_type} block size {block}")]
    PartialBlock { name: String, ggml_type: &'static str, row: u64, block: u64 },

    #[error("tensor `{name}` data offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor { name: String, offset: u64, alignment: u64 },

    #[error("tensor `{name}` data [{start}, {end}) lies past the end of the file ({len} bytes)")]
    TensorPastEnd { name: String, start: u64, end: u64, len: usize },

    #[error("missing metadata `{0}`")]
    MissingKey(String),

    #[error("metadata `{key}` is {got}, expected {want}")]
    WrongKeyType { key: String, got: &'static str, want: &'static str },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, reason: std::io::Error) -> Self {
        Error::Io { path: path.into(), reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_and_compiler_errors_are_kept_and_named() {
        use cudarc::driver::sys::CUresult;
        use cudarc::nvrtc::sys::nvrtcResult;
        let e = Error::Cuda { what: "launching attention for layers.0.attn".into(), reason: DriverError(CUresult::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES) };
        assert!(e.to_string().starts_with("CUDA: launching attention for layers.0.attn: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"), "{e}");
        assert!(matches!(e, Error::Cuda { reason: DriverError(CUresult::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES), .. }));
        let e = Error::Nvrtc {
            what: "compiling the kernels for sm_90".into(),
            reason: NvrtcError(nvrtcResult::NVRTC_ERROR_COMPILATION),
            log: "gemv.cu(3): error".into(),
        };
        assert_eq!(e.to_string(), "NVRTC: compiling the kernels for sm_90: NVRTC_ERROR_COMPILATION:\ngemv.cu(3): error");
    }

    #[test]
    fn out_of_device_memory_names_the_sizes() {
        let e = Error::OutOfDeviceMemory { what: "this plan".into(), needed: 3 << 29, free: 100 << 20 };
        assert_eq!(
            e.to_string(),
            "out of GPU memory: 1.50 GiB needed for this plan, 100.0 MiB free on the GPU; compile with a smaller --max-seq-len (it sizes the KV cache) or free GPU memory"
        );
    }
}
