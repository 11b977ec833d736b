//! A GGUF file (llama.cpp's format): config from the `{arch}.*` metadata, weights dequantized to
//! bf16 on demand from the memory-mapped file, and the tokenizer rebuilt from `tokenizer.*`.

pub(crate) mod dequant;
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
    let model = read(path, map)?;
    tokenizers::Tokenizer::from_bytes(model.tokenizer.json.as_bytes()).map_err(|e| Error::Tokenizer(format!("rebuilt tokenizer.json does not load: {e}")))?;
    Ok(model)
}

/// Reads a GGUF file's bytes; `path` only names it in errors. The tokenizer.json is rebuilt but
/// not loaded: `open` proves that it loads (compiling its regexes is costly, and input-independent).
pub(crate) fn read<B: AsRef<[u8]> + Send + Sync + 'static>(path: &Path, map: B) -> Result<Model> {
    let gguf = GgufFile::parse(map.as_ref()).map_err(|reason| Error::BadGguf { path: path.to_path_buf(), reason })?;
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
    fn bad(&self, reason: GgufError) -> Error {
        Error::BadGguf { path: self.path.to_path_buf(), reason }
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.bad(GgufError::MissingKey(key.into())))
    }

    fn typed<T>(&self, key: &str, want: &'static str, cast: impl Fn(&'a Value) -> Option<T>) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => cast(v).map(Some).ok_or_else(|| self.bad(GgufError::WrongKeyType { key: key.into(), got: v.type_name(), want })),
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
    if tokens.is_empty() {
        return Err(Error::BadConfig { path: meta.path.to_path_buf(), msg: "`tokenizer.ggml.tokens` is empty".into() });
    }
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
        o_bias: tensors.contains_key(&gguf_name(WeightId::Layer(0, LayerWeight::OBias))),
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
                OBias => "attn_output.bias",
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

struct GgufWeights<B> {
    path: PathBuf,
    map: B,
    tensors: HashMap<String, TensorInfo>,
    config: ModelConfig,
}

impl<B: AsRef<[u8]> + Send + Sync> GgufWeights<B> {
    /// The tensor behind `id`: its name, header, shape (checked against the config) and bytes.
    fn raw(&self, id: WeightId) -> Result<(String, &TensorInfo, Vec<usize>, &[u8])> {
        let name = gguf_name(id);
        let info = self.tensors.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
        let want = expected_shape(&self.config, id);
        if info.shape() != want {
            return Err(Error::TensorMismatch { name, got: format!("shape {:?}", info.shape()), want: format!("shape {want:?}") });
        }
        let map = self.map.as_ref();
        let bytes = map.get(info.start..info.end).ok_or_else(|| Error::BadGguf {
            path: self.path.clone(),
            reason: GgufError::TensorPastEnd { name: name.clone(), start: info.start as u64, end: info.end as u64, len: map.len() },
        })?;
        Ok((name, info, want, bytes))
    }
}

/// The GGML types a plan keeps as stored.
fn kept_format(t: GgmlType) -> Option<DType> {
    Some(match t {
        GgmlType::Q8_0 => DType::Q8_0,
        GgmlType::Q4_0 => DType::Q4_0,
        GgmlType::Q4K => DType::Q4K,
        GgmlType::Q5K => DType::Q5K,
        GgmlType::Q6K => DType::Q6K,
        _ => return None,
    })
}

impl<B: AsRef<[u8]> + Send + Sync> WeightSource for GgufWeights<B> {
    fn block_format(&self, id: WeightId) -> Option<DType> {
        let info = self.tensors.get(&gguf_name(id))?;
        // Only matrices: a block format's rows are whole blocks (ggml requires it of every row).
        (info.shape().len() == 2).then(|| kept_format(info.ggml_type)).flatten()
    }

    fn blocks(&self, id: WeightId) -> Result<std::borrow::Cow<'_, [u8]>> {
        let (name, info, want, bytes) = self.raw(id)?;
        if kept_format(info.ggml_type).is_none() {
            return Err(Error::Internal(format!("tensor `{name}` of type {} is not kept as blocks", info.ggml_type.name())));
        }
        Ok(match llama_rope_heads(&self.config, id) {
            Some(heads) => unpermute_rope_rows(bytes, heads, bytes.len() / want[0]).into(),
            None => bytes.into(),
        })
    }

    fn tensor(&self, id: WeightId) -> Result<SourceTensor<'_>> {
        let (name, info, want, bytes) = self.raw(id)?;
        let rope_heads = llama_rope_heads(&self.config, id);
        let plain_dtype = match info.ggml_type {
            GgmlType::F32 => Some(DType::F32),
            GgmlType::F16 => Some(DType::F16),
            GgmlType::BF16 => Some(DType::BF16),
            _ => None,
        };
        if let (Some(dtype), None) = (plain_dtype, rope_heads) {
            return Ok(SourceTensor { shape: want, data: SourceData::Bytes { dtype, bytes, file: None } });
        }
        let mut values = dequant::dequantize(info.ggml_type, bytes).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor `{name}` of type {} (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)",
                info.ggml_type.name()
            ))
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
fn unpermute_rope_rows<T: Copy>(values: &[T], heads: usize, row_len: usize) -> Vec<T> {
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

#[cfg(test)]
mod tests {
    use super::test_writer::{GgufWriter, Meta as M};
    use super::*;
    use half::{bf16, f16};

    const TOKENS: &[&str] = &["a", "b", "ab", "Ġ", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "[PAD7]"];
    const TOKEN_TYPES: &[i32] = &[1, 1, 1, 1, 3, 3, 3, 5];
    const HIDDEN: u64 = 32;
    const HEAD_DIM: u64 = 16;

    /// A one-layer model: 2 query heads, 1 KV head, FFN 32, vocab 8; q_proj is Q8_0, the rest f32.
    fn tiny_model(arch: &str, pre: &str) -> GgufWriter {
        tiny_model_with(arch, pre, false)
    }

    /// `all_q8_0`: k, v, gate, up and down projections Q8_0 too (their ramps quantized).
    fn tiny_model_with(arch: &str, pre: &str, all_q8_0: bool) -> GgufWriter {
        let key = |k: &str| format!("{arch}.{k}");
        let ramp = |n: u64| (0..n).map(|i| i as f32 * 0.01).collect::<Vec<_>>();
        let kv = HEAD_DIM;
        // Q8_0 q_proj: row r holds d = 0.25 and qs[i] = i - r.
        let q_proj: Vec<u8> =
            (0..HIDDEN).flat_map(|r| f16::from_f32(0.25).to_le_bytes().into_iter().chain((0..32).map(move |i| (i - r as i32) as i8 as u8))).collect();
        GgufWriter::default()
            .meta("general.architecture", M::Str(arch))
            .meta(&key("block_count"), M::U32(1))
            .meta(&key("context_length"), M::U32(4096))
            .meta(&key("embedding_length"), M::U32(HIDDEN as u32))
            .meta(&key("feed_forward_length"), M::U32(32))
            .meta(&key("attention.head_count"), M::U32(2))
            .meta(&key("attention.head_count_kv"), M::U32(1))
            .meta(&key("attention.layer_norm_rms_epsilon"), M::F32(1e-5))
            .meta(&key("rope.freq_base"), M::F32(1e6))
            .meta("tokenizer.ggml.model", M::Str("gpt2"))
            .meta("tokenizer.ggml.pre", M::Str(pre))
            .meta("tokenizer.ggml.tokens", M::Strs(TOKENS))
            .meta("tokenizer.ggml.token_type", M::I32s(TOKEN_TYPES))
            .meta("tokenizer.ggml.merges", M::Strs(&["a b"]))
            .meta("tokenizer.ggml.bos_token_id", M::U32(4))
            .meta("tokenizer.ggml.eos_token_id", M::U32(6))
            .meta("tokenizer.chat_template", M::Str("{{ messages }}"))
            .f32_tensor("token_embd.weight", &[HIDDEN, 8], &ramp(HIDDEN * 8))
            .f32_tensor("output_norm.weight", &[HIDDEN], &[1.0; 32])
            .f32_tensor("blk.0.attn_norm.weight", &[HIDDEN], &[1.0; 32])
            .tensor("blk.0.attn_q.weight", &[HIDDEN, HIDDEN], 8, &q_proj)
            .matrix("blk.0.attn_k.weight", &[HIDDEN, kv], &ramp(HIDDEN * kv), all_q8_0)
            .matrix("blk.0.attn_v.weight", &[HIDDEN, kv], &ramp(HIDDEN * kv), all_q8_0)
            .f32_tensor("blk.0.attn_q.bias", &[HIDDEN], &ramp(HIDDEN))
            .f32_tensor("blk.0.attn_k.bias", &[kv], &ramp(kv))
            .f32_tensor("blk.0.attn_v.bias", &[kv], &ramp(kv))
            .f32_tensor("blk.0.attn_output.weight", &[HIDDEN, HIDDEN], &ramp(HIDDEN * HIDDEN))
            .f32_tensor("blk.0.ffn_norm.weight", &[HIDDEN], &[1.0; 32])
            .matrix("blk.0.ffn_gate.weight", &[HIDDEN, 32], &ramp(HIDDEN * 32), all_q8_0)
            .matrix("blk.0.ffn_up.weight", &[HIDDEN, 32], &ramp(HIDDEN * 32), all_q8_0)
            .matrix("blk.0.ffn_down.weight", &[32, HIDDEN], &ramp(32 * HIDDEN), all_q8_0)
    }

    fn open_bytes(bytes: &[u8]) -> Result<Model> {
        let mut file = tempfile::Builder::new().suffix(".gguf").tempfile().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        crate::load::open(file.path())
    }

    fn bf16_values(t: SourceTensor) -> Vec<f32> {
        match t.data {
            SourceData::Bf16(v) => v.iter().map(|x| x.to_f32()).collect(),
            SourceData::Bytes { .. } => panic!("expected dequantized data"),
        }
    }

    #[test]
    fn round_trips_a_tiny_qwen2() {
        let model = open_bytes(&tiny_model("qwen2", "qwen2").finish()).unwrap();
        let c = &model.config;
        assert_eq!(c.arch, Arch::Qwen2);
        assert_eq!((c.hidden_size, c.intermediate_size, c.num_layers), (32, 32, 1));
        assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size), (2, 1, 16, 8));
        assert_eq!((c.rms_norm_eps, c.rope_theta, c.max_position_embeddings), (1e-5, 1e6, 4096));
        assert!(c.tie_word_embeddings && c.qkv_bias && !c.qk_norm);
        assert_eq!((c.bos_token_id, c.eos_token_ids.as_slice()), (Some(4), &[4, 6][..]));

        let embed = model.weights.tensor(WeightId::Embed).unwrap();
        assert_eq!(embed.shape, vec![8, 32]);
        match embed.data {
            SourceData::Bytes { dtype: DType::F32, bytes, .. } => {
                assert_eq!(bytes.len(), 8 * 32 * 4);
                assert_eq!(&bytes[4..8], &0.01f32.to_le_bytes());
            }
            _ => panic!("f32 tensors are borrowed from the file"),
        }
        let q = model.weights.tensor(WeightId::Layer(0, LayerWeight::QProj)).unwrap();
        assert_eq!(q.shape, vec![32, 32]);
        let q = bf16_values(q);
        for (r, row) in q.chunks(32).enumerate() {
            let want: Vec<f32> = (0..32).map(|i| (i - r as i32) as f32 * 0.25).collect();
            assert_eq!(row, want.as_slice(), "row {r}");
        }
        assert!(matches!(model.weights.tensor(WeightId::LmHead), Err(Error::MissingTensor(n)) if n == "output.weight"));

        let t = &model.tokenizer;
        assert_eq!((t.bos_token.as_deref(), t.eos_token.as_deref()), (Some("<|endoftext|>"), Some("<|im_end|>")));
        assert_eq!(t.chat_template.as_deref(), Some("{{ messages }}"));
        let tok = tokenizers::Tokenizer::from_bytes(t.json.as_bytes()).unwrap();
        // Qwen2 adds no BOS; control tokens are matched whole; the padding token is dropped.
        assert_eq!(tok.encode("ab a<|im_end|>", true).unwrap().get_ids(), &[2, 3, 0, 6]);
        assert_eq!(tok.decode(&[2, 3, 0, 6], false).unwrap(), "ab a<|im_end|>");
        assert_eq!(tok.token_to_id("[PAD7]"), None);
    }

    /// Writes `bytes` as a .gguf file under `dir` and compiles it for the CPU, weights as `weights`.
    fn compile_gguf(dir: &Path, name: &str, bytes: &[u8], weights: crate::compile::Weights) -> crate::plan::file::PlanFile {
        let (model, plan) = (dir.join(format!("{name}.gguf")), dir.join(format!("{name}.plan")));
        std::fs::write(&model, bytes).unwrap();
        let opts = crate::compile::CompileOptions {
            weights,
            max_seq_len: 32,
            target: crate::plan::Target::Cpu,
            decode: crate::compile::Decode::Graph,
            sms: None,
            progress: false,
        };
        crate::compile::compile(&model, &plan, &opts).unwrap();
        crate::plan::file::PlanFile::open(&plan).unwrap()
    }

    fn logits_after(plan: &crate::plan::file::PlanFile, tokens: &[u32]) -> Vec<f32> {
        use crate::exec::Backend;
        let mut cpu = crate::exec::cpu::CpuExecutor::new(plan, crate::exec::sampling::SamplingParams::GREEDY).unwrap();
        cpu.prefill(tokens, 0).unwrap();
        cpu.logits().unwrap()
    }

    #[test]
    fn block_formats_are_kept_as_stored_and_mixed_groups_become_bf16() {
        use crate::compile::Weights;
        let model = open_bytes(&tiny_model("qwen2", "qwen2").finish()).unwrap();
        let q = WeightId::Layer(0, LayerWeight::QProj);
        assert_eq!(model.weights.block_format(q), Some(DType::Q8_0));
        assert_eq!(model.weights.block_format(WeightId::Layer(0, LayerWeight::KProj)), None, "f32 is not a block format");
        let blocks = model.weights.blocks(q).unwrap();
        assert_eq!((blocks.len(), &blocks[..4]), (32 * 34, &[0x00, 0x34, 0, 1][..]), "row 0: d = 0.25 (f16 0x3400), qs 0, 1, ..");

        // q is Q8_0 but k and v are f32: the concatenated qkv_proj is stored bf16; o_proj f32 too.
        let dir = tempfile::tempdir().unwrap();
        let mixed = compile_gguf(dir.path(), "mixed", &tiny_model("qwen2", "qwen2").finish(), Weights::AsStored);
        let qkv = mixed.plan.weights.iter().find(|w| w.id == WeightId::Layer(0, LayerWeight::QkvProj)).unwrap();
        assert_eq!(qkv.ty.dtype, DType::BF16);

        // Every projection Q8_0 (the down projection's rows of 32 too): each kept as stored, and
        // the logits within bf16's rounding of the bf16 plan's.
        let all = tiny_model_with("qwen2", "qwen2", true).finish();
        let stored = compile_gguf(dir.path(), "stored", &all, Weights::AsStored);
        let bf16 = compile_gguf(dir.path(), "bf16", &all, Weights::Bf16);
        for id in [LayerWeight::QkvProj, LayerWeight::GateUpProj, LayerWeight::DownProj] {
            let entry = stored.plan.weights.iter().find(|w| w.id == WeightId::Layer(0, id)).unwrap();
            assert_eq!(entry.ty.dtype, DType::Q8_0, "{id:?}");
        }
        assert!(stored.plan.weight_bytes < bf16.plan.weight_bytes);
        let (got, want) = (logits_after(&stored, &[1, 2, 3, 0]), logits_after(&bf16, &[1, 2, 3, 0]));
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        assert!(err.is_finite() && err < 1e-2, "as-stored vs bf16: {err}");
    }

    #[test]
    fn undoes_llama_rope_permutation_of_q_and_k() {
        // GGUF row h*d + 2i + half holds Hugging Face row h*d + half*d/2 + i; write each row's HF index.
        let d = HEAD_DIM as usize;
        let permuted = |rows: usize| -> Vec<f32> {
            (0..rows)
                .flat_map(|g| {
                    let (h, within) = (g / d, g % d);
                    let hf = h * d + (within % 2) * d / 2 + within / 2;
                    std::iter::repeat_n(hf as f32, HIDDEN as usize)
                })
                .collect()
        };
        let bytes = tiny_model("llama", "llama-bpe").f32_tensor("output.weight", &[HIDDEN, 8], &[0.0; 256]).finish();
        let model = open_bytes(&bytes).unwrap();
        assert!(!model.config.tie_word_embeddings);
        let k = bf16_values(model.weights.tensor(WeightId::Layer(0, LayerWeight::KBias)).unwrap());
        // attn_k.bias is a ramp over one head of 16: unpermuted, element r came from GGUF row 2i + half.
        let want: Vec<f32> = (0..16).map(|r| bf16::from_f32((2 * (r % 8) + r / 8) as f32 * 0.01).to_f32()).collect();
        assert_eq!(k, want);

        let q = permuted(32);
        let k = permuted(16);
        let rows = |v: &[f32]| -> Vec<f32> { v.chunks(HIDDEN as usize).map(|r| r[0]).collect() };
        let unpermuted_q = unpermute_rope_rows(&q.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>(), 2, HIDDEN as usize);
        let unpermuted_k = unpermute_rope_rows(&k.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>(), 1, HIDDEN as usize);
        let as_f32 = |v: Vec<bf16>| v.iter().map(|x| x.to_f32()).collect::<Vec<_>>();
        assert_eq!(rows(&as_f32(unpermuted_q)), (0..32).map(|r| r as f32).collect::<Vec<_>>());
        assert_eq!(rows(&as_f32(unpermuted_k)), (0..16).map(|r| r as f32).collect::<Vec<_>>());

        // llama-bpe adds BOS by default.
        let tok = tokenizers::Tokenizer::from_bytes(model.tokenizer.json.as_bytes()).unwrap();
        assert_eq!(tok.encode("ab", true).unwrap().get_ids(), &[4, 2]);
    }

    #[test]
    fn refuses_unsupported_or_incomplete_models() {
        let cases = [
            (tiny_model("gemma", "qwen2"), "GGUF architecture `gemma`"),
            (tiny_model("qwen2", "falcon"), "pre-tokenizer `falcon`"),
            (tiny_model("qwen2", "qwen2").meta("tokenizer.ggml.model", M::Str("llama")), "duplicate metadata key"),
            (tiny_model("qwen2", "qwen2").meta("qwen2.expert_count", M::U32(8)), "mixture-of-experts"),
            (tiny_model("qwen2", "qwen2").meta("general.alignment", M::U32(3)), "not a power of two"),
            (GgufWriter::default().meta("general.architecture", M::Str("qwen3")), "missing metadata `qwen3.embedding_length`"),
            (
                GgufWriter::default()
                    .meta("general.architecture", M::Str("qwen2"))
                    .meta("qwen2.block_count", M::U32(1))
                    .meta("qwen2.embedding_length", M::U32(32))
                    .meta("qwen2.feed_forward_length", M::U32(32))
                    .meta("qwen2.attention.head_count", M::U32(2))
                    .meta("tokenizer.ggml.tokens", M::Strs(&[])),
                "`tokenizer.ggml.tokens` is empty",
            ),
            (GgufWriter::default().meta("general.architecture", M::U32(1)), "metadata `general.architecture` is u32, expected a string"),
        ];
        for (writer, needle) in cases {
            let err = open_bytes(&writer.finish()).err().expect("must be refused").to_string();
            assert!(err.contains(needle), "error `{err}` should mention `{needle}`");
        }
        let model = open_bytes(&tiny_model("qwen2", "qwen2").f32_tensor("output.weight", &[HIDDEN, 7], &[0.0; 224]).finish()).unwrap();
        let err = model.weights.tensor(WeightId::LmHead).err().unwrap().to_string();
        assert!(err.contains("tensor `output.weight` has shape [7, 32], expected shape [8, 32]"), "{err}");
    }

    /// The real Qwen2.5-Coder-1.5B-Instruct Q4_K_M file (scripts/fetch-model.sh), path in LLMC_GGUF.
    /// Checks every weight's shape, plausibility, and bit-exactness against gguf-py's dequantization
    /// (checksums from tests/fixtures/gguf/make_real_checksums.py), and the tokenizer round trip.
    #[test]
    #[ignore = "needs the real model; scripts/test.sh runs it"]
    fn real_qwen2_5_coder_q4_k_m() {
        let path = std::env::var("LLMC_GGUF").expect("set LLMC_GGUF to the .gguf file");
        let model = crate::load::open(Path::new(&path)).unwrap();
        let c = &model.config;
        assert_eq!((c.arch, c.num_layers, c.hidden_size, c.intermediate_size), (Arch::Qwen2, 28, 1536, 8960));
        assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size), (12, 2, 128, 151936));
        assert!(c.qkv_bias && !c.tie_word_embeddings && !c.qk_norm);
        assert_eq!(c.eos_token_ids, vec![151643, 151645]);

        let checksums: serde_json::Value = serde_json::from_str(include_str!("../../tests/fixtures/gguf/qwen2.5-coder-1.5b-q4_k_m-checksums.json")).unwrap();
        use LayerWeight::*;
        let layer_weights = [InputNorm, QProj, KProj, VProj, QBias, KBias, VBias, OProj, PostAttnNorm, GateProj, UpProj, DownProj];
        let ids =
            [WeightId::Embed, WeightId::FinalNorm, WeightId::LmHead].into_iter().chain((0..28).flat_map(|l| layer_weights.map(|w| WeightId::Layer(l, w))));
        let mut loading = std::time::Duration::ZERO;
        for id in ids {
            let started = std::time::Instant::now();
            let t = model.weights.tensor(id).unwrap();
            loading += started.elapsed();
            assert_eq!(t.shape, expected_shape(c, id), "{id}");
            let values: Vec<bf16> = match t.data {
                SourceData::Bf16(v) => v,
                SourceData::Bytes { dtype: DType::F32, bytes, .. } => {
                    bytes.chunks_exact(4).map(|b| bf16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()
                }
                SourceData::Bytes { dtype, .. } => panic!("{id}: unexpected {dtype}"),
            };
            let sum = values.iter().enumerate().fold(0u64, |acc, (i, v)| acc.wrapping_add((v.to_bits() as u64).wrapping_mul((i % 1000003) as u64 + 1)));
            let name = gguf_name(id);
            assert_eq!(sum.to_string(), checksums[&name]["checksum"].as_str().unwrap(), "{name} differs from gguf-py");
            let max_abs = values.iter().map(|v| v.to_f32().abs()).fold(0f32, f32::max);
            assert!(values.iter().all(|v| v.is_finite()), "{name}");
            let mean_abs = values.iter().map(|v| v.to_f32().abs() as f64).sum::<f64>() / values.len() as f64;
            match id {
                WeightId::FinalNorm | WeightId::Layer(_, InputNorm | PostAttnNorm) => {
                    assert!((0.01..100.0).contains(&mean_abs), "{name}: mean |x| {mean_abs}")
                }
                WeightId::Layer(_, QBias | KBias | VBias) => assert!(max_abs < 1000.0, "{name}: max |x| {max_abs}"),
                _ => assert!(mean_abs < 0.2 && max_abs < 50.0, "{name}: mean |x| {mean_abs}, max {max_abs}"),
            }
        }
        eprintln!("all weights loaded (dequantized) in {loading:?}");

        let tok = tokenizers::Tokenizer::from_bytes(model.tokenizer.json.as_bytes()).unwrap();
        for text in ["def fibonacci(n):", "你好，世界 🌍", "<|im_start|>user\nhi<|im_end|>"] {
            let ids = tok.encode(text, true).unwrap().get_ids().to_vec();
            eprintln!("{text:?} -> {ids:?}");
            assert_eq!(tok.decode(&ids, false).unwrap(), text);
        }
        assert_eq!(tok.encode("<|im_start|>user", true).unwrap().get_ids(), &[151644, 872]);
        assert!(model.tokenizer.chat_template.as_deref().is_some_and(|t| t.contains("<|im_start|>")));
    }
}
