// Batch-1 GEMV family: y[r] = epilogue(x . W[r]) for W bf16 [N, K] row-major, x bf16 [K].
// Launch: ceil(N / R) blocks of GEMV_THREADS threads; block b owns rows b*R .. b*R+R-1
// (gate_up_silu: those gate rows and the matching up rows). R in {1, 2, 4, 8} is picked per
// step by the host (src/exec/cuda/launch.rs) so the grid fills the GPU. Threads stride K in
// 16-byte chunks (8 bf16), so every weight byte is read exactly once, coalesced, with 2R
// independent 16-byte loads in flight per thread; f32 accumulation; warp-shuffle reduction.
// Bytes: N*K*2 of weights (the whole cost) + K*2 of x (L1/L2 hits) + N outputs.
// Requires K % 8 == 0 and 16-byte aligned rows (checked on the host).

#define GEMV_THREADS 128

__device__ __forceinline__ void fma8(float& acc, uint4 w, uint4 x) {
    acc = fmaf(lo_f32(w.x), lo_f32(x.x), acc);
    acc = fmaf(hi_f32(w.x), hi_f32(x.x), acc);
    acc = fmaf(lo_f32(w.y), lo_f32(x.y), acc);
    acc = fmaf(hi_f32(w.y), hi_f32(x.y), acc);
    acc = fmaf(lo_f32(w.z), lo_f32(x.z), acc);
    acc = fmaf(hi_f32(w.z), hi_f32(x.z), acc);
    acc = fmaf(lo_f32(w.w), lo_f32(x.w), acc);
    acc = fmaf(hi_f32(w.w), hi_f32(x.w), acc);
}

// One 16-byte chunk of RMS-normalized x: bf16(x * (inv * w)) per element, exactly as the
// rms_norm kernel stores it.
__device__ __forceinline__ uint4 norm_chunk(uint4 x, uint4 w, float inv) {
    const unsigned* u = reinterpret_cast<const unsigned*>(&x);
    const unsigned* gu = reinterpret_cast<const unsigned*>(&w);
    uint4 o;
    unsigned* ou = reinterpret_cast<unsigned*>(&o);
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const unsigned lo = f32_to_bf16(lo_f32(u[e]) * (inv * lo_f32(gu[e])));
        const unsigned hi = f32_to_bf16(hi_f32(u[e]) * (inv * hi_f32(gu[e])));
        ou[e] = lo | (hi << 16);
    }
    return o;
}

__device__ __forceinline__ float sumsq8(uint4 v) {
    const unsigned* u = reinterpret_cast<const unsigned*>(&v);
    float ss = 0.f;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const float a = lo_f32(u[e]), b = hi_f32(u[e]);
        ss += a * a + b * b;
    }
    return ss;
}

// This thread's two weight chunks c and c + GEMV_THREADS of every row (zeros past the end).
template <int R>
__device__ __forceinline__ void load_weights(const bf16* const (&rows)[R], int c, int chunks, uint4 (&wa)[R],
                                             uint4 (&wb)[R]) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < R; i++) {
        wa[i] = c < chunks ? __ldg(reinterpret_cast<const uint4*>(rows[i]) + c) : zero;
        wb[i] = c + GEMV_THREADS < chunks ? __ldg(reinterpret_cast<const uint4*>(rows[i]) + c + GEMV_THREADS) : zero;
    }
}

// Dot products of x with R rows; the block's totals land in `out` of threadIdx.x == 0.
// With norm_w non-null, x is first RMS-normalized (Op docs: norm: Some(eps)): every block
// recomputes sum(x^2) over all of x, after requesting its first weights so that the
// reduction's latency hides behind them.
template <int R>
__device__ __forceinline__ void dot_rows(const bf16* const (&rows)[R], const bf16* __restrict__ x,
                                         const bf16* __restrict__ norm_w, float eps, int k, float (&out)[R]) {
    const int chunks = k >> 3;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    const uint4* gv = reinterpret_cast<const uint4*>(norm_w);
    float acc[R];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0.f;
    int c = threadIdx.x;
    uint4 wa[R], wb[R];
    grid_dep_launch();
    load_weights<R>(rows, c, chunks, wa, wb);
    grid_dep_wait();  // x (and everything after) comes from earlier kernels
    float inv = 1.f;
    if (norm_w) {
        float ss = 0.f;
        for (int j = threadIdx.x; j < chunks; j += GEMV_THREADS) ss += sumsq8(__ldg(xv + j));
        inv = 1.0f / sqrtf(block_sum(ss) / (float)k + eps);
    }
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (; c < chunks; c += 2 * GEMV_THREADS) {
        uint4 xa = __ldg(xv + c);
        uint4 xb = c + GEMV_THREADS < chunks ? __ldg(xv + c + GEMV_THREADS) : zero;
        if (norm_w) {
            xa = norm_chunk(xa, __ldg(gv + c), inv);
            if (c + GEMV_THREADS < chunks) xb = norm_chunk(xb, __ldg(gv + c + GEMV_THREADS), inv);
        }
#pragma unroll
        for (int i = 0; i < R; i++) {
            fma8(acc[i], wa[i], xa);
            fma8(acc[i], wb[i], xb);
        }
        load_weights<R>(rows, c + 2 * GEMV_THREADS, chunks, wa, wb);
    }
    __shared__ float partial[GEMV_THREADS / 32][R];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < R; i++) {
        const float v = warp_sum(acc[i]);
        if (lane == 0) partial[warp][i] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++) {
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < GEMV_THREADS / 32; j++) s += partial[j][i];
            out[i] = s;
        }
    }
}

// Rows past the end alias the last row: read (cheaply, from cache) but never stored.
template <int R>
__device__ __forceinline__ void row_pointers(const bf16* w, int first, int n, int k, const bf16* (&rows)[R]) {
#pragma unroll
    for (int i = 0; i < R; i++) rows[i] = w + (long long)min(first + i, n - 1) * k;
}

// Linear and LinearResidual: y = bf16(x.W[r] + (bias[r] + residual[r])); bias/residual may be null.
template <int R>
__device__ void linear_impl(const bf16* x, const bf16* w, const bf16* bias, const bf16* residual, bf16* out,
                            int n, int k) {
    const int first = blockIdx.x * R;
    const bf16* rows[R];
    row_pointers<R>(w, first, n, k, rows);
    float acc[R];
    dot_rows<R>(rows, x, nullptr, 0.f, k, acc);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int r = first + i;
            if (r >= n) break;
            const float extra = (bias ? bf16_to_f32(bias[r]) : 0.f) + (residual ? bf16_to_f32(residual[r]) : 0.f);
            out[r] = f32_to_bf16(acc[i] + extra);
        }
    }
}

// LmHead: f32 logits, no rounding. norm_w: optional input RMSNorm (null for none).
template <int R>
__device__ void lm_head_impl(const bf16* x, const bf16* w, const bf16* norm_w, float eps, float* out, int n, int k) {
    const int first = blockIdx.x * R;
    const bf16* rows[R];
    row_pointers<R>(w, first, n, k, rows);
    float acc[R];
    dot_rows<R>(rows, x, norm_w, eps, k, acc);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++)
            if (first + i < n) out[first + i] = acc[i];
    }
}

// GateUpSilu over W [2F, K] (gate rows first): y[r] = bf16(silu(g_r) * u_r).
template <int R>
__device__ void gate_up_silu_impl(const bf16* x, const bf16* w, const bf16* norm_w, float eps, bf16* out, int f,
                                  int k) {
    const int first = blockIdx.x * R;
    const bf16* rows[2 * R];
#pragma unroll
    for (int i = 0; i < R; i++) {
        const long long r = min(first + i, f - 1);
        rows[i] = w + r * k;
        rows[R + i] = w + (r + f) * k;
    }
    float acc[2 * R];
    dot_rows<2 * R>(rows, x, norm_w, eps, k, acc);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++) {
            if (first + i >= f) break;
            const float g = acc[i];
            out[first + i] = f32_to_bf16(g / (1.0f + expf(-g)) * acc[R + i]);
        }
    }
}

#define GEMV_KERNELS(R)                                                                                    \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) linear_r##R(                                \
        const bf16* x, const bf16* w, const bf16* bias, const bf16* residual, bf16* out, int n, int k) {    \
        linear_impl<R>(x, w, bias, residual, out, n, k);                                                    \
    }                                                                                                       \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) lm_head_r##R(                               \
        const bf16* x, const bf16* w, const bf16* norm_w, float eps, float* out, int n, int k) {            \
        lm_head_impl<R>(x, w, norm_w, eps, out, n, k);                                                      \
    }                                                                                                       \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gate_up_silu_r##R(                          \
        const bf16* x, const bf16* w, const bf16* norm_w, float eps, bf16* out, int f, int k) {             \
        gate_up_silu_impl<R>(x, w, norm_w, eps, out, f, k);                                                 \
    }

GEMV_KERNELS(1)
GEMV_KERNELS(2)
GEMV_KERNELS(4)
GEMV_KERNELS(8)
