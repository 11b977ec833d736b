//! `llmc chat` and the prompt cache under it (`exec::generate_cached`), on a CPU plan of a
//! fixture: a later turn prefills only the tokens after what the KV cache already holds, and
//! answers exactly as a fresh run of the whole conversation would.

mod common;
use common::*;
use llmc::exec::cpu::CpuExecutor;
use llmc::exec::sampling::SamplingParams;
use llmc::exec::{generate, generate_cached, GenerateOptions};
use std::io::Write;
use std::process::{Command, Stdio};

/// The second turn through the cache: it prefills only its new tokens and generates the same
/// tokens, from the same logits, as an uncached run of its whole prompt.
#[test]
fn cached_turn_equals_an_uncached_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = compile_fixture("qwen2_tied", dir.path());
    let opts = GenerateOptions { max_tokens: 6, eos_ids: Vec::new(), max_seq_len: file.plan.max_seq_len };
    let first: Vec<u32> = reference("qwen2_tied").input_ids;
    let mut chat = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
    let mut cache = Vec::new();
    let turn1 = generate_cached(&mut chat, &mut cache, &first, &opts, |_| Ok(true)).unwrap();
    assert_eq!(turn1.cached_tokens, 0);
    assert_eq!(cache.len(), first.len() + turn1.generated_ids.len() - 1, "the cache holds what was fed");
    // The next turn's prompt: the whole first turn (answer included) and a new message.
    let second: Vec<u32> = first.iter().chain(&turn1.generated_ids).chain(&[17, 42, 99, 5]).copied().collect();
    let turn2 = generate_cached(&mut chat, &mut cache, &second, &opts, |_| Ok(true)).unwrap();
    assert_eq!(turn2.cached_tokens, first.len() + turn1.generated_ids.len() - 1, "everything fed in turn 1 is reused");
    let mut fresh = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
    let want = generate(&mut fresh, &second, &opts, |_| Ok(true)).unwrap();
    assert_eq!(turn2.generated_ids, want.generated_ids);
    let err = rel_l2_error(&llmc::exec::Backend::logits(&chat).unwrap(), &llmc::exec::Backend::logits(&fresh).unwrap());
    assert!(err <= 1e-6, "logits after the cached turn differ from a fresh run by {err}");
    // A prompt that departs from the cache early reuses only the common prefix.
    let other: Vec<u32> = first[..3].iter().chain(&[7, 8, 9]).copied().collect();
    let turn3 = generate_cached(&mut chat, &mut cache, &other, &opts, |_| Ok(true)).unwrap();
    assert_eq!(turn3.cached_tokens, 3);
    let mut fresh = CpuExecutor::new(&file, SamplingParams::GREEDY).unwrap();
    assert_eq!(turn3.generated_ids, generate(&mut fresh, &other, &opts, |_| Ok(true)).unwrap().generated_ids);
}

fn cpu_plan(dir: &std::path::Path, max_seq_len: usize) -> std::path::PathBuf {
    let plan = dir.join("chat.plan");
    let status = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["compile", fixture_dir("qwen2_tied").to_str().unwrap(), "-o", plan.to_str().unwrap(), "--target", "cpu"])
        .args(["--max-seq-len", &max_seq_len.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    plan
}

/// Runs `llmc chat PLAN args` with `input` on stdin; returns (exit code, stdout, stderr).
fn chat(plan: &std::path::Path, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["chat", plan.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// (prompt tokens, cached, prefilled) of every answered turn, from chat's stderr lines.
fn turns(stderr: &str) -> Vec<(usize, usize, usize)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix('['))
        .map(|l| {
            let n: Vec<usize> = l.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).take(3).map(|s| s.parse().unwrap()).collect();
            (n[0], n[1], n[2])
        })
        .collect()
}

/// Through a pipe: two turns, the second prefilling only its own tokens; `/reset` starts over;
/// end of input exits 0.
#[test]
fn chat_reuses_the_conversation_cache_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let plan = cpu_plan(dir.path(), 128);
    let (code, stdout, stderr) = chat(&plan, &["--max-tokens", "5", "--system", "Be brief."], "hello there\nand again\n/reset\nhello there\n");
    assert_eq!(code, 0, "{stderr}");
    let t = turns(&stderr);
    assert_eq!(t.len(), 3, "three answered turns: {stderr}");
    let (first, second, after_reset) = (t[0], t[1], t[2]);
    assert_eq!(first.1, 0, "nothing cached before the first turn");
    assert!(second.0 > first.0, "the second prompt holds the first turn");
    // The first turn's whole prompt (at least) is reused: only the answer's re-tokenized tail and
    // the new message are prefilled.
    assert!(second.1 >= first.0, "second turn reused {} of the first prompt's {} tokens: {stderr}", second.1, first.0);
    assert!(second.2 < second.0 - first.0 + 6, "second turn prefilled {} tokens: {stderr}", second.2);
    assert_eq!(after_reset.0, first.0, "after /reset the prompt is the first turn's again");
    assert!(stderr.contains("starts over"), "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "one line of answer per turn: {stdout:?}");
}

/// A conversation that outgrows the plan's context is told so and can /reset.
#[test]
fn full_context_is_said_and_reset_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let plan = cpu_plan(dir.path(), 40);
    let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    let input = format!("{long}\n{long}\n{long}\n/reset\nhi\n");
    let (code, _, stderr) = chat(&plan, &["--max-tokens", "4"], &input);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("the context is full") && stderr.contains("/reset"), "{stderr}");
    let t = turns(&stderr);
    assert!(t.last().is_some_and(|last| last.1 == 0), "the turn after /reset is answered from an empty cache: {stderr}");
}

#[test]
fn a_model_without_a_chat_template_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for entry in std::fs::read_dir(fixture_dir("qwen2_tied")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let config = model.join("tokenizer_config.json");
    let mut tc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    tc.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&config, tc.to_string()).unwrap();
    let plan = dir.path().join("plain.plan");
    let ok = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["compile", model.to_str().unwrap(), "-o", plan.to_str().unwrap(), "--target", "cpu"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let (code, _, stderr) = chat(&plan, &[], "hello\n");
    assert_ne!(code, 0);
    let last = stderr.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("error:") && last.contains("no chat template"), "the error is one line, the last: {stderr}");
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
}
