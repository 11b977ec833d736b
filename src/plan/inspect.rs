//! `llmc inspect`: the plan as text (a summary, then one line per kernel with the arena or weight
//! offset of every operand) or as JSON. Neither needs a GPU or the weights.

use super::{Plan, Region, Slot};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Op counts: after fusion, or as lowered when `before_fusion`.
fn op_counts(plan: &Plan, before_fusion: bool) -> &BTreeMap<String, usize> {
    if before_fusion {
        &plan.ops_before_fusion
    } else {
        &plan.ops_after_fusion
    }
}

/// Kernels per token of the op counts: everything but sources and shape relabelings.
fn kernels(counts: &BTreeMap<String, usize>) -> usize {
    const NOT_KERNELS: [&str; 8] = ["token_id", "position", "weight", "kv_cache", "view", "reshape", "unsqueeze", "transpose"];
    counts.iter().filter(|(k, _)| !NOT_KERNELS.contains(&k.as_str())).map(|(_, n)| n).sum()
}

pub fn json(plan: &Plan, before_fusion: bool) -> serde_json::Value {
    let counts = op_counts(plan, before_fusion);
    let c = &plan.config;
    let mut report = json!({
        "stage": if before_fusion { "lowered" } else { "fused" },
        "op_counts": counts,
        "kernels_per_token": kernels(counts),
        "arena_bytes": plan.arena_bytes,
        "weight_bytes": plan.weight_bytes,
        "max_seq_len": plan.max_seq_len,
        "target": plan.target.to_string(),
        "llmc_version": plan.llmc_version,
        "model": {
            "arch": c.arch.hf_name(), "layers": c.num_layers, "hidden": c.hidden_size,
            "intermediate": c.intermediate_size, "heads": c.num_heads, "kv_heads": c.num_kv_heads,
            "head_dim": c.head_dim, "vocab": c.vocab_size, "tied_embeddings": c.tie_word_embeddings,
        },
    });
    if let Some(p) = &plan.program {
        let bytes = p.bytes_per_worker();
        let mean = bytes.iter().sum::<u64>() as f64 / bytes.len().max(1) as f64;
        report["persistent"] = json!({
            "sms": p.sms, "workers": p.workers(), "instructions": p.instructions.len(), "waits": p.waits.len(),
            "weight_bytes_per_worker_max": bytes.iter().max(), "weight_bytes_per_worker_mean": mean,
        });
    }
    if let Some(k) = &plan.kernels {
        report["kernels"] = json!({ "sm": k.sm, "cubin_bytes": k.cubin.len(), "ptx_bytes": k.ptx.len(), "source_hash": format!("{:016x}", k.source_hash) });
    }
    report
}

fn operand(slot: &Slot) -> String {
    match slot.region {
        Region::Weights => format!("{}@w+{:#x}", slot.name, slot.offset),
        Region::Arena => format!("{}@a+{:#x}", slot.name, slot.offset),
    }
}

pub fn text(plan: &Plan, before_fusion: bool) -> String {
    let mut s = String::new();
    let c = &plan.config;
    let counts = op_counts(plan, before_fusion);
    let _ = writeln!(s, "llmc plan v{} for {}", plan.llmc_version, plan.target);
    let _ = writeln!(
        s,
        "model: {} layers={} hidden={} ffn={} heads={}/{} head_dim={} vocab={}{}{}{}",
        c.arch.hf_name(),
        c.num_layers,
        c.hidden_size,
        c.intermediate_size,
        c.num_heads,
        c.num_kv_heads,
        c.head_dim,
        c.vocab_size,
        if c.qkv_bias { " qkv_bias" } else { "" },
        if c.qk_norm { " qk_norm" } else { "" },
        if c.tie_word_embeddings { " tied" } else { "" },
    );
    let _ = writeln!(s, "max_seq_len: {}", plan.max_seq_len);
    let _ = writeln!(s, "weights: {} bytes in {} tensors", plan.weight_bytes, plan.weights.len());
    let _ = writeln!(s, "arena: {} bytes", plan.arena_bytes);
    if let Some(k) = &plan.kernels {
        let _ = writeln!(s, "kernels: sm_{} CUBIN of {} bytes (PTX fallback {} bytes), sources {:016x}", k.sm, k.cubin.len(), k.ptx.len(), k.source_hash);
    }
    let stage = if before_fusion { "lowered graph, before fusion" } else { "fused graph" };
    let _ = writeln!(s, "{stage}: {} kernels per token", kernels(counts));
    for (kind, n) in counts {
        let _ = writeln!(s, "  {kind:<14} {n}");
    }
    if before_fusion {
        return s;
    }
    let _ = writeln!(s, "\nschedule (one kernel per line):");
    for (i, step) in plan.steps.iter().enumerate() {
        let attrs = step.op.attrs();
        let ins: Vec<String> = step.inputs.iter().map(operand).collect();
        let outs: Vec<String> = step.outputs.iter().map(|o| format!("{} {}", o.ty, operand(o))).collect();
        let _ = writeln!(
            s,
            "%{i} = {}{}{}({}) -> {}  # {}",
            step.op.kind(),
            if attrs.is_empty() { "" } else { " " },
            attrs,
            ins.join(", "),
            outs.join(", "),
            step.label
        );
    }
    if let Some(program) = &plan.program {
        let _ = write!(s, "\n{}", program.text(plan));
    }
    let _ = writeln!(s, "\nweights:");
    for w in &plan.weights {
        let _ = writeln!(s, "  {:#012x} {} {}", w.offset, w.ty, w.id);
    }
    s
}
