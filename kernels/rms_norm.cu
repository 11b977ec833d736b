// RMSNorm over rows of `hidden`: y = bf16(x * (rsqrt(mean(x^2) + eps) * w)), f32 math.
// Launch: one block of 256 threads per row. Bytes: 2*hidden*(rows*2 + 1).
extern "C" __global__ void rms_norm(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                    bf16* __restrict__ out, int hidden, float eps) {
    const bf16* row = x + (long long)blockIdx.x * hidden;
    bf16* dst = out + (long long)blockIdx.x * hidden;
    float ss = 0.f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        const float v = bf16_to_f32(row[i]);
        ss += v * v;
    }
    const float inv = 1.0f / sqrtf(block_sum(ss) / (float)hidden + eps);
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        dst[i] = f32_to_bf16(bf16_to_f32(row[i]) * (inv * bf16_to_f32(w[i])));
}
