//! Bad input gets one clear error line on stderr (after any progress lines) and a non-zero exit,
//! never a panic, and never a plan file at the output path. Each case runs the real `llmc` binary.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs llmc and returns its error line, asserting the failure shape every case shares: exit 1,
/// no panic, one error line and it is the last (progress lines such as `loading ...` come first),
/// and no part of it said twice.
fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_llmc")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "llmc {args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "llmc {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "llmc {args:?} panicked: {stderr}");
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("error")).count(), 1, "one error line expected, got: {stderr}");
    let error = lines.last().copied().unwrap_or("");
    assert!(error.starts_with("error: "), "the error should be the last line: {stderr}");
    let parts: Vec<&str> = error.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(!parts[..i].contains(part), "`{part}` said twice: {error}");
    }
    error.to_string()
}

/// A copy of the qwen2 fixture that a test may break.
fn model_copy(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixture_dir("qwen2_tied")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    model
}

/// Compile must fail with `needle` in the message and leave no file at the output path.
fn compile_fails(model: &Path, needle: &str) -> String {
    compile_with_fails(model, &[], needle)
}

/// As [`compile_fails`], with more arguments for `llmc compile`.
fn compile_with_fails(model: &Path, args: &[&str], needle: &str) -> String {
    let out = model.parent().unwrap().join("out.plan");
    let err = fails(&[&["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()], args].concat());
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!out.exists(), "a failed compile left {}", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(model.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".llmc-plan-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary plan left behind");
    err
}

fn edit_config(model: &Path, f: impl Fn(&mut serde_json::Value)) {
    let path = model.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut json);
    std::fs::write(path, json.to_string()).unwrap();
}

/// Rewrites model.safetensors with its header replaced by `f(header)`.
fn edit_safetensors_header(model: &Path, f: impl Fn(&mut serde_json::Value)) {
    let path = model.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    f(&mut header);
    let mut text = header.to_string().into_bytes();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn missing_model_directory() {
    compile_fails(&tempfile::tempdir().unwrap().path().join("nope"), "no such file or directory");
}

#[test]
fn missing_plan_is_said_once() {
    let err = fails(&["run", "no/such.plan", "--prompt", "hi"]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn truncated_gguf_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("cut.gguf");
    // The magic and version 3, then one byte of the 8-byte tensor count.
    std::fs::write(&gguf, b"GGUF\x03\x00\x00\x00\x01").unwrap();
    let err = compile_fails(&gguf, "malformed GGUF file: truncated: tensor count");
    assert_eq!(err.matches("truncated").count(), 1, "{err}");
}

#[test]
fn missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    std::fs::remove_file(model.join("config.json")).unwrap();
    compile_fails(&model, "config.json");
}

#[test]
fn malformed_config() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    std::fs::write(model.join("config.json"), "{\"architectures\": [\"Qwen2ForCausalLM\"], ").unwrap();
    compile_fails(&model, "malformed config.json");
}

#[test]
fn unsupported_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_config(&model, |c| c["architectures"] = serde_json::json!(["MixtralForCausalLM"]));
    compile_fails(&model, "MixtralForCausalLM");
}

#[test]
fn sliding_window_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_config(&model, |c| c["use_sliding_window"] = serde_json::json!(true));
    compile_fails(&model, "sliding-window");
}

/// A shape the CUDA kernels cannot run is refused by `llmc compile --target sm_90` with its reason,
/// before NVRTC runs and before any weight is read (the edited configs no longer match the
/// fixture's weights, which are never reached).
fn gpu_compile_refuses(edit: impl Fn(&mut serde_json::Value), args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_config(&model, edit);
    let err = compile_with_fails(&model, &[&["--target", "sm_90"], args].concat(), needle);
    assert!(err.starts_with("error: unsupported model: "), "{err}");
}

#[test]
fn a_gqa_group_larger_than_the_attention_kernel_takes() {
    gpu_compile_refuses(
        |c| {
            c["num_attention_heads"] = 36.into();
            c["head_dim"] = 16.into();
        },
        &[],
        "layers.0.attn (attention): 36 query heads over 2 KV heads (at most 8 per KV head)",
    );
}

#[test]
fn a_head_dim_larger_than_prefill_attention_takes() {
    gpu_compile_refuses(|c| c["head_dim"] = 256.into(), &[], "prefill of layers.0.attn (attention): 4 query heads over 2 KV heads of dim 256");
}

#[test]
fn a_hidden_size_not_a_multiple_of_8() {
    gpu_compile_refuses(
        |c| {
            c["hidden_size"] = 60.into();
            c["head_dim"] = 16.into();
        },
        &[],
        "the CUDA GEMV needs an input of the weight's width, divisible by 8: x has 60 elements, rows 60",
    );
}

#[test]
fn rows_wider_than_the_gemv_shared_memory() {
    gpu_compile_refuses(|c| c["intermediate_size"] = 29568.into(), &[], "rows of 29568 do not fit the GEMV's 98304 bytes of shared memory");
}

#[test]
fn a_context_longer_than_the_attention_splits_cover() {
    gpu_compile_refuses(
        |c| c["max_position_embeddings"] = 131072.into(),
        &["--max-seq-len", "70000"],
        "a context of 70000 positions (at most 65536; compile with a smaller --max-seq-len)",
    );
}

#[test]
fn missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_safetensors_header(&model, |h| {
        // Renamed rather than removed: the header's offsets must stay contiguous to be valid.
        let t = h.as_object_mut().unwrap().remove("model.layers.1.mlp.up_proj.weight").unwrap();
        h["model.layers.1.mlp.renamed.weight"] = t;
    });
    compile_fails(&model, "model.layers.1.mlp.up_proj.weight");
}

#[test]
fn tensor_of_wrong_shape() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_safetensors_header(&model, |h| {
        let t = &mut h["model.layers.0.self_attn.o_proj.weight"];
        let rows = t["shape"][0].as_u64().unwrap();
        t["shape"] = serde_json::json!([rows * 2, t["shape"][1].as_u64().unwrap() / 2]);
    });
    compile_fails(&model, "shape");
}

#[test]
fn tensor_of_wrong_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    edit_safetensors_header(&model, |h| {
        let t = &mut h["model.norm.weight"];
        t["dtype"] = serde_json::json!("I16");
    });
    compile_fails(&model, "I16");
}

#[test]
fn truncated_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let path = model.join("model.safetensors");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    compile_fails(&model, "malformed safetensors");
}

#[test]
fn lying_safetensors_header() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let path = model.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    compile_fails(&model, "malformed safetensors");
}

#[test]
fn missing_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    compile_fails(&model, "tokenizer.json");
}

#[test]
fn unwritable_output_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no/such/dir/out.plan");
    let err = fails(&["compile", fixture_dir("qwen2_tied").to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(err.contains("no/such/dir"), "{err}");
}

#[test]
fn failed_compile_keeps_the_previous_plan() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let out = dir.path().join("out.plan");
    let ok = Command::new(env!("CARGO_BIN_EXE_llmc")).args(["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()]).output().unwrap();
    assert!(ok.status.success());
    let before = std::fs::read(&out).unwrap();
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    fails(&["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), before, "the previous plan must survive a failed compile");
}

/// A good plan of the qwen2 fixture in `dir`.
fn good_plan(dir: &Path) -> PathBuf {
    let out = dir.join("good.plan");
    let status = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["compile", fixture_dir("qwen2_tied").to_str().unwrap(), "-o", out.to_str().unwrap(), "--max-seq-len", "32"])
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    out
}

#[test]
fn corrupted_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let mut bytes = std::fs::read(&plan).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&plan, bytes).unwrap();
    let err = fails(&["run", plan.to_str().unwrap(), "--prompt", "hi"]);
    assert!(err.contains("checksum mismatch"), "{err}");
}

#[test]
fn truncated_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let len = std::fs::metadata(&plan).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&plan).unwrap().set_len(len - 100).unwrap();
    let err = fails(&["inspect", plan.to_str().unwrap()]);
    assert!(err.contains("checksum mismatch"), "{err}");
    std::fs::write(&plan, b"LLMC").unwrap();
    let err = fails(&["inspect", plan.to_str().unwrap()]);
    assert!(err.contains("not an llmc plan"), "{err}");
}

#[test]
fn plan_of_another_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let mut bytes = std::fs::read(&plan).unwrap();
    bytes[8..12].copy_from_slice(&999u32.to_le_bytes());
    std::fs::write(&plan, bytes).unwrap();
    let err = fails(&["run", plan.to_str().unwrap(), "--prompt", "hi"]);
    assert!(err.contains("plan format 999") && err.contains("recompile"), "{err}");
}

#[test]
fn prompt_longer_than_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let long = "word ".repeat(40);
    let err = fails(&["run", plan.to_str().unwrap(), "--prompt", &long, "--max-tokens", "4"]);
    assert!(err.contains("exceeds the compiled context of 32"), "{err}");
    let err = fails(&["run", plan.to_str().unwrap(), "--prompt", "hi", "--max-tokens", "100"]);
    assert!(err.contains("--max-seq-len"), "{err}");
}

#[test]
fn bench_settings_that_measure_nothing() {
    // Refused before the plan is opened (so on a machine without a GPU too).
    for args in [["--reps", "0"], ["--gen", "1"], ["--prompt-len", "0"]] {
        let err = fails(&[&["bench", "missing.plan"], &args[..]].concat());
        assert!(err.contains("--reps at least 1"), "{err}");
    }
}

/// On a machine without an NVIDIA driver (CI), a GPU plan: `run` names the CPU executor, which
/// runs every plan; `bench`, which has no other backend, says only what is missing.
#[test]
fn a_gpu_plan_without_a_gpu() {
    if Path::new("/proc/driver/nvidia").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("gpu.plan");
    let (fixture, out) = (fixture_dir("qwen2_tied"), plan.to_str().unwrap());
    let compiled = Command::new(env!("CARGO_BIN_EXE_llmc")).args(["compile", fixture.to_str().unwrap(), "-o", out, "--target", "sm_90"]).output().unwrap();
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let err = fails(&["run", out, "--prompt", "hi"]);
    assert!(err.contains("no NVIDIA driver") && err.contains("--backend cpu"), "{err}");
    let err = fails(&["bench", out]);
    assert!(err.contains("no NVIDIA driver") && !err.contains("--backend"), "{err}");
}

#[test]
fn empty_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let err = fails(&["run", plan.to_str().unwrap(), "--prompt", ""]);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn not_a_plan() {
    let err = fails(&["run", fixture_dir("qwen2_tied").join("config.json").to_str().unwrap(), "--prompt", "hi"]);
    assert!(err.contains("not an llmc plan"), "{err}");
}

#[test]
fn invalid_utf8_prompt() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let plan = good_plan(dir.path());
    let prompt = std::ffi::OsStr::from_bytes(b"caf\xe9 au lait");
    let out = Command::new(env!("CARGO_BIN_EXE_llmc")).arg("run").arg(&plan).arg("--prompt").arg(prompt).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.lines().next().unwrap_or("").contains("invalid UTF-8"), "{stderr}");
}
