//! The closed set of operations. Lowering produces the eager-level ops (casts, views and the
//! small arithmetic ops a PyTorch forward performs); the passes replace them with the fused ops
//! that become kernels. Every op documents its inputs (in slot order) and outputs (in port order).
//!
//! All ops describe one decode step: one token at position `pos` (read from the `Position`
//! input). Layouts are contiguous row-major, so an op reads its inputs as flat buffers and the
//! view-like ops only relabel shapes.

use super::types::{DType, KvHalf, WeightId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    // ---- sources ----
    /// The token fed to this step. Out: i32[1,1].
    TokenId,
    /// The position of that token (0-based). Out: i32[1,1].
    Position,
    /// A weight of the model. Out: its tensor.
    Weight(WeightId),
    /// A layer's K or V cache: [max_seq_len, n_kv_heads, head_dim], alive for the whole run.
    KvCache { layer: u32, half: KvHalf },

    // ---- eager-level ops, as lowered ----
    /// In: table bf16[V,H], ids i32[1,1]. Out: f32[1,1,H] (the row, widened exactly).
    Embedding,
    /// Elementwise dtype conversion (round to nearest even on narrowing).
    Cast { to: DType },
    /// `.view(shape)`: same bytes, new shape.
    View,
    /// `.reshape(shape)` of a contiguous tensor: same bytes, new shape.
    Reshape,
    /// `.unsqueeze(dim)`: same bytes, a new unit dimension.
    Unsqueeze { dim: usize },
    /// `.transpose(a, b)`; lowering only emits it where the layout is unchanged (unit dims).
    Transpose { a: usize, b: usize },
    /// f32 `x * rsqrt(mean(x^2, -1) + eps)` over rows of the last dim. In: x. Out: same type.
    RmsNormCore { eps: f32 },
    /// Elementwise product; the second operand broadcasts over leading dims. In: a, b.
    Mul,
    /// Elementwise sum. In: a, b.
    Add,
    /// `x @ W^T (+ b)`. In: x[..,K], W[N,K], optional b[N]. Out: [..,N] in x's dtype.
    Linear { bias: bool },
    /// Elementwise `x * sigmoid(x)`.
    Silu,
    /// RoPE angles `pos * inv_freq` in f32. In: inv_freq f32[1,D/2,1], pos f32[1,1,1].
    /// Out: cos f32[1,1,D], sin f32[1,1,D] (the half table repeated twice, as HF `cat`s it).
    RopeTable,
    /// `x * cos + rotate_half(x) * sin` per head. In: x[1,heads,1,D], cos[1,1,1,D], sin[1,1,1,D].
    ApplyRope,
    /// Writes one token's K or V rows into the cache at `pos`. In: cache, new[1,kv,1,D], pos. Out: the same cache buffer (an alias), so readers are
    /// ordered after the write.
    KvAppend,
    /// Causal attention of one query token over cache rows 0..=pos, grouped-query aware,
    /// scale 1/sqrt(D). In: q[1,heads,1,D], k_cache, v_cache, pos. Out: q's dtype [1,heads,1,D].
    Attention { n_heads: usize, n_kv_heads: usize, head_dim: usize },

    // ---- fused ops, produced by the passes ----
    // Input normalization (`norm: Some(eps)` on the GEMV ops, from `fuse_norm_into_projection`):
    // the op's x is the raw hidden state [1,H] and its LAST input slot is the RMSNorm weight
    // w[H]. The op first computes exactly what the unfused `RmsNorm { eps }` stored,
    // `xn = x * (rsqrt(mean(x^2) + eps) * w)` in f32, and then runs its GEMV over xn. Every GPU
    // block recomputes the norm from x (a few KB, cached).
    /// RMSNorm computing in f32: `x * (rsqrt(mean(x^2) + eps) * w)`.
    /// In: x, w. Out: x's dtype. Rows are the last dimension (per-head for q/k norm).
    RmsNorm { eps: f32 },
    /// `residual + x @ W^T (+ b)`. In: x, W[N,K], optional b[N], residual[..,N]. Out: x's dtype.
    LinearResidual { bias: bool },
    /// Q/K/V projection from one concatenated weight, optional bias, optional per-head q/k
    /// RMSNorm, RoPE at `pos`, and the K/V cache write.
    /// In: x, w_qkv, [b_qkv], [q_norm_w, k_norm_w], inv_freq, pos, k_cache, v_cache.
    /// Out: q [1, n_heads*D] (rotated, x's dtype), k_cache alias, v_cache alias.
    /// `norm: Some(eps)`: x is first RMS-normalized with the weight in an extra LAST input slot
    /// (after v_cache), see [`Op::RmsNorm`] for the exact rounding.
    QkvRope { n_heads: usize, n_kv_heads: usize, head_dim: usize, bias: bool, qk_norm: Option<f32>, norm: Option<f32> },
    /// `silu(x @ Wg^T) * (x @ Wu^T)` from one concatenated weight [2F, H] (gate rows first).
    /// In: x, w_gate_up, [norm_w]. Out: x's dtype [1, F].
    GateUpSilu { norm: Option<f32> },
    /// The LM head producing f32 logits. In: x[1,H], W[V,H], [norm_w]. Out: f32[1,V].
    LmHead { norm: Option<f32> },
    /// Chooses the next token from f32 logits: greedy, or by the run's sampling settings.
    /// In: logits. Out: i32[1].
    Sample,
}

/// What an op becomes in a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// Data that exists before the step runs (inputs, weights, caches): a slot, no launch.
    Source,
    /// Relabels a contiguous buffer's shape: `eliminate_views` removes it.
    View,
    /// Eager-level work that only exists fused into a kernel op: no backend runs it alone, so a
    /// plan holding one is refused.
    FusedAway,
    /// A kernel in every backend.
    Kernel,
}

/// The op kinds by their lower-case names, as `llmc inspect` counts them.
impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::TokenId => "token_id",
            Op::Position => "position",
            Op::Weight(_) => "weight",
            Op::KvCache { .. } => "kv_cache",
            Op::Embedding => "embedding",
            Op::Cast { .. } => "cast",
            Op::View => "view",
            Op::Reshape => "reshape",
            Op::Unsqueeze { .. } => "unsqueeze",
            Op::Transpose { .. } => "transpose",
            Op::RmsNormCore { .. } => "rms_norm_core",
            Op::Mul => "mul",
            Op::Add => "add",
            Op::Linear { .. } => "linear",
            Op::Silu => "silu",
            Op::RopeTable => "rope_table",
            Op::ApplyRope => "apply_rope",
            Op::KvAppend => "kv_append",
            Op::Attention { .. } => "attention",
            Op::RmsNorm { .. } => "rms_norm",
            Op::LinearResidual { .. } => "linear_residual",
            Op::QkvRope { .. } => "qkv_rope",
            Op::GateUpSilu { .. } => "gate_up_silu",
            Op::LmHead { .. } => "lm_head",
            Op::Sample => "sample",
        }
    }

    /// What the op becomes in a plan. One exhaustive match, so a new op is classified on purpose
    /// and cannot silently become a source or a view (which launch nothing).
    pub fn class(&self) -> OpClass {
        match self {
            Op::TokenId | Op::Position | Op::Weight(_) | Op::KvCache { .. } => OpClass::Source,
            Op::View | Op::Reshape | Op::Unsqueeze { .. } | Op::Transpose { .. } => OpClass::View,
            Op::Cast { .. } | Op::RmsNormCore { .. } | Op::Mul | Op::Add | Op::Silu | Op::RopeTable | Op::ApplyRope | Op::KvAppend => OpClass::FusedAway,
            Op::Embedding
            | Op::Linear { .. }
            | Op::Attention { .. }
            | Op::RmsNorm { .. }
            | Op::LinearResidual { .. }
            | Op::QkvRope { .. }
            | Op::GateUpSilu { .. }
            | Op::LmHead { .. }
            | Op::Sample => OpClass::Kernel,
        }
    }

    /// Sources hold data that exists before the step runs; they launch nothing.
    pub fn is_source(&self) -> bool {
        self.class() == OpClass::Source
    }

    /// Ops that only relabel shapes; a fused plan has none.
    pub fn is_view_like(&self) -> bool {
        self.class() == OpClass::View
    }

    /// Ops whose outputs reuse an input's bytes (output port -> input slot).
    pub fn alias_of(&self, port: usize) -> Option<usize> {
        match self {
            Op::View | Op::Reshape | Op::Unsqueeze { .. } | Op::Transpose { .. } | Op::KvAppend => (port == 0).then_some(0),
            Op::QkvRope { bias, qk_norm, .. } => {
                // The norm weight (if any) comes after v_cache, so it moves no slot here.
                let k_cache_slot = 4 + usize::from(*bias) + if qk_norm.is_some() { 2 } else { 0 };
                matches!(port, 1 | 2).then(|| k_cache_slot + port - 1)
            }
            Op::TokenId
            | Op::Position
            | Op::Weight(_)
            | Op::KvCache { .. }
            | Op::Embedding
            | Op::Cast { .. }
            | Op::RmsNormCore { .. }
            | Op::Mul
            | Op::Add
            | Op::Linear { .. }
            | Op::Silu
            | Op::RopeTable
            | Op::ApplyRope
            | Op::Attention { .. }
            | Op::RmsNorm { .. }
            | Op::LinearResidual { .. }
            | Op::GateUpSilu { .. }
            | Op::LmHead { .. }
            | Op::Sample => None,
        }
    }

    /// A short text of the op's attributes for listings, empty when it has none.
    pub fn attrs(&self) -> String {
        match self {
            Op::Weight(w) => w.to_string(),
            Op::KvCache { layer, half } => format!("layer={layer} {half:?}"),
            Op::Cast { to } => format!("to={to}"),
            Op::Unsqueeze { dim } => format!("dim={dim}"),
            Op::Transpose { a, b } => format!("{a},{b}"),
            Op::RmsNormCore { eps } | Op::RmsNorm { eps } => format!("eps={eps:e}"),
            Op::Linear { bias } | Op::LinearResidual { bias } => {
                if *bias {
                    "bias".into()
                } else {
                    String::new()
                }
            }
            Op::Attention { n_heads, n_kv_heads, head_dim } => format!("heads={n_heads} kv={n_kv_heads} d={head_dim}"),
            Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, norm } => {
                let mut s = format!("heads={n_heads} kv={n_kv_heads} d={head_dim}");
                if *bias {
                    s.push_str(" bias");
                }
                if let Some(eps) = qk_norm {
                    s.push_str(&format!(" qk_norm eps={eps:e}"));
                }
                if let Some(eps) = norm {
                    s.push_str(&format!(" norm eps={eps:e}"));
                }
                s
            }
            Op::GateUpSilu { norm: Some(eps) } | Op::LmHead { norm: Some(eps) } => format!("norm eps={eps:e}"),
            _ => String::new(),
        }
    }

    /// The op of `kind` with the attributes [`Op::attrs`] writes (the inverse of both, for
    /// `Graph::parse`).
    pub fn parse(kind: &str, attrs: &str) -> Result<Op, String> {
        let mut a = Attrs { kind, tokens: attrs.split_whitespace().collect(), next: 0 };
        let norm = |a: &mut Attrs| -> Result<Option<f32>, String> {
            if a.flag("norm") {
                a.value("eps").map(Some)
            } else {
                Ok(None)
            }
        };
        let op = match kind {
            "token_id" => Op::TokenId,
            "position" => Op::Position,
            "weight" => {
                let name = a.token()?;
                Op::Weight(WeightId::parse(name).ok_or_else(|| format!("weight: `{name}` is not a weight name"))?)
            }
            "kv_cache" => {
                let layer = a.value("layer")?;
                let half = match a.token()? {
                    "K" => KvHalf::K,
                    "V" => KvHalf::V,
                    other => return Err(format!("kv_cache: `{other}` is neither K nor V")),
                };
                Op::KvCache { layer, half }
            }
            "embedding" => Op::Embedding,
            "cast" => {
                let to = a.token()?;
                let dtype = to.strip_prefix("to=").and_then(DType::parse);
                Op::Cast { to: dtype.ok_or_else(|| format!("cast: `{to}` is not a dtype (bf16, f16, f32, i32)"))? }
            }
            "view" => Op::View,
            "reshape" => Op::Reshape,
            "unsqueeze" => Op::Unsqueeze { dim: a.value("dim")? },
            "transpose" => {
                let dims = a.token()?;
                let (x, y) = dims.split_once(',').ok_or_else(|| format!("transpose: expected `a,b`, found `{dims}`"))?;
                Op::Transpose { a: a.number(x)?, b: a.number(y)? }
            }
            "rms_norm_core" => Op::RmsNormCore { eps: a.value("eps")? },
            "mul" => Op::Mul,
            "add" => Op::Add,
            "linear" => Op::Linear { bias: a.flag("bias") },
            "silu" => Op::Silu,
            "rope_table" => Op::RopeTable,
            "apply_rope" => Op::ApplyRope,
            "kv_append" => Op::KvAppend,
            "attention" => Op::Attention { n_heads: a.value("heads")?, n_kv_heads: a.value("kv")?, head_dim: a.value("d")? },
            "rms_norm" => Op::RmsNorm { eps: a.value("eps")? },
            "linear_residual" => Op::LinearResidual { bias: a.flag("bias") },
            "qkv_rope" => {
                let (n_heads, n_kv_heads, head_dim) = (a.value("heads")?, a.value("kv")?, a.value("d")?);
                let bias = a.flag("bias");
                let qk_norm = if a.flag("qk_norm") { Some(a.value("eps")?) } else { None };
                Op::QkvRope { n_heads, n_kv_heads, head_dim, bias, qk_norm, norm: norm(&mut a)? }
            }
            "gate_up_silu" => Op::GateUpSilu { norm: norm(&mut a)? },
            "lm_head" => Op::LmHead { norm: norm(&mut a)? },
            "sample" => Op::Sample,
            _ => return Err(format!("unknown op kind `{kind}`")),
        };
        match a.tokens.get(a.next) {
            Some(extra) => Err(format!("{kind}: unexpected `{extra}`")),
            None => Ok(op),
        }
    }
}

/// The attribute tokens of one op, read front to back by [`Op::parse`].
struct Attrs<'t> {
    kind: &'t str,
    tokens: Vec<&'t str>,
    next: usize,
}

impl<'t> Attrs<'t> {
    fn token(&mut self) -> Result<&'t str, String> {
        let t = self.tokens.get(self.next).ok_or_else(|| format!("{}: attributes end early", self.kind))?;
        self.next += 1;
        Ok(t)
    }

    /// Takes the flag `name` if it comes next.
    fn flag(&mut self, name: &str) -> bool {
        let present = self.tokens.get(self.next) == Some(&name);
        self.next += usize::from(present);
        present
    }

    /// The value of `key=value`, which must come next.
    fn value<T: FromStr>(&mut self, key: &str) -> Result<T, String> {
        let t = self.token()?;
        let v = t.strip_prefix(key).and_then(|t| t.strip_prefix('=')).ok_or_else(|| format!("{}: expected `{key}=`, found `{t}`", self.kind))?;
        self.number(v)
    }

    fn number<T: FromStr>(&self, text: &str) -> Result<T, String> {
        text.parse().map_err(|_| format!("{}: `{text}` is not a number", self.kind))
    }
}
