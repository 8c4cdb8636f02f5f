//! Discovery: the protected resource metadata of the MCP server (RFC 9728), then the metadata
//! of its authorization server (RFC 8414 / OpenID Connect Discovery), both validated as the MCP
//! specification requires.

use serde::{Deserialize, Serialize};
use url::Url;

use super::OAuthError;
use super::agent::{Agent, Answer};
use super::urls::{
    authorization_server_metadata_urls, http_url, protected_resource_metadata_urls, resource_covers,
};

/// OAuth 2.0 protected resource metadata (RFC 9728 section 2), the fields MCP uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier; sent verbatim as the `resource` parameter (RFC 8707).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The issuers of the authorization servers that protect the resource.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The scopes the resource knows (the fallback of scope selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// The DPoP proof algorithms the resource accepts (RFC 9449 section 5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// Whether the resource accepts DPoP-bound tokens only.
    #[serde(default)]
    pub dpop_bound_access_tokens_required: bool,
}

/// OAuth 2.0 authorization server metadata (RFC 8414 section 2; OpenID Connect Discovery
/// documents carry the same fields), the fields this client uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier; must equal the one the document was looked up for.
    pub issuer: String,
    /// Where the user agent is sent to authorize (authorization code grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Where tokens are requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Where clients register dynamically (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The scopes the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// The grant types the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// The PKCE methods the server supports; absent means no PKCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// The client authentication methods of the token endpoint (RFC 8414: absent means
    /// `client_secret_basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// The JWS algorithms accepted for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Whether URL client ids (client ID metadata documents) are accepted.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// Whether authorization responses carry `iss` (RFC 9207).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// The DPoP proof algorithms the server accepts (RFC 9449 section 5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

impl AuthorizationServerMetadata {
    /// Whether `grant_type` is listed (an absent list means the RFC 8414 default,
    /// `authorization_code` and `implicit`).
    pub fn supports_grant(&self, grant_type: &str) -> bool {
        match &self.grant_types_supported {
            Some(grants) => grants.iter().any(|g| g == grant_type),
            None => matches!(grant_type, "authorization_code" | "implicit"),
        }
    }

    /// The token endpoint, which every grant needs.
    pub(crate) fn token_endpoint(&self) -> Result<Url, OAuthError> {
        let text = self
            .token_endpoint
            .as_deref()
            .ok_or_else(|| OAuthError::MissingEndpoint {
                issuer: self.issuer.clone(),
                endpoint: "token_endpoint",
            })?;
        http_url("token endpoint", text)
    }
}

/// Fetches the protected resource metadata of the MCP endpoint `server`: at `hint` (the
/// challenge's `resource_metadata`) when given, else at the well-known URIs in order. The
/// document must name an authorization server, and its `resource` must cover `server`.
pub(crate) async fn protected_resource(
    agent: &Agent,
    server: &Url,
    hint: Option<&str>,
) -> Result<ProtectedResourceMetadata, OAuthError> {
    let candidates = match hint {
        Some(hint) => vec![http_url("resource_metadata URL", hint)?],
        None => protected_resource_metadata_urls(server.as_str())?,
    };
    let mut tried = Vec::new();
    let mut found = None;
    for url in &candidates {
        let answer = agent.get(url).await?;
        if answer.status.is_success() {
            found = Some(answer);
            break;
        }
        if hint.is_some() {
            return Err(answer.unexpected("protected resource metadata"));
        }
        tried.push(format!("{url} ({})", answer.status));
    }
    let Some(answer) = found else {
        return Err(OAuthError::MetadataNotFound {
            what: "protected resource metadata",
            tried,
        });
    };
    let metadata: ProtectedResourceMetadata = answer.json()?;
    check_protected_resource(&metadata, server, &answer)?;
    Ok(metadata)
}

fn check_protected_resource(
    metadata: &ProtectedResourceMetadata,
    server: &Url,
    answer: &Answer,
) -> Result<(), OAuthError> {
    if metadata.authorization_servers.is_empty() {
        return Err(OAuthError::NoAuthorizationServer {
            url: answer.url.clone(),
        });
    }
    if let Some(resource) = &metadata.resource
        && !resource_covers(resource, server)
    {
        return Err(OAuthError::ResourceMismatch {
            resource: resource.clone(),
            server: server.to_string(),
        });
    }
    Ok(())
}

/// Fetches the metadata of the authorization server `issuer` from the well-known URIs in
/// order. A document whose `issuer` is not exactly `issuer` is refused, never used.
pub(crate) async fn authorization_server(
    agent: &Agent,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, OAuthError> {
    let mut tried = Vec::new();
    for url in authorization_server_metadata_urls(issuer)? {
        let answer = agent.get(&url).await?;
        if !answer.status.is_success() {
            tried.push(format!("{url} ({})", answer.status));
            continue;
        }
        let metadata: AuthorizationServerMetadata = answer.json()?;
        if metadata.issuer != issuer {
            return Err(OAuthError::IssuerMismatch {
                url: url.to_string(),
                expected: issuer.to_owned(),
                found: metadata.issuer,
            });
        }
        return Ok(metadata);
    }
    Err(OAuthError::MetadataNotFound {
        what: "authorization server metadata",
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_documents_read_their_fields() {
        let prm: ProtectedResourceMetadata = serde_json::from_str(
            r#"{"resource":"http://h/mcp","authorization_servers":["http://as"],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(prm.resource.as_deref(), Some("http://h/mcp"));
        assert_eq!(prm.scopes_supported, None);
        let meta: AuthorizationServerMetadata = serde_json::from_str(
            r#"{"issuer":"http://as","token_endpoint":"http://as/token",
                "grant_types_supported":["client_credentials"],
                "client_id_metadata_document_supported":true}"#,
        )
        .unwrap();
        assert!(meta.client_id_metadata_document_supported);
        assert!(!meta.authorization_response_iss_parameter_supported);
        assert!(meta.supports_grant("client_credentials"));
        assert!(!meta.supports_grant("authorization_code"));
        assert_eq!(meta.token_endpoint().unwrap().as_str(), "http://as/token");
        let bare = AuthorizationServerMetadata {
            issuer: "http://as".into(),
            ..Default::default()
        };
        assert!(bare.supports_grant("authorization_code"));
        let e = bare.token_endpoint().unwrap_err();
        assert!(e.to_string().contains("token_endpoint"), "{e}");
    }
}
