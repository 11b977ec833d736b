// RMSNorm over rows of `hidden`, in f32: y = x * (rsqrt(mean(x^2) + eps) * w).
// Launch: one block of 256 threads per row (prefill runs it before a GEMM whose input norm was
// folded in). Bytes: 4*hidden*rows*2 + 2*hidden.

#pragma once
#include "common.cuh"

#define RMS_THREADS 256

extern "C" __global__ void __launch_bounds__(RMS_THREADS)
rms_norm(const float* __restrict__ x, const bf16* __restrict__ w, float* __restrict__ out, int hidden, float eps) {
    DECODE_KERNEL_BEGIN();
    grid_dep_wait();
    const float* row = x + (long long)blockIdx.x * hidden;
    float* dst = out + (long long)blockIdx.x * hidden;
    float ss = 0.f;
    for (int i = threadIdx.x; i < hidden; i += RMS_THREADS) ss += row[i] * row[i];
    const float inv = 1.0f / sqrtf(block_sum(ss) / (float)hidden + eps);
    for (int i = threadIdx.x; i < hidden; i += RMS_THREADS) dst[i] = row[i] * (inv * bf16_to_f32(w[i]));
}
