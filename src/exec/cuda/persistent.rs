//! The host side of the persistent decode kernel (kernels/persistent.cu). At compile time,
//! [`schedule`] asks the one-kernel-per-step launch shapes how many tasks each step has (so both
//! decode paths cut the work the same way) and has `plan::program` assign them to workers. At
//! load, [`DeviceProgram`] lays the program and one descriptor per step (the step's kernel kind
//! and the very arguments its standalone launch would get) out as the tables the kernel reads.

use super::launch::{DeviceLayout, Launch};
use crate::error::{Error, Result};
use crate::ir::Op;
use crate::plan::program::{Program, StepWork};
use crate::plan::Plan;

use crate::kernels::define;

/// Threads of a worker (= ATTN_THREADS: attention runs one unit per worker).
pub const THREADS: u32 = define("PK_THREADS") as u32;
/// Workers resident on each SM.
pub const WORKERS_PER_SM: u32 = define("PK_BLOCKS_PER_SM") as u32;
/// u64 words of a step descriptor: kind, aux, then the standalone kernel's arguments.
const DESC_WORDS: usize = define("PK_DESC_WORDS");
/// Dynamic shared memory of a worker: x of the widest GEMV, then the weight ring's stages.
pub const MAX_SHARED: u32 = define("PK_DYNAMIC_SHARED") as u32;
/// Bytes of one stage of the weight ring, and the most rows it holds: a piece of whole tasks' rows.
const SLOT_BYTES: u64 = define("PK_SLOT_BYTES") as u64;
const PIECE_ROWS: u64 = define("PK_PIECE_ROWS") as u64;
const MAX_STAGES: u32 = define("PK_MAX_STAGES") as u32;
/// u32 words of a piece's record.
const PIECE_WORDS: usize = define("PK_PIECE_WORDS");
/// Fewest stages worth running with: one landing while the other is read.
const MIN_STAGES: u32 = 2;

/// The step kinds the kernel runs (word 0 of a descriptor), by standalone kernel.
const KINDS: [(&str, usize); 6] = [
    ("embedding", define("PK_EMBEDDING")),
    ("linear", define("PK_LINEAR")),
    ("lm_head", define("PK_LM_HEAD")),
    ("gate_up_silu", define("PK_GATE_UP")),
    ("qkv_rope", define("PK_QKV")),
    ("attention", define("PK_ATTENTION")),
];

fn kind(kernel: &str) -> Option<u64> {
    KINDS.iter().find(|(name, _)| *name == kernel).map(|&(_, kind)| kind as u64)
}

/// SMs to schedule for when compiling for `sm` without that GPU at hand: the data-center part
/// of each architecture (H100/H200 SXM: 132; A100: 108). `--sms` overrides it.
pub fn default_sms(sm: u32) -> u32 {
    if sm >= 90 {
        132
    } else {
        108
    }
}

/// The persistent program of `plan` for a GPU of `sms` SMs; a step the kernel cannot run is
/// refused here, with its reason, never at load.
pub fn schedule(plan: &Plan, sms: u32) -> Result<Program> {
    // The launches the steps would get one kernel each: only their shapes and tasks count here.
    let launches = DeviceLayout::placeholder(plan, sms).launches(plan)?;
    let mut work = Vec::with_capacity(plan.steps.len());
    for (step, launch) in plan.steps.iter().zip(&launches) {
        if matches!(step.op, Op::Sample) {
            work.push(None); // runs after the persistent kernel, in its own kernel
            continue;
        }
        let refuse = |why: String| Error::Unsupported(format!("--decode persistent: {} ({}): {why}; compile with --decode graph", step.label, step.op.kind()));
        if let Some(w) = step.inputs.iter().find(|i| i.ty.dtype.is_block_format()) {
            return Err(refuse(format!("the persistent kernel reads bf16 weights only, and {} is {} (or compile with --weights bf16)", w.name, w.ty.dtype)));
        }
        if kind(launch.kernel).is_none() {
            return Err(refuse(format!("the persistent kernel has no `{}` instruction", launch.kernel)));
        }
        if ring_at(launch.shared) + u64::from(MIN_STAGES) * SLOT_BYTES > u64::from(MAX_SHARED) {
            return Err(refuse(format!(
                "stages {} bytes of x in shared memory, which leaves no room for {MIN_STAGES} weight stages of {SLOT_BYTES} bytes (a worker has {MAX_SHARED})",
                launch.shared
            )));
        }
        if let Some(rows) = GemvRows::of(launch) {
            if rows.task_bytes() > SLOT_BYTES {
                return Err(refuse(format!("a task's weight rows take {} bytes, more than a weight stage's {SLOT_BYTES}", rows.task_bytes())));
            }
        }
        // GEMV tasks stream an equal share of the weight matrix (input 1); others stream none.
        let gemv = matches!(step.op, Op::Linear { .. } | Op::LinearResidual { .. } | Op::GateUpSilu { .. } | Op::QkvRope { .. } | Op::LmHead { .. });
        let bytes_per_task = if gemv { step.inputs[1].bytes() / u64::from(launch.tasks.max(1)) } else { 0 };
        work.push(Some(StepWork { tasks: launch.tasks, bytes_per_task }));
    }
    Program::schedule(plan, &work, sms, WORKERS_PER_SM)
}

/// Where x's staging ends and the weight ring begins in a worker's shared memory.
fn ring_at(x_bytes: u32) -> u64 {
    u64::from(x_bytes).div_ceil(128) * 128
}

/// Which weight rows a GEMV step's task reads (its standalone kernel's `rows_of`: gemv.cu,
/// qkv_rope.cu), read off the launch's arguments: the weight ring requests them by address.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GemvRows {
    weights: u64,
    row_bytes: u64,
    pairing: Pairing,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pairing {
    /// Task t reads row t (linear, LM head).
    Single,
    /// Task t reads rows t and f + t (gate/up).
    GateUp { f: u64 },
    /// Task t is the RoPE pair (i, i + d/2) of head t / (d/2) (q/k/v).
    RopePair { d: u64 },
}

impl GemvRows {
    fn of(launch: &Launch) -> Option<GemvRows> {
        let a = &launch.args;
        let (pairing, k) = match launch.kernel {
            "linear" | "lm_head" => (Pairing::Single, a[6]),
            "gate_up_silu" => (Pairing::GateUp { f: a[5] }, a[6]),
            "qkv_rope" => (Pairing::RopePair { d: a[15] }, a[16]),
            _ => return None,
        };
        Some(GemvRows { weights: a[1], row_bytes: 2 * k, pairing })
    }

    fn rows(&self) -> u64 {
        if self.pairing == Pairing::Single {
            1
        } else {
            2
        }
    }

    fn task_bytes(&self) -> u64 {
        self.rows() * self.row_bytes
    }

    /// The descriptor's aux word: tasks a piece holds, and (bits 16..) the tasks of a RoPE head,
    /// which a piece never straddles (its two rows' runs would not be contiguous).
    fn cut(&self) -> u32 {
        let per_piece = (SLOT_BYTES / self.task_bytes()).min(PIECE_ROWS / self.rows()) as u32;
        let head = if let Pairing::RopePair { d } = self.pairing { (d / 2) as u32 } else { 0 };
        per_piece | head << 16
    }

    /// Address of row j (0 or 1) of task t.
    fn row(&self, t: u64, j: u64) -> u64 {
        let r = match self.pairing {
            Pairing::Single => t,
            Pairing::GateUp { f } => t + j * f,
            Pairing::RopePair { d } => t / (d / 2) * d + t % (d / 2) + j * (d / 2),
        };
        self.weights + r * self.row_bytes
    }
}

/// Tasks of the piece that starts at task t of an instruction ending at `end`
/// (kernels/persistent.cu's `piece_tasks`).
fn piece_tasks(t: u32, end: u32, cut: u32) -> u32 {
    let n = (end - t).min(cut & 0xffff);
    match cut >> 16 {
        0 => n,
        head => n.min(head - t % head),
    }
}

/// Each worker's pieces in program order, as the kernel's records (two row runs' addresses, the
/// second 0 for one-row tasks, and the bytes of each run), with the index of each worker's first.
fn pieces(program: &Program, rows: &[Option<GemvRows>]) -> (Vec<u32>, Vec<u32>) {
    let mut records = Vec::new();
    let mut starts = vec![0u32];
    for w in 0..program.workers() as usize {
        for ins in &program.instructions[program.starts[w] as usize..program.starts[w + 1] as usize] {
            let Some(r) = rows[ins.step as usize] else { continue };
            let mut t = ins.begin;
            while t < ins.end {
                let n = piece_tasks(t, ins.end, r.cut());
                let second = if r.rows() == 2 { r.row(u64::from(t), 1) } else { 0 };
                let first = r.row(u64::from(t), 0);
                let mut record = [0u32; PIECE_WORDS];
                record[..5].copy_from_slice(&[first as u32, (first >> 32) as u32, second as u32, (second >> 32) as u32, (u64::from(n) * r.row_bytes) as u32]);
                records.extend_from_slice(&record);
                t += n;
            }
        }
        starts.push((records.len() / PIECE_WORDS) as u32);
    }
    (records, starts)
}

/// The program's tables as the kernel reads them, in one buffer: instructions (4 u32: step,
/// begin, end, first wait | count << 24), worker starts (u32), waits (2 u32: step, count), step
/// descriptors (DESC_WORDS u64), the weight ring's pieces (PIECE_WORDS u32) and each worker's
/// first piece (u32), then the trace (a u64 flag, then three u64 timestamps per
/// instruction: started, waits met, signalled), each 256-byte aligned.
pub struct DeviceProgram {
    pub bytes: Vec<u8>,
    offsets: [u64; 7],
    shared: u32,
    stages: u32,
    workers: u32,
    steps: usize,
}

impl DeviceProgram {
    /// Checks the program against the plan and the launches the runtime built (same tasks per
    /// step: a program scheduled under other launch shapes is refused) and lays out its tables.
    pub fn new(plan: &Plan, program: &Program, launches: &[Launch]) -> Result<DeviceProgram> {
        program.check(plan.steps.len())?;
        let stale =
            |what: String| Error::Input(format!("this plan's persistent program does not match its launches ({what}); recompile it with `llmc compile`"));
        let mut descs = vec![0u64; DESC_WORDS * plan.steps.len()];
        let mut rows = vec![None; plan.steps.len()];
        let mut x_bytes = 0;
        for (i, (launch, &tasks)) in launches.iter().zip(&program.tasks).enumerate().filter(|(_, (_, &t))| t > 0) {
            let kind = kind(launch.kernel).ok_or_else(|| stale(format!("step {i} runs `{}`", launch.kernel)))?;
            if launch.tasks != tasks || launch.args.len() + 2 > DESC_WORDS {
                return Err(stale(format!("step {i} has {} tasks, the program {tasks}", launch.tasks)));
            }
            let desc = &mut descs[i * DESC_WORDS..(i + 1) * DESC_WORDS];
            desc[0] = kind;
            rows[i] = GemvRows::of(launch);
            // GEMVs: how their tasks are cut into pieces; attention: the splits per KV head.
            desc[1] = rows[i].map_or(u64::from(launch.grid.1), |r| u64::from(r.cut()));
            desc[2..2 + launch.args.len()].copy_from_slice(&launch.args);
            x_bytes = x_bytes.max(launch.shared);
        }
        let ring_at = ring_at(x_bytes);
        let stages = ((u64::from(MAX_SHARED).saturating_sub(ring_at) / SLOT_BYTES) as u32).min(MAX_STAGES);
        if stages < MIN_STAGES || rows.iter().flatten().any(|r| r.task_bytes() > SLOT_BYTES) {
            return Err(stale(format!("its GEMVs do not fit {MIN_STAGES} weight stages")));
        }
        let (piece_records, piece_starts) = pieces(program, &rows);
        let mut bytes = Vec::new();
        let mut table = |words: &[u8]| -> u64 {
            bytes.resize(bytes.len().div_ceil(256) * 256, 0);
            let at = bytes.len() as u64;
            bytes.extend_from_slice(words);
            at
        };
        let instructions: Vec<u32> = program.instructions.iter().flat_map(|i| [i.step, i.begin, i.end, i.wait_first | (i.wait_count << 24)]).collect();
        let waits: Vec<u32> = program.waits.iter().flat_map(|w| [w.step, w.count]).collect();
        let offsets = [
            table(bytemuck::cast_slice(&instructions)),
            table(bytemuck::cast_slice(&program.starts)),
            table(bytemuck::cast_slice(&waits)),
            table(bytemuck::cast_slice(&descs)),
            table(bytemuck::cast_slice(&piece_records)),
            table(bytemuck::cast_slice(&piece_starts)),
            table(&vec![0u8; Self::trace_bytes(program)]),
        ];
        let shared = (ring_at + u64::from(stages) * SLOT_BYTES) as u32;
        Ok(DeviceProgram { bytes, offsets, shared, stages, workers: program.workers(), steps: plan.steps.len() })
    }

    fn trace_bytes(program: &Program) -> usize {
        8 * (1 + 3 * program.instructions.len())
    }

    /// Where the trace lies in the tables, and its bytes.
    pub fn trace(&self, program: &Program) -> (u64, usize) {
        (self.offsets[6], Self::trace_bytes(program))
    }

    /// Dynamic shared memory of the launch, to check occupancy with.
    pub fn shared(&self) -> u32 {
        self.shared
    }

    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The kernel's launch, with the tables uploaded at `tables` and its counters (steps + 1
    /// u32, zero) at `sync`.
    pub fn launch(&self, tables: u64, sync: u64) -> Launch {
        let [instructions, starts, waits, descs, pieces, piece_starts, trace] = self.offsets.map(|o| tables + o);
        let ring_at = u64::from(self.shared) - u64::from(self.stages) * SLOT_BYTES;
        Launch {
            kernel: "decode_persistent",
            grid: (self.workers, 1, 1),
            block: THREADS,
            shared: self.shared,
            args: vec![instructions, starts, waits, descs, sync, self.steps as u64, trace, pieces, piece_starts, u64::from(self.stages), ring_at],
            label: "decode (persistent)".into(),
            tasks: self.workers,
        }
    }
}

/// One instruction's timing in a traced replay: nanoseconds from the first instruction's start.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceRow {
    pub worker: u32,
    pub step: u32,
    pub kind: String,
    pub label: String,
    pub tasks: u32,
    pub weight_bytes: u64,
    pub started_ns: i64,
    pub waited_ns: i64,
    pub signalled_ns: i64,
}

/// Rows of a trace read back from the device (`stamps`: three per instruction, in program order).
pub fn trace_rows(plan: &Plan, program: &Program, stamps: &[u64]) -> Vec<TraceRow> {
    let origin = stamps.iter().step_by(3).copied().min().unwrap_or(0) as i64;
    let mut rows = Vec::with_capacity(program.instructions.len());
    for w in 0..program.workers() as usize {
        for i in program.starts[w] as usize..program.starts[w + 1] as usize {
            let ins = &program.instructions[i];
            let step = &plan.steps[ins.step as usize];
            let at = |k: usize| stamps[3 * i + k] as i64 - origin;
            rows.push(TraceRow {
                worker: w as u32,
                step: ins.step,
                kind: step.op.kind().to_string(),
                label: step.label.clone(),
                tasks: ins.end - ins.begin,
                weight_bytes: u64::from(ins.end - ins.begin) * program.bytes_per_task[ins.step as usize],
                started_ns: at(0),
                waited_ns: at(1),
                signalled_ns: at(2),
            });
        }
    }
    rows
}
