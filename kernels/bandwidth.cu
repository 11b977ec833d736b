// The read-only roofline `llmc bench` reports beside the copy one: how fast this GPU streams a
// buffer through the loads the GEMVs use for weights (16 bytes a lane, evict-first), with
// nothing written. Each thread folds words i, i + stride, ... (BW_LOADS in flight) into one
// value that is stored only if it is nonzero, which a zeroed buffer never makes it, so no load
// can be dropped and nothing is written.
// Launch: BW_BLOCKS_PER_SM blocks of BW_THREADS per SM. Bytes: `words` * 16 read, none written.

#pragma once
#include "common.cuh"

#define BW_THREADS 1024
#define BW_BLOCKS_PER_SM 2
#define BW_LOADS 4

extern "C" __global__ void __launch_bounds__(BW_THREADS)
read_probe(const uint4* __restrict__ p, long long words, unsigned* __restrict__ sink) {
    const long long stride = (long long)gridDim.x * BW_THREADS;
    unsigned acc = 0;
    for (long long i = (long long)blockIdx.x * BW_THREADS + threadIdx.x; i < words; i += BW_LOADS * stride) {
        uint4 v[BW_LOADS];
#pragma unroll
        for (int u = 0; u < BW_LOADS; u++) v[u] = i + u * stride < words ? ld_weight16(p + i + u * stride) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < BW_LOADS; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    if (acc != 0) *sink = acc;
}
