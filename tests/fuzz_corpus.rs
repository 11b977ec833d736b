//! Replays the fuzz corpora (fuzz/corpus/<target>/) and the inputs that once crashed a target
//! (fuzz/regressions/<target>/) through the fuzz targets' entry points: each may be refused with
//! an error, none may panic. See fuzz/README.md.

use llmc::load::config::ModelConfig;
use std::panic::AssertUnwindSafe;
use std::path::Path;

fn replay(target: &str, run: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
                panic!("{} panicked", path.display());
            }
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus for fuzz target `{target}`");
}

#[test]
fn safetensors_corpus_never_panics() {
    let config = ModelConfig::from_json(include_str!("../fuzz/safetensors_config.json")).unwrap();
    replay("safetensors", |bytes| llmc::fuzzing::safetensors(&config, bytes));
}

#[test]
fn gguf_corpus_never_panics() {
    replay("gguf", llmc::fuzzing::gguf);
}

#[test]
fn plan_corpus_never_panics() {
    replay("plan", llmc::fuzzing::plan);
}

#[test]
fn config_corpus_never_panics() {
    replay("config", llmc::fuzzing::config);
}
