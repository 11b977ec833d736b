// On-device greedy sampling: next = argmax(logits), the first maximum winning as torch.argmax
// does; any non-finite logit poisons the result to -1, which the host reports as an error.
// Launch: SAMPLE_BLOCKS blocks of SAMPLE_THREADS; each block reduces a strided share of the
// vocabulary to (value, index) in `partial`, and the last block reduces those.
// Bytes: vocab * 4 of logits + 8 per block.

#define SAMPLE_THREADS 256

struct Best {
    float value;
    int index;  // -1: a non-finite logit was seen
};

__device__ __forceinline__ Best better(Best a, Best b) {
    if (a.index < 0 || b.index < 0) return Best{0.f, -1};
    return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__device__ __forceinline__ Best block_best(Best b) {
    __shared__ Best warp_best[SAMPLE_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        Best other{__shfl_xor_sync(0xffffffffu, b.value, o), __shfl_xor_sync(0xffffffffu, b.index, o)};
        b = better(b, other);
    }
    if (lane == 0) warp_best[warp] = b;
    __syncthreads();
    b = warp_best[0];
    for (int w = 1; w < SAMPLE_THREADS / 32; w++) b = better(b, warp_best[w]);
    return b;
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS)
sample_greedy(const float* __restrict__ logits, int vocab, int* __restrict__ next_token,
              float* __restrict__ partial_value, int* __restrict__ partial_index, unsigned* __restrict__ counter) {
    grid_dep_launch();
    grid_dep_wait();
    Best b{-INFINITY, 0x7fffffff};
    for (int i = blockIdx.x * SAMPLE_THREADS + threadIdx.x; i < vocab; i += gridDim.x * SAMPLE_THREADS) {
        const float v = logits[i];
        b = isfinite(v) ? better(b, Best{v, i}) : Best{0.f, -1};
    }
    b = block_best(b);
    if (threadIdx.x == 0) {
        partial_value[blockIdx.x] = b.value;
        partial_index[blockIdx.x] = b.index;
    }
    if (!is_last_block(counter, gridDim.x)) return;
    __syncthreads();  // block_best's shared slots are reused below
    Best total{-INFINITY, 0x7fffffff};
    for (int i = threadIdx.x; i < gridDim.x; i += SAMPLE_THREADS)
        total = better(total, Best{__ldcg(partial_value + i), __ldcg(partial_index + i)});
    total = block_best(total);
    if (threadIdx.x == 0) {
        *next_token = total.index;
        *counter = 0;
    }
}
