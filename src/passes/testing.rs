//! Test harnesses for single passes. `check` runs a pass on a small graph written by hand in the
//! listing's text form (`ir::text`) and compares the result with the listing expected, so each
//! test shows the pattern, what it becomes, and where the pass must leave a graph alone.
//! `snapshot_pass` runs a one-layer model small enough to read, carrying every feature a pass may
//! match (q/k/v bias, q/k norm, tied head), through the passes before the one under test.

use super::PASSES;
use crate::ir::{verify, Graph};
use crate::load::config::{Arch, ModelConfig};

/// Runs `pass` on the graph `before` and checks that the result lists as `after`. Both are
/// listings (indentation and blank lines ignored); both graphs must pass `ir::verify`.
pub fn check(pass: fn(Graph) -> Graph, before: &str, after: &str) {
    let g = Graph::parse(before).unwrap_or_else(|e| panic!("the graph before: {e}"));
    verify(&g).unwrap_or_else(|e| panic!("the graph before is invalid: {e}"));
    let g = pass(g);
    verify(&g).unwrap_or_else(|e| panic!("the pass made an invalid graph: {e}"));
    let want: String = after.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    let got = g.compacted().listing();
    assert!(got == want, "the pass made\n{got}\nexpected\n{want}");
}

/// `pass` leaves the graph `before` as it is (compared as listed: outputs in name order).
pub fn check_unchanged(pass: fn(Graph) -> Graph, before: &str) {
    let listed = Graph::parse(before).unwrap_or_else(|e| panic!("the graph before: {e}")).listing();
    check(pass, before, &listed);
}

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
