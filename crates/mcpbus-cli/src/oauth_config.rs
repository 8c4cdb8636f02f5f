//! `[auth.oauth]`: `mcpbus serve` as an OAuth 2.1 resource server (docs/auth.md), and the
//! check that keeps an unauthenticated server on loopback unless told otherwise.

use std::path::PathBuf;
use std::time::Duration;

use mcpbus::server::oauth::{
    IntrospectionConfig, OAuthConfigError, ResourceServer, ResourceServerConfig,
};
use mcpbus::webhooks::{WebhookTlsError, certificates_from_pem};
use serde::Deserialize;

/// The scope an access token needs for `POST /publish` unless `publish_scope` says otherwise.
pub(crate) const DEFAULT_PUBLISH_SCOPE: &str = "mcpbus:publish";

/// `[auth.oauth]`; durations in seconds unless the name says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OAuthSection {
    /// The authorization server's issuer identifier (`iss`, exactly).
    pub issuer: String,
    /// The MCP endpoint's canonical URL, e.g. `https://mcp.example.com/mcp` (RFC 8707).
    pub resource: String,
    /// Audiences accepted instead of the resource URL (default: the resource URL).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Scopes every request to the MCP endpoint needs.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// `scopes_supported` of the metadata (default: the required scopes).
    pub scopes_supported: Option<Vec<String>>,
    /// The claim the agent id comes from (default `sub`).
    pub agent_id_claim: Option<String>,
    /// Claims kept for handlers and topic rules.
    #[serde(default)]
    pub keep_claims: Vec<String>,
    /// The scope an access token needs for `POST /publish` (default `mcpbus:publish`).
    pub publish_scope: Option<String>,
    /// Check JWT access tokens with the authorization server's keys (default true).
    pub jwt: Option<bool>,
    /// The key set's URL instead of the metadata's `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// Keys are fetched again after this long (default 600).
    pub jwks_cache_secs: Option<u64>,
    /// The least time between two fetches of the keys (default 30).
    pub jwks_min_refresh_secs: Option<u64>,
    /// How far `exp` and `nbf` may be off (default 30).
    pub leeway_secs: Option<u64>,
    /// The bound on one exchange with the authorization server, in milliseconds (default 5000).
    pub timeout_ms: Option<u64>,
    /// A PEM file of CA certificates trusted for the authorization server besides the
    /// built-in roots.
    pub ca_file: Option<PathBuf>,
    /// `resource_name` of the metadata.
    pub resource_name: Option<String>,
    /// `resource_documentation` of the metadata.
    pub resource_documentation: Option<String>,
    /// RFC 7662 introspection of opaque tokens.
    pub introspection: Option<IntrospectionSection>,
}

/// `[auth.oauth.introspection]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntrospectionSection {
    /// The endpoint (default: the authorization server's metadata says).
    pub endpoint: Option<String>,
    /// The resource server's client id at the authorization server.
    pub client_id: String,
    /// The environment variable holding its client secret.
    pub client_secret_env: String,
    /// Answers are reused this long at most (default 60; 0: never).
    pub cache_secs: Option<u64>,
}

/// Why `[auth.oauth]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthSectionError {
    /// The library refuses a setting.
    #[error("[auth.oauth] {0}")]
    Invalid(#[from] OAuthConfigError),
    /// The introspection secret's variable is not set.
    #[error(
        "[auth.oauth.introspection] client_secret_env: the environment variable {0} is not set"
    )]
    MissingSecret(String),
    /// The publish scope is not a scope.
    #[error("[auth.oauth] publish_scope {0:?} is not a scope (printable ASCII, no spaces)")]
    PublishScope(String),
    /// The CA file cannot be read.
    #[error("[auth.oauth] ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file has no usable certificate.
    #[error("[auth.oauth] ca_file {path}: {source}")]
    CaPem {
        /// The file.
        path: String,
        /// Why.
        source: WebhookTlsError,
    },
}

impl OAuthSection {
    /// The resource server, its secret read through `env`.
    pub(crate) fn to_resource_server(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResourceServer, OAuthSectionError> {
        let publish_scope = self.publish_scope();
        let scope_ok = !publish_scope.is_empty()
            && publish_scope
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !scope_ok {
            return Err(OAuthSectionError::PublishScope(publish_scope.to_owned()));
        }
        let mut c = ResourceServerConfig::new(&self.resource, &self.issuer);
        c.audiences = self.audiences.clone();
        c.required_scopes = self.required_scopes.clone();
        c.scopes_supported = self.scopes_supported.clone();
        if let Some(claim) = &self.agent_id_claim {
            c.agent_id_claim = claim.clone();
        }
        c.kept_claims = self.keep_claims.clone();
        c.jwt = self.jwt.unwrap_or(true);
        c.jwks_uri = self.jwks_uri.clone();
        let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        c.jwks_max_age = secs(self.jwks_cache_secs, c.jwks_max_age);
        c.jwks_min_refresh = secs(self.jwks_min_refresh_secs, c.jwks_min_refresh);
        c.leeway = secs(self.leeway_secs, c.leeway);
        c.timeout = self.timeout_ms.map_or(c.timeout, Duration::from_millis);
        c.resource_name = self.resource_name.clone();
        c.resource_documentation = self.resource_documentation.clone();
        if let Some(path) = &self.ca_file {
            c.extra_root_certificates = read_ca_file(path)?;
        }
        if let Some(i) = &self.introspection {
            let secret = env(&i.client_secret_env)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OAuthSectionError::MissingSecret(i.client_secret_env.clone()))?;
            let mut introspection = IntrospectionConfig::new(&i.client_id, secret);
            introspection.endpoint = i.endpoint.clone();
            introspection.cache_ttl = secs(i.cache_secs, introspection.cache_ttl);
            c.introspection = Some(introspection);
        }
        Ok(ResourceServer::new(c)?)
    }

    /// The scope `POST /publish` requires of an access token.
    pub(crate) fn publish_scope(&self) -> &str {
        self.publish_scope
            .as_deref()
            .unwrap_or(DEFAULT_PUBLISH_SCOPE)
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<Vec<u8>>, OAuthSectionError> {
    let shown = || path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| OAuthSectionError::CaFile {
        path: shown(),
        source,
    })?;
    certificates_from_pem(&pem).map_err(|source| OAuthSectionError::CaPem {
        path: shown(),
        source,
    })
}

/// Refuses to serve beyond loopback without authentication: `listen` resolves to a
/// non-loopback address, and neither OAuth nor static tokens are configured, nor is an open
/// server allowed. `Ok` when the address cannot be resolved (binding it reports that).
pub(crate) async fn check_exposure(
    listen: &str,
    authenticated: bool,
    allowed_open: bool,
) -> Result<(), String> {
    if authenticated || allowed_open {
        return Ok(());
    }
    let Ok(addrs) = tokio::net::lookup_host(listen).await else {
        return Ok(());
    };
    let exposed: Vec<String> = addrs
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    if exposed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen} ({}): it is not a loopback address and no \
         authentication is configured, so anyone who reaches it could use the server. \
         Configure [auth.oauth] or [[auth.tokens]] (docs/auth.md), or serve it open on purpose \
         with --allow-unauthenticated (or [auth] allow_unauthenticated = true)",
        exposed.join(", ")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(extra: &str) -> OAuthSection {
        toml::from_str(&format!(
            "issuer = \"https://as.example\"\nresource = \"https://mcp.example/mcp\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_section_becomes_a_resource_server() {
        let s = section(
            "required_scopes = [\"mcp\"]\nagent_id_claim = \"agent\"\njwks_min_refresh_secs = 5\n\
             [introspection]\nclient_id = \"rs\"\nclient_secret_env = \"S\"\ncache_secs = 0",
        );
        let rs = s
            .to_resource_server(|v| (v == "S").then(|| "secret".into()))
            .unwrap();
        let c = rs.config();
        assert_eq!(c.required_scopes, ["mcp"]);
        assert_eq!(c.agent_id_claim, "agent");
        assert_eq!(c.jwks_min_refresh, Duration::from_secs(5));
        let i = c.introspection.as_ref().unwrap();
        assert_eq!(
            (i.client_secret.as_str(), i.cache_ttl),
            ("secret", Duration::ZERO)
        );
        assert_eq!(s.publish_scope(), DEFAULT_PUBLISH_SCOPE);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |s: OAuthSection| s.to_resource_server(|_| None).unwrap_err().to_string();
        let missing = err(section(
            "[introspection]\nclient_id = \"rs\"\nclient_secret_env = \"S\"",
        ));
        assert!(missing.contains("environment variable S"), "{missing}");
        let plain = err(toml::from_str(
            "issuer = \"http://as.example\"\nresource = \"https://mcp.example/mcp\"",
        )
        .unwrap());
        assert!(plain.starts_with("[auth.oauth] the issuer"), "{plain}");
        assert!(err(section("publish_scope = \"a b\"")).contains("publish_scope"));
        assert!(err(section("required_scopes = [\"a\\\"\"]")).contains("scope"));
        assert!(err(section("ca_file = \"/nonexistent.pem\"")).contains("ca_file"));
        let unknown = toml::from_str::<OAuthSection>("issuer = \"x\"\nresource = \"y\"\nscope = 1");
        assert!(unknown.unwrap_err().to_string().contains("scope"));
    }

    #[test]
    fn the_commented_example_of_the_default_config_is_valid() {
        let text = crate::config::DEFAULT_CONFIG;
        let start = text.find("# [auth.oauth]").unwrap();
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        let config = crate::config::Config::parse(&block, None).unwrap();
        let mut oauth = config.auth.oauth.unwrap();
        assert!(oauth.introspection.is_some() && oauth.ca_file.is_some());
        // The example's CA file does not exist here.
        oauth.ca_file = None;
        oauth.to_resource_server(|_| Some("secret".into())).unwrap();
    }

    #[tokio::test]
    async fn only_loopback_may_be_open_unless_allowed() {
        assert!(check_exposure("127.0.0.1:0", false, false).await.is_ok());
        assert!(check_exposure("[::1]:0", false, false).await.is_ok());
        let refused = check_exposure("0.0.0.0:0", false, false).await.unwrap_err();
        assert!(refused.contains("--allow-unauthenticated"), "{refused}");
        assert!(
            refused.contains("allow_unauthenticated = true"),
            "{refused}"
        );
        assert!(check_exposure("0.0.0.0:0", true, false).await.is_ok());
        assert!(check_exposure("0.0.0.0:0", false, true).await.is_ok());
    }
}
