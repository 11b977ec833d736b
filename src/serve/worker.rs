//! The generation thread: it owns the backend (and so the one KV cache) and answers the queued
//! jobs one at a time, in arrival order. The cache keeps the tokens of the last answer, so a
//! request that continues it (a chat's next turn) prefills only what is new.

use super::api::ApiError;
use super::stop::StopStrings;
use crate::exec::logprobs::TokenLogprobs;
use crate::exec::sampling::SamplingParams;
use crate::exec::{self, Backend, GenerateOptions, Tap};
use crate::text::{StreamDecoder, Text};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// One request, tokenized and checked against the plan's limits.
pub struct Job {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Report log-probabilities with this many alternatives per token.
    pub logprobs: Option<usize>,
    pub ignore_eos: bool,
    /// Where the answer goes; closed when the client has gone, which stops the generation.
    pub events: mpsc::Sender<Event>,
    /// The job's place in the bounded queue, given back when it is done.
    pub admission: OwnedSemaphorePermit,
}

pub enum Event {
    /// The prompt is prefilled and the first token chosen.
    Started,
    /// Answer text, with the log-probabilities of the tokens it completes.
    Text {
        text: String,
        logprobs: Vec<TokenLogprobs>,
    },
    Done {
        finish: Finish,
        usage: Usage,
    },
    Failed(ApiError),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Finish {
    /// EOS or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens already in the KV cache, not prefilled.
    pub cached_tokens: usize,
}

/// What every job shares: the plan's end-of-sequence tokens and context.
pub struct Limits {
    pub eos_ids: Vec<u32>,
    pub max_seq_len: usize,
}

/// Answers `jobs` until the channel closes. A client gone while its job waited is skipped; once
/// `shutting_down` is set, the running job stops at its next token and the rest are refused.
pub fn run(backend: &mut dyn Backend, text: &Text, limits: &Limits, jobs: std::sync::mpsc::Receiver<Job>, shutting_down: &AtomicBool) {
    let mut cache = Vec::new();
    for job in jobs {
        if job.events.is_closed() {
            continue;
        }
        if shutting_down.load(Ordering::SeqCst) {
            let _ = job.events.blocking_send(Event::Failed(ApiError::shutting_down()));
            continue;
        }
        let answer = catch_unwind(AssertUnwindSafe(|| answer(backend, &mut cache, text, limits, &job, shutting_down)));
        let last = match answer {
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => Event::Failed(ApiError::from_generation(&e)),
            Err(_) => {
                // The backend may hold a half-written cache row; start the next request afresh.
                cache.clear();
                Event::Failed(ApiError::status(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "server_error", "generation panicked (see the server's log)"))
            }
        };
        // The queue's place is free before the client hears the end, so a client that sends
        // its next request at once finds it free.
        drop(job.admission);
        let _ = job.events.blocking_send(last);
    }
}

/// Generates `job`'s answer, sending it as it comes; returns the closing event, or None when the
/// client has gone.
fn answer(
    backend: &mut dyn Backend,
    cache: &mut Vec<u32>,
    text: &Text,
    limits: &Limits,
    job: &Job,
    shutting_down: &AtomicBool,
) -> crate::Result<Option<Event>> {
    backend.set_sampling(job.sampling)?;
    let logprobs = RefCell::new(VecDeque::new());
    let mut tap;
    let backend: &mut dyn Backend = match job.logprobs {
        Some(k) => {
            let out = &logprobs;
            let observe = move |backend: &dyn Backend, _, next| {
                out.borrow_mut().push_back(backend.top_logprobs(next, k)?);
                Ok(())
            };
            tap = Tap { inner: backend, observe, batched_prefill: true };
            &mut tap
        }
        None => backend,
    };
    let eos_ids = if job.ignore_eos { Vec::new() } else { limits.eos_ids.clone() };
    let opts = GenerateOptions { max_tokens: job.max_tokens, eos_ids, max_seq_len: limits.max_seq_len };
    let mut stream = StreamDecoder::new(text);
    let mut stop = StopStrings::new(&job.stop);
    let (mut started, mut gone, mut stopped) = (false, false, false);
    let mut pending = Vec::new();
    let send = |event| job.events.blocking_send(event).is_ok();
    let generation = exec::generate_cached(backend, cache, &job.prompt, &opts, |id| {
        if !started {
            started = true;
            gone = !send(Event::Started);
        }
        pending.extend(logprobs.borrow_mut().pop_front());
        let released = stop.push(&stream.push(id)?);
        stopped = released.stopped;
        if !released.text.is_empty() && !gone {
            gone = !send(Event::Text { text: released.text, logprobs: std::mem::take(&mut pending) });
        }
        Ok(!stopped && !gone && !job.events.is_closed() && !shutting_down.load(Ordering::SeqCst))
    })?;
    if gone || job.events.is_closed() {
        return Ok(None);
    }
    let finish = if stopped || generation.stopped_at_eos {
        Finish::Stop
    } else if generation.generated_ids.len() == job.max_tokens {
        Finish::Length
    } else {
        return Ok(Some(Event::Failed(ApiError::shutting_down())));
    };
    if !started && !send(Event::Started) {
        return Ok(None);
    }
    let rest = if stopped { String::new() } else { stop.finish() };
    let unsent = !rest.is_empty() || !pending.is_empty();
    if unsent && !send(Event::Text { text: rest, logprobs: pending }) {
        return Ok(None);
    }
    let usage = Usage { prompt_tokens: job.prompt.len(), completion_tokens: generation.generated_ids.len(), cached_tokens: generation.cached_tokens };
    Ok(Some(Event::Done { finish, usage }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// Chooses token 7 after every token; token 13 makes a step fail, token 14 panic.
    struct Scripted;

    impl Backend for Scripted {
        fn step(&mut self, token: u32, pos: usize) -> Result<u32> {
            match token {
                13 => Err(Error::Numeric(format!("logit 0 is NaN at position {pos}"))),
                14 => panic!("a bug in a kernel"),
                _ => Ok(7),
            }
        }
        fn logits(&self) -> Result<Vec<f32>> {
            Ok(Vec::new())
        }
        fn set_sampling(&mut self, _: SamplingParams) -> Result<()> {
            Ok(())
        }
        fn top_logprobs(&self, _: u32, _: usize) -> Result<TokenLogprobs> {
            Err(Error::NotOnBackend { backend: "scripted", what: "logprobs" })
        }
    }

    /// The events of jobs with these prompts (3 tokens each; logprobs for a prompt holding token
    /// 5, EOS ignored for one holding 6), answered in order by one worker.
    fn answers(prompts: &[&[u32]], eos_ids: &[u32]) -> Vec<Vec<Event>> {
        let model = crate::load::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_tied")).unwrap();
        let text = Text::new(&model.tokenizer).unwrap();
        let queue = Arc::new(Semaphore::new(prompts.len()));
        let (jobs, queued) = std::sync::mpsc::channel();
        let mut receivers = Vec::new();
        for prompt in prompts {
            let (events, answers) = mpsc::channel(64);
            let sampling = SamplingParams::GREEDY;
            let logprobs = prompt.contains(&5).then_some(2);
            let admission = queue.clone().try_acquire_owned().unwrap();
            jobs.send(Job { prompt: prompt.to_vec(), max_tokens: 3, sampling, stop: Vec::new(), logprobs, ignore_eos: prompt.contains(&6), events, admission })
                .unwrap();
            receivers.push(answers);
        }
        drop(jobs);
        run(&mut Scripted, &text, &Limits { eos_ids: eos_ids.to_vec(), max_seq_len: 64 }, queued, &AtomicBool::new(false));
        assert_eq!(queue.available_permits(), prompts.len(), "every place in the queue is given back");
        receivers.into_iter().map(|mut r| std::iter::from_fn(|| r.try_recv().ok()).collect()).collect()
    }

    fn failure(events: &[Event]) -> Option<(u16, String)> {
        match events.last() {
            Some(Event::Failed(e)) => Some((e.status.as_u16(), e.message.clone())),
            _ => None,
        }
    }

    #[test]
    fn a_failed_generation_answers_500_and_the_next_request_is_served() {
        let answers = answers(&[&[1, 13], &[1, 14], &[1, 5], &[1, 2]], &[]);
        let (status, message) = failure(&answers[0]).unwrap();
        assert_eq!(status, 500);
        assert!(message.contains("NaN at position 1"), "{message}");
        let (status, message) = failure(&answers[1]).unwrap();
        assert_eq!((status, message.as_str()), (500, "generation panicked (see the server's log)"));
        let (status, message) = failure(&answers[2]).unwrap();
        assert_eq!((status, message.as_str()), (400, "logprobs are not computed by the scripted backend yet"));
        assert_eq!(done(&answers[3]), (Finish::Length, 2, 3, 0));
    }

    /// (finish reason, prompt, completion and cached tokens) of an answer.
    fn done(events: &[Event]) -> (Finish, usize, usize, usize) {
        match events.last() {
            Some(Event::Done { finish, usage }) => (*finish, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens),
            _ => panic!("the request was not answered"),
        }
    }

    #[test]
    fn eos_ends_an_answer_unless_ignored_and_the_next_prompt_reuses_the_cache() {
        let answers = answers(&[&[1, 2], &[1, 2, 6]], &[7]);
        assert_eq!(done(&answers[0]), (Finish::Stop, 2, 1, 0), "the first token chosen is EOS");
        // [1, 2] was fed; the EOS chosen after it was not.
        assert_eq!(done(&answers[1]), (Finish::Length, 3, 3, 2));
    }
}
