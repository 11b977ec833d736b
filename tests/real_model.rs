//! End to end with the real Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, dequantized to bf16 at
//! compile time) on the CPU executor: compile, greedy code completion that must be a correct
//! Python function, a chat turn that ends at the template's end-of-turn token, and a tokenizer
//! round trip of Chinese and emoji. Needs the 1.1 GB model: `scripts/test.sh` fetches it and sets
//! LLMC_GGUF; run with `cargo test --release --test real_model -- --ignored`.

use llmc::plan::file::PlanFile;
use llmc::text::Text;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The compiled plan, shared by the tests (compiling takes ~20 s).
fn plan() -> &'static PathBuf {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| {
        let gguf = std::env::var("LLMC_GGUF").expect("set LLMC_GGUF to the model (scripts/fetch-model.sh prints its path)");
        let dir = tempfile::tempdir().unwrap().keep();
        let plan = dir.join("coder.plan");
        let out = Command::new(env!("CARGO_BIN_EXE_llmc")).args(["compile", &gguf, "-o", plan.to_str().unwrap(), "--max-seq-len", "512"]).output().unwrap();
        assert!(out.status.success(), "compile failed: {}", String::from_utf8_lossy(&out.stderr));
        plan
    })
}

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_llmc")).arg("run").arg(plan()).args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
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
