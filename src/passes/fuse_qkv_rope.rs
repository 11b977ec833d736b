//! Fuses the attention input side: the q, k and v projections (with their biases), Qwen3's
//! per-head q/k RMSNorm, RoPE (including the cos/sin table and its casts) and the two KV-cache
//! writes become one op over the concatenated `[q; k; v]` weight. One GEMV reads x once, the
//! epilogue normalizes, rotates and stores k/v straight into the cache at `pos`, and q, k, v,
//! cos and sin never exist as separate tensors.

use super::pattern::{nodes_where, producer, sole_producer};
use crate::ir::{DType, Graph, LayerWeight, Op, TensorType, Value, WeightId};
use petgraph::stable_graph::NodeIndex;

/// A projection as lowered: `linear(x, w, b?)`, optionally followed by a per-head RMSNorm.
struct Projection {
    x: Value,
    layer: u32,
    bias: Option<Value>,
    norm: Option<(Value, f32)>,
}

fn projection(g: &Graph, v: Value, want: LayerWeight) -> Option<Projection> {
    let (lin_out, norm) = match sole_producer(g, v, |op| matches!(op, Op::RmsNorm { .. })) {
        Some(n) => {
            let Op::RmsNorm { eps } = g.node(n).op else { unreachable!() };
            let [y, w] = g.inputs(n)[..] else { return None };
            (y, Some((w, eps)))
        }
        None => (v, None),
    };
    let lin = sole_producer(g, lin_out, |op| matches!(op, Op::Linear { .. }))?;
    let ins = g.inputs(lin);
    let Op::Weight(WeightId::Layer(layer, w)) = g.node(ins[1].node).op else { return None };
    (w == want).then(|| Projection { x: ins[0], layer, bias: ins.get(2).copied(), norm })
}

/// The rotated input of an `apply_rope` node, and the RoPE table's (inv_freq, pos) inputs.
fn unrope(g: &Graph, v: Value) -> Option<(Value, Value, Value)> {
    let rope = sole_producer(g, v, |op| matches!(op, Op::ApplyRope))?;
    let [x, cos, _sin] = g.inputs(rope)[..] else { return None };
    let cast = producer(g, cos, |op| matches!(op, Op::Cast { .. }))?;
    let table = producer(g, g.inputs(cast)[0], |op| matches!(op, Op::RopeTable))?;
    let [inv_freq, pos] = g.inputs(table)[..] else { return None };
    Some((x, inv_freq, pos))
}

/// The cache a `kv_append` writes into and the value it writes.
fn unappend(g: &Graph, v: Value) -> Option<(Value, Value)> {
    let n: NodeIndex = producer(g, v, |op| matches!(op, Op::KvAppend))?;
    let [cache, new, _pos] = g.inputs(n)[..] else { return None };
    Some((cache, new))
}

pub fn fuse_qkv_rope(mut g: Graph) -> Graph {
    for attn in nodes_where(&g, |op| matches!(op, Op::Attention { .. })) {
        let Op::Attention { n_heads, n_kv_heads, head_dim } = g.node(attn).op else { unreachable!() };
        let [q_rot, k_appended, v_appended, _pos] = g.inputs(attn)[..] else { continue };
        let Some((k_cache, k_rot)) = unappend(&g, k_appended) else { continue };
        let Some((v_cache, v_new)) = unappend(&g, v_appended) else { continue };
        let (Some((q, inv_freq, pos)), Some((k, _, _))) = (unrope(&g, q_rot), unrope(&g, k_rot)) else { continue };
        let (Some(pq), Some(pk), Some(pv)) =
            (projection(&g, q, LayerWeight::QProj), projection(&g, k, LayerWeight::KProj), projection(&g, v_new, LayerWeight::VProj))
        else {
            continue;
        };
        if pq.x != pk.x || pq.x != pv.x || pv.norm.is_some() || pq.norm.is_some() != pk.norm.is_some() {
            continue;
        }
        let (x, layer) = (pq.x, pq.layer);
        let rows = (n_heads + 2 * n_kv_heads) * head_dim;
        let hidden = g.ty(x).last_dim();
        let weight = |g: &mut Graph, w: LayerWeight, shape: &[usize]| -> Value {
            let id = WeightId::Layer(layer, w);
            g.add(Op::Weight(id), &[], vec![TensorType::new(DType::BF16, shape)], &id.to_string()).into()
        };
        let mut inputs = vec![x, weight(&mut g, LayerWeight::QkvProj, &[rows, hidden])];
        let bias = pq.bias.is_some();
        if bias {
            inputs.push(weight(&mut g, LayerWeight::QkvBias, &[rows]));
        }
        let qk_norm = match (pq.norm, pk.norm) {
            (Some((qw, eps)), Some((kw, _))) => {
                inputs.extend([qw, kw]);
                Some(eps)
            }
            _ => None,
        };
        inputs.extend([inv_freq, pos, k_cache, v_cache]);
        let outputs = vec![TensorType::new(g.ty(q_rot).dtype, &[1, n_heads * head_dim]), g.ty(k_cache).clone(), g.ty(v_cache).clone()];
        let label = g.node(attn).label.clone();
        let op = Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, norm: None };
        let fused = g.add(op, &inputs, outputs, &label);
        g.replace_uses(q_rot, Value { node: fused, port: 0 });
        g.replace_uses(k_appended, Value { node: fused, port: 1 });
        g.replace_uses(v_appended, Value { node: fused, port: 2 });
    }
    g.remove_dead();
    g
}

#[cfg(test)]
mod tests {
    use super::fuse_qkv_rope;
    use crate::passes::testing::{check, check_unchanged, snapshot_pass};

    /// Llama's attention input side after the earlier passes: no bias, no q/k norm.
    const ATTENTION: &str = "
        %0 = token_id() -> i32[1,1]
        %1 = position() -> i32[1,1]
        %2 = weight embed() -> bf16[32,8]
        %3 = embedding(%2, %0) -> f32[1,1,8]
        %4 = weight rope_inv_freq() -> f32[2]
        %5 = rope_table(%4, %1) -> f32[1,1,4], f32[1,1,4]
        %6 = cast to=f32(%5.0) -> f32[1,1,4]
        %7 = cast to=f32(%5.1) -> f32[1,1,4]
        %8 = weight layers.0.q_proj() -> bf16[8,8]
        %9 = weight layers.0.k_proj() -> bf16[4,8]
        %10 = weight layers.0.v_proj() -> bf16[4,8]
        %11 = linear(%3, %8) -> f32[1,1,8]
        %12 = linear(%3, %9) -> f32[1,1,4]
        %13 = linear(%3, %10) -> f32[1,1,4]
        %14 = apply_rope(%11, %6, %7) -> f32[1,2,1,4]
        %15 = apply_rope(%12, %6, %7) -> f32[1,1,1,4]
        %16 = kv_cache layer=0 K() -> f32[16,1,4]
        %17 = kv_cache layer=0 V() -> f32[16,1,4]
        %18 = kv_append(%16, %15, %1) -> f32[16,1,4]
        %19 = kv_append(%17, %13, %1) -> f32[16,1,4]
        %20 = attention heads=2 kv=1 d=4(%14, %18, %19, %1) -> f32[1,2,1,4]
        output attn = %20
    ";

    #[test]
    fn projections_rope_and_cache_writes_become_one_op() {
        check(
            fuse_qkv_rope,
            ATTENTION,
            "
            %0 = token_id() -> i32[1,1]
            %1 = position() -> i32[1,1]
            %2 = weight embed() -> bf16[32,8]
            %3 = embedding(%2, %0) -> f32[1,1,8]
            %4 = weight rope_inv_freq() -> f32[2]
            %5 = kv_cache layer=0 K() -> f32[16,1,4]
            %6 = kv_cache layer=0 V() -> f32[16,1,4]
            %7 = weight layers.0.qkv_proj() -> bf16[16,8]  # layers.0.qkv_proj
            %8 = qkv_rope heads=2 kv=1 d=4(%3, %7, %4, %1, %5, %6) -> f32[1,8], f32[16,1,4], f32[16,1,4]
            %9 = attention heads=2 kv=1 d=4(%8.0, %8.1, %8.2, %1) -> f32[1,2,1,4]
            output attn = %9
            ",
        );
    }

    /// Fusing would drop the rotated q, which someone else reads.
    #[test]
    fn not_when_the_rotated_query_is_read_elsewhere() {
        check_unchanged(fuse_qkv_rope, &format!("{ATTENTION}output q = %14"));
    }

    /// One GEMV reads one x: a v projected from another row (here cos, for brevity) stays apart.
    #[test]
    fn not_when_v_projects_another_input() {
        let other_x = ATTENTION
            .replace("%10 = weight layers.0.v_proj() -> bf16[4,8]", "%10 = weight layers.0.v_proj() -> bf16[4,4]")
            .replace("%13 = linear(%3, %10)", "%13 = linear(%6, %10)");
        check_unchanged(fuse_qkv_rope, &other_x);
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(snapshot_pass("fuse_qkv_rope"));
    }
}
