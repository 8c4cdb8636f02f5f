//! The settings of the OAuth resource server (docs/auth.md) and their checks.

use std::time::Duration;

use super::fetch::Url;

/// How the HTTP endpoint acts as an OAuth 2.1 resource server: which authorization server it
/// trusts, which tokens are meant for it, and what they must grant. Build one with
/// [`ResourceServerConfig::new`], adjust the fields, and hand it to
/// [`ResourceServer::new`](super::ResourceServer::new).
#[derive(Clone)]
#[non_exhaustive]
pub struct ResourceServerConfig {
    /// The canonical URL of the MCP endpoint (RFC 8707), e.g. `https://mcp.example.com/mcp`:
    /// the `resource` of the metadata document, and the audience tokens must name unless
    /// [`audiences`](Self::audiences) says otherwise.
    pub resource: String,
    /// The authorization server's issuer identifier, compared exactly with `iss`; its
    /// metadata (RFC 8414 or OpenID Connect Discovery) says where its keys are.
    pub issuer: String,
    /// The audiences accepted (`aud`); empty: the resource URL only.
    pub audiences: Vec<String>,
    /// Scopes every request to the MCP endpoint needs (a token without them: 403).
    pub required_scopes: Vec<String>,
    /// `scopes_supported` of the metadata document (default: the required scopes).
    pub scopes_supported: Option<Vec<String>>,
    /// The claim the caller's agent id comes from (default `sub`).
    pub agent_id_claim: String,
    /// Claims copied into [`Identity::claims`](crate::server::Identity::claims).
    pub kept_claims: Vec<String>,
    /// Check JWT access tokens against the authorization server's keys (default on).
    pub jwt: bool,
    /// The key set's URL, instead of the metadata's `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// A key set older than this is fetched again (default 10 minutes).
    pub jwks_max_age: Duration,
    /// The least time between two fetches of the key set (a token naming an unknown key
    /// makes the server fetch it again) or two failed metadata lookups (default 30 s).
    pub jwks_min_refresh: Duration,
    /// RFC 7662 introspection of the tokens that are not JWTs (default: none).
    pub introspection: Option<IntrospectionConfig>,
    /// How far a token's `exp` and `nbf` may be off (default 30 s).
    pub leeway: Duration,
    /// The bound on one exchange with the authorization server (default 5 s).
    pub timeout: Duration,
    /// DER certificates trusted for the authorization server besides the built-in roots.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// `resource_name` of the metadata document.
    pub resource_name: Option<String>,
    /// `resource_documentation` of the metadata document.
    pub resource_documentation: Option<String>,
}

impl std::fmt::Debug for ResourceServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServerConfig")
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("required_scopes", &self.required_scopes)
            .field("agent_id_claim", &self.agent_id_claim)
            .field("jwt", &self.jwt)
            .field("introspection", &self.introspection)
            .finish_non_exhaustive()
    }
}

impl ResourceServerConfig {
    /// The resource `resource` (the MCP endpoint's canonical URL), trusting the authorization
    /// server `issuer`, with every other setting at its default.
    pub fn new(resource: impl Into<String>, issuer: impl Into<String>) -> Self {
        ResourceServerConfig {
            resource: resource.into(),
            issuer: issuer.into(),
            audiences: Vec::new(),
            required_scopes: Vec::new(),
            scopes_supported: None,
            agent_id_claim: "sub".into(),
            kept_claims: Vec::new(),
            jwt: true,
            jwks_uri: None,
            jwks_max_age: Duration::from_secs(600),
            jwks_min_refresh: Duration::from_secs(30),
            introspection: None,
            leeway: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            extra_root_certificates: Vec::new(),
            resource_name: None,
            resource_documentation: None,
        }
    }

    /// The audiences accepted.
    pub(crate) fn accepted_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![self.resource.clone()]
        } else {
            self.audiences.clone()
        }
    }

    /// The scopes the metadata lists.
    pub(crate) fn listed_scopes(&self) -> &[String] {
        self.scopes_supported
            .as_deref()
            .unwrap_or(&self.required_scopes)
    }

    /// Refuses settings that cannot work; the resource and issuer read.
    pub(crate) fn validate(&self) -> Result<(Url, Url), OAuthConfigError> {
        let resource = Url::parse(&self.resource).map_err(OAuthConfigError::Resource)?;
        let issuer = Url::parse(&self.issuer).map_err(OAuthConfigError::Issuer)?;
        if issuer.query.is_some() {
            return Err(OAuthConfigError::Issuer(format!(
                "{:?} must not have a query",
                self.issuer
            )));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(OAuthConfigError::EmptyAudience);
        }
        if self.agent_id_claim.is_empty() {
            return Err(OAuthConfigError::EmptyAgentIdClaim);
        }
        let scopes = self.required_scopes.iter();
        if let Some(bad) = scopes
            .chain(self.scopes_supported.iter().flatten())
            .find(|s| !is_scope_token(s))
        {
            return Err(OAuthConfigError::Scope(bad.clone()));
        }
        if let Some(uri) = &self.jwks_uri {
            Url::parse(uri).map_err(OAuthConfigError::JwksUri)?;
        }
        if let Some(i) = &self.introspection {
            i.validate()?;
        }
        let durations = [
            ("timeout", self.timeout),
            ("jwks_max_age", self.jwks_max_age),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(OAuthConfigError::ZeroDuration(name));
        }
        Ok((resource, issuer))
    }
}

/// RFC 6749 `scope-token`: visible ASCII but `"` and `\`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// RFC 7662 introspection: the resource server asks the authorization server about each
/// opaque token, as a client of its own.
#[derive(Clone)]
#[non_exhaustive]
pub struct IntrospectionConfig {
    /// The endpoint (default: the metadata's `introspection_endpoint`).
    pub endpoint: Option<String>,
    /// The resource server's client id at the authorization server.
    pub client_id: String,
    /// Its client secret (HTTP Basic authentication).
    pub client_secret: String,
    /// How long an answer is reused, at most (an active token's never past its `exp`;
    /// default 60 s; zero: never).
    pub cache_ttl: Duration,
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl IntrospectionConfig {
    /// Introspection as client `client_id` with `client_secret`, at the endpoint the
    /// authorization server's metadata names.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        IntrospectionConfig {
            endpoint: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<(), OAuthConfigError> {
        if let Some(endpoint) = &self.endpoint {
            Url::parse(endpoint).map_err(OAuthConfigError::IntrospectionEndpoint)?;
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return Err(OAuthConfigError::IntrospectionClient);
        }
        Ok(())
    }
}

/// A [`ResourceServerConfig`] that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthConfigError {
    /// The resource URL is unusable.
    #[error("the resource URL {0}")]
    Resource(String),
    /// The issuer is unusable.
    #[error("the issuer {0}")]
    Issuer(String),
    /// The key set URL is unusable.
    #[error("jwks_uri {0}")]
    JwksUri(String),
    /// The introspection endpoint is unusable.
    #[error("the introspection endpoint {0}")]
    IntrospectionEndpoint(String),
    /// Introspection without a client id or secret.
    #[error("introspection needs the resource server's client id and client secret")]
    IntrospectionClient,
    /// An empty audience.
    #[error("an accepted audience must not be empty")]
    EmptyAudience,
    /// An empty agent id claim.
    #[error("the agent id claim must be named")]
    EmptyAgentIdClaim,
    /// A scope with characters RFC 6749 does not allow (spaces, quotes, backslashes...).
    #[error("{0:?} is not a scope (printable ASCII without spaces, '\"' or '\\')")]
    Scope(String),
    /// A duration that must be positive.
    #[error("{0} must be positive")]
    ZeroDuration(&'static str),
    /// The TLS client cannot be set up (an unusable extra root certificate).
    #[error("TLS to the authorization server: {0}")]
    Tls(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unusable_settings_are_refused_with_their_name() {
        let ok = ResourceServerConfig::new("https://mcp.example/mcp", "https://as.example");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.accepted_audiences(), ["https://mcp.example/mcp"]);
        let with = |f: &dyn Fn(&mut ResourceServerConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(with(&|c| c.resource = "http://mcp.example/mcp".into()).contains("resource"));
        assert!(with(&|c| c.issuer = "https://as.example/#x".into()).contains("issuer"));
        assert!(with(&|c| c.issuer = "https://as.example/?t=1".into()).contains("query"));
        assert!(with(&|c| c.required_scopes = vec!["a b".into()]).contains("\"a b\""));
        assert!(with(&|c| c.scopes_supported = Some(vec!["".into()])).contains("scope"));
        assert!(with(&|c| c.audiences = vec!["".into()]).contains("audience"));
        assert!(with(&|c| c.agent_id_claim.clear()).contains("agent id"));
        assert!(with(&|c| c.timeout = Duration::ZERO).contains("timeout"));
        assert!(with(&|c| c.jwks_uri = Some("ftp://x".into())).contains("jwks_uri"));
        let secretless = IntrospectionConfig::new("rs", "");
        assert!(with(&|c| c.introspection = Some(secretless.clone())).contains("client secret"));
        let shown = format!("{:?}", IntrospectionConfig::new("rs", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
