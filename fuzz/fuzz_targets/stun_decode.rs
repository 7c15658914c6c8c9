//! STUN decode on network bytes (a UDP datagram, or one framed message from a TCP/TLS stream):
//! `iceprobe::proto::stun::decode` must return a message or an error, never panic.
#![no_main]

use iceprobe::proto::stun;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let looks = stun::looks_like_stun(data);
    match stun::decode(data) {
        Ok(d) => {
            // Only what passes the cheap header test is ever decoded, and the transaction id
            // is the one the header carries (the machines match replies on it).
            assert!(looks);
            assert_eq!(stun::txid_of(data), Some(d.txid));
        }
        // Not STUN: the header test failed, or the length field disagrees with the bytes; the
        // reason is always named (it ends up in the user's cause).
        Err(stun::DecodeError::NotStun(why)) => assert!(!why.is_empty()),
        Err(stun::DecodeError::Malformed(_)) => assert!(looks),
    }
});
