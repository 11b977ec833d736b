// The parts prefill's GEMMs share (prefill_gemm_wgmma.cu on sm_90, prefill_gemm_bf16.cu
// elsewhere): out[t, r] = epilogue(x[t] . W[r]) for the `rows` tokens of a prompt chunk, bf16
// weights (a block-format weight is rounded to bf16 first, dequantize.cu), f32 x split into
// bf16 hi + lo (PG_SPLIT_X), f32 accumulation. Epilogues (pg_finish, from an f32 tile in
// shared memory, stored coalesced):
//   PG_LINEAR:  out f32 [rows, N] = acc + (bias[r] + residual[t, r])  (bias/residual may be null)
//   PG_GATE_UP: W is [2F, K] (gate rows first), n = F; a block's first BN/2 B rows are gate
//               rows j0.., the rest the matching up rows F + j0..; out f32 [rows, F] = silu(g) * u
// Also here: the mma.sync wrapper, the hi/lo split of x.

#pragma once
#include "common.cuh"

#define PG_LINEAR 0
#define PG_GATE_UP 1

// #16 asks for prefill's precision to be decided by measurement: with -DPG_SPLIT_X=0 (through
// LLMC_EXPERIMENT_DEFINES at plan compile) x is rounded to bf16 and its lo products are left
// out, half the tensor-core work.
#ifndef PG_SPLIT_X
#define PG_SPLIT_X 1
#endif

extern __shared__ __align__(16) unsigned char pg_smem[];

__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned ld_u32(const bf16* p) { return *reinterpret_cast<const unsigned*>(p); }

// Two f32 as packed bf16 pairs hi = bf16(x) and lo = bf16(x - hi): x = hi + lo to 2^-16 of itself.
__device__ __forceinline__ void split_bf16x2(float first, float second, unsigned& hi, unsigned& lo) {
    hi = pack_bf16x2(first, second);
    lo = pack_bf16x2(first - lo_f32(hi), second - hi_f32(hi));
}

// The weight row of tile row r (0..BN) for the block's columns (column tile tile_n), and whether
// it exists: for PG_GATE_UP the first BN / 2 tile rows are gate rows j0.., the rest the up rows
// n + j0...
template <int BN>
__device__ __forceinline__ int pg_weight_row(int tile_n, int r, int n, bool gate_up, bool& ok) {
    if (gate_up) {
        const int j = tile_n * (BN / 2) + (r % (BN / 2));
        ok = j < n;
        return r < BN / 2 ? j : n + j;
    }
    const int wr = tile_n * BN + r;
    ok = wr < n;
    return wr;
}

// An m16n8 f32 accumulator fragment (mma.sync's C layout; wgmma's, per warp and n8 block) into
// the C tile [..][CLD]: this lane's elements at row r (its lane / 4) and r + 8, columns c, c + 1.
template <int CLD>
__device__ __forceinline__ void pg_store_fragment(float* C, int r, int c, const float (&acc)[4]) {
    C[r * CLD + c] = acc[0];
    C[r * CLD + c + 1] = acc[1];
    C[(r + 8) * CLD + c] = acc[2];
    C[(r + 8) * CLD + c + 1] = acc[3];
}

// The end of a GEMM block (rows m0.., column tile tile_n), given its f32 accumulator tile
// C [BM][CLD] in shared memory (after a barrier). Split K (SPLIT_K, the _split_k kernels, for prompts too short to give every SM a
// tile; a separate instantiation so that the usual launch keeps its constant K range and
// registers): block z has multiplied K tiles [z * per, (z + 1) * per) and stores its tile in
// `partial` (tile-major, split-minor, BM x BN floats each); the last split of a tile to finish
// (its counter, re-armed after) sums the tile's partials in split order, so the result does not
// depend on timing, and runs the epilogue (PG_LINEAR or PG_GATE_UP, above).
template <bool SPLIT_K, int BM, int BN, int CLD, int THREADS>
__device__ __forceinline__ void pg_finish(float* C, const bf16* __restrict__ bias, const float* __restrict__ residual,
                                          float* __restrict__ out, int mode, int rows, int n, int m0, int tile_n, float* __restrict__ partial,
                                          unsigned* __restrict__ counters) {
    const int tid = threadIdx.x;
    if constexpr (SPLIT_K) {
        // float4s, the splits' loads unrolled: the last block's sum is many loads deep
        constexpr int QUADS = BM * BN / 4;
        static_assert(BN % 4 == 0, "a float4 stays in one row");
        const int tile = blockIdx.y * gridDim.x + blockIdx.x, splits = gridDim.z;
        float4* tiles_at = reinterpret_cast<float4*>(partial) + (long long)tile * splits * QUADS;
        for (int q = tid; q < QUADS; q += THREADS) {
            const float* c = C + (4 * q / BN) * CLD + 4 * q % BN;
            tiles_at[blockIdx.z * QUADS + q] = make_float4(c[0], c[1], c[2], c[3]);
        }
        if (!is_last_block(counters + tile, splits)) return;
        for (int q = tid; q < QUADS; q += THREADS) {
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
            for (int z = 0; z < splits; z++) {
                const float4 p = __ldcg(tiles_at + z * QUADS + q);
                v.x += p.x, v.y += p.y, v.z += p.z, v.w += p.w;
            }
            float* c = C + (4 * q / BN) * CLD + 4 * q % BN;
            c[0] = v.x, c[1] = v.y, c[2] = v.z, c[3] = v.w;
        }
        __syncthreads();
        if (tid == 0) counters[tile] = 0;
    }
    if (mode == PG_GATE_UP) {
        constexpr int HALF = BN / 2;
        for (int e = tid; e < BM * HALF; e += THREADS) {
            const int r = e / HALF, c = e % HALF, t = m0 + r, j = tile_n * HALF + c;
            if (t >= rows || j >= n) continue;
            const float gv = C[r * CLD + c], u = C[r * CLD + HALF + c];
            out[(long long)t * n + j] = gv / (1.0f + expf(-gv)) * u;
        }
        return;
    }
    for (int e = tid; e < BM * BN; e += THREADS) {
        const int r = e / BN, c = e % BN, t = m0 + r, col = tile_n * BN + c;
        if (t >= rows || col >= n) continue;
        const long long o = (long long)t * n + col;
        out[o] = C[r * CLD + c] + ((bias ? bf16_to_f32(bias[col]) : 0.f) + (residual ? residual[o] : 0.f));
    }
}
