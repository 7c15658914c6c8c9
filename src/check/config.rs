//! The one builder of [`CheckConfig`], for `check` flags and `serve` modules alike.
//!
//! Both front ends validate their own spelling of the inputs (flags, a module file) into
//! [`CheckSettings`]; every value derived from those inputs — the echo wait, the relay family,
//! the credentials minted, the wall-clock time, the concurrency range — is decided here, once,
//! so the two cannot drift apart again. Building is pure: the wall-clock time is passed in.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::plan::ProbeConfig;
use crate::net::dns::Families;
use crate::net::tls::TlsOptions;
use crate::servers::{Credentials, IceServer};

/// Everything `check` needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// Servers with credentials.
    pub servers: Vec<IceServer>,
    /// Probe UDP 3478, TCP 3478 and TLS 5349 of every host.
    pub all_transports: bool,
    /// Address families.
    pub families: Families,
    /// Deadline for the whole run, releases included.
    pub timeout: Duration,
    /// Rows probed at once.
    pub concurrency: usize,
    /// Look up SRV records (RFC 5928, RFC 7064) for host names and probe every target.
    pub srv: bool,
    /// Per-row settings.
    pub probe: ProbeConfig,
}

/// Rows probed at once unless told otherwise (`check --concurrency`, a module's
/// `concurrency`): enough for a few hosts × every transport × both families in one wave.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The accepted concurrency. Zero would never let a row run; beyond 4096 the descriptors of
/// TCP and TLS rows (two each) outgrow a default `ulimit -n` long before the rows help.
pub const CONCURRENCY: RangeInclusive<usize> = 1..=4096;

/// Shortest and longest wait for the relay echoes (before the run's deadline cuts it).
const ECHO_TIMEOUT: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(3));

/// The inputs `check` flags and a serve module have in common, validated by their front end;
/// [`CheckSettings::config`] derives the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSettings {
    /// Servers as given, each with its own credentials, if any (an iceServers document's).
    pub servers: Vec<IceServer>,
    /// Credentials for every TURN server that lacks its own.
    pub credentials: Credentials,
    /// Probe UDP 3478, TCP 3478 and TLS 5349 of every host.
    pub all_transports: bool,
    /// Look up SRV records.
    pub srv: bool,
    /// Address families.
    pub families: Families,
    /// Deadline for the whole run, releases included.
    pub timeout: Duration,
    /// Initial RTO over UDP.
    pub rto: Duration,
    /// Rows probed at once, validated by [`concurrency`].
    pub concurrency: usize,
    /// TLS verification.
    pub tls: TlsOptions,
}

impl CheckSettings {
    /// The config of one run that starts at wall-clock time `now_unix` (Unix seconds): REST
    /// credentials are minted for it and expired REST usernames are recognised against it.
    pub fn config(&self, now_unix: u64) -> CheckConfig {
        let mut servers = self.servers.clone();
        let rest_credentials = self.credentials.apply(&mut servers, now_unix);
        CheckConfig {
            servers,
            all_transports: self.all_transports,
            families: self.families,
            timeout: self.timeout,
            // Validated by the front end; clamped again so a library caller cannot stall a run.
            concurrency: self
                .concurrency
                .clamp(*CONCURRENCY.start(), *CONCURRENCY.end()),
            srv: self.srv,
            probe: ProbeConfig {
                rto: self.rto,
                tls: self.tls.clone(),
                ipv6_relay: ipv6_relay(self.families),
                rest_credentials,
                now_unix,
                echo_timeout: echo_timeout(self.timeout),
                udp: Default::default(),
            },
        }
    }
}

/// Validate a concurrency: `Err` says why (the caller names its flag or field).
pub fn concurrency(n: usize) -> Result<usize, String> {
    if CONCURRENCY.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be from {} to {}",
            CONCURRENCY.start(),
            CONCURRENCY.end()
        ))
    }
}

/// How long a row waits for its Send and ChannelData echoes: a quarter of the run's deadline,
/// from 500 ms to 3 s, and never past the deadline itself (the row caps it there).
///
/// The floor is 500 ms, `check`'s long-standing value (serve's was 300 ms): an echo crosses
/// the server twice (A → relay A → relay B → B and back), so a server 150 ms away needs 300 ms
/// at the very least, and a shorter run is bounded by its deadline anyway, so the floor never
/// makes a run late. The ceiling keeps a long `--timeout` from turning a relay that does not
/// forward into a long wait.
pub fn echo_timeout(timeout: Duration) -> Duration {
    (timeout / 4).clamp(ECHO_TIMEOUT.0, ECHO_TIMEOUT.1)
}

/// Whether TURN rows ask for an IPv6 relay (REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.8): when
/// the run is IPv6 only.
///
/// "IPv6 only" — `check -6` or a module's `"families": "ipv6"` — means the whole path, the
/// relayed address included, so the run tests what an IPv6-only client gets. With IPv4 in the
/// run the attribute is left out and the server gives its default, an IPv4 relay (RFC 8656
/// §7.2), which is what browsers ask for. (`check` used to read the `-6` flag and `serve`
/// `!v4`; since `-4` and `-6` conflict, both meant this.)
pub fn ipv6_relay(families: Families) -> bool {
    families.v6 && !families.v4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const BOTH: Families = Families { v4: true, v6: true };
    const V4: Families = Families {
        v4: true,
        v6: false,
    };
    const V6: Families = Families {
        v4: false,
        v6: true,
    };

    #[test]
    fn echo_timeout_is_a_quarter_of_the_deadline_from_500ms_to_3s() {
        let cases = [
            (ms(1), ms(500)),
            (ms(1200), ms(500)),
            (ms(2000), ms(500)),
            (ms(2004), ms(501)),
            (ms(4000), ms(1000)),
            (ms(10_000), ms(2500)),
            (ms(12_000), ms(3000)),
            (Duration::from_secs(24 * 3600), ms(3000)),
        ];
        for (timeout, want) in cases {
            assert_eq!(echo_timeout(timeout), want, "{timeout:?}");
        }
    }

    #[test]
    fn an_ipv6_relay_is_asked_for_only_when_the_run_is_ipv6_only() {
        for (families, want) in [(BOTH, false), (V4, false), (V6, true)] {
            assert_eq!(ipv6_relay(families), want, "{families:?}");
        }
    }

    #[test]
    fn concurrency_is_from_1_to_4096() {
        let cases = [
            (0, false),
            (1, true),
            (DEFAULT_CONCURRENCY, true),
            (4096, true),
            (4097, false),
            (usize::MAX, false),
        ];
        for (n, ok) in cases {
            match concurrency(n) {
                Ok(got) => assert!(ok && got == n, "{n}"),
                Err(why) => {
                    assert!(!ok, "{n}");
                    assert_eq!(why, "must be from 1 to 4096");
                }
            }
        }
    }

    /// Every derived value of a built config, for whole-row comparison.
    #[derive(Debug, PartialEq)]
    struct Derived {
        echo_timeout: Duration,
        ipv6_relay: bool,
        rest_credentials: bool,
        now_unix: u64,
        concurrency: usize,
        /// The TURN server's username and password.
        turn: (Option<String>, Option<String>),
    }

    #[test]
    fn derived_values() {
        let settings = |timeout: Duration, families, concurrency, credentials| CheckSettings {
            servers: vec![IceServer {
                url: "turn:h".parse().unwrap(),
                username: None,
                credential: None,
            }],
            credentials,
            all_transports: false,
            srv: false,
            families,
            timeout,
            rto: ms(500),
            concurrency,
            tls: TlsOptions::default(),
        };
        let long_term = Credentials::LongTerm {
            username: Some("u".into()),
            password: Some(Secret::new("p")),
        };
        let rest = Credentials::Rest {
            user: Some("alice".into()),
            secret: Secret::new("secret"),
            ttl: Duration::from_secs(3600),
        };
        let d = |echo, v6, rest, now, conc, user: Option<&str>, pw: Option<&str>| Derived {
            echo_timeout: echo,
            ipv6_relay: v6,
            rest_credentials: rest,
            now_unix: now,
            concurrency: conc,
            turn: (user.map(Into::into), pw.map(Into::into)),
        };
        let cases = [
            (
                "defaults, no credentials",
                settings(ms(10_000), BOTH, 64, Credentials::None),
                1,
                d(ms(2500), false, false, 1, 64, None, None),
            ),
            (
                "short deadline, IPv6 only, long-term credentials",
                settings(ms(1000), V6, 1, long_term.clone()),
                7,
                d(ms(500), true, false, 7, 1, Some("u"), Some("p")),
            ),
            (
                "IPv4 only, the largest concurrency",
                settings(ms(60_000), V4, 4096, long_term),
                7,
                d(ms(3000), false, false, 7, 4096, Some("u"), Some("p")),
            ),
            (
                "REST: minted at now + ttl (the known answer of servers' test)",
                settings(ms(4000), BOTH, 16, rest),
                1_700_000_000 - 3600,
                d(
                    ms(1000),
                    false,
                    true,
                    1_700_000_000 - 3600,
                    16,
                    Some("1700000000:alice"),
                    Some("d8soP47RbdIKLDUOpnJPVQyq5Ts="),
                ),
            ),
            (
                "an unvalidated concurrency is clamped, never zero",
                settings(ms(4000), BOTH, 0, Credentials::None),
                1,
                d(ms(1000), false, false, 1, 1, None, None),
            ),
        ];
        for (name, s, now, want) in cases {
            let c = s.config(now);
            let got = Derived {
                echo_timeout: c.probe.echo_timeout,
                ipv6_relay: c.probe.ipv6_relay,
                rest_credentials: c.probe.rest_credentials,
                now_unix: c.probe.now_unix,
                concurrency: c.concurrency,
                turn: (
                    c.servers[0].username.clone(),
                    c.servers[0].credential.as_ref().map(|p| p.expose().into()),
                ),
            };
            assert_eq!(got, want, "{name}");
            // The rest is passed through as given.
            assert_eq!(
                (c.timeout, c.families, c.probe.rto),
                (s.timeout, s.families, s.rto),
                "{name}"
            );
        }
    }
}
