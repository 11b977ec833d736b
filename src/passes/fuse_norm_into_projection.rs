//! Folds a hidden-state RMSNorm into the GEMV that consumes it: `rms_norm(x, w)` feeding a
//! `qkv_rope`, `gate_up_silu` or `lm_head` becomes that op with `norm: Some(eps)`, taking the
//! raw x and the norm weight as its last input. The normalized [1,H] row never goes through
//! memory and its kernel disappears; every GEMV block recomputes sum(x^2) over x (a few KB
//! from cache), which costs far less than a launch. The consumer rounds the normalized x to
//! bf16 exactly as the RmsNorm it replaces stored it (see `Op`'s docs), so results are unchanged.

use super::pattern::{nodes_where, sole_producer};
use crate::ir::{Graph, Op, Value};

pub fn fuse_norm_into_projection(mut g: Graph) -> Graph {
    let consumer = |op: &Op| matches!(op, Op::QkvRope { norm: None, .. } | Op::GateUpSilu { norm: None } | Op::LmHead { norm: None });
    for n in nodes_where(&g, consumer) {
        let inputs = g.inputs(n);
        let Some(norm) = sole_producer(&g, inputs[0], |op| matches!(op, Op::RmsNorm { .. })) else { continue };
        let Op::RmsNorm { eps } = g.node(norm).op else { unreachable!() };
        let [x, w] = g.inputs(norm)[..] else { continue };
        // Only one row normalized over the whole hidden size (not per-head norms).
        let hidden = g.ty(x).last_dim();
        if g.ty(x).elements() != hidden || g.ty(w).elements() != hidden {
            continue;
        }
        let op = match g.node(n).op.clone() {
            Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, .. } => Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, norm: Some(eps) },
            Op::GateUpSilu { .. } => Op::GateUpSilu { norm: Some(eps) },
            Op::LmHead { .. } => Op::LmHead { norm: Some(eps) },
            _ => unreachable!(),
        };
        let mut new_inputs = inputs.clone();
        new_inputs[0] = x;
        new_inputs.push(w);
        let node = g.node(n);
        let (outputs, label) = (node.outputs.clone(), node.label.clone());
        let ports = outputs.len();
        let fused = g.add(op, &new_inputs, outputs, &label);
        for port in 0..ports as u8 {
            g.replace_uses(Value { node: n, port }, Value { node: fused, port });
        }
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_norm_into_projection"));
    }
}
