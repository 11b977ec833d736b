//! The `llmc` command line: compile, inspect, run, chat, serve, bench.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressFinish};
use llmc::exec::sampling::SamplingParams;
use llmc::exec::{self, Backend, BackendKind, GenerateOptions};
use llmc::plan::file::PlanFile;
use llmc::plan::{inspect, Target};
use llmc::text::{StreamDecoder, Text};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "llmc",
    version,
    about = "Ahead-of-time compiler and runtime for batch-1 LLM decoding",
    long_about = "Ahead-of-time compiler and runtime for batch-1 LLM decoding.\n\n\
                  `llmc compile` turns a model (a GGUF file, or a Hugging Face directory of safetensors) into a plan \
                  file for this machine's GPU or its CPU; `llmc run` generates text from a plan."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model (a GGUF file or a Hugging Face directory) into a self-contained plan file.
    Compile {
        /// The model: a GGUF file (e.g. qwen2.5-coder-1.5b-instruct-q4_k_m.gguf), or a Hugging
        /// Face directory with config.json, safetensors weights and tokenizer.json.
        model: PathBuf,
        /// Where to write the plan.
        #[arg(short, long)]
        output: PathBuf,
        /// Longest sequence (prompt + generated tokens) the plan can hold; sizes the KV cache.
        /// Default: 4096, or the model's limit if smaller.
        #[arg(long)]
        max_seq_len: Option<usize>,
        /// What the plan runs on: cpu, or a GPU architecture such as sm_90. Default: this
        /// machine's GPU, or the CPU when it has none.
        #[arg(long)]
        target: Option<Target>,
        /// How a GPU plan decodes: `graph` (one kernel per step in a CUDA graph; the default) or
        /// `persistent` (one kernel running a program scheduled onto the SMs now).
        #[arg(long)]
        decode: Option<llmc::compile::Decode>,
        /// SMs to schedule the persistent program for. Default: this machine's GPU when it is
        /// the target, else 132 for sm_90 (H100/H200 SXM) and 108 before.
        #[arg(long)]
        sms: Option<u32>,
        /// How weights are stored: `as-stored` (a GGUF's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K
        /// matrices keep their blocks, 2-3x fewer bytes, dequantized in registers: on the GPU
        /// decode is 3-5% faster than bf16 and prompts ~10% slower) or `bf16` (every weight
        /// dequantized to bf16). Default: as-stored (on the CPU it decodes ~1.15x faster than
        /// bf16); bf16 for --decode persistent, where blocks decode at half the speed.
        #[arg(long)]
        weights: Option<llmc::compile::Weights>,
        /// Quantize every matrix (projections, embedding, LM head) to this block format now:
        /// q8_0, q4_0, q4_k, q5_k or q6_k (rows must be whole blocks: 32 or 256 elements).
        #[arg(long, value_parser = llmc::compile::parse_block_format, conflicts_with = "weights")]
        quantize: Option<llmc::ir::DType>,
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
    /// Generate text from a prompt with a compiled plan, streaming it to stdout as it is
    /// produced (progress and timings go to stderr).
    Run(RunArgs),
    /// Talk with a chat model: each line you type is a user turn, answered as it is generated.
    /// The conversation's KV cache is kept, so a turn prefills only its own tokens. `/reset`
    /// starts over, Ctrl-C stops an answer, Ctrl-D (end of input) exits.
    Chat(ChatArgs),
    /// Serve the plan over HTTP with OpenAI's API (/v1/chat/completions, /v1/completions,
    /// /v1/models, /health), one request generating at a time, the rest queued.
    Serve {
        plan: PathBuf,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// 0 picks a free port (printed on stderr).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Requests admitted at once, the generating one included; more are answered 429.
        #[arg(long, default_value_t = 16)]
        queue: usize,
        /// Which backend runs the plan (default: cuda for a GPU plan, cpu for a CPU plan).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Measure decoding on the GPU (needs one): synthetic prompts, then greedy tokens; reports
    /// ms/token (mean and spread of --reps runs), tok/s, % of the memory roofline, time to first
    /// token and kernels per token.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    plan: PathBuf,
    /// Prompt lengths, comma-separated: after each, decode is measured (--reps runs of --gen
    /// tokens) and its time to first token (best of two).
    #[arg(long, default_value = "32", value_delimiter = ',')]
    prompt_len: Vec<usize>,
    #[arg(long, default_value_t = 128)]
    gen: usize,
    /// Decode runs per prompt length (after one warm-up run): the mean is reported, with the
    /// sample standard deviation.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Feed the prompt token by token through the decode step (the pre-prefill baseline).
    #[arg(long)]
    token_by_token: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// After the run, trace one more decode step and write its timing to this JSON file: every
    /// instruction's of a persistent plan, every block's of a graph plan compiled with
    /// LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" (kernels/common.cuh).
    #[arg(long)]
    trace: Option<PathBuf>,
}

/// How tokens are chosen, and which backend runs the plan (`run` and `chat`).
#[derive(Args)]
struct DecodingArgs {
    /// 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which backend runs the plan (default: cuda for a GPU plan, cpu for a CPU plan).
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
}

impl DecodingArgs {
    /// The plan's backend with these sampling parameters.
    fn open<'f>(&self, file: &'f PlanFile, status: &Status) -> Result<Box<dyn Backend + 'f>> {
        let sampling = SamplingParams { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, seed: self.seed };
        let kind = self.backend.unwrap_or_else(|| BackendKind::for_plan(file));
        if let BackendKind::Cuda = kind {
            status.say("uploading the weights to the GPU...".into());
        }
        Ok(exec::open(file, kind, sampling)?)
    }
}

/// `llmc chat`: a conversation in the terminal.
#[derive(Args)]
struct ChatArgs {
    /// A plan file written by `llmc compile` (its model needs a chat template).
    plan: PathBuf,
    /// System message at the start of the conversation.
    #[arg(long)]
    system: Option<String>,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    #[command(flatten)]
    decoding: DecodingArgs,
}

#[derive(Args)]
struct RunArgs {
    /// A plan file written by `llmc compile`.
    plan: PathBuf,
    /// The text to continue, or with --chat the user's message. Only the generated text is
    /// printed (on stdout), not the prompt.
    #[arg(long, required_unless_present = "prompt_ids")]
    prompt: Option<String>,
    /// The prompt as token ids (comma-separated), bypassing the tokenizer.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["prompt", "chat"])]
    prompt_ids: Option<Vec<u32>>,
    /// Wrap the prompt as a user turn of the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[command(flatten)]
    decoding: DecodingArgs,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Keep generating past EOS: exactly --max-tokens tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Write the logits each generated token was chosen from to FILE: little-endian f32, one
    /// row of vocab-size values per generated token (row 0 after the last prompt token, row k
    /// after generated token k-1).
    #[arg(long, value_name = "FILE")]
    dump_logits: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile { model, output, max_seq_len, target, decode, sms, weights, quantize } => {
            let weights = quantize.map(llmc::compile::Weights::Quantize).or(weights);
            compile(model, output, max_seq_len, target, decode, sms, weights)
        }
        Command::Inspect { plan, json, before_fusion } => inspect_plan(plan, json, before_fusion),
        // Inside the thread pool, the CPU executor's parallel kernels allocate nothing per token.
        Command::Run(args) => rayon::scope(|_| run(args)),
        Command::Chat(args) => rayon::scope(|_| chat(args)),
        Command::Serve { plan, host, port, queue, backend } => {
            llmc::serve::serve(&plan, &llmc::serve::ServeOptions { host, port, queue, backend }).map(|()| 0).map_err(Into::into)
        }
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) if matches!(e.root_cause().downcast_ref(), Some(llmc::Error::Interrupted)) => {
            eprintln!("error: {e:#}");
            std::process::exit(130);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn compile(
    model: PathBuf,
    output: PathBuf,
    max_seq_len: Option<usize>,
    target: Option<Target>,
    decode: Option<llmc::compile::Decode>,
    sms: Option<u32>,
    weights: Option<llmc::compile::Weights>,
) -> Result<i32> {
    let local_sm = llmc::exec::cuda::device_sm().ok();
    let target = target.unwrap_or(local_sm.map_or(Target::Cpu, |sm| Target::Cuda { sm }));
    let decode = decode.unwrap_or_default();
    let weights = weights.unwrap_or(llmc::compile::Weights::default_for(target, decode));
    // Schedule for this machine's GPU when it is the target.
    let sms = sms.or_else(|| (Some(target) == local_sm.map(|sm| Target::Cuda { sm })).then(llmc::exec::cuda::device_sms).and_then(|r| r.ok()));
    let config = llmc::load::config::ModelConfig::from_file(&model.join("config.json")).ok();
    let max_seq_len = max_seq_len.unwrap_or_else(|| config.map_or(4096, |c| c.max_position_embeddings.min(4096)));
    // Ctrl-C stops between tensors: the temporary file is removed, a previous plan survives.
    ctrlc::set_handler(|| llmc::compile::CANCELLED.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let opts = llmc::compile::CompileOptions { max_seq_len, weights, target, decode, sms, progress: true };
    // No "compiling MODEL" context: the errors that concern a file name it already.
    let report = llmc::compile::compile(&model, &output, &opts)?;
    let p = &report.plan;
    eprintln!(
        "wrote {} in {:.1} s: {} weight bytes, {} arena bytes, {}, max_seq_len {}",
        output.display(),
        report.seconds,
        p.weight_bytes,
        p.arena_bytes,
        match &p.program {
            Some(program) => format!("decode as one persistent kernel of {} workers", program.workers()),
            None => format!("{} kernels per token", p.kernels_per_token()),
        },
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

/// What `run` is doing until the first token, on stderr: plain lines in a log or a pipe; on a
/// terminal one spinner line, cleared when the text starts so that it does not sit above it.
struct Status(Option<ProgressBar>);

impl Status {
    fn new() -> Self {
        Status(std::io::stderr().is_terminal().then(|| {
            // Cleared on drop too, so an error is not printed after a stale spinner.
            let bar = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    fn say(&self, msg: String) {
        match &self.0 {
            Some(bar) => bar.set_message(msg),
            None => eprintln!("{msg}"),
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

fn chat(args: ChatArgs) -> Result<i32> {
    let status = Status::new();
    status.say(format!("loading {}...", args.plan.display()));
    let file = PlanFile::open(&args.plan)?;
    let plan = &file.plan;
    let text = Text::new(&plan.tokenizer)?;
    // Fails here, before the first turn, for a model without a chat template.
    text.chat_prompt(args.system.as_deref(), "")?;
    let mut backend = args.decoding.open(&file, &status)?;
    drop(status);
    // Ctrl-C stops the answer at the next token; the conversation goes on.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let terminal = std::io::stdin().is_terminal();
    eprintln!("chatting with {} ({} tokens of context): /reset starts over, Ctrl-C stops an answer, Ctrl-D exits", args.plan.display(), plan.max_seq_len);
    let mut history: Vec<(&str, String)> = args.system.iter().map(|s| ("system", s.clone())).collect();
    let first_turn = history.len();
    let mut cache: Vec<u32> = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut line = String::new();
    loop {
        if terminal {
            eprint!("> ");
        }
        line.clear();
        if std::io::stdin().read_line(&mut line).context("reading the next message")? == 0 {
            return Ok(0);
        }
        let message = line.trim_end_matches(['\n', '\r']);
        if message.trim().is_empty() {
            continue;
        }
        if message.trim() == "/reset" {
            history.truncate(first_turn);
            cache.clear();
            eprintln!("(the conversation starts over)");
            continue;
        }
        history.push(("user", message.to_string()));
        let turns: Vec<(&str, &str)> = history.iter().map(|(role, content)| (*role, content.as_str())).collect();
        let prompt = text.encode(&text.chat_render(&turns)?, false)?;
        let room = plan.max_seq_len.saturating_sub(prompt.len());
        if room == 0 {
            history.pop();
            eprintln!("the context is full ({} tokens with this message, the plan holds {}): type /reset to start over", prompt.len(), plan.max_seq_len);
            continue;
        }
        let opts = GenerateOptions { max_tokens: args.max_tokens.min(room), eos_ids: plan.tokenizer.eos_ids.clone(), max_seq_len: plan.max_seq_len };
        interrupted.store(false, Ordering::SeqCst);
        let mut stream = StreamDecoder::new(&text);
        let generation = exec::generate_cached(backend.as_mut(), &mut cache, &prompt, &opts, |id| {
            let delta = stream.push(id)?;
            if write!(out, "{delta}").and_then(|_| out.flush()).is_err() {
                return Ok(false);
            }
            Ok(!interrupted.load(Ordering::SeqCst))
        })?;
        writeln!(out)?;
        out.flush()?;
        let answer_ids: Vec<u32> = generation.generated_ids.iter().copied().filter(|id| !plan.tokenizer.eos_ids.contains(id)).collect();
        history.push(("assistant", text.decode(&answer_ids)?));
        eprintln!(
            "[{} prompt tokens, {} of them cached, {} prefilled; first token after {:.1} ms; {} tokens at {:.1} tok/s{}]",
            prompt.len(),
            generation.cached_tokens,
            prompt.len() - generation.cached_tokens,
            generation.ttft_ms,
            generation.generated_ids.len(),
            generation.decode_tok_s,
            if interrupted.load(Ordering::SeqCst) { "; stopped" } else { "" }
        );
    }
}

fn run(args: RunArgs) -> Result<i32> {
    let mut status = Status::new();
    status.say(format!("loading {}...", args.plan.display()));
    let file = PlanFile::open(&args.plan)?;
    let plan = &file.plan;
    let text = Text::new(&plan.tokenizer)?;
    let prompt_ids = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(prompt)) if prompt.is_empty() => bail!("the prompt is empty"),
        (None, Some(prompt)) if args.chat => text.encode(&text.chat_prompt(args.system.as_deref(), prompt)?, false)?,
        (None, Some(prompt)) => text.encode(prompt, true)?,
        (None, None) => bail!("give --prompt or --prompt-ids"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty");
    }
    let mut backend = args.decoding.open(&file, &status)?;
    let eos_ids = if args.ignore_eos { Vec::new() } else { plan.tokenizer.eos_ids.clone() };
    let opts = GenerateOptions { max_tokens: args.max_tokens, eos_ids, max_seq_len: plan.max_seq_len };
    let mut dump = match &args.dump_logits {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)),
        None => None,
    };

    // Ctrl-C stops at the next token boundary; what was generated is kept and printed.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let mut stream = StreamDecoder::new(&text);
    let mut out = std::io::stdout().lock();
    let dump_path = args.dump_logits.clone().unwrap_or_default();
    let mut tap;
    let backend: &mut dyn Backend = match dump.as_mut() {
        Some(file) => {
            // From the last prompt token on: the logits each generated token was chosen from.
            let from_pos = prompt_ids.len() - 1;
            let dump_path = &dump_path;
            tap = exec::Tap {
                inner: backend.as_mut(),
                observe: move |backend: &dyn Backend, pos: usize, _| {
                    if pos < from_pos {
                        return Ok(());
                    }
                    let bytes: Vec<u8> = backend.logits()?.iter().flat_map(|x| x.to_le_bytes()).collect();
                    file.write_all(&bytes).map_err(|e| llmc::error::Error::io(dump_path, e))
                },
                // Reading logits back costs a device sync per step: this is for verification.
                // The prompt is prefilled as without the dump (batched on the GPU), so the logits
                // after it are those a user's run computes.
                batched_prefill: true,
            };
            &mut tap
        }
        None => backend.as_mut(),
    };
    status.say(format!("prefilling {} prompt tokens...", prompt_ids.len()));
    let generation = exec::generate(backend, &prompt_ids, &opts, |id| {
        status.clear();
        if !args.json {
            let delta = stream.push(id)?;
            // A closed stdout (e.g. piped to `head`) ends generation quietly.
            if write!(out, "{delta}").and_then(|_| out.flush()).is_err() {
                return Ok(false);
            }
        }
        Ok(!interrupted.load(Ordering::SeqCst))
    })?;
    status.clear();
    if let Some(mut file) = dump {
        file.flush().with_context(|| format!("writing {}", dump_path.display()))?;
    }
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

/// A backend seen through `step` alone, so prefill falls back to one decode step per token.
struct StepOnly<'a>(&'a mut dyn Backend);

impl Backend for StepOnly<'_> {
    fn step(&mut self, token: u32, pos: usize) -> llmc::error::Result<u32> {
        self.0.step(token, pos)
    }
    fn logits(&self) -> llmc::error::Result<Vec<f32>> {
        self.0.logits()
    }
    fn set_sampling(&mut self, sampling: SamplingParams) -> llmc::error::Result<()> {
        self.0.set_sampling(sampling)
    }
    fn top_logprobs(&self, token: u32, k: usize) -> llmc::error::Result<llmc::exec::logprobs::TokenLogprobs> {
        self.0.top_logprobs(token, k)
    }
}

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

fn bench(args: BenchArgs) -> Result<i32> {
    let BenchArgs { plan: path, prompt_len: prompt_lens, gen, reps, token_by_token, json, trace } = args;
    if prompt_lens.is_empty() || prompt_lens.contains(&0) || gen < 2 || reps == 0 {
        bail!("--prompt-len must be at least 1, --gen at least 2 and --reps at least 1");
    }
    let file = PlanFile::open(&path)?;
    let plan = &file.plan;
    let vocab = plan.io.logits.ty.elements();
    let start = std::time::Instant::now();
    let mut cuda = exec::cuda::CudaBackend::new(&file, SamplingParams::GREEDY)?;
    let load_s = start.elapsed().as_secs_f64();
    if trace.is_some() {
        cuda.check_traceable()?;
    }
    let (bandwidth, read_bandwidth) = (cuda.copy_bandwidth()?, cuda.read_bandwidth()?);
    let (weight_bytes, kernels_per_token, short_context) = (cuda.weight_bytes(), cuda.kernels_per_token(), cuda.short_context());
    let mut step_only = StepOnly(&mut cuda);
    let backend: &mut dyn Backend = if token_by_token { &mut step_only } else { step_only.0 };
    // Fixed pseudo-random prompts: token ids are all the bench needs.
    let prompt = |len: usize| (0..len).map(|i| ((i * 7919 + 13) % vocab) as u32).collect::<Vec<u32>>();
    // No EOS, so every run decodes exactly `gen` tokens.
    let opts = GenerateOptions { max_tokens: gen, eos_ids: Vec::new(), max_seq_len: plan.max_seq_len };
    let first_token = GenerateOptions { max_tokens: 1, eos_ids: Vec::new(), max_seq_len: plan.max_seq_len };
    // A warm-up run (the CUDA graph's first replays, the caches), then per prompt length its
    // decode runs and its time to first token, best of two.
    let warm_up = exec::generate(backend, &prompt(prompt_lens[0]), &opts, |_| Ok(true))?;
    let mut by_len = Vec::new();
    for &len in &prompt_lens {
        let ms =
            (0..reps).map(|_| exec::generate(backend, &prompt(len), &opts, |_| Ok(true)).map(|g| 1e3 / g.decode_tok_s)).collect::<Result<Vec<f64>, _>>()?;
        let ttft = (0..2).map(|_| exec::generate(backend, &prompt(len), &first_token, |_| Ok(true)).map(|g| g.ttft_ms)).collect::<Result<Vec<f64>, _>>()?;
        by_len.push((len, ms, ttft.into_iter().fold(f64::MAX, f64::min)));
    }
    if let Some(out) = &trace {
        // One more step after the first prompt and the warm-up's tokens, timestamped in the kernels.
        let pos = (prompt_lens[0] + gen).min(plan.max_seq_len - 1);
        let token = warm_up.generated_ids.last().copied().unwrap_or(0);
        let rows = match &plan.program {
            Some(program) => serde_json::to_string(&exec::cuda::persistent::trace_rows(plan, program, &cuda.traced_step(token, pos)?))?,
            None => serde_json::to_string(&cuda.traced_graph_step(token, pos)?)?,
        };
        std::fs::write(out, rows).with_context(|| format!("writing {}", out.display()))?;
    }
    let roofline_ms = weight_bytes as f64 / bandwidth * 1e3;
    let read_roofline_ms = weight_bytes as f64 / read_bandwidth * 1e3;
    let decode = |ms: &[f64]| {
        let (mean, sd) = mean_sd(ms);
        serde_json::json!({
            "ms_per_token": mean,
            "ms_per_token_sd": sd,
            "ms_per_token_runs": ms,
            "tok_s": 1e3 / mean,
            "roofline_pct": 100.0 * roofline_ms / mean,
            "read_roofline_pct": 100.0 * read_roofline_ms / mean,
        })
    };
    let (first_len, first_ms, first_ttft) = &by_len[0];
    let (ms_per_token, sd) = mean_sd(first_ms);
    let mut report = serde_json::json!({
        "plan": path.display().to_string(),
        "target": plan.target.to_string(),
        "prompt_len": first_len,
        "generated": gen,
        "reps": reps,
        "load_s": load_s,
        "ttft_ms": first_ttft,
        "ttft_ms_by_prompt_len": by_len.iter().map(|(len, _, ttft)| (len.to_string(), serde_json::json!(ttft))).collect::<serde_json::Map<_, _>>(),
        "decode_by_prompt_len": by_len.iter().map(|(len, ms, _)| (len.to_string(), decode(ms))).collect::<serde_json::Map<_, _>>(),
        "weight_bytes": weight_bytes,
        "copy_bandwidth_gb_s": bandwidth / 1e9,
        "roofline_ms_per_token": roofline_ms,
        "read_bandwidth_gb_s": read_bandwidth / 1e9,
        "read_roofline_ms_per_token": read_roofline_ms,
        "kernels_per_token": kernels_per_token,
        "short_context": short_context.map(|(kernels, positions)| serde_json::json!({"kernels_per_token": kernels, "positions": positions})),
        "decode": if plan.program.is_some() { "persistent" } else { "graph" },
        "graphs_per_token": 1,
        "prefill": if token_by_token { "token_by_token" } else { "batched" },
    });
    // The first prompt length's decode at the top level, as before --reps.
    for (key, value) in decode(first_ms).as_object().into_iter().flatten() {
        report[key.as_str()] = value.clone();
    }
    if json {
        println!("{report}");
        return Ok(0);
    }
    println!(
        "{}: {:.3} ms/token, {:.1} tok/s, {:.1}% of roofline ({:.3} ms: {} weight bytes at {:.0} GB/s device copy bandwidth), \
         {:.1}% of the read-only roofline ({:.3} ms at {:.0} GB/s); after {} prompt tokens, mean of {} runs of {} tokens, sd {:.4} ms",
        path.display(),
        ms_per_token,
        1e3 / ms_per_token,
        100.0 * roofline_ms / ms_per_token,
        roofline_ms,
        weight_bytes,
        bandwidth / 1e9,
        100.0 * read_roofline_ms / ms_per_token,
        read_roofline_ms,
        read_bandwidth / 1e9,
        first_len,
        reps,
        gen,
        sd
    );
    for (len, ms, ttft) in &by_len {
        let (mean, sd) = mean_sd(ms);
        println!(
            "  prompt {len}: decode {mean:.3} ms/token (sd {sd:.4}), {:.1} tok/s, {:.1}% of roofline; TTFT {ttft:.2} ms (best of two)",
            1e3 / mean,
            100.0 * roofline_ms / mean
        );
    }
    let short = short_context.map_or(String::new(), |(kernels, positions)| format!(" ({kernels} in another while the context is under {positions} positions)"));
    println!("{kernels_per_token} kernels per token in one CUDA graph{short}; load {load_s:.2} s");
    Ok(0)
}
