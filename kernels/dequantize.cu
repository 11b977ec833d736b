// A block-format matrix rounded to bf16 for prefill: out bf16 [rows, K] = bf16_rn(w), each w
// as quant.cu's `unit_values` computes it (ggml's f32 value, bit for bit), then rounded to
// nearest even: the values `llmc compile --weights bf16` stores. A prompt's GEMMs multiply these
// with the bf16 kernels (prefill_gemm_wgmma.cu, prefill_gemm_bf16.cu), so a block-format plan
// prefills as fast as a bf16 one and with its precision, while decode's GEMVs read the blocks
// exactly (src/exec/cuda/prefill.rs reuses one scratch matrix for every GEMM in turn).
// Launch: grid ceil(rows * K / Q_UNIT / DQ_THREADS) blocks of DQ_THREADS threads, a thread one
// unit (32 elements: two runs of 16, each stored as two 16-byte words); fmt a Q_FMT_* id.
// Bytes: the matrix's blocks read once, rows * K * 2 written.
// Limits: whole blocks a row (the plan is built so).

#pragma once
#include "common.cuh"
#include "quant.cu"

#define DQ_THREADS 256

template <class F>
__device__ __forceinline__ void dequantize_unit(const unsigned char* __restrict__ w, long long blocks, long long unit, bf16* __restrict__ out) {
    const long long b = unit / F::UNITS;
    const int u = (int)(unit % F::UNITS);
    const typename F::Raw raw = F::load(w, blocks, b, u);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float v[Q_RUN];
        unit_values<F>(raw, u, r, v);
        unsigned packed[Q_RUN / 2];
#pragma unroll
        for (int j = 0; j < Q_RUN; j += 2) packed[j / 2] = pack_bf16x2(v[j], v[j + 1]);
        uint4* dst = reinterpret_cast<uint4*>(out + b * F::BLOCK + F::run_start(u, r));
        dst[0] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
        dst[1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
    }
}

extern "C" __global__ void __launch_bounds__(DQ_THREADS)
    dequantize_bf16(const unsigned char* __restrict__ w, bf16* __restrict__ out, long long elements, int fmt) {
    const long long unit = (long long)blockIdx.x * DQ_THREADS + threadIdx.x;
    if (unit >= elements / Q_UNIT) return;
    Q_DISPATCH(fmt, dequantize_unit<F>(w, elements / F::BLOCK, unit, out))
}
