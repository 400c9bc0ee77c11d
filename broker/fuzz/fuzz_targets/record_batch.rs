//! Any bytes as the records of a produce request: split into batches, each validated as
//! the broker validates before storing, then its records decoded as compaction and the
//! compacted-topic key check do (decompression bounded). Must never panic, hang, or
//! allocate past the bound.
//!
//! Random bytes rarely carry a right length and CRC, so each input is also tried with the
//! first batch's length and CRC-32C set to fit it, which lets the fuzzer reach the records.
#![no_main]

use agentbus_broker::fuzzing::record_batches;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

/// The input with its first batch's length and CRC made to fit it.
fn fitted(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 61 {
        return None;
    }
    let mut v = data.to_vec();
    let len = i32::try_from(v.len() - 12).ok()?;
    v[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&v[21..]);
    v[17..21].copy_from_slice(&crc.to_be_bytes());
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    record_batches(Bytes::copy_from_slice(data), LIMIT);
    if let Some(v) = fitted(data) {
        record_batches(Bytes::from(v), LIMIT);
    }
});
