//! Test certificates with rcgen: one CA, and leaves that are valid or broken in one way each.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// How a leaf certificate is (in)valid, as seen by a client that trusts [`TestPki::ca_pem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// Signed by the CA, valid now, SANs as requested.
    Valid,
    /// Signed by the CA, SANs as requested, validity ended in 2001.
    Expired,
    /// Signed by the CA, SANs as requested, validity starts in 2099.
    NotYetValid,
    /// Signed by the CA, valid now, but only for `wrong-name.invalid` (the requested SANs are
    /// ignored).
    WrongName,
    /// Valid now with the requested SANs, but signed by a different CA that the client does not
    /// trust.
    UnknownCa,
}

/// Paths of one leaf: `cert` / `key` for coturn's `--cert` / `--pkey`, `ca` for the client's
/// trust anchor (always the trusted CA, also for [`LeafKind::UnknownCa`]).
#[derive(Clone, Debug)]
pub struct CertPaths {
    /// The trusted CA certificate (PEM).
    pub ca: PathBuf,
    /// The leaf certificate (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8 PEM, ECDSA P-256).
    pub key: PathBuf,
}

/// A CA plus a temp dir of leaves signed by it; the dir is removed on drop, so keep the
/// `TestPki` alive while coturn uses the files.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: PathBuf,
}

impl TestPki {
    /// Creates the CA and writes `ca.pem`.
    pub fn new() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("iceprobe-pki-")
            .tempdir()
            .expect("temp dir");
        let ca = new_ca("iceprobe test CA");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).expect("write ca.pem");
        TestPki { dir, ca, ca_pem }
    }

    /// The trusted CA certificate (PEM).
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// The temp dir holding all files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `<name>.pem` and `<name>.key` for a leaf of `kind` with subjectAltNames `sans`
    /// (IP literals become IP SANs, anything else DNS SANs).
    pub fn leaf(&self, name: &str, sans: &[&str], kind: LeafKind) -> CertPaths {
        let sans: Vec<String> = match kind {
            LeafKind::WrongName => vec!["wrong-name.invalid".to_owned()],
            _ => sans.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut params = CertificateParams::new(sans).expect("leaf SANs");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("iceprobe test leaf {name}"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        match kind {
            LeafKind::Expired => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            LeafKind::NotYetValid => {
                params.not_before = date_time_ymd(2099, 1, 1);
                params.not_after = date_time_ymd(2100, 1, 1);
            }
            _ => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2090, 1, 1);
            }
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = if kind == LeafKind::UnknownCa {
            let stranger = new_ca("unknown test CA");
            params.signed_by(&key, &stranger)
        } else {
            params.signed_by(&key, &self.ca)
        }
        .expect("sign leaf");
        let paths = CertPaths {
            ca: self.ca_pem.clone(),
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        std::fs::write(&paths.cert, cert.pem()).expect("write leaf cert");
        std::fs::write(&paths.key, key.serialize_pem()).expect("write leaf key");
        paths
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

fn new_ca(common_name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2090, 1, 1);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}
