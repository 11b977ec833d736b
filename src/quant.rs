//! Weights kept in GGML's block formats (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; `DType::BLOCK_FORMATS`):
//! how a plan lays their blocks out, how the CPU executor reads them, and how `llmc compile
//! --quantize` makes them from a float weight.
//!
//! **Plan layout** ("bodies, then scales"): a matrix of B blocks (row-major; a row of K elements
//! is K / block consecutive blocks) is stored as the B block bodies back to back, then the B f16
//! scales `d` of the formats that keep theirs outside a 16-byte multiple (Q8_0 and Q4_0 before
//! their quants, Q6_K after them). So every body starts 16-byte aligned and the GPU reads it with
//! 16-byte loads (kernels/quant.cu). Q4_K and Q5_K blocks (144 and 176 bytes) are bodies whole.
//! The bytes are the file's, only moved: values are bit-identical to the GGUF's.
//! A concatenated weight (`qkv_proj`, `gate_up_proj`) of one format is one matrix: the bodies of
//! all its parts, then all their scales.

use crate::error::{Error, Result};
use crate::ir::DType;
use crate::load::gguf::dequant::{q4_0, q4_k, q5_k, q6_k, q8_0};
use half::f16;

#[cfg(target_arch = "x86_64")]
mod dot_avx2;

/// Elements of the largest block (the k-quants' super-block).
pub const MAX_BLOCK: usize = 256;
/// Bytes of the largest block (Q6_K).
const MAX_BLOCK_BYTES: usize = 210;

/// Where a block format's bytes go in a plan: `body` bytes (a multiple of 16) and, when the
/// format's f16 scale lies outside them, its offset in the GGUF block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub body: usize,
    pub scale_at: Option<usize>,
}

pub fn layout(dtype: DType) -> Layout {
    match dtype {
        DType::Q8_0 => Layout { body: 32, scale_at: Some(0) },
        DType::Q4_0 => Layout { body: 16, scale_at: Some(0) },
        DType::Q4K => Layout { body: 144, scale_at: None },
        DType::Q5K => Layout { body: 176, scale_at: None },
        DType::Q6K => Layout { body: 208, scale_at: Some(208) },
        plain => Layout { body: plain.size(), scale_at: None },
    }
}

/// GGUF blocks (`native`, whole blocks of `dtype`) split into their bodies and their scales.
pub fn split_blocks(dtype: DType, native: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let block_bytes = dtype.block().1;
    let Layout { body, scale_at } = layout(dtype);
    let Some(at) = scale_at else { return (native.to_vec(), Vec::new()) };
    let blocks = native.len() / block_bytes;
    let (mut bodies, mut scales) = (Vec::with_capacity(blocks * body), Vec::with_capacity(blocks * 2));
    for b in native.chunks_exact(block_bytes) {
        bodies.extend_from_slice(&b[..at]);
        bodies.extend_from_slice(&b[at + 2..]);
        scales.extend_from_slice(&b[at..at + 2]);
    }
    (bodies, scales)
}

/// A weight matrix as a plan stores it: `rows` x `k` elements of `dtype`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub dtype: DType,
    pub bytes: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

impl Matrix<'_> {
    #[inline(always)]
    fn blocks_per_row(&self) -> usize {
        self.k / self.dtype.block().0
    }

    /// Block `b` (of all rows') back in GGUF order, in `buf`.
    #[inline(always)]
    fn native_block<'b>(&self, b: usize, buf: &'b mut [u8; MAX_BLOCK_BYTES]) -> &'b [u8] {
        let block_bytes = self.dtype.block().1;
        let Layout { body, scale_at } = layout(self.dtype);
        let src = &self.bytes[b * body..(b + 1) * body];
        match scale_at {
            None => buf[..block_bytes].copy_from_slice(src),
            Some(at) => {
                let scales = self.rows * self.blocks_per_row() * body;
                buf[..at].copy_from_slice(&src[..at]);
                buf[at..at + 2].copy_from_slice(&self.bytes[scales + 2 * b..scales + 2 * b + 2]);
                buf[at + 2..block_bytes].copy_from_slice(&src[at..]);
            }
        }
        &buf[..block_bytes]
    }

    /// Block `b` decoded to f32 exactly as ggml (and gguf-py) compute it; returns its elements.
    #[inline(always)]
    fn decode(&self, b: usize, out: &mut [f32; MAX_BLOCK]) -> usize {
        let mut buf = [0u8; MAX_BLOCK_BYTES];
        let native = self.native_block(b, &mut buf);
        fn small(out: &mut [f32; MAX_BLOCK]) -> &mut [f32; 32] {
            (&mut out[..32]).try_into().expect("32 elements")
        }
        match self.dtype {
            DType::Q8_0 => q8_0(native.try_into().expect("block"), small(out)),
            DType::Q4_0 => q4_0(native.try_into().expect("block"), small(out)),
            DType::Q4K => q4_k(native.try_into().expect("block"), out),
            DType::Q5K => q5_k(native.try_into().expect("block"), out),
            DType::Q6K => q6_k(native.try_into().expect("block"), out),
            plain => unreachable!("{plain} is not a block format"),
        }
        self.dtype.block().0
    }

    /// Row `r` as f32 values into `out` (`k` of them).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2.
            return unsafe { dot_avx2::row_into(self, r, out) };
        }
        row_into_lanes(self, r, out)
    }

    /// `x . W[r]`, block by block (no allocation), in 16 independent lanes so it vectorizes.
    pub fn dot_row(&self, r: usize, x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2.
            return unsafe { dot_avx2::dot_row(self, r, x) };
        }
        dot_row_lanes(self, r, x)
    }
}

#[inline(always)]
fn row_into_lanes(m: &Matrix<'_>, r: usize, out: &mut [f32]) {
    let mut values = [0f32; MAX_BLOCK];
    let per_row = m.blocks_per_row();
    for (j, chunk) in out.chunks_exact_mut(m.dtype.block().0).enumerate() {
        let n = m.decode(r * per_row + j, &mut values);
        chunk.copy_from_slice(&values[..n]);
    }
}

#[inline(always)]
fn dot_row_lanes(m: &Matrix<'_>, r: usize, x: &[f32]) -> f32 {
    let mut values = [0f32; MAX_BLOCK];
    let mut acc = [0f32; 16];
    let per_row = m.blocks_per_row();
    for (j, xs) in x.chunks_exact(m.dtype.block().0).enumerate() {
        let n = m.decode(r * per_row + j, &mut values);
        for (xc, wc) in xs.chunks_exact(16).zip(values[..n].chunks_exact(16)) {
            for i in 0..16 {
                acc[i] += xc[i] * wc[i];
            }
        }
    }
    acc.iter().sum()
}

/// Checks that a weight of shape `[.., k]` can be stored as `dtype`.
pub fn check_row_length(dtype: DType, name: &str, k: usize) -> Result<()> {
    let per_block = dtype.block().0;
    if !k.is_multiple_of(per_block) {
        return Err(Error::Input(format!("{name}: rows of {k} elements are not whole {dtype} blocks of {per_block}")));
    }
    Ok(())
}

/// `values` (rows of a multiple of the block) quantized to GGUF blocks of `dtype`. The choices
/// are the simple ones (ggml's reference quantizers, without their search for better scales):
/// the point is a valid block of each format, with an error the fixtures' tests bound.
pub fn quantize(dtype: DType, values: &[f32]) -> Vec<u8> {
    let per_block = dtype.block().0;
    let mut out = Vec::with_capacity(values.len() / per_block * dtype.block().1);
    for x in values.chunks_exact(per_block) {
        match dtype {
            DType::Q8_0 => quantize_q8_0(x, &mut out),
            DType::Q4_0 => quantize_q4_0(x, &mut out),
            DType::Q4K => quantize_k(x, 15, &mut out),
            DType::Q5K => quantize_k(x, 31, &mut out),
            DType::Q6K => quantize_q6_k(x, &mut out),
            plain => unreachable!("{plain} is not a block format"),
        }
    }
    out
}

fn put_f16(out: &mut Vec<u8>, v: f32) -> f32 {
    let h = f16::from_f32(v);
    out.extend(h.to_le_bytes());
    h.to_f32()
}

fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let id = inverse(put_f16(out, amax / 127.0));
    out.extend(x.iter().map(|v| (v * id).round().clamp(-128.0, 127.0) as i8 as u8));
}

fn quantize_q4_0(x: &[f32], out: &mut Vec<u8>) {
    // ggml: the value of largest magnitude maps to -8, keeping its sign.
    let max = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let id = inverse(put_f16(out, max / -8.0));
    let q = |v: f32| (v * id + 8.5).clamp(0.0, 15.0) as u8;
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
}

/// Packs 6-bit scales and mins as ggml's quantize_row_q4_K does (the inverse of
/// `dequant::scale_min_k4`).
pub fn pack_scales(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
    q
}

/// Q4_K (`levels` 15) or Q5_K (31): eight sub-blocks of 32, each `d*sc*q - dmin*m`.
fn quantize_k(x: &[f32], levels: u8, out: &mut Vec<u8>) {
    let (mut scale, mut min) = ([0f32; 8], [0f32; 8]);
    for (j, s) in x.chunks_exact(32).enumerate() {
        let lo = s.iter().fold(0f32, |m, &v| m.min(v));
        let hi = s.iter().fold(f32::MIN, |m, &v| m.max(v));
        scale[j] = (hi - lo) / levels as f32;
        min[j] = -lo;
    }
    let d = put_f16(out, scale.iter().fold(0f32, |m, &v| m.max(v)) / 63.0);
    let dmin = put_f16(out, min.iter().fold(0f32, |m, &v| m.max(v)) / 63.0);
    let six = |v: f32, unit: f32| (v * inverse(unit)).round().clamp(0.0, 63.0) as u8;
    let sc: [u8; 8] = std::array::from_fn(|j| six(scale[j], d));
    let m: [u8; 8] = std::array::from_fn(|j| six(min[j], dmin));
    out.extend(pack_scales(sc, m));
    let q: Vec<u8> = (0..256)
        .map(|i| {
            let j = i / 32;
            let step = d * sc[j] as f32;
            ((x[i] + dmin * m[j] as f32) * inverse(step)).round().clamp(0.0, levels as f32) as u8
        })
        .collect();
    if levels == 31 {
        out.extend((0..32).map(|l| (0..4).fold(0u8, |h, g| h | ((q[64 * g + l] >> 4) << (2 * g)) | ((q[64 * g + 32 + l] >> 4) << (2 * g + 1)))));
    }
    for g in 0..4 {
        out.extend((0..32).map(|l| (q[64 * g + l] & 0x0F) | ((q[64 * g + 32 + l] & 0x0F) << 4)));
    }
}

/// Q6_K: sixteen sub-blocks of 16, each `d*sc*(q - 32)` with a signed 8-bit `sc`.
fn quantize_q6_k(x: &[f32], out: &mut Vec<u8>) {
    let scale: [f32; 16] = std::array::from_fn(|j| x[16 * j..16 * j + 16].iter().fold(0f32, |m, v| m.max(v.abs())) / 31.0);
    let d = f16::from_f32(scale.iter().fold(0f32, |m, &v| m.max(v)) / 127.0).to_f32();
    let sc: [i8; 16] = std::array::from_fn(|j| (scale[j] * inverse(d)).round().clamp(-128.0, 127.0) as i8);
    let q: Vec<u8> = (0..256).map(|i| ((x[i] * inverse(d * sc[i / 16] as f32)).round() + 32.0).clamp(0.0, 63.0) as u8).collect();
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for h in 0..2 {
        for l in 0..32 {
            let [q0, q1, q2, q3] = [0, 32, 64, 96].map(|o| q[128 * h + l + o]);
            ql[64 * h + l] = (q0 & 0x0F) | ((q2 & 0x0F) << 4);
            ql[64 * h + l + 32] = (q1 & 0x0F) | ((q3 & 0x0F) << 4);
            qh[32 * h + l] = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6);
        }
    }
    out.extend(ql);
    out.extend(qh);
    out.extend(sc.map(|s| s as u8));
    put_f16(out, d);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 - 0.5) * 0.2
            })
            .collect()
    }

    /// Quantized then read back from the plan layout, every format is close to its input (within
    /// the format's step), and the plan layout holds exactly the GGUF blocks' bytes.
    #[test]
    fn every_format_round_trips_through_the_plan_layout() {
        let (rows, k) = (3, 512);
        let x = ramp(rows * k, 1);
        // Worst error per element relative to the block's largest |x| (0.1): half a step of the
        // format's quants plus the scale's own 6-bit rounding for the k-quants.
        for (dtype, bound) in [(DType::Q8_0, 0.005), (DType::Q4_0, 0.13), (DType::Q4K, 0.1), (DType::Q5K, 0.05), (DType::Q6K, 0.03)] {
            let native = quantize(dtype, &x);
            assert_eq!(native.len(), rows * k / dtype.block().0 * dtype.block().1, "{dtype}");
            let (mut bytes, scales) = split_blocks(dtype, &native);
            assert_eq!(bytes.len() % 16, 0);
            bytes.extend(scales);
            assert_eq!(bytes.len(), native.len());
            let m = Matrix { dtype, bytes: &bytes, rows, k };
            let mut row = vec![0f32; k];
            let mut dot = 0f32;
            for r in 0..rows {
                m.row_into(r, &mut row);
                let want = &x[r * k..(r + 1) * k];
                let worst = row.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst <= bound * 0.1 + 1e-6, "{dtype} row {r}: error {worst}");
                let ones = vec![1f32; k];
                let sum: f32 = row.iter().sum();
                assert!((m.dot_row(r, &ones) - sum).abs() <= 1e-4 * (1.0 + sum.abs()), "{dtype}");
                dot += m.dot_row(r, want);
            }
            assert!(dot.is_finite() && dot > 0.0, "{dtype}: x . dequant(quant(x)) = {dot}");
            // The plan layout decodes to what the GGUF blocks decode to, bit for bit.
            let direct = crate::load::gguf::dequant::dequantize_f32(dtype, &native);
            let mut all = vec![0f32; rows * k];
            for (r, out) in all.chunks_exact_mut(k).enumerate() {
                m.row_into(r, out);
            }
            assert_eq!(all.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), direct.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{dtype}");
        }
    }

    /// The AVX2 copies of the block loops (where this CPU has AVX2; else the test compares the
    /// baseline with itself, and says so) give the baseline's bits for every format.
    #[test]
    fn the_avx2_loops_give_the_baseline_bits() {
        let (rows, k) = (4, 1024);
        let (w, x) = (ramp(rows * k, 2), ramp(k, 3));
        for dtype in DType::BLOCK_FORMATS {
            let (mut bytes, scales) = split_blocks(dtype, &quantize(dtype, &w));
            bytes.extend(scales);
            let m = Matrix { dtype, bytes: &bytes, rows, k };
            let (mut got, mut want) = (vec![0f32; k], vec![1f32; k]);
            for r in 0..rows {
                assert_eq!(m.dot_row(r, &x).to_bits(), dot_row_lanes(&m, r, &x).to_bits(), "{dtype} row {r}");
                m.row_into(r, &mut got);
                row_into_lanes(&m, r, &mut want);
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{dtype} row {r}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        println!("AVX2 on this CPU: {}", std::arch::is_x86_feature_detected!("avx2"));
    }

    #[test]
    fn a_row_of_partial_blocks_is_refused() {
        let err = check_row_length(DType::Q4K, "layers.0.down_proj", 96).unwrap_err().to_string();
        assert!(err.contains("not whole q4_k blocks of 256"), "{err}");
        check_row_length(DType::Q8_0, "x", 96).unwrap();
    }
}
