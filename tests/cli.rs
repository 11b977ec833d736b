//! The command line as a user sees it: inspect's JSON and text, run's JSON, seeded sampling,
//! progress on stderr, help.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs llmc, which must succeed, and returns (stdout, stderr).
fn llmc_out(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llmc")).args(args).output().unwrap();
    assert!(out.status.success(), "llmc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn llmc(args: &[&str]) -> String {
    llmc_out(args).0
}

fn plan(dir: &Path, fixture: &str) -> PathBuf {
    let out = dir.join(format!("{fixture}.plan"));
    llmc(&["compile", fixture_dir(fixture).to_str().unwrap(), "-o", out.to_str().unwrap(), "--max-seq-len", "64"]);
    out
}

#[test]
fn inspect_reports_fused_and_lowered_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "qwen3_untied");
    let fused: serde_json::Value = serde_json::from_str(&llmc(&["inspect", p.to_str().unwrap(), "--json"])).unwrap();
    let lowered: serde_json::Value = serde_json::from_str(&llmc(&["inspect", p.to_str().unwrap(), "--json", "--before-fusion"])).unwrap();
    for key in ["op_counts", "kernels_per_token", "arena_bytes", "weight_bytes", "max_seq_len", "target"] {
        assert!(fused.get(key).is_some(), "missing {key}");
    }
    assert_eq!(fused["max_seq_len"], 64);
    assert_eq!(fused["target"], "cpu");
    assert_eq!(fused["kernels_per_token"], 3 * 5 + 3);
    for kind in ["cast", "view", "reshape", "unsqueeze"] {
        assert!(fused["op_counts"].get(kind).is_none(), "{kind} after fusion");
        assert!(lowered["op_counts"][kind].as_u64().unwrap() > 0, "{kind} before fusion");
    }
    // Qwen3's q/k norms add two RMSNorms per layer, each with an upcast and a downcast.
    assert_eq!(lowered["op_counts"]["rms_norm_core"], 3 * 4 + 1);
    assert_eq!(lowered["op_counts"]["cast"], 2 * (3 * 4 + 1) + 1 + 2 + 1);
    let text = llmc(&["inspect", p.to_str().unwrap()]);
    assert!(text.contains("qkv_rope heads=4 kv=2 d=32 qk_norm"), "{text}");
}

#[test]
fn run_json_and_seeded_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "llama_untied_scaled");
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["run", p.to_str().unwrap(), "--prompt", "The fox said", "--max-tokens", "12", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&llmc(&args)).unwrap()
    };
    let greedy = run(&[]);
    for key in ["prompt_ids", "generated_ids", "text", "ttft_ms", "decode_tok_s"] {
        assert!(greedy.get(key).is_some(), "missing {key}");
    }
    assert_eq!(greedy["generated_ids"].as_array().unwrap().len(), 12);
    let sampled = |seed: &str| run(&["--temperature", "1.5", "--top-k", "50", "--top-p", "0.95", "--seed", seed])["generated_ids"].clone();
    assert_eq!(sampled("1"), sampled("1"), "same seed, same tokens");
    assert_ne!(sampled("1"), sampled("2"), "another seed, other tokens");
    assert_ne!(sampled("1"), greedy["generated_ids"], "sampling at temperature 1.5 should leave the greedy path");
}

#[test]
fn dump_logits_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in ["qwen2_tied", "qwen3_untied"] {
        let p = plan(dir.path(), fixture);
        let want = reference(fixture);
        let ids: Vec<String> = want.input_ids.iter().map(u32::to_string).collect();
        let dump = dir.path().join(format!("{fixture}.logits"));
        let steps = want.greedy_ids.len() + 1;
        let out: serde_json::Value = serde_json::from_str(&llmc(&[
            "run",
            p.to_str().unwrap(),
            "--prompt-ids",
            &ids.join(","),
            "--max-tokens",
            &steps.to_string(),
            "--ignore-eos",
            "--json",
            "--dump-logits",
            dump.to_str().unwrap(),
        ]))
        .unwrap();
        assert_eq!(out["prompt_ids"], serde_json::json!(want.input_ids), "{fixture}: --prompt-ids bypasses the tokenizer");
        let generated: Vec<u32> = serde_json::from_value(out["generated_ids"].clone()).unwrap();
        assert_eq!(generated.len(), steps, "{fixture}: --ignore-eos generates exactly --max-tokens");
        assert_eq!(generated[..want.greedy_ids.len()], want.greedy_ids[..], "{fixture}: greedy tokens");
        // One row of vocab little-endian f32s per generated token.
        let bytes = std::fs::read(&dump).unwrap();
        let vocab = want.logits_after_greedy.len();
        assert_eq!(bytes.len(), steps * vocab * 4, "{fixture}: dump size");
        let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let rows: Vec<&[f32]> = floats.chunks_exact(vocab).collect();
        // Row 0: after the last prompt token; row 16: after the 16th generated token.
        let err = rel_l2_error(rows[0], want.logits.last().unwrap());
        assert!(err <= 1e-2, "{fixture}: logits after the prompt: relative error {err}");
        let err = rel_l2_error(rows[steps - 1], &want.logits_after_greedy);
        assert!(err <= 1e-2, "{fixture}: logits after {} greedy tokens: relative error {err}", steps - 1);
    }
}

#[test]
fn prompt_and_prompt_ids_are_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "qwen2_tied");
    for args in [vec!["run", p.to_str().unwrap()], vec!["run", p.to_str().unwrap(), "--prompt", "hi", "--prompt-ids", "1,2"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_llmc")).args(&args).output().unwrap();
        assert!(!out.status.success(), "llmc {args:?} should fail");
    }
}

#[test]
fn inspect_lists_kernels_apart_from_buffers_in_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "qwen3_untied");
    for stage in [&[][..], &["--before-fusion"][..]] {
        let text = llmc(&[&["inspect", p.to_str().unwrap()][..], stage].concat());
        let json: serde_json::Value = serde_json::from_str(&llmc(&[&["inspect", p.to_str().unwrap(), "--json"][..], stage].concat())).unwrap();
        // The counts listed under "N kernels per token" add up to N, and no buffer is among them.
        let mut lines = text.lines().skip_while(|l| !l.ends_with(" kernels per token"));
        let heading = lines.next().unwrap_or_else(|| panic!("no kernel count in:\n{text}"));
        let n: usize = heading.rsplit(": ").next().and_then(|t| t.split(' ').next()).and_then(|t| t.parse().ok()).unwrap();
        let kernels: Vec<&str> = lines.take_while(|l| l.starts_with("  ")).collect();
        let sum: usize = kernels.iter().map(|l| l.split_whitespace().last().unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(sum, n, "{text}");
        assert_eq!(json["kernels_per_token"], n, "{text}");
        for buffer in ["weight", "kv_cache", "token_id", "position"] {
            assert!(kernels.iter().all(|l| l.split_whitespace().next() != Some(buffer)), "{buffer} listed as a kernel:\n{text}");
            assert!(text.contains(&format!("  {buffer} ")), "{buffer} missing:\n{text}");
        }
        // One column, however long a name (`linear_residual`, `rms_norm_core`): counts end together.
        let counts: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).filter(|l| l.starts_with("  ")).collect();
        assert!(counts.iter().all(|l| l.len() == counts[0].len()), "misaligned:\n{text}");
    }
}

#[test]
fn progress_is_plain_lines_on_stderr_when_it_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.plan");
    let (stdout, stderr) = llmc_out(&["compile", fixture_dir("qwen2_tied").to_str().unwrap(), "-o", p.to_str().unwrap(), "--max-seq-len", "64"]);
    assert_eq!(stdout, "");
    for line in ["loading ", "writing weights: 100% ", "wrote "] {
        assert!(stderr.lines().any(|l| l.starts_with(line)), "no `{line}` line in:\n{stderr}");
    }
    let (stdout, stderr) = llmc_out(&["run", p.to_str().unwrap(), "--prompt", "The fox said", "--max-tokens", "4", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout holds the JSON alone");
    let prompt_tokens = json["prompt_ids"].as_array().unwrap().len();
    assert!(stderr.contains(&format!("prefilling {prompt_tokens} prompt tokens...")), "{stderr}");
}

#[test]
fn help_names_gguf_and_describes_run() {
    assert!(llmc(&["--help"]).contains("GGUF file"));
    assert!(llmc(&["compile", "--help"]).contains("GGUF file"));
    let run = llmc(&["run", "--help"]);
    assert!(run.contains("<PLAN>") && run.contains("plan file written by `llmc compile`"), "{run}");
    assert!(run.contains("--prompt <PROMPT>") && run.contains("The text to continue"), "{run}");
    assert!(llmc(&["bench", "--help"]).contains("GPU"));
}
