//! The library's typed errors. Each message is one line a user can act on.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: malformed config.json: {msg}")]
    BadConfig { path: PathBuf, msg: String },

    #[error("unsupported model: {0}")]
    Unsupported(String),

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

    #[error("numerical failure: {0}")]
    Numeric(String),

    #[error("{0}")]
    Gguf(String),

    #[error("CUDA: {0}")]
    Cuda(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
