//! Folds the dtype casts around RMSNorm into one op that computes in f32 and returns x's dtype:
//! `w * cast_back(norm(cast_f32(x)))` becomes `rms_norm(x, w)`. Eager PyTorch dispatches both
//! casts (materializing them for bf16 activations); the fused op keeps the values in registers. The i32 -> f32
//! cast of the position is folded into the RoPE table, which reads the integer directly.

use super::pattern::{nodes_where, producer, sole_producer};
use crate::ir::{DType, Graph, Op};

pub fn fold_casts(mut g: Graph) -> Graph {
    // Match from the weight multiply back to the input cast.
    for mul in nodes_where(&g, |op| matches!(op, Op::Mul)) {
        let [down, w] = g.inputs(mul)[..] else { continue };
        if producer(&g, w, |op| matches!(op, Op::Weight(_))).is_none() {
            continue;
        }
        let Some(down_n) = sole_producer(&g, down, |op| matches!(op, Op::Cast { .. })) else { continue };
        let normed = g.inputs(down_n)[0];
        let Some(core) = sole_producer(&g, normed, |op| matches!(op, Op::RmsNormCore { .. })) else { continue };
        let Op::RmsNormCore { eps } = g.node(core).op else { unreachable!() };
        let up = g.inputs(core)[0];
        let Some(up_n) = sole_producer(&g, up, |op| matches!(op, Op::Cast { to: DType::F32 })) else { continue };
        let x = g.inputs(up_n)[0];
        // `.to(input_dtype)`: the norm's result has x's dtype, as the fused op's does.
        if g.ty(down).dtype != g.ty(x).dtype {
            continue;
        }
        let label = g.node(mul).label.clone();
        let out = g.node(mul).outputs.clone();
        let fused = g.add(Op::RmsNorm { eps }, &[x, w], out, &label);
        g.replace_uses(mul.into(), fused.into());
    }
    for table in nodes_where(&g, |op| matches!(op, Op::RopeTable)) {
        let [inv, p] = g.inputs(table)[..] else { continue };
        let Some(cast) = sole_producer(&g, p, |op| matches!(op, Op::Cast { to: DType::F32 })) else { continue };
        let pos = g.inputs(cast)[0];
        let node = g.node(table).clone();
        let fused = g.add(Op::RopeTable, &[inv, pos], node.outputs, &node.label);
        for port in 0..2 {
            g.replace_uses(crate::ir::Value { node: table, port }, crate::ir::Value { node: fused, port });
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
        insta::assert_snapshot!(snapshot_pass("fold_casts"));
    }
}
