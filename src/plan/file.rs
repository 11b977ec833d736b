//! The plan file. Layout, all integers little-endian:
//!
//! ```text
//! 0      magic "LLMCPLAN"
//! 8      format version (u32)
//! 12     metadata length M (u64)
//! 20     metadata: the bincode-encoded `Plan` (M bytes)
//! W      weight blob (plan.weight_bytes), W = 20 + M rounded up to 4096 so it can be mapped
//! end-8  xxh3-64 of every byte before it
//! ```
//!
//! The magic and version come first and are checked before anything is decoded, so a plan of
//! another format version is refused with a message rather than misread. The checksum covers the
//! whole file: a truncated or corrupted plan never runs. Writing goes to a temporary file in the
//! destination's directory, is synced, and is renamed over the destination only when complete.

use super::{Plan, Region, Slot, WeightEntry, LLMC_VERSION};
use crate::error::{Error, Result};
use crate::ir::{DType, WeightId};
use crate::load::{SourceData, WeightSource};
use half::bf16;
use memmap2::Mmap;
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

pub const MAGIC: &[u8; 8] = b"LLMCPLAN";
/// Bumped whenever the layout or the meaning of any field changes.
pub const FORMAT_VERSION: u32 = 2;
const HEADER_BYTES: usize = 20;
const WEIGHTS_ALIGN: u64 = 4096;
/// Metadata larger than this is refused before decoding (a real plan's is a few hundred KiB
/// plus the tokenizer).
const MAX_META_BYTES: u64 = 1 << 30;

fn weights_offset(meta_len: u64) -> u64 {
    crate::arena::align_up(HEADER_BYTES as u64 + meta_len, WEIGHTS_ALIGN)
}

/// Writes `plan` with its weights read from `source`. `progress` is told the number of weight
/// bytes written so far.
pub fn write(plan: &Plan, source: &dyn WeightSource, path: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".llmc-plan-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    let io_err = |e: std::io::Error| Error::io(path, e);
    let meta = bincode::serde::encode_to_vec(plan, bincode::config::standard())
        .map_err(|e| Error::Input(format!("cannot encode the plan: {e}")))?;
    let mut hasher = Xxh3::new();
    let mut out = BufWriter::with_capacity(8 << 20, tmp.as_file());
    let mut put = |bytes: &[u8], out: &mut BufWriter<&std::fs::File>| -> Result<()> {
        hasher.update(bytes);
        out.write_all(bytes).map_err(io_err)
    };
    put(MAGIC, &mut out)?;
    put(&FORMAT_VERSION.to_le_bytes(), &mut out)?;
    put(&(meta.len() as u64).to_le_bytes(), &mut out)?;
    put(&meta, &mut out)?;
    let mut written = HEADER_BYTES as u64 + meta.len() as u64;
    let base = weights_offset(meta.len() as u64);
    let zeros = vec![0u8; WEIGHTS_ALIGN as usize];
    let mut done = 0u64;
    for entry in unique_entries(&plan.weights) {
        let pad = (base + entry.offset - written) as usize;
        put(&zeros[..pad], &mut out)?;
        let bytes = weight_bytes(plan, source, entry)?;
        if bytes.len() != entry.ty.bytes() {
            return Err(Error::TensorMismatch {
                name: entry.id.to_string(),
                got: format!("{} bytes", bytes.len()),
                want: format!("{} bytes", entry.ty.bytes()),
            });
        }
        put(&bytes, &mut out)?;
        written = base + entry.offset + bytes.len() as u64;
        done += bytes.len() as u64;
        progress(done);
    }
    let end = base + plan.weight_bytes;
    put(&zeros[..(end - written) as usize], &mut out)?;
    out.write_all(&hasher.digest().to_le_bytes()).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    drop(out);
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Entries with their own bytes (a tied head shares the embedding's), in blob order.
fn unique_entries(weights: &[WeightEntry]) -> Vec<&WeightEntry> {
    let mut seen = std::collections::HashSet::new();
    let mut v: Vec<&WeightEntry> = weights.iter().filter(|e| seen.insert(e.offset)).collect();
    v.sort_by_key(|e| e.offset);
    v
}

/// The bytes of one blob entry: its parts converted to the entry's dtype and concatenated.
fn weight_bytes<'a>(plan: &Plan, source: &'a dyn WeightSource, entry: &WeightEntry) -> Result<Cow<'a, [u8]>> {
    if entry.id == WeightId::RopeInvFreq {
        let freqs = plan.config.rope_inv_freq();
        return Ok(Cow::Owned(bytemuck::cast_slice(&freqs).to_vec()));
    }
    let parts: Vec<WeightId> = match entry.id {
        WeightId::Layer(l, w) => w.parts().into_iter().map(|p| WeightId::Layer(l, p)).collect(),
        id => vec![id],
    };
    debug_assert_eq!(entry.ty.dtype, DType::BF16);
    if let [only] = parts[..] {
        return to_bf16_bytes(source, only);
    }
    let mut bytes = Vec::with_capacity(entry.ty.bytes());
    for part in parts {
        bytes.extend_from_slice(&to_bf16_bytes(source, part)?);
    }
    Ok(Cow::Owned(bytes))
}

fn to_bf16_bytes(source: &dyn WeightSource, id: WeightId) -> Result<Cow<'_, [u8]>> {
    let t = source.tensor(id)?;
    let bf16_owned = |v: Vec<bf16>| Cow::Owned(bytemuck::cast_slice(&v).to_vec());
    Ok(match t.data {
        SourceData::Bytes { dtype: DType::BF16, bytes } => Cow::Borrowed(bytes),
        SourceData::Bytes { dtype: DType::F16, bytes } => {
            bf16_owned(bytes.par_chunks_exact(2).map(|b| bf16::from_f32(half::f16::from_le_bytes([b[0], b[1]]).to_f32())).collect())
        }
        SourceData::Bytes { dtype: DType::F32, bytes } => {
            bf16_owned(bytes.par_chunks_exact(4).map(|b| bf16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect())
        }
        SourceData::Bytes { dtype, .. } => {
            return Err(Error::TensorMismatch { name: id.to_string(), got: format!("dtype {dtype}"), want: "a float dtype".into() })
        }
        SourceData::Bf16(v) => bf16_owned(v),
    })
}

/// A plan mapped from disk, verified: magic, version, checksum, decodable metadata, llmc
/// version, weight blob in bounds, arena sound.
pub struct PlanFile {
    pub plan: Plan,
    map: Mmap,
    weights_at: usize,
}

impl PlanFile {
    pub fn open(path: &Path) -> Result<PlanFile> {
        let bad = |msg: String| Error::BadPlan { path: path.to_path_buf(), msg };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only map; the checksum below is verified over the mapped bytes before
        // they are used.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if map.len() < HEADER_BYTES + 8 || &map[..8] != MAGIC {
            return Err(bad("not an llmc plan (bad magic or too short)".into()));
        }
        let version = u32::from_le_bytes(map[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(Error::PlanVersion {
                path: path.to_path_buf(),
                found: format!("plan format {version}"),
                expected: format!("plan format {FORMAT_VERSION}"),
            });
        }
        let body = map.len() - 8;
        let stored = u64::from_le_bytes(map[body..].try_into().expect("8 bytes"));
        if xxhash_rust::xxh3::xxh3_64(&map[..body]) != stored {
            return Err(bad("checksum mismatch: the file is truncated or corrupted; recompile it".into()));
        }
        let meta_len = u64::from_le_bytes(map[12..20].try_into().expect("8 bytes"));
        if meta_len > MAX_META_BYTES || HEADER_BYTES as u64 + meta_len > body as u64 {
            return Err(bad(format!("metadata length {meta_len} does not fit the file")));
        }
        let meta = &map[HEADER_BYTES..HEADER_BYTES + meta_len as usize];
        let config = bincode::config::standard().with_limit::<{ 1 << 30 }>();
        let (plan, _): (Plan, usize) =
            bincode::serde::decode_from_slice(meta, config).map_err(|e| bad(format!("undecodable metadata: {e}")))?;
        if plan.llmc_version != LLMC_VERSION {
            return Err(Error::PlanVersion {
                path: path.to_path_buf(),
                found: format!("llmc {}", plan.llmc_version),
                expected: format!("llmc {LLMC_VERSION}"),
            });
        }
        let weights_at = weights_offset(meta_len);
        if weights_at.checked_add(plan.weight_bytes) != Some(body as u64) {
            return Err(bad(format!("weight blob of {} bytes does not fit the file", plan.weight_bytes)));
        }
        for slot in plan.steps.iter().flat_map(|s| s.inputs.iter().chain(&s.outputs)) {
            let limit = if slot.region == Region::Weights { plan.weight_bytes } else { plan.arena_bytes };
            if slot.offset.checked_add(slot.bytes()).is_none_or(|end| end > limit) {
                return Err(bad(format!("slot {} lies outside its region", slot.name)));
            }
        }
        plan.check_arena().map_err(|e| match e {
            Error::BadPlan { msg, .. } => bad(msg),
            other => other,
        })?;
        Ok(PlanFile { plan, weights_at: weights_at as usize, map })
    }

    /// The weight blob, laid out as the plan's entries say.
    pub fn weights(&self) -> &[u8] {
        &self.map[self.weights_at..self.weights_at + self.plan.weight_bytes as usize]
    }

    /// The bytes of a weight slot.
    pub fn weight(&self, slot: &Slot) -> &[u8] {
        &self.weights()[slot.offset as usize..(slot.offset + slot.bytes()) as usize]
    }
}
