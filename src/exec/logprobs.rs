//! Log-probabilities of the model's next-token distribution (the softmax of the raw logits, at
//! temperature 1, whatever the sampler's settings), as OpenAI's `logprobs` report them: the chosen
//! token's and the few most likely tokens'.

use serde::Serialize;

/// The chosen token's log-probability and the `k` most likely tokens' (most likely first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprobs {
    pub token: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// `token`'s log-probability under `logits` and the `k` most likely tokens', ties going to the
/// lower id. The normalizer is summed in f64 from the maximum, so no term overflows.
pub fn top_logprobs(logits: &[f32], token: u32, k: usize) -> TokenLogprobs {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let log_total = f64::from(max) + logits.iter().map(|&l| f64::from(l - max).exp()).sum::<f64>().ln();
    let logprob = |i: usize| (f64::from(logits[i]) - log_total) as f32;
    // k is at most a handful: keep the best k in order while scanning once.
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for (i, &l) in logits.iter().enumerate() {
        if best.len() < k || best.last().is_some_and(|&b| l > logits[b]) {
            let at = best.partition_point(|&b| logits[b] >= l);
            best.insert(at, i);
            best.truncate(k);
        }
    }
    TokenLogprobs { token, logprob: logprob(token as usize), top: best.into_iter().map(|i| (i as u32, logprob(i))).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_the_log_softmax_and_the_top_is_ordered() {
        let logits = [1.0, 3.0, 2.0, 3.0, -5.0];
        let lp = top_logprobs(&logits, 2, 3);
        let total: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        let want = |i: usize| (f64::from(logits[i]).exp() / total).ln() as f32;
        assert!((lp.logprob - want(2)).abs() < 1e-6);
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3, 2], "ties go to the lower id");
        for (id, l) in &lp.top {
            assert!((l - want(*id as usize)).abs() < 1e-6);
        }
        assert!(top_logprobs(&logits, 4, 0).top.is_empty());
    }

    #[test]
    fn huge_logits_do_not_overflow() {
        let lp = top_logprobs(&[1e30, 0.0], 0, 1);
        assert_eq!(lp.logprob, 0.0);
        assert_eq!(lp.top, [(0, 0.0)]);
    }
}
