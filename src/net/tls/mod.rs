//! The TLS client side of `turns:` and `stuns:` probes (RFC 7065 §3, RFC 7064 §3).
//!
//! [`client_config`] builds a rustls configuration on the ring provider (never the process
//! default) that trusts webpki-roots, or only the CAs of `--ca FILE`. [`handshake`] runs the
//! handshake over an already-connected TCP stream under a deadline and returns what a report
//! needs: version, cipher, ALPN, SNI, timing, the presented chain and the verification verdict.
//!
//! Certificate failures stay structured ([`CertProblem`]) and keep the presented chain, even
//! though rustls aborts the handshake before handing out peer certificates: the verifier we
//! install records what the server presented and what the WebPKI verifier said into a
//! per-handshake slot (a tokio task-local set by [`handshake`], so one [`ClientConfig`] can be
//! shared by concurrent probes without their records mixing). With `--insecure` the same verifier
//! accepts anything but still records whether the certificate *would* have verified.
//!
//! Session resumption is disabled: a probe must see, and verify, the full certificate chain on
//! every connection.

mod cert;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use crate::model::tls::{CertInfo, CertProblem, TlsInfo, Verification};
pub(crate) use cert::rfc3339;
use cert::{chain_info, name_text, problem_from_error, unix_now};

/// How to verify the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--ca FILE`: trust only the CA certificates in this PEM file instead of webpki-roots.
    pub ca_file: Option<PathBuf>,
    /// `--tls-name NAME`: the name to send as SNI and to verify, instead of the URL host.
    pub server_name: Option<String>,
    /// `--insecure`: accept any certificate, but still record whether it would have verified.
    pub insecure: bool,
}

/// What can go wrong setting up or running the TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The `--ca` file could not be read or holds no usable CA certificate.
    #[error("CA file {}: {why}", path.display())]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The `--tls-name` or URL host is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {name:?}")]
    BadName {
        /// The name as given.
        name: String,
    },
    /// The handshake failed because the server's certificate did not verify.
    #[error("{}", problem.describe())]
    Certificate {
        /// Why it did not verify.
        problem: CertProblem,
        /// The chain the server presented, end-entity first (empty if none was recorded).
        chain: Vec<CertInfo>,
    },
    /// The server aborted the handshake with a TLS alert (RFC 8446 §6).
    #[error("server sent TLS alert {description}")]
    Alert {
        /// The alert's RFC name, e.g. `protocol_version`.
        description: String,
    },
    /// The handshake failed for another protocol reason (e.g. the peer does not speak TLS).
    #[error("TLS handshake failed: {detail}")]
    Handshake {
        /// What went wrong.
        detail: String,
    },
    /// The deadline passed before the handshake finished.
    #[error("TLS handshake timed out")]
    Timeout,
    /// A DTLS handshake failed for a protocol reason (e.g. the port does not serve DTLS).
    #[error("DTLS handshake failed: {detail}")]
    Dtls {
        /// What went wrong.
        detail: String,
    },
    /// The deadline passed before a DTLS handshake finished (no answer on UDP, most likely).
    #[error("DTLS handshake timed out")]
    DtlsTimeout,
    /// The connection failed underneath the handshake.
    #[error("I/O error during the TLS handshake: {0}")]
    Io(#[source] io::Error),
}

impl TlsError {
    /// One sentence for users, naming the flag to fix where one helps.
    pub fn cause(&self) -> String {
        match self {
            Self::CaFile { path, why } => {
                format!("cannot use CA file {}: {why}", path.display())
            }
            Self::BadName { name } => format!(
                "{name:?} is not a valid TLS server name (a DNS name or an IP address): fix --tls-name or the URL host"
            ),
            Self::Certificate { problem, .. } => match problem.advice() {
                Some(advice) => format!("{}: {advice}", problem.describe()),
                None => problem.describe(),
            },
            Self::Alert { description } => match alert_hint(description) {
                Some(hint) => format!("server sent TLS alert {description}: {hint}"),
                None => format!("server sent TLS alert {description}"),
            },
            Self::Handshake { detail } => format!("TLS handshake failed: {detail}"),
            Self::Timeout => {
                "no TLS handshake answer within the deadline (server silent or not speaking TLS)"
                    .to_owned()
            }
            Self::Dtls { detail } => format!(
                "DTLS handshake failed: {detail}: the port may not serve DTLS, or something on the path rewrites UDP"
            ),
            Self::DtlsTimeout => {
                "no DTLS handshake answer within the deadline: UDP to this port is blocked, or the server does not offer DTLS (coturn: --no-dtls, or no --cert)"
                    .to_owned()
            }
            Self::Io(e) => format!("connection failed during the TLS handshake: {e}"),
        }
    }

    /// The certificate problem, if this is a certificate failure.
    pub fn cert_problem(&self) -> Option<&CertProblem> {
        match self {
            Self::Certificate { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The user-facing phase this error belongs to: `config` for bad input, else `tls`.
    pub fn phase(&self) -> &'static str {
        match self {
            Self::CaFile { .. } | Self::BadName { .. } => "config",
            _ => "tls",
        }
    }
}

/// Builds a client configuration on the ring provider: webpki-roots, or only the CAs in
/// `opts.ca_file` (PEM, one or more certificates); with `opts.insecure` any certificate is
/// accepted but still checked (see [`Verification::Skipped`]). `alpn` is the ALPN list to offer
/// (RFC 7443: `stun.turn`, `stun.nat-discovery`); empty offers none. Session resumption is off.
pub fn client_config(opts: &TlsOptions, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = webpki_verifier(opts, provider.clone())?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        insecure: opts.insecure,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Handshake {
            detail: format!("cannot configure TLS versions: {e}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Verifies a chain (DER, end-entity first) that a transport rustls does not run presented —
/// DTLS (RFC 7350) — with the same roots, name rules and structured reasons as [`handshake`].
/// Returns the chain for the report and the verdict; a chain that does not verify is an error
/// unless `opts.insecure`, which records what verification would have said.
pub fn verify_presented(
    opts: &TlsOptions,
    name: &ServerName<'static>,
    presented: &[Vec<u8>],
) -> Result<(Vec<CertInfo>, Verification), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = webpki_verifier(opts, provider)?;
    let certs: Vec<CertificateDer<'static>> = presented
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let Some((end_entity, intermediates)) = certs.split_first() else {
        return Err(TlsError::Dtls {
            detail: "the server presented no certificate".to_owned(),
        });
    };
    let now = unix_now();
    let chain = chain_info(&certs, now);
    let verdict = verifier
        .verify_server_cert(end_entity, intermediates, name, &[], UnixTime::now())
        .err();
    let problem = verdict.map(|e| problem_from_error(&e, &chain, &name_text(name)));
    match (problem, opts.insecure) {
        (None, false) => Ok((chain, Verification::Verified)),
        (would_fail, true) => Ok((chain, Verification::Skipped { would_fail })),
        (Some(problem), false) => Err(TlsError::Certificate { problem, chain }),
    }
}

/// The WebPKI verifier over webpki-roots, or only the CAs of `--ca`.
fn webpki_verifier(
    opts: &TlsOptions,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let roots = match &opts.ca_file {
        Some(path) => roots_from_file(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| match &opts.ca_file {
            Some(path) => TlsError::CaFile {
                path: path.clone(),
                why: e.to_string(),
            },
            None => TlsError::Handshake {
                detail: format!("cannot build the certificate verifier: {e}"),
            },
        })
}

/// Reads a PEM file of CA certificates into a root store.
fn roots_from_file(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    let fail = |why: String| TlsError::CaFile {
        path: path.to_path_buf(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert =
            cert.map_err(|e| fail(format!("certificate {} is not valid PEM: {e}", i + 1)))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("certificate {} is not a usable CA: {e}", i + 1)))?;
    }
    if roots.is_empty() {
        return Err(fail("no PEM CERTIFICATE block found".to_owned()));
    }
    Ok(roots)
}

/// The name to send as SNI and to verify: `opts.server_name` (`--tls-name`) if given, else the
/// URL host. IP literals (IPv6 with or without brackets) become [`ServerName::IpAddress`].
pub fn server_name(opts: &TlsOptions, host: &str) -> Result<ServerName<'static>, TlsError> {
    let name = opts.server_name.as_deref().unwrap_or(host);
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::BadName {
        name: name.to_owned(),
    })
}

/// Runs the TLS handshake over `tcp` until `deadline`. On success returns the stream and what
/// was negotiated; on failure a [`TlsError`] that keeps certificate problems structured.
///
/// `config` should come from [`client_config`]: only its verifier records the presented chain
/// of a failed handshake and the `--insecure` verdict; with any other configuration a finished
/// handshake is reported as [`Verification::Verified`] and a rejected one carries no chain.
pub async fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    deadline: Instant,
) -> Result<(TlsStream<TcpStream>, TlsInfo), TlsError> {
    let slot: Slot = Arc::new(Mutex::new(None));
    let sni = match &name {
        ServerName::DnsName(d) => Some(d.as_ref().to_owned()),
        _ => None,
    };
    let started = Instant::now();
    let connect = TlsConnector::from(config).connect(name, tcp);
    let outcome = tokio::time::timeout_at(deadline, OBSERVED.scope(slot.clone(), connect)).await;
    let handshake_ms = crate::model::ms(started.elapsed());
    let observed = slot.lock().ok().and_then(|mut g| g.take());
    let now = unix_now();
    let stream = match outcome {
        Err(_) => return Err(TlsError::Timeout),
        Ok(Err(e)) => return Err(map_io_error(e, observed, now)),
        Ok(Ok(stream)) => stream,
    };
    let (_, conn) = stream.get_ref();
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_owned)
        })
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let chain = conn
        .peer_certificates()
        .map(|certs| chain_info(certs, now))
        .unwrap_or_default();
    let verification = match observed {
        Some(Observed {
            insecure: true,
            verdict,
            expected,
            ..
        }) => Verification::Skipped {
            would_fail: verdict.map(|e| problem_from_error(&e, &chain, &expected)),
        },
        // The verifier only lets a handshake finish unverified in insecure mode.
        _ => Verification::Verified,
    };
    let info = TlsInfo {
        version,
        cipher,
        alpn,
        sni,
        handshake_ms,
        chain,
        verification,
    };
    Ok((stream, info))
}

/// What the verifier saw during one handshake.
#[derive(Debug)]
struct Observed {
    /// End-entity first, then intermediates, as presented.
    chain: Vec<CertificateDer<'static>>,
    /// The WebPKI verifier's rejection, or `None` if it accepted.
    verdict: Option<rustls::Error>,
    /// The name verified against, as text.
    expected: String,
    /// Whether the verifier was in insecure mode.
    insecure: bool,
}

/// Per-handshake record, shared between [`handshake`] and the verifier.
type Slot = Arc<Mutex<Option<Observed>>>;

tokio::task_local! {
    /// Set by [`handshake`] around the rustls handshake; the verifier runs synchronously inside
    /// that future's poll, so it finds the slot of the handshake it serves.
    static OBSERVED: Slot;
}

/// A [`ServerCertVerifier`] that delegates to WebPKI, records what was presented and what the
/// delegate said, and in insecure mode accepts whatever the delegate said.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let _ = OBSERVED.try_with(|slot| {
            if let Ok(mut guard) = slot.lock() {
                *guard = Some(Observed {
                    chain: std::iter::once(end_entity)
                        .chain(intermediates)
                        .map(|c| c.clone().into_owned())
                        .collect(),
                    verdict: result.as_ref().err().cloned(),
                    expected: name_text(server_name),
                    insecure: self.insecure,
                });
            }
        });
        if self.insecure {
            Ok(ServerCertVerified::assertion())
        } else {
            result
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Maps the io::Error tokio-rustls returns into a [`TlsError`], using what the verifier saw.
fn map_io_error(e: io::Error, observed: Option<Observed>, now: i64) -> TlsError {
    let rustls_err = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    let Some(err) = rustls_err else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => TlsError::Handshake {
                detail: "server closed the connection before the handshake finished".to_owned(),
            },
            _ => TlsError::Io(e),
        };
    };
    match err {
        rustls::Error::InvalidCertificate(_) => {
            let (chain, expected) = match &observed {
                Some(o) => (chain_info(&o.chain, now), o.expected.clone()),
                None => (Vec::new(), String::new()),
            };
            TlsError::Certificate {
                problem: problem_from_error(&err, &chain, &expected),
                chain,
            }
        }
        rustls::Error::AlertReceived(alert) => TlsError::Alert {
            description: alert_name(&format!("{alert:?}")),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsError::Handshake {
                detail: format!(
                    "the server did not answer with TLS ({err}): is this a plain TCP port?"
                ),
            }
        }
        other => TlsError::Handshake {
            detail: other.to_string(),
        },
    }
}

/// rustls' `AlertDescription` Debug name (`ProtocolVersion`) as its RFC name
/// (`protocol_version`); unknown codes stay as rustls prints them.
fn alert_name(debug: &str) -> String {
    if debug.starts_with("Unknown(") {
        return debug.to_owned();
    }
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, ch) in debug.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// What a received alert most likely means for a STUN/TURN server.
fn alert_hint(description: &str) -> Option<&'static str> {
    Some(match description {
        "protocol_version" => "it may not support TLS 1.2+",
        "handshake_failure" | "insufficient_security" => {
            "no cipher suite or key exchange in common"
        }
        "unrecognised_name" | "unrecognized_name" => {
            "it does not know the SNI name sent: try --tls-name"
        }
        "no_application_protocol" => "it rejected the ALPN protocols offered",
        "certificate_required" => "it requires a client certificate",
        "internal_error" => "the server failed internally",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;
    use x509_parser::time::ASN1Time;

    const DAY: u64 = 86_400;
    const HOUR: u64 = 3_600;

    /// Runs a test body under a hard limit so a hung handshake fails instead of hanging.
    async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
        tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("test exceeded its 20 s limit");
    }

    /// A test CA: its parameters, key and PEM.
    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    fn make_ca(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("self-sign CA").pem();
        Ca { params, key, pem }
    }

    /// Validity window relative to now: (not_before, not_after) as signed seconds offsets.
    struct Window(i64, i64);

    const FRESH: Window = Window(-(DAY as i64), (30 * DAY + HOUR) as i64);

    fn shifted(offset: i64) -> x509_parser::time::ASN1Time {
        let now = ASN1Time::now().to_datetime();
        let mag = Duration::from_secs(offset.unsigned_abs());
        ASN1Time::new(if offset < 0 { now - mag } else { now + mag })
    }

    /// A leaf for `sans` signed by `ca` (or self-signed when `ca` is `None`).
    fn make_leaf(
        ca: Option<&Ca>,
        sans: &[&str],
        window: Window,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "turn.test");
        params.not_before = shifted(window.0).to_datetime();
        params.not_after = shifted(window.1).to_datetime();
        let cert = match ca {
            Some(ca) => params
                .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
                .expect("sign leaf"),
            None => params.self_signed(&key).expect("self-sign leaf"),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }

    fn ca_file(ca: &Ca) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, ca.pem.as_bytes()).expect("write CA");
        f
    }

    /// A TLS 1.2 + 1.3 server on loopback (ring provider) that serves `cert` to every client.
    async fn tls_server(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        alpn: &[&[u8]],
    ) -> SocketAddr {
        tls_server_versions(cert, key, alpn, rustls::DEFAULT_VERSIONS).await
    }

    /// Like [`tls_server`], limited to `versions`.
    async fn tls_server_versions(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> SocketAddr {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server cert");
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 16];
                        let _ = tls.read(&mut buf).await;
                    }
                });
            }
        });
        addr
    }

    /// A TCP server that accepts, writes `reply` (maybe nothing) and then holds the connection.
    async fn raw_server(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = tcp.write_all(reply).await;
                    let mut buf = [0u8; 4096];
                    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        addr
    }

    async fn probe_with(
        addr: SocketAddr,
        opts: &TlsOptions,
        host: &str,
        alpn: &[&[u8]],
        within: Duration,
    ) -> Result<TlsInfo, TlsError> {
        let config = client_config(opts, alpn)?;
        let name = server_name(opts, host)?;
        let tcp = TcpStream::connect(addr).await.map_err(TlsError::Io)?;
        handshake(tcp, config, name, Instant::now() + within)
            .await
            .map(|(_, info)| info)
    }

    async fn probe(addr: SocketAddr, opts: &TlsOptions, host: &str) -> Result<TlsInfo, TlsError> {
        probe_with(addr, opts, host, &[], Duration::from_secs(5)).await
    }

    fn opts_with_ca(file: &tempfile::NamedTempFile) -> TlsOptions {
        TlsOptions {
            ca_file: Some(file.path().to_path_buf()),
            ..TlsOptions::default()
        }
    }

    #[tokio::test]
    async fn valid_certificate_verifies_and_reports_the_chain() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["localhost", "127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let file = ca_file(&ca);
            let info = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect("handshake");
            assert_eq!(info.verification, Verification::Verified);
            assert_eq!(info.version, "TLSv1.3");
            assert!(info.cipher.starts_with("TLS13_"), "{}", info.cipher);
            assert_eq!(info.sni, None, "IP names are not sent as SNI");
            assert_eq!(info.alpn, None);
            assert!(info.handshake_ms > 0.0);
            let [leaf] = info.chain.as_slice() else {
                panic!("one certificate expected: {:?}", info.chain)
            };
            assert_eq!(leaf.subject, "CN=turn.test");
            assert_eq!(leaf.issuer, "CN=iceprobe test CA");
            assert_eq!(leaf.sans, ["localhost", "127.0.0.1"]);
            assert_eq!(leaf.days_left, 30);
            assert!(leaf.not_after.ends_with('Z') && leaf.not_after.len() == 20);

            let info = probe(addr, &opts_with_ca(&file), "localhost")
                .await
                .expect("handshake by name");
            assert_eq!(info.sni.as_deref(), Some("localhost"));
        })
        .await;
    }

    #[tokio::test]
    async fn expired_certificate_is_a_structured_failure_with_the_chain() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let window = Window(-((30 * DAY) as i64), -((3 * DAY + HOUR) as i64));
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], window);
            let addr = tls_server(cert, key, &[]).await;
            let file = ca_file(&ca);
            let err = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect_err("expired must fail");
            let TlsError::Certificate { problem, chain } = &err else {
                panic!("certificate error expected: {err:?}")
            };
            let CertProblem::Expired {
                days_ago: Some(3),
                not_after: Some(not_after),
            } = problem
            else {
                panic!("expired 3 days ago expected: {problem:?}")
            };
            assert_eq!(chain.len(), 1);
            assert_eq!(&chain[0].not_after, not_after);
            assert!(chain[0].days_left < 0);
            let cause = err.cause();
            assert!(
                cause.starts_with("certificate expired 3 days ago (not after 20"),
                "{cause}"
            );
            assert_eq!(err.cert_problem(), Some(problem));
            assert_eq!(err.phase(), "tls");
        })
        .await;
    }

    #[tokio::test]
    async fn not_yet_valid_certificate_counts_days_until() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let window = Window((2 * DAY + HOUR) as i64, (40 * DAY) as i64);
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], window);
            let addr = tls_server(cert, key, &[]).await;
            let file = ca_file(&ca);
            let err = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect_err("not yet valid must fail");
            assert!(
                matches!(
                    err.cert_problem(),
                    Some(CertProblem::NotYetValid {
                        days_until: Some(2),
                        not_before: Some(_)
                    })
                ),
                "{err:?}"
            );
            assert!(err.cause().contains("valid in 2 days"), "{}", err.cause());
        })
        .await;
    }

    #[tokio::test]
    async fn wrong_name_is_a_name_mismatch_naming_both_sides() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["other.example"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let file = ca_file(&ca);
            let err = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect_err("wrong name must fail");
            assert_eq!(
                err.cert_problem(),
                Some(&CertProblem::NameMismatch {
                    expected: "127.0.0.1".to_owned(),
                    presented: vec!["other.example".to_owned()],
                })
            );
            assert_eq!(
                err.cause(),
                "certificate is for other.example, not 127.0.0.1: pass --tls-name or fix the certificate's SANs"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn unknown_ca_and_self_signed_are_told_apart() {
        bounded(async {
            let trusted = make_ca("iceprobe test CA");
            let stranger = make_ca("somebody else's CA");
            let file = ca_file(&trusted);

            let (cert, key) = make_leaf(Some(&stranger), &["127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let err = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect_err("unknown CA must fail");
            assert_eq!(err.cert_problem(), Some(&CertProblem::UnknownIssuer));
            assert_eq!(
                err.cause(),
                "certificate issued by an unknown CA: pass --ca FILE if it is a private CA"
            );
            let TlsError::Certificate { chain, .. } = &err else {
                unreachable!()
            };
            assert_eq!(chain[0].issuer, "CN=somebody else's CA");

            let (cert, key) = make_leaf(None, &["127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let err = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect_err("self-signed must fail");
            assert_eq!(err.cert_problem(), Some(&CertProblem::SelfSigned));
        })
        .await;
    }

    #[tokio::test]
    async fn webpki_roots_reject_a_private_ca() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let err = probe(addr, &TlsOptions::default(), "127.0.0.1")
                .await
                .expect_err("private CA is not in webpki-roots");
            assert_eq!(err.cert_problem(), Some(&CertProblem::UnknownIssuer));
        })
        .await;
    }

    #[tokio::test]
    async fn insecure_accepts_but_records_what_would_have_failed() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let file = ca_file(&ca);
            let insecure = TlsOptions {
                insecure: true,
                ..opts_with_ca(&file)
            };

            let window = Window(-((30 * DAY) as i64), -((3 * DAY + HOUR) as i64));
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], window);
            let addr = tls_server(cert, key, &[]).await;
            let info = probe(addr, &insecure, "127.0.0.1")
                .await
                .expect("insecure accepts an expired certificate");
            let Verification::Skipped {
                would_fail:
                    Some(CertProblem::Expired {
                        days_ago: Some(3), ..
                    }),
            } = &info.verification
            else {
                panic!("skipped with would_fail expired: {:?}", info.verification)
            };
            assert_eq!(info.chain.len(), 1);
            let json = serde_json::to_value(&info.verification).expect("json");
            assert_eq!(json["status"], "skipped");
            assert_eq!(json["would_fail"]["kind"], "expired");
            assert_eq!(json["would_fail"]["days_ago"], 3);

            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let info = probe(addr, &insecure, "127.0.0.1").await.expect("valid");
            assert_eq!(
                info.verification,
                Verification::Skipped { would_fail: None }
            );
        })
        .await;
    }

    /// DTLS chains go through `verify_presented`: the same certificate and options give the
    /// verdicts and structured reasons the rustls handshake gives above.
    #[test]
    fn a_presented_chain_gets_the_verdicts_of_a_handshake() {
        let ca = make_ca("iceprobe test CA");
        let other = make_ca("another CA");
        let file = ca_file(&ca);
        let strict = opts_with_ca(&file);
        let insecure = TlsOptions {
            insecure: true,
            ..opts_with_ca(&file)
        };
        let ip: ServerName<'static> =
            ServerName::IpAddress("127.0.0.1".parse::<IpAddr>().unwrap().into());
        let expired = || Window(-((30 * DAY) as i64), -((3 * DAY + HOUR) as i64));
        let chain =
            |c: Option<&Ca>, sans: &[&str], w: Window| vec![make_leaf(c, sans, w).0.to_vec()];
        let kind = |p: &CertProblem| {
            serde_json::to_value(p).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let cases: Vec<(&str, Vec<Vec<u8>>, &TlsOptions, &str)> = vec![
            (
                "valid",
                chain(Some(&ca), &["127.0.0.1"], FRESH),
                &strict,
                "verified",
            ),
            (
                "expired",
                chain(Some(&ca), &["127.0.0.1"], expired()),
                &strict,
                "error expired",
            ),
            (
                "wrong name",
                chain(Some(&ca), &["198.18.0.9"], FRESH),
                &strict,
                "error name-mismatch",
            ),
            (
                "unknown CA",
                chain(Some(&other), &["127.0.0.1"], FRESH),
                &strict,
                "error unknown-issuer",
            ),
            (
                "insecure, expired",
                chain(Some(&ca), &["127.0.0.1"], expired()),
                &insecure,
                "skipped expired",
            ),
            (
                "insecure, valid",
                chain(Some(&ca), &["127.0.0.1"], FRESH),
                &insecure,
                "skipped none",
            ),
            ("no certificate", vec![], &strict, "dtls error"),
        ];
        for (what, presented, opts, want) in cases {
            let got = match verify_presented(opts, &ip, &presented) {
                Ok((chain, Verification::Verified)) => {
                    assert_eq!(chain.len(), 1, "{what}");
                    "verified".to_owned()
                }
                Ok((_, Verification::Skipped { would_fail })) => {
                    format!(
                        "skipped {}",
                        would_fail.as_ref().map_or("none".to_owned(), kind)
                    )
                }
                Err(TlsError::Certificate { problem, chain }) => {
                    assert_eq!(chain.len(), 1, "{what}: the chain is kept");
                    format!("error {}", kind(&problem))
                }
                Err(TlsError::Dtls { .. }) => "dtls error".to_owned(),
                Err(e) => format!("other {e:?}"),
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[tokio::test]
    async fn tls12_only_server_verifies() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], FRESH);
            let addr = tls_server_versions(cert, key, &[], &[&rustls::version::TLS12]).await;
            let file = ca_file(&ca);
            let info = probe(addr, &opts_with_ca(&file), "127.0.0.1")
                .await
                .expect("TLS 1.2 handshake");
            assert_eq!(info.version, "TLSv1.2");
            assert!(info.cipher.starts_with("TLS_ECDHE_"), "{}", info.cipher);
            assert_eq!(info.verification, Verification::Verified);
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_handshakes_on_one_config_keep_their_own_records() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let file = ca_file(&ca);
            let opts = TlsOptions {
                insecure: true,
                ..opts_with_ca(&file)
            };
            let config = client_config(&opts, &[]).expect("config");
            let expired = Window(-((30 * DAY) as i64), -((3 * DAY + HOUR) as i64));
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], expired);
            let expired_addr = tls_server(cert, key, &[]).await;
            let (cert, key) = make_leaf(Some(&ca), &["other.example"], FRESH);
            let misnamed_addr = tls_server(cert, key, &[]).await;
            let one = |addr| {
                let config = config.clone();
                async move {
                    let tcp = TcpStream::connect(addr).await.expect("connect");
                    let name = server_name(&TlsOptions::default(), "127.0.0.1").expect("name");
                    let deadline = Instant::now() + Duration::from_secs(5);
                    handshake(tcp, config, name, deadline)
                        .await
                        .expect("insecure")
                        .1
                }
            };
            for _ in 0..5 {
                let (a, b) = tokio::join!(one(expired_addr), one(misnamed_addr));
                assert!(
                    matches!(
                        a.verification,
                        Verification::Skipped {
                            would_fail: Some(CertProblem::Expired { .. })
                        }
                    ),
                    "{a:?}"
                );
                assert!(
                    matches!(
                        b.verification,
                        Verification::Skipped {
                            would_fail: Some(CertProblem::NameMismatch { .. })
                        }
                    ),
                    "{b:?}"
                );
            }
        })
        .await;
    }

    #[tokio::test]
    async fn tls_name_overrides_the_dialled_ip() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["localhost"], FRESH);
            let addr = tls_server(cert, key, &[]).await;
            let file = ca_file(&ca);
            let opts = TlsOptions {
                server_name: Some("localhost".to_owned()),
                ..opts_with_ca(&file)
            };
            let info = probe(addr, &opts, "127.0.0.1")
                .await
                .expect("--tls-name localhost");
            assert_eq!(info.verification, Verification::Verified);
            assert_eq!(info.sni.as_deref(), Some("localhost"));
        })
        .await;
    }

    #[tokio::test]
    async fn alpn_is_negotiated_or_refused_by_alert() {
        bounded(async {
            let ca = make_ca("iceprobe test CA");
            let (cert, key) = make_leaf(Some(&ca), &["127.0.0.1"], FRESH);
            let addr = tls_server(cert, key, &[b"stun.turn"]).await;
            let file = ca_file(&ca);
            let opts = opts_with_ca(&file);
            let within = Duration::from_secs(5);
            let info = probe_with(addr, &opts, "127.0.0.1", &[b"stun.turn"], within)
                .await
                .expect("ALPN stun.turn");
            assert_eq!(info.alpn.as_deref(), Some("stun.turn"));

            let err = probe_with(addr, &opts, "127.0.0.1", &[b"stun.nat-discovery"], within)
                .await
                .expect_err("no common ALPN");
            let TlsError::Alert { description } = &err else {
                panic!("alert expected: {err:?}")
            };
            assert_eq!(description, "no_application_protocol");
            assert!(err.cause().contains("ALPN"), "{}", err.cause());
        })
        .await;
    }

    #[tokio::test]
    async fn silent_server_times_out_at_the_deadline() {
        bounded(async {
            let addr = raw_server(b"").await;
            let started = std::time::Instant::now();
            let err = probe_with(
                addr,
                &TlsOptions::default(),
                "127.0.0.1",
                &[],
                Duration::from_millis(300),
            )
            .await
            .expect_err("silent server");
            assert!(matches!(err, TlsError::Timeout), "{err:?}");
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3));
            assert!(err.cause().contains("within the deadline"));
        })
        .await;
    }

    #[tokio::test]
    async fn non_tls_answer_is_a_handshake_error() {
        bounded(async {
            let addr = raw_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            let err = probe(addr, &TlsOptions::default(), "127.0.0.1")
                .await
                .expect_err("garbage");
            let TlsError::Handshake { detail } = &err else {
                panic!("handshake error expected: {err:?}")
            };
            assert!(detail.contains("did not answer with TLS"), "{detail}");
        })
        .await;
    }

    #[test]
    fn ca_file_errors_name_the_path() {
        let missing = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/iceprobe-ca.pem")),
            ..TlsOptions::default()
        };
        let err = client_config(&missing, &[]).expect_err("missing file");
        assert!(matches!(err, TlsError::CaFile { .. }), "{err:?}");
        assert!(err.cause().contains("/nonexistent/iceprobe-ca.pem"));
        assert_eq!(err.phase(), "config");

        let mut garbage = tempfile::NamedTempFile::new().expect("temp");
        std::io::Write::write_all(&mut garbage, b"this is not PEM\n").expect("write");
        let opts = TlsOptions {
            ca_file: Some(garbage.path().to_path_buf()),
            ..TlsOptions::default()
        };
        let err = client_config(&opts, &[]).expect_err("garbage file");
        let TlsError::CaFile { path, why } = &err else {
            panic!("CaFile expected: {err:?}")
        };
        assert_eq!(path, garbage.path());
        assert!(why.contains("no PEM CERTIFICATE"), "{why}");
        assert!(err.cause().contains(&garbage.path().display().to_string()));
    }

    #[test]
    fn client_config_sets_alpn_and_disables_resumption() {
        let cfg = client_config(
            &TlsOptions::default(),
            &[b"stun.turn", b"stun.nat-discovery"],
        )
        .expect("default config");
        assert_eq!(
            cfg.alpn_protocols,
            [b"stun.turn".to_vec(), b"stun.nat-discovery".to_vec()]
        );
        let cfg = client_config(&TlsOptions::default(), &[]).expect("default config");
        assert!(cfg.alpn_protocols.is_empty());
    }

    #[test]
    fn server_name_prefers_tls_name_and_understands_ip_literals() {
        let none = TlsOptions::default();
        let cases: [(&TlsOptions, &str, &str); 4] = [
            (&none, "turn.example.org", "turn.example.org"),
            (&none, "198.18.0.1", "198.18.0.1"),
            (&none, "[2001:db8::1]", "2001:db8::1"),
            (&none, "2001:db8::1", "2001:db8::1"),
        ];
        for (opts, host, want) in cases {
            let name = server_name(opts, host).expect(host);
            assert_eq!(name_text(&name), want, "{host}");
        }
        assert!(matches!(
            server_name(&none, "198.18.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        let named = TlsOptions {
            server_name: Some("turn.example.org".to_owned()),
            ..TlsOptions::default()
        };
        assert!(matches!(
            server_name(&named, "198.18.0.1"),
            Ok(ServerName::DnsName(_))
        ));
        let err = server_name(&none, "bad name!").expect_err("bad name");
        assert!(matches!(&err, TlsError::BadName { name } if name == "bad name!"));
    }

    #[test]
    fn alert_names_and_hints() {
        for (debug, want) in [
            ("ProtocolVersion", "protocol_version"),
            ("HandshakeFailure", "handshake_failure"),
            ("NoApplicationProtocol", "no_application_protocol"),
            ("Unknown(200)", "Unknown(200)"),
        ] {
            assert_eq!(alert_name(debug), want);
        }
        let err = TlsError::Alert {
            description: "protocol_version".to_owned(),
        };
        assert_eq!(
            err.cause(),
            "server sent TLS alert protocol_version: it may not support TLS 1.2+"
        );
    }
}
