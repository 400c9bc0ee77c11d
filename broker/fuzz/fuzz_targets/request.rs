//! Any bytes as one request frame (after the length prefix): decoded, dispatched to its
//! handler against a fresh in-memory broker, answered. Must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| agentbus_broker::fuzzing::request(frame));
