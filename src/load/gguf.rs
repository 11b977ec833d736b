//! A GGUF file (llama.cpp's format): config from the `{arch}.*` metadata, weights dequantized to
//! bf16 on demand from the memory-mapped file, and the tokenizer rebuilt from `tokenizer.*`.

mod dequant;
mod reader;
#[cfg(test)]
mod test_writer;
mod tokenizer;

use super::config::{Arch, ModelConfig};
use super::{expected_shape, Model, SourceData, SourceTensor, WeightSource};
use crate::error::{Error, GgufError, Result};
use crate::ir::{DType, LayerWeight, WeightId};
use dequant::GgmlType;
use memmap2::Mmap;
use reader::{GgufFile, TensorInfo, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn open(path: &Path) -> Result<Model> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; a file changed under us can at worst produce wrong weights.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let gguf = GgufFile::parse(&map).map_err(|source| Error::BadGguf { path: path.to_path_buf(), source })?;
    let tensors: HashMap<String, TensorInfo> = gguf.tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let meta = Meta { path, map: &gguf.metadata };
    let mut config = model_config(&meta, &tensors)?;
    let tokenizer = tokenizer::tokenizer_spec(&meta)?;
    config.eos_token_ids = tokenizer.eos_ids.clone();
    let weights = GgufWeights { path: path.to_path_buf(), map, tensors, config: config.clone() };
    Ok(Model { config, weights: Box::new(weights), tokenizer })
}

/// Typed access to the metadata; a missing or mistyped key is a [`GgufError`] naming it.
pub(crate) struct Meta<'a> {
    path: &'a Path,
    map: &'a HashMap<String, Value>,
}

impl<'a> Meta<'a> {
    fn bad(&self, source: GgufError) -> Error {
        Error::BadGguf { path: self.path.to_path_buf(), source }
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.bad(GgufError::MissingKey(key.into())))
    }

    fn typed<T>(&self, key: &str, want: &'static str, cast: impl Fn(&'a Value) -> Option<T>) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => cast(v)
                .map(Some)
                .ok_or_else(|| self.bad(GgufError::WrongKeyType { key: key.into(), got: v.type_name(), want })),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", Value::as_f64)
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.typed(key, "a string", Value::as_str)
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", Value::as_bool)
    }

    fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>> {
        self.typed(key, "an array", Value::as_array)
    }

    fn str(&self, key: &str) -> Result<&'a str> {
        self.required(key, self.opt_str(key)?)
    }

    fn array(&self, key: &str) -> Result<&'a [Value]> {
        self.required(key, self.opt_array(key)?)
    }

    fn string_array(&self, key: &str) -> Result<Vec<&'a str>> {
        self.array(key)?
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.bad(GgufError::WrongKeyType { key: key.into(), got: "a non-string array", want: "an array of strings" }))
    }
}

/// Largest plausible size or count in a config, as `config.rs` bounds config.json's.
const MAX_DIM: u64 = 1 << 24;

fn model_config(meta: &Meta, tensors: &HashMap<String, TensorInfo>) -> Result<ModelConfig> {
    let arch_name = meta.str("general.architecture")?;
    let arch = match arch_name {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "qwen3" => Arch::Qwen3,
        other => return Err(Error::Unsupported(format!("GGUF architecture `{other}` (supported: llama, qwen2, qwen3)"))),
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let bad_value = |k: &str, msg: String| Error::BadConfig { path: meta.path.to_path_buf(), msg: format!("`{}` {msg}", key(k)) };
    let dim = |k: &str, default: Option<u64>| -> Result<usize> {
        match meta.required(&key(k), meta.opt_u64(&key(k))?.or(default))? {
            0 => Err(bad_value(k, "is 0".into())),
            x if x > MAX_DIM => Err(bad_value(k, format!("= {x} is implausibly large"))),
            x => Ok(x as usize),
        }
    };
    if meta.opt_u64(&key("expert_count"))?.unwrap_or(0) > 0 {
        return Err(Error::Unsupported("mixture-of-experts layers".into()));
    }
    if let Some(kind) = meta.opt_str(&key("rope.scaling.type"))?.filter(|&k| k != "none") {
        return Err(Error::Unsupported(format!("GGUF rope scaling `{kind}`")));
    }
    if tensors.contains_key("rope_freqs.weight") {
        return Err(Error::Unsupported("RoPE frequency factors (`rope_freqs.weight`, Llama 3.1+ scaling) in GGUF files".into()));
    }

    let hidden_size = dim("embedding_length", None)?;
    let num_heads = dim("attention.head_count", None)?;
    let num_kv_heads = dim("attention.head_count_kv", Some(num_heads as u64))?;
    let default_head_dim = (hidden_size % num_heads == 0).then_some((hidden_size / num_heads) as u64);
    let head_dim = dim("attention.key_length", default_head_dim)?;
    if dim("attention.value_length", Some(head_dim as u64))? != head_dim {
        return Err(bad_value("attention.value_length", format!("differs from key_length {head_dim}")));
    }
    if dim("rope.dimension_count", Some(head_dim as u64))? != head_dim {
        return Err(Error::Unsupported("partial rotary embeddings (rope.dimension_count < head dim)".into()));
    }
    if num_heads % num_kv_heads != 0 {
        return Err(bad_value("attention.head_count_kv", format!("{num_kv_heads} does not divide head_count {num_heads}")));
    }
    if head_dim % 2 != 0 {
        return Err(bad_value("attention.key_length", format!("{head_dim} is odd; RoPE needs pairs")));
    }
    let num_layers = dim("block_count", None)?;
    if num_layers > 1024 {
        return Err(bad_value("block_count", format!("= {num_layers} is implausibly large")));
    }
    let positive = |k: &str, default: f64| -> Result<f64> {
        match meta.opt_f64(&key(k))?.unwrap_or(default) {
            x if x.is_finite() && x > 0.0 => Ok(x),
            x => Err(bad_value(k, format!("= {x} must be positive"))),
        }
    };
    let tokens = meta.array("tokenizer.ggml.tokens")?;
    Ok(ModelConfig {
        arch,
        hidden_size,
        intermediate_size: dim("feed_forward_length", None)?,
        num_layers,
        num_heads,
        num_kv_heads,
        head_dim,
        vocab_size: tokens.len(),
        rms_norm_eps: positive("attention.layer_norm_rms_epsilon", 1e-6)? as f32,
        rope_theta: positive("rope.freq_base", 10000.0)?,
        rope_scaling: None,
        tie_word_embeddings: !tensors.contains_key(&gguf_name(WeightId::LmHead)),
        qkv_bias: tensors.contains_key(&gguf_name(WeightId::Layer(0, LayerWeight::QBias))),
        qk_norm: arch == Arch::Qwen3,
        max_position_embeddings: dim("context_length", Some(32768))?,
        bos_token_id: meta.opt_u64("tokenizer.ggml.bos_token_id")?.and_then(|id| u32::try_from(id).ok()),
        eos_token_ids: Vec::new(),
    })
}

/// The GGUF tensor name of a plain weight (llama.cpp's `LLM_TENSOR_NAMES`).
fn gguf_name(id: WeightId) -> String {
    use LayerWeight::*;
    match id {
        WeightId::Embed => "token_embd.weight".into(),
        WeightId::FinalNorm => "output_norm.weight".into(),
        WeightId::LmHead => "output.weight".into(),
        // Computed from the config, never stored; named so a lookup reports it missing.
        WeightId::RopeInvFreq => "rope_inv_freq".into(),
        WeightId::Layer(l, w) => {
            let tail = match w {
                InputNorm => "attn_norm.weight",
                QProj => "attn_q.weight",
                KProj => "attn_k.weight",
                VProj => "attn_v.weight",
                QBias => "attn_q.bias",
                KBias => "attn_k.bias",
                VBias => "attn_v.bias",
                QNorm => "attn_q_norm.weight",
                KNorm => "attn_k_norm.weight",
                OProj => "attn_output.weight",
                PostAttnNorm => "ffn_norm.weight",
                GateProj => "ffn_gate.weight",
                UpProj => "ffn_up.weight",
                DownProj => "ffn_down.weight",
                // Concatenations are built by compile from their parts, never looked up.
                QkvProj => "attn_qkv.weight",
                QkvBias => "attn_qkv.bias",
                GateUpProj => "ffn_gate_up.weight",
            };
            format!("blk.{l}.{tail}")
        }
    }
}

struct GgufWeights {
    path: PathBuf,
    map: Mmap,
    tensors: HashMap<String, TensorInfo>,
    config: ModelConfig,
}

impl WeightSource for GgufWeights {
    fn tensor(&self, id: WeightId) -> Result<SourceTensor<'_>> {
        let name = gguf_name(id);
        let info = self.tensors.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
        let want = expected_shape(&self.config, id);
        if info.shape() != want {
            return Err(Error::TensorMismatch { name, got: format!("shape {:?}", info.shape()), want: format!("shape {want:?}") });
        }
        let bytes = self.map.get(info.start..info.end).ok_or_else(|| Error::BadGguf {
            path: self.path.clone(),
            source: GgufError::TensorPastEnd { name: name.clone(), start: info.start as u64, end: info.end as u64, len: self.map.len() },
        })?;
        let rope_heads = llama_rope_heads(&self.config, id);
        let plain_dtype = match info.ggml_type {
            GgmlType::F32 => Some(DType::F32),
            GgmlType::F16 => Some(DType::F16),
            GgmlType::BF16 => Some(DType::BF16),
            _ => None,
        };
        if let (Some(dtype), None) = (plain_dtype, rope_heads) {
            return Ok(SourceTensor { shape: want, data: SourceData::Bytes { dtype, bytes } });
        }
        let mut values = dequant::dequantize(info.ggml_type, bytes).ok_or_else(|| {
            Error::Unsupported(format!("tensor `{name}` of type {} (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)", info.ggml_type.name()))
        })?;
        if let Some(heads) = rope_heads {
            values = unpermute_rope_rows(&values, heads, info.elements() / want[0]);
        }
        Ok(SourceTensor { shape: want, data: SourceData::Bf16(values) })
    }
}

/// For `llama`, llama.cpp's converter reorders the rows of each q/k head from Hugging Face's
/// half-split RoPE layout to interleaved pairs; returns the head count to undo that with, if any.
fn llama_rope_heads(cfg: &ModelConfig, id: WeightId) -> Option<usize> {
    use LayerWeight::*;
    match (cfg.arch, id) {
        (Arch::Llama, WeightId::Layer(_, QProj | QBias)) => Some(cfg.num_heads),
        (Arch::Llama, WeightId::Layer(_, KProj | KBias)) => Some(cfg.num_kv_heads),
        _ => None,
    }
}

/// Inverse of the converter's `permute`: within each head of `d` rows, GGUF row `2i + half`
/// holds Hugging Face row `half * d/2 + i`.
fn unpermute_rope_rows(values: &[half::bf16], heads: usize, row_len: usize) -> Vec<half::bf16> {
    let rows = values.len() / row_len;
    let d = rows / heads;
    let mut out = Vec::with_capacity(values.len());
    for row in 0..rows {
        let (head, within) = (row / d, row % d);
        let (half, i) = (within / (d / 2), within % (d / 2));
        let src = head * d + 2 * i + half;
        out.extend_from_slice(&values[src * row_len..(src + 1) * row_len]);
    }
    out
}
