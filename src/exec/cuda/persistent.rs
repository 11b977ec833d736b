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
/// Dynamic shared memory one worker may stage (x of the widest GEMV), as the other kernels.
pub const MAX_SHARED: u32 = super::launch::GEMV_MAX_SHARED as u32;

/// The step kinds the kernel runs (word 0 of a descriptor), by standalone kernel.
const KINDS: [(&str, usize); 6] = [
    ("embedding", define("PK_EMBEDDING")),
    ("linear", define("PK_LINEAR")),
    ("lm_head", define("PK_LM_HEAD")),
    ("gate_up_silu", define("PK_GATE_UP")),
    ("qkv_rope", define("PK_QKV")),
    ("attention", define("PK_ATTENTION")),
];
/// ... and those of block-format weights (a table of its own: one constant evaluating eleven
/// `define`s runs past the compiler's patience).
const QUANT_KINDS: [(&str, usize); 5] = [
    ("embedding_q", define("PK_EMBEDDING_Q")),
    ("linear_q", define("PK_LINEAR_Q")),
    ("lm_head_q", define("PK_LM_HEAD_Q")),
    ("gate_up_silu_q", define("PK_GATE_UP_Q")),
    ("qkv_rope_q", define("PK_QKV_Q")),
];

fn kind(kernel: &str) -> Option<u64> {
    KINDS.iter().chain(&QUANT_KINDS).find(|(name, _)| *name == kernel).map(|&(_, kind)| kind as u64)
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
    let launches = DeviceLayout::placeholder(plan, sms, true).launches(plan)?;
    let mut work = Vec::with_capacity(plan.steps.len());
    for (step, launch) in plan.steps.iter().zip(&launches) {
        if matches!(step.op, Op::Sample) {
            work.push(None); // runs after the persistent kernel, in its own kernel
            continue;
        }
        let refuse = |why: String| Error::Unsupported(format!("--decode persistent: {} ({}): {why}; compile with --decode graph", step.label, step.op.kind()));
        if kind(launch.kernel).is_none() {
            return Err(refuse(format!("the persistent kernel has no `{}` instruction", launch.kernel)));
        }
        if launch.shared > MAX_SHARED {
            return Err(refuse(format!("stages {} bytes of shared memory (a worker has {MAX_SHARED})", launch.shared)));
        }
        // GEMV tasks stream an equal share of the weight matrix (input 1); others stream none.
        let gemv = matches!(step.op, Op::Linear { .. } | Op::LinearResidual { .. } | Op::GateUpSilu { .. } | Op::QkvRope { .. } | Op::LmHead { .. });
        let bytes_per_task = if gemv { step.inputs[1].bytes() / u64::from(launch.tasks.max(1)) } else { 0 };
        work.push(Some(StepWork { tasks: launch.tasks, bytes_per_task }));
    }
    Program::schedule(plan, &work, sms, WORKERS_PER_SM)
}

/// The program's tables as the kernel reads them, in one buffer: instructions (4 u32: step,
/// begin, end, first wait | count << 24), worker starts (u32), waits (2 u32: step, count), step
/// descriptors (DESC_WORDS u64), then the trace (a u64 flag, then three u64 timestamps per
/// instruction: started, waits met, signalled), each 256-byte aligned.
pub struct DeviceProgram {
    pub bytes: Vec<u8>,
    offsets: [u64; 5],
    shared: u32,
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
        let mut shared = 0;
        for (i, (launch, &tasks)) in launches.iter().zip(&program.tasks).enumerate().filter(|(_, (_, &t))| t > 0) {
            let kind = kind(launch.kernel).ok_or_else(|| stale(format!("step {i} runs `{}`", launch.kernel)))?;
            if launch.tasks != tasks || launch.args.len() + 2 > DESC_WORDS {
                return Err(stale(format!("step {i} has {} tasks, the program {tasks}", launch.tasks)));
            }
            let desc = &mut descs[i * DESC_WORDS..(i + 1) * DESC_WORDS];
            desc[0] = kind;
            desc[1] = u64::from(launch.grid.1); // attention: the splits per block of query heads
            desc[2..2 + launch.args.len()].copy_from_slice(&launch.args);
            shared = shared.max(launch.shared);
        }
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
            table(&vec![0u8; Self::trace_bytes(program)]),
        ];
        Ok(DeviceProgram { bytes, offsets, shared, workers: program.workers(), steps: plan.steps.len() })
    }

    fn trace_bytes(program: &Program) -> usize {
        8 * (1 + 3 * program.instructions.len())
    }

    /// Where the trace lies in the tables, and its bytes.
    pub fn trace(&self, program: &Program) -> (u64, usize) {
        (self.offsets[4], Self::trace_bytes(program))
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
        let [instructions, starts, waits, descs, trace] = self.offsets.map(|o| tables + o);
        Launch {
            kernel: "decode_persistent",
            grid: (self.workers, 1, 1),
            block: THREADS,
            shared: self.shared,
            args: vec![instructions, starts, waits, descs, sync, self.steps as u64, trace],
            label: "decode (persistent)".into(),
            tasks: self.workers,
            cluster: 1,
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
