//! Snapshot harness for single passes: a one-layer model small enough to read, carrying every
//! feature a pass may match (q/k/v bias, q/k norm, tied head), lowered and run through the passes
//! before the one under test.

use super::PASSES;
use crate::load::config::{Arch, ModelConfig};

pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Qwen3,
        hidden_size: 8,
        intermediate_size: 16,
        num_layers: 1,
        num_heads: 2,
        num_kv_heads: 1,
        head_dim: 4,
        vocab_size: 32,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        rope_scaling: None,
        tie_word_embeddings: true,
        qkv_bias: true,
        o_bias: false,
        qk_norm: true,
        max_position_embeddings: 64,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

/// The listing of the tiny graph just before pass `name` and just after it.
pub fn snapshot_pass(name: &str) -> String {
    let mut g = crate::lower::lower(&tiny_config(), 16);
    for pass in PASSES {
        if pass.name == name {
            let before = g.compacted().listing();
            let after = (pass.run)(g);
            crate::ir::verify(&after).unwrap_or_else(|e| panic!("invalid graph after {name}: {e}"));
            let after = after.compacted().listing();
            return format!("==== before {name} ====\n{before}\n==== after {name} ====\n{after}");
        }
        g = (pass.run)(g);
    }
    panic!("no pass named {name}");
}
