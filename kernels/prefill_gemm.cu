// Prefill GEMM: out[t, r] = epilogue(x[t] . W[r]) for the `rows` tokens of a prompt chunk at once
// (row t = token t at position start + t), on bf16 tensor cores (mma.sync m16n8k16, f32
// accumulation). x f32 [rows, K], W bf16 [N, K] row-major (both K-contiguous, so A is "row" and B
// is "col" for the mma). x keeps f32 precision: each A fragment is split into hi = bf16(x) and
// lo = bf16(x - hi), and both are multiplied (x = hi + lo to 2^-16 relative), so a prefilled row
// matches the decode GEMV's f32 x at twice the tensor-core work.
// Block tile PG_BM tokens x PG_BN weight rows, K in steps of PG_BK through a cp.async double
// buffer in PG_SHARED bytes of dynamic shared memory; 4 warps of 32x32 each. Out-of-range rows
// and K tails are zero-filled by cp.async. Epilogues (via an f32 tile in shared memory, stored
// coalesced):
//   PG_LINEAR:  out f32 [rows, N] = acc + (bias[r] + residual[t, r])  (bias/residual may be null)
//   PG_GATE_UP: W is [2F, K] (gate rows first), n = F; the block's first PG_BN/2 B rows are gate
//               rows j0.., the rest the matching up rows F + j0..; out f32 [rows, F] = silu(g) * u
// Launch: grid (ceil(N / PG_BN) or ceil(F / (PG_BN / 2)), ceil(rows / PG_BM)), PG_THREADS
// threads, PG_SHARED bytes of dynamic shared memory (src/exec/cuda/prefill.rs).
// Bytes: N*K*2 of weights per PG_BM rows of x, + rows*K*4 of x per PG_BN columns (L2).
// Limits (host-checked): K % 8 == 0 (16-byte cp.async rows); any rows and N.
// Block-format weights: dequant_split_q (at the end) writes W as bf16 hi + lo into scratch and
// prefill_gemm_split multiplies by both, so W keeps 16 bits of its f32 value.

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
#define PG_SHARED (PG_A_BYTES + 2 * PG_BN * PG_LDB * 2)  // > the C tile, PG_BM * PG_CLD * 4
#define PG_SPLIT_SHARED (PG_SHARED + 2 * PG_BN * PG_LDB * 2)

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

// Two consecutive f32 of A as packed bf16 pairs: hi = bf16(x), lo = bf16(x - hi).
__device__ __forceinline__ void split_pair(const float* p, unsigned& hi, unsigned& lo) {
    const float2 v = *reinterpret_cast<const float2*>(p);
    hi = pack_bf16x2(v.x, v.y);
    lo = pack_bf16x2(v.x - lo_f32(hi), v.y - hi_f32(hi));
}

// SPLIT: W = w + w_lo (a block-format weight dequantized by dequant_split_q); B_lo follows B in
// shared memory and hi(x) . w_lo joins the products (lo(x) . w_lo is below f32's resolution).
template <bool SPLIT>
__device__ __forceinline__ void prefill_gemm_body(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ w_lo,
                                                  const bf16* __restrict__ bias, const float* __restrict__ residual,
                                                  float* __restrict__ out, int mode, int rows, int n, int k) {
    float* As = reinterpret_cast<float*>(pg_smem);             // [2][PG_BM][PG_LDA]
    bf16* Bs = reinterpret_cast<bf16*>(pg_smem + PG_A_BYTES);  // [2][PG_BN][PG_LDB]
    bf16* Bls = Bs + 2 * PG_BN * PG_LDB;                       // SPLIT: [2][PG_BN][PG_LDB]
    const int m0 = blockIdx.y * PG_BM;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    const int g = lane >> 2, tg = lane & 3;
    const int ktiles = (k + PG_BK - 1) / PG_BK;
    const bool gate_up = mode == PG_GATE_UP;

    auto load = [&](int stage, int kt) {
        const int k0 = kt * PG_BK;
        for (int c = tid; c < PG_BM * PG_BK / 4; c += PG_THREADS) {
            const int r = c / (PG_BK / 4), kc = (c % (PG_BK / 4)) * 4;
            const int t = m0 + r, kk = k0 + kc;
            const bool ok = t < rows && kk < k;
            cp_async16(As + (stage * PG_BM + r) * PG_LDA + kc, x + (ok ? (long long)t * k + kk : 0), ok);
        }
        for (int c = tid; c < PG_BN * PG_BK / 8; c += PG_THREADS) {
            const int r = c / (PG_BK / 8), kc = (c % (PG_BK / 8)) * 8;
            int wr;
            bool ok;
            if (gate_up) {
                const int j = blockIdx.x * (PG_BN / 2) + (r % (PG_BN / 2));
                ok = j < n;
                wr = r < PG_BN / 2 ? j : n + j;
            } else {
                wr = blockIdx.x * PG_BN + r;
                ok = wr < n;
            }
            const int kk = k0 + kc;
            ok = ok && kk < k;
            cp_async16(Bs + (stage * PG_BN + r) * PG_LDB + kc, w + (ok ? (long long)wr * k + kk : 0), ok);
            if (SPLIT) cp_async16(Bls + (stage * PG_BN + r) * PG_LDB + kc, w_lo + (ok ? (long long)wr * k + kk : 0), ok);
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

    load(0, 0);
    for (int kt = 0; kt < ktiles; kt++) {
        const int stage = kt & 1;
        if (kt + 1 < ktiles) {
            load(stage ^ 1, kt + 1);
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
                b[j][0] = ld_u32(q);
                b[j][1] = ld_u32(q + 8);
                if (SPLIT) {
                    const bf16* ql = Bl + (wn + j * 8 + g) * PG_LDB + ks + tg * 2;
                    bl[j][0] = ld_u32(ql);
                    bl[j][1] = ld_u32(ql + 8);
                }
            }
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    mma_bf16(acc[i][j], hi[i], b[j][0], b[j][1]);
                    mma_bf16(acc[i][j], lo[i], b[j][0], b[j][1]);
                    if (SPLIT) mma_bf16(acc[i][j], hi[i], bl[j][0], bl[j][1]);
                }
        }
        __syncthreads();
    }

    float* C = reinterpret_cast<float*>(pg_smem);  // [PG_BM][PG_CLD]
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int r = wm + i * 16 + g, c = wn + j * 8 + tg * 2;
            C[r * PG_CLD + c] = acc[i][j][0];
            C[r * PG_CLD + c + 1] = acc[i][j][1];
            C[(r + 8) * PG_CLD + c] = acc[i][j][2];
            C[(r + 8) * PG_CLD + c + 1] = acc[i][j][3];
        }
    __syncthreads();
    if (gate_up) {
        constexpr int HALF = PG_BN / 2;
        for (int e = tid; e < PG_BM * HALF; e += PG_THREADS) {
            const int r = e / HALF, c = e % HALF, t = m0 + r, j = blockIdx.x * HALF + c;
            if (t >= rows || j >= n) continue;
            const float gv = C[r * PG_CLD + c], u = C[r * PG_CLD + HALF + c];
            out[(long long)t * n + j] = gv / (1.0f + expf(-gv)) * u;
        }
        return;
    }
    for (int e = tid; e < PG_BM * PG_BN; e += PG_THREADS) {
        const int r = e / PG_BN, c = e % PG_BN, t = m0 + r, col = blockIdx.x * PG_BN + c;
        if (t >= rows || col >= n) continue;
        const long long o = (long long)t * n + col;
        out[o] = C[r * PG_CLD + c] + ((bias ? bf16_to_f32(bias[col]) : 0.f) + (residual ? residual[o] : 0.f));
    }
}

extern "C" __global__ void __launch_bounds__(PG_THREADS)
prefill_gemm(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ bias,
             const float* __restrict__ residual, float* __restrict__ out, int mode, int rows, int n, int k) {
    prefill_gemm_body<false>(x, w, nullptr, bias, residual, out, mode, rows, n, k);
}

// prefill_gemm for a block-format weight, as w + w_lo; PG_SPLIT_SHARED bytes of shared memory.
extern "C" __global__ void __launch_bounds__(PG_THREADS)
prefill_gemm_split(const float* __restrict__ x, const bf16* __restrict__ w, const bf16* __restrict__ w_lo, const bf16* __restrict__ bias,
                   const float* __restrict__ residual, float* __restrict__ out, int mode, int rows, int n, int k) {
    prefill_gemm_body<true>(x, w, w_lo, bias, residual, out, mode, rows, n, k);
}

// A block-format matrix [rows, k] (fmt a Q_FMT_* id) as two bf16 matrices, hi = bf16(v) and
// lo = bf16(v - hi) for each element v (quant.cu's `unit_values`): v to 2^-16 relative, for
// prefill_gemm_split. Launch: DQ_THREADS threads a block, a unit of 32 elements a thread (its
// two runs of 16 stored as 32 bytes each of hi and lo), the blocks striding over the
// rows * k / 32 units (grid from the host).
// Bytes: the blocks read, rows*k*4 written.
#define DQ_THREADS 256

extern "C" __global__ void __launch_bounds__(DQ_THREADS)
dequant_split_q(const unsigned char* __restrict__ w, int rows, int k, uint4* __restrict__ hi, uint4* __restrict__ lo, int fmt) {
    Q_DISPATCH(fmt, {
        const long long blocks = (long long)rows * (k / F::BLOCK), units = blocks * F::UNITS;
        for (long long g = (long long)blockIdx.x * DQ_THREADS + threadIdx.x; g < units; g += (long long)gridDim.x * DQ_THREADS) {
            const long long b = g / F::UNITS;
            const int u = (int)(g % F::UNITS);
            const typename F::Raw raw = F::load(w, blocks, b, u);
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float v[Q_RUN];
                unit_values<F>(raw, u, r, v);
                unsigned h[Q_RUN / 2], l[Q_RUN / 2];
#pragma unroll
                for (int e = 0; e < Q_RUN; e += 2) {
                    h[e / 2] = pack_bf16x2(v[e], v[e + 1]);
                    l[e / 2] = pack_bf16x2(v[e] - lo_f32(h[e / 2]), v[e + 1] - hi_f32(h[e / 2]));
                }
                const long long p = (b * F::BLOCK + F::run_start(u, r)) / 8;  // in 16-byte words
                hi[p] = make_uint4(h[0], h[1], h[2], h[3]);
                hi[p + 1] = make_uint4(h[4], h[5], h[6], h[7]);
                lo[p] = make_uint4(l[0], l[1], l[2], l[3]);
                lo[p + 1] = make_uint4(l[4], l[5], l[6], l[7]);
            }
        }
    })
}
