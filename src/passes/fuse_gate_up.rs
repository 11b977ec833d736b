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
    use super::fuse_gate_up;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    const MLP: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = weight embed() -> bf16[32,8]
        %2 = embedding(%1, %0) -> f32[1,1,8]
        %3 = weight layers.0.gate_proj() -> bf16[16,8]
        %4 = weight layers.0.up_proj() -> bf16[16,8]
        %5 = linear(%2, %3) -> f32[1,1,16]
        %6 = linear(%2, %4) -> f32[1,1,16]
        %7 = silu(%5) -> f32[1,1,16]
        %8 = mul(%7, %6) -> f32[1,1,16]
        output mlp = %8
    ";

    #[test]
    fn gate_silu_and_up_become_one_gemv_over_the_stacked_weight() {
        check(
            fuse_gate_up,
            MLP,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = weight layers.0.gate_up_proj() -> bf16[32,8]  # layers.0.gate_up_proj
            %4 = gate_up_silu(%2, %3) -> f32[1,16]
            output mlp = %4
            ",
        );
    }

    /// The stacked weight puts gate rows first; SiLU on the up projection is another function.
    #[test]
    fn not_when_silu_is_on_the_up_projection() {
        check_unchanged(fuse_gate_up, &MLP.replace("%5 = linear(%2, %3)", "%5 = linear(%2, %4)").replace("%6 = linear(%2, %4)", "%6 = linear(%2, %3)"));
    }

    #[test]
    fn not_when_the_gate_projection_is_read_elsewhere() {
        check_unchanged(fuse_gate_up, &format!("{MLP}output gate = %5"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_gate_up"));
    }
}
