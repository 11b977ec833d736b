//! `x . W[r]` for every block format, written with AVX2 intrinsics: the quants widened to f32
//! eight at a time and each block's weights made where they are multiplied, from the plan's
//! bytes. The compiler's vectorization of the portable loop (decode a block into a buffer, then a
//! 16-lane dot), even compiled for AVX2, leaves much of the weights' byte shuffling scalar.
//!
//! Same bits as the portable loop (`super::dot_row_lanes`, which `tests` compares on every
//! format): every weight is the same f32 expression (`d1 * q - m1` for Q4_K and Q5_K, `(d * sc) *
//! q` for Q6_K, `q * d` for Q8_0 and Q4_0; multiplications and subtractions apart, never fused),
//! and lane `i` of
//! the two 8-wide accumulators adds the products of elements `i mod 16` in element order, as the
//! portable loop's 16 lanes do, summed the same way at the end.

use super::{layout, Matrix};
use crate::avx2::{prefetch, PREFETCH_AHEAD};
use crate::ir::DType;
use crate::load::gguf::dequant::scale_min_k4;
use half::f16;
use std::arch::x86_64::*;

/// `x . W[r]` for a matrix of a block format.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dot_row(m: &Matrix<'_>, r: usize, x: &[f32]) -> f32 {
    assert_eq!(x.len(), m.k);
    let mut acc = [_mm256_setzero_ps(); 2];
    row_weights(m, r, |at, w| {
        // SAFETY: `at + 16 <= k` (row_weights), and x holds k floats.
        let x = unsafe { x.as_ptr().add(at) };
        // SAFETY: x holds 16 floats from there.
        let x = unsafe { [_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8))] };
        acc[0] = _mm256_add_ps(acc[0], _mm256_mul_ps(x[0], w[0]));
        acc[1] = _mm256_add_ps(acc[1], _mm256_mul_ps(x[1], w[1]));
    });
    let mut lanes = [0f32; 16];
    // SAFETY: lanes holds 16 floats.
    unsafe {
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[1]);
    }
    lanes.iter().sum()
}

/// Row `r` of `m` as f32 values into `out` (`k` of them), the same values as `Matrix::decode`'s.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn row_into(m: &Matrix<'_>, r: usize, out: &mut [f32]) {
    assert_eq!(out.len(), m.k);
    row_weights(m, r, |at, w| {
        // SAFETY: `at + 16 <= k` (row_weights), and out holds k floats.
        unsafe {
            let out = out.as_mut_ptr().add(at);
            _mm256_storeu_ps(out, w[0]);
            _mm256_storeu_ps(out.add(8), w[1]);
        }
    });
}

/// Calls `emit(at, w)` for the weights `at..at + 16` of row `r` (every 16 of them once, in order),
/// `w` holding 0..8 and 8..16.
#[target_feature(enable = "avx2")]
fn row_weights(m: &Matrix<'_>, r: usize, mut emit: impl FnMut(usize, [__m256; 2])) {
    let (per_block, _) = m.dtype.block();
    let per_row = m.k / per_block;
    let body = layout(m.dtype).body;
    let scales = &m.bytes[m.rows * per_row * body..];
    for j in 0..per_row {
        let b = r * per_row + j;
        let block = &m.bytes[b * body..(b + 1) * body];
        let ahead = m.bytes.as_ptr().wrapping_add(b * body + PREFETCH_AHEAD);
        for line in (0..body).step_by(64) {
            prefetch(ahead.wrapping_add(line));
        }
        let scale = || f16::from_le_bytes([scales[2 * b], scales[2 * b + 1]]).to_f32();
        let mut emit = |at: usize, w| emit(per_block * j + at, w);
        match m.dtype {
            DType::Q4K => q4_k(block, &mut emit),
            DType::Q5K => q5_k(block, &mut emit),
            DType::Q6K => q6_k(block, scale(), &mut emit),
            DType::Q8_0 => q8_0(block, scale(), &mut emit),
            DType::Q4_0 => q4_0(block, scale(), &mut emit),
            plain => unreachable!("{plain} is not a block format"),
        }
    }
}

/// 16 unsigned bytes as f32, in two halves of eight.
#[target_feature(enable = "avx2")]
fn u8_to_f32(v: __m128i) -> [__m256; 2] {
    [_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v)))]
}

/// 16 signed bytes as f32, in two halves of eight.
#[target_feature(enable = "avx2")]
fn i8_to_f32(v: __m128i) -> [__m256; 2] {
    [_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(v)))]
}

/// 16 bytes at `p` (unaligned).
#[target_feature(enable = "avx2")]
fn bytes16(p: &[u8]) -> __m128i {
    assert!(p.len() >= 16);
    // SAFETY: p holds at least 16 bytes.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

/// block_q4_K (d, dmin, 12 scale bytes, 128 bytes of nibbles): each 64 elements share 32 bytes,
/// low nibbles the first sub-block of 32 (`d1 * q - m1`), high nibbles the second.
#[target_feature(enable = "avx2")]
fn q4_k(b: &[u8], emit: &mut impl FnMut(usize, [__m256; 2])) {
    let (d, dmin) = (f16::from_le_bytes([b[0], b[1]]).to_f32(), f16::from_le_bytes([b[2], b[3]]).to_f32());
    let (scales, qs) = (&b[4..16], &b[16..144]);
    let low = _mm_set1_epi8(0x0F);
    for chunk in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let subs = [(d * sc1 as f32, dmin * m1 as f32), (d * sc2 as f32, dmin * m2 as f32)];
        let q = [bytes16(&qs[32 * chunk..]), bytes16(&qs[32 * chunk + 16..])];
        for (sub, &(scale, min)) in subs.iter().enumerate() {
            let (scale, min) = (_mm256_set1_ps(scale), _mm256_set1_ps(min));
            for (half, &q) in q.iter().enumerate() {
                let nibbles = if sub == 0 { _mm_and_si128(q, low) } else { _mm_and_si128(_mm_srli_epi16::<4>(q), low) };
                let w = u8_to_f32(nibbles).map(|q| _mm256_sub_ps(_mm256_mul_ps(scale, q), min));
                emit(64 * chunk + 32 * sub + 16 * half, w);
            }
        }
    }
}

/// block_q5_K (d, dmin, 12 scale bytes, 32 bytes of fifth bits, 128 of nibbles): as Q4_K, with
/// 16 added where bit 2 chunk (low nibbles) or 2 chunk + 1 (high) of qh[l] is set. (One function
/// for both, the fifth bits optional, halved Q4_K's and Q5_K's rates on the CI machine: a
/// `target_feature` function cannot be `inline(always)`, and LLVM kept it out of line.)
#[target_feature(enable = "avx2")]
fn q5_k(b: &[u8], emit: &mut impl FnMut(usize, [__m256; 2])) {
    let (d, dmin) = (f16::from_le_bytes([b[0], b[1]]).to_f32(), f16::from_le_bytes([b[2], b[3]]).to_f32());
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    let (low, sixteen) = (_mm_set1_epi8(0x0F), _mm_set1_epi8(16));
    let qh = [bytes16(qh), bytes16(&qh[16..])];
    for chunk in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let subs = [(d * sc1 as f32, dmin * m1 as f32), (d * sc2 as f32, dmin * m2 as f32)];
        let q = [bytes16(&qs[32 * chunk..]), bytes16(&qs[32 * chunk + 16..])];
        for (sub, &(scale, min)) in subs.iter().enumerate() {
            let (scale, min) = (_mm256_set1_ps(scale), _mm256_set1_ps(min));
            let bit = _mm_set1_epi8((1u8 << (2 * chunk + sub)) as i8);
            for half in 0..2 {
                let nibbles = if sub == 0 { _mm_and_si128(q[half], low) } else { _mm_and_si128(_mm_srli_epi16::<4>(q[half]), low) };
                let fifth = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(qh[half], bit), bit), sixteen);
                let w = u8_to_f32(_mm_or_si128(nibbles, fifth)).map(|q| _mm256_sub_ps(_mm256_mul_ps(scale, q), min));
                emit(64 * chunk + 32 * sub + 16 * half, w);
            }
        }
    }
}

/// block_q6_K as the plan stores it (128 bytes of low nibbles, 64 of high bit pairs, 16 i8
/// scales; `d` apart): element l + 32 k of each half of 128 takes its low nibble from ql[l]
/// (k even) or ql[l + 32] (k odd), low or high by k / 2, and bits 2k..2k+2 of qh[l] above it,
/// less 32, times d * scales[l / 16 + 2 k].
#[target_feature(enable = "avx2")]
fn q6_k(b: &[u8], d: f32, emit: &mut impl FnMut(usize, [__m256; 2])) {
    let (low, high) = (_mm_set1_epi8(0x0F), _mm_set1_epi8(0x30));
    let offset = _mm256_set1_ps(32.0);
    for half in 0..2 {
        let (ql, qh, scales) = (&b[64 * half..64 * half + 64], &b[128 + 32 * half..128 + 32 * half + 32], &b[192 + 8 * half..192 + 8 * half + 8]);
        for k in 0..4 {
            for c in 0..2 {
                let ql = bytes16(&ql[32 * (k % 2) + 16 * c..]);
                let nibble = if k < 2 { _mm_and_si128(ql, low) } else { _mm_and_si128(_mm_srli_epi16::<4>(ql), low) };
                let qh = bytes16(&qh[16 * c..]);
                // Bits 2k..2k+2 of qh moved to 4..6.
                let pair = match k {
                    0 => _mm_slli_epi16::<4>(qh),
                    1 => _mm_slli_epi16::<2>(qh),
                    2 => qh,
                    _ => _mm_srli_epi16::<2>(qh),
                };
                let q = _mm_or_si128(nibble, _mm_and_si128(pair, high));
                // (q - 32) as f32 is q as f32 - 32 exactly (|q| < 2^24).
                let scale = _mm256_set1_ps(d * (scales[c + 2 * k] as i8) as f32);
                let w = u8_to_f32(q).map(|q| _mm256_mul_ps(scale, _mm256_sub_ps(q, offset)));
                emit(128 * half + 32 * k + 16 * c, w);
            }
        }
    }
}

/// block_q8_0 as the plan stores it (32 i8 quants; `d` apart): `q * d`.
#[target_feature(enable = "avx2")]
fn q8_0(b: &[u8], d: f32, emit: &mut impl FnMut(usize, [__m256; 2])) {
    let d = _mm256_set1_ps(d);
    for half in 0..2 {
        let w = i8_to_f32(bytes16(&b[16 * half..])).map(|q| _mm256_mul_ps(q, d));
        emit(16 * half, w);
    }
}

/// block_q4_0 as the plan stores it (16 bytes of nibbles; `d` apart): elements 0..16 the low
/// nibbles, 16..32 the high ones, `(q - 8) * d`.
#[target_feature(enable = "avx2")]
fn q4_0(b: &[u8], d: f32, emit: &mut impl FnMut(usize, [__m256; 2])) {
    let (d, eight) = (_mm256_set1_ps(d), _mm256_set1_ps(8.0));
    let (q, low) = (bytes16(b), _mm_set1_epi8(0x0F));
    for (half, nibbles) in [_mm_and_si128(q, low), _mm_and_si128(_mm_srli_epi16::<4>(q), low)].into_iter().enumerate() {
        // (q - 8) as f32 is q as f32 - 8 exactly.
        let w = u8_to_f32(nibbles).map(|q| _mm256_mul_ps(_mm256_sub_ps(q, eight), d));
        emit(16 * half, w);
    }
}
