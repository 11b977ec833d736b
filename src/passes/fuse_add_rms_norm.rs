//! Fuses the residual add with the RMSNorm that reads its sum: `s = a + b; y = rms_norm(s, w)`
//! becomes one op with outputs `(s, y)`. The sum is written once and never re-read from memory
//! by a second kernel.

use super::pattern::{nodes_where, producer};
use crate::ir::{Graph, Op, Value};

pub fn fuse_add_rms_norm(mut g: Graph) -> Graph {
    for norm in nodes_where(&g, |op| matches!(op, Op::RmsNorm { .. })) {
        let Op::RmsNorm { eps } = g.node(norm).op else { unreachable!() };
        let [s, w] = g.inputs(norm)[..] else { continue };
        let Some(add) = producer(&g, s, |op| matches!(op, Op::Add)) else { continue };
        let [a, b] = g.inputs(add)[..] else { continue };
        let outs = vec![g.ty(s).clone(), g.node(norm).outputs[0].clone()];
        let label = g.node(norm).label.clone();
        let fused = g.add(Op::AddRmsNorm { eps }, &[a, b, w], outs, &label);
        g.replace_uses(s, Value { node: fused, port: 0 });
        g.replace_uses(norm.into(), Value { node: fused, port: 1 });
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_add_rms_norm"));
    }
}
