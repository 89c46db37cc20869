//! TLS without a proxy (`--tls-cert`, `--tls-key`): rustls with the ring
//! provider, HTTP/2 and HTTP/1.1 by ALPN. The certificate chain and key are
//! read again on SIGHUP: connections already open keep the configuration
//! they began with, new ones get the new one, nothing is dropped. A reload
//! that fails (a missing or malformed file, a key that does not fit the
//! certificate) is logged and the previous configuration stays.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the certificate chain and its private key are (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files and the configuration read from them last.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A server configuration from the two files, checked.
fn load(files: &TlsFiles) -> Result<ServerConfig> {
    let pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", files.cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate (PEM, BEGIN CERTIFICATE)", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .with_context(|| format!("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1)", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| format!("{} does not fit {}", files.key.display(), files.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Tls {
    /// Reads the files; an error says which one and why.
    pub fn new(files: TlsFiles) -> Result<Self> {
        let config = load(&files)?;
        Ok(Self { files, current: RwLock::new(Arc::new(config)) })
    }

    /// Reads the files again; on failure the previous configuration stays.
    pub fn reload(&self) -> Result<()> {
        let config = load(&self.files)?;
        *self.current.write() = Arc::new(config);
        Ok(())
    }

    /// An acceptor with the current configuration, for one connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }
}
