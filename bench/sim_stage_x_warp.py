# Run: python3 bench/sim_stage_x_warp.py (no GPU). For the wip-warp-staging branch: every part slot the main loop
# reads is written by its own warp, each group's butterfly reaches exactly its lanes, and a group is consecutive runs.
# Index-level simulation of gemv.cu's stage_x_warp (writes) against gemv_tasks' main loop (reads).
def slot_order(s): return 2*(s&1) + (s>>1)
F = {
 "Q8_0": dict(BLOCK=32, CHUNK=32, RUNS=2, PAIRED=True,
   x_element=lambda c,j,t,s: 8*t+4*j+s, run_first=lambda c,j: 0),
 "Q4_0": dict(BLOCK=32, CHUNK=32, RUNS=2, PAIRED=False,
   x_element=lambda c,j,t,s: 16*j+4*t+slot_order(s), run_first=lambda c,j: 16*j),
 "K": dict(BLOCK=256, CHUNK=64, RUNS=4, PAIRED=True,
   x_element=lambda c,j,t,s: 64*c+32*(j>>1)+8*t+4*(j&1)+slot_order(s), run_first=lambda c,j: 64*c+32*(j>>1)),
 "Q6_K": dict(BLOCK=256, CHUNK=64, RUNS=4, PAIRED=False,
   x_element=lambda c,k,t,s: 128*(c>>1)+32*k+16*(c&1)+4*t+slot_order(s), run_first=lambda c,k: 128*(c>>1)+32*k+16*(c&1)),
}
for name, f in F.items():
    for k in [256, 512, 1536, 8960 if f["BLOCK"]==32 else 8960//256*256, 18944]:
        if k % f["BLOCK"]: continue
        for warps in [4, 8, 16]:
            BLOCK, CHUNK, RUNS, PAIRED = f["BLOCK"], f["CHUNK"], f["RUNS"], f["PAIRED"]
            QUADS, PER_BLOCK = CHUNK//4, BLOCK//CHUNK
            RUN_BITS = 2 if RUNS == 4 else 1
            chunks = k // CHUNK
            part_writer = {}; group_writer = {}; group_elems = {}
            for w in range(warps):
                mine = (chunks - w + warps - 1)//warps
                p_ = 0
                while p_*(32//QUADS) < mine:
                    lanes = {}
                    for L in range(32):
                        q = L % QUADS; t = q // RUNS; j = q % RUNS
                        i = p_*(32//QUADS) + L//QUADS; ch = w + warps*i; valid = i < mine
                        c = ch % PER_BLOCK; first = ch//PER_BLOCK*BLOCK + f["x_element"](c,j,t,0)
                        els = [ch//PER_BLOCK*BLOCK + f["x_element"](c,j,t,s) for s in range(4)]
                        assert sorted(els) == list(range(first, first+4)) and first % 4 == 0
                        lanes[L] = (valid, ch, q, t, j, c, els)
                    masks = [1<<b for b in range((0 if PAIRED else RUN_BITS), RUN_BITS+2) if not (PAIRED and 0 < b < RUN_BITS)]
                    for L,(valid,ch,q,t,j,c,els) in lanes.items():
                        # butterfly reach = lanes L ^ any subset of masks
                        reach = {L}
                        for m in masks: reach |= {x ^ m for x in reach}
                        gid = lambda jj: (jj >> 1) if PAIRED else jj
                        same = {M for M,v in lanes.items() if v[1] == ch and gid(v[4]) == gid(j)}
                        assert reach == same, (name, k, warps, L, reach, same)
                        if not valid: continue
                        p = ch*CHUNK + 4*q
                        for pos in range(p, p+4):
                            assert pos not in part_writer; part_writer[pos] = (w, els[pos-p])
                        if t == 0 and (not PAIRED or (j & 1) == 0):
                            g = (ch//PER_BLOCK*BLOCK + f["run_first"](c,j))//16
                            assert g not in group_writer; group_writer[g] = w
                            group_elems[g] = sorted(e for M in same for e in lanes[M][6])
                    p_ += 1
            assert len(part_writer) == k
            # main loop reads
            GROUP = 2 if PAIRED else 1
            for w in range(warps):
                for ch in range(w, chunks, warps):
                    c = ch % PER_BLOCK; first_el = ch//PER_BLOCK*BLOCK
                    for t in range(4):
                        for qq in range(RUNS//2):
                            for half in range(8):   # uint4 qq: 8 halves at part_x + ch*CHUNK + t*4*RUNS + 8*qq
                                pos = ch*CHUNK + t*4*RUNS + 8*qq + half
                                assert part_writer[pos][0] == w
                    for j in range(0, RUNS, GROUP):
                        g = (first_el + f["run_first"](c, j))//16
                        assert group_writer[g] == w
                        # the group's elements: run j (and j+1) of the chunk, all lanes t
                        want = sorted(first_el + f["x_element"](c, jj, t, s) for jj in range(j, j+GROUP) for t in range(4) for s in range(4))
                        assert group_elems[g] == want, (name, g)
                        rf = first_el + f["run_first"](c, j)
                        assert want == list(range(rf, rf + 16*GROUP)), (name, "group not consecutive")
    print(name, "ok")
