// Decode attention of one query token over cache rows 0..=pos, grouped-query aware, scale
// 1/sqrt(d). Launch: grid (n_kv, splits) of ATTN_THREADS; block (g, s) serves the `group` query
// heads sharing KV head g over the s-th slice of positions. Slices are sized from `pos` on the
// device (one captured graph serves every position): at least `min_chunk` positions (host), at
// most ATTN_TILE; blocks past the active slices exit at once. A block stages its slice's K and V
// rows in shared memory -- rows before `pos` (earlier steps wrote them) before grid_dep_wait, the
// row at `pos` (this step's qkv_rope output) after it -- then scores, softmax and P.V run from
// shared memory. One active slice writes the output directly; several (flash-decoding) each
// publish (max, sum, acc[d]) per head and the last block of KV head g merges them.
// The loops over heads and positions stay loops: the kernel runs 28 times a token with its
// instructions fetched cold, so unrolled code costs more than it saves.
// Bytes: 2 * (pos+1) * d * 2 per KV head (K and V, each read once) + partials when split.
// Limits (checked on the host): group <= ATTN_MAX_GROUP, d <= ATTN_MAX_D, d % 8 == 0,
// splits * ATTN_TILE >= max_seq, splits <= ATTN_MAX_SPLITS.

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_TILE 32
#define ATTN_MAX_GROUP 8
#define ATTN_MAX_D 256
#define ATTN_MAX_SPLITS 1024
#define ATTN_ROW (ATTN_MAX_D / 8 + 1)  // 16-byte chunks per staged row; the pad spreads rows over banks

__device__ __forceinline__ void fma8_f32(float (&acc)[8], float p, uint4 v) {
    acc[0] = fmaf(p, lo_f32(v.x), acc[0]);
    acc[1] = fmaf(p, hi_f32(v.x), acc[1]);
    acc[2] = fmaf(p, lo_f32(v.y), acc[2]);
    acc[3] = fmaf(p, hi_f32(v.y), acc[3]);
    acc[4] = fmaf(p, lo_f32(v.z), acc[4]);
    acc[5] = fmaf(p, hi_f32(v.z), acc[5]);
    acc[6] = fmaf(p, lo_f32(v.w), acc[6]);
    acc[7] = fmaf(p, hi_f32(v.w), acc[7]);
}

__device__ __forceinline__ float dot8(const float* q, uint4 k) {
    const float4 a = *reinterpret_cast<const float4*>(q), b = *reinterpret_cast<const float4*>(q + 4);
    float s = a.x * lo_f32(k.x);
    s = fmaf(a.y, hi_f32(k.x), s);
    s = fmaf(a.z, lo_f32(k.y), s);
    s = fmaf(a.w, hi_f32(k.y), s);
    s = fmaf(b.x, lo_f32(k.z), s);
    s = fmaf(b.y, hi_f32(k.z), s);
    s = fmaf(b.z, lo_f32(k.w), s);
    return fmaf(b.w, hi_f32(k.w), s);
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention(const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache,
          const int* __restrict__ pos_p, bf16* __restrict__ out, float* __restrict__ partial,
          unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq, int min_chunk) {
    // K and V of the slice; the merge reuses them for split weights (ATTN_MAX_GROUP * ATTN_MAX_SPLITS floats).
    __shared__ uint4 kv_tiles[2][ATTN_TILE][ATTN_ROW];
    __shared__ __align__(16) float qs[ATTN_MAX_GROUP][ATTN_MAX_D];
    __shared__ float ps[ATTN_MAX_GROUP][ATTN_TILE];
    __shared__ float m_sm[ATTN_MAX_GROUP], l_sm[ATTN_MAX_GROUP];
    grid_dep_launch();
    // The position is stable for the whole step (the previous step's `advance`, or the host,
    // wrote it), and so are the cache rows before it.
    const int pos = *pos_p;
    if (pos < 0 || pos >= max_seq) return;
    const int g = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
    const int len = pos + 1, chunk = max((len + splits - 1) / splits, min_chunk);
    const int active = (len + chunk - 1) / chunk;
    if (split >= active) return;
    const int group = n_heads / n_kv, row = n_kv * d, stride = d + 2, cpr = d >> 3;
    const int t0 = split * chunk, n = min(len, t0 + chunk) - t0;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const uint4* k_rows = reinterpret_cast<const uint4*>(k_cache + (long long)t0 * row + g * d);
    const uint4* v_rows = reinterpret_cast<const uint4*>(v_cache + (long long)t0 * row + g * d);
    const int row_chunks = row >> 3;

#pragma unroll 4
    for (int e = tid; e < n * cpr; e += ATTN_THREADS) {
        const int j = e / cpr, c = e - j * cpr;
        if (t0 + j < pos) {
            kv_tiles[0][j][c] = __ldg(k_rows + j * row_chunks + c);
            kv_tiles[1][j][c] = __ldg(v_rows + j * row_chunks + c);
        }
    }
    grid_dep_wait();
    if (t0 + n - 1 == pos) {
        for (int c = tid; c < cpr; c += ATTN_THREADS) {
            kv_tiles[0][n - 1][c] = __ldg(k_rows + (n - 1) * row_chunks + c);
            kv_tiles[1][n - 1][c] = __ldg(v_rows + (n - 1) * row_chunks + c);
        }
    }
    const uint4* qv = reinterpret_cast<const uint4*>(q + (long long)g * group * d);
    for (int e = tid; e < group * cpr; e += ATTN_THREADS) {
        const uint4 u = __ldg(qv + e);
        float* dst = &qs[e / cpr][8 * (e % cpr)];
        dst[0] = lo_f32(u.x), dst[1] = hi_f32(u.x), dst[2] = lo_f32(u.y), dst[3] = hi_f32(u.y);
        dst[4] = lo_f32(u.z), dst[5] = hi_f32(u.z), dst[6] = lo_f32(u.w), dst[7] = hi_f32(u.w);
    }
    __syncthreads();

    // Scores: a thread per (head, position).
    const float scale = 1.0f / sqrtf((float)d);
    for (int item = tid; item < group * n; item += ATTN_THREADS) {
        const int h = item / n, j = item - h * n;
        float s = 0.f;
#pragma unroll 4
        for (int c = 0; c < cpr; c++) s += dot8(&qs[h][8 * c], kv_tiles[0][j][c]);
        ps[h][j] = s * scale;
    }
    __syncthreads();

    // Softmax numerators: a warp per head, a lane per position (n <= ATTN_TILE == 32).
    for (int h = warp; h < group; h += ATTN_WARPS) {
        const float s = lane < n ? ps[h][lane] : -INFINITY;
        const float mx = warp_max(s);
        const float p = lane < n ? expf(s - mx) : 0.f;
        if (lane < n) ps[h][lane] = p;
        const float sum = warp_sum(p);
        if (lane == 0) {
            m_sm[h] = mx;
            l_sm[h] = sum;
        }
    }
    __syncthreads();

    // P.V: a thread per (head, 8-element chunk of V).
    const bool direct = active == 1;
    for (int item = tid; item < group * cpr; item += ATTN_THREADS) {
        const int h = item / cpr, c = item - h * cpr, head = g * group + h;
        float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
        for (int j = 0; j < n; j++) fma8_f32(acc, ps[h][j], kv_tiles[1][j][c]);
        if (direct) {
            const float l = l_sm[h];
            uint4 o;
            o.x = f32_to_bf16(acc[0] / l) | ((unsigned)f32_to_bf16(acc[1] / l) << 16);
            o.y = f32_to_bf16(acc[2] / l) | ((unsigned)f32_to_bf16(acc[3] / l) << 16);
            o.z = f32_to_bf16(acc[4] / l) | ((unsigned)f32_to_bf16(acc[5] / l) << 16);
            o.w = f32_to_bf16(acc[6] / l) | ((unsigned)f32_to_bf16(acc[7] / l) << 16);
            reinterpret_cast<uint4*>(out + (long long)head * d)[c] = o;
        } else {
            float* p = partial + ((long long)head * splits + split) * stride;
            if (c == 0) {
                p[0] = m_sm[h];
                p[1] = l_sm[h];
            }
#pragma unroll
            for (int e = 0; e < 8; e++) p[2 + 8 * c + e] = acc[e];
        }
    }
    if (direct || !is_last_block(counters + g, active)) return;

    // Merge the active splits of KV head g: a warp per head finds the split weights, then a
    // thread per (head, element) sums the splits.
    float* weights = reinterpret_cast<float*>(kv_tiles);  // [group][ATTN_MAX_SPLITS]
    for (int h = warp; h < group; h += ATTN_WARPS) {
        const float* p = partial + (long long)(g * group + h) * splits * stride;
        float mx = -INFINITY;
        for (int sp = lane; sp < active; sp += 32) mx = fmaxf(mx, __ldcg(p + sp * stride));
        mx = warp_max(mx);
        float sum = 0.f;
        for (int sp = lane; sp < active; sp += 32) {
            const float w = expf(__ldcg(p + sp * stride) - mx);  // every active split saw a position
            weights[h * ATTN_MAX_SPLITS + sp] = w;
            sum += w * __ldcg(p + sp * stride + 1);
        }
        sum = warp_sum(sum);
        if (lane == 0) l_sm[h] = sum;
    }
    __syncthreads();
    for (int e = tid; e < group * d; e += ATTN_THREADS) {
        const int h = e / d, i = e - h * d;
        const float* p = partial + (long long)(g * group + h) * splits * stride + 2 + i;
        const float* w = weights + h * ATTN_MAX_SPLITS;
        float a = 0.f;
#pragma unroll 4
        for (int sp = 0; sp < active; sp++) a = fmaf(w[sp], __ldcg(p + sp * stride), a);
        out[(g * group + h) * d + i] = f32_to_bf16(a / l_sm[h]);
    }
    if (tid == 0) counters[g] = 0;
}
