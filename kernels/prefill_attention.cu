// Prefill attention on tensor cores (flash attention): causal attention of the `rows` query
// tokens of a prompt chunk (token t at position start + t attends cache rows 0..=start+t),
// grouped-query aware, scale 1/sqrt(d). q, out f32 [rows, n_heads*d], the caches f32.
// Launch: grid (n_kv, units), PA_THREADS threads, PA_SHARED bytes of dynamic shared memory
// (src/exec/cuda/prefill.rs). A query block takes the tokens_per_block * group (<= PA_ROWS)
// query vectors of one KV head, 16 a warp, and walks the cache in tiles of PA_TILE positions
// staged in shared memory once for all of them; a unit is a query block or, for a short prompt's
// long blocks, a piece of its positions (pa_unit), the pieces merged through `partial` by the
// last to finish (<= gridDim.x * gridDim.y slots of PA_SLOT floats, a counter per query block).
// Every f32 operand is split into bf16 hi + lo as it is staged (Q once, each K/V tile once; the
// scores P in registers), and a product a.b is taken as hi.hi + lo.hi + hi.lo on mma.sync (lo.lo
// is below f32's resolution).
// A warp's 16 x PA_TILE scores S = Q K^T stay in the mma accumulators, the online softmax runs
// on them in place (a row's four lanes reduce by shuffles) and they become the A operand of
// O += P V directly; V's B fragments come by ldmatrix.trans from its [position][d] tile.
// Bytes: each query block reads K and V of its KV head up to its last token's position once,
// 2 * (start + t + 1) * d * 4 (L2), + its q rows and outputs (+ a piece's slot, written once
// and read once by the piece that merges).
// Limits (host-checked): d % 16 == 0, d <= PA_MAX_D, group <= PA_ROWS.

#pragma once
#include "common.cuh"
#include "prefill_gemm.cu"  // mma_bf16, ld_u32, split_bf16x2

#define PA_THREADS 256
#define PA_ROWS 128  // query vectors of a block: 16 per warp; each K/V tile staged once for all
#define PA_TILE 64  // cache positions per step
#define PA_MAX_D 128
#define PA_LD (PA_MAX_D + 8)  // bf16 row stride of the tiles: fragment loads and ldmatrix are conflict free
#define PA_Q_TILE (PA_ROWS * PA_LD)
#define PA_KV_TILE (PA_TILE * PA_LD)
#define PA_SHARED ((2 * PA_Q_TILE + 4 * PA_KV_TILE) * 2)  // Q, K, V as hi and lo
#define PA_SLOT (PA_ROWS * (PA_MAX_D + 2))  // floats of a piece's partial rows: o, then m and l a row
#define PA_STAGE_LOADS (PA_TILE * PA_MAX_D / 4 / PA_THREADS)  // float4s of K (and of V) a thread stages a tile
#ifndef PA_PREFETCH
#define PA_PREFETCH 1  // 0 (an experiment): each tile loaded after the previous one is consumed
#endif

extern __shared__ __align__(16) unsigned char pa_smem[];

// Four f32 as bf16 hi and lo halves, stored at hi[0..4) and lo[0..4) (8-byte aligned).
__device__ __forceinline__ void pa_split4(float4 v, bf16* hi, bf16* lo) {
    unsigned h0, h1, l0, l1;
    split_bf16x2(v.x, v.y, h0, l0);
    split_bf16x2(v.z, v.w, h1, l1);
    *reinterpret_cast<uint2*>(hi) = make_uint2(h0, h1);
    *reinterpret_cast<uint2*>(lo) = make_uint2(l0, l1);
}

// The B fragments of two n8 tiles (columns c, c + 8) of a k16 x n16 piece of a row-major
// [k][PA_LD] tile at `at`: r[0], r[1] for columns c.., r[2], r[3] for c + 8...
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const bf16* at) {
    const int lane = threadIdx.x & 31, m = lane >> 3;
    const unsigned s = (unsigned)__cvta_generic_to_shared(at + ((m & 1) * 8 + (lane & 7)) * PA_LD + (m >> 1) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

// With -DPA_SPLIT=0 (an experiment, as prefill_gemm.cu's PG_SPLIT_X) the operands are rounded
// to bf16: one product instead of three.
#ifndef PA_SPLIT
#define PA_SPLIT 1
#endif

// c += a.b for f32 a, b split into hi and lo: three products.
__device__ __forceinline__ void mma_split(float (&c)[4], const unsigned (&a_hi)[4], const unsigned (&a_lo)[4], unsigned b0, unsigned b1,
                                          unsigned b0_lo, unsigned b1_lo) {
    mma_bf16(c, a_hi, b0, b1);
    if (PA_SPLIT) {
        mma_bf16(c, a_lo, b0, b1);
        mma_bf16(c, a_hi, b0_lo, b1_lo);
    }
}

// A query block whose first position is past `piece` is split into pieces of `piece` positions
// (whole tiles; the last piece takes the rest through the block's last position), so a short
// prompt's few long blocks do not leave most SMs idle; the host picks `piece` (0: no split).
// Unit u of a KV head is piece `piece_index` of query block `qb`, blocks in descending order,
// each block's pieces together.
__device__ __forceinline__ void pa_unit(int u, int blocks, int start, int tokens_per_block, int piece, int& qb, int& pieces, int& piece_index) {
    for (qb = blocks - 1;; qb--) {
        pieces = max(1, (start + qb * tokens_per_block + piece - 1) / piece);
        if (u < pieces || qb == 0) break;
        u -= pieces;
    }
    piece_index = u;
}

extern "C" __global__ void __launch_bounds__(PA_THREADS)
prefill_attention(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                  float* __restrict__ out, int rows, int start, int tokens_per_block, int n_heads, int n_kv, int d, int piece,
                  float* __restrict__ partial, unsigned* __restrict__ counters) {
    bf16* Qh = reinterpret_cast<bf16*>(pa_smem);  // [PA_ROWS][PA_LD]
    bf16* Ql = Qh + PA_Q_TILE;
    bf16* Kh = Ql + PA_Q_TILE;  // [PA_TILE][PA_LD]
    bf16* Kl = Kh + PA_KV_TILE;
    bf16* Vh = Kl + PA_KV_TILE;
    bf16* Vl = Vh + PA_KV_TILE;
    // This block's query block qb and piece of its positions (units in the order of
    // pa_unit, above: the query blocks with the most positions first).
    const int gkv = blockIdx.x, blocks = (rows + tokens_per_block - 1) / tokens_per_block;
    int qb = blocks - 1 - blockIdx.y, pieces = 1, piece_index = 0;
    if (piece > 0) pa_unit(blockIdx.y, blocks, start, tokens_per_block, piece, qb, pieces, piece_index);
    const int t0 = qb * tokens_per_block;
    const int group = n_heads / n_kv, row = n_kv * d, d4 = d / 4;
    const int tcount = min(tokens_per_block, rows - t0);
    if (tcount <= 0) return;
    const int nq = tcount * group;  // query vectors: r -> token t0 + r / group, head gkv * group + r % group
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
    const float scale = 1.0f / sqrtf((float)d);
    for (int e = tid; e < PA_ROWS * d4; e += PA_THREADS) {
        const int r = e / d4, c = (e % d4) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < nq) v = *reinterpret_cast<const float4*>(q + ((long long)(t0 + r / group) * n_heads + gkv * group + r % group) * d + c);
        pa_split4(v, Qh + r * PA_LD + c, Ql + r * PA_LD + c);
    }
    // This thread's two rows (g and g + 8 of the warp's 16) and their positions; rows past nq
    // take the last token's (finite softmax, never written).
    const int w0 = warp * 16, ra = w0 + g, rb = ra + 8;
    const int base = start + t0;
    const int pos_a = base + min(ra, nq - 1) / group, pos_b = base + min(rb, nq - 1) / group;
    const int warp_last = base + min(w0 + 15, nq - 1) / group, last_pos = base + tcount - 1;
    // The piece's positions [first, end): whole tiles before the block's first position, the
    // last piece through its last, so every row sees the piece's first position.
    const int first = piece_index * piece, end = piece_index == pieces - 1 ? last_pos + 1 : first + piece;
    float o[PA_MAX_D / 8][4];
#pragma unroll
    for (int j = 0; j < PA_MAX_D / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[j][e] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;  // l: this lane's share of the row sum

    // K/V tiles pass through registers one tile ahead: the next tile's L2 loads are in flight
    // while the warps compute on the current one.
    float4 kw[PA_STAGE_LOADS], vw[PA_STAGE_LOADS];
    auto load_tile = [&](int p0) {
#pragma unroll
        for (int i = 0; i < PA_STAGE_LOADS; i++) {
            const int e = tid + i * PA_THREADS, j = e / d4, c = (e % d4) * 4, p = p0 + j;
            kw[i] = vw[i] = make_float4(0.f, 0.f, 0.f, 0.f);
            if (e < PA_TILE * d4 && p < end) {
                const long long at = (long long)p * row + gkv * d + c;
                kw[i] = *reinterpret_cast<const float4*>(k_cache + at);
                vw[i] = *reinterpret_cast<const float4*>(v_cache + at);
            }
        }
    };
    if (PA_PREFETCH) load_tile(first);
    for (int p0 = first; p0 < end; p0 += PA_TILE) {
        if (!PA_PREFETCH) load_tile(p0);
        __syncthreads();  // the previous tile is consumed (and Q staged, the first time)
#pragma unroll
        for (int i = 0; i < PA_STAGE_LOADS; i++) {
            const int e = tid + i * PA_THREADS, j = e / d4, c = (e % d4) * 4;
            if (e < PA_TILE * d4) {
                pa_split4(kw[i], Kh + j * PA_LD + c, Kl + j * PA_LD + c);
                pa_split4(vw[i], Vh + j * PA_LD + c, Vl + j * PA_LD + c);
            }
        }
        __syncthreads();
        if (PA_PREFETCH && p0 + PA_TILE < end) load_tile(p0 + PA_TILE);
        if (w0 >= nq || p0 > warp_last) continue;  // no rows, or the whole tile is in their future

        float s[PA_TILE / 8][4];
#pragma unroll
        for (int j = 0; j < PA_TILE / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < PA_MAX_D; kk += 16) {
            if (kk >= d) break;
            unsigned a[4], al[4];
            const int qa = (w0 + g) * PA_LD + kk + tg * 2;
            a[0] = ld_u32(Qh + qa), a[1] = ld_u32(Qh + qa + 8 * PA_LD), a[2] = ld_u32(Qh + qa + 8), a[3] = ld_u32(Qh + qa + 8 * PA_LD + 8);
            al[0] = ld_u32(Ql + qa), al[1] = ld_u32(Ql + qa + 8 * PA_LD), al[2] = ld_u32(Ql + qa + 8), al[3] = ld_u32(Ql + qa + 8 * PA_LD + 8);
#pragma unroll
            for (int j = 0; j < PA_TILE / 8; j++) {
                const int kb = (j * 8 + g) * PA_LD + kk + tg * 2;
                mma_split(s[j], a, al, ld_u32(Kh + kb), ld_u32(Kh + kb + 8), ld_u32(Kl + kb), ld_u32(Kl + kb + 8));
            }
        }

        // online softmax on the accumulators: s[j][0..1] are row a's columns j * 8 + 2 tg (+1),
        // s[j][2..3] row b's
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int j = 0; j < PA_TILE / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int p = p0 + j * 8 + tg * 2 + (e & 1);
                const bool ok = p <= (e < 2 ? pos_a : pos_b);
                s[j][e] = ok ? s[j][e] * scale : -INFINITY;
                if (e < 2) mx_a = fmaxf(mx_a, s[j][e]);
                else mx_b = fmaxf(mx_b, s[j][e]);
            }
#pragma unroll
        for (int sh = 1; sh <= 2; sh <<= 1) {
            mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, sh));
            mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, sh));
        }
        // every row saw the piece's first position in its first tile, so the maxima are finite
        // from then on
        const float new_a = fmaxf(m_a, mx_a), new_b = fmaxf(m_b, mx_b);
        const float corr_a = expf(m_a - new_a), corr_b = expf(m_b - new_b);
        m_a = new_a, m_b = new_b;
        l_a *= corr_a, l_b *= corr_b;
#pragma unroll
        for (int j = 0; j < PA_TILE / 8; j++) {
            s[j][0] = expf(s[j][0] - m_a), s[j][1] = expf(s[j][1] - m_a);
            s[j][2] = expf(s[j][2] - m_b), s[j][3] = expf(s[j][3] - m_b);
            l_a += s[j][0] + s[j][1], l_b += s[j][2] + s[j][3];
        }
#pragma unroll
        for (int j = 0; j < PA_MAX_D / 8; j++) o[j][0] *= corr_a, o[j][1] *= corr_a, o[j][2] *= corr_b, o[j][3] *= corr_b;

        // O += P V: the k16 step kk takes S's n8 tiles 2 kk and 2 kk + 1 as its A fragment
#pragma unroll
        for (int kk = 0; kk < PA_TILE / 16; kk++) {
            unsigned a[4], al[4];
            const float* lo = s[2 * kk];
            const float* hi = s[2 * kk + 1];
            split_bf16x2(lo[0], lo[1], a[0], al[0]);
            split_bf16x2(lo[2], lo[3], a[1], al[1]);
            split_bf16x2(hi[0], hi[1], a[2], al[2]);
            split_bf16x2(hi[2], hi[3], a[3], al[3]);
#pragma unroll
            for (int n = 0; n < PA_MAX_D; n += 16) {
                if (n >= d) break;
                unsigned b[4], bl[4];
                ldmatrix_x4_trans(b, Vh + kk * 16 * PA_LD + n);
                ldmatrix_x4_trans(bl, Vl + kk * 16 * PA_LD + n);
                mma_split(o[n / 8], a, al, b[0], b[1], bl[0], bl[1]);
                mma_split(o[n / 8 + 1], a, al, b[2], b[3], bl[2], bl[3]);
            }
        }
    }
#pragma unroll
    for (int sh = 1; sh <= 2; sh <<= 1) {
        l_a += __shfl_xor_sync(0xffffffffu, l_a, sh);
        l_b += __shfl_xor_sync(0xffffffffu, l_b, sh);
    }
    const int slot_of_first = gkv * gridDim.y + blockIdx.y - piece_index;  // the query block's pieces' slots
    if (pieces > 1) {
        // Unnormalized rows, their maxima and sums into this piece's slot; the last piece of the
        // query block to finish (its counter, re-armed) merges the others into its own.
        float* slot = partial + (long long)(slot_of_first + piece_index) * PA_SLOT;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int r = half ? rb : ra;
            if (r >= nq) continue;
#pragma unroll
            for (int j = 0; j < PA_MAX_D / 8; j++)
                if (j * 8 < d) __stcg(reinterpret_cast<float2*>(slot + r * PA_MAX_D + j * 8 + tg * 2), make_float2(o[j][2 * half], o[j][2 * half + 1]));
            if (tg == 0) slot[PA_ROWS * PA_MAX_D + r] = half ? m_b : m_a, slot[PA_ROWS * PA_MAX_D + PA_ROWS + r] = half ? l_b : l_a;
        }
        unsigned* counter = counters + gkv * blocks + qb;
        if (!is_last_block(counter, pieces)) return;
        if (tid == 0) *counter = 0;
        // The last piece merges the others' rows into its registers: each slot's loads together.
        const float* slots = partial + (long long)slot_of_first * PA_SLOT;
        const int rows_at[2] = {min(ra, nq - 1), min(rb, nq - 1)};
        for (int z = 0; z < pieces; z++) {
            if (z == piece_index) continue;
            const float* at = slots + z * PA_SLOT;
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int r = rows_at[half];
                const float mz = __ldcg(at + PA_ROWS * PA_MAX_D + r), lz = __ldcg(at + PA_ROWS * PA_MAX_D + PA_ROWS + r);
                float2 oz[PA_MAX_D / 8];
#pragma unroll
                for (int j = 0; j < PA_MAX_D / 8; j++)
                    if (j * 8 < d) oz[j] = __ldcg(reinterpret_cast<const float2*>(at + r * PA_MAX_D + j * 8 + tg * 2));
                float& m = half ? m_b : m_a;
                float& l = half ? l_b : l_a;
                const float top = fmaxf(m, mz), mine = expf(m - top), theirs = expf(mz - top);
                m = top, l = l * mine + lz * theirs;
#pragma unroll
                for (int j = 0; j < PA_MAX_D / 8; j++)
                    if (j * 8 < d) {
                        o[j][2 * half] = o[j][2 * half] * mine + oz[j].x * theirs;
                        o[j][2 * half + 1] = o[j][2 * half + 1] * mine + oz[j].y * theirs;
                    }
            }
        }
    }
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int r = half ? rb : ra;
        if (r >= nq) continue;
        const float l = half ? l_b : l_a;
        float* at = out + ((long long)(t0 + r / group) * n_heads + gkv * group + r % group) * d + tg * 2;
#pragma unroll
        for (int j = 0; j < PA_MAX_D / 8; j++)
            if (j * 8 < d) *reinterpret_cast<float2*>(at + j * 8) = make_float2(o[j][2 * half] / l, o[j][2 * half + 1] / l);
    }
}
