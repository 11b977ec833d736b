//! Rebuilds a `tokenizers` tokenizer.json from GGUF tokenizer metadata. Only byte-level BPE
//! (`tokenizer.ggml.model` = gpt2) with a known pre-tokenizer is supported; each supported
//! `tokenizer.ggml.pre` is written as the Hugging Face tokenizer.json of that model family writes it.

use super::Meta;
use crate::error::{Error, Result};
use crate::load::TokenizerSpec;
use serde_json::{json, Value as Json};

/// `tokenizer.ggml.pre` values this module can rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PreTokenizer {
    /// Qwen2 / Qwen2.5 / Qwen3: single digits, NFC normalization.
    Qwen2,
    /// Llama 3: digits in groups of up to three, merges ignored for whole-vocab words.
    Llama3,
}

impl PreTokenizer {
    fn from_name(name: &str) -> Option<PreTokenizer> {
        match name {
            "qwen2" => Some(PreTokenizer::Qwen2),
            "llama-bpe" | "llama3" | "llama-v3" => Some(PreTokenizer::Llama3),
            _ => None,
        }
    }

    /// The Split regex of the model's tokenizer.json.
    fn split_regex(self) -> &'static str {
        match self {
            PreTokenizer::Qwen2 => r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            PreTokenizer::Llama3 => r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        }
    }

    /// llama.cpp's default for `tokenizer.ggml.add_bos_token` when the key is absent.
    fn adds_bos_by_default(self) -> bool {
        self == PreTokenizer::Llama3
    }
}

/// llama.cpp's `llama_token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_id(id: u64) -> Option<TokenType> {
        Some(match id {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// Texts that end a turn in the chat formats of supported models. llama.cpp treats these control
/// tokens as end-of-generation too, and Hugging Face's generation configs list them as EOS.
const END_OF_TURN_TEXTS: &[&str] = &["<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"];

pub fn tokenizer_spec(meta: &Meta) -> Result<TokenizerSpec> {
    let model = meta.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(Error::Unsupported(format!("GGUF tokenizer model `{model}` (supported: gpt2, i.e. byte-level BPE)")));
    }
    let pre_name = meta.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let pre = PreTokenizer::from_name(pre_name).ok_or_else(|| Error::Unsupported(format!("GGUF pre-tokenizer `{pre_name}` (supported: qwen2, llama-bpe)")))?;

    let tokens = meta.string_array("tokenizer.ggml.tokens")?;
    let merges = meta.string_array("tokenizer.ggml.merges")?;
    let types = match meta.opt_array("tokenizer.ggml.token_type")? {
        None => vec![TokenType::Normal; tokens.len()],
        Some(items) => {
            if items.len() != tokens.len() {
                return Err(Error::Tokenizer(format!("{} token types for {} tokens", items.len(), tokens.len())));
            }
            items
                .iter()
                .map(|v| v.as_u64().and_then(TokenType::from_id))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::Tokenizer("`tokenizer.ggml.token_type` holds an unknown token type".into()))?
        }
    };
    let token_id = |key: &str| -> Result<Option<u32>> {
        match meta.opt_u64(key)? {
            None => Ok(None),
            Some(id) if (id as usize) < tokens.len() => Ok(Some(id as u32)),
            Some(id) => Err(Error::Tokenizer(format!("`{key}` = {id} is past the {} tokens", tokens.len()))),
        }
    };
    let bos_id = token_id("tokenizer.ggml.bos_token_id")?;
    let eos_id = token_id("tokenizer.ggml.eos_token_id")?;
    let add_bos = meta.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(pre.adds_bos_by_default());

    let mut eos_ids: Vec<u32> = [eos_id, token_id("tokenizer.ggml.eot_token_id")?, token_id("tokenizer.ggml.eom_token_id")?].into_iter().flatten().collect();
    eos_ids.extend(
        tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (text, ty))| **ty == TokenType::Control && END_OF_TURN_TEXTS.contains(*text))
            .map(|(id, _)| id as u32),
    );
    eos_ids.sort_unstable();
    eos_ids.dedup();

    let json = tokenizer_json(pre, &tokens, &types, &merges, if add_bos { bos_id } else { None });
    let text_of = |id: Option<u32>| id.map(|id| tokens[id as usize].to_string());
    Ok(TokenizerSpec {
        json,
        chat_template: meta.opt_str("tokenizer.chat_template")?.map(String::from),
        eos_ids,
        bos_token: text_of(bos_id),
        eos_token: text_of(eos_id),
    })
}

/// A tokenizer.json as Hugging Face writes it for the `pre` family. Padding tokens (`Unused`,
/// added by converters to fill the embedding rows) are left out, as they are not in the original
/// vocabulary; control and user-defined tokens become added tokens, matched before BPE.
fn tokenizer_json(pre: PreTokenizer, tokens: &[&str], types: &[TokenType], merges: &[&str], bos: Option<u32>) -> String {
    let vocab: serde_json::Map<String, Json> =
        tokens.iter().zip(types).enumerate().filter(|(_, (_, ty))| **ty != TokenType::Unused).map(|(id, (text, _))| (text.to_string(), json!(id))).collect();
    let added_tokens: Vec<Json> = tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, ty))| matches!(ty, TokenType::Control | TokenType::UserDefined))
        .map(|(id, (text, ty))| {
            json!({"id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": *ty == TokenType::Control})
        })
        .collect();
    let byte_level = |trim_offsets: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim_offsets, "use_regex": false});
    let pre_tokenizer = json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pre.split_regex()}, "behavior": "Isolated", "invert": false},
        byte_level(pre == PreTokenizer::Llama3),
    ]});
    let post_processor = match bos {
        None => byte_level(false),
        Some(id) => {
            let text = tokens[id as usize];
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": text, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {text: {"id": text, "ids": [id], "tokens": [text]}}})
        }
    };
    let normalizer = match pre {
        PreTokenizer::Qwen2 => json!({"type": "NFC"}),
        PreTokenizer::Llama3 => Json::Null,
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": byte_level(true),
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": pre == PreTokenizer::Llama3, "vocab": vocab, "merges": merges},
    })
    .to_string()
}
