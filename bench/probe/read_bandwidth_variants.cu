// Which read kernel streams a buffer fastest on this GPU (the read-only roofline llmc bench
// reports): grid-stride vs one pass per thread, evict-first vs default L2 policy, loads in flight.
// Build and run on the device: nvcc -O3 -arch=sm_90 read_bandwidth_variants.cu -o rbv && ./rbv
#include <cstdio>
#include <cuda_runtime.h>

__device__ __forceinline__ uint4 ld_plain(const uint4* p) { return __ldg(p); }
__device__ __forceinline__ uint4 ld_first(const uint4* p) {
    unsigned long long pol; asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    uint4 v; asm("ld.global.nc.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p), "l"(pol));
    return v;
}
template <int LOADS, bool FIRST>
__global__ void __launch_bounds__(1024) stride_probe(const uint4* p, long long words, unsigned* sink) {
    const long long stride = (long long)gridDim.x * 1024;
    unsigned acc = 0;
    for (long long i = (long long)blockIdx.x * 1024 + threadIdx.x; i < words; i += LOADS * stride) {
        uint4 v[LOADS];
#pragma unroll
        for (int u = 0; u < LOADS; u++) v[u] = i + u * stride < words ? (FIRST ? ld_first(p + i + u * stride) : ld_plain(p + i + u * stride)) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < LOADS; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    if (acc) *sink = acc;
}
// One pass: block b reads words [b * 1024 * LOADS, (b + 1) * 1024 * LOADS), each thread LOADS of them.
template <int LOADS, bool FIRST>
__global__ void __launch_bounds__(1024) chunk_probe(const uint4* p, long long words, unsigned* sink) {
    const long long base = (long long)blockIdx.x * 1024 * LOADS + threadIdx.x;
    unsigned acc = 0;
    uint4 v[LOADS];
#pragma unroll
    for (int u = 0; u < LOADS; u++) v[u] = base + u * 1024 < words ? (FIRST ? ld_first(p + base + u * 1024) : ld_plain(p + base + u * 1024)) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < LOADS; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    if (acc) *sink = acc;
}

int main() {
    const size_t bytes = 1ull << 30; const long long words = bytes / 16;
    uint4* buf; unsigned* sink; cudaMalloc(&buf, bytes); cudaMalloc(&sink, 4); cudaMemset(buf, 0, bytes);
    void* dst; cudaMalloc(&dst, bytes / 2);
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    auto time = [&](const char* name, auto launch) {
        float best = 1e9;
        for (int r = 0; r < 5; r++) {
            launch(); cudaEventRecord(a);
            for (int i = 0; i < 10; i++) launch();
            cudaEventRecord(b); cudaEventSynchronize(b);
            float ms; cudaEventElapsedTime(&ms, a, b); best = ms < best ? ms : best;
        }
        printf("%-44s %.0f GB/s\n", name, 10.0 * bytes / (best * 1e-3) / 1e9);
    };
    time("memcpy DtoD 512 MiB, 2 x bytes counted", [&] { cudaMemcpyAsync(dst, buf, bytes / 2, cudaMemcpyDeviceToDevice); });
    time("stride 2/SM x 1024, 4 loads, evict-first", [&] { stride_probe<4, true><<<2 * sms, 1024>>>(buf, words, sink); });
    time("stride 2/SM x 1024, 4 loads, default", [&] { stride_probe<4, false><<<2 * sms, 1024>>>(buf, words, sink); });
    time("stride 2/SM x 1024, 8 loads, evict-first", [&] { stride_probe<8, true><<<2 * sms, 1024>>>(buf, words, sink); });
    time("stride 2/SM x 1024, 8 loads, default", [&] { stride_probe<8, false><<<2 * sms, 1024>>>(buf, words, sink); });
    time("chunk 1 load, default (2^26 threads)", [&] { chunk_probe<1, false><<<words / 1024, 1024>>>(buf, words, sink); });
    time("chunk 4 loads, default", [&] { chunk_probe<4, false><<<words / 4096, 1024>>>(buf, words, sink); });
    time("chunk 4 loads, evict-first", [&] { chunk_probe<4, true><<<words / 4096, 1024>>>(buf, words, sink); });
    time("chunk 8 loads, default", [&] { chunk_probe<8, false><<<words / 8192, 1024>>>(buf, words, sink); });
    time("chunk 8 loads, evict-first", [&] { chunk_probe<8, true><<<words / 8192, 1024>>>(buf, words, sink); });
    printf("status: %s\n", cudaGetErrorString(cudaDeviceSynchronize()));
}
