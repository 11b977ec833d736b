//! The fused plans of three published 28-layer configs, pinned as reviewable files under
//! `plans/`: any change to lowering, fusion, scheduling or the arena shows up as a diff of
//! `plans/*.snap`. Built from the config alone: the plan's layout does not depend on weight
//! values. Also asserts the fusion claims outright: no cast, view, reshape, transpose or
//! unsqueeze survives, and every layer costs the same fixed number of kernels.

use llmc::load::config::ModelConfig;
use llmc::load::TokenizerSpec;
use llmc::plan::{self, inspect, Target};
use std::path::Path;

fn fused_plan(config_file: &str) -> plan::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs").join(config_file);
    let config = ModelConfig::from_file(&path).unwrap();
    let tokenizer = TokenizerSpec { json: String::new(), chat_template: None, eos_ids: vec![], bos_token: None, eos_token: None };
    plan::build(&config, tokenizer, 4096, Target::Cuda { sm: 90 }).unwrap()
}

fn check(name: &str, config_file: &str) {
    let plan = fused_plan(config_file);
    for kind in ["cast", "view", "reshape", "unsqueeze", "transpose", "add", "mul", "silu", "apply_rope", "kv_append", "rms_norm_core"] {
        assert!(!plan.ops_after_fusion.contains_key(kind), "{name}: `{kind}` survived fusion");
    }
    for kind in ["cast", "view", "unsqueeze", "transpose"] {
        assert!(plan.ops_before_fusion.get(kind).copied().unwrap_or(0) > 0, "{name}: lowering should be faithful and hold `{kind}`");
    }
    // embedding + 5 per layer (norm+qkv_rope, attention, o_proj+residual, norm+gate_up_silu,
    // down+residual) + final norm+LM head + sampler: every hidden-state RMSNorm is folded into
    // the GEMV that consumes it.
    assert!(!plan.ops_after_fusion.contains_key("rms_norm"), "{name}: an RMSNorm kernel survived");
    assert_eq!(plan.kernels_per_token(), 5 * plan.config.num_layers + 3, "{name}");
    plan.check_arena().unwrap();
    // On the graph path (132 SMs) each layer's gate/up and down projections are one `mlp`
    // launch (kernels/mlp.cu); the persistent program keeps them apart.
    let (decode, _) = llmc::exec::cuda::launch_shapes(&plan, 132).unwrap();
    let count = |kernel: &str| decode.iter().filter(|l| l.kernel == kernel).count();
    assert_eq!((count("mlp"), count("gate_up_silu"), count("linear")), (plan.config.num_layers, 0, plan.config.num_layers), "{name}");
    assert_eq!(decode.len(), plan.kernels_per_token() - plan.config.num_layers + 1, "{name}: the steps less one a layer, and `advance`");
    // The persistent decode program for an H100/H200 (132 SMs): which steps wait on which,
    // tasks and instructions per step, bytes per worker.
    let program = llmc::exec::cuda::persistent::schedule(&plan, 132).unwrap();
    program.check(plan.steps.len()).unwrap();
    insta::with_settings!({ snapshot_path => "../plans", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, inspect::text(&plan, false));
        insta::assert_snapshot!(format!("{name}-persistent"), program.text(&plan));
    });
}

#[test]
fn qwen2_5_1_5b() {
    check("qwen2.5-1.5b", "qwen2.5-1.5b.json");
}

#[test]
fn qwen3_1_7b() {
    check("qwen3-1.7b", "qwen3-1.7b.json");
}

#[test]
fn llama_3_2_3b() {
    check("llama-3.2-3b", "llama-3.2-3b.json");
}

#[test]
fn qwen2_7b() {
    check("qwen2-7b", "qwen2-7b.json");
}
