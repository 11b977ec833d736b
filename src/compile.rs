//! `llmc compile`: load -> lower -> passes -> arena -> plan file, with progress on stderr.

use crate::error::{format_bytes, Result};
use crate::ir::{DType, LayerWeight, WeightId};
use crate::load;
use crate::load::WeightSource;
use crate::plan::{self, file, Target, WeightFormats};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// How a GPU plan decodes: one kernel per step in a CUDA graph, or one persistent kernel running
/// a program scheduled at compile time (`plan::program`). The graph is the default until the
/// persistent kernel is measured faster (README, "Decode paths": on an H200 it is slower today).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decode {
    #[default]
    Graph,
    Persistent,
}

impl std::str::FromStr for Decode {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "graph" => Ok(Decode::Graph),
            "persistent" => Ok(Decode::Persistent),
            _ => Err(crate::error::Error::Input(format!("unknown decode path `{s}` (use graph or persistent)"))),
        }
    }
}

/// How weights are stored in the plan (`llmc compile --weights`, `--quantize`). The library's
/// default is bf16; `llmc compile` picks [`Weights::default_for`] its target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weights {
    /// A GGUF's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K matrices keep their blocks (read as stored,
    /// dequantized in registers); everything else becomes bf16.
    AsStored,
    /// Every weight dequantized to bf16.
    #[default]
    Bf16,
    /// Every matrix (projections, embedding, LM head) quantized to this block format now.
    Quantize(DType),
}

impl Weights {
    /// What `llmc compile` stores when neither `--weights` nor `--quantize` is given: a GGUF's
    /// blocks as stored for the GPU's graph decode (H200, Qwen2.5-1.5B-shape Q4_K_M file: 869
    /// against 826 tok/s, 19.6 against 17.6 ms to the first token of 1,024, a third of the
    /// bytes; bench/results/2026-12-01-h200-ttft-files.log) and for the CPU executor (the real
    /// Q4_K_M model on 2 cores, both loops prefetching: 8.1-8.8 against 7.2-7.6 tok/s for a
    /// third of the bytes, the first token of a 41-token chat prompt 3-5% later;
    /// bench/results/2026-12-02-cpu-prefetch.log);
    /// bf16 for the persistent kernel, whose block-format steps run with 8 warps an SM where the
    /// `_q` kernels want 16 (Q4_K_M file 2.10 ms/token against 1.154 on the graph path,
    /// bench/results/2026-12-01-h200-persistent-q.log).
    pub fn default_for(target: Target, decode: Decode) -> Weights {
        match (target, decode) {
            (Target::Cuda { .. }, Decode::Persistent) => Weights::Bf16,
            _ => Weights::AsStored,
        }
    }
}

impl std::str::FromStr for Weights {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "as-stored" => Ok(Weights::AsStored),
            "bf16" => Ok(Weights::Bf16),
            _ => Err(crate::error::Error::Input(format!("unknown weight storage `{s}` (use as-stored or bf16)"))),
        }
    }
}

/// A block format named as `--quantize` takes it (q8_0, q4_0, q4_k, q5_k, q6_k).
pub fn parse_block_format(s: &str) -> Result<DType> {
    DType::parse(s).filter(|d| d.is_block_format()).ok_or_else(|| {
        let names: Vec<&str> = DType::BLOCK_FORMATS.iter().map(|d| d.name()).collect();
        crate::error::Error::Input(format!("unknown block format `{s}` (use {})", names.join(", ")))
    })
}

/// The matrices of a model, which may be stored in a block format (norms and biases never are).
fn matrices(config: &crate::load::config::ModelConfig) -> Vec<WeightId> {
    use LayerWeight::*;
    let mut ids = vec![WeightId::Embed];
    if !config.tie_word_embeddings {
        ids.push(WeightId::LmHead);
    }
    for l in 0..config.num_layers as u32 {
        ids.extend([QProj, KProj, VProj, OProj, GateProj, UpProj, DownProj].map(|w| WeightId::Layer(l, w)));
    }
    ids
}

/// Quantizes a float source's matrices to one block format as compile writes them.
struct Quantizing<'a> {
    inner: &'a dyn WeightSource,
    dtype: DType,
}

impl WeightSource for Quantizing<'_> {
    fn tensor(&self, id: WeightId) -> Result<crate::load::SourceTensor<'_>> {
        self.inner.tensor(id)
    }
    fn block_format(&self, _id: WeightId) -> Option<DType> {
        Some(self.dtype)
    }
    fn blocks(&self, id: WeightId) -> Result<std::borrow::Cow<'_, [u8]>> {
        let values = self.inner.tensor(id)?.data.map_floats(&id.to_string(), |x| x)?;
        Ok(crate::quant::quantize(self.dtype, &values).into())
    }
}

/// The block format of each matrix the plan keeps in one, checked: every row whole blocks.
fn weight_formats(config: &crate::load::config::ModelConfig, source: &dyn WeightSource, weights: Weights) -> Result<WeightFormats> {
    let mut formats = WeightFormats::new();
    if weights == Weights::Bf16 {
        return Ok(formats);
    }
    for id in matrices(config) {
        let Some(dtype) = source.block_format(id) else { continue };
        let k = crate::load::expected_shape(config, id)[1];
        crate::quant::check_row_length(dtype, &id.to_string(), k)?;
        formats.insert(id, dtype);
    }
    Ok(formats)
}

pub struct CompileOptions {
    pub max_seq_len: usize,
    pub weights: Weights,
    pub target: Target,
    pub decode: Decode,
    /// SMs the persistent program is scheduled for (`exec::cuda::persistent::default_sms` when None).
    pub sms: Option<u32>,
    /// Report progress on stderr: a line per stage, then the weights as a bar on a terminal, or
    /// as a line per quarter elsewhere (a log or a pipe would show nothing of a bar until the
    /// end). Off for tests.
    pub progress: bool,
}

/// Set by the CLI's Ctrl-C handler: a compile in progress stops between tensors, removes its
/// temporary file and leaves the destination as it was. Ctrl-C is process-wide, and so is this.
pub static CANCELLED: AtomicBool = AtomicBool::new(false);

/// What a compile produced, for the summary line.
pub struct CompileReport {
    pub plan: plan::Plan,
    pub seconds: f64,
}

pub fn compile(model_path: &Path, output: &Path, opts: &CompileOptions) -> Result<CompileReport> {
    let start = Instant::now();
    let say = |msg: String| {
        if opts.progress {
            eprintln!("{msg}");
        }
    };
    say(format!("loading {}...", model_path.display()));
    let model = load::open(model_path)?;
    let quantizing;
    let source: &dyn WeightSource = match opts.weights {
        Weights::Quantize(dtype) => {
            quantizing = Quantizing { inner: model.weights.as_ref(), dtype };
            &quantizing
        }
        _ => model.weights.as_ref(),
    };
    let formats = weight_formats(&model.config, source, opts.weights)?;
    let mut plan = plan::build_with_formats(&model.config, model.tokenizer.clone(), opts.max_seq_len, opts.target, &formats)?;
    match (opts.target, opts.decode) {
        (Target::Cuda { sm }, decode) => {
            let sms = opts.sms.unwrap_or_else(|| crate::exec::cuda::persistent::default_sms(sm));
            // Refuses, before any weight is written, a shape the kernels cannot run.
            crate::exec::cuda::launch_shapes(&plan, sms)?;
            if decode == Decode::Persistent {
                plan.program = Some(crate::exec::cuda::persistent::schedule(&plan, sms)?);
            }
            say(format!("compiling the CUDA kernels for sm_{sm}..."));
            let persistent_blocks = decode == Decode::Persistent && plan.weights.iter().any(|w| w.ty.dtype.is_block_format());
            plan.kernels = Some(crate::kernels::compile(sm, persistent_blocks)?);
        }
        (Target::Cpu, Decode::Persistent) => {
            return Err(crate::error::Error::Input("--decode persistent needs a GPU target (--target sm_XX)".into()));
        }
        (Target::Cpu, Decode::Graph) => {}
    }
    let total = plan.weight_bytes;
    say(format!("writing {} of weights to {}...", format_bytes(total), output.display()));
    let on_terminal = std::io::stderr().is_terminal();
    let bar = if opts.progress && on_terminal { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("writing weights");
    let quarters_said = AtomicU64::new(0);
    let report = |done: u64| {
        bar.set_position(done);
        let quarters = done * 4 / total.max(1);
        if opts.progress && !on_terminal && quarters_said.fetch_max(quarters, Ordering::Relaxed) < quarters {
            eprintln!("writing weights: {}% ({} of {})", quarters * 25, format_bytes(done), format_bytes(total));
        }
    };
    let go_on = |done: u64| {
        report(done);
        !CANCELLED.load(Ordering::SeqCst)
    };
    file::write(&plan, source, output, &go_on)?;
    // The count of bytes written leaves out the alignment padding counted in `total`.
    report(total);
    bar.finish_and_clear();
    Ok(CompileReport { plan, seconds: start.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_default_to_as_stored_where_blocks_decode_faster() {
        assert_eq!(Weights::default_for(Target::Cuda { sm: 90 }, Decode::Graph), Weights::AsStored);
        assert_eq!(Weights::default_for(Target::Cuda { sm: 80 }, Decode::Graph), Weights::AsStored);
        assert_eq!(Weights::default_for(Target::Cuda { sm: 90 }, Decode::Persistent), Weights::Bf16);
        assert_eq!(Weights::default_for(Target::Cpu, Decode::Graph), Weights::AsStored);
    }
}
