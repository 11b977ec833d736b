// Decode as one persistent kernel: every step of the plan but sampling, run by PK_BLOCKS_PER_SM
// resident blocks ("workers") per SM, each executing the instruction stream the compiler
// scheduled for it (src/exec/cuda/persistent.rs builds it, src/plan/program.rs holds it).
// Launch: `workers` blocks of PK_THREADS (cooperative, so all are resident), dynamic shared
// memory as the largest GEMV of the program stages (gemv.cu), grid = the program's workers.
//
// An instruction is (step, first task, end task, waits): the step's operands come from its
// descriptor (PK_DESC_WORDS words: kind, aux, then the standalone kernel's arguments as launch.rs
// builds them), the tasks are the standalone kernel's warp tasks (GEMVs; warps of the block
// stride over the range) or blocks (attention: unit u is head group u / splits, slice u % splits).
// Each step has a counter in `sync`; an instruction waits until every step it depends on has
// signalled as many times as that step has instructions (the compiler lists only the direct,
// non-implied dependencies, and they always name earlier steps, so the program cannot deadlock
// when every worker is resident), runs, then signals its own step. The last worker to finish
// re-arms every counter, so the captured graph replays with no host work.
//
// Weights never wait for activations: each GEMV requests its first weight rows before its wait
// (gemv_tasks), so HBM streams across dependency waits. (Asking L2 to prefetch the next
// instruction's weights as well was measured slower: it delays attention's latency-bound loads.)
// Bytes: the plan's weights once + the activations (L2) + KV rows.
// Activations written during the launch are read through L2 (CounterWait::load), never L1 or
// the non-coherent read-only path.

#pragma once
#include "common.cuh"
#include "gemv.cu"
#include "qkv_rope.cu"
#include "attention.cu"
#include "embedding.cu"

#define PK_THREADS ATTN_THREADS
#define PK_WARPS (PK_THREADS / 32)
#define PK_BLOCKS_PER_SM 1
#define PK_DESC_WORDS 24
// GEMV loads in flight per lane, and tasks a warp streams at once: one-row tasks (linear, LM
// head) two at a time, so a warp has two rows of K = 1536 in flight, as two-row tasks (gate/up,
// q/k/v) have. Measured on an H200 (bench/results/2026-11-29-h200-persistent-tuning.md): 32
// loads per lane or 4 tasks at once were slower (fewer warps share an instruction's tasks).
#define PK_GEMV_BATCH 16
#define PK_TASKS_1ROW 2
#define PK_TASKS_2ROW 1

// Step kinds of a descriptor's word 0 (read by persistent.rs through kernels::define).
#define PK_EMBEDDING 1
#define PK_LINEAR 2
#define PK_LM_HEAD 3
#define PK_GATE_UP 4
#define PK_QKV 5
#define PK_ATTENTION 6
// ... and those of a block-format weight (the `_q` kernels' bodies; the format's Q_FMT_* id is the
// last argument), compiled in only for a persistent plan that has such weights
// (PK_BLOCK_FORMATS=1, src/compile.rs): five kinds of five formats triple NVRTC's time.
#ifndef PK_BLOCK_FORMATS
#define PK_BLOCK_FORMATS 0
#endif
#define PK_EMBEDDING_Q 7
#define PK_LINEAR_Q 8
#define PK_LM_HEAD_Q 9
#define PK_GATE_UP_Q 10
#define PK_QKV_Q 11

__device__ __forceinline__ unsigned long long global_timer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

// Waits (thread 0 spins, then the block syncs) until every listed step has signalled its count;
// when tracing, thread 0 stamps the time the waits are met into *waited. Thread 0 polls once per
// instruction: `met` (its own, in a register) remembers that the waits were met, so the call
// before the signal is only a barrier; polling again there put one more L2 round trip (about a
// microsecond while the other SMs stream weights) between every instruction's last write and
// its signal.
struct CounterWait {
    const uint2* waits;
    int n;
    const unsigned* sync;
    unsigned long long* waited;
    bool* met;
    __device__ __forceinline__ void operator()() const {
        if (threadIdx.x == 0 && !*met) {
            for (int i = 0; i < n; i++) {
                const uint2 w = waits[i];
                unsigned long long polls = 0;
                for (unsigned seen; (seen = load_relaxed(sync + w.x)) < w.y;) spin_poll(polls, "persistent step", seen, w.y);
            }
            *met = true;
            if (waited) *waited = global_timer();
        }
        __syncthreads();
    }
    // Activations other workers wrote during this launch: from L2, never a stale L1 line.
    template <class T>
    __device__ __forceinline__ static T load(const T* p) { return __ldcg(p); }
};

// One instruction's body per step kind.
// `a` is the descriptor's argument words (launch.rs's order for the standalone kernel), warp w
// of the block runs tasks t = begin + w, t + PK_WARPS, ... below `end`.
__device__ __forceinline__ void pk_embedding(const unsigned long long* a, CounterWait wait) {
    wait();
    const int hidden = (int)a[3], vocab = (int)a[4], id = *reinterpret_cast<const int*>(a[1]);
    const bool valid = id >= 0 && id < vocab;
    const bf16* row = reinterpret_cast<const bf16*>(a[0]) + (long long)(valid ? id : 0) * hidden;
    float* out = reinterpret_cast<float*>(a[2]);
    for (int e = threadIdx.x; e < hidden; e += PK_THREADS) out[e] = valid ? bf16_to_f32(row[e]) : 0.f;
}

__device__ __forceinline__ void pk_linear(const unsigned long long* a, int t, int end, CounterWait wait) {
    linear_tasks<PK_TASKS_1ROW, PK_GEMV_BATCH, PK_THREADS>(t, PK_WARPS, end, reinterpret_cast<const float*>(a[0]), Bf16Weights{reinterpret_cast<const bf16*>(a[1])},
                 reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const float*>(a[3]), reinterpret_cast<float*>(a[4]),
                 (int)a[6], wait);
}

__device__ __forceinline__ void pk_lm_head(const unsigned long long* a, int t, int end, CounterWait wait) {
    lm_head_tasks<PK_TASKS_1ROW, PK_GEMV_BATCH, PK_THREADS>(t, PK_WARPS, end, reinterpret_cast<const float*>(a[0]), Bf16Weights{reinterpret_cast<const bf16*>(a[1])},
                  reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]), reinterpret_cast<float*>(a[4]), (int)a[6],
                  wait);
}

__device__ __forceinline__ void pk_gate_up(const unsigned long long* a, int t, int end, CounterWait wait) {
    gate_up_silu_tasks<PK_TASKS_2ROW, PK_GEMV_BATCH, PK_THREADS>(t, PK_WARPS, end, reinterpret_cast<const float*>(a[0]), Bf16Weights{reinterpret_cast<const bf16*>(a[1])},
                       reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]), reinterpret_cast<float*>(a[4]),
                       (int)a[5], (int)a[6], wait);
}

__device__ __forceinline__ void pk_qkv(const unsigned long long* a, int t, int end, CounterWait wait) {
    qkv_rope_tasks<PK_TASKS_2ROW, PK_GEMV_BATCH, PK_THREADS>(t, PK_WARPS, end, reinterpret_cast<const float*>(a[0]), Bf16Weights{reinterpret_cast<const bf16*>(a[1])},
                   reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const bf16*>(a[3]), reinterpret_cast<const bf16*>(a[4]),
                   __int_as_float((int)a[5]), reinterpret_cast<const float*>(a[6]), reinterpret_cast<const int*>(a[7]),
                   reinterpret_cast<float*>(a[8]), reinterpret_cast<float*>(a[9]), reinterpret_cast<float*>(a[10]),
                   reinterpret_cast<float*>(a[11]), reinterpret_cast<unsigned*>(a[12]), (int)a[13], (int)a[14], (int)a[15],
                   (int)a[16], (int)a[17], reinterpret_cast<const bf16*>(a[18]), __int_as_float((int)a[19]), wait);
}

#if PK_BLOCK_FORMATS
// Block-format GEMVs (gemv.cu's `_q` overload of gemv_tasks): a task is a tile of GEMV_Q_ROWS
// weight rows that every warp of the worker works on, so an instruction's [begin, end) are
// tiles: the bodies start at tile `begin` with a stride of 1 and bound the tasks at the range's
// last row task (`tasks` of `rows_per_task` rows each in the whole step).
__device__ __forceinline__ int pk_tile_end(int end, int rows_per_task, int tasks) { return min(end * (GEMV_Q_ROWS / rows_per_task), tasks); }

__device__ __forceinline__ void pk_embedding_q(const unsigned long long* a, CounterWait wait) {
    wait();
    const int id = *reinterpret_cast<const int*>(a[1]);
    Q_DISPATCH((int)a[5], embed_row_q<F>(reinterpret_cast<const unsigned char*>(a[0]), id, (int)a[4], (int)a[3], reinterpret_cast<float*>(a[2])))
}

__device__ __forceinline__ void pk_linear_q(const unsigned long long* a, int begin, int end, CounterWait wait) {
    const int n = (int)a[5], k = (int)a[6];
    Q_DISPATCH((int)a[7], linear_tasks<1, GEMV_BATCH, PK_THREADS>(begin, 1, pk_tile_end(end, 1, n), reinterpret_cast<const float*>(a[0]),
                                                              QWeights<F>{reinterpret_cast<const unsigned char*>(a[1]), (long long)n * (k / F::BLOCK)},
                                                              reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const float*>(a[3]),
                                                              reinterpret_cast<float*>(a[4]), k, wait))
}

__device__ __forceinline__ void pk_lm_head_q(const unsigned long long* a, int begin, int end, CounterWait wait) {
    const int n = (int)a[5], k = (int)a[6];
    Q_DISPATCH((int)a[7], lm_head_tasks<1, GEMV_BATCH, PK_THREADS>(begin, 1, pk_tile_end(end, 1, n), reinterpret_cast<const float*>(a[0]),
                                                               QWeights<F>{reinterpret_cast<const unsigned char*>(a[1]), (long long)n * (k / F::BLOCK)},
                                                               reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]),
                                                               reinterpret_cast<float*>(a[4]), k, wait))
}

__device__ __forceinline__ void pk_gate_up_q(const unsigned long long* a, int begin, int end, CounterWait wait) {
    const int f = (int)a[5], k = (int)a[6];
    Q_DISPATCH((int)a[7], gate_up_silu_tasks<1, GEMV_BATCH, PK_THREADS>(begin, 1, pk_tile_end(end, 2, f), reinterpret_cast<const float*>(a[0]),
                                                                    QWeights<F>{reinterpret_cast<const unsigned char*>(a[1]), 2LL * f * (k / F::BLOCK)},
                                                                    reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]),
                                                                    reinterpret_cast<float*>(a[4]), f, k, wait))
}

__device__ __forceinline__ void pk_qkv_q(const unsigned long long* a, int begin, int end, CounterWait wait) {
    const int n_heads = (int)a[13], n_kv = (int)a[14], d = (int)a[15], k = (int)a[16], rows = (n_heads + 2 * n_kv) * d;
    Q_DISPATCH((int)a[21], qkv_rope_tasks<1, GEMV_BATCH, PK_THREADS>(begin, 1, pk_tile_end(end, 2, rows / 2), reinterpret_cast<const float*>(a[0]),
                                                                 QWeights<F>{reinterpret_cast<const unsigned char*>(a[1]), (long long)rows * (k / F::BLOCK)},
                                                                 reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const bf16*>(a[3]),
                                                                 reinterpret_cast<const bf16*>(a[4]), __int_as_float((int)a[5]),
                                                                 reinterpret_cast<const float*>(a[6]), reinterpret_cast<const int*>(a[7]),
                                                                 reinterpret_cast<float*>(a[8]), reinterpret_cast<float*>(a[9]),
                                                                 reinterpret_cast<float*>(a[10]), reinterpret_cast<float*>(a[11]),
                                                                 reinterpret_cast<unsigned*>(a[12]), n_heads, n_kv, d, k, (int)a[17],
                                                                 reinterpret_cast<const bf16*>(a[18]), __int_as_float((int)a[19]), wait))
}
#endif

// Attention units begin..end-1, one after another (the whole block on each).
__device__ __forceinline__ void pk_attention(const unsigned long long* a, int splits, int begin, int end, CounterWait wait) {
    for (int u = begin; u < end; u++) {
        attention_unit(reinterpret_cast<const float*>(a[0]), reinterpret_cast<const float*>(a[1]),
                       reinterpret_cast<const float*>(a[2]), reinterpret_cast<const int*>(a[3]), reinterpret_cast<float*>(a[4]),
                       reinterpret_cast<float*>(a[5]), reinterpret_cast<unsigned*>(a[6]), (int)a[7], (int)a[8], (int)a[9],
                       (int)a[10], (int)a[11], (int)a[12], u / splits, u % splits, splits, 1, wait);
        __syncthreads();  // the unit's shared memory is free for the next
    }
}

extern "C" __global__ void __launch_bounds__(PK_THREADS, PK_BLOCKS_PER_SM)
decode_persistent(const uint4* __restrict__ program, const unsigned* __restrict__ worker_start,
                  const uint2* __restrict__ waits, const unsigned long long* __restrict__ descs, unsigned* sync, int steps,
                  unsigned long long* trace) {
    const int first = worker_start[blockIdx.x], last = worker_start[blockIdx.x + 1];
    const int warp = threadIdx.x >> 5;
    // Tracing (trace[0] non-zero, set by the host for one replay): thread 0 records the global
    // timer when each instruction starts, when its waits are met and when it has signalled.
    const bool tracing = *(volatile unsigned long long*)trace != 0;
    for (int i = first; i < last; i++) {
        const uint4 ins = program[i];
        const unsigned long long* desc = descs + (long long)ins.x * PK_DESC_WORDS;
        unsigned long long* stamp = trace + 1 + 3 * (long long)i;
        bool met = false;
        const CounterWait wait{waits + (ins.w & 0xffffffu), (int)(ins.w >> 24), sync, tracing ? stamp + 1 : nullptr, &met};
        const unsigned long long* a = desc + 2;
        const int t = ins.y + warp, end = ins.z;
        if (tracing && threadIdx.x == 0) stamp[0] = global_timer();
        switch ((int)desc[0]) {
        case PK_EMBEDDING: pk_embedding(a, wait); break;
        case PK_LINEAR: pk_linear(a, t, end, wait); break;
        case PK_LM_HEAD: pk_lm_head(a, t, end, wait); break;
        case PK_GATE_UP: pk_gate_up(a, t, end, wait); break;
        case PK_QKV: pk_qkv(a, t, end, wait); break;
        case PK_ATTENTION: pk_attention(a, (int)desc[1], ins.y, end, wait); break;
#if PK_BLOCK_FORMATS
        case PK_EMBEDDING_Q: pk_embedding_q(a, wait); break;
        case PK_LINEAR_Q: pk_linear_q(a, ins.y, end, wait); break;
        case PK_LM_HEAD_Q: pk_lm_head_q(a, ins.y, end, wait); break;
        case PK_GATE_UP_Q: pk_gate_up_q(a, ins.y, end, wait); break;
        case PK_QKV_Q: pk_qkv_q(a, ins.y, end, wait); break;
#endif
        default: __trap();  // a kind this build lacks: never silently skip a step
        }
        // A body may return before its wait (an inactive attention slice); waiting here keeps the
        // signal below a promise that this step's dependencies are complete too. Its barrier: every
        // thread's writes (and shared memory reads) are done.
        wait();
        if (threadIdx.x == 0) {
            add_release(sync + ins.x, 1u);
            if (tracing) stamp[2] = global_timer();
        }
    }
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(sync + steps, 1u) == gridDim.x - 1) {  // every worker is past its last wait
            for (int s = 0; s <= steps; s++) sync[s] = 0;
            __threadfence();
        }
    }
}
