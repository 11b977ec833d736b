#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| llmc::fuzzing::config(data));
