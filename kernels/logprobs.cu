// Log-probabilities for the API's `logprobs`: the chosen token's and the k most likely tokens'
// (at most LOGPROB_MAX_TOP, most likely first, ties to the lower id) under the last step's raw
// logits (softmax at temperature 1, whatever the sampler does), as exec::logprobs computes them on
// the host: the normalizer summed in f64 from the maximum.
// Launch: one block of LOGPROB_THREADS, outside the decode graph and only for requests that ask.
// out: [token's logprob, then (id as int bits, logprob) per top token].
// Bytes: the logits (vocab * 4) read k + 2 times, from L2 after the first.

#pragma once
#include "common.cuh"

#define LOGPROB_THREADS 1024
#define LOGPROB_MAX_TOP 5

// Whether (l, i) ranks above (best_l, best_i): larger logit, then lower id.
__device__ __forceinline__ bool ranks_above(float l, int i, float best_l, int best_i) {
    return l > best_l || (l == best_l && i < best_i);
}

extern "C" __global__ void __launch_bounds__(LOGPROB_THREADS)
top_logprobs(const float* __restrict__ logits, int vocab, int token, int k, float* __restrict__ out) {
    __shared__ float best_l[LOGPROB_THREADS];
    __shared__ int best_i[LOGPROB_THREADS];
    __shared__ double total[LOGPROB_THREADS];
    const int tid = threadIdx.x;
    // The maximum, then the normalizer from it.
    float mx = -INFINITY;
    for (int i = tid; i < vocab; i += LOGPROB_THREADS) mx = fmaxf(mx, logits[i]);
    best_l[tid] = mx;
    __syncthreads();
    for (int o = LOGPROB_THREADS / 2; o > 0; o >>= 1) {
        if (tid < o) best_l[tid] = fmaxf(best_l[tid], best_l[tid + o]);
        __syncthreads();
    }
    mx = best_l[0];
    double sum = 0.0;
    for (int i = tid; i < vocab; i += LOGPROB_THREADS) sum += exp((double)(logits[i] - mx));
    total[tid] = sum;
    __syncthreads();
    for (int o = LOGPROB_THREADS / 2; o > 0; o >>= 1) {
        if (tid < o) total[tid] += total[tid + o];
        __syncthreads();
    }
    const double log_total = (double)mx + log(total[0]);
    if (tid == 0) out[0] = (float)((double)logits[token] - log_total);
    // The top k, one block-wide arg-max per rank below the previous rank's pick.
    float prev_l = INFINITY;
    int prev_i = -1;
    for (int r = 0; r < k; r++) {
        float bl = -INFINITY;
        int bi = vocab;
        for (int i = tid; i < vocab; i += LOGPROB_THREADS) {
            const float l = logits[i];
            if (ranks_above(prev_l, prev_i, l, i) && ranks_above(l, i, bl, bi)) bl = l, bi = i;
        }
        __syncthreads();  // the previous rank's reduction is fully read
        best_l[tid] = bl;
        best_i[tid] = bi;
        __syncthreads();
        for (int o = LOGPROB_THREADS / 2; o > 0; o >>= 1) {
            if (tid < o && ranks_above(best_l[tid + o], best_i[tid + o], best_l[tid], best_i[tid])) {
                best_l[tid] = best_l[tid + o];
                best_i[tid] = best_i[tid + o];
            }
            __syncthreads();
        }
        prev_l = best_l[0];
        prev_i = best_i[0];
        if (tid == 0) {
            out[1 + 2 * r] = __int_as_float(prev_i);
            out[2 + 2 * r] = (float)((double)prev_l - log_total);
        }
    }
}
