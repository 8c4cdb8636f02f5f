//! TLS for `https` callback URLs (docs/protocol.md 3.6.5): the connection to the checked
//! address is wrapped in TLS 1.2 or 1.3, the endpoint's certificate is verified against the
//! Mozilla root set shipped with the build (so the result does not depend on the host's
//! certificate store) plus any roots the configuration adds, and the name checked is the URL's
//! host, which is also the SNI sent. No client certificate is offered.
//!
//! The OAuth client (`crate::client::oauth`) uses the same TLS client for `https`
//! authorization servers.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The TLS client of webhook delivery cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookTlsError {
    /// An extra root certificate of the configuration is unusable.
    #[error(
        "webhook root certificate {index} is not a usable DER-encoded X.509 CA certificate: \
         {reason}"
    )]
    RootCertificate {
        /// Its position in [`super::WebhookConfig::extra_root_certificates`].
        index: usize,
        /// What the certificate parser said.
        reason: String,
    },
    /// A PEM text has no certificate, or a malformed one.
    #[error("webhook root certificates: {0}")]
    Pem(String),
    /// The cryptography provider refused the protocol versions (a build problem).
    #[error("webhook TLS setup: {0}")]
    Setup(String),
}

/// The certificates of a PEM text (`-----BEGIN CERTIFICATE-----` sections), DER-encoded as
/// [`super::WebhookConfig::extra_root_certificates`] takes them; other sections are skipped.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, WebhookTlsError> {
    use rustls::pki_types::pem::PemObject;
    let certificates = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebhookTlsError::Pem(e.to_string()))?;
    if certificates.is_empty() {
        return Err(WebhookTlsError::Pem("no CERTIFICATE section".into()));
    }
    Ok(certificates)
}

/// The TLS client of webhook delivery, built once per server.
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// A client trusting the shipped Mozilla roots and `extra_roots` (DER).
    pub(crate) fn new(extra_roots: &[Vec<u8>]) -> Result<Self, WebhookTlsError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for (index, der) in extra_roots.iter().enumerate() {
            roots.add(CertificateDer::from(der.clone())).map_err(|e| {
                WebhookTlsError::RootCertificate {
                    index,
                    reason: e.to_string(),
                }
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookTlsError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the TLS handshake over `tcp` for `host` (a name or an address literal).
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, tcp).await
    }
}
