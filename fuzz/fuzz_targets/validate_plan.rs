//! Arbitrary bytes as a runbook file: load, validate, report in every format and, when the
//! runbook is valid, plan it. Any panic, overflow or hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runbook::fuzz_entry(data));
