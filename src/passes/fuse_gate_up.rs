//! Fuses the MLP's two input projections and its activation: `silu(x @ Wg^T) * (x @ Wu^T)`
//! becomes one GEMV over the concatenated `[gate; up]` weight that applies SiLU and the product
//! in its epilogue. One pass over x, one kernel, and the two [F] intermediates never exist.

use super::pattern::{nodes_where, sole_producer};
use crate::ir::{Graph, LayerWeight, Op, TensorType, WeightId};

pub fn fuse_gate_up(mut g: Graph) -> Graph {
    for mul in nodes_where(&g, |op| matches!(op, Op::Mul)) {
        let [act, up] = g.inputs(mul)[..] else { continue };
        let Some(silu) = sole_producer(&g, act, |op| matches!(op, Op::Silu)) else { continue };
        let gate = g.inputs(silu)[0];
        let is_plain_linear = |op: &Op| matches!(op, Op::Linear { bias: false });
        let (Some(gate_n), Some(up_n)) = (sole_producer(&g, gate, is_plain_linear), sole_producer(&g, up, is_plain_linear)) else {
            continue;
        };
        let [x, wg] = g.inputs(gate_n)[..] else { continue };
        let [x_up, wu] = g.inputs(up_n)[..] else { continue };
        let (Op::Weight(WeightId::Layer(layer, LayerWeight::GateProj)), Op::Weight(WeightId::Layer(_, LayerWeight::UpProj))) =
            (&g.node(wg.node).op, &g.node(wu.node).op)
        else {
            continue;
        };
        if x != x_up {
            continue;
        }
        let (f, h) = (g.ty(wg).shape[0], g.ty(wg).shape[1]);
        let dtype = g.ty(wg).dtype;
        let id = WeightId::Layer(*layer, LayerWeight::GateUpProj);
        let w = g.add(Op::Weight(id), &[], vec![TensorType::new(dtype, &[2 * f, h])], &id.to_string());
        let label = g.node(mul).label.clone();
        let out = vec![TensorType::new(g.ty(x).dtype, &[1, f])];
        let fused = g.add(Op::GateUpSilu { norm: None }, &[x, w.into()], out, &label);
        g.replace_uses(mul.into(), fused.into());
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use crate::passes::testing::snapshot_pass;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_gate_up"));
    }
}
