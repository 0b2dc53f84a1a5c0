//! The TLS identity of the SIP listener: an admin's certificate, or one generated at first start.
//!
//! A generated certificate is self-signed and written to the data folder, so clients that pin it
//! (SIPE's trusted-peer cache, a test's CA file) keep trusting the server across restarts. Its SAN
//! list covers every name a Lync client may use to reach this server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use herald_discovery::Topology;
use herald_discovery::certificate::CertificateNames;

use crate::config::Config;

/// Where a generated certificate and key live inside the data folder.
pub(crate) fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The host names a certificate for this server must cover: every name DNS and autodiscover
/// hand to clients (from the topology), the configured extra names, and `localhost`.
pub(crate) fn subject_names(config: &Config, topology: &Topology) -> (String, Vec<String>) {
    // Every pool's names: the generated certificate lands in a data folder that the servers of
    // several pools may share.
    let names = CertificateNames::for_deployment(topology);
    let (subject, mut names) = (names.subject.to_string(), names.dns_names());
    for extra in config
        .sip
        .names
        .iter()
        .map(String::as_str)
        .chain(["localhost"])
    {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_owned());
        }
    }
    (subject, names)
}

/// Builds the rustls server configuration, generating a certificate first where none exists.
///
/// A generated certificate is kept across restarts; delete it from the data folder to have
/// one made for a changed topology.
pub(crate) fn server_config(
    config: &Config,
    topology: &Topology,
) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = match (&config.sip.tls_cert, &config.sip.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k) = generated_paths(&config.data_dir);
            if !c.exists() || !k.exists() {
                generate(&subject_names(config, topology), &c, &k)?;
            }
            (c, k)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("cannot read certificate {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM in {}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read private key {}", key_path.display()))?;
    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("certificate and key do not match")?;
    Ok(Arc::new(server))
}

fn generate(
    (subject, names): &(String, Vec<String>),
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<()> {
    let mut params =
        rcgen::CertificateParams::new(names.clone()).context("certificate subject names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject.as_str());
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    params.subject_alt_names.push(rcgen::SanType::IpAddress(
        std::net::Ipv6Addr::LOCALHOST.into(),
    ));
    let key = rcgen::KeyPair::generate().context("generating a key pair")?;
    let cert = params
        .self_signed(&key)
        .context("self-signing the certificate")?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    tracing::info!(cert = %cert_path.display(), names = ?names, "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
