// Shared by every kernel file, which includes it (NVRTC gets every file as an in-memory header).
// bf16 (the weights) is stored as its 16 bits: it is the top half of an f32, so widening is a
// shift. Activations are f32; nothing is narrowed on the device except prefill's tensor-core
// operands (prefill_gemm.cu; a block-format weight rounded to bf16 for them, dequantize.cu).
// No CUDA headers are included, so NVRTC needs no include path.
#pragma once

typedef unsigned short bf16;

#define INFINITY __int_as_float(0x7f800000)

__device__ __forceinline__ float bf16_to_f32(bf16 x) { return __uint_as_float(((unsigned)x) << 16); }

// Two f32 rounded to a packed bf16 pair (first in the low half) in one instruction (sm_80+).
__device__ __forceinline__ unsigned pack_bf16x2(float first, float second) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(second), "f"(first));
    return r;
}

// The low and high bf16 of a 32-bit word (little-endian: element 0 is the low half).
__device__ __forceinline__ float lo_f32(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float hi_f32(unsigned w) { return __uint_as_float(w & 0xffff0000u); }

template <class Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float add_f32(float a, float b) { return a + b; }
__device__ __forceinline__ float max_f32(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, add_f32); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce(v, max_f32); }

// `op` over a block whose size is a multiple of 32 (at most 1024); every thread gets the result.
template <class Op>
__device__ __forceinline__ float block_reduce(float v, Op op, float identity) {
    __shared__ float warp_totals[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_reduce(v, op);
    __syncthreads();  // warp_totals may still be read by a previous call
    if (lane == 0) warp_totals[warp] = v;
    __syncthreads();
    v = lane < warps ? warp_totals[lane] : identity;
    return warp_reduce(v, op);
}
__device__ __forceinline__ float block_sum(float v) { return block_reduce(v, add_f32, 0.f); }
__device__ __forceinline__ float block_max(float v) { return block_reduce(v, max_f32, -INFINITY); }

// Weight loads (the GEMVs', and quant.cu's for every block-format read): each weight is read
// once per decode step, so its line is the first L2 evicts (an evict_first policy), and the
// step's activations, KV cache rows, kernel code and next layer's inputs stay in L2 under the
// stream of weights. H200, Qwen2.5-1.5B shape, decode ms/token: bf16 1.455 -> 1.408, q4_k
// 1.447 -> 1.409, q8_0 1.673 -> 1.553. (Prefill's rounding of a block-format weight to bf16,
// dequantize.cu, reads each block once through the same loads; its GEMMs read bf16 tiles by
// cp.async or the tensor copy engine.)
__device__ __forceinline__ unsigned long long weight_policy() {
    unsigned long long p;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
    return p;
}
__device__ __forceinline__ uint4 ld_weight16(const void* p) {
    uint4 v;
    asm("ld.global.nc.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p), "l"(weight_policy()));
    return v;
}
__device__ __forceinline__ uint2 ld_weight8(const void* p) {
    uint2 v;
    asm("ld.global.nc.L2::cache_hint.v2.u32 {%0, %1}, [%2], %3;" : "=r"(v.x), "=r"(v.y) : "l"(p), "l"(weight_policy()));
    return v;
}
__device__ __forceinline__ unsigned ld_weight4(const void* p) {
    unsigned v;
    asm("ld.global.nc.L2::cache_hint.u32 %0, [%1], %2;" : "=r"(v) : "l"(p), "l"(weight_policy()));
    return v;
}
__device__ __forceinline__ unsigned short ld_weight2(const void* p) {
    unsigned short v;
    asm("ld.global.nc.L2::cache_hint.u16 %0, [%1], %2;" : "=h"(v) : "l"(p), "l"(weight_policy()));
    return v;
}

// Asynchronous 16-byte copies from global to shared memory (cp.async, sm_80+): `valid` false
// fills the 16 bytes with zeros; a thread's copies complete at cp_async_wait<N> (all but its N
// newest commit groups). cp_async_weight16 is the weight loads' (evict-first, as ld_weight16).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_weight16(void* smem, const void* gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "l"(weight_policy()));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Programmatic dependent launch (sm_90+; no-ops before). The runtime launches every kernel but
// the first of the step so that it may start while its predecessor is still finishing: each
// kernel first lets its own successor start (grid_dep_launch), and calls grid_dep_wait() before
// it reads or writes anything an earlier kernel touches (weights never change, so GEMVs request
// their first weights before waiting). The wait returns once the predecessor grid has completed
// and its writes are visible, and that grid waited on its own predecessor, so order is transitive.
__device__ __forceinline__ void trace_wait_returned();
__device__ __forceinline__ void grid_dep_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    trace_wait_returned();
}

// Counter spins across blocks (the persistent kernel's step counters, mlp.cu's copy flag). The
// spin's load is relaxed, not acquire: an acquire load waits for the thread's earlier loads (the
// weights it requested before waiting), which delayed every wait by their latency (measured
// 1.713 vs 1.662 ms/token on an H200). What makes the producers' writes visible instead: they
// reach L2 before the count (add_release), the spinning thread sees the count before the block's
// barrier, and every activation read after it goes to L2 (ld.global.cg: CounterWait::load; mlp.cu's
// reductions are performed in L2).
__device__ __forceinline__ unsigned load_relaxed(const unsigned* p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ unsigned long long load_relaxed(const unsigned long long* p) {
    unsigned long long v;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
// A spin that never ends holds the GPU, and the device machine's call with it, until the call's
// limit: a killed process cannot exit while its kernel spins. Compiled with SPIN_LIMIT=N
// (LLMC_EXPERIMENT_DEFINES at `llmc compile`), every counter spin gives up after N polls, prints
// which wait and its counter, and traps, so the run fails at once with the counts to read; without
// it spin_poll is nothing. `polls` starts at 0 for each wait.
#ifdef SPIN_LIMIT
__device__ __forceinline__ void spin_poll(unsigned long long& polls, const char* wait, unsigned long long seen, unsigned long long want) {
    if (++polls < SPIN_LIMIT) return;
    printf("llmc spin: %s gave up after %llu polls in block (%u, %u): counter %llu, waiting for %llu\n", wait, polls, blockIdx.x, blockIdx.y, seen, want);
    __trap();
}
#else
__device__ __forceinline__ void spin_poll(unsigned long long&, const char*, unsigned long long, unsigned long long) {}
#endif

// Release-add: the block's writes (ordered before it by a barrier) reach L2 before the count.
// Cheaper than __threadfence (a sequentially consistent fence) + atomicAdd.
__device__ __forceinline__ void add_release(unsigned* p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ void add_release(unsigned long long* p, unsigned long long v) {
    asm volatile("red.release.gpu.global.add.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// The standalone kernels' `wait` argument (the kernels' bodies are templates over it: the
// persistent decode kernel passes a counter wait, persistent.cu). `load` reads an activation an
// earlier kernel wrote, cached in L1 (ld.global.ca): not on the read-only path (`__ldg`,
// ld.global.nc), which ptxas may hoist above griddepcontrol.wait as if the bytes never changed
// (a677c8f's residual loads were, bench/sass_wait_order.py shows it), reading them before the
// earlier kernel has written them.
struct GridWait {
    __device__ __forceinline__ void operator()() const { grid_dep_wait(); }
    template <class T>
    __device__ __forceinline__ static T load(const T* p) { return __ldca(p); }
};

__device__ __forceinline__ void grid_dep_launch() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Block timestamps for `llmc bench --trace` on a graph plan, compiled in only when TRACE_BLOCKS
// is defined (LLMC_EXPERIMENT_DEFINES="TRACE_BLOCKS=1" at `llmc compile`; otherwise
// BLOCK_TRACE_SCOPE is nothing). Thread 0 of each block of every decode kernel
// takes a slot of its SM's TRACE_BLOCK_SLOTS (block_trace_count[sm] counts them; the host zeroes
// the counts before the traced step, exec/cuda/block_trace.rs) and records its grid (%gridid,
// which orders the launches), block and SM and %globaltimer when the block starts, when its wait
// returns and when thread 0 leaves the kernel.
#ifdef TRACE_BLOCKS
#define TRACE_MAX_SMS 256
#define TRACE_BLOCK_SLOTS 2048
struct BlockStamp {
    unsigned long long grid, start, wait, end;
    unsigned block, sm, marks[2];  // marks: ns after the wait (trace_mark), 0 for none
};
__device__ BlockStamp block_trace[TRACE_MAX_SMS * TRACE_BLOCK_SLOTS];
__device__ unsigned block_trace_count[TRACE_MAX_SMS];

__device__ __forceinline__ unsigned long long trace_now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
// This block's slot (thread 0's; -1 when the SM's slots ran out).
__device__ __forceinline__ int& block_trace_slot() {
    __shared__ int slot;
    return slot;
}
// When thread 0's wait returned (0 before): kept in shared memory too, so that stamping the wait
// and the marks reads no global memory (a round trip through L2 would delay thread 0's warp and
// the stamps that follow it).
__device__ __forceinline__ unsigned long long& block_trace_waited() {
    __shared__ unsigned long long waited;
    return waited;
}
struct BlockTraceScope {
    __device__ BlockTraceScope() {
        if (threadIdx.x | threadIdx.y | threadIdx.z) return;
        unsigned sm;
        unsigned long long grid;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        asm volatile("mov.u64 %0, %%gridid;" : "=l"(grid));
        const unsigned i = sm < TRACE_MAX_SMS ? atomicAdd(block_trace_count + sm, 1u) : TRACE_BLOCK_SLOTS;
        block_trace_slot() = i < TRACE_BLOCK_SLOTS ? (int)(sm * TRACE_BLOCK_SLOTS + i) : -1;
        if (block_trace_slot() < 0) return;
        BlockStamp& b = block_trace[block_trace_slot()];
        b.grid = grid, b.start = trace_now(), b.wait = 0, b.end = 0, b.sm = sm, b.marks[0] = 0, b.marks[1] = 0;
        block_trace_waited() = 0;
        b.block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    }
    __device__ ~BlockTraceScope() {
        if (!(threadIdx.x | threadIdx.y | threadIdx.z) && block_trace_slot() >= 0) block_trace[block_trace_slot()].end = trace_now();
    }
};
__device__ __forceinline__ void trace_wait_returned() {
    if (!(threadIdx.x | threadIdx.y | threadIdx.z) && block_trace_slot() >= 0 && block_trace_waited() == 0)
        block_trace[block_trace_slot()].wait = block_trace_waited() = trace_now();
}
// Thread 0 passing phase `i` (0 or 1) of its block's work after the wait: nanoseconds since
// its wait returned, in the stamp's marks (kernels call it where a phase of their
// post-wait chain ends, so a trace shows where that chain's time goes).
__device__ __forceinline__ void trace_mark(int i) {
    if (!(threadIdx.x | threadIdx.y | threadIdx.z) && block_trace_slot() >= 0 && block_trace_waited() != 0)
        block_trace[block_trace_slot()].marks[i] = (unsigned)(trace_now() - block_trace_waited());
}
#define BLOCK_TRACE_SCOPE BlockTraceScope block_trace_scope
#else
__device__ __forceinline__ void trace_wait_returned() {}
__device__ __forceinline__ void trace_mark(int) {}
#define BLOCK_TRACE_SCOPE (void)0
#endif
// The first statement of every decode-graph kernel but the last (`advance`, which has no
// dependent to let start: BLOCK_TRACE_SCOPE alone).
#define DECODE_KERNEL_BEGIN() \
    BLOCK_TRACE_SCOPE;        \
    grid_dep_launch()

// "Last block done" handshake for single-kernel reductions across blocks: each block publishes
// its partial results, then takes a ticket; the block drawing the last ticket sees every
// partial and finishes the job, then re-arms the counter for the next graph replay.
__device__ __forceinline__ bool is_last_block(unsigned* counter, unsigned blocks) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == blocks - 1;
    __syncthreads();
    if (last) __threadfence();
    return last;
}
