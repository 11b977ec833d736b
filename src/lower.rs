//! Lowering: a model config becomes the graph of one decode step, op for op as eager PyTorch
//! (transformers' Llama/Qwen2/Qwen3 modules) runs it, with every dtype cast, view, transpose and
//! unsqueeze that forward performs. The passes then remove what is not real work.
//!
//! Precision: weights stay bf16 (widened exactly where they are read); activations and the KV
//! cache are f32 -- the forward transformers computes after `model.float()` on the same bf16
//! values. bf16 activations put the logits of a 28-layer model 2.5-4% from that forward, a bf16
//! KV cache alone about 1% (`bench/precision_probe.py`); in f32 they cost little at batch 1, where
//! the weights are most of the bytes (an f32 cache doubles attention's share).

use crate::ir::{DType, Graph, KvHalf, LayerWeight, Op, TensorType, Value, WeightId};
use crate::load::config::ModelConfig;

const BF16: DType = DType::BF16;
const F32: DType = DType::F32;
/// The dtype of every activation (see the module docs).
const ACT: DType = F32;

struct Lowerer<'a> {
    cfg: &'a ModelConfig,
    max_seq_len: usize,
    g: Graph,
}

impl Lowerer<'_> {
    fn op(&mut self, op: Op, inputs: &[Value], out: TensorType, label: &str) -> Value {
        self.g.add(op, inputs, vec![out], label).into()
    }

    fn weight(&mut self, id: WeightId, ty: TensorType) -> Value {
        self.op(Op::Weight(id), &[], ty, &id.to_string())
    }

    fn layer_weight(&mut self, layer: u32, w: LayerWeight, shape: &[usize]) -> Value {
        self.weight(WeightId::Layer(layer, w), TensorType::new(BF16, shape))
    }

    /// Reshape-like op: same bytes, new shape.
    fn relabel(&mut self, op: Op, x: Value, shape: &[usize], label: &str) -> Value {
        let dtype = self.g.ty(x).dtype;
        self.op(op, &[x], TensorType::new(dtype, shape), label)
    }

    fn cast(&mut self, x: Value, to: DType, label: &str) -> Value {
        let shape = self.g.ty(x).shape.clone();
        self.op(Op::Cast { to }, &[x], TensorType::new(to, &shape), label)
    }

    fn same_type(&mut self, op: Op, inputs: &[Value], label: &str) -> Value {
        let ty = self.g.ty(inputs[0]).clone();
        self.op(op, inputs, ty, label)
    }

    /// transformers' RMSNorm: `w * (x.float() * rsqrt(mean(x^2) + eps)).to(input_dtype)`.
    fn rms_norm(&mut self, x: Value, w: Value, label: &str) -> Value {
        let eps = self.cfg.rms_norm_eps;
        let up = self.cast(x, F32, label);
        let normed = self.same_type(Op::RmsNormCore { eps }, &[up], label);
        let input_dtype = self.g.ty(x).dtype;
        let down = self.cast(normed, input_dtype, label);
        self.same_type(Op::Mul, &[down, w], label)
    }

    fn linear(&mut self, x: Value, w: Value, bias: Option<Value>, label: &str) -> Value {
        let x_ty = self.g.ty(x).clone();
        let n = self.g.ty(w).shape[0];
        let mut shape = x_ty.shape.clone();
        *shape.last_mut().expect("linear input has a shape") = n;
        let mut inputs = vec![x, w];
        inputs.extend(bias);
        self.op(Op::Linear { bias: bias.is_some() }, &inputs, TensorType::new(x_ty.dtype, &shape), label)
    }

    /// One attention projection up to the rotated, head-major tensor `[1, heads, 1, D]`.
    #[allow(clippy::too_many_arguments)]
    fn projection(&mut self, layer: u32, x: Value, heads: usize, proj: LayerWeight, bias: LayerWeight, norm: Option<LayerWeight>, label: &str) -> Value {
        let (h, d) = (self.cfg.hidden_size, self.cfg.head_dim);
        let w = self.layer_weight(layer, proj, &[heads * d, h]);
        let b = self.cfg.qkv_bias.then(|| self.layer_weight(layer, bias, &[heads * d]));
        let y = self.linear(x, w, b, label);
        let mut y = self.relabel(Op::View, y, &[1, 1, heads, d], label);
        if let Some(norm) = norm {
            let nw = self.layer_weight(layer, norm, &[d]);
            y = self.rms_norm(y, nw, label);
        }
        self.relabel(Op::Transpose { a: 1, b: 2 }, y, &[1, heads, 1, d], label)
    }

    fn decoder_layer(&mut self, layer: u32, hidden: Value, cos: Value, sin: Value, pos: Value) -> Value {
        let c = self.cfg;
        let (h, d, nh, nkv, f) = (c.hidden_size, c.head_dim, c.num_heads, c.num_kv_heads, c.intermediate_size);
        let attn = format!("layers.{layer}.attn");
        let mlp = format!("layers.{layer}.mlp");

        let w_in = self.layer_weight(layer, LayerWeight::InputNorm, &[h]);
        let x = self.rms_norm(hidden, w_in, &format!("layers.{layer}.input_norm"));
        let (q_norm, k_norm) = if c.qk_norm { (Some(LayerWeight::QNorm), Some(LayerWeight::KNorm)) } else { (None, None) };
        let q = self.projection(layer, x, nh, LayerWeight::QProj, LayerWeight::QBias, q_norm, &attn);
        let k = self.projection(layer, x, nkv, LayerWeight::KProj, LayerWeight::KBias, k_norm, &attn);
        let v = self.projection(layer, x, nkv, LayerWeight::VProj, LayerWeight::VBias, None, &attn);

        // apply_rotary_pos_emb: cos.unsqueeze(1), sin.unsqueeze(1)
        let cos_u = self.relabel(Op::Unsqueeze { dim: 1 }, cos, &[1, 1, 1, d], &attn);
        let sin_u = self.relabel(Op::Unsqueeze { dim: 1 }, sin, &[1, 1, 1, d], &attn);
        let q = self.same_type(Op::ApplyRope, &[q, cos_u, sin_u], &attn);
        let k = self.same_type(Op::ApplyRope, &[k, cos_u, sin_u], &attn);

        let cache_ty = TensorType::new(ACT, &[self.max_seq_len, nkv, d]);
        let k_cache = self.op(Op::KvCache { layer, half: KvHalf::K }, &[], cache_ty.clone(), &attn);
        let v_cache = self.op(Op::KvCache { layer, half: KvHalf::V }, &[], cache_ty.clone(), &attn);
        let k_cache = self.op(Op::KvAppend, &[k_cache, k, pos], cache_ty.clone(), &attn);
        let v_cache = self.op(Op::KvAppend, &[v_cache, v, pos], cache_ty, &attn);
        let a = self.op(Op::Attention { n_heads: nh, n_kv_heads: nkv, head_dim: d }, &[q, k_cache, v_cache, pos], TensorType::new(ACT, &[1, nh, 1, d]), &attn);
        let a = self.relabel(Op::Transpose { a: 1, b: 2 }, a, &[1, 1, nh, d], &attn);
        let a = self.relabel(Op::Reshape, a, &[1, 1, nh * d], &attn);
        let wo = self.layer_weight(layer, LayerWeight::OProj, &[h, nh * d]);
        let bo = c.o_bias.then(|| self.layer_weight(layer, LayerWeight::OBias, &[h]));
        let o = self.linear(a, wo, bo, &attn);
        let hidden = self.same_type(Op::Add, &[hidden, o], &attn);

        let w_post = self.layer_weight(layer, LayerWeight::PostAttnNorm, &[h]);
        let x = self.rms_norm(hidden, w_post, &format!("layers.{layer}.post_attn_norm"));
        let wg = self.layer_weight(layer, LayerWeight::GateProj, &[f, h]);
        let wu = self.layer_weight(layer, LayerWeight::UpProj, &[f, h]);
        let wd = self.layer_weight(layer, LayerWeight::DownProj, &[h, f]);
        let gate = self.linear(x, wg, None, &mlp);
        let up = self.linear(x, wu, None, &mlp);
        let act = self.same_type(Op::Silu, &[gate], &mlp);
        let prod = self.same_type(Op::Mul, &[act, up], &mlp);
        let down = self.linear(prod, wd, None, &mlp);
        self.same_type(Op::Add, &[hidden, down], &mlp)
    }
}

/// Lowers the decode step of `cfg` with a KV cache of `max_seq_len` positions.
pub fn lower(cfg: &ModelConfig, max_seq_len: usize) -> Graph {
    let mut l = Lowerer { cfg, g: Graph::default(), max_seq_len };
    let (h, d, v) = (cfg.hidden_size, cfg.head_dim, cfg.vocab_size);

    let ids = l.op(Op::TokenId, &[], TensorType::new(DType::I32, &[1, 1]), "input_ids");
    let pos = l.op(Op::Position, &[], TensorType::new(DType::I32, &[1, 1]), "position_ids");
    let embed = l.weight(WeightId::Embed, TensorType::new(BF16, &[v, h]));
    let mut hidden = l.op(Op::Embedding, &[embed, ids], TensorType::new(ACT, &[1, 1, h]), "embed_tokens");

    // rotary_emb: inv_freq[None, :, None].float() @ position_ids[:, None, :].float(), then cos/sin
    // and `.to(x.dtype)`.
    let rope = "rotary_emb";
    let inv = l.weight(WeightId::RopeInvFreq, TensorType::new(F32, &[d / 2]));
    let inv = l.relabel(Op::Unsqueeze { dim: 0 }, inv, &[1, d / 2], rope);
    let inv = l.relabel(Op::Unsqueeze { dim: 2 }, inv, &[1, d / 2, 1], rope);
    let p = l.relabel(Op::Unsqueeze { dim: 1 }, pos, &[1, 1, 1], rope);
    let p = l.cast(p, F32, rope);
    let table = l.g.add(Op::RopeTable, &[inv, p], vec![TensorType::new(F32, &[1, 1, d]), TensorType::new(F32, &[1, 1, d])], rope);
    let cos = l.cast(Value { node: table, port: 0 }, ACT, rope);
    let sin = l.cast(Value { node: table, port: 1 }, ACT, rope);

    for layer in 0..cfg.num_layers as u32 {
        hidden = l.decoder_layer(layer, hidden, cos, sin, pos);
    }

    let w_norm = l.weight(WeightId::FinalNorm, TensorType::new(BF16, &[h]));
    let x = l.rms_norm(hidden, w_norm, "norm");
    let w_head = l.weight(WeightId::LmHead, TensorType::new(BF16, &[v, h]));
    let logits = l.linear(x, w_head, None, "lm_head");
    let logits = l.cast(logits, F32, "lm_head");
    let token = l.op(Op::Sample, &[logits], TensorType::new(DType::I32, &[1]), "sampler");
    l.g.outputs.insert("logits".into(), logits);
    l.g.outputs.insert("token".into(), token);
    l.g
}
