// Batch-1 GEMV family: y[r] = epilogue(x . W[r]) for W bf16 [N, K] row-major, x f32 [K]; each
// kernel has a `_q` twin for W in a block format (quant.cu), which takes the format's id last
// and differs as its `gemv_tasks` overload says (groups of warps per task, x scaled and summed
// per run in shared memory: K*4 + K/4 bytes, K*6 + K/4 with a norm).
// Launch: blocks of GEMV_THREADS (GEMV_WARPS warps), grid from the host (launch.rs: one task per
// warp, capped at a few blocks per SM, warps then stride over the tasks; the persistent decode
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
#define GEMV_BATCH 16  // 16-byte loads in flight per lane
// Rows a warp of a `_q` kernel streams at once (a 2-row task counts twice): block-format rows
// are short (K = 1536 at 4.5 bits is 864 bytes), so one row leaves too few bytes in flight.
#define GEMV_Q_TASKS 2
#define GEMV_Q_PAIRS ((GEMV_Q_TASKS + 1) / 2)  // tasks of two rows (gate/up, RoPE pairs)
#define GEMV_Q_UNROLL 2                         // units per lane and row in flight
#define GEMV_Q_PASS (32 * GEMV_Q_UNROLL)        // units a warp's pass covers
// Resident `_q` blocks per SM (launch bounds, and the host's grid cap): more, with fewer
// registers, ran slower (H200, q4_k ms/token: 4 blocks 1.62, 5 (96 registers) 1.99, 6 (80, one
// unit per pass) 1.97, 8 (64) 2.10), as did a second buffer of loads in flight (2.10).
#define GEMV_Q_MIN_BLOCKS 4

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

// The norm weight into shared memory behind x (before the wait: it is a weight). THREADS is the
// block size, a constant so that each thread's loads are unrolled and in flight together.
template <int THREADS>
__device__ __forceinline__ void stage_norm_weight(const bf16* __restrict__ norm_w, int k) {
    if (!norm_w) return;
    const int chunks = k >> 3;
    for (int c = threadIdx.x; c < chunks; c += THREADS) gemv_x[2 * chunks + c] = __ldg(reinterpret_cast<const uint4*>(norm_w) + c);
}

// Where a `_q` kernel keeps the sums of x per run of Q_RUN elements (floats from gemv_x): behind
// x and the norm weight.
__device__ __forceinline__ int q_sums_offset(int k, const bf16* norm_w) { return k + (norm_w ? k / 2 : 0); }

// x into gemv_x (every thread of the block calls it, after the wait: x is an earlier kernel's
// or instruction's output, read with Wait::load), RMS-normalized when norm_w is non-null (its
// weight staged already). QUANT (the `_q` kernels, quant.cu): then each run's sum of x into
// the sums behind, and x times Q_X_SCALE.
template <int THREADS, class Wait, bool QUANT = false>
__device__ __forceinline__ void stage_x(const float* __restrict__ x, const bf16* __restrict__ norm_w, float eps, int k) {
    const int quads = k >> 2;
    const float4* xv = reinterpret_cast<const float4*>(x);
    float4* xs = gemv_x_f32();
    float ss = 0.f;
    for (int c = threadIdx.x; c < quads; c += THREADS) {
        const float4 v = Wait::load(xv + c);
        xs[c] = v;
        ss += sumsq4(v);
    }
    if (norm_w) {
        const float inv = 1.0f / sqrtf(block_sum(ss) / (float)k + eps);  // block_sum syncs: the weight is staged
        const unsigned* w = reinterpret_cast<const unsigned*>(gemv_x + 2 * (k >> 3));
        for (int c = threadIdx.x; c < quads; c += THREADS) {
            float4 v = xs[c];
            const unsigned w01 = w[2 * c], w23 = w[2 * c + 1];
            v.x *= inv * lo_f32(w01);
            v.y *= inv * hi_f32(w01);
            v.z *= inv * lo_f32(w23);
            v.w *= inv * hi_f32(w23);
            xs[c] = v;
        }
    }
    __syncthreads();
    if (!QUANT) return;
    float* sums = reinterpret_cast<float*>(gemv_x) + q_sums_offset(k, norm_w);
    for (int s = threadIdx.x; s < k / Q_RUN; s += THREADS) {
        float4* run = xs + s * (Q_RUN / 4);
        float total = 0.f;
#pragma unroll
        for (int j = 0; j < Q_RUN / 4; j++) {
            float4 v = run[j];
            total += (v.x + v.y) + (v.z + v.w);
            v.x *= Q_X_SCALE;
            v.y *= Q_X_SCALE;
            v.z *= Q_X_SCALE;
            v.w *= Q_X_SCALE;
            run[j] = v;
        }
        sums[s] = total;
    }
    __syncthreads();
}

// A matrix of block format F (quant.cu): `blocks` of the whole matrix (where its scales start).
template <class F>
struct QWeights {
    const unsigned char* w;
    long long blocks;
};

// Warps of a block that split one `_q` task group's rows along K: as many (1, 2, 4, ... up to
// GEMV_WARPS) as each get a whole pass of GEMV_Q_PASS units, so a long row (K = 8960: 280
// units) is streamed by several warps and a short one (K = 1536: 48) by one. The host sizes the
// grid with the same rule (launch.rs, `q_split`).
__device__ __forceinline__ int q_split(int k) {
    const int passes = k / Q_UNIT / GEMV_Q_PASS;
    int split = 1;
    while (2 * split <= GEMV_WARPS && 2 * split <= passes) split *= 2;
    return split;
}
// A `_q` kernel's first task group and stride (the groups of split warps each).
__device__ __forceinline__ int q_first_task(int k) { return blockIdx.x * (GEMV_WARPS / q_split(k)) + (threadIdx.x >> 5) / q_split(k); }
__device__ __forceinline__ int q_task_stride(int k) { return gridDim.x * (GEMV_WARPS / q_split(k)); }

// gemv_tasks over a block-format matrix (quant.cu's units of 32 elements). A group of q_split(k)
// warps takes TASKS tasks at once (t, t + stride, ...); lane l of part p of the group streams
// units u = l + 32 (v + GEMV_Q_UNROLL (p + split n)) of every one of their rows, each such u
// unit l % UNITS of its block (UNITS divides 32). A pass first loads GEMV_Q_UNROLL units of each
// of the TASKS * ROWS rows (rows past the last task re-read the first task's, their sums
// dropped), then computes them run by run, each run's x read once for all the rows; the next
// pass's loads (the next task's first, before the reduction) are issued as soon as the current
// ones are consumed, and the first before the wait (weights never change). The parts' sums meet in shared memory
// (double-buffered, one named barrier per group and task) and part 0 runs the epilogue.
template <int ROWS, int TASKS, int BATCH, int THREADS, class F, class RowsOf, class Epilogue, class Wait>
__device__ __forceinline__ void gemv_tasks(QWeights<F> m, int t, int stride, int tasks, int k, const float* x, const bf16* norm_w,
                                           float eps, RowsOf rows_of, Epilogue epilogue, Wait wait) {
    constexpr int R = ROWS * TASKS, U = GEMV_Q_UNROLL;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, split = q_split(k), part = warp % split;
    const int units = k / Q_UNIT, unit = lane % F::UNITS;
    const int u_first = lane + GEMV_Q_PASS * part, u_step = GEMV_Q_PASS * split;
    long long first[R];  // each row's first block
    typename F::Raw raw[U][R];
    auto name_rows = [&](int t) {
#pragma unroll
        for (int j = 0; j < TASKS; j++) {
            long long r[ROWS];
            rows_of(t + j * stride < tasks ? t + j * stride : t, r);
#pragma unroll
            for (int i = 0; i < ROWS; i++) first[j * ROWS + i] = r[i] * (k / F::BLOCK);
        }
    };
    auto load = [&](int u0) {
#pragma unroll
        for (int v = 0; v < U; v++) {
            const int b = min(u0 + 32 * v, units - 1) / F::UNITS;
#pragma unroll
            for (int i = 0; i < R; i++) raw[v][i] = F::load(m.w, m.blocks, first[i] + b, unit);
        }
    };
    if (t < tasks) {
        name_rows(t);
        load(u_first);
    }
    stage_norm_weight<THREADS>(norm_w, k);
    wait();
    stage_x<THREADS, Wait, true>(x, norm_w, eps, k);
    const float* xs = reinterpret_cast<const float*>(gemv_x);
    const float* sums = xs + q_sums_offset(k, norm_w);
    __shared__ float partial[2][GEMV_WARPS][R];
    int parity = 0;
    for (; t < tasks; t += TASKS * stride) {
        float acc[R];
#pragma unroll
        for (int i = 0; i < R; i++) acc[i] = 0.f;
        for (int u0 = u_first;;) {
#pragma unroll
            for (int v = 0; v < U; v++) {
                const int u = u0 + 32 * v;
                if (u < units) {
                    const int b = u / F::UNITS;
#pragma unroll
                    for (int r = 0; r < 2; r++) {
                        const QRunX xr = run_x<F>(unit, r, xs + b * F::BLOCK, sums + b * (F::BLOCK / Q_RUN));
#pragma unroll
                        for (int i = 0; i < R; i++) acc[i] += run_dot<F>(raw[v][i], unit, r, xr);
                    }
                }
            }
            u0 += u_step;
            if (u0 >= units) break;
            load(u0);
        }
        if (t + TASKS * stride < tasks) {
            name_rows(t + TASKS * stride);
            load(u_first);
        }
#pragma unroll
        for (int i = 0; i < R; i++) acc[i] = warp_sum(acc[i]);
        if (split > 1) {
            if (lane == 0) {
#pragma unroll
                for (int i = 0; i < R; i++) partial[parity][warp][i] = acc[i];
            }
            asm volatile("bar.sync %0, %1;" ::"r"(1 + warp / split), "r"(32 * split) : "memory");
#pragma unroll
            for (int i = 0; i < R; i++) {
                float s = 0.f;
                for (int p = 0; p < split; p++) s += partial[parity][warp - part + p][i];
                acc[i] = s;
            }
            parity ^= 1;
            if (part != 0) continue;
        }
#pragma unroll
        for (int j = 0; j < TASKS; j++)
            if (t + j * stride < tasks) epilogue(t + j * stride, *reinterpret_cast<const float(*)[ROWS]>(acc + j * ROWS));
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
            w[i][b] = (!NULLABLE || rows[i]) && c < chunks ? __ldg(reinterpret_cast<const uint4*>(rows[i]) + c) : make_uint4(0, 0, 0, 0);
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
    if (t < tasks) {
        name_rows(t);
        load_batch<R, BATCH, (TASKS > 1)>(rows, 0, chunks, w);
    }
    stage_norm_weight<THREADS>(norm_w, k);
    wait();
    stage_x<THREADS, Wait>(x, norm_w, eps, k);
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
        for (int i = 0; i < R; i++) acc[i] = warp_sum(acc[i]);
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
template <int TASKS, int BATCH, int THREADS, class W, class Wait>
__device__ __forceinline__ void linear_tasks(int t, int stride, int end, const float* x, W w, const bf16* bias,
                                             const float* residual, float* out, int k, Wait wait) {
    gemv_tasks<1, TASKS, BATCH, THREADS>(
        w, t, stride, end, k, x, nullptr, 0.f, [&](int t, long long (&rows)[1]) { rows[0] = t; },
        [&](int t, const float (&acc)[1]) {
            if ((threadIdx.x & 31) != 0) return;
            const float extra = (bias ? bf16_to_f32(bias[t]) : 0.f) + (residual ? Wait::load(residual + t) : 0.f);
            out[t] = acc[0] + extra;
        },
        wait);
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
linear(const float* x, const bf16* w, const bf16* bias, const float* residual, float* out, int n, int k) {
    grid_dep_launch();
    linear_tasks<1, GEMV_BATCH, GEMV_THREADS>(grid_first_task(), grid_task_stride(), n, x, Bf16Weights{w}, bias, residual, out, k, GridWait{});
}

// The `_q` kernels: the same over a block-format matrix; `fmt` is its Q_FMT_* id. A warp takes
// GEMV_Q_TASKS rows at once (the host sizes the grid so).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_Q_MIN_BLOCKS)
linear_q(const float* x, const unsigned char* w, const bf16* bias, const float* residual, float* out, int n, int k, int fmt) {
    grid_dep_launch();
    Q_DISPATCH(fmt, linear_tasks<GEMV_Q_TASKS, GEMV_BATCH, GEMV_THREADS>(q_first_task(k), q_task_stride(k), n, x, QWeights<F>{w, (long long)n * (k / F::BLOCK)},
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

extern "C" __global__ void __launch_bounds__(GEMV_THREADS)
lm_head(const float* x, const bf16* w, const bf16* norm_w, float eps, float* out, int n, int k) {
    grid_dep_launch();
    lm_head_tasks<1, GEMV_BATCH, GEMV_THREADS>(grid_first_task(), grid_task_stride(), n, x, Bf16Weights{w}, norm_w, eps, out, k, GridWait{});
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_Q_MIN_BLOCKS)
lm_head_q(const float* x, const unsigned char* w, const bf16* norm_w, float eps, float* out, int n, int k, int fmt) {
    grid_dep_launch();
    Q_DISPATCH(fmt, lm_head_tasks<GEMV_Q_TASKS, GEMV_BATCH, GEMV_THREADS>(q_first_task(k), q_task_stride(k), n, x, QWeights<F>{w, (long long)n * (k / F::BLOCK)},
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
    grid_dep_launch();
    gate_up_silu_tasks<1, GEMV_BATCH, GEMV_THREADS>(grid_first_task(), grid_task_stride(), f, x, Bf16Weights{w}, norm_w, eps, out, f, k, GridWait{});
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS, GEMV_Q_MIN_BLOCKS)
gate_up_silu_q(const float* x, const unsigned char* w, const bf16* norm_w, float eps, float* out, int f, int k, int fmt) {
    grid_dep_launch();
    Q_DISPATCH(fmt, gate_up_silu_tasks<GEMV_Q_PAIRS, GEMV_BATCH, GEMV_THREADS>(q_first_task(k), q_task_stride(k), f, x,
                                                                QWeights<F>{w, 2LL * f * (k / F::BLOCK)}, norm_w, eps, out, f, k, GridWait{}))
}
