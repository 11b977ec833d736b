//! The same model stored differently compiles to the same plan: bf16 in one file, f32 split over
//! two shards with an index, f16. The fixture's weights are bf16 values, which f32 holds exactly
//! and f16 holds for these magnitudes, so the weight blobs must be byte-identical.

mod common;
use common::*;
use llmc::compile::{compile, CompileOptions};
use llmc::plan::file::PlanFile;
use llmc::plan::Target;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Copies the qwen2 fixture into `dir`, with its weights converted by `convert` and split into
/// `shards` files (with a model.safetensors.index.json when more than one).
fn rewrite(dir: &Path, dtype: Dtype, shards: usize, convert: impl Fn(f32) -> Vec<u8>) {
    let src = fixture_dir("qwen2_tied");
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(src.join(name), dir.join(name)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let converted: Vec<(String, Vec<usize>, Vec<u8>)> = names
        .iter()
        .map(|name| {
            let t = st.tensor(name).unwrap();
            assert_eq!(t.dtype(), Dtype::BF16);
            let data = t.data().chunks_exact(2).flat_map(|b| convert(half::bf16::from_le_bytes([b[0], b[1]]).to_f32())).collect();
            (name.clone(), t.shape().to_vec(), data)
        })
        .collect();
    let per_shard = converted.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in converted.chunks(per_shard).enumerate() {
        let file = if shards == 1 { "model.safetensors".to_string() } else { format!("model-{:05}-of-{shards:05}.safetensors", i + 1) };
        let views: Vec<(String, TensorView)> = chunk.iter().map(|(n, shape, data)| (n.clone(), TensorView::new(dtype, shape.clone(), data).unwrap())).collect();
        std::fs::write(dir.join(&file), safetensors::serialize(views, None).unwrap()).unwrap();
        for (n, _, _) in chunk {
            weight_map.insert(n.clone(), file.clone().into());
        }
    }
    if shards > 1 {
        let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    }
}

fn weight_blob(model: &Path, out: &Path) -> Vec<u8> {
    let opts =
        CompileOptions { weights: Default::default(), max_seq_len: 32, target: Target::Cpu, decode: llmc::compile::Decode::Graph, sms: None, progress: false };
    compile(model, out, &opts).unwrap();
    PlanFile::open(out).unwrap().weights().to_vec()
}

#[test]
fn f32_shards_and_f16_compile_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = weight_blob(&fixture_dir("qwen2_tied"), &tmp.path().join("bf16.plan"));
    let f32_dir = tmp.path().join("f32");
    std::fs::create_dir(&f32_dir).unwrap();
    rewrite(&f32_dir, Dtype::F32, 3, |x| x.to_le_bytes().to_vec());
    assert!(f32_dir.join("model.safetensors.index.json").exists());
    assert_eq!(weight_blob(&f32_dir, &tmp.path().join("f32.plan")), reference, "f32 shards");
    let f16_dir = tmp.path().join("f16");
    std::fs::create_dir(&f16_dir).unwrap();
    rewrite(&f16_dir, Dtype::F16, 1, |x| half::f16::from_f32(x).to_le_bytes().to_vec());
    let f16_blob = weight_blob(&f16_dir, &tmp.path().join("f16.plan"));
    // f16 has fewer exponent bits: values it cannot hold exactly may differ in the last bit, but
    // the layout and nearly every value must agree.
    assert_eq!(f16_blob.len(), reference.len());
    let same = f16_blob.chunks(2).zip(reference.chunks(2)).filter(|(a, b)| a == b).count();
    assert!(same * 100 >= reference.len() / 2 * 99, "f16: only {same} of {} values equal", reference.len() / 2);
}
