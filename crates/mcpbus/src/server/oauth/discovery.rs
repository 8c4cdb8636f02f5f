//! The authorization server's metadata (docs/auth.md): looked up once at the well-known
//! addresses of RFC 8414 and OpenID Connect Discovery, in the order MCP gives them, and
//! accepted only when its `issuer` is exactly the configured one. It says where the keys
//! (`jwks_uri`) and the introspection endpoint are. A failed lookup is retried at the next
//! need, but not sooner than the configured interval, so that an unreachable server is not
//! asked once per request.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::error::TokenError;
use super::fetch::{FetchError, Fetcher, Url};

/// What the resource server needs from the authorization server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsMetadata {
    /// Where its signing keys are (absent: it issues no JWT this server could check).
    pub(crate) jwks_uri: Option<String>,
    /// Its RFC 7662 introspection endpoint, if it has one.
    pub(crate) introspection_endpoint: Option<String>,
}

/// The metadata of one authorization server, fetched when first needed.
#[derive(Debug)]
pub(crate) struct Discovery {
    issuer: String,
    candidates: Vec<Url>,
    fetcher: Fetcher,
    min_retry: Duration,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    found: Option<Arc<AsMetadata>>,
    /// When the last failed lookup ended, and why it failed.
    failed: Option<(Instant, String)>,
}

impl Discovery {
    /// The metadata of `issuer` (already checked as a URL), a failed lookup being retried
    /// after `min_retry` at the soonest.
    pub(crate) fn new(issuer: &Url, fetcher: Fetcher, min_retry: Duration) -> Self {
        Discovery {
            issuer: issuer.text.clone(),
            candidates: metadata_urls(issuer),
            fetcher,
            min_retry,
            state: Default::default(),
        }
    }

    /// The metadata; `Unavailable` when it cannot be fetched (or a recent attempt failed).
    pub(crate) async fn metadata(&self) -> Result<Arc<AsMetadata>, TokenError> {
        let mut state = self.state.lock().await;
        if let Some(found) = &state.found {
            return Ok(found.clone());
        }
        if let Some((at, why)) = &state.failed
            && at.elapsed() < self.min_retry
        {
            return Err(TokenError::Unavailable(why.clone()));
        }
        match self.lookup().await {
            Ok(found) => {
                let found = Arc::new(found);
                state.found = Some(found.clone());
                state.failed = None;
                Ok(found)
            }
            Err(why) => {
                tracing::warn!(issuer = %self.issuer, "authorization server metadata: {why}");
                state.failed = Some((Instant::now(), why.clone()));
                Err(TokenError::Unavailable(why))
            }
        }
    }

    /// Tries each well-known address in turn: a `404` (or another 4xx) moves on to the next,
    /// anything else ends the lookup.
    async fn lookup(&self) -> Result<AsMetadata, String> {
        for url in &self.candidates {
            match self.fetcher.get_json(url).await {
                Ok(document) => return self.read(url, &document),
                Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!(
            "no metadata of {} at {}",
            self.issuer,
            self.candidates
                .iter()
                .map(|u| u.text.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn read(&self, url: &Url, document: &Value) -> Result<AsMetadata, String> {
        let issuer = document.get("issuer").and_then(Value::as_str);
        if issuer != Some(self.issuer.as_str()) {
            return Err(format!(
                "{}: the metadata names issuer {issuer:?}, not {:?}: not used",
                url.text, self.issuer
            ));
        }
        let endpoint = |name: &str| -> Result<Option<String>, String> {
            match document.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Url::parse(s)
                    .map(|u| Some(u.text))
                    .map_err(|e| format!("{}: {name}: {e}", url.text)),
                Some(_) => Err(format!("{}: {name} is not a string", url.text)),
            }
        };
        Ok(AsMetadata {
            jwks_uri: endpoint("jwks_uri")?,
            introspection_endpoint: endpoint("introspection_endpoint")?,
        })
    }
}

/// Where the metadata of `issuer` may be, in the order MCP asks clients to try: RFC 8414 with
/// the issuer's path after the well-known segment, OpenID Connect Discovery the same way, then
/// OpenID Connect Discovery after the issuer's path (the last two coincide for an issuer
/// without a path).
pub(crate) fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let origin = issuer.origin();
    let path = issuer.trimmed_path();
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    urls.iter().filter_map(|u| Url::parse(u).ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn texts(issuer: &str) -> Vec<String> {
        metadata_urls(&Url::parse(issuer).unwrap())
            .into_iter()
            .map(|u| u.text)
            .collect()
    }

    #[test]
    fn well_known_addresses_follow_rfc_8414_then_openid() {
        assert_eq!(
            texts("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            texts("https://as.example/tenant1/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration",
            ]
        );
    }
}
