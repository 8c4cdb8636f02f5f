//! The HTTP endpoint as an OAuth 2.1 resource server (docs/auth.md): access tokens issued by
//! one authorization server, for this server's resource, are verified on every request, and
//! the identity they prove reaches every handler ([`Context::identity`](super::Context::identity))
//! in both eras.
//!
//! - **Verification** ([`ResourceServer::verify`]): a chain of [`TokenVerifier`]s. JWT access
//!   tokens are checked against the authorization server's keys (found through its RFC 8414 or
//!   OpenID Connect metadata, cached, fetched again for an unknown key id at most once per
//!   `jwks_min_refresh`; RS256/384/512, PS256/384/512, ES256, ES384); other tokens go to RFC
//!   7662 introspection when it is configured. Either way `iss` must be the issuer exactly,
//!   `aud` must name an accepted audience (by default the resource URL, RFC 8707), `exp` and
//!   `nbf` must cover now (with a small leeway), and the required scopes must be granted.
//! - **Failures** ([`TokenError`]): `401` with `error="invalid_token"` for a token that proves
//!   nothing, `403` with `error="insufficient_scope"` for missing scopes, `503` when the
//!   authorization server cannot be asked.
//! - **Discovery by clients**: the RFC 9728 metadata ([`ResourceServer::metadata`]) is served
//!   at `/.well-known/oauth-protected-resource` and at the same path followed by the
//!   resource's, and every `401` names it in `WWW-Authenticate`.
//!
//! ```no_run
//! use mcpbus::server::Server;
//! use mcpbus::server::oauth::{ResourceServer, ResourceServerConfig};
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config =
//!     ResourceServerConfig::new("https://mcp.example.com/mcp", "https://auth.example.com");
//! config.required_scopes = vec!["mcp".into()];
//! let server = Server::builder("bus", "1.0.0")
//!     .resource_server(ResourceServer::new(config)?)
//!     .build()?;
//! # Ok(()) }
//! ```

mod challenge;
mod claims;
mod config;
mod discovery;
mod error;
mod fetch;
mod introspection;
mod jwks;
mod jws;
mod verifier;

pub use config::{IntrospectionConfig, OAuthConfigError, ResourceServerConfig};
pub use error::TokenError;
pub use verifier::{ResourceServer, TokenVerifier, require_scopes};

use super::{Server, ServerBuilder};

impl ServerBuilder {
    /// Makes the HTTP endpoint an OAuth 2.1 resource server (docs/auth.md): every request
    /// needs an access token `resource_server` accepts (or one of the
    /// [`bearer_tokens`](Self::bearer_tokens), checked first); without one it gets `401` and a
    /// challenge naming the metadata, which [`StreamableHttpService::into_router`](crate::transport::http::StreamableHttpService::into_router)
    /// serves. The identity proven is the caller's in both eras: a handshake-era session
    /// belongs to the subject that initialized it.
    pub fn resource_server(mut self, resource_server: ResourceServer) -> Self {
        self.resource_server = Some(resource_server);
        self
    }
}

impl Server {
    /// The OAuth resource server of the HTTP endpoint, if there is one.
    pub fn resource_server(&self) -> Option<&ResourceServer> {
        self.inner.resource_server.as_ref()
    }
}
