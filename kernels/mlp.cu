// A layer's whole MLP in one kernel, for graph decode with bf16 weights:
//   out = x + down(silu(gate(n)) * up(n)), n = RMSNorm(x),
// which the plan states as gate_up_silu (norm folded in) then linear_residual (down). Two
// kernels ran it before: down's 384 blocks started wherever gate/up's blocks left first (four or
// five to an SM on 97-117 of the 132 SMs, none on the rest) and streamed at 2.2 TB/s, 12.3 us a
// layer for 6.6 us of bytes (README, "Where a graph decode step's time goes"). Here every SM
// streams the same share of both matrices with no boundary between them.
// Launch: grid min(SMs, F / MLP_UNIT), one block an SM of the warps the host picks (launch
// bounds: MLP_MAX_THREADS, at most 128 registers a thread). Block b owns the FFN channels
// [c0, c1) = [b F / G, (b + 1) F / G) (G blocks: every block's bytes within one channel's of the
// others'):
//  1. gate/up: the channels' rows of W_gu [2F, K] as slots of 32 chunks dealt evenly to the
//     warps (mlp_gate_up), x staged and normalized in shared memory as gemv.cu stages it ->
//     the sums gu (shared memory);
//  2. down: each of W_down's K rows [K, F] holds the block's channels in the 16-byte chunks of
//     units u0 = c0 / 8 .. (c1 - 1) / 8; a segment of as many lanes takes a row's chunks
//     (mlp_down), dots them with act = silu(gate) * up (zero for the channels of a unit's
//     neighbour block, which adds them itself) and sums them by shuffles -> the block's part of out (shared memory), its first
//     batch of down loads requested before act is complete (weights never wait for activations);
//  3. the part is added to out with vector reductions (red.global.add.v4.f32).
// out starts as x: the first block to arrive after the grid wait copies it and sets a flag, and
// the others add only once the flag is set (it was, long before: the copy is a few hundred
// nanoseconds, a block's streaming ~20 us), so no block waits on one that has not started.
// The counter holds arrivals, the flag bit and departures; the last block to leave re-arms it.
// The blocks' parts are added in the order they arrive, and a channel split between two warps
// sums in the order they finish: out may differ from run to run in the last bits of f32 (the
// CPU executor's sums are one fixed order; the tests compare within tolerance). A shared unit's
// neighbour channels count as 0 * w: exact for finite weights (a non-finite one makes its row
// of out non-finite either way).
// Shared memory (dynamic): x and the norm weight as gemv.cu stages them (K * 6 bytes), gu (2 x
// the most channels of a block, each half rounded up to 4 floats), act (MLP_UNIT floats a unit
// of the most a block touches: ceil(most / 8) + 1), the part of out (K * 4 bytes).
// Bytes: W_gu and W_down once (2F * K * 2 + K * F * 2; the 16-byte chunk two neighbours share
// is read by both, an L2 hit for the second), x per block (L2), out's reductions (G * K * 4,
// L2). Requires K % 8 == 0 (gemv.cu), F % MLP_UNIT == 0 and at most MLP_MAX_UNITS units a
// block (launch.rs checks them and otherwise launches the two kernels).

#pragma once
#include "common.cuh"
#include "gemv.cu"

// The most threads a block (launch bounds: at most 128 registers a thread); the host picks the
// warps, 16 by default (launch.rs, `LLMC_MLP_WARPS`).
#define MLP_MAX_THREADS 512
// A gate/up slot's 16-byte chunks: 32 chunks of one channel's gate row and the same of its up
// row (one chunk a lane); MLP_SLOTS slots in flight a lane, GEMV_BATCH loads.
#define MLP_SLOTS (GEMV_BATCH / 2)
// Down's FFN channels a lane reads at once: one 16-byte chunk of a bf16 row.
#define MLP_UNIT 8
// The most units a block's channels touch: a row's chunks are one segment of a warp's lanes.
#define MLP_MAX_UNITS 32
// The counter's flag bit: out holds x.
#define MLP_FLAG (1u << 24)

__device__ __forceinline__ void red_add_f32x4(float* p, float4 v) {
#if __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
#else
    atomicAdd(p, v.x), atomicAdd(p + 1, v.y), atomicAdd(p + 2, v.z), atomicAdd(p + 3, v.w);
#endif
}

// Phase 1: the block's channels [c0, c0 + channels) as slots (channel j's pieces p = 0 .. spr - 1
// of 32 chunks, slot j * spr + p), warp w the slots [w * T / W, (w + 1) * T / W) of T, so every
// warp streams the same bytes to within one slot whatever the channel count. A lane sums its
// chunks of the current channel; when the channel changes (warp-uniform) the warp reduces and
// lane 0 adds the sums into gu[j] (gate) and gu[stride + j] (up): a channel split between two
// warps is summed in shared memory. The first batch is requested before the wait.
template <class Wait>
__device__ __forceinline__ void mlp_gate_up(const bf16* __restrict__ w_gate_up, const bf16* __restrict__ norm_w, float eps, const float* x,
                                            float* gu, int stride, int c0, int channels, int f, int k, Wait wait) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int chunks = k >> 3, spr = (chunks + 31) >> 5, slots = channels * spr;
    const int s0 = warp * slots / warps, s1 = (warp + 1) * slots / warps;
    uint4 wg[MLP_SLOTS], wu[MLP_SLOTS];
    auto load = [&](int s) {
        int j = s / spr, p = s - j * spr;
#pragma unroll
        for (int i = 0; i < MLP_SLOTS; i++) {
            const int c = 32 * p + lane;
            if (s + i < s1 && c < chunks) {
                const bf16* g = w_gate_up + (long long)(c0 + j) * k + 8 * c;
                wg[i] = ld_weight16(g);
                wu[i] = ld_weight16(g + (long long)f * k);
            }
            if (++p == spr) p = 0, j++;
        }
    };
    if (s0 < s1) load(s0);
    stage_norm_weight(norm_w, k, blockDim.x);
    for (int i = threadIdx.x; i < 2 * stride; i += blockDim.x) gu[i] = 0.f;  // stage_x's barrier publishes it
    wait();
    stage_x<Wait>(x, norm_w, eps, k, blockDim.x);
    const float4* xs = gemv_x_f32();
    float g = 0.f, u = 0.f;
    int current = s0 / spr;
    auto flush = [&]() {
        g = warp_sum(g), u = warp_sum(u);
        if (lane == 0) atomicAdd(gu + current, g), atomicAdd(gu + stride + current, u);
        g = 0.f, u = 0.f;
    };
    for (int s = s0; s < s1; s += MLP_SLOTS) {
        int j = s / spr, p = s - j * spr;
#pragma unroll
        for (int i = 0; i < MLP_SLOTS; i++) {
            if (s + i < s1) {  // warp-uniform, as is the channel: every lane shuffles
                if (j != current) flush(), current = j;
                const int c = 32 * p + lane;
                if (c < chunks) {
                    const float4 xa = xs[2 * c], xb = xs[2 * c + 1];
                    fma8(g, wg[i], xa, xb);
                    fma8(u, wu[i], xa, xb);
                }
            }
            if (++p == spr) p = 0, j++;
        }
        if (s + MLP_SLOTS < s1) load(s + MLP_SLOTS);
    }
    if (s0 < s1) flush();
}

// Phase 2: a warp step covers `per` = 32 / units consecutive rows, a segment of `units` lanes
// each (lane g * units + u reads unit u of the step's row g, dots it with act's unit u; lanes
// past per * units idle), so a step's loads are the rows' contiguous chunks and every row's sum
// takes five guarded shuffles within its segment. Warp w takes steps w, w + W, ..., GEMV_BATCH
// of them in flight a lane, the first requested before act is complete; `act_ready` completes it
// (between two block barriers).
template <class ActReady>
__device__ __forceinline__ void mlp_down(const bf16* __restrict__ w_down, const float* act, float* part, int first, int units, int f, int k,
                                         ActReady act_ready) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int per = 32 / units, g = lane / units, u = lane - g * units, steps = (k + per - 1) / per;
    const bool active = g < per;
    uint4 w[GEMV_BATCH];
    auto row_of = [&](int i) { return per * (warp + warps * i) + g; };
    auto load = [&](int i0) {
#pragma unroll
        for (int b = 0; b < GEMV_BATCH; b++) {
            const int row = row_of(i0 + b);
            if (active && row < k) w[b] = ld_weight16(w_down + (long long)row * f + first + MLP_UNIT * u);
        }
    };
    load(0);
    __syncthreads();  // gate/up's sums complete
    act_ready();
    __syncthreads();
    const float4 a0 = reinterpret_cast<const float4*>(act)[2 * u], a1 = reinterpret_cast<const float4*>(act)[2 * u + 1];
    for (int i0 = 0; warp + warps * i0 < steps; i0 += GEMV_BATCH) {  // warp-uniform: every lane shuffles
        float sum[GEMV_BATCH];
#pragma unroll
        for (int b = 0; b < GEMV_BATCH; b++) {
            sum[b] = 0.f;
            if (active && row_of(i0 + b) < k) fma8(sum[b], w[b], a0, a1);
        }
        if (warp + warps * (i0 + GEMV_BATCH) < steps) load(i0 + GEMV_BATCH);
#pragma unroll
        for (int b = 0; b < GEMV_BATCH; b++) {
            float v = sum[b];
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                if (o >= units) break;
                const float t = __shfl_down_sync(0xffffffffu, v, o);
                if (u + o < units) v += t;
            }
            const int row = row_of(i0 + b);
            if (active && u == 0 && row < k) part[row] = v;
        }
    }
}

extern "C" __global__ void __launch_bounds__(MLP_MAX_THREADS, 1)
mlp(const float* x, const bf16* w_gate_up, const bf16* norm_w, float eps, const bf16* w_down, float* out, int f, int k, unsigned* counter) {
    DECODE_KERNEL_BEGIN();
    __shared__ unsigned ticket;
    const int c0 = (int)((long long)blockIdx.x * f / gridDim.x), c1 = (int)((long long)(blockIdx.x + 1) * f / gridDim.x);
    const int u0 = c0 / MLP_UNIT, units = (c1 - 1) / MLP_UNIT - u0 + 1, first = u0 * MLP_UNIT;
    const int most = (f + gridDim.x - 1) / gridDim.x, stride = (most + 3) & ~3;  // a block's most channels; gu's halves 16-byte aligned
    float* gu = reinterpret_cast<float*>(gemv_x) + (norm_w ? 6 : 4) * k / 4;
    float* act = gu + 2 * stride;
    float* part = act + MLP_UNIT * ((most + MLP_UNIT - 1) / MLP_UNIT + 1);
    auto arrive = [&]() {
        if (threadIdx.x == 0) ticket = atomicAdd(counter, 1u);
        __syncthreads();
        if (ticket != 0) return;
        for (int i = threadIdx.x; i < k / 4; i += blockDim.x) reinterpret_cast<float4*>(out)[i] = GridWait::load(reinterpret_cast<const float4*>(x) + i);
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            atomicAdd(counter, MLP_FLAG);
        }
    };
    mlp_gate_up(w_gate_up, norm_w, eps, x, gu, stride, c0, c1 - c0, f, k, WaitThen<GridWait, decltype(arrive)>{GridWait{}, arrive});
    // act over the units' channels, zero outside [c0, c1) (a neighbour's channels of a shared unit)
    auto act_ready = [&]() {
        for (int i = threadIdx.x; i < MLP_UNIT * units; i += blockDim.x) {
            const int j = first + i - c0;
            float v = 0.f;
            if (j >= 0 && j < c1 - c0) {
                const float g = gu[j];
                v = g / (1.0f + expf(-g)) * gu[stride + j];
            }
            act[i] = v;
        }
    };
    mlp_down(w_down, act, part, first, units, f, k, act_ready);
    __syncthreads();
    if (threadIdx.x == 0 && ticket != 0)
        while (!(*(volatile unsigned*)counter & MLP_FLAG)) {
        }
    __syncthreads();
    __threadfence();
    for (int i = threadIdx.x; i < k / 4; i += blockDim.x) red_add_f32x4(out + 4 * i, reinterpret_cast<const float4*>(part)[i]);
    if (threadIdx.x == 0 && atomicAdd(counter, 1u) == MLP_FLAG + 2 * gridDim.x - 1) atomicExch(counter, 0u);
}
