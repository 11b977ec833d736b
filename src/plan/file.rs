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
use crate::load::{FileRange, SourceData, WeightSource};
use half::bf16;
use memmap2::Mmap;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

pub const MAGIC: &[u8; 8] = b"LLMCPLAN";
/// Bumped whenever the layout or the meaning of any field changes (3: f32 activations; 4: the
/// persistent decode program).
pub const FORMAT_VERSION: u32 = 4;
const HEADER_BYTES: usize = 20;
const WEIGHTS_ALIGN: u64 = 4096;
/// Metadata larger than this is refused before decoding (a real plan's is a few hundred KiB
/// plus the tokenizer).
const MAX_META_BYTES: u64 = 1 << 30;

fn weights_offset(meta_len: u64) -> u64 {
    crate::arena::align_up(HEADER_BYTES as u64 + meta_len, WEIGHTS_ALIGN)
}

/// The output file being written: every byte goes through the checksum, and bytes that already
/// lie in a source file are copied file to file (`copy_file_range`), which on Linux is several
/// times faster than writing them from user space.
struct Sink<'f> {
    out: BufWriter<&'f std::fs::File>,
    hasher: Xxh3,
    written: u64,
}

impl Sink<'_> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn copy(&mut self, bytes: &[u8], from: FileRange<'_>) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.out.flush()?;
        let mut src = from.file;
        src.seek(SeekFrom::Start(from.offset))?;
        let mut dst: &std::fs::File = self.out.get_ref();
        let copied = std::io::copy(&mut src.take(bytes.len() as u64), &mut dst)?;
        if copied != bytes.len() as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "source file shrank while compiling"));
        }
        Ok(())
    }

    fn pad_to(&mut self, at: u64) -> std::io::Result<()> {
        const ZEROS: [u8; WEIGHTS_ALIGN as usize] = [0; WEIGHTS_ALIGN as usize];
        while self.written < at {
            let n = (at - self.written).min(WEIGHTS_ALIGN) as usize;
            self.put(&ZEROS[..n])?;
        }
        Ok(())
    }
}

/// Writes `plan` with its weights read from `source`. `progress` is told the number of weight
/// bytes written so far and answers whether to go on; when it says stop (Ctrl-C), the temporary
/// file is removed and the destination is left as it was.
pub fn write(plan: &Plan, source: &dyn WeightSource, path: &Path, progress: &(dyn Fn(u64) -> bool + Sync)) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new().prefix(".llmc-plan-").tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
    let io_err = |e: std::io::Error| Error::io(path, e);
    let meta = bincode::serde::encode_to_vec(plan, bincode::config::standard()).map_err(|e| Error::Input(format!("cannot encode the plan: {e}")))?;
    let mut sink = Sink { out: BufWriter::with_capacity(8 << 20, tmp.as_file()), hasher: Xxh3::new(), written: 0 };
    sink.put(MAGIC).map_err(io_err)?;
    sink.put(&FORMAT_VERSION.to_le_bytes()).map_err(io_err)?;
    sink.put(&(meta.len() as u64).to_le_bytes()).map_err(io_err)?;
    sink.put(&meta).map_err(io_err)?;
    let base = weights_offset(meta.len() as u64);
    let mut done = 0u64;
    for entry in unique_entries(&plan.weights) {
        sink.pad_to(base + entry.offset).map_err(io_err)?;
        write_weight(plan, source, entry, &mut sink)?;
        let wrote = sink.written - base - entry.offset;
        if wrote != entry.ty.bytes() as u64 {
            return Err(Error::TensorMismatch { name: entry.id.to_string(), got: format!("{wrote} bytes"), want: format!("{} bytes", entry.ty.bytes()) });
        }
        done += wrote;
        if !progress(done) {
            return Err(Error::Interrupted);
        }
    }
    sink.pad_to(base + plan.weight_bytes).map_err(io_err)?;
    let digest = sink.hasher.digest();
    sink.out.write_all(&digest.to_le_bytes()).map_err(io_err)?;
    sink.out.flush().map_err(io_err)?;
    drop(sink);
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

/// Writes one blob entry: its parts converted to bf16, back to back (`[q; k; v]`, `[gate; up]`).
fn write_weight(plan: &Plan, source: &dyn WeightSource, entry: &WeightEntry, sink: &mut Sink) -> Result<()> {
    let io_err = |e: std::io::Error| Error::io("plan", e);
    if entry.id == WeightId::RopeInvFreq {
        return sink.put(bytemuck::cast_slice(&plan.config.rope_inv_freq())).map_err(io_err);
    }
    let parts: Vec<WeightId> = match entry.id {
        WeightId::Layer(l, w) => w.parts().into_iter().map(|p| WeightId::Layer(l, p)).collect(),
        id => vec![id],
    };
    if entry.ty.dtype.is_block_format() {
        // The parts' bodies back to back, then their scales (crate::quant's plan layout).
        let mut scales = Vec::new();
        for id in parts {
            if source.block_format(id) != Some(entry.ty.dtype) {
                return Err(Error::Internal(format!("{id}: the plan stores it as {}, the source does not", entry.ty.dtype)));
            }
            let (bodies, part_scales) = crate::quant::split_blocks(entry.ty.dtype, &source.blocks(id)?);
            sink.put(&bodies).map_err(io_err)?;
            scales.extend(part_scales);
        }
        return sink.put(&scales).map_err(io_err);
    }
    for id in parts {
        let tensor = source.tensor(id)?;
        let converted: Vec<bf16> = match tensor.data {
            SourceData::Bytes { dtype: DType::BF16, bytes, file: Some(from) } => {
                sink.copy(bytes, from).map_err(io_err)?;
                continue;
            }
            SourceData::Bytes { dtype: DType::BF16, bytes, file: None } => {
                sink.put(bytes).map_err(io_err)?;
                continue;
            }
            SourceData::Bf16(v) => v,
            other => other.map_floats(&id.to_string(), bf16::from_f32)?,
        };
        sink.put(bytemuck::cast_slice(&converted)).map_err(io_err)?;
    }
    Ok(())
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
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only map; `from_map` verifies the checksum over the mapped bytes before
        // they are used.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::from_map(path, map)
    }

    /// Verifies a plan already in memory; `path` only names it in errors.
    pub(crate) fn from_map(path: &Path, map: Mmap) -> Result<PlanFile> {
        let plan = Self::verify(path, &map)?;
        // `verify` proved the blob ends where the checksum starts.
        let weights_at = map.len() - 8 - plan.weight_bytes as usize;
        Ok(PlanFile { plan, map, weights_at })
    }

    /// Checks a plan file's bytes (magic, version, checksum, metadata, llmc version, weight blob
    /// bounds, slot bounds, arena soundness) and decodes its plan.
    pub fn verify(path: &Path, bytes: &[u8]) -> Result<Plan> {
        let bad = |msg: String| Error::BadPlan { path: path.to_path_buf(), msg };
        if bytes.len() < HEADER_BYTES + 8 || &bytes[..8] != MAGIC {
            return Err(bad("not an llmc plan (bad magic or too short)".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(Error::PlanVersion {
                path: path.to_path_buf(),
                found: format!("plan format {version}"),
                expected: format!("plan format {FORMAT_VERSION}"),
            });
        }
        let body = bytes.len() - 8;
        let stored = u64::from_le_bytes(bytes[body..].try_into().expect("8 bytes"));
        if xxhash_rust::xxh3::xxh3_64(&bytes[..body]) != stored {
            return Err(bad("checksum mismatch: the file is truncated or corrupted; recompile it".into()));
        }
        let meta_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        if meta_len > MAX_META_BYTES || HEADER_BYTES as u64 + meta_len > body as u64 {
            return Err(bad(format!("metadata length {meta_len} does not fit the file")));
        }
        let meta = &bytes[HEADER_BYTES..HEADER_BYTES + meta_len as usize];
        let config = bincode::config::standard().with_limit::<{ 1 << 30 }>();
        let (plan, _): (Plan, usize) = bincode::serde::decode_from_slice(meta, config).map_err(|e| bad(format!("undecodable metadata: {e}")))?;
        if plan.llmc_version != LLMC_VERSION {
            return Err(Error::PlanVersion {
                path: path.to_path_buf(),
                found: format!("llmc {}", plan.llmc_version),
                expected: format!("llmc {LLMC_VERSION}"),
            });
        }
        if plan.config.hash() != plan.config_hash {
            return Err(bad("the model config does not match the hash recorded with it; recompile the plan".into()));
        }
        let weights_at = weights_offset(meta_len);
        if weights_at.checked_add(plan.weight_bytes) != Some(body as u64) {
            return Err(bad(format!("weight blob of {} bytes does not fit the file", plan.weight_bytes)));
        }
        // Sizes first: every check below, and every reader of the plan, computes them.
        let io = [&plan.io.token, &plan.io.position, &plan.io.logits, &plan.io.next_token];
        let step_slots = || plan.steps.iter().flat_map(|s| s.inputs.iter().chain(&s.outputs));
        if let Some(slot) = step_slots().chain(io).find(|s| s.ty.checked_bytes().is_none()) {
            return Err(bad(format!("slot {} has a size that overflows", slot.name)));
        }
        if let Some(entry) = plan.weights.iter().find(|e| e.ty.checked_bytes().is_none()) {
            return Err(bad(format!("weight {} has a size that overflows", entry.id)));
        }
        for slot in step_slots() {
            let limit = if slot.region == Region::Weights { plan.weight_bytes } else { plan.arena_bytes };
            if slot.offset.checked_add(slot.bytes()).is_none_or(|end| end > limit) {
                return Err(bad(format!("slot {} lies outside its region", slot.name)));
            }
        }
        plan.check_arena().map_err(|e| match e {
            Error::BadPlan { msg, .. } => bad(msg),
            other => other,
        })?;
        Ok(plan)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::ModelConfig;
    use crate::load::TokenizerSpec;
    use crate::plan::{build, Target};

    fn tiny_plan() -> Plan {
        let config = ModelConfig::from_json(
            r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
            "num_attention_heads":2,"num_key_value_heads":1,"vocab_size":16,"tie_word_embeddings":true}"#,
        )
        .unwrap();
        let tokenizer = TokenizerSpec { json: "{}".into(), chat_template: None, eos_ids: vec![1], bos_token: None, eos_token: None };
        build(&config, tokenizer, 8, Target::Cpu).unwrap()
    }

    /// The bytes `write` lays out for `plan`, with zero weights and a valid checksum.
    fn encode(plan: &Plan) -> Vec<u8> {
        let meta = bincode::serde::encode_to_vec(plan, bincode::config::standard()).unwrap();
        let mut out = MAGIC.to_vec();
        out.extend(FORMAT_VERSION.to_le_bytes());
        out.extend((meta.len() as u64).to_le_bytes());
        out.extend(&meta);
        out.resize((weights_offset(meta.len() as u64) + plan.weight_bytes) as usize, 0);
        let checksum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend(checksum.to_le_bytes());
        out
    }

    fn refusal(plan: &Plan) -> String {
        PlanFile::verify(Path::new("p"), &encode(plan)).expect_err("hostile plan must be refused").to_string()
    }

    #[test]
    fn verifies_a_built_plan() {
        let plan = tiny_plan();
        assert_eq!(PlanFile::verify(Path::new("p"), &encode(&plan)).unwrap(), plan);
    }

    #[test]
    fn refuses_a_slot_whose_size_overflows() {
        let mut plan = tiny_plan();
        plan.steps[0].outputs[0].ty.shape = vec![usize::MAX, 2];
        assert!(refusal(&plan).contains("has a size that overflows"));
    }

    #[test]
    fn refuses_a_step_io_slot_past_the_end_of_memory() {
        let mut plan = tiny_plan();
        plan.io.logits.offset = u64::MAX - 1;
        assert!(refusal(&plan).contains("outside the arena"));
    }
}
