// Prefill GEMM for bf16 weights on Hopper (sm_90a): out[t, r] = epilogue(x[t] . W[r]) for the
// `rows` tokens of a prompt chunk, by warpgroup MMA (wgmma.mma_async m64nNk16, f32 accumulation)
// reading both operands from shared memory in the 128-byte swizzled K-major layout.
// Block tile BM = 64 * WGS tokens x BN weight rows: WGS warpgroups of 64 tokens x BN weight rows
// each (BN / 2 accumulators a thread). K in steps of PGW_BK = 64 (one 128-byte swizzle row of bf16):
// - W: a ring of PGW_STAGES (wide: PGW_WIDE_STAGES) tiles filled by the bulk tensor copy engine
//   (TMA, boxes of PGW_BOX_ROWS rows in the 128-byte swizzle) from the weight's tensor map
//   `w_map` (a CUtensorMap in global memory, 64-byte aligned), requested stages - 2 tiles ahead
//   by one thread, each stage's arrival awaited on its mbarrier;
// - x: f32 from global into registers two K tiles ahead, split into bf16 hi = bf16(x) and
//   lo = bf16(x - hi) tiles (PGW_X_BUFFERS of each, swizzled) one tile ahead; both halves are
//   multiplied (PG_SPLIT_X, prefill_gemm.cu), so a prefilled row matches the decode GEMV's f32 x
//   to 2^-16.
// One barrier a K tile, and one tile's wgmmas in flight across it: after barrier i a warpgroup
// issues tile i's wgmmas, then waits for its tile i - 1 ones; so after barrier i every
// warpgroup is done with tile i - 2, whose weight stage and x buffers are refilled then.
// Epilogues and split K: pg_finish (prefill_gemm.cu), on this kernel's tile.
// Launch: grid (ceil(N / BN) or ceil(F / (BN / 2)), ceil(rows / BM), splits of K), 128 * WGS
// threads, PGW_SHARED_{WIDE,NARROW,SHORT} bytes of dynamic shared memory (one block an SM);
// or fewer column tiles from column tile tile_n0 (a GEMM's wide tiles' last wave, left to
// narrow tiles: src/exec/cuda/prefill.rs).
// Bytes: N*K*2 of weights per BM rows of x, + rows*K*4 of x per BN columns (L2).
// Limits (host-checked): K % 8 == 0; any rows and N; sm_90a only (elsewhere the kernels trap and
// the host launches prefill_gemm_bf16.cu's).

#pragma once
#include "common.cuh"
#include "prefill_gemm.cu"  // split_bf16x2, pg_finish, PG_SPLIT_X

#define PGW_WG_ROWS 64  // tokens of a warpgroup: wgmma's M
#define PGW_WG_THREADS 128
// Three tiles (WGS warpgroups, BN weight rows):
//   wide   (2, 256): x, re-read from L2 once per block column and f32 (twice a bf16 weight's
//                    bytes), is read half as often as at 128; where they take fewer waves (the host)
//   narrow (2, 128): the others of more than 64 rows (twice the blocks)
//   short  (1, 128): 64 rows or fewer (no warpgroup multiplies only padding)
#define PGW_WIDE_WGS 2
#define PGW_WIDE_BN 256
#define PGW_NARROW_WGS 2
#define PGW_NARROW_BN 128
#define PGW_SHORT_WGS 1
#define PGW_SHORT_BN 128
#define PGW_BK 64
#define PGW_BOX_ROWS 64  // weight rows of one bulk tensor copy (a stage takes BN / PGW_BOX_ROWS)
#define PGW_X_BUFFERS 3
#define PGW_WIDE_STAGES 4  // the weight ring's stages: what fits beside the x buffers
#define PGW_STAGES 5
// the weight ring, the hi and lo x buffers, and slack to align the base to 1,024 bytes (the
// swizzle's period); each > its C tile, BM * (BN + 1) * 4
#define PGW_SHARED_WIDE (PGW_WIDE_STAGES * PGW_WIDE_BN * PGW_BK * 2 + 2 * PGW_X_BUFFERS * PGW_WIDE_WGS * PGW_WG_ROWS * PGW_BK * 2 + 1024)
#define PGW_SHARED_NARROW (PGW_STAGES * PGW_NARROW_BN * PGW_BK * 2 + 2 * PGW_X_BUFFERS * PGW_NARROW_WGS * PGW_WG_ROWS * PGW_BK * 2 + 1024)
#define PGW_SHARED_SHORT (PGW_STAGES * PGW_SHORT_BN * PGW_BK * 2 + 2 * PGW_X_BUFFERS * PGW_SHORT_WGS * PGW_WG_ROWS * PGW_BK * 2 + 1024)
// Blocks run row tiles fastest (the blocks that read one weight slab run together, so it comes
// from DRAM once); 0 runs column tiles fastest (measured: 294 -> 314 us for gate/up at 1,024 rows).
#ifndef PGW_RASTER
#define PGW_RASTER 1
#endif

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Byte offset of 16-byte chunk c of row r in a tile of 128-byte rows, 128-byte swizzle: the chunk
// index XOR the row's index within its 8-row (1,024-byte) group, as wgmma reads it.
__device__ __forceinline__ unsigned pgw_swizzle(int r, int c) { return r * 128 + (((c ^ r) & 7) << 4); }

// A K-major operand in the 128-byte swizzle layout: start address, leading byte offset unused (1),
// 1,024 bytes between 8-row groups, swizzle mode 1 (128 bytes).
__device__ __forceinline__ unsigned long long pgw_desc(unsigned smem_addr) {
    return (unsigned long long)((smem_addr & 0x3ffff) >> 4) | (1ull << 16) | ((unsigned long long)(1024 >> 4) << 32) | (1ull << 62);
}

// One m64 x N x k16 product of the warpgroup (N = 2 x the accumulators of a thread: 256 or 128):
// A and B by descriptor, D += A B.
__device__ __forceinline__ void wgmma_tile(float (&d)[128], unsigned long long a, unsigned long long b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
        :
          "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(a), "l"(b), "r"(1));
}
__device__ __forceinline__ void wgmma_tile(float (&d)[64], unsigned long long a, unsigned long long b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        :
          "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "r"(1));
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// Orders this thread's shared-memory writes (stores, landed cp.async) before async-proxy reads (wgmma).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// The weight ring's transaction barriers (mbarrier, one arrival: the thread that requests a
// stage) and the bulk tensor copy (TMA) of one PGW_BOX_ROWS x PGW_BK box of a weight, whose
// tensor map (src/exec/cuda/prefill.rs, weight_map) lies in global memory: 128-byte swizzle, the
// layout pgw_swizzle describes; rows or K past the matrix's end arrive as zeros.
__device__ __forceinline__ void mbar_init(unsigned bar) { asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void mbar_expect(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile(
        "{\n.reg .pred done;\nPGW_WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra PGW_WAIT_%=;\n}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
}
__device__ __forceinline__ void tma_load_box(unsigned dst, const void* map, int k0, int row0, unsigned bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst), "l"(map),
                 "r"(k0), "r"(row0), "r"(bar)
                 : "memory");
}

template <int WGS, int BN, bool SPLIT_K>
__device__ __forceinline__ void prefill_gemm_wgmma_body(const float* __restrict__ x, const void* __restrict__ w_map, const bf16* __restrict__ bias,
                                                        const float* __restrict__ residual, float* __restrict__ out, int mode, int rows,
                                                        int n, int k, float* __restrict__ partial, unsigned* __restrict__ counters,
                                                        int tile_n0) {
    constexpr int BM = PGW_WG_ROWS * WGS, THREADS = PGW_WG_THREADS * WGS, CLD = BN + 1;
    constexpr int STAGES = BN == PGW_WIDE_BN ? PGW_WIDE_STAGES : PGW_STAGES;
    constexpr int W_TILE = BN * PGW_BK * 2, X_TILE = BM * PGW_BK * 2;  // bytes; X_TILE: one bf16 half
    constexpr int X_CHUNKS = BM * PGW_BK / 4 / THREADS;  // float4s of x a thread a tile
    const unsigned raw = (unsigned)__cvta_generic_to_shared(pg_smem);
    const unsigned base = (raw + 1023) & ~1023u;
    unsigned char* smem = pg_smem + (base - raw);
    const unsigned w_at = base, hi_at = base + STAGES * W_TILE, lo_at = hi_at + PGW_X_BUFFERS * X_TILE;
#if PGW_RASTER
    const int block = blockIdx.y * gridDim.x + blockIdx.x, tile_m = block % gridDim.y, tile_n = tile_n0 + block / gridDim.y;
#else
    const int tile_m = blockIdx.y, tile_n = tile_n0 + blockIdx.x;
#endif
    const int m0 = tile_m * BM;
    const int tid = threadIdx.x, wg = tid / PGW_WG_THREADS;
    const int ktiles = (k + PGW_BK - 1) / PGW_BK, splits = SPLIT_K ? gridDim.z : 1, per = (ktiles + splits - 1) / splits;
    const int kt0 = SPLIT_K ? blockIdx.z * per : 0, count = SPLIT_K ? min(ktiles, kt0 + per) - kt0 : ktiles;
    const bool gate_up = mode == PG_GATE_UP;

    // Stage i % STAGES of the weight ring: one thread requests tile i's boxes (gate/up: BN / 2
    // gate rows, then the matching up rows), everyone waits on the stage's barrier.
    __shared__ __align__(8) unsigned long long full[STAGES];
    const unsigned full_at = (unsigned)__cvta_generic_to_shared(full);
    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; s++) mbar_init(full_at + 8 * s);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    auto load_w = [&](int i) {
        if (tid != 0 || i >= count) return;
        const unsigned bar = full_at + 8 * (i % STAGES), dst = w_at + (i % STAGES) * W_TILE;
        mbar_expect(bar, W_TILE);
#pragma unroll
        for (int box = 0; box < BN / PGW_BOX_ROWS; box++) {
            const int r = box * PGW_BOX_ROWS;
            const int row0 = gate_up ? (r < BN / 2 ? tile_n * (BN / 2) + r : n + tile_n * (BN / 2) + r - BN / 2) : tile_n * BN + r;
            tma_load_box(dst + r * 128, w_map, (kt0 + i) * PGW_BK, row0, bar);
        }
    };
    float4 xr[X_CHUNKS];
    auto load_x = [&](int i) {
        const int k0 = (kt0 + i) * PGW_BK;
#pragma unroll
        for (int j = 0; j < X_CHUNKS; j++) {
            const int q = tid + j * THREADS, r = q / (PGW_BK / 4), kk = k0 + (q % (PGW_BK / 4)) * 4, t = m0 + r;
            xr[j] = t < rows && kk < k ? __ldg(reinterpret_cast<const float4*>(x + (long long)t * k + kk)) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
    };
    auto split_x = [&](int i) {
        unsigned char* hi = smem + (hi_at - base) + (i % PGW_X_BUFFERS) * X_TILE;
        unsigned char* lo = smem + (lo_at - base) + (i % PGW_X_BUFFERS) * X_TILE;
#pragma unroll
        for (int j = 0; j < X_CHUNKS; j++) {
            const int q = tid + j * THREADS, r = q / (PGW_BK / 4), e = (q % (PGW_BK / 4)) * 4;
            const unsigned at = pgw_swizzle(r, e / 8) + (e % 8) * 2;
            uint2 h, l;
            split_bf16x2(xr[j].x, xr[j].y, h.x, l.x);
            split_bf16x2(xr[j].z, xr[j].w, h.y, l.y);
            *reinterpret_cast<uint2*>(hi + at) = h;
            if (PG_SPLIT_X) *reinterpret_cast<uint2*>(lo + at) = l;
        }
    };

    float acc[BN / 2];
#pragma unroll
    for (int e = 0; e < BN / 2; e++) acc[e] = 0.f;

    constexpr int AHEAD = STAGES - 2;  // weight tiles requested ahead of the one multiplied
#pragma unroll
    for (int s = 0; s < AHEAD; s++) load_w(s);
    load_x(0);
    split_x(0);
    if (count > 1) load_x(1);
    for (int i = 0; i < count; i++) {
        mbar_wait(full_at + 8 * (i % STAGES), (i / STAGES) & 1);  // tile i's weights landed
        fence_proxy_async();  // this thread's split x stores, for wgmma
        __syncthreads();             // everyone's; every warpgroup is done with tile i - 2
        const unsigned x_at = (i % PGW_X_BUFFERS) * X_TILE + wg * PGW_WG_ROWS * 128;  // 128-byte rows
        const unsigned a_hi = hi_at + x_at, a_lo = lo_at + x_at;
        const unsigned b = w_at + (i % STAGES) * W_TILE;
        wgmma_fence();
#pragma unroll
        for (int s = 0; s < PGW_BK / 16; s++) {  // a k16 slice is 32 bytes further along the swizzled rows
            wgmma_tile(acc, pgw_desc(a_hi + 32 * s), pgw_desc(b + 32 * s));
            if (PG_SPLIT_X) wgmma_tile(acc, pgw_desc(a_lo + 32 * s), pgw_desc(b + 32 * s));
        }
        wgmma_commit();
        load_w(i + AHEAD);                   // into tile i - 2's stage
        if (i + 1 < count) split_x(i + 1);  // into tile i - 2's buffers
        if (i + 2 < count) load_x(i + 2);
        wgmma_wait<1>();  // tile i - 1's wgmmas done
    }
    wgmma_wait<0>();
#pragma unroll
    for (int e = 0; e < BN / 2; e++) asm volatile("" : "+f"(acc[e])::"memory");  // no read of acc before the wait
    __syncthreads();

    // The accumulators as mma.sync's m16n8 C fragments side by side: warp w of the warpgroup holds
    // rows 16w.., n8 block c in acc[4c..4c + 3].
    float* C = reinterpret_cast<float*>(smem);  // [BM][CLD]
    const int lane = tid & 31, row = wg * PGW_WG_ROWS + ((tid >> 5) & 3) * 16 + (lane >> 2);
#pragma unroll
    for (int c = 0; c < BN / 8; c++)
        pg_store_fragment<CLD>(C, row, c * 8 + (lane & 3) * 2, reinterpret_cast<const float (&)[4]>(acc[4 * c]));
    __syncthreads();
    pg_finish<SPLIT_K, BM, BN, CLD, THREADS>(C, bias, residual, out, mode, rows, n, m0, tile_n, partial, counters);
}
#define PGW_BODY(WGS, BN, SPLIT_K) prefill_gemm_wgmma_body<WGS, BN, SPLIT_K>(x, w_map, bias, residual, out, mode, rows, n, k, partial, counters, tile_n0)
#else
#define PGW_BODY(WGS, BN, SPLIT_K) __trap()
#endif

// One kernel per tile and K split (wide tiles never split K: the host picks them only where they
// take fewer waves over the SMs than narrow ones).
#define PGW_KERNEL(NAME, WGS, BN, SPLIT_K)                                                                                        \
    extern "C" __global__ void __launch_bounds__(PGW_WG_THREADS * WGS, 1)                                                                  \
        NAME(const float* __restrict__ x, const void* __restrict__ w_map, const bf16* __restrict__ bias, const float* __restrict__ residual, \
             float* __restrict__ out, int mode, int rows, int n, int k, float* __restrict__ partial, unsigned* __restrict__ counters,     \
             int tile_n0) {                                                                                                         \
        PGW_BODY(WGS, BN, SPLIT_K);                                                                                                 \
    }
PGW_KERNEL(prefill_gemm_wgmma_wide, PGW_WIDE_WGS, PGW_WIDE_BN, false)
PGW_KERNEL(prefill_gemm_wgmma, PGW_NARROW_WGS, PGW_NARROW_BN, false)
PGW_KERNEL(prefill_gemm_wgmma_split_k, PGW_NARROW_WGS, PGW_NARROW_BN, true)
PGW_KERNEL(prefill_gemm_wgmma_short, PGW_SHORT_WGS, PGW_SHORT_BN, false)
PGW_KERNEL(prefill_gemm_wgmma_short_split_k, PGW_SHORT_WGS, PGW_SHORT_BN, true)
