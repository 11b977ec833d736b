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
    use super::fuse_residual;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    const RESIDUAL: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = weight embed() -> bf16[32,8]
        %2 = embedding(%1, %0) -> f32[1,1,8]
        %3 = weight layers.0.o_proj() -> bf16[8,8]
        %4 = weight layers.0.o_bias() -> bf16[8]
        %5 = linear bias(%2, %3, %4) -> f32[1,1,8]
        %6 = add(%2, %5) -> f32[1,1,8]
        output hidden = %6
    ";

    #[test]
    fn the_add_moves_into_the_projection_with_its_bias() {
        check(
            fuse_residual,
            RESIDUAL,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = weight layers.0.o_proj() -> bf16[8,8]
            %4 = weight layers.0.o_bias() -> bf16[8]
            %5 = linear_residual bias(%2, %3, %4, %2) -> f32[1,1,8]
            output hidden = %5
            ",
        );
    }

    #[test]
    fn not_when_the_projection_is_read_elsewhere() {
        check_unchanged(fuse_residual, &format!("{RESIDUAL}output delta = %5"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_residual"));
    }
}
