//! GPU faults and resource bounds: a plan that does not fit the free device memory is refused at
//! load with the bytes needed and free, and decoding holds device memory constant over 1,000
//! tokens. Needs an NVIDIA GPU and NVRTC: `cargo test --release --test cuda_faults -- --ignored`.

mod common;
use common::*;
use cudarc::driver::{result as cu, CudaContext};
use llmc::compile::{compile, CompileOptions};
use llmc::error::{format_bytes, Error};
use llmc::exec::cuda::{device_sm, CudaBackend};
use llmc::exec::sampling::SamplingParams;
use llmc::exec::Backend;
use llmc::plan::file::PlanFile;
use llmc::plan::Target;
use std::path::Path;
use std::sync::Mutex;

/// Both tests read free device memory, which the other would change: they take turns.
static GPU: Mutex<()> = Mutex::new(());

/// The qwen3 fixture compiled for this GPU with a KV cache of `positions` positions.
fn gpu_plan(dir: &Path, positions: usize) -> PlanFile {
    let model = fixture_with_context("qwen3_untied", dir, positions);
    let path = dir.join("plan");
    let opts = CompileOptions {
        weights: Default::default(),
        max_seq_len: positions,
        target: Target::Cuda { sm: device_sm().unwrap() },
        decode: llmc::compile::Decode::Graph,
        sms: None,
        progress: false,
    };
    compile(&model, &path, &opts).unwrap();
    PlanFile::open(&path).unwrap()
}

fn free_device_memory() -> u64 {
    cu::mem_get_info().unwrap().0 as u64
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn out_of_device_memory_at_load_names_the_bytes() {
    let _turn = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // 32,768 positions: a 24 MiB KV cache, large against the driver's 2 MiB allocation granule.
    let file = gpu_plan(dir.path(), 32768);
    let plan_bytes = file.plan.weight_bytes + file.plan.arena_bytes;
    // Holds the primary context the backend also uses, so the reserve below lives in it.
    let _ctx = CudaContext::new(0).unwrap();
    // Reserve device memory until about half of what the plan needs is left free.
    let leave = plan_bytes / 2;
    let mut reserve = Vec::new();
    while free_device_memory() > leave + (2 << 20) {
        let bytes = (free_device_memory() - leave).min(1 << 30);
        // SAFETY: a plain allocation in the current (primary) context, freed below.
        reserve.push(unsafe { cu::malloc_sync(bytes as usize) }.unwrap());
    }

    let err = CudaBackend::new(&file, SamplingParams::GREEDY).err().expect("the plan must not fit in the memory left");
    let msg = err.to_string();
    let Error::OutOfDeviceMemory { needed, free, .. } = err else { panic!("expected an out-of-memory error, got: {msg}") };
    assert!(needed >= plan_bytes, "needed {needed} < weights + arena {plan_bytes}");
    assert!(free < needed && free <= leave + (2 << 20), "free {free}, needed {needed}, left {leave}");
    assert!(msg.contains(&format!("{} needed", format_bytes(needed))) && msg.contains(&format!("{} free", format_bytes(free))), "{msg}");
    assert!(msg.contains("--max-seq-len"), "{msg}");
    println!("{msg}");

    for ptr in reserve {
        // SAFETY: allocated above, freed once.
        unsafe { cu::free_sync(ptr) }.unwrap();
    }
    let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).expect("the plan loads once the memory is free");
    gpu.step(1, 0).unwrap();
}

const WARM_UP: usize = 32;
const TOKENS: usize = 1000;

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn device_memory_is_constant_over_1000_tokens() {
    let _turn = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = gpu_plan(dir.path(), 1100);
    let prompt = reference("qwen3_untied").input_ids;
    for sampling in [SamplingParams::GREEDY, SamplingParams { temperature: 0.9, top_k: 40, top_p: 0.9, seed: 3 }] {
        let mut gpu = CudaBackend::new(&file, sampling).unwrap();
        // Warm-up as `llmc run` starts: batched prefill, then decode steps (graph replays).
        let mut next = gpu.prefill(&prompt, 0).unwrap();
        let mut pos = prompt.len();
        for _ in 0..WARM_UP {
            next = gpu.step(next, pos).unwrap();
            pos += 1;
        }
        let before = free_device_memory();
        for _ in 0..TOKENS {
            next = gpu.step(next, pos).unwrap();
            pos += 1;
        }
        let after = free_device_memory();
        assert_eq!(before, after, "free device memory changed by {} bytes over {TOKENS} tokens with {sampling:?}", before as i64 - after as i64);
        println!("{sampling:?}: {TOKENS} tokens, free device memory {before} bytes before and after");
    }
}
