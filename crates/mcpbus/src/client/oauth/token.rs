//! Token requests (RFC 6749 section 4, OAuth 2.1 section 4.3): one POST to the token endpoint
//! with the grant's parameters and the client authentication, read into [`Tokens`].

use serde::Deserialize;
use serde_json::Value;

use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

use super::agent::{Agent, Answer};
use super::challenge::split_scope;
use super::discovery::AuthorizationServerMetadata;
use super::dpop::Dpop;
use super::jwt::unix_now;
use super::registration::ClientIdentity;
use super::store::Tokens;
use super::urls::http_url;
use super::{EnterpriseIdp, OAuthError};

/// A successful token response (RFC 6749 section 5.1).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    /// A number per the RFC; some servers send a string.
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// One token request.
pub(crate) struct TokenRequest<'a> {
    /// The grant's parameters (`grant_type` first).
    pub(crate) form: Vec<(String, String)>,
    /// The scopes asked for, kept as the granted ones when the answer does not list any.
    pub(crate) scopes: &'a [String],
    /// The refresh token to keep when the answer brings no new one (refresh grant).
    pub(crate) previous_refresh: Option<String>,
}

impl TokenRequest<'_> {
    /// Adds a parameter.
    pub(crate) fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.form.push((name.to_owned(), value.into()));
        self
    }
}

/// Sends `request` to the token endpoint of `meta`, authenticated as `client`, with a DPoP
/// proof when `dpop` is given (sent again once with the server's nonce when it asks for one).
pub(crate) async fn request_tokens(
    agent: &Agent,
    meta: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    request: TokenRequest<'_>,
    dpop: Option<&Dpop>,
) -> Result<Tokens, OAuthError> {
    let url = meta.token_endpoint()?;
    let mut form = request.form;
    let mut headers = Vec::new();
    client.authenticate(&meta.issuer, &mut form, &mut headers)?;
    let grant = form.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let mut answer = post_with_proof(agent, &url, &form, &headers, dpop).await?;
    if let Some(dpop) = dpop
        && let Some(nonce) = nonce_challenge(&answer)
    {
        dpop.set_as_nonce(&nonce);
        answer = post_with_proof(agent, &url, &form, &headers, Some(dpop)).await?;
    }
    if !answer.status.is_success() {
        let (error, description) = answer.oauth_error();
        return Err(OAuthError::TokenEndpoint {
            url: answer.url.clone(),
            grant,
            status: answer.status,
            error,
            description: description.or_else(|| Some(answer.quoted_body())),
        });
    }
    let token: TokenAnswer = answer.json()?;
    let token_type = if token.token_type.eq_ignore_ascii_case("bearer") {
        "Bearer"
    } else if dpop.is_some() && token.token_type.eq_ignore_ascii_case("dpop") {
        "DPoP"
    } else {
        return Err(OAuthError::InvalidTokenResponse(format!(
            "token type {:?} is not supported (Bearer, or DPoP when asked for)",
            token.token_type
        )));
    };
    if token.access_token.is_empty() {
        return Err(OAuthError::InvalidTokenResponse(
            "the access token is empty".into(),
        ));
    }
    let expires_in = token.expires_in.as_ref().and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let scopes = match token.scope.as_deref() {
        Some(scope) => split_scope(scope),
        None => request.scopes.to_vec(),
    };
    Ok(Tokens {
        access_token: token.access_token,
        token_type: token_type.into(),
        refresh_token: token.refresh_token.or(request.previous_refresh),
        expires_at: expires_in.map(|s| unix_now().saturating_add(s)),
        scopes,
    })
}

/// POSTs a token request, with a fresh DPoP proof when `dpop` is given.
async fn post_with_proof(
    agent: &Agent,
    url: &url::Url,
    form: &[(String, String)],
    headers: &[(HeaderName, HeaderValue)],
    dpop: Option<&Dpop>,
) -> Result<Answer, OAuthError> {
    let mut headers = headers.to_vec();
    if let Some(dpop) = dpop {
        let proof = dpop.proof("POST", url, None)?;
        let proof = HeaderValue::from_str(&proof)
            .map_err(|_| OAuthError::Crypto("the DPoP proof is no header value".into()))?;
        headers.push((HeaderName::from_static("dpop"), proof));
    }
    agent.post_form(url, form, headers).await
}

/// The nonce of a `use_dpop_nonce` refusal (RFC 9449 section 8), if the answer is one.
fn nonce_challenge(answer: &Answer) -> Option<String> {
    if answer.status != StatusCode::BAD_REQUEST
        || answer.oauth_error().0.as_deref() != Some("use_dpop_nonce")
    {
        return None;
    }
    let nonce = answer.headers.get("dpop-nonce")?.to_str().ok()?;
    Some(nonce.to_owned())
}

/// The token exchange grant (RFC 8693).
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an identity assertion grant (SEP-990).
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// What a token exchange answers (RFC 8693 section 2.2.1).
#[derive(Deserialize)]
struct ExchangeAnswer {
    access_token: String,
    #[serde(default)]
    issued_token_type: Option<String>,
}

/// Exchanges the user's ID token at the identity provider for an identity assertion grant
/// (ID-JAG) for the authorization server `audience` and the resource `resource` (SEP-990).
pub(crate) async fn exchange_for_id_jag(
    agent: &Agent,
    idp: &EnterpriseIdp,
    audience: &str,
    resource: &str,
    scopes: &[String],
) -> Result<String, OAuthError> {
    let url = http_url("identity provider token endpoint", &idp.token_endpoint)?;
    let id_token = idp
        .id_token
        .assertion()
        .await
        .map_err(OAuthError::Assertion)?;
    let mut form: Vec<(String, String)> = [
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", ID_JAG),
        ("audience", audience),
        ("resource", resource),
        ("subject_token", &id_token),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        ("client_id", &idp.client_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(secret) = &idp.client_secret {
        form.push(("client_secret".into(), secret.clone()));
    }
    if !scopes.is_empty() {
        form.push(("scope".into(), scopes.join(" ")));
    }
    let answer = agent.post_form(&url, &form, Vec::new()).await?;
    if !answer.status.is_success() {
        let (error, description) = answer.oauth_error();
        return Err(OAuthError::TokenEndpoint {
            url: answer.url.clone(),
            grant: TOKEN_EXCHANGE.into(),
            status: answer.status,
            error,
            description: description.or_else(|| Some(answer.quoted_body())),
        });
    }
    let exchanged: ExchangeAnswer = answer.json()?;
    match exchanged.issued_token_type.as_deref() {
        None | Some(ID_JAG) => Ok(exchanged.access_token),
        Some(other) => Err(OAuthError::InvalidTokenResponse(format!(
            "the identity provider issued a {other:?}, not an identity assertion grant"
        ))),
    }
}
