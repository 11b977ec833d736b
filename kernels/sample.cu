// On-device greedy sampling: next = argmax(logits), the first maximum winning as torch.argmax
// does; any non-finite logit poisons the result to -1, which the host reports as an error.
// Launch: SAMPLE_BLOCKS blocks of SAMPLE_THREADS; each block reduces a strided share of the
// vocabulary to (value, index) in `partial`, and the last block reduces those.
// Bytes: vocab * 4 of logits + 8 per block.

#pragma once
#include "common.cuh"

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
    DECODE_KERNEL_BEGIN();
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

// On-device seeded sampling (temperature, top-k, top-p): the function src/exec/sampling.rs
// defines, bit for bit -- the same keys, fixed-point weights, exact u64 masses and integer draw.
// The position of the draw is read from the step's position slot, so every graph replay draws
// for its own position.
// Launch: 1 block of TOP_THREADS (the scans assume exactly 32 warps), TOP_SHARED bytes of
// dynamic shared memory. Passes over the logits (L2-resident after the LM head): the max and
// non-finite check; 3 for top-k (when on); the weights, written to `weights` (vocab u64); 3 for
// top-p (when on); the kept mass of each thread's contiguous range. Then the one thread whose
// range holds the draw walks it.
// Bytes: at most about vocab * 52 read (9 passes of logits, 2 of weights) and vocab * 8 written.

#define TOP_THREADS 1024
#define TOP_WARPS (TOP_THREADS / 32)
#define TOP_FIRST_BITS 8  // the keys are descended 8, 12 and 12 bits at a time
#define TOP_BITS 12
#define TOP_SHARED (TOP_WARPS * (1 << TOP_FIRST_BITS) * 8)  // >= (1 << TOP_BITS) * 8
#define WEIGHT_BITS 40

#define TOP_BATCH 4  // 16-byte loads of logits (and of their weights) in flight per thread

// Calls f(i, logits[i], w_i) over this thread's share of 0..vocab, w_i = weights[i] (1 when
// weights is null), TOP_BATCH 16-byte loads at a time: one block walks the whole vocabulary, so
// the passes are bound by load latency, and a load per element would leave the SM idle.
template <class F>
__device__ __forceinline__ void for_each_logit(const float* __restrict__ logits, const unsigned long long* __restrict__ weights,
                                               int vocab, F f) {
    const int quads = vocab >> 2;
    const float4* l4 = reinterpret_cast<const float4*>(logits);
    const ulonglong2* w2 = reinterpret_cast<const ulonglong2*>(weights);
    for (int q0 = threadIdx.x; q0 < quads; q0 += TOP_THREADS * TOP_BATCH) {
        float4 l[TOP_BATCH];
        ulonglong2 wa[TOP_BATCH], wb[TOP_BATCH];
#pragma unroll
        for (int u = 0; u < TOP_BATCH; u++) {
            const int q = min(q0 + u * TOP_THREADS, quads - 1);
            l[u] = __ldcg(l4 + q);
            if (weights) {
                wa[u] = __ldcg(w2 + 2 * q);
                wb[u] = __ldcg(w2 + 2 * q + 1);
            }
        }
#pragma unroll
        for (int u = 0; u < TOP_BATCH; u++) {
            const int q = q0 + u * TOP_THREADS;
            if (q >= quads) break;
            f(4 * q, l[u].x, weights ? wa[u].x : 1ull);
            f(4 * q + 1, l[u].y, weights ? wa[u].y : 1ull);
            f(4 * q + 2, l[u].z, weights ? wb[u].x : 1ull);
            f(4 * q + 3, l[u].w, weights ? wb[u].y : 1ull);
        }
    }
    for (int i = 4 * quads + threadIdx.x; i < vocab; i += TOP_THREADS) f(i, logits[i], weights ? weights[i] : 1ull);
}

// The histograms as they are summed: u32 halves (shared-memory atomics are native for 32 bits;
// a 64-bit add would be a compare-and-swap loop), the first level's one per warp (every token
// lands there, most of them in the few bins of the common exponents), the later levels' one for
// the block.
extern __shared__ unsigned top_halves[];

// bin += w, exactly, over the bin's low and high u32 halves: the add that wraps the low half
// carries into the high one.
__device__ __forceinline__ void add_u64(unsigned* lo, unsigned* hi, unsigned long long w) {
    const unsigned low = (unsigned)w, old = atomicAdd(lo, low);
    const unsigned high = (unsigned)(w >> 32) + (old + low < old ? 1u : 0u);
    if (high) atomicAdd(hi, high);
}

__device__ __forceinline__ unsigned logit_key(float x) {
    const unsigned u = __float_as_uint(__fadd_rn(x, 0.f));  // -0 and +0 share a key
    return (u >> 31) ? ~u : (u | 0x80000000u);
}

// sampling.rs's `weight`: the intrinsics round every operation on its own (NVRTC would fuse a
// multiply and an add), so the bits are the host's.
__device__ unsigned long long sample_weight(float l, float m, float t) {
    const float x = __fdiv_rn(__fsub_rn(l, m), t);
    if (x < -86.f) return 0;
    const float n = roundf(__fmul_rn(x, 1.442695f));
    const float r = __fsub_rn(__fsub_rn(x, __fmul_rn(n, 6.9314575e-1f)), __fmul_rn(n, 1.4286068e-6f));
    const float c[7] = {1.3888889e-3f, 8.333334e-3f, 4.1666668e-2f, 1.6666667e-1f, 0.5f, 1.f, 1.f};
    float p = 1.984127e-4f;
    for (int i = 0; i < 7; i++) p = __fadd_rn(__fmul_rn(p, r), c[i]);
    return __float2ull_rz(__fmul_rn(p, __int_as_float((127 + WEIGHT_BITS + (int)n) << 23)));
}

// sampling.rs's `random_bits`: splitmix64, 53 bits.
__device__ __forceinline__ unsigned long long random_bits(unsigned long long seed, unsigned long long pos) {
    unsigned long long z = seed ^ (pos * 0x9E3779B97F4A7C15ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) >> 11;
}

// Exclusive prefix sum of `v` in thread order; `total` gets the block's sum.
__device__ unsigned long long block_prefix(unsigned long long v, unsigned long long& total) {
    __shared__ unsigned long long warp_sums[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned long long incl = v;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += n;
    }
    __syncthreads();  // warp_sums may still be read by a previous call
    if (lane == 31) warp_sums[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        unsigned long long s = warp_sums[lane];
        for (int o = 1; o < 32; o <<= 1) {
            const unsigned long long n = __shfl_up_sync(0xffffffffu, s, o);
            if (lane >= o) s += n;
        }
        warp_sums[lane] = s;
    }
    __syncthreads();
    total = warp_sums[31];
    return (warp ? warp_sums[warp - 1] : 0) + incl - v;
}

// sampling.rs's `descend` over the tokens whose keys are >= floor: the largest key K such that
// the tokens with keys >= K weigh at least `want`, each weighing 1 (weights == nullptr) or its
// weight; with weights, want = min(ceil(top_p * total), total). At each level a histogram of the
// tokens matching the digits chosen so far; each thread sums a run of bins from the top, and the
// thread whose run crosses `want` walks it. (The digits' widths do not change the result.)
__device__ unsigned descend(const float* __restrict__ logits, int vocab, unsigned floor,
                            const unsigned long long* __restrict__ weights, unsigned long long want, float top_p) {
    __shared__ unsigned long long bins[1 << TOP_BITS];
    __shared__ unsigned long long above_s;
    __shared__ unsigned prefix_s;
    unsigned prefix = 0;
    unsigned long long above = 0;
    for (int hi = 32, shift = 32 - TOP_FIRST_BITS; shift >= 0; hi = shift, shift -= TOP_BITS) {
        const int n_bins = 1 << (hi - shift), per = max(1, n_bins / TOP_THREADS);
        const int copies = hi == 32 ? TOP_WARPS : 1, halves = copies * n_bins;
        for (int b = threadIdx.x; b < 2 * halves; b += TOP_THREADS) top_halves[b] = 0;
        __syncthreads();
        const int mine_at = copies == 1 ? 0 : (threadIdx.x >> 5) * n_bins;
        for_each_logit(logits, weights, vocab, [&](int, float l, unsigned long long w) {
            const unsigned k = logit_key(l);
            if (k >= floor && ((unsigned long long)(k ^ prefix) >> hi) == 0) {
                const int b = mine_at + ((k >> shift) & (n_bins - 1));
                add_u64(top_halves + b, top_halves + halves + b, w);
            }
        });
        __syncthreads();
        for (int b = threadIdx.x; b < n_bins; b += TOP_THREADS) {
            unsigned long long lo = 0, hi_sum = 0;
            for (int c = 0; c < copies; c++) {
                lo += top_halves[c * n_bins + b];
                hi_sum += top_halves[halves + c * n_bins + b];
            }
            bins[b] = lo + (hi_sum << 32);
        }
        __syncthreads();
        const int top = n_bins - 1 - threadIdx.x * per;  // this thread's bins: top, top - 1, ...
        unsigned long long mine = 0, total;
        for (int j = 0; j < per && top - j >= 0; j++) mine += bins[top - j];
        unsigned long long run = above + block_prefix(mine, total);
        if (weights && hi == 32) {
            const unsigned long long need = (unsigned long long)ceil((double)top_p * (double)total);
            want = need < total ? need : total;
        }
        if (run < want && run + mine >= want) {
            int d = top;
            while (run + bins[d] < want) run += bins[d--];
            prefix_s = prefix | ((unsigned)d << shift);
            above_s = run;
        }
        __syncthreads();
        prefix = prefix_s;
        above = above_s;
    }
    return prefix;
}

extern "C" __global__ void __launch_bounds__(TOP_THREADS)
sample_top(const float* __restrict__ logits, int vocab, const int* __restrict__ position, int* __restrict__ next_token,
           unsigned long long* __restrict__ weights, float temperature, int top_k, float top_p, unsigned long long seed) {
    __shared__ float maxes[32];
    DECODE_KERNEL_BEGIN();
    grid_dep_wait();
    float m = -INFINITY;
    int bad = 0;
    for_each_logit(logits, nullptr, vocab, [&](int, float v, unsigned long long) {
        bad |= !isfinite(v);
        m = fmaxf(m, v);
    });
    if (__syncthreads_or(bad)) {
        if (threadIdx.x == 0) *next_token = -1;
        return;
    }
    m = warp_max(m);
    if ((threadIdx.x & 31) == 0) maxes[threadIdx.x >> 5] = m;
    __syncthreads();
    m = warp_max(maxes[threadIdx.x & 31]);

    // The smallest key kept: the k-th largest logit's, then top-p's threshold.
    unsigned floor = 0;
    if (top_k > 0 && top_k < vocab) floor = descend(logits, vocab, 0, nullptr, top_k, top_p);
    for_each_logit(logits, nullptr, vocab, [&](int i, float l, unsigned long long) {
        weights[i] = logit_key(l) >= floor ? sample_weight(l, m, temperature) : 0;
    });
    __syncthreads();  // the weights are read by other threads below
    if (top_p < 1.f) floor = descend(logits, vocab, floor, weights, 0, top_p);

    // The draw: r = floor(u * S), then the first kept token, in index order, at which the
    // running mass exceeds r. Each warp takes a contiguous range, its lanes 32 consecutive
    // tokens at a time (coalesced); the warp whose range holds the draw walks it.
    const int lane = threadIdx.x & 31, span = (vocab + TOP_WARPS - 1) / TOP_WARPS;
    const int begin = min(vocab, (int)(threadIdx.x >> 5) * span), end = min(vocab, begin + span);
    auto kept = [&](int i) -> unsigned long long {
        return i < end && logit_key(__ldcg(logits + i)) >= floor ? __ldcg(weights + i) : 0ull;
    };
    unsigned long long mine = 0, total;
#pragma unroll 4
    for (int i = begin + lane; i < end; i += 32) mine += kept(i);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mine += __shfl_xor_sync(0xffffffffu, mine, o);
    unsigned long long run = __shfl_sync(0xffffffffu, block_prefix(lane == 0 ? mine : 0, total), 0);
    const unsigned long long r = __umul64hi(random_bits(seed, (unsigned long long)*position) << 11, total);
    if (run <= r && r < run + mine) {
        for (int i0 = begin; i0 < end; i0 += 32) {
            const unsigned long long w = kept(i0 + lane);
            unsigned long long incl = w;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += n;
            }
            const unsigned crossed = __ballot_sync(0xffffffffu, run + incl > r);
            if (crossed) {
                if (lane == __ffs(crossed) - 1) *next_token = i0 + lane;
                break;
            }
            run += __shfl_sync(0xffffffffu, incl, 31);
        }
    }
}
