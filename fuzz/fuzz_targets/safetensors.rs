#![no_main]
use llmc::load::config::ModelConfig;
use std::sync::LazyLock;

/// The config every input is read against (tiny, so that seeds can hold whole models).
static CONFIG: LazyLock<ModelConfig> =
    LazyLock::new(|| ModelConfig::from_json(include_str!("../safetensors_config.json")).expect("valid config"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| llmc::fuzzing::safetensors(&CONFIG, data));
