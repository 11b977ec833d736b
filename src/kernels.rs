//! The CUDA kernels' sources and their ahead-of-time compilation. `llmc compile --target sm_XX`
//! compiles every file under `kernels/` with NVRTC as one module, to a CUBIN for exactly that
//! architecture (plus PTX, which the driver can JIT if the CUBIN is refused), and stores the
//! result in the plan; the runtime never compiles anything. Launch shapes live in
//! `exec::cuda::launch`.

use crate::error::{Error, Result};
use cudarc::nvrtc::{result as nvrtc, sys};
use serde::{Deserialize, Serialize};
use std::ffi::CStr;

/// The helpers kernel files `#include`, given to NVRTC in memory (name, text).
pub const HEADERS: [(&str, &str); 1] = [("common.cuh", include_str!("../kernels/common.cuh"))];

/// The kernel files. Each is given to NVRTC in memory too and states what it needs with
/// `#include` (`qkv_rope.cu` includes `gemv.cu`, whose dot product it reuses; `persistent.cu` every
/// file whose bodies it runs), every file `#pragma once`: the unit is one `#include` per file, in
/// any order.
pub const SOURCES: [(&str, &str); 18] = [
    ("quant.cu", include_str!("../kernels/quant.cu")),
    ("dequantize.cu", include_str!("../kernels/dequantize.cu")),
    ("gemv.cu", include_str!("../kernels/gemv.cu")),
    ("qkv_rope.cu", include_str!("../kernels/qkv_rope.cu")),
    ("mlp.cu", include_str!("../kernels/mlp.cu")),
    ("attention.cu", include_str!("../kernels/attention.cu")),
    ("attention_proj.cu", include_str!("../kernels/attention_proj.cu")),
    ("rms_norm.cu", include_str!("../kernels/rms_norm.cu")),
    ("embedding.cu", include_str!("../kernels/embedding.cu")),
    ("sample.cu", include_str!("../kernels/sample.cu")),
    ("logprobs.cu", include_str!("../kernels/logprobs.cu")),
    ("step_io.cu", include_str!("../kernels/step_io.cu")),
    ("prefill_gemm.cu", include_str!("../kernels/prefill_gemm.cu")),
    ("prefill_gemm_bf16.cu", include_str!("../kernels/prefill_gemm_bf16.cu")),
    ("prefill_gemm_wgmma.cu", include_str!("../kernels/prefill_gemm_wgmma.cu")),
    ("prefill_attention.cu", include_str!("../kernels/prefill_attention.cu")),
    ("persistent.cu", include_str!("../kernels/persistent.cu")),
    ("bandwidth.cu", include_str!("../kernels/bandwidth.cu")),
];

/// The value of the kernels' `#define name`, evaluated at compile time from the sources above,
/// so a constant the host shares with a kernel (block size, limit, tile) is defined once, in the
/// kernel file. The value is an integer expression of literals, other defines, parentheses and
/// `+ - * / <<`; a name defined nowhere, defined twice, or as anything else stops the build.
/// Call it only where a constant is required (a `const` item or block): anywhere else it would
/// scan every kernel source at run time, ~0.5 ms a call (once per block-format GEMM of a prompt
/// chunk before 2026-12-01, 12-20 ms of a 1.5B model's TTFT).
pub const fn define(name: &str) -> usize {
    let mut found: Option<usize> = None;
    let mut file = 0;
    while file < HEADERS.len() + SOURCES.len() {
        let text = if file < HEADERS.len() { HEADERS[file].1 } else { SOURCES[file - HEADERS.len()].1 };
        if let Some(at) = define_in(text.as_bytes(), name.as_bytes()) {
            assert!(found.is_none(), "a kernel constant is defined twice");
            found = Some(Expr { s: text.as_bytes(), at }.value());
        }
        file += 1;
    }
    match found {
        Some(value) => value,
        None => panic!("a kernel constant the host reads is not #defined in kernels/"),
    }
}

/// Where the value of `#define name` starts in `s`, if it is defined there.
const fn define_in(s: &[u8], name: &[u8]) -> Option<usize> {
    const DEFINE: &[u8] = b"#define ";
    let mut line = 0;
    while line < s.len() {
        let at = line + DEFINE.len() + name.len();
        if at < s.len() && matches_at(s, line, DEFINE) && matches_at(s, line + DEFINE.len(), name) && s[at] == b' ' {
            return Some(at);
        }
        while line < s.len() && s[line] != b'\n' {
            line += 1;
        }
        line += 1;
    }
    None
}

const fn matches_at(s: &[u8], at: usize, word: &[u8]) -> bool {
    let mut i = 0;
    while i < word.len() {
        if at + i >= s.len() || s[at + i] != word[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A recursive-descent reader of one `#define`'s value, up to the end of its line or a comment.
struct Expr<'s> {
    s: &'s [u8],
    at: usize,
}

impl Expr<'_> {
    const fn value(mut self) -> usize {
        let v = self.sum();
        self.skip_spaces();
        assert!(self.at >= self.s.len() || self.s[self.at] == b'\n' || self.s[self.at] == b'/', "a kernel constant is not an integer expression");
        v
    }

    const fn skip_spaces(&mut self) {
        while self.at < self.s.len() && self.s[self.at] == b' ' {
            self.at += 1;
        }
    }

    /// Whether `op` comes next (skipping spaces), consuming it; a `//` comment is no division.
    const fn next_is(&mut self, op: &[u8]) -> bool {
        self.skip_spaces();
        let comment = matches_at(self.s, self.at, b"//");
        if matches_at(self.s, self.at, op) && !comment {
            self.at += op.len();
            return true;
        }
        false
    }

    const fn sum(&mut self) -> usize {
        let mut v = self.product();
        loop {
            if self.next_is(b"+") {
                v += self.product();
            } else if self.next_is(b"-") {
                v -= self.product();
            } else {
                return v;
            }
        }
    }

    const fn product(&mut self) -> usize {
        let mut v = self.atom();
        loop {
            if self.next_is(b"*") {
                v *= self.atom();
            } else if self.next_is(b"/") {
                v /= self.atom();
            } else if self.next_is(b"<<") {
                v <<= self.atom();
            } else {
                return v;
            }
        }
    }

    const fn atom(&mut self) -> usize {
        if self.next_is(b"(") {
            let v = self.sum();
            assert!(self.next_is(b")"), "unbalanced parentheses in a kernel constant");
            return v;
        }
        let start = self.at;
        while self.at < self.s.len() && (self.s[self.at].is_ascii_alphanumeric() || self.s[self.at] == b'_') {
            self.at += 1;
        }
        assert!(self.at > start, "a kernel constant is not an integer expression");
        let (word, _) = self.s.split_at(self.at);
        let (_, word) = word.split_at(start);
        if word[0].is_ascii_digit() {
            let mut v = 0;
            let mut i = 0;
            while i < word.len() {
                assert!(word[i].is_ascii_digit(), "a kernel constant holds a number that is not decimal");
                v = v * 10 + (word[i] - b'0') as usize;
                i += 1;
            }
            v
        } else {
            // A define another one names is looked up in the same file first (where they all
            // are today): a scan of every file per name made nested values slow to evaluate.
            match (define_in(self.s, word), std::str::from_utf8(word)) {
                (Some(at), _) => Expr { s: self.s, at }.value(),
                (None, Ok(name)) => define(name),
                (None, Err(_)) => panic!("a kernel constant names a define that is not ASCII"),
            }
        }
    }
}

/// Compiled kernels, as stored in a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelImage {
    /// The architecture the CUBIN is for: 90 means sm_90.
    pub sm: u32,
    pub cubin: Vec<u8>,
    pub ptx: String,
    /// xxh3 of the sources, to tell which kernels a plan carries.
    pub source_hash: u64,
}

/// The translation unit: one `#include` per kernel file (NVRTC names each file in its messages).
pub fn translation_unit() -> String {
    SOURCES.iter().map(|(name, _)| format!("#include \"{name}\"\n")).collect()
}

/// Whether libnvrtc can be loaded (it is looked up on the library path at first use).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { sys::is_culib_present() }
}

/// Compiles every kernel for `sm_{sm}`; with `persistent_blocks`, the persistent decode kernel
/// runs block-format steps too (PK_BLOCK_FORMATS: only a persistent plan with such weights pays
/// for their code, NVRTC's time about tripled).
pub fn compile(sm: u32, persistent_blocks: bool) -> Result<KernelImage> {
    if !nvrtc_available() {
        return Err(Error::Unavailable(
            "libnvrtc is not loadable: install the CUDA 13 NVRTC library (e.g. `pip install nvidia-cuda-nvrtc==13.0.88`) and put its lib folder on LD_LIBRARY_PATH".into(),
        ));
    }
    let source = translation_unit();
    let c_source = std::ffi::CString::new(source.as_str()).map_err(|_| Error::Internal("a kernel source holds a NUL byte".into()))?;
    let header = |text: &str| std::ffi::CString::new(text).map_err(|_| Error::Internal("a kernel header holds a NUL byte".into()));
    let files = || HEADERS.iter().chain(SOURCES.iter());
    let texts = files().map(|(_, text)| header(text)).collect::<Result<Vec<_>>>()?;
    let names = files().map(|(name, _)| header(name)).collect::<Result<Vec<_>>>()?;
    let (text_ptrs, name_ptrs): (Vec<_>, Vec<_>) = texts.iter().zip(&names).map(|(t, n)| (t.as_ptr(), n.as_ptr())).unzip();
    let mut prog = std::ptr::null_mut();
    // SAFETY: every pointer is a NUL-terminated string that outlives the program (NVRTC copies
    // the sources and headers at creation).
    unsafe { sys::nvrtcCreateProgram(&mut prog, c_source.as_ptr(), c"llmc_kernels.cu".as_ptr(), texts.len() as i32, text_ptrs.as_ptr(), name_ptrs.as_ptr()) }
        .result()
        .map_err(nvrtc_err("creating the program"))?;
    let guard = Program(prog);
    // NVRTC's defaults keep division and square root IEEE-exact, as the CPU executor computes.
    // `LLMC_EXPERIMENT_DEFINES` ("NAME=VALUE ...", for device experiments without a rebuild:
    // the plan embeds what was compiled) adds -D options.
    // sm_90 compiles as sm_90a, whose wgmma the prefill GEMM uses (the cubin runs on sm_90 only,
    // as every plan's does).
    let arch = if sm == 90 { "sm_90a".to_string() } else { format!("sm_{sm}") };
    let mut options = vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string()];
    if persistent_blocks {
        options.push("-DPK_BLOCK_FORMATS=1".to_string());
    }
    options.extend(std::env::var("LLMC_EXPERIMENT_DEFINES").unwrap_or_default().split_whitespace().map(|d| format!("-D{d}")));
    // SAFETY: `prog` is live until `guard` drops.
    let compiled = unsafe { nvrtc::compile_program(guard.0, &options) };
    let log = unsafe { program_log(guard.0) };
    if let Err(reason) = compiled {
        return Err(Error::Nvrtc { what: format!("compiling the kernels for sm_{sm}"), reason, log });
    }
    // SAFETY: the program compiled; sizes come from NVRTC itself.
    let cubin = unsafe {
        let mut size = 0usize;
        sys::nvrtcGetCUBINSize(guard.0, &mut size).result().map_err(nvrtc_err("reading the CUBIN's size"))?;
        let mut cubin = vec![0u8; size];
        sys::nvrtcGetCUBIN(guard.0, cubin.as_mut_ptr().cast()).result().map_err(nvrtc_err("reading the CUBIN"))?;
        cubin
    };
    let ptx = unsafe { nvrtc::get_ptx(guard.0) }.map_err(nvrtc_err("reading the PTX"))?;
    // SAFETY: NVRTC returns a NUL-terminated string.
    let ptx = unsafe { CStr::from_ptr(ptx.as_ptr()) }.to_string_lossy().into_owned();
    let headers: String = HEADERS.iter().chain(SOURCES.iter()).map(|(name, text)| format!("{name}\n{text}\n")).collect();
    Ok(KernelImage { sm, cubin, ptx, source_hash: xxhash_rust::xxh3::xxh3_64(format!("{headers}{source}").as_bytes()) })
}

fn nvrtc_err(what: &str) -> impl Fn(nvrtc::NvrtcError) -> Error + '_ {
    move |reason| Error::Nvrtc { what: what.to_string(), reason, log: String::new() }
}

/// Destroys the NVRTC program however compilation ends.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by create_program and destroyed only here. A failure leaks a program.
        let _ = unsafe { nvrtc::destroy_program(self.0) };
    }
}

unsafe fn program_log(prog: sys::nvrtcProgram) -> String {
    match nvrtc::get_program_log(prog) {
        Ok(log) => CStr::from_ptr(log.as_ptr()).to_string_lossy().into_owned(),
        Err(e) => format!("(no log: {e:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn define_reads_a_kernel_constant_and_evaluates_its_expression() {
        assert_eq!(define("GEMV_WARPS"), 4);
        assert_eq!(define("GEMV_THREADS"), 32 * 4);
        // (PGB_X_BYTES + PGB_W_BYTES + 2 * PGB_SPLIT_BYTES): stages 4, BM = BN = 128, BK 32, LD = BK + 8
        assert_eq!(define("PGB_SHARED"), 4 * 128 * 32 * 4 + 4 * 128 * 40 * 2 + 2 * (2 * 128 * 40 * 2));
        // (TOP_WARPS * (1 << TOP_FIRST_BITS) * 8) with a `//` comment after it
        assert_eq!(define("TOP_SHARED"), 32 * 256 * 8);
    }

    #[test]
    #[should_panic(expected = "not #defined")]
    fn define_refuses_a_name_no_kernel_defines() {
        define("NO_SUCH_KERNEL_CONSTANT");
    }

    /// Every kernel compiles for the oldest and the newest supported architecture, so a kernel
    /// that does not compile never lands; sm_90's with the persistent kernel's block-format steps
    /// (a superset of the code without them). Needs NVRTC, which scripts/test.sh installs.
    #[test]
    fn every_kernel_compiles_for_sm80_and_sm90() {
        assert!(
            nvrtc_available(),
            "libnvrtc is not loadable: run scripts/test.sh, or `pip install nvidia-cuda-nvrtc==13.0.88` and put its nvidia/cu13/lib on LD_LIBRARY_PATH"
        );
        for (sm, persistent_blocks) in [(80, false), (90, true)] {
            let image = compile(sm, persistent_blocks).unwrap_or_else(|e| panic!("{e}"));
            assert!(image.cubin.len() > 1000, "sm_{sm}: CUBIN of {} bytes", image.cubin.len());
            for kernel in crate::exec::cuda::launch::KERNEL_NAMES {
                assert!(image.ptx.contains(&format!(".entry {kernel}(")), "sm_{sm}: kernel {kernel} missing from the PTX");
            }
        }
    }
}
