//! The execution plan: what `llmc compile` writes and `llmc run` executes. It is plain data: the
//! fused schedule (one step per kernel), the arena offset of every activation, the weight layout,
//! the tokenizer and the model config. [`build`] derives it from a fused graph without touching
//! any weight bytes, so the plan of a 28-layer model can be built and reviewed from its config.

pub mod file;
pub mod inspect;
pub mod prefill;
pub mod program;

use crate::arena::{self, Lifetime, ALIGN};
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, KvHalf, Op, OpClass, TensorType, Value, WeightId};
use crate::load::config::ModelConfig;
use crate::load::TokenizerSpec;
use petgraph::stable_graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What a plan's kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Cpu,
    /// An NVIDIA GPU of compute capability `sm / 10`.`sm % 10`.
    Cuda {
        sm: u32,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cpu => f.write_str("cpu"),
            Target::Cuda { sm } => write!(f, "sm_{sm}"),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "cpu" {
            return Ok(Target::Cpu);
        }
        match s.strip_prefix("sm_").and_then(|n| n.parse::<u32>().ok()) {
            Some(sm) if sm >= 80 => Ok(Target::Cuda { sm }),
            Some(sm) => Err(Error::Input(format!("target sm_{sm} is too old: llmc needs sm_80 or newer (bf16 tensor cores)"))),
            None => Err(Error::Input(format!("unknown target `{s}` (use cpu, sm_80, sm_86, sm_89 or sm_90)"))),
        }
    }
}

/// Which memory a slot lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Region {
    /// The activation arena: activations, the KV cache and the step's inputs and outputs.
    Arena,
    /// The weight blob, laid out as the kernels read it.
    Weights,
}

/// A tensor at a fixed place: `region` + byte `offset`, typed. `name` says what it holds, for
/// listings (`%12` is step 12's output, `layers.3.qkv_proj` a weight, `kv.3.k` a cache).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub region: Region,
    pub offset: u64,
    pub ty: TensorType,
    pub name: String,
}

impl Slot {
    pub fn bytes(&self) -> u64 {
        self.ty.bytes() as u64
    }
}

/// One kernel launch of the decode step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub op: Op,
    pub inputs: Vec<Slot>,
    pub outputs: Vec<Slot>,
    pub label: String,
}

/// The input slots of a `QkvRope` step by role, in the order `Op::QkvRope` documents.
pub struct QkvInputs<'s> {
    pub x: &'s Slot,
    pub w: &'s Slot,
    pub bias: Option<&'s Slot>,
    /// The per-head (q, k) RMSNorm weights.
    pub qk_norm: Option<(&'s Slot, &'s Slot)>,
    pub inv_freq: &'s Slot,
    pub position: &'s Slot,
    pub k_cache: &'s Slot,
    pub v_cache: &'s Slot,
    /// The folded input RMSNorm's weight.
    pub norm: Option<&'s Slot>,
}

impl Step {
    /// This `QkvRope` step's inputs by role; an error for another op or too few inputs.
    pub fn qkv_inputs(&self) -> Result<QkvInputs<'_>> {
        let bad = || Error::BadPlan { path: "plan".into(), msg: format!("step {}: not a qkv_rope step with its inputs", self.label) };
        let Op::QkvRope { bias, qk_norm, norm, .. } = self.op else { return Err(bad()) };
        let mut slots = self.inputs.iter();
        let mut next = || slots.next().ok_or_else(bad);
        let (x, w) = (next()?, next()?);
        let bias = if bias { Some(next()?) } else { None };
        let qk_norm = if qk_norm.is_some() { Some((next()?, next()?)) } else { None };
        let (inv_freq, position, k_cache, v_cache) = (next()?, next()?, next()?, next()?);
        let norm = if norm.is_some() { Some(next()?) } else { None };
        Ok(QkvInputs { x, w, bias, qk_norm, inv_freq, position, k_cache, v_cache, norm })
    }
}

/// A weight in the blob; concatenated weights (`qkv_proj`, `gate_up_proj`) hold their parts back
/// to back, and a tied LM head shares the embedding's offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightEntry {
    pub id: WeightId,
    pub offset: u64,
    pub ty: TensorType,
}

/// The slots the runtime reads and writes around each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepIo {
    /// i32: the token fed to the step.
    pub token: Slot,
    /// i32: its position in the sequence.
    pub position: Slot,
    /// f32[vocab]: the logits the step produces.
    pub logits: Slot,
    /// i32: the token the on-device sampler chose.
    pub next_token: Slot,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub llmc_version: String,
    pub target: Target,
    pub config: ModelConfig,
    pub config_hash: u64,
    pub max_seq_len: usize,
    pub tokenizer: TokenizerSpec,
    /// Op counts of the graph as lowered, before any pass.
    pub ops_before_fusion: BTreeMap<String, usize>,
    /// Op counts of the fused graph.
    pub ops_after_fusion: BTreeMap<String, usize>,
    pub steps: Vec<Step>,
    pub io: StepIo,
    pub arena_bytes: u64,
    pub weights: Vec<WeightEntry>,
    pub weight_bytes: u64,
    /// The compiled CUDA kernels of a GPU target; None for the CPU.
    pub kernels: Option<crate::kernels::KernelImage>,
    /// Decode as one persistent kernel running this program (`llmc compile --decode
    /// persistent`); None: one kernel per step.
    pub program: Option<program::Program>,
}

pub const LLMC_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lowers `config`, runs every pass and lays out the result. Refuses a fused graph that fails
/// `ir::verify` or still holds an op with no kernel (a pass failed to match), rather than
/// planning it.
pub fn build(config: &ModelConfig, tokenizer: TokenizerSpec, max_seq_len: usize, target: Target) -> Result<Plan> {
    build_with_formats(config, tokenizer, max_seq_len, target, &WeightFormats::new())
}

/// The block format each weight keeps from its source (`crate::quant`); a weight not named is
/// stored bf16. A concatenated weight keeps its parts' format only when all share it: a mixed
/// one (Q4_K_M's Q4_K q/k with a Q6_K v) is stored bf16 whole.
pub type WeightFormats = BTreeMap<WeightId, DType>;

/// [`build`], storing the weights `formats` names in their block formats.
pub fn build_with_formats(config: &ModelConfig, tokenizer: TokenizerSpec, max_seq_len: usize, target: Target, formats: &WeightFormats) -> Result<Plan> {
    if max_seq_len == 0 || max_seq_len > config.max_position_embeddings {
        return Err(Error::Input(format!("--max-seq-len {max_seq_len} must be between 1 and the model's {} positions", config.max_position_embeddings)));
    }
    let lowered = crate::lower::lower(config, max_seq_len);
    let ops_before_fusion = lowered.op_counts();
    let fused = crate::passes::optimize(lowered).compacted();
    // Both are llmc's bugs, not the model's: every config that loads lowers and fuses.
    crate::ir::verify(&fused).map_err(|e| Error::Internal(format!("the fused graph is invalid: {e}")))?;
    if let Some(n) = fused.g.node_indices().find(|&n| !matches!(fused.node(n).op.class(), OpClass::Source | OpClass::Kernel)) {
        let node = fused.node(n);
        return Err(Error::Internal(format!("op `{}` at {} survived fusion and has no kernel", node.op.kind(), node.label)));
    }
    let (weights, weight_bytes) = weight_layout(config, &fused, formats);
    let (steps, io, arena_bytes) = schedule(&fused, &weights)?;
    Ok(Plan {
        llmc_version: LLMC_VERSION.to_string(),
        target,
        config: config.clone(),
        config_hash: config.hash(),
        max_seq_len,
        tokenizer,
        ops_before_fusion,
        ops_after_fusion: fused.op_counts(),
        steps,
        io,
        arena_bytes,
        weights,
        weight_bytes,
        kernels: None,
        program: None,
    })
}

/// Weights in the order the step first reads them, so compile writes and the GPU uploads the
/// blob front to back. A tied LM head points at the embedding.
fn weight_layout(config: &ModelConfig, g: &Graph, formats: &WeightFormats) -> (Vec<WeightEntry>, u64) {
    let mut entries: Vec<WeightEntry> = Vec::new();
    let mut offset = 0u64;
    let kernels = g.schedule().into_iter().filter(|&n| !g.node(n).op.is_source());
    for w in kernels.flat_map(|n| g.inputs(n)) {
        let Op::Weight(id) = g.node(w.node).op else { continue };
        if entries.iter().any(|e| e.id == id) {
            continue;
        }
        let mut ty = g.ty(w).clone();
        if let Some(format) = stored_format(id, formats) {
            ty.dtype = format;
        }
        if id == WeightId::LmHead && config.tie_word_embeddings {
            if let Some(embed) = entries.iter().find(|e| e.id == WeightId::Embed) {
                ty.dtype = embed.ty.dtype;
                entries.push(WeightEntry { id, offset: embed.offset, ty });
                continue;
            }
        }
        let bytes = ty.bytes() as u64;
        entries.push(WeightEntry { id, offset, ty });
        offset = arena::align_up(offset + bytes, ALIGN);
    }
    (entries, offset)
}

/// The format weight `id` is stored in, if a block format: its own, or its parts' common one.
fn stored_format(id: WeightId, formats: &WeightFormats) -> Option<DType> {
    let parts: Vec<WeightId> = match id {
        WeightId::Layer(l, w) => w.parts().into_iter().map(|p| WeightId::Layer(l, p)).collect(),
        id => vec![id],
    };
    let first = *formats.get(&parts[0])?;
    parts.iter().all(|p| formats.get(p) == Some(&first)).then_some(first)
}

/// Orders the kernels, gives every value a slot and plans the arena.
fn schedule(g: &Graph, weights: &[WeightEntry]) -> Result<(Vec<Step>, StepIo, u64)> {
    let order: Vec<NodeIndex> = g.schedule().into_iter().filter(|&n| !g.node(n).op.is_source()).collect();
    let step_of: HashMap<NodeIndex, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let whole_run = order.len();

    // Every arena value: its type, name and lifetime. Aliased outputs resolve to their source.
    let mut arena_values: Vec<(Value, TensorType, String, Lifetime)> = Vec::new();
    let mut slot_index: HashMap<Value, usize> = HashMap::new();
    let resolve = |mut v: Value| loop {
        match g.node(v.node).op.alias_of(v.port as usize) {
            Some(slot) => v = g.inputs(v.node)[slot],
            None => return v,
        }
    };
    for n in g.schedule() {
        let node = g.node(n);
        for (port, ty) in node.outputs.iter().enumerate() {
            let v = Value { node: n, port: port as u8 };
            if node.op.alias_of(port).is_some() || matches!(node.op, Op::Weight(_)) {
                continue;
            }
            let (name, first, last) = match (&node.op, step_of.get(&n)) {
                (Op::TokenId, _) => ("token".to_string(), 0, whole_run),
                (Op::Position, _) => ("position".to_string(), 0, whole_run),
                (Op::KvCache { layer, half }, _) => {
                    let h = if *half == KvHalf::K { "k" } else { "v" };
                    (format!("kv.{layer}.{h}"), 0, whole_run)
                }
                (_, Some(&step)) => {
                    let name = if node.outputs.len() > 1 { format!("%{step}.{port}") } else { format!("%{step}") };
                    (name, step, step)
                }
                (_, None) => unreachable!("non-source nodes are scheduled"),
            };
            slot_index.insert(v, arena_values.len());
            arena_values.push((v, ty.clone(), name, Lifetime { bytes: ty.bytes() as u64, first, last }));
        }
    }
    // Extend lifetimes to the last reader (through aliases), and keep the step's outputs.
    for &n in &order {
        for input in g.inputs(n) {
            if let Some(&i) = slot_index.get(&resolve(input)) {
                arena_values[i].3.last = arena_values[i].3.last.max(step_of[&n]);
            }
        }
    }
    for v in g.outputs.values() {
        if let Some(&i) = slot_index.get(&resolve(*v)) {
            arena_values[i].3.last = whole_run;
        }
    }
    let lifetimes: Vec<Lifetime> = arena_values.iter().map(|a| a.3).collect();
    let layout = arena::plan(&lifetimes);
    arena::check(&lifetimes, &layout).map_err(|e| Error::Internal(format!("arena planning failed: {e}")))?;

    let slot_of = |v: Value| -> Slot {
        let v = resolve(v);
        if let Op::Weight(id) = g.node(v.node).op {
            let e = weights.iter().find(|e| e.id == id).expect("every weight node has an entry");
            return Slot { region: Region::Weights, offset: e.offset, ty: e.ty.clone(), name: id.to_string() };
        }
        let i = slot_index[&v];
        let (_, ty, name, _) = &arena_values[i];
        Slot { region: Region::Arena, offset: layout.offsets[i], ty: ty.clone(), name: name.clone() }
    };
    let steps = order
        .iter()
        .map(|&n| {
            let node = g.node(n);
            Step {
                op: node.op.clone(),
                inputs: g.inputs(n).into_iter().map(slot_of).collect(),
                outputs: (0..node.outputs.len()).map(|p| slot_of(Value { node: n, port: p as u8 })).collect(),
                label: node.label.clone(),
            }
        })
        .collect();
    let source = |pred: fn(&Op) -> bool| -> Result<Slot> {
        let n = g.g.node_indices().find(|&n| pred(&g.node(n).op)).ok_or_else(|| Error::Internal("the fused graph lacks a step input".into()))?;
        Ok(slot_of(n.into()))
    };
    let output = |name: &str| -> Result<Slot> {
        g.outputs.get(name).map(|&v| slot_of(v)).ok_or_else(|| Error::Internal(format!("the fused graph lacks output `{name}`")))
    };
    let io = StepIo {
        token: source(|op| matches!(op, Op::TokenId))?,
        position: source(|op| matches!(op, Op::Position))?,
        logits: output("logits")?,
        next_token: output("token")?,
    };
    debug_assert_eq!(io.logits.ty.dtype, DType::F32);
    Ok((steps, io, layout.bytes))
}

impl Plan {
    /// Kernels launched per decoded token.
    pub fn kernels_per_token(&self) -> usize {
        self.steps.len()
    }

    /// Re-derives every activation's lifetime from the steps and proves the arena sound, so a
    /// backend can hand out disjoint views of one buffer without trusting the file. Values are
    /// keyed by name; a value lives from the step that writes it to the last step that reads it,
    /// and the KV caches and the step's inputs and outputs live throughout.
    pub fn check_arena(&self) -> Result<()> {
        let bad = |msg: String| Error::BadPlan { path: "plan".into(), msg };
        let whole_run = self.steps.len();
        let persistent = [&self.io.token, &self.io.position, &self.io.logits, &self.io.next_token];
        if let Some(p) = persistent.iter().find(|p| p.region != Region::Arena || p.offset.checked_add(p.bytes()).is_none_or(|end| end > self.arena_bytes)) {
            return Err(bad(format!("step input/output {} lies outside the arena", p.name)));
        }
        let mut values: Vec<(u64, Lifetime)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let uses = self.steps.iter().enumerate().flat_map(|(i, s)| s.inputs.iter().chain(&s.outputs).map(move |slot| (i, slot)));
        for (i, slot) in uses {
            if slot.region != Region::Arena {
                continue;
            }
            // Step inputs and caches carry data across steps; outputs are read after the step.
            let from_start = [&self.io.token, &self.io.position].iter().any(|p| p.name == slot.name) || slot.name.starts_with("kv.");
            let keep = from_start || persistent.iter().any(|p| p.name == slot.name);
            let k = *index.entry(&slot.name).or_insert_with(|| {
                values.push((slot.offset, Lifetime { bytes: slot.bytes(), first: if from_start { 0 } else { i }, last: i }));
                values.len() - 1
            });
            let (offset, lt) = &mut values[k];
            if *offset != slot.offset || lt.bytes != slot.bytes() {
                return Err(bad(format!("value {} appears at two places", slot.name)));
            }
            lt.last = if keep { whole_run } else { lt.last.max(i) };
        }
        let lifetimes: Vec<Lifetime> = values.iter().map(|v| v.1).collect();
        let layout = arena::Layout { offsets: values.iter().map(|v| v.0).collect(), bytes: self.arena_bytes };
        arena::check(&lifetimes, &layout).map_err(|e| bad(format!("arena layout is unsound: {e}")))
    }
}
