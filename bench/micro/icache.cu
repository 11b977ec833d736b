// Microbenchmark (#13): what a cold instruction cache costs a block's straight-line code.
// Each block times (clock64) two passes over the same unrolled body of BODY independent-chain
// FFMAs (8 accumulators): pass 0 fetches the code, pass 1 runs it from the SM's cache. Launch
// 1 is the first run of the module; then a launch after a kernel of other code (thrash) that
// evicts the SM's instruction caches while L2 may still hold the body. Also one and 16 warps an SM.
// Build and run on the GPU machine: nvcc -O3 -arch=sm_90 -o /tmp/icache bench/micro/icache.cu && /tmp/icache
#include <cstdio>
#include <cuda_runtime.h>
#ifndef BODY
#define BODY 1024
#endif
__global__ void body(float* out, long long* cycles, float seed) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = seed * (threadIdx.x + i);
    long long t[3];
#pragma unroll 1
    for (int pass = 0; pass < 2; pass++) {
        t[pass] = clock64();
#pragma unroll
        for (int i = 0; i < BODY / 8; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) a[j] = fmaf(a[j], 1.0001f + i * 1e-7f, 0.5f + j * 1e-3f + pass);
        __syncwarp();
    }
    t[2] = clock64();
    float s = 0;
    for (int i = 0; i < 8; i++) s += a[i];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
    if (threadIdx.x == 0) cycles[2 * blockIdx.x] = t[1] - t[0], cycles[2 * blockIdx.x + 1] = t[2] - t[1];
}
// Other code of about the same size, to evict the body from the SMs' caches.
__global__ void thrash(float* out, float seed) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = seed * (threadIdx.x + i);
#pragma unroll
    for (int i = 0; i < 4 * BODY / 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) a[j] = fmaf(a[j], 0.9999f - i * 1e-7f, 0.25f + j * 1e-3f);
    float s = 0;
    for (int i = 0; i < 8; i++) s += a[i];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
int main() {
    float* out;
    long long *cycles, h[2 * 132];
    cudaMalloc(&out, 132 * 512 * sizeof(float));
    cudaMalloc(&cycles, sizeof(h));
    int clock_khz;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
    const char* names[] = {"first launch", "again", "after other code"};
    for (int threads : {32, 512}) {
        for (int run = 0; run < 3; run++) {
            if (run == 2) thrash<<<132, threads>>>(out, 1.f);
            body<<<132, threads>>>(out, cycles, 1.f + run);
            cudaMemcpy(h, cycles, sizeof(h), cudaMemcpyDeviceToHost);
            double cold = 0, warm = 0;
            for (int b = 0; b < 132; b++) cold += h[2 * b], warm += h[2 * b + 1];
            printf("%3d threads, BODY %d FFMA (%d bytes of code), %-16s: pass 0 %7.0f cycles (%.2f us), pass 1 %7.0f cycles (%.2f us), means over 132 blocks\n",
                   threads, BODY, BODY * 16, names[run], cold / 132, cold / 132 / (clock_khz * 1e-3), warm / 132, warm / 132 / (clock_khz * 1e-3));
        }
    }
    printf("%s\n", cudaGetErrorString(cudaDeviceSynchronize()));
}
