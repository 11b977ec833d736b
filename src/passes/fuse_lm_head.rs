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
    use super::fuse_lm_head;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    const HEAD: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = weight embed() -> bf16[32,8]
        %2 = embedding(%1, %0) -> f32[1,1,8]
        %3 = weight lm_head() -> bf16[32,8]
        %4 = linear(%2, %3) -> f32[1,1,32]
        %5 = cast to=f32(%4) -> f32[1,1,32]
        %6 = sample(%5) -> i32[1]
        output logits = %5
        output token = %6
    ";

    #[test]
    fn the_head_and_its_float_cast_become_one_gemv() {
        check(
            fuse_lm_head,
            HEAD,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = weight lm_head() -> bf16[32,8]
            %4 = lm_head(%2, %3) -> f32[1,32]
            %5 = sample(%4) -> i32[1]
            output logits = %4
            output token = %5
            ",
        );
    }

    #[test]
    fn not_for_a_projection_by_another_weight() {
        check_unchanged(fuse_lm_head, &HEAD.replace("weight lm_head()", "weight layers.0.gate_up_proj()"));
    }

    #[test]
    fn not_when_the_uncast_logits_are_read_elsewhere() {
        check_unchanged(fuse_lm_head, &HEAD.replace("output token = %6", "output token = %6\noutput raw = %4"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_lm_head"));
    }
}
