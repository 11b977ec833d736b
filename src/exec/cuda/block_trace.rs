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
        let mut grids: BTreeMap<u64, Vec<[u64; 6]>> = BTreeMap::new();
        for (sm, &taken) in counts.iter().enumerate() {
            if taken as usize > self.slots {
                return Err(Error::Input(format!("SM {sm} ran {taken} blocks in one step, more than the trace's {} slots", self.slots)));
            }
            for slot in 0..taken as usize {
                let at = (sm * self.slots + slot) * STAMP_BYTES / 8;
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
                    left_ns: s[3] as i64 - origin,
                });
            }
        }
        Ok(rows)
    }
}
