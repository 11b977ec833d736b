// Flash-decoding attention of one query token over cache rows 0..=pos, grouped-query aware,
// scale 1/sqrt(d). Launch: grid (n_kv, splits) of ATTN_THREADS; block (g, s) takes the `group`
// query heads sharing KV head g and the s-th slice of positions. Slices are sized from `pos` on
// the device (one captured graph serves every position) and hold at least ATTN_MIN_CHUNK
// positions, so short contexts use few splits and the merge stays short. Each warp walks
// positions with an online softmax per head; warps merge in shared memory and publish
// (max, sum, acc[d]) per (head, split) to `partial`; the last block of KV head g merges the
// active splits: a warp per head finds the split weights, then all threads sum coalesced rows.
// Bytes: 2 * (pos+1) * d * 2 per KV head (K and V, each read once) + partials.
// Limits (checked on the host): group <= ATTN_MAX_GROUP, d <= 32 * ATTN_MAX_DL.

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_MAX_GROUP 8
#define ATTN_MAX_DL 8
#define ATTN_MAX_SPLITS 256
#define ATTN_MIN_CHUNK 8

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention(const bf16* __restrict__ q, const bf16* __restrict__ k_cache, const bf16* __restrict__ v_cache,
          const int* __restrict__ pos_p, bf16* __restrict__ out, float* __restrict__ partial,
          unsigned* __restrict__ counters, int n_heads, int n_kv, int d, int max_seq) {
    const int pos = *pos_p;
    if (pos < 0 || pos >= max_seq) return;
    const int g = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
    const int group = n_heads / n_kv, row = n_kv * d;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int len = pos + 1, chunk = max((len + splits - 1) / splits, ATTN_MIN_CHUNK);
    const int active = (len + chunk - 1) / chunk;
    const int t0 = split * chunk, t1 = min(len, t0 + chunk);
    const float scale = 1.0f / sqrtf((float)d);

    float qr[ATTN_MAX_GROUP][ATTN_MAX_DL], acc[ATTN_MAX_GROUP][ATTN_MAX_DL], m[ATTN_MAX_GROUP], l[ATTN_MAX_GROUP];
#pragma unroll
    for (int h = 0; h < ATTN_MAX_GROUP; h++) {
        m[h] = -INFINITY;
        l[h] = 0.f;
#pragma unroll
        for (int j = 0; j < ATTN_MAX_DL; j++) {
            const int i = lane + 32 * j;
            qr[h][j] = (h < group && i < d) ? bf16_to_f32(q[(g * group + h) * d + i]) : 0.f;
            acc[h][j] = 0.f;
        }
    }
    for (int t = t0 + warp; t < t1; t += ATTN_WARPS) {
        const bf16* kt = k_cache + (long long)t * row + g * d;
        const bf16* vt = v_cache + (long long)t * row + g * d;
        float kv[ATTN_MAX_DL], vv[ATTN_MAX_DL];
#pragma unroll
        for (int j = 0; j < ATTN_MAX_DL; j++) {
            const int i = lane + 32 * j;
            kv[j] = i < d ? bf16_to_f32(kt[i]) : 0.f;
            vv[j] = i < d ? bf16_to_f32(vt[i]) : 0.f;
        }
#pragma unroll
        for (int h = 0; h < ATTN_MAX_GROUP; h++) {
            if (h >= group) break;
            float dot = 0.f;
#pragma unroll
            for (int j = 0; j < ATTN_MAX_DL; j++) dot = fmaf(qr[h][j], kv[j], dot);
            const float s = warp_sum(dot) * scale;
            const float m_new = fmaxf(m[h], s);
            const float correction = expf(m[h] - m_new), p = expf(s - m_new);
            l[h] = l[h] * correction + p;
#pragma unroll
            for (int j = 0; j < ATTN_MAX_DL; j++) acc[h][j] = acc[h][j] * correction + p * vv[j];
            m[h] = m_new;
        }
    }

    // Merge the warps; a warp that saw no position has m = -inf and weight 0.
    __shared__ float sm_m[ATTN_WARPS][ATTN_MAX_GROUP], sm_l[ATTN_WARPS][ATTN_MAX_GROUP];
    __shared__ float sm_acc[ATTN_WARPS][ATTN_MAX_GROUP][32 * ATTN_MAX_DL];
#pragma unroll
    for (int h = 0; h < ATTN_MAX_GROUP; h++) {
        if (h >= group) break;
        if (lane == 0) {
            sm_m[warp][h] = m[h];
            sm_l[warp][h] = l[h];
        }
#pragma unroll
        for (int j = 0; j < ATTN_MAX_DL; j++)
            if (lane + 32 * j < d) sm_acc[warp][h][lane + 32 * j] = acc[h][j];
    }
    __syncthreads();
    const int stride = d + 2;  // per (head, split): max, sum, acc[d]
    for (int e = threadIdx.x; split < active && e < group * (d + 2); e += ATTN_THREADS) {
        const int h = e / (d + 2), i = e % (d + 2);
        float mx = -INFINITY;
        for (int w = 0; w < ATTN_WARPS; w++) mx = fmaxf(mx, sm_m[w][h]);
        float v = 0.f;
        if (i == 0) {
            v = mx;
        } else if (mx != -INFINITY) {
            for (int w = 0; w < ATTN_WARPS; w++) {
                if (sm_m[w][h] == -INFINITY) continue;
                const float weight = expf(sm_m[w][h] - mx);
                v += weight * (i == 1 ? sm_l[w][h] : sm_acc[w][h][i - 2]);
            }
        }
        partial[((long long)(g * group + h) * splits + split) * stride + i] = v;
    }
    if (!is_last_block(counters + g, splits)) return;

    __shared__ float split_weight[ATTN_MAX_GROUP][ATTN_MAX_SPLITS], total[ATTN_MAX_GROUP];
    for (int h = warp; h < group; h += ATTN_WARPS) {
        const float* p = partial + (long long)(g * group + h) * splits * stride;
        float mx = -INFINITY;
        for (int s = lane; s < active; s += 32) mx = fmaxf(mx, __ldcg(p + s * stride));
        mx = warp_max(mx);
        float sum = 0.f;
        for (int s = lane; s < active; s += 32) {
            const float w = expf(__ldcg(p + s * stride) - mx);  // every active split saw a position
            split_weight[h][s] = w;
            sum += w * __ldcg(p + s * stride + 1);
        }
        sum = warp_sum(sum);
        if (lane == 0) total[h] = sum;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < group * d; e += ATTN_THREADS) {
        const int h = e / d, i = e % d;
        const float* p = partial + (long long)(g * group + h) * splits * stride + 2 + i;
        float a = 0.f;
#pragma unroll 4
        for (int s = 0; s < active; s++) a = fmaf(split_weight[h][s], __ldcg(p + s * stride), a);
        out[(g * group + h) * d + i] = f32_to_bf16(a / total[h]);
    }
    if (threadIdx.x == 0) counters[g] = 0;
}
