//! ICE server URLs (RFC 7064/7065) come from the command line and from fetched iceServers
//! documents: `ice_url::parse` must be total, and what it accepts must print back to itself.
#![no_main]

use iceprobe::ice_url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = ice_url::parse(s) {
        assert_ne!(u.port, 0, "{s:?} parsed to port 0");
        let printed = u.to_string();
        let again = ice_url::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, u, "{s:?} -> {printed:?}");
    }
});
