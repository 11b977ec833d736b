//! Byte-slice entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_corpus.rs`, which
//! replays their corpora. Each reads untrusted bytes the way llmc reads that kind of file and
//! discards the result: any input may be refused with an error, none may panic. Not a stable API.

use crate::ir::{LayerWeight, WeightId};
use crate::load::config::ModelConfig;
use crate::load::{gguf, hf, SourceData};
use crate::plan::file::PlanFile;
use crate::plan::Region;
use std::path::Path;

/// Every plain weight a model of `config` could be asked for: all of them, whatever the config's
/// flags say, so that unexpected tensors are read too.
fn plain_weights(config: &ModelConfig) -> impl Iterator<Item = WeightId> {
    use LayerWeight::*;
    const PLAIN: [LayerWeight; 15] =
        [InputNorm, QProj, KProj, VProj, QBias, KBias, VBias, QNorm, KNorm, OProj, OBias, PostAttnNorm, GateProj, UpProj, DownProj];
    let layers = (0..config.num_layers as u32).flat_map(|l| PLAIN.map(|w| WeightId::Layer(l, w)));
    [WeightId::Embed, WeightId::FinalNorm, WeightId::LmHead].into_iter().chain(layers)
}

/// One safetensors file holding the weights of `config`: its header, then every weight.
pub fn safetensors(config: &ModelConfig, bytes: &[u8]) {
    let path = Path::new("fuzz.safetensors");
    if hf::tensor_names(path, bytes).is_err() {
        return;
    }
    for id in plain_weights(config) {
        if let Ok(tensor) = hf::shard_tensor(config, id, path, bytes, None) {
            std::hint::black_box(tensor.shape);
        }
    }
}

/// A GGUF file: metadata, tensor infos, config, tokenizer metadata, then every weight dequantized.
pub fn gguf(bytes: &[u8]) {
    let Ok(model) = gguf::read(Path::new("fuzz.gguf"), bytes.to_vec()) else { return };
    for id in plain_weights(&model.config) {
        if let Ok(tensor) = model.weights.tensor(id) {
            std::hint::black_box(match tensor.data {
                SourceData::Bytes { bytes, .. } => bytes.len(),
                SourceData::Bf16(values) => values.len(),
            });
        }
    }
}

/// A plan file, verified as `PlanFile::open` does, then once more with its checksum made valid:
/// random bytes almost never carry a matching checksum, and decoding and the bounds checks lie
/// behind it. A plan that verifies has every weight slot read.
pub fn plan(bytes: &[u8]) {
    let path = Path::new("fuzz.llmcplan");
    let _ = PlanFile::verify(path, bytes);
    let Some(body) = bytes.len().checked_sub(8) else { return };
    let mut map = memmap2::MmapMut::map_anon(bytes.len()).expect("anonymous map");
    map[..bytes.len()].copy_from_slice(bytes);
    let checksum = xxhash_rust::xxh3::xxh3_64(&bytes[..body]);
    map[body..bytes.len()].copy_from_slice(&checksum.to_le_bytes());
    let Ok(map) = map.make_read_only() else { return };
    if let Ok(file) = PlanFile::from_map(path, map) {
        for slot in file.plan.steps.iter().flat_map(|s| s.inputs.iter().chain(&s.outputs)) {
            if slot.region == Region::Weights {
                std::hint::black_box(file.weight(slot));
            }
        }
    }
}

/// A config.json.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(config) = ModelConfig::from_json(text) {
        std::hint::black_box(config.hash());
    }
}
