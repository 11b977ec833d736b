//! OpenAI's wire format: the request body both endpoints accept, and errors as OpenAI shapes
//! them (`{"error": {"message", "type", "param", "code"}}`). Responses are built in `http`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// A request to `/v1/chat/completions` (`messages`) or `/v1/completions` (`prompt`). Unknown
/// fields are ignored, as OpenAI's own server does with fields it does not use.
#[derive(Deserialize)]
pub struct Request {
    pub model: String,
    pub messages: Option<Vec<Message>>,
    pub prompt: Option<Prompt>,
    pub max_tokens: Option<usize>,
    /// Chat's newer name for `max_tokens`.
    pub max_completion_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// An extension (vLLM's and llama.cpp's name): keep the k most likely tokens.
    pub top_k: Option<usize>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Chat: `true` or `false`; completions: how many alternatives to report (0-5).
    pub logprobs: Option<Logprobs>,
    /// Chat: how many alternatives to report with `logprobs: true`.
    pub top_logprobs: Option<usize>,
    pub n: Option<usize>,
    /// An extension (vLLM's): generate past end-of-sequence tokens, for benchmarks.
    #[serde(default)]
    pub ignore_eos: bool,
}

#[derive(Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    /// `[{"type": "text", "text": "..."}, ...]`: the text parts, joined.
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Logprobs {
    Flag(bool),
    Count(usize),
}

/// An error answered to the client: a status and OpenAI's error object.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub message: String,
}

impl ApiError {
    /// 400: the request is wrong; `param` names the field at fault.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "invalid_request_error", code: None, param: param.map(str::to_string), message: message.into() }
    }

    pub fn status(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, code: None, param: None, message: message.into() }
    }

    pub fn shutting_down() -> Self {
        ApiError::status(StatusCode::SERVICE_UNAVAILABLE, "server_error", "the server is shutting down")
    }

    /// A failure inside generation: the client's fault (400) where the library says so.
    pub fn from_generation(e: &crate::Error) -> Self {
        use crate::Error::*;
        match e {
            Input(_) | ContextOverflow { .. } | NotOnBackend { .. } => ApiError::invalid(None, e.to_string()),
            _ => ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("generation failed: {e}")),
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
