//! Folds each residual add into the projection that produces its delta: `h + linear(x, W)`
//! becomes one `linear_residual` whose epilogue adds `h` to the f32 accumulator before the single
//! bf16 store. The delta never round-trips through memory, the sum is rounded once instead of
//! twice, and the RMSNorm that follows reads one tensor instead of two.

use super::pattern::{nodes_where, sole_producer};
use crate::ir::{Graph, Op};

pub fn fuse_residual(mut g: Graph) -> Graph {
    for add in nodes_where(&g, |op| matches!(op, Op::Add)) {
        let [residual, delta] = g.inputs(add)[..] else { continue };
        let Some(lin) = sole_producer(&g, delta, |op| matches!(op, Op::Linear { .. })) else { continue };
        if g.ty(residual) != g.ty(delta) {
            continue;
        }
        let Op::Linear { bias } = g.node(lin).op else { unreachable!() };
        let mut inputs = g.inputs(lin);
        inputs.push(residual);
        let node = g.node(add).clone();
        let fused = g.add(Op::LinearResidual { bias }, &inputs, node.outputs, &node.label);
        g.replace_uses(add.into(), fused.into());
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_residual"));
    }
}
