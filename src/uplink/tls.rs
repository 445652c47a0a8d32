//! TLS client configuration for both sinks: rustls with the *ring* provider (aws-lc-rs is hard
//! to cross-compile for the Pi), trust from a CA file or the system store, optional client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// A TLS setting that cannot be used; the daemon refuses to start and names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}: {reason}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no trusted CA: give ca_file (the system store is empty)")]
    NoRoots,
}

/// Where the client's trust and identity come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    /// PEM CA certificates to trust; `None`: the system store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key, for brokers that authenticate gateways by
    /// certificate.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_err(path: &Path, what: &'static str, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        what,
        reason: reason.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "certificate", "none found"));
    }
    Ok(certs)
}

fn roots(files: &TlsFiles) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match &files.ca_file {
        Some(path) => {
            for cert in certificates(path)? {
                roots
                    .add(cert)
                    .map_err(|e| pem_err(path, "CA certificate", e))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    Ok(roots)
}

/// Builds the client configuration.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(files)?);
    let config = match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key_bytes = read(key)?;
            let key = PrivateKeyDer::from_pem_slice(&key_bytes)
                .map_err(|e| pem_err(key, "private key", e))?;
            builder.with_client_auth_cert(chain, key)?
        }
        (Some(path), None) | (None, Some(path)) => {
            return Err(pem_err(
                path,
                "client identity",
                "client_cert and client_key go together",
            ));
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let err = client_config(&files).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_file_without_pem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let files = TlsFiles {
            ca_file: Some(path),
            ..TlsFiles::default()
        };
        assert!(matches!(client_config(&files), Err(TlsError::Pem { .. })));
    }
}
