//! Element types, tensor types and the typed names of weights.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a tensor. Storage is bf16 for activations and weights; f32 appears
/// where eager PyTorch upcasts (RMSNorm, RoPE tables, logits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    BF16,
    F16,
    F32,
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::BF16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
    /// The dtype named `name` (as [`DType::name`] writes it).
    pub fn parse(name: &str) -> Option<DType> {
        [DType::BF16, DType::F16, DType::F32, DType::I32].into_iter().find(|d| d.name() == name)
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense, contiguous, row-major tensor type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: &[usize]) -> Self {
        TensorType { dtype, shape: shape.to_vec() }
    }
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn bytes(&self) -> usize {
        self.elements() * self.dtype.size()
    }
    /// [`bytes`](Self::bytes), or `None` where that overflows (a type read from an untrusted file).
    pub fn checked_bytes(&self) -> Option<usize> {
        self.shape.iter().try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d))
    }
    /// Size of the innermost dimension (1 for a scalar).
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(","))
    }
}

/// Declares [`LayerWeight`] with each variant's name, so the enum, [`LayerWeight::name`] and
/// [`LayerWeight::ALL`] come from one list.
macro_rules! layer_weights {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)+) => {
        /// Which weight of a decoder layer. The concatenated kinds exist only after fusion: the
        /// plan lays their parts out back to back, as the fused kernels read them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum LayerWeight {
            $($(#[doc = $doc])* $variant,)+
        }

        impl LayerWeight {
            /// Every layer weight, in declaration order.
            pub const ALL: &[LayerWeight] = &[$(LayerWeight::$variant),+];

            /// Its name in listings (`layers.3.q_proj`).
            pub fn name(self) -> &'static str {
                match self {
                    $(LayerWeight::$variant => $name,)+
                }
            }
        }
    };
}

layer_weights! {
    InputNorm = "input_norm",
    QProj = "q_proj",
    KProj = "k_proj",
    VProj = "v_proj",
    QBias = "q_bias",
    KBias = "k_bias",
    VBias = "v_bias",
    QNorm = "q_norm",
    KNorm = "k_norm",
    OProj = "o_proj",
    OBias = "o_bias",
    PostAttnNorm = "post_attn_norm",
    GateProj = "gate_proj",
    UpProj = "up_proj",
    DownProj = "down_proj",
    /// q_proj, k_proj, v_proj stacked along the output dimension.
    QkvProj = "qkv_proj",
    /// q, k, v biases stacked.
    QkvBias = "qkv_bias",
    /// gate_proj, up_proj stacked along the output dimension.
    GateUpProj = "gate_up_proj",
}

impl LayerWeight {
    /// The source tensors a concatenated weight is made of, in order; a plain weight is its own part.
    pub fn parts(self) -> Vec<LayerWeight> {
        use LayerWeight::*;
        match self {
            QkvProj => vec![QProj, KProj, VProj],
            QkvBias => vec![QBias, KBias, VBias],
            GateUpProj => vec![GateProj, UpProj],
            w => vec![w],
        }
    }
}

/// A weight of the model, named by what it is rather than by a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WeightId {
    Embed,
    FinalNorm,
    /// The LM head; for tied embeddings the plan points it at the embedding's bytes.
    LmHead,
    /// RoPE inverse frequencies (f32, head_dim/2), computed at compile time with any scaling.
    RopeInvFreq,
    Layer(u32, LayerWeight),
}

impl fmt::Display for WeightId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightId::Embed => f.write_str("embed"),
            WeightId::FinalNorm => f.write_str("final_norm"),
            WeightId::LmHead => f.write_str("lm_head"),
            WeightId::RopeInvFreq => f.write_str("rope_inv_freq"),
            WeightId::Layer(l, w) => write!(f, "layers.{l}.{}", w.name()),
        }
    }
}

impl WeightId {
    /// The weight named `name`, as `Display` writes it (`embed`, `layers.3.q_proj`).
    pub fn parse(name: &str) -> Option<WeightId> {
        let global = [WeightId::Embed, WeightId::FinalNorm, WeightId::LmHead, WeightId::RopeInvFreq];
        if let Some(id) = global.into_iter().find(|id| id.to_string() == name) {
            return Some(id);
        }
        let (layer, weight) = name.strip_prefix("layers.")?.split_once('.')?;
        let weight = *LayerWeight::ALL.iter().find(|w| w.name() == weight)?;
        Some(WeightId::Layer(layer.parse().ok()?, weight))
    }
}

/// Key or value half of a layer's KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvHalf {
    K,
    V,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_name_parses_back() {
        let layer = LayerWeight::ALL.iter().map(|&w| WeightId::Layer(27, w));
        for id in [WeightId::Embed, WeightId::FinalNorm, WeightId::LmHead, WeightId::RopeInvFreq].into_iter().chain(layer) {
            assert_eq!(WeightId::parse(&id.to_string()), Some(id));
        }
        assert_eq!(WeightId::parse("layers.x.q_proj"), None);
    }
}
