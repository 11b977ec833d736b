//! End to end with the real Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, dequantized to bf16 at
//! compile time, and kept as stored) on the CPU executor: compile, greedy code completion that
//! must be a correct Python function, both plans' logits along the as-stored plan's greedy text
//! against an independent f32 reference (gguf-py's dequantization through a numpy forward,
//! tests/fixtures/gguf/reference_logits.py), where the as-stored plan must be the closer and
//! choose the reference's tokens and the bf16 plan may part from them at near-ties only, a chat turn that ends at the template's end-of-turn token, and a tokenizer round trip of
//! Chinese and emoji. Needs the 1.1 GB model: `scripts/test.sh` fetches it and sets
//! LLMC_GGUF (and installs gguf-py); run with `cargo test --release --test real_model -- --ignored`.

use llmc::plan::file::PlanFile;
use llmc::text::Text;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Compiles the model with `--weights <weights>` (bf16 or as-stored) into a plan kept for the run,
/// under Cargo's target/tmp: each run overwrites the last one's (3.5 GB for bf16) instead of
/// leaving another copy in /tmp.
fn compile(weights: &str) -> PathBuf {
    let gguf = std::env::var("LLMC_GGUF").expect("set LLMC_GGUF to the model (scripts/fetch-model.sh prints its path)");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("real_model");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join(format!("coder-{weights}.plan"));
    let out = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["compile", &gguf, "-o", plan.to_str().unwrap(), "--max-seq-len", "512", "--weights", weights])
        .output()
        .unwrap();
    assert!(out.status.success(), "compile failed: {}", String::from_utf8_lossy(&out.stderr));
    plan
}

/// The compiled (bf16) plan, shared by the tests (compiling takes ~20 s).
fn plan() -> &'static PathBuf {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| compile("bf16"))
}

/// The as-stored plan (1.2 GB), shared like the bf16 one.
fn stored_plan() -> &'static PathBuf {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| compile("as-stored"))
}

fn run_plan(plan: &PathBuf, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_llmc")).arg("run").arg(plan).args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(args: &[&str]) -> serde_json::Value {
    run_plan(plan(), args)
}

/// The as-stored plan (Q4_K and Q6_K blocks read as stored) and the bf16 plan (the same blocks
/// rounded to bf16) against an independent reference: gguf-py's f32 dequantization of the same
/// file through a plain numpy forward in f64 (tests/fixtures/gguf/reference_logits.py). The
/// as-stored plan generates GREEDY_STEPS tokens greedily after "def fibonacci(n):" on the CPU
/// executor, stepped token by token (the batched prefill reads block weights rounded to bf16, as
/// the GPU does), and the bf16 plan is fed the same tokens. At every position the as-stored
/// logits must be the closer to the reference (relative L2, within STORED_TOL), and at every
/// generated position the as-stored plan's token must be the reference's argmax: its greedy text
/// is the exact model's. Where the bf16 plan's argmax differs, the reference must score its token
/// within NEAR_TIE of the chosen one: bf16's rounding moved the argmax at a near-tie, so the two
/// plans' greedy texts part there and only there. Measured on 2026-12-02: relative L2 as stored
/// 1.1-7.2e-3, bf16 1.7-8.9e-3; 10 tokens agree, then `return "Invalid input"` (as stored and the
/// reference: `"` 18.171 against ` ` 18.144) / `return 0` (bf16: ` ` by 0.0003); the reference's
/// other margins 0.14-7.1. The as-stored plan is not all blocks: its norm weights and biases, and
/// the fused q/k/v of the 14 layers whose v is Q6_K and q/k Q4_K, are bf16; with those rounded
/// the same way, the reference meets the as-stored logits within 4e-6 (f32 arithmetic), so the
/// as-stored distance is that rounding's, and the bf16 plan's extra distance is the blocks'.
#[test]
#[ignore = "needs the real model; scripts/test.sh runs it"]
fn as_stored_plan_follows_the_f32_reference_and_bf16_parts_at_near_ties_only() {
    use llmc::exec::{cpu::CpuExecutor, sampling::SamplingParams, Backend};
    const STORED_TOL: f64 = 2e-2;
    const NEAR_TIE: f32 = 0.1;
    const GREEDY_STEPS: usize = 12;
    let gguf = std::env::var("LLMC_GGUF").expect("set LLMC_GGUF to the model (scripts/fetch-model.sh prints its path)");
    let stored_path = stored_plan();
    let inspect = Command::new(env!("CARGO_BIN_EXE_llmc")).arg("inspect").arg(stored_path).output().unwrap();
    let listing = String::from_utf8_lossy(&inspect.stdout);
    assert!(listing.contains("q4_k 85 tensors") && listing.contains("q6_k 15 tensors"), "{listing}");
    let (stored, bf16) = (PlanFile::open(stored_path).unwrap(), PlanFile::open(plan()).unwrap());
    let prompt = Text::new(&bf16.plan.tokenizer).unwrap().encode("def fibonacci(n):", true).unwrap();

    // Both plans stepped along the as-stored plan's greedy tokens.
    let mut cpus = [&stored, &bf16].map(|file| CpuExecutor::new(file, SamplingParams::GREEDY).unwrap());
    let (mut tokens, mut logits) = (prompt.clone(), Vec::new());
    for pos in 0..prompt.len() + GREEDY_STEPS - 1 {
        let token = tokens[pos];
        let [(next, got), (_, rounded)] = cpus.each_mut().map(|cpu| {
            let next = cpu.step(token, pos).unwrap();
            (next, cpu.logits().unwrap())
        });
        assert!(got.iter().chain(&rounded).all(|v| v.is_finite()), "position {pos}: non-finite logits");
        if pos + 1 >= prompt.len() {
            tokens.push(next);
        }
        logits.push((got, rounded));
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.f32");
    let ids: Vec<String> = tokens[..logits.len()].iter().map(u32::to_string).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/reference_logits.py");
    let reference = Command::new("python3").arg(script).args([&gguf, &ids.join(","), out.to_str().unwrap()]).output().unwrap();
    assert!(reference.status.success(), "reference_logits.py failed: {}", String::from_utf8_lossy(&reference.stderr));
    print!("{}", String::from_utf8_lossy(&reference.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let want: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let vocab = want.len() / logits.len();
    assert_eq!(vocab * logits.len(), want.len(), "the reference is not [positions, vocab]");

    let relative_l2 = |got: &[f32], want: &[f32]| {
        assert_eq!(got.len(), want.len());
        let diff: f64 = got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        (diff / want.iter().map(|&b| (b as f64).powi(2)).sum::<f64>()).sqrt()
    };
    let argmax = |l: &[f32]| (0..l.len()).fold(0, |best, i| if l[i] > l[best] { i } else { best });
    let mut parted = 0;
    for (pos, ((got, rounded), want)) in logits.iter().zip(want.chunks(vocab)).enumerate() {
        let (err, bf16_err) = (relative_l2(got, want), relative_l2(rounded, want));
        println!("position {pos}: relative L2 to gguf-py's f32: as stored {err:.3e}, bf16 {bf16_err:.3e}");
        assert!(err < bf16_err, "position {pos}: as stored {err} is not closer than bf16 {bf16_err}");
        assert!(err < STORED_TOL, "position {pos}: as stored {err} above {STORED_TOL}");
        if pos + 1 < prompt.len() {
            continue;
        }
        let (exact, chosen, bf16_chosen) = (argmax(want), tokens[pos + 1] as usize, argmax(rounded));
        let runner_up = (0..vocab).filter(|&i| i != exact).fold(usize::from(exact == 0), |best, i| if want[i] > want[best] { i } else { best });
        println!("position {pos}: the reference's token {exact} by {} over {runner_up}", want[exact] - want[runner_up]);
        assert_eq!(chosen, exact, "position {pos}: as stored chose {chosen}, the reference {exact}");
        if bf16_chosen != exact {
            let margin = want[exact] - want[bf16_chosen];
            println!("position {pos}: bf16 chose {bf16_chosen}, the reference {exact} by {margin}");
            assert!(margin < NEAR_TIE, "position {pos}: bf16 parts at no near-tie ({margin})");
            parted += 1;
        }
    }
    println!("{GREEDY_STEPS} greedy tokens: the as-stored plan's are the reference's; bf16's argmax differs at {parted}");
}

#[test]
#[ignore = "needs the real model; scripts/test.sh runs it"]
fn completes_fibonacci_with_a_correct_body() {
    let out = run(&["--prompt", "def fibonacci(n):", "--max-tokens", "48"]);
    let text = out["text"].as_str().unwrap();
    // The function is the prompt plus the indented lines that follow it.
    let body: Vec<&str> = text.lines().skip(1).take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('\t')).collect();
    let source = format!("def fibonacci(n):{}\n{}\n", text.lines().next().unwrap_or(""), body.join("\n"));
    let check = Command::new("python3")
        .args(["-c", &format!("{source}\nassert [fibonacci(i) for i in range(1, 11)] == [1, 1, 2, 3, 5, 8, 13, 21, 34, 55], 'wrong values'")])
        .output()
        .unwrap();
    assert!(check.status.success(), "generated function is wrong:\n{source}\n{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
#[ignore = "needs the real model; scripts/test.sh runs it"]
fn chat_turn_ends_at_end_of_turn() {
    let out = run(&["--chat", "--prompt", "What is 2 + 3? Answer with one number.", "--max-tokens", "16"]);
    let text = out["text"].as_str().unwrap();
    assert!(text.contains('5'), "unexpected answer: {text:?}");
    assert_eq!(out["stopped_at_eos"], true, "the answer should end with <|im_end|>: {text:?}");
}

#[test]
#[ignore = "needs the real model; scripts/test.sh runs it"]
fn tokenizer_round_trips_chinese_and_emoji() {
    let file = PlanFile::open(plan()).unwrap();
    let text = Text::new(&file.plan.tokenizer).unwrap();
    for s in ["你好，世界！🌍🚀 编译器很快。", "def f(x):\n    return x  # ✓ ünïcödé"] {
        let ids = text.encode(s, false).unwrap();
        assert!(ids.len() < s.len(), "byte-level fallback for every character: {ids:?}");
        assert_eq!(text.decode(&ids).unwrap(), s);
    }
}
