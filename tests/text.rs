//! Tokenization and chat templating as transformers does them (ids recorded by the fixture
//! script with AutoTokenizer), and streaming detokenization of multi-byte characters.

mod common;
use common::*;
use llmc::load;
use llmc::text::{StreamDecoder, Text};

#[test]
fn tokenizer_and_chat_template_match_transformers() {
    for name in FIXTURES {
        let model = load::open(&fixture_dir(name)).unwrap();
        let text = Text::new(&model.tokenizer).unwrap();
        let check = reference(name).tokenizer_check;
        assert_eq!(text.encode(&check.text, true).unwrap(), check.ids, "{name}: encode");
        assert_eq!(text.decode(&check.ids).unwrap(), check.text, "{name}: decode");
        let prompt = text.chat_prompt(Some("You are terse."), "Say hi.").unwrap();
        assert_eq!(prompt, check.chat_prompt, "{name}: chat template");
        assert_eq!(text.encode(&prompt, false).unwrap(), check.chat_prompt_ids, "{name}: chat ids");
        assert!(model.tokenizer.eos_ids.contains(&266), "{name}: <|im_end|> ends generation");
    }
}

#[test]
fn streaming_prints_each_character_once_and_whole() {
    let model = load::open(&fixture_dir("qwen2_tied")).unwrap();
    let text = Text::new(&model.tokenizer).unwrap();
    let sentence = "oké 你好 🌍 done";
    let ids = text.encode(sentence, false).unwrap();
    let mut stream = StreamDecoder::new(&text);
    let mut out = String::new();
    for &id in &ids {
        let delta = stream.push(id).unwrap();
        assert!(!delta.contains('\u{FFFD}'), "partial character streamed: {delta:?}");
        out.push_str(&delta);
    }
    assert_eq!(out, sentence);
}
