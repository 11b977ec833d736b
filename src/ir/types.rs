//! Element types, tensor types and the typed names of weights.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a tensor. Storage is bf16 for activations and weights; f32 appears
/// where eager PyTorch upcasts (RMSNorm, RoPE tables, logits). The block formats (GGML's Q8_0,
/// Q4_0, Q4_K, Q5_K, Q6_K) appear only in a plan's weight slots, for a weight kept as its GGUF
/// file stores it (`crate::quant` says how a plan lays their blocks out); graphs never see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    BF16,
    F16,
    F32,
    I32,
    Q8_0,
    Q4_0,
    Q4K,
    Q5K,
    Q6K,
}

impl DType {
    pub const ALL: [DType; 9] = [DType::BF16, DType::F16, DType::F32, DType::I32, DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q5K, DType::Q6K];
    /// The block formats, which a weight may keep from its GGUF file.
    pub const BLOCK_FORMATS: [DType; 5] = [DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q5K, DType::Q6K];

    /// (elements, bytes) of one block: (1, element size) for the plain types.
    pub fn block(self) -> (usize, usize) {
        match self {
            DType::BF16 | DType::F16 => (1, 2),
            DType::F32 | DType::I32 => (1, 4),
            DType::Q8_0 => (32, 34),
            DType::Q4_0 => (32, 18),
            DType::Q4K => (256, 144),
            DType::Q5K => (256, 176),
            DType::Q6K => (256, 210),
        }
    }
    pub fn is_block_format(self) -> bool {
        self.block().0 > 1
    }
    /// Bytes of one element of a plain type; for a block format, of one block.
    pub fn size(self) -> usize {
        self.block().1
    }
    /// The dtype named `name` (as [`DType::name`] writes it).
    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4K => "q4_k",
            DType::Q5K => "q5_k",
            DType::Q6K => "q6_k",
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
    /// Bytes of the tensor; a block format's rows are whole blocks (the last dimension a multiple
    /// of the block, which compile checks before choosing the format).
    pub fn bytes(&self) -> usize {
        let (per_block, block_bytes) = self.dtype.block();
        self.elements() / per_block * block_bytes
    }
    /// [`bytes`](Self::bytes), or `None` where that overflows (a type read from an untrusted file).
    pub fn checked_bytes(&self) -> Option<usize> {
        let (per_block, block_bytes) = self.dtype.block();
        self.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).map(|n| n / per_block).and_then(|b| b.checked_mul(block_bytes))
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
