//! Turns the final projection and its `.float()` into one LM-head GEMV that writes f32 logits
//! straight from its f32 accumulators, so the [V] bf16 logits never round-trip through memory.
//! What follows is the on-device sampler.

use super::pattern::{nodes_where, sole_producer};
use crate::ir::{DType, Graph, Op, WeightId};

pub fn fuse_lm_head(mut g: Graph) -> Graph {
    for cast in nodes_where(&g, |op| matches!(op, Op::Cast { to: DType::F32 })) {
        let logits = g.inputs(cast)[0];
        let Some(lin) = sole_producer(&g, logits, |op| matches!(op, Op::Linear { bias: false })) else { continue };
        let [x, w] = g.inputs(lin)[..] else { continue };
        if g.node(w.node).op != Op::Weight(WeightId::LmHead) {
            continue;
        }
        let v = g.ty(w).shape[0];
        let out = vec![crate::ir::TensorType::new(DType::F32, &[1, v])];
        let label = g.node(lin).label.clone();
        let fused = g.add(Op::LmHead { norm: None }, &[x, w], out, &label);
        g.replace_uses(cast.into(), fused.into());
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_lm_head"));
    }
}
