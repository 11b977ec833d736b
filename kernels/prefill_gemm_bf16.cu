// Prefill GEMM for bf16 weights: out[t, r] = epilogue(x[t] . W[r]) for the `rows` tokens of a
// prompt chunk at once, on bf16 tensor cores (mma.sync m16n8k16, f32 accumulation), operands
// brought to the warps by ldmatrix. x f32 [rows, K], W bf16 [N, K] row-major.
// Block tile PGB_BM tokens x PGB_BN weight rows, 8 warps of 64 x 32; K in steps of PGB_BK through
// a PGB_STAGES-deep cp.async ring (f32 x and bf16 W as stored). Once per K tile and block, the
// threads split the f32 x tile into bf16 hi = bf16(x) and lo = bf16(x - hi) tiles (double
// buffered), which every warp then reads by ldmatrix: the split costs each element of x one
// conversion per block instead of one per warp and fragment. Both halves are multiplied
// (PG_SPLIT_X, prefill_gemm.cu), so a prefilled row matches the decode GEMV's f32 x to 2^-16.
// One barrier per K tile: tile i's weights and split x are read while tile i + 1's x is split and
// tile i + PGB_STAGES - 1 is in flight.
// Epilogues (PG_LINEAR, PG_GATE_UP; via an f32 tile in shared memory, stored coalesced) and split
// K (the _split_k kernel; the last split of a tile sums the partials in split order) as in
// prefill_gemm.cu, on this kernel's tile.
// Launch: grid (ceil(N / PGB_BN) or ceil(F / (PGB_BN / 2)), ceil(rows / PGB_BM), splits of K),
// PGB_THREADS threads, PGB_SHARED bytes of dynamic shared memory (one block an SM).
// Bytes: N*K*2 of weights per PGB_BM rows of x, + rows*K*4 of x per PGB_BN columns (L2).
// Limits (host-checked): K % 8 == 0 (16-byte cp.async rows); any rows and N.

#pragma once
#include "common.cuh"
#include "prefill_gemm.cu"  // mma_bf16, split_bf16x2, pg_weight_row, pg_finish, PG_SPLIT_X

#define PGB_BM 128
#define PGB_BN 128
#define PGB_BK 32
#define PGB_STAGES 4
#define PGB_THREADS 256
#define PGB_LD (PGB_BK + 8)  // bf16 rows padded by 16 bytes: the 8 rows of an ldmatrix hit distinct banks
#define PGB_CLD (PGB_BN + 1)
#define PGB_X_BYTES (PGB_STAGES * PGB_BM * PGB_BK * 4)
#define PGB_W_BYTES (PGB_STAGES * PGB_BN * PGB_LD * 2)
#define PGB_SPLIT_BYTES (2 * PGB_BM * PGB_LD * 2)  // one double-buffered bf16 tile of x (hi or lo)
#define PGB_SHARED (PGB_X_BYTES + PGB_W_BYTES + 2 * PGB_SPLIT_BYTES)  // > the C tile, PGB_BM * PGB_CLD * 4

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const bf16* p) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

template <bool SPLIT_K>
__device__ __forceinline__ void prefill_gemm_bf16_body(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ bias,
                                                       const float* __restrict__ residual, float* __restrict__ out, int mode, int rows,
                                                       int n, int k, float* __restrict__ partial, unsigned* __restrict__ counters) {
    float* Xs = reinterpret_cast<float*>(pg_smem);                                    // [STAGES][BM][BK] f32
    bf16* Ws = reinterpret_cast<bf16*>(pg_smem + PGB_X_BYTES);                        // [STAGES][BN][LD]
    bf16* Hi = reinterpret_cast<bf16*>(pg_smem + PGB_X_BYTES + PGB_W_BYTES);          // [2][BM][LD]
    bf16* Lo = reinterpret_cast<bf16*>(pg_smem + PGB_X_BYTES + PGB_W_BYTES + PGB_SPLIT_BYTES);
    const int m0 = blockIdx.y * PGB_BM;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
    const int g = lane >> 2, tg = lane & 3;
    const int ktiles = (k + PGB_BK - 1) / PGB_BK, splits = SPLIT_K ? gridDim.z : 1, per = (ktiles + splits - 1) / splits;
    const int kt0 = SPLIT_K ? blockIdx.z * per : 0, count = SPLIT_K ? min(ktiles, kt0 + per) - kt0 : ktiles;
    const bool gate_up = mode == PG_GATE_UP;

    // Tile i's f32 x and bf16 weights into ring stage i % STAGES (zero-filled outside the matrices).
    auto load = [&](int i) {
        if (i < count) {
            const int stage = i % PGB_STAGES, k0 = (kt0 + i) * PGB_BK;
#pragma unroll
            for (int j = 0; j < PGB_BM * PGB_BK / 4 / PGB_THREADS; j++) {
                const int c = tid + j * PGB_THREADS;
                const int r = c / (PGB_BK / 4), kc = (c % (PGB_BK / 4)) * 4, t = m0 + r, kk = k0 + kc;
                const bool ok = t < rows && kk < k;
                cp_async16(Xs + (stage * PGB_BM + r) * PGB_BK + kc, x + (ok ? (long long)t * k + kk : 0), ok);
            }
#pragma unroll
            for (int j = 0; j < PGB_BN * PGB_BK / 8 / PGB_THREADS; j++) {
                const int c = tid + j * PGB_THREADS;
                const int r = c / (PGB_BK / 8), kc = (c % (PGB_BK / 8)) * 8, kk = k0 + kc;
                bool ok;
                const int wr = pg_weight_row<PGB_BN>(blockIdx.x, r, n, gate_up, ok);
                ok = ok && kk < k;
                cp_async16(Ws + (stage * PGB_BN + r) * PGB_LD + kc, w + (ok ? (long long)wr * k + kk : 0), ok);
            }
        }
        cp_async_commit();  // empty past the end, so that every wait below counts the same groups
    };
    // Tile i's landed f32 x split into bf16 hi and lo, buffer i % 2.
    auto split = [&](int i) {
        const float* src = Xs + (i % PGB_STAGES) * PGB_BM * PGB_BK;
        bf16* hi = Hi + (i & 1) * PGB_BM * PGB_LD;
        bf16* lo = Lo + (i & 1) * PGB_BM * PGB_LD;
#pragma unroll
        for (int j = 0; j < PGB_BM * PGB_BK / 4 / PGB_THREADS; j++) {
            const int c = tid + j * PGB_THREADS;
            const int r = c / (PGB_BK / 4), kc = (c % (PGB_BK / 4)) * 4;
            const float4 v = *reinterpret_cast<const float4*>(src + r * PGB_BK + kc);
            uint2 h, l;
            split_bf16x2(v.x, v.y, h.x, l.x);
            split_bf16x2(v.z, v.w, h.y, l.y);
            *reinterpret_cast<uint2*>(hi + r * PGB_LD + kc) = h;
            if (PG_SPLIT_X) *reinterpret_cast<uint2*>(lo + r * PGB_LD + kc) = l;
        }
    };

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < PGB_STAGES - 1; s++) load(s);
    cp_async_wait<PGB_STAGES - 2>();
    __syncthreads();
    split(0);
    // The lane's ldmatrix rows: A rows lane % 16 at column (lane / 16) * 8 of a 16 x 16 fragment;
    // B (two n8 fragments) rows (lane / 16) * 8 + lane % 8 at column ((lane / 8) % 2) * 8.
    const int a_row = wm + (lane & 15), a_col = (lane >> 4) * 8;
    const int b_row = wn + (lane >> 4) * 8 + (lane & 7), b_col = ((lane >> 3) & 1) * 8;
    for (int i = 0; i < count; i++) {
        cp_async_wait<PGB_STAGES - 3>();  // tiles <= i + 1 landed (this thread's copies)
        __syncthreads();                  // ... everyone's; tile i split; stage (i - 1) free
        load(i + PGB_STAGES - 1);
        const bf16* hi = Hi + (i & 1) * PGB_BM * PGB_LD;
        const bf16* lo = Lo + (i & 1) * PGB_BM * PGB_LD;
        const bf16* ws = Ws + (i % PGB_STAGES) * PGB_BN * PGB_LD;
#pragma unroll
        for (int ks = 0; ks < PGB_BK; ks += 16) {
            unsigned a_hi[4][4], a_lo[4][4], b[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                ldmatrix_x4(a_hi[mi], hi + (a_row + mi * 16) * PGB_LD + ks + a_col);
                if (PG_SPLIT_X) ldmatrix_x4(a_lo[mi], lo + (a_row + mi * 16) * PGB_LD + ks + a_col);
            }
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                unsigned r[4];
                ldmatrix_x4(r, ws + (b_row + nj * 16) * PGB_LD + ks + b_col);
                b[2 * nj][0] = r[0];
                b[2 * nj][1] = r[1];
                b[2 * nj + 1][0] = r[2];
                b[2 * nj + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int nj = 0; nj < 4; nj++) {
                    mma_bf16(acc[mi][nj], a_hi[mi], b[nj][0], b[nj][1]);
                    if (PG_SPLIT_X) mma_bf16(acc[mi][nj], a_lo[mi], b[nj][0], b[nj][1]);
                }
        }
        if (i + 1 < count) split(i + 1);
    }
    cp_async_wait<0>();
    __syncthreads();

    float* C = reinterpret_cast<float*>(pg_smem);  // [BM][CLD]
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int nj = 0; nj < 4; nj++) pg_store_fragment<PGB_CLD>(C, wm + mi * 16 + g, wn + nj * 8 + tg * 2, acc[mi][nj]);
    __syncthreads();
    pg_finish<SPLIT_K, PGB_BM, PGB_BN, PGB_CLD, PGB_THREADS>(C, bias, residual, out, mode, rows, n, m0, blockIdx.x, partial, counters);
}

extern "C" __global__ void __launch_bounds__(PGB_THREADS, 1)
    prefill_gemm(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ bias, const float* __restrict__ residual,
                 float* __restrict__ out, int mode, int rows, int n, int k, float* __restrict__ partial, unsigned* __restrict__ counters) {
    prefill_gemm_bf16_body<false>(x, w, bias, residual, out, mode, rows, n, k, partial, counters);
}

extern "C" __global__ void __launch_bounds__(PGB_THREADS, 1)
    prefill_gemm_split_k(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ bias,
                         const float* __restrict__ residual, float* __restrict__ out, int mode, int rows, int n, int k,
                         float* __restrict__ partial, unsigned* __restrict__ counters) {
    prefill_gemm_bf16_body<true>(x, w, bias, residual, out, mode, rows, n, k, partial, counters);
}
