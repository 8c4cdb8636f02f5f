//! [`ResourceServer`]: the chain of token verifiers, the scopes required, and what the
//! endpoint tells clients (metadata, challenges).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::Value;

use super::challenge::{self, Document};
use super::claims::Policy;
use super::config::{OAuthConfigError, ResourceServerConfig};
use super::discovery::Discovery;
use super::error::TokenError;
use super::fetch::{Fetcher, Url};
use super::introspection::{Introspector, basic_authorization};
use super::jwks::{CachePolicy, JwtVerifier, KeyCache, KeySource};
use crate::server::Identity;

/// Turns a bearer token into the [`Identity`] it proves. Implementations are chained by
/// [`ResourceServer`]: one that does not handle a token's kind answers
/// [`TokenError::Unrecognized`] and the next one is asked; any other error ends the chain.
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token` (the value after `Bearer `).
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>>;
}

/// The OAuth 2.1 resource server of the HTTP endpoint (docs/auth.md): verifies access tokens
/// (JWTs against the authorization server's keys, opaque ones by introspection, and any
/// verifier added with [`with_verifier`](Self::with_verifier)), requires the configured
/// scopes, and describes itself (RFC 9728 metadata, `WWW-Authenticate` challenges). Clones
/// share their caches. Served by [`ServerBuilder::resource_server`](crate::server::ServerBuilder::resource_server).
#[derive(Clone)]
pub struct ResourceServer {
    config: Arc<ResourceServerConfig>,
    verifiers: Vec<Arc<dyn TokenVerifier>>,
    metadata: Arc<Value>,
    metadata_url: Arc<str>,
    metadata_paths: Arc<[String]>,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("config", &self.config)
            .field("verifiers", &self.verifiers.len())
            .finish()
    }
}

impl ResourceServer {
    /// The resource server `config` describes, with its built-in verifiers: JWTs (unless
    /// `config.jwt` is off), then introspection (when configured). Nothing is fetched until a
    /// token needs it.
    pub fn new(config: ResourceServerConfig) -> Result<Self, OAuthConfigError> {
        let (resource, issuer) = config.validate()?;
        let tls = crate::webhooks::Tls::new(&config.extra_root_certificates)
            .map_err(|e| OAuthConfigError::Tls(e.to_string()))?;
        let fetcher = Fetcher::new(tls, config.timeout);
        let discovery = Arc::new(Discovery::new(
            &issuer,
            fetcher.clone(),
            config.jwks_min_refresh,
        ));
        let policy = Arc::new(Policy {
            issuer: config.issuer.clone(),
            audiences: config.accepted_audiences(),
            leeway: config.leeway,
            agent_id_claim: config.agent_id_claim.clone(),
            kept_claims: config.kept_claims.clone(),
        });
        let verifiers = built_in_verifiers(&config, &discovery, &fetcher, &policy)?;
        let metadata = challenge::metadata_document(&Document {
            resource: &config.resource,
            issuer: &config.issuer,
            scopes_supported: config.listed_scopes(),
            resource_name: config.resource_name.as_deref(),
            resource_documentation: config.resource_documentation.as_deref(),
        });
        Ok(ResourceServer {
            metadata: Arc::new(metadata),
            metadata_url: challenge::metadata_url(&resource).into(),
            metadata_paths: challenge::metadata_paths(&resource).into(),
            config: Arc::new(config),
            verifiers,
        })
    }

    /// Adds `verifier` to the chain, before the built-in ones (e.g. tokens of a second
    /// issuer, or a test's own tokens).
    pub fn with_verifier(mut self, verifier: impl TokenVerifier) -> Self {
        self.verifiers.insert(0, Arc::new(verifier));
        self
    }

    /// The settings.
    pub fn config(&self) -> &ResourceServerConfig {
        &self.config
    }

    /// The identity `token` proves, asking each verifier in turn; no scope is required.
    pub async fn verify_token(&self, token: &str) -> Result<Identity, TokenError> {
        for verifier in &self.verifiers {
            match verifier.verify(token).await {
                Err(TokenError::Unrecognized) => continue,
                other => return other,
            }
        }
        Err(TokenError::Unrecognized)
    }

    /// The identity `token` proves, if it grants the scopes the MCP endpoint requires.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let identity = self.verify_token(token).await?;
        require_scopes(&identity, &self.config.required_scopes)?;
        Ok(identity)
    }

    /// The RFC 9728 metadata document.
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }

    /// Where the metadata is, as `WWW-Authenticate` names it (the form RFC 9728 derives from
    /// the resource's path).
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The paths the metadata is served at: the resource's own, then the root one.
    pub fn metadata_paths(&self) -> &[String] {
        &self.metadata_paths
    }

    /// The `WWW-Authenticate` value of a refused request: without `error`, the challenge of a
    /// request that carried no token; with it, its RFC 6750 code and description, and for
    /// missing scopes the scopes needed.
    pub fn challenge(&self, error: Option<&TokenError>) -> String {
        let scopes = if self.config.required_scopes.is_empty() {
            self.config.listed_scopes()
        } else {
            &self.config.required_scopes
        };
        self.challenge_with_scopes(error, scopes)
    }

    /// [`challenge`](Self::challenge) for another route than the MCP endpoint, whose scope
    /// hint is `scopes` (e.g. a publish endpoint's own scope); the scopes an
    /// [`InsufficientScope`](TokenError::InsufficientScope) error names win.
    pub fn challenge_with_scopes(&self, error: Option<&TokenError>, scopes: &[String]) -> String {
        let scopes = match error {
            Some(TokenError::InsufficientScope { required }) => required.as_slice(),
            _ => scopes,
        };
        let description = error.map(ToString::to_string);
        let error =
            error.and_then(|e| Some((e.error_code()?, description.as_deref().unwrap_or_default())));
        challenge::www_authenticate(&self.metadata_url, scopes, error)
    }

    /// An axum router serving the metadata at [`metadata_paths`](Self::metadata_paths)
    /// (`GET`, JSON, readable from any origin: it is public).
    pub fn metadata_router(&self) -> axum::Router {
        let document = Arc::new(self.metadata.to_string());
        let mut router = axum::Router::new();
        for path in self.metadata_paths.iter() {
            let document = document.clone();
            router = router.route(
                path,
                axum::routing::get(move || {
                    let document = document.clone();
                    async move {
                        (
                            [
                                (http::header::CONTENT_TYPE, "application/json"),
                                (http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                            ],
                            (*document).clone(),
                        )
                    }
                }),
            );
        }
        router
    }
}

/// `Ok` when `identity` grants every scope of `required`; `InsufficientScope` naming them all
/// otherwise.
pub fn require_scopes(identity: &Identity, required: &[String]) -> Result<(), TokenError> {
    if required.iter().all(|s| identity.has_scope(s)) {
        Ok(())
    } else {
        Err(TokenError::InsufficientScope {
            required: required.to_vec(),
        })
    }
}

fn built_in_verifiers(
    config: &ResourceServerConfig,
    discovery: &Arc<Discovery>,
    fetcher: &Fetcher,
    policy: &Arc<Policy>,
) -> Result<Vec<Arc<dyn TokenVerifier>>, OAuthConfigError> {
    let mut verifiers: Vec<Arc<dyn TokenVerifier>> = Vec::new();
    if config.jwt {
        let source = match &config.jwks_uri {
            Some(uri) => KeySource::Fixed(Url::parse(uri).map_err(OAuthConfigError::JwksUri)?),
            None => KeySource::Discovered(discovery.clone()),
        };
        let cache = CachePolicy {
            max_age: config.jwks_max_age,
            min_refresh: config.jwks_min_refresh,
        };
        verifiers.push(Arc::new(JwtVerifier {
            keys: KeyCache::new(source, fetcher.clone(), cache),
            policy: policy.clone(),
        }));
    }
    if let Some(i) = &config.introspection {
        let endpoint = i.endpoint.as_deref().map(Url::parse).transpose();
        verifiers.push(Arc::new(Introspector {
            endpoint: endpoint.map_err(OAuthConfigError::IntrospectionEndpoint)?,
            discovery: discovery.clone(),
            fetcher: fetcher.clone(),
            authorization: basic_authorization(&i.client_id, &i.client_secret),
            cache_ttl: i.cache_ttl,
            policy: policy.clone(),
            cache: Mutex::default(),
        }));
    }
    Ok(verifiers)
}
