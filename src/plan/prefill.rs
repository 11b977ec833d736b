//! The prefill layout: the decode schedule run over a chunk of up to `chunk` prompt tokens at
//! once. Every activation of the step (and the token input) is widened to `chunk` rows, row `t`
//! holding prompt token `t`'s value, and placed in a separate prefill arena by the same planner
//! from lifetimes re-derived from the steps as [`Plan::check_arena`] does (values keyed by slot
//! name), then proved sound by [`arena::check`]. What is not widened stays where the decode plan
//! put it: weights, the KV caches (prefill writes rows `start..start+n`), the position (the
//! backends pass the chunk's start directly), the logits and the sampled token (the LM head and
//! the sampler run on the chunk's last row only).

use super::{Plan, Region, Slot};
use crate::arena::{self, Lifetime};
use crate::error::{Error, Result};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct PrefillLayout {
    /// Rows per pass: the most prompt tokens one prefill pass takes.
    pub chunk: usize,
    /// Bytes of the prefill arena.
    pub bytes: u64,
    /// Widened values by slot name: offset in the prefill arena.
    offsets: HashMap<String, u64>,
}

impl PrefillLayout {
    /// Where `slot`'s rows live in the prefill arena (row `t` at `offset + t * slot.bytes()`), or
    /// None for a slot prefill reads and writes where the decode plan put it.
    pub fn offset(&self, slot: &Slot) -> Option<u64> {
        self.offsets.get(&slot.name).copied()
    }

    /// Widened values, for tests and listings.
    pub fn values(&self) -> usize {
        self.offsets.len()
    }
}

impl Plan {
    /// Whether prefill widens `slot` to one row per prompt token.
    fn widened(&self, slot: &Slot) -> bool {
        let io = &self.io;
        slot.region == Region::Arena && !slot.name.starts_with("kv.") && ![&io.position, &io.logits, &io.next_token].iter().any(|p| p.name == slot.name)
    }

    /// Lays out the prefill arena for chunks of up to `chunk` tokens.
    pub fn prefill_layout(&self, chunk: usize) -> Result<PrefillLayout> {
        let bad = |msg: String| Error::BadPlan { path: "plan".into(), msg: format!("prefill layout: {msg}") };
        if chunk == 0 {
            return Err(bad("the chunk must hold at least one token".into()));
        }
        let mut names: Vec<&str> = Vec::new();
        let mut lifetimes: Vec<Lifetime> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let uses = self.steps.iter().enumerate().flat_map(|(i, s)| s.inputs.iter().chain(&s.outputs).map(move |slot| (i, slot)));
        for (i, slot) in uses {
            if !self.widened(slot) {
                continue;
            }
            // The token rows are written before the first step.
            let first = if slot.name == self.io.token.name { 0 } else { i };
            let bytes = slot.bytes().checked_mul(chunk as u64).ok_or_else(|| bad(format!("{} overflows", slot.name)))?;
            let k = *index.entry(&slot.name).or_insert_with(|| {
                names.push(&slot.name);
                lifetimes.push(Lifetime { bytes, first, last: i });
                lifetimes.len() - 1
            });
            if lifetimes[k].bytes != bytes {
                return Err(bad(format!("value {} has two sizes", slot.name)));
            }
            lifetimes[k].last = lifetimes[k].last.max(i);
        }
        let layout = arena::plan(&lifetimes);
        arena::check(&lifetimes, &layout).map_err(|e| bad(format!("arena layout is unsound: {e}")))?;
        let offsets = names.iter().zip(&layout.offsets).map(|(n, &o)| (n.to_string(), o)).collect();
        Ok(PrefillLayout { chunk, bytes: layout.bytes, offsets })
    }
}
