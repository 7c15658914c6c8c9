//! The `--expect` grammar (CI assertions): `expect::parse` must be total for every subcommand,
//! and an accepted expression must print (its canonical form) to one that parses to the same
//! assertion.
#![no_main]

use iceprobe::expect::{self, Scope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for scope in [Scope::Gather, Scope::Check, Scope::Nat] {
        if let Ok(a) = expect::parse(s, scope) {
            let printed = a.to_string();
            let again = expect::parse(&printed, scope)
                .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, a, "{s:?} -> {printed:?}");
        }
    }
});
