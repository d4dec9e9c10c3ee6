#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| filegate::fuzz::link_verify(data));
