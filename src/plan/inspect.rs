//! `llmc inspect`: the plan as text (a summary, then one line per kernel with the arena or weight
//! offset of every operand) or as JSON. Neither needs a GPU or the weights.

use super::{Plan, Region, Slot};
use crate::ir::DType;
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

/// What a node of the graph costs per token. Only kernels do work; the listing groups the op
/// counts by this so that the kernels listed add up to the kernels per token.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Kernel,
    /// A shape relabeling: the same bytes seen with another shape, no kernel.
    View,
    /// A buffer the kernels read or write: the step's inputs, a weight, a KV cache.
    Buffer,
}

fn role(kind: &str) -> Role {
    match kind {
        "token_id" | "position" | "weight" | "kv_cache" => Role::Buffer,
        "view" | "reshape" | "unsqueeze" | "transpose" => Role::View,
        _ => Role::Kernel,
    }
}

fn count(counts: &BTreeMap<String, usize>, of: Role) -> usize {
    counts.iter().filter(|(k, _)| role(k) == of).map(|(_, n)| n).sum()
}

/// Kernels per token of the op counts: everything but buffers and shape relabelings.
fn kernels(counts: &BTreeMap<String, usize>) -> usize {
    count(counts, Role::Kernel)
}

/// Tensors and bytes per storage type (a tied head, which shares the embedding's bytes, is not
/// counted twice).
fn storage(plan: &Plan) -> BTreeMap<DType, (usize, u64)> {
    let mut by_type: BTreeMap<DType, (usize, u64)> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for w in plan.weights.iter().filter(|w| seen.insert(w.offset)) {
        let e = by_type.entry(w.ty.dtype).or_default();
        e.0 += 1;
        e.1 += w.ty.bytes() as u64;
    }
    by_type
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
        "weight_storage": storage(plan).iter().map(|(d, (n, bytes))| (d.name().to_string(), json!({ "tensors": n, "bytes": bytes }))).collect::<serde_json::Map<_, _>>(),
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
    let storage = storage(plan);
    if storage.keys().any(|d| d.is_block_format()) {
        let kinds: Vec<String> = storage.iter().map(|(d, (n, bytes))| format!("{d} {n} tensors {bytes} bytes")).collect();
        let _ = writeln!(s, "weights stored as: {} (block formats read as stored, dequantized in registers)", kinds.join(", "));
    }
    let _ = writeln!(s, "arena: {} bytes", plan.arena_bytes);
    if let Some(k) = &plan.kernels {
        let _ = writeln!(s, "kernels: sm_{} CUBIN of {} bytes (PTX fallback {} bytes), sources {:016x}", k.sm, k.cubin.len(), k.ptx.len(), k.source_hash);
    }
    let stage = if before_fusion { "lowered graph, before fusion" } else { "fused graph" };
    let name_width = counts.keys().map(String::len).max().unwrap_or(0);
    let count_width = counts.values().map(|n| n.to_string().len()).max().unwrap_or(0);
    let groups = [
        (Role::Kernel, format!("{stage}: {} kernels per token", kernels(counts))),
        (Role::View, format!("shape views (no kernel): {}", count(counts, Role::View))),
        (Role::Buffer, format!("buffers (inputs, weights, KV cache; no kernel): {}", count(counts, Role::Buffer))),
    ];
    for (of, heading) in groups {
        if of != Role::Kernel && count(counts, of) == 0 {
            continue;
        }
        let _ = writeln!(s, "{heading}");
        for (kind, n) in counts.iter().filter(|(k, _)| role(k) == of) {
            let _ = writeln!(s, "  {kind:<name_width$} {n:>count_width$}");
        }
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
