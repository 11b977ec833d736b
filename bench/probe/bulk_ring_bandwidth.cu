// How fast can one block an SM stream weights through a shared-memory ring filled by 1D bulk
// copies (cp.async.bulk + mbarrier), the persistent decode kernel's weight ring, with nothing
// computed? Each block streams its contiguous share of a 3 GiB buffer through `stages` stages of
// `slot` bytes, each stage filled by copies of `copy` bytes; thread 0 requests a stage as soon as
// the block has "consumed" it (waited for it). Prints GB/s per (stages, slot, copy, threads).
// Build: nvcc -O3 -std=c++17 -arch=sm_90a bench/probe/bulk_ring_bandwidth.cu -o /tmp/brb
#include <cstdio>
#include <cuda_runtime.h>

__device__ __forceinline__ void mbar_init(unsigned bar) { asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(bar) : "memory"); }
__device__ __forceinline__ void mbar_expect(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    asm volatile("{\n.reg .pred done;\nW_%=:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n@!done bra W_%=;\n}\n" ::"r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void bulk(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
extern __shared__ __align__(128) unsigned char ring[];

__global__ void stream(const unsigned char* src, long long per_block, int stages, int slot, int copy, float* sink) {
    __shared__ __align__(8) unsigned long long full[32];
    const unsigned bars = (unsigned)__cvta_generic_to_shared(full), base = (unsigned)__cvta_generic_to_shared(ring);
    const unsigned char* mine = src + per_block * blockIdx.x;
    const int pieces = (int)(per_block / slot);
    int requested = 0;
    auto request = [&]() {
        if (requested >= pieces) return;
        const int s = requested % stages;
        mbar_expect(bars + 8 * s, slot);
        for (int o = 0; o < slot; o += copy) bulk(base + s * slot + o, mine + (long long)requested * slot + o, min(copy, slot - o), bars + 8 * s);
        requested++;
    };
    if (threadIdx.x == 0) {
        for (int s = 0; s < stages; s++) mbar_init(bars + 8 * s);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        for (int s = 0; s < stages; s++) request();
    }
    __syncthreads();
    float acc = 0.f;
    for (int p = 0; p < pieces; p++) {
        mbar_wait(bars + 8 * (p % stages), (p / stages) & 1);
        acc += reinterpret_cast<const float*>(ring + (p % stages) * slot)[threadIdx.x];
        __syncthreads();
        if (threadIdx.x == 0) request();
    }
    if (acc == 12345.f) *sink = acc;
}

int main() {
    const long long total = 3LL << 30;
    unsigned char* src;
    float* sink;
    cudaMalloc(&src, total);
    cudaMalloc(&sink, 4);
    cudaMemset(src, 1, total);
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaFuncSetAttribute(stream, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
    const int configs[][4] = {{2, 40960, 1 << 20, 256}, {3, 40960, 1 << 20, 256}, {4, 40960, 1 << 20, 256}, {4, 40960, 4096, 256},
                              {4, 40960, 8192, 256},    {8, 20480, 1 << 20, 256}, {12, 16384, 1 << 20, 256}, {16, 12288, 1 << 20, 256},
                              {24, 8192, 1 << 20, 256}, {6, 32768, 1 << 20, 256}, {4, 40960, 1 << 20, 32}, {12, 16384, 4096, 256}};
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (auto& c : configs) {
        const int stages = c[0], slot = c[1], copy = c[2], threads = c[3];
        const long long per_block = total / sms / slot * slot;
        float best = 1e9f;
        for (int rep = 0; rep < 4; rep++) {
            cudaEventRecord(a);
            stream<<<sms, threads, stages * slot>>>(src, per_block, stages, slot, copy, sink);
            cudaEventRecord(b);
            cudaEventSynchronize(b);
            float ms;
            cudaEventElapsedTime(&ms, a, b);
            if (rep > 0 && ms < best) best = ms;
        }
        const cudaError_t e = cudaGetLastError();
        printf("stages %2d slot %6d copy %7d threads %3d: %7.1f GB/s%s\n", stages, slot, copy, threads, per_block * sms / best / 1e6,
               e == cudaSuccess ? "" : cudaGetErrorString(e));
    }
    return 0;
}
