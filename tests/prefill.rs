//! Batched prefill on the CPU executor against token-by-token decode, on every fixture: the
//! logits after the prompt and the greedy continuation agree (relative L2 error <= 1e-3: same
//! kernels and bf16 stores, only the f32 summation order differs), whether the prompt goes in
//! one pass or split at every point into two passes (the second attending over the cache the
//! first wrote); and the prefill layout is sound for every chunk size.

mod common;
use common::*;
use llmc::exec::cpu::CpuExecutor;
use llmc::exec::sampling::SamplingParams;
use llmc::exec::Backend;

const TOLERANCE: f32 = 1e-4;
const GREEDY_STEPS: usize = 16;

/// Greedy tokens and the logits after each, from `backend` once the prompt is in.
fn continue_greedy(backend: &mut dyn Backend, mut next: u32, from: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    let (mut tokens, mut logits) = (vec![next], vec![backend.logits().unwrap()]);
    for i in 0..GREEDY_STEPS {
        next = backend.step(next, from + i).unwrap();
        tokens.push(next);
        logits.push(backend.logits().unwrap());
    }
    (tokens, logits)
}

#[test]
fn prefill_matches_token_by_token_decode() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let file = compile_fixture(name, dir.path());
        let prompt = reference(name).input_ids;
        let mut stepper = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
        let mut next = 0;
        for (pos, &t) in prompt.iter().enumerate() {
            next = stepper.step(t, pos).unwrap();
        }
        let (want_tokens, want_logits) = continue_greedy(&mut stepper, next, prompt.len());
        for split in 0..prompt.len() {
            let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
            if split > 0 {
                cpu.prefill(&prompt[..split], 0).unwrap();
            }
            let next = cpu.prefill(&prompt[split..], split).unwrap();
            let (tokens, logits) = continue_greedy(&mut cpu, next, prompt.len());
            assert_eq!(tokens, want_tokens, "{name}: split at {split}: greedy tokens");
            for (i, (got, want)) in logits.iter().zip(&want_logits).enumerate() {
                let err = rel_l2_error(got, want);
                assert!(err <= TOLERANCE, "{name}: split at {split}: logits {i} after the prompt: relative error {err}");
            }
        }
    }
}

#[test]
fn prefill_matches_transformers_at_the_last_prompt_position() {
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let file = compile_fixture(name, dir.path());
        let reference = reference(name);
        let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
        let mut next = cpu.prefill(&reference.input_ids, 0).unwrap();
        let err = rel_l2_error(&cpu.logits().unwrap(), reference.logits.last().unwrap());
        assert!(err <= TOLERANCE, "{name}: last prompt position: relative logit error {err}");
        let mut generated = Vec::new();
        for i in 0..reference.greedy_ids.len() {
            generated.push(next);
            next = cpu.step(next, reference.input_ids.len() + i).unwrap();
        }
        assert_eq!(generated, reference.greedy_ids, "{name}: greedy tokens after prefill");
    }
}

#[test]
fn prefill_layouts_are_sound_for_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let file = compile_fixture("qwen3_untied", dir.path());
    let plan = &file.plan;
    for chunk in [1, 2, 7, 64, 512] {
        let layout = plan.prefill_layout(chunk).unwrap();
        assert_eq!(layout.chunk, chunk);
        assert!(layout.values() > 0);
        // Widened values; the residual stream alone needs chunk rows.
        let hidden_row = 2 * plan.config.hidden_size as u64;
        assert!(layout.bytes >= hidden_row * chunk as u64, "chunk {chunk}: {} bytes", layout.bytes);
        for step in &plan.steps {
            for slot in step.inputs.iter().chain(&step.outputs) {
                let widened = layout.offset(slot).is_some();
                let stays = slot.region == llmc::plan::Region::Weights
                    || slot.name.starts_with("kv.")
                    || [&plan.io.position, &plan.io.logits, &plan.io.next_token].iter().any(|p| p.name == slot.name);
                assert_eq!(widened, !stays, "{}", slot.name);
            }
        }
    }
    assert!(plan.prefill_layout(0).is_err());
}
