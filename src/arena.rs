//! Static memory planning: every activation of the step gets a fixed byte offset in one arena,
//! chosen so that buffers whose lifetimes overlap never share bytes, while buffers that are
//! dead reuse the space of earlier ones. Lifetimes are inclusive step ranges: a buffer read by
//! step `i` is still live while step `i` writes its outputs, so no kernel's output aliases its
//! own input.

use serde::{Deserialize, Serialize};

/// Every offset in the arena is a multiple of this, enough for 16-byte vector loads and for
/// the 128-byte lines a GPU reads.
pub const ALIGN: u64 = 256;

/// A buffer to place: `bytes` long, live from step `first` to step `last` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub bytes: u64,
    pub first: usize,
    pub last: usize,
}

/// Where each buffer went (same order as the lifetimes) and the arena's total size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub offsets: Vec<u64>,
    pub bytes: u64,
}

pub fn align_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

/// Places buffers largest first, each at the lowest aligned offset that does not collide with
/// an already placed buffer of overlapping lifetime. Largest-first keeps big, long-lived
/// buffers (the KV cache) at the bottom and lets small activations pack into the gaps.
pub fn plan(lifetimes: &[Lifetime]) -> Layout {
    let mut order: Vec<usize> = (0..lifetimes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lifetimes[i].bytes), lifetimes[i].first, i));
    let mut offsets = vec![0u64; lifetimes.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0;
    for i in order {
        let me = lifetimes[i];
        let mut busy: Vec<(u64, u64)> =
            placed.iter().filter(|&&j| overlaps_in_time(&me, &lifetimes[j])).map(|&j| (offsets[j], offsets[j] + lifetimes[j].bytes)).collect();
        busy.sort_unstable();
        let mut at = 0;
        for (start, end) in busy {
            if at + me.bytes <= start {
                break;
            }
            at = at.max(align_up(end, ALIGN));
        }
        offsets[i] = at;
        total = total.max(at + me.bytes);
        placed.push(i);
    }
    Layout { offsets, bytes: align_up(total, ALIGN) }
}

fn overlaps_in_time(a: &Lifetime, b: &Lifetime) -> bool {
    a.first <= b.last && b.first <= a.last
}

/// Proves a layout sound: every offset aligned, every buffer inside the arena, and no two
/// buffers that are live at the same step share a byte. Returns the first violation found.
pub fn check(lifetimes: &[Lifetime], layout: &Layout) -> Result<(), String> {
    if layout.offsets.len() != lifetimes.len() {
        return Err(format!("{} offsets for {} buffers", layout.offsets.len(), lifetimes.len()));
    }
    let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(lifetimes.len());
    for (i, (lt, &off)) in lifetimes.iter().zip(&layout.offsets).enumerate() {
        if off % ALIGN != 0 {
            return Err(format!("buffer {i} at offset {off} is not {ALIGN}-byte aligned"));
        }
        let end = off.checked_add(lt.bytes).ok_or_else(|| format!("buffer {i} overflows"))?;
        if end > layout.bytes {
            return Err(format!("buffer {i} ends at {end}, past the arena's {} bytes", layout.bytes));
        }
        if lt.bytes > 0 {
            spans.push((off, end, i));
        }
    }
    // Sweep by offset: only buffers whose byte ranges intersect need a lifetime comparison.
    spans.sort_unstable();
    for (k, &(start, end, i)) in spans.iter().enumerate() {
        for &(other_start, _, j) in &spans[k + 1..] {
            if other_start >= end {
                break;
            }
            if overlaps_in_time(&lifetimes[i], &lifetimes[j]) {
                return Err(format!(
                    "buffers {i} (bytes {start}..{end}, steps {}..={}) and {j} (from byte {other_start}, steps {}..={}) overlap while both live",
                    lifetimes[i].first, lifetimes[i].last, lifetimes[j].first, lifetimes[j].last
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lifetimes of a random dataflow graph: node `i` is computed at step `i` and read by a
    /// random set of later nodes; its buffer lives until its last reader.
    fn random_graph() -> impl Strategy<Value = Vec<Lifetime>> {
        (2usize..60).prop_flat_map(|n| {
            let sizes = prop::collection::vec(1u64..5000, n);
            let edges = prop::collection::vec((0..n, 1usize..8), n);
            (sizes, edges).prop_map(move |(sizes, edges)| {
                let mut last: Vec<usize> = (0..n).collect();
                for (i, &(from, span)) in edges.iter().enumerate() {
                    let reader = (from + span).min(n - 1);
                    last[from] = last[from].max(reader);
                    last[i] = last[i].max(i);
                }
                (0..n).map(|i| Lifetime { bytes: sizes[i], first: i, last: last[i] }).collect()
            })
        })
    }

    proptest! {
        #[test]
        fn planned_layouts_pass_the_checker(lts in random_graph()) {
            let layout = plan(&lts);
            prop_assert_eq!(check(&lts, &layout), Ok(()));
            // Reuse happens: never more than the sum of all buffers.
            let sum: u64 = lts.iter().map(|l| align_up(l.bytes, ALIGN)).sum();
            prop_assert!(layout.bytes <= sum);
        }
    }

    #[test]
    fn dead_buffers_are_reused() {
        let lts = [Lifetime { bytes: 1000, first: 0, last: 1 }, Lifetime { bytes: 1000, first: 1, last: 2 }, Lifetime { bytes: 1000, first: 2, last: 3 }];
        let layout = plan(&lts);
        assert_eq!(layout.offsets[0], layout.offsets[2], "buffer 2 should take buffer 0's place");
        assert_ne!(layout.offsets[0], layout.offsets[1]);
        check(&lts, &layout).unwrap();
    }

    #[test]
    fn checker_catches_overlap_and_misalignment() {
        let lts = [Lifetime { bytes: 512, first: 0, last: 2 }, Lifetime { bytes: 512, first: 1, last: 3 }];
        let overlapping = Layout { offsets: vec![0, 256], bytes: 1024 };
        assert!(check(&lts, &overlapping).unwrap_err().contains("overlap"));
        let misaligned = Layout { offsets: vec![0, 520], bytes: 2048 };
        assert!(check(&lts, &misaligned).unwrap_err().contains("aligned"));
        let outside = Layout { offsets: vec![0, 512], bytes: 768 };
        assert!(check(&lts, &outside).unwrap_err().contains("past the arena"));
    }
}
