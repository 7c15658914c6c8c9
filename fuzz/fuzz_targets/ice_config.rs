//! iceServers JSON (RTCConfiguration shape) is fetched from URLs the user names, so it is
//! untrusted: `servers::parse_ice_config` must be total, and every server it yields must carry a
//! URL that parses again from its own printed form.
#![no_main]

use iceprobe::{ice_url, servers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = servers::parse_ice_config(s, "fuzz") {
        for server in &cfg.servers {
            let printed = server.url.to_string();
            assert_eq!(ice_url::parse(&printed).as_ref(), Ok(&server.url));
        }
    }
});
