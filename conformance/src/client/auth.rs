//! The OAuth scenarios (`auth/*`): every one starts with a `401` and scores the authorization
//! flow that follows. The client runs the mcpbus OAuth client ([`mcpbus::client::oauth`]) inside
//! the HTTP transport, then lists the tools and calls `test-tool` as the suite's reference
//! client does.
//!
//! The authorization code grant needs a user agent: [`follow_authorization`] plays it by
//! requesting the authorization URL (the mock authorization server answers at once with a
//! redirect to the redirect URI, carrying the code) and returning the redirect's `Location`
//! without ever requesting it. Pre-registered credentials, keys and assertions come from
//! `MCP_CONFORMANCE_CONTEXT`.

use std::sync::Arc;
use std::time::Duration;

use mcpbus::client::oauth::{
    AuthorizationRequest, EnterpriseIdp, OAuthConfig, PreRegisteredClient, SigningKey,
};
use mcpbus::transport::HttpClientConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::scenarios::{Outcome, builder, call, list_tools, tool, with_client_config};

/// The scored OAuth scenarios of 2025-11-25.
pub(crate) const SUPPORTED_2025: &[&str] = &[
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
];

/// The scored OAuth scenarios of 2026-07-28: those of 2025-11-25 and eleven more.
pub(crate) const SUPPORTED_2026: &[&str] = &[
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
];

/// The unscored OAuth extension scenarios this client passes (at either revision).
pub(crate) const EXTENSIONS: &[&str] = &[
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
    "auth/dpop",
    "auth/dpop-nonce",
    "auth/enterprise-managed-authorization",
    "auth/wif-jwt-bearer",
];

/// The suite's client ID metadata document URL: its mock authorization servers take it as the
/// client id without fetching it.
const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";
/// The redirect URI (never listened on: the callback is read from the redirect itself).
const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// Whether `name` is one of the OAuth scenarios above.
pub(crate) fn is_supported(name: &str) -> bool {
    SUPPORTED_2025
        .iter()
        .chain(SUPPORTED_2026)
        .chain(EXTENSIONS)
        .any(|s| *s == name)
}

/// Runs the OAuth scenario named by `MCP_CONFORMANCE_SCENARIO` against `url`.
pub(crate) async fn run(url: String) -> Outcome {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context = context()?;
    let config = HttpClientConfig {
        oauth: Some(oauth_config(&scenario, &context)?),
        ..HttpClientConfig::default()
    };
    with_client_config(&url, builder(), config, |client| async move {
        let tools = list_tools(&client).await?;
        tool(&tools, "test-tool")?;
        let text = call(&client, "test-tool", json!({})).await?;
        Ok(format!(
            "authorized; {} tool(s); test-tool answered {text:?}",
            tools.len()
        ))
    })
    .await
}

/// `MCP_CONFORMANCE_CONTEXT` as JSON (null when unset).
fn context() -> Result<Value, String> {
    match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}")),
        Err(std::env::VarError::NotPresent) => Ok(Value::Null),
        Err(e) => Err(format!("MCP_CONFORMANCE_CONTEXT: {e}")),
    }
}

/// The string `name` of the context, required.
fn field<'a>(context: &'a Value, name: &str) -> Result<&'a str, String> {
    context
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("MCP_CONFORMANCE_CONTEXT has no string {name:?}"))
}

/// The OAuth configuration a scenario needs.
fn oauth_config(scenario: &str, context: &Value) -> Result<OAuthConfig, String> {
    let mut config = match scenario {
        "auth/client-credentials-basic" => OAuthConfig::client_credentials(
            PreRegisteredClient::new(field(context, "client_id")?)
                .with_secret(field(context, "client_secret")?),
        ),
        "auth/client-credentials-jwt" => {
            let algorithm = field(context, "signing_algorithm")?;
            if algorithm != "ES256" {
                return Err(format!(
                    "signing algorithm {algorithm:?} is not supported (ES256 is)"
                ));
            }
            let key = SigningKey::from_pkcs8_pem(field(context, "private_key_pem")?)
                .map_err(|e| e.to_string())?;
            OAuthConfig::client_credentials(
                PreRegisteredClient::new(field(context, "client_id")?).with_signing_key(key),
            )
        }
        "auth/enterprise-managed-authorization" => {
            let id_token = field(context, "idp_id_token")?.to_owned();
            let idp = EnterpriseIdp {
                token_endpoint: field(context, "idp_token_endpoint")?.to_owned(),
                client_id: field(context, "idp_client_id")?.to_owned(),
                client_secret: None,
                id_token: Arc::new(move || {
                    let id_token = id_token.clone();
                    async move { Ok(id_token) }
                }),
            };
            let client = PreRegisteredClient::new(field(context, "client_id")?)
                .with_secret(field(context, "client_secret")?);
            OAuthConfig::enterprise_managed(client, idp)
        }
        "auth/wif-jwt-bearer" => {
            let assertion = field(context, "valid_jwt")?.to_owned();
            OAuthConfig::jwt_bearer(field(context, "client_id")?, move || {
                let assertion = assertion.clone();
                async move { Ok(assertion) }
            })
        }
        _ => {
            let mut config = OAuthConfig::authorization_code(REDIRECT_URI, follow_authorization);
            config.client_metadata_url = Some(CLIENT_METADATA_URL.into());
            if let Ok(id) = field(context, "client_id") {
                let mut client = PreRegisteredClient::new(id);
                client.client_secret = field(context, "client_secret").ok().map(str::to_owned);
                config.client = Some(client);
            }
            config
        }
    };
    config.client_name = "mcpbus-conformance-client".into();
    config.http_timeout = Duration::from_secs(10);
    Ok(config)
}

/// Plays the user agent: requests the authorization URL and returns where the authorization
/// server redirects to (the callback, with the code), without following it. Only loopback
/// authorization servers are contacted.
async fn follow_authorization(request: AuthorizationRequest) -> Result<String, String> {
    let uri: http::Uri = request.url.parse().map_err(|e| {
        format!(
            "the authorization URL {:?} does not parse: {e}",
            request.url
        )
    })?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if uri.scheme_str() != Some("http") || !loopback {
        return Err(format!(
            "refusing to follow {} (only http on loopback is followed)",
            request.url
        ));
    }
    let port = uri.port_u16().unwrap_or(80);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let head = format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect((host, port)).await?;
        tcp.write_all(head.as_bytes()).await?;
        let mut answer = Vec::new();
        tcp.take(64 * 1024).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "the authorization endpoint did not answer within 10 s".to_owned())?
        .map_err(|e| format!("requesting the authorization URL failed: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    let location = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    location.ok_or_else(|| {
        let status = head.lines().next().unwrap_or_default();
        format!("the authorization endpoint answered {status:?} without a redirect")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_configurations() {
        assert_eq!(SUPPORTED_2025.len(), 14);
        assert_eq!(SUPPORTED_2026.len(), 25);
        assert!(SUPPORTED_2025.iter().all(|s| SUPPORTED_2026.contains(s)));
        assert!(is_supported("auth/pre-registration") && !is_supported("auth/nope"));
        let context = json!({"client_id": "pre", "client_secret": "s"});
        let config = oauth_config("auth/pre-registration", &context).unwrap();
        assert_eq!(
            config.client.as_ref().map(|c| c.client_id.as_str()),
            Some("pre")
        );
        config.validate().unwrap();
        let e = oauth_config("auth/client-credentials-basic", &json!({})).unwrap_err();
        assert!(e.contains("client_id"), "{e}");
        let e = oauth_config(
            "auth/client-credentials-jwt",
            &json!({"client_id": "c", "private_key_pem": "x", "signing_algorithm": "RS256"}),
        )
        .unwrap_err();
        assert!(e.contains("RS256"), "{e}");
    }

    #[tokio::test]
    async fn only_loopback_authorization_servers_are_followed() {
        let request = |url: &str| AuthorizationRequest {
            url: url.into(),
            redirect_uri: REDIRECT_URI.into(),
            state: "s".into(),
        };
        let e = follow_authorization(request("http://example.com/authorize"))
            .await
            .unwrap_err();
        assert!(e.contains("only http on loopback"), "{e}");
        let e = follow_authorization(request("https://localhost/authorize"))
            .await
            .unwrap_err();
        assert!(e.contains("only http on loopback"), "{e}");
    }
}
