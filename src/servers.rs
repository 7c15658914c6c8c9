//! Server input shared by every subcommand: iceServers JSON (the browser `RTCConfiguration`
//! shape and common provider variants), fetching that JSON over HTTP, TURN REST credentials
//! (coturn `use-auth-secret`), and secrets given as flag, file or environment variable.
//!
//! No error built here ever contains a credential: JSON is first parsed into a
//! [`serde_json::Value`] (whose syntax errors never quote the input) and then walked by hand with
//! messages that name fields, not values; fetch errors name the URL without its user info or
//! query string, where providers put API keys.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};

use crate::ice_url::{self, ServerUrl, UrlError};
use crate::secret::Secret;

/// Largest iceServers document [`fetch_ice_config`] accepts; real ones are a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Wrapper keys some providers put around the RTCConfiguration-like object:
/// Xirsys v2 (`v`), Xirsys v1 (`d`) and generic APIs (`data`).
const WRAPPER_KEYS: [&str; 3] = ["v", "d", "data"];

/// One server to probe: a parsed URL plus the credentials that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// The STUN or TURN URL.
    pub url: ServerUrl,
    /// TURN long-term credential user name (RFC 8489 §9.2), if any.
    pub username: Option<String>,
    /// TURN long-term credential password, if any.
    pub credential: Option<Secret>,
}

/// A list of servers and the ICE transport policy, as read from RTCConfiguration-shaped JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// Servers in document order, one per URL.
    pub servers: Vec<IceServer>,
    /// `iceTransportPolicy: "relay"`: gather relay candidates only.
    pub relay_only: bool,
}

/// Why server input could not be used. Every variant names its source (a file path or a URL
/// without user info and query) and never a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {source_name}: {error}: check the path and its permissions")]
    Read {
        /// The file path.
        source_name: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The text is not JSON at all.
    #[error(
        "{source_name}: not valid JSON at line {line} column {column}: {detail}: \
         expected an RTCConfiguration object or an array of RTCIceServer objects"
    )]
    Json {
        /// The file path or URL.
        source_name: String,
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// serde_json's description, which never quotes the input.
        detail: String,
    },
    /// Valid JSON, but not a shape we know.
    #[error("{source_name}: {why}")]
    Shape {
        /// The file path or URL.
        source_name: String,
        /// What was expected.
        why: String,
    },
    /// The document lists no servers.
    #[error("no iceServers in {source_name}: add at least one {{\"urls\": \"stun:host\"}} entry")]
    Empty {
        /// The file path or URL.
        source_name: String,
    },
    /// One `iceServers` entry is malformed.
    #[error("{source_name}: iceServers[{index}]: {why}")]
    Entry {
        /// The file path or URL.
        source_name: String,
        /// 0-based position of the entry.
        index: usize,
        /// What is wrong and how to fix it (never a credential value).
        why: String,
    },
    /// A URL in an entry does not parse; the URL error names the URL.
    #[error("{source_name}: iceServers[{index}]: {error}")]
    Url {
        /// The file path or URL.
        source_name: String,
        /// 0-based position of the entry.
        index: usize,
        /// The parse error.
        error: UrlError,
    },
    /// `iceTransportPolicy` is neither `relay` nor `all`.
    #[error("{source_name}: iceTransportPolicy is {value}: use \"relay\" or \"all\"")]
    Policy {
        /// The file path or URL.
        source_name: String,
        /// The policy as written (quoted, shortened) or the JSON type found.
        value: String,
    },
    /// The fetch URL itself is unusable.
    #[error("{source_name}: {why}")]
    BadFetchUrl {
        /// The URL without user info and query, or a placeholder when it does not parse.
        source_name: String,
        /// What is wrong.
        why: String,
    },
    /// The HTTP server could not be reached.
    #[error(
        "cannot connect to {host} for {source_name}: {why}: check the host name, port and network"
    )]
    Connect {
        /// The URL without user info and query.
        source_name: String,
        /// Host (and port) that was dialled.
        host: String,
        /// The underlying error chain.
        why: String,
    },
    /// The HTTP exchange did not finish in time.
    #[error("{source_name}: timed out after {} while {stage} {host}: raise the timeout or check the server", humantime::format_duration(*after))]
    Timeout {
        /// The URL without user info and query.
        source_name: String,
        /// Host (and port) that was dialled.
        host: String,
        /// "connecting to" or "waiting for a response from".
        stage: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// The HTTP server answered with a non-2xx status.
    #[error("{source_name}: HTTP {code} {reason}: check the URL and its API key or credentials")]
    Status {
        /// The URL without user info and query.
        source_name: String,
        /// Status code.
        code: u16,
        /// Canonical reason phrase.
        reason: String,
    },
    /// Any other HTTP failure (TLS, protocol, body too large).
    #[error("{source_name}: {why}")]
    Http {
        /// The URL without user info and query.
        source_name: String,
        /// The underlying error chain.
        why: String,
    },
    /// Both a secret flag and its file flag were given.
    #[error("give either {flag} or {file_flag}, not both")]
    SecretConflict {
        /// The flag taking the value, e.g. `--credential`.
        flag: String,
        /// The flag taking a file, e.g. `--credential-file`.
        file_flag: String,
    },
    /// A secret file could not be read.
    #[error("{file_flag} {path}: cannot read: {error}")]
    SecretFile {
        /// The file flag.
        file_flag: String,
        /// The file path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A secret was given but is empty.
    #[error("{origin} is empty: {hint}")]
    EmptySecret {
        /// The flag (and file) that produced the empty value.
        origin: String,
        /// How to fix it.
        hint: &'static str,
    },
}

/// Parse iceServers JSON. `source` names the input (file path or URL) in errors.
///
/// Accepted shapes: `{"iceServers": [...], "iceTransportPolicy": "relay"|"all"}` (browser
/// `RTCConfiguration`), a bare array of `RTCIceServer` objects, `ice_servers` (Twilio), either
/// key holding a single object instead of an array (Cloudflare, Xirsys v2), and the whole
/// object wrapped in `v`, `d` or `data` (Xirsys, generic APIs). Each entry takes `urls` (string
/// or array) or the legacy `url`, and optional `username`, `credential` and
/// `credentialType: "password"`; its credentials apply to all its URLs. Unknown fields are
/// ignored; empty `username`/`credential` strings count as absent.
pub fn parse_ice_config(text: &str, source: &str) -> Result<IceConfig, ConfigError> {
    // Editors on Windows like to start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Json {
        source_name: source.to_string(),
        line: e.line(),
        column: e.column(),
        detail: json_detail(&e),
    })?;
    let shape = |why: &str| ConfigError::Shape {
        source_name: source.to_string(),
        why: why.to_string(),
    };
    let (entries, config_obj) = match &value {
        Value::Array(a) => (EntryList::Many(a), None),
        Value::Object(top) => {
            let obj = find_config_object(top).ok_or_else(|| {
                shape(
                    "no \"iceServers\" (or \"ice_servers\") key found: expected \
                     {\"iceServers\": [{\"urls\": ...}]} or a bare array of servers",
                )
            })?;
            let list = obj.get("iceServers").or_else(|| obj.get("ice_servers"));
            let entries = match list {
                Some(Value::Array(a)) => EntryList::Many(a),
                Some(Value::Object(o)) => EntryList::One(o),
                Some(Value::Null) => EntryList::Many(&[]),
                _ => return Err(shape("\"iceServers\" must be an array of server objects")),
            };
            (entries, Some(obj))
        }
        _ => {
            return Err(shape(
                "expected a JSON object with \"iceServers\" or an array of servers, found a \
                 scalar",
            ))
        }
    };
    let relay_only = match config_obj.and_then(|o| o.get("iceTransportPolicy")) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "relay" => true,
        Some(Value::String(s)) if s == "all" => false,
        Some(other) => {
            let shown = match other {
                Value::String(s) => format!("{:?}", s.chars().take(40).collect::<String>()),
                v => type_name(v).to_string(),
            };
            return Err(ConfigError::Policy {
                source_name: source.to_string(),
                value: shown,
            });
        }
    };
    let mut servers = Vec::new();
    match entries {
        EntryList::One(o) => parse_entry(o, 0, source, &mut servers)?,
        EntryList::Many(list) => {
            for (index, v) in list.iter().enumerate() {
                let Value::Object(o) = v else {
                    return Err(ConfigError::Entry {
                        source_name: source.to_string(),
                        index,
                        why: format!(
                            "expected an object like {{\"urls\": \"stun:host\"}}, found {}",
                            type_name(v)
                        ),
                    });
                };
                parse_entry(o, index, source, &mut servers)?;
            }
        }
    }
    if servers.is_empty() {
        return Err(ConfigError::Empty {
            source_name: source.to_string(),
        });
    }
    Ok(IceConfig {
        servers,
        relay_only,
    })
}

/// Read and parse an iceServers JSON file (see [`parse_ice_config`]); errors name the path.
pub fn read_ice_config_file(path: &Path) -> Result<IceConfig, ConfigError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        source_name: source.clone(),
        error,
    })?;
    parse_ice_config(&text, &source)
}

/// GET iceServers JSON from `url` (`Accept: application/json`) and parse it. `timeout` bounds
/// the whole exchange. User info in the URL is sent as HTTP Basic auth (Xirsys); errors name the
/// URL without user info or query string, since providers put API keys there.
pub async fn fetch_ice_config(url: &str, timeout: Duration) -> Result<IceConfig, ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ConfigError::BadFetchUrl {
        source_name: "the iceServers URL".to_string(),
        why: format!("not a valid URL ({e}): write e.g. https://example.com/ice"),
    })?;
    let source = redact_url(&parsed);
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    if !matches!(parsed.scheme(), "http" | "https") || host.is_empty() {
        return Err(ConfigError::BadFetchUrl {
            source_name: source,
            why: "only http:// and https:// URLs with a host can be fetched".to_string(),
        });
    }
    // reqwest built with `rustls-no-provider` panics without a process-wide provider.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let http_err = |e: reqwest::Error, stage: &'static str| {
        let e = e.without_url();
        if e.is_timeout() {
            let stage = if e.is_connect() {
                "connecting to"
            } else {
                stage
            };
            ConfigError::Timeout {
                source_name: source.clone(),
                host: host.clone(),
                stage,
                after: timeout,
            }
        } else if e.is_connect() {
            ConfigError::Connect {
                source_name: source.clone(),
                host: host.clone(),
                why: error_chain(&e),
            }
        } else {
            ConfigError::Http {
                source_name: source.clone(),
                why: error_chain(&e),
            }
        }
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| http_err(e, "building a client for"))?;
    let mut resp = client
        .get(parsed.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| http_err(e, "waiting for a response from"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ConfigError::Status {
            source_name: source,
            code: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("(unknown)").to_string(),
        });
    }
    let too_large = || ConfigError::Http {
        source_name: source.clone(),
        why: format!("response body is larger than {MAX_BODY_BYTES} bytes: not an iceServers list"),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| http_err(e, "reading the body from"))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    parse_ice_config(&text, &source)
}

/// coturn REST API credentials (`use-auth-secret`, draft-uberti-behave-turn-rest):
/// username = `"<expiry-unix>[:user]"`, credential = base64(HMAC-SHA1(secret, username)).
pub fn rest_credentials(secret: &Secret, user: Option<&str>, expiry_unix: u64) -> (String, Secret) {
    let username = match user {
        Some(u) => format!("{expiry_unix}:{u}"),
        None => expiry_unix.to_string(),
    };
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    let tag = mac.finalize().into_bytes();
    let credential = base64::engine::general_purpose::STANDARD.encode(tag);
    (username, Secret::new(credential))
}

/// Resolve a secret given as a flag value, an env var value, or a file (first line, trailing
/// newline trimmed). At most one of flag/file may be given (error names both flags); env is the
/// fallback, and an empty env value counts as unset. An empty flag value or file is an error.
pub fn resolve_secret(
    flag: Option<&str>,
    file: Option<&Path>,
    env: Option<String>,
    flag_name: &str,
    file_flag_name: &str,
) -> Result<Option<Secret>, ConfigError> {
    match (flag, file) {
        (Some(_), Some(_)) => Err(ConfigError::SecretConflict {
            flag: flag_name.to_string(),
            file_flag: file_flag_name.to_string(),
        }),
        (Some(""), None) => Err(ConfigError::EmptySecret {
            origin: flag_name.to_string(),
            hint: "give a non-empty value or leave the flag out",
        }),
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError::SecretFile {
                file_flag: file_flag_name.to_string(),
                path: path.display().to_string(),
                error,
            })?;
            let line = text.split('\n').next().unwrap_or("");
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                return Err(ConfigError::EmptySecret {
                    origin: format!("{file_flag_name} {}", path.display()),
                    hint: "put the secret on the first line of the file",
                });
            }
            Ok(Some(Secret::new(line)))
        }
        (None, None) => Ok(env.filter(|v| !v.is_empty()).map(Secret::new)),
    }
}

/// Apply command-line credentials to TURN servers, filling in whichever of username and
/// credential a server lacks (its own values win). STUN servers never get credentials.
pub fn apply_credentials(
    servers: &mut [IceServer],
    username: Option<&str>,
    credential: Option<&Secret>,
) {
    for server in servers.iter_mut().filter(|s| s.url.is_turn()) {
        if server.username.is_none() {
            server.username = username.map(str::to_string);
        }
        if server.credential.is_none() {
            server.credential = credential.cloned();
        }
    }
}

/// Credentials given once for every TURN server of a run (by flags, or by a serve module), as
/// opposed to a server's own from an iceServers document, which win over them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// None given: STUN only, unauthenticated TURN, or each server's own.
    #[default]
    None,
    /// Long-term credentials (RFC 8489 §9.2); each part given fills in what a server lacks.
    LongTerm {
        /// USERNAME.
        username: Option<String>,
        /// Password.
        password: Option<Secret>,
    },
    /// A coturn REST shared secret: credentials are minted from it, fresh for each run.
    Rest {
        /// Optional user part of the REST username (`<expiry>:<user>`).
        user: Option<String>,
        /// The shared secret (coturn `static-auth-secret`).
        secret: Secret,
        /// Lifetime of the minted credentials.
        ttl: Duration,
    },
}

impl Credentials {
    /// Apply these credentials to the TURN servers in `servers` at wall-clock time `now_unix`
    /// (REST credentials are minted here, valid until `now_unix + ttl`). Returns whether they
    /// are REST credentials, which changes how a 401 is explained.
    ///
    /// The one place minting happens, for `check`, `gather` and `serve` alike, so an expiry
    /// is computed one way (saturating: a huge TTL never wraps into the past).
    pub fn apply(&self, servers: &mut [IceServer], now_unix: u64) -> bool {
        match self {
            Credentials::None => false,
            Credentials::LongTerm { username, password } => {
                apply_credentials(servers, username.as_deref(), password.as_ref());
                false
            }
            Credentials::Rest { user, secret, ttl } => {
                let expiry = now_unix.saturating_add(ttl.as_secs());
                let (username, credential) = rest_credentials(secret, user.as_deref(), expiry);
                apply_credentials(servers, Some(&username), Some(&credential));
                true
            }
        }
    }
}

enum EntryList<'a> {
    Many(&'a [Value]),
    One(&'a Map<String, Value>),
}

/// The object holding `iceServers`: the top level or one wrapper below it.
fn find_config_object(top: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let has_list =
        |o: &Map<String, Value>| o.contains_key("iceServers") || o.contains_key("ice_servers");
    if has_list(top) {
        return Some(top);
    }
    WRAPPER_KEYS
        .iter()
        .filter_map(|k| top.get(*k)?.as_object())
        .find(|o| has_list(o))
}

fn parse_entry(
    obj: &Map<String, Value>,
    index: usize,
    source: &str,
    out: &mut Vec<IceServer>,
) -> Result<(), ConfigError> {
    let entry_err = |why: String| ConfigError::Entry {
        source_name: source.to_string(),
        index,
        why,
    };
    let urls_value = match obj.get("urls").filter(|v| !v.is_null()) {
        Some(v) => v,
        None => obj.get("url").filter(|v| !v.is_null()).ok_or_else(|| {
            entry_err("missing \"urls\": write e.g. {\"urls\": [\"turn:host:3478\"]}".into())
        })?,
    };
    let urls: Vec<&str> = match urls_value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<_>>()
            .ok_or_else(|| entry_err("every element of \"urls\" must be a string".into()))?,
        v => {
            return Err(entry_err(format!(
                "\"urls\" must be a string or an array of strings, found {}",
                type_name(v)
            )))
        }
    };
    if urls.is_empty() {
        return Err(entry_err(
            "\"urls\" is empty: list at least one stun: or turn: URL".into(),
        ));
    }
    match obj.get("credentialType") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "password" => {}
        Some(Value::String(t)) => {
            let t: String = t.chars().take(40).collect();
            return Err(entry_err(format!(
                "credentialType {t:?} is not supported: only \"password\" (long-term \
                 credentials) is"
            )));
        }
        Some(v) => {
            return Err(entry_err(format!(
                "\"credentialType\" must be a string, found {}",
                type_name(v)
            )))
        }
    }
    let string_field = |name: &str| match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(entry_err(format!(
            "\"{name}\" must be a string, found {}",
            type_name(v)
        ))),
    };
    let username = string_field("username")?;
    let credential = string_field("credential")?.map(Secret::new);
    for raw in urls {
        if raw.contains('@') {
            // Do not echo it: "turn:user:password@host" would print the password.
            return Err(entry_err(
                "a URL contains '@' (user info): put the user name and password in \
                 \"username\" and \"credential\" instead"
                    .into(),
            ));
        }
        let url = ice_url::parse(raw).map_err(|error| ConfigError::Url {
            source_name: source.to_string(),
            index,
            error,
        })?;
        out.push(IceServer {
            url,
            username: username.clone(),
            credential: credential.clone(),
        });
    }
    Ok(())
}

/// serde_json's message without its trailing " at line L column C" (reported separately).
fn json_detail(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `scheme://host[:port]/path`: no user info, query or fragment.
fn redact_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// An error and its sources joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/ice-servers")
            .join(name)
    }

    /// (url, username, credential) per server, for whole-result comparisons.
    type Row = (String, Option<String>, Option<String>);

    fn flat(cfg: &IceConfig) -> Vec<Row> {
        cfg.servers
            .iter()
            .map(|s| {
                (
                    s.url.to_string(),
                    s.username.clone(),
                    s.credential.as_ref().map(|c| c.expose().to_string()),
                )
            })
            .collect()
    }

    fn owned(rows: &[(&str, Option<&str>, Option<&str>)]) -> Vec<Row> {
        rows.iter()
            .map(|(u, n, c)| (u.to_string(), n.map(str::to_string), c.map(str::to_string)))
            .collect()
    }

    #[test]
    fn browser_fixture() {
        let cfg = read_ice_config_file(&fixture("browser.json")).unwrap();
        assert!(cfg.relay_only);
        let a = (Some("alice"), Some("s3cret-browser"));
        assert_eq!(
            flat(&cfg),
            owned(&[
                ("stun:stun.example.org:19302", None, None),
                ("turn:turn.example.org?transport=udp", a.0, a.1),
                ("turn:turn.example.org?transport=tcp", a.0, a.1),
                ("turns:turn.example.org:443?transport=tcp", a.0, a.1),
            ])
        );
    }

    #[test]
    fn bare_array_fixture() {
        let cfg =
            parse_ice_config(include_str!("../fixtures/ice-servers/bare-array.json"), "b").unwrap();
        assert!(!cfg.relay_only);
        let a = (Some("4f1c2d"), Some("bare-pass"));
        assert_eq!(
            flat(&cfg),
            owned(&[
                ("stun:stun.relay.example.net:80", None, None),
                ("turn:standard.relay.example.net:80", a.0, a.1),
                ("turn:standard.relay.example.net:80?transport=tcp", a.0, a.1),
                (
                    "turns:standard.relay.example.net:443?transport=tcp",
                    a.0,
                    a.1
                ),
            ])
        );
    }

    #[test]
    fn twilio_fixture() {
        let cfg = read_ice_config_file(&fixture("twilio.json")).unwrap();
        assert!(!cfg.relay_only);
        let a = (Some("f0e1d2c3b4a5"), Some("twilio-pass"));
        assert_eq!(
            flat(&cfg),
            owned(&[
                ("stun:global.stun.example.com", None, None),
                ("turn:global.turn.example.com?transport=udp", a.0, a.1),
                ("turn:global.turn.example.com:443?transport=tcp", a.0, a.1),
            ])
        );
    }

    #[test]
    fn xirsys_fixture() {
        let cfg = read_ice_config_file(&fixture("xirsys.json")).unwrap();
        assert!(!cfg.relay_only);
        let a = (Some("xu-123"), Some("xirsys-pass"));
        assert_eq!(
            flat(&cfg),
            owned(&[
                ("stun:eu-turn1.example.com", a.0, a.1),
                ("turn:eu-turn1.example.com:80?transport=udp", a.0, a.1),
                ("turns:eu-turn1.example.com?transport=tcp", a.0, a.1),
            ])
        );
    }

    #[test]
    fn bad_fixtures_name_the_source_and_hide_credentials() {
        for (name, want, secret) in [
            (
                "bad-policy.json",
                "iceTransportPolicy is \"public\"",
                "policy-pass",
            ),
            (
                "not-json.txt",
                "not valid JSON at line 1 column 2",
                "not-json-pass",
            ),
        ] {
            let path = fixture(name);
            let err = read_ice_config_file(&path).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(want), "{name}: {msg}");
            assert!(msg.contains(&path.display().to_string()), "{name}: {msg}");
            assert!(!format!("{msg} {err:?}").contains(secret), "{name}: {msg}");
        }
        let err = read_ice_config_file(Path::new("/nonexistent/ice.json")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read /nonexistent/ice.json"),
            "{err}"
        );
    }

    #[test]
    fn accepted_variants() {
        let cases: Vec<(&str, Vec<&str>, bool)> = vec![
            (
                r#"{"iceServers":[{"url":"stun:a"}],"iceTransportPolicy":"all"}"#,
                vec!["stun:a"],
                false,
            ),
            (
                r#"{"data":{"iceServers":[{"urls":"stun:a"}],"iceTransportPolicy":"relay"}}"#,
                vec!["stun:a"],
                true,
            ),
            (
                r#"{"d":{"iceServers":[{"urls":["stun:a","stun:b"]}]}}"#,
                vec!["stun:a", "stun:b"],
                false,
            ),
            (
                r#"{"iceServers":{"urls":["turn:a"]}}"#,
                vec!["turn:a"],
                false,
            ),
            (
                r#"{"iceServers":[{"urls":"stun:a","ttl":86400,"expires":"x","credentialType":null}]}"#,
                vec!["stun:a"],
                false,
            ),
            (
                r#"{"iceServers":[{"urls":"turn:a","username":"","credential":""}]}"#,
                vec!["turn:a"],
                false,
            ),
        ];
        for (input, urls, relay) in cases {
            let cfg = parse_ice_config(input, "t").unwrap_or_else(|e| panic!("{input}: {e}"));
            let got: Vec<String> = cfg.servers.iter().map(|s| s.url.to_string()).collect();
            assert_eq!(got, urls, "{input}");
            assert_eq!(cfg.relay_only, relay, "{input}");
            assert!(cfg
                .servers
                .iter()
                .all(|s| s.username.is_none() && s.credential.is_none()));
        }
    }

    #[test]
    fn parse_errors_name_the_problem_and_never_the_credential() {
        let cases: Vec<(&str, &str)> = vec![
            (
                r#"{"iceServers":[{"urls":"stun:a"}"#,
                "not valid JSON at line 1 column 32",
            ),
            ("", "not valid JSON at line 1 column 0"),
            ("42", "found a scalar"),
            (r#"{"servers":[]}"#, "no \"iceServers\""),
            (r#"{"iceServers":"stun:a"}"#, "must be an array"),
            (r#"{"iceServers":[]}"#, "no iceServers in src.json"),
            ("[]", "no iceServers in src.json"),
            (r#"{"iceServers":null}"#, "no iceServers in src.json"),
            (
                r#"[{"username":"u","credential":"hunter2"}]"#,
                "iceServers[0]: missing \"urls\"",
            ),
            (
                r#"[{"urls":"stun:a"},"turn:b"]"#,
                "iceServers[1]: expected an object",
            ),
            (
                r#"[{"urls":7,"credential":"hunter2"}]"#,
                "\"urls\" must be a string or an array",
            ),
            (
                r#"[{"urls":["turn:a",1],"credential":"hunter2"}]"#,
                "every element of \"urls\"",
            ),
            (
                r#"[{"urls":[],"credential":"hunter2"}]"#,
                "\"urls\" is empty",
            ),
            (
                r#"[{"urls":"http://a","credential":"hunter2"}]"#,
                "iceServers[0]: \"http://a\": unknown scheme",
            ),
            (
                r#"[{"urls":"stun:a"},{"urls":"turn:a:0","credential":"hunter2"}]"#,
                "iceServers[1]: \"turn:a:0\": bad port",
            ),
            (r#"[{"urls":"turn:u:hunter2@a"}]"#, "contains '@'"),
            (
                r#"[{"urls":"turn:a","credential":7}]"#,
                "\"credential\" must be a string, found a number",
            ),
            (
                r#"[{"urls":"turn:a","username":["x"],"credential":"hunter2"}]"#,
                "\"username\" must be a string",
            ),
            (
                r#"[{"urls":"turn:a","credentialType":"oauth","credential":"hunter2"}]"#,
                "credentialType \"oauth\" is not supported",
            ),
            (
                r#"[{"urls":"turn:a","credentialType":1,"credential":"hunter2"}]"#,
                "\"credentialType\" must be a string",
            ),
            (
                r#"{"iceServers":[{"urls":"turn:a","credential":"hunter2"}],"iceTransportPolicy":"none"}"#,
                "iceTransportPolicy is \"none\"",
            ),
            (
                r#"{"iceServers":[{"urls":"turn:a"}],"iceTransportPolicy":true}"#,
                "iceTransportPolicy is a boolean",
            ),
            (
                r#"{"iceServers":[{"urls":"turn:a","credential":"hunter2"},]}"#,
                "trailing comma",
            ),
        ];
        for (input, want) in cases {
            let err = parse_ice_config(input, "src.json").expect_err(input);
            let msg = err.to_string();
            assert!(msg.contains(want), "{input}: {msg:?} lacks {want:?}");
            assert!(
                msg.contains("src.json"),
                "{input}: {msg:?} lacks the source"
            );
            assert!(
                !format!("{msg} {err:?}").contains("hunter2"),
                "{input}: leaks: {msg}"
            );
        }
    }

    #[test]
    fn no_panic_on_odd_input() {
        for input in [
            "\u{feff}{}",
            "{\"v\":1}",
            "[null]",
            "[[]]",
            "{\"iceServers\":[{\"urls\":null,\"url\":null}]}",
            "\"\\ud800\"",
            "[1e999]",
        ] {
            assert!(parse_ice_config(input, "x").is_err(), "{input}");
        }
    }

    #[test]
    fn rest_credentials_known_answer() {
        // python3: base64(hmac.new(b"secret", b"1700000000:alice", hashlib.sha1).digest())
        let secret = Secret::new("secret");
        let (user, cred) = rest_credentials(&secret, Some("alice"), 1_700_000_000);
        assert_eq!(user, "1700000000:alice");
        assert_eq!(cred.expose(), "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
        let (user, cred) = rest_credentials(&secret, None, 1_700_000_000);
        assert_eq!(user, "1700000000");
        assert_eq!(cred.expose(), "WGw37+g43pfwVUmrc9tgArn/juE=");
    }

    #[test]
    fn resolve_secret_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cred");
        std::fs::write(&file, "from-file\r\nsecond line\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let env = || Some("from-env".to_string());
        let r = |flag, file: Option<&Path>, env| {
            resolve_secret(flag, file, env, "--credential", "--credential-file")
        };
        let got =
            |res: Result<Option<Secret>, ConfigError>| res.unwrap().map(|s| s.expose().to_string());

        assert_eq!(
            got(r(Some("from-flag"), None, env())).as_deref(),
            Some("from-flag")
        );
        assert_eq!(
            got(r(None, Some(&file), env())).as_deref(),
            Some("from-file")
        );
        assert_eq!(got(r(None, None, env())).as_deref(), Some("from-env"));
        assert_eq!(got(r(None, None, Some(String::new()))), None);
        assert_eq!(got(r(None, None, None)), None);

        let cases: Vec<(Result<Option<Secret>, ConfigError>, &str)> = vec![
            (
                r(Some("x"), Some(&file), None),
                "give either --credential or --credential-file, not both",
            ),
            (r(Some(""), None, None), "--credential is empty"),
            (r(None, Some(&empty), None), "--credential-file"),
            (
                r(None, Some(&dir.path().join("missing")), None),
                "cannot read",
            ),
        ];
        for (res, want) in cases {
            let msg = res.unwrap_err().to_string();
            assert!(msg.contains(want), "{msg:?} lacks {want:?}");
            assert!(!msg.contains("from-file"), "{msg}");
        }
    }

    #[test]
    fn apply_credentials_fills_turn_only() {
        let mut cfg = parse_ice_config(
            r#"[{"urls":["stun:s","turn:a","turns:b"]},{"urls":"turn:c","username":"own","credential":"ownpw"},{"urls":"turn:d","username":"onlyuser"}]"#,
            "t",
        )
        .unwrap();
        apply_credentials(&mut cfg.servers, Some("cli"), Some(&Secret::new("clipw")));
        let a = (Some("cli"), Some("clipw"));
        assert_eq!(
            flat(&cfg),
            owned(&[
                ("stun:s", None, None),
                ("turn:a", a.0, a.1),
                ("turns:b", a.0, a.1),
                ("turn:c", Some("own"), Some("ownpw")),
                ("turn:d", Some("onlyuser"), Some("clipw")),
            ])
        );
        let before = cfg.clone();
        apply_credentials(&mut cfg.servers, None, None);
        assert_eq!(cfg, before);
    }

    #[test]
    fn credentials_apply_mints_rest_at_now_plus_ttl() {
        let list = || {
            parse_ice_config(
                r#"[{"urls":["stun:s","turn:a"]},{"urls":"turn:c","username":"own","credential":"ownpw"}]"#,
                "t",
            )
            .unwrap()
            .servers
        };
        let rest = |user: Option<&str>, ttl| Credentials::Rest {
            user: user.map(str::to_string),
            secret: Secret::new("secret"),
            ttl: Duration::from_secs(ttl),
        };
        /// The username and password a server ends up with.
        type Given<'a> = (Option<&'a str>, Option<&'a str>);
        // (credentials, now, REST?, what turn:a gets); stun:s never gets any, turn:c keeps its own.
        let cases: &[(Credentials, u64, bool, Given)] = &[
            (Credentials::None, 5, false, (None, None)),
            (
                Credentials::LongTerm {
                    username: Some("u".into()),
                    password: None,
                },
                5,
                false,
                (Some("u"), None),
            ),
            (
                Credentials::LongTerm {
                    username: Some("u".into()),
                    password: Some(Secret::new("p")),
                },
                5,
                false,
                (Some("u"), Some("p")),
            ),
            // The known answers of `rest_credentials_known_answer`: expiry = now + ttl.
            (
                rest(Some("alice"), 3600),
                1_700_000_000 - 3600,
                true,
                (
                    Some("1700000000:alice"),
                    Some("d8soP47RbdIKLDUOpnJPVQyq5Ts="),
                ),
            ),
            (
                rest(None, 0),
                1_700_000_000,
                true,
                (Some("1700000000"), Some("WGw37+g43pfwVUmrc9tgArn/juE=")),
            ),
        ];
        for (creds, now, want_rest, (user, cred)) in cases {
            let mut servers = list();
            assert_eq!(creds.apply(&mut servers, *now), *want_rest, "{creds:?}");
            let got: Vec<(String, Option<&str>, Option<&str>)> = servers
                .iter()
                .map(|s| {
                    (
                        s.url.to_string(),
                        s.username.as_deref(),
                        s.credential.as_ref().map(Secret::expose),
                    )
                })
                .collect();
            let want = vec![
                ("stun:s".to_string(), None, None),
                ("turn:a".to_string(), *user, *cred),
                ("turn:c".to_string(), Some("own"), Some("ownpw")),
            ];
            assert_eq!(got, want, "{creds:?} at {now}");
        }
        // A TTL past the end of time saturates instead of wrapping into an expired username.
        let mut servers = list();
        rest(None, u64::MAX).apply(&mut servers, 10);
        assert_eq!(
            servers[1].username.as_deref(),
            Some(u64::MAX.to_string().as_str())
        );
    }

    /// Serve one canned HTTP/1.1 response per connection; returns the base URL.
    async fn canned(response: impl Into<String>) -> String {
        let response = std::sync::Arc::new(response.into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let resp = if head.contains("accept: application/json") {
                        response.as_str()
                    } else {
                        "HTTP/1.1 406 Not Acceptable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        format!("http://127.0.0.1:{}", addr.port())
    }

    fn install_provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    const SHORT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn fetch_ok() {
        install_provider();
        let body = r#"{"iceServers":[{"urls":"turn:198.18.0.1","username":"u","credential":"p"}],"iceTransportPolicy":"relay"}"#;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let base = canned(resp).await;
        let cfg = fetch_ice_config(&format!("{base}/ice?key=SECRETKEY"), SHORT)
            .await
            .unwrap();
        assert!(cfg.relay_only);
        assert_eq!(
            flat(&cfg),
            owned(&[("turn:198.18.0.1", Some("u"), Some("p"))])
        );
    }

    #[tokio::test]
    async fn fetch_404_names_status_not_query() {
        install_provider();
        let base = canned(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
        )
        .await;
        let url = format!(
            "{}/api?key=SECRETKEY",
            base.replace("http://", "http://user:PASSWORD@")
        );
        let err = fetch_ice_config(&url, SHORT).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HTTP 404 Not Found"), "{msg}");
        assert!(msg.contains(&format!("{base}/api")), "{msg}");
        for secret in ["SECRETKEY", "PASSWORD", "user"] {
            assert!(!format!("{msg} {err:?}").contains(secret), "{msg}");
        }
    }

    #[tokio::test]
    async fn fetch_garbage_body() {
        install_provider();
        let base = canned("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 15\r\nconnection: close\r\n\r\n<html>hi</html>").await;
        let msg = fetch_ice_config(&format!("{base}/x?key=SECRETKEY"), SHORT)
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not valid JSON at line 1 column 1"), "{msg}");
        assert!(
            msg.contains(&format!("{base}/x")) && !msg.contains("SECRETKEY"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn fetch_timeout_when_server_never_answers() {
        install_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let url = format!("http://127.0.0.1:{port}/ice?key=SECRETKEY");
        let err = fetch_ice_config(&url, Duration::from_millis(300))
            .await
            .unwrap_err();
        hold.abort();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Timeout { .. }), "{msg}");
        assert!(
            msg.contains("timed out after 300ms while waiting for a response from 127.0.0.1:"),
            "{msg}"
        );
        assert!(!msg.contains("SECRETKEY"), "{msg}");
    }

    #[tokio::test]
    async fn fetch_connect_refused_and_bad_urls() {
        install_provider();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = fetch_ice_config(&format!("http://127.0.0.1:{port}/?key=SECRETKEY"), SHORT)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Connect { .. }), "{msg}");
        assert!(
            msg.contains(&format!("cannot connect to 127.0.0.1:{port}")),
            "{msg}"
        );
        assert!(!msg.contains("SECRETKEY"), "{msg}");

        for (url, want) in [
            ("not a url?key=SECRETKEY", "not a valid URL"),
            ("ftp://h/x?key=SECRETKEY", "only http:// and https://"),
        ] {
            let msg = fetch_ice_config(url, SHORT).await.unwrap_err().to_string();
            assert!(msg.contains(want) && !msg.contains("SECRETKEY"), "{msg}");
        }
    }
}
