// The read-only roofline `llmc bench` reports beside the copy one: how fast this GPU streams a
// buffer through the loads the GEMVs use for weights (16 bytes a lane, evict-first), with
// nothing written. Block b reads words [b * BW_WORDS_PER_BLOCK, (b + 1) * BW_WORDS_PER_BLOCK),
// each thread BW_LOADS of them, all in flight at once, and folds them into one value that is
// stored only if it is nonzero, which a zeroed buffer never makes it, so no load can be dropped
// and nothing is written. (One pass per thread beat a grid-stride loop, 4,583 vs 4,530 GB/s on
// an H200: bench/probe/read_bandwidth_variants.cu.)
// Launch: words / BW_WORDS_PER_BLOCK blocks of BW_THREADS. Bytes: `words` * 16 read, none written.
// Limits: words a multiple of BW_WORDS_PER_BLOCK.

#pragma once
#include "common.cuh"

#define BW_THREADS 1024
#define BW_LOADS 4
#define BW_WORDS_PER_BLOCK (BW_THREADS * BW_LOADS)

extern "C" __global__ void __launch_bounds__(BW_THREADS) read_probe(const uint4* __restrict__ p, unsigned* __restrict__ sink) {
    const uint4* at = p + (long long)blockIdx.x * BW_WORDS_PER_BLOCK + threadIdx.x;
    uint4 v[BW_LOADS];
#pragma unroll
    for (int u = 0; u < BW_LOADS; u++) v[u] = ld_weight16(at + u * BW_THREADS);
    unsigned acc = 0;
#pragma unroll
    for (int u = 0; u < BW_LOADS; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    if (acc != 0) *sink = acc;
}
