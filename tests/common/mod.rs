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
    let opts = CompileOptions { weights: Default::default(), max_seq_len: 64, target: Target::Cpu, decode: llmc::compile::Decode::Graph, sms: None, progress: false };
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
