//! Text in and out: the plan's tokenizer, its chat template, and a streaming detokenizer that
//! prints text as soon as it is complete UTF-8 (a multi-byte character may span tokens).

use crate::error::{Error, Result};
use crate::load::TokenizerSpec;
use tokenizers::Tokenizer;

pub struct Text {
    tokenizer: Tokenizer,
    spec: TokenizerSpec,
}

impl Text {
    pub fn new(spec: &TokenizerSpec) -> Result<Self> {
        let tokenizer = Tokenizer::from_bytes(spec.json.as_bytes()).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Text { tokenizer, spec: spec.clone() })
    }

    /// Token ids of `text`; `add_special` lets the tokenizer add its BOS (plain prompts), while
    /// a rendered chat template already holds every special token.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, add_special).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The prompt as the model's chat template renders one user turn (after an optional system
    /// message), ending where the assistant's answer starts.
    pub fn chat_prompt(&self, system: Option<&str>, user: &str) -> Result<String> {
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(("system", system));
        }
        messages.push(("user", user));
        self.chat_render(&messages)
    }

    /// A conversation of (role, content) messages ("system", "user", "assistant") as the chat
    /// template renders it, ending where the next assistant answer starts.
    pub fn chat_render(&self, conversation: &[(&str, &str)]) -> Result<String> {
        let template = self
            .spec
            .chat_template
            .as_deref()
            .ok_or_else(|| Error::Input("this model has no chat template: continue text with `llmc run --prompt` (no --chat)".into()))?;
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", template).map_err(|e| Error::Input(format!("chat template: {e}")))?;
        let messages: Vec<_> = conversation.iter().map(|(role, content)| minijinja::context! { role => role, content => content }).collect();
        let tmpl = env.get_template("chat").map_err(|e| Error::Input(format!("chat template: {e}")))?;
        tmpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.spec.bos_token.clone().unwrap_or_default(),
            eos_token => self.spec.eos_token.clone().unwrap_or_default(),
        })
        .map_err(|e| Error::Input(format!("chat template: {e}")))
    }
}

/// Turns a stream of token ids into text deltas. It decodes a short window of recent tokens and
/// emits only what is new and complete, so cost per token stays constant and a character split
/// across tokens is printed once whole.
pub struct StreamDecoder<'t> {
    text: &'t Text,
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl<'t> StreamDecoder<'t> {
    pub fn new(text: &'t Text) -> Self {
        StreamDecoder { text, ids: Vec::new(), prefix: 0, read: 0 }
    }

    pub fn push(&mut self, id: u32) -> Result<String> {
        self.ids.push(id);
        let before = self.text.decode(&self.ids[self.prefix..self.read])?;
        let now = self.text.decode(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.is_char_boundary(before.len()) {
            let delta = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(delta)
        } else {
            Ok(String::new())
        }
    }
}
