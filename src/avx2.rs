//! The CPU executor's inner loops compiled twice: for the x86-64 baseline (SSE2, 4 f32 lanes) and
//! for AVX2 (8 lanes), picked at run time where the CPU has it. Both copies are the same Rust, so
//! the same f32 operations in the same order (Rust never fuses `a * b + c`; the target feature
//! only widens the vectors): they give the same bits, which `tests` checks for every weight
//! format. What a loop calls is `#[inline(always)]`, so it is compiled into the AVX2 copy too.
//! Measured on this project's 2-core CI machine (the real Qwen2.5-Coder-1.5B on the CPU executor,
//! 32 tokens, three alternating runs against the baseline-only binary): bf16 9.6-10.3 -> 10.5-11.6
//! tok/s, the blocks kept as stored 4.5-4.6 -> 8.1-8.4. The block formats' rows are now read by
//! AVX2 intrinsics instead (`crate::quant`'s `dot_avx2`, same bits again), which the compiler's
//! widening of the portable loop could not match.

/// `$vis fn $name(args) [-> ret]` that runs `$body` (a function of the same arguments, marked
/// `#[inline(always)]`) compiled with AVX2 where this CPU has it (`is_x86_feature_detected!`,
/// which std caches), else as built.
macro_rules! avx2_dispatch {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: this CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;

/// Bytes ahead of the weights being multiplied that the CPU executor's loops ask the cache for
/// (the bf16 dot product and the block formats' `dot_avx2`): the hardware prefetcher alone left
/// the cores waiting on the weights' loads (perf: a third of a decode's samples on the
/// instructions right after them). Qwen2.5-Coder-1.5B Q4_K_M on 2 cores (2026-12-02,
/// bench/results/2026-12-02-cpu-prefetch.log): the plan kept as stored 4.9-5.0 -> 9.4-9.5 tok/s
/// with 1,024 or 2,048 bytes ahead (8.9-9.0 with 512), the bf16 plan 5.3-5.7 -> 7.2-7.6.
pub(crate) const PREFETCH_AHEAD: usize = 1024;

/// Asks the cache for the line at `p` (x86-64; elsewhere nothing). A prefetch never faults, so
/// `p` may point past the weights.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64; a prefetch reads nothing the program sees and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
