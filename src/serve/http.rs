//! The HTTP layer (axum): routes, the checks a request passes before it is queued, and the
//! answer, as one JSON body or as server-sent events in OpenAI's chunk format.

use super::api::{ApiError, Content, Logprobs, Prompt, Request, Stop};
use super::worker::{Event, Finish, Job, Usage};
use crate::exec::logprobs::TokenLogprobs;
use crate::exec::sampling::SamplingParams;
use crate::text::Text;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// The largest request body accepted: far above any prompt a plan's context holds.
pub const BODY_LIMIT: usize = 4 << 20;
/// Answer events in flight between the generation thread and a client; a client that reads
/// slower than tokens come holds the generation back rather than growing a buffer.
const EVENTS: usize = 64;
/// OpenAI's limits on stop strings and reported alternatives.
const MAX_STOPS: usize = 4;
const MAX_TOP_LOGPROBS: usize = 5;

/// What the handlers share: the plan's name and limits, its tokenizer, and the queue.
pub struct Server {
    pub model: String,
    pub text: Arc<Text>,
    pub max_seq_len: usize,
    pub vocab: usize,
    /// Requests admitted at once, the running one included.
    pub queue: usize,
    pub admission: Arc<Semaphore>,
    pub jobs: std::sync::mpsc::Sender<Job>,
    pub shutting_down: Arc<AtomicBool>,
    pub next_id: AtomicU64,
}

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .fallback(|| async {
            ApiError::status(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "no such route: llmc serves /v1/chat/completions, /v1/completions, /v1/models and /health",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_declared_oversize))
        .with_state(server)
}

/// A body whose Content-Length is over the limit is refused before any of it is read (a body
/// without one is cut off at the limit as it is read: `parse`).
async fn refuse_declared_oversize(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|bytes| bytes > BODY_LIMIT as u64) {
        return too_large().into_response();
    }
    next.run(request).await
}

fn too_large() -> ApiError {
    ApiError::status(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("the request body is over the limit of {BODY_LIMIT} bytes"))
}

async fn health(State(s): State<Arc<Server>>) -> Response {
    if s.shutting_down.load(Ordering::SeqCst) {
        return ApiError::shutting_down().into_response();
    }
    Json(json!({ "status": "ready", "model": s.model, "running_or_queued": s.queue - s.admission.available_permits() })).into_response()
}

async fn models(State(s): State<Arc<Server>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": s.model, "object": "model", "created": now(), "owned_by": "llmc", "max_model_len": s.max_seq_len, "vocab_size": s.vocab }],
    }))
}

async fn chat_completions(State(s): State<Arc<Server>>, body: Result<Bytes, BytesRejection>) -> Response {
    answer(s, Endpoint::Chat, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn completions(State(s): State<Arc<Server>>, body: Result<Bytes, BytesRejection>) -> Response {
    answer(s, Endpoint::Completions, body).await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    Chat,
    Completions,
}

/// A request checked against the plan, ready to queue.
struct Checked {
    prompt: Vec<u32>,
    max_tokens: usize,
    sampling: SamplingParams,
    stop: Vec<String>,
    logprobs: Option<usize>,
}

async fn answer(s: Arc<Server>, endpoint: Endpoint, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    if s.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::shutting_down());
    }
    let request = parse(body)?;
    let checked = s.check(endpoint, &request)?;
    let admission = s.admission.clone().try_acquire_owned().map_err(|_| ApiError {
        code: Some("queue_full"),
        ..ApiError::status(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("the server is busy: {} requests are running or queued, its limit (llmc serve --queue {}); retry later", s.queue, s.queue),
        )
    })?;
    let (events, mut answers) = mpsc::channel(EVENTS);
    let job = Job {
        prompt: checked.prompt,
        max_tokens: checked.max_tokens,
        sampling: checked.sampling,
        stop: checked.stop,
        logprobs: checked.logprobs,
        ignore_eos: request.ignore_eos,
        events,
        admission,
    };
    s.jobs.send(job).map_err(|_| ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the generation thread has stopped"))?;
    // Answer with an error status while nothing has been sent: the first event comes once the
    // prompt is prefilled, or the job failed.
    match answers.recv().await {
        Some(Event::Failed(e)) => return Err(e),
        None => return Err(ApiError::shutting_down()),
        Some(_) => {}
    }
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let reply = Reply {
        id: format!("{}-{id}", if endpoint == Endpoint::Chat { "chatcmpl" } else { "cmpl" }),
        created: now(),
        model: s.model.clone(),
        endpoint,
        logprobs: checked.logprobs.is_some(),
        text: s.text.clone(),
        offset: 0,
    };
    if request.stream {
        Ok(stream(reply, answers, request.stream_options.is_some_and(|o| o.include_usage)))
    } else {
        collect(reply, answers).await
    }
}

/// The body as a request, every failure named for the client.
fn parse(body: Result<Bytes, BytesRejection>) -> Result<Request, ApiError> {
    let bytes = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::status(status, "invalid_request_error", r.body_text()),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| ApiError::invalid(None, format!("the request body is not UTF-8: {e}")))?;
    // serde would read a struct from a JSON array too, and then name fields `[0]`.
    if !text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return Err(ApiError::invalid(None, "the request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let request: Request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(None, format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid(None, format!("invalid request: {inner}"))
        } else {
            ApiError::invalid(Some(&path), format!("invalid `{path}`: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::invalid(None, format!("the request body is not valid JSON: {e}")))?;
    Ok(request)
}

impl Server {
    fn check(&self, endpoint: Endpoint, r: &Request) -> Result<Checked, ApiError> {
        if r.model != self.model {
            return Err(ApiError {
                code: Some("model_not_found"),
                param: Some("model".into()),
                ..ApiError::status(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    format!("the model `{}` does not exist: this server serves `{}`", r.model, self.model),
                )
            });
        }
        if r.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(Some("n"), "only n = 1 is supported: one answer per request"));
        }
        let prompt = self.prompt(endpoint, r)?;
        if prompt.len() >= self.max_seq_len {
            return Err(ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::invalid(
                    Some(if endpoint == Endpoint::Chat { "messages" } else { "prompt" }),
                    format!("the prompt is {} tokens, and this plan's context holds {} (prompt and answer together)", prompt.len(), self.max_seq_len),
                )
            });
        }
        let room = self.max_seq_len - prompt.len();
        let max_tokens = match r.max_tokens.or(r.max_completion_tokens) {
            Some(0) => return Err(ApiError::invalid(Some("max_tokens"), "max_tokens must be at least 1")),
            Some(n) if n > room => {
                return Err(ApiError {
                    code: Some("context_length_exceeded"),
                    ..ApiError::invalid(
                        Some("max_tokens"),
                        format!(
                            "max_tokens {n} does not fit: the prompt is {} tokens and this plan's context holds {}, so at most {room}",
                            prompt.len(),
                            self.max_seq_len
                        ),
                    )
                })
            }
            Some(n) => n,
            // OpenAI's defaults: 16 tokens for a completion, the rest of the context for a chat.
            None if endpoint == Endpoint::Completions => room.min(16),
            None => room,
        };
        let sampling = SamplingParams {
            temperature: r.temperature.unwrap_or(1.0),
            top_k: r.top_k.unwrap_or(0),
            top_p: r.top_p.unwrap_or(1.0),
            seed: r.seed.map_or_else(random_seed, |s| s as u64),
        };
        if !(0.0..=2.0).contains(&sampling.temperature) {
            return Err(ApiError::invalid(Some("temperature"), format!("temperature {} must be between 0 and 2", sampling.temperature)));
        }
        if !(sampling.top_p > 0.0 && sampling.top_p <= 1.0) {
            return Err(ApiError::invalid(Some("top_p"), format!("top_p {} must be in (0, 1]", sampling.top_p)));
        }
        let stop = match &r.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > MAX_STOPS || stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid(Some("stop"), format!("stop takes at most {MAX_STOPS} strings, none empty")));
        }
        Ok(Checked { prompt, max_tokens, sampling, stop, logprobs: logprobs(endpoint, r)? })
    }

    /// The prompt's tokens: the chat template over the messages, or the completion's text (with
    /// the tokenizer's BOS, as `llmc run` encodes it) or token ids.
    fn prompt(&self, endpoint: Endpoint, r: &Request) -> Result<Vec<u32>, ApiError> {
        let tokenizer = |e: crate::Error| ApiError::invalid(None, e.to_string());
        let ids = match endpoint {
            Endpoint::Chat => {
                let messages = r.messages.as_ref().ok_or_else(|| ApiError::invalid(Some("messages"), "`messages` is required"))?;
                let contents: Vec<String> = messages
                    .iter()
                    .map(|m| match &m.content {
                        Content::Text(t) => t.clone(),
                        Content::Parts(parts) => parts.iter().filter(|p| p.kind == "text").filter_map(|p| p.text.as_deref()).collect(),
                    })
                    .collect();
                let turns: Vec<(&str, &str)> = messages.iter().zip(&contents).map(|(m, c)| (m.role.as_str(), c.as_str())).collect();
                let rendered = self.text.chat_render(&turns).map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
                self.text.encode(&rendered, false).map_err(tokenizer)?
            }
            Endpoint::Completions => match r.prompt.as_ref().ok_or_else(|| ApiError::invalid(Some("prompt"), "`prompt` is required"))? {
                Prompt::Text(t) if t.is_empty() => Vec::new(),
                Prompt::Text(t) => self.text.encode(t, true).map_err(tokenizer)?,
                Prompt::Tokens(ids) => {
                    if let Some(id) = ids.iter().find(|&&id| id as usize >= self.vocab) {
                        return Err(ApiError::invalid(Some("prompt"), format!("token id {id} is outside the vocabulary of {}", self.vocab)));
                    }
                    ids.clone()
                }
            },
        };
        if ids.is_empty() {
            return Err(ApiError::invalid(Some(if endpoint == Endpoint::Chat { "messages" } else { "prompt" }), "the prompt is empty"));
        }
        Ok(ids)
    }
}

/// How many alternatives per token to report, if any: chat says `logprobs: true` and
/// `top_logprobs: k`, completions `logprobs: k`.
fn logprobs(endpoint: Endpoint, r: &Request) -> Result<Option<usize>, ApiError> {
    let k = match (endpoint, &r.logprobs) {
        (Endpoint::Chat, Some(Logprobs::Flag(true))) => Some(r.top_logprobs.unwrap_or(0)),
        (Endpoint::Chat, Some(Logprobs::Count(_))) => {
            return Err(ApiError::invalid(Some("logprobs"), "logprobs is true or false here; top_logprobs says how many alternatives"))
        }
        (Endpoint::Chat, _) if r.top_logprobs.is_some_and(|k| k > 0) => {
            return Err(ApiError::invalid(Some("top_logprobs"), "top_logprobs needs logprobs: true"))
        }
        (Endpoint::Completions, Some(Logprobs::Count(k))) => Some(*k),
        (Endpoint::Completions, Some(Logprobs::Flag(true))) => {
            return Err(ApiError::invalid(Some("logprobs"), "logprobs is a number of alternatives (0 to 5) here"))
        }
        _ => None,
    };
    match k {
        Some(k) if k > MAX_TOP_LOGPROBS => Err(ApiError::invalid(
            Some(if endpoint == Endpoint::Chat { "top_logprobs" } else { "logprobs" }),
            format!("at most {MAX_TOP_LOGPROBS} alternatives per token are reported, not {k}"),
        )),
        k => Ok(k),
    }
}

/// The parts of every response or chunk of one answer.
struct Reply {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
    logprobs: bool,
    text: Arc<Text>,
    /// Completions' `text_offset`: where the next token's text starts in the answer.
    offset: usize,
}

impl Reply {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completions, _) => "text_completion",
        }
    }

    fn envelope(&self, chunk: bool, choices: Value, usage: Option<Usage>) -> Value {
        let mut v = json!({ "id": self.id, "object": self.object(chunk), "created": self.created, "model": self.model, "choices": choices });
        if let Some(u) = usage {
            v["usage"] = json!({
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.prompt_tokens + u.completion_tokens,
                "prompt_tokens_details": { "cached_tokens": u.cached_tokens },
            });
        }
        v
    }

    /// One choice: chat's `message` (or a chunk's `delta`) or completions' `text`.
    fn choice(&mut self, chunk: bool, text: Option<&str>, logprobs: &[TokenLogprobs], finish: Option<Finish>) -> Value {
        let finish = finish.map(|f| if f == Finish::Stop { "stop" } else { "length" });
        let logprobs = if self.logprobs { self.logprobs_json(logprobs) } else { Value::Null };
        match self.endpoint {
            Endpoint::Chat => {
                let key = if chunk { "delta" } else { "message" };
                let body = match text {
                    Some(t) if !chunk => json!({ "role": "assistant", "content": t }),
                    Some(t) => json!({ "content": t }),
                    None => json!({}),
                };
                json!({ "index": 0, key: body, "logprobs": logprobs, "finish_reason": finish })
            }
            Endpoint::Completions => json!({ "index": 0, "text": text.unwrap_or(""), "logprobs": logprobs, "finish_reason": finish }),
        }
    }

    fn logprobs_json(&mut self, tokens: &[TokenLogprobs]) -> Value {
        let piece = |id: u32| self.text.decode(&[id]).unwrap_or_default();
        match self.endpoint {
            Endpoint::Chat => {
                let entry = |id: u32, logprob: f32| {
                    let token = piece(id);
                    json!({ "token": token, "logprob": logprob, "bytes": token.as_bytes() })
                };
                let content: Vec<Value> = tokens
                    .iter()
                    .map(|t| {
                        let mut e = entry(t.token, t.logprob);
                        e["top_logprobs"] = t.top.iter().map(|&(id, lp)| entry(id, lp)).collect();
                        e
                    })
                    .collect();
                json!({ "content": content })
            }
            Endpoint::Completions => {
                let pieces: Vec<String> = tokens.iter().map(|t| piece(t.token)).collect();
                let mut offsets = Vec::with_capacity(pieces.len());
                for p in &pieces {
                    offsets.push(self.offset);
                    self.offset += p.len();
                }
                let top: Vec<serde_json::Map<String, Value>> = tokens.iter().map(|t| t.top.iter().map(|&(id, lp)| (piece(id), json!(lp))).collect()).collect();
                json!({
                    "tokens": pieces,
                    "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
                    "top_logprobs": top,
                    "text_offset": offsets,
                })
            }
        }
    }
}

/// The whole answer as one response.
async fn collect(mut reply: Reply, mut answers: mpsc::Receiver<Event>) -> Result<Response, ApiError> {
    let (mut text, mut logprobs) = (String::new(), Vec::new());
    loop {
        match answers.recv().await {
            Some(Event::Started) => {}
            Some(Event::Text { text: t, logprobs: l }) => {
                text.push_str(&t);
                logprobs.extend(l);
            }
            Some(Event::Done { finish, usage }) => {
                let choice = reply.choice(false, Some(&text), &logprobs, Some(finish));
                return Ok(Json(reply.envelope(false, json!([choice]), Some(usage))).into_response());
            }
            Some(Event::Failed(e)) => return Err(e),
            None => return Err(ApiError::shutting_down()),
        }
    }
}

/// The answer as server-sent events: chunks as the text comes, the closing chunk with the finish
/// reason, the usage chunk if asked for (`stream_options.include_usage`), then `[DONE]`.
fn stream(reply: Reply, answers: mpsc::Receiver<Event>, include_usage: bool) -> Response {
    let data = |v: &Value| SseEvent::default().data(v.to_string());
    // Chat's first chunk names the role, as OpenAI's does.
    let first = match reply.endpoint {
        Endpoint::Chat => {
            let choice = json!({ "index": 0, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null });
            vec![data(&reply.envelope(true, json!([choice]), None))]
        }
        Endpoint::Completions => Vec::new(),
    };
    let rest = futures_util::stream::unfold(Some((reply, answers)), move |state| async move {
        let (mut reply, mut answers) = state?;
        let events = match answers.recv().await {
            Some(Event::Started) => Vec::new(),
            Some(Event::Text { text, logprobs }) => {
                let choice = reply.choice(true, Some(&text), &logprobs, None);
                vec![data(&reply.envelope(true, json!([choice]), None))]
            }
            Some(Event::Done { finish, usage }) => {
                let choice = reply.choice(true, None, &[], Some(finish));
                let mut events = vec![data(&reply.envelope(true, json!([choice]), None))];
                if include_usage {
                    events.push(data(&reply.envelope(true, json!([]), Some(usage))));
                }
                events.push(SseEvent::default().data("[DONE]"));
                return Some((events, None));
            }
            Some(Event::Failed(e)) => return Some((vec![data(&e.body()), SseEvent::default().data("[DONE]")], None)),
            None => return None,
        };
        Some((events, Some((reply, answers))))
    });
    let events = futures_util::stream::iter([first]).chain(rest).flat_map(futures_util::stream::iter).map(Ok::<_, std::convert::Infallible>);
    Sse::new(events).into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// OpenAI's default when a request names no seed: a different draw every time.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}
