//! ggml tensor types and their conversion to bf16. Block layouts and arithmetic follow
//! ggml-quants.c (`dequantize_row_*`) exactly: every value is computed in f32 in the same order
//! as there, then rounded to nearest-even bf16.

use half::{bf16, f16};
use rayon::prelude::*;

/// ggml's `ggml_type`, for every id a GGUF file may carry. All are known so that the reader can
/// check each tensor's byte size; [`dequantize`] converts only the types listed in its doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    BF16,
    Tq1_0,
    Tq2_0,
    Mxfp4,
}

/// Elements per super-block of the k-quants.
const QK_K: usize = 256;

impl GgmlType {
    pub fn from_id(id: u32) -> Option<GgmlType> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            16 => Iq2Xxs,
            17 => Iq2Xs,
            18 => Iq3Xxs,
            19 => Iq1S,
            20 => Iq4Nl,
            21 => Iq3S,
            22 => Iq2S,
            23 => Iq4Xs,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => Iq1M,
            30 => BF16,
            34 => Tq1_0,
            35 => Tq2_0,
            39 => Mxfp4,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            Iq2Xxs => "IQ2_XXS",
            Iq2Xs => "IQ2_XS",
            Iq3Xxs => "IQ3_XXS",
            Iq1S => "IQ1_S",
            Iq4Nl => "IQ4_NL",
            Iq3S => "IQ3_S",
            Iq2S => "IQ2_S",
            Iq4Xs => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            Iq1M => "IQ1_M",
            BF16 => "BF16",
            Tq1_0 => "TQ1_0",
            Tq2_0 => "TQ2_0",
            Mxfp4 => "MXFP4",
        }
    }

    /// (elements per block, bytes per block), as ggml's `type_traits` / gguf-py's GGML_QUANT_SIZES.
    pub fn block_layout(self) -> (u64, u64) {
        use GgmlType::*;
        let k = QK_K as u64;
        match self {
            F32 | I32 => (1, 4),
            F16 | BF16 | I16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 => (32, 2 + 16),
            Q4_1 => (32, 2 + 2 + 16),
            Q5_0 => (32, 2 + 4 + 16),
            Q5_1 => (32, 2 + 2 + 4 + 16),
            Q8_0 => (32, 2 + 32),
            Q8_1 => (32, 4 + 4 + 32),
            Q2K => (k, 2 + 2 + k / 16 + k / 4),
            Q3K => (k, 2 + k / 4 + k / 8 + 12),
            Q4K => (k, 2 + 2 + k / 2 + 12),
            Q5K => (k, 2 + 2 + k / 2 + k / 8 + 12),
            Q6K => (k, 2 + k / 2 + k / 4 + k / 16),
            Q8K => (k, 4 + k + k / 8),
            Iq2Xxs => (k, 2 + k / 4),
            Iq2Xs => (k, 2 + k / 4 + k / 32),
            Iq3Xxs => (k, 2 + k / 4 + k / 8),
            Iq1S => (k, 2 + k / 8 + k / 16),
            Iq4Nl => (32, 2 + 16),
            Iq3S => (k, 2 + k / 4 + k / 8 + k / 32 + 4),
            Iq2S => (k, 2 + k / 4 + k / 16),
            Iq4Xs => (k, 2 + 2 + k / 2 + k / 64),
            Iq1M => (k, k / 8 + k / 16 + k / 32),
            Tq1_0 => (k, 2 + 4 * 13),
            Tq2_0 => (k, 2 + 64),
            Mxfp4 => (32, 1 + 16),
        }
    }
}

/// Converts `bytes` of `ggml_type` to bf16, in parallel over blocks. Supports F32, F16, BF16,
/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K; returns `None` for any other type. `bytes`
/// must hold whole blocks (the reader sizes every tensor so).
pub fn dequantize(ggml_type: GgmlType, bytes: &[u8]) -> Option<Vec<bf16>> {
    use GgmlType::*;
    Some(match ggml_type {
        F32 => convert::<4>(bytes, |b| bf16::from_f32(f32::from_le_bytes(*b))),
        F16 => convert::<2>(bytes, |b| bf16::from_f32(f16::from_le_bytes(*b).to_f32())),
        BF16 => convert::<2>(bytes, |b| bf16::from_le_bytes(*b)),
        Q4_0 => blocks::<32, 18>(bytes, q4_0),
        Q4_1 => blocks::<32, 20>(bytes, q4_1),
        Q5_0 => blocks::<32, 22>(bytes, q5_0),
        Q5_1 => blocks::<32, 24>(bytes, q5_1),
        Q8_0 => blocks::<32, 34>(bytes, q8_0),
        Q4K => blocks::<QK_K, 144>(bytes, q4_k),
        Q5K => blocks::<QK_K, 176>(bytes, q5_k),
        Q6K => blocks::<QK_K, 210>(bytes, q6_k),
        _ => return None,
    })
}

/// A block format kept in a plan (`DType::BLOCK_FORMATS`) decoded to f32, exactly: the values the
/// plan's kernels read (crate::quant).
#[cfg(test)]
pub(crate) fn dequantize_f32(dtype: crate::ir::DType, bytes: &[u8]) -> Vec<f32> {
    use crate::ir::DType;
    fn each<const BLOCK: usize, const BYTES: usize>(bytes: &[u8], decode: fn(&[u8; BYTES], &mut [f32; BLOCK])) -> Vec<f32> {
        let (blocks, _) = bytes.as_chunks::<BYTES>();
        let mut out = vec![0f32; blocks.len() * BLOCK];
        for (out, block) in out.chunks_exact_mut(BLOCK).zip(blocks) {
            decode(block, out.try_into().expect("one block"));
        }
        out
    }
    match dtype {
        DType::Q8_0 => each::<32, 34>(bytes, q8_0),
        DType::Q4_0 => each::<32, 18>(bytes, q4_0),
        DType::Q4K => each::<QK_K, 144>(bytes, q4_k),
        DType::Q5K => each::<QK_K, 176>(bytes, q5_k),
        DType::Q6K => each::<QK_K, 210>(bytes, q6_k),
        plain => unreachable!("{plain} is not a block format"),
    }
}

/// Blocks handed to one rayon task: enough work to amortize scheduling.
const BLOCKS_PER_TASK: usize = 256;

fn convert<const N: usize>(bytes: &[u8], one: fn(&[u8; N]) -> bf16) -> Vec<bf16> {
    let (items, _) = bytes.as_chunks::<N>();
    items.par_iter().with_min_len(BLOCKS_PER_TASK * 32).map(one).collect()
}

fn blocks<const BLOCK: usize, const BYTES: usize>(bytes: &[u8], decode: fn(&[u8; BYTES], &mut [f32; BLOCK])) -> Vec<bf16> {
    let (blocks, _) = bytes.as_chunks::<BYTES>();
    let mut out = vec![bf16::ZERO; blocks.len() * BLOCK];
    out.par_chunks_mut(BLOCK * BLOCKS_PER_TASK).zip(blocks.par_chunks(BLOCKS_PER_TASK)).for_each(|(out, blocks)| {
        let mut values = [0f32; BLOCK];
        for (out, block) in out.chunks_exact_mut(BLOCK).zip(blocks) {
            decode(block, &mut values);
            for (o, &v) in out.iter_mut().zip(&values) {
                *o = bf16::from_f32(v);
            }
        }
    });
    out
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// block_q4_0: d (f16), qs[16]; low nibbles are elements 0..16, high nibbles 16..32.
#[inline(always)]
pub(crate) fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..].iter().enumerate() {
        y[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// block_q4_1: d, m (f16), qs[16].
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..].iter().enumerate() {
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// The fifth bits of a Q5_0/Q5_1 block's 32 elements, from its `qh` word.
fn fifth_bits(qh: u32, j: usize) -> (u8, u8) {
    ((((qh >> j) << 4) & 0x10) as u8, ((qh >> (j + 12)) & 0x10) as u8)
}

/// block_q5_0: d (f16), qh[4] (bit j = fifth bit of element j), qs[16].
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (j, &q) in b[6..].iter().enumerate() {
        let (h0, h1) = fifth_bits(qh, j);
        y[j] = (((q & 0x0F) | h0) as i32 - 16) as f32 * d;
        y[j + 16] = (((q >> 4) | h1) as i32 - 16) as f32 * d;
    }
}

/// block_q5_1: d, m (f16), qh[4], qs[16].
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (j, &q) in b[8..].iter().enumerate() {
        let (h0, h1) = fifth_bits(qh, j);
        y[j] = ((q & 0x0F) | h0) as f32 * d + m;
        y[j + 16] = ((q >> 4) | h1) as f32 * d + m;
    }
}

/// block_q8_0: d (f16), qs[32] (i8).
#[inline(always)]
pub(crate) fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for (y, &q) in y.iter_mut().zip(&b[2..]) {
        *y = q as i8 as f32 * d;
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..8) from the 12 packed
/// bytes. Sub-blocks 0..4 use the low 6 bits of bytes j and j+4; 4..8 combine a nibble of byte
/// j+4 with the top 2 bits of bytes j-4 and j.
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// block_q4_K: d, dmin (f16), scales[12], qs[128]. Each 64 elements share 32 bytes of qs: low
/// nibbles are the first sub-block of 32, high nibbles the second.
#[inline(always)]
pub(crate) fn q4_k(b: &[u8; 144], y: &mut [f32; QK_K]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..]);
    for (chunk, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for (l, &q) in q.iter().enumerate() {
            y[l] = d1 * (q & 0x0F) as f32 - m1;
            y[l + 32] = d2 * (q >> 4) as f32 - m2;
        }
    }
}

/// block_q5_K: d, dmin (f16), scales[12], qh[32], qs[128]. As Q4_K, plus a fifth bit per element:
/// bit 2*chunk of qh[l] for the first sub-block of a 64-element chunk, bit 2*chunk+1 for the second.
#[inline(always)]
pub(crate) fn q5_k(b: &[u8; 176], y: &mut [f32; QK_K]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..]);
    for (chunk, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for (l, (&q, &h)) in q.iter().zip(qh).enumerate() {
            let h1 = if h & u1 != 0 { 16 } else { 0 };
            let h2 = if h & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((q & 0x0F) + h1) as f32 - m1;
            y[l + 32] = d2 * ((q >> 4) + h2) as f32 - m2;
        }
    }
}

/// block_q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8), d (f16). Each half of
/// 128 elements uses 64 bytes of ql and 32 of qh; element l + 32*k takes its low nibble from
/// ql[l] or ql[l+32] (low or high nibble) and its high bits from qh[l] >> 2k.
#[inline(always)]
pub(crate) fn q6_k(b: &[u8; 210], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 208);
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    for (half, y) in y.chunks_exact_mut(128).enumerate() {
        let (ql, qh, sc) = (&ql[64 * half..64 * half + 64], &qh[32 * half..32 * half + 32], &scales[8 * half..8 * half + 8]);
        for l in 0..32 {
            let is = l / 16;
            let q = [
                (ql[l] & 0x0F) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, q) in q.into_iter().enumerate() {
                y[l + 32 * k] = d * (sc[is + 2 * k] as i8) as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(values: &[bf16]) -> Vec<f32> {
        values.iter().map(|v| v.to_f32()).collect()
    }

    #[test]
    fn q8_0_is_scale_times_signed_byte() {
        // Eight blocks with d = 0.5 covering every i8 value in order.
        let bytes: Vec<u8> = (0..8)
            .flat_map(|b| {
                let qs = (0..32).map(move |i| (-128 + 32 * b + i) as i8 as u8);
                f16::from_f32(0.5).to_le_bytes().into_iter().chain(qs)
            })
            .collect();
        let got = f32s(&dequantize(GgmlType::Q8_0, &bytes).unwrap());
        let want: Vec<f32> = (-128..128).map(|q| q as f32 * 0.5).collect();
        assert_eq!(got, want);
    }

    use crate::quant::pack_scales;

    #[test]
    fn q4_k_applies_each_sub_block_scale_and_min() {
        let sc = [1, 2, 3, 4, 33, 34, 63, 17];
        let m = [0, 1, 2, 3, 40, 5, 63, 9];
        let (d, dmin) = (1.0f32, 0.5f32);
        let mut block = Vec::new();
        block.extend(f16::from_f32(d).to_le_bytes());
        block.extend(f16::from_f32(dmin).to_le_bytes());
        block.extend(pack_scales(sc, m));
        // Low nibble l % 16, high nibble 15 - l % 16, for every 32-byte group.
        block.extend((0..128).map(|l| ((l % 16) | ((15 - l % 16) << 4)) as u8));
        let got = dequantize(GgmlType::Q4K, &block).unwrap();
        for (i, v) in got.iter().enumerate() {
            let sub = i / 32;
            let l = i % 32;
            let q = if sub % 2 == 0 { l % 16 } else { 15 - l % 16 } as f32;
            let want = d * sc[sub] as f32 * q - dmin * m[sub] as f32;
            assert_eq!(*v, bf16::from_f32(want), "element {i}");
        }
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &pack_scales(sc, m)), (sc[j], m[j]));
        }
    }

    #[test]
    fn plain_types_convert_with_nearest_even_rounding() {
        let x = [1.0f32, -2.5, 1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0];
        let f32_bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        // The last two are halfway between bf16 values: ties go to the even mantissa.
        assert_eq!(f32s(&dequantize(GgmlType::F32, &f32_bytes).unwrap()), [1.0, -2.5, 1.0, 1.0 + 4.0 / 256.0]);
        let f16_bytes: Vec<u8> = x.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        assert_eq!(f32s(&dequantize(GgmlType::F16, &f16_bytes).unwrap()), [1.0, -2.5, 1.0, 1.0 + 4.0 / 256.0]);
        let bf16_bytes: Vec<u8> = x.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect();
        assert_eq!(f32s(&dequantize(GgmlType::BF16, &bf16_bytes).unwrap()), [1.0, -2.5, 1.0, 1.0 + 4.0 / 256.0]);
        assert!(dequantize(GgmlType::Q2K, &[0; 84]).is_none());
    }

    /// Random blocks dequantized by gguf-py (tests/fixtures/gguf/make_dequant_blocks.py).
    #[test]
    fn matches_gguf_py_bit_for_bit() {
        let text = include_str!("../../../tests/fixtures/gguf/dequant_blocks.json");
        let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
        let types = [
            ("Q4_0", GgmlType::Q4_0),
            ("Q4_1", GgmlType::Q4_1),
            ("Q5_0", GgmlType::Q5_0),
            ("Q5_1", GgmlType::Q5_1),
            ("Q8_0", GgmlType::Q8_0),
            ("Q4_K", GgmlType::Q4K),
            ("Q5_K", GgmlType::Q5K),
            ("Q6_K", GgmlType::Q6K),
        ];
        for (name, ggml_type) in types {
            let case = &fixture[name];
            let hex = case["blocks"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            let want: Vec<u16> = case["bf16_bits"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u16).collect();
            let got: Vec<u16> = dequantize(ggml_type, &bytes).unwrap().iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{name}");
            // The formats a plan keeps are exact: f32 bits as gguf-py computes them.
            if let Some(dtype) = crate::ir::DType::parse(&name.to_lowercase()) {
                let want: Vec<u32> = case["f32_bits"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
                let got: Vec<u32> = dequantize_f32(dtype, &bytes).iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{name} as f32");
            }
        }
    }
}
