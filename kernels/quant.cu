// GGML block formats as a plan stores them (src/quant.rs): a matrix of B blocks (row-major, a
// row of K elements is K / BLOCK blocks) is the B block bodies (BODY bytes each, a multiple of
// 16) back to back, then, for Q8_0, Q4_0 and Q6_K, the B f16 scales `d`. The bytes are the GGUF
// file's, so the values are too.
// Every format is read in units of 32 elements (UNITS = BLOCK / 32 a block): two runs of 16
// consecutive elements, each run's quants one 16-byte word of unsigned bytes Q (an i8 is
// offset by 128), and each element w = a * Q + b with a and b the run's coefficients. Each
// format gives
//   load(w, blocks, b, u) -> Raw: the loads of unit u of block b (its quants' 16-byte loads, two
//     for Q8_0 and Q6_K; the scales from loads the block's units share, L1),
//   run_start(u, r): the block element of run r's first,
//   quants(raw, u, r): run r's 16 Q, element j in byte j,
//   coefs(raw, u, a, b): the runs' a and b.
// The dequantized element is __fadd_rn(__fmul_rn(a, Q), b), which is bit for bit what ggml's
// dequantize_row_* computes (a * Q fits f32's 24-bit significand in every format, at most
// Q6_K's 18 + 6 bits, so the one rounding is ggml's): `unit_values`, as the CPU executor reads.
// The GEMVs (gemv.cu) take a dot product per run instead: sum_j w_j x_j = a * sum Q_j x_j +
// b * sum x_j, the sums of x per run computed where x is staged (`QRunX`), and Q_j times x_j in one
// FFMA: Q is placed as a byte at bits 16..23 of an f32, which is then the exact value
// Q * 2^-133 (subnormal, or the smallest normals for Q >= 128, which continue the same scale),
// and x is staged multiplied by Q_X_SCALE = 2^69, so the products sum Q x * 2^-64. One byte
// permute and one FFMA an element, where converting Q to f32 first takes one more. FFMA keeps
// subnormal operands (no flush-to-zero is compiled), and 2^69 leaves x up to 2^59 in range.
// Q_DISPATCH(fmt, call) runs `call` with F the format a Q_FMT_* id names (the host passes it).
// Limits: rows of whole blocks (the plan is built so); body addresses 16-byte aligned.

#pragma once
#include "common.cuh"

#define Q_FMT_Q8_0 1
#define Q_FMT_Q4_0 2
#define Q_FMT_Q4_K 3
#define Q_FMT_Q5_K 4
#define Q_FMT_Q6_K 5
#define Q_RUN 16                // elements of a run
#define Q_UNIT (2 * Q_RUN)      // elements of a unit
#define Q_X_SCALE 0x1p69f       // x as the GEMVs stage it
#define Q_PRODUCT_SCALE 0x1p64f  // 2^133 / Q_X_SCALE: turns the byte products' sum into sum Q x

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float f16_at(const unsigned char* p) { return f16_to_f32(__ldg(reinterpret_cast<const unsigned short*>(p))); }

__device__ __forceinline__ uint4 ld16(const unsigned char* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// A byte 0..255 as an f32, exactly: placed in the mantissa of 2^23, less 2^23.
__device__ __forceinline__ float byte_f32(unsigned w, int k) { return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u | k)) - 8388608.f; }

// Byte k of w as the f32 Q * 2^-133 (see the header).
__device__ __forceinline__ float byte_scaled(unsigned w, int k) { return __uint_as_float(__byte_perm(w, 0u, 0x4044u | (k << 8))); }

// Applies `f` to each word of a 16-byte load (its index j passed too).
template <class Fn>
__device__ __forceinline__ uint4 map4(const uint4& v, Fn f) {
    return make_uint4(f(v.x, 0), f(v.y, 1), f(v.z, 2), f(v.w, 3));
}

// block_q8_0 without its d: qs[32] (i8). Q = q + 128; w = d * q.
struct FmtQ8_0 {
    static constexpr int BLOCK = 32, BODY = 32, UNITS = 1;
    struct Raw {
        uint4 lo, hi;
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int) {
        return Raw{ld16(w + b * BODY), ld16(w + b * BODY + 16), f16_at(w + blocks * BODY + 2 * b)};
    }
    __device__ static int run_start(int, int r) { return Q_RUN * r; }
    __device__ static uint4 quants(const Raw& raw, int, int r) {
        return map4(r ? raw.hi : raw.lo, [](unsigned v, int) { return v ^ 0x80808080u; });
    }
    __device__ static void coefs(const Raw& raw, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = raw.d;
        b[0] = b[1] = -128.f * raw.d;
    }
};

// block_q4_0 without its d: qs[16], low nibbles elements 0..15, high 16..31. w = (Q - 8) * d.
struct FmtQ4_0 {
    static constexpr int BLOCK = 32, BODY = 16, UNITS = 1;
    struct Raw {
        uint4 q;
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int) {
        return Raw{ld16(w + b * BODY), f16_at(w + blocks * BODY + 2 * b)};
    }
    __device__ static int run_start(int, int r) { return Q_RUN * r; }
    __device__ static uint4 quants(const Raw& raw, int, int r) {
        return map4(raw.q, [r](unsigned v, int) { return (r ? v >> 4 : v) & 0x0F0F0F0Fu; });
    }
    __device__ static void coefs(const Raw& raw, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = raw.d;
        b[0] = b[1] = -8.f * raw.d;
    }
};

// block_q4_K / block_q5_K: d, dmin (f16), scales[12], (Q5_K: qh[32]), qs[128]. Each 64 elements
// share 32 bytes of qs: low nibbles the first sub-block of 32, high nibbles the second; Q5_K's
// fifth bit of element l of chunk g's sub-blocks is bit 2g (2g + 1) of qh[l]. Sub-block j has a
// 6-bit scale sc and min m (ggml's get_scale_min_k4): w = (d * sc) * Q - dmin * m.
// Unit u is qs bytes 16u..16u+15: chunk g = u/2, run 0 its low nibbles (elements 64g + l0 + j,
// l0 = 16 (u % 2), sub-block 2g), run 1 its high nibbles (elements 64g + 32 + l0 + j, 2g + 1).
template <bool FIFTH>
struct FmtK {
    static constexpr int BLOCK = 256, BODY = FIFTH ? 176 : 144, UNITS = 8, QS = FIFTH ? 48 : 16;
    struct Raw {
        uint4 hd, q, qh;  // the first 16 bytes (d, dmin, scales), the unit's qs, (Q5_K) its qh
    };
    __device__ static Raw load(const unsigned char* w, long long, long long b, int u) {
        const unsigned char* blk = w + b * BODY;
        return Raw{ld16(blk), ld16(blk + QS + 16 * u), FIFTH ? ld16(blk + 16 + 16 * (u & 1)) : make_uint4(0, 0, 0, 0)};
    }
    __device__ static int run_start(int u, int r) { return 64 * (u >> 1) + 32 * r + 16 * (u & 1); }
    __device__ static uint4 quants(const Raw& raw, int u, int r) {
        const int bit = 2 * (u >> 1) + r;
        const uint4 qh = raw.qh;
        return map4(raw.q, [&](unsigned v, int j) {
            const unsigned h = j == 0 ? qh.x : j == 1 ? qh.y : j == 2 ? qh.z : qh.w;
            return ((r ? v >> 4 : v) & 0x0F0F0F0Fu) | (FIFTH ? ((h >> bit) & 0x01010101u) << 4 : 0u);
        });
    }
    // The sub-blocks 2g, 2g + 1 (g = u/2) scales and mins as bytes [sc0, m0, sc1, m1], from the
    // 12 packed bytes s = hd bytes 4..15: for j < 4, sc = s[j] & 63, m = s[j + 4] & 63; for
    // j >= 4, sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, m = (s[j + 4] >> 4) | (s[j] >> 6) << 4.
    // The same permute of s[0..7] gives the low case's bytes and the high case's top bits.
    __device__ static unsigned scale_mins(const uint4& hd, int u) {
        const int g = u >> 1, i = 2 * (g & 1);
        const unsigned pair = __byte_perm(hd.y, hd.z, i | (i + 4) << 4 | (i + 1) << 8 | (i + 5) << 12);
        if (g < 2) return pair & 0x3F3F3F3Fu;
        const unsigned low = __byte_perm(hd.w, 0, i | i << 4 | (i + 1) << 8 | (i + 1) << 12);
        return (low & 0x000F000Fu) | ((low >> 4) & 0x0F000F00u) | ((pair >> 2) & 0x30303030u);
    }
    __device__ static void coefs(const Raw& raw, int u, float (&a)[2], float (&b)[2]) {
        const unsigned sm = scale_mins(raw.hd, u);
        const float d = f16_to_f32(raw.hd.x & 0xffff), dmin = f16_to_f32(raw.hd.x >> 16);
#pragma unroll
        for (int r = 0; r < 2; r++) {
            a[r] = d * byte_f32(sm, 2 * r);
            b[r] = -(dmin * byte_f32(sm, 2 * r + 1));
        }
    }
};
typedef FmtK<false> FmtQ4_K;
typedef FmtK<true> FmtQ5_K;

// block_q6_K without its d: ql[128], qh[64], scales[16] (i8). Half h (128 elements) uses ql
// bytes 64h.., qh bytes 32h..; element 128h + 32k + l (l < 32) is Q = (low nibble of
// ql[64h + l] for k = 0, of ql[64h + 32 + l] for 1, their high nibbles for 2, 3) | (bits 2k of
// qh[32h + l]) << 4, and w = (d * scales[8h + l/16 + 2k]) * (Q - 32).
// Unit u: h = u/4, l = 16 ((u/2) % 2) + j, p = u % 2: run 0 is k = p (low nibbles of its 16 ql
// bytes), run 1 k = p + 2 (high nibbles); the unit pair p = 0, 1 shares its 16 qh bytes.
struct FmtQ6_K {
    static constexpr int BLOCK = 256, BODY = 208, UNITS = 8;
    struct Raw {
        uint4 ql, qh;
        uint2 scales;  // scales[8h..8h+7]
        float d;
    };
    __device__ static Raw load(const unsigned char* w, long long blocks, long long b, int u) {
        const unsigned char* blk = w + b * BODY;
        const int h = u >> 2, m = (u >> 1) & 1, p = u & 1;
        return Raw{ld16(blk + 64 * h + 32 * p + 16 * m), ld16(blk + 128 + 32 * h + 16 * m),
                   __ldg(reinterpret_cast<const uint2*>(blk + 192 + 8 * h)), f16_at(w + blocks * BODY + 2 * b)};
    }
    __device__ static int run_start(int u, int r) { return 128 * (u >> 2) + 32 * ((u & 1) + 2 * r) + 16 * ((u >> 1) & 1); }
    __device__ static uint4 quants(const Raw& raw, int u, int r) {
        const int shift = 2 * ((u & 1) + 2 * r);
        const uint4 qh = raw.qh;
        return map4(raw.ql, [&](unsigned v, int j) {
            const unsigned h = j == 0 ? qh.x : j == 1 ? qh.y : j == 2 ? qh.z : qh.w;
            return ((r ? v >> 4 : v) & 0x0F0F0F0Fu) | (((h >> shift) & 0x03030303u) << 4);
        });
    }
    __device__ static void coefs(const Raw& raw, int u, float (&a)[2], float (&b)[2]) {
        const int k = ((u >> 1) & 1) + 2 * (u & 1);  // scales byte of run 0; run 1's is 4 further
#pragma unroll
        for (int r = 0; r < 2; r++) {
            a[r] = raw.d * (byte_f32((r ? raw.scales.y : raw.scales.x) ^ 0x80808080u, k) - 128.f);
            b[r] = -32.f * a[r];
        }
    }
};

// Unit u of block b: raw loads it, run r's 16 elements into v, exactly (see the header).
template <class F>
__device__ __forceinline__ void unit_values(const typename F::Raw& raw, int u, int r, float (&v)[Q_RUN]) {
    float a[2], b[2];
    F::coefs(raw, u, a, b);
    const uint4 q = F::quants(raw, u, r);
    const unsigned words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int j = 0; j < Q_RUN; j++) v[j] = __fadd_rn(__fmul_rn(a[r], byte_f32(words[j / 4], j % 4)), b[r]);
}

// A run's x as the GEMVs read it from shared memory: its 16 elements times Q_X_SCALE, and
// their sum (unscaled).
struct QRunX {
    float4 x[4];
    float sum;
};

// Run r of unit u's x: xs the block's first element (scaled), sums the block's first run sum.
template <class F>
__device__ __forceinline__ QRunX run_x(int u, int r, const float* xs, const float* sums) {
    const int start = F::run_start(u, r);
    QRunX v;
#pragma unroll
    for (int j = 0; j < 4; j++) v.x[j] = reinterpret_cast<const float4*>(xs + start)[j];
    v.sum = sums[start / Q_RUN];
    return v;
}

// sum over the 16 elements of Q_j * x_j * 2^-64 (x scaled), in four independent sums.
__device__ __forceinline__ float dot_bytes(const float4 (&x)[4], const uint4& q) {
    const unsigned words[4] = {q.x, q.y, q.z, q.w};
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        s0 = fmaf(byte_scaled(words[j], 0), x[j].x, s0);
        s1 = fmaf(byte_scaled(words[j], 1), x[j].y, s1);
        s2 = fmaf(byte_scaled(words[j], 2), x[j].z, s2);
        s3 = fmaf(byte_scaled(words[j], 3), x[j].w, s3);
    }
    return (s0 + s1) + (s2 + s3);
}

// Run r of the unit dotted with x: a * sum Q x + b * sum x.
template <class F>
__device__ __forceinline__ float run_dot(const typename F::Raw& raw, int u, int r, const QRunX& x) {
    float a[2], b[2];
    F::coefs(raw, u, a, b);
    return fmaf(a[r], dot_bytes(x.x, F::quants(raw, u, r)) * Q_PRODUCT_SCALE, b[r] * x.sum);
}

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
