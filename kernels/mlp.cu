// A layer's whole MLP in one kernel, for graph decode with bf16 weights:
//   out = x + down(silu(gate(n)) * up(n)), n = RMSNorm(x),
// which the plan states as gate_up_silu (norm folded in) then linear_residual (down). Two
// kernels ran it before: down's 384 blocks started wherever gate/up's blocks left first (four or
// five to an SM on 97-117 of the 132 SMs, none on the rest) and streamed at 2.2 TB/s, 12.3 us a
// layer for 6.6 us of bytes (README, "Where a graph decode step's time goes"). Here every SM
// streams the same share of both matrices with no boundary between them.
// Launch: grid min(SMs, F / MLP_UNIT) (in the short-context graph a few SMs fewer, left to the
// next kernels: launch.rs, SHORT_CONTEXT_MLP_SPARE_SMS), one block of MLP_THREADS an SM (launch
// bounds: at most 128 registers a thread, so a block holds its SM's registers). The blocks own U / G consecutive
// units of MLP_UNIT FFN channels each (U = F / MLP_UNIT, G blocks), the first U % G blocks one
// more: blocks start in index order as the previous kernel's leave their SMs, and the last to
// start owned a unit more and left last (H200, Qwen2.5-1.5B after 1,024 tokens: 1.235 against
// 1.270 ms/token; README, "Block order and the norm first"). A block's work:
//  1. gate/up: the channels' rows of W_gu [2F, K] (a warp task a channel, gemv.cu's gemv_tasks
//     with x staged and normalized in shared memory) -> act (shared memory);
//  2. down: each of W_down's K rows [K, F] holds the block's channels as contiguous 16-byte
//     chunks (a chunk a unit); 8 lanes take a row's chunks (a lane every 8th), dot them with act
//     and sum by shuffles -> the block's part of out (shared memory), its first batch of down
//     loads requested before act is complete (weights never wait for activations);
//  3. the part is added to out with vector reductions (red.global.add.v4.f32).
// out starts as x (ResidualCounters below: each block asks whether x is copied before its down
// phase and waits after it only if the answer was no; a block streams ~20 us).
// The blocks' parts are added in the order they arrive: out may differ from run to run in the
// last bits of f32 (the CPU executor's sums are one fixed order; the tests compare within
// tolerance).
// Shared memory (dynamic): x and the norm weight as gemv.cu stages them (K * 6 bytes), act
// (4 * MLP_UNIT * ceil(U / G) bytes), the part of out (K * 4 bytes).
// Bytes: W_gu and W_down once (2F * K * 2 + K * F * 2), x per block (L2), out's reductions
// (G * K * 4, L2). Requires K % 8 == 0 (gemv.cu), F % MLP_UNIT == 0 and at most MLP_MAX_SLOTS
// * 8 units a block (launch.rs checks both and otherwise launches the two kernels).

#pragma once
#include "common.cuh"
#include "gemv.cu"

#define MLP_WARPS 16
#define MLP_THREADS (32 * MLP_WARPS)
// FFN channels dealt to a block at a time: one 16-byte chunk of a bf16 down row.
#define MLP_UNIT 8
// A down lane's chunks of a row: units u, u + 8, ... of its block (so up to 8 * MLP_MAX_SLOTS
// units a block).
#define MLP_MAX_SLOTS 3
// A residual sum out = x + the parts of a launch's `blocks` blocks, added into out in L2 in the
// order the blocks arrive. out starts as x: the first block to
// arrive after the grid wait copies it and counts it copied, and the others add only once it is
// (they ask, and wait only if the answer was no: the copy is a few hundred nanoseconds, a
// block's work before adding far longer), so no block waits on one that has not started. The
// counters, in the scratch the host zeroes once, only grow: every launch adds `blocks`
// arrivals, so launch n's blocks draw tickets [n blocks, (n + 1) blocks) (`epoch` n) and the
// block with ticket n blocks copies x; no block re-arms them, so none waits for the others to
// leave. 64 bits: 2^32 arrivals would be a million tokens of a 28-layer model.
struct ResidualCounters {
    unsigned long long arrivals;  // blocks past the grid wait
    unsigned long long copied;    // launches whose x is in out (launch n's copying block makes it n + 1)
};
// A block's ticket, in shared memory.
struct ResidualTicket {
    unsigned long long epoch;
    bool copies;
};

// Every thread of the block, after the grid wait: draws the ticket and copies x (k floats, k % 4
// == 0) into out if it is the first.
__device__ __forceinline__ void residual_arrive(ResidualCounters* counters, unsigned blocks, const float* x, float* out, int k, int threads,
                                                ResidualTicket& ticket) {
    if (threadIdx.x == 0) {
        const unsigned long long t = atomicAdd(&counters->arrivals, 1ull);
        ticket.epoch = t / blocks;
        ticket.copies = t % blocks == 0;
    }
    __syncthreads();
    if (!ticket.copies) return;
    for (int i = threadIdx.x; i < k / 4; i += threads) reinterpret_cast<float4*>(out)[i] = GridWait::load(reinterpret_cast<const float4*>(x) + i);
    __syncthreads();
    if (threadIdx.x == 0) add_release(&counters->copied, 1ull);
}
// Thread 0: whether out holds x yet (relaxed: no later load waits for it).
__device__ __forceinline__ bool residual_copied(ResidualCounters* counters, const ResidualTicket& ticket) {
    return ticket.copies || load_relaxed(&counters->copied) > ticket.epoch;
}
// Every thread: returns once out holds x (`known`: thread 0's residual_copied said so).
__device__ __forceinline__ void residual_wait_copied(ResidualCounters* counters, const ResidualTicket& ticket, bool known) {
    if (threadIdx.x == 0 && !known)
        for (unsigned long long polls = 0, seen; (seen = load_relaxed(&counters->copied)) <= ticket.epoch;) spin_poll(polls, "residual copied", seen, ticket.epoch + 1);
    __syncthreads();
}

__device__ __forceinline__ void red_add_f32x4(float* p, float4 v) {
#if __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w) : "memory");
#else
    atomicAdd(p, v.x), atomicAdd(p + 1, v.y), atomicAdd(p + 2, v.z), atomicAdd(p + 3, v.w);
#endif
}

// Phase 2 for S chunks a lane of each row (S = ceil(units / 8)): rows 4 (warp + MLP_WARPS i) +
// lane / 8, GEMV_BATCH / S rows' chunks in flight a lane. The first batch is requested before the
// barrier that completes act.
template <int S>
__device__ __forceinline__ void mlp_down(const bf16* __restrict__ w_down, const float* act, float* part, int first, int units, int f, int k) {
    constexpr int RB = GEMV_BATCH / S;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, rr = lane >> 3, q8 = lane & 7;
    uint4 w[RB][S];
    auto row_of = [&](int i) { return 4 * (warp + MLP_WARPS * i) + rr; };
    auto load = [&](int i0) {
#pragma unroll
        for (int b = 0; b < RB; b++) {
            const int row = row_of(i0 + b);
#pragma unroll
            for (int s = 0; s < S; s++) {
                const int u = q8 + 8 * s;
                if (row < k && u < units) w[b][s] = ld_weight16(w_down + (long long)row * f + first + MLP_UNIT * u);
            }
        }
    };
    load(0);
    __syncthreads();  // act complete
    const float4* act4 = reinterpret_cast<const float4*>(act);
    float4 a[S][2];
#pragma unroll
    for (int s = 0; s < S; s++) {
        const int u = min(q8 + 8 * s, units - 1);
        a[s][0] = act4[2 * u], a[s][1] = act4[2 * u + 1];
    }
    for (int i0 = 0; 4 * (warp + MLP_WARPS * i0) < k; i0 += RB) {  // warp-uniform: every lane shuffles
        float sum[RB];
#pragma unroll
        for (int b = 0; b < RB; b++) {
            sum[b] = 0.f;
#pragma unroll
            for (int s = 0; s < S; s++)
                if (q8 + 8 * s < units) fma8(sum[b], w[b][s], a[s][0], a[s][1]);
        }
        if (4 * (warp + MLP_WARPS * (i0 + RB)) < k) load(i0 + RB);
#pragma unroll
        for (int b = 0; b < RB; b++) {
            float v = sum[b];
            v += __shfl_xor_sync(0xffffffffu, v, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            v += __shfl_xor_sync(0xffffffffu, v, 4);
            const int row = row_of(i0 + b);
            if (q8 == 0 && row < k) part[row] = v;
        }
    }
}

extern "C" __global__ void __launch_bounds__(MLP_THREADS, 1)
mlp(const float* x, const bf16* w_gate_up, const bf16* norm_w, float eps, const bf16* w_down, float* out, int f, int k, ResidualCounters* counters) {
    DECODE_KERNEL_BEGIN();
    __shared__ ResidualTicket ticket;
    const int all_units = f / MLP_UNIT;
    const int base = all_units / gridDim.x, extra = all_units % gridDim.x, b = blockIdx.x;
    const int u0 = b * base + min(b, extra), u1 = u0 + base + (b < extra);  // the first `extra` blocks own one more
    const int first = u0 * MLP_UNIT, units = u1 - u0, channels = units * MLP_UNIT;
    float* act = reinterpret_cast<float*>(gemv_x) + (norm_w ? 6 : 4) * k / 4;
    float* part = act + MLP_UNIT * ((all_units + gridDim.x - 1) / gridDim.x);
    auto arrive = [&]() { residual_arrive(counters, gridDim.x, x, out, k, MLP_THREADS, ticket); };
    gemv_tasks<2, 1, GEMV_BATCH, MLP_THREADS>(
        Bf16Weights{w_gate_up}, threadIdx.x >> 5, MLP_WARPS, channels, k, x, norm_w, eps,
        [&](int t, long long (&rows)[2]) {
            rows[0] = first + t;
            rows[1] = f + first + t;
        },
        [&](int t, const float (&acc)[2]) {
            if ((threadIdx.x & 31) != 0) return;
            const float g = acc[0];
            act[t] = g / (1.0f + expf(-g)) * acc[1];
        },
        WaitThen<GridWait, decltype(arrive)>{GridWait{}, arrive});
    trace_mark(0);
    // Whether out holds x yet, asked now and used after down.
    const bool copied = threadIdx.x == 0 && residual_copied(counters, ticket);
    switch ((units + 7) / 8) {
        case 1: mlp_down<1>(w_down, act, part, first, units, f, k); break;
        case 2: mlp_down<2>(w_down, act, part, first, units, f, k); break;
        default: mlp_down<MLP_MAX_SLOTS>(w_down, act, part, first, units, f, k); break;
    }
    __syncthreads();
    trace_mark(1);
    residual_wait_copied(counters, ticket, copied);
    for (int i = threadIdx.x; i < k / 4; i += MLP_THREADS) red_add_f32x4(out + 4 * i, reinterpret_cast<const float4*>(part)[i]);
}
