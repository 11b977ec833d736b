//! The CPU executor: runs a plan's steps one by one over a host arena, with the same storage
//! types as the GPU (bf16 weights; f32 activations, KV cache and logits) and f32 arithmetic. It
//! is the reference the CUDA backend is checked against and what CI runs. GEMVs and attention
//! heads are spread over all cores with rayon.

use super::logprobs::{self, TokenLogprobs};
use super::sampling::{self, SamplingParams};
use super::Backend;
use crate::avx2::{avx2_dispatch, prefetch, PREFETCH_AHEAD};
use crate::error::{Error, Result};
use crate::ir::Op;
use crate::plan::file::PlanFile;
use crate::plan::{Region, Slot, Step};
use crate::quant;
use half::bf16;
use rayon::prelude::*;

mod prefill;

pub struct CpuExecutor<'p> {
    file: &'p PlanFile,
    /// The arena, as u64 words so every offset (a multiple of 256) is aligned for any type. It is
    /// only accessed through `base`, taken once, so views of different slots can coexist.
    _arena: Vec<u64>,
    base: *mut u8,
    sampling: SamplingParams,
    scratch: Scratch,
    /// The prefill arena and its scratch, made at the first prefill.
    prefill: Option<prefill::PrefillState>,
}

/// Working memory of the kernels, sized once from the plan, so a step allocates nothing.
#[derive(Default)]
struct Scratch {
    /// A copy of the step's main input (the input norm scales it in place).
    x: Vec<f32>,
    /// GEMV results that an epilogue still transforms (q/k/v, gate/up).
    y: Vec<f32>,
    /// Attention scores, `max_seq_len` per head.
    scores: Vec<f32>,
    /// Attention outputs before the store, `head_dim` per head.
    acc: Vec<f32>,
    sampler: sampling::Scratch,
}

impl Scratch {
    fn for_plan(plan: &crate::plan::Plan) -> Scratch {
        let mut s = Scratch::default();
        let (mut x, mut y, mut heads) = (0, 0, 0);
        for step in &plan.steps {
            // The main input when it is an activation (the embedding's first input is its table).
            x = x.max(step.inputs.first().filter(|i| i.region == Region::Arena).map_or(0, |i| i.ty.elements()));
            match step.op {
                Op::QkvRope { n_heads, n_kv_heads, head_dim, .. } => y = y.max((n_heads + 2 * n_kv_heads) * head_dim),
                Op::GateUpSilu { .. } => y = y.max(2 * step.outputs[0].ty.elements()),
                Op::Attention { n_heads, head_dim, .. } => heads = heads.max(n_heads * head_dim),
                _ => {}
            }
        }
        let n_heads = plan.config.num_heads;
        s.x.resize(x, 0.0);
        s.y.resize(y, 0.0);
        s.scores.resize(n_heads * plan.max_seq_len, 0.0);
        s.acc.resize(heads, 0.0);
        s.sampler = sampling::Scratch::new(plan.config.vocab_size);
        s
    }
}

#[inline(always)]
fn f32_of(x: bf16) -> f32 {
    // bf16 is the top half of an f32: a shift, which vectorizes (half's conversion does not).
    f32::from_bits((x.to_bits() as u32) << 16)
}

avx2_dispatch! {
    /// Dot product of an f32 vector with a bf16 row, in 16 independent lanes so it vectorizes.
    fn dot(x: &[f32], w: &[bf16]) -> f32 => dot_lanes
}

#[inline(always)]
fn dot_lanes(x: &[f32], w: &[bf16]) -> f32 {
    let mut acc = [0f32; 16];
    let (xc, wc) = (x.chunks_exact(16), w.chunks_exact(16));
    let (xr, wr) = (xc.remainder(), wc.remainder());
    for (c, (xs, ws)) in xc.zip(wc).enumerate() {
        if c % 2 == 0 {
            // a line every two chunks of 16
            prefetch(ws.as_ptr().cast::<u8>().wrapping_add(PREFETCH_AHEAD));
        }
        for i in 0..16 {
            acc[i] += xs[i] * f32_of(ws[i]);
        }
    }
    let tail: f32 = xr.iter().zip(wr).map(|(a, b)| a * f32_of(*b)).sum();
    acc.iter().sum::<f32>() + tail
}

/// How many rows of x [`dot4`] dots with one weight row at once.
pub(super) const DOTS: usize = 4;

avx2_dispatch! {
    /// [`dot`] of each of [`DOTS`] f32 vectors with one bf16 row, with the same bits as `DOTS`
    /// calls of it (each vector its own 16 lanes, summed in the same order), but every weight
    /// chunk loaded and widened once for all of them: prefill's GEMMs (`cpu/prefill.rs`) were
    /// 89% `dot` (perf, the real model, 101 prompt tokens), reading each weight row once per
    /// prompt token from L1 or L2.
    fn dot4(x: [&[f32]; DOTS], w: &[bf16]) -> [f32; DOTS] => dot4_lanes
}

#[inline(always)]
fn dot4_lanes(x: [&[f32]; DOTS], w: &[bf16]) -> [f32; DOTS] {
    // One accumulator array per vector, each updated by its own call: indexed by a loop
    // variable, LLVM kept them on the stack and did not vectorize (4x slower than `dot`).
    #[inline(always)]
    fn lanes(acc: &mut [f32; 16], x: &[f32], c: usize, w: &[f32; 16]) {
        let xs: &[f32; 16] = x[c..c + 16].try_into().unwrap();
        for i in 0..16 {
            acc[i] += xs[i] * w[i];
        }
    }
    let k = w.len();
    assert!(x.iter().all(|x| x.len() == k));
    let full = k / 16 * 16;
    let [x0, x1, x2, x3] = x; // DOTS is 4
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; 16], [0f32; 16], [0f32; 16], [0f32; 16]);
    for c in (0..full).step_by(16) {
        if c % 32 == 0 {
            // a line every two chunks of 16, as `dot`
            prefetch(w[c..].as_ptr().cast::<u8>().wrapping_add(PREFETCH_AHEAD));
        }
        let ws: &[bf16; 16] = w[c..c + 16].try_into().unwrap();
        let wf: [f32; 16] = std::array::from_fn(|i| f32_of(ws[i]));
        lanes(&mut a0, x0, c, &wf);
        lanes(&mut a1, x1, c, &wf);
        lanes(&mut a2, x2, c, &wf);
        lanes(&mut a3, x3, c, &wf);
    }
    let acc = [a0, a1, a2, a3];
    std::array::from_fn(|j| {
        let tail: f32 = x[j][full..].iter().zip(&w[full..]).map(|(a, b)| a * f32_of(*b)).sum();
        acc[j].iter().sum::<f32>() + tail
    })
}

/// A weight matrix [rows, k] as the plan stores it: bf16, or blocks (`crate::quant`) decoded
/// to f32 exactly as the file's format defines them.
#[derive(Clone, Copy)]
enum Matrix<'a> {
    Bf16 { w: &'a [bf16], k: usize },
    Blocks(quant::Matrix<'a>),
}

impl Matrix<'_> {
    fn k(&self) -> usize {
        match self {
            Matrix::Bf16 { k, .. } => *k,
            Matrix::Blocks(m) => m.k,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Matrix::Bf16 { w, k } => w.len() / k,
            Matrix::Blocks(m) => m.rows,
        }
    }

    /// `x . W[r]`.
    fn dot_row(&self, r: usize, x: &[f32]) -> f32 {
        match self {
            Matrix::Bf16 { w, k } => dot(x, &w[r * k..(r + 1) * k]),
            Matrix::Blocks(m) => m.dot_row(r, x),
        }
    }

    /// Row `r` widened to f32 into `out`.
    fn row_into(&self, r: usize, out: &mut [f32]) {
        match self {
            Matrix::Bf16 { w, k } => {
                for (o, &v) in out.iter_mut().zip(&w[r * k..(r + 1) * k]) {
                    *o = f32_of(v);
                }
            }
            Matrix::Blocks(m) => m.row_into(r, out),
        }
    }
}

/// `y[r] = f(r, x . W[r])` for every row of `w` ([rows, x.len()]), in parallel.
fn gemv<T: Send>(x: &[f32], w: &Matrix, out: &mut [T], f: impl Fn(usize, f32) -> T + Sync) {
    out.par_chunks_mut(64).enumerate().for_each(|(c, chunk)| {
        for (i, y) in chunk.iter_mut().enumerate() {
            let r = c * 64 + i;
            *y = f(r, w.dot_row(r, x));
        }
    });
}

/// Looks up token `id`'s row of the embedding table into `out`; an error outside the vocabulary.
fn embed(table: &Matrix, id: i32, out: &mut [f32]) -> Result<()> {
    let vocab = table.rows();
    let row = usize::try_from(id).ok().filter(|&r| r < vocab).ok_or_else(|| Error::Input(format!("token id {id} is outside the vocabulary of {vocab}")))?;
    table.row_into(row, out);
    Ok(())
}

/// Copies `x` into the front of `buf` and returns that part.
fn copy_into<'b>(x: &[f32], buf: &'b mut [f32]) -> &'b mut [f32] {
    let out = &mut buf[..x.len()];
    out.copy_from_slice(x);
    out
}

/// RMSNorm of each row of `x` (row length `w.len()`) in place: `x * rsqrt(mean(x^2) + eps) * w`.
fn rms_norm_rows(x: &mut [f32], w: &[bf16], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, &g) in row.iter_mut().zip(w) {
            *v *= inv * f32_of(g);
        }
    }
}

/// Rotates one head in place (rotate_half convention) at angles `pos * inv_freq`.
fn rope(head: &mut [f32], inv_freq: &[f32], pos: f32) {
    let half = head.len() / 2;
    for i in 0..half {
        let (sin, cos) = (pos * inv_freq[i]).sin_cos();
        let (a, b) = (head[i], head[i + half]);
        head[i] = a * cos - b * sin;
        head[i + half] = b * cos + a * sin;
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// Attention's shape.
struct Heads {
    n_heads: usize,
    n_kv_heads: usize,
    d: usize,
    max_seq: usize,
}

/// Attention of one query token (`q`, all heads) over cache rows 0..=pos, into `out`.
fn attend(a: &Heads, q: &[f32], k_cache: &[f32], v_cache: &[f32], pos: usize, out: &mut [f32], s: &mut Scratch) {
    let (d, group, row) = (a.d, a.n_heads / a.n_kv_heads, a.n_kv_heads * a.d);
    let scale = 1.0 / (d as f32).sqrt();
    let heads = out.par_chunks_mut(d).zip(s.scores.par_chunks_mut(a.max_seq)).zip(s.acc.par_chunks_mut(d));
    heads.enumerate().for_each(|(h, ((o, scores), acc))| {
        let qh = &q[h * d..(h + 1) * d];
        let kv = (h / group) * d;
        let scores = &mut scores[..=pos];
        for (t, sc) in scores.iter_mut().enumerate() {
            let k = &k_cache[t * row + kv..t * row + kv + d];
            *sc = qh.iter().zip(k).map(|(&a, &b)| a * b).sum::<f32>() * scale;
        }
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut total = 0.0;
        for sc in scores.iter_mut() {
            *sc = (*sc - max).exp();
            total += *sc;
        }
        acc.fill(0.0);
        for (t, &p) in scores.iter().enumerate() {
            for (a, &v) in acc.iter_mut().zip(&v_cache[t * row + kv..t * row + kv + d]) {
                *a += p * v;
            }
        }
        for (o, a) in o.iter_mut().zip(acc.iter()) {
            *o = a / total;
        }
    });
}

impl<'p> CpuExecutor<'p> {
    pub fn new(file: &'p PlanFile, sampling: SamplingParams) -> Result<Self> {
        sampling.validate()?;
        let words = file.plan.arena_bytes.div_ceil(8) as usize;
        let mut arena = Vec::new();
        arena.try_reserve_exact(words).map_err(|_| Error::Input(format!("cannot allocate a {} byte arena", file.plan.arena_bytes)))?;
        arena.resize(words, 0);
        let base = arena.as_mut_ptr() as *mut u8;
        let scratch = Scratch::for_plan(&file.plan);
        Ok(CpuExecutor { file, _arena: arena, base, sampling, scratch, prefill: None })
    }

    fn bytes(&self, slot: &Slot) -> &[u8] {
        match slot.region {
            Region::Weights => self.file.weight(slot),
            // SAFETY: in bounds (checked at plan load); see `write` for aliasing.
            Region::Arena => unsafe { std::slice::from_raw_parts(self.base.add(slot.offset as usize), slot.bytes() as usize) },
        }
    }

    fn read<T: bytemuck::Pod>(&self, slot: &Slot) -> &[T] {
        bytemuck::cast_slice(self.bytes(slot))
    }

    /// A weight matrix slot ([rows, k], bf16 or a block format).
    fn matrix(&self, slot: &Slot) -> Matrix<'_> {
        let (rows, k) = (slot.ty.elements() / slot.ty.last_dim(), slot.ty.last_dim());
        if slot.ty.dtype.is_block_format() {
            Matrix::Blocks(quant::Matrix { dtype: slot.ty.dtype, bytes: self.bytes(slot), rows, k })
        } else {
            Matrix::Bf16 { w: self.read(slot), k }
        }
    }

    /// A mutable view of an arena slot. The caller holds views of several slots of one step at
    /// once; `PlanFile::open` proved that values live at the same step never share bytes.
    #[allow(clippy::mut_from_ref)]
    fn write<T: bytemuck::Pod>(&self, slot: &Slot) -> &mut [T] {
        assert_eq!(slot.region, Region::Arena, "{} is not writable", slot.name);
        let start = slot.offset as usize;
        let len = slot.bytes() as usize / std::mem::size_of::<T>();
        // SAFETY: in bounds (checked at plan load), aligned (offsets are multiples of 256 in a
        // u64 buffer), and disjoint from every other slot the current step touches (arena check).
        unsafe { std::slice::from_raw_parts_mut(self.base.add(start) as *mut T, len) }
    }

    fn run(&mut self, step: &Step) -> Result<()> {
        // Taken out for the step so kernels can borrow it next to `self`'s views; no allocation.
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.run_with(step, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn run_with(&self, step: &Step, s: &mut Scratch) -> Result<()> {
        let (ins, outs) = (&step.inputs, &step.outputs);
        match step.op {
            Op::Embedding => {
                embed(&self.matrix(&ins[0]), self.read::<i32>(&ins[1])[0], self.write(&outs[0]))?;
            }
            Op::RmsNorm { eps } => {
                let x = copy_into(self.read(&ins[0]), &mut s.x);
                rms_norm_rows(x, self.read(&ins[1]), eps);
                self.write::<f32>(&outs[0]).copy_from_slice(x);
            }
            Op::QkvRope { n_heads, n_kv_heads, head_dim: d, qk_norm, norm, .. } => {
                let slots = step.qkv_inputs()?;
                let x = copy_into(self.read(slots.x), &mut s.x);
                if let (Some(eps), Some(w)) = (norm, slots.norm) {
                    rms_norm_rows(x, self.read(w), eps);
                }
                let w = self.matrix(slots.w);
                let b: Option<&[bf16]> = slots.bias.map(|b| self.read(b));
                let norms: Option<(&[bf16], &[bf16])> = slots.qk_norm.map(|(q, k)| (self.read(q), self.read(k)));
                let inv_freq: &[f32] = self.read(slots.inv_freq);
                let pos = self.position(self.read::<i32>(slots.position)[0])?;
                let y = &mut s.y[..(n_heads + 2 * n_kv_heads) * d];
                gemv(x, &w, y, |r, acc| acc + b.map_or(0.0, |b| f32_of(b[r])));
                let q_end = n_heads * d;
                let k_end = q_end + n_kv_heads * d;
                if let (Some((qw, kw)), Some(eps)) = (norms, qk_norm) {
                    rms_norm_rows(&mut y[..q_end], qw, eps);
                    rms_norm_rows(&mut y[q_end..k_end], kw, eps);
                }
                for head in y[..k_end].chunks_exact_mut(d) {
                    rope(head, inv_freq, pos as f32);
                }
                let row = n_kv_heads * d;
                self.write::<f32>(&outs[0]).copy_from_slice(&y[..q_end]);
                self.write::<f32>(&outs[1])[pos * row..(pos + 1) * row].copy_from_slice(&y[q_end..k_end]);
                self.write::<f32>(&outs[2])[pos * row..(pos + 1) * row].copy_from_slice(&y[k_end..]);
            }
            Op::Attention { n_heads, n_kv_heads, head_dim: d } => {
                let pos = self.position(self.read::<i32>(&ins[3])[0])?;
                let heads = Heads { n_heads, n_kv_heads, d, max_seq: self.file.plan.max_seq_len };
                attend(&heads, self.read(&ins[0]), self.read(&ins[1]), self.read(&ins[2]), pos, self.write(&outs[0]), s);
            }
            Op::Linear { bias } | Op::LinearResidual { bias } => {
                let x = copy_into(self.read(&ins[0]), &mut s.x);
                let b: Option<&[bf16]> = if bias { Some(self.read(&ins[2])) } else { None };
                let residual: Option<&[f32]> = match step.op {
                    Op::LinearResidual { .. } => Some(self.read(&ins[2 + usize::from(bias)])),
                    _ => None,
                };
                let extra = |r: usize| b.map_or(0.0, |b| f32_of(b[r])) + residual.map_or(0.0, |h| h[r]);
                gemv(x, &self.matrix(&ins[1]), self.write::<f32>(&outs[0]), |r, acc| acc + extra(r));
            }
            Op::GateUpSilu { norm } => {
                let x = copy_into(self.read(&ins[0]), &mut s.x);
                if let Some(eps) = norm {
                    rms_norm_rows(x, self.read(&ins[2]), eps);
                }
                let f = outs[0].ty.last_dim();
                let gu = &mut s.y[..2 * f];
                gemv(x, &self.matrix(&ins[1]), gu, |_, acc| acc);
                let out: &mut [f32] = self.write(&outs[0]);
                for (i, o) in out.iter_mut().enumerate() {
                    *o = silu(gu[i]) * gu[f + i];
                }
            }
            Op::LmHead { norm } => {
                let x = copy_into(self.read(&ins[0]), &mut s.x);
                if let Some(eps) = norm {
                    rms_norm_rows(x, self.read(&ins[2]), eps);
                }
                gemv(x, &self.matrix(&ins[1]), self.write::<f32>(&outs[0]), |_, acc| acc);
            }
            Op::Sample => {
                let pos = self.read::<i32>(&self.file.plan.io.position)[0];
                let token = sampling::sample(self.read(&ins[0]), &self.sampling, pos as u64, &mut s.sampler)?;
                self.write::<i32>(&outs[0])[0] = token as i32;
            }
            ref op => return Err(Error::Internal(format!("plan step `{}` reached the CPU executor, which has no kernel for it", op.kind()))),
        }
        Ok(())
    }

    fn position(&self, pos: i32) -> Result<usize> {
        usize::try_from(pos)
            .ok()
            .filter(|&p| p < self.file.plan.max_seq_len)
            .ok_or_else(|| Error::Input(format!("position {pos} is outside the compiled context of {}", self.file.plan.max_seq_len)))
    }
}

impl Backend for CpuExecutor<'_> {
    fn step(&mut self, token: u32, pos: usize) -> Result<u32> {
        let io = &self.file.plan.io;
        self.write::<i32>(&io.token)[0] = token as i32;
        self.write::<i32>(&io.position)[0] = pos as i32;
        for step in &self.file.plan.steps {
            self.run(step)?;
        }
        Ok(self.read::<i32>(&io.next_token)[0] as u32)
    }

    fn prefill(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        self.prefill_tokens(tokens, start)
    }

    fn logits(&self) -> Result<Vec<f32>> {
        Ok(self.read::<f32>(&self.file.plan.io.logits).to_vec())
    }

    fn set_sampling(&mut self, sampling: SamplingParams) -> Result<()> {
        sampling.validate()?;
        self.sampling = sampling;
        Ok(())
    }

    fn top_logprobs(&self, token: u32, k: usize) -> Result<TokenLogprobs> {
        Ok(logprobs::top_logprobs(self.read(&self.file.plan.io.logits), token, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-0.5, 0.5] from a xorshift seeded with `seed` (nonzero).
    fn noise(mut s: u32) -> impl FnMut() -> f32 {
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as f32 / u32::MAX as f32 - 0.5
        }
    }

    /// The AVX2 copy of the bf16 dot product (where this CPU has AVX2) gives the baseline's bits,
    /// tail included.
    #[test]
    fn the_avx2_dot_gives_the_baseline_bits() {
        let mut next = noise(0x9e37_79b9);
        for k in [1536, 1543] {
            let x: Vec<f32> = (0..k).map(|_| next()).collect();
            let w: Vec<bf16> = (0..k).map(|_| bf16::from_f32(next())).collect();
            assert_eq!(dot(&x, &w).to_bits(), dot_lanes(&x, &w).to_bits(), "k = {k}");
        }
    }

    /// Four dot products at once give each one's bits from `dot`, tail included, in both copies.
    #[test]
    fn dot4_gives_dot_bits() {
        let mut next = noise(0x2545_f491);
        for k in [16, 1536, 1543, 8960] {
            let xs: Vec<Vec<f32>> = (0..DOTS).map(|_| (0..k).map(|_| next()).collect()).collect();
            let w: Vec<bf16> = (0..k).map(|_| bf16::from_f32(next())).collect();
            let x: [&[f32]; DOTS] = std::array::from_fn(|j| xs[j].as_slice());
            let (fast, portable) = (dot4(x, &w), dot4_lanes(x, &w));
            for j in 0..DOTS {
                let want = dot(&xs[j], &w).to_bits();
                assert_eq!((fast[j].to_bits(), portable[j].to_bits()), (want, want), "k = {k}, vector {j}");
            }
        }
    }
}
