// Fused (optional input RMSNorm, norm_w non-null) Q/K/V projection + bias + optional per-head q/k RMSNorm + RoPE + KV-cache write.
// Launch: rows / R blocks of GEMV_THREADS, rows = (n_heads + 2*n_kv) * d, R dividing d so no
// block straddles two heads. Phase 1 is the GEMV (every weight byte read once across the whole
// GPU, not one block per head), writing f32 rows + bias to `scratch`; the last block to finish
// each head (a counter per head) then normalizes and rotates that head with all its threads and
// stores q, or the K/V cache row at `pos`, so the heads' epilogues run in parallel.
// Bytes: rows*K*2 of weights + rows*4*2 of scratch + rows*2 of outputs.
template <int R>
__device__ void qkv_rope_impl(const bf16* x, const bf16* w, const bf16* bias, const bf16* q_norm,
                              const bf16* k_norm, float eps, const float* inv_freq, const int* pos_p, bf16* q_out,
                              bf16* k_cache, bf16* v_cache, float* scratch, unsigned* counter, int n_heads,
                              int n_kv, int d, int k, int max_seq, const bf16* in_norm_w, float norm_eps) {
    const int n = (n_heads + 2 * n_kv) * d;
    const int first = blockIdx.x * R;
    const bf16* rows[R];
    row_pointers<R>(w, first, n, k, rows);
    float acc[R];
    dot_rows<R>(rows, x, in_norm_w, norm_eps, k, acc);  // waits for the earlier kernels (grid_dep_wait)
    const int pos = *pos_p;
    if (pos < 0 || pos >= max_seq) return;  // every block returns: the counter stays armed
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++)
            if (first + i < n) scratch[first + i] = acc[i] + (bias ? bf16_to_f32(bias[first + i]) : 0.f);
    }
    const int head = first / d;
    if (!is_last_block(counter + head, d / R)) return;

    const float* y = scratch + head * d;
    const int half = d / 2;
    bf16* dst;
    const bf16* norm_w;
    if (head < n_heads) {
        dst = q_out + head * d;
        norm_w = q_norm;
    } else if (head < n_heads + n_kv) {
        dst = k_cache + ((long long)pos * n_kv + (head - n_heads)) * d;
        norm_w = k_norm;
    } else {
        dst = v_cache + ((long long)pos * n_kv + (head - n_heads - n_kv)) * d;
        for (int i = threadIdx.x; i < d; i += GEMV_THREADS) dst[i] = f32_to_bf16(__ldcg(y + i));
        if (threadIdx.x == 0) counter[head] = 0;
        return;
    }
    float inv = 1.f;
    if (norm_w) {
        float ss = 0.f;
        for (int i = threadIdx.x; i < d; i += GEMV_THREADS) {
            const float v = __ldcg(y + i);
            ss += v * v;
        }
        inv = 1.0f / sqrtf(block_sum(ss) / (float)d + eps);
    }
    const float fpos = (float)pos;
    for (int i = threadIdx.x; i < half; i += GEMV_THREADS) {
        float a = __ldcg(y + i), b = __ldcg(y + i + half);
        if (norm_w) {
            a *= inv * bf16_to_f32(norm_w[i]);
            b *= inv * bf16_to_f32(norm_w[i + half]);
        }
        float s, c;
        sincosf(fpos * inv_freq[i], &s, &c);
        dst[i] = f32_to_bf16(a * c - b * s);
        dst[i + half] = f32_to_bf16(b * c + a * s);
    }
    if (threadIdx.x == 0) counter[head] = 0;
}

#define QKV_KERNEL(R)                                                                                        \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) qkv_rope_r##R(                                \
        const bf16* x, const bf16* w, const bf16* bias, const bf16* q_norm, const bf16* k_norm, float eps,    \
        const float* inv_freq, const int* pos, bf16* q_out, bf16* k_cache, bf16* v_cache, float* scratch,     \
        unsigned* counter, int n_heads, int n_kv, int d, int k, int max_seq, const bf16* norm_w,              \
        float norm_eps) {                                                                                     \
        qkv_rope_impl<R>(x, w, bias, q_norm, k_norm, eps, inv_freq, pos, q_out, k_cache, v_cache, scratch,    \
                         counter, n_heads, n_kv, d, k, max_seq, norm_w, norm_eps);                            \
    }

QKV_KERNEL(1)
QKV_KERNEL(2)
QKV_KERNEL(4)
