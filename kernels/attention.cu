// Decode attention of one query token over cache rows 0..=pos, grouped-query aware, scale
// 1/sqrt(d). Launch: grid (n_heads / unit_heads, splits) of ATTN_THREADS; block (u, s) serves
// the `unit_heads` query heads u * unit_heads.. (all of them share one KV head: unit_heads
// divides the group) over the s-th slice of positions. Fewer heads a block shorten its
// dependent chains (scores, then sums, per head) at the price of reading a KV row once per
// block instead of once per group. Slices are sized from `pos` on the device (one captured
// graph serves every position) and hold at least `min_chunk` positions (host),
// so a block's loads are few and in flight together; blocks past the active slices exit at once.
// Each thread requests its first K and V rows before grid_dep_wait (rows before `pos` were
// written by earlier steps), the row at `pos` (this step's qkv_rope output) after it. One active
// slice writes the output directly; several (flash-decoding) each publish (max, sum, acc[d]) per
// head and the last one of the block's heads merges them. With `cluster` > 1 (graph path,
// launched in clusters of that many blocks along the splits: LLMC_ATTN_CLUSTER, launch.rs) and
// no more active slices than that, the first cluster's blocks push their (max, sum, acc[d])
// into the shared memory of the blocks that merge them (distributed shared memory, each block
// its share of the elements) and merge after one cluster barrier: no ticket, no trip through L2
// and no remote load (each block pulling the parts between two barriers took 2-4 us more a
// step after 32 tokens and 8-13 us after 1,024 on the H200: bench/results/2026-12-02-h200-push-
// pad.log). Its blocks past the active slices stay for the barriers and contribute empty parts;
// more slices merge as above. attention_proj.cu runs this kernel's body with the output
// projection after it (AttnProj below).
// In a block: (1) teams of d/8 lanes (8 elements per lane) score ATTN_POS positions each per
// pass against each of its query heads, scores kept in shared memory; (2) a warp per head
// takes the max and the exponentials; (3) threads own (8-element chunk of V, slice of positions)
// and accumulate every head, ATTN_POS positions per pass; the slices are summed by shuffles in a
// warp, then across warps in shared memory, in a fixed order. A pass's loads are in flight
// together, the first pass's requested before the wait.
// Everything is f32. Bytes: 2 * (pos+1) * d * 4 per KV head from HBM (K and V; the blocks of a
// group read the same rows at about the same time, L2 hits after the first) + partials when split.
// Limits (checked on the host): unit_heads <= ATTN_MAX_GROUP, d a power of two in 8..=ATTN_MAX_D,
// splits >= max_seq / ATTN_CHUNK, splits <= ATTN_MAX_SPLITS, cluster <= ATTN_MAX_CLUSTER dividing
// splits.

#pragma once
#include "common.cuh"

#define ATTN_THREADS 256
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_MAX_GROUP 8
#define ATTN_MAX_D 256
#define ATTN_CHUNK 256
#define ATTN_MAX_SPLITS 256
// A split's partial result per head: (max, sum, 2 floats of padding) then acc[d], so that acc is
// 16-byte aligned (d % 8 == 0).
#define ATTN_PARTIAL_HEAD 4
// Positions a thread's loads cover per pass (scores and P.V), in flight together (settable for
// experiments). H200, Qwen2.5-1.5B, graph decode, ms/token after 32 / 1,024 tokens: 4 1.262-1.266
// / 1.343-1.344, 8 (176 registers) 1.301-1.302 / 1.492-1.493; with slices of >= 128 positions
// 1.252-1.254 / 1.338-1.340 against 1.265-1.267 / 1.342-1.343 (bench/results/2026-12-01-h200-attn-pos.log).
#ifndef ATTN_POS
#define ATTN_POS 4
#endif
// Splits whose partial rows a merging thread loads at once.
#define ATTN_MERGE_LOADS 8
// The most blocks of a cluster (the portable cluster size).
#define ATTN_MAX_CLUSTER 8
// attn_load_pass phases.
#define ATTN_BEFORE_WAIT 0
#define ATTN_AFTER_WAIT 1
#define ATTN_ALL_ROWS 2

// Thread block clusters (sm_90): this block's rank in its cluster, a barrier of every thread of
// the cluster (release/acquire: shared-memory writes before it are seen by the other blocks
// after it) and its two halves, and a store to another block's shared memory.
// Before sm_90 there are no clusters (the host never asks for them there).
__device__ __forceinline__ unsigned cluster_rank() {
    unsigned r = 0;
#if __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
    return r;
}
__device__ __forceinline__ void cluster_sync() {
#if __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
// The two halves of cluster_sync apart: a relaxed arrival (nothing to publish yet), and the wait
// for every block's arrival.
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
// Stores a float to another block's shared memory at the address of `p` in this one.
__device__ __forceinline__ void cluster_store(float* p, unsigned rank, float v) {
#if __CUDA_ARCH__ >= 900
    unsigned local = static_cast<unsigned>(__cvta_generic_to_shared(p)), remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
    asm volatile("st.shared::cluster.f32 [%0], %1;" ::"r"(remote), "f"(v) : "memory");
#else
    *p = v;
#endif
}

// Elements i0..i0+7 of a row (zeros past d; d % 8 == 0, checked on the host), as two 16-byte
// loads with Wait::load (the row at `pos` may have been written during a persistent launch).
template <class Wait>
__device__ __forceinline__ void attn_load8(const float* __restrict__ p, int i0, int d, float (&v)[8]) {
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = a;
    if (i0 < d) {
        a = Wait::load(reinterpret_cast<const float4*>(p + i0));
        b = Wait::load(reinterpret_cast<const float4*>(p + i0 + 4));
    }
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

// Rows j0, j0 + step, ... (ATTN_POS of them) of a slice into v, elements i0..i0+7: rows at or
// past n are zeros; with `before_wait`, only rows before `pos` are read (they are stable for the
// step), else only the row at `pos` (this step's qkv_rope output): the rows of a first pass are
// requested in two goes around the wait.
template <class Wait>
__device__ __forceinline__ void attn_load_pass(const float* __restrict__ base, int j0, int step, int n, int row, int i0,
                                               int d, int pos_row, int phase, float (&v)[ATTN_POS][8]) {
#pragma unroll
    for (int u = 0; u < ATTN_POS; u++) {
        const int j = j0 + u * step;
        const bool load = j < n && (phase == ATTN_ALL_ROWS || (phase == ATTN_BEFORE_WAIT ? j < pos_row : j == pos_row));
        if (load) attn_load8<Wait>(base + (long long)j * row, i0, d, v[u]);
        else if (j >= n) {
#pragma unroll
            for (int e = 0; e < 8; e++) v[u][e] = 0.f;
        }
    }
}

// What attention_proj.cu asks of attention_unit (nothing, by default): `values`, where the block
// leaves its share of the output (elements split * d / cluster.. of its head; one head a block)
// in shared memory. Its launch has one cluster of slices a head, and every step merges in the
// cluster (also one slice, which alone would write out directly).
struct AttnProj {
    float* values;
};

// One block's work: the `group` query heads unit * group.. (a KV head's or a part of them) over
// slice `split` of `splits`. Every thread calls it; returns are uniform over the block, and
// wait() (called by every thread that gets past them) comes before anything this step wrote is
// read. Returns whether proj.values holds the block's share (uniform over the block).
template <class Wait>
__device__ __forceinline__ bool attention_unit(const float* __restrict__ q, const float* __restrict__ k_cache,
                                               const float* __restrict__ v_cache, const int* __restrict__ pos_p,
                                               float* __restrict__ out, float* __restrict__ partial,
                                               unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq,
                                               int min_chunk, int group, int unit, int split, int splits, int cluster,
                                               Wait wait, AttnProj proj = AttnProj{}) {
    // The position is stable for the whole step (the previous step's `advance`, or the host,
    // wrote it), and so are the cache rows before it: both are read before the wait.
    const int pos = *pos_p;
    if (pos < 0 || pos >= max_seq) return false;
    const int len = pos + 1, chunk = max((len + splits - 1) / splits, min_chunk);
    const int active = (len + chunk - 1) / chunk;
    // Slices that fit the first cluster merge in it (see the header); its idle blocks stay.
    const bool clustered = cluster > 1 && (active > 1 || proj.values) && active <= cluster;
    if (split >= (clustered ? cluster : active)) return false;
    // Blocks push their parts into the merging blocks' shared memory, which is only valid once
    // every block of the cluster runs: each says so now and waits for the others before pushing.
    if (clustered) cluster_arrive_relaxed();
    // the unit's first head, and its KV head
    const int head0 = unit * group, g = head0 / (n_heads / n_kv), row = n_kv * d, stride = d + ATTN_PARTIAL_HEAD;
    const int t0 = split * chunk, n = max(min(len, t0 + chunk) - t0, 0), pos_row = pos - t0;  // n = 0: an empty part
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    // A row is cpr 8-element chunks (a power of two, at most 32: d is checked on the host).
    // Scores: lane c of a team of cpr lanes holds K elements 8c..8c+7 of the team's positions.
    // P.V: thread (slice, c3) accumulates V chunk c3 of its slice's positions for every head.
    // Both take positions j, j + teams (= slices), ... ATTN_POS per pass, loads in flight together.
    const int cpr = d >> 3, teams = ATTN_THREADS / cpr;
    const int c = tid & (cpr - 1), team = tid / cpr;
    const float scale = 1.0f / sqrtf((float)d);
    const float* k_base = k_cache + (long long)t0 * row + g * d;
    const float* v_base = v_cache + (long long)t0 * row + g * d;
    float kv[ATTN_POS][8], vv[ATTN_POS][8];
    attn_load_pass<Wait>(k_base, team, teams, n, row, 8 * c, d, pos_row, ATTN_BEFORE_WAIT, kv);
    attn_load_pass<Wait>(v_base, team, teams, n, row, 8 * c, d, pos_row, ATTN_BEFORE_WAIT, vv);
    wait();
    attn_load_pass<Wait>(k_base, team, teams, n, row, 8 * c, d, pos_row, ATTN_AFTER_WAIT, kv);
    attn_load_pass<Wait>(v_base, team, teams, n, row, 8 * c, d, pos_row, ATTN_AFTER_WAIT, vv);

    __shared__ __align__(16) float s[ATTN_MAX_GROUP][ATTN_CHUNK];         // scores, probabilities, split weights
    __shared__ __align__(16) float buf[ATTN_MAX_GROUP * ATTN_MAX_D];  // q of the group, then per-warp sums (read as float4)
    __shared__ float m_sm[ATTN_MAX_GROUP], l_sm[ATTN_MAX_GROUP];
    const int qn = group * d;
    for (int e = tid; e < qn; e += ATTN_THREADS) buf[e] = Wait::load(q + (long long)head0 * d + e);
    __syncthreads();
    trace_mark(0);

    // (1) Scores. Loops over heads and passes stay rolled: the code stays small enough for the
    // instruction cache beside the GEMVs in the persistent kernel.
#pragma unroll 1
    for (int b = 0; b < n; b += ATTN_POS * teams) {  // uniform over the block: every lane shuffles
        if (b > 0) attn_load_pass<Wait>(k_base, b + team, teams, n, row, 8 * c, d, pos_row, ATTN_ALL_ROWS, kv);
#pragma unroll 1
        for (int h = 0; h < group; h++) {
            const float4* qh = reinterpret_cast<const float4*>(buf + h * d + 8 * c);
            const float4 qa = qh[0], qb = qh[1];
            float dot[ATTN_POS];
#pragma unroll
            for (int u = 0; u < ATTN_POS; u++) {
                float x = qa.x * kv[u][0];
                x = fmaf(qa.y, kv[u][1], x), x = fmaf(qa.z, kv[u][2], x), x = fmaf(qa.w, kv[u][3], x);
                x = fmaf(qb.x, kv[u][4], x), x = fmaf(qb.y, kv[u][5], x), x = fmaf(qb.z, kv[u][6], x), x = fmaf(qb.w, kv[u][7], x);
                dot[u] = x;
            }
            for (int o = cpr >> 1; o > 0; o >>= 1)
#pragma unroll
                for (int u = 0; u < ATTN_POS; u++) dot[u] += __shfl_xor_sync(0xffffffffu, dot[u], o);
            if (c == 0)
#pragma unroll
                for (int u = 0; u < ATTN_POS; u++)
                    if (b + team + u * teams < n) s[h][b + team + u * teams] = dot[u] * scale;
        }
    }
    __syncthreads();

    // (2) Softmax numerators per head.
    for (int h = warp; h < group; h += ATTN_WARPS) {
        float mx = -INFINITY;
        for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s[h][j]);
        mx = warp_max(mx);
        float sum = 0.f;
        for (int j = lane; j < n; j += 32) {
            const float p = expf(s[h][j] - mx);
            s[h][j] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            m_sm[h] = mx;
            l_sm[h] = sum;
        }
    }
    __syncthreads();

    // (3) P.V, all heads at once (each V chunk is loaded once for the group).
    float acc[ATTN_MAX_GROUP][8];
#pragma unroll
    for (int h = 0; h < ATTN_MAX_GROUP; h++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[h][e] = 0.f;
#pragma unroll 1
    for (int b = 0; b < n; b += ATTN_POS * teams) {
        if (b > 0) attn_load_pass<Wait>(v_base, b + team, teams, n, row, 8 * c, d, pos_row, ATTN_ALL_ROWS, vv);
#pragma unroll
        for (int u = 0; u < ATTN_POS; u++) {
            const int j = b + team + u * teams;
#pragma unroll
            for (int h = 0; h < ATTN_MAX_GROUP; h++) {
                if (h >= group) break;
                const float p = j < n ? s[h][j] : 0.f;  // vv is 0 there too
#pragma unroll
                for (int e = 0; e < 8; e++) acc[h][e] = fmaf(p, vv[u][e], acc[h][e]);
            }
        }
    }
    // Sum the block's slices: first the slices a warp holds (lanes c, c + cpr, ...), then the
    // warps' sums of one head at a time through buf (q is no longer needed), in a fixed order.
#pragma unroll
    for (int h = 0; h < ATTN_MAX_GROUP; h++) {
        if (h >= group) break;
        for (int o = cpr; o < 32; o <<= 1)
#pragma unroll
            for (int e = 0; e < 8; e++) acc[h][e] += __shfl_xor_sync(0xffffffffu, acc[h][e], o);
    }
    trace_mark(1);
    const bool direct = active == 1 && !clustered;
    // Clustered, block r's part of element e goes to block e / share, at recv[r][e % share]
    // there, and its (max, sum) per head to every block: after one cluster barrier each block
    // merges its share from its own shared memory, and no block reads another's after it.
    __shared__ float recv[ATTN_MAX_GROUP * ATTN_MAX_D];
    __shared__ float recv_ml[ATTN_MAX_CLUSTER][2 * ATTN_MAX_GROUP];
    const int elements = group * d, share = (elements + cluster - 1) / cluster, rank = cluster_rank();
    if (clustered) {
        cluster_wait();
        if (tid < cluster)
            for (int h = 0; h < group; h++) {
                cluster_store(&recv_ml[rank][2 * h], tid, m_sm[h]);
                cluster_store(&recv_ml[rank][2 * h + 1], tid, l_sm[h]);
            }
    }
#pragma unroll
    for (int h = 0; h < ATTN_MAX_GROUP; h++) {
        if (h >= group) break;
        __syncthreads();  // buf is free (q, or the previous head's sums, fully read)
        if (lane < cpr) {
            float4* dst = reinterpret_cast<float4*>(buf + warp * d + 8 * lane);
            dst[0] = make_float4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]);
            dst[1] = make_float4(acc[h][4], acc[h][5], acc[h][6], acc[h][7]);
        }
        __syncthreads();
        const int head = head0 + h;
        float* p = partial + ((long long)head * splits + split) * stride;
        if (tid < d) {
            float a = 0.f;
#pragma unroll
            for (int w = 0; w < ATTN_WARPS; w++) a += buf[w * d + tid];
            if (direct)
                out[head * d + tid] = a / l_sm[h];
            else if (clustered)
                cluster_store(&recv[rank * share + (h * d + tid) % share], (h * d + tid) / share, a);
            else
                p[ATTN_PARTIAL_HEAD + tid] = a;
        }
        if (!direct && !clustered && tid == 0) *reinterpret_cast<float2*>(p) = make_float2(m_sm[h], l_sm[h]);
    }
    if (direct) return false;
    if (clustered) {
        cluster_sync();  // every part pushed
        for (int e = rank * share + tid; e < min(elements, (rank + 1) * share); e += ATTN_THREADS) {
            const int h = e / d, i = e % d, mine = e - rank * share;
            float m[ATTN_MAX_CLUSTER], l[ATTN_MAX_CLUSTER], v[ATTN_MAX_CLUSTER], mx = -INFINITY;
#pragma unroll
            for (int b = 0; b < ATTN_MAX_CLUSTER; b++) {
                if (b >= cluster) break;
                m[b] = recv_ml[b][2 * h], l[b] = recv_ml[b][2 * h + 1], v[b] = recv[b * share + mine];
            }
#pragma unroll
            for (int b = 0; b < ATTN_MAX_CLUSTER; b++)
                if (b < cluster) mx = fmaxf(mx, m[b]);  // the cluster's first block saw a position
            float sum = 0.f, a = 0.f;
#pragma unroll
            for (int b = 0; b < ATTN_MAX_CLUSTER; b++) {
                if (b >= cluster) break;
                const float w = expf(m[b] - mx);  // 0 for an empty part
                sum = fmaf(w, l[b], sum), a = fmaf(w, v[b], a);
            }
            out[(head0 + h) * d + i] = a / sum;
            if (proj.values) proj.values[mine] = a / sum;
        }
        return proj.values != nullptr;
    }
    if (!is_last_block(counters + unit, active)) return false;

    // Merge the active splits of the unit's heads. A thread owns 4 output elements of a head and
    // loads ATTN_MERGE_LOADS splits' (max, sum) with their 4 elements at once, one trip through
    // L2 a batch, rescaling online (every thread of a head repeats its (max, sum) sums: a few
    // instructions, against a second dependent trip through L2 and a barrier).
    for (int e = 4 * tid; e < group * d; e += 4 * ATTN_THREADS) {
        const int h = e / d, i = e % d;
        const float* p = partial + (long long)(head0 + h) * splits * stride;
        float mx = -INFINITY, sum = 0.f;
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 1
        for (int sp0 = 0; sp0 < active; sp0 += ATTN_MERGE_LOADS) {
            float2 ml[ATTN_MERGE_LOADS];
            float4 v[ATTN_MERGE_LOADS];
#pragma unroll
            for (int u = 0; u < ATTN_MERGE_LOADS; u++) {
                const bool in = sp0 + u < active;
                ml[u] = in ? __ldcg(reinterpret_cast<const float2*>(p + (sp0 + u) * stride)) : make_float2(-INFINITY, 0.f);
                v[u] = in ? __ldcg(reinterpret_cast<const float4*>(p + (sp0 + u) * stride + ATTN_PARTIAL_HEAD + i)) : make_float4(0.f, 0.f, 0.f, 0.f);
            }
            float m = mx;  // every active split saw a position: its max is finite
#pragma unroll
            for (int u = 0; u < ATTN_MERGE_LOADS; u++) m = fmaxf(m, ml[u].x);
            const float r = expf(mx - m);
            sum *= r, a.x *= r, a.y *= r, a.z *= r, a.w *= r;
#pragma unroll
            for (int u = 0; u < ATTN_MERGE_LOADS; u++) {
                const float w = expf(ml[u].x - m);  // 0 past the active splits
                sum = fmaf(w, ml[u].y, sum);
                a.x = fmaf(w, v[u].x, a.x), a.y = fmaf(w, v[u].y, a.y), a.z = fmaf(w, v[u].z, a.z), a.w = fmaf(w, v[u].w, a.w);
            }
            mx = m;
        }
        const float inv = 1.0f / sum;
        float* o = out + (head0 + h) * d + i;
        o[0] = a.x * inv, o[1] = a.y * inv, o[2] = a.z * inv, o[3] = a.w * inv;
    }
    if (tid == 0) counters[unit] = 0;
    return false;
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
          const int* __restrict__ pos_p, float* __restrict__ out, float* __restrict__ partial,
          unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq, int min_chunk, int unit_heads,
          int cluster) {
    DECODE_KERNEL_BEGIN();
    attention_unit(q, k_cache, v_cache, pos_p, out, partial, counters, n_heads, n_kv, d, max_seq, min_chunk, unit_heads, blockIdx.x,
                   blockIdx.y, gridDim.y, cluster, GridWait{});
}
