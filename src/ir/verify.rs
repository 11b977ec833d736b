//! The graph verifier: what every stage from lowering to planning may assume of a graph. It runs
//! on the lowered graph and after every pass in debug and test builds (`passes::optimize`), and
//! on the fused graph in every build (`plan::build`). It proves:
//!
//! - the graph is acyclic, and its outputs name values that exist;
//! - every edge reads an output port its producer has;
//! - every input slot of an op is filled exactly once, and the op has the inputs and outputs its
//!   `Op` documentation lists (optional inputs counted from its attributes);
//! - each input and output has the dtype and the shape the op documents. Shapes are compared as
//!   element counts wherever the op reads a flat buffer: once `eliminate_views` has removed a
//!   relabeling, a consumer sees its producer's shape rather than the view's;
//! - an output that aliases an input has that input's type (the type rules above), and an op that
//!   writes a token's K or V rows in place writes into a KV cache, not a weight or a temporary.

use super::graph::{Graph, Operand, Value};
use super::op::Op;
use super::types::{DType, TensorType};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

/// Where a graph breaks an invariant, and which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct Invalid {
    /// The node (`node 7 (linear at layers.0.attn)`) or graph output at fault.
    pub at: String,
    pub reason: String,
}

/// Checks every invariant listed in the module documentation.
pub fn verify(g: &Graph) -> Result<(), Invalid> {
    // First, since alias chains are followed below and must end.
    if let Err(cycle) = petgraph::algo::toposort(&g.g, None) {
        return Err(Invalid { at: describe(g, cycle.node_id()), reason: "lies on a cycle".into() });
    }
    for n in g.g.node_indices() {
        verify_node(g, n).map_err(|reason| Invalid { at: describe(g, n), reason })?;
    }
    for (name, v) in &g.outputs {
        if g.g.node_weight(v.node).is_none_or(|node| v.port as usize >= node.outputs.len()) {
            return Err(Invalid { at: format!("output `{name}`"), reason: format!("names port {} of node {}, which does not exist", v.port, v.node.index()) });
        }
    }
    Ok(())
}

fn describe(g: &Graph, n: NodeIndex) -> String {
    let node = g.node(n);
    format!("node {} ({} at {})", n.index(), node.op.kind(), node.label)
}

fn verify_node(g: &Graph, n: NodeIndex) -> Result<(), String> {
    let node = g.node(n);
    let (arity, outputs) = signature(&node.op);
    let mut slots: Vec<Option<Value>> = vec![None; arity];
    for e in g.g.edges_directed(n, Direction::Incoming) {
        let Operand { port, slot } = *e.weight();
        let produced = g.node(e.source()).outputs.len();
        if port as usize >= produced {
            return Err(format!("input slot {slot} reads port {port} of {}, which has {produced} outputs", describe(g, e.source())));
        }
        match slots.get_mut(slot as usize) {
            None => return Err(format!("input slot {slot} is filled, but `{}` takes {arity} inputs", node.op.kind())),
            Some(Some(_)) => return Err(format!("input slot {slot} is filled twice")),
            Some(empty) => *empty = Some(Value { node: e.source(), port }),
        }
    }
    let inputs: Vec<Value> = match slots.iter().position(Option::is_none) {
        Some(slot) => return Err(format!("input slot {slot} is empty; `{}` takes {arity} inputs", node.op.kind())),
        None => slots.into_iter().flatten().collect(),
    };
    if node.outputs.len() != outputs {
        return Err(format!("{} outputs, `{}` has {outputs}", node.outputs.len(), node.op.kind()));
    }
    let ins: Vec<&TensorType> = inputs.iter().map(|&v| g.ty(v)).collect();
    check_types(&node.op, &ins, &node.outputs)?;
    // The type rules above give every aliasing output its input's bytes; what is left is where
    // the in-place writes land.
    let writes_in_place = matches!(node.op, Op::KvAppend | Op::QkvRope { .. });
    for slot in (0..outputs).filter_map(|port| node.op.alias_of(port)).filter(|_| writes_in_place) {
        let mut v = inputs[slot];
        while let Some(s) = g.node(v.node).op.alias_of(v.port as usize) {
            v = g.inputs(v.node)[s];
        }
        if !matches!(g.node(v.node).op, Op::KvCache { .. }) {
            return Err(format!("writes a token's rows into input {slot}, which is {}, not a KV cache", describe(g, v.node)));
        }
    }
    Ok(())
}

/// The number of inputs and outputs of `op`, as its documentation lists them.
fn signature(op: &Op) -> (usize, usize) {
    let count = |present: bool| usize::from(present);
    match op {
        Op::TokenId | Op::Position | Op::Weight(_) | Op::KvCache { .. } => (0, 1),
        Op::Cast { .. } | Op::View | Op::Reshape | Op::Unsqueeze { .. } | Op::Transpose { .. } | Op::RmsNormCore { .. } | Op::Silu | Op::Sample => (1, 1),
        Op::Embedding | Op::Mul | Op::Add | Op::RmsNorm { .. } => (2, 1),
        Op::Linear { bias } => (2 + count(*bias), 1),
        Op::LinearResidual { bias } => (3 + count(*bias), 1),
        Op::RopeTable => (2, 2),
        Op::ApplyRope | Op::KvAppend => (3, 1),
        Op::Attention { .. } => (4, 1),
        Op::QkvRope { bias, qk_norm, norm, .. } => (6 + count(*bias) + 2 * count(qk_norm.is_some()) + count(norm.is_some()), 3),
        Op::GateUpSilu { norm } | Op::LmHead { norm } => (2 + count(norm.is_some()), 1),
    }
}

fn want(ok: bool, reason: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(reason())
    }
}

fn dtype(t: &TensorType, dtype: DType, what: &str) -> Result<(), String> {
    want(t.dtype == dtype, || format!("{what} is {t}, expected {dtype}"))
}

fn elements(t: &TensorType, n: usize, what: &str) -> Result<(), String> {
    want(t.elements() == n, || format!("{what} is {t}, expected {n} elements"))
}

/// The same dtype and element count: the same flat buffer, whatever its shape says.
fn like(t: &TensorType, of: &TensorType, what: &str) -> Result<(), String> {
    want(t.dtype == of.dtype && t.elements() == of.elements(), || format!("{what} is {t}, expected {} elements of {}", of.elements(), of.dtype))
}

fn scalar_i32(t: &TensorType, what: &str) -> Result<(), String> {
    dtype(t, DType::I32, what)?;
    elements(t, 1, what)
}

/// A [rows, cols] matrix's shape.
fn matrix(t: &TensorType, what: &str) -> Result<(usize, usize), String> {
    match t.shape[..] {
        [rows, cols] => Ok((rows, cols)),
        _ => Err(format!("{what} is {t}, expected a matrix")),
    }
}

/// A KV cache's [positions, kv heads, head_dim] with the op's heads and head_dim.
fn cache(t: &TensorType, kv_heads: usize, head_dim: usize, what: &str) -> Result<(), String> {
    want(matches!(t.shape[..], [_, kv, d] if kv == kv_heads && d == head_dim), || format!("{what} is {t}, expected [positions,{kv_heads},{head_dim}]"))
}

/// Grouped-query attention's heads: whole groups of query heads over an even head_dim (RoPE pairs).
fn heads(n_heads: usize, n_kv_heads: usize, head_dim: usize) -> Result<(), String> {
    want(n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads), || format!("{n_heads} query heads do not group over {n_kv_heads} KV heads"))?;
    want(head_dim > 0 && head_dim.is_multiple_of(2), || format!("head_dim {head_dim} is not a positive even number"))
}

/// A GEMV's x against rows of `k`: one row of x per token (decode).
fn gemv_input(x: &TensorType, k: usize) -> Result<(), String> {
    elements(x, k, "x (one row of the weight's width)")
}

fn check_types(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> Result<(), String> {
    let out = &outs[0];
    match op {
        Op::TokenId | Op::Position => scalar_i32(out, "the output"),
        Op::Weight(_) => Ok(()),
        Op::KvCache { .. } => want(out.shape.len() == 3, || format!("the cache is {out}, expected [positions,kv heads,head_dim]")),
        Op::Embedding => {
            let (_, hidden) = matrix(ins[0], "the table")?;
            scalar_i32(ins[1], "the token id")?;
            dtype(out, DType::F32, "the output")?;
            elements(out, hidden, "the output")
        }
        Op::Cast { to } => {
            dtype(out, *to, "the output")?;
            elements(out, ins[0].elements(), "the output")
        }
        Op::View | Op::Reshape => like(out, ins[0], "the output"),
        Op::Unsqueeze { dim } => {
            like(out, ins[0], "the output")?;
            want(out.shape.len() == ins[0].shape.len() + 1 && out.shape.get(*dim) == Some(&1), || {
                format!("the output is {out}, expected {} with a unit dimension {dim}", ins[0])
            })
        }
        Op::Transpose { a, b } => {
            let mut swapped = ins[0].shape.clone();
            want(*a < swapped.len() && *b < swapped.len(), || format!("transposes dimensions {a} and {b} of {}", ins[0]))?;
            swapped.swap(*a, *b);
            want(out.dtype == ins[0].dtype && out.shape == swapped, || format!("the output is {out}, the transpose of {} is {swapped:?}", ins[0]))?;
            want(ins[0].shape[*a] == 1 || ins[0].shape[*b] == 1, || format!("transposes two non-unit dimensions of {}, which moves data", ins[0]))
        }
        Op::RmsNormCore { .. } => {
            dtype(ins[0], DType::F32, "x")?;
            like(out, ins[0], "the output")
        }
        Op::Mul => {
            want(ins[1].elements() > 0 && ins[0].elements().is_multiple_of(ins[1].elements()), || format!("{} does not broadcast over {}", ins[1], ins[0]))?;
            like(out, ins[0], "the output")
        }
        Op::Add => {
            like(ins[1], ins[0], "b")?;
            like(out, ins[0], "the output")
        }
        Op::Silu => like(out, ins[0], "the output"),
        Op::Linear { bias } | Op::LinearResidual { bias } => {
            let (n, k) = matrix(ins[1], "W")?;
            let rows = ins[0].elements() / k.max(1);
            want(k > 0 && ins[0].elements() == rows * k, || format!("x is {}, not rows of W's width {k}", ins[0]))?;
            if *bias {
                elements(ins[2], n, "the bias")?;
            }
            dtype(out, ins[0].dtype, "the output")?;
            elements(out, rows * n, "the output")?;
            match op {
                Op::LinearResidual { .. } => like(ins[2 + usize::from(*bias)], out, "the residual"),
                _ => Ok(()),
            }
        }
        Op::RopeTable => {
            dtype(ins[0], DType::F32, "inv_freq")?;
            elements(ins[1], 1, "the position")?;
            for (port, t) in outs.iter().enumerate() {
                dtype(t, DType::F32, &format!("output {port}"))?;
                elements(t, 2 * ins[0].elements(), &format!("output {port}"))?;
            }
            Ok(())
        }
        Op::ApplyRope => {
            let d = ins[1].elements();
            like(ins[2], ins[1], "sin")?;
            want(d > 0 && d.is_multiple_of(2) && ins[0].elements().is_multiple_of(d), || format!("x is {}, not heads of cos's {d} elements", ins[0]))?;
            like(out, ins[0], "the output")
        }
        Op::KvAppend => {
            let [_, kv, d] = ins[0].shape[..] else { return Err(format!("the cache is {}, expected [positions,kv heads,head_dim]", ins[0])) };
            elements(ins[1], kv * d, "the new rows")?;
            scalar_i32(ins[2], "the position")?;
            want(out == ins[0], || format!("the output is {out}, the cache {}", ins[0]))
        }
        Op::Attention { n_heads, n_kv_heads, head_dim } => {
            heads(*n_heads, *n_kv_heads, *head_dim)?;
            elements(ins[0], n_heads * head_dim, "q")?;
            cache(ins[1], *n_kv_heads, *head_dim, "the K cache")?;
            cache(ins[2], *n_kv_heads, *head_dim, "the V cache")?;
            scalar_i32(ins[3], "the position")?;
            like(out, ins[0], "the output")
        }
        Op::RmsNorm { .. } => {
            let w = ins[1].elements();
            want(w > 0 && ins[0].elements().is_multiple_of(w), || format!("x is {}, not rows of the weight's {w} elements", ins[0]))?;
            like(out, ins[0], "the output")
        }
        Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, norm } => {
            heads(*n_heads, *n_kv_heads, *head_dim)?;
            let (rows, k) = matrix(ins[1], "W")?;
            want(rows == (n_heads + 2 * n_kv_heads) * head_dim, || {
                format!("W has {rows} rows, q, k and v heads need {}", (n_heads + 2 * n_kv_heads) * head_dim)
            })?;
            gemv_input(ins[0], k)?;
            let mut slot = 2;
            if *bias {
                elements(ins[slot], rows, "the bias")?;
                slot += 1;
            }
            if qk_norm.is_some() {
                elements(ins[slot], *head_dim, "the q norm weight")?;
                elements(ins[slot + 1], *head_dim, "the k norm weight")?;
                slot += 2;
            }
            elements(ins[slot], head_dim / 2, "inv_freq")?;
            scalar_i32(ins[slot + 1], "the position")?;
            cache(ins[slot + 2], *n_kv_heads, *head_dim, "the K cache")?;
            cache(ins[slot + 3], *n_kv_heads, *head_dim, "the V cache")?;
            if norm.is_some() {
                elements(ins[slot + 4], k, "the norm weight")?;
            }
            dtype(out, ins[0].dtype, "q")?;
            elements(out, n_heads * head_dim, "q")?;
            want(outs[1] == *ins[slot + 2] && outs[2] == *ins[slot + 3], || format!("the cache outputs are {} and {}, not the caches' types", outs[1], outs[2]))
        }
        Op::GateUpSilu { norm } => {
            let (rows, k) = matrix(ins[1], "W")?;
            want(rows.is_multiple_of(2), || format!("W has {rows} rows, not gate and up halves"))?;
            gemv_input(ins[0], k)?;
            if norm.is_some() {
                elements(ins[2], k, "the norm weight")?;
            }
            dtype(out, ins[0].dtype, "the output")?;
            elements(out, rows / 2, "the output")
        }
        Op::LmHead { norm } => {
            let (vocab, k) = matrix(ins[1], "W")?;
            gemv_input(ins[0], k)?;
            if norm.is_some() {
                elements(ins[2], k, "the norm weight")?;
            }
            dtype(out, DType::F32, "the logits")?;
            elements(out, vocab, "the logits")
        }
        Op::Sample => {
            dtype(ins[0], DType::F32, "the logits")?;
            scalar_i32(out, "the token")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{KvHalf, WeightId};

    fn t(dtype: DType, shape: &[usize]) -> TensorType {
        TensorType::new(dtype, shape)
    }

    fn f32s(shape: &[usize]) -> TensorType {
        t(DType::F32, shape)
    }

    /// A graph holding the embedding of the step's token, f32[8]; its node 2.
    fn embedded() -> (Graph, Value) {
        let mut g = Graph::default();
        let ids = g.add(Op::TokenId, &[], vec![t(DType::I32, &[1, 1])], "input_ids");
        let table = g.add(Op::Weight(WeightId::Embed), &[], vec![t(DType::BF16, &[32, 8])], "embed");
        let x = g.add(Op::Embedding, &[table.into(), ids.into()], vec![f32s(&[8])], "embed_tokens");
        (g, x.into())
    }

    fn rejects(g: &Graph) -> String {
        verify(g).expect_err("the verifier accepted a bad graph").to_string()
    }

    #[test]
    fn the_tiny_model_verifies_as_lowered_and_after_every_pass() {
        let mut g = crate::lower::lower(&crate::passes::testing::tiny_config(), 16);
        verify(&g).unwrap();
        for pass in crate::passes::PASSES {
            g = (pass.run)(g);
            verify(&g).unwrap_or_else(|e| panic!("after {}: {e}", pass.name));
        }
    }

    #[test]
    fn a_slot_filled_twice() {
        let (mut g, x) = embedded();
        let add = g.add(Op::Add, &[x, x], vec![f32s(&[8])], "add");
        g.g.add_edge(x.node, add, Operand { port: 0, slot: 1 });
        assert_eq!(rejects(&g), "node 3 (add at add): input slot 1 is filled twice");
    }

    #[test]
    fn an_empty_slot() {
        let (mut g, x) = embedded();
        g.add(Op::Add, &[x], vec![f32s(&[8])], "add");
        assert_eq!(rejects(&g), "node 3 (add at add): input slot 1 is empty; `add` takes 2 inputs");
    }

    #[test]
    fn a_slot_the_op_does_not_have() {
        let (mut g, x) = embedded();
        g.add(Op::Silu, &[x, x], vec![f32s(&[8])], "silu");
        assert_eq!(rejects(&g), "node 3 (silu at silu): input slot 1 is filled, but `silu` takes 1 inputs");
    }

    #[test]
    fn an_optional_input_its_attributes_do_not_announce() {
        let (mut g, x) = embedded();
        let w = g.add(Op::Weight(WeightId::LmHead), &[], vec![t(DType::BF16, &[32, 8])], "lm_head");
        let norm = g.add(Op::Weight(WeightId::FinalNorm), &[], vec![t(DType::BF16, &[8])], "final_norm");
        g.add(Op::LmHead { norm: None }, &[x, w.into(), norm.into()], vec![f32s(&[1, 32])], "lm_head");
        assert_eq!(rejects(&g), "node 5 (lm_head at lm_head): input slot 2 is filled, but `lm_head` takes 2 inputs");
    }

    #[test]
    fn a_port_the_producer_does_not_have() {
        let (mut g, x) = embedded();
        g.add(Op::Silu, &[Value { node: x.node, port: 1 }], vec![f32s(&[8])], "silu");
        assert_eq!(rejects(&g), "node 3 (silu at silu): input slot 0 reads port 1 of node 2 (embedding at embed_tokens), which has 1 outputs");
    }

    #[test]
    fn a_missing_output() {
        let (mut g, x) = embedded();
        g.add(Op::RopeTable, &[x, x], vec![f32s(&[16])], "rotary_emb");
        assert_eq!(rejects(&g), "node 3 (rope_table at rotary_emb): 1 outputs, `rope_table` has 2");
    }

    #[test]
    fn operands_of_different_sizes() {
        let (mut g, x) = embedded();
        let half = g.add(Op::Weight(WeightId::FinalNorm), &[], vec![f32s(&[4])], "final_norm");
        g.add(Op::Add, &[x, half.into()], vec![f32s(&[8])], "add");
        assert_eq!(rejects(&g), "node 4 (add at add): b is f32[4], expected 8 elements of f32");
    }

    #[test]
    fn a_linear_whose_weight_is_not_as_wide_as_x() {
        let (mut g, x) = embedded();
        let w = g.add(Op::Weight(WeightId::Layer(0, crate::ir::LayerWeight::OProj)), &[], vec![t(DType::BF16, &[8, 3])], "o_proj");
        g.add(Op::Linear { bias: false }, &[x, w.into()], vec![f32s(&[8])], "o_proj");
        assert_eq!(rejects(&g), "node 4 (linear at o_proj): x is f32[8], not rows of W's width 3");
    }

    #[test]
    fn a_cast_to_another_dtype_than_it_says() {
        let (mut g, x) = embedded();
        g.add(Op::Cast { to: DType::BF16 }, &[x], vec![f32s(&[8])], "cast");
        assert_eq!(rejects(&g), "node 3 (cast at cast): the output is f32[8], expected bf16");
    }

    #[test]
    fn a_transpose_that_moves_data() {
        let (mut g, x) = embedded();
        let m = g.add(Op::View, &[x], vec![f32s(&[2, 4])], "view");
        g.add(Op::Transpose { a: 0, b: 1 }, &[m.into()], vec![f32s(&[4, 2])], "transpose");
        assert_eq!(rejects(&g), "node 4 (transpose at transpose): transposes two non-unit dimensions of f32[2,4], which moves data");
    }

    #[test]
    fn attention_whose_query_heads_do_not_group() {
        let (mut g, q) = embedded();
        let pos = g.add(Op::Position, &[], vec![t(DType::I32, &[1, 1])], "position_ids");
        let k = g.add(Op::KvCache { layer: 0, half: KvHalf::K }, &[], vec![f32s(&[16, 3, 2])], "attn");
        let v = g.add(Op::KvCache { layer: 0, half: KvHalf::V }, &[], vec![f32s(&[16, 3, 2])], "attn");
        let op = Op::Attention { n_heads: 4, n_kv_heads: 3, head_dim: 2 };
        g.add(op, &[q, k.into(), v.into(), pos.into()], vec![f32s(&[8])], "attn");
        assert_eq!(rejects(&g), "node 6 (attention at attn): 4 query heads do not group over 3 KV heads");
    }

    #[test]
    fn a_kv_append_into_a_weight() {
        let (mut g, x) = embedded();
        let pos = g.add(Op::Position, &[], vec![t(DType::I32, &[1, 1])], "position_ids");
        let not_a_cache = g.add(Op::Weight(WeightId::RopeInvFreq), &[], vec![f32s(&[16, 2, 4])], "rope_inv_freq");
        g.add(Op::KvAppend, &[not_a_cache.into(), x, pos.into()], vec![f32s(&[16, 2, 4])], "attn");
        assert_eq!(rejects(&g), "node 5 (kv_append at attn): writes a token's rows into input 0, which is node 4 (weight at rope_inv_freq), not a KV cache");
    }

    #[test]
    fn a_cycle() {
        let (mut g, x) = embedded();
        let a = g.add(Op::Add, &[x], vec![f32s(&[8])], "a");
        let b = g.add(Op::Silu, &[a.into()], vec![f32s(&[8])], "b");
        g.g.add_edge(b, a, Operand { port: 0, slot: 1 });
        assert!(rejects(&g).ends_with("lies on a cycle"), "{}", rejects(&g));
    }

    #[test]
    fn an_output_naming_no_value() {
        let (mut g, x) = embedded();
        g.outputs.insert("logits".into(), Value { node: x.node, port: 2 });
        assert_eq!(rejects(&g), "output `logits`: names port 2 of node 2, which does not exist");
    }
}
