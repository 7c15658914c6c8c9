//! Certificates as the handshake sees them: a [`CertInfo`] parsed from each presented DER
//! certificate (x509-parser; subject, issuer, subjectAltNames, validity in RFC 3339, days left)
//! and a verifier rejection ([`rustls::CertificateError`]) mapped into a [`CertProblem`], plus
//! the date helpers both use. The types themselves are the report's (`model::tls`).

use std::net::IpAddr;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::CertificateError;

use crate::model::tls::{CertInfo, CertProblem};

/// Seconds in a day, for the day counts in [`CertInfo`] and [`CertProblem`].
const DAY_SECS: i64 = 86_400;

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

/// The current time in Unix seconds, signed as the day arithmetic wants it.
pub(super) fn unix_now() -> i64 {
    i64::try_from(crate::net::unix_now()).unwrap_or(i64::MAX)
}

/// Whole days in `secs`, rounded towards minus infinity.
fn whole_days(secs: i64) -> i64 {
    secs.div_euclid(DAY_SECS)
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
