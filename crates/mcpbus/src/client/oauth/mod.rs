//! OAuth 2.1 for the HTTP client transport: the client side of MCP authorization
//! (specification revisions 2025-11-25 and 2026-07-28, "Authorization").
//!
//! Put an [`OAuthConfig`] in [`HttpClientConfig::oauth`](crate::transport::HttpClientConfig::oauth)
//! and the transport answers the server's challenges itself:
//!
//! - **`401` with a `Bearer` challenge** (or no `WWW-Authenticate` at all): the transport finds
//!   the protected resource metadata (RFC 9728: the challenge's `resource_metadata`, else the
//!   path-based well-known URI, then the root one), checks that its `resource` covers the
//!   endpoint, fetches the first authorization server's metadata (RFC 8414 and OpenID Connect
//!   discovery, path insertion first, the document's `issuer` compared exactly), gets a client
//!   id (pre-registered, a client ID metadata document URL when the server accepts them, or
//!   dynamic registration per RFC 7591), obtains tokens with the configured [`Grant`], and sends
//!   the request again once. A refresh token of the same authorization server is tried before a
//!   new authorization.
//! - **`403` with `error="insufficient_scope"`**: step-up authorization with the union of the
//!   scopes held and the scopes challenged, at most [`OAuthConfig::max_step_ups`] times per
//!   request; a challenge for scopes the token already has ends the request with an error.
//!
//! The authorization code grant uses PKCE (`S256`, refused when the server does not advertise
//! it), a random `state`, the RFC 8707 `resource` parameter in the authorization and token
//! requests, and the RFC 9207 `iss` check; the [`RedirectHandler`] takes the user to the
//! authorization URL and returns the callback. Scopes follow the specification's strategy: the
//! challenge's `scope`, else the resource's `scopes_supported`, else none (plus
//! [`OAuthConfig::scopes`], and `offline_access` when the authorization server lists it). The
//! other grants are client credentials, JWT bearer and enterprise-managed authorization (see
//! [`Grant`]). Tokens are bound to a key with DPoP (RFC 9449) when both servers take it (see
//! [`OAuthConfig::dpop`]).
//!
//! Registrations and tokens are kept in a [`TokenStore`] per server, bound to the issuer of the
//! authorization server: when the server's metadata names another one, they are dropped and the
//! client registers again. Requests to authorization servers may use `https` (rustls, with the
//! Mozilla roots plus [`OAuthConfig::extra_root_certificates`]).
//!
//! ```no_run
//! # async fn run() -> mcpbus::Result<()> {
//! use mcpbus::client::Client;
//! use mcpbus::client::oauth::{AuthorizationRequest, OAuthConfig};
//! use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
//!
//! let login = |request: AuthorizationRequest| async move {
//!     eprintln!("open {} and paste the address you land on", request.url);
//!     let mut line = String::new();
//!     std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
//!     Ok(line)
//! };
//! let config = HttpClientConfig {
//!     oauth: Some(OAuthConfig::authorization_code("http://127.0.0.1:8976/callback", login)),
//!     ..HttpClientConfig::default()
//! };
//! let transport = HttpClientTransport::new("http://127.0.0.1:8080/mcp", config)?;
//! let client = Client::builder("my-agent", "0.1.0").connect(transport).await?;
//! # Ok(()) }
//! ```

mod agent;
mod authorize;
pub(crate) mod authorizer;
mod challenge;
mod discovery;
mod dpop;
mod error;
mod flow;
mod jwt;
mod pkce;
mod registration;
mod store;
mod token;
mod urls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use authorize::{AuthorizationRequest, RedirectHandler};
pub use challenge::{
    BearerChallenge, Challenge, ChallengeError, challenges_in, parse_www_authenticate, split_scope,
};
pub use discovery::{AuthorizationServerMetadata, ProtectedResourceMetadata};
pub use error::OAuthError;
pub use jwt::SigningKey;
pub use pkce::{PkceError, s256_challenge, validate_verifier};
pub use registration::{PreRegisteredClient, TokenEndpointAuthMethod};
pub use store::{
    FileTokenStore, MemoryTokenStore, RegisteredClient, StoredCredentials, TokenStore, Tokens,
};
pub use urls::{
    authorization_server_metadata_urls, protected_resource_metadata_urls, resource_covers,
};

/// The grant type URN of the JWT bearer grant (RFC 7523 section 2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Produces the assertion of a [`Grant::JwtBearer`] (e.g. reads a workload identity token that
/// the platform rotates). Closures `Fn() -> impl Future<Output = Result<String, String>>`
/// implement it.
pub trait AssertionSource: Send + Sync + 'static {
    /// A current assertion, or why there is none.
    fn assertion(&self) -> BoxFuture<'static, Result<String, String>>;
}

impl<F, Fut> AssertionSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    fn assertion(&self) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(self())
    }
}

/// How the client obtains tokens.
#[derive(Clone)]
pub enum Grant {
    /// The authorization code grant with PKCE, acting for a user: the handler takes the user
    /// to the authorization server and returns the callback.
    AuthorizationCode(Arc<dyn RedirectHandler>),
    /// The client credentials grant, acting for itself (needs a client that can authenticate:
    /// a secret or a signing key, usually pre-registered).
    ClientCredentials,
    /// The JWT bearer grant (RFC 7523): a JWT from elsewhere (workload identity federation)
    /// is exchanged for tokens. A refused assertion is reported, never retried.
    JwtBearer(Arc<dyn AssertionSource>),
    /// Enterprise-managed authorization (SEP-990): the user's ID token is exchanged at the
    /// enterprise identity provider for an identity assertion grant (ID-JAG, RFC 8693 token
    /// exchange), which the MCP authorization server takes as a JWT bearer grant.
    EnterpriseManaged(Arc<EnterpriseIdp>),
}

/// The identity provider of [`Grant::EnterpriseManaged`].
#[derive(Clone)]
pub struct EnterpriseIdp {
    /// The identity provider's token endpoint (where the ID token is exchanged).
    pub token_endpoint: String,
    /// The client id at the identity provider.
    pub client_id: String,
    /// The client secret at the identity provider, if it has one (sent in the body).
    pub client_secret: Option<String>,
    /// The user's ID token from the identity provider.
    pub id_token: Arc<dyn AssertionSource>,
}

impl std::fmt::Debug for EnterpriseIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterpriseIdp")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.grant_type())
    }
}

impl Grant {
    /// The `grant_type` of its token requests.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
            Grant::JwtBearer(_) | Grant::EnterpriseManaged(_) => JWT_BEARER_GRANT_TYPE,
        }
    }
}

/// How the HTTP client transport authorizes (see the [module documentation](self)).
#[derive(Clone)]
pub struct OAuthConfig {
    /// How tokens are obtained.
    pub grant: Grant,
    /// The client's name in dynamic registrations (default `mcpbus`).
    pub client_name: String,
    /// The redirect URI of the authorization code grant (registered, and sent in the
    /// authorization and token requests).
    pub redirect_uri: String,
    /// The `application_type` of dynamic registrations: `native` (default; command line and
    /// desktop clients) or `web`.
    pub application_type: String,
    /// Pre-registered client credentials, used before any other way to get a client id.
    pub client: Option<PreRegisteredClient>,
    /// The HTTPS URL of the client's metadata document, used as client id by authorization
    /// servers that accept client ID metadata documents.
    pub client_metadata_url: Option<String>,
    /// Scopes always asked for, besides the ones the server asks for.
    pub scopes: Vec<String>,
    /// Ask for `offline_access` (a refresh token) when the authorization server lists it and
    /// other scopes are asked for (default `true`).
    pub offline_access: bool,
    /// Where registrations and tokens are kept (default: in memory).
    pub store: Arc<dyn TokenStore>,
    /// The key of this server in the store (default: the endpoint URL).
    pub store_key: Option<String>,
    /// How many step-up authorizations one request may trigger (default 2).
    pub max_step_ups: u32,
    /// The bound of each request to a metadata, registration or token endpoint (default 30 s).
    pub http_timeout: Duration,
    /// How long the redirect handler may take (default 10 min).
    pub authorization_timeout: Duration,
    /// DER-encoded CA certificates trusted besides the Mozilla roots, for authorization
    /// servers behind a private CA.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Use DPoP-bound tokens (RFC 9449, ES256) when the authorization server offers them and
    /// the MCP server takes them (default `true`).
    pub dpop: bool,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("grant", &self.grant)
            .field("client_name", &self.client_name)
            .field("redirect_uri", &self.redirect_uri)
            .field("client", &self.client)
            .field("client_metadata_url", &self.client_metadata_url)
            .field("scopes", &self.scopes)
            .field("store_key", &self.store_key)
            .field("max_step_ups", &self.max_step_ups)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// A configuration for `grant` with the defaults above (redirect URI
    /// `http://127.0.0.1/callback`, which an authorization code grant should replace).
    pub fn new(grant: Grant) -> Self {
        OAuthConfig {
            grant,
            client_name: "mcpbus".into(),
            redirect_uri: "http://127.0.0.1/callback".into(),
            application_type: "native".into(),
            client: None,
            client_metadata_url: None,
            scopes: Vec::new(),
            offline_access: true,
            store: Arc::new(MemoryTokenStore::new()),
            store_key: None,
            max_step_ups: 2,
            http_timeout: Duration::from_secs(30),
            authorization_timeout: Duration::from_secs(600),
            extra_root_certificates: Vec::new(),
            dpop: true,
        }
    }

    /// The authorization code grant, redirecting to `redirect_uri`, with `handler` taking the
    /// user through authorization.
    pub fn authorization_code(
        redirect_uri: impl Into<String>,
        handler: impl RedirectHandler,
    ) -> Self {
        let mut config = OAuthConfig::new(Grant::AuthorizationCode(Arc::new(handler)));
        config.redirect_uri = redirect_uri.into();
        config
    }

    /// The client credentials grant as `client`.
    pub fn client_credentials(client: PreRegisteredClient) -> Self {
        let mut config = OAuthConfig::new(Grant::ClientCredentials);
        config.client = Some(client);
        config
    }

    /// The JWT bearer grant as the client `client_id`, with assertions from `source`.
    pub fn jwt_bearer(client_id: impl Into<String>, source: impl AssertionSource) -> Self {
        let mut config = OAuthConfig::new(Grant::JwtBearer(Arc::new(source)));
        config.client = Some(PreRegisteredClient::new(client_id));
        config
    }

    /// Enterprise-managed authorization as `client` (its credentials at the MCP authorization
    /// server), with ID tokens of `idp`.
    pub fn enterprise_managed(client: PreRegisteredClient, idp: EnterpriseIdp) -> Self {
        let mut config = OAuthConfig::new(Grant::EnterpriseManaged(Arc::new(idp)));
        config.client = Some(client);
        config
    }

    /// Uses pre-registered client credentials.
    pub fn with_client(mut self, client: PreRegisteredClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Keeps registrations and tokens in `store`.
    pub fn with_store(mut self, store: impl TokenStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Checks what can be checked before any request: the redirect URI is an absolute URI, a
    /// client metadata document URL is `https` with a path, names are not empty.
    pub fn validate(&self) -> Result<(), OAuthError> {
        let invalid = |m: String| Err(OAuthError::InvalidConfig(m));
        if self.client_name.trim().is_empty() {
            return invalid("the client name is empty".into());
        }
        if let Err(e) = url::Url::parse(&self.redirect_uri) {
            return invalid(format!(
                "the redirect URI {:?} is not an absolute URI: {e}",
                self.redirect_uri
            ));
        }
        if let Some(url) = &self.client_metadata_url {
            let ok = url::Url::parse(url)
                .is_ok_and(|u| u.scheme() == "https" && u.path().len() > 1 && u.host().is_some());
            if !ok {
                return invalid(format!(
                    "the client metadata document URL {url:?} must be an https URL with a path"
                ));
            }
        }
        if let Some(client) = &self.client
            && client.client_id.is_empty()
        {
            return invalid("the pre-registered client id is empty".into());
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return invalid(format!("invalid scopes {:?}", self.scopes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(_: AuthorizationRequest) -> std::future::Ready<Result<String, String>> {
        std::future::ready(Err("unused".into()))
    }

    #[test]
    fn configurations_are_validated() {
        let good = OAuthConfig::authorization_code("http://127.0.0.1:1/cb", handler);
        good.validate().unwrap();
        assert_eq!(good.grant.grant_type(), "authorization_code");
        let mut bad = good.clone();
        bad.redirect_uri = "/relative".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("redirect URI")
        );
        let mut bad = good.clone();
        bad.client_metadata_url = Some("http://client.example/meta.json".into());
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("https URL with a path")
        );
        let mut bad = good.clone();
        bad.client_metadata_url = Some("https://client.example".into());
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.scopes = vec!["a b".into()];
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("invalid scopes")
        );
        let bad = good.clone().with_client(PreRegisteredClient::new(""));
        assert!(bad.validate().is_err());
        let cc = OAuthConfig::client_credentials(PreRegisteredClient::new("c").with_secret("s"));
        cc.validate().unwrap();
        assert_eq!(format!("{:?}", cc.grant), "client_credentials");
        assert!(!format!("{cc:?}").contains("\"s\""));
        let jwt = OAuthConfig::jwt_bearer("w", || async { Ok("a.b.c".to_owned()) });
        assert_eq!(jwt.grant.grant_type(), JWT_BEARER_GRANT_TYPE);
    }
}
