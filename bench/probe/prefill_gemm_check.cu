// The prefill GEMM kernels alone on random operands: each checked against an f32 CUDA-core
// reference (relative L2 error per output matrix; NaN fails), then timed by CUDA events on the
// Qwen2.5-1.5B shapes. For developing a kernel in one device call before llmc's tests run it.
// Build and run on the device, from the repo root:
//   nvcc -O3 -std=c++17 -arch=sm_90a -I kernels bench/probe/prefill_gemm_check.cu -lcuda -o /tmp/pgc && /tmp/pgc
#include <cuda.h>
#include <cuda_runtime.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#undef INFINITY  // common.cuh defines its own (NVRTC has no math headers)
#include "prefill_gemm_wgmma.cu"
#include "prefill_gemm_bf16.cu"

typedef void (*Gemm)(const float*, const bf16*, const bf16*, const float*, float*, int, int, int, int, float*, unsigned*);
// the wgmma kernels read the weight through its tensor map and take their first column tile last
typedef void (*GemmRange)(const float*, const void*, const bf16*, const float*, float*, int, int, int, int, float*, unsigned*, int);

__global__ void reference(const float* x, const bf16* w, const bf16* bias, const float* residual, float* out, int mode, int rows, int n, int k) {
    const int t = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    auto dot = [&](int r) {
        double s = 0.0;  // f64, so that the reference's own rounding is far below the kernels'
        for (int e = 0; e < k; e++) s += (double)x[(long long)t * k + e] * bf16_to_f32(w[(long long)r * k + e]);
        return (float)s;
    };
    if (mode == PG_GATE_UP) {
        const float g = dot(j), u = dot(n + j);
        out[(long long)t * n + j] = g / (1.f + expf(-g)) * u;
    } else {
        out[(long long)t * n + j] = dot(j) + (bias ? bf16_to_f32(bias[j]) : 0.f) + (residual ? residual[(long long)t * n + j] : 0.f);
    }
}

static unsigned seed = 12345;
static float uniform() { seed = seed * 1664525u + 1013904223u; return (seed >> 8) * (1.f / 16777216.f) * 2.f - 1.f; }
static bf16 to_bf16(float f) { unsigned u; memcpy(&u, &f, 4); return (bf16)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }

struct Case { const char* name; int mode, rows, n, k, splits; };

int main() {
    const int max_rows = 2048, max_n = 17920, max_k = 8960;
    std::vector<float> hx((size_t)max_rows * max_k), hres((size_t)max_rows * max_n);
    std::vector<bf16> hw((size_t)max_n * max_k), hb(max_n);
    for (auto& v : hx) v = uniform();
    for (auto& v : hres) v = uniform();
    for (auto& v : hw) v = to_bf16(0.05f * uniform());
    for (auto& v : hb) v = to_bf16(uniform());
    float *x, *res, *out, *want, *partial;
    bf16 *w, *b;
    unsigned* counters;
    cudaMalloc(&x, hx.size() * 4); cudaMalloc(&res, hres.size() * 4); cudaMalloc(&w, hw.size() * 2); cudaMalloc(&b, hb.size() * 2);
    cudaMalloc(&out, (size_t)max_rows * max_n * 4); cudaMalloc(&want, (size_t)max_rows * max_n * 4);
    void* w_map;
    cudaMalloc(&w_map, sizeof(CUtensorMap));
    cudaMalloc(&partial, 64 << 20); cudaMalloc(&counters, 1 << 16); cudaMemset(counters, 0, 1 << 16);
    cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice); cudaMemcpy(res, hres.data(), hres.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(w, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice); cudaMemcpy(b, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice);
    cudaFuncSetAttribute(prefill_gemm_wgmma_wide, cudaFuncAttributeMaxDynamicSharedMemorySize, PGW_SHARED_WIDE);
    cudaFuncSetAttribute(prefill_gemm_wgmma, cudaFuncAttributeMaxDynamicSharedMemorySize, PGW_SHARED_NARROW);
    cudaFuncSetAttribute(prefill_gemm_wgmma_split_k, cudaFuncAttributeMaxDynamicSharedMemorySize, PGW_SHARED_NARROW);
    cudaFuncSetAttribute(prefill_gemm_wgmma_short, cudaFuncAttributeMaxDynamicSharedMemorySize, PGW_SHARED_SHORT);
    cudaFuncSetAttribute(prefill_gemm_wgmma_short_split_k, cudaFuncAttributeMaxDynamicSharedMemorySize, PGW_SHARED_SHORT);
    cudaFuncSetAttribute(prefill_gemm, cudaFuncAttributeMaxDynamicSharedMemorySize, PGB_SHARED);
    cudaFuncSetAttribute(prefill_gemm_split_k, cudaFuncAttributeMaxDynamicSharedMemorySize, PGB_SHARED);

    const Case cases[] = {
        {"gate_up 1024", PG_GATE_UP, 1024, 8960, 1536, 1},    {"qkv 1024", PG_LINEAR, 1024, 2048, 1536, 1},
        {"qkv 1024 split 2", PG_LINEAR, 1024, 2048, 1536, 2}, {"o_proj 1024", PG_LINEAR, 1024, 1536, 1536, 1},
        {"o_proj 1024 split 2", PG_LINEAR, 1024, 1536, 1536, 2}, {"down 1024", PG_LINEAR, 1024, 1536, 8960, 1},
        {"down 1024 split 2", PG_LINEAR, 1024, 1536, 8960, 2}, {"down 1024 split 3", PG_LINEAR, 1024, 1536, 8960, 3},
        {"gate_up 2048", PG_GATE_UP, 2048, 8960, 1536, 1},    {"down 2048", PG_LINEAR, 2048, 1536, 8960, 1},
        {"gate_up 32", PG_GATE_UP, 32, 8960, 1536, 1},        {"gate_up 32 split 2", PG_GATE_UP, 32, 8960, 1536, 2},
        {"down 32 split 2", PG_LINEAR, 32, 1536, 8960, 2},    {"down 32 split 11", PG_LINEAR, 32, 1536, 8960, 11},
        {"odd 37 x 200 x 72", PG_LINEAR, 37, 200, 72, 1},     {"odd 300 x 260 gate_up k 264 split 2", PG_GATE_UP, 300, 260, 264, 2},
    };
    int failures = 0;
    for (const Case& c : cases) {
        const bool gu = c.mode == PG_GATE_UP;
        const bf16* bias = gu ? nullptr : b;
        const float* residual = gu ? nullptr : res;
        reference<<<dim3((c.n + 127) / 128, c.rows), 128>>>(x, w, bias, residual, want, c.mode, c.rows, c.n, c.k);
        std::vector<float> hw_((size_t)c.rows * c.n), hg((size_t)c.rows * c.n);
        // the weight's tensor map, as src/exec/cuda/prefill.rs (weight_maps) makes it
        CUtensorMap hmap;
        const cuuint64_t dims[2] = {(cuuint64_t)c.k, (cuuint64_t)(gu ? 2 * c.n : c.n)}, strides[1] = {(cuuint64_t)c.k * 2};
        const cuuint32_t box[2] = {PGW_BK, PGW_BOX_ROWS}, unit[2] = {1, 1};
        if (cuTensorMapEncodeTiled(&hmap, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, w, dims, strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                   CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
            printf("%s: cuTensorMapEncodeTiled failed\n", c.name);
            return 1;
        }
        cudaMemcpy(w_map, &hmap, sizeof hmap, cudaMemcpyHostToDevice);
        cudaMemcpy(hw_.data(), want, hw_.size() * 4, cudaMemcpyDeviceToHost);
        // "wide+tail": the wide tiles' full waves over 132 SMs, the last wave's columns as narrow
        // tiles split twice (src/exec/cuda/prefill.rs, wide_columns), for gate_up at 1,024 rows
        struct Kernel { const char* name; GemmRange range, range_split; Gemm plain, split; int bm, bn, threads, shared; } kernels[] = {
            {"wide", prefill_gemm_wgmma_wide, nullptr, nullptr, nullptr, 128, 256, 256, PGW_SHARED_WIDE},
            {"narrow", prefill_gemm_wgmma, prefill_gemm_wgmma_split_k, nullptr, nullptr, 128, 128, 256, PGW_SHARED_NARROW},
            {"short", prefill_gemm_wgmma_short, prefill_gemm_wgmma_short_split_k, nullptr, nullptr, 64, 128, 128, PGW_SHARED_SHORT},
            {"mma.sync", nullptr, nullptr, prefill_gemm, prefill_gemm_split_k, PGB_BM, PGB_BN, PGB_THREADS, PGB_SHARED},
            {"wide+tail", prefill_gemm_wgmma_wide, nullptr, nullptr, nullptr, 128, 256, 256, PGW_SHARED_WIDE},
        };
        for (const Kernel& kr : kernels) {
            const dim3 grid(gu ? (c.n + kr.bn / 2 - 1) / (kr.bn / 2) : (c.n + kr.bn - 1) / kr.bn, (c.rows + kr.bm - 1) / kr.bm, c.splits);
            const bool tail = !strcmp(kr.name, "wide+tail");
            if (tail && !(gu && c.rows == 1024 && c.splits == 1)) continue;
            auto launch = [&]() {
                if (tail) {
                    const int keep = 66;  // 66 x 8 = 4 waves of 132; columns 66.. are 8 narrow columns
                    prefill_gemm_wgmma_wide<<<dim3(keep, grid.y), kr.threads, kr.shared>>>(x, w_map, bias, residual, out, c.mode, c.rows, c.n, c.k, partial, counters, 0);
                    prefill_gemm_wgmma_split_k<<<dim3(2 * (grid.x - keep), grid.y, 2), 256, PGW_SHARED_NARROW>>>(x, w_map, bias, residual, out, c.mode, c.rows, c.n, c.k, partial, counters, 2 * keep);
                } else if (kr.range) {
                    (c.splits > 1 ? kr.range_split : kr.range)<<<grid, kr.threads, kr.shared>>>(x, w_map, bias, residual, out, c.mode, c.rows, c.n, c.k, partial, counters, 0);
                } else {
                    (c.splits > 1 ? kr.split : kr.plain)<<<grid, kr.threads, kr.shared>>>(x, w, bias, residual, out, c.mode, c.rows, c.n, c.k, partial, counters);
                }
            };
            if (c.splits > 1 && !(kr.range ? kr.range_split != nullptr : kr.split != nullptr)) continue;
            cudaMemset(out, 0xff, (size_t)c.rows * c.n * 4);  // NaN poison
            launch();
            cudaError_t e = cudaDeviceSynchronize();
            if (e != cudaSuccess) { printf("%s %s: %s\n", c.name, kr.name, cudaGetErrorString(e)); return 1; }
            cudaMemcpy(hg.data(), out, hg.size() * 4, cudaMemcpyDeviceToHost);
            double num = 0, den = 0; bool nan = false;
            for (size_t i = 0; i < hg.size(); i++) { if (std::isnan(hg[i])) nan = true; num += (hg[i] - hw_[i]) * (double)(hg[i] - hw_[i]); den += hw_[i] * (double)hw_[i]; }
            const double err = std::sqrt(num / den);
            const bool ok = !nan && err < 5e-5;  // f32 accumulation over K = 8,960 alone reaches ~2e-5
            failures += !ok;
            cudaEvent_t a, z; cudaEventCreate(&a); cudaEventCreate(&z);
            for (int r = 0; r < 3; r++) launch();
            cudaEventRecord(a);
            for (int r = 0; r < 20; r++) launch();
            cudaEventRecord(z); cudaEventSynchronize(z);
            float ms; cudaEventElapsedTime(&ms, a, z); ms /= 20;
            const double flop = 2.0 * c.rows * (gu ? 2.0 * c.n : c.n) * c.k;
            printf("%-38s %-8s rel err %.2e%s %s  %8.1f us  %6.1f TFLOP/s\n", c.name, kr.name, err, nan ? " NaN" : "", ok ? "ok  " : "FAIL", ms * 1e3, flop / ms / 1e9);
        }
    }
    printf("%d failures\n", failures);
    return failures != 0;
}
