// Decode attention and the output projection with its residual in one kernel (graph decode,
// bf16 W_o, one query head a block, short contexts):
//   out = x + W_o . attention(q, K, V),   W_o [hidden, n_heads * d],
// which the plan states as attention then linear_residual (o_proj). The o_proj kernel alone took
// ~3 us a layer for 1.1 us of bytes (H200, Qwen2.5-1.5B), most of it its ramp after attention's
// last block. Here its weights are streamed while attention waits and runs, and the projection
// is a few hundred nanoseconds after the merge. The runtime replays it in a second graph while
// the context fits one cluster of slices a head (launch.rs, short_context_launches); past that
// the merge would go through L2 with the projecting blocks waiting on it, which was much slower
// (README, "Attention and o_proj in one kernel").
// Launch: grid (n_heads, cluster) of ATTN_THREADS in clusters of `cluster` blocks along y
// (cluster >= 2): a head's slices are one cluster, so every step merges in it and each block ends
// with d / cluster elements of its head's output (its share: elements split * share..); max_seq is
// the context the launch serves (at most cluster * ATTN_CHUNK positions: attention.cu's slices).
// Block (h, s) owns columns h * d + s * share.. of W_o: before the grid wait it copies them into
// shared memory (cp.async, chunk c of row i at c * hidden + i, so that a warp's 16-byte reads of
// consecutive rows are conflict-free), and after the merge thread i of a pass computes row i's
// dot product with the share; four lanes' rows are gathered by shuffles and added into out with
// a vector reduction (red.global.add.v4.f32). out already holds x: the qkv_rope launch before
// this one copied it (qkv_rope.cu, copy_residual_part), and its completion is what the grid wait
// waits for, so no block waits on another (out starting as x by the first block to arrive, and
// the others waiting for that copy, cost an L2 round trip or two after the merge). The parts
// are added in the order they arrive: out may differ from run to run in the last bits of f32.
// Shared memory (dynamic): hidden * share * 2 bytes (the host fuses only up to
// ATTN_PROJ_MAX_SHARED and otherwise launches the two kernels).
// Bytes: W_o once (hidden * n_heads * d * 2) plus attention.cu's; out's reductions
// (n_heads * cluster * hidden * 4, L2).
// Requires (host-checked): one query head a block, share % 8 == 0, hidden % 4 == 0.

#pragma once
#include "common.cuh"
#include "attention.cu"
#include "gemv.cu"
#include "mlp.cu"

// The largest share of W_o a block streams (shared memory, bytes): a block's share is its SM's
// bytes to read before it projects, and the fused kernel runs on only n_heads * cluster SMs.
// H200, short-context graph against one graph, ms/token after 32 tokens: Qwen2.5-1.5B (96 KiB
// on 48 SMs) 1.132-1.137 against 1.170-1.173, Qwen3-1.7B (128 KiB on 64 SMs) 1.292-1.294
// against 1.285-1.286 (bench/results/2026-12-03-h200-residual-copy.log, -short-graph-qwen3.log).
#define ATTN_PROJ_MAX_SHARED (96 * 1024)

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention_proj(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
               const int* __restrict__ pos_p, float* __restrict__ attn_out, float* __restrict__ partial,
               unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq, int min_chunk, int cluster,
               const bf16* __restrict__ w_o, float* out, int hidden) {
    DECODE_KERNEL_BEGIN();
    const int head = blockIdx.x, split = blockIdx.y, share = d / cluster, chunks = share / 8;
    uint4* w = reinterpret_cast<uint4*>(gemv_x);
    const bf16* cols = w_o + (long long)head * d + split * share;
    const long long row = (long long)n_heads * d;
    for (int t = threadIdx.x; t < hidden * chunks; t += ATTN_THREADS) {
        const int i = t / chunks, c = t % chunks;
        cp_async_weight16(w + c * hidden + i, cols + i * row + 8 * c);
    }
    cp_async_commit();
    __shared__ float4 values[ATTN_MAX_D / 4];
    const bool has_share = attention_unit(q, k_cache, v_cache, pos_p, attn_out, partial, counters, n_heads, n_kv, d, max_seq, min_chunk, 1, head,
                                          split, cluster, cluster, GridWait{}, AttnProj{reinterpret_cast<float*>(values)});
    cp_async_wait<0>();
    if (!has_share) return;  // only past max_seq, which the host never replays this launch at
    __syncthreads();         // w and values complete
    const int lane = threadIdx.x & 31;
    for (int i0 = 0; i0 < hidden; i0 += ATTN_THREADS) {  // uniform: every lane shuffles
        const int i = i0 + threadIdx.x;
        float y = 0.f;
        if (i < hidden)
            for (int c = 0; c < chunks; c++) fma8(y, w[c * hidden + i], values[2 * c], values[2 * c + 1]);
        const float y1 = __shfl_down_sync(0xffffffffu, y, 1), y2 = __shfl_down_sync(0xffffffffu, y, 2), y3 = __shfl_down_sync(0xffffffffu, y, 3);
        if ((lane & 3) == 0 && i < hidden) red_add_f32x4(out + i, make_float4(y, y1, y2, y3));
    }
}
