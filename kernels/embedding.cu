// Embedding: out[H] = table[token] (bf16 copy). Launch: 1 block of 256 threads.
// Bytes: 2H read + 2H written. A token outside the vocabulary writes zeros (the host refuses
// such a token before it gets here; the device only feeds back sampled, in-range ids).
extern "C" __global__ void embedding(const bf16* __restrict__ table, const int* __restrict__ token,
                                     bf16* __restrict__ out, int hidden, int vocab) {
    grid_dep_launch();
    grid_dep_wait();
    const int id = *token;
    const bool valid = id >= 0 && id < vocab;
    const bf16* row = table + (long long)(valid ? id : 0) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] = valid ? row[i] : (bf16)0;
}
