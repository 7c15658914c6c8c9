//! Validation: raw flags → [`GatherConfig`], [`CheckSettings`] and the other configs. Every
//! error names what to fix; all map to exit 2.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use super::args::{
    CheckArgs, CiArgs, ConnectArgs, FamilyArgs, GatherArgs, NatArgs, ServerArgs, TlsArgs,
};
use crate::check::config::{self as check_cfg, CheckSettings};
use crate::expect::{self, Assertion, ExpectError, Scope};
use crate::gather::GatherConfig;
use crate::ice_url;
use crate::nat::discover::NatConfig;
use crate::net::dns::Families;
use crate::net::ifaces::HostFilter;
use crate::net::tls::TlsOptions;
use crate::net::unix_now;
use crate::secret::Secret;
use crate::servers::{self, ConfigError, Credentials, IceConfig, IceServer};

/// A usage or configuration error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A server URL did not parse.
    #[error("{0}")]
    Url(#[from] ice_url::UrlError),
    /// Config file, provider fetch or secret problems.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A bad `--expect` expression.
    #[error("{0}")]
    Expect(#[from] ExpectError),
    /// The `--junit` file cannot be created.
    #[error("--junit {path}: cannot create the file: {why}")]
    Junit {
        /// The path given.
        path: String,
        /// The OS error.
        why: String,
    },
    /// No servers at all.
    #[error("no servers given: pass URLs (e.g. stun:stun.example.org), --config FILE or --ice-servers-url URL")]
    NoServers,
    /// A flag value is out of range.
    #[error("{flag}: {why}")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// Environment variables read for secrets (argv is visible to other users).
pub const ENV_CREDENTIAL: &str = "ICEPROBE_CREDENTIAL";
/// REST shared secret.
pub const ENV_TURN_SECRET: &str = "ICEPROBE_TURN_SECRET";

/// The servers of a run and the credentials given for them, not yet applied: REST
/// credentials are minted per run, by [`Credentials::apply`].
#[derive(Debug, Clone)]
pub struct ServerList {
    /// Servers from URLs, --config and --ice-servers-url, each with its own credentials (an
    /// iceServers document's), deduplicated by URL.
    pub servers: Vec<IceServer>,
    /// An iceServers document asked for relay-only (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
    /// --username with --credential, or a REST shared secret, for every TURN server.
    pub credentials: Credentials,
}

/// Build the server list from URLs, --config and --ice-servers-url, and read the credentials
/// flags (secrets from flag, file or environment).
pub async fn server_list(
    a: &ServerArgs,
    fetch_timeout: Duration,
) -> Result<ServerList, UsageError> {
    let mut cfg = IceConfig::default();
    for u in &a.urls {
        cfg.servers.push(IceServer {
            url: ice_url::parse(u)?,
            username: None,
            credential: None,
        });
    }
    if let Some(path) = &a.config {
        let c = servers::read_ice_config_file(path)?;
        cfg.relay_only |= c.relay_only;
        cfg.servers.extend(c.servers);
    }
    if let Some(url) = &a.ice_servers_url {
        let c = servers::fetch_ice_config(url, fetch_timeout).await?;
        cfg.relay_only |= c.relay_only;
        cfg.servers.extend(c.servers);
    }
    if cfg.servers.is_empty() {
        return Err(UsageError::NoServers);
    }
    let env = |k: &str| std::env::var(k).ok();
    let credential = servers::resolve_secret(
        a.credential.as_ref().map(Secret::expose),
        a.credential_file.as_deref(),
        env(ENV_CREDENTIAL),
        "--credential",
        "--credential-file",
    )?;
    let secret = servers::resolve_secret(
        a.turn_secret.as_ref().map(Secret::expose),
        a.turn_secret_file.as_deref(),
        env(ENV_TURN_SECRET),
        "--turn-secret",
        "--turn-secret-file",
    )?;
    let ttl = in_range("--turn-ttl", a.turn_ttl, MAX_TURN_TTL)?;
    let credentials = match (secret, credential) {
        (Some(_), Some(_)) => {
            return Err(UsageError::BadFlag {
                flag: "--turn-secret",
                why: "give either a REST shared secret or --credential, not both".into(),
            })
        }
        (Some(secret), None) => Credentials::Rest {
            user: a.username.clone(),
            secret,
            ttl,
        },
        (None, None) if a.username.is_none() => Credentials::None,
        (None, password) => Credentials::LongTerm {
            username: a.username.clone(),
            password,
        },
    };
    // The same URL twice would only probe it twice.
    let mut seen = std::collections::HashSet::new();
    cfg.servers.retain(|s| seen.insert(s.url.clone()));
    Ok(ServerList {
        servers: cfg.servers,
        relay_only: cfg.relay_only,
        credentials,
    })
}

/// [`server_list`] with the credentials applied at `now_unix`. Returns the servers, whether
/// the config asked for relay-only, and whether REST credentials were minted.
pub async fn servers(
    a: &ServerArgs,
    fetch_timeout: Duration,
    now_unix: u64,
) -> Result<(Vec<IceServer>, bool, bool), UsageError> {
    let ServerList {
        mut servers,
        relay_only,
        credentials,
    } = server_list(a, fetch_timeout).await?;
    let rest = credentials.apply(&mut servers, now_unix);
    Ok((servers, relay_only, rest))
}

/// TLS options from flags.
pub fn tls_options(t: &TlsArgs) -> TlsOptions {
    TlsOptions {
        ca_file: t.ca.clone(),
        server_name: t.tls_name.clone(),
        insecure: t.insecure,
    }
}

/// Longest accepted `--timeout` / `--rto`, and how to spell it. Deadlines are `Instant + duration`, which panics on
/// overflow for absurd values (e.g. `--timeout 18446744073709551615s`); a day is far beyond any
/// useful probe.
pub const MAX_TIMEOUT: (Duration, &str) = (Duration::from_secs(24 * 3600), "24h");
/// Longest accepted `--turn-ttl`, and how to spell it: the expiry is `now + ttl` in Unix seconds (a u64).
pub const MAX_TURN_TTL: (Duration, &str) = (Duration::from_secs(3650 * 24 * 3600), "3650days");

/// A duration flag must be in `(0, max]`.
fn in_range(
    flag: &'static str,
    d: Duration,
    (max, max_text): (Duration, &str),
) -> Result<Duration, UsageError> {
    if d.is_zero() {
        return Err(UsageError::BadFlag {
            flag,
            why: "must be greater than zero".into(),
        });
    }
    if d > max {
        return Err(UsageError::BadFlag {
            flag,
            why: format!("must be at most {max_text}"),
        });
    }
    Ok(d)
}

/// Validate `demo --timeout` (same rules as `gather --timeout`).
pub fn demo_timeout(timeout: Duration) -> Result<Duration, UsageError> {
    in_range("--timeout", timeout, MAX_TIMEOUT)
}

/// The address families `-4` / `-6` select (both by default).
pub fn families(f: &FamilyArgs) -> Families {
    Families {
        v4: !f.ipv6 || f.ipv4,
        v6: !f.ipv4 || f.ipv6,
    }
}

/// Validate `check` flags into the settings of the one [`CheckSettings`] builder (shared with
/// `serve`); [`CheckSettings::config`] makes each run's config.
pub async fn check_settings(a: &CheckArgs) -> Result<CheckSettings, UsageError> {
    let timeout = in_range("--timeout", a.timeout, MAX_TIMEOUT)?;
    let rto = in_range("--rto", a.rto, MAX_TIMEOUT)?;
    let concurrency = check_cfg::concurrency(a.concurrency).map_err(|why| UsageError::BadFlag {
        flag: "--concurrency",
        why,
    })?;
    if let Some(every) = a.every {
        in_range("--every", every, MAX_TIMEOUT)?;
        if a.output.format != crate::render::Format::Ndjson
            && a.output.format != crate::render::Format::Table
        {
            return Err(UsageError::BadFlag {
                flag: "--every",
                why: "streams NDJSON; use it with --format ndjson (or leave --format out)".into(),
            });
        }
    }
    let list = server_list(&a.servers, timeout).await?;
    Ok(CheckSettings {
        servers: list.servers,
        credentials: list.credentials,
        all_transports: a.all_transports,
        srv: a.srv,
        families: families(&a.family),
        timeout,
        rto,
        concurrency,
        tls: tls_options(&a.tls),
    })
}

/// Validate `nat` flags.
pub async fn nat_config(a: &NatArgs) -> Result<NatConfig, UsageError> {
    let timeout = in_range("--timeout", a.timeout, MAX_TIMEOUT)?;
    let rto = in_range("--rto", a.rto, MAX_TIMEOUT)?;
    let test_timeout = in_range("--test-timeout", a.test_timeout, MAX_TIMEOUT)?;
    let lifetime = a
        .lifetime
        .map(|l| in_range("--lifetime", l, MAX_TIMEOUT))
        .transpose()?;
    let (servers, _, _) = servers(&a.servers, timeout, unix_now()).await?;
    Ok(NatConfig {
        servers: servers.into_iter().map(|s| s.url).collect(),
        families: families(&a.family),
        timeout,
        rto,
        test_timeout,
        lifetime,
    })
}

/// Validate `gather` flags.
pub async fn gather_config(a: &GatherArgs) -> Result<GatherConfig, UsageError> {
    let timeout = in_range("--timeout", a.timeout, MAX_TIMEOUT)?;
    let rto = in_range("--rto", a.rto, MAX_TIMEOUT)?;
    let now_unix = unix_now();
    let (servers, relay_from_config, rest) = servers(&a.servers, timeout, now_unix).await?;
    let families = families(&a.family);
    Ok(GatherConfig {
        servers,
        relay_only: a.relay_only || relay_from_config,
        families,
        timeout,
        rto,
        hosts: HostFilter {
            families,
            loopback: a.include_loopback,
            link_local: a.link_local,
        },
        tls: tls_options(&a.tls),
        rest_credentials: rest,
        now_unix,
    })
}

/// Validated CI flags.
#[derive(Debug, Default)]
pub struct CiConfig {
    /// The `--expect` assertions, in the order given.
    pub assertions: Vec<Assertion>,
    /// The `--junit` path and the file, created (truncated) before the run so that a bad path
    /// is a usage error, not a surprise at the end.
    pub junit: Option<(PathBuf, File)>,
    /// `--quiet`.
    pub quiet: bool,
}

/// Validate `--expect`, `--junit` and `--quiet` for a subcommand. Call last: it creates the
/// JUnit file.
pub fn ci_config(a: &CiArgs, scope: Scope) -> Result<CiConfig, UsageError> {
    let assertions = a
        .expect
        .iter()
        .map(|e| expect::parse(e, scope))
        .collect::<Result<Vec<_>, _>>()?;
    let junit = match &a.junit {
        None => None,
        Some(p) => {
            let f = File::create(p).map_err(|e| UsageError::Junit {
                path: p.display().to_string(),
                why: e.to_string(),
            })?;
            Some((p.clone(), f))
        }
    };
    Ok(CiConfig {
        assertions,
        junit,
        quiet: a.quiet,
    })
}

/// Validate `connect` flags. Servers are optional (host candidates only without them).
pub async fn connect_config(
    a: &ConnectArgs,
) -> Result<crate::connect::run::ConnectConfig, UsageError> {
    use crate::connect::run::{ConnectConfig, SideConfig, Signaling};
    let timeout = in_range("--timeout", a.timeout, MAX_TIMEOUT)?;
    if !(1..=10_000).contains(&a.count) {
        return Err(UsageError::BadFlag {
            flag: "--count",
            why: "must be from 1 to 10000".into(),
        });
    }
    let throughput = match a.throughput {
        Some(d) => {
            let d = in_range("--throughput", d, MAX_TIMEOUT)?;
            if d + Duration::from_secs(5) > timeout {
                return Err(UsageError::BadFlag {
                    flag: "--throughput",
                    why: format!(
                        "leave room for connecting and the echo: raise --timeout to at least {}",
                        humantime::format_duration(d + Duration::from_secs(10))
                    ),
                });
            }
            Some(d)
        }
        None => None,
    };
    let s = &a.servers;
    let servers = if s.urls.is_empty() && s.config.is_none() && s.ice_servers_url.is_none() {
        Vec::new()
    } else {
        servers(s, timeout, unix_now()).await?.0
    };
    let signaling = match (&a.listen, &a.peer, a.signal) {
        (Some(addr), _, _) => Signaling::Listen(*addr),
        (_, Some(url), _) => {
            let (base, token) = crate::connect::http::split_peer_url(
                url.expose(),
                a.token.as_ref().map(Secret::expose),
            )
            .map_err(|why| UsageError::BadFlag {
                flag: "--peer",
                why,
            })?;
            Signaling::Peer {
                base,
                token: Secret::new(token),
            }
        }
        (_, _, Some(_)) => Signaling::Stdio(!a.answer),
        _ => Signaling::Loopback,
    };
    if !matches!(signaling, Signaling::Loopback)
        && (a.bind_b.is_some() || a.policy_b != super::args::PolicyArg::All)
    {
        return Err(UsageError::BadFlag {
            flag: "--policy-b/--bind-b",
            why: "only for the loopback self-test; in two-host mode use --policy/--bind for this side".into(),
        });
    }
    Ok(ConnectConfig {
        servers: crate::connect::servers::webrtc_servers(&servers),
        signaling,
        a: SideConfig {
            policy: a.policy_a.into(),
            bind: a.bind_a,
        },
        b: SideConfig {
            policy: a.policy_b.into(),
            bind: a.bind_b,
        },
        timeout,
        count: a.count,
        throughput,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_are_bounded() {
        let s = Duration::from_secs;
        let cases = [
            (s(0), MAX_TIMEOUT, Some("must be greater than zero")),
            (Duration::from_nanos(1), MAX_TIMEOUT, None),
            (s(24 * 3600), MAX_TIMEOUT, None),
            (s(24 * 3600 + 1), MAX_TIMEOUT, Some("must be at most 24h")),
            (Duration::MAX, MAX_TIMEOUT, Some("must be at most 24h")),
            (s(3650 * 24 * 3600), MAX_TURN_TTL, None),
            (
                Duration::MAX,
                MAX_TURN_TTL,
                Some("must be at most 3650days"),
            ),
        ];
        for (d, max, want) in cases {
            let got = in_range("--x", d, max);
            match (want, got) {
                (None, Ok(v)) => assert_eq!(v, d),
                (Some(w), Err(e)) => assert_eq!(e.to_string(), format!("--x: {w}")),
                (w, g) => panic!("{d:?}: want {w:?}, got {g:?}"),
            }
        }
    }
}
