//! The flows an [`Authorizer`] runs: discovery (and rebinding to a new authorization server),
//! refresh, and obtaining new tokens with the configured grant.

use std::sync::Arc;

use super::authorize::{
    AuthorizationParams, AuthorizationRequest, authorization_url, read_callback,
};
use super::authorizer::{Attempts, Authorizer};
use super::challenge::BearerChallenge;
use super::discovery::{
    AuthorizationServerMetadata, ProtectedResourceMetadata, authorization_server,
    protected_resource,
};
use super::dpop::Dpop;
use super::pkce::{Pkce, random_token};
use super::registration::{ClientIdentity, client_for};
use super::store::Tokens;
use super::token::{TokenRequest, exchange_for_id_jag, request_tokens};
use super::urls::http_url;
use super::{Grant, OAuthError};
use crate::util::lock;

/// What discovery found: the resource and its authorization server.
#[derive(Debug)]
pub(crate) struct Target {
    /// The resource identifier, verbatim from the metadata (the `resource` parameter).
    pub(crate) resource: String,
    pub(crate) resource_metadata: ProtectedResourceMetadata,
    pub(crate) server: AuthorizationServerMetadata,
}

/// The scopes to ask for: the challenge's (authoritative for the operation), else the
/// resource's `scopes_supported`, else none; plus the configured ones and those already held
/// (so that re-authorizing loses nothing); plus `offline_access` when wanted and the
/// authorization server lists it, if anything else is asked for.
pub(crate) fn select_scopes(
    challenged: Option<&[String]>,
    resource_supported: Option<&[String]>,
    configured: &[String],
    held: &[String],
    offline_access: Option<&[String]>,
) -> Vec<String> {
    let base = challenged
        .filter(|c| !c.is_empty())
        .or(resource_supported)
        .unwrap_or_default();
    let mut scopes: Vec<String> = Vec::new();
    for scope in base.iter().chain(configured).chain(held) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let offline = "offline_access";
    if !scopes.is_empty()
        && !scopes.iter().any(|s| s == offline)
        && offline_access.is_some_and(|listed| listed.iter().any(|s| s == offline))
    {
        scopes.push(offline.to_owned());
    }
    scopes
}

impl Authorizer {
    /// Finds the resource and its authorization server. When the server is another one than the
    /// entry is bound to, the entry's registration and tokens are dropped: they are never sent
    /// to another authorization server.
    async fn discover(&self, hint: Option<&str>) -> Result<Arc<Target>, OAuthError> {
        let resource_metadata = protected_resource(&self.agent, &self.server, hint).await?;
        let issuer = resource_metadata.authorization_servers[0].clone();
        let server = authorization_server(&self.agent, &issuer).await?;
        let resource = resource_metadata.resource.clone().unwrap_or_else(|| {
            tracing::warn!(
                "the protected resource metadata has no resource; using the endpoint URL"
            );
            let mut url = self.server.clone();
            url.set_fragment(None);
            url.to_string()
        });
        let target = Arc::new(Target {
            resource,
            resource_metadata,
            server,
        });
        let rebound = {
            let mut state = lock(&self.state);
            state.target = Some(target.clone());
            let bound = state.entry.issuer.as_deref();
            if bound != Some(issuer.as_str()) {
                if let Some(old) = bound {
                    tracing::info!(old, new = %issuer, "the MCP server moved to another authorization server: registering again");
                }
                state.entry.issuer = Some(issuer.clone());
                state.entry.client = None;
                state.entry.tokens = None;
                Some(state.entry.clone())
            } else {
                None
            }
        };
        if let Some(entry) = rebound {
            self.save(&entry).await;
        }
        Ok(target)
    }

    /// After a `401`: discovers, then refreshes when a refresh token can bring the scopes
    /// wanted (once per request), else obtains new tokens.
    pub(super) async fn recover(
        &self,
        challenge: &BearerChallenge,
        attempts: &mut Attempts,
    ) -> Result<(), OAuthError> {
        let target = self
            .discover(challenge.resource_metadata.as_deref())
            .await?;
        let held = self.held_scopes();
        let can_refresh = lock(&self.state)
            .entry
            .tokens
            .as_ref()
            .is_some_and(|t| t.refresh_token.is_some());
        let scopes_held = challenge
            .scope
            .as_deref()
            .is_none_or(|wanted| wanted.iter().all(|s| held.contains(s)));
        if can_refresh && scopes_held && !attempts.refreshed {
            attempts.refreshed = true;
            match self.refresh(&target).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::info!(error = %e, "refreshing failed; authorizing anew"),
            }
        }
        attempts.authorized = true;
        self.obtain(&target, challenge, &held).await
    }

    /// After a `403 insufficient_scope`: discovers, then obtains tokens for the union of the
    /// scopes held and those challenged.
    pub(super) async fn step_up(&self, challenge: &BearerChallenge) -> Result<(), OAuthError> {
        let target = self
            .discover(challenge.resource_metadata.as_deref())
            .await?;
        let held = self.held_scopes();
        self.obtain(&target, challenge, &held).await
    }

    /// Renews the access token with the refresh token (the refresh token is dropped when the
    /// server refuses it).
    pub(super) async fn refresh(&self, target: &Target) -> Result<(), OAuthError> {
        let (tokens, mut entry) = {
            let state = lock(&self.state);
            (state.entry.tokens.clone(), state.entry.clone())
        };
        let Some(Tokens {
            refresh_token: Some(refresh),
            scopes,
            token_type,
            ..
        }) = tokens
        else {
            return Err(OAuthError::InvalidConfig("no refresh token".into()));
        };
        let tokens_are_dpop = token_type == "DPoP";
        let client = client_for(&self.agent, &self.config, &target.server, &mut entry).await?;
        let request = TokenRequest {
            form: Vec::new(),
            scopes: &scopes,
            previous_refresh: Some(refresh.clone()),
        }
        .param("grant_type", "refresh_token")
        .param("refresh_token", refresh)
        .param("resource", target.resource.clone());
        let dpop = if tokens_are_dpop {
            let dpop = lock(&self.state).dpop.clone();
            Some(dpop.ok_or_else(|| OAuthError::Crypto("the DPoP key is lost".into()))?)
        } else {
            None
        };
        let outcome = request_tokens(
            &self.agent,
            &target.server,
            &client,
            request,
            dpop.as_deref(),
        )
        .await;
        match outcome {
            Ok(tokens) => {
                tracing::debug!("refreshed the access token");
                self.install(tokens).await;
                Ok(())
            }
            Err(e) => {
                if let Some(t) = lock(&self.state).entry.tokens.as_mut() {
                    t.refresh_token = None;
                }
                Err(e)
            }
        }
    }

    /// Obtains new tokens with the configured grant for the scopes [`select_scopes`] picks.
    async fn obtain(
        &self,
        target: &Target,
        challenge: &BearerChallenge,
        held: &[String],
    ) -> Result<(), OAuthError> {
        let meta = &target.server;
        let grant = self.config.grant.grant_type();
        if !meta.supports_grant(grant) {
            return Err(OAuthError::GrantUnsupported {
                issuer: meta.issuer.clone(),
                grant: grant.to_owned(),
            });
        }
        let code = matches!(self.config.grant, Grant::AuthorizationCode(_));
        let scopes = select_scopes(
            challenge.scope.as_deref(),
            target.resource_metadata.scopes_supported.as_deref(),
            &self.config.scopes,
            held,
            if code && self.config.offline_access {
                meta.scopes_supported.as_deref()
            } else {
                None
            },
        );
        let mut entry = lock(&self.state).entry.clone();
        let client = client_for(&self.agent, &self.config, meta, &mut entry).await?;
        if entry.client != lock(&self.state).entry.client {
            lock(&self.state).entry.client = entry.client.clone();
            self.save(&entry).await;
        }
        let request = TokenRequest {
            form: Vec::new(),
            scopes: &scopes,
            previous_refresh: None,
        };
        let request = match &self.config.grant {
            Grant::AuthorizationCode(handler) => {
                self.authorization_code(handler.as_ref(), target, &client, &scopes, request)
                    .await?
            }
            Grant::ClientCredentials => with_scope(
                request
                    .param("grant_type", grant)
                    .param("resource", target.resource.clone()),
                &scopes,
            ),
            Grant::JwtBearer(source) => {
                let assertion = source.assertion().await.map_err(OAuthError::Assertion)?;
                jwt_bearer(request, assertion, target, &scopes)
            }
            Grant::EnterpriseManaged(idp) => {
                let (issuer, resource) = (&meta.issuer, &target.resource);
                let jag = exchange_for_id_jag(&self.agent, idp, issuer, resource, &scopes).await?;
                jwt_bearer(request, jag, target, &scopes)
            }
        };
        let dpop = self.dpop_for(target, challenge).await?;
        let tokens = request_tokens(&self.agent, meta, &client, request, dpop.as_deref()).await?;
        tracing::info!(issuer = %meta.issuer, scopes = ?tokens.scopes, "obtained an access token");
        self.install(tokens).await;
        Ok(())
    }

    /// The DPoP key to bind new tokens to, when DPoP is wanted, the authorization server signs
    /// ES256 proofs and the MCP server takes DPoP (challenged with it, or its metadata says);
    /// created and stored at first use.
    async fn dpop_for(
        &self,
        target: &Target,
        challenge: &BearerChallenge,
    ) -> Result<Option<Arc<Dpop>>, OAuthError> {
        let resource = &target.resource_metadata;
        let resource_takes = challenge.dpop
            || resource.dpop_bound_access_tokens_required
            || Dpop::supported(resource.dpop_signing_alg_values_supported.as_deref());
        let server_takes =
            Dpop::supported(target.server.dpop_signing_alg_values_supported.as_deref());
        if !(self.config.dpop && resource_takes && server_takes) {
            return Ok(None);
        }
        if let Some(dpop) = lock(&self.state).dpop.clone() {
            return Ok(Some(dpop));
        }
        let dpop = Arc::new(Dpop::generate()?);
        let entry = {
            let mut state = lock(&self.state);
            state.dpop = Some(dpop.clone());
            state.entry.dpop_key = Some(dpop.stored().to_owned());
            state.entry.clone()
        };
        self.save(&entry).await;
        Ok(Some(dpop))
    }

    /// The front channel of the authorization code grant; returns the token request for the
    /// code it brings back.
    async fn authorization_code<'a>(
        &self,
        handler: &dyn super::RedirectHandler,
        target: &Target,
        client: &ClientIdentity,
        scopes: &[String],
        request: TokenRequest<'a>,
    ) -> Result<TokenRequest<'a>, OAuthError> {
        let meta = &target.server;
        let pkce_ok = meta
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"));
        if !pkce_ok {
            return Err(OAuthError::PkceUnsupported {
                issuer: meta.issuer.clone(),
            });
        }
        let endpoint =
            meta.authorization_endpoint
                .as_deref()
                .ok_or_else(|| OAuthError::MissingEndpoint {
                    issuer: meta.issuer.clone(),
                    endpoint: "authorization_endpoint",
                })?;
        let endpoint = http_url("authorization endpoint", endpoint)?;
        let pkce = Pkce::generate()?;
        let state = random_token(32)?;
        let redirect_uri = &self.config.redirect_uri;
        let url = authorization_url(
            &endpoint,
            &AuthorizationParams {
                client_id: &client.client_id,
                redirect_uri,
                code_challenge: &pkce.challenge,
                state: &state,
                scopes,
                resource: &target.resource,
            },
        );
        let asked = AuthorizationRequest {
            url: url.to_string(),
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
        };
        let limit = self.config.authorization_timeout;
        let callback = tokio::time::timeout(limit, handler.authorize(asked))
            .await
            .map_err(|_| OAuthError::RedirectTimeout(limit))?
            .map_err(OAuthError::Redirect)?;
        let code = read_callback(&callback, &state, meta)?;
        Ok(request
            .param("grant_type", "authorization_code")
            .param("code", code)
            .param("redirect_uri", redirect_uri.clone())
            .param("code_verifier", pkce.verifier)
            .param("resource", target.resource.clone()))
    }
}

/// A JWT bearer grant request for `assertion`.
fn jwt_bearer<'a>(
    request: TokenRequest<'a>,
    assertion: String,
    target: &Target,
    scopes: &[String],
) -> TokenRequest<'a> {
    let request = request
        .param("grant_type", super::JWT_BEARER_GRANT_TYPE)
        .param("assertion", assertion)
        .param("resource", target.resource.clone());
    with_scope(request, scopes)
}

/// Adds `scope` when there are scopes.
fn with_scope<'a>(request: TokenRequest<'a>, scopes: &[String]) -> TokenRequest<'a> {
    if scopes.is_empty() {
        request
    } else {
        request.param("scope", scopes.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scope_selection_follows_the_strategy() {
        let challenged = v(&["mcp:basic"]);
        let supported = v(&["mcp:a", "mcp:b"]);
        assert_eq!(
            select_scopes(Some(&challenged), Some(&supported), &[], &[], None),
            ["mcp:basic"]
        );
        assert_eq!(
            select_scopes(None, Some(&supported), &[], &[], None),
            ["mcp:a", "mcp:b"]
        );
        assert_eq!(
            select_scopes(Some(&[]), Some(&supported), &[], &[], None),
            ["mcp:a", "mcp:b"]
        );
        assert!(select_scopes(None, None, &[], &[], None).is_empty());
        let listed = v(&["mcp:basic", "offline_access"]);
        assert!(select_scopes(None, None, &[], &[], Some(&listed)).is_empty());
        assert_eq!(
            select_scopes(None, Some(&supported), &[], &[], Some(&listed)),
            ["mcp:a", "mcp:b", "offline_access"]
        );
        // Step-up: the union of what is held and what is challenged, without duplicates.
        let held = v(&["mcp:basic", "offline_access"]);
        assert_eq!(
            select_scopes(
                Some(&v(&["mcp:write"])),
                None,
                &v(&["x"]),
                &held,
                Some(&listed)
            ),
            ["mcp:write", "x", "mcp:basic", "offline_access"]
        );
    }
}
