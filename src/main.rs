//! The `llmc` command line: compile, inspect, run.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use llmc::exec::sampling::SamplingParams;
use llmc::exec::{self, Backend, GenerateOptions};
use llmc::plan::file::PlanFile;
use llmc::plan::{inspect, Target};
use llmc::text::{StreamDecoder, Text};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "llmc", version, about = "Ahead-of-time compiler and runtime for batch-1 LLM decoding")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model (Hugging Face directory) into a self-contained plan file.
    Compile {
        /// The model: a directory with config.json, safetensors weights and tokenizer.json.
        model: PathBuf,
        /// Where to write the plan.
        #[arg(short, long)]
        output: PathBuf,
        /// Longest sequence (prompt + generated tokens) the plan can hold; sizes the KV cache.
        /// Default: 4096, or the model's limit if smaller.
        #[arg(long)]
        max_seq_len: Option<usize>,
        /// What the plan runs on: cpu, or a GPU architecture such as sm_90.
        #[arg(long, default_value = "cpu")]
        target: Target,
    },
    /// Describe a plan: op counts, kernels per token, memory, and the fused schedule.
    Inspect {
        plan: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Report the graph as lowered, before any fusion pass.
        #[arg(long)]
        before_fusion: bool,
    },
    /// Generate text from a prompt, streaming it as it is produced.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    plan: PathBuf,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user turn of the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which backend runs the plan.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendKind,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendKind {
    Cpu,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile { model, output, max_seq_len, target } => compile(model, output, max_seq_len, target),
        Command::Inspect { plan, json, before_fusion } => inspect_plan(plan, json, before_fusion),
        // Inside the thread pool, the CPU executor's parallel kernels allocate nothing per token.
        Command::Run(args) => rayon::scope(|_| run(args)),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn compile(model: PathBuf, output: PathBuf, max_seq_len: Option<usize>, target: Target) -> Result<i32> {
    let config = llmc::load::config::ModelConfig::from_file(&model.join("config.json")).ok();
    let max_seq_len = max_seq_len.unwrap_or_else(|| config.map_or(4096, |c| c.max_position_embeddings.min(4096)));
    let opts = llmc::compile::CompileOptions { max_seq_len, target, progress: std::io::stderr().is_terminal() };
    let report = llmc::compile::compile(&model, &output, &opts).with_context(|| format!("compiling {}", model.display()))?;
    let p = &report.plan;
    eprintln!(
        "wrote {} in {:.1} s: {} weight bytes, {} arena bytes, {} kernels per token, max_seq_len {}",
        output.display(),
        report.seconds,
        p.weight_bytes,
        p.arena_bytes,
        p.kernels_per_token(),
        p.max_seq_len
    );
    Ok(0)
}

fn inspect_plan(path: PathBuf, json: bool, before_fusion: bool) -> Result<i32> {
    let file = PlanFile::open(&path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&inspect::json(&file.plan, before_fusion))?);
    } else {
        print!("{}", inspect::text(&file.plan, before_fusion));
    }
    Ok(0)
}

fn run(args: RunArgs) -> Result<i32> {
    let file = PlanFile::open(&args.plan)?;
    let plan = &file.plan;
    let text = Text::new(&plan.tokenizer)?;
    if args.prompt.is_empty() {
        bail!("the prompt is empty");
    }
    let prompt_ids = if args.chat {
        text.encode(&text.chat_prompt(args.system.as_deref(), &args.prompt)?, false)?
    } else {
        text.encode(&args.prompt, true)?
    };
    let sampling = SamplingParams { temperature: args.temperature, top_k: args.top_k, top_p: args.top_p, seed: args.seed };
    let mut backend: Box<dyn Backend> = match args.backend {
        BackendKind::Cpu => Box::new(exec::cpu::CpuExecutor::new(&file, sampling)?),
    };
    let opts = GenerateOptions { max_tokens: args.max_tokens, eos_ids: plan.tokenizer.eos_ids.clone(), max_seq_len: plan.max_seq_len };

    // Ctrl-C stops at the next token boundary; what was generated is kept and printed.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let mut stream = StreamDecoder::new(&text);
    let mut out = std::io::stdout().lock();
    let generation = exec::generate(backend.as_mut(), &prompt_ids, &opts, |id| {
        if !args.json {
            let delta = stream.push(id)?;
            // A closed stdout (e.g. piped to `head`) ends generation quietly.
            if write!(out, "{delta}").and_then(|_| out.flush()).is_err() {
                return Ok(false);
            }
        }
        Ok(!interrupted.load(Ordering::SeqCst))
    })?;
    let generated_text = text.decode(&generation.generated_ids)?;
    if args.json {
        let json = serde_json::json!({
            "prompt_ids": generation.prompt_ids,
            "generated_ids": generation.generated_ids,
            "text": generated_text,
            "ttft_ms": generation.ttft_ms,
            "decode_tok_s": generation.decode_tok_s,
            "stopped_at_eos": generation.stopped_at_eos,
        });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out)?;
        out.flush()?;
        eprintln!(
            "[{} prompt tokens, first token after {:.1} ms; {} tokens at {:.1} tok/s{}]",
            generation.prompt_ids.len(),
            generation.ttft_ms,
            generation.generated_ids.len(),
            generation.decode_tok_s,
            if interrupted.load(Ordering::SeqCst) { "; interrupted" } else { "" }
        );
    }
    Ok(if interrupted.load(Ordering::SeqCst) { 130 } else { 0 })
}
