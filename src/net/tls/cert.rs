//! Certificates as a report sees them: [`CertInfo`] parsed from each presented DER certificate
//! (x509-parser; subject, issuer, subjectAltNames, validity in RFC 3339, days left) and
//! [`CertProblem`], a verifier rejection ([`rustls::CertificateError`]) mapped into a structured
//! reason with plain-language wording, plus the date helpers both use.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::CertificateError;
use serde::Serialize;

/// Seconds in a day, for the day counts in [`CertInfo`] and [`CertProblem`].
const DAY_SECS: i64 = 86_400;

/// One certificate of the presented chain.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
    /// 2026-11-19T00:00:00Z)`; [`TlsError::cause`](super::TlsError::cause) adds advice where
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
    pub(super) fn advice(&self) -> Option<&'static str> {
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

/// Turns a verifier rejection into a [`CertProblem`], using the parsed chain for details
/// rustls does not carry (the presented names, self-signedness).
pub(super) fn problem_from_error(
    err: &rustls::Error,
    chain: &[CertInfo],
    expected: &str,
) -> CertProblem {
    let rustls::Error::InvalidCertificate(ce) = err else {
        return CertProblem::Other {
            detail: err.to_string(),
        };
    };
    let leaf_sans = || chain.first().map(|c| c.sans.clone());
    match ce {
        CertificateError::Expired => CertProblem::Expired {
            days_ago: None,
            not_after: None,
        },
        CertificateError::ExpiredContext { time, not_after } => CertProblem::Expired {
            days_ago: Some(whole_days(secs(time) - secs(not_after))),
            not_after: Some(rfc3339(secs(not_after))),
        },
        CertificateError::NotValidYet => CertProblem::NotYetValid {
            days_until: None,
            not_before: None,
        },
        CertificateError::NotValidYetContext { time, not_before } => CertProblem::NotYetValid {
            days_until: Some(whole_days(secs(not_before) - secs(time))),
            not_before: Some(rfc3339(secs(not_before))),
        },
        CertificateError::UnknownIssuer => match chain {
            [leaf] if leaf.subject == leaf.issuer => CertProblem::SelfSigned,
            _ => CertProblem::UnknownIssuer,
        },
        CertificateError::NotValidForName => CertProblem::NameMismatch {
            expected: expected.to_owned(),
            presented: leaf_sans().unwrap_or_default(),
        },
        CertificateError::NotValidForNameContext {
            expected: name,
            presented,
        } => CertProblem::NameMismatch {
            expected: name_text(name),
            presented: leaf_sans().unwrap_or_else(|| presented.clone()),
        },
        CertificateError::BadSignature => CertProblem::BadSignature,
        CertificateError::Revoked => CertProblem::Revoked,
        other => CertProblem::Other {
            detail: friendly_detail(&other.to_string()),
        },
    }
}

/// webpki reasons that only reach us as debug text, in words an operator can act on.
fn friendly_detail(detail: &str) -> String {
    const KNOWN: &[(&str, &str)] = &[
        (
            "CaUsedAsEndEntity",
            "the server presents a CA certificate (basicConstraints CA:TRUE) as its own: issue a leaf certificate signed by a CA",
        ),
        (
            "EndEntityUsedAsCa",
            "a leaf certificate was used to sign another certificate in the chain",
        ),
        (
            "RequiredEkuNotFound",
            "the certificate lacks the serverAuth extended key usage",
        ),
        (
            "UnsupportedSignatureAlgorithm",
            "the certificate is signed with an algorithm rustls does not accept",
        ),
    ];
    KNOWN
        .iter()
        .find(|(needle, _)| detail.contains(needle))
        .map(|(_, text)| (*text).to_string())
        .unwrap_or_else(|| detail.to_string())
}

/// Parses each DER certificate; ones x509-parser cannot read are left out.
pub(super) fn chain_info(certs: &[CertificateDer<'_>], now: i64) -> Vec<CertInfo> {
    certs.iter().filter_map(|c| cert_info(c, now)).collect()
}

/// Parses one certificate into a [`CertInfo`] relative to `now` (Unix seconds).
fn cert_info(der: &[u8], now: i64) -> Option<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: whole_days(not_after - now),
    })
}

/// An IP address from a subjectAltName iPAddress (4 or 16 octets, RFC 5280 §4.2.1.6).
fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A server name as plain text (`turn.example.org`, `127.0.0.1`).
pub(super) fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// Unix seconds of a rustls time.
fn secs(t: &UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whole days in `secs`, rounded towards minus infinity.
fn whole_days(secs: i64) -> i64 {
    secs.div_euclid(DAY_SECS)
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

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-19T00:00:00Z`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(DAY_SECS);
    let rem = secs.rem_euclid(DAY_SECS);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", days_from_civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::TlsError;
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_050_123, "2026-11-19T01:02:03Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(rfc3339(secs), want, "{secs}");
        }
    }

    #[test]
    fn day_counts_round_down() {
        for (secs, want) in [(0, 0), (86_399, 0), (86_400, 1), (-1, -1), (-86_401, -2)] {
            assert_eq!(whole_days(secs), want, "{secs}");
        }
        assert_eq!(days_phrase(0, "ago"), "less than a day ago");
        assert_eq!(days_phrase(1, "ago"), "1 day ago");
        assert_eq!(days_phrase(3, "ago"), "3 days ago");
    }

    #[test]
    fn problems_from_rustls_errors() {
        let err = |ce| rustls::Error::InvalidCertificate(ce);
        let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        assert!(friendly_detail("Other(OtherError(CaUsedAsEndEntity))").contains("CA certificate"));
        assert_eq!(friendly_detail("something new"), "something new");
        let expired = CertificateError::ExpiredContext {
            time: t(1_795_050_123 + 3 * 86_400 + 10),
            not_after: t(1_795_050_123),
        };
        assert_eq!(
            problem_from_error(&err(expired), &[], ""),
            CertProblem::Expired {
                days_ago: Some(3),
                not_after: Some("2026-11-19T01:02:03Z".to_owned()),
            }
        );
        assert_eq!(
            problem_from_error(&err(CertificateError::NotValidForName), &[], "turn.test"),
            CertProblem::NameMismatch {
                expected: "turn.test".to_owned(),
                presented: vec![]
            }
        );
        assert_eq!(
            problem_from_error(&err(CertificateError::Revoked), &[], ""),
            CertProblem::Revoked
        );
        assert_eq!(
            problem_from_error(&err(CertificateError::BadSignature), &[], ""),
            CertProblem::BadSignature
        );
        assert!(matches!(
            problem_from_error(&err(CertificateError::BadEncoding), &[], ""),
            CertProblem::Other { .. }
        ));
        let expired = TlsError::Certificate {
            problem: CertProblem::Expired {
                days_ago: Some(3),
                not_after: Some("2026-11-19T00:00:00Z".to_owned()),
            },
            chain: vec![],
        };
        assert!(expired
            .cause()
            .starts_with("certificate expired 3 days ago (not after 2026-11-19T00:00:00Z)"));
    }
}
