//! Launch shapes of batched prefill (kernels/prefill_gemm*.cu, dequantize.cu and
//! prefill_attention.cu, the prefill kernels in embedding.cu and qkv_rope.cu, and the decode
//! kernels prefill reuses on a chunk's rows): the GEMM tiles, the prefill buffers' sizes, and
//! the launches of one pass over a chunk of prompt tokens. Decode's launches are in `launch.rs`.

use super::launch::{float, for_weight, format_id, int, lm_head_shape, DeviceLayout, Launch, NORM_THREADS};
use crate::error::{Error, Result};
use crate::ir::Op;
use crate::kernels::define;
use crate::plan::prefill::PrefillLayout;
use crate::plan::{Slot, Step, StepIo};
use cudarc::driver::sys;

/// Prompt tokens per prefill pass on the GPU: big enough that the GEMMs run on tensor cores at
/// a good fraction of peak and that attention's blocks (64 query vectors of one KV head each:
/// 2 x 52 of them for Qwen2.5-1.5B at 512 rows) fill the SMs, small enough that the widened
/// activations stay a few hundred MB (Qwen2-7B: gate/up's f32 output 155 MB at 2,048 rows).
pub const PREFILL_CHUNK: usize = 2_048;
// Tiles, block sizes and limits of prefill_gemm_wgmma.cu, prefill_gemm_bf16.cu, dequantize.cu
// and prefill_attention.cu (`kernels::define`).
/// A prefill GEMM kernel: its names (without and with split K), tokens x
/// weight rows of its output tile, K step, threads and dynamic shared memory.
#[derive(Clone, Copy, Debug)]
struct GemmTiles {
    kernel: &'static str,
    /// None: chosen only where it takes fewer waves than narrower tiles, so it never splits K.
    split_kernel: Option<&'static str>,
    rows: usize,
    cols: usize,
    k_step: usize,
    threads: u32,
    shared: usize,
    /// Blocks an SM runs at once: a split K aims at filling the SMs once with them.
    per_sm: usize,
    /// A wgmma kernel: reads its weight through the weight's tensor map ([`weight_maps`]),
    /// passed in place of the weight's address, and takes its first column tile as a last
    /// argument (tile_n0), so it can run a GEMM's columns in two launches.
    wgmma: bool,
}
const PGW_BK: usize = define("PGW_BK");
const PGW_WG_ROWS: usize = define("PGW_WG_ROWS");
const PGW_WG_THREADS: usize = define("PGW_WG_THREADS");
/// A prefill_gemm_wgmma.cu tile of `wgs` warpgroups and `cols` weight rows.
const fn wgmma_tiles(kernel: &'static str, split_kernel: Option<&'static str>, wgs: usize, cols: usize, shared: usize) -> GemmTiles {
    GemmTiles { kernel, split_kernel, rows: PGW_WG_ROWS * wgs, cols, k_step: PGW_BK, threads: (PGW_WG_THREADS * wgs) as u32, shared, per_sm: 1, wgmma: true }
}
/// prefill_gemm_wgmma.cu (sm_90): bf16 weights by warpgroup MMA; 128 x 256 tiles where they take
/// fewer waves (f32 x re-read from L2 half as often: [`wide_is_faster`]), else 128 x 128, or
/// 64 x 128 for 64 rows or fewer.
const WGMMA_WIDE: GemmTiles = wgmma_tiles("prefill_gemm_wgmma_wide", None, define("PGW_WIDE_WGS"), define("PGW_WIDE_BN"), define("PGW_SHARED_WIDE"));
const WGMMA_NARROW: GemmTiles =
    wgmma_tiles("prefill_gemm_wgmma", Some("prefill_gemm_wgmma_split_k"), define("PGW_NARROW_WGS"), define("PGW_NARROW_BN"), define("PGW_SHARED_NARROW"));
const WGMMA_SHORT: GemmTiles = wgmma_tiles(
    "prefill_gemm_wgmma_short",
    Some("prefill_gemm_wgmma_short_split_k"),
    define("PGW_SHORT_WGS"),
    define("PGW_SHORT_BN"),
    define("PGW_SHARED_SHORT"),
);
/// prefill_gemm_bf16.cu (sm_80, sm_89): bf16 weights by mma.sync, x split once a block.
const BF16_TILES: GemmTiles = GemmTiles {
    kernel: "prefill_gemm",
    split_kernel: Some("prefill_gemm_split_k"),
    rows: define("PGB_BM"),
    cols: define("PGB_BN"),
    k_step: define("PGB_BK"),
    threads: define("PGB_THREADS") as u32,
    shared: define("PGB_SHARED"),
    per_sm: 1,
    wgmma: false,
};
const ALL_TILES: [GemmTiles; 4] = [WGMMA_WIDE, WGMMA_NARROW, WGMMA_SHORT, BF16_TILES];
pub(super) const PGB_SHARED: usize = BF16_TILES.shared;
/// The wgmma kernels (with and without split K) and their shared memory.
pub(super) const WGMMA_SHARED: [(&str, usize); 5] = [
    (WGMMA_WIDE.kernel, WGMMA_WIDE.shared),
    (WGMMA_NARROW.kernel, WGMMA_NARROW.shared),
    (split_kernel_of(&WGMMA_NARROW), WGMMA_NARROW.shared),
    (WGMMA_SHORT.kernel, WGMMA_SHORT.shared),
    (split_kernel_of(&WGMMA_SHORT), WGMMA_SHORT.shared),
];
const fn split_kernel_of(tiles: &GemmTiles) -> &'static str {
    match tiles.split_kernel {
        Some(name) => name,
        None => panic!("a tile that never splits K"),
    }
}

impl GemmTiles {
    /// Blocks (output tiles) of a GEMM over `rows` tokens with `cols` outputs.
    fn count(&self, rows: usize, cols: usize, gate_up: bool) -> (usize, usize) {
        let gx = if gate_up { cols.div_ceil(self.cols / 2) } else { cols.div_ceil(self.cols) };
        (gx, rows.div_ceil(self.rows))
    }
}
const PG_LINEAR: usize = define("PG_LINEAR");
const PG_GATE_UP: usize = define("PG_GATE_UP");
const PA_THREADS: u32 = define("PA_THREADS") as u32;
const PA_ROWS: usize = define("PA_ROWS");
const PA_MAX_D: usize = define("PA_MAX_D");
const PA_TILE: usize = define("PA_TILE");
/// Floats of one attention piece's partial rows in the split scratch.
const PA_SLOT: usize = define("PA_SLOT");
/// prefill_attention's Q, K and V tiles, each as bf16 hi and lo.
pub(super) const PA_SHARED: usize = define("PA_SHARED");

/// An attention piece has a fixed cost (its query block's Q staged again, its rows written to the
/// scratch and merged): no piece is shorter than PA_MIN_PIECE positions.
const PA_MIN_PIECE: usize = 4 * PA_TILE;

/// The pieces of prefill attention's query blocks (kernels/prefill_attention.cu, `pa_unit`):
/// `piece` positions a piece (0: every query block whole) and the units of one KV head. Only
/// while the query blocks are fewer than the SMs, and then the pieces are about the SMs' even
/// share of the positions, so the few long blocks of a short prompt do not run alone; their
/// slots stay within the split scratch (3 * sms) and their counters within sms.
fn attention_pieces(rows: usize, start: usize, per_block: usize, n_kv: usize, sms: usize) -> (usize, usize) {
    let blocks = rows.div_ceil(per_block);
    let bases = (0..blocks).map(|b| start + b * per_block);
    if blocks * n_kv >= sms {
        return (0, blocks);
    }
    let positions: usize = bases.clone().map(|base| base + per_block.min(rows - (base - start))).sum::<usize>() * n_kv;
    let mut piece = positions.div_ceil(sms).max(PA_MIN_PIECE).next_multiple_of(PA_TILE);
    loop {
        let units: usize = bases.clone().map(|base| base.div_ceil(piece).max(1)).sum();
        if units == blocks {
            return (0, blocks);
        }
        if units * n_kv <= 3 * sms {
            return (piece, units);
        }
        piece *= 2;
    }
}

/// Where prefill's buffers are on the device: the prefill arena (the widened activations, laid
/// out by [`PrefillLayout`]) and the f32 q/k/v GEMM output, `chunk` rows.
#[derive(Clone, Copy, Debug)]
pub struct PrefillDevice {
    pub arena: u64,
    pub qkv: u64,
    /// f32 rows of a folded input RMSNorm, which prefill runs before the GEMM.
    pub normed: u64,
    /// A split-K GEMM's partial tiles ([`split_partial_bytes`]) and its tiles' counters
    /// ([`split_counter_bytes`], zeroed at load; the last split of a tile re-arms its own).
    pub partial: u64,
    pub counters: u64,
    /// A tensor map a step ([`weight_maps`]): the wgmma kernels' weights.
    pub weight_maps: u64,
    /// The block-format weight of the GEMM at hand rounded to bf16 ([`dequantized_bytes`]).
    pub dequantized: u64,
}

const DQ_THREADS: u32 = define("DQ_THREADS") as u32;
const Q_UNIT: usize = define("Q_UNIT");

/// Bytes of the scratch a block-format GEMM weight is rounded to bf16 in before a prompt's GEMM
/// multiplies it (kernels/dequantize.cu): the largest such weight's, 0 if the plan has none.
/// Decode's GEMVs read the blocks themselves; a prompt's GEMMs read every weight once per 128
/// tokens, so they take the bf16 kernels' speed for one extra pass over the weight (read the
/// blocks, write the bf16 rows, which the GEMM then reads back, largely from L2).
pub fn dequantized_bytes(steps: &[Step]) -> u64 {
    steps.iter().filter_map(gemm_weight).filter(|w| w.ty.dtype.is_block_format()).map(|w| 2 * w.ty.elements() as u64).max().unwrap_or(0)
}

/// A GEMM splits K only while its tiles are fewer than the SMs, into as many blocks as the SMs
/// run at once (`per_sm` each, at most 2) with at least PG_MIN_SPLIT_TILES K steps each:
/// tiles * splits < 3 * sms.
const PG_MIN_SPLIT_TILES: usize = 2;

fn split_k(tiles: usize, k: usize, gemm: &GemmTiles, sms: usize) -> usize {
    let ktiles = k.div_ceil(gemm.k_step);
    if tiles >= sms {
        return 1;
    }
    let want = (gemm.per_sm * sms / tiles).clamp(1, ktiles);
    ktiles.div_ceil(ktiles.div_ceil(want).max(PG_MIN_SPLIT_TILES))
}

/// Bytes of a step's slot in the tensor-map table: a CUtensorMap (64-byte aligned).
pub const MAP_BYTES: usize = 128;
const PGW_BOX_ROWS: usize = define("PGW_BOX_ROWS");

/// The weight a step's prefill GEMM reads, if it has one.
fn gemm_weight(step: &Step) -> Option<&Slot> {
    matches!(step.op, Op::Linear { .. } | Op::LinearResidual { .. } | Op::GateUpSilu { .. } | Op::QkvRope { .. }).then(|| &step.inputs[1])
}

/// The tensor-map table of the wgmma GEMMs (sm_90): MAP_BYTES a step, for each step with a
/// GEMM the CUtensorMap through which the bulk tensor copy engine (TMA) reads its weight (a
/// block-format one as rounded into `dequantized`) in boxes of PGW_BOX_ROWS rows x PGW_BK
/// elements with the 128-byte swizzle the kernel's shared tiles use
/// (kernels/prefill_gemm_wgmma.cu), zeros elsewhere. Uploaded once at load.
pub fn weight_maps(steps: &[Step], layout: &DeviceLayout, dequantized: u64) -> Result<Vec<u8>> {
    let mut table = vec![0u8; MAP_BYTES * steps.len()];
    for (i, step) in steps.iter().enumerate() {
        let Some(w) = gemm_weight(step).filter(|_| layout.sm == 90) else { continue };
        let address = if w.ty.dtype.is_block_format() { dequantized } else { layout.ptr(w) };
        let k = w.ty.last_dim();
        let dims = [k as u64, (w.ty.elements() / k) as u64];
        let strides = [(2 * k) as u64];
        let boxes = [PGW_BK as u32, PGW_BOX_ROWS as u32];
        let unit = [1u32, 1];
        let mut map = sys::CUtensorMap { opaque: [0; 16] };
        // SAFETY: every pointer names a live local of the rank (2) the call is given; the address
        // is the weight's in the uploaded weights, or the scratch, both outliving the table.
        unsafe {
            sys::cuTensorMapEncodeTiled(
                &mut map,
                sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                2,
                address as *mut std::ffi::c_void,
                dims.as_ptr(),
                strides.as_ptr(),
                boxes.as_ptr(),
                unit.as_ptr(),
                sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
                sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
                sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
            )
        }
        .result()
        .map_err(|reason| Error::Cuda { what: format!("describing {} to the tensor copy engine", w.name), reason })?;
        for (j, word) in map.opaque.iter().enumerate() {
            table[MAP_BYTES * i + 8 * j..][..8].copy_from_slice(&word.to_ne_bytes());
        }
    }
    Ok(table)
}

/// Whether a GEMM's `wide` 128 x 256 tiles beat its `narrow` 128 x 128 ones: counted in waves
/// over the SMs, a wave of wide tiles taking WIDE_WAVE_COST narrow waves (twice the products, x
/// read once for both halves). Measured with the TMA-fed kernels (H200, 2026-11-30,
/// `bench/results/2026-11-30-h200-tma.log`): gate/up 2,048 rows 9 wide waves 425 us vs 17 narrow
/// 554 us (1.45); down 2,048 rows 1 vs 2 waves 267 vs 396 us (1.35); down 1,024 rows 1 vs 1
/// wave 263 vs 198 us (1.33).
const WIDE_WAVE_COST: (usize, usize) = (7, 5);

fn wide_is_faster(wide: usize, narrow: usize, sms: usize) -> bool {
    WIDE_WAVE_COST.0 * wide.div_ceil(sms) < WIDE_WAVE_COST.1 * narrow.div_ceil(sms)
}

/// The column tiles of a GEMM's `gx` x `gy` wide tiles to keep wide: those of its full waves
/// over the SMs, when a last wave would fill at most half of them (None: all wide). The rest
/// run as narrow tiles.
fn wide_columns(gx: usize, gy: usize, sms: usize) -> Option<usize> {
    let last_wave = (gx * gy) % sms;
    let keep = (gx * gy - last_wave) / gy;
    (last_wave > 0 && last_wave <= sms / 2 && keep > 0 && WGMMA_WIDE.cols.is_multiple_of(WGMMA_NARROW.cols)).then_some(keep)
}

/// Bytes of the split scratch: fewer than 3 * sms f32 tiles of the largest block that splits K,
/// or 3 * sms attention pieces' partial rows.
pub fn split_partial_bytes(sms: u32) -> u64 {
    let tile = ALL_TILES.iter().filter(|t| t.split_kernel.is_some()).map(|t| t.rows * t.cols).max().unwrap_or(0);
    (3 * sms as usize * tile.max(PA_SLOT) * 4) as u64
}

/// Bytes of the split counters: one u32 a tile or attention query block, fewer than sms.
pub fn split_counter_bytes(sms: u32) -> u64 {
    4 * sms as u64
}

/// Bytes of the normed-input scratch for `chunk` rows: the widest input of a GEMV that has an
/// RMSNorm folded in.
pub fn prefill_normed_bytes(steps: &[Step], chunk: usize) -> u64 {
    let width = steps
        .iter()
        .filter(|s| matches!(s.op, Op::QkvRope { norm: Some(_), .. } | Op::GateUpSilu { norm: Some(_) }))
        .map(|s| s.inputs[0].ty.elements())
        .max()
        .unwrap_or(0);
    (4 * width * chunk) as u64
}

/// Bytes of the f32 q/k/v scratch for `chunk` rows.
pub fn prefill_qkv_bytes(steps: &[Step], chunk: usize) -> u64 {
    let width = steps
        .iter()
        .map(|s| match s.op {
            Op::QkvRope { n_heads, n_kv_heads, head_dim, .. } => (n_heads + 2 * n_kv_heads) * head_dim,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    (4 * width * chunk) as u64
}

impl DeviceLayout {
    /// The launches of one prefill pass over `n` tokens at positions `start..start + n` (the
    /// token ids already in the prefill arena's token rows). With `last`, the LM head and the
    /// sampler run on the last row and `advance` feeds the sampled token and position start + n
    /// to the decode graph (the host wrote start + n - 1 to the position slot).
    #[allow(clippy::too_many_arguments)]
    pub fn prefill_launches(
        &self,
        steps: &[Step],
        io: &StepIo,
        layout: &PrefillLayout,
        dev: &PrefillDevice,
        n: usize,
        start: usize,
        last: bool,
    ) -> Result<Vec<Launch>> {
        let rows_ptr = |slot: &Slot| layout.offset(slot).map_or_else(|| self.ptr(slot), |o| dev.arena + o);
        let mut launches = Vec::new();
        for (step_index, step) in steps.iter().enumerate() {
            let (ins, outs) = (&step.inputs, &step.outputs);
            let unsupported = |why: String| Error::Unsupported(format!("prefill of {} ({}): {why}", step.label, step.op.kind()));
            // A block-format weight is rounded to bf16 into `dev.dequantized` first, then
            // multiplied as a bf16 one.
            let gemm = |launches: &mut Vec<Launch>, w: &Slot, cols: usize, mode: usize, x: u64, bias: u64, residual: u64, out: u64| -> Result<()> {
                let k = w.ty.last_dim();
                if !k.is_multiple_of(8) {
                    return Err(unsupported(format!("the prefill GEMM needs K divisible by 8, got {k}")));
                }
                let weight = match format_id(w)? {
                    None => self.ptr(w),
                    Some(fmt) => {
                        let elements = w.ty.elements();
                        let blocks = elements.div_ceil(Q_UNIT).div_ceil(DQ_THREADS as usize) as u32;
                        let args = vec![self.ptr(w), dev.dequantized, elements as u64, int(fmt)];
                        launches.push(Launch {
                            kernel: "dequantize_bf16",
                            grid: (blocks, 1, 1),
                            block: DQ_THREADS,
                            shared: 0,
                            args,
                            label: step.label.clone(),
                            tasks: blocks,
                            cluster: 1,
                        });
                        dev.dequantized
                    }
                };
                let gate_up = mode == PG_GATE_UP;
                // One launch of `tiles` over its column tiles first..last (None: through the end).
                let mut push = |tiles: GemmTiles, first: usize, last: Option<usize>| -> Result<()> {
                    let (gx, gy) = tiles.count(n, cols, gate_up);
                    let gx = last.unwrap_or(gx) - first;
                    let splits = split_k(gx * gy, k, &tiles, self.sms as usize);
                    let grid = (gx as u32, gy as u32, splits as u32);
                    let mut args = vec![x, weight, bias, residual, out, int(mode), int(n), int(cols), int(k), dev.partial, dev.counters];
                    if tiles.wgmma {
                        if !gemm_weight(step).is_some_and(|mapped| std::ptr::eq(mapped, w)) {
                            return Err(Error::Internal(format!("{}: no tensor map for {}", step.label, w.name)));
                        }
                        args[1] = dev.weight_maps + (MAP_BYTES * step_index) as u64;
                        args.push(int(first));
                    }
                    let name = match (splits > 1, tiles.split_kernel) {
                        (false, _) => tiles.kernel,
                        (true, Some(split)) => split,
                        (true, None) => return Err(Error::Internal(format!("{} split K over {} tiles", tiles.kernel, gx * gy))),
                    };
                    let tasks = grid.0 * grid.1 * grid.2;
                    launches.push(Launch {
                        kernel: name,
                        grid,
                        block: tiles.threads,
                        shared: tiles.shared as u32,
                        args,
                        label: step.label.clone(),
                        tasks,
                        cluster: 1,
                    });
                    Ok(())
                };
                // sm_90 multiplies bf16 weights by wgmma (sm_90a), older GPUs by mma.sync.
                let tiles = match self.sm == 90 {
                    false => BF16_TILES,
                    true if n <= WGMMA_SHORT.rows => WGMMA_SHORT,
                    true => {
                        let (gx, gy) = WGMMA_WIDE.count(n, cols, gate_up);
                        let (nx, ny) = WGMMA_NARROW.count(n, cols, gate_up);
                        if !wide_is_faster(gx * gy, nx * ny, self.sms as usize) {
                            WGMMA_NARROW
                        } else if let Some(wide) = wide_columns(gx, gy, self.sms as usize) {
                            // the wide tiles' last wave would leave most SMs idle: its columns
                            // go to narrow tiles (split K where they are few), all SMs busy
                            push(WGMMA_WIDE, 0, Some(wide))?;
                            return push(WGMMA_NARROW, wide * (WGMMA_WIDE.cols / WGMMA_NARROW.cols), None);
                        } else {
                            WGMMA_WIDE
                        }
                    }
                };
                push(tiles, 0, None)
            };
            let launch = |kernel: &'static str, grid: (u32, u32, u32), block: u32, args: Vec<u64>| Launch {
                kernel,
                grid,
                block,
                shared: 0,
                args,
                label: step.label.clone(),
                tasks: grid.0 * grid.1 * grid.2,
                cluster: 1,
            };
            // The GEMM's input rows: with an RMSNorm folded into the op (its weight is the last
            // input), the chunk's rows are normalized into `dev.normed` first, as decode's GEMV
            // does per token.
            let gemm_input = |launches: &mut Vec<Launch>, norm: Option<f32>| -> u64 {
                let Some(eps) = norm else { return rows_ptr(&ins[0]) };
                let w = ins.last().expect("a normed op has inputs");
                let hidden = w.ty.elements();
                let rows = n * (ins[0].ty.elements() / hidden);
                launches.push(launch("rms_norm", (rows as u32, 1, 1), NORM_THREADS, vec![rows_ptr(&ins[0]), self.ptr(w), dev.normed, int(hidden), float(eps)]));
                dev.normed
            };
            match step.op {
                Op::Embedding => {
                    let (hidden, vocab) = (ins[0].ty.last_dim(), ins[0].ty.elements() / ins[0].ty.last_dim());
                    let mut args = vec![self.ptr(&ins[0]), rows_ptr(&ins[1]), rows_ptr(&outs[0]), int(hidden), int(vocab)];
                    let kernel = for_weight("prefill_embedding", &ins[0], &mut args)?;
                    launches.push(launch(kernel, (n as u32, 1, 1), 256, args));
                }
                Op::RmsNorm { eps } => {
                    let hidden = ins[1].ty.elements();
                    let rows = n * (ins[0].ty.elements() / hidden);
                    launches.push(launch(
                        "rms_norm",
                        (rows as u32, 1, 1),
                        NORM_THREADS,
                        vec![rows_ptr(&ins[0]), self.ptr(&ins[1]), rows_ptr(&outs[0]), int(hidden), float(eps)],
                    ));
                }
                Op::Linear { bias } | Op::LinearResidual { bias } => {
                    let bias_ptr = if bias { self.ptr(&ins[2]) } else { 0 };
                    let residual = if matches!(step.op, Op::LinearResidual { .. }) { rows_ptr(&ins[2 + usize::from(bias)]) } else { 0 };
                    gemm(&mut launches, &ins[1], outs[0].ty.elements(), PG_LINEAR, rows_ptr(&ins[0]), bias_ptr, residual, rows_ptr(&outs[0]))?;
                }
                Op::GateUpSilu { norm } => {
                    let x = gemm_input(&mut launches, norm);
                    gemm(&mut launches, &ins[1], outs[0].ty.elements(), PG_GATE_UP, x, 0, 0, rows_ptr(&outs[0]))?;
                }
                Op::QkvRope { n_heads, n_kv_heads, head_dim, qk_norm, norm, .. } => {
                    if !head_dim.is_multiple_of(2) {
                        return Err(unsupported(format!("RoPE needs an even head_dim, got {head_dim}")));
                    }
                    // The position slot is unused: rows sit at start + t.
                    let slots = step.qkv_inputs()?;
                    let bias_ptr = slots.bias.map_or(0, |b| self.ptr(b));
                    let (q_norm, k_norm) = slots.qk_norm.map_or((0, 0), |(q, k)| (self.ptr(q), self.ptr(k)));
                    let inv_freq = self.ptr(slots.inv_freq);
                    let (k_cache, v_cache) = (self.ptr(slots.k_cache), self.ptr(slots.v_cache));
                    let heads = n_heads + 2 * n_kv_heads;
                    let x = gemm_input(&mut launches, norm);
                    gemm(&mut launches, &ins[1], heads * head_dim, PG_LINEAR, x, bias_ptr, 0, dev.qkv)?;
                    let args = vec![
                        dev.qkv,
                        q_norm,
                        k_norm,
                        float(qk_norm.unwrap_or(0.0)),
                        inv_freq,
                        int(start),
                        rows_ptr(&outs[0]),
                        k_cache,
                        v_cache,
                        int(n_heads),
                        int(n_kv_heads),
                        int(head_dim),
                    ];
                    launches.push(launch("prefill_rope", (n as u32, heads as u32, 1), 128, args));
                }
                Op::Attention { n_heads, n_kv_heads, head_dim } => {
                    if n_kv_heads == 0
                        || !n_heads.is_multiple_of(n_kv_heads)
                        || n_heads / n_kv_heads > PA_ROWS
                        || head_dim > PA_MAX_D
                        || !head_dim.is_multiple_of(16)
                    {
                        return Err(unsupported(format!(
                            "{n_heads} query heads over {n_kv_heads} KV heads of dim {head_dim} (at most {PA_ROWS} per KV head, dim a multiple of 16 up to {PA_MAX_D})"
                        )));
                    }
                    let per_block = PA_ROWS / (n_heads / n_kv_heads);
                    let (piece, units) = attention_pieces(n, start, per_block, n_kv_heads, self.sms as usize);
                    let args = vec![
                        rows_ptr(&ins[0]),
                        self.ptr(&ins[1]),
                        self.ptr(&ins[2]),
                        rows_ptr(&outs[0]),
                        int(n),
                        int(start),
                        int(per_block),
                        int(n_heads),
                        int(n_kv_heads),
                        int(head_dim),
                        int(piece),
                        dev.partial,
                        dev.counters,
                    ];
                    let grid = (n_kv_heads as u32, units as u32, 1);
                    launches.push(Launch { shared: PA_SHARED as u32, ..launch("prefill_attention", grid, PA_THREADS, args) });
                }
                Op::LmHead { norm } if last => {
                    let k = ins[1].ty.last_dim();
                    let row = ins[0].ty.elements();
                    if row != k || !k.is_multiple_of(8) {
                        return Err(unsupported(format!("LM head rows of {row} for weights of width {k}")));
                    }
                    let x = rows_ptr(&ins[0]) + ((n - 1) * row * ins[0].ty.dtype.size()) as u64;
                    let vocab = outs[0].ty.elements();
                    let gemv = lm_head_shape(vocab, k, norm.is_some(), ins[1].ty.dtype.is_block_format(), self.sms)
                        .ok_or_else(|| unsupported(format!("LM head rows of {k} do not fit the GEMV's shared memory")))?;
                    let (norm_w, eps) = match norm {
                        Some(eps) => (self.ptr(ins.last().expect("a normed op has inputs")), float(eps)),
                        None => (0, 0),
                    };
                    let mut args = vec![x, self.ptr(&ins[1]), norm_w, eps, self.ptr(&outs[0]), int(vocab), int(k)];
                    let kernel = for_weight("lm_head", &ins[1], &mut args)?;
                    launches.push(Launch { shared: gemv.shared, ..launch(kernel, gemv.grid, gemv.threads, args) });
                }
                // The host wrote the last row's position to the position slot, which the draw reads.
                Op::Sample if last => launches.push(self.sample(&ins[0], &outs[0], &io.position, &step.label)),
                Op::LmHead { .. } | Op::Sample => {}
                ref op => return Err(Error::Internal(format!("plan step `{}` reached the CUDA prefill, which has no kernel for it", op.kind()))),
            }
        }
        if last {
            launches.push(self.advance(io));
        }
        Ok(launches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wide GEMM keeps the columns of its full waves wide and gives the rest, at most half a
    /// wave, to narrow tiles.
    #[test]
    fn wide_tiles_where_they_take_fewer_waves() {
        // Qwen2.5-1.5B at 1,024 rows: gate/up wide (560 vs 1,120 tiles), down narrow (48 vs 96)
        assert!(wide_is_faster(560, 1_120, 132));
        assert!(!wide_is_faster(48, 96, 132));
        // ... at 2,048 rows: down wide (96 vs 192)
        assert!(wide_is_faster(96, 192, 132));
    }

    #[test]
    fn a_wide_gemms_last_wave_goes_to_narrow_tiles() {
        // Qwen2.5-1.5B gate/up: 70 column tiles; 1,024 rows (8 row tiles): 4 waves of 132 + 32
        assert_eq!(wide_columns(70, 8, 132), Some(66));
        assert_eq!(wide_columns(70, 16, 132), Some(66));
        assert_eq!(wide_columns(66, 2, 132), None);
        assert_eq!(wide_columns(70, 5, 132), None);
        for sms in [8, 132] {
            for (gx, gy) in (1..90).flat_map(|gx| (1..20).map(move |gy| (gx, gy))) {
                if let Some(keep) = wide_columns(gx, gy, sms) {
                    let rest = gx * gy - keep * gy;
                    assert!(keep > 0 && keep < gx && keep * gy <= gx * gy - (gx * gy) % sms, "{gx} x {gy}: {keep} wide columns");
                    assert!(rest > 0 && rest < sms / 2 + gy, "{gx} x {gy}: {rest} tiles left");
                }
            }
        }
    }

    /// Attention's pieces (in the kernel's unit order: query blocks descending, each block's
    /// pieces together) cover each query block's positions once, every row sees its piece's
    /// first position (so its softmax maximum is finite), slots and counters stay within the
    /// scratch, and a short prompt's long blocks are split.
    #[test]
    fn attention_pieces_cover_the_positions_within_the_scratch() {
        for sms in [1usize, 8, 132] {
            for (rows, start, per_block, n_kv) in
                [(60, 0, 21, 2), (1_024, 0, 21, 2), (1_024, 0, 42, 8), (3_096, 1_000, 64, 2), (1, 4_000, 21, 2), (2_048, 6_144, 21, 2), (100, 0, 128, 1)]
            {
                let (piece, units) = attention_pieces(rows, start, per_block, n_kv, sms);
                let blocks = rows.div_ceil(per_block);
                let mut order = Vec::new();
                for qb in (0..blocks).rev() {
                    let (base, last) = (start + qb * per_block, start + rows.min((qb + 1) * per_block) - 1);
                    let pieces = if piece == 0 { 1 } else { base.div_ceil(piece).max(1) };
                    let mut next = 0;
                    for i in 0..pieces {
                        let first = i * piece;
                        let end = if i == pieces - 1 { last + 1 } else { first + piece };
                        assert_eq!(first, next, "pieces of query block {qb} leave a gap");
                        assert!(first <= base && end > first, "piece {i} of query block {qb}: [{first}, {end}), rows from {base}");
                        next = end;
                        order.push((qb, i));
                    }
                    assert_eq!(next, last + 1);
                }
                assert_eq!(order.len(), units, "{rows} rows from {start}");
                if piece > 0 {
                    assert!(piece.is_multiple_of(PA_TILE) && units * n_kv <= 3 * sms && blocks * n_kv < sms, "{rows} rows from {start}, {sms} SMs");
                }
            }
        }
        // Qwen2.5-1.5B at 1,024 tokens: 98 query blocks of up to 1,024 positions on 132 SMs
        // become 164 units of at most 448 positions (+ the block's own 21 tokens)
        assert_eq!(attention_pieces(1_024, 0, 21, 2, 132), (448, 82));
        assert_eq!(attention_pieces(8_192, 0, 21, 2, 132).0, 0);
        assert_eq!(attention_pieces(256, 0, 21, 2, 132).0, 0);
    }

    /// Splits keep the scratch bound (tiles * splits < 3 * sms), give every split at least
    /// PG_MIN_SPLIT_TILES K tiles (but the last), never leave one empty, and stop once the tiles
    /// fill the SMs.
    #[test]
    fn split_k_fills_the_sms_within_its_scratch() {
        for sms in [1usize, 8, 132] {
            for tiles in 1..2 * sms + 2 {
                for (k, gemm) in [64, 256, 1_536, 8_960, 18_944].into_iter().flat_map(|k| ALL_TILES.map(|t| (k, t))) {
                    let splits = split_k(tiles, k, &gemm, sms);
                    let ktiles = k.div_ceil(gemm.k_step);
                    let per = ktiles.div_ceil(splits);
                    assert!(splits >= 1 && (splits - 1) * per < ktiles, "an empty split: {tiles} tiles, K {k}, {splits} splits of {per}");
                    if tiles >= sms {
                        assert_eq!(splits, 1);
                    } else if splits > 1 {
                        assert!(per >= PG_MIN_SPLIT_TILES && tiles * splits < 3 * sms, "{tiles} tiles, K {k}: {splits} splits of {per}");
                    }
                }
            }
        }
        // the mma.sync kernel (sm_80, sm_89) at up to 128 rows: down 12 tiles, q/k/v 16
        assert_eq!(split_k(12, 8_960, &BF16_TILES, 132), 11);
        assert_eq!(split_k(16, 1_536, &BF16_TILES, 132), 8);
        assert_eq!(split_k(140, 1_536, &BF16_TILES, 132), 1);
        // the wgmma kernel at 1,024 rows of Qwen2.5-1.5B: q/k/v 64 tiles, o_proj and down 48
        assert_eq!(split_k(128, 1_536, &WGMMA_NARROW, 132), 1);
        assert_eq!(split_k(96, 8_960, &WGMMA_NARROW, 132), 1);
        // ... and at 32 rows: q/k/v 16 tiles, down 12
        assert_eq!(split_k(16, 1_536, &WGMMA_SHORT, 132), 8);
        assert_eq!(split_k(12, 8_960, &WGMMA_SHORT, 132), 11);
    }
}
