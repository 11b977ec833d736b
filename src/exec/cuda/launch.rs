//! Decode's kernel launch shapes: which kernel each plan step runs, its grid, block and
//! arguments (device pointers computed here from the arena and weight bases plus each slot's
//! offset), and the device scratch the cross-block reductions need. Kernels document the shapes
//! they expect in their header comments (`kernels/*.cu`). Prefill's launches are in
//! `prefill.rs`, the persistent kernel's tables in `persistent.rs`.

use crate::error::{Error, Result};
use crate::exec::sampling::SamplingParams;
use crate::ir::{DType, Op};
use crate::kernels::define;
use crate::plan::{Plan, Region, Slot, Step, StepIo, Target};

/// Every `extern "C"` kernel in `kernels/`, as the runtime loads them.
pub const KERNEL_NAMES: [&str; 32] = [
    "embedding",
    "rms_norm",
    "linear",
    "lm_head",
    "gate_up_silu",
    "qkv_rope",
    "mlp",
    "embedding_q",
    "linear_q",
    "lm_head_q",
    "gate_up_silu_q",
    "qkv_rope_q",
    "prefill_embedding_q",
    "dequantize_bf16",
    "attention",
    "attention_proj",
    "sample_greedy",
    "sample_top",
    "top_logprobs",
    "advance",
    "read_probe",
    "prefill_gemm",
    "prefill_gemm_split_k",
    "prefill_gemm_wgmma_wide",
    "prefill_gemm_wgmma",
    "prefill_gemm_wgmma_split_k",
    "prefill_gemm_wgmma_short",
    "prefill_gemm_wgmma_short_split_k",
    "prefill_rope",
    "prefill_embedding",
    "prefill_attention",
    "decode_persistent",
];

// What a kernel defines (block sizes, shared memory, limits) is read from it by `kernels::define`;
// the other constants here are the host's choices.
const GEMV_WARPS: usize = define("GEMV_WARPS");
const GEMV_Q_ROWS: usize = define("GEMV_Q_ROWS");
const Q_PARTS: usize = define("Q_PARTS");
/// Elements of a row a `_q` GEMV's warp has in flight, about: Q_BATCH chunks of the K-quants'
/// 64 (quant.cu's BATCH differs by format: Q8_0 6 blocks of 32, Q4_0 4, Q4_K and Q5_K 3 chunks
/// of 64, Q6_K 4; warps sized for each would differ by at most one power of two, and halving
/// them for Q8_0 measured slower, bench/results/2026-12-01-h200-q8-batch.log).
const Q_BATCH_ELEMENTS: usize = define("Q_BATCH") * 64;
/// The most warps of a `_q` GEMV's block, and of an SM (its launch bounds: 128 registers a thread).
const GEMV_Q_MAX_WARPS: usize = define("GEMV_Q_MAX_WARPS");
/// The bf16 LM head's warps a block, one block an SM (kernels/gemv.cu).
const LM_HEAD_WARPS: usize = define("LM_HEAD_WARPS");
/// The bf16 qkv_rope's warps a block and most blocks an SM (kernels/qkv_rope.cu).
const QKV_WARPS: usize = define("QKV_WARPS");
const QKV_BLOCKS_PER_SM: usize = define("QKV_BLOCKS_PER_SM");
const Q_RUN: usize = define("Q_RUN");
pub(super) const GEMV_THREADS: u32 = define("GEMV_THREADS") as u32;
/// GEMV blocks per SM before warps take several tasks each: 16 warps, each with a batch of
/// 16-byte loads in flight, keep an SM's share of HBM bandwidth busy.
const GEMV_BLOCKS_PER_SM: usize = 4;
/// The GEMV stages x (f32, and a folded norm's bf16 weight) in shared memory: up to 96 KiB, which
/// every sm_80+ GPU grants a block that asks (K up to 24,576 without a norm).
pub const GEMV_MAX_SHARED: usize = 96 * 1024;
/// The kernels that take more than the default 48 KiB of dynamic shared memory, and the most
/// each may take (set at load).
pub const LARGE_SHARED: [(&str, usize); 15] = [
    ("linear", GEMV_MAX_SHARED),
    ("lm_head", GEMV_MAX_SHARED),
    ("gate_up_silu", GEMV_MAX_SHARED),
    ("qkv_rope", GEMV_MAX_SHARED),
    ("mlp", GEMV_MAX_SHARED),
    ("attention_proj", ATTN_PROJ_MAX_SHARED),
    ("linear_q", GEMV_MAX_SHARED),
    ("lm_head_q", GEMV_MAX_SHARED),
    ("gate_up_silu_q", GEMV_MAX_SHARED),
    ("qkv_rope_q", GEMV_MAX_SHARED),
    ("prefill_gemm", super::prefill::PGB_SHARED),
    ("prefill_gemm_split_k", super::prefill::PGB_SHARED),
    ("prefill_attention", super::prefill::PA_SHARED),
    ("sample_top", TOP_SHARED),
    ("decode_persistent", super::persistent::MAX_SHARED as usize),
];

/// The most dynamic shared memory `kernel` takes, where past the default 48 KiB: LARGE_SHARED,
/// and on sm_90 the wgmma prefill GEMMs (elsewhere they are never launched, and up to 227 KiB
/// would exceed what older GPUs grant).
pub fn large_shared(kernel: &str, sm: u32) -> Option<usize> {
    let wgmma = if sm == 90 { &super::prefill::WGMMA_SHARED[..] } else { &[] };
    LARGE_SHARED.iter().chain(wgmma).find(|(k, _)| *k == kernel).map(|&(_, bytes)| bytes)
}
const ATTN_THREADS: u32 = define("ATTN_THREADS") as u32;
const MLP_THREADS: u32 = define("MLP_THREADS") as u32;
const MLP_UNIT: usize = define("MLP_UNIT");
const MLP_MAX_SLOTS: usize = define("MLP_MAX_SLOTS");
const SAMPLE_THREADS: u32 = define("SAMPLE_THREADS") as u32;
const TOP_THREADS: u32 = define("TOP_THREADS") as u32;
/// sample_top's histograms: a warp's first-level bins, two u32 halves each.
const TOP_SHARED: usize = define("TOP_SHARED");
pub(super) const NORM_THREADS: u32 = define("RMS_THREADS") as u32;
const ATTN_MAX_GROUP: usize = define("ATTN_MAX_GROUP");
const ATTN_MAX_HEAD_DIM: usize = define("ATTN_MAX_D");
/// Cross-block counters (u32 words): qkv_rope one per head from 0, sample at SAMPLE_COUNTER,
/// attention one per block of query heads from ATTENTION_COUNTERS up to MLP_COUNTER; then u64
/// pairs (8-byte aligned: the scratch starts 256-aligned): mlp's ResidualCounters (kernels/mlp.cu)
/// at MLP_COUNTER.
const COUNTERS: usize = MLP_COUNTER + 4;
const MLP_COUNTER: usize = 512;
const QKV_MAX_HEADS: usize = 256;
/// qkv_rope's argument for where its grid copies x (kernels/qkv_rope.cu): null except before an attention_proj.
const QKV_RESIDUAL_ARG: usize = 20;
const SAMPLE_COUNTER: usize = 256;
const ATTENTION_COUNTERS: usize = 257;
const ATTN_MAX_SPLITS: u32 = define("ATTN_MAX_SPLITS") as u32;
/// The most positions one attention block takes.
const ATTN_CHUNK: usize = define("ATTN_CHUNK");
/// Floats before a split's partial acc[d].
const ATTN_PARTIAL_HEAD: usize = define("ATTN_PARTIAL_HEAD");
/// Splits per block of query heads wanted at the longest context: the last block merges every active split,
/// so more splits than this cost more in the merge than they save in the blocks.
const ATTN_WANT_SPLITS: usize = 32;
/// Fewest positions per attention block before the context is split over more blocks: 64 is one
/// pass of a block (16 teams of 4 positions, their loads in flight together), and an active block
/// costs about the same 7 us inside the persistent kernel for 16 positions as for 64, while each
/// split adds a merge (H200, Qwen2.5-1.5B, 128 tokens after 32: persistent 1.385 -> 1.368
/// ms/token, graph 1.422 -> 1.399; no change after 4,096; bench/results/2026-11-30-h200-attn-min-chunk.log,
/// -attention-probe.log). With the merge in one trip through L2, 128 against 64: graph 1.240 /
/// 1.233-1.234 after 32 tokens, 1.321-1.322 / 1.326-1.329 after 1,024
/// (2026-12-01-h200-attn-merge.log). `LLMC_ATTN_MIN_CHUNK` overrides it (1..=ATTN_CHUNK), so
/// the tests can run the split-and-merge path on short contexts.
const ATTN_MIN_CHUNK: usize = 64;

/// Blocks of an attention cluster on the graph path (kernels/attention.cu; the persistent path
/// has none): a step whose active slices fit one cluster merges them through distributed shared
/// memory instead of L2. 4 against none on the H200 (2026-12-01-h200-attn-cluster-check.log,
/// 128 tokens): bf16 1.218-1.219 / 1.235-1.241 ms after 32 tokens, 1.325-1.326 / 1.318-1.319
/// after 1,024; Q4_K_M 1.167 / 1.191, Q8_0 1.179-1.181 / 1.210-1.214. Clusters of 8 lost 0.06 ms
/// after 1,024. `LLMC_ATTN_CLUSTER` overrides it (1, 2, 4 or 8).
const ATTN_CLUSTER: usize = 4;
const ATTN_MAX_CLUSTER: usize = define("ATTN_MAX_CLUSTER");
const ATTN_PROJ_MAX_SHARED: usize = define("ATTN_PROJ_MAX_SHARED");

fn attn_cluster() -> usize {
    std::env::var("LLMC_ATTN_CLUSTER")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&c: &usize| c.is_power_of_two() && c <= ATTN_MAX_CLUSTER)
        .unwrap_or(ATTN_CLUSTER)
}

/// Positions the short-context graph serves (DeviceLayout::short_context_launches): as many as
/// the long graph's first cluster of slices holds, where its attention would merge in the cluster
/// too. `LLMC_SHORT_CONTEXT` overrides it (up to cluster x ATTN_CHUNK, the longest slices);
/// `LLMC_FUSE_ATTN_PROJ=0` turns the short-context graph off.
fn short_context_positions(cluster: usize) -> Option<usize> {
    if std::env::var("LLMC_FUSE_ATTN_PROJ").is_ok_and(|v| v == "0") {
        return None;
    }
    let limit = cluster * ATTN_CHUNK;
    Some(std::env::var("LLMC_SHORT_CONTEXT").ok().and_then(|v| v.parse().ok()).filter(|&n| (1..=limit).contains(&n)).unwrap_or(cluster * attn_min_chunk()))
}

/// SMs the fused MLP leaves to the kernels after it in the short-context graph: there the next
/// layer's qkv_rope blocks, and then attention_proj's, start on them while the MLP streams and
/// request their weights before their waits. H200, Qwen2.5-1.5B, ms/token after 32 tokens, three
/// calls: 132 blocks 1.128, 1.136-1.142 and 1.128-1.130; 128 blocks 1.113-1.119, 1.116-1.121 and
/// 1.112-1.115; 112 1.111-1.117 and 1.113-1.121. In the long graph, after 1,024 tokens, 128
/// blocks were slower (1.233-1.237 against 1.227-1.229), so it keeps one block an SM
/// (bench/results/2026-12-03-h200-mlp-blocks.log, -attn-proj-rows.log, -mlp-spare.log). Never
/// below half the SMs (a GPU of few SMs). `LLMC_SHORT_MLP_BLOCKS=N` sets the short graph's MLP
/// grid instead (a measurement knob).
const SHORT_CONTEXT_MLP_SPARE_SMS: usize = 4;

/// The fused MLP's most blocks: one an SM, less the spare SMs in the short-context graph.
fn mlp_max_blocks(sms: u32, short: bool) -> usize {
    let sms = sms.max(1) as usize;
    if !short {
        return sms;
    }
    let knob = std::env::var("LLMC_SHORT_MLP_BLOCKS").ok().and_then(|v| v.parse().ok()).filter(|&b| (1..=sms).contains(&b));
    knob.unwrap_or(sms.saturating_sub(SHORT_CONTEXT_MLP_SPARE_SMS).max(sms.div_ceil(2)))
}

fn attn_min_chunk() -> usize {
    std::env::var("LLMC_ATTN_MIN_CHUNK").ok().and_then(|v| v.parse().ok()).filter(|&c| (1..=ATTN_CHUNK).contains(&c)).unwrap_or(ATTN_MIN_CHUNK)
}

/// The decode step's launches while the context holds at most `positions` positions
/// (DeviceLayout::short_context_launches).
#[derive(Clone, Debug)]
pub struct ShortContext {
    pub launches: Vec<Launch>,
    pub positions: usize,
}

/// One kernel launch, ready to enqueue. Arguments are 8-byte words: a pointer, or an i32/f32
/// in the low 4 bytes (the driver reads as many bytes as the parameter's type has).
#[derive(Clone, Debug)]
pub struct Launch {
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: u32,
    /// Dynamic shared memory, bytes.
    pub shared: u32,
    pub args: Vec<u64>,
    pub label: String,
    /// Units of work: warp tasks of a bf16 GEMV-family kernel, tiles of GEMV_Q_ROWS rows of a
    /// `_q` one (all its block's warps work on a tile), blocks of any other. The persistent
    /// decode program divides these among its workers.
    pub tasks: u32,
    /// Blocks of a thread block cluster, consecutive along the grid's y (1: no clusters).
    pub cluster: u32,
}

/// The Q_FMT_* ids of kernels/quant.cu. (`define` scans the kernel sources: evaluated here at
/// build time, never per launch.)
const Q_FORMATS: [(DType, usize); 5] = [
    (DType::Q8_0, define("Q_FMT_Q8_0")),
    (DType::Q4_0, define("Q_FMT_Q4_0")),
    (DType::Q4K, define("Q_FMT_Q4_K")),
    (DType::Q5K, define("Q_FMT_Q5_K")),
    (DType::Q6K, define("Q_FMT_Q6_K")),
];

/// The Q_FMT_* id of a block-format weight `w`, None for bf16.
pub(super) fn format_id(w: &Slot) -> Result<Option<usize>> {
    if w.ty.dtype == DType::BF16 {
        return Ok(None);
    }
    match Q_FORMATS.iter().find(|(dtype, _)| *dtype == w.ty.dtype) {
        Some(&(_, id)) => Ok(Some(id)),
        None => Err(Error::Internal(format!("{}: weights of {} reach no kernel", w.name, w.ty.dtype))),
    }
}

/// The kernel that reads weight `w`: `kernel` for bf16, its `_q` twin for a block format, whose
/// Q_FMT_* id is then pushed as the last argument.
pub(super) fn for_weight(kernel: &'static str, w: &Slot, args: &mut Vec<u64>) -> Result<&'static str> {
    let Some(id) = format_id(w)? else { return Ok(kernel) };
    args.push(int(id));
    Ok(match kernel {
        "embedding" => "embedding_q",
        "prefill_embedding" => "prefill_embedding_q",
        "linear" => "linear_q",
        "lm_head" => "lm_head_q",
        "gate_up_silu" => "gate_up_silu_q",
        "qkv_rope" => "qkv_rope_q",
        other => return Err(Error::Internal(format!("kernel {other} has no twin for block-format weights"))),
    })
}

pub(super) fn int(v: usize) -> u64 {
    v as u32 as u64
}

pub(super) fn float(v: f32) -> u64 {
    v.to_bits() as u64
}

/// Where the plan's regions and the runtime's scratch are on the device.
#[derive(Clone, Copy)]
pub struct DeviceLayout {
    pub weights: u64,
    pub arena: u64,
    pub scratch: Scratch,
    pub sms: u32,
    /// The compute capability the plan's kernels were compiled for (sm_90: wgmma prefill GEMMs).
    pub sm: u32,
    /// Greedy runs `sample_greedy`; anything else `sample_top` with these parameters.
    pub sampling: SamplingParams,
    /// The launches are the persistent kernel's instructions (attention's blocks differ).
    pub persistent: bool,
}

/// Byte offsets of the scratch areas, which follow the arena in the same allocation.
#[derive(Clone, Copy, Debug)]
pub struct Scratch {
    pub counters: u64,
    pub qkv: u64,
    pub attention: u64,
    pub sample_value: u64,
    pub sample_index: u64,
    /// `sample_top`'s weights: a u64 per vocabulary entry.
    pub sample_weights: u64,
    /// The persistent kernel's counters: one per step and its "done" count, zero between replays.
    pub sync: u64,
    pub bytes: u64,
    pub attention_splits: u32,
    pub sample_blocks: u32,
}

/// Query heads an attention block serves (they share a KV head). One on the graph path: a
/// block's dependent chains (scores, softmax, sums: per head) are then one head long, and its KV
/// rows, read by the group's blocks at about the same time, come from L2 after the first. The
/// persistent kernel, whose one worker per SM runs a unit at a time (its splits capped at a unit
/// a worker, `attention_splits`), takes the smallest divisor of the group from two: one head
/// leaves too few splits for long contexts. H200, Qwen2.5-1.5B (a group of 6), decode after 32 /
/// 1,024 / 4,096 prompt tokens, ms/token: graph 1.361 / 1.412 / 1.607 with the group a block,
/// 1.258 / 1.335 / 1.462 with one head; persistent 1.353 / 1.447 / 1.677 with the group, 1.29 /
/// 1.382 / 1.567 with two heads, 1.295 / 1.523 / 1.834 with one
/// (bench/results/2026-11-30-h200-attention-unit-heads.log, -persistent-unit-heads.log).
/// `LLMC_ATTN_UNIT_HEADS` overrides it with a divisor of the group.
fn attn_unit_heads(group: usize, persistent: bool) -> usize {
    let default = if persistent { (2..=group).find(|h| group.is_multiple_of(*h)).unwrap_or(1) } else { 1 };
    std::env::var("LLMC_ATTN_UNIT_HEADS").ok().and_then(|v| v.parse().ok()).filter(|&h: &usize| h >= 1 && group.is_multiple_of(h)).unwrap_or(default)
}

/// Splits per block of query heads (`units` of them) for flash-decoding at the longest context:
/// at most two blocks per SM over all units (one on the persistent path: a worker runs its
/// units one after another, and its share of a step is a contiguous range of them, so two of a
/// unit's first splits, the ones active at short contexts, would fall to one worker) and
/// ATTN_WANT_SPLITS, no more than slices of ATTN_MIN_CHUNK positions need, and enough that no
/// slice exceeds ATTN_CHUNK, rounded up to whole clusters of `cluster` blocks. The kernel uses
/// only as many as `pos` needs.
fn attention_splits(sms: u32, units: usize, max_seq: usize, persistent: bool, cluster: usize) -> u32 {
    let blocks = if persistent { sms } else { 2 * sms } as usize;
    let want = (blocks / units.max(1)).clamp(1, ATTN_WANT_SPLITS).min(max_seq.div_ceil(attn_min_chunk()));
    want.max(max_seq.div_ceil(ATTN_CHUNK)).next_multiple_of(cluster) as u32
}

/// The attention launch's blocks of query heads and the heads each serves.
fn attention_units(n_heads: usize, n_kv_heads: usize, persistent: bool) -> (usize, usize) {
    let unit_heads = attn_unit_heads(n_heads / n_kv_heads.max(1), persistent);
    (n_heads / unit_heads, unit_heads)
}

/// How a GEMV-family kernel (kernels/gemv.cu) is launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GemvShape {
    pub grid: (u32, u32, u32),
    pub threads: u32,
    /// Dynamic shared memory, bytes.
    pub shared: u32,
}

/// The launch of a GEMV-family kernel over `tasks` tasks of `rows_per_task` rows of `k`
/// (`normed`: an input RMSNorm is folded in): one task per warp, at most GEMV_BLOCKS_PER_SM
/// blocks per SM. For a block format (`quant`, the `_q` twin): a block per tile of GEMV_Q_ROWS
/// rows at a time, with as many warps (a power of two, 4 to GEMV_Q_MAX_WARPS) as fill the SMs
/// with GEMV_Q_MAX_WARPS warps and give each warp at most about one batch of loads of a row
/// (Q_BATCH_ELEMENTS), as many blocks as are resident at once; gemv.cu's sums and f16 parts of x
/// take the shared memory. None when x does not fit.
pub(super) fn gemv_shape(tasks: usize, rows_per_task: usize, k: usize, normed: bool, quant: bool, sms: u32) -> Option<GemvShape> {
    let sms = sms.max(1) as usize;
    let shape = match quant {
        true => {
            let tiles = tasks.div_ceil(GEMV_Q_ROWS / rows_per_task);
            let fill = (GEMV_Q_MAX_WARPS * sms).div_ceil(tiles);
            let warps = fill.max(k.div_ceil(Q_BATCH_ELEMENTS)).next_power_of_two().clamp(4, GEMV_Q_MAX_WARPS);
            // gemv.cu's q_parts_offset (floats: a float2 per run), then the parts (halves)
            let parts_offset = (2 * (k / Q_RUN)).next_multiple_of(4);
            GemvShape {
                grid: (tiles.clamp(1, GEMV_Q_MAX_WARPS / warps * sms) as u32, 1, 1),
                threads: 32 * warps as u32,
                shared: (4 * parts_offset + 2 * Q_PARTS * (k + 8)) as u32,
            }
        }
        false => GemvShape {
            grid: (tasks.div_ceil(GEMV_WARPS).clamp(1, GEMV_BLOCKS_PER_SM * sms) as u32, 1, 1),
            threads: GEMV_THREADS,
            shared: (4 * k + if normed { 2 * k } else { 0 }) as u32,
        },
    };
    (shape.shared as usize <= GEMV_MAX_SHARED).then_some(shape)
}

/// A bf16 GEMV kernel that sets its own block size: blocks of `warps` warps, a task a warp up to
/// `blocks_per_sm` blocks an SM (warps then stride over the tasks), x staged as gemv_shape stages it.
fn blocks_of_warps(shape: GemvShape, tasks: usize, warps: usize, blocks_per_sm: usize, sms: u32) -> GemvShape {
    let grid = (tasks.div_ceil(warps).clamp(1, blocks_per_sm * sms.max(1) as usize) as u32, 1, 1);
    GemvShape { grid, threads: 32 * warps as u32, ..shape }
}

/// The LM head's launch: a bf16 LM head runs one block of LM_HEAD_WARPS warps an SM
/// (kernels/gemv.cu says why), a block format's as gemv_shape gives it.
pub(super) fn lm_head_shape(vocab: usize, k: usize, normed: bool, quant: bool, sms: u32) -> Option<GemvShape> {
    let shape = gemv_shape(vocab, 1, k, normed, quant, sms)?;
    Some(if quant { shape } else { blocks_of_warps(shape, vocab, LM_HEAD_WARPS, 1, sms) })
}

/// qkv_rope's launch over `tasks` RoPE pairs: the bf16 kernel runs blocks of QKV_WARPS warps, at
/// most QKV_BLOCKS_PER_SM an SM (kernels/qkv_rope.cu says why), a block format's as gemv_shape
/// gives it.
pub(super) fn qkv_rope_shape(tasks: usize, k: usize, normed: bool, quant: bool, sms: u32) -> Option<GemvShape> {
    let shape = gemv_shape(tasks, 2, k, normed, quant, sms)?;
    Some(if quant { shape } else { blocks_of_warps(shape, tasks, QKV_WARPS, QKV_BLOCKS_PER_SM, sms) })
}

/// Whether two slots share any bytes.
fn overlaps(a: &Slot, b: &Slot) -> bool {
    a.region == b.region && a.offset < b.offset + b.bytes() && b.offset < a.offset + a.bytes()
}

fn unsupported(step: &Step, why: String) -> Error {
    Error::Unsupported(format!("{} ({}): {why}", step.label, step.op.kind()))
}

/// A GEMV's K, the weight's row length (x may be shaped by heads: attention's output).
fn gemv_k(step: &Step, x: &Slot, w: &Slot) -> Result<usize> {
    let k = w.ty.last_dim();
    if !k.is_multiple_of(8) || x.ty.elements() != k {
        return Err(unsupported(
            step,
            format!("the CUDA GEMV needs an input of the weight's width, divisible by 8: x has {} elements, rows {k}", x.ty.elements()),
        ));
    }
    Ok(k)
}

impl Scratch {
    /// Sizes the scratch for `plan` relative to a base offset (aligned to 256).
    pub fn for_plan(plan: &Plan, base: u64, sms: u32, persistent: bool) -> Scratch {
        let (mut qkv_rows, mut attention_floats, mut splits) = (0usize, 0usize, 1u32);
        for step in &plan.steps {
            match step.op {
                Op::QkvRope { n_heads, n_kv_heads, head_dim, .. } => qkv_rows = qkv_rows.max((n_heads + 2 * n_kv_heads) * head_dim),
                Op::Attention { n_heads, n_kv_heads, head_dim } => {
                    let cluster = if persistent { 1 } else { attn_cluster() };
                    splits = splits.max(attention_splits(sms, attention_units(n_heads, n_kv_heads, persistent).0, plan.max_seq_len, persistent, cluster));
                    attention_floats = attention_floats.max(n_heads * splits as usize * (head_dim + ATTN_PARTIAL_HEAD));
                }
                _ => {}
            }
        }
        let vocab = plan.io.logits.ty.elements();
        let sample_blocks = (vocab.div_ceil(SAMPLE_THREADS as usize) as u32).clamp(1, sms.max(1));
        let align = |x: u64| x.div_ceil(256) * 256;
        let counters = align(base);
        let qkv = align(counters + 4 * COUNTERS as u64);
        let attention = align(qkv + 4 * qkv_rows as u64);
        let sample_value = align(attention + 4 * attention_floats as u64);
        let sample_index = align(sample_value + 4 * sample_blocks as u64);
        let sample_weights = align(sample_index + 4 * sample_blocks as u64);
        let sync = align(sample_weights + 8 * vocab as u64);
        let end = align(sync + 4 * (plan.steps.len() as u64 + 1));
        Scratch { counters, qkv, attention, sample_value, sample_index, sample_weights, sync, bytes: end - base, attention_splits: splits, sample_blocks }
    }
}

impl DeviceLayout {
    /// Zero bases and greedy sampling on `sms` SMs: device pointers are then offsets, for
    /// computing launch shapes without a GPU (at compile time).
    pub fn placeholder(plan: &Plan, sms: u32, persistent: bool) -> DeviceLayout {
        let sm = match plan.target {
            Target::Cuda { sm } => sm,
            Target::Cpu => 0,
        };
        let scratch = Scratch::for_plan(plan, plan.arena_bytes, sms, persistent);
        DeviceLayout { weights: 0, arena: 0, scratch, sms, sm, sampling: SamplingParams::GREEDY, persistent }
    }

    pub(super) fn ptr(&self, slot: &Slot) -> u64 {
        match slot.region {
            Region::Weights => self.weights + slot.offset,
            Region::Arena => self.arena + slot.offset,
        }
    }

    fn scratch(&self, offset: u64) -> u64 {
        self.arena + offset
    }

    fn counter(&self, index: usize) -> u64 {
        self.scratch(self.scratch.counters) + 4 * index as u64
    }

    /// The sampler over `logits` into `next`: greedy across many blocks, or seeded sampling in one
    /// block, drawing for the position in the `position` slot.
    pub(super) fn sample(&self, logits: &Slot, next: &Slot, position: &Slot, label: &str) -> Launch {
        let vocab = logits.ty.elements();
        let p = &self.sampling;
        let (kernel, grid, block, shared, args) = if p.is_greedy() {
            let args = vec![
                self.ptr(logits),
                int(vocab),
                self.ptr(next),
                self.scratch(self.scratch.sample_value),
                self.scratch(self.scratch.sample_index),
                self.counter(SAMPLE_COUNTER),
            ];
            ("sample_greedy", self.scratch.sample_blocks, SAMPLE_THREADS, 0, args)
        } else {
            let args = vec![
                self.ptr(logits),
                int(vocab),
                self.ptr(position),
                self.ptr(next),
                self.scratch(self.scratch.sample_weights),
                float(p.temperature),
                int(p.top_k.min(vocab)),
                float(p.top_p),
                p.seed,
            ];
            ("sample_top", 1, TOP_THREADS, TOP_SHARED as u32, args)
        };
        Launch { kernel, grid: (grid, 1, 1), block, shared, args, label: label.to_string(), tasks: grid, cluster: 1 }
    }

    /// The launches of one decode step at any position: the plan's steps, then `advance`, which
    /// feeds the sampled token and the next position back so the captured graph can replay on
    /// its own. A layer's gate/up and down projections run as one `mlp` kernel where `mlp` allows it.
    pub fn launches(&self, plan: &Plan) -> Result<Vec<Launch>> {
        self.step_launches(plan, None)
    }

    /// The launches of a decode step while the context holds at most `positions` positions, if
    /// they differ from [`Self::launches`]: each layer's attention and output projection as one
    /// `attention_proj` where that kernel allows it, its slices one cluster. None on the
    /// persistent path, when `LLMC_FUSE_ATTN_PROJ=0` or where no layer fuses. The runtime
    /// captures them as a second graph and replays it below `positions` (H200, Qwen2.5-1.5B:
    /// README, "Attention and o_proj in one kernel").
    pub fn short_context_launches(&self, plan: &Plan) -> Result<Option<ShortContext>> {
        let cluster = attn_cluster();
        let Some(positions) = short_context_positions(cluster).map(|p| p.min(plan.max_seq_len)) else { return Ok(None) };
        if self.persistent {
            return Ok(None);
        }
        let launches = self.step_launches(plan, Some(positions))?;
        Ok(launches.iter().any(|l| l.kernel == "attention_proj").then_some(ShortContext { launches, positions }))
    }

    /// A decode step's launches; with `short`, attention and o_proj fused for contexts of at
    /// most that many positions, and the MLP leaving SMs spare for them.
    fn step_launches(&self, plan: &Plan, short: Option<usize>) -> Result<Vec<Launch>> {
        let mut launches: Vec<Launch> = Vec::with_capacity(plan.steps.len() + 1);
        let mut steps = plan.steps.iter().peekable();
        let mut previous: Option<&Step> = None;
        while let Some(step) = steps.next() {
            let fused = match steps.peek() {
                Some(next) => match (self.mlp(step, next, short.is_some()), short, previous) {
                    (Some(mlp), _, _) => Some(mlp),
                    (None, Some(positions), Some(qkv)) if launches.last().is_some_and(|l| l.label == qkv.label) => {
                        let fused = self.attention_proj(plan, qkv, step, next, positions)?;
                        if fused.is_some() {
                            // qkv_rope copies x into the residual the projection adds into
                            let qkv_launch = launches.last_mut().expect("checked");
                            qkv_launch.args[QKV_RESIDUAL_ARG] = self.ptr(&next.outputs[0]);
                        }
                        fused
                    }
                    _ => None,
                },
                None => None,
            };
            previous = Some(step);
            match fused {
                Some(fused) => {
                    launches.push(fused);
                    steps.next();
                }
                None => launches.push(self.launch(plan, step)?),
            }
        }
        launches.push(self.advance(&plan.io));
        Ok(launches)
    }

    /// `gate_up` and `down` as one `mlp` launch (kernels/mlp.cu): on the graph path, where
    /// `down` is the linear_residual that projects `gate_up`'s output and adds `gate_up`'s input
    /// back, both weights are bf16, and the shapes fit the kernel (F a multiple of MLP_UNIT, at
    /// most 8 * MLP_MAX_SLOTS units a block, x in GEMV_MAX_SHARED) with out apart from x, which
    /// the blocks read while they add into out. None otherwise: the two kernels run as before.
    /// `LLMC_FUSE_MLP=0` turns it off (to measure or test the two kernels). `short`: in the
    /// short-context graph, whose MLP leaves SMs spare (SHORT_CONTEXT_MLP_SPARE_SMS).
    fn mlp(&self, gate_up: &Step, down: &Step, short: bool) -> Option<Launch> {
        let Op::GateUpSilu { norm } = gate_up.op else { return None };
        if self.persistent || down.op != (Op::LinearResidual { bias: false }) || std::env::var("LLMC_FUSE_MLP").is_ok_and(|v| v == "0") {
            return None;
        }
        let (x, w_gate_up, act) = (&gate_up.inputs[0], &gate_up.inputs[1], &gate_up.outputs[0]);
        let (w_down, out) = (&down.inputs[1], &down.outputs[0]);
        let (f, k) = (act.ty.elements(), x.ty.elements());
        let overlap = overlaps(x, out);
        let shapes = w_gate_up.ty.last_dim() == k && w_down.ty.last_dim() == f && out.ty.elements() == k;
        let bf16 = w_gate_up.ty.dtype == DType::BF16 && w_down.ty.dtype == DType::BF16;
        if down.inputs[0] != *act || down.inputs[2] != *x || !shapes || !bf16 || overlap || !k.is_multiple_of(8) || !f.is_multiple_of(MLP_UNIT) {
            return None;
        }
        let units = f / MLP_UNIT;
        let blocks = units.min(mlp_max_blocks(self.sms, short));
        let block_units = units.div_ceil(blocks);
        let shared = if norm.is_some() { 6 * k } else { 4 * k } + 4 * MLP_UNIT * block_units + 4 * k;
        if block_units > 8 * MLP_MAX_SLOTS || shared > GEMV_MAX_SHARED {
            return None;
        }
        let (norm_w, eps) = match norm {
            Some(eps) => (self.ptr(gate_up.inputs.last().expect("a normed op has inputs")), float(eps)),
            None => (0, 0),
        };
        let args = vec![self.ptr(x), self.ptr(w_gate_up), norm_w, eps, self.ptr(w_down), self.ptr(out), int(f), int(k), self.counter(MLP_COUNTER)];
        let grid = (blocks as u32, 1, 1);
        Some(Launch { kernel: "mlp", grid, block: MLP_THREADS, shared: shared as u32, args, label: gate_up.label.clone(), tasks: blocks as u32, cluster: 1 })
    }

    /// `attention` and `o_proj` as one `attention_proj` launch (kernels/attention_proj.cu) for
    /// contexts of at most `positions` (at most cluster x ATTN_CHUNK) positions: on the graph path
    /// with clusters (sm_90), where `o_proj` is the bias-free linear_residual that projects the
    /// attention's output and adds the residual that `qkv` (the qkv_rope step before it) reads,
    /// its weight is bf16, blocks serve one query head, each of a cluster's shares of a head is
    /// whole 16-byte chunks whose rows fit ATTN_PROJ_MAX_SHARED, and out is apart from everything
    /// qkv_rope and the attention read and write (qkv_rope copies x into it, and the projection
    /// adds into it while other blocks attend). None otherwise: the two kernels run as before. A head's slices are one cluster, so every step merges in it (past
    /// a cluster, through L2, the fused kernel was much slower: H200, Qwen2.5-1.5B, 1.483-1.496
    /// against 1.229-1.230 ms/token after 1,024 tokens).
    fn attention_proj(&self, plan: &Plan, qkv: &Step, attention: &Step, o_proj: &Step, positions: usize) -> Result<Option<Launch>> {
        let Op::Attention { n_heads, n_kv_heads, head_dim } = attention.op else { return Ok(None) };
        if !matches!(qkv.op, Op::QkvRope { .. }) {
            return Ok(None);
        }
        let cluster = attn_cluster();
        if self.persistent || self.sm < 90 || cluster < 2 || positions > cluster * ATTN_CHUNK || o_proj.op != (Op::LinearResidual { bias: false }) {
            return Ok(None);
        }
        let (attended, w_o, x, out) = (&attention.outputs[0], &o_proj.inputs[1], &o_proj.inputs[2], &o_proj.outputs[0]);
        let hidden = out.ty.elements();
        let share = head_dim / cluster;
        let shared = hidden * share * 2;
        let shapes = w_o.ty.last_dim() == n_heads * head_dim && w_o.ty.elements() == hidden * n_heads * head_dim && x.ty.elements() == hidden;
        let apart = qkv.inputs.iter().chain(&qkv.outputs).chain(&attention.inputs).chain([attended]).all(|slot| !overlaps(slot, out));
        let one_head = attention_units(n_heads, n_kv_heads, false).1 == 1;
        if o_proj.inputs[0] != *attended
            || qkv.inputs[0] != *x
            || w_o.ty.dtype != DType::BF16
            || !shapes
            || !apart
            || !one_head
            || !hidden.is_multiple_of(4)
            || share == 0
            || !share.is_multiple_of(8)
            || shared > ATTN_PROJ_MAX_SHARED
        {
            return Ok(None);
        }
        let mut launch = self.launch(plan, attention)?;
        // attention's arguments less unit_heads (one head a block), its context the positions
        // this launch serves (the kernel computes nothing past them), then the projection's
        launch.args.remove(12);
        launch.args[10] = int(positions);
        launch.args.extend([self.ptr(w_o), self.ptr(out), int(hidden)]);
        let grid = (launch.grid.0, cluster as u32, 1);
        Ok(Some(Launch { kernel: "attention_proj", grid, shared: shared as u32, tasks: grid.0 * grid.1, ..launch }))
    }

    /// qkv_rope's arguments (kernels/qkv_rope.cu).
    fn qkv_rope_args(&self, plan: &Plan, step: &Step) -> Result<Vec<u64>> {
        let Op::QkvRope { n_heads, n_kv_heads, head_dim, qk_norm, norm, .. } = step.op else {
            return Err(Error::Internal(format!("{} is not a qkv_rope step", step.label)));
        };
        let ins = &step.inputs;
        let k = gemv_k(step, &ins[0], &ins[1])?;
        let (norm_w, norm_eps) = self.norm_args(step, norm)?;
        if !head_dim.is_multiple_of(2) {
            return Err(unsupported(step, format!("RoPE needs an even head_dim, got {head_dim}")));
        }
        let heads = n_heads + 2 * n_kv_heads;
        if heads > QKV_MAX_HEADS {
            return Err(unsupported(step, format!("{heads} q/k/v heads (at most {QKV_MAX_HEADS})")));
        }
        let slots = step.qkv_inputs()?;
        let (q_norm, k_norm) = slots.qk_norm.map_or((0, 0), |(q, k)| (self.ptr(q), self.ptr(k)));
        let args = vec![
            self.ptr(&ins[0]),
            self.ptr(&ins[1]),
            slots.bias.map_or(0, |b| self.ptr(b)),
            q_norm,
            k_norm,
            float(qk_norm.unwrap_or(0.0)),
            self.ptr(slots.inv_freq),
            self.ptr(slots.position),
            self.ptr(&step.outputs[0]),
            self.ptr(slots.k_cache),
            self.ptr(slots.v_cache),
            self.scratch(self.scratch.qkv),
            self.counter(0),
            int(n_heads),
            int(n_kv_heads),
            int(head_dim),
            int(k),
            int(plan.max_seq_len),
            norm_w,
            norm_eps,
            0, // where to copy x (DeviceLayout::step_launches sets it in the short-context graph)
        ];
        Ok(args)
    }

    /// An input RMSNorm folded into a GEMV: its weight is the op's last input (Op docs).
    fn norm_args(&self, step: &Step, norm: Option<f32>) -> Result<(u64, u64)> {
        let Some(eps) = norm else { return Ok((0, 0)) };
        let (x, w) = (&step.inputs[0], step.inputs.last().expect("a normed op has inputs"));
        if w.ty.elements() != x.ty.elements() {
            return Err(unsupported(step, format!("norm weight of {} elements for an input of {}", w.ty.elements(), x.ty.elements())));
        }
        Ok((self.ptr(w), float(eps)))
    }

    /// `advance` (kernels/step_io.cu): the sampled token becomes the next step's input and the
    /// position moves on; the last launch of a decode step and of a prompt's last prefill pass.
    pub(super) fn advance(&self, io: &StepIo) -> Launch {
        Launch {
            kernel: "advance",
            grid: (1, 1, 1),
            block: 1,
            shared: 0,
            args: vec![self.ptr(&io.next_token), self.ptr(&io.token), self.ptr(&io.position)],
            label: "advance".into(),
            tasks: 1,
            cluster: 1,
        }
    }

    fn launch(&self, plan: &Plan, step: &Step) -> Result<Launch> {
        let (ins, outs) = (&step.inputs, &step.outputs);
        let gemv_k = |x: &Slot, w: &Slot| gemv_k(step, x, w);
        let unsupported = |why: String| unsupported(step, why);
        // A GEMV task's weight rows; a `_q` GEMV's tasks are tiles of GEMV_Q_ROWS rows.
        let rows_per_task = if matches!(step.op, Op::GateUpSilu { .. } | Op::QkvRope { .. }) { 2 } else { 1 };
        let quant = ins.get(1).is_some_and(|w| w.ty.dtype.is_block_format());
        let x_too_long = |k: usize| unsupported(format!("rows of {k} do not fit the GEMV's {GEMV_MAX_SHARED} bytes of shared memory"));
        let gemv_shape = |tasks: usize, k: usize, normed: bool| gemv_shape(tasks, rows_per_task, k, normed, quant, self.sms).ok_or_else(|| x_too_long(k));
        let sms = self.sms;
        let attention_cluster = if self.persistent || self.sm < 90 { 1 } else { attn_cluster() };
        let norm_args = |norm: Option<f32>| self.norm_args(step, norm);
        let mut shared = 0;
        // Warp tasks of the GEMV family; other kernels' tasks are their blocks.
        let mut warp_tasks = None;
        let (kernel, grid, block, args): (&'static str, (u32, u32, u32), u32, Vec<u64>) = match step.op {
            Op::Embedding => {
                let (hidden, vocab) = (ins[0].ty.last_dim(), ins[0].ty.elements() / ins[0].ty.last_dim());
                ("embedding", (1, 1, 1), 256, vec![self.ptr(&ins[0]), self.ptr(&ins[1]), self.ptr(&outs[0]), int(hidden), int(vocab)])
            }
            Op::RmsNorm { eps } => {
                let hidden = ins[1].ty.elements();
                let rows = ins[0].ty.elements() / hidden;
                ("rms_norm", (rows as u32, 1, 1), NORM_THREADS, vec![self.ptr(&ins[0]), self.ptr(&ins[1]), self.ptr(&outs[0]), int(hidden), float(eps)])
            }
            Op::Linear { bias } | Op::LinearResidual { bias } => {
                let k = gemv_k(&ins[0], &ins[1])?;
                let n = outs[0].ty.elements();
                let bias_ptr = if bias { self.ptr(&ins[2]) } else { 0 };
                let residual = if matches!(step.op, Op::LinearResidual { .. }) { self.ptr(&ins[2 + usize::from(bias)]) } else { 0 };
                let gemv = gemv_shape(n, k, false)?;
                let (grid, threads) = (gemv.grid, gemv.threads);
                shared = gemv.shared;
                warp_tasks = Some(n);
                ("linear", grid, threads, vec![self.ptr(&ins[0]), self.ptr(&ins[1]), bias_ptr, residual, self.ptr(&outs[0]), int(n), int(k)])
            }
            Op::LmHead { norm } => {
                let k = gemv_k(&ins[0], &ins[1])?;
                let n = outs[0].ty.elements();
                let gemv = lm_head_shape(n, k, norm.is_some(), quant, sms).ok_or_else(|| x_too_long(k))?;
                let (grid, threads) = (gemv.grid, gemv.threads);
                shared = gemv.shared;
                warp_tasks = Some(n);
                let (norm_w, eps) = norm_args(norm)?;
                ("lm_head", grid, threads, vec![self.ptr(&ins[0]), self.ptr(&ins[1]), norm_w, eps, self.ptr(&outs[0]), int(n), int(k)])
            }
            Op::GateUpSilu { norm } => {
                let k = gemv_k(&ins[0], &ins[1])?;
                let (norm_w, eps) = norm_args(norm)?;
                let f = outs[0].ty.elements();
                let gemv = gemv_shape(f, k, norm.is_some())?;
                let (grid, threads) = (gemv.grid, gemv.threads);
                shared = gemv.shared;
                warp_tasks = Some(f);
                ("gate_up_silu", grid, threads, vec![self.ptr(&ins[0]), self.ptr(&ins[1]), norm_w, eps, self.ptr(&outs[0]), int(f), int(k)])
            }
            Op::QkvRope { n_heads, n_kv_heads, head_dim, norm, .. } => {
                let args = self.qkv_rope_args(plan, step)?;
                // One warp task per RoPE pair.
                let tasks = (n_heads + 2 * n_kv_heads) * head_dim / 2;
                let k = ins[1].ty.last_dim();
                let gemv = qkv_rope_shape(tasks, k, norm.is_some(), quant, sms).ok_or_else(|| x_too_long(k))?;
                shared = gemv.shared;
                warp_tasks = Some(tasks);
                ("qkv_rope", gemv.grid, gemv.threads, args)
            }
            Op::Attention { n_heads, n_kv_heads, head_dim } => {
                if n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) || n_heads / n_kv_heads > ATTN_MAX_GROUP {
                    return Err(unsupported(format!("{n_heads} query heads over {n_kv_heads} KV heads (at most {ATTN_MAX_GROUP} per KV head)")));
                }
                let (units, unit_heads) = attention_units(n_heads, n_kv_heads, self.persistent);
                if !(8..=ATTN_MAX_HEAD_DIM).contains(&head_dim) || !head_dim.is_power_of_two() || units > MLP_COUNTER - ATTENTION_COUNTERS {
                    return Err(unsupported(format!(
                        "head_dim {head_dim} (a power of two from 8 to {ATTN_MAX_HEAD_DIM}) or {units} blocks of query heads (at most {})",
                        MLP_COUNTER - ATTENTION_COUNTERS
                    )));
                }
                let splits = attention_splits(sms, units, plan.max_seq_len, self.persistent, attention_cluster);
                if splits > ATTN_MAX_SPLITS {
                    return Err(unsupported(format!(
                        "a context of {} positions (at most {}; compile with a smaller --max-seq-len)",
                        plan.max_seq_len,
                        ATTN_MAX_SPLITS as usize * ATTN_CHUNK
                    )));
                }
                let args = vec![
                    self.ptr(&ins[0]),
                    self.ptr(&ins[1]),
                    self.ptr(&ins[2]),
                    self.ptr(&ins[3]),
                    self.ptr(&outs[0]),
                    self.scratch(self.scratch.attention),
                    self.counter(ATTENTION_COUNTERS),
                    int(n_heads),
                    int(n_kv_heads),
                    int(head_dim),
                    int(plan.max_seq_len),
                    int(attn_min_chunk()),
                    int(unit_heads),
                    int(attention_cluster),
                ];
                ("attention", (units as u32, splits, 1), ATTN_THREADS, args)
            }
            Op::Sample => return Ok(self.sample(&ins[0], &outs[0], &plan.io.position, &step.label)),
            ref op => return Err(Error::Internal(format!("plan step `{}` reached the CUDA backend, which has no kernel for it", op.kind()))),
        };
        let tasks = match warp_tasks {
            None => grid.0 * grid.1 * grid.2,
            Some(tasks) if quant => tasks.div_ceil(GEMV_Q_ROWS / rows_per_task) as u32,
            Some(tasks) => tasks as u32,
        };
        let cluster = if kernel == "attention" { attention_cluster as u32 } else { 1 };
        let mut args = args;
        // The embedding's table is its first input, every GEMV's weight its second (Op docs).
        let kernel = match step.op {
            Op::Embedding => for_weight(kernel, &ins[0], &mut args)?,
            Op::Linear { .. } | Op::LinearResidual { .. } | Op::LmHead { .. } | Op::GateUpSilu { .. } | Op::QkvRope { .. } => {
                for_weight(kernel, &ins[1], &mut args)?
            }
            _ => kernel,
        };
        Ok(Launch { kernel, grid, block, shared, args, label: step.label.clone(), tasks, cluster })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention blocks serve one query head on the graph path; on the persistent path the
    /// smallest divisor of the group from two, with no more units over their splits than workers
    /// (one an SM) unless slices of ATTN_CHUNK positions need more.
    #[test]
    fn attention_blocks_by_decode_path() {
        // (query heads, KV heads, heads of a persistent unit): Qwen2.5-1.5B, Qwen3-1.7B,
        // Llama-3.2-3B, Qwen2-7B, and multi-head attention
        for (heads, kv, unit_heads) in [(12, 2, 2), (16, 8, 2), (24, 8, 3), (28, 4, 7), (8, 8, 1)] {
            assert_eq!(attention_units(heads, kv, false), (heads, 1), "{heads} heads over {kv}");
            assert_eq!(attention_units(heads, kv, true), (heads / unit_heads, unit_heads), "{heads} heads over {kv}");
            for max_seq in [64usize, 4096, 32768] {
                let (units, floor) = (heads / unit_heads, max_seq.div_ceil(ATTN_CHUNK));
                let splits = attention_splits(132, units, max_seq, true, 1) as usize;
                assert!(units * splits <= 132 || splits == floor, "{units} units x {splits} splits for {max_seq} positions");
                assert!(splits >= floor && attention_splits(132, heads, max_seq, false, 1) as usize >= floor);
                // Clusters take whole multiples of their blocks, and no more than one cluster extra.
                for cluster in [2, 4, 8] {
                    let (alone, clustered) = (attention_splits(132, heads, max_seq, false, 1), attention_splits(132, heads, max_seq, false, cluster));
                    assert!(clustered.is_multiple_of(cluster as u32) && clustered >= alone && clustered < alone + cluster as u32, "{clustered} splits");
                }
            }
        }
    }

    /// Attention and o_proj fuse in the short-context graph where a block's share of a head's
    /// W_o columns is at most ATTN_PROJ_MAX_SHARED in the default clusters of 4: Qwen2.5-1.5B
    /// (hidden 1,536 at head_dim 128: 96 KiB); Qwen3-1.7B (2,048), Llama-3.2-3B (3,072) and
    /// Qwen2-7B (3,584) would stream 128, 192 and 224 KiB a block and get no short-context graph
    /// (Qwen3-1.7B's measured slower with it). Never in the graph that serves every position, nor
    /// on the persistent path.
    #[test]
    fn attention_and_o_proj_fuse_where_the_share_fits() {
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs");
        for (name, fits) in [("qwen2.5-1.5b", true), ("qwen3-1.7b", false), ("llama-3.2-3b", false), ("qwen2-7b", false)] {
            let config = crate::load::config::ModelConfig::from_file(&configs.join(format!("{name}.json"))).unwrap();
            let tokenizer = crate::load::TokenizerSpec { json: String::new(), chat_template: None, eos_ids: vec![], bos_token: None, eos_token: None };
            let plan = crate::plan::build(&config, tokenizer, 1024, Target::Cuda { sm: 90 }).unwrap();
            for persistent in [false, true] {
                let layout = DeviceLayout::placeholder(&plan, 132, persistent);
                let every = layout.launches(&plan).unwrap();
                assert!(every.iter().all(|l| l.kernel != "attention_proj"), "{name}: fused in the graph for every position");
                let short = layout.short_context_launches(&plan).unwrap();
                assert_eq!(short.is_some(), fits && !persistent, "{name}, persistent {persistent}");
                let Some(short) = short else { continue };
                assert_eq!(short.positions, ATTN_CLUSTER * ATTN_MIN_CHUNK, "{name}");
                assert_eq!(short.launches.len(), every.len() - config.num_layers, "{name}: one launch fewer a layer");
                // each attention_proj's qkv_rope copies x into the projection's output, and only there
                for (i, l) in short.launches.iter().enumerate() {
                    let copy = l.kernel.starts_with("qkv_rope").then(|| l.args[QKV_RESIDUAL_ARG]);
                    match short.launches.get(i + 1).filter(|n| n.kernel == "attention_proj") {
                        Some(proj) => assert_eq!(copy, Some(proj.args[14]), "{name}: {}", l.label),
                        None => assert!(copy.is_none_or(|c| c == 0), "{name}: {}", l.label),
                    }
                }
                assert!(every.iter().filter(|l| l.kernel.starts_with("qkv_rope")).all(|l| l.args[QKV_RESIDUAL_ARG] == 0), "{name}");
                let fused: Vec<_> = short.launches.iter().filter(|l| l.kernel == "attention_proj").collect();
                assert_eq!(fused.len(), config.num_layers, "{name}");
                let (hidden, share) = (config.hidden_size, config.head_dim / ATTN_CLUSTER);
                for l in fused {
                    assert_eq!((l.shared as usize, l.cluster as usize), (hidden * share * 2, ATTN_CLUSTER), "{name}");
                    assert_eq!(l.grid, (config.num_heads as u32, ATTN_CLUSTER as u32, 1), "{name}: a head's slices one cluster");
                    assert_eq!(l.args.len(), 16, "{name}: attention's arguments less unit_heads, and the projection's three");
                    assert_eq!(l.args[10], int(short.positions), "{name}: the context is the positions served");
                }
                // the short graph's MLPs leave SMs spare, the long graph's take one an SM
                let mlp_grids = |launches: &[Launch]| launches.iter().filter(|l| l.kernel == "mlp").map(|l| l.grid.0 as usize).collect::<Vec<_>>();
                let units = config.intermediate_size / MLP_UNIT;
                assert_eq!(mlp_grids(&every), vec![units.min(132); config.num_layers], "{name}");
                assert_eq!(mlp_grids(&short.launches), vec![units.min(132 - SHORT_CONTEXT_MLP_SPARE_SMS); config.num_layers], "{name}");
            }
        }
    }

    /// The fused MLP takes every SM in the long graph, and in the short graph all but the spare
    /// ones, or half of a GPU too small to spare them; never none.
    #[test]
    fn the_short_graph_mlp_leaves_sms_spare() {
        for sms in [1, 2, 3, 7, 8, 9, 114, 132] {
            assert_eq!(mlp_max_blocks(sms, false), sms as usize);
            let short = mlp_max_blocks(sms, true);
            assert!((1..=sms as usize).contains(&short), "{short} blocks on {sms} SMs");
            assert_eq!(short, (sms as usize - SHORT_CONTEXT_MLP_SPARE_SMS.min(sms as usize / 2)).max(1), "{sms} SMs");
        }
        assert_eq!(mlp_max_blocks(132, true), 128);
    }

    /// A bf16 LM head runs at most one block of LM_HEAD_WARPS warps an SM, enough warps for every
    /// row when the vocabulary is small, and stages x as any GEMV does; a block format's keeps
    /// the `_q` shape.
    #[test]
    fn the_lm_head_runs_a_block_an_sm() {
        for (vocab, sms) in [(151_936, 132), (272, 132), (8, 132), (151_936, 1), (32_000, 16)] {
            let wide = lm_head_shape(vocab, 1536, true, false, sms).expect("x fits");
            let blocks = wide.grid.0 as usize;
            assert_eq!(wide.threads as usize, 32 * LM_HEAD_WARPS);
            assert!((1..=sms as usize).contains(&blocks), "{blocks} blocks on {sms} SMs");
            assert!(blocks * LM_HEAD_WARPS >= vocab.min(sms as usize * LM_HEAD_WARPS), "{blocks} blocks for {vocab} rows");
            assert_eq!(Some(wide.shared), gemv_shape(vocab, 1, 1536, true, false, sms).map(|g| g.shared));
            let quant = lm_head_shape(vocab, 1536, true, true, sms).expect("x fits");
            let twin = gemv_shape(vocab, 1, 1536, true, true, sms).expect("x fits");
            assert_eq!((quant.grid, quant.threads, quant.shared), (twin.grid, twin.threads, twin.shared));
        }
        assert_eq!(lm_head_shape(151_936, 1536, true, false, 132).map(|s| s.grid), Some((132, 1, 1)));
        assert!(lm_head_shape(151_936, GEMV_MAX_SHARED, true, false, 132).is_none(), "x past the GEMV's shared memory");
    }

    /// The bf16 qkv_rope gives every warp a task up to QKV_BLOCKS_PER_SM blocks an SM, and its
    /// `_q` twin keeps the GEMV family's launch.
    #[test]
    fn qkv_rope_blocks_give_each_warp_a_task() {
        // (n_heads + 2 n_kv) * head_dim / 2 of the published configs, one head, and the 7B shape
        for (tasks, sms) in [(1024, 132), (2048, 132), (2304, 132), (64, 132), (1024, 1), (2304, 16)] {
            let shape = qkv_rope_shape(tasks, 1536, true, false, sms).expect("x fits");
            let blocks = shape.grid.0 as usize;
            assert_eq!(shape.threads as usize, 32 * QKV_WARPS);
            assert!((1..=QKV_BLOCKS_PER_SM * sms as usize).contains(&blocks), "{blocks} blocks on {sms} SMs");
            assert!(blocks * QKV_WARPS >= tasks.min(QKV_BLOCKS_PER_SM * sms as usize * QKV_WARPS), "{blocks} blocks for {tasks} tasks");
            assert!((blocks - 1) * QKV_WARPS < tasks, "{blocks} blocks for {tasks} tasks: a block without one");
            let quant = qkv_rope_shape(tasks, 1536, true, true, sms).expect("x fits");
            let twin = gemv_shape(tasks, 2, 1536, true, true, sms).expect("x fits");
            assert_eq!((quant.grid, quant.threads, quant.shared), (twin.grid, twin.threads, twin.shared));
        }
        assert_eq!(qkv_rope_shape(1024, 1536, true, false, 132).map(|s| s.grid), Some((128, 1, 1)));
        assert!(qkv_rope_shape(1024, GEMV_MAX_SHARED, true, false, 132).is_none(), "x past the GEMV's shared memory");
    }

    /// A `_q` GEMV's blocks never ask for more warps than an SM holds at its launch bounds, cover
    /// every tile at once when the SMs allow, and stage x within the shared memory they ask for.
    #[test]
    fn quantized_gemv_launches_fit_the_sms() {
        for sms in [1, 8, 132] {
            for (tasks, rows_per_task) in [(1, 1), (8, 2), (1024, 2), (1536, 1), (8960, 2), (151_936, 1)] {
                for k in [256, 1536, 8960] {
                    for normed in [false, true] {
                        let Some(shape) = gemv_shape(tasks, rows_per_task, k, normed, true, sms) else { continue };
                        let (blocks, warps) = (shape.grid.0 as usize, shape.threads as usize / 32);
                        assert!(warps.is_power_of_two() && (4..=GEMV_Q_MAX_WARPS).contains(&warps), "{warps} warps");
                        assert!(blocks >= 1 && blocks * warps <= GEMV_Q_MAX_WARPS * sms as usize, "{blocks} blocks of {warps} warps on {sms} SMs");
                        let tiles = tasks.div_ceil(GEMV_Q_ROWS / rows_per_task);
                        assert!(blocks == tiles || blocks * warps > GEMV_Q_MAX_WARPS * sms as usize - warps, "{blocks} blocks for {tiles} tiles");
                        assert!(shape.shared as usize <= GEMV_MAX_SHARED);
                    }
                }
            }
        }
    }

    /// x staged as f16 parts and a (sum, scale) per run (4.5 bytes an element, a folded norm or
    /// not) bounds K: the rows of today's models fit (FFN down projections up to Qwen2.5-7B's
    /// 18,944, hidden sizes up to 8,192 with a norm), and past the bound the launch is refused,
    /// not shrunk.
    #[test]
    fn quantized_gemv_refuses_rows_whose_x_does_not_fit() {
        let fits = |k: usize, normed: bool| gemv_shape(64, 1, k, normed, true, 132).is_some();
        assert!(fits(8_960, false) && fits(18_944, false) && fits(1_536, true) && fits(8_192, true) && fits(21_760, true));
        assert!(!fits(21_888, false) && !fits(21_888, true) && !fits(24_576, false));
    }
}
