//! A Hugging Face checkpoint directory: `config.json`, `model.safetensors` or shards listed in
//! `model.safetensors.index.json` (memory-mapped, never copied whole), `tokenizer.json`, and the
//! EOS ids and chat template from `generation_config.json` / `tokenizer_config.json`.

use super::config::ModelConfig;
use super::{expected_shape, hf_name, FileRange, Model, SourceData, SourceTensor, TokenizerSpec, WeightSource};
use crate::error::{Error, Result};
use crate::ir::{DType, WeightId};
use memmap2::Mmap;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One mapped safetensors file; tensors are parsed from the header on each lookup, which only
/// reads the (small) header.
struct Shard {
    path: PathBuf,
    file: std::fs::File,
    map: Mmap,
}

struct SafetensorsWeights {
    config: ModelConfig,
    shards: Vec<Shard>,
    /// Tensor name -> index into `shards`.
    index: HashMap<String, usize>,
}

pub fn open(dir: &Path) -> Result<Model> {
    let config = ModelConfig::from_file(&dir.join("config.json"))?;
    let weights = SafetensorsWeights::open(dir, config.clone())?;
    let tokenizer = tokenizer_spec(dir, &config)?;
    Ok(Model { config, weights: Box::new(weights), tokenizer })
}

fn map_file(path: &Path) -> Result<(std::fs::File, Mmap)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; a file changed under us can at worst produce wrong weights.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok((file, map))
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::BadSafetensors { path: path.to_path_buf(), msg: msg.into() }
}

impl SafetensorsWeights {
    fn open(dir: &Path, config: ModelConfig) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<String> = if single.exists() {
            vec!["model.safetensors".into()]
        } else if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&index_path, e.to_string()))?;
            let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad(&index_path, "no `weight_map` object"))?;
            let mut files: Vec<String> = map.values().filter_map(|v| v.as_str().map(String::from)).collect();
            files.sort();
            files.dedup();
            if files.iter().any(|f| f.contains('/') || f.contains("..")) {
                return Err(bad(&index_path, "shard names must be plain file names"));
            }
            files
        } else {
            return Err(Error::Input(format!("{}: no model.safetensors or model.safetensors.index.json", dir.display())));
        };
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            let path = dir.join(file);
            let (file, map) = map_file(&path)?;
            for name in tensor_names(&path, &map)? {
                index.insert(name, i);
            }
            shards.push(Shard { path, file, map });
        }
        Ok(SafetensorsWeights { config, shards, index })
    }
}

impl WeightSource for SafetensorsWeights {
    fn tensor(&self, id: WeightId) -> Result<SourceTensor<'_>> {
        let name = hf_name(id);
        let &i = self.index.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
        let shard = &self.shards[i];
        shard_tensor(&self.config, id, &shard.path, &shard.map, Some(&shard.file))
    }
}

/// The tensor names in one safetensors file's header.
pub(crate) fn tensor_names(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(path, e.to_string()))?;
    Ok(st.names().into_iter().map(String::from).collect())
}

/// Weight `id` from the bytes of one safetensors file, checked to have a float dtype and the
/// shape `config` expects. `file`, if given, is the open file those bytes were mapped from.
pub(crate) fn shard_tensor<'a>(config: &ModelConfig, id: WeightId, path: &Path, bytes: &'a [u8], file: Option<&'a std::fs::File>) -> Result<SourceTensor<'a>> {
    let name = hf_name(id);
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(path, e.to_string()))?;
    let view = st.tensor(&name).map_err(|e| bad(path, e.to_string()))?;
    let dtype = match view.dtype() {
        safetensors::Dtype::BF16 => DType::BF16,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::F32 => DType::F32,
        other => return Err(Error::TensorMismatch { name, got: format!("dtype {other:?}"), want: "bf16, f16 or f32".into() }),
    };
    let want = expected_shape(config, id);
    if view.shape() != want.as_slice() {
        return Err(Error::TensorMismatch { name, got: format!("shape {:?}", view.shape()), want: format!("shape {want:?}") });
    }
    let data = view.data();
    let file = file.map(|file| FileRange { file, offset: (data.as_ptr() as usize - bytes.as_ptr() as usize) as u64 });
    Ok(SourceTensor { shape: want, data: SourceData::Bytes { dtype, bytes: data, file } })
}

/// Reads the tokenizer and the generation settings. EOS ids are the union of config.json's and
/// generation_config.json's, as transformers' `generate` uses the latter.
fn tokenizer_spec(dir: &Path, config: &ModelConfig) -> Result<TokenizerSpec> {
    let tok_path = dir.join("tokenizer.json");
    let json = std::fs::read_to_string(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
    let tokenizer = tokenizers::Tokenizer::from_bytes(json.as_bytes()).map_err(|e| Error::Tokenizer(format!("{}: {e}", tok_path.display())))?;

    let read_json = |name: &str| -> Result<Option<serde_json::Value>> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::Input(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    };
    let mut eos_ids = config.eos_token_ids.clone();
    if let Some(gen) = read_json("generation_config.json")? {
        match gen.get("eos_token_id") {
            Some(serde_json::Value::Number(n)) => eos_ids.extend(n.as_u64().map(|x| x as u32)),
            Some(serde_json::Value::Array(a)) => eos_ids.extend(a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32)),
            _ => {}
        }
    }
    let tok_config = read_json("tokenizer_config.json")?;
    // A token entry is either a string or an AddedToken object with `content`.
    let token_text = |key: &str| -> Option<String> {
        let v = tok_config.as_ref()?.get(key)?;
        v.as_str().map(String::from).or_else(|| v.get("content")?.as_str().map(String::from))
    };
    let eos_token = token_text("eos_token");
    if let Some(id) = eos_token.as_deref().and_then(|t| tokenizer.token_to_id(t)) {
        eos_ids.push(id);
    }
    eos_ids.sort_unstable();
    eos_ids.dedup();
    let chat_template = tok_config.as_ref().and_then(|c| c.get("chat_template")).and_then(|t| t.as_str()).map(String::from);
    Ok(TokenizerSpec { json, chat_template, eos_ids, bos_token: token_text("bos_token"), eos_token })
}
