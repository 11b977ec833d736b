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

// Dot products of x with R rows; the block's totals land in `out` of threadIdx.x == 0.
template <int R>
__device__ __forceinline__ void dot_rows(const bf16* const (&rows)[R], const bf16* __restrict__ x, int k,
                                         float (&out)[R]) {
    const int chunks = k >> 3;
    const uint4* xv = reinterpret_cast<const uint4*>(x);
    float acc[R];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0.f;
    int c = threadIdx.x;
    for (; c + GEMV_THREADS < chunks; c += 2 * GEMV_THREADS) {
        uint4 wa[R], wb[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            wa[i] = __ldg(reinterpret_cast<const uint4*>(rows[i]) + c);
            wb[i] = __ldg(reinterpret_cast<const uint4*>(rows[i]) + c + GEMV_THREADS);
        }
        const uint4 xa = __ldg(xv + c), xb = __ldg(xv + c + GEMV_THREADS);
#pragma unroll
        for (int i = 0; i < R; i++) {
            fma8(acc[i], wa[i], xa);
            fma8(acc[i], wb[i], xb);
        }
    }
    if (c < chunks) {
        const uint4 xa = __ldg(xv + c);
#pragma unroll
        for (int i = 0; i < R; i++) fma8(acc[i], __ldg(reinterpret_cast<const uint4*>(rows[i]) + c), xa);
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
    dot_rows<R>(rows, x, k, acc);
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

// LmHead: f32 logits, no rounding.
template <int R>
__device__ void lm_head_impl(const bf16* x, const bf16* w, float* out, int n, int k) {
    const int first = blockIdx.x * R;
    const bf16* rows[R];
    row_pointers<R>(w, first, n, k, rows);
    float acc[R];
    dot_rows<R>(rows, x, k, acc);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < R; i++)
            if (first + i < n) out[first + i] = acc[i];
    }
}

// GateUpSilu over W [2F, K] (gate rows first): y[r] = bf16(silu(g_r) * u_r).
template <int R>
__device__ void gate_up_silu_impl(const bf16* x, const bf16* w, bf16* out, int f, int k) {
    const int first = blockIdx.x * R;
    const bf16* rows[2 * R];
#pragma unroll
    for (int i = 0; i < R; i++) {
        const long long r = min(first + i, f - 1);
        rows[i] = w + r * k;
        rows[R + i] = w + (r + f) * k;
    }
    float acc[2 * R];
    dot_rows<2 * R>(rows, x, k, acc);
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
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) lm_head_r##R(const bf16* x, const bf16* w,  \
                                                                             float* out, int n, int k) {    \
        lm_head_impl<R>(x, w, out, n, k);                                                                   \
    }                                                                                                       \
    extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gate_up_silu_r##R(                          \
        const bf16* x, const bf16* w, bf16* out, int f, int k) {                                            \
        gate_up_silu_impl<R>(x, w, out, f, k);                                                              \
    }

GEMV_KERNELS(1)
GEMV_KERNELS(2)
GEMV_KERNELS(4)
GEMV_KERNELS(8)
