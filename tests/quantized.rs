//! Weights in block formats on the CPU executor (the reference the GPU is checked against in
//! tests/cuda_vs_cpu.rs): `llmc compile --quantize` of a model whose rows are whole blocks stores
//! every matrix in the format and the executor reads the blocks; its logits stay within the
//! format's quantization error of the bf16 plan's (a wrong nibble, scale or row is an error of
//! order 1); prefill (which reads the blocks rounded to bf16) stays within that rounding of
//! decoding the prompt token by token; a format whose blocks do not fit
//! a row is refused before anything is written.

mod common;
use common::*;
use llmc::compile::{Decode, Weights};
use llmc::exec::cpu::CpuExecutor;
use llmc::exec::sampling::SamplingParams;
use llmc::exec::Backend;
use llmc::ir::DType;
use llmc::plan::Target;

const PROMPT: [u32; 12] = [5, 17, 200, 33, 101, 7, 250, 64, 12, 99, 180, 3];

/// Relative L2 logit error of each format against the bf16 plan, after the prompt: about twice
/// the error measured on this fixture (q8_0 1.1e-2, q6_k 5.3e-2, q5_k 1.1e-1, q4_k and q4_0
/// 2.2e-1: each bit fewer doubles it, as it should).
fn bound(dtype: DType) -> f32 {
    match dtype {
        DType::Q8_0 => 0.025,
        DType::Q6K => 0.11,
        DType::Q5K => 0.22,
        _ => 0.45,
    }
}

fn logits_after_prompt(backend: &mut dyn Backend) -> Vec<f32> {
    backend.prefill(&PROMPT, 0).unwrap();
    backend.logits().unwrap()
}

#[test]
fn every_block_format_runs_on_the_cpu_close_to_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let model = block_fixture(dir.path());
    let bf16 = compile_with(&model, &dir.path().join("bf16.plan"), Target::Cpu, Weights::Bf16, 64);
    let want = logits_after_prompt(&mut CpuExecutor::new(&bf16, SamplingParams::GREEDY).unwrap());
    for dtype in BLOCK_FORMATS {
        let plan = compile_with(&model, &dir.path().join(format!("{dtype}.plan")), Target::Cpu, Weights::Quantize(dtype), 64);
        let matrices: Vec<_> = plan.plan.weights.iter().filter(|w| w.ty.shape.len() == 2).collect();
        assert!(matrices.len() >= 9 && matrices.iter().all(|w| w.ty.dtype == dtype), "{dtype}: every matrix stored as blocks");
        assert!(plan.plan.weight_bytes < bf16.plan.weight_bytes, "{dtype}: {} bytes", plan.plan.weight_bytes);
        let mut cpu = CpuExecutor::new(&plan, SamplingParams::GREEDY).unwrap();
        let got = logits_after_prompt(&mut cpu);
        let err = rel_l2_error(&got, &want);
        println!("{dtype}: {} weight bytes (bf16 {}), relative logit error vs bf16 {err:.2e}", plan.plan.weight_bytes, bf16.plan.weight_bytes);
        assert!(err <= bound(dtype), "{dtype}: relative logit error {err} vs the bf16 plan");

        // Prefill (the GEMMs over the blocks rounded to bf16) against decode steps (the GEMVs
        // over the exact blocks), token by token: they differ by bf16's rounding of the weights
        // (4.6e-3 to 5.6e-3 measured on this fixture, every format), an error in a block's
        // decoding by order 1.
        let mut stepped = CpuExecutor::new(&plan, SamplingParams::GREEDY).unwrap();
        for (pos, &t) in PROMPT.iter().enumerate() {
            stepped.step(t, pos).unwrap();
        }
        let err = rel_l2_error(&stepped.logits().unwrap(), &got);
        println!("{dtype}: prefill vs step-by-step {err:.2e}");
        assert!(err <= 1e-2, "{dtype}: prefill vs step-by-step {err}");
    }
}

#[test]
fn a_format_whose_blocks_do_not_fit_the_rows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.plan");
    // The fixture's rows are 64 and 128 elements: not whole Q4_K blocks of 256.
    let err = compile_refused(&fixture_dir("qwen2_tied"), &out, &options(Weights::Quantize(DType::Q4K), Target::Cpu, Decode::Graph));
    assert!(err.contains("not whole q4_k blocks of 256"), "{err}");
    // Q8_0's blocks of 32 fit them.
    compile_with(&fixture_dir("qwen2_tied"), &out, Target::Cpu, Weights::Quantize(DType::Q8_0), 64);
}

/// The persistent program runs a block-format GEMV by tiles of 16 weight rows (8 tasks of two
/// rows: gate/up, q/k/v), all of a worker's warps on each, as the standalone `_q` kernels do;
/// other steps keep their units.
#[test]
fn the_persistent_program_cuts_block_format_gemvs_into_tiles() {
    use llmc::ir::Op;
    let dir = tempfile::tempdir().unwrap();
    let file = compile_with(&fixture_dir("qwen2_tied"), &dir.path().join("q.plan"), Target::Cpu, Weights::Quantize(DType::Q8_0), 64);
    let program = llmc::exec::cuda::persistent::schedule(&file.plan, 132).unwrap();
    let mut gemvs = 0;
    for (step, &tasks) in file.plan.steps.iter().zip(&program.tasks) {
        let want = match step.op {
            Op::Linear { .. } | Op::LinearResidual { .. } | Op::LmHead { .. } => step.outputs[0].ty.elements().div_ceil(16),
            Op::GateUpSilu { .. } => step.outputs[0].ty.elements().div_ceil(8),
            Op::QkvRope { n_heads, n_kv_heads, head_dim, .. } => ((n_heads + 2 * n_kv_heads) * head_dim / 2).div_ceil(8),
            _ => continue,
        };
        assert_eq!(tasks as usize, want, "{}", step.label);
        gemvs += 1;
    }
    assert!(gemvs >= 9, "{gemvs} GEMV steps");
}
