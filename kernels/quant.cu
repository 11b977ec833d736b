// GGML block formats as a plan stores them (src/quant.rs): a matrix of B blocks (row-major, a
// row of K elements is K / BLOCK blocks) is the B block bodies (BODY bytes each, a multiple of
// 16) back to back, then, for Q8_0, Q4_0 and Q6_K, the B f16 scales `d`. The bytes are the GGUF
// file's, so the values are too. Each format gives the GEMV (gemv.cu):
//   load(w, blocks, b, u) -> Raw: the loads of unit u (0..UNITS-1) of block b,
//   xload(u, x) -> X: the elements of x that unit u multiplies (x: f32 in shared memory, the
//     block's first element at x), and
//   dot(raw, u, X): the unit dotted with them. Apart, so that the GEMV can have many units'
//     loads in flight (UNROLL per lane and row) before it computes, and read x once for all
//     the rows it streams at once (shared memory bandwidth, not HBM, bounds a GEMV that reads
//     x again for every 16 bytes of 4-bit weights). A unit is one lane's share of a block: its quants are one 16-byte
//     load (Q6_K: three), its scales come from loads the block's lanes share (L1).
//     Sums run in f32 over the integer quants and are scaled once per sub-block.
//   value(w, blocks, b, i): element i of block b, computed as ggml's dequantize_row_* computes it
//     (f32, same operations in the same order, no contraction): what the CPU executor reads.
// Q_DISPATCH(fmt, call) runs `call` with F the format a Q_FMT_* id names (the host passes it).
// Limits: rows of whole blocks (the plan is built so); body addresses 16-byte aligned.

#pragma once
#include "common.cuh"

#define Q_FMT_Q8_0 1
#define Q_FMT_Q4_0 2
#define Q_FMT_Q4_K 3
#define Q_FMT_Q5_K 4
#define Q_FMT_Q6_K 5

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float f16_at(const unsigned char* p) { return f16_to_f32(__ldg(reinterpret_cast<const unsigned short*>(p))); }

__device__ __forceinline__ uint4 ld16(const unsigned char* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// Word j (0..3) of a 16-byte load; j is a constant after unrolling or a select otherwise.
__device__ __forceinline__ unsigned word(const uint4& v, int j) { return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w; }

// Byte j (0..15) of a 16-byte load, unsigned.
__device__ __forceinline__ unsigned byte_of(const uint4& v, int j) { return (word(v, j >> 2) >> (8 * (j & 3))) & 0xff; }

// 16 consecutive f32 of x (shared memory) in registers.
struct X16 {
    float4 v[4];
};

__device__ __forceinline__ X16 x16(const float* x) {
    X16 r;
#pragma unroll
    for (int j = 0; j < 4; j++) r.v[j] = reinterpret_cast<const float4*>(x)[j];
    return r;
}

// Byte k of `w` (an unsigned quant) minus `bias`, as an f32, exactly: the byte is placed in the
// mantissa of 2^23 by a byte permute and 2^23 + bias subtracted. Two full-rate instructions,
// where an int-to-float conversion runs at a quarter rate (and bounded a 4-bit GEMV).
__device__ __forceinline__ float quant_f32(unsigned w, int k, float bias) {
    return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u | k)) - (8388608.f + bias);
}

// Sum over 16 elements of (q - bias) * x, the quants one per byte of q0..q3 (elements 4j..4j+3
// in qj), in four independent sums.
__device__ __forceinline__ float dot16(const X16& x, unsigned q0, unsigned q1, unsigned q2, unsigned q3, float bias) {
    const unsigned q[4] = {q0, q1, q2, q3};
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        a0 = fmaf(quant_f32(q[j], 0, bias), x.v[j].x, a0);
        a1 = fmaf(quant_f32(q[j], 1, bias), x.v[j].y, a1);
        a2 = fmaf(quant_f32(q[j], 2, bias), x.v[j].z, a2);
        a3 = fmaf(quant_f32(q[j], 3, bias), x.v[j].w, a3);
    }
    return (a0 + a1) + (a2 + a3);
}

// dot16 over a 16-byte load whose every word goes through `f` first.
template <class F>
__device__ __forceinline__ float dot16_map(const X16& x, const uint4& v, F f, float bias) {
    return dot16(x, f(v.x, 0), f(v.y, 1), f(v.z, 2), f(v.w, 3), bias);
}

__device__ __forceinline__ float sum16(const X16& x) {
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 4; j++) s += (x.v[j].x + x.v[j].y) + (x.v[j].z + x.v[j].w);
    return s;
}

// block_q8_0 without its d: qs[32] (i8). value = q * d.
struct FmtQ8_0 {
    static constexpr int BLOCK = 32, BODY = 32, UNITS = 1, UNROLL = 2;
    struct Raw {
        uint4 lo, hi;
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int) {
        return Raw{ld16(w + b * BODY), ld16(w + b * BODY + 16), f16_at(w + blocks * BODY + 2 * b)};
    }
    struct X {
        X16 lo, hi;
    };
    __device__ static X xload(int, const float* x) { return X{x16(x), x16(x + 16)}; }
    __device__ static float dot(const Raw& r, int, const X& x) {
        // An i8 q is the byte with its sign bit flipped, less 128.
        auto i8 = [](unsigned w, int) { return w ^ 0x80808080u; };
        return (dot16_map(x.lo, r.lo, i8, 128.f) + dot16_map(x.hi, r.hi, i8, 128.f)) * r.d;
    }
    __device__ static float value(const unsigned char* w, long long blocks, long long b, int i) {
        const int q = (signed char)__ldg(w + b * BODY + i);
        return __fmul_rn((float)q, f16_at(w + blocks * BODY + 2 * b));
    }
};

// block_q4_0 without its d: qs[16], low nibbles elements 0..15, high 16..31. value = (q - 8) * d.
struct FmtQ4_0 {
    static constexpr int BLOCK = 32, BODY = 16, UNITS = 1, UNROLL = 2;
    struct Raw {
        uint4 q;
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int) {
        return Raw{ld16(w + b * BODY), f16_at(w + blocks * BODY + 2 * b)};
    }
    struct X {
        X16 lo, hi;
    };
    __device__ static X xload(int, const float* x) { return X{x16(x), x16(x + 16)}; }
    __device__ static float dot(const Raw& r, int, const X& x) {
        const float lo = dot16_map(x.lo, r.q, [](unsigned w, int) { return w & 0x0F0F0F0Fu; }, 8.f);
        const float hi = dot16_map(x.hi, r.q, [](unsigned w, int) { return (w >> 4) & 0x0F0F0F0Fu; }, 8.f);
        return (lo + hi) * r.d;
    }
    __device__ static float value(const unsigned char* w, long long blocks, long long b, int i) {
        const int byte = __ldg(w + b * BODY + (i & 15));
        const int q = (i < 16 ? byte & 15 : byte >> 4) - 8;
        return __fmul_rn((float)q, f16_at(w + blocks * BODY + 2 * b));
    }
};

// ggml's get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 packed bytes, which
// are bytes 4..15 of the block's first 16 (hd).
__device__ __forceinline__ void scale_min_k4(const uint4& hd, int j, int& sc, int& m) {
    auto s = [&](int i) { return byte_of(hd, 4 + i); };
    if (j < 4) {
        sc = s(j) & 63;
        m = s(j + 4) & 63;
    } else {
        sc = (s(j + 4) & 0x0F) | ((s(j - 4) >> 6) << 4);
        m = (s(j + 4) >> 4) | ((s(j) >> 6) << 4);
    }
}

// block_q4_K / block_q5_K: d, dmin (f16), scales[12], (Q5_K: qh[32]), qs[128]. Each 64 elements
// share 32 bytes of qs: low nibbles the first sub-block of 32, high nibbles the second; Q5_K's
// fifth bit of element l of chunk g's sub-blocks is bit 2g (2g + 1) of qh[l].
// value = d*sc * q - dmin*m. Unit u is qs bytes 16u..16u+15: chunk g = u/2, elements
// 64g + l0 + j (low nibbles) and 64g + 32 + l0 + j (high), l0 = 16 (u % 2).
template <bool FIFTH>
struct FmtK {
    static constexpr int BLOCK = 256, BODY = FIFTH ? 176 : 144, UNITS = 8, QS = FIFTH ? 48 : 16, UNROLL = FIFTH ? 1 : 2;
    struct Raw {
        uint4 hd, q, qh;
    };
    __device__ static Raw load(const unsigned char* w, long long, long long b, int u) {
        const unsigned char* blk = w + b * BODY;
        return Raw{ld16(blk), ld16(blk + QS + 16 * u), FIFTH ? ld16(blk + 16 + 16 * (u & 1)) : make_uint4(0, 0, 0, 0)};
    }
    struct X {
        X16 lo, hi;
        float sum_lo, sum_hi;
    };
    __device__ static X xload(int u, const float* x) {
        const float* xa = x + 64 * (u >> 1) + 16 * (u & 1);
        X r{x16(xa), x16(xa + 32), 0.f, 0.f};
        r.sum_lo = sum16(r.lo);
        r.sum_hi = sum16(r.hi);
        return r;
    }
    __device__ static float dot(const Raw& r, int u, const X& x) {
        const int g = u >> 1;
        // Q5_K: the fifth bits of the 4 elements of word j are bit 2g (2g + 1) of the 4 bytes of qh's word j.
        auto fifth = [&](int j, int bit) { return FIFTH ? ((word(r.qh, j) >> bit) & 0x01010101u) << 4 : 0u; };
        const float lo = dot16_map(x.lo, r.q, [&](unsigned w, int j) { return (w & 0x0F0F0F0Fu) | fifth(j, 2 * g); }, 0.f);
        const float hi = dot16_map(x.hi, r.q, [&](unsigned w, int j) { return ((w >> 4) & 0x0F0F0F0Fu) | fifth(j, 2 * g + 1); }, 0.f);
        int sc1, m1, sc2, m2;
        scale_min_k4(r.hd, 2 * g, sc1, m1);
        scale_min_k4(r.hd, 2 * g + 1, sc2, m2);
        const float d = f16_to_f32(r.hd.x & 0xffff), dmin = f16_to_f32(r.hd.x >> 16);
        return d * ((float)sc1 * lo + (float)sc2 * hi) - dmin * ((float)m1 * x.sum_lo + (float)m2 * x.sum_hi);
    }
    __device__ static float value(const unsigned char* w, long long, long long b, int i) {
        const unsigned char* blk = w + b * BODY;
        const uint4 hd = ld16(blk);
        const int g = i >> 6, second = (i >> 5) & 1, l = i & 31;
        int sc, m;
        scale_min_k4(hd, 2 * g + second, sc, m);
        const int byte = __ldg(blk + QS + 32 * g + l);
        int q = second ? byte >> 4 : byte & 15;
        if (FIFTH) q += ((__ldg(blk + 16 + l) >> (2 * g + second)) & 1) << 4;
        const float d = f16_to_f32(hd.x & 0xffff), dmin = f16_to_f32(hd.x >> 16);
        return __fsub_rn(__fmul_rn(__fmul_rn(d, (float)sc), (float)q), __fmul_rn(dmin, (float)m));
    }
};
typedef FmtK<false> FmtQ4_K;
typedef FmtK<true> FmtQ5_K;

// block_q6_K without its d: ql[128], qh[64], scales[16] (i8). Half h (128 elements) uses ql
// bytes 64h.., qh bytes 32h..; element 128h + 32k + l (l < 32) is (low nibble of ql[64h + l]
// for k = 0, of ql[64h + 32 + l] for 1, their high nibbles for 2, 3) | (bits 2k of qh[32h + l])
// << 4, minus 32, times d * scales[8h + l/16 + 2k]. Unit u: h = u/2, l = 16 (u % 2) + j.
struct FmtQ6_K {
    static constexpr int BLOCK = 256, BODY = 208, UNITS = 4, UNROLL = 1;
    struct Raw {
        uint4 qa, qb, qh, scales;
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int u) {
        const unsigned char* blk = w + b * BODY;
        const int h = u >> 1, m = u & 1;
        return Raw{ld16(blk + 64 * h + 16 * m), ld16(blk + 64 * h + 32 + 16 * m), ld16(blk + 128 + 32 * h + 16 * m), ld16(blk + 192),
                   f16_at(w + blocks * BODY + 2 * b)};
    }
    struct X {
        X16 k[4];
    };
    __device__ static X xload(int u, const float* x) {
        const float* xh = x + 128 * (u >> 1) + 16 * (u & 1);
        return X{{x16(xh), x16(xh + 32), x16(xh + 64), x16(xh + 96)}};
    }
    __device__ static float dot(const Raw& r, int u, const X& x) {
        const int h = u >> 1, m = u & 1;
        // The 6-bit quants of part k: a nibble of ql (low for k < 2) | 2 bits of qh at 2k, per byte.
        auto six = [&](const uint4& ql, int k) {
            return [&ql, &r, k](unsigned, int j) { return ((k < 2 ? word(ql, j) : word(ql, j) >> 4) & 0x0F0F0F0Fu) | (((word(r.qh, j) >> (2 * k)) & 0x03030303u) << 4); };
        };
        const float s0 = dot16_map(x.k[0], r.qa, six(r.qa, 0), 32.f);
        const float s1 = dot16_map(x.k[1], r.qb, six(r.qb, 1), 32.f);
        const float s2 = dot16_map(x.k[2], r.qa, six(r.qa, 2), 32.f);
        const float s3 = dot16_map(x.k[3], r.qb, six(r.qb, 3), 32.f);
        auto sc = [&](int k) { return (float)(signed char)byte_of(r.scales, 8 * h + m + 2 * k); };
        return r.d * (sc(0) * s0 + sc(1) * s1 + sc(2) * s2 + sc(3) * s3);
    }
    __device__ static float value(const unsigned char* w, long long blocks, long long b, int i) {
        const unsigned char* blk = w + b * BODY;
        const int h = i >> 7, k = (i >> 5) & 3, l = i & 31;
        const int ql = __ldg(blk + 64 * h + 32 * (k & 1) + l);
        const int q = ((k < 2 ? ql & 15 : ql >> 4) | (((__ldg(blk + 128 + 32 * h + l) >> (2 * k)) & 3) << 4)) - 32;
        const int sc = (signed char)__ldg(blk + 192 + 8 * h + (l >> 4) + 2 * k);
        return __fmul_rn(__fmul_rn(f16_at(w + blocks * BODY + 2 * b), (float)sc), (float)q);
    }
};

#define Q_DISPATCH(fmt, ...)                 \
    switch (fmt) {                           \
    case Q_FMT_Q8_0: {                       \
        typedef FmtQ8_0 F;                   \
        __VA_ARGS__;                         \
    } break;                                 \
    case Q_FMT_Q4_0: {                       \
        typedef FmtQ4_0 F;                   \
        __VA_ARGS__;                         \
    } break;                                 \
    case Q_FMT_Q4_K: {                       \
        typedef FmtQ4_K F;                   \
        __VA_ARGS__;                         \
    } break;                                 \
    case Q_FMT_Q5_K: {                       \
        typedef FmtQ5_K F;                   \
        __VA_ARGS__;                         \
    } break;                                 \
    case Q_FMT_Q6_K: {                       \
        typedef FmtQ6_K F;                   \
        __VA_ARGS__;                         \
    } break;                                 \
    default: break;                          \
    }
