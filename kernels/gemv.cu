// Batch-1 GEMV family: y[r] = epilogue(x . W[r]) for W bf16 [N, K] row-major, x f32 [K]; each
// kernel has a `_q` twin for W in a block format (quant.cu), which takes the format's id last
// and differs as its `gemv_tasks` overload says (a block per tile of 16 rows, multiplied on
// tensor cores; x as f16 parts and each run's sum and scale in shared memory, staged by each
// warp for its own chunks: about K*4.5 bytes, with a norm or not).
// Launch: blocks of GEMV_THREADS (GEMV_WARPS warps), grid from the host (launch.rs: one task per
// warp, capped at a few blocks per SM, warps then stride over the tasks; the bf16 LM head one
// block of LM_HEAD_WARPS an SM, below; the persistent decode
// kernel runs the same task loops over its instructions' task ranges), K*4 bytes of dynamic
// shared memory (K*6 with an input norm: its bf16 weight sits behind x). A warp's task is one
// row (linear, LM head) or two rows its epilogue combines (gate/up: rows r and F+r; q/k/v: the
// RoPE pair i, i+d/2 of a head), so no epilogue waits for another block. Lanes stride K in 16-byte chunks, GEMV_BATCH / ROWS chunks per row in flight;
// the first task's first batch (and the norm weight) is requested before grid_dep_wait (weights
// never change) and each next task's before the current one's reduction, so weight streaming
// runs on across task and kernel boundaries. `wait` (grid_dep_wait here, a counter wait in
// persistent.cu) is where the block first needs an earlier kernel's or instruction's output.
// x is staged once per block in shared memory,
// RMS-normalized there (in f32, as the rms_norm kernel computes it) when an input norm is folded
// in (norm_w non-null).
// Bytes: N*K*2 of weights (the whole cost; a block format's N*K/BLOCK*block bytes) + K*4 of x
// per block (L2 hits) + the outputs.
// Requires K % 8 == 0 and 16-byte aligned rows (checked on the host).

#pragma once
#include "common.cuh"
#include "quant.cu"

#define GEMV_WARPS 4
#define GEMV_THREADS (32 * GEMV_WARPS)
// 16-byte loads in flight per lane (settable for experiments, LLMC_EXPERIMENT_DEFINES; H200,
// Qwen2.5-1.5B, ms/token after 32 / 1,024 tokens: 8 1.58 / 1.63, 12 1.49 / 1.61, 16 1.254 /
// 1.341, 20 1.264 / 1.324: bench/results/2026-12-01-h200-gemv-batch*.log)
#ifndef GEMV_BATCH
#define GEMV_BATCH 16
#endif
// The `_q` kernels (tensor cores): a tile of rows (mma's M) and the most warps a block has
// (launch bounds: at most 128 registers a thread; the host picks 4 to 16 warps a block,
// launch.rs); the chunks a warp has in flight are its format's BATCH (quant.cu).
#define GEMV_Q_ROWS 16
#define GEMV_Q_MAX_WARPS 16

extern __shared__ uint4 gemv_x[];

// acc += w . x over one 16-byte chunk of 8 bf16 weights and the matching 8 f32 of x.
__device__ __forceinline__ void fma8(float& acc, uint4 w, float4 xa, float4 xb) {
    acc = fmaf(lo_f32(w.x), xa.x, acc);
    acc = fmaf(hi_f32(w.x), xa.y, acc);
    acc = fmaf(lo_f32(w.y), xa.z, acc);
    acc = fmaf(hi_f32(w.y), xa.w, acc);
    acc = fmaf(lo_f32(w.z), xb.x, acc);
    acc = fmaf(hi_f32(w.z), xb.y, acc);
    acc = fmaf(lo_f32(w.w), xb.z, acc);
    acc = fmaf(hi_f32(w.w), xb.w, acc);
}

// x's chunk c (8 f32) is gemv_x[2c], gemv_x[2c + 1]; the norm weight's (8 bf16) gemv_x[2k/8 + c].
__device__ __forceinline__ float4* gemv_x_f32() { return reinterpret_cast<float4*>(gemv_x); }

__device__ __forceinline__ float sumsq4(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }

// The norm weight into shared memory behind x (before the wait: it is a weight), each thread
// the four-element quads of x that stage_x gives it (it reads them back with no barrier).
// `threads` is the block size (a constant for the bf16 kernels, so each thread's loads are
// unrolled).
__device__ __forceinline__ void stage_norm_weight(const bf16* __restrict__ norm_w, int k, int threads) {
    if (!norm_w) return;
    uint2* w = reinterpret_cast<uint2*>(gemv_x + 2 * (k >> 3));
    for (int c = threadIdx.x; c < k >> 2; c += threads) w[c] = __ldg(reinterpret_cast<const uint2*>(norm_w) + c);
}

// x into gemv_x (every thread of the block calls it, after the wait: x is an earlier kernel's
// or instruction's output, read with Wait::load). With an input norm (norm_w non-null, its
// weight staged already) x is staged times the norm's weight and the returned 1/rms(x) scales
// the dot products instead (W.(x w) / rms = W.(x / rms w) up to f32 rounding): the sum of
// squares then needs no block reduction and second pass over x before the dot products, only
// each warp's partial sum beside x, behind the one barrier that completes x (H200, Qwen2.5-1.5B:
// README, "Where a graph decode step's time goes"). Returns 1 without a norm.
template <class Wait>
__device__ __forceinline__ float stage_x(const float* __restrict__ x, const bf16* __restrict__ norm_w, float eps, int k, int threads) {
    const int quads = k >> 2;
    const float4* xv = reinterpret_cast<const float4*>(x);
    float4* xs = gemv_x_f32();
    float ss = 0.f;
    __shared__ float warp_squares[32];
    const unsigned* w = reinterpret_cast<const unsigned*>(gemv_x + 2 * (k >> 3));
    for (int c = threadIdx.x; c < quads; c += threads) {
        float4 v = Wait::load(xv + c);
        if (norm_w) {
            ss += sumsq4(v);
            const unsigned w01 = w[2 * c], w23 = w[2 * c + 1];
            v.x *= lo_f32(w01), v.y *= hi_f32(w01), v.z *= lo_f32(w23), v.w *= hi_f32(w23);
        }
        xs[c] = v;
    }
    if (norm_w) {
        ss = warp_sum(ss);
        if ((threadIdx.x & 31) == 0) warp_squares[threadIdx.x >> 5] = ss;
    }
    __syncthreads();
    if (!norm_w) return 1.f;
    float total = 0.f;
    for (int i = 0; i < threads >> 5; i++) total += warp_squares[i];
    return 1.0f / sqrtf(total / (float)k + eps);
}

// The `_q` kernels' shared memory: a float2 per run of x (Q_RUN elements; for a PAIRED format
// only each pair's first is used) holding its group's sum of x and the factor that undoes the
// group's scale (below), then x as Q_PARTS f16 parts (part p at q_parts_offset + p *
// q_part_stride halves) in each format's order: chunk ch's lane t's run j's slots at ch * CHUNK
// + t * 4 * RUNS + 4 * j. The parts are 16 bytes more than k * 2 apart, so lanes reading parts 0
// and 1 at once hit other banks when k is a multiple of 64.
#define Q_PARTS 2
__device__ __forceinline__ int q_parts_offset(int k) { return (2 * (k / Q_RUN) + 3) & ~3; }  // floats
__device__ __forceinline__ int q_part_stride(int k) { return k + 8; }                       // halves

__device__ __forceinline__ unsigned short f32_to_f16(float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    return h;
}

// x staged for a `_q` kernel by each warp for the chunks it multiplies (w, w + warps, ...: no
// other warp reads them, so no block barrier): RMS-normalized when norm_w is non-null (each
// warp sums the squares of all of x itself, in the rms_norm kernel's f32 arithmetic up to the
// order of the sums), and per group of x that shares the weights' coefficients (a run; a pair
// of runs for a PAIRED format) its sum and x * 2^e as hi + lo f16 parts in F's order, with 2^e
// putting the group's largest |x| in [2^14, 2^15) (f16's top binade): lo takes what hi left, so
// the parts hold x to 2^-22 of itself, or to 2^-25 absolute where lo is subnormal (2^-39 of the
// group's largest x), below what the f32 sums round. The group's factor 2^(24 - e) undoes both
// 2^e and the weights' 2^-24 encoding (quant.cu). Lane L takes the quad (four slots) L % QUADS of
// the warp's chunk (pass * 32 + L) / QUADS; a group's quads are lanes that differ only in the
// bits of t (and, PAIRED, of j's low bit), so shuffles over those bits reduce it.
template <class F, class Wait>
__device__ __forceinline__ void stage_x_warp(const float* __restrict__ x, const bf16* __restrict__ norm_w, float eps, int k) {
    constexpr int QUADS = F::CHUNK / 4, PER_BLOCK = F::BLOCK / F::CHUNK, RUN_BITS = F::RUNS == 4 ? 2 : 1;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, chunks = k / F::CHUNK;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float inv = 1.f;
    if (norm_w) {
        float ss = 0.f;
        for (int i = lane; i < k / 4; i += 32) ss += sumsq4(Wait::load(x4 + i));
        inv = 1.0f / sqrtf(warp_sum(ss) / (float)k + eps);
    }
    float2* groups = reinterpret_cast<float2*>(gemv_x);
    unsigned short* parts = reinterpret_cast<unsigned short*>(reinterpret_cast<float*>(gemv_x) + q_parts_offset(k));
    const int mine = (chunks - warp + warps - 1) / warps;  // this warp's chunks
    const int q = lane % QUADS, t = q / F::RUNS, j = q % F::RUNS;
    for (int pass = 0; pass * (32 / QUADS) < mine; pass++) {  // uniform over the warp: every lane shuffles
        const int i = pass * (32 / QUADS) + lane / QUADS, ch = warp + warps * i;
        const bool valid = i < mine;
        const int c = ch % PER_BLOCK, first = ch / PER_BLOCK * F::BLOCK + F::x_element(c, j, t, 0);
        float4 v4 = make_float4(0.f, 0.f, 0.f, 0.f);
        if (valid) {
            v4 = Wait::load(x4 + first / 4);
            if (norm_w) {
                const uint2 w = __ldg(reinterpret_cast<const uint2*>(norm_w + first));
                v4.x *= inv * lo_f32(w.x), v4.y *= inv * hi_f32(w.x), v4.z *= inv * lo_f32(w.y), v4.w *= inv * hi_f32(w.y);
            }
        }
        float total = (v4.x + v4.y) + (v4.z + v4.w);
        float largest = fmaxf(fmaxf(fabsf(v4.x), fabsf(v4.y)), fmaxf(fabsf(v4.z), fabsf(v4.w)));
#pragma unroll
        for (int b = F::PAIRED ? 0 : RUN_BITS; b < RUN_BITS + 2; b++) {
            if (F::PAIRED && b > 0 && b < RUN_BITS) continue;  // j's high bit names the pair
            total += __shfl_xor_sync(0xffffffffu, total, 1 << b);
            largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, 1 << b));
        }
        if (!valid) continue;
        // 14 less largest's binade (a NaN or infinity propagates through the parts anyway)
        const int e = largest > 0.f ? min(max(14 - ((int)((__float_as_uint(largest) >> 23) & 255) - 127), -100), 100) : 0;
        const float scale = __int_as_float((127 + e) << 23);
        const float v[4] = {v4.x, v4.y, v4.z, v4.w};
        unsigned hi[2], lo[2];
#pragma unroll
        for (int slot = 0; slot < 4; slot += 2) {
            const float a = v[F::x_element(c, j, t, slot) - F::x_element(c, j, t, 0)] * scale;
            const float b = v[F::x_element(c, j, t, slot + 1) - F::x_element(c, j, t, 0)] * scale;
            const unsigned short ha = f32_to_f16(a), hb = f32_to_f16(b);
            hi[slot / 2] = ha | (unsigned)hb << 16;
            lo[slot / 2] = f32_to_f16(a - f16_to_f32(ha)) | (unsigned)f32_to_f16(b - f16_to_f32(hb)) << 16;
        }
        const int p = ch * F::CHUNK + 4 * q;
        *reinterpret_cast<uint2*>(parts + p) = make_uint2(hi[0], hi[1]);
        *reinterpret_cast<uint2*>(parts + q_part_stride(k) + p) = make_uint2(lo[0], lo[1]);
        if (t == 0 && (!F::PAIRED || (j & 1) == 0))
            groups[(ch / PER_BLOCK * F::BLOCK + F::run_first(c, j)) / Q_RUN] = make_float2(total, __int_as_float((127 + 24 - e) << 23));
    }
    __syncwarp();
}

// A matrix of block format F (quant.cu): `blocks` of the whole matrix (where its scales start).
template <class F>
struct QWeights {
    const unsigned char* w;
    long long blocks;
};

// Each warp's row sums of a tile (double-buffered by tile), one array for every format's
// gemv_tasks (a __shared__ in the template would be one per format).
__shared__ float gemv_q_sums[2][GEMV_Q_MAX_WARPS][GEMV_Q_ROWS];

// d += A . B on tensor cores: A the 16 x 16 f16 weights (rows g, g + 8, slots 0, 1 then 2, 3),
// B x's 16 x 8 (column g: x part g, zero from Q_PARTS, slots 0, 1 then 2, 3), d rows g, g + 8 by columns 2t, 2t + 1.
__device__ __forceinline__ void mma_f16(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// gemv_tasks over a block-format matrix, on tensor cores (quant.cu's chunks): the block takes a
// tile of GEMV_Q_ROWS rows at once (tiles t, t + stride, ...: 16 / ROWS tasks each, task j's
// row i at tile row j + (16 / ROWS) i), its warps the tile's chunks w, w + warps, ..., each
// warp F::BATCH chunks' loads in flight (the next batch
// requested as the current one is consumed, the next tile's first before the reduction, the
// first before the wait: weights never change). Lane (g, t) multiplies rows g and g + 8 by x's
// parts run by run, scales each run's (pair's) sums by its coefficients into its two columns
// and adds beta * sum x per row; the lanes of a quad meet by shuffles, the warps in shared
// memory, and warp w runs the epilogues of the tile's tasks w, w + warps, ... with every lane
// holding the sums.
template <int ROWS, int TASKS, int BATCH, int THREADS, class F, class RowsOf, class Epilogue, class Wait>
__device__ __forceinline__ void gemv_tasks(QWeights<F> m, int tile, int stride, int tasks, int k, const float* x, const bf16* norm_w,
                                           float eps, RowsOf rows_of, Epilogue epilogue, Wait wait) {
    constexpr int TILE_TASKS = GEMV_Q_ROWS / ROWS, PER_BLOCK = F::BLOCK / F::CHUNK;
    constexpr int NB = F::BATCH;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, g = lane >> 2, t = lane & 3;
    const int chunks = k / F::CHUNK, tiles = (tasks + TILE_TASKS - 1) / TILE_TASKS, row_blocks = k / F::BLOCK;
    // A warp's chunks w, w + warps, ... are all its blocks' chunk c: warps is a multiple of
    // PER_BLOCK (a power of two from 4, launch.rs), so c and every pointer into a block are
    // fixed for the warp and a chunk's addresses are a row pointer plus its block times BODY.
    const int c = warp % PER_BLOCK;
    typename F::Lane lanes[2];  // rows g, g + 8
    typename F::Slice slice[NB][2];
    auto name_rows = [&](int tile) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int i = g + 8 * h;
            long long r[ROWS];
            rows_of(min(tile * TILE_TASKS + i % TILE_TASKS, tasks - 1), r);
            lanes[h] = F::lane(m.w, m.blocks, r[i / TILE_TASKS] * row_blocks, c, t);
        }
    };
    // chunks past the row's end re-read its last block's (predicated loads issued later: q8_0
    // 1.80 -> 1.69 ms/token unconditional, H200)
    auto load = [&](int c0) {
#pragma unroll
        for (int v = 0; v < NB; v++) {
            const unsigned b = min((c0 + warps * v) / PER_BLOCK, row_blocks - 1);
#pragma unroll
            for (int h = 0; h < 2; h++) slice[v][h] = F::load(lanes[h], b);
        }
    };
    if (tile < tiles) {
        name_rows(tile);
        load(warp);
    }
    wait();
    stage_x_warp<F, Wait>(x, norm_w, eps, k);
    const float2* groups = reinterpret_cast<const float2*>(gemv_x);
    const unsigned short* part_x = reinterpret_cast<const unsigned short*>(reinterpret_cast<const float*>(gemv_x) + q_parts_offset(k)) +
                                   min(g, Q_PARTS - 1) * q_part_stride(k) + t * 4 * F::RUNS;
    int parity = 0;
    for (; tile < tiles; tile += stride) {
        float acc[4] = {0.f, 0.f, 0.f, 0.f}, acc_beta[2] = {0.f, 0.f};
        for (int c0 = warp; c0 < chunks;) {
#pragma unroll
            for (int v = 0; v < NB; v++) {
                const int ch = c0 + warps * v;
                if (ch >= chunks) break;
                const int first_el = ch / PER_BLOCK * F::BLOCK;
                unsigned a[2][F::RUNS][2], b[F::RUNS][2];
                float alpha[2][F::RUNS], beta[2][F::RUNS];
#pragma unroll
                for (int h = 0; h < 2; h++) F::frag(slice[v][h], c, a[h], alpha[h], beta[h]);
#pragma unroll
                for (int q = 0; q < F::RUNS / 2; q++) {
                    const uint4 p = g < Q_PARTS ? reinterpret_cast<const uint4*>(part_x + ch * F::CHUNK)[q] : make_uint4(0, 0, 0, 0);
                    b[2 * q][0] = p.x;
                    b[2 * q][1] = p.y;
                    b[2 * q + 1][0] = p.z;
                    b[2 * q + 1][1] = p.w;
                }
                constexpr int GROUP = F::PAIRED ? 2 : 1;
#pragma unroll
                for (int j = 0; j < F::RUNS; j += GROUP) {
                    float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
                    for (int q = j; q < j + GROUP; q++) mma_f16(d, a[0][q][0], a[1][q][0], a[0][q][1], a[1][q][1], b[q][0], b[q][1]);
                    const float2 group = groups[(first_el + F::run_first(c, j)) / Q_RUN];  // (sum of x, 2^(24 - e))
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const float a = alpha[h][j] * group.y;
                        acc[2 * h] = fmaf(a, d[2 * h], acc[2 * h]);
                        acc[2 * h + 1] = fmaf(a, d[2 * h + 1], acc[2 * h + 1]);
                        acc_beta[h] = fmaf(beta[h][j], group.x, acc_beta[h]);
                    }
                }
            }
            c0 += warps * NB;
            if (c0 >= chunks) break;
            load(c0);
        }
        if (tile + stride < tiles) {
            name_rows(tile + stride);
            load(warp);
        }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float row = acc[2 * h] + acc[2 * h + 1];
            row += __shfl_xor_sync(0xffffffffu, row, 1);
            row += __shfl_xor_sync(0xffffffffu, row, 2);
            if (t == 0) gemv_q_sums[parity][warp][g + 8 * h] = row + acc_beta[h];
        }
        __syncthreads();
        for (int j = warp; j < TILE_TASKS && tile * TILE_TASKS + j < tasks; j += warps) {
            float sum[ROWS];
#pragma unroll
            for (int i = 0; i < ROWS; i++) {
                sum[i] = 0.f;
                for (int w = 0; w < warps; w++) sum[i] += gemv_q_sums[parity][w][j + TILE_TASKS * i];
            }
            epilogue(tile * TILE_TASKS + j, sum);
        }
        parity ^= 1;
    }
}

// This lane's chunks c0 + lane + 32*b of every row (zeros past the end, or for a null row when
// NULLABLE: several tasks at once, the last ones past the end).
template <int ROWS, int BATCH, bool NULLABLE>
__device__ __forceinline__ void load_batch(const bf16* const (&rows)[ROWS], int c0, int chunks, uint4 (&w)[ROWS][BATCH / ROWS]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int b = 0; b < BATCH / ROWS; b++) {
        const int c = c0 + lane + 32 * b;
#pragma unroll
        for (int i = 0; i < ROWS; i++)
            w[i][b] = (!NULLABLE || rows[i]) && c < chunks ? ld_weight16(reinterpret_cast<const uint4*>(rows[i]) + c) : make_uint4(0, 0, 0, 0);
    }
}

template <int ROWS, int BATCH>
__device__ __forceinline__ void fma_batch(const uint4 (&w)[ROWS][BATCH / ROWS], int c0, int chunks, float (&acc)[ROWS]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int b = 0; b < BATCH / ROWS; b++) {
        const int c = c0 + lane + 32 * b;
        if (c < chunks) {
            const float4 xa = gemv_x_f32()[2 * c], xb = gemv_x_f32()[2 * c + 1];
#pragma unroll
            for (int i = 0; i < ROWS; i++) fma8(acc[i], w[i][b], xa, xb);
        }
    }
}

// A bf16 weight matrix: row r at w + r*k. (Block formats: QWeights in quant.cu, whose
// gemv_tasks overload the task functions below reach the same way.)
struct Bf16Weights {
    const bf16* w;
};

// Whether a warp's first epilogues are its tasks t, t + stride, ... (TASKS of them), as the bf16
// gemv_tasks runs them (a block-format warp's epilogues are rows of its block's tile instead), so
// a task function may load their operands ahead (epilogue_ahead).
template <class W>
struct FirstTasksAhead {
    static constexpr bool value = false;
};
template <>
struct FirstTasksAhead<Bf16Weights> {
    static constexpr bool value = true;
};

// A wait followed by `then` (the same Wait::load): what a task function needs of an earlier
// kernel's output for its epilogues, requested as soon as it may be read, so that the round trip
// overlaps x's staging and the dot products instead of following them.
template <class Wait, class Then>
struct WaitThen {
    Wait wait;
    Then then;
    __device__ __forceinline__ void operator()() const {
        wait();
        then();
    }
    template <class T>
    __device__ __forceinline__ static T load(const T* p) { return Wait::load(p); }
};

// Of a warp's first TASKS tasks t, t + stride, ..., the value `ahead` holds for task u, or
// load() for a later task (unrolled: a register array indexed at run time would be local memory).
template <int TASKS, class Load>
__device__ __forceinline__ float epilogue_ahead(const float (&ahead)[TASKS], bool valid, int t, int stride, int u, Load load) {
    const int j = (u - t) / stride;
    if (valid && j < TASKS) {
        float v = 0.f;
#pragma unroll
        for (int i = 0; i < TASKS; i++)
            if (i == j) v = ahead[i];
        return v;
    }
    return load();
}

// Runs tasks t, t + stride, ... below `tasks` (every thread of the block calls it; each warp
// starts at its own t): rows_of(t, rows) names task t's ROWS weight rows (indices into m), epilogue(t, acc) gets
// their dot products with x (every lane holds the totals). wait() is called once by every thread.
// A warp streams TASKS tasks at once (t, t + stride, ...) with BATCH 16-byte loads per lane in
// flight over their rows: short rows (K = 1536 is 192 chunks) need several tasks' rows in flight
// to keep enough bytes moving per warp when few warps share an SM (the persistent kernel).
template <int ROWS, int TASKS, int BATCH, int THREADS, class RowsOf, class Epilogue, class Wait>
__device__ __forceinline__ void gemv_tasks(Bf16Weights m, int t, int stride, int tasks, int k, const float* x, const bf16* norm_w,
                                           float eps, RowsOf rows_of, Epilogue epilogue, Wait wait) {
    constexpr int R = ROWS * TASKS;
    const int chunks = k >> 3;
    const bf16* rows[R];
    uint4 w[R][BATCH / R];
    // The rows of tasks t, t + stride, ... (null past the last task).
    auto name_rows = [&](int t) {
#pragma unroll
        for (int j = 0; j < TASKS; j++) {
            long long r[ROWS];
            const bool valid = t + j * stride < tasks;
            if (valid) rows_of(t + j * stride, r);
#pragma unroll
            for (int i = 0; i < ROWS; i++) rows[j * ROWS + i] = valid ? m.w + r[i] * k : nullptr;
        }
    };
    // The norm's weight before the rows: requested after them, its round trip queued behind
    // theirs (H200, Qwen2.5-1.5B: 1.164 against 1.171 ms/token; README, "Block order and the
    // norm first").
    stage_norm_weight(norm_w, k, THREADS);
    if (t < tasks) {
        name_rows(t);
        load_batch<R, BATCH, (TASKS > 1)>(rows, 0, chunks, w);
    }
    wait();
    const float inv = stage_x<Wait>(x, norm_w, eps, k, THREADS);
    trace_mark(0);
    for (; t < tasks; t += TASKS * stride) {
        float acc[R];
#pragma unroll
        for (int i = 0; i < R; i++) acc[i] = 0.f;
        for (int c0 = 0;;) {
            fma_batch<R, BATCH>(w, c0, chunks, acc);
            c0 += 32 * (BATCH / R);
            if (c0 >= chunks) break;
            load_batch<R, BATCH, (TASKS > 1)>(rows, c0, chunks, w);
        }
        if (t + TASKS * stride < tasks) {
            name_rows(t + TASKS * stride);
            load_batch<R, BATCH, (TASKS > 1)>(rows, 0, chunks, w);
        }
#pragma unroll
        for (int i = 0; i < R; i++) acc[i] = warp_sum(acc[i]) * inv;
        trace_mark(1);
#pragma unroll
        for (int j = 0; j < TASKS; j++)
            if (t + j * stride < tasks) epilogue(t + j * stride, *reinterpret_cast<const float(*)[ROWS]>(acc + j * ROWS));
    }
}

// This warp's first task and the stride of a standalone GEMV launch.
__device__ __forceinline__ int grid_first_task() { return blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5); }
__device__ __forceinline__ int grid_task_stride() { return gridDim.x * GEMV_WARPS; }

// Linear and LinearResidual: y = x.W[r] + (bias[r] + residual[r]); bias/residual may be null.
// Tasks are rows; this runs rows t, t + stride, ... below `end`.
// The residual of a bf16 warp's first tasks is loaded right after the wait (WaitThen).
template <int TASKS, int BATCH, int THREADS, class W, class Wait>
__device__ __forceinline__ void linear_tasks(int t, int stride, int end, const float* x, W w, const bf16* bias,
                                             const float* residual, float* out, int k, Wait wait) {
    const bool ahead = FirstTasksAhead<W>::value && residual && (threadIdx.x & 31) == 0;
    float residual_ahead[TASKS];
    auto load_ahead = [&]() {
#pragma unroll
        for (int j = 0; j < TASKS; j++)
            if (ahead && t + j * stride < end) residual_ahead[j] = Wait::load(residual + t + j * stride);
    };
    const int first = t;
    gemv_tasks<1, TASKS, BATCH, THREADS>(
        w, t, stride, end, k, x, nullptr, 0.f, [&](int t, long long (&rows)[1]) { rows[0] = t; },
        [&](int t, const float (&acc)[1]) {
            if ((threadIdx.x & 31) != 0) return;
            const float res = residual ? epilogue_ahead(residual_ahead, ahead, first, stride, t, [&] { return Wait::load(residual + t); }) : 0.f;
            out[t] = acc[0] + ((bias ? bf16_to_f32(bias[t]) : 0.f) + res);
        },
        WaitThen<Wait, decltype(load_ahead)>{wait, load_ahead});
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
linear(const float* x, const bf16* w, const bf16* bias, const float* residual, float* out, int n, int k) {
    DECODE_KERNEL_BEGIN();
    linear_tasks<1, GEMV_BATCH, GEMV_THREADS>(grid_first_task(), grid_task_stride(), n, x, Bf16Weights{w}, bias, residual, out, k, GridWait{});
}

// The `_q` kernels: the same over a block-format matrix; `fmt` is its Q_FMT_* id. A block takes
// tile of GEMV_Q_ROWS rows at once (the host sizes the grid and the block so).
extern "C" __global__ void __launch_bounds__(32 * GEMV_Q_MAX_WARPS, 1)
linear_q(const float* x, const unsigned char* w, const bf16* bias, const float* residual, float* out, int n, int k, int fmt) {
    DECODE_KERNEL_BEGIN();
    Q_DISPATCH(fmt, linear_tasks<1, GEMV_BATCH, GEMV_THREADS>(blockIdx.x, gridDim.x, n, x, QWeights<F>{w, (long long)n * (k / F::BLOCK)},
                                                          bias, residual, out, k, GridWait{}))
}

// LmHead: f32 logits, no rounding. norm_w: optional input RMSNorm (null for none).
template <int TASKS, int BATCH, int THREADS, class W, class Wait>
__device__ __forceinline__ void lm_head_tasks(int t, int stride, int end, const float* x, W w, const bf16* norm_w,
                                              float eps, float* out, int k, Wait wait) {
    gemv_tasks<1, TASKS, BATCH, THREADS>(
        w, t, stride, end, k, x, norm_w, eps, [&](int t, long long (&rows)[1]) { rows[0] = t; },
        [&](int t, const float (&acc)[1]) {
            if ((threadIdx.x & 31) == 0) out[t] = acc[0];
        },
        wait);
}

// The bf16 LM head's blocks: LM_HEAD_WARPS warps, one block an SM (launch bounds: at most 128
// registers a thread, so a block holds its SM's registers; the host launches at most one block
// an SM). Blocks of GEMV_WARPS, four an SM by the grid, landed where SMs freed first as the last
// MLP left: five to an SM on 105 of the 132 SMs and none on 24, and the last block left ~8 us
// after the median one (H200, Qwen2.5-1.5B, bench/results/2026-12-03-h200-prefetch-next-t0.json.gz).
#define LM_HEAD_WARPS 16

extern "C" __global__ void __launch_bounds__(32 * LM_HEAD_WARPS, 1)
lm_head(const float* x, const bf16* w, const bf16* norm_w, float eps, float* out, int n, int k) {
    DECODE_KERNEL_BEGIN();
    lm_head_tasks<1, GEMV_BATCH, 32 * LM_HEAD_WARPS>(blockIdx.x * LM_HEAD_WARPS + (threadIdx.x >> 5), gridDim.x * LM_HEAD_WARPS, n, x, Bf16Weights{w},
                                                     norm_w, eps, out, k, GridWait{});
}

extern "C" __global__ void __launch_bounds__(32 * GEMV_Q_MAX_WARPS, 1)
lm_head_q(const float* x, const unsigned char* w, const bf16* norm_w, float eps, float* out, int n, int k, int fmt) {
    DECODE_KERNEL_BEGIN();
    Q_DISPATCH(fmt, lm_head_tasks<1, GEMV_BATCH, GEMV_THREADS>(blockIdx.x, gridDim.x, n, x, QWeights<F>{w, (long long)n * (k / F::BLOCK)},
                                                           norm_w, eps, out, k, GridWait{}))
}

// GateUpSilu over W [2F, K] (gate rows first): y[r] = silu(g_r) * u_r. Task r reads rows r, F + r.
template <int TASKS, int BATCH, int THREADS, class W, class Wait>
__device__ __forceinline__ void gate_up_silu_tasks(int t, int stride, int end, const float* x, W w, const bf16* norm_w,
                                                   float eps, float* out, int f, int k, Wait wait) {
    gemv_tasks<2, TASKS, BATCH, THREADS>(
        w, t, stride, end, k, x, norm_w, eps,
        [&](int t, long long (&rows)[2]) {
            rows[0] = t;
            rows[1] = t + f;
        },
        [&](int t, const float (&acc)[2]) {
            if ((threadIdx.x & 31) != 0) return;
            const float g = acc[0];
            out[t] = g / (1.0f + expf(-g)) * acc[1];
        },
        wait);
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
gate_up_silu(const float* x, const bf16* w, const bf16* norm_w, float eps, float* out, int f, int k) {
    DECODE_KERNEL_BEGIN();
    gate_up_silu_tasks<1, GEMV_BATCH, GEMV_THREADS>(grid_first_task(), grid_task_stride(), f, x, Bf16Weights{w}, norm_w, eps, out, f, k, GridWait{});
}

extern "C" __global__ void __launch_bounds__(32 * GEMV_Q_MAX_WARPS, 1)
gate_up_silu_q(const float* x, const unsigned char* w, const bf16* norm_w, float eps, float* out, int f, int k, int fmt) {
    DECODE_KERNEL_BEGIN();
    Q_DISPATCH(fmt, gate_up_silu_tasks<1, GEMV_BATCH, GEMV_THREADS>(blockIdx.x, gridDim.x, f, x,
                                                                QWeights<F>{w, 2LL * f * (k / F::BLOCK)}, norm_w, eps, out, f, k, GridWait{}))
}
