//! Choosing the next token from logits: greedy, or seeded temperature / top-k / top-p sampling.
//! The random draw for position `pos` is a pure function of (seed, pos), so a run is
//! reproducible and the GPU's sampler (`sample_top` in kernels/sample.cu) draws the very same
//! token from the same logits.
//!
//! The function, defined without sorting so that a GPU computes it in a few passes, and with
//! every rounding pinned down so that both sides agree to the bit:
//! 1. A non-finite logit anywhere is an error. Temperature 0 or top_k 1: the argmax, the first
//!    maximum winning.
//! 2. m = the largest logit. With 0 < top_k < vocab the candidates are the tokens whose logit is
//!    >= the k-th largest logit (ties at that threshold are all kept); otherwise every token.
//! 3. A candidate's weight is `weight`: exp((l - m) / temperature) from f32 operations rounded
//!    one by one (no library exp: CUDA's and libm's differ in the last bits), as an integer with
//!    40 fraction bits. Masses are exact u64 sums of weights, so the order of summation (atomics
//!    on the GPU) does not matter.
//! 4. With top_p < 1: T = the candidates' mass, need = min(ceil(top_p * T), T) in f64; the kept
//!    tokens are the candidates whose logit is >= the largest candidate logit v such that the
//!    candidates with logit >= v weigh at least `need`. With top_p = 1 every candidate is kept.
//! 5. S = the kept mass; r = floor(u * S) for u = [`random_bits`]`(seed, pos)` / 2^53; walking
//!    the kept tokens in index order, the token is the first at which the running mass exceeds r
//!    (one does: r < S).
//!
//! Thresholds are found by descending the logits' order-preserving u32 keys (`key`) with
//! histograms, 12, 10 and 10 bits at a time, on both sides.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (and any tied with the k-th); 0 keeps all.
    pub top_k: usize,
    /// Keep the most likely tokens whose probability reaches `top_p` (step 4 above); 1 keeps all.
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

    /// Whether the token is the argmax (step 1).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }
}

/// 53 random bits for position `pos`: splitmix64 of the seed and the position.
pub fn random_bits(seed: u64, pos: u64) -> u64 {
    let mut z = seed ^ pos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z >> 11
}

/// Fraction bits of a weight: the most likely token weighs 2^40, so a vocabulary of up to 2^23
/// tokens sums within a u64, and tokens below 2^-40 of it weigh nothing.
const WEIGHT_BITS: i32 = 40;

/// The order-preserving key of a finite logit: a larger logit has a larger key; -0 and +0 share one.
fn key(x: f32) -> u32 {
    let u = (x + 0.0).to_bits();
    if u >> 31 == 1 {
        !u
    } else {
        u | 0x8000_0000
    }
}

/// exp((l - m) / t) for l <= m, times 2^WEIGHT_BITS, truncated: Cody-Waite reduction to
/// 2^n * e^r with |r| <= ln2/2 and a degree-7 Taylor polynomial (relative error below 1e-6),
/// each f32 operation rounded on its own, as `sample_weight` in kernels/sample.cu does them.
/// Below e^-86 it is 0, so every product stays a normal number.
fn weight(l: f32, m: f32, t: f32) -> u64 {
    let x = (l - m) / t;
    if x < -86.0 {
        return 0;
    }
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = (x - n * 6.931_457_5e-1) - n * 1.428_606_8e-6;
    let mut p = 1.984_127e-4;
    for c in [1.388_888_9e-3, 8.333_334e-3, 4.166_666_8e-2, 1.666_666_7e-1, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    (p * f32::from_bits(((127 + WEIGHT_BITS + n as i32) as u32) << 23)) as u64
}

/// The largest key K such that the tokens with keys >= K weigh at least `want` (which the
/// total weight reaches), found 12, 10 and 10 bits at a time from the top: histograms of the
/// tokens whose higher bits match the digits chosen so far. (The first digit is wide so that the
/// GPU's histogram atomics, which pile up on the few exponents logits span, spread out.)
fn descend(keys: &[u32], weight_of: impl Fn(usize) -> u64, want: u64) -> u32 {
    let (mut prefix, mut above, mut hi) = (0u32, 0u64, 32);
    for shift in [20, 10, 0] {
        let mut bins = [0u64; 1 << 12];
        let mask = (1u32 << (hi - shift)) - 1;
        for (i, &k) in keys.iter().enumerate() {
            if u64::from(k ^ prefix) >> hi == 0 {
                bins[(k >> shift & mask) as usize] += weight_of(i);
            }
        }
        let mut digit = mask as usize;
        while above + bins[digit] < want {
            above += bins[digit];
            digit -= 1;
        }
        prefix |= (digit as u32) << shift;
        hi = shift;
    }
    prefix
}

/// Working memory for sampling over a vocabulary, allocated once.
#[derive(Default)]
pub struct Scratch {
    keys: Vec<u32>,
    weights: Vec<u64>,
}

impl Scratch {
    pub fn new(vocab: usize) -> Scratch {
        Scratch { keys: Vec::with_capacity(vocab), weights: Vec::with_capacity(vocab) }
    }
}

/// The token chosen for position `pos` (the function in the module docs). Refuses logits
/// holding NaN or infinity: they mean the computation broke, and sampling from them would
/// print garbage.
pub fn sample(logits: &[f32], params: &SamplingParams, pos: u64, scratch: &mut Scratch) -> Result<u32> {
    if let Some(i) = logits.iter().position(|x| !x.is_finite()) {
        return Err(Error::Numeric(format!("logit {i} is {} at position {pos}", logits[i])));
    }
    if params.is_greedy() {
        // First maximum wins, as torch.argmax does.
        return Ok(logits.iter().enumerate().fold(0, |best, (i, &x)| if x > logits[best] { i } else { best }) as u32);
    }
    let Scratch { keys, weights } = scratch;
    keys.clear();
    keys.extend(logits.iter().map(|&l| key(l)));
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    // The smallest key kept: the k-th largest logit's, then top-p's threshold.
    let mut floor = 0;
    if params.top_k > 0 && params.top_k < logits.len() {
        floor = descend(keys, |_| 1, params.top_k as u64);
    }
    weights.clear();
    weights.extend(logits.iter().zip(keys.iter()).map(|(&l, &k)| if k >= floor { weight(l, max, params.temperature) } else { 0 }));
    if params.top_p < 1.0 {
        let total: u64 = weights.iter().sum();
        let need = ((params.top_p as f64 * total as f64).ceil() as u64).min(total);
        floor = descend(keys, |i| weights[i], need);
    }
    let kept = |i: &usize| keys[*i] >= floor;
    let mass: u64 = (0..logits.len()).filter(kept).map(|i| weights[i]).sum();
    let r = ((u128::from(random_bits(params.seed, pos)) * u128::from(mass)) >> 53) as u64;
    let mut run = 0;
    let token = (0..logits.len()).filter(kept).find(|&i| {
        run += weights[i];
        run > r
    });
    Ok(token.expect("the running mass ends at the kept mass, which exceeds r") as u32)
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
    fn weights_follow_exp() {
        assert_eq!(weight(3.5, 3.5, 0.7), 1 << WEIGHT_BITS);
        for i in 0..=8600 {
            let x = -(i as f32) * 0.01;
            let want = (x as f64).exp() * (1u64 << WEIGHT_BITS) as f64;
            let got = weight(x, 0.0, 1.0) as f64;
            assert!((got - want).abs() <= 1e-6 * want + 1.0, "exp({x}): {got} against {want}");
        }
        assert_eq!(weight(-87.0, 0.0, 1.0), 0);
    }

    #[test]
    fn keys_keep_the_order() {
        let xs = [f32::MIN, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, f32::MAX];
        assert!(xs.windows(2).all(|w| key(w[0]) < key(w[1]) || w[0] == w[1]));
        assert_eq!(key(-0.0), key(0.0));
    }

    /// A hand-checked case. Top-3 of the logits keeps both 3.0s and both 2.0s (the tie at the
    /// third largest), weighing 1, 1, e^-1, e^-1 (in units of 2^40; T = 2.736). top_p 0.7 needs
    /// 1.915, which the two 3.0s reach: the draw is token 1 when u < 1/2, else token 3. top_p
    /// 0.75 needs 2.052, so the 2.0s are kept too.
    #[test]
    fn ties_at_top_k_and_the_top_p_threshold() {
        let logits = [1.0, 3.0, 2.0, 3.0, 2.0, 0.0];
        let p = |top_p| SamplingParams { temperature: 1.0, top_k: 3, top_p, seed: 9 };
        let draw = |top_p, pos| sample(&logits, &p(top_p), pos, &mut Scratch::default()).unwrap();
        for pos in 0..200 {
            let want = if random_bits(9, pos) < 1 << 52 { 1 } else { 3 };
            assert_eq!(draw(0.7, pos), want, "position {pos}");
        }
        let seen: std::collections::BTreeSet<u32> = (0..300).map(|pos| draw(0.75, pos)).collect();
        assert_eq!(seen, [1, 2, 3, 4].into());
        let seen: std::collections::BTreeSet<u32> = (0..300).map(|pos| draw(1.0, pos)).collect();
        assert_eq!(seen, [1, 2, 3, 4].into());
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
