//! How the client gets a client id at an authorization server, in the order the MCP
//! specification recommends: pre-registered credentials, then a client ID metadata document
//! URL when the server accepts them, then dynamic client registration (RFC 7591); and how it
//! authenticates at the token endpoint (`client_secret_basic`, `client_secret_post`, `none`,
//! `private_key_jwt`) as the server advertises.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::agent::Agent;
use super::discovery::AuthorizationServerMetadata;
use super::jwt::{JWT_ASSERTION_TYPE, SigningKey, unix_now};
use super::store::{RegisteredClient, StoredCredentials};
use super::urls::http_url;
use super::{Grant, OAuthConfig, OAuthError};

/// How a client authenticates at the token endpoint (RFC 7591 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The client id and secret in the request body.
    ClientSecretPost,
    /// A public client: only the client id, in the body.
    None,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// The registered name, e.g. `client_secret_basic`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl std::fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenEndpointAuthMethod {
    type Err = OAuthError;

    /// Reads a registered name; other methods (`tls_client_auth`, …) are not supported.
    fn from_str(text: &str) -> Result<Self, OAuthError> {
        Ok(match text {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "none" => Self::None,
            "private_key_jwt" => Self::PrivateKeyJwt,
            other => {
                return Err(OAuthError::InvalidConfig(format!(
                    "unsupported token endpoint authentication method {other:?} (expected \
                     client_secret_basic, client_secret_post, none or private_key_jwt)"
                )));
            }
        })
    }
}

/// Client credentials obtained out of band (pre-registration).
#[derive(Clone)]
pub struct PreRegisteredClient {
    /// The client id.
    pub client_id: String,
    /// The client secret, for a confidential client.
    pub client_secret: Option<String>,
    /// The key of `private_key_jwt` authentication.
    pub signing_key: Option<SigningKey>,
    /// How to authenticate at the token endpoint; chosen from what the server advertises when
    /// absent.
    pub auth_method: Option<TokenEndpointAuthMethod>,
    /// The issuer of the authorization server the credentials belong to. When set and the
    /// server's metadata names another authorization server, the flow stops with an error
    /// rather than send them there.
    pub issuer: Option<String>,
}

impl std::fmt::Debug for PreRegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("signing_key", &self.signing_key)
            .field("auth_method", &self.auth_method)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl PreRegisteredClient {
    /// A client with this id and no secret (a public client) until configured otherwise.
    pub fn new(client_id: impl Into<String>) -> Self {
        PreRegisteredClient {
            client_id: client_id.into(),
            client_secret: None,
            signing_key: None,
            auth_method: None,
            issuer: None,
        }
    }

    /// Adds the client secret.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Adds the key of `private_key_jwt` authentication.
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }
}

/// The client as the token endpoint sees it.
#[derive(Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) client_id: String,
    secret: Option<String>,
    key: Option<SigningKey>,
    pub(crate) method: TokenEndpointAuthMethod,
}

impl ClientIdentity {
    /// Adds the client authentication to a token request: a header, or form fields.
    pub(crate) fn authenticate(
        &self,
        issuer: &str,
        form: &mut Vec<(String, String)>,
        headers: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(), OAuthError> {
        let secret = || {
            self.secret.clone().ok_or_else(|| {
                OAuthError::InvalidConfig(format!(
                    "{} needs a client secret and client {:?} has none",
                    self.method, self.client_id
                ))
            })
        };
        let mut field = |name: &str, value: String| form.push((name.to_owned(), value));
        match self.method {
            TokenEndpointAuthMethod::ClientSecretBasic => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(&secret()?)
                );
                let value = format!("Basic {}", STANDARD.encode(pair));
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    OAuthError::InvalidConfig("the client credentials are no header value".into())
                })?;
                headers.push((AUTHORIZATION, value));
            }
            TokenEndpointAuthMethod::ClientSecretPost => {
                field("client_id", self.client_id.clone());
                field("client_secret", secret()?);
            }
            TokenEndpointAuthMethod::None => field("client_id", self.client_id.clone()),
            TokenEndpointAuthMethod::PrivateKeyJwt => {
                let key = self.key.as_ref().ok_or_else(|| {
                    OAuthError::InvalidConfig("private_key_jwt needs a signing key".into())
                })?;
                field("client_id", self.client_id.clone());
                field("client_assertion_type", JWT_ASSERTION_TYPE.to_owned());
                field(
                    "client_assertion",
                    key.client_assertion(&self.client_id, issuer)?,
                );
            }
        }
        Ok(())
    }
}

/// RFC 6749 section 2.3.1: the client id and secret are form-encoded inside HTTP Basic.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The methods the server accepts (RFC 8414: `client_secret_basic` when it does not say).
fn supported(meta: &AuthorizationServerMetadata) -> Vec<&str> {
    match &meta.token_endpoint_auth_methods_supported {
        Some(methods) => methods.iter().map(String::as_str).collect(),
        None => vec!["client_secret_basic"],
    }
}

/// The method for a client: the one it registered with when known, else the best the server
/// accepts for what the client holds (a key, a secret, or nothing).
pub(crate) fn choose_method(
    registered: Option<&str>,
    has_secret: bool,
    has_key: bool,
    meta: &AuthorizationServerMetadata,
) -> TokenEndpointAuthMethod {
    use TokenEndpointAuthMethod as M;
    if let Some(method) = registered.and_then(|m| m.parse::<M>().ok()) {
        return method;
    }
    let accepted = supported(meta);
    let accepts = |m: M| accepted.contains(&m.as_str());
    if has_key && accepts(M::PrivateKeyJwt) {
        M::PrivateKeyJwt
    } else if has_secret && accepts(M::ClientSecretBasic) {
        M::ClientSecretBasic
    } else if has_secret && accepts(M::ClientSecretPost) {
        M::ClientSecretPost
    } else if has_secret && !accepts(M::None) {
        M::ClientSecretBasic
    } else {
        M::None
    }
}

/// The client id to use with the authorization server `meta` describes, registering when
/// needed; `entry` keeps a dynamic registration for next time.
pub(crate) async fn client_for(
    agent: &Agent,
    config: &OAuthConfig,
    meta: &AuthorizationServerMetadata,
    entry: &mut StoredCredentials,
) -> Result<ClientIdentity, OAuthError> {
    if let Some(pre) = &config.client {
        if let Some(bound) = pre.issuer.as_deref().filter(|b| *b != meta.issuer) {
            return Err(OAuthError::ClientIssuerMismatch {
                client_id: pre.client_id.clone(),
                bound: bound.to_owned(),
                issuer: meta.issuer.clone(),
            });
        }
        let method = pre.auth_method.unwrap_or_else(|| {
            choose_method(
                None,
                pre.client_secret.is_some(),
                pre.signing_key.is_some(),
                meta,
            )
        });
        return Ok(ClientIdentity {
            client_id: pre.client_id.clone(),
            secret: pre.client_secret.clone(),
            key: pre.signing_key.clone(),
            method,
        });
    }
    if let Some(url) = &config.client_metadata_url
        && meta.client_id_metadata_document_supported
    {
        return Ok(ClientIdentity {
            client_id: url.clone(),
            secret: None,
            key: None,
            method: TokenEndpointAuthMethod::None,
        });
    }
    let registered = match entry.client.clone().filter(still_valid) {
        Some(client) => client,
        None => {
            let client = register(agent, config, meta).await?;
            entry.client = Some(client.clone());
            client
        }
    };
    let method = choose_method(
        registered.token_endpoint_auth_method.as_deref(),
        registered.client_secret.is_some(),
        false,
        meta,
    );
    Ok(ClientIdentity {
        client_id: registered.client_id,
        secret: registered.client_secret,
        key: None,
        method,
    })
}

/// A registration whose secret has not expired.
fn still_valid(client: &RegisteredClient) -> bool {
    client
        .client_secret_expires_at
        .is_none_or(|at| at == 0 || at > unix_now())
}

/// What a registration endpoint answers (RFC 7591 section 3.2.1).
#[derive(Deserialize)]
struct RegistrationAnswer {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_secret_expires_at: Option<u64>,
}

/// The client metadata of a dynamic registration request.
fn registration_request(config: &OAuthConfig, meta: &AuthorizationServerMetadata) -> Value {
    let accepted = supported(meta);
    let code = matches!(config.grant, Grant::AuthorizationCode(_));
    // A native client cannot keep a secret: ask to be public when the server allows it.
    let method = ["none", "client_secret_basic", "client_secret_post"]
        .into_iter()
        .filter(|m| code || *m != "none")
        .find(|m| accepted.contains(m));
    let mut body = json!({
        "client_name": config.client_name,
        "application_type": config.application_type,
    });
    if code {
        body["redirect_uris"] = json!([config.redirect_uri]);
        body["grant_types"] = json!(["authorization_code", "refresh_token"]);
        body["response_types"] = json!(["code"]);
    } else {
        body["grant_types"] = json!([config.grant.grant_type()]);
    }
    if let Some(method) = method {
        body["token_endpoint_auth_method"] = json!(method);
    }
    body
}

/// Registers the client dynamically (RFC 7591).
async fn register(
    agent: &Agent,
    config: &OAuthConfig,
    meta: &AuthorizationServerMetadata,
) -> Result<RegisteredClient, OAuthError> {
    let Some(endpoint) = &meta.registration_endpoint else {
        return Err(OAuthError::NoRegistration {
            issuer: meta.issuer.clone(),
        });
    };
    let url = http_url("registration endpoint", endpoint)?;
    let answer = agent
        .post_json(&url, &registration_request(config, meta))
        .await?;
    if !answer.status.is_success() {
        let (error, description) = answer.oauth_error();
        return Err(OAuthError::Registration {
            url: answer.url.clone(),
            status: answer.status,
            error,
            description: description.or_else(|| Some(answer.quoted_body())),
        });
    }
    let registered: RegistrationAnswer = answer.json()?;
    tracing::debug!(client_id = %registered.client_id, issuer = %meta.issuer, "registered the OAuth client");
    Ok(RegisteredClient {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        token_endpoint_auth_method: registered.token_endpoint_auth_method,
        client_secret_expires_at: registered.client_secret_expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenEndpointAuthMethod as M;

    fn meta(methods: Option<&[&str]>) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            issuer: "http://as".into(),
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn the_method_follows_registration_then_the_server() {
        let none_only = meta(Some(&["none"]));
        assert_eq!(choose_method(None, true, false, &none_only), M::None);
        assert_eq!(
            choose_method(Some("client_secret_post"), true, false, &none_only),
            M::ClientSecretPost
        );
        let basic = meta(Some(&["client_secret_basic"]));
        assert_eq!(
            choose_method(None, true, false, &basic),
            M::ClientSecretBasic
        );
        let post = meta(Some(&["client_secret_post", "none"]));
        assert_eq!(choose_method(None, true, false, &post), M::ClientSecretPost);
        assert_eq!(choose_method(None, false, false, &post), M::None);
        assert_eq!(
            choose_method(None, true, false, &meta(None)),
            M::ClientSecretBasic
        );
        let jwt = meta(Some(&["private_key_jwt", "client_secret_basic"]));
        assert_eq!(choose_method(None, true, true, &jwt), M::PrivateKeyJwt);
        assert_eq!(choose_method(Some("bogus"), false, false, &post), M::None);
        let e = "tls_client_auth".parse::<M>().unwrap_err();
        assert!(e.to_string().contains("unsupported token endpoint"), "{e}");
    }

    #[test]
    fn client_authentication_goes_where_the_method_says() {
        let id = |method| ClientIdentity {
            client_id: "my client".into(),
            secret: Some("s:x".into()),
            key: None,
            method,
        };
        let (mut form, mut headers) = (Vec::new(), Vec::new());
        id(M::ClientSecretBasic)
            .authenticate("http://as", &mut form, &mut headers)
            .unwrap();
        assert!(form.is_empty());
        let expected = format!("Basic {}", STANDARD.encode("my+client:s%3Ax"));
        assert_eq!(headers[0].1.to_str().unwrap(), expected);
        let (mut form, mut headers) = (Vec::new(), Vec::new());
        id(M::ClientSecretPost)
            .authenticate("http://as", &mut form, &mut headers)
            .unwrap();
        assert!(headers.is_empty());
        assert_eq!(
            form,
            [
                ("client_id".into(), "my client".into()),
                ("client_secret".into(), "s:x".into())
            ]
        );
        let (mut form, mut headers) = (Vec::new(), Vec::new());
        id(M::None)
            .authenticate("http://as", &mut form, &mut headers)
            .unwrap();
        assert_eq!(form, [("client_id".to_string(), "my client".to_string())]);
        let e = id(M::PrivateKeyJwt)
            .authenticate("http://as", &mut form, &mut headers)
            .unwrap_err();
        assert!(e.to_string().contains("signing key"), "{e}");
    }
}
