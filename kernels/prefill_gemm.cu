// Prefill GEMM for block-format weights: out[t, r] = epilogue(x[t] . W[r]) for the `rows` tokens
// of a prompt chunk at once, on bf16 tensor cores (mma.sync m16n8k16, f32 accumulation). x f32
// [rows, K], W in a Q_FMT_* block format [N, K] (both K-contiguous, so A is "row" and B is "col"
// for the mma). x keeps f32 precision: each A fragment is split into hi = bf16(x) and
// lo = bf16(x - hi), and both are multiplied (x = hi + lo to 2^-16 relative), so a prefilled row
// matches the decode GEMV's f32 x. The block's threads dequantize each weight tile from the blocks
// (quant.cu's `unit_values`, two runs of 16 a thread, their loads requested a tile ahead) into bf16
// hi + lo tiles in shared memory, and both are multiplied, so W keeps 16 bits of its f32 value.
// Block tile PG_BM tokens x PG_BN weight rows, K in steps of PG_BK, x through a cp.async double
// buffer, PG_SHARED bytes of dynamic shared memory; 4 warps of 32x32 each. Out-of-range rows and
// K tails are zero-filled. Epilogues (pg_finish, shared with prefill_gemm_bf16.cu; via an f32 tile
// in shared memory, stored coalesced):
//   PG_LINEAR:  out f32 [rows, N] = acc + (bias[r] + residual[t, r])  (bias/residual may be null)
//   PG_GATE_UP: W is [2F, K] (gate rows first), n = F; the block's first BN/2 B rows are gate
//               rows j0.., the rest the matching up rows F + j0..; out f32 [rows, F] = silu(g) * u
// Launch: grid (ceil(N / PG_BN) or ceil(F / (PG_BN / 2)), ceil(rows / PG_BM), splits of K),
// PG_THREADS threads, PG_SHARED bytes of dynamic shared memory (src/exec/cuda/prefill.rs).
// Bytes: the matrix's blocks once per PG_BM rows of x, + rows*K*4 of x per PG_BN columns (L2).
// Limits (host-checked): K % 8 == 0 (16-byte cp.async rows); any rows and N.
// bf16 weights: prefill_gemm_bf16.cu.

#pragma once
#include "common.cuh"
#include "quant.cu"

#define PG_BM 64
#define PG_BN 64
#define PG_BK 64
#define PG_LDA (PG_BK + 8)  // padded rows (f32 A, bf16 B): fragment loads are bank-conflict free
#define PG_LDB (PG_BK + 8)
#define PG_THREADS 128
#define PG_LINEAR 0
#define PG_GATE_UP 1
#define PG_CLD (PG_BN + 1)
#define PG_A_BYTES (2 * PG_BM * PG_LDA * 4)
#define PG_SHARED (PG_A_BYTES + 4 * PG_BN * PG_LDB * 2)  // x, W hi, W lo; > the C tile, PG_BM * PG_CLD * 4

// #16 asks for prefill's precision to be decided by measurement: with -DPG_SPLIT_X=0 (through
// LLMC_EXPERIMENT_DEFINES at plan compile) x is rounded to bf16 and its lo products are left
// out, half the tensor-core work.
#ifndef PG_SPLIT_X
#define PG_SPLIT_X 1
#endif

extern __shared__ __align__(16) unsigned char pg_smem[];

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned ld_u32(const bf16* p) { return *reinterpret_cast<const unsigned*>(p); }

// Two f32 rounded to a packed bf16 pair (first in the low half) in one instruction (sm_80+).
__device__ __forceinline__ unsigned pack_bf16x2(float first, float second) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(second), "f"(first));
    return r;
}

// Two f32 as packed bf16 pairs hi = bf16(x) and lo = bf16(x - hi): x = hi + lo to 2^-16 of itself.
__device__ __forceinline__ void split_bf16x2(float first, float second, unsigned& hi, unsigned& lo) {
    hi = pack_bf16x2(first, second);
    lo = pack_bf16x2(first - lo_f32(hi), second - hi_f32(hi));
}

// Two consecutive f32 of A, split.
__device__ __forceinline__ void split_pair(const float* p, unsigned& hi, unsigned& lo) {
    const float2 v = *reinterpret_cast<const float2*>(p);
    split_bf16x2(v.x, v.y, hi, lo);
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

// A block-format weight F: thread t dequantizes runs 2 (t % 2), 2 (t % 2) + 1 (16 elements each)
// of tile row t / 2 into hi and lo (B_lo follows B in shared memory; hi(x) . w_lo joins the
// products, lo(x) . w_lo is below f32's resolution). fetch(kt) requests the runs' loads, put()
// dequantizes what it fetched.
template <class F>
struct QuantTiles {
    static constexpr int RUNS = PG_BN * PG_BK / Q_RUN / PG_THREADS;
    static_assert(PG_THREADS % PG_BN == 0 && RUNS * Q_RUN * (PG_THREADS / PG_BN) == PG_BK, "a thread's runs are one row's");
    const unsigned char* w;
    long long blocks;  // of the whole matrix (where Q8_0's, Q4_0's and Q6_K's scales start)
    typename F::Raw raw[RUNS];
    int unit[RUNS], run[RUNS];
    bool ok[RUNS];
    __device__ __forceinline__ void fetch(int kt, int n, int k, bool gate_up) {
        const int r = threadIdx.x / (PG_THREADS / PG_BN);
        bool row_ok;
        const long long wr = pg_weight_row<PG_BN>(blockIdx.x, r, n, gate_up, row_ok);
#pragma unroll
        for (int i = 0; i < RUNS; i++) {
            const int e = kt * PG_BK + Q_RUN * (RUNS * (threadIdx.x % (PG_THREADS / PG_BN)) + i);
            ok[i] = row_ok && e < k;
            F::run_unit(e % F::BLOCK, unit[i], run[i]);
            if (ok[i]) raw[i] = F::load(w, blocks, wr * (k / F::BLOCK) + e / F::BLOCK, unit[i]);
        }
    }
    __device__ __forceinline__ void put(bf16* B, bf16* Bl) const {
        const int r = threadIdx.x / (PG_THREADS / PG_BN);
#pragma unroll
        for (int i = 0; i < RUNS; i++) {
            unsigned h[Q_RUN / 2], l[Q_RUN / 2];
            float v[Q_RUN];
            if (ok[i]) unit_values<F>(raw[i], unit[i], run[i], v);
#pragma unroll
            for (int e = 0; e < Q_RUN; e += 2) {
                h[e / 2] = l[e / 2] = 0u;
                if (ok[i]) split_bf16x2(v[e], v[e + 1], h[e / 2], l[e / 2]);
            }
            const int at = r * PG_LDB + Q_RUN * (RUNS * (threadIdx.x % (PG_THREADS / PG_BN)) + i);
            uint4* hi = reinterpret_cast<uint4*>(B + at);
            uint4* lo = reinterpret_cast<uint4*>(Bl + at);
            hi[0] = make_uint4(h[0], h[1], h[2], h[3]);
            hi[1] = make_uint4(h[4], h[5], h[6], h[7]);
            lo[0] = make_uint4(l[0], l[1], l[2], l[3]);
            lo[1] = make_uint4(l[4], l[5], l[6], l[7]);
        }
    }
};

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

template <bool SPLIT_K, class F>
__device__ __forceinline__ void prefill_gemm_body(const float* __restrict__ x, QuantTiles<F> tiles, const bf16* __restrict__ bias,
                                                  const float* __restrict__ residual, float* __restrict__ out, int mode,
                                                  int rows, int n, int k, float* __restrict__ partial, unsigned* __restrict__ counters) {
    float* As = reinterpret_cast<float*>(pg_smem);             // [2][PG_BM][PG_LDA]
    bf16* Bs = reinterpret_cast<bf16*>(pg_smem + PG_A_BYTES);  // [2][PG_BN][PG_LDB] W hi
    bf16* Bls = Bs + 2 * PG_BN * PG_LDB;                       // [2][PG_BN][PG_LDB] W lo
    const int m0 = blockIdx.y * PG_BM;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    const int g = lane >> 2, tg = lane & 3;
    const int ktiles = (k + PG_BK - 1) / PG_BK, splits = SPLIT_K ? gridDim.z : 1, per = (ktiles + splits - 1) / splits;
    const int kt0 = SPLIT_K ? blockIdx.z * per : 0, kt_end = SPLIT_K ? min(ktiles, kt0 + per) : ktiles;
    const bool gate_up = mode == PG_GATE_UP;

    auto load = [&](int stage, int kt) {
        const int k0 = kt * PG_BK;
        for (int c = tid; c < PG_BM * PG_BK / 4; c += PG_THREADS) {
            const int r = c / (PG_BK / 4), kc = (c % (PG_BK / 4)) * 4;
            const int t = m0 + r, kk = k0 + kc;
            const bool ok = t < rows && kk < k;
            cp_async16(As + (stage * PG_BM + r) * PG_LDA + kc, x + (ok ? (long long)t * k + kk : 0), ok);
        }
        cp_async_commit();
    };

    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    // No split is empty (the host's split_k), so every block has a first tile.
    load(0, kt0);
    tiles.fetch(kt0, n, k, gate_up);
    tiles.put(Bs, Bls);
    for (int kt = kt0; kt < kt_end; kt++) {
        const int stage = (kt - kt0) & 1;
        if (kt + 1 < kt_end) {
            load(stage ^ 1, kt + 1);
            tiles.fetch(kt + 1, n, k, gate_up);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const float* A = As + stage * PG_BM * PG_LDA;
        const bf16* B = Bs + stage * PG_BN * PG_LDB;
        const bf16* Bl = Bls + stage * PG_BN * PG_LDB;
#pragma unroll
        for (int ks = 0; ks < PG_BK; ks += 16) {
            unsigned hi[2][4], lo[2][4], b[4][2], bl[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const float* p = A + (wm + i * 16 + g) * PG_LDA + ks + tg * 2;
                split_pair(p, hi[i][0], lo[i][0]);
                split_pair(p + 8 * PG_LDA, hi[i][1], lo[i][1]);
                split_pair(p + 8, hi[i][2], lo[i][2]);
                split_pair(p + 8 * PG_LDA + 8, hi[i][3], lo[i][3]);
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const bf16* q = B + (wn + j * 8 + g) * PG_LDB + ks + tg * 2;
                const bf16* ql = Bl + (wn + j * 8 + g) * PG_LDB + ks + tg * 2;
                b[j][0] = ld_u32(q);
                b[j][1] = ld_u32(q + 8);
                bl[j][0] = ld_u32(ql);
                bl[j][1] = ld_u32(ql + 8);
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    mma_bf16(acc[i][j], hi[i], b[j][0], b[j][1]);
                    if (PG_SPLIT_X) mma_bf16(acc[i][j], lo[i], b[j][0], b[j][1]);
                    mma_bf16(acc[i][j], hi[i], bl[j][0], bl[j][1]);
                }
        }
        // the next tile's weights into the other stage (its last readers were before the
        // previous barrier), dequantized while the loads of this one's were in flight
        if (kt + 1 < kt_end) tiles.put(Bs + (stage ^ 1) * PG_BN * PG_LDB, Bls + (stage ^ 1) * PG_BN * PG_LDB);
        __syncthreads();
    }

    float* C = reinterpret_cast<float*>(pg_smem);  // [PG_BM][PG_CLD]
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) pg_store_fragment<PG_CLD>(C, wm + i * 16 + g, wn + j * 8 + tg * 2, acc[i][j]);
    __syncthreads();
    pg_finish<SPLIT_K, PG_BM, PG_BN, PG_CLD, PG_THREADS>(C, bias, residual, out, mode, rows, n, m0, blockIdx.x, partial, counters);
}

// One kernel per K split: prefill_gemm_q, prefill_gemm_split_k_q (fmt a Q_FMT_* id; W [2n, k]
// for PG_GATE_UP, else [n, k]).
#define PG_KERNELS(NAME, SPLIT_K)                                                                                                  \
    extern "C" __global__ void __launch_bounds__(PG_THREADS)                                                                       \
        NAME(const float* __restrict__ x, const unsigned char* __restrict__ w, const bf16* __restrict__ bias,                      \
             const float* __restrict__ residual, float* __restrict__ out, int mode, int rows, int n, int k,                        \
             float* __restrict__ partial, unsigned* __restrict__ counters, int fmt) {                                              \
        const long long weight_rows = mode == PG_GATE_UP ? 2LL * n : n;                                                           \
        Q_DISPATCH(fmt, prefill_gemm_body<SPLIT_K>(x, QuantTiles<F>{w, weight_rows * (k / F::BLOCK)}, bias, residual, out, mode, \
                                                   rows, n, k, partial, counters))                                                 \
    }
PG_KERNELS(prefill_gemm_q, false)
PG_KERNELS(prefill_gemm_split_k_q, true)
