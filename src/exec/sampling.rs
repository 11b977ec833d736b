//! Choosing the next token from logits: greedy, or seeded temperature / top-k / top-p sampling.
//! The random draw for position `pos` is a pure function of (seed, pos), so a run is
//! reproducible and a GPU sampler can draw the very same number.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1 keeps all.
    pub top_p: f32,
    pub seed: u64,
}

impl SamplingParams {
    pub const GREEDY: SamplingParams = SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 };

    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Input(format!("--temperature {} must be >= 0", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Input(format!("--top-p {} must be in (0, 1]", self.top_p)));
        }
        Ok(())
    }
}

/// A uniform number in [0, 1) for position `pos`: splitmix64 of the seed and the position.
pub fn uniform(seed: u64, pos: u64) -> f64 {
    let mut z = seed ^ pos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Working memory for sampling over a vocabulary, allocated once.
#[derive(Default)]
pub struct Scratch {
    order: Vec<u32>,
    weights: Vec<f64>,
}

impl Scratch {
    pub fn new(vocab: usize) -> Scratch {
        Scratch { order: Vec::with_capacity(vocab), weights: Vec::with_capacity(vocab) }
    }
}

/// The token chosen for position `pos`. Refuses logits holding NaN or infinity: they mean the
/// computation broke, and sampling from them would print garbage.
pub fn sample(logits: &[f32], params: &SamplingParams, pos: u64, scratch: &mut Scratch) -> Result<u32> {
    if let Some(i) = logits.iter().position(|x| !x.is_finite()) {
        return Err(Error::Numeric(format!("logit {i} is {} at position {pos}", logits[i])));
    }
    let argmax = || {
        // First maximum wins, as torch.argmax does.
        logits.iter().enumerate().fold(0, |best, (i, &x)| if x > logits[best] { i } else { best }) as u32
    };
    if params.temperature == 0.0 || params.top_k == 1 {
        return Ok(argmax());
    }
    let Scratch { order, weights } = scratch;
    order.clear();
    order.extend(0..logits.len() as u32);
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    if params.top_k > 0 && params.top_k < order.len() {
        order.select_nth_unstable_by(params.top_k - 1, by_logit);
        order.truncate(params.top_k);
    }
    order.sort_unstable_by(by_logit);
    let max = logits[order[0] as usize];
    weights.clear();
    weights.extend(order.iter().map(|&i| (((logits[i as usize] - max) / params.temperature) as f64).exp()));
    let total: f64 = weights.iter().sum();
    // top-p: the shortest prefix whose mass reaches top_p.
    let mut keep = weights.len();
    let mut mass = 0.0;
    for (i, w) in weights.iter().enumerate() {
        mass += w / total;
        if mass >= params.top_p as f64 {
            keep = i + 1;
            break;
        }
    }
    let kept: f64 = weights[..keep].iter().sum();
    let mut target = uniform(params.seed, pos) * kept;
    for (i, w) in weights[..keep].iter().enumerate() {
        target -= w;
        if target < 0.0 {
            return Ok(order[i]);
        }
    }
    Ok(order[keep - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(sample(&[0.0, 3.0, 3.0, -1.0], &SamplingParams::GREEDY, 0, &mut Scratch::default()).unwrap(), 1);
    }

    #[test]
    fn nan_is_refused() {
        let err = sample(&[0.0, f32::NAN], &SamplingParams::GREEDY, 7, &mut Scratch::default()).unwrap_err().to_string();
        assert!(err.contains("NaN") && err.contains("position 7"), "{err}");
    }

    #[test]
    fn top_k_and_top_p_restrict_the_choice() {
        let logits = [5.0, 4.9, 0.0, -3.0, 4.8];
        let p = |top_k, top_p| SamplingParams { temperature: 1.0, top_k, top_p, seed: 42 };
        for pos in 0..200 {
            assert!([0, 1].contains(&sample(&logits, &p(2, 1.0), pos, &mut Scratch::default()).unwrap()));
            assert_eq!(sample(&logits, &p(0, 0.01), pos, &mut Scratch::default()).unwrap(), 0);
        }
        // With all tokens allowed, the draw covers the top three over many positions.
        let seen: std::collections::BTreeSet<u32> = (0..300).map(|pos| sample(&logits, &p(0, 1.0), pos, &mut Scratch::default()).unwrap()).collect();
        assert!(seen.is_superset(&[0, 1, 4].into()), "{seen:?}");
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = SamplingParams { temperature: 0.8, top_k: 20, top_p: 0.9, seed: 7 };
        let a: Vec<u32> = (0..20).map(|pos| sample(&logits, &p, pos, &mut Scratch::default()).unwrap()).collect();
        let b: Vec<u32> = (0..20).map(|pos| sample(&logits, &p, pos, &mut Scratch::default()).unwrap()).collect();
        assert_eq!(a, b);
        let other = SamplingParams { seed: 8, ..p };
        let c: Vec<u32> = (0..20).map(|pos| sample(&logits, &other, pos, &mut Scratch::default()).unwrap()).collect();
        assert_ne!(a, c);
    }
}
