//! Block timestamps of a graph plan's decode step (`llmc bench --trace` on a plan whose kernels
//! were compiled with `LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1"`): thread 0 of every block of
//! every kernel in the graph records its grid, SM, block and the times it started, its wait
//! returned and it left (kernels/common.cuh, BlockTraceScope), so the boundaries between kernels,
//! which programmatic dependent launch overlaps, can be seen where no profiler runs.

use super::launch::Launch;
use crate::error::{Error, Result};
use cudarc::driver::{result as cu, sys};
use std::collections::BTreeMap;
use std::ffi::CString;

/// Bytes of one BlockStamp (four u64, four u32).
const STAMP_BYTES: usize = 48;

/// The module's trace buffers: `block_trace` (the stamps, TRACE_BLOCK_SLOTS an SM) and
/// `block_trace_count` (slots taken on each SM).
#[derive(Clone, Copy, Debug)]
pub(super) struct BlockTrace {
    stamps: sys::CUdeviceptr,
    counts: sys::CUdeviceptr,
    sms: usize,
    slots: usize,
}

/// One block of one launch: nanoseconds from the step's first block start.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockRow {
    /// The launch's place in the graph (0 is the step's first kernel).
    pub launch: usize,
    pub kernel: &'static str,
    pub label: String,
    pub block: u32,
    pub sm: u32,
    pub started_ns: i64,
    /// When thread 0's wait for the previous kernel returned; None if it never waited.
    pub waited_ns: Option<i64>,
    /// When thread 0 passed the kernel's phase marks 0 and 1 after its wait (`trace_mark`: for
    /// a GEMV x staged, then its warp's rows summed, the last task's where a warp runs several; attention q loaded, then P.V done; the fused
    /// MLP gate/up done, then down done); None where it did not.
    pub marks_ns: [Option<i64>; 2],
    pub left_ns: i64,
}

impl BlockTrace {
    /// The buffers, if the module's kernels (`ptx`, its source) were compiled with TRACE_BLOCKS.
    /// The PTX is searched first: asking the driver for a symbol the module lacks is an API error,
    /// which compute-sanitizer reports.
    pub(super) fn find(module: sys::CUmodule, ptx: &str) -> Option<BlockTrace> {
        if !ptx.contains("block_trace_count") {
            return None;
        }
        let global = |name: &str| {
            // SAFETY: the module is loaded; a missing symbol is an error value, not a fault.
            unsafe { cu::module::get_global(module, CString::new(name).expect("no NUL")) }.ok()
        };
        let (stamps, stamp_bytes) = global("block_trace")?;
        let (counts, count_bytes) = global("block_trace_count")?;
        let sms = count_bytes / 4;
        Some(BlockTrace { stamps, counts, sms, slots: stamp_bytes / STAMP_BYTES / sms.max(1) })
    }

    /// Zeroes the per-SM counts (on `stream`, before the traced step).
    pub(super) fn arm(&self, stream: sys::CUstream) -> Result<()> {
        // SAFETY: the counts are `sms` u32 of the module's global.
        unsafe { cu::memset_d8_async(self.counts, 0, 4 * self.sms, stream) }.map_err(|reason| Error::Cuda { what: "arming the block trace".into(), reason })
    }

    /// The stamps the step wrote (after the stream has finished it), as rows of `launches`:
    /// grids in the order of their ids, which must match the graph's launches one for one, each
    /// with its grid's number of blocks.
    pub(super) fn rows(&self, launches: &[Launch]) -> Result<Vec<BlockRow>> {
        let read_err = |reason| Error::Cuda { what: "reading the block trace".into(), reason };
        let mut counts = vec![0u32; self.sms];
        let mut words = vec![0u64; self.sms * self.slots * STAMP_BYTES / 8];
        // SAFETY: both globals hold at least these many bytes (their sizes from the module).
        unsafe {
            cu::memcpy_dtoh_sync(&mut counts[..], self.counts).map_err(read_err)?;
            cu::memcpy_dtoh_sync(&mut words[..], self.stamps).map_err(read_err)?;
        }
        rows_of(&counts, &words, self.slots, launches)
    }
}

/// [`BlockTrace::rows`] from what it read: `counts[sm]` slots taken of each SM's `slots`, and
/// the stamps (six words each: grid, start, wait, end, block | sm << 32, mark 0 | mark 1 << 32,
/// the marks in nanoseconds after the wait, 0 for none).
fn rows_of(counts: &[u32], words: &[u64], slots: usize, launches: &[Launch]) -> Result<Vec<BlockRow>> {
    let mut grids: BTreeMap<u64, Vec<[u64; 6]>> = BTreeMap::new();
    for (sm, &taken) in counts.iter().enumerate() {
        if taken as usize > slots {
            return Err(Error::Input(format!("SM {sm} ran {taken} blocks in one step, more than the trace's {slots} slots")));
        }
        for slot in 0..taken as usize {
            let at = (sm * slots + slot) * STAMP_BYTES / 8;
            let stamp: [u64; 6] = words[at..at + 6].try_into().expect("six words");
            grids.entry(stamp[0]).or_default().push(stamp);
        }
    }
    let blocks = |l: &Launch| (l.grid.0 * l.grid.1 * l.grid.2) as usize;
    if grids.len() != launches.len() || grids.values().zip(launches).any(|(g, l)| g.len() != blocks(l)) {
        let traced: Vec<usize> = grids.values().map(Vec::len).collect();
        let planned: Vec<usize> = launches.iter().map(blocks).collect();
        return Err(Error::Internal(format!("the trace's grids (blocks {traced:?}) do not match the graph's launches ({planned:?})")));
    }
    let origin = grids.values().flatten().map(|s| s[1]).min().unwrap_or(0) as i64;
    let mut rows = Vec::new();
    for (launch, (stamps, l)) in grids.values().zip(launches).enumerate() {
        for s in stamps {
            rows.push(BlockRow {
                launch,
                kernel: l.kernel,
                label: l.label.clone(),
                block: s[4] as u32,
                sm: (s[4] >> 32) as u32,
                started_ns: s[1] as i64 - origin,
                waited_ns: (s[2] != 0).then(|| s[2] as i64 - origin),
                marks_ns: [s[5] as u32, (s[5] >> 32) as u32].map(|m| (s[2] != 0 && m != 0).then(|| s[2] as i64 + i64::from(m) - origin)),
                left_ns: s[3] as i64 - origin,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(kernel: &'static str, blocks: u32) -> Launch {
        Launch { kernel, grid: (blocks, 1, 1), block: 128, shared: 0, args: Vec::new(), label: format!("{kernel} step"), tasks: blocks, cluster: 1 }
    }

    /// Two SMs of four slots; each stamp (grid, start, wait, end, block, sm).
    fn device(stamps: &[(u64, u64, u64, u64, u32, u32)]) -> (Vec<u32>, Vec<u64>) {
        let (sms, slots) = (2, 4);
        let (mut counts, mut words) = (vec![0u32; sms], vec![0u64; sms * slots * 6]);
        for &(grid, start, wait, end, block, sm) in stamps {
            let at = (sm as usize * slots + counts[sm as usize] as usize) * 6;
            words[at..at + 5].copy_from_slice(&[grid, start, wait, end, u64::from(block) | u64::from(sm) << 32]);
            counts[sm as usize] += 1;
        }
        (counts, words)
    }

    #[test]
    fn grids_become_the_launches_in_id_order() {
        // grid 9 (the second launch) on both SMs, grid 7 (the first) on SM 1; times from 1,000 ns
        let (counts, words) = device(&[(9, 1_500, 2_000, 2_600, 1, 0), (7, 1_000, 0, 1_900, 0, 1), (9, 1_600, 2_100, 2_500, 0, 1)]);
        let rows = rows_of(&counts, &words, 4, &[launch("embedding", 1), launch("linear", 2)]).unwrap();
        let seen: Vec<_> = rows.iter().map(|r| (r.launch, r.kernel, r.block, r.sm, r.started_ns, r.waited_ns, r.left_ns)).collect();
        assert_eq!(seen, [(0, "embedding", 0, 1, 0, None, 900), (1, "linear", 1, 0, 500, Some(1_000), 1_600), (1, "linear", 0, 1, 600, Some(1_100), 1_500)]);
    }

    #[test]
    fn marks_are_times_after_the_wait() {
        let (counts, mut words) = device(&[(7, 1_000, 2_000, 2_900, 0, 0), (7, 1_100, 0, 1_900, 1, 0)]);
        words[5] = 300 | 700 << 32; // marks 300 and 700 ns after the wait at 2,000
        words[6 + 5] = 300; // a mark of a block that never waited is none
        let rows = rows_of(&counts, &words, 4, &[launch("linear", 2)]).unwrap();
        assert_eq!(rows[0].marks_ns, [Some(1_300), Some(1_700)]);
        assert_eq!(rows[1].marks_ns, [None, None]);
    }

    #[test]
    fn a_trace_that_does_not_match_the_graph_is_refused() {
        let (counts, words) = device(&[(7, 1_000, 0, 1_900, 0, 0), (9, 1_500, 2_000, 2_600, 0, 1)]);
        // one block short of the second launch's grid
        let err = rows_of(&counts, &words, 4, &[launch("embedding", 1), launch("linear", 2)]).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
        // more blocks on an SM than it has slots
        let err = rows_of(&[5, 0], &words, 4, &[launch("embedding", 1)]).unwrap_err();
        assert!(err.to_string().contains("more than the trace's 4 slots"), "{err}");
    }
}
