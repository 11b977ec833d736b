//! llmc: an ahead-of-time compiler and runtime for batch-1 LLM decoding.
//!
//! The modules follow the pipeline: `load` -> `lower` -> `passes` -> `arena` -> `plan` -> `exec`.

pub mod error;
pub mod ir;
pub mod load;
pub mod lower;
pub mod passes;

pub use error::{Error, Result};
