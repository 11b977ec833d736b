//! Running a plan: the backends (the CPU executor; the CUDA runtime), and the token loop they
//! share: prefill the prompt, then decode until EOS or the token budget, streaming each token.

pub mod cpu;
pub mod cuda;
pub mod logprobs;
pub mod sampling;

use crate::error::{Error, Result};
use crate::plan::file::PlanFile;
use crate::plan::Target;
use logprobs::TokenLogprobs;
use sampling::SamplingParams;
use std::time::Instant;

/// One decode step at a time: feed `token` at position `pos`, get the sampled next token.
pub trait Backend {
    fn step(&mut self, token: u32, pos: usize) -> Result<u32>;
    /// Runs prompt `tokens` at positions `start..start + tokens.len()` (filling the KV cache)
    /// and returns the token sampled after the last one; `logits` then holds that row's logits.
    /// Backends batch the tokens (weights read once per chunk); this default steps through them.
    fn prefill(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        let mut next = 0;
        for (i, &token) in tokens.iter().enumerate() {
            next = self.step(token, start + i)?;
        }
        Ok(next)
    }
    /// The f32 logits of the last step.
    fn logits(&self) -> Result<Vec<f32>>;
    /// How the following steps choose their token (a server's requests each bring their own).
    fn set_sampling(&mut self, sampling: SamplingParams) -> Result<()>;
    /// The log-probability of `token` and the `k` most likely tokens under the last step's
    /// logits, computed where the logits are (only k + 1 values leave the device).
    fn top_logprobs(&self, token: u32, k: usize) -> Result<TokenLogprobs>;
}

/// Which backend runs a plan.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BackendKind {
    Cpu,
    Cuda,
}

impl BackendKind {
    /// The default: the CUDA runtime for a GPU plan, the CPU executor for a CPU plan.
    pub fn for_plan(file: &PlanFile) -> BackendKind {
        if file.plan.target == Target::Cpu {
            BackendKind::Cpu
        } else {
            BackendKind::Cuda
        }
    }
}

/// The `kind` backend running `file`, choosing tokens with `sampling`. Where no GPU can run it,
/// the error names the CPU executor, which runs every plan.
pub fn open(file: &PlanFile, kind: BackendKind, sampling: SamplingParams) -> Result<Box<dyn Backend + '_>> {
    Ok(match kind {
        BackendKind::Cpu => Box::new(cpu::CpuExecutor::new(file, sampling)?),
        BackendKind::Cuda => Box::new(cuda::CudaBackend::new(file, sampling).map_err(|e| match e {
            Error::Unavailable(why) => Error::Unavailable(format!("{why} (use --backend cpu)")),
            e => e,
        })?),
    })
}

/// A backend that shows `observe` every token it chooses, with the backend that chose it and
/// the position of the token fed last: to read the logits or log-probabilities each token was
/// chosen from. With `batched_prefill` a prompt is prefilled as the inner backend does it (seen
/// once, after its last token); without, token by token, so every prompt position is seen.
pub struct Tap<'a, F: FnMut(&dyn Backend, usize, u32) -> Result<()>> {
    pub inner: &'a mut dyn Backend,
    pub observe: F,
    pub batched_prefill: bool,
}

impl<F: FnMut(&dyn Backend, usize, u32) -> Result<()>> Backend for Tap<'_, F> {
    fn step(&mut self, token: u32, pos: usize) -> Result<u32> {
        let next = self.inner.step(token, pos)?;
        (self.observe)(&*self.inner, pos, next)?;
        Ok(next)
    }

    fn prefill(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        if !self.batched_prefill {
            return tokens.iter().enumerate().try_fold(0, |_, (i, &token)| self.step(token, start + i));
        }
        let next = self.inner.prefill(tokens, start)?;
        (self.observe)(&*self.inner, start + tokens.len().saturating_sub(1), next)?;
        Ok(next)
    }

    fn logits(&self) -> Result<Vec<f32>> {
        self.inner.logits()
    }

    fn set_sampling(&mut self, sampling: SamplingParams) -> Result<()> {
        self.inner.set_sampling(sampling)
    }

    fn top_logprobs(&self, token: u32, k: usize) -> Result<TokenLogprobs> {
        self.inner.top_logprobs(token, k)
    }
}

pub struct GenerateOptions {
    pub max_tokens: usize,
    pub eos_ids: Vec<u32>,
    pub max_seq_len: usize,
}

/// What a generation did, with honest timings: time to first token covers the whole prompt;
/// decode speed counts only the tokens after the first.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    /// Prompt tokens whose keys and values were already in the cache (not prefilled again).
    pub cached_tokens: usize,
    pub ttft_ms: f64,
    pub decode_tok_s: f64,
    pub stopped_at_eos: bool,
}

/// Runs the prompt through `backend` and generates up to `max_tokens` tokens, handing each one to
/// `on_token` as it is chosen; `on_token` returns false to stop early (Ctrl-C).
pub fn generate(backend: &mut dyn Backend, prompt: &[u32], opts: &GenerateOptions, on_token: impl FnMut(u32) -> Result<bool>) -> Result<Generation> {
    generate_cached(backend, &mut Vec::new(), prompt, opts, on_token)
}

/// [`generate`] over a backend whose KV cache holds the keys and values of `cache` (the tokens
/// fed to it, at positions 0..cache.len()): only the prompt's tokens after its longest common
/// prefix with `cache` are prefilled (a chat's earlier turns; at least one token is, for the
/// logits). On return `cache` holds what the backend's cache now holds: the prompt and every
/// generated token but the last (chosen, not yet fed). On an error it is emptied.
pub fn generate_cached(
    backend: &mut dyn Backend,
    cache: &mut Vec<u32>,
    prompt: &[u32],
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> Result<bool>,
) -> Result<Generation> {
    if prompt.is_empty() {
        return Err(Error::Input("the prompt is empty".into()));
    }
    if prompt.len() + opts.max_tokens > opts.max_seq_len {
        return Err(Error::ContextOverflow { prompt: prompt.len(), gen: opts.max_tokens, max: opts.max_seq_len });
    }
    let shared = cache.iter().zip(prompt).take_while(|(a, b)| a == b).count().min(prompt.len() - 1);
    cache.clear(); // rebuilt below once the backend holds the new tokens; empty if anything fails
    let start = Instant::now();
    let mut next = backend.prefill(&prompt[shared..], shared)?;
    let ttft = start.elapsed();
    let mut generated = Vec::with_capacity(opts.max_tokens);
    let mut stopped_at_eos = false;
    let decode_start = Instant::now();
    while generated.len() < opts.max_tokens {
        generated.push(next);
        if opts.eos_ids.contains(&next) {
            stopped_at_eos = true;
            break;
        }
        if !on_token(next)? || generated.len() == opts.max_tokens {
            break;
        }
        next = backend.step(next, prompt.len() + generated.len() - 1)?;
    }
    cache.extend_from_slice(prompt);
    cache.extend_from_slice(&generated[..generated.len().saturating_sub(1)]);
    let decode_steps = generated.len().saturating_sub(1);
    let decode_secs = decode_start.elapsed().as_secs_f64();
    Ok(Generation {
        prompt_ids: prompt.to_vec(),
        generated_ids: generated,
        cached_tokens: shared,
        ttft_ms: ttft.as_secs_f64() * 1e3,
        decode_tok_s: if decode_steps > 0 && decode_secs > 0.0 { decode_steps as f64 / decode_secs } else { 0.0 },
        stopped_at_eos,
    })
}
