//! The optional TLS listener's server configuration (`[http] tls_listen`, `tls_cert_file`,
//! `tls_key_file`): phones, the admin console and pages can reach the gateway over `https://`
//! and `wss://`, while V3.3 hubs, which cannot do TLS, keep plain `ws://` on `listen`.
//!
//! rustls with the *ring* provider, as the uplinks use (aws-lc-rs is hard to cross-compile for
//! the Pi); HTTP/1.1 only, as the plain listener.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::uplink::tls::TlsError;

/// The acceptor for `cert_file` (PEM chain, leaf first) and `key_file` (PEM private key).
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| pem_error(cert_file, "certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert_file, "certificate", e))?;
    if chain.is_empty() {
        return Err(pem_error(cert_file, "certificate", "none found"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| pem_error(key_file, "private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_error(path: &Path, what: &'static str, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        what,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_certificate_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = acceptor(&cert, &key).err().expect("no such file");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let e = acceptor(&cert, &key).err().expect("no PEM in it");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        assert!(e.to_string().contains("none found"), "{e}");
    }
}
