// GGML block formats as a plan stores them (src/quant.rs): a matrix of B blocks (row-major, a
// row of K elements is K / BLOCK blocks) is the B block bodies (BODY bytes each, a multiple of
// 16) back to back, then, for Q8_0, Q4_0 and Q6_K, the B f16 scales `d`. The bytes are the GGUF
// file's, so the values are too.
// Dequantization (prefill, embeddings) reads every format in units of 32 elements (UNITS =
// BLOCK / 32 a block): two runs of 16 consecutive elements, each run's quants one 16-byte word
// of unsigned bytes Q (an i8 is offset by 128), and each element w = a * Q + b with a and b the
// run's coefficients. Each format gives
//   load(w, blocks, b, u) -> Raw: the loads of unit u of block b (its quants' 16-byte loads, two
//     for Q8_0 and Q6_K; the scales from loads the block's units share, L1),
//   run_start(u, r): the block element of run r's first; run_unit(e, u, r) its inverse (the
//     unit and run whose first element is e, a multiple of 16),
//   quants(raw, u, r): run r's 16 Q, element j in byte j,
//   coefs(raw, u, a, b): the runs' a and b.
// The dequantized element is __fadd_rn(__fmul_rn(a, Q), b), which is bit for bit what ggml's
// dequantize_row_* computes (a * Q fits f32's 24-bit significand in every format, at most
// Q6_K's 18 + 6 bits, so the one rounding is ggml's): `unit_values`, as the CPU executor reads.
// The GEMVs (gemv.cu) multiply on tensor cores (mma m16n8k16, f16 operands, f32 sums), 16 rows
// a warp, in chunks of CHUNK elements of each row (a Q8_0/Q4_0 block, a quarter of a K-quant's):
// RUNS = CHUNK / 16 runs a chunk, a run 16 elements that share their coefficients (one mma's K).
// Lane (g, t) = (lane / 4, lane % 4) holds four elements (slots) of each run of rows g and g + 8.
// A warp multiplies the same chunk c of every block of its rows (gemv.cu), so each format gives
//   lane(w, blocks, first, c, t) -> Lane: lane t's pointers to chunk c of the first block of
//     the row whose first block is `first` (once a tile),
//   load(lane, b) -> Slice: its loads of that chunk of the row's block b (a pointer plus b
//     times a constant each: one IMAD.WIDE an address),
//   frag(slice, c, a, alpha, beta): for the block's chunk c, each run's A registers (two
//     f16x2: slots 0, 1 and 2, 3), whose values are s * Q * 2^-24 exactly (Q's bits placed in
//     the mantissa of an f16 with a zero exponent, a subnormal; s = 16 where a high nibble is
//     left in place), and the run's coefficients:
//     sum w x = alpha * 2^24 * sum (s Q 2^-24) x + beta * sum x over the run,
//   x_element(c, j, t, slot): the block element in lane t's slot of run j of the block's chunk c
//     (mma's K order is free as long as A and B agree; x is staged in this order),
//   run_first(c, j): the first of run j's 16 consecutive elements; PAIRED: runs 2i and 2i + 1
//     share coefficients (given at 2i) and are the 32 consecutive elements from run_first(c, 2i),
//   BATCH: the chunks a warp has in flight (Q_BATCH; Q8_0 more, the K-quants fewer: what ran
//     fastest).
// Tensor cores keep f16 subnormals, and the products are exact, so the only roundings are the
// f32 sums' (no offset to cancel, unlike a 1024 + Q encoding). x is staged as f16 parts (hi +
// lo, scaled by a power of two to below 2^15) in B's columns (gemv.cu, stage_x_q).
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
#define Q_BATCH 4  // chunks a GEMV warp has in flight
// Q8_0's and Q6_K's (settable for experiments). H200, Qwen2.5-1.5B, ms/token after 32 tokens:
// q8_0 4 1.336, 6 1.254, 8 1.297-1.300 (bench/results/2026-12-01-h200-q-shape.log, -q8-batch);
// q6_k 2 1.441, 3 1.353-1.369, 4 1.415-1.425, a Q4_K_M file 1.234, 1.209-1.219, 1.229-1.237
// (-q6-batch.log, -q6-check.log).
#ifndef Q8_BATCH
#define Q8_BATCH 6
#endif
#ifndef Q6_BATCH
#define Q6_BATCH 3
#endif

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float f16_at(const unsigned char* p) { return f16_to_f32(ld_weight2(p)); }

__device__ __forceinline__ uint4 ld16(const unsigned char* p) { return ld_weight16(p); }

__device__ __forceinline__ unsigned ld4(const unsigned char* p) { return ld_weight4(p); }
__device__ __forceinline__ uint2 ld8(const unsigned char* p) { return ld_weight8(p); }

// The element order of a lane's slots in a run whose A registers take bytes 0 and 2 of a word,
// then 1 and 3 (a nibble mask keeps bytes 0, 2 in place; a shift by 8 brings 1, 3 there).
__device__ __forceinline__ int slot_order(int slot) { return 2 * (slot & 1) + (slot >> 1); }
// A word's low (HIGH: high) nibbles of bytes 0, 2 (ODD: 1, 3) as an f16x2 of s * Q * 2^-24.
template <bool HIGH, bool ODD>
__device__ __forceinline__ unsigned nibbles_f16(unsigned w) { return (ODD ? w >> 8 : w) & (HIGH ? 0x00F000F0u : 0x000F000Fu); }

// A byte 0..255 as an f32, exactly: placed in the mantissa of 2^23, less 2^23.
__device__ __forceinline__ float byte_f32(unsigned w, int k) { return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u | k)) - 8388608.f; }

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
    __device__ static void run_unit(int e, int& u, int& r) { u = 0, r = e / Q_RUN; }
    __device__ static uint4 quants(const Raw& raw, int, int r) {
        return map4(r ? raw.hi : raw.lo, [](unsigned v, int) { return v ^ 0x80808080u; });
    }
    __device__ static void coefs(const Raw& raw, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = raw.d;
        b[0] = b[1] = -128.f * raw.d;
    }
    // A chunk is a block, lane t's qs[8t..8t+7] (run j its word j; Q = q + 128 by the sign bit).
    static constexpr int CHUNK = 32, RUNS = 2, BATCH = Q8_BATCH;
    static constexpr bool PAIRED = true;
    struct Slice {
        uint2 q;
        float d;
    };
    struct Lane {
        const unsigned char *q, *d;
    };
    __device__ static Lane lane(const unsigned char* w, long long blocks, long long first, int, int t) {
        return Lane{w + first * BODY + 8 * t, w + blocks * BODY + 2 * first};
    }
    __device__ static Slice load(const Lane& p, unsigned b) { return Slice{ld8(p.q + b * BODY), f16_at(p.d + 2 * b)}; }
    __device__ static void frag(const Slice& s, int, unsigned (&a)[RUNS][2], float (&alpha)[RUNS], float (&beta)[RUNS]) {
        const unsigned words[2] = {s.q.x ^ 0x80808080u, s.q.y ^ 0x80808080u};
#pragma unroll
        for (int j = 0; j < RUNS; j++) {
            a[j][0] = __byte_perm(words[j], 0u, 0x4140u);
            a[j][1] = __byte_perm(words[j], 0u, 0x4342u);
        }
        alpha[0] = s.d;
        beta[0] = -128.f * s.d;
    }
    __device__ static int x_element(int, int j, int t, int slot) { return 8 * t + 4 * j + slot; }
    __device__ static int run_first(int, int) { return 0; }
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
    __device__ static void run_unit(int e, int& u, int& r) { u = 0, r = e / Q_RUN; }
    __device__ static uint4 quants(const Raw& raw, int, int r) {
        return map4(raw.q, [r](unsigned v, int) { return (r ? v >> 4 : v) & 0x0F0F0F0Fu; });
    }
    __device__ static void coefs(const Raw& raw, int, float (&a)[2], float (&b)[2]) {
        a[0] = a[1] = raw.d;
        b[0] = b[1] = -8.f * raw.d;
    }
    // A chunk is a block, lane t's qs[4t..4t+3] (run 0 their low nibbles, run 1 the high).
    static constexpr int CHUNK = 32, RUNS = 2, BATCH = Q_BATCH;
    static constexpr bool PAIRED = false;
    struct Slice {
        unsigned q;
        float d;
    };
    struct Lane {
        const unsigned char *q, *d;
    };
    __device__ static Lane lane(const unsigned char* w, long long blocks, long long first, int, int t) {
        return Lane{w + first * BODY + 4 * t, w + blocks * BODY + 2 * first};
    }
    __device__ static Slice load(const Lane& p, unsigned b) { return Slice{ld4(p.q + b * BODY), f16_at(p.d + 2 * b)}; }
    __device__ static void frag(const Slice& s, int, unsigned (&a)[RUNS][2], float (&alpha)[RUNS], float (&beta)[RUNS]) {
        a[0][0] = nibbles_f16<false, false>(s.q);
        a[0][1] = nibbles_f16<false, true>(s.q);
        a[1][0] = nibbles_f16<true, false>(s.q);
        a[1][1] = nibbles_f16<true, true>(s.q);
        alpha[0] = s.d;
        alpha[1] = s.d * 0.0625f;
        beta[0] = beta[1] = -8.f * s.d;
    }
    __device__ static int x_element(int, int j, int t, int slot) { return 16 * j + 4 * t + slot_order(slot); }
    __device__ static int run_first(int, int j) { return 16 * j; }
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
    __device__ static void run_unit(int e, int& u, int& r) { u = 2 * (e >> 6) + ((e >> 4) & 1), r = (e >> 5) & 1; }
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
    // Chunk c of a block is 64 elements: lane t's qs[32c + 8t..+7] (words 0, 1 runs 0, 1: low
    // nibbles, sub-block 2c; runs 2, 3 their high nibbles, 2c + 1), the block's first 16 bytes
    // (d, dmin, scales) and, Q5_K, qh[8t..8t+7]. Three in flight: the smaller loop beat four
    // (H200, Q4_K decode 1.409 -> 1.385 ms/token; again at a1f0db1, 1.216-1.220 against
    // 1.173-1.177, bench/results/2026-12-01-h200-q-shape.log).
    static constexpr int CHUNK = 64, RUNS = 4, BATCH = 3;
    static constexpr bool PAIRED = true;
    struct Slice {
        uint4 hd;
        uint2 q, qh;
    };
    struct Lane {
        const unsigned char *hd, *q, *qh;
    };
    __device__ static Lane lane(const unsigned char* w, long long, long long first, int c, int t) {
        const unsigned char* row = w + first * BODY;
        return Lane{row, row + QS + 32 * c + 8 * t, row + 16 + 8 * t};
    }
    __device__ static Slice load(const Lane& p, unsigned b) {
        return Slice{ld16(p.hd + b * BODY), ld8(p.q + b * BODY), FIFTH ? ld8(p.qh + b * BODY) : make_uint2(0, 0)};
    }
    __device__ static void frag(const Slice& s, int c, unsigned (&a)[RUNS][2], float (&alpha)[RUNS], float (&beta)[RUNS]) {
        const unsigned words[2] = {s.q.x, s.q.y}, high[2] = {s.qh.x, s.qh.y};
#pragma unroll
        for (int j = 0; j < 2; j++) {
            // the fifth bit to bit 4 (low nibbles) or 8 (high, in place: 16 Q)
            const unsigned h = high[j] >> (2 * c);
            a[j][0] = nibbles_f16<false, false>(words[j]) | (FIFTH ? (h & 0x00010001u) << 4 : 0u);
            a[j][1] = nibbles_f16<false, true>(words[j]) | (FIFTH ? ((h >> 8) & 0x00010001u) << 4 : 0u);
            a[j + 2][0] = nibbles_f16<true, false>(words[j]) | (FIFTH ? ((h >> 1) & 0x00010001u) << 8 : 0u);
            a[j + 2][1] = nibbles_f16<true, true>(words[j]) | (FIFTH ? ((h >> 9) & 0x00010001u) << 8 : 0u);
        }
        const unsigned sm = scale_mins(s.hd, 2 * c);
        const float d = f16_to_f32(s.hd.x & 0xffff), dmin = f16_to_f32(s.hd.x >> 16);
        alpha[0] = d * byte_f32(sm, 0);
        beta[0] = -(dmin * byte_f32(sm, 1));
        alpha[2] = d * byte_f32(sm, 2) * 0.0625f;
        beta[2] = -(dmin * byte_f32(sm, 3));
    }
    __device__ static int x_element(int c, int j, int t, int slot) { return 64 * c + 32 * (j >> 1) + 8 * t + 4 * (j & 1) + slot_order(slot); }
    __device__ static int run_first(int c, int j) { return 64 * c + 32 * (j >> 1); }
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
    __device__ static void run_unit(int e, int& u, int& r) { u = 4 * (e >> 7) + 2 * ((e >> 4) & 1) + ((e >> 5) & 1), r = (e >> 6) & 1; }
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
    // Chunk c of a block is half h = c/2's elements l = 16 (c % 2) + 0..15 of each k (run k,
    // scale 8h + c % 2 + 2k); lane t has l = 16 (c % 2) + 4t..+3: its ql bytes for k = 0, 2
    // (low, high nibbles) and 1, 3, its qh bytes, and the half's 8 scales.
    static constexpr int CHUNK = 64, RUNS = 4, BATCH = Q6_BATCH;
    static constexpr bool PAIRED = false;
    struct Slice {
        unsigned ql[2], qh;
        uint2 scales;
        float d;
    };
    struct Lane {
        const unsigned char *ql, *qh, *scales, *d;
    };
    __device__ static Lane lane(const unsigned char* w, long long blocks, long long first, int c, int t) {
        const unsigned char* row = w + first * BODY;
        const int h = c >> 1, l = 16 * (c & 1) + 4 * t;
        return Lane{row + 64 * h + l, row + 128 + 32 * h + l, row + 192 + 8 * h, w + blocks * BODY + 2 * first};
    }
    __device__ static Slice load(const Lane& p, unsigned b) {
        const unsigned char* ql = p.ql + b * BODY;
        return Slice{{ld4(ql), ld4(ql + 32)}, ld4(p.qh + b * BODY), ld8(p.scales + b * BODY), f16_at(p.d + 2 * b)};
    }
    __device__ static void frag(const Slice& s, int c, unsigned (&a)[RUNS][2], float (&alpha)[RUNS], float (&beta)[RUNS]) {
#pragma unroll
        for (int k = 0; k < RUNS; k++) {
            const unsigned ql = s.ql[k & 1], h = s.qh >> (2 * k);
            // the top two bits to bit 4 (low nibbles) or 8 (high, in place: 16 Q)
            if (k < 2) {
                a[k][0] = nibbles_f16<false, false>(ql) | (h & 0x00030003u) << 4;
                a[k][1] = nibbles_f16<false, true>(ql) | ((h >> 8) & 0x00030003u) << 4;
            } else {
                a[k][0] = nibbles_f16<true, false>(ql) | (h & 0x00030003u) << 8;
                a[k][1] = nibbles_f16<true, true>(ql) | ((h >> 8) & 0x00030003u) << 8;
            }
            const int i = (c & 1) + 2 * k;  // the half's scales byte
            const float ds = s.d * (float)(signed char)((i < 4 ? s.scales.x : s.scales.y) >> (8 * (i & 3)));
            alpha[k] = k < 2 ? ds : ds * 0.0625f;
            beta[k] = -32.f * ds;
        }
    }
    __device__ static int x_element(int c, int k, int t, int slot) { return 128 * (c >> 1) + 32 * k + 16 * (c & 1) + 4 * t + slot_order(slot); }
    __device__ static int run_first(int c, int k) { return 128 * (c >> 1) + 32 * k + 16 * (c & 1); }
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
