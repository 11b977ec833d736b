// Prefill attention: causal attention of the `rows` query tokens of a prompt chunk (token t at
// position start + t attends cache rows 0..=start+t), grouped-query aware, scale 1/sqrt(d).
// q, out f32 [rows, n_heads*d], the caches f32.
// Launch: grid (n_kv, ceil(rows / tokens_per_block)), PA_THREADS threads
// (src/exec/cuda/prefill.rs). Block (g, b) takes the tokens_per_block * group query vectors of
// KV head g (at most PA_MAX_Q, in shared memory as f32), walks the positions in tiles of PA_TILE
// K/V rows staged in shared memory once for all of them, and keeps an online softmax per query
// vector: lane j scores position p0 + j, then every lane accumulates 2 output columns per 64 over
// the tile. Static shared memory: 45,824 bytes (under the 48 KiB a block gets without opting in).
// Bytes: each block reads K and V of its KV head up to its last token's position once,
// 2 * (start + t + 1) * d * 4, + its q rows and outputs.
// Limits (host-checked): d even, d <= PA_MAX_D, group <= PA_MAX_Q.

#pragma once
#include "common.cuh"

#define PA_THREADS 128
#define PA_WARPS (PA_THREADS / 32)
#define PA_TILE 32
#define PA_MAX_Q 24
#define PA_MAX_D 128
#define PA_QW (PA_MAX_Q / PA_WARPS)
#define PA_PAIRS (PA_MAX_D / 64)  // column pairs per lane

extern "C" __global__ void __launch_bounds__(PA_THREADS)
prefill_attention(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                  float* __restrict__ out, int rows, int start, int tokens_per_block, int n_heads, int n_kv, int d) {
    __shared__ __align__(16) float qs[PA_MAX_Q][PA_MAX_D];
    __shared__ float2 ks[PA_TILE][PA_MAX_D / 2 + 1];  // padded so lane j's row starts on its own bank
    __shared__ float2 vs[PA_TILE][PA_MAX_D / 2];
    __shared__ float ps[PA_WARPS][PA_TILE];
    const int gkv = blockIdx.x, t0 = blockIdx.y * tokens_per_block;
    const int group = n_heads / n_kv, row = n_kv * d, d2 = d / 2;
    const int tcount = min(tokens_per_block, rows - t0);
    if (tcount <= 0) return;
    const int nq = tcount * group;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float scale = 1.0f / sqrtf((float)d);
    for (int e = threadIdx.x; e < nq * d; e += PA_THREADS) {
        const int qi = e / d, i = e % d;
        const int t = t0 + qi / group, h = gkv * group + qi % group;
        qs[qi][i] = q[((long long)t * n_heads + h) * d + i];
    }
    float m[PA_QW], l[PA_QW], acc[PA_QW][2 * PA_PAIRS];
#pragma unroll
    for (int j = 0; j < PA_QW; j++) {
        m[j] = -INFINITY;
        l[j] = 0.f;
#pragma unroll
        for (int i = 0; i < 2 * PA_PAIRS; i++) acc[j][i] = 0.f;
    }
    const int last_pos = start + t0 + tcount - 1;
    for (int p0 = 0; p0 <= last_pos; p0 += PA_TILE) {
        __syncthreads();  // the previous tile is consumed (and qs written, the first time)
        for (int e = threadIdx.x; e < PA_TILE * d2; e += PA_THREADS) {
            const int j = e / d2, c = e % d2, p = p0 + j;
            float2 kw = make_float2(0.f, 0.f), vw = kw;
            if (p <= last_pos) {
                const long long at = (long long)p * row + gkv * d;
                kw = reinterpret_cast<const float2*>(k_cache + at)[c];
                vw = reinterpret_cast<const float2*>(v_cache + at)[c];
            }
            ks[j][c] = kw;
            vs[j][c] = vw;
        }
        __syncthreads();
#pragma unroll
        for (int jq = 0; jq < PA_QW; jq++) {
            const int qi = warp + PA_WARPS * jq;
            if (qi >= nq) break;
            const int qpos = start + t0 + qi / group;
            if (p0 > qpos) continue;  // the whole tile is in this query's future
            const int p = p0 + lane;
            float s = -INFINITY;
            if (p <= qpos) {
                float dot = 0.f;
                for (int c = 0; c < d2; c++) {
                    const float2 kw = ks[lane][c];
                    const float2 qq = *reinterpret_cast<const float2*>(&qs[qi][2 * c]);
                    dot = fmaf(qq.x, kw.x, dot);
                    dot = fmaf(qq.y, kw.y, dot);
                }
                s = dot * scale;
            }
            const float m_new = fmaxf(m[jq], warp_max(s));
            const float correction = expf(m[jq] - m_new);
            const float pr = p <= qpos ? expf(s - m_new) : 0.f;
            l[jq] = l[jq] * correction + warp_sum(pr);
            ps[warp][lane] = pr;
            __syncwarp();
#pragma unroll
            for (int i = 0; i < 2 * PA_PAIRS; i++) acc[jq][i] *= correction;
            const int tile_end = min(PA_TILE, qpos - p0 + 1);
            for (int j = 0; j < tile_end; j++) {
                const float pj = ps[warp][j];
#pragma unroll
                for (int i = 0; i < PA_PAIRS; i++) {
                    const int c = lane + 32 * i;
                    if (c < d2) {
                        const float2 vw = vs[j][c];
                        acc[jq][2 * i] = fmaf(pj, vw.x, acc[jq][2 * i]);
                        acc[jq][2 * i + 1] = fmaf(pj, vw.y, acc[jq][2 * i + 1]);
                    }
                }
            }
            __syncwarp();
            m[jq] = m_new;
        }
    }
#pragma unroll
    for (int jq = 0; jq < PA_QW; jq++) {
        const int qi = warp + PA_WARPS * jq;
        if (qi >= nq) break;
        const int t = t0 + qi / group, h = gkv * group + qi % group;
        float* o = out + ((long long)t * n_heads + h) * d;
#pragma unroll
        for (int i = 0; i < PA_PAIRS; i++) {
            const int c = lane + 32 * i;
            if (c < d2) {
                o[2 * c] = acc[jq][2 * i] / l[jq];
                o[2 * c + 1] = acc[jq][2 * i + 1] / l[jq];
            }
        }
    }
}
