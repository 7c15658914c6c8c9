//! The exporter's module file: which probes to run and with which credentials, by name. A
//! scrape names a module; credentials never travel in the scrape URL.
//!
//! ```json
//! { "modules": { "turn": { "username": "probe", "credential_env": "TURN_PASSWORD",
//!                          "all_transports": true, "timeout": "8s" } } }
//! ```
//!
//! A module validates into the same [`CheckSettings`] as `check`'s flags, with the same
//! defaults (`timeout` 10s, `rto` 500ms, `concurrency` 64), and the one builder,
//! [`CheckSettings::config`], makes each scrape's check from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::check::config::{self as check_cfg, CheckConfig, CheckSettings, DEFAULT_CONCURRENCY};
use crate::ice_url::{self, ServerUrl};
use crate::net::dns::Families;
use crate::net::tls::TlsOptions;
use crate::secret::Secret;
use crate::servers::{Credentials, IceServer};

/// One module as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleFile {
    /// TURN username.
    pub username: Option<String>,
    /// TURN credential, literally (prefer `credential_env` or `credential_file`).
    pub credential: Option<Secret>,
    /// Environment variable holding the TURN credential.
    pub credential_env: Option<String>,
    /// File whose first line is the TURN credential.
    pub credential_file: Option<PathBuf>,
    /// REST shared secret (coturn use-auth-secret), literally.
    pub turn_secret: Option<Secret>,
    /// Environment variable holding the REST shared secret.
    pub turn_secret_env: Option<String>,
    /// File whose first line is the REST shared secret.
    pub turn_secret_file: Option<PathBuf>,
    /// Lifetime of minted REST credentials (humantime, default 1h).
    pub turn_ttl: Option<String>,
    /// Probe UDP 3478, TCP 3478 and TLS 5349 of the target host.
    pub all_transports: bool,
    /// Follow SRV records.
    pub srv: bool,
    /// "ipv4", "ipv6" or "both" (default).
    pub families: Option<String>,
    /// Probe deadline (humantime, default 10s); a scrape timeout can shorten it.
    pub timeout: Option<String>,
    /// Initial STUN RTO (humantime, default 500ms).
    pub rto: Option<String>,
    /// Rows of one probe run at once, from 1 to 4096 (default 64, as `check --concurrency`);
    /// more rows (SRV targets × addresses × transports) run in waves within the deadline.
    pub concurrency: Option<usize>,
    /// PEM file of CAs to trust instead of the webpki roots.
    pub ca: Option<PathBuf>,
    /// Name to verify TLS certificates against.
    pub tls_name: Option<String>,
    /// Do not verify TLS certificates.
    pub insecure: bool,
    /// Expectations (the `--expect` grammar) evaluated on every probe; each becomes
    /// `iceprobe_expectation_success{expression=...}` and they decide `iceprobe_probe_success`.
    pub expect: Vec<String>,
}

/// The file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Modules by name.
    pub modules: BTreeMap<String, ModuleFile>,
}

/// A validated module.
#[derive(Debug, Clone)]
pub struct Module {
    /// Its name.
    pub name: String,
    /// The check each scrape runs, for no server yet (the scrape names the target):
    /// credentials resolved at load time (REST ones are minted per probe), the module's
    /// timeout (a scrape may shorten it), families, RTO, concurrency, TLS.
    pub check: CheckSettings,
    /// Expectations, parsed.
    pub expect: Vec<crate::expect::Assertion>,
}

/// Why the module file is unusable (exit 2 at start-up).
#[derive(Debug, thiserror::Error)]
pub enum ServeConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Bad JSON or unknown fields.
    #[error("{path}: {error}")]
    Json {
        /// The path.
        path: String,
        /// serde's message (line and column; never a value).
        error: serde_json::Error,
    },
    /// A module field is wrong.
    #[error("{path}: module {module:?}: {why}")]
    Module {
        /// The path.
        path: String,
        /// The module.
        module: String,
        /// What is wrong.
        why: String,
    },
}

fn duration(v: &Option<String>, default: Duration, field: &str) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() && d <= Duration::from_secs(3600) => Ok(d),
            Ok(_) => Err(format!("{field} must be greater than zero and at most 1h")),
            Err(e) => Err(format!("{field}: {e}: write e.g. \"8s\"")),
        },
    }
}

fn secret(
    literal: &Option<Secret>,
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<Secret>, String> {
    let given = [literal.is_some(), env.is_some(), file.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given > 1 {
        return Err(format!("give one of {what}, {what}_env, {what}_file"));
    }
    if let Some(v) = literal {
        return Ok(Some(v.clone()));
    }
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(format!("{what}_env: environment variable {var} is not set")),
        };
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{what}_file {}: {e}", path.display()))?;
        let line = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_string();
        if line.is_empty() {
            return Err(format!("{what}_file {} is empty", path.display()));
        }
        return Ok(Some(Secret::new(line)));
    }
    Ok(None)
}

fn module(name: &str, m: &ModuleFile) -> Result<Module, String> {
    let credential = secret(
        &m.credential,
        &m.credential_env,
        &m.credential_file,
        "credential",
    )?;
    let rest = secret(
        &m.turn_secret,
        &m.turn_secret_env,
        &m.turn_secret_file,
        "turn_secret",
    )?;
    let credentials = match (credential, rest) {
        (Some(_), Some(_)) => return Err("give a credential or a turn_secret, not both".into()),
        (Some(password), None) => match &m.username {
            Some(u) => Credentials::LongTerm {
                username: Some(u.clone()),
                password: Some(password),
            },
            None => return Err("a credential needs a username".into()),
        },
        (None, Some(secret)) => Credentials::Rest {
            user: m.username.clone(),
            secret,
            ttl: duration(&m.turn_ttl, Duration::from_secs(3600), "turn_ttl")?,
        },
        (None, None) => Credentials::None,
    };
    let families = match m.families.as_deref() {
        None | Some("both") => Families { v4: true, v6: true },
        Some("ipv4") => Families {
            v4: true,
            v6: false,
        },
        Some("ipv6") => Families {
            v4: false,
            v6: true,
        },
        Some(other) => {
            return Err(format!(
                "families {other:?}: use \"ipv4\", \"ipv6\" or \"both\""
            ))
        }
    };
    Ok(Module {
        name: name.to_string(),
        check: CheckSettings {
            servers: Vec::new(),
            credentials,
            all_transports: m.all_transports,
            srv: m.srv,
            families,
            timeout: duration(&m.timeout, Duration::from_secs(10), "timeout")?,
            rto: duration(&m.rto, Duration::from_millis(500), "rto")?,
            concurrency: check_cfg::concurrency(m.concurrency.unwrap_or(DEFAULT_CONCURRENCY))
                .map_err(|why| format!("concurrency {why}"))?,
            tls: TlsOptions {
                ca_file: m.ca.clone(),
                server_name: m.tls_name.clone(),
                insecure: m.insecure,
            },
        },
        expect: m
            .expect
            .iter()
            .map(|e| {
                crate::expect::parse(e, crate::expect::Scope::Check)
                    .map_err(|err| format!("expect: {err}"))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// Parse and validate a module file's text. With no modules, a `default` one (no credentials).
pub fn parse(text: &str, path: &str) -> Result<BTreeMap<String, Module>, ServeConfigError> {
    let file: ServeFile = serde_json::from_str(text).map_err(|error| ServeConfigError::Json {
        path: path.into(),
        error,
    })?;
    let mut out = BTreeMap::new();
    for (name, m) in &file.modules {
        let module = module(name, m).map_err(|why| ServeConfigError::Module {
            path: path.into(),
            module: name.clone(),
            why,
        })?;
        out.insert(name.clone(), module);
    }
    if out.is_empty() {
        out.insert(
            "default".into(),
            module("default", &ModuleFile::default()).unwrap_or_else(|_| unreachable!()),
        );
    }
    Ok(out)
}

/// Read the module file (or the built-in `default` module when there is none).
pub fn load(path: Option<&Path>) -> Result<BTreeMap<String, Module>, ServeConfigError> {
    match path {
        None => parse("{\"modules\":{}}", "(built-in)"),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|error| ServeConfigError::Read {
                path: p.display().to_string(),
                error,
            })?;
            parse(&text, &p.display().to_string())
        }
    }
}

impl Module {
    /// The settings of a probe of `target`, bounded by `timeout` (the module's, or a shorter
    /// scrape deadline): the inputs of the builder `check` uses too.
    pub fn settings(
        &self,
        target: &str,
        timeout: Duration,
    ) -> Result<CheckSettings, ice_url::UrlError> {
        let url: ServerUrl = ice_url::parse(target)?;
        Ok(CheckSettings {
            servers: vec![IceServer {
                url,
                username: None,
                credential: None,
            }],
            timeout,
            ..self.check.clone()
        })
    }

    /// The check to run for one scrape of `target` now (REST credentials minted now), bounded
    /// by `timeout`.
    pub fn check_config(
        &self,
        target: &str,
        timeout: Duration,
    ) -> Result<CheckConfig, ice_url::UrlError> {
        Ok(self
            .settings(target, timeout)?
            .config(crate::net::unix_now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_file_never_debug_prints_a_secret() {
        let m: ModuleFile = serde_json::from_str(
            r#"{"username":"u","credential":"hunter2","turn_secret":"hunter2-rest"}"#,
        )
        .unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(m.credential.as_ref().map(Secret::expose), Some("hunter2"));
    }

    #[test]
    fn module_errors_name_the_problem_and_never_the_secret() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"modules":{"m":{"credential":"hunter2"}}}"#,
                "needs a username",
            ),
            (
                r#"{"modules":{"m":{"username":"u","credential":"hunter2","turn_secret":"x"}}}"#,
                "not both",
            ),
            (
                r#"{"modules":{"m":{"credential":"hunter2","credential_env":"X"}}}"#,
                "give one of",
            ),
            (r#"{"modules":{"m":{"timeout":"soon"}}}"#, "timeout"),
            (r#"{"modules":{"m":{"families":"ipv5"}}}"#, "families"),
            (r#"{"modules":{"m":{"expect":["relay:sctp"]}}}"#, "expect"),
            (
                r#"{"modules":{"m":{"password":"hunter2"}}}"#,
                "unknown field",
            ),
            (
                r#"{"modules":{"m":{"credential_env":"ICEPROBE_TEST_SURELY_UNSET"}}}"#,
                "is not set",
            ),
            ("not json hunter2", "expected"),
            // A password written as a number: refused, and not repeated.
            (
                r#"{"modules":{"m":{"username":"u","credential":987654321}}}"#,
                "a secret must be a string, found a number",
            ),
            (
                r#"{"modules":{"m":{"username":"u","turn_secret":987654321}}}"#,
                "a secret must be a string, found a number",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text, "serve.json").unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("serve.json"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains("987654321"), "{e}");
        }
    }

    #[test]
    fn concurrency_defaults_to_checks_and_is_bounded_like_it() {
        let cases: &[(&str, Result<usize, &str>)] = &[
            ("{}", Ok(DEFAULT_CONCURRENCY)),
            (r#"{"concurrency":1}"#, Ok(1)),
            (r#"{"concurrency":4096}"#, Ok(4096)),
            (
                r#"{"concurrency":0}"#,
                Err("concurrency must be from 1 to 4096"),
            ),
            (
                r#"{"concurrency":4097}"#,
                Err("concurrency must be from 1 to 4096"),
            ),
            (r#"{"concurrency":-1}"#, Err("invalid value")),
            (r#"{"concurrency":"8"}"#, Err("invalid type")),
        ];
        for (module, want) in cases {
            let got = parse(&format!(r#"{{"modules":{{"m":{module}}}}}"#), "serve.json");
            match (want, got) {
                (Ok(n), Ok(m)) => {
                    assert_eq!(m["m"].check.concurrency, *n, "{module}");
                    let cfg = m["m"]
                        .check_config("stun:h", Duration::from_secs(1))
                        .unwrap();
                    assert_eq!(cfg.concurrency, *n, "{module}");
                }
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{module}: {e}"),
                (w, g) => panic!("{module}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn default_module_and_rest_minting() {
        let m = parse(r#"{"modules":{}}"#, "f").unwrap();
        assert!(matches!(m["default"].check.credentials, Credentials::None));
        let m = parse(r#"{"modules":{"t":{"username":"probe","turn_secret":"s3","all_transports":true,"timeout":"4s"}}}"#, "f").unwrap();
        let cfg = m["t"]
            .check_config("turn:turn.example.org", Duration::from_secs(2))
            .unwrap();
        assert_eq!(cfg.timeout, Duration::from_secs(2));
        assert!(cfg.all_transports);
        let s = &cfg.servers[0];
        assert!(s.username.as_deref().unwrap().ends_with(":probe"));
        assert!(s.credential.is_some());
        assert!(cfg.probe.rest_credentials);
        assert!(m["t"]
            .check_config("http://x", Duration::from_secs(1))
            .is_err());
    }
}
