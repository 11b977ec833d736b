//! `config.json` of a Hugging Face model: parsed, validated, and reduced to what lowering needs.
//! Anything the compiler does not implement (other architectures, sliding windows, MoE, other
//! activations or RoPE scalings) is refused here, by name.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn hf_name(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// Llama-3 style RoPE frequency scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias (Qwen2; Llama with `attention_bias`).
    pub qkv_bias: bool,
    /// The attention output projection carries a bias (Llama with `attention_bias`).
    pub o_bias: bool,
    /// Per-head RMSNorm of q and k before RoPE (Qwen3).
    pub qk_norm: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<u32> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<serde_json::Value>,
    rope_parameters: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    num_experts: Option<usize>,
    num_local_experts: Option<usize>,
    max_position_embeddings: Option<usize>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|e| match e {
            Error::BadConfig { msg, .. } => Error::BadConfig { path: path.to_path_buf(), msg },
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |msg: String| Error::BadConfig { path: "config.json".into(), msg };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let archs = raw.architectures.ok_or_else(|| bad("no `architectures` field".into()))?;
        let arch_name = archs.first().ok_or_else(|| bad("`architectures` is empty".into()))?;
        let arch = match arch_name.as_str() {
            "LlamaForCausalLM" => Arch::Llama,
            "Qwen2ForCausalLM" => Arch::Qwen2,
            "Qwen3ForCausalLM" => Arch::Qwen3,
            other => return Err(Error::Unsupported(format!("architecture `{other}` (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)"))),
        };
        if raw.use_sliding_window == Some(true) {
            return Err(Error::Unsupported("sliding-window attention (`use_sliding_window: true`)".into()));
        }
        if raw.num_experts.unwrap_or(0) > 0 || raw.num_local_experts.unwrap_or(0) > 0 {
            return Err(Error::Unsupported("mixture-of-experts layers".into()));
        }
        if raw.mlp_bias == Some(true) {
            return Err(Error::Unsupported("MLP biases (`mlp_bias: true`)".into()));
        }
        if let Some(act) = raw.hidden_act.as_deref() {
            if act != "silu" {
                return Err(Error::Unsupported(format!("activation `{act}` (only silu)")));
            }
        }
        let need = |v: Option<usize>, name: &str| -> Result<usize> {
            match v {
                Some(0) => Err(bad(format!("`{name}` is 0"))),
                Some(x) if x > 1 << 24 => Err(bad(format!("`{name}` = {x} is implausibly large"))),
                Some(x) => Ok(x),
                None => Err(bad(format!("missing `{name}`"))),
            }
        };
        let hidden_size = need(raw.hidden_size, "hidden_size")?;
        let num_heads = need(raw.num_attention_heads, "num_attention_heads")?;
        let num_kv_heads = need(raw.num_key_value_heads.or(raw.num_attention_heads), "num_key_value_heads")?;
        let head_dim = match raw.head_dim {
            Some(d) => need(Some(d), "head_dim")?,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => return Err(bad("hidden_size is not a multiple of num_attention_heads".into())),
        };
        if num_heads % num_kv_heads != 0 {
            return Err(bad(format!("num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}")));
        }
        if head_dim % 2 != 0 {
            return Err(bad(format!("head_dim {head_dim} is odd; RoPE needs pairs")));
        }
        let num_layers = need(raw.num_hidden_layers, "num_hidden_layers")?;
        if num_layers > 1024 {
            return Err(bad(format!("num_hidden_layers = {num_layers} is implausibly large")));
        }
        // transformers 5 moves rope settings into `rope_parameters`; older configs use
        // `rope_theta` and `rope_scaling`.
        let params = raw.rope_parameters.as_ref();
        let rope_theta = raw.rope_theta.or_else(|| params.and_then(|p| p.get("rope_theta")).and_then(|v| v.as_f64())).unwrap_or(10000.0);
        if !(rope_theta.is_finite() && rope_theta > 0.0) {
            return Err(bad(format!("rope_theta {rope_theta} must be positive")));
        }
        let scaling_json = raw.rope_scaling.clone().filter(|v| !v.is_null()).or_else(|| params.cloned());
        let rope_scaling = match scaling_json {
            None => None,
            Some(v) => parse_rope_scaling(&v).map_err(bad)?,
        };
        let rms_norm_eps = raw.rms_norm_eps.unwrap_or(1e-6);
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(bad(format!("rms_norm_eps {rms_norm_eps} must be positive")));
        }
        Ok(ModelConfig {
            arch,
            hidden_size,
            intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: need(raw.vocab_size, "vocab_size")?,
            rms_norm_eps: rms_norm_eps as f32,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            qkv_bias: match arch {
                Arch::Qwen2 => true,
                Arch::Llama | Arch::Qwen3 => raw.attention_bias.unwrap_or(false),
            },
            o_bias: arch != Arch::Qwen2 && raw.attention_bias.unwrap_or(false),
            qk_norm: arch == Arch::Qwen3,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(32768),
            bos_token_id: raw.bos_token_id,
            eos_token_ids: raw.eos_token_id.map(OneOrMany::into_vec).unwrap_or_default(),
        })
    }

    /// RoPE inverse frequencies (head_dim/2 of them), with Llama-3 scaling applied, in f32 as
    /// transformers computes them.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        (0..d / 2)
            .map(|i| {
                // transformers: 1.0 / (base ** (arange(0, dim, 2, dtype=int64).float() / dim)), in f32
                let exponent = (2 * i) as f32 / d as f32;
                let inv = 1.0f32 / (self.rope_theta as f32).powf(exponent);
                match &self.rope_scaling {
                    None => inv,
                    Some(s) => llama3_scale(inv, s),
                }
            })
            .collect()
    }

    /// Stable hash of the configuration, recorded in the plan.
    pub fn hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(serde_json::to_string(self).expect("config serializes").as_bytes())
    }
}

fn parse_rope_scaling(v: &serde_json::Value) -> std::result::Result<Option<Llama3RopeScaling>, String> {
    let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
    match kind {
        "default" => Ok(None),
        "llama3" => {
            let f = |name: &str| v.get(name).and_then(|x| x.as_f64()).ok_or_else(|| format!("rope_scaling llama3 lacks `{name}`"));
            Ok(Some(Llama3RopeScaling {
                factor: f("factor")?,
                low_freq_factor: f("low_freq_factor")?,
                high_freq_factor: f("high_freq_factor")?,
                original_max_position_embeddings: f("original_max_position_embeddings")?,
            }))
        }
        other => Err(format!("unsupported rope_scaling type `{other}` (supported: default, llama3)")),
    }
}

/// transformers' `_compute_llama3_parameters`, per frequency.
fn llama3_scale(inv_freq: f32, s: &Llama3RopeScaling) -> f32 {
    let low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
    let high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
    let wavelen = 2.0 * std::f64::consts::PI / inv_freq as f64;
    if wavelen < high_freq_wavelen {
        inv_freq
    } else if wavelen > low_freq_wavelen {
        inv_freq / s.factor as f32
    } else {
        let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        ((1.0 - smooth) * inv_freq as f64 / s.factor + smooth * inv_freq as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN2: &str = r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":1536,"intermediate_size":8960,
        "num_hidden_layers":28,"num_attention_heads":12,"num_key_value_heads":2,"vocab_size":151936,
        "rms_norm_eps":1e-6,"rope_theta":1000000.0,"tie_word_embeddings":true,"use_sliding_window":false,
        "sliding_window":32768,"hidden_act":"silu","eos_token_id":151645}"#;

    #[test]
    fn parses_qwen2() {
        let c = ModelConfig::from_json(QWEN2).unwrap();
        assert_eq!(c.arch, Arch::Qwen2);
        assert_eq!(c.head_dim, 128);
        assert!(c.qkv_bias && !c.qk_norm && c.tie_word_embeddings);
        assert_eq!(c.eos_token_ids, vec![151645]);
    }

    #[test]
    fn refuses_what_it_cannot_compile() {
        let cases = [
            (QWEN2.replace("Qwen2ForCausalLM", "MistralForCausalLM"), "MistralForCausalLM"),
            (QWEN2.replace("\"use_sliding_window\":false", "\"use_sliding_window\":true"), "sliding"),
            (QWEN2.replace("\"hidden_act\":\"silu\"", "\"hidden_act\":\"gelu\""), "gelu"),
            (QWEN2.replace("\"hidden_size\":1536,", ""), "hidden_size"),
            (QWEN2.replace("\"num_key_value_heads\":2", "\"num_key_value_heads\":5"), "multiple"),
            (QWEN2.replace("1536", "\"big\""), "invalid type"),
            (QWEN2.replace("\"tie_word_embeddings\"", "\"num_experts\":8,\"tie_word_embeddings\""), "mixture"),
            (r#"{"architectures":["Qwen2ForCausalLM"],"#.to_string(), "EOF"),
        ];
        for (json, needle) in cases {
            let err = ModelConfig::from_json(&json).unwrap_err().to_string();
            assert!(err.contains(needle), "error `{err}` should mention `{needle}`");
        }
    }

    #[test]
    fn llama3_scaling_matches_transformers_rule() {
        let json = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":3072,"intermediate_size":8192,
            "num_hidden_layers":28,"num_attention_heads":24,"num_key_value_heads":8,"head_dim":128,
            "vocab_size":128256,"rms_norm_eps":1e-5,"rope_theta":500000.0,
            "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192}}"#;
        let c = ModelConfig::from_json(json).unwrap();
        let f = c.rope_inv_freq();
        assert_eq!(f.len(), 64);
        // Highest frequencies (short wavelengths) are unchanged, the lowest divided by the factor.
        assert_eq!(f[0], 1.0);
        let unscaled_last = 1.0f32 / 500000f32.powf(126.0 / 128.0);
        assert!((f[63] - unscaled_last / 32.0).abs() < 1e-12);
    }
}
