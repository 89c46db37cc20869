//! Key files and sealed rows as read back from disk (see `sealed_rows`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| visage_fuzz::sealed_rows(data));
