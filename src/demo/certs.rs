//! The demo's throwaway PKI: a CA made fresh each run and one leaf it signs for the TLS listener.
//!
//! A self-signed leaf used directly is rejected by rustls/webpki, so the client is given the CA
//! (`--ca`) and verifies the leaf against it like any real `turns:` server.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Subject common name of the demo CA.
const CA_NAME: &str = "iceprobe demo CA";

/// A TLS server configuration and the PEM of the CA that signed its certificate.
#[derive(Debug)]
pub(crate) struct DemoTls {
    /// rustls server configuration on the ring provider, serving the demo leaf.
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// PEM of the CA certificate, for clients to trust.
    pub(crate) ca_pem: String,
}

fn other(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("demo certificate: {err}"))
}

/// Make a CA and a leaf for `ip` and `localhost`, and a rustls `ServerConfig` serving the leaf.
///
/// The ring provider is passed explicitly so this works whether or not a process-wide default
/// provider was installed.
pub(crate) fn demo_tls(ip: IpAddr) -> std::io::Result<DemoTls> {
    let ca_key = KeyPair::generate().map_err(other)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, CA_NAME);
    ca_params.distinguished_name = ca_dn;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(other)?;
    let mut leaf_params =
        CertificateParams::new(vec![ip.to_string(), "localhost".to_owned()]).map_err(other)?;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut leaf_dn = DistinguishedName::new();
    leaf_dn.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = leaf_dn;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(other)?;

    let chain = vec![
        CertificateDer::from(leaf_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other)?;
    Ok(DemoTls {
        config: Arc::new(config),
        ca_pem: ca_cert.pem(),
    })
}
