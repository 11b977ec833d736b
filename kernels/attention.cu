// Decode attention of one query token over cache rows 0..=pos, grouped-query aware, scale
// 1/sqrt(d). Launch: grid (n_kv, splits) of ATTN_THREADS; block (g, s) serves the `group` query
// heads sharing KV head g over the s-th slice of positions. Slices are sized from `pos` on the
// device (one captured graph serves every position) and hold at least `min_chunk` positions (host),
// so a block's loads are few and in flight together; blocks past the active slices exit at once.
// Each thread requests its first K and V rows before grid_dep_wait (rows before `pos` were
// written by earlier steps), the row at `pos` (this step's qkv_rope output) after it. One active
// slice writes the output directly; several (flash-decoding) each publish (max, sum, acc[d]) per
// head and the last one of KV head g merges them.
// In a block: (1) teams of lanes (8 elements per lane, a power of two of lanes per row) score one
// position each against every query head of the group, scores kept in shared memory; (2) a
// warp per head takes the max and the exponentials; (3) threads own (8-element chunk of V,
// slice of positions) and accumulate every head, then the slices are summed in shared memory.
// Everything is f32. Bytes: 2 * (pos+1) * d * 4 per KV head (K and V, each read once) +
// partials when split.
// Limits (checked on the host): group <= ATTN_MAX_GROUP, d <= ATTN_MAX_D, d % 8 == 0,
// splits >= max_seq / ATTN_CHUNK, splits <= ATTN_MAX_SPLITS.

#define ATTN_THREADS 256
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_MAX_GROUP 8
#define ATTN_MAX_D 256
#define ATTN_CHUNK 256
#define ATTN_MAX_SPLITS 256
// A split's partial result per head: (max, sum, 2 floats of padding) then acc[d], so that acc is
// 16-byte aligned (d % 8 == 0).
#define ATTN_PARTIAL_HEAD 4

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

// One block's work: KV head g over slice `split` of `splits`. Every thread calls it; returns are
// uniform over the block, and wait() (called by every thread that gets past them) comes before
// anything this step wrote is read.
template <class Wait>
__device__ __forceinline__ void attention_unit(const float* __restrict__ q, const float* __restrict__ k_cache,
                                               const float* __restrict__ v_cache, const int* __restrict__ pos_p,
                                               float* __restrict__ out, float* __restrict__ partial,
                                               unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq,
                                               int min_chunk, int g, int split, int splits, Wait wait) {
    // The position is stable for the whole step (the previous step's `advance`, or the host,
    // wrote it), and so are the cache rows before it: both are read before the wait.
    const int pos = *pos_p;
    if (pos < 0 || pos >= max_seq) return;
    const int len = pos + 1, chunk = max((len + splits - 1) / splits, min_chunk);
    const int active = (len + chunk - 1) / chunk;
    if (split >= active) return;
    const int group = n_heads / n_kv, row = n_kv * d, stride = d + ATTN_PARTIAL_HEAD;
    const int t0 = split * chunk, n = min(len, t0 + chunk) - t0;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int cpr = d >> 3;  // 8-element chunks per row
    const float scale = 1.0f / sqrtf((float)d);
    const float* k_base = k_cache + (long long)t0 * row + g * d;
    const float* v_base = v_cache + (long long)t0 * row + g * d;
    // Phase (1): a team of tl lanes takes one position; lane c of the team holds elements 8c..8c+7.
    int tl = 1;
    while (tl < cpr) tl <<= 1;
    const int per_warp = 32 / tl, teams = ATTN_WARPS * per_warp;
    const int c = lane & (tl - 1), team = warp * per_warp + lane / tl;
    // Phase (3): thread = (chunk c3 of V, slice of positions).
    const int slices = ATTN_THREADS / cpr, c3 = tid % cpr, slice = tid / cpr;
    // Every thread's first K and V rows are requested at once (on a short slice they are all
    // it reads); the row at `pos` is this step's qkv_rope output, read after the wait.
    const int jk = min(team, n - 1), jv = min(slice, n - 1);
    float k_first[8], v_first[8];
    if (t0 + jk < pos) attn_load8<Wait>(k_base + (long long)jk * row, 8 * c, d, k_first);
    if (t0 + jv < pos) attn_load8<Wait>(v_base + (long long)jv * row, 8 * c3, d, v_first);
    wait();
    if (t0 + jk >= pos) attn_load8<Wait>(k_base + (long long)jk * row, 8 * c, d, k_first);
    if (t0 + jv >= pos) attn_load8<Wait>(v_base + (long long)jv * row, 8 * c3, d, v_first);

    __shared__ float s[ATTN_MAX_GROUP][ATTN_CHUNK];         // scores, probabilities, split weights
    __shared__ float buf[ATTN_MAX_GROUP * ATTN_MAX_D + 8];  // q of the group, then slice sums
    __shared__ float m_sm[ATTN_MAX_GROUP], l_sm[ATTN_MAX_GROUP];
    // The group's q; zeros past it (a lane past d multiplies them by its zero K elements).
    const int qn = group * d;
    for (int e = qn + tid; e < ATTN_MAX_GROUP * ATTN_MAX_D + 8; e += ATTN_THREADS) buf[e] = 0.f;
    for (int e = tid; e < qn; e += ATTN_THREADS) buf[e] = Wait::load(q + (long long)g * qn + e);
    __syncthreads();

    // (1) Scores. Loops over heads and positions stay rolled: the code is small enough to stay in
    // the instruction cache beside the GEMVs in the persistent kernel (unrolled, this file was
    // 106 KiB of SASS).
#pragma unroll 1
    for (int b = 0; b < n; b += teams) {  // uniform over the warp: every lane reaches the shuffles
        const int j = b + team;
        float kv[8];
        if (b == 0) {
#pragma unroll
            for (int e = 0; e < 8; e++) kv[e] = k_first[e];
        } else {
            attn_load8<Wait>(k_base + (long long)min(j, n - 1) * row, 8 * c, d, kv);
        }
#pragma unroll 1
        for (int h = 0; h < group; h++) {
            // Past d, kv is 0 and qh stays inside buf (zeros or the next head's q).
            const float4* qh = reinterpret_cast<const float4*>(buf + h * d + 8 * c);
            const float4 qa = qh[0], qb = qh[1];
            float dot = qa.x * kv[0];
            dot = fmaf(qa.y, kv[1], dot), dot = fmaf(qa.z, kv[2], dot), dot = fmaf(qa.w, kv[3], dot);
            dot = fmaf(qb.x, kv[4], dot), dot = fmaf(qb.y, kv[5], dot), dot = fmaf(qb.z, kv[6], dot), dot = fmaf(qb.w, kv[7], dot);
            for (int o = tl >> 1; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (c == 0 && j < n) s[h][j] = dot * scale;
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
    if (slice < slices) {
#pragma unroll 1
        for (int j = slice; j < n; j += slices) {
            float vv[8];
            if (j == slice) {
#pragma unroll
                for (int e = 0; e < 8; e++) vv[e] = v_first[e];
            } else {
                attn_load8<Wait>(v_base + (long long)j * row, 8 * c3, d, vv);
            }
#pragma unroll
            for (int h = 0; h < ATTN_MAX_GROUP; h++) {
                if (h >= group) break;
                const float p = s[h][j];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[h][e] = fmaf(p, vv[e], acc[h][e]);
            }
        }
    }
    // Sum the slices of one head at a time through buf (q is no longer needed). The loop is
    // rolled; head h's accumulators are picked by a select chain instead.
    const bool direct = active == 1;
#pragma unroll 1
    for (int h = 0; h < group; h++) {
        float mine[8];
#pragma unroll
        for (int e = 0; e < 8; e++) mine[e] = acc[0][e];
#pragma unroll
        for (int hh = 1; hh < ATTN_MAX_GROUP; hh++)
#pragma unroll
            for (int e = 0; e < 8; e++) mine[e] = hh == h ? acc[hh][e] : mine[e];
        __syncthreads();  // buf is free (q, or the previous head's sums, fully read)
        if (slice < slices && 8 * c3 < d) {
            float4* dst = reinterpret_cast<float4*>(buf + slice * d + 8 * c3);
            dst[0] = make_float4(mine[0], mine[1], mine[2], mine[3]);
            dst[1] = make_float4(mine[4], mine[5], mine[6], mine[7]);
        }
        __syncthreads();
        const int head = g * group + h;
        float* p = partial + ((long long)head * splits + split) * stride;
        if (tid < d) {
            // Four independent sums: the slices' loads overlap.
            float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
            int sl = 0;
            for (; sl + 4 <= slices; sl += 4) {
                a0 += buf[sl * d + tid], a1 += buf[(sl + 1) * d + tid];
                a2 += buf[(sl + 2) * d + tid], a3 += buf[(sl + 3) * d + tid];
            }
            for (; sl < slices; sl++) a0 += buf[sl * d + tid];
            const float a = (a0 + a1) + (a2 + a3);
            if (direct)
                out[head * d + tid] = a / l_sm[h];
            else
                p[ATTN_PARTIAL_HEAD + tid] = a;
        }
        if (!direct && tid == 0) *reinterpret_cast<float2*>(p) = make_float2(m_sm[h], l_sm[h]);
    }
    if (direct || !is_last_block(counters + g, active)) return;

    // Merge the active splits of KV head g. A warp per head reads every split's (max, sum) in one
    // pass (online rescaling, the maxima parked in s), then threads own 4 output elements and
    // load every split's 4 at once: two L2 round trips in all.
    for (int h = warp; h < group; h += ATTN_WARPS) {
        const float* p = partial + (long long)(g * group + h) * splits * stride;
        float mx = -INFINITY, sum = 0.f;
        for (int sp = lane; sp < active; sp += 32) {
            const float2 ml = __ldcg(reinterpret_cast<const float2*>(p + sp * stride));  // every active split saw a position
            const float m = fmaxf(mx, ml.x);
            sum = sum * expf(mx - m) + ml.y * expf(ml.x - m);
            mx = m;
            s[h][sp] = ml.x;
        }
        const float m = warp_max(mx);
        sum = warp_sum(mx == -INFINITY ? 0.f : sum * expf(mx - m));
        __syncwarp();
        for (int sp = lane; sp < active; sp += 32) s[h][sp] = expf(s[h][sp] - m);
        if (lane == 0) l_sm[h] = sum;
    }
    __syncthreads();
    for (int e = 4 * tid; e < group * d; e += 4 * ATTN_THREADS) {
        const int h = e / d, i = e % d;
        const float* p = partial + (long long)(g * group + h) * splits * stride + ATTN_PARTIAL_HEAD + i;
        float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 16
        for (int sp = 0; sp < active; sp++) {
            const float4 v = __ldcg(reinterpret_cast<const float4*>(p + sp * stride));
            const float w = s[h][sp];
            a.x = fmaf(w, v.x, a.x), a.y = fmaf(w, v.y, a.y), a.z = fmaf(w, v.z, a.z), a.w = fmaf(w, v.w, a.w);
        }
        const float inv = 1.0f / l_sm[h];
        float* o = out + (g * group + h) * d + i;
        o[0] = a.x * inv, o[1] = a.y * inv, o[2] = a.z * inv, o[3] = a.w * inv;
    }
    if (tid == 0) counters[g] = 0;
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
          const int* __restrict__ pos_p, float* __restrict__ out, float* __restrict__ partial,
          unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq, int min_chunk) {
    grid_dep_launch();
    attention_unit(q, k_cache, v_cache, pos_p, out, partial, counters, n_heads, n_kv, d, max_seq, min_chunk, blockIdx.x,
                   blockIdx.y, gridDim.y, GridWait{});
}
