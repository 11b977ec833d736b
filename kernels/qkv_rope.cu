// Fused (optional input RMSNorm, norm_w non-null) Q/K/V projection + bias + optional per-head
// q/k RMSNorm + RoPE + KV-cache write, on the GEMV machinery of gemv.cu.
// Launch: as gemv.cu, over (n_heads + 2*n_kv) * d/2 tasks, the bf16 kernel in blocks of QKV_WARPS
// (below). Task t is the RoPE pair (i, i + d/2) of head t / (d/2), so the warp that computes both
// rows rotates them and stores q, or the K/V cache row at `pos`, at once: no block waits for
// another. With q/k norm, a head's scale needs all its rows: q/k tasks park their pair (f32) in
// `scratch`, and the last warp to finish each head (a counter per head) normalizes and rotates the
// whole head.
// With `residual` non-null (the short-context graph, where attention_proj.cu follows), the grid
// also copies x there, each block a part as it leaves (x is then in its L1, staged through it):
// the next kernel's output projection adds into a residual that already holds x, with no
// handshake between its blocks.
// Bytes: rows*K*2 of weights + the outputs, f32 (+ rows*4*2 of scratch with q/k norm; + K*4*2
// of the residual copy).
// `prefill_rope` (at the end) is the same epilogue for a prompt chunk, after prefill_gemm.cu's
// GEMM has projected its rows. Depends on gemv.cu's task loops (compiled before this file).

#pragma once
#include "common.cuh"
#include "gemv.cu"

// Normalizes (norm_w non-null) and rotates by the angle whose sine and cosine are (s, c) the
// pair (a, b) at (i, i + half) into dst.
__device__ __forceinline__ void rope_store_rotated(float a, float b, int i, int half, float inv, const bf16* norm_w, float s,
                                                   float c, float* dst) {
    if (norm_w) {
        a *= inv * bf16_to_f32(norm_w[i]);
        b *= inv * bf16_to_f32(norm_w[i + half]);
    }
    dst[i] = a * c - b * s;
    dst[i + half] = b * c + a * s;
}

// The same, rotated by `pos`.
__device__ __forceinline__ void rope_store(float a, float b, int i, int half, float inv, const bf16* norm_w,
                                           const float* inv_freq, int pos, float* dst) {
    float s, c;
    sincosf((float)pos * inv_freq[i], &s, &c);
    rope_store_rotated(a, b, i, half, inv, norm_w, s, c, dst);
}

// The block's part of x (k floats, k % 4 == 0) copied into residual, if it is non-null: after the
// wait, and after the block staged x, so the loads hit L1.
__device__ __forceinline__ void copy_residual_part(const float* x, float* residual, int k) {
    if (!residual) return;
    const int n = k / 4, part = (n + gridDim.x - 1) / gridDim.x, end = min(n, (int)(blockIdx.x + 1) * part);
    for (int i = blockIdx.x * part + threadIdx.x; i < end; i += blockDim.x)
        reinterpret_cast<float4*>(residual)[i] = GridWait::load(reinterpret_cast<const float4*>(x) + i);
}

// The whole head (d values of y) normalized and rotated into dst by one warp.
__device__ __forceinline__ void rope_store_head(const float* y, int d, float eps, const bf16* norm_w,
                                                const float* inv_freq, int pos, float* dst) {
    const int lane = threadIdx.x & 31, half = d / 2;
    float ss = 0.f;
    for (int j = lane; j < d; j += 32) {
        const float v = __ldcg(y + j);
        ss += v * v;
    }
    const float inv = 1.0f / sqrtf(warp_sum(ss) / (float)d + eps);
    for (int j = lane; j < half; j += 32) rope_store(__ldcg(y + j), __ldcg(y + j + half), j, half, inv, norm_w, inv_freq, pos, dst);
}

// A warp-wide "last one done" handshake over `arrivals` warps: the warp drawing the last ticket
// sees every earlier warp's writes; it re-arms the counter for the next graph replay.
__device__ __forceinline__ bool is_last_warp(unsigned* counter, unsigned arrivals) {
    unsigned ticket = 0;
    if ((threadIdx.x & 31) == 0) {
        __threadfence();
        ticket = atomicAdd(counter, 1u);
    }
    const bool last = __shfl_sync(0xffffffffu, ticket, 0) == arrivals - 1;
    if (last) __threadfence();
    return last;
}

template <int TASKS, int BATCH, int THREADS, class W, class Wait>
__device__ __forceinline__ void qkv_rope_tasks(int t, int stride, int end, const float* x, W w, const bf16* bias,
                                               const bf16* q_norm, const bf16* k_norm, float eps, const float* inv_freq,
                                               const int* pos_p, float* q_out, float* k_cache, float* v_cache, float* scratch,
                                               unsigned* counter, int n_heads, int n_kv, int d, int k, int max_seq,
                                               const bf16* norm_w, float norm_eps, Wait wait) {
    const int half = d / 2;
    // A bf16 warp's first task's position, bias and rotation, before the wait (the position is
    // stable for the step, bias and inv_freq are weights): their loads and the sine and cosine
    // come off the path that follows the dot products.
    const int first = t;
    const bool ahead = FirstTasksAhead<W>::value && t < end;
    int pos_ahead = -1;
    float bias_a = 0.f, bias_b = 0.f, sin_ahead = 0.f, cos_ahead = 1.f;
    if (ahead) {
        pos_ahead = *pos_p;
        const int i = t % half, r = t / half * d + i;
        if (bias) bias_a = bf16_to_f32(bias[r]), bias_b = bf16_to_f32(bias[r + half]);
        sincosf((float)pos_ahead * inv_freq[i], &sin_ahead, &cos_ahead);
    }
    gemv_tasks<2, TASKS, BATCH, THREADS>(
        w, t, stride, end, k, x, norm_w, norm_eps,
        [&](int t, long long (&rows)[2]) {
            const long long r = (long long)(t / half) * d + t % half;
            rows[0] = r;
            rows[1] = r + half;
        },
        [&](int t, const float (&acc)[2]) {
            const bool first_task = ahead && t == first;
            const int pos = first_task ? pos_ahead : *pos_p;
            if (pos < 0 || pos >= max_seq) return;  // every warp returns: the counters stay armed
            const int head = t / half, i = t % half, r = head * d + i, lane = threadIdx.x & 31;
            const float a = acc[0] + (first_task ? bias_a : bias ? bf16_to_f32(bias[r]) : 0.f);
            const float b = acc[1] + (first_task ? bias_b : bias ? bf16_to_f32(bias[r + half]) : 0.f);
            float* dst;
            const bf16* head_norm;
            if (head < n_heads) {
                dst = q_out + head * d;
                head_norm = q_norm;
            } else if (head < n_heads + n_kv) {
                dst = k_cache + ((long long)pos * n_kv + (head - n_heads)) * d;
                head_norm = k_norm;
            } else {
                if (lane == 0) {
                    float* v = v_cache + ((long long)pos * n_kv + (head - n_heads - n_kv)) * d;
                    v[i] = a;
                    v[i + half] = b;
                }
                return;
            }
            if (!head_norm) {
                if (lane == 0) {
                    if (first_task) rope_store_rotated(a, b, i, half, 1.f, nullptr, sin_ahead, cos_ahead, dst);
                    else rope_store(a, b, i, half, 1.f, nullptr, inv_freq, pos, dst);
                }
                return;
            }
            if (lane == 0) {
                scratch[r] = a;
                scratch[r + half] = b;
            }
            if (!is_last_warp(counter + head, half)) return;
            const float* y = scratch + head * d;
            rope_store_head(y, d, eps, head_norm, inv_freq, pos, dst);
            if (lane == 0) counter[head] = 0;
        },
        wait);
}

// The bf16 kernel's blocks: QKV_WARPS warps, at most QKV_BLOCKS_PER_SM an SM (launch bounds: 128
// registers a thread), a task a warp while they fit (launch.rs, qkv_rope_shape): half as many
// blocks stage x as with GEMV_WARPS, four an SM, which took 1.105 ms/token where these take
// 1.093-1.096 (H200, Qwen2.5-1.5B after 32 tokens; 1.216 against 1.204 after 1,024;
// bench/results/2026-12-03-h200-qkv8-landing.log). Blocks that hold an SM each (more warps, or more
// registers) spread the dot products over twice the SMs (3.5 against 5.7 us a layer) but keep
// attention_proj's blocks off those SMs until they leave, so W_o is copied after the wait, not
// before: 1.15-1.19 ms/token (-wide-gemv.log, -qkv8-carveout.log).
#define QKV_WARPS 8
#define QKV_BLOCKS_PER_SM 2

extern "C" __global__ void __launch_bounds__(32 * QKV_WARPS, QKV_BLOCKS_PER_SM)
qkv_rope(const float* x, const bf16* w, const bf16* bias, const bf16* q_norm, const bf16* k_norm, float eps,
         const float* inv_freq, const int* pos_p, float* q_out, float* k_cache, float* v_cache, float* scratch,
         unsigned* counter, int n_heads, int n_kv, int d, int k, int max_seq, const bf16* norm_w, float norm_eps, float* residual) {
    DECODE_KERNEL_BEGIN();
    qkv_rope_tasks<1, GEMV_BATCH, 32 * QKV_WARPS>(blockIdx.x * QKV_WARPS + (threadIdx.x >> 5), gridDim.x * QKV_WARPS, (n_heads + 2 * n_kv) * (d / 2), x, Bf16Weights{w}, bias, q_norm, k_norm, eps,
                   inv_freq, pos_p, q_out, k_cache, v_cache, scratch, counter, n_heads, n_kv, d, k, max_seq, norm_w,
                   norm_eps, GridWait{});
    copy_residual_part(x, residual, k);
}

extern "C" __global__ void __launch_bounds__(32 * GEMV_Q_MAX_WARPS, 1)
qkv_rope_q(const float* x, const unsigned char* w, const bf16* bias, const bf16* q_norm, const bf16* k_norm, float eps,
           const float* inv_freq, const int* pos_p, float* q_out, float* k_cache, float* v_cache, float* scratch,
           unsigned* counter, int n_heads, int n_kv, int d, int k, int max_seq, const bf16* norm_w, float norm_eps, float* residual,
           int fmt) {
    DECODE_KERNEL_BEGIN();
    const int rows = (n_heads + 2 * n_kv) * d;
    Q_DISPATCH(fmt, qkv_rope_tasks<1, GEMV_BATCH, GEMV_THREADS>(blockIdx.x, gridDim.x, rows / 2, x,
                                                            QWeights<F>{w, (long long)rows * (k / F::BLOCK)}, bias, q_norm, k_norm, eps,
                                                            inv_freq, pos_p, q_out, k_cache, v_cache, scratch, counter, n_heads, n_kv,
                                                            d, k, max_seq, norm_w, norm_eps, GridWait{}))
    copy_residual_part(x, residual, k);
}

// Prefill's Q/K/V epilogue per (row t, head) of the GEMM's output y f32 [rows, heads*d] (bias
// added): optional per-head RMSNorm, RoPE at start + t, then q row t (f32) or the K/V cache row
// at start + t. Launch: grid (rows, n_heads + 2*n_kv), 128 threads; `rope_store` rotates.
extern "C" __global__ void __launch_bounds__(128)
prefill_rope(const float* __restrict__ y, const bf16* __restrict__ q_norm, const bf16* __restrict__ k_norm, float eps,
             const float* __restrict__ inv_freq, int start, float* __restrict__ q_out, float* __restrict__ k_cache,
             float* __restrict__ v_cache, int n_heads, int n_kv, int d) {
    const int t = blockIdx.x, head = blockIdx.y, heads = n_heads + 2 * n_kv, pos = start + t;
    const float* src = y + ((long long)t * heads + head) * d;
    const int half = d / 2;
    float* dst;
    const bf16* norm_w;
    if (head < n_heads) {
        dst = q_out + ((long long)t * n_heads + head) * d;
        norm_w = q_norm;
    } else if (head < n_heads + n_kv) {
        dst = k_cache + ((long long)pos * n_kv + (head - n_heads)) * d;
        norm_w = k_norm;
    } else {
        dst = v_cache + ((long long)pos * n_kv + (head - n_heads - n_kv)) * d;
        for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = src[i];
        return;
    }
    float inv = 1.f;
    if (norm_w) {
        float ss = 0.f;
        for (int i = threadIdx.x; i < d; i += blockDim.x) ss += src[i] * src[i];
        inv = 1.0f / sqrtf(block_sum(ss) / (float)d + eps);
    }
    for (int i = threadIdx.x; i < half; i += blockDim.x) rope_store(src[i], src[i + half], i, half, inv, norm_w, inv_freq, pos, dst);
}
