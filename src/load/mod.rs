//! Loading a model: its config, its weights and its tokenizer.

pub mod config;
