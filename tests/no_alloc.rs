//! A decode step on the CPU executor allocates nothing on the host: all working memory is sized
//! from the plan when the executor is made. Counted with a global allocator over 1,000 tokens,
//! greedy and sampled, on the threads of the pool that runs the executor (the test harness's own
//! threads allocate on their own schedule).

mod common;
use common::*;
use llmc::exec::cpu::CpuExecutor;
use llmc::exec::sampling::SamplingParams;
use llmc::exec::Backend;
use llmc::plan::file::PlanFile;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static IN_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if IN_POOL.with(|p| p.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Decode steps measured, after the warm-up.
const MEASURED: usize = 1000;
/// Warm-up runs of WARM_UP steps each, until one allocates nothing.
const WARM_UP: usize = 32;
const MAX_WARM_UP_RUNS: usize = 16;
const TOKENS: usize = MAX_WARM_UP_RUNS * WARM_UP + MEASURED;

#[test]
fn decode_steps_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_with_context("qwen3_untied", dir.path(), TOKENS + 1);
    let out = dir.path().join("plan");
    let opts = llmc::compile::CompileOptions {
        weights: Default::default(),
        max_seq_len: TOKENS + 1,
        target: llmc::plan::Target::Cpu,
        decode: llmc::compile::Decode::Graph,
        sms: None,
        progress: false,
    };
    llmc::compile::compile(&model, &out, &opts).unwrap();
    let file = PlanFile::open(&out).unwrap();

    let pool = rayon::ThreadPoolBuilder::new().start_handler(|_| IN_POOL.with(|p| p.set(true))).build().unwrap();
    for sampling in [SamplingParams::GREEDY, SamplingParams { temperature: 0.9, top_k: 40, top_p: 0.9, seed: 3 }] {
        // As `llmc run` does: generation runs inside the thread pool, so parallel kernels queue
        // work on a worker's own deque (calling in from outside allocates queue blocks).
        let allocated = pool.install(|| {
            let mut cpu = CpuExecutor::new(&file, sampling).unwrap();
            // Warm-up: each worker allocates once for its thread-local state (crossbeam's epoch
            // handle) the first time it steals work, which on a busy machine may come many steps
            // late. So warm up until a whole run of steps allocates nothing (every worker woken
            // before each run); a per-step allocation never gets there and is counted below.
            let (mut next, mut pos) = (1, 0);
            for _ in 0..MAX_WARM_UP_RUNS {
                rayon::broadcast(|_| ());
                let before = ALLOCATIONS.load(Ordering::SeqCst);
                for _ in 0..WARM_UP {
                    next = cpu.step(next, pos).unwrap();
                    pos += 1;
                }
                if ALLOCATIONS.load(Ordering::SeqCst) == before {
                    break;
                }
            }
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for _ in 0..MEASURED {
                next = cpu.step(next, pos).unwrap();
                pos += 1;
            }
            ALLOCATIONS.load(Ordering::SeqCst) - before
        });
        assert_eq!(allocated, 0, "{allocated} allocations in {MEASURED} decode steps with {sampling:?}");
    }
}
