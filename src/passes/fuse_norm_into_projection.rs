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
    use super::fuse_norm_into_projection;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    const NORMED_HEAD: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = weight embed() -> bf16[32,8]
        %2 = embedding(%1, %0) -> f32[1,1,8]
        %3 = weight final_norm() -> bf16[8]
        %4 = rms_norm eps=1e-6(%2, %3) -> f32[1,1,8]
        %5 = weight lm_head() -> bf16[32,8]
        %6 = lm_head(%4, %5) -> f32[1,32]
        output logits = %6
    ";

    #[test]
    fn the_final_norm_folds_into_the_lm_head() {
        check(
            fuse_norm_into_projection,
            NORMED_HEAD,
            "
            %0 = token_id() -> i32[1,1]
            %1 = weight embed() -> bf16[32,8]
            %2 = embedding(%1, %0) -> f32[1,1,8]
            %3 = weight final_norm() -> bf16[8]
            %4 = weight lm_head() -> bf16[32,8]
            %5 = lm_head norm eps=1e-6(%2, %4, %3) -> f32[1,32]
            output logits = %5
            ",
        );
    }

    /// The norm weight goes after v_cache, so the cache slots `alias_of` names stay put.
    #[test]
    fn the_input_norm_folds_into_qkv_rope_as_its_last_input() {
        check(
            fuse_norm_into_projection,
            "
            %0 = token_id() -> i32[1,1]
            %1 = position() -> i32[1,1]
            %2 = weight embed() -> bf16[32,8]
            %3 = embedding(%2, %0) -> f32[1,1,8]
            %4 = weight layers.0.input_norm() -> bf16[8]
            %5 = rms_norm eps=1e-5(%3, %4) -> f32[1,1,8]
            %6 = weight layers.0.qkv_proj() -> bf16[16,8]
            %7 = weight rope_inv_freq() -> f32[2]
            %8 = kv_cache layer=0 K() -> f32[16,1,4]
            %9 = kv_cache layer=0 V() -> f32[16,1,4]
            %10 = qkv_rope heads=2 kv=1 d=4(%5, %6, %7, %1, %8, %9) -> f32[1,8], f32[16,1,4], f32[16,1,4]
            output q = %10.0
            ",
            "
            %0 = token_id() -> i32[1,1]
            %1 = position() -> i32[1,1]
            %2 = weight embed() -> bf16[32,8]
            %3 = embedding(%2, %0) -> f32[1,1,8]
            %4 = weight layers.0.input_norm() -> bf16[8]
            %5 = weight layers.0.qkv_proj() -> bf16[16,8]
            %6 = weight rope_inv_freq() -> f32[2]
            %7 = kv_cache layer=0 K() -> f32[16,1,4]
            %8 = kv_cache layer=0 V() -> f32[16,1,4]
            %9 = qkv_rope heads=2 kv=1 d=4 norm eps=1e-5(%3, %5, %6, %1, %7, %8, %4) -> f32[1,8], f32[16,1,4], f32[16,1,4]
            output q = %9.0
            ",
        );
    }

    /// Each consumer would recompute it; the norm stays one kernel.
    #[test]
    fn not_when_the_normalized_row_is_read_elsewhere() {
        check_unchanged(fuse_norm_into_projection, &format!("{NORMED_HEAD}output normed = %4"));
    }

    /// Per-head norms (Qwen3's q/k norm) normalize rows shorter than x; the GEMVs' folded norm
    /// is over the whole row.
    #[test]
    fn not_for_a_norm_over_rows_shorter_than_x() {
        check_unchanged(fuse_norm_into_projection, &NORMED_HEAD.replace("weight final_norm() -> bf16[8]", "weight final_norm() -> bf16[4]"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_norm_into_projection"));
    }
}
