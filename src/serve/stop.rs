//! Stop strings over streamed text: text is released as soon as no stop string can begin in it,
//! so a client never sees any part of the stop string, even one split across tokens.

/// What one piece of generated text releases.
pub struct Released {
    /// Text now certain to precede any stop string.
    pub text: String,
    /// A stop string was completed: the answer ends before it.
    pub stopped: bool,
}

pub struct StopStrings {
    stops: Vec<String>,
    /// Everything generated so far; `text[sent..]` is held back.
    text: String,
    sent: usize,
}

impl StopStrings {
    pub fn new(stops: &[String]) -> Self {
        StopStrings { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), text: String::new(), sent: 0 }
    }

    pub fn push(&mut self, delta: &str) -> Released {
        self.text.push_str(delta);
        let held = &self.text[self.sent..];
        // Released text never holds the start of a stop string, so a match begins in `held`.
        if let Some(at) = self.stops.iter().filter_map(|s| held.find(s.as_str())).min() {
            let text = held[..at].to_string();
            self.sent = self.text.len();
            return Released { text, stopped: true };
        }
        // Hold back the longest tail of the text that a stop string begins with.
        let keep = self
            .stops
            .iter()
            .flat_map(|s| s.char_indices().skip(1).map(|(i, _)| &s[..i]).filter(|prefix| held.ends_with(prefix)).map(str::len))
            .max()
            .unwrap_or(0);
        let end = self.text.len() - keep;
        let text = self.text[self.sent..end].to_string();
        self.sent = end;
        Released { text, stopped: false }
    }

    /// What was held back when the answer ends without a stop string.
    pub fn finish(&mut self) -> String {
        let rest = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], deltas: &[&str]) -> (Vec<String>, bool) {
        let mut s = StopStrings::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let mut out = Vec::new();
        for d in deltas {
            let r = s.push(d);
            out.push(r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push(s.finish());
        (out, false)
    }

    #[test]
    fn a_stop_string_split_across_tokens_is_never_sent() {
        assert_eq!(run(&["\n\n"], &["a\n", "\nb"]), (vec!["a".to_string(), String::new()], true));
        assert_eq!(run(&["END"], &["xE", "N", "Dy"]), (vec!["x".to_string(), String::new(), String::new()], true));
    }

    #[test]
    fn held_text_that_does_not_become_a_stop_string_is_released() {
        assert_eq!(run(&["END"], &["xE", "Nz", "q"]), (vec!["x".to_string(), "ENz".to_string(), "q".to_string(), String::new()], false));
        assert_eq!(run(&["END"], &["xEN"]), (vec!["x".to_string(), "EN".to_string()], false));
    }

    #[test]
    fn the_earliest_stop_string_wins_and_no_stops_release_everything() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), (vec!["a".to_string()], true));
        assert_eq!(run(&[], &["ab", "c"]), (vec!["ab".to_string(), "c".to_string(), String::new()], false));
        assert_eq!(run(&["é!"], &["aé", "é!"]), (vec!["a".to_string(), "é".to_string()], true));
    }
}
