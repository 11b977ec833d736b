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
