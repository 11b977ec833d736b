//! Loading a model: its config, its weights and its tokenizer, from a Hugging Face directory
//! (`hf`) or a GGUF file (`gguf`). Both produce a [`Model`]; compile reads weights through
//! [`WeightSource`] and never needs to know which format they came from.

pub mod config;
pub mod gguf;
pub mod hf;

use crate::error::{Error, Result};
use crate::ir::{DType, LayerWeight, WeightId};
use config::ModelConfig;
use std::path::Path;

/// The bytes of one source tensor, before compile converts them to bf16.
pub enum SourceData<'a> {
    /// Stored as `dtype` (bf16, f16 or f32), little-endian, borrowed from the mapped file.
    /// `file` says where the same bytes lie in an open file, so they can be copied file to file
    /// by the kernel without passing through user space.
    Bytes { dtype: DType, bytes: &'a [u8], file: Option<FileRange<'a>> },
    /// Already converted to bf16 (e.g. dequantized from a GGUF block format).
    Bf16(Vec<half::bf16>),
}

impl SourceData<'_> {
    /// Each value widened to f32 and passed through `f` (in parallel: tensors run to GBs);
    /// `name` names the tensor in the error for a dtype that is not a float.
    pub fn map_floats<T: Send>(&self, name: &str, f: impl Fn(f32) -> T + Sync + Send) -> Result<Vec<T>> {
        use rayon::prelude::*;
        Ok(match self {
            SourceData::Bf16(v) => v.par_iter().map(|x| f(x.to_f32())).collect(),
            SourceData::Bytes { dtype: DType::BF16, bytes, .. } => {
                bytes.par_chunks_exact(2).map(|b| f(half::bf16::from_le_bytes([b[0], b[1]]).to_f32())).collect()
            }
            SourceData::Bytes { dtype: DType::F16, bytes, .. } => {
                bytes.par_chunks_exact(2).map(|b| f(half::f16::from_le_bytes([b[0], b[1]]).to_f32())).collect()
            }
            SourceData::Bytes { dtype: DType::F32, bytes, .. } => bytes.par_chunks_exact(4).map(|b| f(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect(),
            SourceData::Bytes { dtype, .. } => {
                return Err(Error::TensorMismatch { name: name.into(), got: format!("dtype {dtype}"), want: "a float dtype".into() })
            }
        })
    }
}

#[derive(Clone, Copy)]
pub struct FileRange<'a> {
    pub file: &'a std::fs::File,
    pub offset: u64,
}

/// One weight as the source file holds it: row-major, `shape` in PyTorch order ([out, in] for
/// projections).
pub struct SourceTensor<'a> {
    pub shape: Vec<usize>,
    pub data: SourceData<'a>,
}

/// Where compile reads weights from. `id` is always a plain weight (never a concatenation such as
/// `QkvProj`, never `RopeInvFreq`); `LmHead` of a tied model is never asked for.
pub trait WeightSource: Send + Sync {
    /// The weight as floats (block formats dequantized to bf16).
    fn tensor(&self, id: WeightId) -> Result<SourceTensor<'_>>;
    /// The block format the source stores `id` in, if it is one a plan can keep
    /// (`DType::BLOCK_FORMATS`); read from the header alone.
    fn block_format(&self, _id: WeightId) -> Option<DType> {
        None
    }
    /// The weight's blocks as the file stores them (rows in PyTorch order), for a weight
    /// [`block_format`](Self::block_format) names.
    fn blocks(&self, id: WeightId) -> Result<std::borrow::Cow<'_, [u8]>> {
        Err(Error::Internal(format!("{id}: the source keeps no blocks")))
    }
}

/// What `llmc run` needs to turn text into ids and back, kept in the plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenizerSpec {
    /// A `tokenizers` tokenizer.json.
    pub json: String,
    /// Jinja chat template, if the model has one.
    pub chat_template: Option<String>,
    /// Token ids that end generation.
    pub eos_ids: Vec<u32>,
    /// Text of the BOS token, if the template or the tokenizer prepends one.
    pub bos_token: Option<String>,
    /// Text of the EOS token, as chat templates refer to it.
    pub eos_token: Option<String>,
}

pub struct Model {
    pub config: ModelConfig,
    pub weights: Box<dyn WeightSource>,
    pub tokenizer: TokenizerSpec,
}

/// Opens a model: a directory is read as a Hugging Face checkpoint, a `.gguf` file as GGUF.
pub fn open(path: &Path) -> Result<Model> {
    if path.is_dir() {
        hf::open(path)
    } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        gguf::open(path)
    } else if path.exists() {
        Err(Error::Input(format!("{}: expected a model directory (config.json + safetensors) or a .gguf file", path.display())))
    } else {
        Err(Error::Input(format!("{}: no such file or directory", path.display())))
    }
}

/// The shape a weight must have under `cfg`, in PyTorch order.
pub fn expected_shape(cfg: &ModelConfig, id: WeightId) -> Vec<usize> {
    use LayerWeight::*;
    let (h, f, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (q, kv) = (cfg.num_heads * d, cfg.num_kv_heads * d);
    match id {
        WeightId::Embed | WeightId::LmHead => vec![cfg.vocab_size, h],
        WeightId::FinalNorm => vec![h],
        WeightId::RopeInvFreq => vec![d / 2],
        WeightId::Layer(_, w) => match w {
            InputNorm | PostAttnNorm | OBias => vec![h],
            QProj => vec![q, h],
            KProj | VProj => vec![kv, h],
            QBias => vec![q],
            KBias | VBias => vec![kv],
            QNorm | KNorm => vec![d],
            OProj => vec![h, q],
            GateProj | UpProj => vec![f, h],
            DownProj => vec![h, f],
            QkvProj => vec![q + 2 * kv, h],
            QkvBias => vec![q + 2 * kv],
            GateUpProj => vec![2 * f, h],
        },
    }
}

/// The Hugging Face tensor name of a plain weight.
pub fn hf_name(id: WeightId) -> String {
    use LayerWeight::*;
    match id {
        WeightId::Embed => "model.embed_tokens.weight".into(),
        WeightId::FinalNorm => "model.norm.weight".into(),
        WeightId::LmHead => "lm_head.weight".into(),
        WeightId::RopeInvFreq => "rotary_emb.inv_freq".into(),
        WeightId::Layer(l, w) => {
            let tail = match w {
                InputNorm => "input_layernorm.weight",
                PostAttnNorm => "post_attention_layernorm.weight",
                QProj => "self_attn.q_proj.weight",
                KProj => "self_attn.k_proj.weight",
                VProj => "self_attn.v_proj.weight",
                QBias => "self_attn.q_proj.bias",
                KBias => "self_attn.k_proj.bias",
                VBias => "self_attn.v_proj.bias",
                QNorm => "self_attn.q_norm.weight",
                KNorm => "self_attn.k_norm.weight",
                OProj => "self_attn.o_proj.weight",
                OBias => "self_attn.o_proj.bias",
                GateProj => "mlp.gate_proj.weight",
                UpProj => "mlp.up_proj.weight",
                DownProj => "mlp.down_proj.weight",
                QkvProj | QkvBias | GateUpProj => unreachable!("{w:?} is a concatenation, not a source tensor"),
            };
            format!("model.layers.{l}.{tail}")
        }
    }
}
