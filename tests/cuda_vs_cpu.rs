//! The CUDA backend against the CPU executor, on every fixture: logits at every position
//! (prompt, then 40 greedy steps) within a relative L2 error of `TOLERANCE`, and identical greedy
//! tokens. Each fixture runs with the default attention (slices of at least 64 positions, so one
//! block per KV head over the fixtures' 52 positions) and with `LLMC_ATTN_MIN_CHUNK=8`, so several
//! slices merge. The graph path's attention runs in clusters of 4 by default (up to that many
//! active slices merged through distributed shared memory, more through L2), so at min chunk 8 it
//! also runs with `LLMC_ATTN_CLUSTER` 1, 2 and 8. While the context fits a cluster of the
//! slices (min chunk x cluster positions) the graph path replays its short-context graph, where
//! attention and the bias-free output projection run as one kernel if each block of a cluster's
//! share of a head is whole 16-byte chunks of W_o (qwen3_untied's head_dim 32 in clusters of 4;
//! every fixture but llama_tied_bias in clusters of 2); at min chunk 8 a run switches graphs part
//! way. It runs once more with `LLMC_FUSE_MLP=0 LLMC_FUSE_ATTN_PROJ=0` (gate/up and down as two
//! kernels, as block-format weights run them; one graph). Every check runs for both decode paths (one kernel
//! per step; one persistent kernel). Needs an NVIDIA GPU and NVRTC:
//! `cargo test --release --test cuda_vs_cpu -- --ignored`.

mod common;
use common::*;
use llmc::compile::{compile, CompileOptions, Decode};
use llmc::exec::cpu::CpuExecutor;
use llmc::exec::cuda::{device_sm, CudaBackend};
use llmc::exec::logprobs;
use llmc::exec::sampling::{self, SamplingParams};
use llmc::exec::Backend;
use llmc::plan::file::PlanFile;
use llmc::plan::Target;

/// Both backends compute in f32 over the same bf16 weights; only the order of sums differs
/// (measured on an H100: at most 8.3e-6).
const TOLERANCE: f32 = 1e-4;
const GREEDY_STEPS: usize = 40;
const DECODE_PATHS: [Decode; 2] = [Decode::Graph, Decode::Persistent];

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn cuda_matches_cpu_on_every_fixture() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // (attention min chunk, attention cluster, fusion: None the default (the MLP fused, and
    // attention + o_proj in the short-context graph), "0" neither); clusters and the fused kernels
    // are the graph path's only
    type Env = (Option<&'static str>, Option<&'static str>, Option<&'static str>);
    const ENV: [Env; 7] = [
        (None, None, None),
        (Some("8"), None, None),
        (Some("8"), Some("1"), None),
        (Some("8"), Some("8"), None),
        (None, Some("2"), None),
        (Some("8"), Some("2"), None),
        (None, None, Some("0")),
    ];
    let cases = DECODE_PATHS.iter().flat_map(|&d| {
        FIXTURES
            .iter()
            .flat_map(move |n| ENV.iter().filter(move |e| (e.1.is_none() && e.2.is_none()) || d == Decode::Graph).map(move |&(m, c, f)| (d, n, m, c, f)))
    });
    for (decode, name, min_chunk, cluster, fuse) in cases {
        // SAFETY: this test is the only one of its binary touching the environment, and the
        // backend reads the variables while it is being created, on this thread.
        for (var, value) in [("LLMC_ATTN_MIN_CHUNK", min_chunk), ("LLMC_ATTN_CLUSTER", cluster), ("LLMC_FUSE_MLP", fuse), ("LLMC_FUSE_ATTN_PROJ", fuse)] {
            match value {
                Some(v) => unsafe { std::env::set_var(var, v) },
                None => unsafe { std::env::remove_var(var) },
            }
        }
        let path = dir.path().join(format!("{name}.plan"));
        let opts = CompileOptions { weights: Default::default(), max_seq_len: 64, target: Target::Cuda { sm }, decode, sms: None, progress: false };
        compile(&fixture_dir(name), &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        assert_eq!(file.plan.program.is_some(), decode == Decode::Persistent);
        let short = llmc::exec::cuda::short_context_shapes(&file.plan, llmc::exec::cuda::device_sms().unwrap()).unwrap();
        let fused_attention = short.as_ref().is_some_and(|s| s.launches.iter().any(|l| l.kernel == "attention_proj"));
        let fits = (cluster == Some("2") && *name != "llama_tied_bias") || (*name == "qwen3_untied" && cluster.is_none());
        let should_fuse = decode == Decode::Graph && fuse != Some("0") && fits;
        assert_eq!(fused_attention, should_fuse, "{name} {decode:?}: attention and o_proj fused");
        if let Some(short) = &short {
            let slices = cluster.map_or(4, |c| c.parse().unwrap()) * min_chunk.map_or(64, |m| m.parse().unwrap());
            assert_eq!(short.positions, slices.min(64), "{name}: the short-context graph's positions");
        }
        let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
        let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
        let prompt = reference(name).input_ids;
        let (mut worst, mut next, mut tokens) = (0f32, 0u32, Vec::new());
        for pos in 0..prompt.len() + GREEDY_STEPS {
            let token = if pos < prompt.len() { prompt[pos] } else { next };
            let want = cpu.step(token, pos).unwrap();
            let got = gpu.step(token, pos).unwrap();
            let err = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
            assert!(err <= TOLERANCE, "{name} {decode:?}: position {pos}: relative logit error {err}");
            assert_eq!(got, want, "{name} {decode:?}: position {pos}: CUDA chose {got}, CPU {want}");
            worst = worst.max(err);
            tokens.push(got);
            next = got;
        }
        println!(
            "{name} {decode:?} (attention min chunk {}, cluster {}, fusion {}, attention + o_proj fused below {:?} positions): sm_{sm}, {} positions, worst relative logit error {worst:.2e}, greedy tokens identical",
            min_chunk.unwrap_or("default"),
            cluster.unwrap_or("default"),
            fuse.unwrap_or("default"),
            short.as_ref().filter(|_| fused_attention).map(|s| s.positions),
            tokens.len()
        );
    }
    // the later tests of this binary see the defaults, not the last case's variables
    for var in ["LLMC_ATTN_MIN_CHUNK", "LLMC_ATTN_CLUSTER", "LLMC_FUSE_MLP", "LLMC_FUSE_ATTN_PROJ"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(var) };
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn cpu_plans_and_other_architectures_are_refused() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cpu_plan = compile_fixture("qwen2_tied", dir.path());
    let err = CudaBackend::new(&cpu_plan, SamplingParams::GREEDY).err().unwrap().to_string();
    assert!(err.contains("--target sm_"), "{err}");
    let other = if sm == 80 { 90 } else { 80 };
    let path = dir.path().join("other.plan");
    let opts = CompileOptions {
        weights: Default::default(),
        max_seq_len: 64,
        target: Target::Cuda { sm: other },
        decode: llmc::compile::Decode::Graph,
        sms: None,
        progress: false,
    };
    compile(&fixture_dir("qwen2_tied"), &path, &opts).unwrap();
    let err = CudaBackend::new(&PlanFile::open(&path).unwrap(), SamplingParams::GREEDY).err().unwrap().to_string();
    assert!(err.contains(&format!("recompile it with `llmc compile --target sm_{sm}`")), "{err}");
}

/// Batched prefill on the GPU against the CPU executor's token-by-token decode: the logits after
/// the prompt and 40 greedy steps after it, for the fixture prompt in one pass, split into two
/// passes, and a 60-token prompt (several attention blocks, causal masking inside the chunk).
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn cuda_prefill_matches_cpu_decode_on_every_fixture() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (decode, name) in DECODE_PATHS.iter().flat_map(|&d| FIXTURES.iter().map(move |n| (d, n))) {
        let path = dir.path().join(format!("{name}.plan"));
        let opts = CompileOptions { weights: Default::default(), max_seq_len: 128, target: Target::Cuda { sm }, decode, sms: None, progress: false };
        compile(&fixture_dir(name), &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let fixture = reference(name).input_ids;
        let long: Vec<u32> = (0..60).map(|i| fixture[i % fixture.len()] ^ (i as u32 % 7)).collect();
        let mut worst = 0f32;
        for (prompt, split) in [(&fixture, 0), (&fixture, fixture.len() / 2), (&long, 0), (&long, 37)] {
            let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
            let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
            let mut want = 0;
            for (pos, &t) in prompt.iter().enumerate() {
                want = cpu.step(t, pos).unwrap();
            }
            if split > 0 {
                gpu.prefill(&prompt[..split], 0).unwrap();
            }
            let mut got = gpu.prefill(&prompt[split..], split).unwrap();
            for i in 0..=GREEDY_STEPS {
                let err = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
                assert!(err <= TOLERANCE, "{name}: prompt of {} split at {split}: step {i}: relative logit error {err}", prompt.len());
                assert_eq!(got, want, "{name}: prompt of {} split at {split}: step {i}: CUDA chose {got}, CPU {want}", prompt.len());
                worst = worst.max(err);
                let pos = prompt.len() + i;
                want = cpu.step(want, pos).unwrap();
                got = gpu.step(got, pos).unwrap();
            }
        }
        println!("{name} {decode:?}: sm_{sm}, prefill (whole, split, 60 tokens) + {GREEDY_STEPS} greedy steps: worst relative logit error {worst:.2e}, greedy tokens identical");
    }
}

/// A 4,096-token prompt (nine prefill passes; attention over many tiles of cache positions,
/// from a start that is not a multiple of a tile) on every fixture against the CPU executor's
/// token-by-token decode: logits after the prompt and 8 greedy steps after it.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn cuda_prefill_of_4096_tokens_matches_cpu_decode() {
    const PROMPT: usize = 4_096;
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let model = fixture_with_context(name, dir.path(), PROMPT + 16);
        let path = dir.path().join(format!("{name}.plan"));
        let opts = CompileOptions {
            weights: Default::default(),
            max_seq_len: PROMPT + 16,
            target: Target::Cuda { sm },
            decode: Decode::Graph,
            sms: None,
            progress: false,
        };
        compile(&model, &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let fixture = reference(name).input_ids;
        let prompt: Vec<u32> = (0..PROMPT).map(|i| fixture[(i * 7) % fixture.len()] ^ (i as u32 % 5)).collect();
        let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
        let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
        let mut want = 0;
        for (pos, &t) in prompt.iter().enumerate() {
            want = cpu.step(t, pos).unwrap();
        }
        gpu.prefill(&prompt[..1_000], 0).unwrap();
        let mut got = gpu.prefill(&prompt[1_000..], 1_000).unwrap();
        let mut worst = 0f32;
        for i in 0..=8 {
            let err = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
            assert!(err <= TOLERANCE, "{name}: prompt of {PROMPT}: step {i}: relative logit error {err}");
            assert_eq!(got, want, "{name}: prompt of {PROMPT}: step {i}: CUDA chose {got}, CPU {want}");
            worst = worst.max(err);
            want = cpu.step(want, PROMPT + i).unwrap();
            got = gpu.step(got, PROMPT + i).unwrap();
        }
        println!(
            "{name}: sm_{sm}, prefill of {PROMPT} tokens (1,000 then 3,096) + 8 greedy steps: worst relative logit error {worst:.2e}, greedy tokens identical"
        );
    }
}

/// Sampling on the device against `sampling::sample` on the host, over the very logits the GPU
/// computed: for every fixture and several parameter sets, the prefill's token and 40 decode
/// steps' tokens are exactly the host's (the function is defined to the bit), and another seed
/// draws another sequence.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn device_sampling_matches_the_host_sampler() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sets = [(0.8, 40, 0.9), (1.0, 0, 0.95), (0.7, 0, 1.0), (1.3, 5, 1.0)];
    for (decode, name) in DECODE_PATHS.iter().flat_map(|&d| FIXTURES.iter().map(move |n| (d, n))) {
        let path = dir.path().join(format!("{name}.plan"));
        let opts = CompileOptions { weights: Default::default(), max_seq_len: 64, target: Target::Cuda { sm }, decode, sms: None, progress: false };
        compile(&fixture_dir(name), &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let prompt = reference(name).input_ids;
        for (temperature, top_k, top_p) in sets {
            let run = |seed| {
                let params = SamplingParams { temperature, top_k, top_p, seed };
                let mut gpu = CudaBackend::new(&file, params).unwrap();
                let mut scratch = sampling::Scratch::default();
                let (mut tokens, mut pos) = (vec![gpu.prefill(&prompt, 0).unwrap()], prompt.len() - 1);
                loop {
                    let (got, want) = (tokens[tokens.len() - 1], sampling::sample(&gpu.logits().unwrap(), &params, pos as u64, &mut scratch).unwrap());
                    assert_eq!(got, want, "{name} {params:?}: the draw at position {pos}: device {got}, host {want}");
                    if tokens.len() > GREEDY_STEPS {
                        return tokens;
                    }
                    pos += 1;
                    tokens.push(gpu.step(got, pos).unwrap());
                }
            };
            let (a, b) = (run(1), run(2));
            assert_ne!(a, b, "{name}: t={temperature} k={top_k} p={top_p}: seeds 1 and 2 drew the same tokens");
            println!("{name} {decode:?}: t={temperature} k={top_k} p={top_p}: {} device draws equal the host's", a.len() + b.len());
        }
    }
}

/// `set_sampling` on one backend, as `llmc serve` uses it between requests: after each change
/// (the sampler's launch swapped, the decode graphs captured again) prefill and every decode step
/// draw what the host sampler draws from the same logits, back to greedy at the end. On
/// qwen3_untied's graph path the steps cross from the short-context graph to the other (a
/// 250-token prompt, 40 steps, the switch at 256 positions).
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn set_sampling_switches_the_device_sampler() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seeded = |temperature, top_k, top_p, seed| SamplingParams { temperature, top_k, top_p, seed };
    let sets = [SamplingParams::GREEDY, seeded(0.8, 40, 0.9, 1), seeded(1.0, 0, 1.0, 2), seeded(0.8, 40, 0.9, 3), SamplingParams::GREEDY];
    let cases = DECODE_PATHS.iter().flat_map(|&d| [(d, "qwen2_tied", 0, 64), (d, "qwen3_untied", 250, 320)]);
    for (decode, name, prompt_len, max_seq_len) in cases {
        let path = dir.path().join(format!("{name}-{decode:?}.plan"));
        let opts = CompileOptions { weights: Default::default(), max_seq_len, target: Target::Cuda { sm }, decode, sms: None, progress: false };
        compile(&fixture_with_context(name, dir.path(), max_seq_len), &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let short = llmc::exec::cuda::short_context_shapes(&file.plan, llmc::exec::cuda::device_sms().unwrap()).unwrap().map(|s| s.positions);
        let expected = (decode == Decode::Graph && name == "qwen3_untied").then_some(256);
        assert_eq!(short, expected, "{name} {decode:?}: the short-context graph's positions");
        let fixture = reference(name).input_ids;
        let prompt: Vec<u32> = match prompt_len {
            0 => fixture,
            n => (0..n).map(|i| fixture[i % fixture.len()] ^ (i as u32 % 7)).collect(),
        };
        let mut gpu = CudaBackend::new(&file, seeded(1.3, 5, 1.0, 9)).unwrap();
        let mut scratch = sampling::Scratch::default();
        for params in sets {
            gpu.set_sampling(params).unwrap();
            let (mut got, mut pos) = (gpu.prefill(&prompt, 0).unwrap(), prompt.len() - 1);
            for _ in 0..GREEDY_STEPS {
                let want = sampling::sample(&gpu.logits().unwrap(), &params, pos as u64, &mut scratch).unwrap();
                assert_eq!(got, want, "{name} {decode:?} {params:?}: the draw at position {pos}: device {got}, host {want}");
                pos += 1;
                got = gpu.step(got, pos).unwrap();
            }
        }
        println!("{name} {decode:?} (short-context graph below {short:?} positions): {} sampler changes on one backend, positions {} to {}, every draw equal to the host's", sets.len(), prompt.len() - 1, prompt.len() - 1 + GREEDY_STEPS);
    }
}

/// `top_logprobs` on the device (kernels/logprobs.cu, what `llmc serve` reports as `logprobs`)
/// against the host's computation from the same logits after prefill and every greedy step, on
/// both decode paths: the same ids in the same order, log-probabilities within 1e-5; and for a
/// token off the top, and k from 0 to 5.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn top_logprobs_on_the_device_match_the_host() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for decode in DECODE_PATHS {
        let name = "llama_untied_scaled";
        let path = dir.path().join(format!("{name}-{decode:?}.plan"));
        let opts = CompileOptions { weights: Default::default(), max_seq_len: 64, target: Target::Cuda { sm }, decode, sms: None, progress: false };
        compile(&fixture_dir(name), &path, &opts).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let prompt = reference(name).input_ids;
        let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
        let (mut next, mut pos) = (gpu.prefill(&prompt, 0).unwrap(), prompt.len() - 1);
        let mut worst = 0f32;
        for step in 0..GREEDY_STEPS {
            let logits = gpu.logits().unwrap();
            let (token, k) = if step % 2 == 0 { (next, 5) } else { ((next + 7) % logits.len() as u32, step % 6) };
            let got = gpu.top_logprobs(token, k).unwrap();
            let want = logprobs::top_logprobs(&logits, token, k);
            assert!(got.logprob.is_finite(), "{name} {decode:?} position {pos}: {got:?}");
            let ids = |t: &logprobs::TokenLogprobs| t.top.iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&want), "{name} {decode:?} position {pos}: top ids");
            for (a, b) in std::iter::once((got.logprob, want.logprob)).chain(got.top.iter().zip(&want.top).map(|(a, b)| (a.1, b.1))) {
                worst = worst.max((a - b).abs());
                assert!((a - b).abs() <= 1e-5, "{name} {decode:?} position {pos}: log-probability {a} on the device, {b} on the host");
            }
            pos += 1;
            next = gpu.step(next, pos).unwrap();
        }
        println!("{name} {decode:?}: top_logprobs at {GREEDY_STEPS} positions equal the host's (worst {worst:.1e})");
    }
}

/// The persistent kernel's counters are re-armed by the kernel itself: 10,000 replays of the
/// decode step (greedy, feeding itself) finish, each within a second, and the last logits still
/// equal the CPU executor's from the same position. A deadlock fails this test on its timeout.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn persistent_decode_replays_10000_tokens() {
    const TOKENS: usize = 10_000;
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_with_context("qwen3_untied", dir.path(), TOKENS + 1);
    let path = dir.path().join("long.plan");
    let opts = CompileOptions {
        weights: Default::default(),
        max_seq_len: TOKENS + 1,
        target: Target::Cuda { sm },
        decode: Decode::Persistent,
        sms: None,
        progress: false,
    };
    compile(&model, &path, &opts).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let file = PlanFile::open(&path).unwrap();
        let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
        let mut tokens = vec![1u32];
        for pos in 0..TOKENS {
            tokens.push(gpu.step(tokens[pos], pos).unwrap());
            done_tx.send(pos).unwrap();
        }
        (tokens, gpu.logits().unwrap(), file)
    });
    let mut last = 0;
    while last + 1 < TOKENS {
        last = done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no decode step finished within 10 s after position {last}: deadlock"));
    }
    let (tokens, logits, file) = worker.join().unwrap();
    // The CPU executor fed the same tokens reaches the same logits at the last position.
    let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
    let mut want = 0;
    for (pos, &token) in tokens[..TOKENS].iter().enumerate() {
        want = cpu.step(token, pos).unwrap();
    }
    let err = rel_l2_error(&logits, &cpu.logits().unwrap());
    assert!(err <= TOLERANCE, "after {TOKENS} tokens: relative logit error {err}");
    assert_eq!(want, tokens[TOKENS]);
    println!("persistent decode: {TOKENS} replays, last logits within {err:.2e} of the CPU executor");
}

/// The fused MLP kernel (graph path, bf16) with several units of 8 FFN channels a block, which
/// the fixtures (at most 16 units over a GPU's blocks) never give: on 132 SMs FFN 8,960 deals 8
/// and 9 units a block (down with one and two chunk slots a lane), 10,400 deals 9 and 10, and
/// 18,944 deals 17 and 18 (three slots). A 24-token prompt and 24 greedy steps, logits within
/// TOLERANCE of the CPU executor at every position, tokens identical.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn fused_mlp_blocks_of_several_units_match_the_cpu() {
    let sm = device_sm().unwrap();
    let sms = llmc::exec::cuda::device_sms().unwrap() as usize;
    let dir = tempfile::tempdir().unwrap();
    let prompt: Vec<u32> = (0..24).map(|i| (i * 53 + 7) % 272).collect();
    for ffn in [8960, 10400, 18944] {
        let model = block_fixture_with_ffn(dir.path(), ffn);
        let path = dir.path().join(format!("mlp-{ffn}.plan"));
        compile(&model, &path, &options(Default::default(), Target::Cuda { sm }, Decode::Graph)).unwrap();
        let file = PlanFile::open(&path).unwrap();
        let (decode, _) = llmc::exec::cuda::launch_shapes(&file.plan, sms as u32).unwrap();
        assert!(decode.iter().any(|l| l.kernel == "mlp"), "FFN {ffn}: the MLP is not fused");
        let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
        let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
        let (mut worst, mut next) = (0f32, 0u32);
        for pos in 0..2 * prompt.len() {
            let token = if pos < prompt.len() { prompt[pos] } else { next };
            let (want, got) = (cpu.step(token, pos).unwrap(), gpu.step(token, pos).unwrap());
            let err = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
            assert!(err <= TOLERANCE, "FFN {ffn}: position {pos}: relative logit error {err}");
            assert_eq!(got, want, "FFN {ffn}: position {pos}: CUDA chose {got}, CPU {want}");
            worst = worst.max(err);
            next = got;
        }
        let units = ffn / 8;
        let (least, most) = (units / sms.min(units), units.div_ceil(sms.min(units)));
        println!("fused MLP, FFN {ffn}: {least}-{most} units a block on {sms} SMs, worst relative logit error {worst:.2e}, tokens identical");
    }
}

/// Every block format on the GPU against the CPU executor over the same plan: a 100-token prompt
/// prefilled (blocks rounded to bf16 for the tensor-core GEMMs, as the CPU's prefill rounds them;
/// the embedding rows from blocks), then greedy decode steps (the GEMVs reading blocks in
/// registers, one kernel per step and, at FFN 6,144, in the persistent kernel); logits within
/// TOLERANCE at every step, tokens identical.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn block_format_plans_match_the_cpu() {
    let sm = device_sm().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 100 prompt tokens: the prefill GEMM's second tile of rows is partial.
    let prompt: Vec<u32> = (0..100).map(|i| (i * 37 + 11) % 272).collect();
    // FFN 512: every GEMV row read by one warp; 6,144: the down projection's rows (192 units of
    // 32) split over two warps whose passes differ in number.
    // The persistent path at FFN 6,144 only: its kernel with block formats takes NVRTC ~3x as long.
    let cases = [(512, Decode::Graph), (6144, Decode::Graph), (6144, Decode::Persistent)];
    for (ffn, decode) in cases {
        let model = block_fixture_with_ffn(dir.path(), ffn);
        for dtype in BLOCK_FORMATS {
            let path = dir.path().join(format!("{dtype}-{ffn}-{decode:?}.plan"));
            let weights = llmc::compile::Weights::Quantize(dtype);
            compile(&model, &path, &CompileOptions { max_seq_len: 160, ..options(weights, Target::Cuda { sm }, decode) }).unwrap();
            let file = PlanFile::open(&path).unwrap();
            let mut cpu = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
            let mut gpu = CudaBackend::new(&file, SamplingParams::GREEDY).unwrap();
            let (want, got) = (cpu.prefill(&prompt, 0).unwrap(), gpu.prefill(&prompt, 0).unwrap());
            let mut worst = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
            assert!(worst <= TOLERANCE, "{dtype}, FFN {ffn}: prefill: relative logit error {worst}");
            assert_eq!(got, want, "{dtype}, FFN {ffn}: prefill chose {got}, CPU {want}");
            let mut next = got;
            for pos in prompt.len()..prompt.len() + GREEDY_STEPS {
                let (want, got) = (cpu.step(next, pos).unwrap(), gpu.step(next, pos).unwrap());
                let err = rel_l2_error(&gpu.logits().unwrap(), &cpu.logits().unwrap());
                assert!(err <= TOLERANCE, "{dtype}, FFN {ffn}: position {pos}: relative logit error {err}");
                assert_eq!(got, want, "{dtype}, FFN {ffn}: position {pos}: CUDA chose {got}, CPU {want}");
                worst = worst.max(err);
                next = got;
            }
            println!(
                "{dtype}, FFN {ffn}, {decode:?}: sm_{sm}, prompt of {} then {GREEDY_STEPS} greedy steps, worst relative logit error {worst:.2e}, tokens identical",
                prompt.len()
            );
        }
    }
}
