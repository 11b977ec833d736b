// The last node of the decode graph: feeds the sampled token back as the next step's input and
// advances the position, so replaying the graph decodes without any host-to-device copy.
// Launch: 1 thread. Bytes: 12. A poisoned token (-1: non-finite logits) is left for the host.

#pragma once
#include "common.cuh"

extern "C" __global__ void advance(const int* __restrict__ next_token, int* __restrict__ token,
                                   int* __restrict__ position) {
    BLOCK_TRACE_SCOPE;
    grid_dep_wait();
    const int next = *next_token;
    if (next >= 0) *token = next;
    *position += 1;
}
