// Embedding: out[H] = table[token] (bf16 widened to f32; the `_q` twins read a block-format
// table, each element as quant.cu's `value` computes it, and take its Q_FMT_* id last), for the decode step's token
// (`embedding`, launch: 1 block of 256 threads) or the `rows` tokens of a prompt chunk
// (`prefill_embedding`, launch: one block of 256 threads per token, out f32 [rows, H]).
// Bytes: 2H read + 4H written per token. A token outside the vocabulary writes zeros (the host
// refuses such a token before it gets here; the device only feeds back sampled, in-range ids).

#pragma once
#include "common.cuh"
#include "quant.cu"

extern "C" __global__ void embedding(const bf16* __restrict__ table, const int* __restrict__ token,
                                     float* __restrict__ out, int hidden, int vocab) {
    DECODE_KERNEL_BEGIN();
    grid_dep_wait();
    const int id = *token;
    const bool valid = id >= 0 && id < vocab;
    const bf16* row = table + (long long)(valid ? id : 0) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] = valid ? bf16_to_f32(row[i]) : 0.f;
}

// out[t] = table[tokens[t]] for the prompt chunk's rows.
extern "C" __global__ void prefill_embedding(const bf16* __restrict__ table, const int* __restrict__ tokens,
                                             float* __restrict__ out, int hidden, int vocab) {
    const int id = tokens[blockIdx.x];
    const bool valid = id >= 0 && id < vocab;
    const bf16* row = table + (long long)(valid ? id : 0) * hidden;
    float* dst = out + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = valid ? bf16_to_f32(row[i]) : 0.f;
}

// A block-format table's row `id` into out (zeros for an id outside the vocabulary), a unit of
// 32 elements a thread (quant.cu's `unit_values`).
template <class F>
__device__ __forceinline__ void embed_row_q(const unsigned char* table, int id, int vocab, int hidden, float* out) {
    const bool valid = id >= 0 && id < vocab;
    const long long blocks = (long long)vocab * (hidden / F::BLOCK), first = (long long)(valid ? id : 0) * (hidden / F::BLOCK);
    for (int g = threadIdx.x; g < hidden / Q_UNIT; g += blockDim.x) {
        const int b = g / F::UNITS, u = g % F::UNITS;
        const typename F::Raw raw = F::load(table, blocks, first + b, u);
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float v[Q_RUN];
            unit_values<F>(raw, u, r, v);
            float* dst = out + b * F::BLOCK + F::run_start(u, r);
#pragma unroll
            for (int j = 0; j < Q_RUN; j++) dst[j] = valid ? v[j] : 0.f;
        }
    }
}

extern "C" __global__ void embedding_q(const unsigned char* __restrict__ table, const int* __restrict__ token,
                                       float* __restrict__ out, int hidden, int vocab, int fmt) {
    DECODE_KERNEL_BEGIN();
    grid_dep_wait();
    const int id = *token;
    Q_DISPATCH(fmt, embed_row_q<F>(table, id, vocab, hidden, out))
}

extern "C" __global__ void prefill_embedding_q(const unsigned char* __restrict__ table, const int* __restrict__ tokens,
                                               float* __restrict__ out, int hidden, int vocab, int fmt) {
    const int id = tokens[blockIdx.x];
    Q_DISPATCH(fmt, embed_row_q<F>(table, id, vocab, hidden, out + (long long)blockIdx.x * hidden))
}
