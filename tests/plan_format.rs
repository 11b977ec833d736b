//! The plan file is a boundary between llmc versions: a plan of another format is refused at load
//! (`bad_input::plan_of_another_format_version`), which only works if every change of the bytes
//! llmc writes comes with a FORMAT_VERSION bump. This pins the bytes of a tiny plan (a fixture
//! compiled for the CPU) together with the version they were written under.

mod common;
use common::*;
use llmc::plan::file::FORMAT_VERSION;

/// (FORMAT_VERSION, xxh3-64 of the whole plan file) as last reviewed.
const PINNED: (u32, u64) = (4, 0xf405_1d29_47ee_7a43);

#[test]
fn plan_bytes_change_only_with_a_format_version_bump() {
    let dir = tempfile::tempdir().unwrap();
    compile_fixture("qwen2_tied", dir.path());
    let bytes = std::fs::read(dir.path().join("qwen2_tied.plan")).unwrap();
    let again = tempfile::tempdir().unwrap();
    compile_fixture("qwen2_tied", again.path());
    assert!(bytes == std::fs::read(again.path().join("qwen2_tied.plan")).unwrap(), "compiling twice wrote different plans");
    let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
    assert_eq!(
        (FORMAT_VERSION, hash),
        PINNED,
        "a tiny plan's bytes are now {hash:#018x} under FORMAT_VERSION {FORMAT_VERSION}. If the file layout or the meaning \
         of any plan field changed, bump FORMAT_VERSION (src/plan/file.rs) so that old plans are refused; then pin \
         the new (version, hash) here. A change of the schedule or the llmc version alone needs only the new pin."
    );
}
