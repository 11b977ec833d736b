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
    use super::fold_casts;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    /// transformers' RMSNorm as lowered: up-cast, normalize, cast back to x's dtype, weight.
    const NORM: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = weight embed() -> bf16[32,8]
        %2 = embedding(%1, %0) -> f32[1,1,8]
        %3 = weight final_norm() -> bf16[8]
        %4 = cast to=f32(%2) -> f32[1,1,8]
        %5 = rms_norm_core eps=1e-6(%4) -> f32[1,1,8]
        %6 = cast to=f32(%5) -> f32[1,1,8]
        %7 = mul(%6, %3) -> f32[1,1,8]
        output x = %7
    ";

    #[test]
    fn the_casts_around_a_norm_fold_into_one_rms_norm() {
        check(
            fold_casts,
            NORM,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = weight final_norm() -> bf16[8]
            %4 = rms_norm eps=1e-6(%2, %3) -> f32[1,1,8]
            output x = %4
            ",
        );
    }

    #[test]
    fn not_when_the_normalized_value_is_read_elsewhere() {
        check_unchanged(fold_casts, &format!("{NORM}output normed = %5"));
    }

    #[test]
    fn not_when_the_multiplier_is_an_activation_rather_than_a_weight() {
        check_unchanged(
            fold_casts,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = cast to=f32(%2) -> f32[1,1,8]
            %4 = rms_norm_core eps=1e-6(%3) -> f32[1,1,8]
            %5 = cast to=f32(%4) -> f32[1,1,8]
            %6 = mul(%5, %2) -> f32[1,1,8]
            output x = %6
            ",
        );
    }

    /// The fused op returns x's dtype, so a norm not cast back to it stays as it is.
    #[test]
    fn not_when_the_norm_is_not_cast_back_to_the_input_dtype() {
        check_unchanged(
            fold_casts,
            "
            %0 = weight layers.0.q_norm() -> bf16[8]
            %1 = weight final_norm() -> bf16[8]
            %2 = cast to=f32(%0) -> f32[8]
            %3 = rms_norm_core eps=1e-6(%2) -> f32[8]
            %4 = cast to=f32(%3) -> f32[8]
            %5 = mul(%4, %1) -> f32[8]
            output x = %5
            ",
        );
    }

    #[test]
    fn the_rope_table_reads_the_integer_position() {
        check(
            fold_casts,
            "
            %0 = position() -> i32[1,1]
            %1 = weight rope_inv_freq() -> f32[2]
            %2 = cast to=f32(%0) -> f32[1,1,1]
            %3 = rope_table(%1, %2) -> f32[1,1,4], f32[1,1,4]
            output cos = %3.0
            ",
            "
            %0 = position() -> i32[1,1]
            %1 = weight rope_inv_freq() -> f32[2]
            %2 = rope_table(%1, %0) -> f32[1,1,4], f32[1,1,4]
            output cos = %2.0
            ",
        );
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fold_casts"));
    }
}
