//! The intermediate representation: a petgraph dataflow graph of typed ops.

pub mod graph;
pub mod op;
pub mod types;

pub use graph::{Graph, Node, Operand, Value};
pub use op::Op;
pub use types::{DType, KvHalf, LayerWeight, TensorType, WeightId};
