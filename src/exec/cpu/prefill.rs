//! Batched prefill on the CPU: the plan's steps over a chunk of up to [`CHUNK`] prompt tokens
//! at once, activations laid out by [`PrefillLayout`] (row `t` = prompt token `t`). The GEMMs
//! dot each weight row with every row of the chunk while it is hot in cache, so the weights are
//! read once per chunk instead of once per token. Same kernels and stores as decode, so the
//! results match token-by-token decode up to f32 summation order, but for block-format weights,
//! which a prompt's GEMMs read rounded to bf16 as the GPU's do.

use super::*;
use crate::plan::prefill::PrefillLayout;
use crate::plan::Plan;

/// Prompt tokens per pass.
pub(super) const CHUNK: usize = 64;

pub(super) struct PrefillState {
    layout: PrefillLayout,
    _arena: Vec<u64>,
    base: *mut u8,
    /// A copy of a step's main input rows (the input norm scales them in place).
    x: Vec<f32>,
    /// GEMM results an epilogue still transforms (q/k/v, gate/up), `CHUNK` rows.
    y: Vec<f32>,
}

impl PrefillState {
    fn new(plan: &Plan) -> Result<PrefillState> {
        let layout = plan.prefill_layout(CHUNK.min(plan.max_seq_len))?;
        let mut arena = Vec::new();
        let words = layout.bytes.div_ceil(8) as usize;
        arena.try_reserve_exact(words).map_err(|_| Error::Input(format!("cannot allocate a {} byte prefill arena", layout.bytes)))?;
        arena.resize(words, 0u64);
        let base = arena.as_mut_ptr() as *mut u8;
        let (mut x, mut y) = (0, 0);
        for step in &plan.steps {
            // The main input when it is an activation (the embedding's first input is its table).
            x = x.max(step.inputs.first().filter(|i| i.region == Region::Arena).map_or(0, |i| i.ty.elements()));
            match step.op {
                Op::QkvRope { n_heads, n_kv_heads, head_dim, .. } => y = y.max((n_heads + 2 * n_kv_heads) * head_dim),
                Op::GateUpSilu { .. } => y = y.max(2 * step.outputs[0].ty.elements()),
                _ => {}
            }
        }
        let rows = layout.chunk;
        Ok(PrefillState { layout, _arena: arena, base, x: vec![0.0; rows * x], y: vec![0.0; rows * y] })
    }
}

/// A raw output pointer shared by the GEMM's threads, which write disjoint elements.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
unsafe impl<T> Send for OutPtr<T> {}
unsafe impl<T> Sync for OutPtr<T> {}
impl<T> OutPtr<T> {
    /// SAFETY: `i` is in bounds and no other thread writes element `i`.
    unsafe fn put(&self, i: usize, v: T) {
        *self.0.add(i) = v;
    }
}

/// `out[t, r] = f(t, r, x[t] . W[r])` for the `n` rows of `x` ([n, K]) and every row of `w`
/// ([N, K]); `out` is [n, N]. Parallel over blocks of weight rows; within a block every four
/// rows of x are dotted with each of the block's weight rows at once (dot4), so both stay in
/// cache, every weight byte comes from memory once per chunk and is widened once per four rows.
/// A block-format weight's rows are rounded to bf16 first, as the GPU's prompt GEMMs read them
/// (kernels/dequantize.cu): a prompt multiplies what `--weights bf16` would store, decode the
/// exact values. (A per-row RMSNorm prologue would scale the rows
/// of `x` here.)
fn gemm<T: Send>(x: &[f32], n: usize, w: &Matrix, out: &mut [T], f: impl Fn(usize, usize, f32) -> T + Sync) {
    const BLOCK: usize = 8;
    let k = x.len() / n;
    let rows = w.rows();
    debug_assert_eq!(w.k(), k);
    assert!(out.len() >= n * rows && x.len() == n * k);
    let ptr = OutPtr(out.as_mut_ptr());
    (0..rows.div_ceil(BLOCK)).into_par_iter().for_each(|b| {
        let block = b * BLOCK..((b + 1) * BLOCK).min(rows);
        let rounded: Vec<bf16> = match w {
            Matrix::Bf16 { .. } => Vec::new(),
            Matrix::Blocks(_) => {
                let (mut row, mut rounded) = (vec![0f32; k], vec![bf16::ZERO; block.len() * k]);
                for (r, out) in block.clone().zip(rounded.chunks_exact_mut(k)) {
                    w.row_into(r, &mut row);
                    round_to_bf16(&row, out);
                }
                rounded
            }
        };
        let row = |r: usize| match w {
            Matrix::Bf16 { w, .. } => &w[r * k..(r + 1) * k],
            Matrix::Blocks(_) => &rounded[(r - block.start) * k..][..k],
        };
        // DOTS rows of x at a time against each weight row (dot4), the rest one by one; the
        // same bits either way.
        let grouped = n / DOTS * DOTS;
        for t0 in (0..grouped).step_by(DOTS) {
            let xs: [&[f32]; DOTS] = std::array::from_fn(|j| &x[(t0 + j) * k..(t0 + j + 1) * k]);
            for r in block.clone() {
                for (j, acc) in dot4(xs, row(r)).into_iter().enumerate() {
                    // SAFETY: (t, r) is written by this block only; t < n, r < rows.
                    unsafe { ptr.put((t0 + j) * rows + r, f(t0 + j, r, acc)) };
                }
            }
        }
        for t in grouped..n {
            let xt = &x[t * k..(t + 1) * k];
            for r in block.clone() {
                // SAFETY: as above.
                unsafe { ptr.put(t * rows + r, f(t, r, dot(xt, row(r)))) };
            }
        }
    });
}

avx2_dispatch! {
    /// `x` rounded to bf16 into `out`, as `bf16::from_f32` rounds (to nearest even; a NaN stays
    /// a quiet NaN with its sign and top payload bits), but without its branches, so it
    /// vectorizes.
    fn round_to_bf16(x: &[f32], out: &mut [bf16]) => round_to_bf16_lanes
}

#[inline(always)]
fn round_to_bf16_lanes(x: &[f32], out: &mut [bf16]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let b = v.to_bits();
        let nearest_even = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
        let quiet_nan = (b >> 16) | 0x40;
        *o = bf16::from_bits(if b & 0x7FFF_FFFF > 0x7F80_0000 { quiet_nan } else { nearest_even } as u16);
    }
}

impl CpuExecutor<'_> {
    /// Prefills `tokens` at `start..`, chunk by chunk; only the last chunk runs the LM head.
    pub(super) fn prefill_tokens(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        if tokens.is_empty() {
            return Err(Error::Input("prefill needs at least one token".into()));
        }
        if start + tokens.len() > self.file.plan.max_seq_len {
            return Err(Error::Input(format!(
                "positions {start}..{} are outside the compiled context of {}",
                start + tokens.len(),
                self.file.plan.max_seq_len
            )));
        }
        let mut state = match self.prefill.take() {
            Some(s) => s,
            None => PrefillState::new(&self.file.plan)?,
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let chunk = state.layout.chunk;
        let mut result = Ok(0);
        for (i, part) in tokens.chunks(chunk).enumerate() {
            let last = (i + 1) * chunk >= tokens.len();
            result = self.prefill_chunk(&mut state, &mut scratch, part, start + i * chunk, last);
            if result.is_err() {
                break;
            }
        }
        self.scratch = scratch;
        self.prefill = Some(state);
        result
    }

    /// The first `n` rows of a widened slot, or the decode slot itself.
    #[allow(clippy::mut_from_ref)]
    fn rows<T: bytemuck::Pod>(&self, p: &PrefillState, slot: &Slot, n: usize) -> &mut [T] {
        match p.layout.offset(slot) {
            Some(offset) => {
                let len = n * slot.bytes() as usize / std::mem::size_of::<T>();
                assert!(offset as usize + len * std::mem::size_of::<T>() <= p.layout.bytes as usize);
                // SAFETY: in bounds (asserted), aligned (256-byte offsets in a u64 buffer), and
                // disjoint from every other value live at this step (the prefill layout is checked).
                unsafe { std::slice::from_raw_parts_mut(p.base.add(offset as usize) as *mut T, len) }
            }
            None => self.write(slot),
        }
    }

    fn prefill_chunk(&self, p: &mut PrefillState, s: &mut Scratch, tokens: &[u32], start: usize, last: bool) -> Result<u32> {
        let plan = &self.file.plan;
        let n = tokens.len();
        let ids: &mut [i32] = self.rows(p, &plan.io.token, n);
        for (id, &t) in ids.iter_mut().zip(tokens) {
            *id = t as i32;
        }
        for step in &plan.steps {
            let (ins, outs) = (&step.inputs, &step.outputs);
            // Row views; the x/y scratch is split off `p` so the views (of the arena) can coexist.
            let (mut xs, mut ys) = (std::mem::take(&mut p.x), std::mem::take(&mut p.y));
            let res = (|| -> Result<()> {
                let copy_rows = |slot: &Slot, xs: &mut Vec<f32>| -> usize {
                    let x: &[f32] = self.rows(p, slot, n);
                    copy_into(x, xs);
                    x.len()
                };
                match step.op {
                    Op::Embedding => {
                        let table = self.matrix(&ins[0]);
                        let ids: &[i32] = self.rows(p, &ins[1], n);
                        let out: &mut [f32] = self.rows(p, &outs[0], n);
                        for (&id, out) in ids.iter().zip(out.chunks_exact_mut(table.k())) {
                            embed(&table, id, out)?;
                        }
                    }
                    Op::RmsNorm { eps } => {
                        let len = copy_rows(&ins[0], &mut xs);
                        rms_norm_rows(&mut xs[..len], self.read(&ins[1]), eps);
                        self.rows::<f32>(p, &outs[0], n).copy_from_slice(&xs[..len]);
                    }
                    Op::QkvRope { n_heads, n_kv_heads, head_dim: d, qk_norm, norm, .. } => {
                        // The position slot is unused: prefill's rows sit at start + t.
                        let slots = step.qkv_inputs()?;
                        let len = copy_rows(slots.x, &mut xs);
                        if let (Some(eps), Some(w)) = (norm, slots.norm) {
                            rms_norm_rows(&mut xs[..len], self.read(w), eps);
                        }
                        let w = self.matrix(slots.w);
                        let b: Option<&[bf16]> = slots.bias.map(|b| self.read(b));
                        let norms: Option<(&[bf16], &[bf16])> = slots.qk_norm.map(|(q, k)| (self.read(q), self.read(k)));
                        let inv_freq: &[f32] = self.read(slots.inv_freq);
                        let width = (n_heads + 2 * n_kv_heads) * d;
                        let y = &mut ys[..n * width];
                        gemm(&xs[..len], n, &w, y, |_, r, acc| acc + b.map_or(0.0, |b| f32_of(b[r])));
                        let (q_end, k_end) = (n_heads * d, (n_heads + n_kv_heads) * d);
                        let q_out: &mut [f32] = self.rows(p, &outs[0], n);
                        let (k_cache, v_cache): (&mut [f32], &mut [f32]) = (self.write(&outs[1]), self.write(&outs[2]));
                        let row = n_kv_heads * d;
                        for (t, yt) in y.chunks_exact_mut(width).enumerate() {
                            let pos = start + t;
                            if let (Some((qw, kw)), Some(eps)) = (norms, qk_norm) {
                                rms_norm_rows(&mut yt[..q_end], qw, eps);
                                rms_norm_rows(&mut yt[q_end..k_end], kw, eps);
                            }
                            for head in yt[..k_end].chunks_exact_mut(d) {
                                rope(head, inv_freq, pos as f32);
                            }
                            q_out[t * q_end..(t + 1) * q_end].copy_from_slice(&yt[..q_end]);
                            k_cache[pos * row..(pos + 1) * row].copy_from_slice(&yt[q_end..k_end]);
                            v_cache[pos * row..(pos + 1) * row].copy_from_slice(&yt[k_end..]);
                        }
                    }
                    Op::Attention { n_heads, n_kv_heads, head_dim: d } => {
                        let heads = Heads { n_heads, n_kv_heads, d, max_seq: plan.max_seq_len };
                        let q: &[f32] = self.rows(p, &ins[0], n);
                        let out: &mut [f32] = self.rows(p, &outs[0], n);
                        let (k_cache, v_cache): (&[f32], &[f32]) = (self.read(&ins[1]), self.read(&ins[2]));
                        let width = n_heads * d;
                        for t in 0..n {
                            attend(&heads, &q[t * width..(t + 1) * width], k_cache, v_cache, start + t, &mut out[t * width..(t + 1) * width], s);
                        }
                    }
                    Op::Linear { bias } | Op::LinearResidual { bias } => {
                        let len = copy_rows(&ins[0], &mut xs);
                        let b: Option<&[bf16]> = if bias { Some(self.read(&ins[2])) } else { None };
                        let residual: Option<&[f32]> = match step.op {
                            Op::LinearResidual { .. } => Some(self.rows(p, &ins[2 + usize::from(bias)], n)),
                            _ => None,
                        };
                        let width = outs[0].ty.elements();
                        let extra = |t: usize, r: usize| b.map_or(0.0, |b| f32_of(b[r])) + residual.map_or(0.0, |h| h[t * width + r]);
                        gemm(&xs[..len], n, &self.matrix(&ins[1]), self.rows::<f32>(p, &outs[0], n), |t, r, acc| acc + extra(t, r));
                    }
                    Op::GateUpSilu { norm } => {
                        let len = copy_rows(&ins[0], &mut xs);
                        if let Some(eps) = norm {
                            rms_norm_rows(&mut xs[..len], self.read(&ins[2]), eps);
                        }
                        let f = outs[0].ty.last_dim();
                        let gu = &mut ys[..n * 2 * f];
                        gemm(&xs[..len], n, &self.matrix(&ins[1]), gu, |_, _, acc| acc);
                        let out: &mut [f32] = self.rows(p, &outs[0], n);
                        for (o, g) in out.chunks_exact_mut(f).zip(gu.chunks_exact(2 * f)) {
                            for (i, o) in o.iter_mut().enumerate() {
                                *o = silu(g[i]) * g[f + i];
                            }
                        }
                    }
                    Op::LmHead { norm } if last => {
                        let row = ins[0].ty.elements();
                        let x: &[f32] = self.rows(p, &ins[0], n);
                        let x = copy_into(&x[(n - 1) * row..], &mut xs);
                        if let Some(eps) = norm {
                            rms_norm_rows(x, self.read(&ins[2]), eps);
                        }
                        gemv(x, &self.matrix(&ins[1]), self.write::<f32>(&outs[0]), |_, acc| acc);
                    }
                    Op::Sample if last => {
                        let pos = start + n - 1;
                        let token = sampling::sample(self.read(&ins[0]), &self.sampling, pos as u64, &mut s.sampler)?;
                        self.write::<i32>(&outs[0])[0] = token as i32;
                    }
                    Op::LmHead { .. } | Op::Sample => {}
                    ref op => return Err(Error::Internal(format!("plan step `{}` reached the CPU prefill, which has no kernel for it", op.kind()))),
                }
                Ok(())
            })();
            p.x = xs;
            p.y = ys;
            res?;
        }
        let io = &plan.io;
        self.write::<i32>(&io.position)[0] = (start + n - 1) as i32;
        Ok(self.read::<i32>(&io.next_token)[0] as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free rounding gives `bf16::from_f32`'s bits for every sign, exponent and the
    /// mantissa patterns around a tie (infinities, NaNs, subnormals and overflow included).
    #[test]
    fn rounding_to_bf16_matches_half() {
        let mantissas = [0u32, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x1_0000, 0x1_7FFF, 0x1_8000, 0x1_8001, 0x40_0000, 0x7F_7FFF, 0x7F_8000, 0x7F_FFFF];
        let bits: Vec<u32> = (0..2u32).flat_map(|s| (0..256u32).flat_map(move |e| mantissas.map(|m| s << 31 | e << 23 | m))).collect();
        let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let mut got = vec![bf16::ZERO; x.len()];
        round_to_bf16(&x, &mut got);
        for ((v, g), b) in x.iter().zip(&got).zip(&bits) {
            assert_eq!(g.to_bits(), bf16::from_f32(*v).to_bits(), "{b:#010x}");
        }
    }
}
