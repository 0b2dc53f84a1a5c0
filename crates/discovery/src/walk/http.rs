//! A small HTTP/1.1 GET client for the walk: one request per connection, bounded body, HTTPS
//! through rustls (ring).
//!
//! Trust: the system's root certificates, plus those in a `--ca FILE` (PEM). A certificate in
//! that file is also accepted byte for byte as the server's own certificate ("pinned"), which is
//! how an admin points `herald discover` at a server with herald's generated self-signed
//! certificate (a self-signed leaf cannot be a trust anchor for WebPKI path building). Without
//! `--ca` such a server fails the HTTPS step and the walk moves on to HTTP, as a client would.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Fetch, FetchAnswer};
use crate::autodiscover::{Scheme, XML_TYPE};

/// Which certificates HTTPS steps accept.
#[derive(Clone)]
pub struct TlsTrust {
    config: Arc<ClientConfig>,
}

/// Why the `--ca` file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The file cannot be read or holds no PEM certificate.
    #[error("cannot read certificates from {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTrust")
    }
}

impl TlsTrust {
    /// System roots plus, when given, the certificates of `ca` (PEM), which are also pinned.
    pub fn new(ca: Option<&Path>) -> Result<Self, CaError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let mut pinned = Vec::new();
        if let Some(path) = ca {
            let read_err = |reason: String| CaError::Read {
                path: path.display().to_string(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| read_err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| read_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(read_err("no CERTIFICATE block".to_owned()));
            }
            for cert in certs {
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| CaError::Tls(e.to_string()))?,
            )
        };
        let verifier = Arc::new(Verifier {
            webpki,
            pinned,
            provider: provider.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// Performs `fetch` within `timeout`; every failure becomes text for the report.
pub(crate) async fn get(
    fetch: &Fetch,
    trust: &TlsTrust,
    timeout: Duration,
) -> Result<FetchAnswer, String> {
    match tokio::time::timeout(timeout, get_inner(fetch, trust)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f32())),
    }
}

async fn get_inner(fetch: &Fetch, trust: &TlsTrust) -> Result<FetchAnswer, String> {
    let stream = connect(&fetch.addresses, fetch.port).await?;
    match fetch.scheme {
        Scheme::Http => request(TokioIo::new(stream), fetch).await,
        Scheme::Https => {
            let name = ServerName::try_from(fetch.host.clone())
                .map_err(|e| format!("{}: {e}", fetch.host))?;
            let tls = TlsConnector::from(trust.config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            request(TokioIo::new(tls), fetch).await
        }
    }
}

async fn connect(addresses: &[IpAddr], port: u16) -> Result<TcpStream, String> {
    let mut last = "no address to connect to".to_owned();
    for ip in addresses {
        let addr = SocketAddr::new(*ip, port);
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

async fn request<IO>(io: IO, fetch: &Fetch) -> Result<FetchAnswer, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(connection);
    let default_port = match fetch.scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let host = if fetch.port == default_port {
        fetch.host.clone()
    } else {
        format!("{}:{}", fetch.host, fetch.port)
    };
    let req = http::Request::get(fetch.path_and_query.as_str())
        .header(http::header::HOST, host)
        .header(http::header::ACCEPT, XML_TYPE)
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        Ok(FetchAnswer {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
    .await;
    driver.abort();
    result
}

/// WebPKI verification, except that a certificate from `--ca` presented as the server's own is
/// accepted as pinned. Handshake signatures are always checked, so the server must still hold
/// the private key.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Autodiscover documents are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;
const USER_AGENT: &str = concat!("herald-discover/", env!("CARGO_PKG_VERSION"));
