//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use llmc::compile::{compile, CompileOptions};
use llmc::plan::file::PlanFile;
use llmc::plan::Target;
use std::path::{Path, PathBuf};

pub const FIXTURES: [&str; 4] = ["qwen2_tied", "qwen3_untied", "llama_untied_scaled", "llama_tied_bias"];

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The reference outputs transformers recorded for a fixture (see tests/fixtures/make_fixtures.py).
#[derive(serde::Deserialize)]
pub struct Reference {
    pub input_ids: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
    pub greedy_ids: Vec<u32>,
    pub greedy_top2_margin: Vec<f32>,
    pub logits_after_greedy: Vec<f32>,
    pub tokenizer_check: TokenizerCheck,
}

#[derive(serde::Deserialize)]
pub struct TokenizerCheck {
    pub text: String,
    pub ids: Vec<u32>,
    pub chat_prompt: String,
    pub chat_prompt_ids: Vec<u32>,
}

pub fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixture_dir(name).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Compiles a fixture for the CPU into `dir` and opens the plan.
pub fn compile_fixture(name: &str, dir: &Path) -> PlanFile {
    let out = dir.join(format!("{name}.plan"));
    let opts =
        CompileOptions { weights: Default::default(), max_seq_len: 64, target: Target::Cpu, decode: llmc::compile::Decode::Graph, sms: None, progress: false };
    compile(&fixture_dir(name), &out, &opts).unwrap();
    PlanFile::open(&out).unwrap()
}

/// A copy of fixture `name` under `dir` whose config allows `positions` positions, so it can be
/// compiled with a longer context than the fixture's 128 (its random weights do not care).
pub fn fixture_with_context(name: &str, dir: &Path, positions: usize) -> PathBuf {
    let model = dir.join(format!("{name}-{positions}"));
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let config = model.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["max_position_embeddings"] = positions.into();
    std::fs::write(&config, json.to_string()).unwrap();
    model
}

/// ||a - b||_2 / ||b||_2.
pub fn rel_l2_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|x| x.is_finite()), "non-finite value in output");
    let diff: f32 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let norm: f32 = want.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// The block formats `llmc compile --quantize` takes.
pub const BLOCK_FORMATS: [llmc::ir::DType; 5] = llmc::ir::DType::BLOCK_FORMATS;

/// A Qwen2 model (qkv bias, untied head, 2 layers) whose every matrix row is whole 256-element
/// blocks, so every block format applies: hidden 256, FFN 512, 4 heads of 64 over 2 KV heads,
/// the qwen2_tied fixture's tokenizer (vocab 272). Random bf16 weights from a fixed seed, written
/// under `dir`; returns the model directory.
pub fn block_fixture(dir: &Path) -> PathBuf {
    block_fixture_with_ffn(dir, 512)
}

/// block_fixture with an FFN of `ffn` (a multiple of 256): long down-projection rows, which the
/// block-format GEMV splits over several warps (K of 4,096 and more).
pub fn block_fixture_with_ffn(dir: &Path, ffn: usize) -> PathBuf {
    use llmc::ir::{LayerWeight, WeightId};
    let model = dir.join(format!("block-fixture-{ffn}"));
    std::fs::create_dir_all(&model).unwrap();
    for file in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(fixture_dir("qwen2_tied").join(file), model.join(file)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture_dir("qwen2_tied").join("config.json")).unwrap()).unwrap();
    for (key, value) in
        [("hidden_size", 256), ("intermediate_size", ffn), ("num_attention_heads", 4), ("num_key_value_heads", 2), ("max_position_embeddings", 4096)]
    {
        config[key] = value.into();
    }
    config["tie_word_embeddings"] = false.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    let cfg = llmc::load::config::ModelConfig::from_file(&model.join("config.json")).unwrap();

    let mut ids = vec![WeightId::Embed, WeightId::LmHead, WeightId::FinalNorm];
    for l in 0..cfg.num_layers as u32 {
        use LayerWeight::*;
        ids.extend([InputNorm, PostAttnNorm, QProj, KProj, VProj, QBias, KBias, VBias, OProj, GateProj, UpProj, DownProj].map(|w| WeightId::Layer(l, w)));
    }
    let mut state = 0x9E3779B97F4A7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = ids
        .iter()
        .map(|&id| {
            let shape = llmc::load::expected_shape(&cfg, id);
            let n: usize = shape.iter().product();
            // Norm weights near 1, everything else small, as trained models have them.
            let (center, spread) = if shape.len() == 1 && !matches!(id, WeightId::Layer(_, LayerWeight::QBias | LayerWeight::KBias | LayerWeight::VBias)) {
                (1.0, 0.1)
            } else {
                (0.0, 0.08)
            };
            let bytes = (0..n).flat_map(|_| half::bf16::from_f32(center + spread * uniform()).to_le_bytes()).collect();
            (llmc::load::hf_name(id), shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, shape.clone(), bytes).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &model.join("model.safetensors")).unwrap();
    model
}

/// The tests' compile options: no progress, 64 positions, the target's default SM count.
pub fn options(weights: llmc::compile::Weights, target: Target, decode: llmc::compile::Decode) -> CompileOptions {
    CompileOptions { weights, max_seq_len: 64, target, decode, sms: None, progress: false }
}

/// Compiles `model` for `target`, keeping or making the weights as `weights` says.
pub fn compile_with(model: &Path, out: &Path, target: Target, weights: llmc::compile::Weights, max_seq_len: usize) -> PlanFile {
    compile(model, out, &CompileOptions { max_seq_len, ..options(weights, target, llmc::compile::Decode::Graph) }).unwrap();
    PlanFile::open(out).unwrap()
}

/// Compiles `model` expecting a refusal: its message, once checked that nothing was written.
pub fn compile_refused(model: &Path, out: &Path, opts: &CompileOptions) -> String {
    let err = compile(model, out, opts).err().expect("the compile is refused").to_string();
    assert!(!out.exists(), "a refused compile writes nothing");
    err
}
