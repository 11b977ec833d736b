//! llmc: an ahead-of-time compiler and runtime for batch-1 LLM decoding.
//!
//! The modules follow the pipeline: `load` -> `lower` -> `passes` -> `arena` -> `plan` ->
//! `exec`; `compile` drives the first five, and `serve` puts `exec` behind HTTP.

// `kernels::define` scans the kernel sources at compile time once per constant it resolves, which
// rustc's step counter takes for a runaway loop.
#![allow(long_running_const_eval)]

pub mod arena;
mod avx2;
pub mod compile;
pub mod error;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod ir;
pub mod kernels;
pub mod load;
pub mod lower;
pub mod passes;
pub mod plan;
pub mod quant;
pub mod serve;
pub mod text;

pub use error::{Error, Result};
