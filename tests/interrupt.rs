//! Ctrl-C as a user sends it, SIGINT to the real `llmc` binary: `run` stops at a token boundary
//! with the text generated so far printed and exits 130; `compile` stops writing, removes its
//! temporary file, leaves a previous plan at the output path as it was and exits 130.

mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn llmc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmc"))
}

fn ctrl_c(child: &Child) {
    // SAFETY: kill(2) on our own child, not yet waited for, so its pid is not reused.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0, "sending SIGINT");
}

/// Waits for `child` to exit and returns (exit code, stderr); kills it and fails after `limit`.
/// The code is None when a signal ended it, e.g. SIGINT with no handler installed.
fn finish(child: &mut Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("llmc did not stop within {limit:?} of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "llmc panicked: {stderr}");
    (status.code(), stderr)
}

const CONTEXT: usize = 100_000;
const MAX_TOKENS: usize = 99_000;

#[test]
fn ctrl_c_during_generation_prints_the_text_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_with_context("qwen2_tied", dir.path(), CONTEXT);
    let plan = dir.path().join("long.plan");
    let compiled = llmc()
        .args(["compile", model.to_str().unwrap(), "-o", plan.to_str().unwrap(), "--target", "cpu", "--max-seq-len", &CONTEXT.to_string()])
        .output()
        .unwrap()
        .status;
    assert!(compiled.success());
    // 99,000 tokens, each attending over a context that grows to 99,000 positions, take many
    // minutes: Ctrl-C lands long before the end (a run that finished would exit 0 and fail).
    let args = ["run", plan.to_str().unwrap(), "--prompt", "The fox said", "--ignore-eos"];
    let mut child = llmc().args(args).args(["--max-tokens", &MAX_TOKENS.to_string()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Drained on its own thread: on a full pipe, llmc would block in a write before it looks at
    // the Ctrl-C flag.
    let mut stdout = child.stdout.take().unwrap();
    let (first_text, got_text) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut all, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
            let _ = first_text.send(());
        }
        all
    });
    got_text.recv_timeout(Duration::from_secs(60)).expect("no generated text within 60 s");
    ctrl_c(&child);
    let (code, stderr) = finish(&mut child, Duration::from_secs(30));
    let printed = String::from_utf8(reader.join().unwrap()).unwrap();
    assert_eq!(code, Some(130), "{stderr}");
    // The summary line: "[N prompt tokens, first token after X ms; M tokens at Y tok/s; interrupted]".
    assert!(stderr.contains("; interrupted]"), "{stderr}");
    let generated: usize =
        stderr.split("; ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no token count in: {stderr}"));
    assert!((1..MAX_TOKENS).contains(&generated), "{generated} tokens generated");
    assert!(printed.len() > 1 && printed.ends_with('\n'), "printed: {printed:?}");
    // Greedy decoding is deterministic: an uninterrupted run of exactly that many tokens prints
    // the same text, so every token generated before the Ctrl-C was printed, and nothing else.
    let whole = llmc().args(args).args(["--max-tokens", &generated.to_string()]).output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    assert_eq!(printed, String::from_utf8(whole.stdout).unwrap(), "text of an interrupted run of {generated} tokens");
}

/// A Qwen2 model of `layers` layers of hidden size 1024 (22 MB each) with all-zero bf16 weights,
/// its safetensors file written sparse so the weights take no disk; the fixture's tokenizer.
fn synthetic_model(dir: &Path, layers: usize) -> PathBuf {
    let (hidden, inter, heads, kv_heads, vocab) = (1024, 2816, 16, 2, 272);
    let model = dir.join("synthetic");
    std::fs::create_dir_all(&model).unwrap();
    for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(fixture_dir("qwen2_tied").join(name), model.join(name)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture_dir("qwen2_tied").join("config.json")).unwrap()).unwrap();
    config["hidden_size"] = hidden.into();
    config["intermediate_size"] = inter.into();
    config["num_attention_heads"] = heads.into();
    config["num_key_value_heads"] = kv_heads.into();
    config["num_hidden_layers"] = layers.into();
    config["max_window_layers"] = layers.into();
    config["layer_types"] = vec!["full_attention"; layers].into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();

    let (q, kv) = (hidden, kv_heads * hidden / heads);
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![vocab, hidden]), ("model.norm.weight".to_string(), vec![hidden])];
    for l in 0..layers {
        let p = format!("model.layers.{l}.");
        for (name, shape) in [
            ("input_layernorm.weight", vec![hidden]),
            ("post_attention_layernorm.weight", vec![hidden]),
            ("self_attn.q_proj.weight", vec![q, hidden]),
            ("self_attn.q_proj.bias", vec![q]),
            ("self_attn.k_proj.weight", vec![kv, hidden]),
            ("self_attn.k_proj.bias", vec![kv]),
            ("self_attn.v_proj.weight", vec![kv, hidden]),
            ("self_attn.v_proj.bias", vec![kv]),
            ("self_attn.o_proj.weight", vec![hidden, q]),
            ("mlp.gate_proj.weight", vec![inter, hidden]),
            ("mlp.up_proj.weight", vec![inter, hidden]),
            ("mlp.down_proj.weight", vec![hidden, inter]),
        ] {
            shapes.push((format!("{p}{name}"), shape));
        }
    }
    let (mut header, mut offset) = (serde_json::Map::new(), 0usize);
    for (name, shape) in shapes {
        let bytes = 2 * shape.iter().product::<usize>();
        header.insert(name, serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}));
        offset += bytes;
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    let path = model.join("model.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len((bytes.len() + offset) as u64).unwrap();
    model
}

fn temporary_plans(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(".llmc-plan-")).collect()
}

#[test]
fn ctrl_c_during_compile_keeps_the_previous_plan_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("model.plan");
    let compile = |model: &Path| {
        let mut cmd = llmc();
        cmd.args(["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--target", "cpu", "--max-seq-len", "64"]);
        cmd
    };
    assert!(compile(&fixture_dir("qwen2_tied")).output().unwrap().status.success());
    let previous = std::fs::read(&out).unwrap();

    let model = synthetic_model(dir.path(), 32);
    let mut child = compile(&model).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Ctrl-C as soon as the temporary plan exists, i.e. once the weights are being written: the
    // 700 MB take hundreds of ms next to the few ms the signal takes to land. A compile that
    // finished first would exit 0 and fail the test.
    let start = Instant::now();
    while temporary_plans(&out_dir).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the compile ended before it started writing the plan");
        assert!(start.elapsed() < Duration::from_secs(60), "no temporary plan after 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    ctrl_c(&child);
    let (code, stderr) = finish(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(temporary_plans(&out_dir), Vec::<String>::new(), "temporary plan left behind");
    assert!(std::fs::read(&out).unwrap() == previous, "the previous plan changed");
}
