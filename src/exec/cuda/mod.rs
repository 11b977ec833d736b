//! The CUDA runtime. At start it checks the plan was compiled for this GPU, loads the plan's
//! CUBIN, uploads the weights once, makes one allocation for the arena (plus the reductions'
//! scratch), and captures the whole decode step -- every kernel and the `advance` kernel that
//! feeds the sampled token and the next position back -- as ONE CUDA graph. Sampling, greedy or
//! seeded, runs on the device inside the graph. Each token is then one graph launch and a 4-byte
//! read of the next token; token and position are written only when the caller's input differs
//! from what the graph fed itself (the prompt, or a token the caller chose).

pub mod block_trace;
pub mod launch;
pub mod persistent;
pub mod prefill;

use super::logprobs::TokenLogprobs;
use super::sampling::SamplingParams;
use super::Backend;
use crate::error::{Error, Result};
use crate::ir::Op;
use crate::kernels::{define, KernelImage};
use crate::plan::file::PlanFile;
use crate::plan::prefill::PrefillLayout;
use crate::plan::{Plan, Step, StepIo, Target};
use block_trace::{BlockRow, BlockTrace};
use cudarc::driver::{result as cu, sys, CudaContext, CudaGraph, CudaStream, DriverError};
use launch::{DeviceLayout, Launch, Scratch, ShortContext};

/// top_logprobs' block and its most tokens (kernels/logprobs.cu).
const LOGPROB_THREADS: u32 = crate::kernels::define("LOGPROB_THREADS") as u32;
pub const LOGPROB_MAX_TOP: usize = crate::kernels::define("LOGPROB_MAX_TOP");
use persistent::DeviceProgram;
use prefill::PrefillDevice;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::Arc;

fn cuda_err(what: &str) -> impl Fn(DriverError) -> Error + '_ {
    move |reason| Error::Cuda { what: what.to_string(), reason }
}

/// One device allocation, freed on drop.
struct DeviceBuffer {
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl DeviceBuffer {
    fn new(bytes: usize, what: &str) -> Result<DeviceBuffer> {
        // SAFETY: plain allocation in the current context.
        let ptr = unsafe { cu::malloc_sync(bytes.max(1)) }.map_err(|e| match (e.0, cu::mem_get_info()) {
            // Free memory can shrink after the check in `CudaBackend::new` (another process).
            (sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY, Ok((free, _))) => {
                Error::OutOfDeviceMemory { what: format!("the {what}"), needed: bytes as u64, free: free as u64 }
            }
            _ => Error::Cuda { what: format!("allocating {bytes} bytes for the {what}"), reason: e },
        })?;
        Ok(DeviceBuffer { ptr, bytes })
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by malloc_sync, freed once.
        let _ = unsafe { cu::free_sync(self.ptr) };
    }
}

struct Module(sys::CUmodule);

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: loaded once, unloaded once, after the graph that uses it is destroyed.
        let _ = unsafe { cu::module::unload(self.0) };
    }
}

/// The GPU's compute capability as a plan target number (9.0 -> 90), failing with a typed
/// error when there is no driver or no GPU.
pub fn device_sm() -> Result<u32> {
    let ctx = context()?;
    let (major, minor) = ctx.compute_capability().map_err(cuda_err("reading the compute capability"))?;
    Ok((major * 10 + minor) as u32)
}

/// The GPU's SM count.
pub fn device_sms() -> Result<u32> {
    sm_count(&*context()?)
}

fn sm_count(ctx: &CudaContext) -> Result<u32> {
    ctx.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).map(|n| n as u32).map_err(cuda_err("reading the SM count"))
}

fn context() -> Result<Arc<CudaContext>> {
    // SAFETY: only tries to dlopen libcuda.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::Unavailable("libcuda is not loadable: no NVIDIA driver on this machine".into()));
    }
    CudaContext::new(0).map_err(cuda_err("opening GPU 0"))
}

/// Every launch of `plan` on a GPU of `sms` SMs, at placeholder addresses: the decode step's,
/// then those of a prefill pass over a whole chunk that ends a prompt. A shape a kernel cannot
/// run (GQA group, head_dim, K alignment, shared memory, context) is refused here with its
/// reason, so `llmc compile` refuses it rather than the load or the first prompt.
pub fn launch_shapes(plan: &Plan, sms: u32) -> Result<(Vec<Launch>, Vec<Launch>)> {
    let layout = DeviceLayout::placeholder(plan, sms, plan.program.is_some());
    let decode = layout.launches(plan)?;
    let chunk = plan.prefill_layout(prefill::PREFILL_CHUNK.min(plan.max_seq_len))?;
    let device = PrefillDevice { arena: 0, qkv: 0, normed: 0, partial: 0, counters: 0, weight_maps: 0, dequantized: 0 };
    let prefill = layout.prefill_launches(&plan.steps, &plan.io, &chunk, &device, chunk.chunk, 0, true)?;
    Ok((decode, prefill))
}

/// The short-context graph's launches of `plan` on a GPU of `sms` SMs, at placeholder
/// addresses, and the positions it serves, if the plan has one.
pub fn short_context_shapes(plan: &Plan, sms: u32) -> Result<Option<ShortContext>> {
    DeviceLayout::placeholder(plan, sms, plan.program.is_some()).short_context_launches(plan)
}

/// The kernels of a plan the GPU of compute capability `device_sm` can run (`None`: the checks
/// that need no GPU). Refuses a CPU plan or one for another architecture with the command that
/// recompiles it, a GPU older than llmc supports, and a GPU plan without kernels for its target.
fn gpu_plan_kernels(plan: &Plan, device_sm: Option<u32>) -> Result<&KernelImage> {
    let Target::Cuda { sm: plan_sm } = plan.target else {
        let target = device_sm.map_or("sm_XX".to_string(), |sm| format!("sm_{sm}"));
        return Err(Error::WrongTarget { plan: "the CPU".into(), runs_on: "the GPU".into(), target });
    };
    let image = plan.kernels.as_ref().filter(|image| image.sm == plan_sm);
    let image = image.ok_or_else(|| Error::BadPlan { path: "plan".into(), msg: format!("it targets sm_{plan_sm} but carries no kernels for it") })?;
    match device_sm {
        Some(sm) if sm < 80 => Err(Error::Unavailable(format!("this GPU is sm_{sm}; llmc needs sm_80 or newer"))),
        Some(sm) if sm != plan_sm => Err(Error::WrongTarget { plan: format!("sm_{plan_sm}"), runs_on: format!("an sm_{sm} GPU"), target: format!("sm_{sm}") }),
        _ => Ok(image),
    }
}

/// A captured decode step and the launches it was captured from (kept to capture it again with
/// another sampler, and to read block timestamps by launch).
struct DecodeGraph {
    graph: CudaGraph,
    launches: Vec<Launch>,
}

pub struct CudaBackend {
    // Field order is drop order: the graphs, then the module and memory they refer to.
    /// The decode step at any position.
    graph: DecodeGraph,
    /// The decode step for positions below `.1`, if the plan has one (launch.rs,
    /// short_context_launches: attention and o_proj as one kernel).
    short: Option<(DecodeGraph, usize)>,
    stream: Arc<CudaStream>,
    prefill: Prefill,
    _module: Module,
    _program: Option<DeviceBuffer>,
    /// The persistent kernel's trace buffer (device address, bytes), if the plan has a program.
    trace: Option<(u64, usize)>,
    /// A graph plan's block timestamps, if its kernels were compiled with them.
    block_trace: Option<BlockTrace>,
    _arena: DeviceBuffer,
    _weights: DeviceBuffer,
    /// top_logprobs' output: the token's log-probability, then (id, log-probability) pairs.
    logprobs_out: DeviceBuffer,
    _ctx: Arc<CudaContext>,
    token: u64,
    position: u64,
    next_token: u64,
    logits: u64,
    vocab: usize,
    max_seq_len: usize,
    /// The (token, position) the device holds for the next replay, if known.
    device_input: Option<(u32, usize)>,
    pdl: bool,
    weight_bytes: u64,
}

/// Batched prefill: launched directly, pass by pass (no graph: shapes change with the prompt).
struct Prefill {
    steps: Vec<Step>,
    io: StepIo,
    layout: PrefillLayout,
    device: PrefillDevice,
    dev_layout: DeviceLayout,
    functions: HashMap<&'static str, sys::CUfunction>,
    _buffer: DeviceBuffer,
}

impl CudaBackend {
    pub fn new(file: &PlanFile, sampling: SamplingParams) -> Result<CudaBackend> {
        sampling.validate()?;
        let plan = &file.plan;
        gpu_plan_kernels(plan, None)?;
        let ctx = context()?;
        let (major, minor) = ctx.compute_capability().map_err(cuda_err("reading the compute capability"))?;
        let sm = (major * 10 + minor) as u32;
        let image = gpu_plan_kernels(plan, Some(sm))?;
        let device_sms = sm_count(&ctx)?;
        // A persistent program fixed its launch shapes (attention splits) for the SMs it was
        // scheduled for; the graph path sizes them for this GPU.
        let sms = plan.program.as_ref().map_or(device_sms, |p| p.sms);
        // A plan compiled before a refusal existed is refused before anything is uploaded.
        launch_shapes(plan, sms)?;
        let persistent = plan.program.is_some();
        let scratch = Scratch::for_plan(plan, plan.arena_bytes, sms, persistent);
        let prefill_layout = plan.prefill_layout(prefill::PREFILL_CHUNK.min(plan.max_seq_len))?;
        let qkv_at = prefill_layout.bytes.div_ceil(256) * 256;
        let normed_at = qkv_at + prefill::prefill_qkv_bytes(&plan.steps, prefill_layout.chunk).div_ceil(256) * 256;
        let partial_at = normed_at + prefill::prefill_normed_bytes(&plan.steps, prefill_layout.chunk).div_ceil(256) * 256;
        let counters_at = partial_at + prefill::split_partial_bytes(sms).div_ceil(256) * 256;
        let maps_at = counters_at + prefill::split_counter_bytes(sms).div_ceil(256) * 256;
        let dequantized_at = (maps_at + (prefill::MAP_BYTES * plan.steps.len()) as u64).div_ceil(256) * 256;
        let prefill_bytes = dequantized_at + prefill::dequantized_bytes(&plan.steps);
        // Checked up front, so a plan too big for this GPU fails with the sizes before anything
        // is uploaded, rather than with a bare CUDA_ERROR_OUT_OF_MEMORY part way through.
        let needed = plan.weight_bytes + plan.arena_bytes + scratch.bytes + prefill_bytes;
        let (free, _) = cu::mem_get_info().map_err(cuda_err("reading free GPU memory"))?;
        if needed > free as u64 {
            return Err(Error::OutOfDeviceMemory { what: "this plan".into(), needed, free: free as u64 });
        }
        // Graph capture forbids the cross-stream events cudarc records by default.
        // SAFETY: this backend synchronizes its one stream itself.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(cuda_err("creating a stream"))?;

        let module = load_module(&image.cubin, &image.ptx)?;
        let weights = DeviceBuffer::new(plan.weight_bytes as usize, "weights")?;
        // SAFETY: the buffer holds weight_bytes; the source is the mapped, checksummed blob.
        unsafe { cu::memcpy_htod_sync(weights.ptr, file.weights()) }.map_err(cuda_err("uploading the weights"))?;
        let arena = DeviceBuffer::new((plan.arena_bytes + scratch.bytes) as usize, "arena")?;
        // Zeroed so the KV cache and the reduction counters start clean.
        unsafe { cu::memset_d8_sync(arena.ptr, 0, arena.bytes) }.map_err(cuda_err("clearing the arena"))?;
        // The copies above ran on the legacy stream, which our non-blocking stream does not wait
        // for (and a pageable upload may still be in flight when the call returns).
        ctx.synchronize().map_err(cuda_err("uploading the weights"))?;

        let layout = DeviceLayout { weights: weights.ptr, arena: arena.ptr, scratch, sms, sm, sampling, persistent };
        let functions = functions(&module, launch::KERNEL_NAMES.iter().copied(), sm)?;
        let mut launches = layout.launches(plan)?;
        let short = layout.short_context_launches(plan)?;
        let mut program_tables = None;
        let mut trace = None;
        if let Some(program) = &plan.program {
            let tables = DeviceProgram::new(plan, program, &launches)?;
            let f = functions["decode_persistent"];
            // SAFETY: f is a live function of the loaded module.
            let per_sm = unsafe { cu::occupancy::max_active_block_per_multiprocessor(f, persistent::THREADS as i32, tables.shared() as usize) }
                .map_err(cuda_err("reading the persistent kernel's occupancy"))? as u32;
            if per_sm * device_sms < tables.workers() {
                return Err(Error::Input(format!(
                    "this plan's persistent decode program has {} workers, but this GPU holds {} at once ({device_sms} SMs x {per_sm}); recompile it on this GPU with `llmc compile`",
                    tables.workers(),
                    per_sm * device_sms
                )));
            }
            let buffer = DeviceBuffer::new(tables.bytes.len(), "persistent program")?;
            // SAFETY: the buffer holds the tables' bytes.
            unsafe { cu::memcpy_htod_sync(buffer.ptr, &tables.bytes[..]) }.map_err(cuda_err("uploading the persistent program"))?;
            ctx.synchronize().map_err(cuda_err("uploading the persistent program"))?;
            // One kernel for every step in the program; the rest (sampling) and `advance` after it.
            let rest = launches.drain(..).enumerate().filter(|(i, _)| program.tasks.get(*i).is_none_or(|&t| t == 0)).map(|(_, l)| l);
            launches = std::iter::once(tables.launch(buffer.ptr, arena.ptr + scratch.sync)).chain(rest).collect();
            let (trace_at, trace_bytes) = tables.trace(program);
            trace = Some((buffer.ptr + trace_at, trace_bytes));
            program_tables = Some(buffer);
        }
        // Programmatic dependent launch needs sm_90 (the kernels' griddepcontrol is compiled there).
        let pdl = sm >= 90;
        let graph = DecodeGraph::capture(&stream, &functions, launches, pdl)?;
        let short = match short {
            Some(ShortContext { launches, positions }) => Some((DecodeGraph::capture(&stream, &functions, launches, pdl)?, positions)),
            None => None,
        };
        let block_trace = if persistent { None } else { BlockTrace::find(module.0, &image.ptx) };
        let prefill_buffer = DeviceBuffer::new(prefill_bytes as usize, "prefill arena")?;
        // The split-K counters start at zero (each tile's last split re-arms its own).
        // SAFETY: the counters lie inside the buffer (prefill_bytes counts them).
        unsafe { cu::memset_d8_sync(prefill_buffer.ptr + counters_at, 0, prefill::split_counter_bytes(sms) as usize) }
            .map_err(cuda_err("clearing the prefill counters"))?;
        let maps = prefill::weight_maps(&plan.steps, &layout, prefill_buffer.ptr + dequantized_at)?;
        // SAFETY: the table lies inside the buffer (prefill_bytes counts it).
        unsafe { cu::memcpy_htod_sync(prefill_buffer.ptr + maps_at, &maps[..]) }.map_err(cuda_err("uploading the weights' tensor maps"))?;
        ctx.synchronize().map_err(cuda_err("clearing the prefill counters"))?;
        let prefill = Prefill {
            steps: plan.steps.clone(),
            io: plan.io.clone(),
            device: PrefillDevice {
                arena: prefill_buffer.ptr,
                qkv: prefill_buffer.ptr + qkv_at,
                normed: prefill_buffer.ptr + normed_at,
                partial: prefill_buffer.ptr + partial_at,
                counters: prefill_buffer.ptr + counters_at,
                weight_maps: prefill_buffer.ptr + maps_at,
                dequantized: prefill_buffer.ptr + dequantized_at,
            },
            layout: prefill_layout,
            dev_layout: layout,
            functions,
            _buffer: prefill_buffer,
        };
        let io = &plan.io;
        Ok(CudaBackend {
            graph,
            short,
            stream,
            prefill,
            _module: module,
            _program: program_tables,
            trace,
            block_trace,
            token: arena.ptr + io.token.offset,
            position: arena.ptr + io.position.offset,
            next_token: arena.ptr + io.next_token.offset,
            logits: arena.ptr + io.logits.offset,
            _arena: arena,
            _weights: weights,
            logprobs_out: DeviceBuffer::new(4 * (1 + 2 * LOGPROB_MAX_TOP), "log-probabilities")?,
            _ctx: ctx,
            vocab: io.logits.ty.elements(),
            max_seq_len: plan.max_seq_len,
            device_input: None,
            pdl,
            weight_bytes: plan.weight_bytes,
        })
    }

    /// Runs one decode step of a persistent plan with its in-kernel timestamps on and returns
    /// them: three per instruction (started, waits met, signalled), in program order.
    pub fn traced_step(&mut self, token: u32, pos: usize) -> Result<Vec<u64>> {
        let (at, bytes) = self.trace.ok_or_else(|| {
            Error::Input("this plan decodes one kernel per step: only a persistent plan has a trace (compile with --decode persistent)".into())
        })?;
        let words = bytes / 8;
        let mut flag_and_zeros = vec![0u64; words];
        flag_and_zeros[0] = 1;
        // SAFETY: the trace region holds `bytes`; pageable sources are staged before the call returns.
        unsafe { cu::memcpy_htod_async(at, &flag_and_zeros[..], self.stream.cu_stream()) }.map_err(cuda_err("arming the trace"))?;
        self.step(token, pos)?;
        let mut out = vec![0u64; words];
        self.read(at, &mut out, "reading the trace")?;
        unsafe { cu::memcpy_htod_async(at, &[0u64], self.stream.cu_stream()) }.map_err(cuda_err("disarming the trace"))?;
        self.sync()?;
        Ok(out.split_off(1))
    }

    /// Whether a decode step can be traced: a persistent plan, or a graph plan whose kernels
    /// were compiled with block timestamps.
    pub fn check_traceable(&self) -> Result<()> {
        match self.trace.is_some() || self.block_trace.is_some() {
            true => Ok(()),
            false => Err(Error::Input(
                "this plan's kernels carry no timestamps: compile it with --decode persistent, or with LLMC_EXPERIMENT_DEFINES=\"TRACE_BLOCKS=1\" for block timestamps".into(),
            )),
        }
    }

    /// Runs one decode step of a graph plan whose kernels carry block timestamps and returns
    /// every block's (block_trace.rs).
    pub fn traced_graph_step(&mut self, token: u32, pos: usize) -> Result<Vec<BlockRow>> {
        self.check_traceable()?;
        let trace = self.block_trace.expect("checked");
        trace.arm(self.stream.cu_stream())?;
        self.step(token, pos)?;
        trace.rows(&self.decode_graph(pos).launches)
    }

    /// Kernels in the graph that serves every position: the plan's steps plus `advance`.
    pub fn kernels_per_token(&self) -> usize {
        self.graph.launches.len()
    }

    /// The short-context graph's kernels per token and the positions it serves, if the plan has one.
    pub fn short_context(&self) -> Option<(usize, usize)> {
        self.short.as_ref().map(|(g, positions)| (g.launches.len(), *positions))
    }

    /// The graph that decodes at `pos`.
    fn decode_graph(&self, pos: usize) -> &DecodeGraph {
        match &self.short {
            Some((short, positions)) if pos < *positions => short,
            _ => &self.graph,
        }
    }

    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Device-to-device copy bandwidth in bytes/s (read + written), the roofline the bench
    /// reports against: 512 MiB copies, timed as [`Self::device_seconds`] does.
    pub fn copy_bandwidth(&self) -> Result<f64> {
        const BYTES: usize = 512 << 20;
        let src = DeviceBuffer::new(BYTES, "bandwidth probe")?;
        let dst = DeviceBuffer::new(BYTES, "bandwidth probe")?;
        // SAFETY: both buffers hold BYTES bytes.
        let copy = || unsafe { cu::memcpy_dtod_async(dst.ptr, src.ptr, BYTES, self.stream.cu_stream()) }.map_err(cuda_err("copying"));
        Ok(2.0 * BYTES as f64 / self.device_seconds(copy)?)
    }

    /// Read-only bandwidth in bytes/s: kernels/bandwidth.cu over 1 GiB, timed as
    /// [`Self::device_seconds`] does. A decode step that only read its weights at this rate
    /// would take weight_bytes / it.
    pub fn read_bandwidth(&self) -> Result<f64> {
        const BYTES: usize = 1 << 30;
        let buffer = DeviceBuffer::new(BYTES + 256, "bandwidth probe")?;
        // SAFETY: the buffer holds BYTES + 256 bytes; the probe's sink is the last 4.
        unsafe { cu::memset_d8_async(buffer.ptr, 0, BYTES + 256, self.stream.cu_stream()) }.map_err(cuda_err("clearing the bandwidth probe"))?;
        const WORDS_PER_BLOCK: usize = define("BW_WORDS_PER_BLOCK");
        const THREADS: u32 = define("BW_THREADS") as u32;
        const { assert!((BYTES / 16).is_multiple_of(WORDS_PER_BLOCK)) };
        let blocks = (BYTES / 16 / WORDS_PER_BLOCK) as u32;
        let probe = Launch {
            kernel: "read_probe",
            grid: (blocks, 1, 1),
            block: THREADS,
            shared: 0,
            args: vec![buffer.ptr, buffer.ptr + BYTES as u64],
            label: "the read bandwidth probe".into(),
            tasks: blocks,
            cluster: 1,
        };
        Ok(BYTES as f64 / self.device_seconds(|| enqueue(&self.stream, &self.prefill.functions, std::slice::from_ref(&probe), false))?)
    }

    /// Seconds one `work` takes on the stream: the best of 5 rounds of 8, each timed by CUDA
    /// events around its 8 (so neither host latency nor a GPU still raising its clocks counts),
    /// after a warm-up.
    fn device_seconds(&self, work: impl Fn() -> Result<()>) -> Result<f64> {
        const ROUNDS: usize = 5;
        const REPS: usize = 8;
        let timing = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        work()?;
        let mut best = f64::INFINITY;
        for _ in 0..ROUNDS {
            let start = self.stream.record_event(timing).map_err(cuda_err("recording a timing event"))?;
            for _ in 0..REPS {
                work()?;
            }
            let end = self.stream.record_event(timing).map_err(cuda_err("recording a timing event"))?;
            let ms = start.elapsed_ms(&end).map_err(cuda_err("reading a timing event"))?;
            best = best.min(f64::from(ms) * 1e-3 / REPS as f64);
        }
        Ok(best)
    }

    fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda_err("running the decode step"))
    }

    /// Writes one i32 step input, ordered on the stream before the next replay. (The
    /// synchronous copy functions use the legacy stream, which this non-blocking stream does
    /// not wait for.)
    fn write_i32(&self, ptr: u64, value: i32) -> Result<()> {
        // SAFETY: `ptr` is an i32 slot of the arena; a pageable source is staged before the call returns.
        unsafe { cu::memcpy_htod_async(ptr, &[value], self.stream.cu_stream()) }.map_err(cuda_err("writing a step input"))
    }

    /// Reads `out.len()` values at `ptr` once everything queued on the stream is done.
    fn read<T>(&self, ptr: u64, out: &mut [T], what: &str) -> Result<()> {
        // SAFETY: `ptr` holds at least `out.len()` values of T (an io slot of the arena).
        unsafe { cu::memcpy_dtoh_async(out, ptr, self.stream.cu_stream()) }.map_err(cuda_err(what))?;
        self.stream.synchronize().map_err(cuda_err(what))
    }
}

fn load_module(cubin: &[u8], ptx: &str) -> Result<Module> {
    // SAFETY: the image is a CUBIN from NVRTC, held alive across the call.
    match unsafe { cu::module::load_data(cubin.as_ptr() as *const c_void) } {
        Ok(m) => Ok(Module(m)),
        Err(cubin_err) => {
            // The driver may JIT the PTX where it refuses the CUBIN.
            let ptx = CString::new(ptx).map_err(|_| Error::BadPlan { path: "plan".into(), msg: "its PTX holds a NUL byte".into() })?;
            unsafe { cu::module::load_data(ptx.as_ptr() as *const c_void) }.map(Module).map_err(|reason| Error::Cuda {
                what: format!("loading the plan's kernels (the driver refused the CUBIN with {:?}, then the PTX)", cubin_err.0),
                reason,
            })
        }
    }
}

/// The module's kernels by name.
fn functions(module: &Module, names: impl Iterator<Item = &'static str>, sm: u32) -> Result<HashMap<&'static str, sys::CUfunction>> {
    let mut functions = HashMap::new();
    for kernel in names {
        let name = CString::new(kernel).expect("kernel names hold no NUL");
        // SAFETY: the module is loaded.
        let f = unsafe { cu::module::get_function(module.0, name) }
            .map_err(|reason| Error::Cuda { what: format!("finding kernel `{kernel}` in the plan"), reason })?;
        if let Some(bytes) = launch::large_shared(kernel, sm) {
            // Past the default 48 KiB of dynamic shared memory a kernel must opt in.
            let attr = sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
            // SAFETY: f is a live function of the loaded module.
            unsafe { cu::function::set_function_attribute(f, attr, bytes as i32) }
                .map_err(|reason| Error::Cuda { what: format!("allowing `{kernel}` {bytes} bytes of shared memory"), reason })?;
        }
        functions.insert(kernel, f);
    }
    Ok(functions)
}

/// Enqueues `launches` on `stream`. With `pdl`, every kernel after the first is launched with
/// programmatic stream serialization, so it starts while its predecessor drains (see
/// `grid_dep_wait` in kernels/common.cuh) and GEMVs fetch their first weights across the
/// boundary; a captured graph keeps those edges as programmatic dependencies.
fn enqueue(stream: &CudaStream, functions: &HashMap<&'static str, sys::CUfunction>, launches: &[Launch], pdl: bool) -> Result<()> {
    for (i, l) in launches.iter().enumerate() {
        let mut words = l.args.clone();
        let mut params: Vec<*mut c_void> = words.iter_mut().map(|w| w as *mut u64 as *mut c_void).collect();
        // SAFETY: zeroed attributes are plain data; the value union is written before use.
        let mut attrs: [sys::CUlaunchAttribute; 3] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        if pdl && i > 0 {
            attrs[n].id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
            attrs[n].value.programmaticStreamSerializationAllowed = 1;
            n += 1;
        }
        if l.kernel == "decode_persistent" {
            // Its workers wait on each other: the driver must make all of them resident or fail.
            attrs[n].id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
            attrs[n].value.cooperative = 1;
            n += 1;
        }
        if l.cluster > 1 {
            attrs[n].id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
            attrs[n].value.clusterDim.x = 1;
            attrs[n].value.clusterDim.y = l.cluster;
            attrs[n].value.clusterDim.z = 1;
            n += 1;
        }
        let config = sys::CUlaunchConfig {
            gridDimX: l.grid.0,
            gridDimY: l.grid.1,
            gridDimZ: l.grid.2,
            blockDimX: l.block,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: l.shared,
            hStream: stream.cu_stream(),
            attrs: attrs.as_mut_ptr(),
            numAttrs: n as u32,
        };
        // SAFETY: the arguments match the kernel's parameters (launch.rs builds both); the
        // driver copies them (and the config) at the launch.
        unsafe { sys::cuLaunchKernelEx(&config, functions[l.kernel], params.as_mut_ptr(), std::ptr::null_mut()) }
            .result()
            .map_err(|reason| Error::Cuda { what: format!("launching {} for {}", l.kernel, l.label), reason })?;
    }
    Ok(())
}

impl DecodeGraph {
    /// Records every launch on `stream` into one graph, instantiates and uploads it.
    fn capture(stream: &Arc<CudaStream>, functions: &HashMap<&'static str, sys::CUfunction>, launches: Vec<Launch>, pdl: bool) -> Result<DecodeGraph> {
        stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).map_err(cuda_err("starting graph capture"))?;
        let enqueued = enqueue(stream, functions, &launches, pdl);
        let graph = stream.end_capture(sys::CUgraphInstantiate_flags(0));
        enqueued?;
        let graph = graph.map_err(cuda_err("instantiating the decode graph"))?.ok_or_else(|| Error::Internal("graph capture recorded nothing".into()))?;
        graph.upload().map_err(cuda_err("uploading the graph"))?;
        Ok(DecodeGraph { graph, launches })
    }

    /// This graph captured again with `launch` in place of the one of the same label.
    fn with_launch(&self, launch: Launch, stream: &Arc<CudaStream>, functions: &HashMap<&'static str, sys::CUfunction>, pdl: bool) -> Result<DecodeGraph> {
        let mut launches = self.launches.clone();
        let at =
            launches.iter().position(|l| l.label == launch.label).ok_or_else(|| Error::Input(format!("the decode graph has no launch `{}`", launch.label)))?;
        launches[at] = launch;
        DecodeGraph::capture(stream, functions, launches, pdl)
    }
}

impl Backend for CudaBackend {
    fn step(&mut self, token: u32, pos: usize) -> Result<u32> {
        if token as usize >= self.vocab {
            return Err(Error::Input(format!("token id {token} is outside the vocabulary of {}", self.vocab)));
        }
        if pos >= self.max_seq_len {
            return Err(Error::Input(format!("position {pos} is outside the compiled context of {}", self.max_seq_len)));
        }
        match self.device_input {
            Some((t, p)) if t == token && p == pos => {}
            Some((_, p)) if p == pos => self.write_i32(self.token, token as i32)?,
            _ => {
                self.write_i32(self.token, token as i32)?;
                self.write_i32(self.position, pos as i32)?;
            }
        }
        self.device_input = None;
        self.decode_graph(pos).graph.launch().map_err(cuda_err("launching the decode graph"))?;
        let mut next = [0i32];
        self.read(self.next_token, &mut next, "running the decode step")?;
        let device_next = u32::try_from(next[0]).map_err(|_| Error::Numeric(format!("non-finite logits at position {pos}")))?;
        self.device_input = Some((device_next, pos + 1));
        Ok(device_next)
    }

    fn prefill(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        if tokens.is_empty() {
            return Err(Error::Input("prefill needs at least one token".into()));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.vocab) {
            return Err(Error::Input(format!("token id {t} is outside the vocabulary of {}", self.vocab)));
        }
        let end = start + tokens.len();
        if end > self.max_seq_len {
            return Err(Error::Input(format!("positions {start}..{end} are outside the compiled context of {}", self.max_seq_len)));
        }
        let p = &self.prefill;
        let chunk = p.layout.chunk;
        let token_rows = p.device.arena + p.layout.offset(&p.io.token).ok_or_else(|| Error::Input("the plan's token is not widened".into()))?;
        for (i, part) in tokens.chunks(chunk).enumerate() {
            let at = start + i * chunk;
            let last = at + part.len() == end;
            let ids: Vec<i32> = part.iter().map(|&t| t as i32).collect();
            // SAFETY: the token rows hold `chunk` i32s; the pageable source is staged before the call returns.
            unsafe { cu::memcpy_htod_async(token_rows, &ids[..], self.stream.cu_stream()) }.map_err(cuda_err("writing the prompt"))?;
            if last {
                // `advance` moves it to `end` with the sampled token, ready for the decode graph.
                self.write_i32(self.position, (end - 1) as i32)?;
            }
            let launches = p.dev_layout.prefill_launches(&p.steps, &p.io, &p.layout, &p.device, part.len(), at, last)?;
            enqueue(&self.stream, &p.functions, &launches, false)?;
        }
        let mut next = [0i32];
        self.read(self.next_token, &mut next, "running the prefill")?;
        let device_next = u32::try_from(next[0]).map_err(|_| Error::Numeric(format!("non-finite logits at position {}", end - 1)))?;
        self.device_input = Some((device_next, end));
        Ok(device_next)
    }

    fn logits(&self) -> Result<Vec<f32>> {
        let mut out = vec![0f32; self.vocab];
        self.read(self.logits, &mut out, "reading the logits")?;
        Ok(out)
    }

    /// The sampler's parameters are kernel arguments (and greedy is another kernel), so a change
    /// swaps the sampler's launch and captures the decode graphs again; prefill builds its
    /// launches per call and takes the new layout as it is. Greedy launches take no parameters:
    /// one greedy setting replaces another without a capture.
    fn set_sampling(&mut self, sampling: SamplingParams) -> Result<()> {
        sampling.validate()?;
        let current = self.prefill.dev_layout.sampling;
        if sampling == current || (sampling.is_greedy() && current.is_greedy()) {
            return Ok(());
        }
        let step = self.prefill.steps.iter().find(|s| matches!(s.op, Op::Sample)).ok_or_else(|| Error::Input("the plan has no sampling step".into()))?;
        let mut layout = self.prefill.dev_layout;
        layout.sampling = sampling;
        let sampler = layout.sample(&step.inputs[0], &step.outputs[0], &self.prefill.io.position, &step.label);
        let (stream, functions, pdl) = (&self.stream, &self.prefill.functions, self.pdl);
        let graph = self.graph.with_launch(sampler.clone(), stream, functions, pdl)?;
        let short = match &self.short {
            Some((short, positions)) => Some((short.with_launch(sampler, stream, functions, pdl)?, *positions)),
            None => None,
        };
        (self.graph, self.short) = (graph, short);
        self.prefill.dev_layout = layout;
        Ok(())
    }

    /// One block over the logits on the device (kernels/logprobs.cu); 1 + 2k values come back.
    fn top_logprobs(&self, token: u32, k: usize) -> Result<TokenLogprobs> {
        if k > LOGPROB_MAX_TOP || token as usize >= self.vocab {
            return Err(Error::Input(format!("top_logprobs takes at most {LOGPROB_MAX_TOP} tokens and a token below {}", self.vocab)));
        }
        let k = k.min(self.vocab);
        let launch = Launch {
            kernel: "top_logprobs",
            grid: (1, 1, 1),
            block: LOGPROB_THREADS,
            shared: 0,
            args: vec![self.logits, launch::int(self.vocab), launch::int(token as usize), launch::int(k), self.logprobs_out.ptr],
            label: "logprobs".into(),
            tasks: 1,
            cluster: 1,
        };
        enqueue(&self.stream, &self.prefill.functions, &[launch], false)?;
        let mut out = vec![0f32; 1 + 2 * k];
        self.read(self.logprobs_out.ptr, &mut out, "reading the log-probabilities")?;
        let top = out[1..].chunks(2).map(|pair| (pair[0].to_bits(), pair[1])).collect();
        Ok(TokenLogprobs { token, logprob: out[0], top })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::TokenizerSpec;

    fn no_tokenizer() -> TokenizerSpec {
        TokenizerSpec { json: String::new(), chat_template: None, eos_ids: vec![], bos_token: None, eos_token: None }
    }

    fn plan(target: Target, kernels_sm: Option<u32>) -> Plan {
        let mut plan = crate::plan::build(&crate::passes::testing::tiny_config(), no_tokenizer(), 16, target).unwrap();
        plan.kernels = kernels_sm.map(|sm| KernelImage { sm, cubin: vec![], ptx: String::new(), source_hash: 0 });
        plan
    }

    fn refusal(plan: &Plan, device_sm: Option<u32>) -> Error {
        gpu_plan_kernels(plan, device_sm).expect_err("refused")
    }

    #[test]
    fn a_plan_for_another_target_is_refused_with_the_command_that_recompiles_it() {
        let cpu = refusal(&plan(Target::Cpu, None), None);
        assert!(matches!(cpu, Error::WrongTarget { .. }), "{cpu:?}");
        assert_eq!(cpu.to_string(), "this plan was compiled for the CPU but is run on the GPU; recompile it with `llmc compile --target sm_XX`");
        let other_sm = refusal(&plan(Target::Cuda { sm: 80 }, Some(80)), Some(90));
        assert_eq!(other_sm.to_string(), "this plan was compiled for sm_80 but is run on an sm_90 GPU; recompile it with `llmc compile --target sm_90`");
    }

    #[test]
    fn a_gpu_plan_without_its_kernels_is_a_bad_plan_and_an_old_gpu_is_unavailable() {
        assert!(matches!(refusal(&plan(Target::Cuda { sm: 90 }, None), None), Error::BadPlan { .. }));
        assert!(matches!(refusal(&plan(Target::Cuda { sm: 90 }, Some(80)), None), Error::BadPlan { .. }));
        assert_eq!(refusal(&plan(Target::Cuda { sm: 80 }, Some(80)), Some(75)).to_string(), "this GPU is sm_75; llmc needs sm_80 or newer");
        assert!(gpu_plan_kernels(&plan(Target::Cuda { sm: 90 }, Some(90)), Some(90)).is_ok());
    }

    /// Parameters of each kernel in the PTX: `.param` lines between `.entry name(` and `)`.
    fn ptx_params(ptx: &str) -> HashMap<String, usize> {
        let mut params = HashMap::new();
        for entry in ptx.split(".entry ").skip(1) {
            let (name, rest) = entry.split_once('(').expect("an entry has a parameter list");
            let list = rest.split_once(')').map_or(rest, |(list, _)| list);
            params.insert(name.trim().to_string(), list.lines().filter(|l| l.contains(".param")).count());
        }
        params
    }

    /// One line per distinct launch, in order of first appearance, with how many times it recurs.
    fn table(launches: &[Launch]) -> String {
        let mut rows: Vec<(String, usize)> = Vec::new();
        for l in launches {
            let row = format!("{} grid ({},{},{}) block {} shared {} args {}", l.kernel, l.grid.0, l.grid.1, l.grid.2, l.block, l.shared, l.args.len());
            match rows.iter_mut().find(|(r, _)| *r == row) {
                Some((_, count)) => *count += 1,
                None => rows.push((row, 1)),
            }
        }
        rows.iter().map(|(row, count)| format!("{count:>3} x {row}\n")).collect()
    }

    /// Every launch of the published configs' plans (plans/configs; 4096 positions, sm_90 on 132
    /// SMs) pinned as text: the decode step's, the short-context one's, the persistent kernel's, and a prefill pass's over
    /// a whole chunk. Each launch passes exactly as many arguments as its kernel has parameters in
    /// the compiled PTX (NVRTC, as scripts/test.sh installs it).
    #[test]
    fn launch_tables_of_the_published_configs() {
        let image = crate::kernels::compile(90, false).unwrap_or_else(|e| panic!("{e}"));
        let params = ptx_params(&image.ptx);
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/configs");
        let mut paths: Vec<_> = std::fs::read_dir(&configs).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let config = crate::load::config::ModelConfig::from_file(&path).unwrap();
            let mut plan = crate::plan::build(&config, no_tokenizer(), 4096, Target::Cuda { sm: 90 }).unwrap();
            let (decode, prefill) = launch_shapes(&plan, 132).unwrap();
            let short = short_context_shapes(&plan, 132).unwrap();
            let short_launches = short.as_ref().map_or(&[][..], |s| &s.launches[..]);
            // the persistent kernel's instructions are its own launches (attention's blocks differ)
            let program = persistent::schedule(&plan, 132).unwrap();
            plan.program = Some(program.clone());
            let (instructions, _) = launch_shapes(&plan, 132).unwrap();
            let persistent = DeviceProgram::new(&plan, &program, &instructions).unwrap().launch(0, 0);
            for l in decode.iter().chain(short_launches).chain(&prefill).chain([&persistent]) {
                assert_eq!(Some(&l.args.len()), params.get(l.kernel), "{}: {} for {}: arguments vs the PTX's parameters", path.display(), l.kernel, l.label);
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let short = short.map_or("none\n".into(), |s| format!("up to {} positions\n{}", s.positions, table(&s.launches)));
            let text = format!(
                "decode\n{}decode while the context is short: {short}persistent decode\n{}prefill of {} rows\n{}",
                table(&decode),
                table(&[persistent]),
                prefill::PREFILL_CHUNK,
                table(&prefill)
            );
            insta::assert_snapshot!(format!("launch_table_{name}"), text);
        }
    }
}
