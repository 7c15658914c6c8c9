//! TLS as the report shows it: what a handshake established ([`TlsInfo`]), each certificate
//! of the presented chain ([`CertInfo`]) and why a chain does not verify ([`CertProblem`]), in
//! words an operator can act on. `net::tls` fills these in; nothing here touches rustls.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What the handshake established, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsInfo {
    /// Negotiated protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// Negotiated cipher suite by its IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// ALPN protocol the server selected (RFC 7301), e.g. `stun.turn` (RFC 7443), if any.
    pub alpn: Option<String>,
    /// Server name sent in the SNI extension (RFC 6066 §3); `None` for IP addresses, which are
    /// never sent as SNI.
    pub sni: Option<String>,
    /// Time from the ClientHello to a finished handshake, in milliseconds.
    pub handshake_ms: f64,
    /// The presented chain, end-entity first, as far as it could be parsed.
    pub chain: Vec<CertInfo>,
    /// Whether the chain was verified, or what verification would have said.
    pub verification: Verification,
}

/// The verification verdict of a finished handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Verification {
    /// The chain verified against the trusted roots for the expected name.
    Verified,
    /// `--insecure`: verification was not enforced.
    Skipped {
        /// What the verifier would have rejected, or `None` if the chain would have verified.
        would_fail: Option<CertProblem>,
    },
}

/// One certificate of the presented chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertInfo {
    /// Subject distinguished name, RFC 4514 style (`CN=turn.example.org, O=Example`).
    pub subject: String,
    /// Issuer distinguished name, same style.
    pub issuer: String,
    /// subjectAltName DNS names and IP addresses, as plain text (`turn.example.org`, `192.0.2.1`).
    pub sans: Vec<String>,
    /// Start of validity (notBefore), RFC 3339 UTC.
    pub not_before: String,
    /// End of validity (notAfter), RFC 3339 UTC.
    pub not_after: String,
    /// Whole days from now until notAfter, rounded down; negative once expired.
    pub days_left: i64,
}

/// A structured reason why a certificate does not verify (from [`rustls::CertificateError`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CertProblem {
    /// A certificate's notAfter has passed.
    Expired {
        /// Whole days since notAfter, when the verifier said when it checked.
        days_ago: Option<i64>,
        /// The notAfter time, RFC 3339 UTC, when known.
        not_after: Option<String>,
    },
    /// A certificate's notBefore is still in the future (often a wrong clock on either side).
    NotYetValid {
        /// Whole days until notBefore, when known.
        days_until: Option<i64>,
        /// The notBefore time, RFC 3339 UTC, when known.
        not_before: Option<String>,
    },
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// The end-entity certificate is self-signed and not itself trusted.
    SelfSigned,
    /// The end-entity certificate is not valid for the name we verified.
    NameMismatch {
        /// The name we verified (`--tls-name` or the URL host).
        expected: String,
        /// The DNS names and IP addresses the certificate is valid for.
        presented: Vec<String>,
    },
    /// A signature in the chain does not verify against its issuer's key.
    BadSignature,
    /// The certificate has been revoked.
    Revoked,
    /// Any other rejection, in rustls' words.
    Other {
        /// The verifier's message.
        detail: String,
    },
}

impl CertProblem {
    /// One plain-language phrase for users, e.g. `certificate expired 3 days ago (not after
    /// 2026-11-19T00:00:00Z)`; `net::tls::TlsError::cause` adds advice where
    /// there is one.
    pub fn describe(&self) -> String {
        match self {
            Self::Expired {
                days_ago,
                not_after,
            } => {
                let mut s = match days_ago {
                    Some(n) => format!("certificate expired {}", days_phrase(*n, "ago")),
                    None => "certificate expired".to_owned(),
                };
                if let Some(t) = not_after {
                    let _ = write!(s, " (not after {t})");
                }
                s
            }
            Self::NotYetValid {
                days_until,
                not_before,
            } => {
                let mut s = match days_until {
                    Some(n) => format!("certificate is not valid yet, {}", days_until_phrase(*n)),
                    None => "certificate is not valid yet".to_owned(),
                };
                if let Some(t) = not_before {
                    let _ = write!(s, " (not before {t})");
                }
                s
            }
            Self::UnknownIssuer => "certificate issued by an unknown CA".to_owned(),
            Self::SelfSigned => "certificate is self-signed and not trusted".to_owned(),
            Self::NameMismatch {
                expected,
                presented,
            } if presented.is_empty() => {
                format!("certificate names no DNS name or IP address, so it is not valid for {expected}")
            }
            Self::NameMismatch {
                expected,
                presented,
            } => format!(
                "certificate is for {}, not {expected}",
                presented.join(", ")
            ),
            Self::BadSignature => {
                "certificate signature does not verify against its issuer".to_owned()
            }
            Self::Revoked => "certificate has been revoked".to_owned(),
            Self::Other { detail } => format!("certificate rejected: {detail}"),
        }
    }

    /// What a user can do about it, if anything flag-shaped helps.
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            Self::Expired { .. } => Some("renew it, or pass --insecure to probe anyway"),
            Self::NotYetValid { .. } => Some("check the clocks of this machine and the server"),
            Self::UnknownIssuer => Some("pass --ca FILE if it is a private CA"),
            Self::SelfSigned => Some("pass --ca FILE with that certificate to trust it"),
            Self::NameMismatch { .. } => Some("pass --tls-name or fix the certificate's SANs"),
            Self::BadSignature | Self::Revoked | Self::Other { .. } => None,
        }
    }
}

/// "3 days ago", "1 day ago", "less than a day ago".
fn days_phrase(n: i64, suffix: &str) -> String {
    match n {
        i64::MIN..=0 => format!("less than a day {suffix}"),
        1 => format!("1 day {suffix}"),
        n => format!("{n} days {suffix}"),
    }
}

/// "valid in 3 days", "valid in less than a day".
fn days_until_phrase(n: i64) -> String {
    match n {
        i64::MIN..=0 => "valid in less than a day".to_owned(),
        1 => "valid in 1 day".to_owned(),
        n => format!("valid in {n} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_phrases() {
        assert_eq!(days_phrase(0, "ago"), "less than a day ago");
        assert_eq!(days_phrase(1, "ago"), "1 day ago");
        assert_eq!(days_phrase(3, "ago"), "3 days ago");
        assert_eq!(days_until_phrase(-2), "valid in less than a day");
        assert_eq!(days_until_phrase(1), "valid in 1 day");
        assert_eq!(days_until_phrase(5), "valid in 5 days");
    }
}
