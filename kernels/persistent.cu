// Decode as one persistent kernel: every step of the plan but sampling, run by PK_BLOCKS_PER_SM
// resident blocks ("workers") per SM, each executing the instruction stream the compiler
// scheduled for it (src/exec/cuda/persistent.rs builds it, src/plan/program.rs holds it).
// Launch: `workers` blocks of PK_THREADS (cooperative, so all are resident), grid = the
// program's workers; dynamic shared memory: x as the largest GEMV of the program stages it
// (gemv.cu), then from `ring_at` the weight ring's `stages` stages. sm_90 only (bulk copies).
//
// An instruction is (step, first task, end task, waits): the step's operands come from its
// descriptor (PK_DESC_WORDS words: kind, aux, then the standalone kernel's arguments as launch.rs
// builds them), the tasks are the standalone kernel's warp tasks (GEMVs; warps of the block
// stride over the range) or blocks (attention: unit u is KV head u / splits, slice u % splits).
// Each step has a counter in `sync`; an instruction waits until every step it depends on has
// signalled as many times as that step has instructions (the compiler lists only the direct,
// non-implied dependencies, and they always name earlier steps, so the program cannot deadlock
// when every worker is resident), runs, then signals its own step. The last worker to finish
// re-arms every counter, so the captured graph replays with no host work.
//
// Weights never wait for activations: each worker streams its GEMV instructions' weight rows
// into a ring of shared-memory stages (PK_SLOT_BYTES each, as many as fit beside x) by the bulk
// copy engine, in program order and as soon as a stage is free, whatever the instruction being
// run waits for; so HBM keeps streaming across dependency waits and through attention (a full
// ring is ~21 MB over 132 SMs: ~5 us of HBM time). The host cuts each GEMV instruction's tasks
// into pieces (a stage's worth, never across a RoPE head) and lists their rows' addresses per
// worker (src/exec/cuda/persistent.rs, `pieces`); the instruction cuts its range by the same rule
// (`piece_tasks`, from the descriptor's aux word) as it consumes them. One thread (thread 0)
// requests a stage: at the start, and each time the block has finished reading one.
// Bytes: the plan's weights once + the activations (L2) + KV rows.
// Activations written during the launch are read through L2 (CounterWait::load), never L1 or
// the non-coherent read-only path.

#pragma once
#include "common.cuh"
#include "gemv.cu"
#include "qkv_rope.cu"
#include "attention.cu"

#define PK_THREADS ATTN_THREADS
#define PK_WARPS (PK_THREADS / 32)
#define PK_BLOCKS_PER_SM 1
#define PK_DESC_WORDS 24
// The weight ring: a stage holds one piece, whole tasks' rows up to PK_SLOT_BYTES (at least the
// largest row of the supported shapes: Qwen2-7B's down projection, 18,944 x 2 bytes) and
// PK_PIECE_ROWS rows (each thread keeps a sum per row); at most
// PK_MAX_STAGES stages, within PK_DYNAMIC_SHARED bytes of dynamic shared memory with x (the
// host sizes the ring; the attention's static shared memory comes on top).
#define PK_SLOT_BYTES (40 * 1024)
#define PK_PIECE_ROWS 16
#define PK_MAX_STAGES 8
#define PK_DYNAMIC_SHARED (200 * 1024)
// u32 words of a piece's record in the host's table: two row addresses (u64), bytes a row copy.
#define PK_PIECE_WORDS 8
// Pieces past the ring's stages that a worker asks L2 to prefetch (cp.async.bulk.prefetch), so
// a wait longer than the ring's stages take to land still streams weights.
#ifndef PK_L2_AHEAD
#define PK_L2_AHEAD 0
#endif

// Step kinds of a descriptor's word 0 (read by persistent.rs through kernels::define).
#define PK_EMBEDDING 1
#define PK_LINEAR 2
#define PK_LM_HEAD 3
#define PK_GATE_UP 4
#define PK_QKV 5
#define PK_ATTENTION 6

// The spin's load. Relaxed, not acquire: an acquire load waits for the thread's earlier loads
// (the weights it requested before waiting), which delayed every wait by their latency (measured
// 1.713 vs 1.662 ms/token on an H200). What makes the producers' writes visible instead: they
// reach L2 before the count (add_release), the spinning thread sees the count before the block's
// barrier, and every activation read after it goes to L2 (CounterWait::load is ld.global.cg).
__device__ __forceinline__ unsigned load_relaxed(const unsigned* p) {
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

// Release-add: the block's writes (ordered before it by a barrier) reach L2 before the count. Cheaper than __threadfence (a sequentially consistent fence) + atomicAdd.
__device__ __forceinline__ void add_release(unsigned* p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned long long global_timer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

// Waits (thread 0 spins, then the block syncs) until every listed step has signalled its count;
// when tracing, thread 0 stamps the first time the waits are met into *waited (zeroed by the host).
struct CounterWait {
    const uint2* waits;
    int n;
    const unsigned* sync;
    unsigned long long* waited;
    __device__ __forceinline__ void operator()() const {
        if (threadIdx.x == 0) {
            for (int i = 0; i < n; i++) {
                const uint2 w = waits[i];
                while (load_relaxed(sync + w.x) < w.y) {
                }
            }
            if (waited && *waited == 0) *waited = global_timer();
        }
        __syncthreads();
    }
    // Activations other workers wrote during this launch: from L2, never a stale L1 line.
    template <class T>
    __device__ __forceinline__ static T load(const T* p) { return __ldcg(p); }
};

// Tasks in the piece that starts at task t of an instruction ending at `end`: a stage's worth
// (cut & 0xffff tasks), never across a multiple of cut >> 16 (a RoPE head's tasks; 0: no such
// bound). The host cuts its pieces by the same rule (persistent.rs, `piece_tasks`).
__device__ __forceinline__ int piece_tasks(int t, int end, unsigned cut) {
    int n = min(end - t, (int)(cut & 0xffffu));
    const int head = (int)(cut >> 16);
    return head ? min(n, head - t % head) : n;
}

#if __CUDA_ARCH__ >= 900
// This worker's weight ring. Every thread tracks the pieces consumed; thread 0 also the pieces
// requested, and holds the next one's record (loaded a piece ahead, so a request never waits).
struct WeightRing {
    const unsigned char* base;  // stage 0
    unsigned slots, bars;       // shared addresses: stage 0, its mbarrier
    int stages;
    const uint4* pieces;  // this worker's records, two uint4 each
    int count, consumed, requested;
    uint4 next[2], ahead[2];  // the records of pieces `requested` and (past the first stages) `requested + PK_L2_AHEAD`

    __device__ __forceinline__ void fetch(int p, uint4 (&r)[2]) const {
        if (p < count) r[0] = pieces[2 * p], r[1] = pieces[2 * p + 1];
    }
    __device__ __forceinline__ static const unsigned char* run(const uint4 (&r)[2], int j) {
        return reinterpret_cast<const unsigned char*>(j == 0 ? ((unsigned long long)r[0].y << 32) | r[0].x : ((unsigned long long)r[0].w << 32) | r[0].z);
    }
    // Piece p's rows into L2 (thread 0, a piece ahead of its stage request).
    __device__ __forceinline__ void prefetch(int p, const uint4 (&r)[2]) const {
        if (p >= count) return;
#pragma unroll
        for (int j = 0; j < 2; j++)
            if (run(r, j)) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(run(r, j)), "r"(r[1].x) : "memory");
    }
    // Thread 0: the next piece into its stage (the stage's previous piece is consumed).
    __device__ __forceinline__ void request() {
        if (requested >= count) return;
        const int stage = requested % stages;
        const unsigned bar = bars + 8 * stage, dst = slots + stage * PK_SLOT_BYTES, bytes = next[1].x;
        const unsigned char *src0 = run(next, 0), *src1 = run(next, 1);
        mbar_expect(bar, src1 ? 2 * bytes : bytes);
        bulk_load_weight(dst, src0, bytes, bar);
        if (src1) bulk_load_weight(dst + bytes, src1, bytes, bar);
        requested++;
        fetch(requested, next);
        if (PK_L2_AHEAD > 0 && requested > stages) {
            prefetch(requested - 1 + PK_L2_AHEAD, ahead);
            fetch(requested + PK_L2_AHEAD, ahead);
        }
    }
    // Thread 0, at the start: barriers armed, every stage requested, the next PK_L2_AHEAD
    // pieces prefetched into L2.
    __device__ __forceinline__ void start() {
        for (int s = 0; s < stages; s++) mbar_init(bars + 8 * s);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        fetch(0, next);
        for (int s = 0; s < stages; s++) request();
        for (int p = stages; p < stages + PK_L2_AHEAD; p++) {
            fetch(p, ahead);
            prefetch(p, ahead);
        }
        fetch(stages + PK_L2_AHEAD, ahead);
    }
    // The consumed piece's stage, once its bytes have landed (every thread).
    __device__ __forceinline__ const uint4* front() const {
        const int stage = consumed % stages;
        mbar_wait(bars + 8 * stage, (consumed / stages) & 1);
        return reinterpret_cast<const uint4*>(base + stage * PK_SLOT_BYTES);
    }
    // Every thread, when done reading the front piece: its stage takes the next request.
    __device__ __forceinline__ void release() {
        __syncthreads();
        if (threadIdx.x == 0) request();
        consumed++;
    }
};

// A GEMV instruction's weights, from the ring; `cut` is the descriptor's aux word (piece_tasks).
struct RingWeights {
    WeightRing* ring;
    unsigned cut;
};

// Each warp's row sums of a piece (two pieces' worth: a piece's epilogues read them while the
// next piece's are written).
__shared__ float pk_sums[2][PK_WARPS][PK_PIECE_ROWS];

// The sums of v[0..N) over the warp's lanes, N a power of two <= 32, in log steps: at each of the
// first log2(N) (halve_rows, lane bit BIT), a lane keeps half its values and adds its partner's
// copy of them, then the lanes that hold the same row add theirs; lane l ends up holding row
// l / (32 / N)'s total.
template <int HALF, int BIT, int N>
__device__ __forceinline__ void halve_rows(float (&v)[N]) {
    const bool upper = threadIdx.x & BIT;
#pragma unroll
    for (int i = 0; i < HALF; i++) {
        const float send = upper ? v[i] : v[i + HALF], keep = upper ? v[i + HALF] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, BIT);
    }
    if constexpr (HALF > 1) halve_rows<HALF / 2, BIT / 2>(v);
}
template <int N>
__device__ __forceinline__ float warp_sum_rows(float (&v)[N]) {
    if constexpr (N > 1) halve_rows<N / 2, 16>(v);
    float total = v[0];
#pragma unroll
    for (int bit = 16 / N; bit >= 1; bit /= 2) total += __shfl_xor_sync(0xffffffffu, total, bit);
    return total;
}

// One instruction's pieces (tasks t..tasks-1), R >= each piece's rows (a power of two: every
// thread requests R rows' chunks at once, the rows past the piece's re-reading its last, so no
// load waits behind a branch). A piece of n tasks holds row j of task i at row j * n + i. The
// block's threads split K, not rows: thread i takes chunks i, i + PK_THREADS, ... of every row
// of the piece, so it reads its chunk of x from shared memory once a piece rather than once a
// row (x's reads took three times the weights' shared-memory bandwidth when each warp took
// whole rows, which capped the ring at ~23 GB/s an SM on an H200); the warps' row sums meet in
// shared memory after the piece's barrier, and warp w runs the epilogues of tasks w, w +
// PK_WARPS, ... with every lane holding the sums, as in the register path.
template <int ROWS, int R, class Epilogue>
__device__ __forceinline__ void ring_pieces(WeightRing& ring, int t, int tasks, int chunks, unsigned cut, Epilogue epilogue) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float4* xs = gemv_x_f32();
    while (t < tasks) {
        const int n = piece_tasks(t, tasks, cut), last = n * ROWS - 1;
        float(*sums)[PK_PIECE_ROWS] = pk_sums[ring.consumed & 1];
        const uint4* slot = ring.front();
        float acc[R];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = 0.f;
        for (int c = threadIdx.x; c < chunks; c += PK_THREADS) {
            const float4 xa = xs[2 * c], xb = xs[2 * c + 1];
            uint4 w[R];
#pragma unroll
            for (int r = 0; r < R; r++) w[r] = slot[min(r, last) * chunks + c];
#pragma unroll
            for (int r = 0; r < R; r++) fma8(acc[r], w[r], xa, xb);
        }
        const float total = warp_sum_rows(acc);
        if (lane % (32 / R) == 0) sums[warp][lane / (32 / R)] = total;
        ring.release();
        for (int i = warp; i < n; i += PK_WARPS) {
            float row[ROWS];
#pragma unroll
            for (int j = 0; j < ROWS; j++) {
                row[j] = 0.f;
#pragma unroll
                for (int w = 0; w < PK_WARPS; w++) row[j] += sums[w][j * n + i];
            }
            epilogue(t + i, row);
        }
        t += n;
    }
}

// gemv_tasks over the ring: tasks t..tasks-1 of the instruction (t its first: the ring's pieces
// are the instruction's, not a warp's); rows_of is the host's business here (the pieces'
// addresses).
template <int ROWS, int TASKS, int BATCH, int THREADS, class RowsOf, class Epilogue, class Wait>
__device__ __forceinline__ void gemv_tasks(RingWeights m, int t, int, int tasks, int k, const float* x, const bf16* norm_w, float eps,
                                           RowsOf, Epilogue epilogue, Wait wait) {
    stage_norm_weight(norm_w, k, THREADS);
    wait();
    stage_x<Wait>(x, norm_w, eps, k, THREADS);
    const int rows = (int)(m.cut & 0xffffu) * ROWS, chunks = k >> 3;
    WeightRing& ring = *m.ring;
    if (rows > 8) ring_pieces<ROWS, 16>(ring, t, tasks, chunks, m.cut, epilogue);
    else if (rows > 4) ring_pieces<ROWS, 8>(ring, t, tasks, chunks, m.cut, epilogue);
    else if (rows > 2) ring_pieces<ROWS, 4>(ring, t, tasks, chunks, m.cut, epilogue);
    else if (rows == 2) ring_pieces<ROWS, 2>(ring, t, tasks, chunks, m.cut, epilogue);
    else ring_pieces<ROWS, ROWS>(ring, t, tasks, chunks, m.cut, epilogue);  // one-row pieces (of long rows)
}
#endif

// One instruction's body per step kind.
// `a` is the descriptor's argument words (launch.rs's order for the standalone kernel), tasks
// t..end-1 of the step.
__device__ __forceinline__ void pk_embedding(const unsigned long long* a, CounterWait wait) {
    wait();
    const int hidden = (int)a[3], vocab = (int)a[4], id = *reinterpret_cast<const int*>(a[1]);
    const bool valid = id >= 0 && id < vocab;
    const bf16* row = reinterpret_cast<const bf16*>(a[0]) + (long long)(valid ? id : 0) * hidden;
    float* out = reinterpret_cast<float*>(a[2]);
    for (int e = threadIdx.x; e < hidden; e += PK_THREADS) out[e] = valid ? bf16_to_f32(row[e]) : 0.f;
}

#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ void pk_linear(const unsigned long long* a, int t, int end, RingWeights w, CounterWait wait) {
    linear_tasks<1, GEMV_BATCH, PK_THREADS>(t, 0, end, reinterpret_cast<const float*>(a[0]), w,
                 reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const float*>(a[3]), reinterpret_cast<float*>(a[4]),
                 (int)a[6], wait);
}

__device__ __forceinline__ void pk_lm_head(const unsigned long long* a, int t, int end, RingWeights w, CounterWait wait) {
    lm_head_tasks<1, GEMV_BATCH, PK_THREADS>(t, 0, end, reinterpret_cast<const float*>(a[0]), w,
                  reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]), reinterpret_cast<float*>(a[4]), (int)a[6],
                  wait);
}

__device__ __forceinline__ void pk_gate_up(const unsigned long long* a, int t, int end, RingWeights w, CounterWait wait) {
    gate_up_silu_tasks<1, GEMV_BATCH, PK_THREADS>(t, 0, end, reinterpret_cast<const float*>(a[0]), w,
                       reinterpret_cast<const bf16*>(a[2]), __int_as_float((int)a[3]), reinterpret_cast<float*>(a[4]),
                       (int)a[5], (int)a[6], wait);
}

__device__ __forceinline__ void pk_qkv(const unsigned long long* a, int t, int end, RingWeights w, CounterWait wait) {
    qkv_rope_tasks<1, GEMV_BATCH, PK_THREADS>(t, 0, end, reinterpret_cast<const float*>(a[0]), w,
                   reinterpret_cast<const bf16*>(a[2]), reinterpret_cast<const bf16*>(a[3]), reinterpret_cast<const bf16*>(a[4]),
                   __int_as_float((int)a[5]), reinterpret_cast<const float*>(a[6]), reinterpret_cast<const int*>(a[7]),
                   reinterpret_cast<float*>(a[8]), reinterpret_cast<float*>(a[9]), reinterpret_cast<float*>(a[10]),
                   reinterpret_cast<float*>(a[11]), reinterpret_cast<unsigned*>(a[12]), (int)a[13], (int)a[14], (int)a[15],
                   (int)a[16], (int)a[17], reinterpret_cast<const bf16*>(a[18]), __int_as_float((int)a[19]), wait);
}

#endif

// Attention units begin..end-1, one after another (the whole block on each).
__device__ __forceinline__ void pk_attention(const unsigned long long* a, int splits, int begin, int end, CounterWait wait) {
    for (int u = begin; u < end; u++) {
        attention_unit(reinterpret_cast<const float*>(a[0]), reinterpret_cast<const float*>(a[1]),
                       reinterpret_cast<const float*>(a[2]), reinterpret_cast<const int*>(a[3]), reinterpret_cast<float*>(a[4]),
                       reinterpret_cast<float*>(a[5]), reinterpret_cast<unsigned*>(a[6]), (int)a[7], (int)a[8], (int)a[9],
                       (int)a[10], (int)a[11], u / splits, u % splits, splits, wait);
        __syncthreads();  // the unit's shared memory is free for the next
    }
}

extern "C" __global__ void __launch_bounds__(PK_THREADS, PK_BLOCKS_PER_SM)
decode_persistent(const uint4* __restrict__ program, const unsigned* __restrict__ worker_start,
                  const uint2* __restrict__ waits, const unsigned long long* __restrict__ descs, unsigned* sync, int steps,
                  unsigned long long* trace, const uint4* __restrict__ pieces, const unsigned* __restrict__ piece_start, int stages,
                  unsigned ring_at) {
#if __CUDA_ARCH__ >= 900
    const int first = worker_start[blockIdx.x], last = worker_start[blockIdx.x + 1];
    __shared__ __align__(8) unsigned long long full[PK_MAX_STAGES];
    const unsigned first_piece = piece_start[blockIdx.x];
    const unsigned char* ring_base = reinterpret_cast<const unsigned char*>(gemv_x) + ring_at;
    WeightRing ring{ring_base, (unsigned)__cvta_generic_to_shared(ring_base), (unsigned)__cvta_generic_to_shared(full), stages,
                    pieces + 2 * first_piece, (int)(piece_start[blockIdx.x + 1] - first_piece), 0, 0, {}};
    if (threadIdx.x == 0) ring.start();
    __syncthreads();  // the barriers are armed
    // Tracing (trace[0] non-zero, set by the host for one replay): thread 0 records the global
    // timer when each instruction starts, when its waits are met and when it has signalled.
    const bool tracing = *(volatile unsigned long long*)trace != 0;
    for (int i = first; i < last; i++) {
        const uint4 ins = program[i];
        const unsigned long long* desc = descs + (long long)ins.x * PK_DESC_WORDS;
        unsigned long long* stamp = trace + 1 + 3 * (long long)i;
        const CounterWait wait{waits + (ins.w & 0xffffffu), (int)(ins.w >> 24), sync, tracing ? stamp + 1 : nullptr};
        const unsigned long long* a = desc + 2;
        const int t = ins.y, end = ins.z;
        const RingWeights w{&ring, (unsigned)desc[1]};
        if (tracing && threadIdx.x == 0) stamp[0] = global_timer();
        switch ((int)desc[0]) {
        case PK_EMBEDDING: pk_embedding(a, wait); break;
        case PK_LINEAR: pk_linear(a, t, end, w, wait); break;
        case PK_LM_HEAD: pk_lm_head(a, t, end, w, wait); break;
        case PK_GATE_UP: pk_gate_up(a, t, end, w, wait); break;
        case PK_QKV: pk_qkv(a, t, end, w, wait); break;
        case PK_ATTENTION: pk_attention(a, (int)desc[1], t, end, wait); break;
        default: break;
        }
        // A body may return before its wait (an inactive attention slice); waiting here keeps the
        // signal below a promise that this step's dependencies are complete too.
        wait();
        __syncthreads();  // every thread's writes (and shared memory reads) are done
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
#else
    __trap();  // the host refuses persistent plans below sm_90
#endif
}
