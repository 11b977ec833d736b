//! The intermediate representation: a petgraph dataflow graph of typed ops.

pub mod graph;
pub mod op;
pub mod text;
pub mod types;
pub mod verify;

pub use graph::{Graph, Node, Operand, Value};
pub use op::{Op, OpClass};
pub use text::ParseError;
pub use types::{DType, KvHalf, LayerWeight, TensorType, WeightId};
pub use verify::{verify, Invalid};
